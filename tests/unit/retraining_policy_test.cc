#include "server/retraining_policy.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>

#include "server/metrics.h"

namespace histguard::server {
namespace {

using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

class RetrainingPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.retrain_every = 500;
    config_.retrain_min_new = 50;
    config_.retrain_interval_seconds = 600;
    config_.drift_min_new = 20;
    config_.drift_threshold = 10;
    config_.drift_allowance = 1.2;
    config_.drift_window = 300;
    config_.min_train_samples = 100;
    Rejection why;
    m_ = registry_.FindOrCreate("ecal/barrel/timing", &why);
    ASSERT_TRUE(m_);
  }
  // Why the monitor is due `after` its last training.
  const char* Due(seconds after = seconds(0)) {
    absl::MutexLock lk(&m_->mu);
    return DueRetraining(*m_, config_, m_->last_trained + after);
  }

  // The monitor's fitted axis settles at `gain`.
  void MoveTheAxis(double gain) ABSL_EXCLUSIVE_LOCKS_REQUIRED(m_->mu) {
    for (int i = 0; i < 100; ++i) {
      models::AxisFit fit;
      fit.valid = true;
      fit.gain = gain;
      fit.gain_error = 0.003;
      fit.shift_error = 0.03;
      m_->axis_course.Add(fit);
    }
  }

  Config config_;
  Metrics metrics_;
  MonitorRegistry registry_{config_, metrics_};
  std::shared_ptr<Monitor> m_;
};

TEST_F(RetrainingPolicyTest, EachTriggerFiresOnItsOwnConditionAndNotBefore) {
  EXPECT_EQ(Due(seconds(3600)), nullptr) << "nothing new: no retraining, however long since";
  {
    absl::MutexLock lk(&m_->mu);
    m_->new_since_train = 499;
  }
  EXPECT_EQ(Due(), nullptr);
  EXPECT_STREQ(Due(seconds(600)), "interval");
  {
    absl::MutexLock lk(&m_->mu);
    m_->new_since_train = 500;
  }
  EXPECT_STREQ(Due(), "scheduled");
  {
    absl::MutexLock lk(&m_->mu);
    m_->new_since_train = 19;
    m_->drift_sum = 50;
    m_->drift_run = 19;
  }
  EXPECT_EQ(Due(), nullptr) << "the drift trigger waits for drift_min_new histograms";
  {
    absl::MutexLock lk(&m_->mu);
    m_->new_since_train = 20;
  }
  EXPECT_EQ(Due(), nullptr) << "and for its sum to have grown over as many verdicts";
  {
    absl::MutexLock lk(&m_->mu);
    m_->drift_run = 20;
  }
  EXPECT_STREQ(Due(), "drift");
  {
    absl::MutexLock lk(&m_->mu);
    m_->training = true;
  }
  EXPECT_EQ(Due(seconds(3600)), nullptr) << "one training at a time";
}

TEST_F(RetrainingPolicyTest, ADriftAfterAYoungModelIsCaughtAtHalfTheThreshold) {
  absl::MutexLock lk(&m_->mu);
  m_->new_since_train = 30;
  m_->drift_sum = 6;
  m_->drift_run = 5;
  EXPECT_EQ(DueRetraining(*m_, config_, m_->last_trained), nullptr);
  // While a drift goes on, the sum need not have stayed above 0 since the last model.
  m_->drifting = true;
  EXPECT_STREQ(DueRetraining(*m_, config_, m_->last_trained), "drift");
  // The model that a drift overtook within half its scheduled life leaves its successor drifting;
  // one that lived longer, or that no drift replaced, does not.
  EXPECT_TRUE(KeepsDrifting(true, 200, config_));
  EXPECT_FALSE(KeepsDrifting(true, 260, config_));
  EXPECT_FALSE(KeepsDrifting(false, 200, config_));
}

TEST_F(RetrainingPolicyTest, AHeldChangeIsNotLearnedByADriftRetraining) {
  absl::MutexLock lk(&m_->mu);
  m_->new_since_train = 100;
  m_->drift_sum = 50;
  m_->drift_run = 100;
  m_->held_change.emplace();
  EXPECT_EQ(DueRetraining(*m_, config_, m_->last_trained), nullptr);
  m_->new_since_train = 500;
  EXPECT_STREQ(DueRetraining(*m_, config_, m_->last_trained), "scheduled")
      << "only GOOD histograms enter the window while a change is held";
}

