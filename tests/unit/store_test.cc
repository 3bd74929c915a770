// The state store's records: what goes in comes back, whatever the encoding chosen on disk.
#include "server/store.h"
#include "server/convert.h"
#include "server/meta.h"
#include "server/model_files.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

namespace histguard::server {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/histguard-store-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Store> Open() {
    auto s = Store::Open(dir_);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }

  static v1::Histogram HistProto(std::vector<double> contents, uint64_t ls) {
    v1::Histogram h;
    h.set_monitor("pixel/barrel/l1/occupancy");
    h.set_run(7);
    h.set_lumisection(ls);
    h.set_time_unix_ms(1700000000123);
    h.add_shape(static_cast<uint32_t>(contents.size()));
    h.mutable_contents()->Assign(contents.begin(), contents.end());
    h.set_underflow(3);
    h.set_overflow(0.5);
    h.set_entries(1234);
    h.mutable_x_axis()->set_title("channel");
    return h;
  }

  static v1::Verdict VerdictProto(uint64_t ls) {
    v1::Verdict v;
    v.set_monitor("pixel/barrel/l1/occupancy");
    v.set_run(7);
    v.set_lumisection(ls);
    v.set_quality(v1::QUALITY_WARNING);
    v.set_p_value(3e-4);
    v.set_model_version(4);
    auto* b = v.add_top_bins();
    b->set_bin(2);
    b->set_pull(-4.5);
    return v;
  }
  static Histogram Hist(std::vector<double> contents, uint64_t ls) {
    return FromProto(HistProto(std::move(contents), ls));
  }
  static Verdict VerdictOf(uint64_t ls) { return *FromProto(VerdictProto(ls)); }

  std::string dir_;
};

// Compared as the API would send them.
v1::Histogram AsProto(const Histogram& h) {
  v1::Histogram out;
  ToProto(h, &out);
  return out;
}
v1::Inspection AsProto(const Record& r) {
  v1::Inspection out;
  ToProto(r, &out);
  return out;
}

void ExpectSame(const v1::Histogram& a, const v1::Histogram& b) {
  EXPECT_EQ(a.SerializeAsString(), b.SerializeAsString()) << a.DebugString() << b.DebugString();
}
void ExpectSame(const Histogram& a, const v1::Histogram& b) { ExpectSame(AsProto(a), b); }

TEST_F(StoreTest, CountsAndWeightedContentsComeBackExactly) {
  auto store = Open();
  const std::vector<std::vector<double>> cases = {
      {0, 1, 2, 127, 128, 16383, 16384, 1e9, 9007199254740992.0},  // whole counts, up to 2^53
      {0.5, 1.25, 3, 0},                                           // weighted
      {1, 2, 9007199254740994.0},                                  // whole, but beyond 2^53
      {},                                                          // nothing
  };
  Store::Batch batch;
  for (size_t i = 0; i < cases.size(); ++i)
    store->PutRecord(batch, Hist(cases[i], i + 1), VerdictOf(i + 1));
  ASSERT_TRUE(store->Commit(batch).ok());
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto rec = store->GetRecord("pixel/barrel/l1/occupancy", 7, i + 1);
    ASSERT_TRUE(rec.ok()) << i << " " << rec.status();
    ExpectSame(rec->histogram, HistProto(cases[i], i + 1));
    EXPECT_EQ(AsProto(*rec).verdict().SerializeAsString(), VerdictProto(i + 1).SerializeAsString());
  }
  size_t seen = 0;
  EXPECT_TRUE(store
                  ->ForEachRecord("pixel/barrel/l1/occupancy",
                                  [&](const Record& rec) {
                                    ExpectSame(rec.histogram, HistProto(cases[seen], seen + 1));
                                    ++seen;
                                    return true;
                                  })
                  .ok());
  EXPECT_EQ(seen, cases.size());
}

