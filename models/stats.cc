#include "models/stats.h"

#include <algorithm>
#include <cmath>

namespace histguard::models {
namespace {
constexpr double kTinyMu = 1e-12;
}

double Sum(std::span<const double> counts) {
  double s = 0;
  for (double c : counts) s += c;
  return s;
}

double Median(std::vector<double> values) {
  if (values.empty()) return std::nan("");
  std::nth_element(values.begin(), values.begin() + values.size() / 2, values.end());
  return values[values.size() / 2];
}

double DevianceTerm(double c, double mu) {
  mu = std::max(mu, kTinyMu);
  const double t = c > 0 ? c * std::log(c / mu) - (c - mu) : mu;
  return 2.0 * std::max(t, 0.0);
}

double DevianceResidual(double c, double mu) {
  const double r = std::sqrt(DevianceTerm(c, mu));
  return c >= mu ? r : -r;
}

double DeviancePerBin(std::span<const double> counts, std::span<const double> expected) {
  if (counts.empty()) return 0;
  double d = 0;
  for (size_t i = 0; i < counts.size(); ++i) d += DevianceTerm(counts[i], expected[i]);
  return d / static_cast<double>(counts.size());
}

std::vector<BinPull> TopPulls(std::span<const double> counts, std::span<const double> expected,
                              size_t k) {
  std::vector<BinPull> top;
  top.reserve(k + 1);
  for (size_t i = 0; i < counts.size(); ++i) {
    const double r = DevianceResidual(counts[i], expected[i]);
    if (top.size() == k && std::abs(r) <= std::abs(top.back().pull)) continue;
    BinPull p{static_cast<uint32_t>(i), r};
    auto pos = std::upper_bound(top.begin(), top.end(), p, [](const BinPull& a, const BinPull& b) {
      return std::abs(a.pull) > std::abs(b.pull);
    });
    top.insert(pos, p);
    if (top.size() > k) top.pop_back();
  }
  return top;
}

std::vector<double> Residuals(std::span<const double> counts, std::span<const double> expected) {
  std::vector<double> r(counts.size());
  for (size_t i = 0; i < counts.size(); ++i) r[i] = DevianceResidual(counts[i], expected[i]);
  return r;
}

double LogGammaQ(double a, double x) {
  if (!(x > 0) || !(a > 0)) return 0;  // also NaN: no evidence
  if (x == HUGE_VAL) return -HUGE_VAL;
  if (a == HUGE_VAL) return 0;
  const double log_prefix = -x + a * std::log(x) - std::lgamma(a);
  constexpr double kEps = 1e-15, kTiny = 1e-300;
  if (x < a + 1) {
    // Series for P(a, x); Q = 1 - P is not small here.
    double ap = a, term = 1 / a, sum = term;
    for (int i = 0; i < 10000 && std::abs(term) > std::abs(sum) * kEps; ++i) {
      ap += 1;
      term *= x / ap;
      sum += term;
    }
    return std::log1p(-std::min(1.0, sum * std::exp(log_prefix)));
  }
  // Continued fraction for Q (modified Lentz), kept in logs.
  double b = x + 1 - a, c = 1 / kTiny, d = 1 / b, h = d;
  for (int i = 1; i < 10000; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::abs(d) < kTiny) d = kTiny;
    c = b + an / c;
    if (std::abs(c) < kTiny) c = kTiny;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::abs(del - 1) < kEps) break;
  }
  return log_prefix + std::log(h);
}

double Chi2Survival(double chi2, double ndf) {
  // Boost.Math's gamma_q threw ("tgamma too large") for thousands of degrees of freedom and a
  // chi2 near 0, as a source re-sending the running mean gives; the log-space evaluation is
  // total.
  const double q = std::exp(LogGammaQ(ndf / 2.0, chi2 / 2.0));
  if (q >= 0 && q <= 1) return q;
  // Wilson-Hilferty's normal approximation where the series did not give a probability.
  const double k = std::max(ndf, 1.0), s = 2.0 / (9.0 * k);
  const double z = (std::cbrt(std::max(chi2, 0.0) / k) - (1 - s)) / std::sqrt(s);
  return std::isnan(z) ? 1.0 : 0.5 * std::erfc(z / std::sqrt(2.0));
}

Chi2Result Chi2AgainstShape(std::span<const double> counts, std::span<const double> reference) {
  Chi2Result out;
  const double n_obs = Sum(counts);
  const double n_ref = Sum(reference);
  if (n_obs <= 0 || n_ref <= 0) return out;
  double chi2 = 0;
  int used = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    const double mu = n_obs * reference[i] / n_ref;
    if (mu <= 0 && counts[i] <= 0) continue;
    // Pearson's chi2 with the expectation floored at one count, so a count in a bin the
    // reference never saw is a finite, large contribution rather than a division by zero.
    const double d = counts[i] - mu;
    chi2 += d * d / std::max(mu, 1.0);
    ++used;
  }
  out.ndf = std::max(used - 1, 1);
  out.chi2_per_ndf = chi2 / out.ndf;
  out.p_value = Chi2Survival(chi2, out.ndf);
  return out;
}

}  // namespace histguard::models
