#include "models/axis_nuisances.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace histguard::models {
namespace {

// The reference's cumulative distribution at u and its density there. Plain: linear within its
// bins, empty beyond the axis. `Smooth`: a monotone cubic through the same bin edges (each bin
// keeps its content, the density is continuous) that goes on beyond the axis at its edges'
// density. A fit needs the smooth one: with a density that steps at every bin edge, the
// derivatives flip wherever the moved edges cross the reference's, which is everywhere at no
// change, and Newton's steps went back and forth across the minimum. What moves into the axis
// from beyond it then resembles what was there.
struct Reference {
  std::span<const double> cum;
  double n = 0;
  std::vector<double> slope;  // smooth: the density at each edge; empty: plain

  static Reference Plain(std::span<const double> cum) {
    return {cum, static_cast<double>(cum.size() - 1), {}};
  }
  static Reference Smooth(std::span<const double> cum) {
    Reference r{cum, static_cast<double>(cum.size() - 1), {}};
    const size_t bins = cum.size() - 1;
    r.slope.resize(bins + 1);
    auto density = [&](size_t j) { return std::max(cum[j + 1] - cum[j], 0.0) * r.n; };
    r.slope[0] = density(0);
    r.slope[bins] = density(bins - 1);
    for (size_t k = 1; k < bins; ++k) {
      const double left = density(k - 1), right = density(k);
      // Fritsch-Butland: a harmonic mean keeps the cubic monotone (no negative density).
      r.slope[k] = left > 0 && right > 0 ? 2 / (1 / left + 1 / right) : 0.0;
    }
    return r;
  }
  double Cdf(double u) const {
    if (slope.empty()) {
      if (u <= 0) return 0;
      if (u >= 1) return cum.back();
    } else {
      if (u <= 0) return u * slope.front();
      if (u >= 1) return cum.back() + (u - 1) * slope.back();
    }
    const double x = u * n;
    const size_t j = std::min(static_cast<size_t>(x), cum.size() - 2);
    const double t = x - static_cast<double>(j);
    if (slope.empty()) return cum[j] + t * (cum[j + 1] - cum[j]);
    const double t2 = t * t, t3 = t2 * t, h = 1 / n;
    return (2 * t3 - 3 * t2 + 1) * cum[j] + (t3 - 2 * t2 + t) * h * slope[j] +
           (3 * t2 - 2 * t3) * cum[j + 1] + (t3 - t2) * h * slope[j + 1];
  }
  double Pdf(double u) const {
    if (slope.empty()) {
      if (u < 0 || u >= 1) return 0;
      const size_t j = std::min(static_cast<size_t>(u * n), cum.size() - 2);
      return (cum[j + 1] - cum[j]) * n;
    }
    if (u <= 0) return slope.front();
    if (u >= 1) return slope.back();
    const double x = u * n;
    const size_t j = std::min(static_cast<size_t>(x), cum.size() - 2);
    const double t = x - static_cast<double>(j), t2 = t * t;
    return (6 * t2 - 6 * t) * (cum[j] - cum[j + 1]) * n + (3 * t2 - 4 * t + 1) * slope[j] +
           (3 * t2 - 2 * t) * slope[j + 1];
  }
};

// The Cholesky factor of a symmetric positive 4 x 4 matrix, factored once for every right-hand
// side (a step and the error columns of one pass); ok() false when it is singular.
class Cholesky4 {
 public:
  explicit Cholesky4(std::array<std::array<double, 4>, 4> a) : l_(a) {
    for (size_t j = 0; j < 4 && ok_; ++j) {
      double d = l_[j][j];
      for (size_t k = 0; k < j; ++k) d -= l_[j][k] * l_[j][k];
      ok_ = d > 1e-300;
      if (!ok_) break;
      l_[j][j] = std::sqrt(d);
      for (size_t i = j + 1; i < 4; ++i) {
        double s = l_[i][j];
        for (size_t k = 0; k < j; ++k) s -= l_[i][k] * l_[j][k];
        l_[i][j] = s / l_[j][j];
      }
    }
  }
  bool ok() const { return ok_; }
  // x with a x = b.
  std::array<double, 4> Solve(std::array<double, 4> b) const {
    for (size_t i = 0; i < 4; ++i) {
      for (size_t k = 0; k < i; ++k) b[i] -= l_[i][k] * b[k];
      b[i] /= l_[i][i];
    }
    for (size_t i = 4; i-- > 0;) {
      for (size_t k = i + 1; k < 4; ++k) b[i] -= l_[k][i] * b[k];
      b[i] /= l_[i][i];
    }
    return b;
  }
  // Column p of the inverse.
  std::array<double, 4> Column(size_t p) const {
    std::array<double, 4> e{};
    e[p] = 1;
    return Solve(e);
  }

