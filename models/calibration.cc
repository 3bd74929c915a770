#include "models/calibration.h"

#include <algorithm>
#include <cmath>

#include "models/stats.h"

namespace histguard::models {
namespace {

// Mean and variance of the scores, leaving out outliers beyond 10 MADs of the median (anomalies
// that slipped into the holdout). The variance is widened by its own standard error,
// 1 + sqrt(2/n): a light tail's p-values far out move many-fold with a few percent of width, so
// lean to the conservative side. ok == false when there is nothing to fit.
struct Moments {
  bool ok = false;
  double mean = 0, var = 0;
  double outlier_above = 0;  // scores above this were left out
};

Moments FitMoments(const std::vector<double>& scores) {
  const double med = Median(scores);
  std::vector<double> dev;
  dev.reserve(scores.size());
  for (double s : scores) dev.push_back(std::abs(s - med));
  const double mad = Median(dev);
  const double cut = mad > 0 ? med + 10 * mad : HUGE_VAL;
  double sum = 0, sum2 = 0;
  size_t n = 0;
  for (double s : scores) {
    if (s > cut) continue;
    sum += s;
    sum2 += s * s;
    ++n;
  }
  if (n < 8) return {};
  const double mean = sum / n;
  const double var = (sum2 - n * mean * mean) / (n - 1) * (1 + std::sqrt(2.0 / n));
  if (!(var > 0)) return {};
  return {true, mean, var, cut};
}

// Euler-Mascheroni constant: the mean of a standard Gumbel.
constexpr double kEulerGamma = 0.5772156649015329;

// ln P(S > s) of a Gumbel (location mu, scale beta), accurate far into the tail.
double LogGumbelQ(double mu, double beta, double s) {
  const double z = (s - mu) / beta;
  if (z > 700) return -z;
  return std::log(-std::expm1(-std::exp(-z)));
}

}  // namespace

Calibration Calibration::Fit(std::vector<double> scores, double min_scale, Tail tail,
                             double theory_scale) {
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
  double scale = 0, fitted_scale = 0;
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
    fitted_scale = scale;
    // A scale fitted on k exceedances is uncertain by ~1/sqrt(k), and an underestimate turns
    // into many-fold too small p-values far out in the tail: lean to the conservative side.
    scale *= 1.0 + 1.0 / std::sqrt(static_cast<double>(excess.size()));
  }
  const double rel_floor = 1e-3 * std::max(std::abs(c.threshold_), 1e-12);
  // The theory's scale holds unless the exceedances' is wider by two of its standard errors
  // (a median-based scale of k exponential exceedances: 1.44 / sqrt(k) relative).
  if (theory_scale > 0 && tail == Tail::kExponential && !excess.empty() &&
      fitted_scale <= theory_scale * (1 + 2.9 / std::sqrt(static_cast<double>(excess.size()))))
    scale = theory_scale;
  c.scale_ = std::max({scale, min_scale, rel_floor});
  c.tail_p_ = static_cast<double>(n - ui) / static_cast<double>(n + 1);
  if (tail != Tail::kExponential && excess.size() >= 4 && fitted_scale > 0) {
    const Moments m = FitMoments(scores);
    Calibration f = c;
    f.kind_ = tail;
    if (m.ok && tail == Tail::kChiSquare && m.mean > 0 && c.threshold_ > 0) {
      f.shape_ = m.mean * m.mean / m.var;
      f.scale_ = m.var / m.mean;
    } else if (m.ok && tail == Tail::kGumbel) {
      f.scale_ = std::sqrt(6 * m.var) / M_PI;
      f.location_ = m.mean - kEulerGamma * f.scale_;
    } else {
      f.kind_ = Tail::kExponential;
    }
    bool keep = false;
    if (f.kind_ == Tail::kChiSquare) {
      // Keep the chi2 when the exceedances are at least as likely under it as under the
      // exponential fitted to them. The outliers the moments left out enter both as censored: a
      // holdout with a few far-out scores has a heavy tail, and keeps the exponential.
      f.log_q_threshold_ = f.LogSurvival(c.threshold_);
      double ll_fit = 0, ll_exp = 0;
      for (double e : excess) {
        const double s = c.threshold_ + e;
        if (s > m.outlier_above) {
          // Censored: an outlier counts as "at least this far out" under both.
          ll_fit += f.LogSurvival(m.outlier_above) - f.log_q_threshold_;
          ll_exp += -(m.outlier_above - c.threshold_) / fitted_scale;
          continue;
        }
        ll_fit += (f.shape_ - 1) * std::log(s / f.scale_) - s / f.scale_ - std::log(f.scale_) -
                  std::lgamma(f.shape_) - f.log_q_threshold_;
        ll_exp += -std::log(fitted_scale) - e / fitted_scale;
      }
      // The exponential's scale was fitted to these exceedances, the chi2 to the moments of the
      // whole holdout: the exponential has a nat of likelihood to give. And where the chi2 is
      // the heavier of the two over the exceedances' range it is kept: a top decile that happens
      // to be compressed (12 scores of a 125-histogram holdout) fits a light exponential well,
      // which then promised up to 6x fewer false alarms at 1e-3 than happened.
      const double far = c.threshold_ + 3 * fitted_scale;
      const bool heavier = f.LogSurvival(far) - f.log_q_threshold_ >= -3.0;
      keep = std::isfinite(ll_fit) && (heavier || ll_fit >= ll_exp - 1);
    } else if (f.kind_ == Tail::kGumbel) {
      // A Gumbel's tail is itself close to an exponential with scale beta, so the likelihood
      // cannot tell them apart; the scales can. Where the exceedances decay more slowly than
      // beta (a heavier tail than the body says, or their noise), the Gumbel takes their scale:
      // shrinking it by its standard error left the largest bin 3-7x too optimistic at 1e-3 in
      // 2 to 5 of 16 benchmark cells, taking it whole in 0 to 4.
      f.scale_ = std::max(f.scale_, fitted_scale);
      f.log_q_threshold_ = f.LogSurvival(c.threshold_);
      keep = std::isfinite(f.log_q_threshold_);
    }
    if (keep) {
      c.kind_ = f.kind_;
      c.shape_ = f.shape_;
      c.scale_ = f.scale_;
      c.location_ = f.location_;
      c.log_q_threshold_ = f.log_q_threshold_;
    }
  }
  c.sorted_ = std::move(scores);
  return c;
}