// The console finds a lumisection by when it came (a Grafana point, an alert): a histogram that
// gives no producer time is stored with the time it was received, one that gives one keeps it.
TEST_F(StoreTest, HistogramsWithoutAProducerTimeKeepTheTimeTheyWereReceived) {
  auto store = Open();
  Store::Batch batch;
  Histogram unstamped = Hist({1, 2, 3}, 1);
  unstamped.time_unix_ms = 0;  // "time received"
  Histogram stamped = Hist({1, 2, 3}, 2);
  stamped.time_unix_ms = 1700000000000;
  store->PutRecord(batch, unstamped, VerdictOf(1), 1764857123456);
  store->PutRecord(batch, stamped, VerdictOf(2), 1764857123456);
  ASSERT_TRUE(store->Commit(batch).ok());
  const auto received = store->GetRecord("pixel/barrel/l1/occupancy", 7, 1);
  const auto producer = store->GetRecord("pixel/barrel/l1/occupancy", 7, 2);
  ASSERT_TRUE(received.ok() && producer.ok());
  EXPECT_EQ(received->histogram.time_unix_ms, 1764857123456);
  EXPECT_EQ(producer->histogram.time_unix_ms, 1700000000000);
}

TEST_F(StoreTest, WholeCountsTakeAFractionOfTheSpace) {
  // 2,000 histograms of 100 bins at ~1e4 entries: the store's files stay well below the 1.6 MB
  // their contents take as doubles.
  {
    auto store = Open();
    std::mt19937_64 rng(1);
    std::poisson_distribution<int> pois(100);
    std::string error;
    for (int i = 0; i < 2000; ++i) {
      std::vector<double> c(100);
      for (double& v : c) v = pois(rng);
      Store::Batch batch;
      store->PutRecord(batch, Hist(c, i + 1), VerdictOf(i + 1));
      ASSERT_TRUE(store->Commit(batch).ok());
    }
  }
  uintmax_t bytes = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir_))
    if (e.is_regular_file()) bytes += e.file_size();
  EXPECT_LT(bytes, 2000u * 100 * 8 / 2) << bytes << " bytes on disk";
  std::printf("2,000 records of 100 bins: %ju bytes in the store\n", bytes);
}

// A histogram's ('h') or label's ('l') key as the store writes it, for writing behind its back.
std::string RawKey(char kind, const std::string& monitor, uint64_t run, uint64_t ls) {
  std::string key = std::string(1, kind) + "|" + monitor + "|";
  for (uint64_t v : {run, ls})
    for (int i = 7; i >= 0; --i) key.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return key;
}

