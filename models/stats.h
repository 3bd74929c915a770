// Statistics of counting histograms in the Poisson-likelihood frame.
//
// Everything here is plain, stateless and thread-safe: the scorer, the trainer, the benchmarks and
// the tests share these definitions so a score means the same thing wherever it is computed.
//
//   counts c_i, expected counts mu_i (both >= 0)
//   Poisson deviance per bin  D = (2/n) sum [c ln(c/mu) - (c - mu)]
//   deviance residual         r_i = sign(c - mu) sqrt(2 [c ln(c/mu) - (c - mu)])
// The residual is the pull (c - mu)/sqrt(mu) for large counts and stays well behaved when mu is
// small (a single count in a nearly empty bin is not a 10-sigma pull), so it is what ranks bins.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace histguard::models {

struct BinPull {
  uint32_t bin = 0;
  double pull = 0;
};

// Total of the contents.
double Sum(std::span<const double> counts);

// The upper median (the element at size/2 in order); NaN for an empty sample.
double Median(std::vector<double> values);

// One bin's deviance term 2 [c ln(c/mu) - (c - mu)]; mu is floored at a tiny positive value.
double DevianceTerm(double c, double mu);

// Signed square root of DevianceTerm.
double DevianceResidual(double c, double mu);

// Poisson deviance per bin of `counts` against `expected`. Sizes must match.
double DeviancePerBin(std::span<const double> counts, std::span<const double> expected);

// The `k` bins with the largest |residual|, largest first.
std::vector<BinPull> TopPulls(std::span<const double> counts, std::span<const double> expected,
                              size_t k);

// Per-bin residuals (for inspection and plots).
std::vector<double> Residuals(std::span<const double> counts, std::span<const double> expected);

// Classical DQM chi2 test of `counts` against a reference shape (any positive scale; it is
// normalised to the total of `counts`). Returns chi2 / ndf and the chi2 p-value.
struct Chi2Result {
  double chi2_per_ndf = 0;
  double p_value = 1;
  int ndf = 0;
};
Chi2Result Chi2AgainstShape(std::span<const double> counts, std::span<const double> reference);

// Upper tail of the chi2 distribution with `ndf` degrees of freedom.
double Chi2Survival(double chi2, double ndf);

// ln Q(a, x), the regularised upper incomplete gamma function, accurate far into the tail where
// Q itself underflows. Total: 0 (Q = 1) for x <= 0, a <= 0 or NaN; never throws.
double LogGammaQ(double a, double x);

}  // namespace histguard::models
