// A 1D histogram's axis nuisances, fitted per lumisection: the gain (a scale of the axis), a
// shift of it and a smooth tilt, of a reference shape moved onto the observed counts. And their
// course over the lumisections: a gain that creeps is followed, one that jumps is flagged.
//
// The reference shape is moved, not resampled: its cumulative distribution is transformed,
//   M(u) = A exp(t (u - 1/2)) d/du C((u - s) / g),   u in [0, 1] across the axis,
// so counts move between bins as the detector's response moves them. Beyond the axis the
// reference goes on at its edge bins' density: what moves in from there resembles what was there.
// The fit is Poisson-weighted least squares (Gauss-Newton from where the course predicts), a few
// microseconds for 100 bins.
//
// Pure functions and a value type; not thread-safe (one course per monitor, under its lock).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "models/calibration.h"

namespace histguard::models {

// gain, shift (in units of the axis' length, about its low edge), tilt (linear, in log counts
// across the axis), quadratic tilt. A reference shape moved by them, normalised to 1: `cum` is
// the reference's cumulative distribution at the n + 1 bin edges (cum[0] = 0, cum[n] = 1).
// `extended`: the reference goes on beyond the axis as FitAxis takes it; else it is empty there.
using AxisParams = std::array<double, 4>;
void TransformShape(std::span<const double> cum, const AxisParams& p, std::vector<double>& out,
                    bool extended = false);
// The cumulative distribution of `shape` at its n + 1 edges, normalised to 1 (all 0 when empty).
std::vector<double> Cumulative(std::span<const double> shape);

// A lumisection's nuisances against the reference.
struct AxisFit {
  // Too few counts or no convergence: nothing fitted. As a fit's start: it is a previous fit's
  // result (the course's prediction), near enough for a single step.
  bool valid = false;
  double gain = 1;
  double shift_bins = 0;  // in bins, about the axis' origin (its low edge when it has none)
  double tilt = 0;        // log-slope of the counts across the whole axis
  // Statistical errors from the fit's curvature (0 for a nuisance not fitted).
  double gain_error = 0, shift_error = 0, tilt_error = 0;
};

// Reference shapes with fewer bins than this are not fitted: too few bins to tell a gain from a
// shift from a tilt.
inline constexpr size_t kMinAxisBins = 8;

// Which nuisances a fit frees; the others stay at no change (gain 1, shift 0, tilt 0).
enum AxisFree : unsigned { kFitGain = 1, kFitShift = 2, kFitTilt = 4 };

// Fits `counts` (n bins) with the reference `cum` (n + 1 edges). `axis_low` and `axis_high` are
// the axis' range when the producer gave one (the gain then scales about its 0); equal: none.
// `start`: gain, shift in units of the axis' length and tilt to start from.
AxisFit FitAxis(std::span<const double> cum, std::span<const double> counts, double axis_low,
                double axis_high, const AxisFit& start, unsigned free = kFitGain | kFitShift);

// The nuisances' course over the lumisections. Each follows its recent values (an exponentially
// weighted level, with steps clipped at kClip standard deviations, so a single anomalous
// lumisection moves it little), and a lumisection's departure from that level is measured in
// the spread of departures the monitor has seen: a creeping gain stays within it, a jump does
// not. Their joint departure (its squared Mahalanobis distance) is calibrated on the monitor's own
// recent ones (its last kRecent; a chi2 or an exponential tail beyond their top decile), as a
// model's statistics are on its holdout: a fit's departures are far from normal on real spectra (a
// gain and a shift that trade off, features that do not all move with the gain), and a normal
// assumption flagged 5-10x too often. Departures that are flagged stay out of it. Nothing is tested
// until kCalibrateFrom departures are collected.
class AxisCourse {
 public:
  struct Finding {
    bool tested = false;       // warm, and the lumisection's fit valid
    double p_value = 1;        // of the gain's and the shift's joint departure
    double gain_jump = 0;      // relative, from the level: +0.051 = "+5.1%"
    double shift_jump = 0;     // bins
    double gain = 1;           // this lumisection's
    bool gain_decides = true;  // the gain's departure is the larger, in standard deviations
  };
  Finding Add(const AxisFit& fit);
  void Clear();
  // Where the course expects the next lumisection (gain, shift in bins): to start its fit from.
  bool started() const { return seen_ > 0; }
  double gain() const { return level_[0]; }
  double shift_bins() const { return level_[1]; }
  double tilt() const { return tilt_; }

  // What the course has learned, to outlive a restart: Restore gives back a course that tests
  // the next lumisection as this one would have.
  struct State {
    std::array<double, 2> level{1, 0};   // gain, shift
    std::array<double, 3> cov{0, 0, 0};  // gain, both, shift
    double tilt = 0;
    uint32_t seen = 0;
    std::vector<float> recent;  // the departures it calibrates on, oldest first
  };
  State Save() const;
  // False, and the course unchanged, when `state` is not one that Save gives.
  bool Restore(const State& state);

  static constexpr double kFollow = 0.2;        // weight of a lumisection in the level
  static constexpr double kSpreadAfter = 0.02;  // weight of a departure in the spread, once warm
  static constexpr double kClip = 4;
  static constexpr uint32_t kWarmUp = 30;  // lumisections before departures are measured
  static constexpr size_t kRecent = 400, kCalibrateFrom = 100, kRefitEvery = 50;
  static constexpr double kKeepAbove = 1e-5;  // a departure this unlikely is not kept

 private:
  void Calibrate();  // on the recent departures

  std::array<double, 2> level_{1, 0};   // gain, shift
  std::array<double, 3> cov_{0, 0, 0};  // their departures' covariance: gain, both, shift
  double tilt_ = 0;
  uint32_t seen_ = 0;
  std::vector<float> recent_;  // the larger departure of each, a ring of kRecent
  size_t next_ = 0;
  uint32_t since_fit_ = 0;
  Calibration calibration_;
};

// "gain 1.021, shift +0.3 bins, tilt +0.01" (shift and tilt left out when not fitted).
std::string AxisText(const AxisFit& fit);

}  // namespace histguard::models