TEST_F(StoreTest, RecordsWrittenAsPlainInspectionsStillRead) {
  v1::Inspection old;
  *old.mutable_histogram() = HistProto({4, 5, 6}, 9);
  *old.mutable_verdict() = VerdictProto(9);
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir_, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), RawKey('h', "pixel/barrel/l1/occupancy", 7, 9),
                        old.SerializeAsString())
                    .ok());
  }
  auto store = Open();
  const auto rec = store->GetRecord("pixel/barrel/l1/occupancy", 7, 9);
  ASSERT_TRUE(rec.ok()) << rec.status();
  ExpectSame(rec->histogram, old.histogram());
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Records written by earlier releases (tests/data/store: the same histogram as schema 0, a plain
// Inspection, and as schema 1, varint counts ahead of it) read as they were written, and a record
// of a schema newer than this build is refused with a reason, not misread.
TEST(StoredRecordTest, EverySchemaEverWrittenStillReads) {
  const std::string dir = std::string(HISTGUARD_TEST_DATA_DIR) + "/store/";
  Record record0, record1;
  ASSERT_TRUE(DecodeRecord(ReadFile(dir + "schema0-record.bin"), "x", 0, 0, record0).ok());
  ASSERT_TRUE(DecodeRecord(ReadFile(dir + "schema1-record.bin"), "x", 0, 0, record1).ok());
  const v1::Inspection schema0 = AsProto(record0), schema1 = AsProto(record1);
  EXPECT_EQ(schema0.SerializeAsString(), schema1.SerializeAsString());
  EXPECT_EQ(schema1.histogram().monitor(), "fuzz/spectrum");
  EXPECT_EQ(schema1.histogram().run(), 356001u);
  EXPECT_EQ(schema1.histogram().lumisection(), 13u);
  ASSERT_EQ(schema1.histogram().contents_size(), 64);
  double sum = 0;
  for (double c : schema1.histogram().contents()) sum += c;
  EXPECT_GT(sum, 64 * 40);  // Poisson means 40-200 a bin
  EXPECT_EQ(schema1.verdict().quality(), v1::QUALITY_GOOD);
  EXPECT_EQ(schema1.verdict().model_version(), 1u);
  ASSERT_EQ(schema1.verdict().top_bins_size(), 1);
  EXPECT_EQ(schema1.verdict().top_bins(0).pull(), -7.5);

  // Written again in today's schema, it reads back the same, and smaller.
  const std::string now = EncodeRecord(record1.histogram, record1.verdict);
  Record again;
  ASSERT_TRUE(DecodeRecord(now, "fuzz/spectrum", 356001, 13, again).ok());
  // (The key names the histogram, so the verdict is named by it too; these fixtures' verdicts
  // were written unnamed.)
  v1::Inspection named = schema1;
  named.mutable_verdict()->set_monitor("fuzz/spectrum");
  named.mutable_verdict()->set_run(356001);
  named.mutable_verdict()->set_lumisection(13);
  EXPECT_EQ(AsProto(again).SerializeAsString(), named.SerializeAsString());
  EXPECT_LT(now.size(), ReadFile(dir + "schema1-record.bin").size());

  Record newer;
  const absl::Status refused = DecodeRecord(std::string("\x05\x08\x01", 3), "x", 0, 0, newer);
  EXPECT_EQ(refused.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(refused.message().find("schema 5"), std::string::npos) << refused;
}

// A person's labels come back as given, and a label stored by an earlier release (the API's
// LabelRequest as it came, schema 0) still reads beside today's.
TEST_F(StoreTest, LabelsComeBackAndOldOnesStillRead) {
  const std::string monitor = "pixel/barrel/l1/occupancy";
  {
    auto store = Open();
    Store::Batch batch;
    store->PutLabel(batch, Label{monitor, 7, 3, true, "beam splash, fine", "shifter"});
    store->PutLabel(batch, Label{monitor, 7, 5, false, "", "expert"});
    store->PutLabel(batch, Label{"other/monitor", 7, 4, true, "", ""});
    ASSERT_TRUE(store->Commit(batch).ok());
  }
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir_, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    v1::LabelRequest old;
    old.set_monitor(monitor);
    old.set_run(7);
    old.set_lumisection(4);
    old.set_label(v1::QUALITY_BAD);
    old.set_comment("noisy module");
    old.set_author("old release");
    ASSERT_TRUE(
        db->Put(rocksdb::WriteOptions(), RawKey('l', monitor, 7, 4), old.SerializeAsString()).ok());
  }
  auto store = Open();
  std::vector<Label> seen;
  ASSERT_TRUE(store->ForEachLabel(monitor, [&](const Label& l) { seen.push_back(l); }).ok());
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].key(), HistogramKey(7, 3));
  EXPECT_TRUE(seen[0].good);
  EXPECT_EQ(seen[0].comment, "beam splash, fine");
  EXPECT_EQ(seen[0].author, "shifter");
  EXPECT_EQ(seen[1].key(), HistogramKey(7, 4));
  EXPECT_FALSE(seen[1].good);
  EXPECT_EQ(seen[1].comment, "noisy module");
  EXPECT_EQ(seen[1].author, "old release");
  EXPECT_EQ(seen[2].key(), HistogramKey(7, 5));
  EXPECT_FALSE(seen[2].good);
  EXPECT_EQ(seen[2].author, "expert");
  for (const Label& l : seen) EXPECT_EQ(l.monitor, monitor);
}

