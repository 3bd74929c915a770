// Model files: what a damaged, foreign or wrongly shaped file does on load (it is refused with a
// reason, never scored with), and names that must still fit the file system.
#include "server/model_files.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "models/serialize.h"

namespace histguard::server {
namespace {

models::DenseLayer Layer(uint32_t in, uint32_t out) {
  models::DenseLayer l;
  l.in = in;
  l.out = out;
  l.weight.assign(static_cast<size_t>(in) * out, 0.25f);
  l.bias.assign(out, 0.5f);
  return l;
}

models::Model SmallModel(std::vector<uint32_t> shape, uint64_t version) {
  uint32_t n = 1;
  for (uint32_t d : shape) n *= d;
  models::Model m;
  m.version = version;
  m.shape = std::move(shape);
  m.input_mean.assign(n, 0.1f);
  m.enc1 = Layer(n, 6);
  m.enc2 = Layer(6, 2);
  m.dec1 = Layer(2, 6);
  m.dec2 = Layer(6, n);
  m.latent_mean = {0, 0};
  m.latent_inv_cov = {1, 0, 0, 1};
  return m;
}

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void Write(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

class ModelFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/histguard-models-XXXXXX";
    dir_ = mkdtemp(tmpl);
    files_ = std::make_unique<ModelFiles>(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string PathOf(const std::string& monitor, uint64_t v) {
    return files_->Directory(monitor) + "/v" + std::to_string(v) + ".model";
  }
  void Save(const std::string& monitor, const models::Model& m) {
    const absl::Status s = files_->Save(monitor, m, "{}");
    ASSERT_TRUE(s.ok()) << s;
  }
  // Null, and the reason in `error_` (its kind in `code_`), when the file is refused.
  std::optional<models::Model> Load(const std::string& monitor, uint64_t v,
                                    std::vector<uint32_t> shape) {
    auto m = files_->Load(monitor, v, shape);
    code_ = m.status().code();
    error_ = std::string(m.status().message());
    if (!m.ok()) return std::nullopt;
    return std::move(*m);
  }

  std::string dir_, error_;
  absl::StatusCode code_ = absl::StatusCode::kOk;
  std::unique_ptr<ModelFiles> files_;
};

TEST_F(ModelFilesTest, SavedModelLoadsBackWithItsVersionAndBinning) {
  Save("ecal/barrel/occupancy", SmallModel({10, 4}, 3));
  auto m = Load("ecal/barrel/occupancy", 3, {10, 4});
  ASSERT_TRUE(m) << error_;
  EXPECT_EQ(m->version, 3u);
  EXPECT_EQ(m->bins(), 40u);
  EXPECT_EQ(m->dec2.bias, std::vector<float>(40, 0.5f));
}

// A held candidate's file is found by its number only, and clearing the held ones leaves the
// versions and the one still held.
TEST_F(ModelFilesTest, HeldCandidatesAreClearedButTheOneStillHeldAndTheVersions) {
  const uint64_t old_held = kHeldCandidates + 1000, held = kHeldCandidates + 2000;
  for (uint64_t v : {uint64_t{1}, uint64_t{2}, old_held, held})
    Save("hcal/timing", SmallModel({40}, v));
  auto m = Load("hcal/timing", held, {40});
  ASSERT_TRUE(m) << error_;
  EXPECT_EQ(m->version, held);
  EXPECT_FALSE(Load("hcal/timing", held + 1, {40})) << "another held candidate's number";
  files_->RemoveHeldCandidates("hcal/timing", held);
  EXPECT_FALSE(std::filesystem::exists(PathOf("hcal/timing", old_held)));
  for (uint64_t v : {uint64_t{1}, uint64_t{2}, held})
    EXPECT_TRUE(Load("hcal/timing", v, {40})) << v << ": " << error_;
  files_->RemoveHeldCandidates("hcal/timing", 0);
  EXPECT_FALSE(std::filesystem::exists(PathOf("hcal/timing", held)));
  EXPECT_TRUE(Load("hcal/timing", 2, {40})) << error_;
  files_->RemoveHeldCandidates("never/seen", 0);  // no folder: nothing to do, no error
}

TEST_F(ModelFilesTest, AFlippedBitAnywhereIsRefused) {
  Save("a", SmallModel({50}, 1));
  const std::string path = PathOf("a", 1);
  const std::string good = Read(path);
  // Every 97th byte, header and weights alike: a flipped bit either fails a check of the header
  // or the checksum; none loads silently.
  for (size_t i = 0; i < good.size(); i += 97) {
    std::string bad = good;
    bad[i] ^= 0x10;
    Write(path, bad);
    EXPECT_FALSE(Load("a", 1, {50})) << "byte " << i << " flipped loaded";
  }
  std::string bad = good;
  bad[good.size() - 5] ^= 0x01;  // in the weights
  Write(path, bad);
  EXPECT_FALSE(Load("a", 1, {50}));
  EXPECT_NE(error_.find("checksum"), std::string::npos) << error_;
  EXPECT_EQ(code_, absl::StatusCode::kDataLoss) << "damaged, not missing";
  Write(path, good.substr(0, good.size() - 100));
  EXPECT_FALSE(Load("a", 1, {50}));
  EXPECT_NE(error_.find("truncated"), std::string::npos) << error_;
  Write(path, good);
  EXPECT_TRUE(Load("a", 1, {50})) << error_;
  EXPECT_FALSE(Load("a", 2, {50}));
  EXPECT_EQ(code_, absl::StatusCode::kNotFound) << error_;
}

// The mean shape a version trained on comes back as it was written; a damaged file or one of
// another monitor, version or binning is refused, and removing the version removes it.
TEST_F(ModelFilesTest, TheShapeAVersionTrainedOnLoadsBackAndADamagedOneIsRefused) {
  ShapeStats stats;
  for (int i = 0; i < 12; ++i) {
    stats.mean.push_back(1.0 / 12 + 1e-3 * i);
    stats.var.push_back(1e-6 * (i + 1));
  }
  stats.count = 137;
  ASSERT_TRUE(files_->SaveShape("ecal/timing", 4, {3, 4}, stats).ok());
  auto back = files_->LoadShape("ecal/timing", 4, {3, 4});
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->mean, stats.mean);
  EXPECT_EQ(back->var, stats.var);
  EXPECT_EQ(back->count, 137u);
  EXPECT_FALSE(files_->LoadShape("ecal/timing", 4, {12}).ok()) << "another binning";
  EXPECT_FALSE(files_->LoadShape("ecal/other", 4, {3, 4}).ok()) << "another monitor";
  EXPECT_EQ(files_->LoadShape("ecal/timing", 5, {3, 4}).status().code(),
            absl::StatusCode::kNotFound);
  const std::string path = files_->Directory("ecal/timing") + "/v4.shape";
  const std::string good = Read(path);
  for (size_t i = 0; i < good.size(); i += 13) {
    std::string bad = good;
    bad[i] ^= 0x04;
    Write(path, bad);
    EXPECT_FALSE(files_->LoadShape("ecal/timing", 4, {3, 4}).ok()) << "byte " << i << " flipped";
  }
  Write(path, good.substr(0, good.size() - 8));
  const auto cut = files_->LoadShape("ecal/timing", 4, {3, 4});
  EXPECT_EQ(cut.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(cut.status().message().find("truncated"), std::string::npos) << cut.status();
  Write(path, good);
  ASSERT_TRUE(files_->LoadShape("ecal/timing", 4, {3, 4}).ok());
  files_->Remove("ecal/timing", 4);
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_F(ModelFilesTest, AnotherMonitorsOrBinningsFileIsRefused) {
  Save("a", SmallModel({50}, 1));
  Save("b", SmallModel({80}, 1));
  // b's file placed in a's folder.
  Write(PathOf("a", 1), Read(PathOf("b", 1)));
  EXPECT_FALSE(Load("a", 1, {50}));
  EXPECT_NE(error_.find("belongs to monitor 'b'"), std::string::npos) << error_;
  // The right monitor, but the monitor's binning is not the model's.
  EXPECT_FALSE(Load("b", 1, {40}));
  EXPECT_NE(error_.find("binning [80]"), std::string::npos) << error_;
  // Another version's file under this version's name.
  Save("c", SmallModel({50}, 2));
  std::filesystem::copy_file(PathOf("c", 2), PathOf("c", 1));
  EXPECT_FALSE(Load("c", 1, {50}));
  EXPECT_NE(error_.find("version"), std::string::npos) << error_;
}

TEST_F(ModelFilesTest, FilesWithoutAHeaderAreStillCheckedAgainstTheBinning) {
  std::filesystem::create_directories(files_->Directory("old"));
  Write(PathOf("old", 1), models::SerializeModel(SmallModel({80}, 1)));
  EXPECT_FALSE(Load("old", 1, {50}));
  EXPECT_NE(error_.find("binning"), std::string::npos) << error_;
  EXPECT_TRUE(Load("old", 1, {80})) << error_;
}

TEST_F(ModelFilesTest, ModelWhoseLayersDoNotFitItsBinningIsRefused) {
  models::Model m = SmallModel({50}, 1);
  m.shape = {60};  // layers for 50 bins
  const auto back = models::DeserializeModel(models::SerializeModel(m));
  EXPECT_TRUE(absl::IsDataLoss(back.status())) << back.status();
  EXPECT_NE(back.status().message().find("do not fit"), std::string::npos) << back.status();
}

// A file that passes its checksum (made, not damaged) with a NaN or infinite value made every
// p-value NaN, which no threshold flags; such a model does not load.
TEST_F(ModelFilesTest, ModelWithValuesThatAreNotFiniteIsRefused) {
  for (int where = 0; where < 4; ++where) {
    models::Model m = SmallModel({4}, 1);
    const float bad = where % 2 ? std::numeric_limits<float>::infinity() : std::nanf("");
    if (where == 0) m.enc1.weight[3] = bad;
    if (where == 1) m.dec2.bias[0] = bad;
    if (where == 2) m.input_mean[2] = bad;
    if (where == 3) m.latent_inv_cov[1] = bad;
    Save("det/nan", m);
    EXPECT_FALSE(Load("det/nan", 1, {4})) << where;
    EXPECT_NE(error_.find("not finite"), std::string::npos) << error_;
  }
}

// Integers in the header or the model that do not fit their type (a made-up file) are refused by
// name; converting them was undefined behaviour.
TEST_F(ModelFilesTest, NumbersOutOfRangeInAFileAreRefused) {
  Save("det/big", SmallModel({4}, 1));
  std::string file = Read(PathOf("det/big", 1));
  const auto at = file.find("\"version\":1");
  ASSERT_NE(at, std::string::npos) << file.substr(0, 200);
  file.replace(at, 11, "\"version\":1e20");
  const auto parsed = ModelFiles::Parse(file, "det/big", 1, {4});
  EXPECT_NE(parsed.status().message().find("version is not an integer"), std::string::npos)
      << parsed.status();
}

TEST_F(ModelFilesTest, EveryValidNameFitsAFileNameAndStaysDistinct) {
  const std::vector<std::string> names = {std::string(256, 'x'),
                                          [] {
                                            std::string s;
                                            for (int i = 0; i < 128; ++i) s += "x/";
                                            return s;
                                          }(),
                                          [] {
                                            std::string s;
                                            for (int i = 0; i < 128; ++i) s += "x:";
                                            return s;
                                          }(),
                                          std::string(255, ':') + "a",
                                          std::string(255, ':') + "b",
                                          "short/name"};
  std::set<std::string> dirs;
  for (const auto& name : names) {
    const std::string dir = files_->Directory(name);
    const std::string leaf = std::filesystem::path(dir).filename().string();
    EXPECT_LE(leaf.size(), 255u) << name;
    EXPECT_EQ(dir.find('/', dir_.size() + 8), std::string::npos)
        << "one folder per monitor: " << dir;
    dirs.insert(dir);
    Save(name, SmallModel({20}, 1));
    EXPECT_TRUE(Load(name, 1, {20})) << name << ": " << error_;
  }
  EXPECT_EQ(dirs.size(), names.size());
  EXPECT_EQ(std::filesystem::path(files_->Directory("short/name")).filename(), "short%2Fname");
}

}  // namespace
}  // namespace histguard::server
