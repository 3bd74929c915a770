// Tests for simulation/detector_simulator.h: determinism, normalisation, Poisson counts,
// run-to-run variation, and that each anomaly does what its name says, where
// defect_bins says.

#include "simulation/detector_simulator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace histguard::sim {
namespace {

using ::testing::ElementsAre;

constexpr double kEntries = 1e4;

MonitorSpec SpecOf(Family family) {
  MonitorSpec spec;
  spec.name = "test/" + std::string(Name(family));
  spec.family = family;
  spec.shape =
      family == Family::kOccupancy2D ? std::vector<uint32_t>{20, 20} : std::vector<uint32_t>{100};
  return spec;
}

Sample DrawSeeded(const MonitorSpec& spec, Anomaly anomaly, double severity, uint64_t seed,
                  double entries = kEntries) {
  std::mt19937_64 rng(seed);
  return Draw(spec, entries, anomaly, severity, rng);
}

// The normal expectation that a draw with `seed` departs from (see "Pairing"
// in simulator.h).
std::vector<double> NormalOf(const MonitorSpec& spec, uint64_t seed, double entries = kEntries) {
  return DrawSeeded(spec, Anomaly::kNone, 1.0, seed, entries).expected;
}

double Sum(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }

double Score(const std::vector<double>& normal, const std::vector<double>& anomalous, size_t i) {
  return std::fabs(anomalous[i] - normal[i]) / std::sqrt(normal[i] + 1);
}

// Sum of squared per-bin pulls: how strongly the shapes differ at this statistics.
double Distance(const std::vector<double>& a, const std::vector<double>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d += (a[i] - b[i]) * (a[i] - b[i]) / (a[i] + 1);
  return d;
}

size_t ArgMax(const std::vector<double>& v, size_t from = 0, size_t to = SIZE_MAX) {
  to = std::min(to, v.size());
  return static_cast<size_t>(std::max_element(v.begin() + from, v.begin() + to) - v.begin());
}

// The largest ratio of a bin to its right neighbour within [from, to): how
// sharp the steepest drop is.
double SteepestDrop(const std::vector<double>& v, size_t from, size_t to) {
  double worst = 0;
  for (size_t i = from; i + 1 < to; ++i) worst = std::max(worst, v[i] / v[i + 1]);
  return worst;
}

size_t SteepestDropAt(const std::vector<double>& v, size_t from, size_t to) {
  size_t at = from;
  for (size_t i = from; i + 1 < to; ++i) {
    if (v[i] / v[i + 1] > v[at] / v[at + 1]) at = i;
  }
  return at;
}

// How much any bin sticks out above the average of its two neighbours.
double LargestSpike(const std::vector<double>& v) {
  double worst = 0;
  for (size_t i = 1; i + 1 < v.size(); ++i) {
    worst = std::max(worst, v[i] / (0.5 * (v[i - 1] + v[i + 1])));
  }
  return worst;
}

double MaxOverMin(const std::vector<double>& v) {
  return *std::max_element(v.begin(), v.end()) / *std::min_element(v.begin(), v.end());
}

class FamilyTest : public ::testing::TestWithParam<Family> {};

INSTANTIATE_TEST_SUITE_P(AllFamilies, FamilyTest, ::testing::ValuesIn(kAllFamilies),
                         [](const auto& info) { return std::string(Name(info.param)); });

// ---- names --------------------------------------------------------------------------

TEST(NamesTest, AnomalyNamesRoundTrip) {
  EXPECT_EQ(Name(Anomaly::kNone), "none");
  EXPECT_EQ(Name(Anomaly::kDeadRegion), "dead_region");
  EXPECT_EQ(Name(Anomaly::kHotBin), "hot_bin");
  EXPECT_EQ(Name(Anomaly::kShiftedPeak), "shifted_peak");
  EXPECT_EQ(Name(Anomaly::kBroadenedPeak), "broadened_peak");
  EXPECT_EQ(Name(Anomaly::kExtraNoise), "extra_noise");
  EXPECT_EQ(Name(Anomaly::kMissingFeature), "missing_feature");
  for (Anomaly a : kAllAnomalies) EXPECT_EQ(ParseAnomaly(Name(a)), a);
  EXPECT_EQ(ParseAnomaly("hot-bin"), std::nullopt);
  EXPECT_EQ(ParseAnomaly(""), std::nullopt);
}

TEST(NamesTest, FamilyNamesRoundTrip) {
  std::set<std::string_view> names;
  for (Family f : kAllFamilies) {
    EXPECT_EQ(ParseFamily(Name(f)), f);
    names.insert(Name(f));
  }
  EXPECT_EQ(names.size(), kAllFamilies.size());
  EXPECT_EQ(ParseFamily("gaussian"), std::nullopt);
}

// ---- default monitors --------------------------------------------------------------

TEST(DefaultMonitorsTest, DetectorLikeNamesCyclingThroughFamilies) {
  const auto specs = DefaultMonitors(12);
  ASSERT_EQ(specs.size(), 12u);
  EXPECT_EQ(specs[0].name, "pixel/barrel/l1/occupancy");
  EXPECT_EQ(specs[1].name, "ecal/barrel/timing");
  EXPECT_EQ(specs[2].name, "hcal/endcap/energy_spectrum");
  EXPECT_EQ(specs[3].name, "muon/dt/wheel0/occupancy_map");
  std::set<Family> first_five;
  for (size_t i = 0; i < 5; ++i) first_five.insert(specs[i].family);
  EXPECT_EQ(first_five.size(), 5u);
  EXPECT_EQ(specs[5].family, specs[0].family);
  for (const auto& spec : specs) {
    if (spec.family == Family::kOccupancy2D) {
      EXPECT_THAT(spec.shape, ElementsAre(20, 20)) << spec.name;
    } else {
      EXPECT_THAT(spec.shape, ElementsAre(100)) << spec.name;
    }
  }
}

TEST(DefaultMonitorsTest, NamesStayUniqueForManyMonitors) {
  const auto specs = DefaultMonitors(200, 64);
  std::set<std::string> names;
  for (const auto& spec : specs) {
    names.insert(spec.name);
    if (spec.family != Family::kOccupancy2D) {
      EXPECT_THAT(spec.shape, ElementsAre(64));
    }
  }
  EXPECT_EQ(names.size(), 200u);
}

// ---- determinism, totals, counts ----------------------------------------------------

TEST_P(FamilyTest, SameSeedGivesTheSameSample) {
  const MonitorSpec spec = SpecOf(GetParam());
  for (Anomaly a : kAllAnomalies) {
    const Sample x = DrawSeeded(spec, a, 1.0, 1234);
    const Sample y = DrawSeeded(spec, a, 1.0, 1234);
    EXPECT_EQ(x.contents, y.contents) << Name(a);
    EXPECT_EQ(x.expected, y.expected) << Name(a);
    EXPECT_EQ(x.defect_bins, y.defect_bins) << Name(a);
    EXPECT_EQ(x.anomaly, a);
  }
}

TEST_P(FamilyTest, DifferentSeedsGiveDifferentCounts) {
  const MonitorSpec spec = SpecOf(GetParam());
  EXPECT_NE(DrawSeeded(spec, Anomaly::kNone, 1, 1).contents,
            DrawSeeded(spec, Anomaly::kNone, 1, 2).contents);
}

TEST_P(FamilyTest, ExpectedTotalIsEntriesExceptForDeadRegions) {
  const MonitorSpec spec = SpecOf(GetParam());
  for (Anomaly a : kAllAnomalies) {
    for (uint64_t seed = 1; seed <= 5; ++seed) {
      const Sample s = DrawSeeded(spec, a, 1.0, seed);
      const double total = Sum(s.expected);
      if (a == Anomaly::kDeadRegion) {
        EXPECT_LT(total, kEntries * 0.999) << Name(a);
        EXPECT_GT(total, kEntries * 0.4) << Name(a);
      } else {
        EXPECT_NEAR(total, kEntries, kEntries * 1e-9) << Name(a);
      }
      // Poisson: the counted total is within 5 sigma of the expectation.
      EXPECT_NEAR(Sum(s.contents), total, 5 * std::sqrt(total)) << Name(a) << " seed " << seed;
    }
  }
}

TEST_P(FamilyTest, ContentsArePoissonCountsAroundTheExpectation) {
  const MonitorSpec spec = SpecOf(GetParam());
  std::mt19937_64 rng(77);
  double pulls = 0, bins = 0;
  for (int draw = 0; draw < 30; ++draw) {
    const Sample s = Draw(spec, kEntries, Anomaly::kNone, 1.0, rng);
    ASSERT_EQ(s.contents.size(), s.expected.size());
    for (size_t i = 0; i < s.contents.size(); ++i) {
      ASSERT_GE(s.contents[i], 0);
      ASSERT_EQ(s.contents[i], std::floor(s.contents[i]));
      if (s.expected[i] > 0.5) {
        pulls += (s.contents[i] - s.expected[i]) * (s.contents[i] - s.expected[i]) / s.expected[i];
        bins += 1;
      }
    }
  }
  // Poisson variance equals the mean: the average squared pull is 1.
  EXPECT_NEAR(pulls / bins, 1.0, 0.1);
}

TEST_P(FamilyTest, RunToRunVariationExistsButKeepsTheShape) {
  const MonitorSpec spec = SpecOf(GetParam());
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    const auto a = NormalOf(spec, seed);
    const auto b = NormalOf(spec, seed + 100);
    double l1 = 0;
    for (size_t i = 0; i < a.size(); ++i) l1 += std::fabs(a[i] - b[i]);
    l1 /= kEntries;
    EXPECT_GT(l1, 1e-4) << "normal draws should vary from run to run";
    EXPECT_LT(l1, 0.15) << "but stay close in shape";
  }
}