// A label the build cannot read (damaged, or of a newer schema) is skipped and named; the
// others still read.
TEST_F(StoreTest, UnreadableLabelsAreSkippedAndNamed) {
  const std::string monitor = "pixel/barrel/l1/occupancy";
  {
    auto store = Open();
    Store::Batch batch;
    store->PutLabel(batch, Label{monitor, 7, 1, true, "", "a"});
    ASSERT_TRUE(store->Commit(batch).ok());
  }
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir_, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(
        db->Put(rocksdb::WriteOptions(), RawKey('l', monitor, 7, 2), std::string("\x03\x08\x01", 3))
            .ok());
  }
  auto store = Open();
  size_t seen = 0;
  const absl::Status scan = store->ForEachLabel(monitor, [&](const Label&) { ++seen; });
  EXPECT_EQ(seen, 1u);
  EXPECT_EQ(scan.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(scan.message().find("schema 3"), std::string::npos) << scan;
}

// A record that is there but damaged is not "missing": reads say DataLoss, scans skip it, count
// it and still visit the others.
TEST_F(StoreTest, DamagedRecordsAreToldApartFromMissingOnes) {
  {
    auto store = Open();
    Store::Batch batch;
    for (uint64_t ls = 1; ls <= 3; ++ls)
      store->PutRecord(batch, Hist({1, 2, 3}, ls), VerdictOf(ls));
    ASSERT_TRUE(store->Commit(batch).ok());
  }
  {
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir_, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), RawKey('h', "pixel/barrel/l1/occupancy", 7, 2),
                        std::string("\x01\xff\xff\xff", 4))
                    .ok());
  }
  auto store = Open();
  EXPECT_TRUE(store->GetRecord("pixel/barrel/l1/occupancy", 7, 1).ok());
  EXPECT_EQ(store->GetRecord("pixel/barrel/l1/occupancy", 7, 2).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(store->GetRecord("pixel/barrel/l1/occupancy", 7, 4).status().code(),
            absl::StatusCode::kNotFound);
  std::vector<uint64_t> seen;
  const absl::Status scan =
      store->ForEachRecord("pixel/barrel/l1/occupancy", [&](const Record& rec) {
        seen.push_back(rec.histogram.lumisection);
        return true;
      });
  EXPECT_EQ(seen, (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ(scan.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(scan.message().find("1 stored histograms of 'pixel/barrel/l1/occupancy'"),
            std::string::npos)
      << scan;
}

// A monitor's meta record read back: what restore needs, and a clear error for a damaged one
// (a number that does not fit its field was converted with undefined behaviour before).
TEST(StoredMetaTest, ReadsBackWhatWasWrittenAndNamesWhatIsWrong) {
  VersionInfo v;
  v.version = 3;
  v.manifest = R"({"version": 3, "sample_count": 500, "reason": "drift",
                   "window": {"first_run": 7, "first_lumisection": 1, "last_run": 7,
                              "last_lumisection": 500}})";
  Config config;
  Metrics metrics;
  MonitorRegistry registry(config, metrics);
  Rejection why;
  auto m = registry.FindOrCreate("muon/dt/wheel0/occupancy_map", &why);
  ASSERT_TRUE(m);
  m->shape = {20, 30};
  m->trained_versions = 4;
  auto meta = ParseStoredMeta(MetaJson(*m, 3, {v}, 3));
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_EQ(meta->shape, (std::vector<uint32_t>{20, 30}));
  EXPECT_EQ(meta->active_version, 3u);
  EXPECT_EQ(meta->trained_versions, 4u);
  EXPECT_EQ(meta->anchor, 3u);
  ASSERT_EQ(meta->versions.size(), 1u);
  EXPECT_EQ(meta->versions[0].sample_count, 500u);
  EXPECT_EQ(meta->versions[0].last, (HistogramKey{7, 500}));
  EXPECT_FALSE(meta->vigilance.held_change);
  EXPECT_FALSE(meta->vigilance.accepting);

  // What a person decided about lasting changes comes back as it was.
  HeldChange held;
  held.block = {6, 9, 11, 14};
  held.shape = m->shape;
  held.low = true;
  held.share = 0.0125;
  held.extra_var = 2e-7;
  held.where = "bins x 7-9, y 12-14 low by 47%";
  m->held_change = held;
  m->change_rejected = true;
  meta = ParseStoredMeta(MetaJson(*m));
  ASSERT_TRUE(meta.ok()) << meta.status();
  ASSERT_TRUE(meta->vigilance.held_change);
  EXPECT_EQ(meta->vigilance.held_change->where, held.where);
  EXPECT_EQ(meta->vigilance.held_change->block.y1, 14u);
  EXPECT_TRUE(meta->vigilance.held_change->low);
  EXPECT_DOUBLE_EQ(meta->vigilance.held_change->share, 0.0125);
  EXPECT_TRUE(meta->vigilance.change_rejected);
  m->AcceptFrom({356001, 12}, 250);
  meta = ParseStoredMeta(MetaJson(*m));
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_TRUE(meta->vigilance.accepting);
  EXPECT_EQ(meta->vigilance.accepted_from, (HistogramKey{356001, 12}));
  EXPECT_EQ(meta->vigilance.accept_target, 250u);
  EXPECT_FALSE(meta->vigilance.held_change) << "accepting ends a hold";

  // A record written before anchors were kept reads with none (restore then anchors the active).
  meta = ParseStoredMeta(R"({"shape": [64], "active_version": 2, "versions": []})");
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_EQ(meta->anchor, 0u);

  for (const char* bad :
       {R"({"shape": [64], "versions": [{"version": 1, "created_unix_ms": 1.7e20}]})",
        R"({"shape": [-1]})", R"({"shape": [64], "active_version": 2.5})", R"({"versions": []})",
        "{\"shape\": [6",
        // a held block outside the binning
        R"({"shape": [64], "vigilance": {"held_change": {"block": [60, 70, 0, 1],
                              "low": true, "share": 0.1, "extra_var": 0, "where": "x"}}})"}) {
    const auto parsed = ParseStoredMeta(bad);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kDataLoss) << bad;
  }
}

