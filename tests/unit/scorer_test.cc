// The scorer's decisions for one monitor, in-process: learning with the chi2 fallback, the first
// training, low statistics, changed binning and the monitor limit.
#include "server/scorer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <thread>

#include "simulation/detector_simulator.h"
#include "tests/unit/monitor_pipeline.h"

namespace histguard::server {
namespace {

class ScorerTest : public MonitorPipeline {};

TEST_F(ScorerTest, LearnsThenScoresWithAModel) {
  for (int i = 0; i < 10; ++i) {
    const auto v = Score(Make());
    EXPECT_EQ(v.quality(), v1::QUALITY_LEARNING);
    EXPECT_DOUBLE_EQ(v.p_value(), 1.0) << "no chi2 until 10 samples are collected";
    EXPECT_NE(v.detail().find("learning"), std::string::npos);
  }
  // From 10 samples on, the classical chi2 against the mean shape scores the learning phase.
  const auto normal = Score(Make());
  EXPECT_EQ(normal.quality(), v1::QUALITY_LEARNING);
  EXPECT_GT(normal.score(), 0.2);
  EXPECT_LT(normal.score(), 20);
  const auto hot = Score(Make(sim::Anomaly::kHotBin));
  EXPECT_GT(hot.score(), normal.score());
  EXPECT_LT(hot.p_value(), normal.p_value());
  EXPECT_EQ(hot.model_version(), 0u);

  while (ls_ < 45) Score(Make());
  ASSERT_TRUE(WaitForModel(1)) << "the first training did not finish";
  const auto v = Score(Make());
  EXPECT_EQ(v.model_version(), 1u);
  EXPECT_NE(v.quality(), v1::QUALITY_LEARNING);
  const auto bad = Score(Make(sim::Anomaly::kHotBin));
  EXPECT_EQ(bad.quality(), v1::QUALITY_BAD) << bad.p_value();
  EXPECT_EQ(bad.top_bins_size(), 5);
  EXPECT_EQ(bad.model_version(), 1u);
  // The monitor's own counters: learning verdicts are not counted, the BAD one is.
  const std::string text = metrics_->Render();
  const std::string series = "histguard_monitor_verdicts_total{monitor=\"" + spec_.name + "\",";
  EXPECT_NE(text.find(series + "quality=\"bad\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find(series + "quality=\"good\"} "), std::string::npos) << text;
}

// A block of a map's cells, each within its noise, that the regional statistic finds: the
// verdict says where it is and by how much, as ROOT numbers the cells.
TEST_F(ScorerTest, AFlaggedBlockOfCellsIsNamedInTheVerdict) {
  spec_ = {"test/occupancy_map", sim::Family::kOccupancy2D, {40, 40}};
  const double entries = 50.0 * 1600;
  while (ls_ < 45) Score(Make(sim::Anomaly::kNone, entries));
  ASSERT_TRUE(WaitForModel(1)) << "the first training did not finish";
  auto h = Make(sim::Anomaly::kNone, entries);
  // Cells (17..24, 17..24), near the map's centre, at 1.3x: each moves by a few sigma at most.
  for (uint32_t x = 16; x < 24; ++x)
    for (uint32_t y = 16; y < 24; ++y) {
      const int b = static_cast<int>(x * 40 + y);
      h.set_contents(b, std::round(h.contents(b) * 1.3));
    }
  const auto v = Score(h);
  std::printf("a block at 1.3x: %s, p %.2g\n", v.detail().c_str(), v.p_value());
  ASSERT_TRUE(v.quality() == v1::QUALITY_WARNING || v.quality() == v1::QUALITY_BAD)
      << v.p_value() << " " << v.detail();
  // "bins (17-24, 17-24) at 130% of their expectation": a box of the statistic's sizes inside.
  const size_t at = v.detail().find("bins (");
  ASSERT_NE(at, std::string::npos) << v.detail();
  int x0 = 0, x1 = 0, y0 = 0, y1 = 0, percent = 0;
  ASSERT_EQ(std::sscanf(v.detail().c_str() + at, "bins (%d-%d, %d-%d) at %d%%", &x0, &x1, &y0, &y1,
                        &percent),
            5)
      << v.detail();
  EXPECT_TRUE(x0 >= 17 && x1 <= 24 && y0 >= 17 && y1 <= 24) << v.detail();
  EXPECT_GE(percent, 115) << v.detail();
  EXPECT_LE(percent, 145) << v.detail();
}

// A block of cells a little high in every lumisection, within what one lumisection can show
// among the map's blocks: its evidence adds up until the monitor flags it, well within 20
// lumisections, and keeps it flagged, saying where, which way and for how long. The normal
// lumisections before it are not flagged for what they had in common.
TEST_F(ScorerTest, AFaintBlockThatLastsIsFlaggedAndSaysForHowLong) {
  spec_ = {"test/occupancy_map", sim::Family::kOccupancy2D, {40, 40}};
  // Enough held-out histograms (50) to know each block's usual deviation.
  config_.min_train_samples = 200;
  config_.window_size = 400;
  config_.history = 800;
  const double entries = 50.0 * 1600;
  while (ls_ < 205) Score(Make(sim::Anomaly::kNone, entries));
  ASSERT_TRUE(WaitForModel(1)) << "the first training did not finish";
  auto flagged = [](const v1::Verdict& v) {
    return v.quality() == v1::QUALITY_WARNING || v.quality() == v1::QUALITY_BAD;
  };
  int normals_flagged = 0;
  constexpr int kNormals = 300;
  for (int i = 0; i < kNormals; ++i)
    normals_flagged += flagged(Score(Make(sim::Anomaly::kNone, entries)));
  // Cells (21..24, 9..12) at 1.08x: about 2 sigma of the block's sum in each lumisection.
  auto faint = [&] {
    auto h = Make(sim::Anomaly::kNone, entries);
    for (uint32_t x = 20; x < 24; ++x)
      for (uint32_t y = 8; y < 12; ++y) {
        const int b = static_cast<int>(x * 40 + y);
        h.set_contents(b, std::round(h.contents(b) * 1.08));
      }
    return h;
  };
  int first = -1, flagged_after_first = 0;
  constexpr int kLasting = 60;
  const uint64_t block_from = ls_ + 1;
  v1::Verdict last;
  for (int i = 0; i < kLasting; ++i) {
    last = Score(faint());
    if (flagged(last)) {
      if (first < 0) first = i;
      ++flagged_after_first;
    }
  }
  std::printf(
      "normals flagged %d of %d; the faint block first flagged at its lumisection %d, "
      "flagged %d of %d from then on; last: %s\n",
      normals_flagged, kNormals, first + 1, flagged_after_first, kLasting - first,
      last.detail().c_str());
  EXPECT_LE(normals_flagged, 2);
  ASSERT_GE(first, 0) << "never flagged";
  EXPECT_LT(first, 20);
  EXPECT_GE(flagged_after_first, (kLasting - first) * 95 / 100);
  // "bins (21-24, 9-12) high for 58 lumisections (108% of their expectation in this one)"
  const size_t at = last.detail().find("bins (");
  ASSERT_NE(at, std::string::npos) << last.detail();
  int x0 = 0, x1 = 0, y0 = 0, y1 = 0, length = 0;
  char way[8] = {};
  ASSERT_EQ(std::sscanf(last.detail().c_str() + at, "bins (%d-%d, %d-%d) %7s for %d lumisections",
                        &x0, &x1, &y0, &y1, way, &length),
            6)
      << last.detail();
  // Blocks of 2x2 and 4x4 at half steps: the block found overlaps the raised cells.
  EXPECT_TRUE(x1 >= 21 && x0 <= 24 && y1 >= 9 && y0 <= 12) << last.detail();
  EXPECT_STREQ(way, "high");
  EXPECT_GE(length, kLasting - 20) << last.detail();
  EXPECT_LE(length, kLasting + 5) << last.detail();
  // The lumisections it was in, judged GOOD before it was flagged, left the training window when
  // it was: they are not learned as normal. (The normal ones before it stay.)
  const auto m = registry_->Find(spec_.name);
  ASSERT_NE(m, nullptr);
  absl::MutexLock lk(&m->mu);
  int in_window = 0;
  for (uint64_t ls = block_from; ls < block_from + first; ++ls) in_window += m->InWindow({0, ls});
  EXPECT_EQ(in_window, 0) << "of the " << first << " lumisections before the block was flagged";
  EXPECT_TRUE(m->InWindow({0, block_from - 2 * kLasting - 5}));
}

TEST_F(ScorerTest, LowStatisticsIsNotScored) {
  const auto v = Score(Make(sim::Anomaly::kNone, 30));
  EXPECT_EQ(v.quality(), v1::QUALITY_LOW_STATISTICS);
  EXPECT_NE(v.detail().find("below min_entries 100"), std::string::npos) << v.detail();
}

TEST_F(ScorerTest, ChangedBinningIsRejectedAndCounted) {
  Score(Make());
  auto h = Make();
  h.set_shape(0, h.shape(0) + 1);
  h.add_contents(1);
  const auto v = Score(h);
  EXPECT_EQ(v.quality(), v1::QUALITY_REJECTED);
  EXPECT_NE(v.detail().find("differs from"), std::string::npos) << v.detail();
  EXPECT_NE(
      metrics_->Render().find("histguard_histograms_rejected_total{reason=\"binning_changed\"} 1"),
      std::string::npos);
}

TEST_F(ScorerTest, MonitorsBeyondTheLimitAreRejected) {
  for (int i = 0; i < 3; ++i)
    EXPECT_NE(Score(Make(sim::Anomaly::kNone, 1e4, "m" + std::to_string(i))).quality(),
              v1::QUALITY_REJECTED);
  const auto v = Score(Make(sim::Anomaly::kNone, 1e4, "one/too/many"));
  EXPECT_EQ(v.quality(), v1::QUALITY_REJECTED);
  EXPECT_NE(v.detail().find("max_monitors"), std::string::npos);
  // Known monitors still work.
  EXPECT_NE(Score(Make(sim::Anomaly::kNone, 1e4, "m1")).quality(), v1::QUALITY_REJECTED);
  EXPECT_EQ(registry_->size(), 3u);
}

TEST(SortedKeys, KeepsRunLumisectionOrderWhateverTheArrivalOrder) {
  SortedKeys keys;
  EXPECT_TRUE(keys.Insert({2, 5}));
  EXPECT_TRUE(keys.Insert({2, 7}));
  EXPECT_TRUE(keys.Insert({1, 9}));  // an older run replayed late
  EXPECT_TRUE(keys.Insert({2, 6}));
  EXPECT_FALSE(keys.Insert({2, 6})) << "a repeat is held once";
  EXPECT_EQ(keys.size(), 4u);
  EXPECT_TRUE(keys.Contains({1, 9}));
  EXPECT_FALSE(keys.Contains({1, 8}));
  EXPECT_EQ(keys.PopOldest(), (HistogramKey{1, 9}));
  EXPECT_TRUE(keys.Erase({2, 6}));
  EXPECT_FALSE(keys.Erase({2, 6}));
  EXPECT_EQ(std::vector<HistogramKey>(keys.begin(), keys.end()),
            (std::vector<HistogramKey>{{2, 5}, {2, 7}}));
}

// A monitor of its own registry.
class MonitorTest : public ::testing::Test {
 protected:
  Config config_;
  Metrics metrics_;
  MonitorRegistry registry_{config_, metrics_};
  Rejection why_;
  std::shared_ptr<Monitor> m_ = registry_.FindOrCreate("w", &why_);
};

TEST_F(MonitorTest, WindowDropsItsOldestAndNamesWhatIsNoLongerStored) {
  absl::MutexLock lk(&m_->mu);
  m_->records.Insert({1, 2});  // still a kept record: stays in the store
  EXPECT_TRUE(m_->Admit({1, 1}, {}, 2).empty());
  EXPECT_TRUE(m_->Admit({1, 2}, {}, 2).empty());
  EXPECT_EQ(m_->Admit({1, 3}, {}, 2), (std::vector<HistogramKey>{{1, 1}}));
  EXPECT_TRUE(m_->Admit({1, 4}, {}, 2).empty()) << "{1, 2} left the window but is a record";
  EXPECT_FALSE(m_->InWindow({1, 2}));
  EXPECT_TRUE(m_->InWindow({1, 4}));
}

// Whoever admits a histogram (scoring, a GOOD label, a restore), the same things follow: it
// counts towards the next training once, towards an accepted new normal from its start on, and
// while learning into the mean shape the classical test compares with.
TEST_F(MonitorTest, AnAdmittedHistogramCountsOnceTowardsTrainingAndTheMeanShape) {
  absl::MutexLock lk(&m_->mu);
  const std::vector<double> a{30, 10, 0, 0}, b{0, 0, 5, 15};
  m_->Admit({1, 1}, a, 10);
  m_->Admit({1, 1}, a, 10);  // sent again: in the window once
  m_->Admit({1, 2}, b, 10);
  m_->Admit({1, 3}, std::vector<double>(4, 0.0), 10);  // empty: no shape to add
  EXPECT_EQ(m_->new_since_train, 3u);
  EXPECT_EQ(m_->shape_sum, (std::vector<double>{0.75, 0.25, 0.25, 0.75}));
  m_->Admit({1, 4}, a, 10, /*counted=*/false);
  EXPECT_EQ(m_->new_since_train, 3u) << "one the model trained on already";

  m_->model = std::make_shared<const models::Model>();
  m_->AcceptFrom({2, 1}, 100);
  m_->Admit({1, 9}, a, 10);
  m_->Admit({2, 1}, a, 10);
  m_->Admit({2, 2}, b, 10);
  EXPECT_EQ(m_->accepted_admitted, 2u) << "only from the accepted lumisection on";
  EXPECT_EQ(m_->new_since_train, 6u);
  EXPECT_EQ(m_->shape_sum[0], 0.75 + 0.75) << "the mean shape is for learning only";
}

}  // namespace
}  // namespace histguard::server