TEST_P(FamilyTest, EveryAnomalyAtSeverityOneIsClearlyVisibleAndStrongerThanAtPointThree) {
  const MonitorSpec spec = SpecOf(GetParam());
  for (Anomaly a : kAllAnomalies) {
    if (a == Anomaly::kNone) continue;
    for (uint64_t seed = 1; seed <= 10; ++seed) {
      const auto normal = NormalOf(spec, seed);
      const double strong = Distance(normal, DrawSeeded(spec, a, 1.0, seed).expected);
      const double subtle = Distance(normal, DrawSeeded(spec, a, 0.3, seed).expected);
      // A summed squared pull of 40 over the histogram at 1e4 entries is far
      // beyond Poisson fluctuations of the shape.
      EXPECT_GT(strong, 40) << Name(a) << " seed " << seed;
      EXPECT_GT(strong, 2 * subtle) << Name(a) << " seed " << seed;
    }
  }
}

TEST_P(FamilyTest, SeverityZeroChangesNothing) {
  const MonitorSpec spec = SpecOf(GetParam());
  for (Anomaly a : kAllAnomalies) {
    const Sample s = DrawSeeded(spec, a, 0.0, 5);
    const auto normal = NormalOf(spec, 5);
    for (size_t i = 0; i < normal.size(); ++i) {
      ASSERT_NEAR(s.expected[i], normal[i], 1e-9 * kEntries) << Name(a) << " bin " << i;
    }
    EXPECT_TRUE(s.defect_bins.empty()) << Name(a);
  }
}

