#include "models/stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace histguard::models {
namespace {

TEST(Deviance, ZeroWhenObservedEqualsExpected) {
  std::vector<double> c = {10, 0, 5, 100};
  EXPECT_NEAR(DeviancePerBin(c, c), 0.0, 1e-12);
}

TEST(Deviance, MatchesDefinition) {
  // 2/n sum [c ln(c/mu) - (c - mu)], with an empty bin contributing 2 mu.
  std::vector<double> c = {12, 0, 7};
  std::vector<double> mu = {10, 2, 7};
  const double expected = 2.0 / 3 * ((12 * std::log(1.2) - 2) + 2 + 0);
  EXPECT_NEAR(DeviancePerBin(c, mu), expected, 1e-12);
}

TEST(Deviance, NearOneForPoissonNoiseAtAnyStatistics) {
  // The frame's promise: a correct expectation scores ~1 per bin at 1e3 or 1e6 entries.
  std::mt19937_64 rng(7);
  for (double per_bin : {20.0, 1e4}) {
    std::vector<double> mu(400, per_bin), c(400);
    double mean = 0;
    for (int rep = 0; rep < 50; ++rep) {
      for (size_t i = 0; i < c.size(); ++i) c[i] = std::poisson_distribution<long>(mu[i])(rng);
      mean += DeviancePerBin(c, mu) / 50;
    }
    EXPECT_NEAR(mean, 1.0, 0.05) << "per-bin mean " << per_bin;
  }
}

TEST(Residuals, SignedAndLikePullForLargeCounts) {
  EXPECT_GT(DevianceResidual(120, 100), 0);
  EXPECT_LT(DevianceResidual(80, 100), 0);
  // For large counts the deviance residual approaches (c - mu) / sqrt(mu) = 2.
  EXPECT_NEAR(DevianceResidual(10200, 10000), 2.0, 0.02);
  // One count in a nearly empty bin is not a huge pull (a naive pull would be ~100).
  EXPECT_LT(DevianceResidual(1, 1e-4), 5.0);
}

TEST(TopPulls, LargestAbsoluteFirstAndBounded) {
  std::vector<double> mu(50, 100), c(50, 100);
  c[7] = 200;   // +10 sigma
  c[30] = 40;   // -6 sigma
  c[12] = 125;  // +2.5 sigma
  const auto top = TopPulls(c, mu, 2);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].bin, 7u);
  EXPECT_GT(top[0].pull, 0);
  EXPECT_EQ(top[1].bin, 30u);
  EXPECT_LT(top[1].pull, 0);
}

TEST(Chi2, ConsistentShapePassesAndDistortedFails) {
  std::mt19937_64 rng(3);
  std::vector<double> ref(60), c(60);
  for (size_t i = 0; i < ref.size(); ++i)
    ref[i] = 1.0 + std::exp(-0.5 * std::pow((i - 30.0) / 5, 2));
  double sum = 0;
  for (double r : ref) sum += r;
  for (size_t i = 0; i < c.size(); ++i)
    c[i] = std::poisson_distribution<long>(ref[i] / sum * 1e4)(rng);
  const auto ok = Chi2AgainstShape(c, ref);
  EXPECT_GT(ok.p_value, 1e-3);
  EXPECT_NEAR(ok.chi2_per_ndf, 1.0, 0.5);
  for (size_t i = 40; i < 50; ++i) c[i] = 0;  // a dead region
  const auto bad = Chi2AgainstShape(c, ref);
  EXPECT_LT(bad.p_value, 1e-10);
  EXPECT_GT(bad.chi2_per_ndf, 3.0);
}

TEST(Chi2, SurvivalMatchesKnownQuantiles) {
  EXPECT_NEAR(Chi2Survival(3.841, 1), 0.05, 1e-3);
  EXPECT_NEAR(Chi2Survival(124.342, 100), 0.05, 1e-3);
  EXPECT_DOUBLE_EQ(Chi2Survival(0, 10), 1.0);
}

// A source re-sending the running mean of a monitor with thousands of filled bins gave a chi2
// near 0 with thousands of degrees of freedom; Boost.Math threw there and took the daemon down.
TEST(Chi2, ThousandsOfBinsEqualToTheirMeanGiveOneNotAThrow) {
  std::vector<double> ref(6000);
  for (size_t i = 0; i < ref.size(); ++i) ref[i] = 1.0 + (i % 17);
  std::vector<double> c(ref);
  for (double& x : c) x *= 3.0;  // the same shape, three times the entries
  Chi2Result r;
  EXPECT_NO_THROW(r = Chi2AgainstShape(c, ref));
  EXPECT_DOUBLE_EQ(r.p_value, 1.0);
  EXPECT_NEAR(r.chi2_per_ndf, 0.0, 1e-12);
  for (double ndf : {3500.0, 1e4, 1e5, 1e6}) {
    for (double ratio : {0.0, 1e-300, 1e-6, 0.5, 0.99, 1.0, 1.01, 2.0, 1e3}) {
      const double q = Chi2Survival(ratio * ndf, ndf);
      EXPECT_TRUE(q >= 0 && q <= 1) << "ndf " << ndf << " chi2/ndf " << ratio << ": " << q;
    }
    EXPECT_NEAR(Chi2Survival(ndf, ndf), 0.5, 0.02) << ndf;  // the median is near ndf
    EXPECT_LT(Chi2Survival(2 * ndf, ndf), 1e-10) << ndf;
    EXPECT_DOUBLE_EQ(Chi2Survival(1e-3 * ndf, ndf), 1.0) << ndf;
  }
}

TEST(Chi2, SurvivalIsAProbabilityForAnyInput) {
  const double nan = std::nan(""), inf = HUGE_VAL;
  for (double chi2 : {nan, -inf, -1.0, 0.0, 1e-300, 1.0, 1e300, inf})
    for (double ndf : {nan, -inf, -1.0, 0.0, 1e-300, 1.0, 7.0, 1e300, inf}) {
      double q = -1;
      EXPECT_NO_THROW(q = Chi2Survival(chi2, ndf));
      EXPECT_TRUE(q >= 0 && q <= 1) << "chi2 " << chi2 << " ndf " << ndf << ": " << q;
    }
  EXPECT_DOUBLE_EQ(Chi2Survival(HUGE_VAL, 10), 0.0);
}

}  // namespace
}  // namespace histguard::models
