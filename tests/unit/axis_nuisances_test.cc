// The axis nuisances of 1D histograms: a fit that recovers the detector's gain from one
// lumisection, and a course that follows a slow drift of it but flags a jump.
#include "models/axis_nuisances.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "models/model.h"
#include "simulation/detector_simulator.h"

namespace histguard {
namespace {

using models::AxisCourse;
using models::AxisFit;
using sim::Anomaly;
using sim::Family;

sim::MonitorSpec Spec(Family family, double gain = 1) {
  sim::MonitorSpec spec;
  spec.name = "ecal/barrel/spectrum";
  spec.family = family;
  spec.shape = {100};
  spec.gain = gain;
  return spec;
}

// The reference a model keeps: the cumulative distribution of the mean shape of normal histograms.
std::vector<double> Reference(Family family, std::mt19937_64& rng) {
  std::vector<double> mean(100, 0.0);
  for (int i = 0; i < 50; ++i) {
    const auto s = sim::Draw(Spec(family), 1e4, Anomaly::kNone, 0, rng);
    double total = 0;
    for (double c : s.contents) total += c;
    for (size_t b = 0; b < mean.size(); ++b) mean[b] += s.contents[b] / total;
  }
  return models::Cumulative(mean);
}

// Poisson counts of `entries` from the reference moved by a gain (about the axis' low edge).
std::vector<double> Moved(const std::vector<double>& ref, double gain, double entries,
                          std::mt19937_64& rng) {
  std::vector<double> shape;
  models::TransformShape(ref, {gain, 0, 0, 0}, shape, true);
  for (double& c : shape) c = std::poisson_distribution<long>(entries * c)(rng);
  return shape;
}

TEST(AxisNuisances, TheFitRecoversTheGainOfOneLumisectionWithAnHonestError) {
  std::mt19937_64 rng(11);
  for (Family family : {Family::kFallingSpectrum, Family::kPeakOnBackground, Family::kTiming}) {
    const std::vector<double> ref = Reference(family, rng);
    for (double gain : {0.9, 1.0, 1.05, 1.2}) {
      double sum = 0, sum_pull2 = 0;
      const int n = 200;
      for (int i = 0; i < n; ++i) {
        // Started where a course would be, a lumisection's worth of drift away.
        AxisFit start;
        start.gain = gain * 0.999;
        const AxisFit fit = models::FitAxis(ref, Moved(ref, gain, 1e4, rng), 0, 0, start);
        ASSERT_TRUE(fit.valid) << sim::Name(family) << " gain " << gain;
        sum += fit.gain;
        sum_pull2 += std::pow((fit.gain - gain) / fit.gain_error, 2);
      }
      EXPECT_NEAR(sum / n, gain, 0.002 * gain) << sim::Name(family);
      // The error it gives is the lumisection-to-lumisection spread of Poisson counts.
      const double pull_rms = std::sqrt(sum_pull2 / n);
      EXPECT_GT(pull_rms, 0.75) << sim::Name(family) << " gain " << gain;
      EXPECT_LT(pull_rms, 1.35) << sim::Name(family) << " gain " << gain;
    }
  }
}

TEST(AxisNuisances, ATiltIsRecoveredWithAnHonestErrorWhenAskedFor) {
  // A luminosity-dependent slope across the axis, fitted along with the gain and the shift.
  std::mt19937_64 rng(13);
  for (Family family : {Family::kFallingSpectrum, Family::kPeakOnBackground}) {
    const std::vector<double> ref = Reference(family, rng);
    for (double tilt : {0.0, 0.3}) {
      double sum = 0, sum_error = 0, sum_pull2 = 0;
      const int n = 200;
      for (int i = 0; i < n; ++i) {
        std::vector<double> counts;
        models::TransformShape(ref, {1, 0, tilt, 0}, counts, true);
        for (double& c : counts) c = std::poisson_distribution<long>(1e4 * c)(rng);
        AxisFit start;
        start.valid = true;
        start.tilt = tilt;
        const AxisFit fit = models::FitAxis(
            ref, counts, 0, 0, start, models::kFitGain | models::kFitShift | models::kFitTilt);
        ASSERT_TRUE(fit.valid) << sim::Name(family) << " tilt " << tilt;
        ASSERT_GT(fit.tilt_error, 0) << sim::Name(family);
        sum += fit.tilt;
        sum_error += fit.tilt_error;
        sum_pull2 += std::pow((fit.tilt - tilt) / fit.tilt_error, 2);
      }
      // On a falling spectrum the tilt is nearly degenerate with the gain: what bias there is
      // stays well inside one lumisection's error.
      EXPECT_NEAR(sum / n, tilt, 0.5 * sum_error / n) << sim::Name(family) << " tilt " << tilt;
      const double pull_rms = std::sqrt(sum_pull2 / n);
      EXPECT_GT(pull_rms, 0.75) << sim::Name(family) << " tilt " << tilt;
      EXPECT_LT(pull_rms, 1.35) << sim::Name(family) << " tilt " << tilt;
    }
  }
  // Not asked for: not fitted, and no error to report.
  const std::vector<double> ref = Reference(Family::kTiming, rng);
  const AxisFit fit = models::FitAxis(ref, Moved(ref, 1, 1e4, rng), 0, 0, {});
  ASSERT_TRUE(fit.valid);
  EXPECT_EQ(fit.tilt, 0);
  EXPECT_EQ(fit.tilt_error, 0);
}

TEST(AxisNuisances, TheGainOfASpectrumFromTheSimulatedDetectorIsRecovered) {
  // Its x axis scaled by the gain, its shape varying from lumisection to lumisection besides.
  std::mt19937_64 rng(12);
  const std::vector<double> ref = Reference(Family::kFallingSpectrum, rng);
  for (double gain : {0.95, 1.1, 1.3}) {
    double sum = 0;
    const int n = 100;
    for (int i = 0; i < n; ++i) {
      const auto s = sim::Draw(Spec(Family::kFallingSpectrum, gain), 1e4, Anomaly::kNone, 0, rng);
      AxisFit start;
      start.gain = gain;
      sum += models::FitAxis(ref, s.contents, 0, 0, start).gain;
    }
    EXPECT_NEAR(sum / n, gain, 0.015 * gain);
  }
}

TEST(AxisNuisances, AMapOrTooFewCountsIsNotFitted) {
  std::mt19937_64 rng(3);
  const std::vector<double> ref = Reference(Family::kPeakOnBackground, rng);
  const auto s = sim::Draw(Spec(Family::kPeakOnBackground), 20, Anomaly::kNone, 0, rng);
  EXPECT_FALSE(models::FitAxis(ref, s.contents, 0, 0, {}).valid);
  const std::vector<double> wrong(50, 1.0);
  const auto full = sim::Draw(Spec(Family::kPeakOnBackground), 1e4, Anomaly::kNone, 0, rng);
  EXPECT_FALSE(models::FitAxis(ref, wrong, 0, 0, {}).valid);
  EXPECT_FALSE(models::FitAxis(std::vector<double>(101, 0.0), full.contents, 0, 0, {}).valid);
}

TEST(AxisNuisances, TheGainScalesAboutTheAxisZero) {
  // An axis from 100 to 200: a gain about 0 moves the peak by gain x position, which in this
  // axis' own frame is also a shift. The fit reports the gain and no shift about 0.
  std::mt19937_64 rng(5);
  const std::vector<double> ref = Reference(Family::kPeakOnBackground, rng);
  std::vector<double> shape(100);
  for (size_t i = 0; i < 100; ++i) shape[i] = 1e5 * (ref[i + 1] - ref[i]);
  // Move it as a gain of 1.01 about x = 0 on [100, 200]: x' = 1.01 x.
  std::vector<double> moved;
  const double g = 1.01, low = 100, width = 100;
  const double s = (g * low - low) / width;  // the low edge's move, in axis lengths
  models::TransformShape(ref, {g, s, 0, 0}, moved, true);
  for (double& c : moved) c *= 1e5;
  const AxisFit fit = models::FitAxis(ref, moved, low, low + width, {});
  ASSERT_TRUE(fit.valid);
  EXPECT_NEAR(fit.gain, 1.01, 1e-3);
  EXPECT_NEAR(fit.shift_bins, 0, 0.05);
  const AxisFit about_edge = models::FitAxis(ref, moved, 0, 0, {});
  EXPECT_NEAR(about_edge.shift_bins, 100 * s, 0.1);  // without an axis: about its low edge
}

struct CourseRun {
  int flagged = 0, normals = 0;
  int first_jump_flag = -1;  // lumisections after the jump until its first flag
  int followed_after = -1;   // lumisections after the jump until it is no longer flagged
};

// What flags a verdict: the jump's share of the false alarms at warning_p = 1e-3.
constexpr double kFlagP = models::kJumpShare * 1e-3;
constexpr int kJumpAt = 1800;

// 2000 lumisections of the simulated detector, its gain drifting by 30% over the first 1500,
// optionally with a sudden `jump` (relative) from lumisection kJumpAt on, and a restart before
// lumisection `restart_at` (the course saved, and restored in a new one).
CourseRun RunCourse(Family family, double jump, uint64_t seed, double flag_p = 1e-3,
                    int restart_at = -1) {
  std::mt19937_64 rng(seed);
  const std::vector<double> ref = Reference(family, rng);
  AxisCourse course;
  CourseRun out;
  for (int ls = 0; ls < 2000; ++ls) {
    if (ls == restart_at) {
      AxisCourse restored;
      EXPECT_TRUE(restored.Restore(course.Save()));
      course = restored;
    }
    double gain = 1 + 0.3 * std::min(ls, 1500) / 1500.0;
    if (jump != 0 && ls >= kJumpAt) gain *= 1 + jump;
    const auto s = sim::Draw(Spec(family, gain), 1e4, Anomaly::kNone, 0, rng);
    AxisFit start;
    if (course.started()) {
      start.valid = true;  // as the daemon does: a single step from the course
      start.gain = course.gain();
      start.shift_bins = course.shift_bins();
    }
    const AxisCourse::Finding f = course.Add(models::FitAxis(ref, s.contents, 0, 0, start));
    const bool flag = f.tested && f.p_value < flag_p;
    if (jump == 0 || ls < kJumpAt) {
      out.normals += f.tested;
      out.flagged += flag;
    } else if (flag && out.first_jump_flag < 0) {
      out.first_jump_flag = ls - kJumpAt;
    } else if (!flag && out.first_jump_flag >= 0 && out.followed_after < 0) {
      out.followed_after = ls - kJumpAt;
    }
  }
  return out;
}

TEST(AxisNuisances, TheCourseFollowsASlowDriftWithinTheFalseAlarmRate) {
  int flagged = 0, normals = 0;
  for (Family family : {Family::kFallingSpectrum, Family::kPeakOnBackground, Family::kTiming}) {
    const CourseRun r = RunCourse(family, 0, 21);
    flagged += r.flagged;
    normals += r.normals;
  }
  ASSERT_GT(normals, 5000);
  // p < 1e-3 on at most twice that share of the normal lumisections.
  EXPECT_LE(flagged, 2e-3 * normals) << flagged << " of " << normals;
}

TEST(AxisNuisances, AJumpOfTheGainIsFlaggedAtOnceThenFollowed) {
  // A 5% jump of where the peaks are, as after an HV trip: beyond the simulated detector's own
  // lumisection-to-lumisection jitter of them (2% is within it).
  for (Family family : {Family::kPeakOnBackground, Family::kTiming}) {
    const CourseRun r = RunCourse(family, 0.05, 33, kFlagP);
    EXPECT_EQ(r.first_jump_flag, 0) << sim::Name(family);
    // A gain that stays where it jumped to is the new course after a while.
    EXPECT_GT(r.followed_after, 0) << sim::Name(family);
    EXPECT_LT(r.followed_after, 60) << sim::Name(family);
  }
}

TEST(AxisNuisances, ACourseRestoredAfterARestartFlagsAJumpAtOnce) {
  // Restored just before the jump: no new warm-up, the jump is tested and flagged at once.
  const CourseRun r = RunCourse(Family::kPeakOnBackground, 0.05, 33, kFlagP, kJumpAt);
  EXPECT_EQ(r.first_jump_flag, 0);
  // And it follows the drift before it as the course that never stopped does.
  const CourseRun steady = RunCourse(Family::kPeakOnBackground, 0, 21, 1e-3, 700);
  EXPECT_LE(steady.flagged, 2e-3 * steady.normals) << steady.flagged << " of " << steady.normals;
}

TEST(AxisNuisances, ACourseSavesWhatItLearnedAndRefusesADamagedState) {
  std::mt19937_64 rng(5);
  const std::vector<double> ref = Reference(Family::kTiming, rng);
  AxisCourse course;
  for (int ls = 0; ls < 500; ++ls)
    course.Add(models::FitAxis(ref, Moved(ref, 1.01, 1e4, rng), 0, 0, {}));
  const AxisCourse::State saved = course.Save();
  EXPECT_EQ(saved.seen, 500u);
  EXPECT_EQ(saved.recent.size(), AxisCourse::kRecent) << "a full ring";
  AxisCourse restored;
  ASSERT_TRUE(restored.Restore(saved));
  EXPECT_EQ(restored.gain(), course.gain());
  EXPECT_EQ(restored.shift_bins(), course.shift_bins());
  // The same departures follow, oldest first: the ring goes on where it was.
  for (int ls = 0; ls < 30; ++ls) {
    const AxisFit fit = models::FitAxis(ref, Moved(ref, 1.01, 1e4, rng), 0, 0, {});
    course.Add(fit);
    restored.Add(fit);
  }
  EXPECT_EQ(restored.Save().recent, course.Save().recent);
  EXPECT_EQ(restored.Save().cov, course.Save().cov);

  for (auto damage : std::vector<void (*)(AxisCourse::State&)>{
           [](AxisCourse::State& s) { s.level[0] = std::nan(""); },
           [](AxisCourse::State& s) { s.cov[2] = -1; },
           [](AxisCourse::State& s) { s.recent.resize(AxisCourse::kRecent + 1, 1.0f); },
           [](AxisCourse::State& s) { s.recent[3] = -INFINITY; },
           [](AxisCourse::State& s) { s.seen = 2; }}) {
    AxisCourse::State bad = saved;
    damage(bad);
    AxisCourse untouched = restored;
    EXPECT_FALSE(untouched.Restore(bad));
    EXPECT_EQ(untouched.Save().recent, restored.Save().recent);
    EXPECT_EQ(untouched.gain(), restored.gain());
  }
}

TEST(AxisNuisances, AFitDoesNotLeanTowardWhereItStarts) {
  // The same lumisections fitted from the gain a course expects and from 6% away (where it
  // stood before a jump): the fits agree to a small part of one lumisection's error, so a jump's
  // departure from the course is not made smaller by the course itself. A fit that stopped at
  // steps of half an error leaned half an error toward its start here (0.0038 at gain 1, errors
  // 0.0077); stopped at a tenth, it leans 0.15-0.25 of one, which fitting to the last digit does
  // not lower: the deviance has shallow local minima where the moved bin edges cross the
  // interpolated reference's.
  std::mt19937_64 rng(12);
  const std::vector<double> ref = Reference(Family::kFallingSpectrum, rng);
  for (double gain : {1.0, 1.06}) {
    double lean = 0, error = 0;
    const int n = 200;
    for (int i = 0; i < n; ++i) {
      const auto s = sim::Draw(Spec(Family::kFallingSpectrum, gain), 1e4, Anomaly::kNone, 0, rng);
      AxisFit low, high;
      low.valid = high.valid = true;
      low.gain = 1.0;
      high.gain = 1.06;
      const AxisFit from_low = models::FitAxis(ref, s.contents, 0, 0, low);
      const AxisFit from_high = models::FitAxis(ref, s.contents, 0, 0, high);
      ASSERT_TRUE(from_low.valid && from_high.valid);
      lean += (from_high.gain - from_low.gain) / n;
      error += from_low.gain_error / n;
    }
    std::printf(
        "gain %.2f: fitted from 1.06 minus from 1.00: %+.4f (one lumisection's error %.4f)\n", gain,
        lean, error);
    EXPECT_LT(std::fabs(lean), 0.3 * error) << "gain " << gain;
  }
}

}  // namespace
}  // namespace histguard