// ---- defect bins ---------------------------------------------------------------------

TEST_P(FamilyTest, DefectBinsAreTheTopScoringBinsAtMostTen) {
  const MonitorSpec spec = SpecOf(GetParam());
  for (Anomaly a : kAllAnomalies) {
    for (uint64_t seed = 1; seed <= 5; ++seed) {
      const Sample s = DrawSeeded(spec, a, 1.0, seed);
      if (a == Anomaly::kNone) {
        EXPECT_TRUE(s.defect_bins.empty());
        continue;
      }
      const auto normal = NormalOf(spec, seed);
      ASSERT_FALSE(s.defect_bins.empty()) << Name(a);
      ASSERT_LE(s.defect_bins.size(), 10u) << Name(a);
      std::set<uint32_t> unique(s.defect_bins.begin(), s.defect_bins.end());
      EXPECT_EQ(unique.size(), s.defect_bins.size()) << Name(a);
      const double top = Score(normal, s.expected, s.defect_bins.front());
      for (size_t k = 0; k < s.defect_bins.size(); ++k) {
        const double score = Score(normal, s.expected, s.defect_bins[k]);
        EXPECT_GE(score, 0.2 * top - 1e-9) << Name(a);
        if (k > 0) {
          EXPECT_LE(score, Score(normal, s.expected, s.defect_bins[k - 1]) + 1e-9);
        }
      }
      const double last = Score(normal, s.expected, s.defect_bins.back());
      for (size_t i = 0; i < normal.size(); ++i) {
        if (unique.count(static_cast<uint32_t>(i)) == 0) {
          EXPECT_LE(Score(normal, s.expected, i), last + 1e-9) << Name(a) << " bin " << i;
        }
      }
    }
  }
}

