#include "models/stats.h"

#include <algorithm>
#include <boost/math/special_functions/gamma.hpp>
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

double Chi2Survival(double chi2, double ndf) {
  if (ndf <= 0) return 1;
  if (!(chi2 > 0)) return 1;
  return boost::math::gamma_q(ndf / 2.0, chi2 / 2.0);
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
