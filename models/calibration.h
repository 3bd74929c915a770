// Calibration: turns an anomaly score into a p-value, P(a normal histogram scores at least this).
//
// Fitted once on the scores of held-out normal histograms (never on the training sample, whose
// scores are optimistically low). Below the tail threshold the p-value is the empirical survival
// function; above it a tail is fitted, so p-values far below 1/holdout are estimated rather than
// clipped. Two tail shapes:
//   exponential:  P(S > s) = p_u exp(-(s - u) / scale), scale from the median exceedance (robust
//                 to a few anomalies that slipped into the holdout); right for a maximum over
//                 bins, and the safe choice for anything heavier-tailed than a sum;
//   scaled chi2:  P(S > s) = p_u Q(a, s/theta) / Q(a, u/theta), a gamma fitted to the moments of
//                 the whole holdout (outliers beyond 10 MADs left out). A deviance is a sum of
//                 many bins' terms and its tail is close to Gaussian: an exponential fitted to
//                 its top decile over-estimates p far out (10-50x at 1e-4).
//   Gumbel:       P(S > s) = p_u G(s) / G(u), G(s) = 1 - exp(-exp(-(s - mu)/beta)), fitted to the
//                 moments of the whole holdout like the chi2. The largest of many bins' terms is
//                 a maximum, and its distribution is close to a Gumbel's from the median on:
//                 from 125 held-out maxima the moments pin its scale down to ~10%, the top
//                 decile's 12 exceedances to ~35%.
// Fit(..., Tail::kChiSquare) fits both and keeps the one under which the holdout's exceedances
// are the more likely, so a tail heavier than chi2 (a model that misses part of the run-to-run
// variation) still gets the exponential. A Gumbel's tail is itself nearly exponential, so
// Fit(..., Tail::kGumbel) compares scales instead: where the exceedances decay more slowly than
// the moments say, the Gumbel takes their scale.
//
// Immutable after Fit(); safe to share between threads.
#pragma once

#include <cmath>
#include <string>
#include <vector>

namespace histguard::models {

class Calibration {
 public:
  enum class Tail { kExponential, kChiSquare, kGumbel };

  Calibration() = default;

  // `scores` are the holdout scores; `min_scale` floors the fitted tail scale (in score units) so
  // a degenerate holdout (all scores equal) does not make every small fluctuation significant.
  // kChiSquare or kGumbel lets that tail compete with the exponential one (see above).
  // `theory_scale` > 0 is an exponential tail's scale that the statistic's construction gives: the
  // tail takes it unless the exceedances decay more slowly beyond their noise (two standard
  // errors of a scale fitted to them), in which case it takes theirs.
  static Calibration Fit(std::vector<double> scores, double min_scale = 1e-9,
                         Tail tail = Tail::kExponential, double theory_scale = 0);

  // p-value in (0, 1]; 1 for an empty calibration.
  double PValue(double score) const;

  bool empty() const { return sorted_.empty(); }
  size_t size() const { return sorted_.size(); }
  double tail_threshold() const { return threshold_; }
  double tail_scale() const { return scale_; }
  const std::vector<double>& sorted_scores() const { return sorted_; }

  // The tail the fit kept.
  Tail tail() const { return kind_; }
  // Shape a of the scaled-chi2 tail (its scale theta is tail_scale()); 0 for the other tails.
  double tail_shape() const { return shape_; }
  // Location mu of the Gumbel tail (its scale beta is tail_scale()); NaN for the other tails.
  double tail_location() const { return kind_ == Tail::kGumbel ? location_ : std::nan(""); }

  // Rebuilds from what sorted_scores()/tail_threshold()/tail_scale()/tail_p()/tail_shape()/
  // tail_location() returned.
  static Calibration FromParts(std::vector<double> sorted, double threshold, double scale,
                               double tail_p, double shape = 0,
                               double gumbel_location = std::nan(""));
  double tail_p() const { return tail_p_; }

 private:
  std::vector<double> sorted_;  // ascending
  double threshold_ = 0;        // tail starts here
  Tail kind_ = Tail::kExponential;
  double scale_ = 1;            // exponential scale of the exceedances, gamma theta, Gumbel beta
  double tail_p_ = 1;           // survival at the threshold
  double shape_ = 0;            // gamma shape a
  double location_ = 0;         // Gumbel mu
  double log_q_threshold_ = 0;  // LogSurvival(threshold) for the fitted shapes

  // ln P(S > score) of the fitted shape, not yet conditioned on the threshold (the
  // exponential's is relative to the threshold).
  double LogSurvival(double score) const;
};

}  // namespace histguard::models