// ---- what each anomaly does ----------------------------------------------------------

TEST_P(FamilyTest, HotBinsGetSeveralTimesTheirExpectation) {
  const MonitorSpec spec = SpecOf(GetParam());
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const Sample s = DrawSeeded(spec, Anomaly::kHotBin, 1.0, seed);
    const auto normal = NormalOf(spec, seed);
    ASSERT_GE(s.defect_bins.size(), 1u);
    ASSERT_LE(s.defect_bins.size(), 2u);
    for (uint32_t b : s.defect_bins) EXPECT_GT(s.expected[b], 3 * normal[b]) << "seed " << seed;
    // Every other bin only loses a little to the renormalisation.
    for (size_t i = 0; i < normal.size(); ++i) {
      if (std::find(s.defect_bins.begin(), s.defect_bins.end(), i) != s.defect_bins.end()) continue;
      EXPECT_LE(s.expected[i], normal[i] * (1 + 1e-9));
      EXPECT_GT(s.expected[i], normal[i] * 0.5);
    }
  }
}

TEST_P(FamilyTest, HotBinIsVisibleAtAThousandEntries) {
  const MonitorSpec spec = SpecOf(GetParam());
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const Sample s = DrawSeeded(spec, Anomaly::kHotBin, 1.0, seed, 1e3);
    const auto normal = NormalOf(spec, seed, 1e3);
    const uint32_t b = s.defect_bins.front();
    // At least 3 sigma of the bin's normal Poisson spread above it.
    EXPECT_GT(s.expected[b] - normal[b], 3 * std::sqrt(normal[b] + 1)) << "seed " << seed;
  }
}

