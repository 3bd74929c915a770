#include "models/axis_nuisances.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace histguard::models {
namespace {

// The reference's cumulative distribution at u (linear within its bins) and its density there.
// Beyond the axis it is empty, or with `extended` it goes on at its edge bins' density: what
// moves into the axis from beyond it then resembles what was there, and a shift's derivative has
// no kink at the edge (a Gauss-Newton step across one went astray on spectra that start high).
struct Reference {
  std::span<const double> cum;
  double n = 0;
  bool extended = false;
  double Cdf(double u) const {
    if (u <= 0) return extended ? u * Pdf(0) : 0;
    if (u >= 1) return cum.back() + (extended ? (u - 1) * Pdf(1) : 0);
    const double t = u * n;
    const size_t i = std::min(static_cast<size_t>(t), cum.size() - 2);
    return cum[i] + (t - static_cast<double>(i)) * (cum[i + 1] - cum[i]);
  }
  double Pdf(double u) const {
    if (!extended && (u < 0 || u >= 1)) return 0;
    const size_t i = std::min(static_cast<size_t>(std::clamp(u, 0.0, 1.0) * n), cum.size() - 2);
    return (cum[i + 1] - cum[i]) * n;
  }
};

// Solves the symmetric positive system a x = b (4 x 4) by Cholesky; false when it is singular.
bool Solve4(std::array<std::array<double, 4>, 4> a, std::array<double, 4>& b) {
  for (size_t j = 0; j < 4; ++j) {
    double d = a[j][j];
    for (size_t k = 0; k < j; ++k) d -= a[j][k] * a[j][k];
    if (!(d > 1e-300)) return false;
    a[j][j] = std::sqrt(d);
    for (size_t i = j + 1; i < 4; ++i) {
      double s = a[i][j];
      for (size_t k = 0; k < j; ++k) s -= a[i][k] * a[j][k];
      a[i][j] = s / a[j][j];
    }
  }
  for (size_t i = 0; i < 4; ++i) {
    for (size_t k = 0; k < i; ++k) b[i] -= a[i][k] * b[k];
    b[i] /= a[i][i];
  }
  for (size_t i = 4; i-- > 0;) {
    for (size_t k = i + 1; k < 4; ++k) b[i] -= a[k][i] * b[k];
    b[i] /= a[i][i];
  }
  return true;
}

}  // namespace

void TransformShape(std::span<const double> cum, const AxisParams& p, std::vector<double>& out,
                    bool extended) {
  const size_t n = cum.size() - 1;
  const double dn = static_cast<double>(n);
  const Reference ref{cum, dn, extended};
  out.resize(n);
  double total = 0;
  for (size_t i = 0; i < n; ++i) {
    const double lo = static_cast<double>(i) / dn, hi = static_cast<double>(i + 1) / dn;
    const double base = ref.Cdf((hi - p[1]) / p[0]) - ref.Cdf((lo - p[1]) / p[0]);
    const double u = (static_cast<double>(i) + 0.5) / dn - 0.5;
    out[i] = std::max(0.0, base) * std::exp(p[2] * u + p[3] * u * u);
    total += out[i];
  }
  if (total > 0)
    for (double& x : out) x /= total;
}

std::vector<double> Cumulative(std::span<const double> shape) {
  std::vector<double> cum(shape.size() + 1, 0.0);
  for (size_t i = 0; i < shape.size(); ++i) cum[i + 1] = cum[i] + std::max(shape[i], 0.0);
  if (cum.back() > 0)
    for (double& c : cum) c /= cum.back();
  return cum;
}

