// Calibration: turns an anomaly score into a p-value, P(a normal histogram scores at least this).
//
// Fitted once on the scores of held-out normal histograms (never on the training sample, whose
// scores are optimistically low). Below the tail threshold the p-value is the empirical survival
// function; above it an exponential tail is fitted to the exceedances, so p-values far below
// 1/holdout are estimated rather than clipped. The tail scale is estimated from the median
// exceedance (robust to a few anomalies that slipped into the holdout).
//
// Immutable after Fit(); safe to share between threads.
#pragma once

#include <string>
#include <vector>

namespace histguard::models {

class Calibration {
 public:
  Calibration() = default;

  // `scores` are the holdout scores; `min_scale` floors the fitted tail scale (in score units) so
  // a degenerate holdout (all scores equal) does not make every small fluctuation significant.
  static Calibration Fit(std::vector<double> scores, double min_scale = 1e-9);

  // p-value in (0, 1]; 1 for an empty calibration.
  double PValue(double score) const;

  bool empty() const { return sorted_.empty(); }
  size_t size() const { return sorted_.size(); }
  double tail_threshold() const { return threshold_; }
  double tail_scale() const { return scale_; }
  const std::vector<double>& sorted_scores() const { return sorted_; }

  // Rebuilds from what sorted_scores()/tail_threshold()/tail_scale()/tail_p() returned.
  static Calibration FromParts(std::vector<double> sorted, double threshold, double scale,
                               double tail_p);
  double tail_p() const { return tail_p_; }

 private:
  std::vector<double> sorted_;  // ascending
  double threshold_ = 0;        // tail starts here
  double scale_ = 1;            // exponential scale of the exceedances
  double tail_p_ = 1;           // survival at the threshold
};

}  // namespace histguard::models