TEST_P(FamilyTest, DeadRegionEmptiesOneContiguousBlockAndNothingElse) {
  const MonitorSpec spec = SpecOf(GetParam());
  const bool is_2d = GetParam() == Family::kOccupancy2D;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const Sample s = DrawSeeded(spec, Anomaly::kDeadRegion, 1.0, seed);
    const auto normal = NormalOf(spec, seed);
    std::vector<uint32_t> dead;
    for (uint32_t i = 0; i < normal.size(); ++i) {
      if (s.expected[i] == 0) {
        dead.push_back(i);
      } else {
        EXPECT_DOUBLE_EQ(s.expected[i], normal[i]) << "bin " << i << " seed " << seed;
      }
    }
    const double fraction = static_cast<double>(dead.size()) / normal.size();
    EXPECT_GE(fraction, 0.03) << "seed " << seed;
    EXPECT_LE(fraction, 0.12) << "seed " << seed;
    for (uint32_t b : s.defect_bins) {
      EXPECT_TRUE(std::binary_search(dead.begin(), dead.end(), b)) << "defect bin " << b;
    }
    if (!is_2d) {
      EXPECT_EQ(dead.back() - dead.front() + 1, dead.size()) << "not contiguous, seed " << seed;
    } else {  // a rectangle in (ix, iy) with contents index ix * ny + iy
      const uint32_t ny = spec.shape[1];
      std::set<uint32_t> xs, ys;
      for (uint32_t b : dead) {
        xs.insert(b / ny);
        ys.insert(b % ny);
      }
      EXPECT_EQ(xs.size() * ys.size(), dead.size()) << "not a rectangle, seed " << seed;
      EXPECT_EQ(*xs.rbegin() - *xs.begin() + 1, xs.size());
      EXPECT_EQ(*ys.rbegin() - *ys.begin() + 1, ys.size());
    }
  }
}

TEST_P(FamilyTest, PartialDeadRegionKeepsSomeCounts) {
  const MonitorSpec spec = SpecOf(GetParam());
  const Sample s = DrawSeeded(spec, Anomaly::kDeadRegion, 0.3, 9);
  const auto normal = NormalOf(spec, 9);
  for (uint32_t b : s.defect_bins) EXPECT_NEAR(s.expected[b], 0.7 * normal[b], 1e-9 * kEntries);
}

TEST_P(FamilyTest, ExtraNoiseFillsTheEmptiestBins) {
  const MonitorSpec spec = SpecOf(GetParam());
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    const Sample s = DrawSeeded(spec, Anomaly::kExtraNoise, 1.0, seed);
    const auto normal = NormalOf(spec, seed);
    const size_t emptiest = std::min_element(normal.begin(), normal.end()) - normal.begin();
    const size_t fullest = ArgMax(normal);
    EXPECT_GT(s.expected[emptiest], 1.2 * normal[emptiest]);
    EXPECT_LT(s.expected[fullest], normal[fullest]);
  }
}

TEST(ShiftedPeakTest, TimingAndMassPeaksMoveByAFewWidths) {
  for (Family family : {Family::kTiming, Family::kPeakOnBackground}) {
    const MonitorSpec spec = SpecOf(family);
    for (uint64_t seed = 1; seed <= 10; ++seed) {
      const auto normal = NormalOf(spec, seed);
      const auto shifted = DrawSeeded(spec, Anomaly::kShiftedPeak, 1.0, seed).expected;
      const auto subtle = DrawSeeded(spec, Anomaly::kShiftedPeak, 0.3, seed).expected;
      const int moved =
          std::abs(static_cast<int>(ArgMax(shifted)) - static_cast<int>(ArgMax(normal)));
      const int moved_subtle =
          std::abs(static_cast<int>(ArgMax(subtle)) - static_cast<int>(ArgMax(normal)));
      EXPECT_GE(moved, 6) << Name(family) << " seed " << seed;  // 3 widths of 3-4 bins
      EXPECT_LT(moved_subtle, moved) << Name(family) << " seed " << seed;
    }
  }
}

TEST(ShiftedPeakTest, FallingSpectrumEdgeMovesWithTheGain) {
  const MonitorSpec spec = SpecOf(Family::kFallingSpectrum);
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    const auto normal = NormalOf(spec, seed);
    const auto shifted = DrawSeeded(spec, Anomaly::kShiftedPeak, 1.0, seed).expected;
    const int moved = std::abs(static_cast<int>(SteepestDropAt(shifted, 20, 80)) -
                               static_cast<int>(SteepestDropAt(normal, 20, 80)));
    EXPECT_GE(moved, 3) << "seed " << seed;  // edge at ~45 bins, gain +-10%
  }
}