 private:
  std::array<std::array<double, 4>, 4> l_;
  bool ok_ = true;
};

}  // namespace

void TransformShape(std::span<const double> cum, const AxisParams& p, std::vector<double>& out,
                    bool extended) {
  const size_t n = cum.size() - 1;
  const double dn = static_cast<double>(n);
  const Reference ref = extended ? Reference::Smooth(cum) : Reference::Plain(cum);
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
  const Reference ref = Reference::Smooth(cum);
  // The origin the gain scales about, in units of the axis' length from its low edge.
  const double origin = axis_high > axis_low && std::isfinite(axis_low) && std::isfinite(axis_high)
                            ? -axis_low / (axis_high - axis_low)
                            : 0.0;
  // Parameters: gain g, shift s (axis lengths, about the low edge), tilt t, amplitude A.
  const std::array<bool, 4> frees = {(free & kFitGain) != 0, (free & kFitShift) != 0,
                                     (free & kFitTilt) != 0, true};
  double g = 1, s = 0, t = 0;
  auto from_start = [&] {
    g = frees[0] ? std::clamp(start.gain, 0.6, 1.6) : 1.0;
    s = frees[1] ? start.shift_bins / dn + (1 - g) * origin : 0.0;
    t = frees[2] ? std::clamp(start.tilt, -4.0, 4.0) : 0.0;
  };
  from_start();
  std::vector<double> base(n), dg(n), ds(n), edge_cdf(n + 1), edge_pdf(n + 1), edge_v(n + 1);
  auto evaluate = [&](double g_, double s_, double t_, double a_, bool derivatives,
                      bool with_cost = true) {
    // At the n + 1 edges once: each is the upper edge of one bin and the lower of the next.
    for (size_t k = 0; k <= n; ++k) {
      edge_v[k] = (static_cast<double>(k) / dn - s_) / g_;
      edge_cdf[k] = ref.Cdf(edge_v[k]);
      if (derivatives) edge_pdf[k] = ref.Pdf(edge_v[k]);
    }
    double cost = 0;
    const bool tilted = t_ != 0;
    for (size_t i = 0; i < n; ++i) {
      const double e = tilted ? std::exp(t_ * ((static_cast<double>(i) + 0.5) / dn - 0.5)) : 1.0;
      base[i] = std::max(0.0, edge_cdf[i + 1] - edge_cdf[i]) * e;
      if (derivatives) {
        ds[i] = -(edge_pdf[i + 1] - edge_pdf[i]) / g_ * e;
        dg[i] = -(edge_pdf[i + 1] * edge_v[i + 1] - edge_pdf[i] * edge_v[i]) / g_ * e;
      }
      // The Poisson deviance, whose Fisher-scoring step below is a descent direction (a
      // Pearson chi2 with the model's weights is not, where the fit is poor).
      if (!with_cost) continue;
      const double m = std::max(a_ * base[i], 1e-9), c = std::max(counts[i], 0.0);
      cost += m - (c > 0 ? c * std::log(m) : 0.0);
    }
    // Without the counts' own part, c ln c - c, the same for every fit: costs are only compared.
    return 2 * cost;
  };
  double sum_base = 0;
  evaluate(g, s, t, 1, start.valid, false);  // with the derivatives a single step needs
  for (double b : base) sum_base += b;
  if (!(sum_base > 0)) return out;
  double a = total / sum_base;
  // Fisher information and score of the current point (base and its derivatives evaluated).
  auto information = [&](std::array<std::array<double, 4>, 4>& jtj, std::array<double, 4>& jtr) {
    // In named locals: sums into the arrays' elements were a chain of stores and loads through
    // memory, most of a fit's time.
    double r0 = 0, r1 = 0, r2 = 0, r3 = 0;
    double j00 = 0, j10 = 0, j11 = 0, j20 = 0, j21 = 0, j22 = 0, j30 = 0, j31 = 0, j32 = 0, j33 = 0;
    for (size_t i = 0; i < n; ++i) {
      const double u = (static_cast<double>(i) + 0.5) / dn - 0.5;
      const double m = a * base[i], w = 1 / std::max(m, 0.1);
      const double x0 = a * dg[i], x1 = a * ds[i], x2 = u * m, x3 = base[i];
      const double wr = w * (counts[i] - m);
      r0 += x0 * wr, r1 += x1 * wr, r2 += x2 * wr, r3 += x3 * wr;
      const double w0 = w * x0, w1 = w * x1, w2 = w * x2, w3 = w * x3;
      j00 += w0 * x0, j10 += w1 * x0, j11 += w1 * x1;
      j20 += w2 * x0, j21 += w2 * x1, j22 += w2 * x2;
      j30 += w3 * x0, j31 += w3 * x1, j32 += w3 * x2, j33 += w3 * x3;
    }
    jtr = {r0, r1, r2, r3};
    jtj = {
        {{j00, j10, j20, j30}, {j10, j11, j21, j31}, {j20, j21, j22, j32}, {j30, j31, j32, j33}}};
    for (size_t p = 0; p < 4; ++p)  // a fixed nuisance: no step, unit information
      if (!frees[p]) {
        for (size_t q = 0; q < 4; ++q) jtj[p][q] = jtj[q][p] = 0;
        jtj[p][p] = 1;
        jtr[p] = 0;
      }
  };
  std::array<std::array<double, 4>, 4> fisher{};
  // From where the course expects this lumisection, undamped Fisher-scoring steps (Newton's
  // method on the deviance: a step's error is about the square of the one before) are the fit:
  // done once a step moves less than a tenth of the errors, a few passes over the bins instead
  // of the damped iterations' five to ten with their deviance evaluations. (Stopped at steps of
  // half an error, the fit stayed half an error nearer where it started, toward the course, which
  // a jump's departure then looked smaller against.) A step of more than ten errors (a jump)
  // takes the damped way, from the start again.
  bool done = false;
  constexpr int kPasses = 8;
  if (start.valid) {
    for (int pass = 0; pass < kPasses && !done; ++pass) {
      if (pass > 0) evaluate(g, s, t, a, true, false);
      std::array<double, 4> step;
      information(fisher, step);
      const Cholesky4 factor(fisher);
      if (!factor.ok()) break;
      step = factor.Solve(step);
      double largest = 0;  // the step, in errors squared
      for (size_t p = 0; p < 3; ++p)
        largest = std::max(largest, step[p] * step[p] / std::max(factor.Column(p)[p], 1e-300));
      if (largest > 100) break;
      g += step[0], s += step[1], t += step[2], a += step[3];
      if (!(a > 0 && g > 0.5 && g < 2.0 && std::fabs(s) < 0.5)) break;
      // A step of a tenth of its errors, or (after the last pass) of one.
      done = largest < (pass == kPasses - 1 ? 1.0 : 0.01);
    }
    if (!done) {
      from_start();
      a = total / sum_base;
      evaluate(g, s, t, a, true, false);
    }
  }
  double cost = done ? 0.0 : evaluate(g, s, t, a, true);
  // Levenberg-Marquardt: Fisher scoring, damped along the valley where a gain and a shift trade
  // off (undamped, its steps overshot across it and back, and a fit stopped wherever its
  // iterations ran out).
  bool converged = false;
  double lambda = 1e-3;
  for (int iter = 0; iter < 20 && !converged && !done; ++iter) {
    std::array<std::array<double, 4>, 4> jtj;
    std::array<double, 4> jtr;
    information(jtj, jtr);
    fisher = jtj;
    bool improved = false;
    for (int attempt = 0; attempt < 12 && !improved; ++attempt) {
      auto damped = jtj;
      for (size_t p = 0; p < 4; ++p) damped[p][p] *= 1 + lambda;
      const Cholesky4 factor(damped);
      if (!factor.ok()) return out;
      const std::array<double, 4> step = factor.Solve(jtr);
      const double g2 = std::clamp(g + step[0], 0.5, 2.0);
      const double s2 = std::clamp(s + step[1], -0.5, 0.5);
      const double t2 = std::clamp(t + step[2], -5.0, 5.0);
      const double a2 = a + step[3];
      const double c2 = a2 > 0 ? evaluate(g2, s2, t2, a2, true) : INFINITY;
      if (c2 <= cost) {
        // Converged once a step gains less than 0.01 of deviance: the parameters are then
        // within a tenth of their errors of the minimum.
        converged = cost - c2 < 0.01;
        g = g2, s = s2, t = t2, a = a2, cost = c2;
        lambda = std::max(lambda / 3, 1e-9);
        improved = true;
      } else if (c2 - cost < 0.01 && lambda < 1) {
        break;  // at the minimum to within the precision asked: no better step to find
      } else {
        lambda *= 4;
      }
    }
    if (!improved) {  // at the minimum to the precision of a step
      evaluate(g, s, t, a, true);
      converged = true;
    }
  }
  if (!std::isfinite(cost) || !std::isfinite(g + s + t) || g <= 0.5 || g >= 2.0 ||
      std::fabs(s) >= 0.5)
    return out;
  // A fixed nuisance's unit information would read as an error of 1.
  for (size_t p = 0; p < 4; ++p)
    if (!frees[p]) {
      for (size_t q = 0; q < 4; ++q) fisher[p][q] = fisher[q][p] = 0;
      fisher[p][p] = 1e300;
    }
  // Errors: the inverse of the Fisher information, column by column.
  const Cholesky4 inverse(fisher);
  if (!inverse.ok()) return out;
  const std::array<double, 4> e0 = inverse.Column(0), e1 = inverse.Column(1),
                              e2 = inverse.Column(2);
  const double var_g = e0[0], var_s = e1[1], cov = e0[1];
  out.valid = true;
  out.gain = g;
  out.shift_bins = dn * (s - (1 - g) * origin);
  out.tilt = t;
  out.gain_error = std::sqrt(std::max(var_g, 0.0));
  out.shift_error =
      dn * std::sqrt(std::max(var_s + origin * origin * var_g + 2 * origin * cov, 0.0));
  out.tilt_error = frees[2] ? std::sqrt(std::max(e2[2], 0.0)) : 0;
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
  if (recent_.size() >= kCalibrateFrom && (calibration_.empty() || ++since_fit_ >= kRefitEvery))
    Calibrate();
  return out;
}