AxisFit FitAxis(std::span<const double> cum, std::span<const double> counts, double axis_low,
                double axis_high, const AxisFit& start, unsigned free) {
  AxisFit out;
  const size_t n = counts.size();
  if (n < kMinAxisBins || cum.size() != n + 1 || !(cum.back() > 0)) return out;
  double total = 0;
  for (double c : counts) total += std::max(c, 0.0);
  if (!(total >= 50)) return out;
  const double dn = static_cast<double>(n);
  const Reference ref{cum, dn, true};
  // The origin the gain scales about, in units of the axis' length from its low edge.
  const double origin = axis_high > axis_low && std::isfinite(axis_low) && std::isfinite(axis_high)
                            ? -axis_low / (axis_high - axis_low)
                            : 0.0;
  // Parameters: gain g, shift s (axis lengths, about the low edge), tilt t, amplitude A.
  const std::array<bool, 4> frees = {(free & kFitGain) != 0, (free & kFitShift) != 0,
                                     (free & kFitTilt) != 0, true};
  double g = frees[0] ? std::clamp(start.gain, 0.6, 1.6) : 1.0;
  double s = frees[1] ? start.shift_bins / dn + (1 - g) * origin : 0.0;
  double t = frees[2] ? std::clamp(start.tilt, -4.0, 4.0) : 0.0;
  std::vector<double> base(n), dg(n), ds(n);
  auto evaluate = [&](double g_, double s_, double t_, double a_, bool derivatives) {
    double cost = 0;
    for (size_t i = 0; i < n; ++i) {
      const double vlo = (static_cast<double>(i) / dn - s_) / g_;
      const double vhi = (static_cast<double>(i + 1) / dn - s_) / g_;
      const double u = (static_cast<double>(i) + 0.5) / dn - 0.5;
      const double e = std::exp(t_ * u);
      base[i] = std::max(0.0, ref.Cdf(vhi) - ref.Cdf(vlo)) * e;
      if (derivatives) {
        const double plo = ref.Pdf(vlo), phi = ref.Pdf(vhi);
        ds[i] = -(phi - plo) / g_ * e;
        dg[i] = -(phi * vhi - plo * vlo) / g_ * e;
      }
      // The Poisson deviance, whose Fisher-scoring step below is a descent direction (a
      // Pearson chi2 with the model's weights is not, where the fit is poor).
      const double m = std::max(a_ * base[i], 1e-9), c = std::max(counts[i], 0.0);
      cost += 2 * (m - c + (c > 0 ? c * std::log(c / m) : 0.0));
    }
    return cost;
  };
  double sum_base = 0;
  evaluate(g, s, t, 1, false);
  for (double b : base) sum_base += b;
  if (!(sum_base > 0)) return out;
  double a = total / sum_base;
  double cost = evaluate(g, s, t, a, true);
  std::array<std::array<double, 4>, 4> fisher{};
  // Levenberg-Marquardt: Fisher scoring, damped along the valley where a gain and a shift trade
  // off (undamped, its steps overshot across it and back, and a fit stopped wherever its
  // iterations ran out).
  bool converged = false;
  double lambda = 1e-3;
  for (int iter = 0; iter < 30 && !converged; ++iter) {
    std::array<std::array<double, 4>, 4> jtj{};
    std::array<double, 4> jtr{};
    for (size_t i = 0; i < n; ++i) {
      const double u = (static_cast<double>(i) + 0.5) / dn - 0.5;
      const double m = a * base[i], w = 1 / std::max(m, 0.1);
      const std::array<double, 4> j = {a * dg[i], a * ds[i], u * m, base[i]};
      const double r = counts[i] - m;
      for (size_t p = 0; p < 4; ++p) {
        jtr[p] += w * j[p] * r;
        for (size_t q = 0; q <= p; ++q) jtj[p][q] += w * j[p] * j[q];
      }
    }
    for (size_t p = 0; p < 4; ++p)
      for (size_t q = p + 1; q < 4; ++q) jtj[p][q] = jtj[q][p];
    for (size_t p = 0; p < 4; ++p)  // a fixed nuisance: no step, unit information
      if (!frees[p]) {
        for (size_t q = 0; q < 4; ++q) jtj[p][q] = jtj[q][p] = 0;
        jtj[p][p] = 1;
        jtr[p] = 0;
      }
    fisher = jtj;
    bool improved = false;
    for (int attempt = 0; attempt < 12 && !improved; ++attempt) {
      auto damped = jtj;
      for (size_t p = 0; p < 4; ++p) damped[p][p] *= 1 + lambda;
      std::array<double, 4> step = jtr;
      if (!Solve4(damped, step)) return out;
      const double g2 = std::clamp(g + step[0], 0.5, 2.0);
      const double s2 = std::clamp(s + step[1], -0.5, 0.5);
      const double t2 = std::clamp(t + step[2], -5.0, 5.0);
      const double a2 = a + step[3];
      const double c2 = a2 > 0 ? evaluate(g2, s2, t2, a2, true) : INFINITY;
      if (c2 <= cost) {
        converged = std::fabs(g2 - g) < 1e-6 && std::fabs(s2 - s) < 1e-6 && cost - c2 < 1e-4;
        g = g2, s = s2, t = t2, a = a2, cost = c2;
        lambda = std::max(lambda / 3, 1e-9);
        improved = true;
      } else {
        lambda *= 4;
      }
    }
    if (!improved) {  // at the minimum to the precision of a step
      evaluate(g, s, t, a, true);
      converged = true;
    }
  }
  evaluate(g, s, t, a, true);
  if (!std::isfinite(cost) || g <= 0.5 || g >= 2.0 || std::fabs(s) >= 0.5) return out;
  // A fixed nuisance's unit information would read as an error of 1.
  for (size_t p = 0; p < 4; ++p)
    if (!frees[p]) {
      for (size_t q = 0; q < 4; ++q) fisher[p][q] = fisher[q][p] = 0;
      fisher[p][p] = 1e300;
    }
  // Errors: the inverse of the Fisher information, column by column.
  std::array<double, 4> e0{1, 0, 0, 0}, e1{0, 1, 0, 0};
  if (!Solve4(fisher, e0) || !Solve4(fisher, e1)) return out;
  const double var_g = e0[0], var_s = e1[1], cov = e0[1];
  out.valid = true;
  out.gain = g;
  out.shift_bins = dn * (s - (1 - g) * origin);
  out.tilt = t;
  out.gain_error = std::sqrt(std::max(var_g, 0.0));
  out.shift_error =
      dn * std::sqrt(std::max(var_s + origin * origin * var_g + 2 * origin * cov, 0.0));
  return out;
}