TEST(ShiftedPeakTest, ChannelOccupancyLuminousRegionMovesButModulesStay) {
  const MonitorSpec spec = SpecOf(Family::kChannelOccupancy);
  auto asymmetry = [](const std::vector<double>& v) {  // right half vs left half
    const double left = std::accumulate(v.begin(), v.begin() + 50, 0.0);
    const double right = std::accumulate(v.begin() + 50, v.end(), 0.0);
    return (right - left) / (right + left);
  };
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    const auto normal = NormalOf(spec, seed);
    const auto shifted = DrawSeeded(spec, Anomaly::kShiftedPeak, 1.0, seed).expected;
    EXPECT_GT(std::fabs(asymmetry(shifted) - asymmetry(normal)), 0.05) << "seed " << seed;
    // The module structure stays where the hardware is: only the smooth
    // profile changes, so shifted/normal varies slowly from channel to channel
    // (a moved module pattern would make it jump by the 1.8x edge channels).
    for (size_t i = 0; i + 1 < normal.size(); ++i) {
      const double ratio = shifted[i] / normal[i], next = shifted[i + 1] / normal[i + 1];
      EXPECT_NEAR(next / ratio, 1.0, 0.05) << "channel " << i << " seed " << seed;
    }
  }
}

TEST(ShiftedPeakTest, OccupancyMapCentreMoves) {
  const MonitorSpec spec = SpecOf(Family::kOccupancy2D);
  auto centroid = [](const std::vector<double>& v, uint32_t ny) {
    const double floor = *std::min_element(v.begin(), v.end());
    double sx = 0, sy = 0, w = 0;
    for (uint32_t i = 0; i < v.size(); ++i) {
      const double weight = v[i] - floor;
      sx += weight * (i / ny);
      sy += weight * (i % ny);
      w += weight;
    }
    return std::pair{sx / w, sy / w};
  };
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    const auto [x0, y0] = centroid(NormalOf(spec, seed), 20);
    const auto [x1, y1] = centroid(DrawSeeded(spec, Anomaly::kShiftedPeak, 1.0, seed).expected, 20);
    EXPECT_GT(std::hypot(x1 - x0, y1 - y0), 1.0) << "seed " << seed;  // cells
  }
}

TEST(BroadenedPeakTest, TimingPeakGetsWider) {
  const MonitorSpec spec = SpecOf(Family::kTiming);
  auto above_half_max = [](const std::vector<double>& v) {
    const double half = *std::max_element(v.begin(), v.end()) / 2;
    return std::count_if(v.begin(), v.end(), [&](double x) { return x > half; });
  };
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    const auto normal = NormalOf(spec, seed);
    const auto broad = DrawSeeded(spec, Anomaly::kBroadenedPeak, 1.0, seed).expected;
    EXPECT_GE(above_half_max(broad), 1.5 * above_half_max(normal)) << "seed " << seed;
  }
}

TEST(BroadenedPeakTest, PeaksGetLower) {
  for (Family family : {Family::kPeakOnBackground, Family::kOccupancy2D}) {
    const MonitorSpec spec = SpecOf(family);
    for (uint64_t seed = 1; seed <= 10; ++seed) {
      const auto normal = NormalOf(spec, seed);
      const auto broad = DrawSeeded(spec, Anomaly::kBroadenedPeak, 1.0, seed).expected;
      const size_t peak =
          family == Family::kPeakOnBackground ? ArgMax(normal, 20, 50) : ArgMax(normal);
      EXPECT_LT(broad[peak], 0.75 * normal[peak]) << Name(family) << " seed " << seed;
    }
  }
}

TEST(BroadenedPeakTest, FallingSpectrumEdgeIsSmeared) {
  const MonitorSpec spec = SpecOf(Family::kFallingSpectrum);
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    const auto normal = NormalOf(spec, seed);
    const auto broad = DrawSeeded(spec, Anomaly::kBroadenedPeak, 1.0, seed).expected;
    EXPECT_LT(SteepestDrop(broad, 20, 80) - 1, 0.6 * (SteepestDrop(normal, 20, 80) - 1))
        << "seed " << seed;
  }
}

