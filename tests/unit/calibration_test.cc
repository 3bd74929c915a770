#include "models/calibration.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace histguard::models {
namespace {

TEST(Calibration, EmptyGivesOne) { EXPECT_DOUBLE_EQ(Calibration().PValue(123), 1.0); }

TEST(Calibration, MonotoneAndWithinUnitInterval) {
  std::mt19937_64 rng(1);
  std::normal_distribution<double> g(1, 0.1);
  std::vector<double> s(200);
  for (double& v : s) v = g(rng);
  const auto c = Calibration::Fit(s);
  double last = 1.0;
  for (double x = 0.5; x < 3; x += 0.01) {
    const double p = c.PValue(x);
    EXPECT_GT(p, 0);
    EXPECT_LE(p, 1);
    EXPECT_LE(p, last + 1e-12);
    last = p;
  }
}

TEST(Calibration, EmpiricalBodyMatchesQuantiles) {
  std::vector<double> s;
  for (int i = 1; i <= 1000; ++i) s.push_back(i);
  const auto c = Calibration::Fit(s);
  // (#{s >= x} + 1) / (n + 1)
  EXPECT_NEAR(c.PValue(500), 502.0 / 1001, 1e-9);
  EXPECT_NEAR(c.PValue(1), 1.0, 1e-9);
}

TEST(Calibration, ExponentialTailEstimatesBeyondTheHoldout) {
  // Exponential scores: the fitted tail should extrapolate close to the truth, far below 1/n.
  std::mt19937_64 rng(11);
  std::exponential_distribution<double> e(1.0);
  std::vector<double> s(2000);
  for (double& v : s) v = e(rng);
  const auto c = Calibration::Fit(s);
  for (double x : {8.0, 12.0}) {
    const double truth = std::exp(-x);
    const double p = c.PValue(x);
    EXPECT_GT(p, truth / 3) << x;
    EXPECT_LT(p, truth * 3) << x;
    if (x >= 12) EXPECT_LT(p, 0.1 / 2001) << "not clipped at 1/n";
  }
}

TEST(Calibration, HonestOnFreshSamplesOfTheSameDistribution) {
  // Fit on 500 gamma-like scores (a deviance's shape), check the false-alarm rate on 200,000.
  std::mt19937_64 rng(5);
  std::gamma_distribution<double> g(50, 0.02);
  std::vector<double> fit(500);
  for (double& v : fit) v = g(rng);
  const auto c = Calibration::Fit(fit);
  for (double t : {1e-2, 1e-3}) {
    int below = 0;
    const int n = 200000;
    for (int i = 0; i < n; ++i) below += c.PValue(g(rng)) < t;
    const double rate = static_cast<double>(below) / n;
    EXPECT_LT(rate, 2.5 * t) << t;  // never more false alarms than promised
    if (t >= 1e-2) EXPECT_GT(rate, t / 10) << t;  // conservative in the far tail, not useless
  }
}

TEST(Calibration, DegenerateHoldoutDoesNotMakeNoiseSignificant) {
  std::vector<double> same(30, 1.0);
  const auto c = Calibration::Fit(same, 0.05);
  EXPECT_GT(c.PValue(1.1), 1e-2);
}

TEST(Calibration, RobustToAFewOutliersInTheHoldout) {
  std::mt19937_64 rng(2);
  std::exponential_distribution<double> e(1.0);
  std::vector<double> clean(400);
  for (double& v : clean) v = e(rng);
  auto dirty = clean;
  for (int i = 0; i < 8; ++i) dirty[i] = 1000;  // 2% anomalies that slipped in
  const double p_clean = Calibration::Fit(clean).PValue(15);
  const double p_dirty = Calibration::Fit(dirty).PValue(15);
  EXPECT_LT(p_dirty, 1e-4) << "an anomaly still stands out";
  EXPECT_LT(p_clean, 1e-5);
}

}  // namespace
}  // namespace histguard::models