Calibration Calibration::FromParts(std::vector<double> sorted, double threshold, double scale,
                                   double tail_p, double shape, double gumbel_location) {
  Calibration c;
  c.sorted_ = std::move(sorted);
  c.threshold_ = threshold;
  c.scale_ = scale;
  c.tail_p_ = tail_p;
  if (std::isfinite(gumbel_location) && scale > 0) {
    c.kind_ = Tail::kGumbel;
    c.location_ = gumbel_location;
  } else if (shape > 0 && scale > 0 && threshold > 0) {
    c.kind_ = Tail::kChiSquare;
    c.shape_ = shape;
  }
  if (c.kind_ != Tail::kExponential) c.log_q_threshold_ = c.LogSurvival(threshold);
  return c;
}

double Calibration::LogSurvival(double score) const {
  switch (kind_) {
    case Tail::kChiSquare:
      return LogGammaQ(shape_, score / scale_);
    case Tail::kGumbel:
      return LogGumbelQ(location_, scale_, score);
    case Tail::kExponential:
      break;
  }
  return -(score - threshold_) / scale_;
}

double Calibration::PValue(double score) const {
  if (sorted_.empty()) return 1.0;
  if (std::isnan(score)) return 1.0;
  if (score > threshold_) {
    const double log_ratio = LogSurvival(score) - log_q_threshold_;
    return std::max(tail_p_ * std::exp(std::min(log_ratio, 0.0)), 1e-300);
  }
  // Empirical survival with the +1 of a conservative estimate: (#{s_j >= score} + 1) / (n + 1).
  const auto it = std::lower_bound(sorted_.begin(), sorted_.end(), score);
  const double at_least = static_cast<double>(sorted_.end() - it);
  return std::min(1.0, (at_least + 1.0) / (static_cast<double>(sorted_.size()) + 1.0));
}

}  // namespace histguard::models