TEST(BroadenedPeakTest, OccupancyCentreToEdgeContrastDrops) {
  const MonitorSpec spec = SpecOf(Family::kChannelOccupancy);
  auto contrast = [](const std::vector<double>& v) {
    return std::accumulate(v.begin() + 40, v.begin() + 60, 0.0) /
           std::accumulate(v.begin(), v.begin() + 20, 0.0);
  };
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    const auto normal = NormalOf(spec, seed);
    const auto broad = DrawSeeded(spec, Anomaly::kBroadenedPeak, 1.0, seed).expected;
    EXPECT_LT(contrast(broad), 0.85 * contrast(normal)) << "seed " << seed;
  }
}

TEST(MissingFeatureTest, TimingPeakVanishesLeavingTheFlatFloor) {
  const MonitorSpec spec = SpecOf(Family::kTiming);
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    EXPECT_GT(MaxOverMin(NormalOf(spec, seed)), 10);
    EXPECT_LT(MaxOverMin(DrawSeeded(spec, Anomaly::kMissingFeature, 1.0, seed).expected), 1.001);
  }
}

TEST(MissingFeatureTest, MassPeakVanishesLeavingAFallingBackground) {
  const MonitorSpec spec = SpecOf(Family::kPeakOnBackground);
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    const auto missing = DrawSeeded(spec, Anomaly::kMissingFeature, 1.0, seed).expected;
    EXPECT_TRUE(std::is_sorted(missing.rbegin(), missing.rend())) << "seed " << seed;
    const auto normal = NormalOf(spec, seed);
    EXPECT_FALSE(std::is_sorted(normal.rbegin(), normal.rend())) << "seed " << seed;
  }
}

TEST(MissingFeatureTest, FallingSpectrumLosesItsEdge) {
  const MonitorSpec spec = SpecOf(Family::kFallingSpectrum);
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    EXPECT_GT(SteepestDrop(NormalOf(spec, seed), 20, 80), 1.2) << "seed " << seed;
    EXPECT_LT(SteepestDrop(DrawSeeded(spec, Anomaly::kMissingFeature, 1.0, seed).expected, 20, 80),
              1.12)
        << "seed " << seed;
  }
}

TEST(MissingFeatureTest, ChannelOccupancyLosesItsModuleStructure) {
  const MonitorSpec spec = SpecOf(Family::kChannelOccupancy);
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    EXPECT_GT(LargestSpike(NormalOf(spec, seed)), 1.3) << "seed " << seed;
    EXPECT_LT(LargestSpike(DrawSeeded(spec, Anomaly::kMissingFeature, 1.0, seed).expected), 1.05)
        << "seed " << seed;
  }
}

TEST(MissingFeatureTest, OccupancyMapLosesItsCentralBump) {
  const MonitorSpec spec = SpecOf(Family::kOccupancy2D);
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    EXPECT_GT(MaxOverMin(NormalOf(spec, seed)), 3) << "seed " << seed;
    EXPECT_LT(MaxOverMin(DrawSeeded(spec, Anomaly::kMissingFeature, 1.0, seed).expected), 1.25)
        << "seed " << seed;
  }
}

// ---- shapes ----------------------------------------------------------------------------

TEST(ShapeTest, TwoDimensionalSizeIsTheShapeProduct) {
  const MonitorSpec spec{"muon/dt/wheel2/occupancy_map", Family::kOccupancy2D, {30, 10}};
  const Sample s = DrawSeeded(spec, Anomaly::kDeadRegion, 1.0, 3);
  EXPECT_THAT(s.shape, ElementsAre(30, 10));
  EXPECT_EQ(s.contents.size(), 300u);
  EXPECT_EQ(s.expected.size(), 300u);
  for (uint32_t b : s.defect_bins) EXPECT_LT(b, 300u);
}