// Where the lasting evidence points, flagged or not, the block is checked against the anchor's
// data without waiting for a retraining; not while a change is held or a new normal is being
// accepted, nor once the axis moved from the anchor's.
TEST_F(RetrainingPolicyTest, ABlockTheLastingEvidencePointsAtIsCheckedAgainstTheAnchor) {
  absl::MutexLock lk(&m_->mu);
  m_->RestartTriggers(0);
  m_->new_since_train = Monitor::kCheckFrom;
  m_->lasting_since_anchor = LastingBlock{{32, 40, 0, 1}, true};
  EXPECT_EQ(DueRetraining(*m_, config_, m_->last_trained), nullptr) << "nothing pointed at";
  m_->suspected = true;
  EXPECT_EQ(DueRetraining(*m_, config_, m_->last_trained), nullptr) << "no anchor's data";
  m_->anchor_shape = std::make_shared<const ShapeStats>();
  EXPECT_STREQ(DueRetraining(*m_, config_, m_->last_trained), kSuspected);
  m_->new_since_train = Monitor::kCheckFrom - 1;
  EXPECT_EQ(DueRetraining(*m_, config_, m_->last_trained), nullptr) << "too few new histograms";
  m_->new_since_train = Monitor::kCheckFrom;
  m_->drift_sum = 50;
  m_->new_since_train = m_->drift_run = config_.drift_min_new;
  EXPECT_STREQ(DueRetraining(*m_, config_, m_->last_trained), kSuspected)
      << "checked before a drift retraining learns it";
  m_->lasting_block = m_->lasting_since_anchor;
  EXPECT_STREQ(DueRetraining(*m_, config_, m_->last_trained), kSuspected)
      << "a model that flagged a faint defect may flag it only now and then";
  m_->lasting_block.reset();
  m_->held_change.emplace();
  EXPECT_EQ(DueRetraining(*m_, config_, m_->last_trained), nullptr) << "a change is held";
  m_->held_change.reset();
  m_->accepting = true;
  EXPECT_STREQ(DueRetraining(*m_, config_, m_->last_trained), "drift") << "accepting";
  m_->accepting = false;
  // Where the axis moved from the anchor's, the anchor's data are not compared with.
  MoveTheAxis(1.06);
  ASSERT_FALSE(m_->AxisNearAnchor()) << m_->axis_course.gain();
  EXPECT_STREQ(DueRetraining(*m_, config_, m_->last_trained), "drift") << "the axis moved";
  m_->axis_course.Clear();
  EXPECT_STREQ(DueRetraining(*m_, config_, m_->last_trained), kSuspected);
  // A new model's evidence starts afresh.
  m_->RestartTriggers(0);
  EXPECT_FALSE(m_->suspected);
  EXPECT_EQ(m_->next_check_at, Monitor::kCheckFrom);
}

// A faint defect's own small p-values set off a drift retraining within 7 lumisections, before
// the lasting evidence leaned to its block: the drifting model that learned a little of it let it
// pass for 200. The drift waits for its sum to have grown over drift_min_new verdicts, and every
// retraining waits while the run the evidence leans to is too short to compare with the anchor.
TEST_F(RetrainingPolicyTest, RetrainingsWaitUntilWhatTheLastingEvidenceLeansToCanBeCompared) {
  absl::MutexLock lk(&m_->mu);
  m_->anchor_shape = std::make_shared<const ShapeStats>();
  for (int i = 1; i <= 30; ++i) m_->Scored({1, static_cast<uint32_t>(i)}, Quality::kGood);
  m_->new_since_train = 30;
  m_->drift_sum = 50;
  m_->drift_run = 30;
  ASSERT_STREQ(DueRetraining(*m_, config_, m_->last_trained), "drift");
  // The evidence leans to a block (p < 0.1) gathered over the last 5 lumisections.
  const LastingBlock block{{32, 40, 0, 1}, true};
  m_->FollowPointed(0.05, block, 5);
  EXPECT_EQ(m_->pointed_from, (HistogramKey{1, 26}));
  EXPECT_FALSE(m_->suspected) << "leaning, not pointing";
  EXPECT_EQ(DueRetraining(*m_, config_, m_->last_trained), nullptr);
  m_->new_since_train = config_.retrain_every;
  EXPECT_EQ(DueRetraining(*m_, config_, m_->last_trained), nullptr) << "nor a scheduled one";
  // It points (p < 0.01): checked against the anchor's data at once.
  m_->FollowPointed(0.005, block, 12);
  EXPECT_EQ(m_->pointed_from, (HistogramKey{1, 19}));
  EXPECT_TRUE(m_->suspected);
  EXPECT_STREQ(DueRetraining(*m_, config_, m_->last_trained), kSuspected);
  m_->suspected = false;
  EXPECT_EQ(DueRetraining(*m_, config_, m_->last_trained), nullptr);
  // Its run is long enough to compare: the retraining goes ahead (and compares it).
  m_->FollowPointed(0.005, block, Monitor::kComparedNewest);
  m_->suspected = false;
  EXPECT_STREQ(DueRetraining(*m_, config_, m_->last_trained), "scheduled");
  // A new run waits again, until the evidence no longer leans.
  m_->FollowPointed(0.05, block, 3);
  EXPECT_EQ(DueRetraining(*m_, config_, m_->last_trained), nullptr);
  m_->FollowPointed(0.5, block, 3);
  EXPECT_STREQ(DueRetraining(*m_, config_, m_->last_trained), "scheduled");
  // Nor while a drift is known to go on, or where the axis moved from the anchor's.
  m_->FollowPointed(0.05, block, 3);
  m_->drifting = true;
  EXPECT_STREQ(DueRetraining(*m_, config_, m_->last_trained), "scheduled");
  m_->drifting = false;
  EXPECT_EQ(DueRetraining(*m_, config_, m_->last_trained), nullptr);
  MoveTheAxis(1.06);
  EXPECT_STREQ(DueRetraining(*m_, config_, m_->last_trained), "scheduled");
}