// One monitor of `shape`, made as the daemon makes them.
struct OneMonitor {
  OneMonitor(const std::string& name, std::vector<uint32_t> shape) {
    Rejection why;
    m = registry.FindOrCreate(name, &why);
    if (m) m->shape = std::move(shape);
  }
  Config config;
  Metrics metrics;
  MonitorRegistry registry{config, metrics};
  std::shared_ptr<Monitor> m;
};

// Where the lasting evidence pointed since the anchor reads back with that anchor only (a record
// written as a new anchor is installed leaves it out); one outside the binning costs only itself.
TEST(StoredMetaTest, WhereTheLastingEvidencePointedReadsBackWithItsAnchor) {
  OneMonitor one("hcal/endcap/energy_spectrum", {100});
  const std::shared_ptr<Monitor>& m = one.m;
  ASSERT_TRUE(m);
  absl::MutexLock lk(&m->mu);
  m->anchor = 1;
  m->lasting_since_anchor = LastingBlock{{32, 40, 0, 1}, true};
  auto meta = ParseStoredMeta(MetaJson(*m, 2, {}, 1));
  ASSERT_TRUE(meta.ok()) << meta.status();
  ASSERT_TRUE(meta->vigilance.pointed_since_anchor) << meta->pointed_problem;
  EXPECT_EQ(meta->vigilance.pointed_since_anchor->block.x0, 32u);
  EXPECT_EQ(meta->vigilance.pointed_since_anchor->block.x1, 40u);
  EXPECT_TRUE(meta->vigilance.pointed_since_anchor->low);
  meta = ParseStoredMeta(MetaJson(*m, 3, {}, 3));
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_FALSE(meta->vigilance.pointed_since_anchor) << "it went with the anchor it belongs to";
  EXPECT_TRUE(meta->pointed_problem.empty());
  m->lasting_since_anchor = LastingBlock{{96, 104, 0, 1}, false};
  meta = ParseStoredMeta(MetaJson(*m, 2, {}, 1));
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_FALSE(meta->vigilance.pointed_since_anchor);
  EXPECT_NE(meta->pointed_problem.find("does not fit the monitor's binning"), std::string::npos)
      << meta->pointed_problem;
  EXPECT_EQ(meta->active_version, 2u);
}