TEST(ShapeTest, TwoDimensionalLayoutIsRowMajorOnANonSquareMap) {
  // The radial falloff peaks at the centre: on a 40x4 map the profile along
  // x (summed over iy, bin (ix, iy) at ix * ny + iy) has one peak in the
  // middle. Another layout would fold it into several peaks.
  {
    const MonitorSpec wide{"muon/dt/wheel3/occupancy_map", Family::kOccupancy2D, {40, 4}};
    const auto normal = NormalOf(wide, 3);
    std::vector<double> profile(40, 0.0);
    for (uint32_t i = 0; i < normal.size(); ++i) profile[i / 4] += normal[i];
    EXPECT_NEAR(static_cast<double>(ArgMax(profile)), 19.5, 3);
    EXPECT_LT(profile[5], 0.6 * profile[20]);
    EXPECT_LT(profile[34], 0.6 * profile[20]);
  }
  const MonitorSpec spec{"muon/dt/wheel2/occupancy_map", Family::kOccupancy2D, {30, 10}};
  const uint32_t ny = 10;
  // A dead region is a rectangle in (ix, iy) = (i / ny, i % ny).
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    const Sample s = DrawSeeded(spec, Anomaly::kDeadRegion, 1.0, seed);
    std::set<uint32_t> xs, ys;
    size_t dead = 0;
    for (uint32_t i = 0; i < s.expected.size(); ++i) {
      if (s.expected[i] == 0) {
        ++dead;
        xs.insert(i / ny);
        ys.insert(i % ny);
      }
    }
    ASSERT_GT(dead, 0u);
    EXPECT_EQ(xs.size() * ys.size(), dead) << "seed " << seed;
    EXPECT_EQ(*xs.rbegin() - *xs.begin() + 1, xs.size()) << "seed " << seed;
    EXPECT_EQ(*ys.rbegin() - *ys.begin() + 1, ys.size()) << "seed " << seed;
  }
}

TEST(ShapeTest, CustomBinCounts) {
  for (uint32_t bins : {1u, 7u, 33u, 1000u}) {
    for (Family family : kAllFamilies) {
      if (family == Family::kOccupancy2D) continue;
      const MonitorSpec spec{"custom", family, {bins}};
      for (Anomaly a : kAllAnomalies) {
        const Sample s = DrawSeeded(spec, a, 1.0, 4);
        ASSERT_EQ(s.contents.size(), bins) << Name(family) << " " << Name(a);
        ASSERT_EQ(s.expected.size(), bins);
        for (double e : s.expected) ASSERT_TRUE(std::isfinite(e) && e >= 0);
        if (a != Anomaly::kDeadRegion) {
          EXPECT_NEAR(Sum(s.expected), kEntries, 1e-6 * kEntries);
        }
      }
    }
  }
}

TEST(ShapeTest, FallingSpectrumSpansSeveralDecades) {
  const auto normal = NormalOf(SpecOf(Family::kFallingSpectrum), 1);
  EXPECT_GT(normal.front() / normal.back(), 1e3);
}

TEST(ShapeTest, DegenerateInputsGiveEmptyOrZeroHistograms) {
  EXPECT_TRUE(DrawSeeded({"x", Family::kTiming, {}}, Anomaly::kNone, 1, 1).contents.empty());
  EXPECT_TRUE(
      DrawSeeded({"x", Family::kOccupancy2D, {20, 0}}, Anomaly::kHotBin, 1, 1).contents.empty());
  const Sample zero = DrawSeeded(SpecOf(Family::kTiming), Anomaly::kHotBin, 1.0, 1, 0.0);
  ASSERT_EQ(zero.contents.size(), 100u);
  EXPECT_EQ(Sum(zero.contents), 0);
  EXPECT_EQ(Sum(zero.expected), 0);
}

}  // namespace
}  // namespace histguard::sim