void AxisCourse::Clear() { *this = AxisCourse{}; }

AxisCourse::Finding AxisCourse::Add(const AxisFit& fit) {
  Finding out;
  if (!fit.valid) return out;
  const std::array<double, 2> x = {fit.gain, fit.shift_bins};
  tilt_ = fit.tilt;
  out.gain = x[0];
  if (seen_ == 0) {
    level_ = x;
    seen_ = 1;
    return out;
  }
  out.gain_jump = x[0] / level_[0] - 1;
  out.shift_jump = x[1] - level_[1];
  std::array<double, 2> d = {x[0] - level_[0], x[1] - level_[1]};
  const bool warm = seen_ > kWarmUp;
  // The departures' covariance, no smaller than the fit's own errors. A gain and a shift often
  // trade off (a peak far from the axis' origin moves alike under both): their joint departure
  // is what is precise, so it is measured by the inverse covariance, not each alone.
  const double v0 = std::max(cov_[0], fit.gain_error * fit.gain_error),
               v1 = std::max(cov_[2], fit.shift_error * fit.shift_error);
  double c = cov_[1];
  const double limit = 0.999 * std::sqrt(v0 * v1);
  c = std::clamp(c, -limit, limit);
  const double det = v0 * v1 - c * c;
  double distance = 0;  // squared Mahalanobis distance of the departure
  if (warm && det > 0) {
    distance = (d[0] * d[0] * v1 - 2 * d[0] * d[1] * c + d[1] * d[1] * v0) / det;
    out.gain_decides = d[0] * d[0] / v0 >= d[1] * d[1] / v1;
    // A departure beyond kClip counts as kClip: a jump moves the level and the covariance little
    // per lumisection, so it stays flagged while it is a jump.
    if (distance > kClip * kClip) {
      const double shrink = kClip / std::sqrt(distance);
      d[0] *= shrink;
      d[1] *= shrink;
    }
  }
  const double w = warm ? kSpreadAfter : 1.0 / static_cast<double>(seen_);
  cov_[0] += w * (d[0] * d[0] - cov_[0]);
  cov_[1] += w * (d[0] * d[1] - cov_[1]);
  cov_[2] += w * (d[1] * d[1] - cov_[2]);
  level_[0] += kFollow * d[0];
  level_[1] += kFollow * d[1];
  ++seen_;
  if (!warm) return out;
  if (!calibration_.empty()) {
    out.tested = true;
    out.p_value = calibration_.PValue(distance);
  }
  if (out.p_value >= kKeepAbove) {
    if (recent_.size() < kRecent)
      recent_.push_back(static_cast<float>(distance));
    else
      recent_[next_] = static_cast<float>(distance);
    next_ = (next_ + 1) % kRecent;
  }
  if (recent_.size() >= kCalibrateFrom && (calibration_.empty() || ++since_fit_ >= kRefitEvery)) {
    calibration_ = Calibration::Fit(std::vector<double>(recent_.begin(), recent_.end()), 0.05,
                                    Calibration::Tail::kExponential);
    since_fit_ = 0;
  }
  return out;
}

std::string AxisText(const AxisFit& fit) {
  if (!fit.valid) return "";
  char text[96];
  std::snprintf(text, sizeof text, "gain %.3f, shift %+.2f bins, tilt %+.3f", fit.gain,
                fit.shift_bins, fit.tilt);
  return text;
}

}  // namespace histguard::models