// The axis nuisances' course comes back with the version it measured against; a damaged course
// costs only itself.
TEST(StoredMetaTest, TheAxisCourseReadsBackAndADamagedOneLeavesTheRest) {
  OneMonitor one("ecal/barrel/energy", {100});
  const std::shared_ptr<Monitor>& m = one.m;
  ASSERT_TRUE(m);
  auto ParsedCourse = [&] {
    auto meta = ParseStoredMeta(MetaJson(*m, 3, {}, 2));
    EXPECT_TRUE(meta.ok()) << meta.status();
    return meta.ok() ? meta->axis_course : std::nullopt;
  };
  EXPECT_FALSE(ParsedCourse()) << "no course before the first fit";

  auto reference = std::make_shared<models::Model>();
  reference->version = 2;
  m->axis_model = reference;
  std::mt19937_64 rng(4);
  std::normal_distribution<double> noise(0, 0.003);
  for (int i = 0; i < 250; ++i) {
    models::AxisFit fit;
    fit.valid = true;
    fit.gain = 1.02 + noise(rng);
    fit.shift_bins = 10 * noise(rng);
    fit.gain_error = 0.003;
    fit.shift_error = 0.03;
    m->axis_course.Add(fit);
  }
  const auto course = ParsedCourse();
  ASSERT_TRUE(course);
  EXPECT_EQ(course->reference_version, 2u);
  const models::AxisCourse::State saved = m->axis_course.Save();
  EXPECT_EQ(course->state.level, saved.level);
  EXPECT_EQ(course->state.cov, saved.cov);
  EXPECT_EQ(course->state.seen, 250u);
  EXPECT_EQ(course->state.recent, saved.recent);

  auto meta = ParseStoredMeta(
      R"({"shape": [100], "active_version": 3, "anchor_version": 2, "versions": [],
          "axis_course": {"reference_version": 2, "level": [1, 0], "cov": [-1, 0, 0],
                          "tilt": 0, "seen": 40, "recent": []}})");
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_FALSE(meta->axis_course);
  EXPECT_NE(meta->axis_course_problem.find("axis course"), std::string::npos);
  EXPECT_EQ(meta->active_version, 3u);
  EXPECT_EQ(meta->anchor, 2u);
}

