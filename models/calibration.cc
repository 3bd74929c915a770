#include "models/calibration.h"

#include <algorithm>
#include <cmath>

namespace histguard::models {

Calibration Calibration::Fit(std::vector<double> scores, double min_scale) {
  Calibration c;
  std::erase_if(scores, [](double s) { return !std::isfinite(s); });
  if (scores.empty()) return c;
  std::sort(scores.begin(), scores.end());
  const size_t n = scores.size();
  // Exceedances used for the tail: the top decile, but at least 8 (or half of a small holdout).
  size_t k = std::max<size_t>(n / 10, std::min<size_t>(8, n / 2));
  k = std::max<size_t>(k, 1);
  k = std::min(k, n - 1 > 0 ? n - 1 : 1);
  const size_t ui = n > k ? n - k - 1 : 0;
  c.threshold_ = scores[ui];
  std::vector<double> excess;
  for (size_t i = ui + 1; i < n; ++i) excess.push_back(scores[i] - c.threshold_);
  double scale = 0;
  if (!excess.empty()) {
    std::nth_element(excess.begin(), excess.begin() + excess.size() / 2, excess.end());
    const double median = excess[excess.size() / 2];
    double mean = 0;
    for (double e : excess) mean += e;
    mean /= excess.size();
    // The median of exponential exceedances is scale * ln 2; the mean is the MLE. Take the
    // smaller of the two only when the mean is dragged up by an outlier (> 2x the median's).
    scale = median / std::log(2.0);
    if (mean < 2 * scale) scale = std::max(scale, mean);
    // A scale fitted on k exceedances is uncertain by ~1/sqrt(k), and an underestimate turns
    // into many-fold too small p-values far out in the tail: lean to the conservative side.
    scale *= 1.0 + 1.0 / std::sqrt(static_cast<double>(excess.size()));
  }
  const double rel_floor = 1e-3 * std::max(std::abs(c.threshold_), 1e-12);
  c.scale_ = std::max({scale, min_scale, rel_floor});
  c.tail_p_ = static_cast<double>(n - ui) / static_cast<double>(n + 1);
  c.sorted_ = std::move(scores);
  return c;
}

Calibration Calibration::FromParts(std::vector<double> sorted, double threshold, double scale,
                                   double tail_p) {
  Calibration c;
  c.sorted_ = std::move(sorted);
  c.threshold_ = threshold;
  c.scale_ = scale;
  c.tail_p_ = tail_p;
  return c;
}

double Calibration::PValue(double score) const {
  if (sorted_.empty()) return 1.0;
  if (std::isnan(score)) return 1.0;
  if (score > threshold_) {
    const double p = tail_p_ * std::exp(-(score - threshold_) / scale_);
    return std::max(p, 1e-300);
  }
  // Empirical survival with the +1 of a conservative estimate: (#{s_j >= score} + 1) / (n + 1).
  const auto it = std::lower_bound(sorted_.begin(), sorted_.end(), score);
  const double at_least = static_cast<double>(sorted_.end() - it);
  return std::min(1.0, (at_least + 1.0) / (static_cast<double>(sorted_.size()) + 1.0));
}

}  // namespace histguard::models