TEST_F(RetrainingPolicyTest, AnAcceptedNewNormalRetrainsOnceEnoughOfItWasAdmitted) {
  ASSERT_EQ(AcceptTarget(config_), 150u) << "half the drift window, at least min_train_samples";
  absl::MutexLock lk(&m_->mu);
  m_->AcceptFrom({7, 1}, AcceptTarget(config_));
  m_->accepted_admitted = 149;
  EXPECT_EQ(DueRetraining(*m_, config_, m_->last_trained), nullptr);
  m_->accepted_admitted = 150;
  EXPECT_STREQ(DueRetraining(*m_, config_, m_->last_trained), "accepted");
  m_->accepted_in_training = 150;  // a training on all of it ran
  EXPECT_EQ(DueRetraining(*m_, config_, m_->last_trained), nullptr);
  config_.retraining = false;
  m_->accepted_in_training = 0;
  EXPECT_EQ(DueRetraining(*m_, config_, m_->last_trained), nullptr) << "retraining is off";
}

TEST(RetrainingPolicy, TheDriftSumGrowsOnSmallPValuesOnlyAndEachStepIsCapped) {
  Config config;
  config.drift_allowance = 1.2;
  EXPECT_EQ(DriftStep(0, 0.5, config), 0) << "-ln 0.5 is below the allowance";
  EXPECT_EQ(DriftStep(3, 1.0, config), 3 - 1.2);
  EXPECT_NEAR(DriftStep(0, 0.02, config), std::log(50.0) - 1.2, 1e-12);
  // A single very small p-value (an anomaly) adds no more than p = 0.01 does.
  EXPECT_NEAR(DriftStep(0, 1e-30, config), std::log(100.0) - 1.2, 0.01);
  EXPECT_EQ(DriftStep(0, 0, config), DriftStep(0, 1e-30, config));
}

TEST(RetrainingPolicy, ADriftTrainsOnTheNewestOfItsWindowAndLooksAheadOverItsLife) {
  Config config;
  config.drift_window = 3;
  config.drift_min_new = 20;
  config.retrain_every = 500;
  std::vector<HistogramKey> window{{1, 1}, {1, 2}, {1, 3}, {1, 4}, {1, 5}};
  auto all = window;
  TrimForDrift(all, false, config);
  EXPECT_EQ(all.size(), 5u);
  TrimForDrift(window, true, config);
  EXPECT_EQ(window, (std::vector<HistogramKey>{{1, 3}, {1, 4}, {1, 5}}));
  EXPECT_EQ(LatentHorizon(5, config), 20u);
  EXPECT_EQ(LatentHorizon(120, config), 120u);
  EXPECT_EQ(LatentHorizon(5000, config), 500u);
  config.retraining = false;
  EXPECT_EQ(LatentHorizon(120, config), 0u);
}

}  // namespace
}  // namespace histguard::server