// The lasting evidence is stored sparsely, as of a histogram; a damaged one costs only itself.
TEST(StoredMetaTest, TheLastingEvidenceReadsBackSparseAndADamagedOneLeavesTheRest) {
  const std::string head = R"({"shape": [64], "active_version": 2, "versions": [], "lasting": )";
  auto meta = ParseStoredMeta(
      head + R"({"model_version": 2, "as_of": [7, 130], "blocks": 40, "index": [3, 17],
                 "high": [0, 11.5], "low": [2.25, 0], "high_length": [0, 37],
                 "low_length": [4, 0], "flagged_streak": 37, "streak_bins": "bins 31-46"}})");
  ASSERT_TRUE(meta.ok()) << meta.status();
  ASSERT_TRUE(meta->lasting) << meta->lasting_problem;
  const StoredLasting& l = *meta->lasting;
  EXPECT_EQ(l.model_version, 2u);
  EXPECT_EQ(l.as_of, (HistogramKey{7, 130}));
  EXPECT_EQ(l.flagged_streak, 37u);
  EXPECT_EQ(l.streak_bins, "bins 31-46");
  ASSERT_EQ(l.sums.high.size(), 40u);
  ASSERT_EQ(l.sums.low_length.size(), 40u);
  EXPECT_EQ(l.sums.high[17], 11.5f);
  EXPECT_EQ(l.sums.high_length[17], 37u);
  EXPECT_EQ(l.sums.low[3], 2.25f);
  EXPECT_EQ(l.sums.low_length[3], 4u);
  EXPECT_EQ(l.sums.high[3] + l.sums.high[0] + l.sums.low[39], 0.0f);

  for (const std::string bad : {
           R"({"model_version": 2, "as_of": [7, 130], "blocks": 40, "index": [17, 3],
               "high": [1, 1], "low": [0, 0], "high_length": [1, 1], "low_length": [0, 0],
               "flagged_streak": 0, "streak_bins": ""})",
           R"({"model_version": 2, "as_of": [7, 130], "blocks": 10, "index": [17],
               "high": [1], "low": [0], "high_length": [1], "low_length": [0],
               "flagged_streak": 0, "streak_bins": ""})",
           R"({"model_version": 2, "as_of": [7, 130], "blocks": 40, "index": [3],
               "high": [1, 2], "low": [0], "high_length": [1], "low_length": [0],
               "flagged_streak": 0, "streak_bins": ""})",
           R"({"model_version": 2, "as_of": [7], "blocks": 40, "index": [],
               "high": [], "low": [], "high_length": [], "low_length": [],
               "flagged_streak": 0, "streak_bins": ""})",
           R"({"model_version": 2, "as_of": [7, 130], "blocks": 4000000000, "index": [],
               "high": [], "low": [], "high_length": [], "low_length": [],
               "flagged_streak": 0, "streak_bins": ""})",
           R"("lasting")"}) {
    meta = ParseStoredMeta(head + bad + "}");
    ASSERT_TRUE(meta.ok()) << meta.status() << bad;
    EXPECT_FALSE(meta->lasting) << bad;
    EXPECT_NE(meta->lasting_problem.find("lasting evidence not restored"), std::string::npos)
        << bad;
    EXPECT_EQ(meta->active_version, 2u);
    EXPECT_EQ(meta->shape, std::vector<uint32_t>{64});
  }
}

// A held candidate's record (its model is in its own file) reads back; a damaged one costs only
// itself.
TEST(StoredMetaTest, TheHeldCandidateReadsBackAndADamagedOneLeavesTheRest) {
  OneMonitor one("hcal/barrel/timing", {64});
  const std::shared_ptr<Monitor>& m = one.m;
  ASSERT_TRUE(m);
  auto c = std::make_shared<Candidate>();
  c->held_file = kHeldCandidates + 1234;
  c->change = "bins 61-64 low by 20%";
  c->change_from = {5, 230};
  c->nuisances = "gain 1.004, shift +0.010";
  c->info.sample_count = 480;
  c->info.train_loss = 0.97;
  c->info.holdout_loss = 1.02;
  c->info.reason = "scheduled";
  c->info.first = {5, 1};
  c->info.last = {5, 480};
  c->seconds = 0.5;
  m->pending = c;
  auto meta = ParseStoredMeta(MetaJson(*m, 2, {}, 1));
  ASSERT_TRUE(meta.ok()) << meta.status();
  ASSERT_TRUE(meta->held_candidate) << meta->held_candidate_problem;
  const Candidate& back = *meta->held_candidate;
  EXPECT_EQ(back.held_file, c->held_file);
  EXPECT_EQ(back.change, c->change);
  EXPECT_EQ(back.change_from, c->change_from);
  EXPECT_EQ(back.nuisances, c->nuisances);
  EXPECT_EQ(back.info.sample_count, 480u);
  EXPECT_EQ(back.info.holdout_loss, 1.02);
  EXPECT_EQ(back.info.last, c->info.last);
  EXPECT_EQ(back.shape, m->shape);
  // Not written to a file, or rejected: not recorded.
  c->held_file = 0;
  meta = ParseStoredMeta(MetaJson(*m, 2, {}, 1));
  ASSERT_TRUE(meta.ok());
  EXPECT_FALSE(meta->held_candidate);
  c->held_file = kHeldCandidates + 1234;
  m->change_rejected = true;
  meta = ParseStoredMeta(MetaJson(*m, 2, {}, 1));
  ASSERT_TRUE(meta.ok());
  EXPECT_FALSE(meta->held_candidate);

  meta = ParseStoredMeta(
      R"({"shape": [64], "active_version": 2, "versions": [],
          "held_candidate": {"file": 7, "change": "x", "change_from": [1, 2], "nuisances": "",
                             "sample_count": 1, "training_loss": 1, "holdout_loss": 1,
                             "reason": "r", "first": [1, 1], "last": [1, 2], "seconds": 1,
                             "drift": false}})");
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_FALSE(meta->held_candidate) << "a version's number is not a held candidate's";
  EXPECT_NE(meta->held_candidate_problem.find("held candidate not restored"), std::string::npos);
  EXPECT_EQ(meta->active_version, 2u);
}