void AxisCourse::Calibrate() {
  calibration_ = Calibration::Fit(std::vector<double>(recent_.begin(), recent_.end()), 0.05,
                                  Calibration::Tail::kExponential);
  since_fit_ = 0;
}

AxisCourse::State AxisCourse::Save() const {
  State out{level_, cov_, tilt_, seen_, {}};
  out.recent.reserve(recent_.size());
  // The ring from its oldest: once full, that is the one to be overwritten next.
  const size_t first = recent_.size() < kRecent ? 0 : next_;
  for (size_t i = 0; i < recent_.size(); ++i)
    out.recent.push_back(recent_[(first + i) % recent_.size()]);
  return out;
}

bool AxisCourse::Restore(const State& state) {
  const auto finite = [](auto values) {
    return std::all_of(values.begin(), values.end(), [](double x) { return std::isfinite(x); });
  };
  const bool ok = finite(state.level) && finite(state.cov) && std::isfinite(state.tilt) &&
                  state.level[0] > 0.5 && state.level[0] < 2.0 && state.cov[0] >= 0 &&
                  state.cov[2] >= 0 && state.recent.size() <= kRecent &&
                  (state.seen > kWarmUp || state.recent.empty()) &&
                  std::all_of(state.recent.begin(), state.recent.end(),
                              [](float x) { return std::isfinite(x) && x >= 0; });
  if (!ok) return false;
  Clear();
  level_ = state.level;
  cov_ = state.cov;
  tilt_ = state.tilt;
  seen_ = state.seen;
  recent_ = state.recent;
  next_ = recent_.size() % kRecent;
  if (recent_.size() >= kCalibrateFrom) Calibrate();
  return true;
}

std::string AxisText(const AxisFit& fit) {
  if (!fit.valid) return "";
  char text[96];
  std::snprintf(text, sizeof text, "gain %.3f, shift %+.2f bins, tilt %+.3f", fit.gain,
                fit.shift_bins, fit.tilt);
  return text;
}

}  // namespace histguard::models
