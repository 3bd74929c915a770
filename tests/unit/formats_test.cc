// Tests for client/formats.h: ROOT TBufferJSON fixtures, the plain form, and
// the messages users get for malformed input.

#include "client/formats.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#ifndef HISTGUARD_TEST_DATA_DIR
#error "HISTGUARD_TEST_DATA_DIR must point at tests/data"
#endif

namespace histguard::client {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using Json = nlohmann::json;

const std::string kRootJsonDir = std::string(HISTGUARD_TEST_DATA_DIR) + "/root-json/";

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The parsed histogram, or a test failure showing the error message.
HistogramFile MustParse(const HistogramFileOrError& result) {
  if (const auto* error = std::get_if<std::string>(&result)) {
    ADD_FAILURE() << "unexpected error: " << *error;
    return {};
  }
  return std::get<HistogramFile>(result);
}

// The error message, or a test failure if parsing succeeded.
std::string MustFail(const HistogramFileOrError& result) {
  if (const auto* error = std::get_if<std::string>(&result)) return *error;
  ADD_FAILURE() << "expected an error, but the input parsed";
  return "";
}

std::string Fixture(const std::string& name) { return ReadText(kRootJsonDir + name); }

// A fixture as a JSON object, to be edited into a malformed variant.
Json FixtureJson(const std::string& name) { return Json::parse(Fixture(name)); }

// A small TH1 in TBufferJSON form with the given fArray value.
Json MinimalTh1(const std::string& type, int nbins, const Json& array) {
  return Json{{"_typename", type},
              {"fName", "h"},
              {"fTitle", ""},
              {"fNcells", nbins + 2},
              {"fXaxis",
               {{"_typename", "TAxis"},
                {"fNbins", nbins},
                {"fXmin", 0},
                {"fXmax", 1},
                {"fXbins", Json::array()},
                {"fTitle", ""}}},
              {"fEntries", 10},
              {"fArray", array}};
}

class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("histguard_formats_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string File(const std::string& name, const std::string& text) const {
    const std::string p = (path_ / name).string();
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
  std::string Path(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// ---- every fixture gives exactly what expected.json says ----------------------

class FixtureTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureTest, MatchesExpectedJson) {
  const std::string name = GetParam();
  const Json expected = Json::parse(ReadText(kRootJsonDir + "expected.json")).at(name);
  const HistogramFile h = MustParse(ReadHistogramFile(kRootJsonDir + name));

  EXPECT_EQ(h.shape, expected.at("shape").get<std::vector<uint32_t>>());
  EXPECT_THAT(h.contents, ElementsAreArray(expected.at("contents").get<std::vector<double>>()));
  if (expected.contains("underflow")) {
    EXPECT_EQ(h.underflow, expected.at("underflow").get<double>());
    EXPECT_EQ(h.overflow, expected.at("overflow").get<double>());
  } else {
    EXPECT_EQ(h.underflow + h.overflow, expected.at("underflow_overflow_cells").get<double>());
  }
  if (expected.contains("edges")) {
    EXPECT_THAT(h.x_axis.edges, ElementsAreArray(expected.at("edges").get<std::vector<double>>()));
  }
  // ROOT files do not name a monitor or a run; the CLI supplies them.
  EXPECT_EQ(h.monitor, "");
  EXPECT_FALSE(h.has_run);
  EXPECT_FALSE(h.has_lumisection);
}

INSTANTIATE_TEST_SUITE_P(RootJson, FixtureTest,
                         ::testing::Values("th1d_timing_compact.json", "th1f_timing_pretty.json",
                                           "th1f_variable_bins_compact.json",
                                           "th2f_occupancy_compact.json"),
                         [](const auto& info) {
                           std::string n = info.param;
                           return n.substr(0, n.find('.'));
                         });

TEST(RootJsonTest, KeepsEntriesTitlesAndAxes) {
  const HistogramFile h = MustParse(ReadHistogramFile(kRootJsonDir + "th1d_timing_compact.json"));
  EXPECT_EQ(h.entries, 6925);  // fEntries, not the sum of the cells (6917 + 8)
  EXPECT_EQ(h.object_name, "hit_time");
  EXPECT_EQ(h.title, "hit time");  // "hit time;t [ns];hits" without the axis parts
  EXPECT_EQ(h.x_axis.title, "t [ns]");
  EXPECT_EQ(h.x_axis.low, -25);
  EXPECT_EQ(h.x_axis.high, 25);
  EXPECT_TRUE(h.x_axis.edges.empty());
}

TEST(RootJsonTest, VariableBinsSetLowAndHighFromTheEdges) {
  const HistogramFile h =
      MustParse(ReadHistogramFile(kRootJsonDir + "th1f_variable_bins_compact.json"));
  EXPECT_EQ(h.x_axis.low, 0);
  EXPECT_EQ(h.x_axis.high, 32);
}

TEST(RootJsonTest, TwoDimensionalKeepsRowMajorOrderAndBothAxes) {
  const HistogramFile h =
      MustParse(ReadHistogramFile(kRootJsonDir + "th2f_occupancy_compact.json"));
  ASSERT_THAT(h.shape, ElementsAre(8, 6));
  // ROOT bin (ix=3, iy=2), global bin 3 + 10*2 = 23, is the dead pixel.
  EXPECT_EQ(h.contents[(3 - 1) * 6 + (2 - 1)], 0);
  EXPECT_EQ(h.contents[(1 - 1) * 6 + (2 - 1)], 70);  // global bin 21
  EXPECT_EQ(h.x_axis.high, 8);
  EXPECT_EQ(h.y_axis.high, 6);
  EXPECT_EQ(h.y_axis.title, "row");
  EXPECT_EQ(h.entries, 4084);
}

TEST(RootJsonTest, TwoDimensionalUnderAndOverflowSumTheOuterCells) {
  // 2x1 bins: fArray is (nx+2)*(ny+2) = 4*3 cells, global bin ix + 4*iy.
  Json doc = MinimalTh1("TH2D", 2, Json::array());
  doc["fNcells"] = 12;
  doc["fYaxis"] = {{"fNbins", 1}, {"fXmin", 0}, {"fXmax", 1}, {"fXbins", Json::array()}};
  //                  iy=0: ix=0..3    iy=1: ix=0..3    iy=2: ix=0..3
  doc["fArray"] = {1, 2, 3, 4, 5, 10, 20, 6, 7, 8, 9, 11};
  const HistogramFile h = MustParse(ParseHistogramJson(doc.dump()));
  EXPECT_THAT(h.contents, ElementsAre(10, 20));
  // Underflow: every cell with ix == 0 or iy == 0: 1+2+3+4 (iy=0) + 5 (ix=0,iy=1) + 7 (ix=0,iy=2).
  EXPECT_EQ(h.underflow, 1 + 2 + 3 + 4 + 5 + 7);
  // Overflow: the other outer cells: 6 (ix=3,iy=1) + 8 + 9 + 11 (iy=2, ix=1..3).
  EXPECT_EQ(h.overflow, 6 + 8 + 9 + 11);
}

TEST(RootJsonTest, AllStorageTypesOfTh1AndTh2AreAccepted) {
  for (const char* type : {"TH1F", "TH1D", "TH1I", "TH1S", "TH1C", "TH1L"}) {
    const HistogramFile h = MustParse(ParseHistogramJson(MinimalTh1(type, 2, {0, 1, 2, 0}).dump()));
    EXPECT_THAT(h.contents, ElementsAre(1, 2)) << type;
  }
}

TEST(RootJsonTest, TitleFallsBackToTheObjectName) {
  Json doc = MinimalTh1("TH1F", 2, {0, 1, 2, 0});
  doc["fName"] = "pixel_occupancy";
  const HistogramFile h = MustParse(ParseHistogramJson(doc.dump()));
  EXPECT_EQ(h.title, "pixel_occupancy");
  EXPECT_EQ(h.object_name, "pixel_occupancy");
}

// ---- TBufferJSON compressed arrays ---------------------------------------------

TEST(RootJsonTest, CompressedArrayWithRunsAndRepeats) {
  // What TBufferJSON writes for [0, 0, 5, 5, 5, 5, 5, 5, 5, 1, 2, 3, 0, 0] with
  // kSameSuppression: zeros are implicit, "p" starts a run, "n" repeats "v".
  const Json array = {{"$arr", "Float64"}, {"len", 14}, {"p", 2}, {"v", 5}, {"n", 7},
                      {"v1", {1, 2, 3}}};
  const HistogramFile h = MustParse(ParseHistogramJson(MinimalTh1("TH1D", 12, array).dump()));
  EXPECT_EQ(h.underflow, 0);
  EXPECT_THAT(h.contents, ElementsAre(0, 5, 5, 5, 5, 5, 5, 5, 1, 2, 3, 0));
  EXPECT_EQ(h.overflow, 0);
}

TEST(RootJsonTest, CompressedArrayWithExplicitPositions) {
  const Json array = {{"$arr", "Float32"}, {"len", 6}, {"p", 1},
                      {"v", {4, 5}},       {"p1", 5},  {"v1", 9}};
  const HistogramFile h = MustParse(ParseHistogramJson(MinimalTh1("TH1F", 4, array).dump()));
  EXPECT_THAT(h.contents, ElementsAre(4, 5, 0, 0));
  EXPECT_EQ(h.overflow, 9);
}

TEST(RootJsonTest, CompressedArrayAllZero) {
  const Json array = {{"$arr", "Int32"}, {"len", 5}};
  const HistogramFile h = MustParse(ParseHistogramJson(MinimalTh1("TH1I", 3, array).dump()));
  EXPECT_THAT(h.contents, ElementsAre(0, 0, 0));
}

TEST(RootJsonTest, CompressedArrayInBase64WithOffset) {
  // Float32 1.5 and 2.0, little-endian, starting at byte 8 (value index 2).
  const Json array = {{"$arr", "Float32"}, {"len", 6}, {"o", 8}, {"b", "AADAPwAAAEA="}};
  const HistogramFile h = MustParse(ParseHistogramJson(MinimalTh1("TH1F", 4, array).dump()));
  EXPECT_THAT(h.contents, ElementsAre(0, 1.5, 2, 0));
}

TEST(RootJsonTest, CompressedSignedIntegersInBase64) {
  const Json array = {{"$arr", "Int16"}, {"len", 4}, {"o", 2}, {"b", "/f8HAA=="}};  // -3, 7
  const HistogramFile h = MustParse(ParseHistogramJson(MinimalTh1("TH1S", 2, array).dump()));
  EXPECT_THAT(h.contents, ElementsAre(-3, 7));
}

TEST(RootJsonTest, CompressedRunPastTheEndIsRejected) {
  const Json array = {{"$arr", "Float32"}, {"len", 4}, {"p", 3}, {"v", {1, 2}}};
  EXPECT_THAT(MustFail(ParseHistogramJson(MinimalTh1("TH1F", 2, array).dump())),
              HasSubstr("outside len=4"));
}

TEST(RootJsonTest, CompressedLengthMustMatchFncells) {
  const Json array = {{"$arr", "Float32"}, {"len", 5}, {"v", 1}};
  EXPECT_THAT(MustFail(ParseHistogramJson(MinimalTh1("TH1F", 2, array).dump())),
              HasSubstr("fArray has 5 values, expected fNcells=4"));
}

TEST(RootJsonTest, HugeCompressedLengthIsRefusedWithoutAllocating) {
  const Json array = {{"$arr", "Float32"}, {"len", 4000000000LL}};
  EXPECT_THAT(MustFail(ParseHistogramJson(MinimalTh1("TH1F", 2, array).dump())),
              HasSubstr("more than the limit"));
}

TEST(RootJsonTest, UnknownCompressedTypeIsRejected) {
  const Json array = {{"$arr", "Float16"}, {"len", 4}};
  EXPECT_THAT(MustFail(ParseHistogramJson(MinimalTh1("TH1F", 2, array).dump())),
              HasSubstr("unknown compressed array type \"Float16\""));
}

// ---- malformed ROOT input --------------------------------------------------------

TEST(RootJsonErrorTest, TruncatedJson) {
  const std::string text = Fixture("th1d_timing_compact.json");
  const std::string error = MustFail(ParseHistogramJson(text.substr(0, text.size() / 2)));
  EXPECT_THAT(error, HasSubstr("invalid JSON"));
  EXPECT_THAT(error, HasSubstr("unexpected end of input"));
}

TEST(RootJsonErrorTest, ArrayShorterThanFncells) {
  Json doc = FixtureJson("th1d_timing_compact.json");
  doc["fArray"].erase(doc["fArray"].size() - 1);
  EXPECT_THAT(MustFail(ParseHistogramJson(doc.dump())),
              HasSubstr("fArray has 51 values, expected fNcells=52"));
}

TEST(RootJsonErrorTest, FncellsNotMatchingTheAxes) {
  Json doc = FixtureJson("th1d_timing_compact.json");
  doc["fNcells"] = 53;
  EXPECT_THAT(MustFail(ParseHistogramJson(doc.dump())),
              HasSubstr("fNcells=53 does not match the axes: expected fXaxis.fNbins+2=52"));
}

TEST(RootJsonErrorTest, TwoDimensionalWithWrongCount) {
  Json doc = FixtureJson("th2f_occupancy_compact.json");
  doc["fArray"].erase(0);
  EXPECT_THAT(MustFail(ParseHistogramJson(doc.dump())),
              HasSubstr("fArray has 79 values, expected fNcells=80"));
}

TEST(RootJsonErrorTest, TwoDimensionalWithWrongYAxis) {
  Json doc = FixtureJson("th2f_occupancy_compact.json");
  doc["fYaxis"]["fNbins"] = 7;
  EXPECT_THAT(MustFail(ParseHistogramJson(doc.dump())),
              HasSubstr("expected (fXaxis.fNbins+2)*(fYaxis.fNbins+2)=90"));
}

TEST(RootJsonErrorTest, ProfileIsRejected) {
  Json doc = FixtureJson("th1d_timing_compact.json");
  doc["_typename"] = "TProfile";
  EXPECT_THAT(MustFail(ParseHistogramJson(doc.dump())), HasSubstr("\"TProfile\" is a profile"));
}

TEST(RootJsonErrorTest, ThreeDimensionalIsRejected) {
  Json doc = FixtureJson("th1d_timing_compact.json");
  doc["_typename"] = "TH3F";
  EXPECT_THAT(MustFail(ParseHistogramJson(doc.dump())), HasSubstr("3D histogram"));
}

TEST(RootJsonErrorTest, OtherClassesAreRejected) {
  for (const char* type : {"TGraph", "TH2Poly", "TH1K", "TH1"}) {
    Json doc = FixtureJson("th1d_timing_compact.json");
    doc["_typename"] = type;
    EXPECT_THAT(MustFail(ParseHistogramJson(doc.dump())),
                HasSubstr(std::string("unsupported _typename \"") + type + "\""));
  }
}

TEST(RootJsonErrorTest, NullInArrayIsNaN) {
  Json doc = FixtureJson("th1d_timing_compact.json");
  doc["fArray"][3] = nullptr;
  EXPECT_THAT(MustFail(ParseHistogramJson(doc.dump())),
              HasSubstr("fArray[3] is null (ROOT writes NaN as null)"));
}

TEST(RootJsonErrorTest, InfinityWrittenAs2e308) {
  std::string text = Fixture("th1d_timing_compact.json");
  const std::string from = "\"fArray\":[3,";
  ASSERT_NE(text.find(from), std::string::npos);
  text.replace(text.find(from), from.size(), "\"fArray\":[2e308,");
  const std::string error = MustFail(ParseHistogramJson(text));
  EXPECT_THAT(error, HasSubstr("number overflow"));
  EXPECT_THAT(error, HasSubstr("infinite values are not accepted"));
}

TEST(RootJsonErrorTest, VariableBinsWithWrongEdgeCount) {
  Json doc = FixtureJson("th1f_variable_bins_compact.json");
  doc["fXaxis"]["fXbins"].erase(0);
  EXPECT_THAT(MustFail(ParseHistogramJson(doc.dump())),
              HasSubstr("fXaxis.fXbins has 10 edges, expected fNbins+1=11"));
}

TEST(RootJsonErrorTest, VariableBinsMustIncrease) {
  Json doc = FixtureJson("th1f_variable_bins_compact.json");
  doc["fXaxis"]["fXbins"][5] = 3;
  EXPECT_THAT(MustFail(ParseHistogramJson(doc.dump())),
              HasSubstr("fXaxis.fXbins is not increasing at index 5"));
}

TEST(RootJsonErrorTest, MissingArray) {
  Json doc = FixtureJson("th1d_timing_compact.json");
  doc.erase("fArray");
  EXPECT_THAT(MustFail(ParseHistogramJson(doc.dump())), HasSubstr("missing \"fArray\""));
}

TEST(RootJsonErrorTest, ZeroBins) {
  Json doc = FixtureJson("th1d_timing_compact.json");
  doc["fXaxis"]["fNbins"] = 0;
  EXPECT_THAT(MustFail(ParseHistogramJson(doc.dump())),
              HasSubstr("fXaxis.fNbins is 0, expected 1.."));
}

// ---- the plain form --------------------------------------------------------------

TEST(PlainJsonTest, AllFields) {
  const HistogramFile h = MustParse(ParseHistogramJson(R"({
      "monitor": "ecal/barrel/timing", "run": 355100, "lumisection": 42,
      "shape": [3], "contents": [1, 2.5, 3],
      "underflow": 4, "overflow": 5, "entries": 20, "title": "timing"})"));
  EXPECT_EQ(h.monitor, "ecal/barrel/timing");
  EXPECT_TRUE(h.has_run);
  EXPECT_EQ(h.run, 355100u);
  EXPECT_TRUE(h.has_lumisection);
  EXPECT_EQ(h.lumisection, 42u);
  EXPECT_THAT(h.shape, ElementsAre(3));
  EXPECT_THAT(h.contents, ElementsAre(1, 2.5, 3));
  EXPECT_EQ(h.underflow, 4);
  EXPECT_EQ(h.overflow, 5);
  EXPECT_EQ(h.entries, 20);
  EXPECT_EQ(h.title, "timing");
}

TEST(PlainJsonTest, OptionalFieldsDefault) {
  const HistogramFile h =
      MustParse(ParseHistogramJson(R"({"shape": [2, 3], "contents": [1, 2, 3, 4, 5, 6]})"));
  EXPECT_EQ(h.monitor, "");
  EXPECT_FALSE(h.has_run);
  EXPECT_FALSE(h.has_lumisection);
  EXPECT_THAT(h.shape, ElementsAre(2, 3));
  EXPECT_EQ(h.underflow, 0);
  EXPECT_EQ(h.entries, 21);  // no "entries": the sum of everything
}

TEST(PlainJsonTest, ReadFromFile) {
  TempDir dir;
  const std::string path =
      dir.File("plain.json", R"({"monitor": "m", "shape": [2], "contents": [7, 8]})");
  const HistogramFile h = MustParse(ReadHistogramFile(path));
  EXPECT_EQ(h.monitor, "m");
  EXPECT_THAT(h.contents, ElementsAre(7, 8));
}

TEST(PlainJsonErrorTest, NegativeShape) {
  EXPECT_THAT(MustFail(ParseHistogramJson(R"({"shape": [-5], "contents": []})")),
              HasSubstr("shape[0] is -5, expected a positive integer"));
}

TEST(PlainJsonErrorTest, ZeroInTwoDimensionalShape) {
  EXPECT_THAT(MustFail(ParseHistogramJson(R"({"shape": [4, 0], "contents": []})")),
              HasSubstr("shape[1] is 0, expected a positive integer"));
}

TEST(PlainJsonErrorTest, ThreeDimensionalShape) {
  EXPECT_THAT(MustFail(ParseHistogramJson(R"({"shape": [2, 2, 2], "contents": []})")),
              HasSubstr("shape has 3 dimensions, expected 1 ([nx]) or 2 ([nx, ny])"));
}

TEST(PlainJsonErrorTest, ShapeAndContentsDisagree) {
  Json doc = {{"shape", {8, 6}}, {"contents", std::vector<double>(47, 1.0)}};
  EXPECT_THAT(MustFail(ParseHistogramJson(doc.dump())),
              HasSubstr("contents has 47 values, but shape [8, 6] needs 48"));
}

TEST(PlainJsonErrorTest, MissingContents) {
  EXPECT_THAT(MustFail(ParseHistogramJson(R"({"monitor": "m", "shape": [3]})")),
              HasSubstr("missing \"contents\""));
}

TEST(PlainJsonErrorTest, MissingShape) {
  EXPECT_THAT(MustFail(ParseHistogramJson(R"({"contents": [1, 2]})")),
              HasSubstr("missing \"shape\""));
}

TEST(PlainJsonErrorTest, NaNLiteral) {
  EXPECT_THAT(MustFail(ParseHistogramJson(R"({"shape": [3], "contents": [1, NaN, 2]})")),
              HasSubstr("NaN and Infinity are not valid JSON numbers"));
}

TEST(PlainJsonErrorTest, InfinityLiteral) {
  EXPECT_THAT(MustFail(ParseHistogramJson(R"({"shape": [2], "contents": [1, Infinity]})")),
              HasSubstr("NaN and Infinity are not valid JSON numbers"));
}

TEST(PlainJsonErrorTest, NonNumericContent) {
  EXPECT_THAT(MustFail(ParseHistogramJson(R"({"shape": [2], "contents": [1, "a"]})")),
              HasSubstr("contents[1] is \"a\", expected a number"));
}

TEST(PlainJsonErrorTest, NegativeRun) {
  EXPECT_THAT(MustFail(ParseHistogramJson(R"({"run": -1, "shape": [1], "contents": [1]})")),
              HasSubstr("run is -1, expected >= 0"));
}

TEST(PlainJsonErrorTest, MonitorMustBeAString) {
  EXPECT_THAT(MustFail(ParseHistogramJson(R"({"monitor": 7, "shape": [1], "contents": [1]})")),
              HasSubstr("monitor is 7, expected a string"));
}

// ---- documents that are not histograms, and files --------------------------------

TEST(DocumentErrorTest, NotAnObject) {
  EXPECT_THAT(MustFail(ParseHistogramJson("[1, 2, 3]")),
              HasSubstr("the JSON document is an array, expected an object"));
}

TEST(DocumentErrorTest, ObjectWithoutHistogramKeys) {
  EXPECT_THAT(MustFail(ParseHistogramJson(R"({"hello": 1})")), HasSubstr("not a histogram"));
}

TEST(DocumentErrorTest, EmptyText) {
  EXPECT_THAT(MustFail(ParseHistogramJson("  \n")), HasSubstr("empty input"));
}

TEST(FileErrorTest, EmptyFileNamesThePath) {
  TempDir dir;
  const std::string path = dir.File("empty.json", "");
  const std::string error = MustFail(ReadHistogramFile(path));
  EXPECT_THAT(error, HasSubstr(path + ": file is empty"));
}

TEST(FileErrorTest, NonexistentPath) {
  TempDir dir;
  const std::string path = dir.Path("does_not_exist.json");
  EXPECT_THAT(MustFail(ReadHistogramFile(path)), HasSubstr(path + ": no such file"));
}

TEST(FileErrorTest, Directory) {
  TempDir dir;
  EXPECT_THAT(MustFail(ReadHistogramFile(dir.Path(""))), HasSubstr("is a directory"));
}

TEST(FileErrorTest, ParseErrorsNameThePath) {
  TempDir dir;
  const std::string path = dir.File("bad.json", R"({"shape": [2], "contents": [1]})");
  EXPECT_THAT(MustFail(ReadHistogramFile(path)),
              HasSubstr(path + ": contents has 1 values, but shape [2] needs 2"));
}

TEST(FileErrorTest, FilesOver64MiBAreRefused) {
  TempDir dir;
  const std::string path = dir.File("huge.json", "");
  std::filesystem::resize_file(path, kMaxHistogramFileBytes + 1);  // sparse: cheap
  const std::string error = MustFail(ReadHistogramFile(path));
  EXPECT_THAT(error, HasSubstr(path + ": file is 67108865 bytes"));
  EXPECT_THAT(error, HasSubstr("64 MiB"));
}

}  // namespace
}  // namespace histguard::client