std::vector<VersionInfo> Versions(std::initializer_list<uint64_t> numbers) {
  std::vector<VersionInfo> out;
  for (uint64_t n : numbers) {
    VersionInfo v;
    v.version = n;
    out.push_back(v);
  }
  return out;
}

std::vector<uint64_t> Numbers(const std::vector<VersionInfo>& versions) {
  std::vector<uint64_t> out;
  for (const auto& v : versions) out.push_back(v.version);
  return out;
}

TEST(PruneVersionsTest, TheAnchorIsNeverDroppedTheActiveOnlyWhenNothingElseCan) {
  // Five kept, a sixth installed: the oldest goes, unless it is the anchor.
  auto kept = Versions({1, 2, 3, 4, 5, 6});
  EXPECT_EQ(PruneVersions(kept, 5, 5, 1), (std::vector<uint64_t>{2}));
  EXPECT_EQ(Numbers(kept), (std::vector<uint64_t>{1, 3, 4, 5, 6}));
  // Many retrainings later the anchor is still there.
  for (uint64_t v = 7; v <= 40; ++v) {
    kept.push_back(Versions({v})[0]);
    PruneVersions(kept, 5, v - 1, 1);
  }
  EXPECT_EQ(Numbers(kept), (std::vector<uint64_t>{1, 37, 38, 39, 40}));

  // The version being replaced (active, after a rollback to an old one) stays while older ones
  // can go.
  kept = Versions({2, 3, 4, 5, 6, 7});
  EXPECT_EQ(PruneVersions(kept, 5, 2, 4), (std::vector<uint64_t>{3}));
  EXPECT_EQ(Numbers(kept), (std::vector<uint64_t>{2, 4, 5, 6, 7}));

  // Keeping one: the new one stays, and the anchor beside it; the replaced one goes.
  kept = Versions({3, 8, 9});
  EXPECT_EQ(PruneVersions(kept, 1, 8, 3), (std::vector<uint64_t>{8}));
  EXPECT_EQ(Numbers(kept), (std::vector<uint64_t>{3, 9}));
  // The new one is the anchor (approved): only it stays.
  kept = Versions({8, 9});
  EXPECT_EQ(PruneVersions(kept, 1, 8, 9), (std::vector<uint64_t>{8}));
  EXPECT_EQ(Numbers(kept), (std::vector<uint64_t>{9}));
  // Within the limit nothing goes.
  kept = Versions({1, 2});
  EXPECT_TRUE(PruneVersions(kept, 5, 1, 1).empty());
  EXPECT_EQ(kept.size(), 2u);
}

}  // namespace
}  // namespace histguard::server
