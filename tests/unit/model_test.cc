// The autoencoder through the trainer the daemon uses, on simulated detector histograms.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <optional>
#include <random>

#include <nlohmann/json.hpp>

#include "models/serialize.h"
#include "models/torch_reference.h"
#include "models/trainer.h"
#include "simulation/detector_simulator.h"

namespace histguard::models {
namespace {

// DeserializeModel's model, or null with the reason it gives in `error`.
std::optional<Model> Deserialize(std::string_view bytes, std::string* error) {
  auto m = DeserializeModel(bytes);
  if (m.ok()) return std::move(*m);
  *error = std::string(m.status().message());
  return std::nullopt;
}

struct Trained {
  sim::MonitorSpec spec;
  std::unique_ptr<Model> model;
  TrainReport report;
};

// `shape`, when given, replaces the family's binning.
Trained TrainOn(sim::Family family, double entries, size_t n, uint64_t seed,
                std::vector<uint32_t> shape = {}) {
  SetComputeThreads(1);
  Trained t;
  for (const auto& s : sim::DefaultMonitors(10))
    if (s.family == family) t.spec = s;
  if (!shape.empty()) t.spec.shape = shape;
  std::mt19937_64 rng(seed);
  std::vector<std::vector<float>> samples;
  for (size_t i = 0; i < n; ++i) {
    const auto s = sim::Draw(t.spec, entries, sim::Anomaly::kNone, 0, rng);
    samples.emplace_back(s.contents.begin(), s.contents.end());
  }
  auto out = Train(samples, t.spec.shape, TrainOptions{});
  EXPECT_TRUE(out.model) << out.error;
  t.model = std::move(out.model);
  t.report = out.report;
  return t;
}

TEST(Model, PlainForwardAgreesWithLibTorch) {
  // 100 bins, and 61: the vectorised layers and softmax take eight or sixteen bins at a time,
  // and a binning that is no multiple of either also goes through their remainder loops.
  for (const std::vector<uint32_t>& shape : {std::vector<uint32_t>{}, std::vector<uint32_t>{61}}) {
    auto t = TrainOn(sim::Family::kPeakOnBackground, 1e4, 100, 1, shape);
    ASSERT_TRUE(t.model);
    std::mt19937_64 rng(99);
    Scratch scratch;
    for (int rep = 0; rep < 5; ++rep) {
      const auto s = sim::Draw(t.spec, 1e4, sim::Anomaly::kNone, 0, rng);
      const auto ref = ReferenceExpected(*t.model, s.contents);
      Expect(*t.model, s.contents, scratch);
      ASSERT_EQ(ref.size(), scratch.expected.size());
      for (size_t i = 0; i < ref.size(); ++i)
        EXPECT_NEAR(scratch.expected[i], ref[i], 1e-4 * ref[i] + 1e-9)
            << ref.size() << " bins, bin " << i;
    }
  }
}

TEST(Model, CombinationCountsTheTestsTheHoldoutShows) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<double> a(2000), b(2000), c(2000);
  for (size_t i = 0; i < a.size(); ++i) a[i] = u(rng), b[i] = u(rng), c[i] = u(rng);
  using Parts = std::vector<std::vector<double>>;
  EXPECT_NEAR(EffectiveTests(Parts{a, b, c}), 3.0, 0.3) << "three independent p-values";
  EXPECT_NEAR(EffectiveTests(Parts{a, a, a}), 1.0, 0.1) << "the same p-value three times";
  EXPECT_NEAR(EffectiveTests(Parts{a, a, c}), 2.0, 0.3);
  EXPECT_NEAR(EffectiveTests(Parts{a, b, c, c}), 3.0, 0.3) << "a repeated part adds no test";
  std::vector<double> d(2000);
  for (double& v : d) v = u(rng);
  EXPECT_NEAR(EffectiveTests(Parts{a, b, c, d}), 4.0, 0.4) << "four independent p-values";
  const Parts few = {std::vector<double>(50, 0.5), std::vector<double>(50, 0.5)};
  EXPECT_DOUBLE_EQ(EffectiveTests(few), 2.0) << "a small holdout counts every part";
  EXPECT_NEAR(CombinePValues(std::vector<double>{1e-4, 0.5, 0.3, 0.9}, 1.0), 1e-4, 1e-12);
  EXPECT_NEAR(CombinePValues(std::vector<double>{0.5, 0.3, 0.9, 1e-4}, 3.0), 3e-4, 1e-7);
  EXPECT_DOUBLE_EQ(CombinePValues(std::vector<double>{1, 1, 1, 1}, 4.0), 1.0);
}

TEST(Model, SavedAndLoadedScoresTheSame) {
  auto t = TrainOn(sim::Family::kFallingSpectrum, 1e4, 500, 4);
  ASSERT_TRUE(t.model);
  // Every tail shape once: a chi2 for the deviance, a Gumbel for the largest bin, an exponential.
  std::vector<double> maxima(400);
  std::mt19937_64 draw(2);
  std::extreme_value_distribution<double> largest(4, 1);  // a Gumbel: location 4, scale 1
  for (double& m : maxima) m = largest(draw);
  t.model->localised = Calibration::Fit(maxima, 0.25, Calibration::Tail::kGumbel);
  t.model->latent = Calibration::Fit(t.model->latent.sorted_scores(), 0.25);
  ASSERT_EQ(t.model->localised.tail(), Calibration::Tail::kGumbel);
  std::string error;
  const auto back = Deserialize(SerializeModel(*t.model), &error);
  ASSERT_TRUE(back) << error;
  EXPECT_DOUBLE_EQ(back->tests, t.model->tests);
  for (auto part : {&Model::recon, &Model::localised, &Model::latent, &Model::cumulative}) {
    EXPECT_FALSE((*back.*part).empty());
    EXPECT_EQ((*back.*part).tail(), (*t.model.*part).tail());
    EXPECT_DOUBLE_EQ((*back.*part).tail_shape(), (*t.model.*part).tail_shape());
    EXPECT_DOUBLE_EQ((*back.*part).tail_scale(), (*t.model.*part).tail_scale());
    for (double x : {1.0, 5.0, 12.0, 40.0})
      EXPECT_DOUBLE_EQ((*back.*part).PValue(x), (*t.model.*part).PValue(x)) << x;
  }
  ASSERT_FALSE(t.model->lasting.offset.empty());
  EXPECT_EQ(back->lasting.offset, t.model->lasting.offset);
  EXPECT_EQ(back->lasting.spread, t.model->lasting.spread);
  EXPECT_DOUBLE_EQ(back->lasting.allowance, t.model->lasting.allowance);
  // A reference of another binning's blocks is refused, not read past its end.
  Model other = *t.model;
  other.lasting.offset.pop_back();
  EXPECT_FALSE(Deserialize(SerializeModel(other), &error));
  EXPECT_NE(error.find("lasting"), std::string::npos) << error;
  // The axis' reference shape, and one of another binning refused.
  ASSERT_EQ(t.model->axis_reference.size(), t.model->bins() + 1u);
  EXPECT_EQ(back->axis_reference, t.model->axis_reference);
  other = *t.model;
  other.axis_reference.pop_back();
  EXPECT_FALSE(Deserialize(SerializeModel(other), &error));
  EXPECT_NE(error.find("axis reference"), std::string::npos) << error;
  EXPECT_DOUBLE_EQ(back->localised.tail_location(), t.model->localised.tail_location());
  std::mt19937_64 rng(5);
  Scratch s1, s2;
  for (double severity : {0.0, 0.3, 1.0}) {
    const auto h = sim::Draw(t.spec, 1e4, sim::Anomaly::kHotBin, severity, rng);
    EXPECT_DOUBLE_EQ(ScoreHistogram(*back, h.contents, s1).p_value,
                     ScoreHistogram(*t.model, h.contents, s2).p_value);
  }
}

TEST(Model, WideLayersAreScoredInHalfPrecisionAsTheyWereCalibrated) {
  auto t = TrainOn(sim::Family::kPeakOnBackground, 1e4, 200, 3);
  ASSERT_TRUE(t.model);
  const Model& half = *t.model;
  for (const DenseLayer* l : {&half.enc1, &half.dec2}) {
    EXPECT_EQ(l->weight_half.size(), static_cast<size_t>(l->in) * l->out);
    // Released, not just emptied: a monitor holds its model in memory for as long as it lives.
    EXPECT_EQ(l->weight.capacity(), 0u) << "half the bytes per histogram, not both copies";
  }
  EXPECT_TRUE(half.enc2.weight_half.empty()) << "the narrow layers stay in single precision";

  // The same weights in single precision, as a model saved before would hold them: read back in
  // single precision, and scored the same.
  Model single = half;
  for (DenseLayer* l : {&single.enc1, &single.dec2}) {
    l->weight = l->Weights();
    l->weight_half.clear();
  }
  std::string error;
  const auto loaded_single = Deserialize(SerializeModel(single), &error);
  ASSERT_TRUE(loaded_single) << error;
  EXPECT_FALSE(loaded_single->enc1.weight.empty());
  const auto loaded_half = Deserialize(SerializeModel(half), &error);
  ASSERT_TRUE(loaded_half) << error;
  EXPECT_FALSE(loaded_half->dec2.weight_half.empty());
  EXPECT_EQ(loaded_half->dec2.weight.capacity(), 0u);
  EXPECT_LT(SerializeModel(half).size(), SerializeModel(single).size());
  std::mt19937_64 rng(11);
  Scratch a, b, c;
  for (double severity : {0.0, 0.5}) {
    const auto h = sim::Draw(t.spec, 1e4, sim::Anomaly::kShiftedPeak, severity, rng);
    const Score s = ScoreHistogram(half, h.contents, a);
    EXPECT_DOUBLE_EQ(ScoreHistogram(*loaded_single, h.contents, b).deviance, s.deviance);
    EXPECT_DOUBLE_EQ(ScoreHistogram(*loaded_half, h.contents, c).p_value, s.p_value);
  }

  // Weights that are not all half-precision values stay as they are.
  DenseLayer odd = single.enc1;
  odd.weight[0] = 1.0000001f;
  EXPECT_FALSE(StoreHalf(odd));
  EXPECT_EQ(odd.weight[0], 1.0000001f);
  EXPECT_TRUE(odd.weight_half.empty());
  DenseLayer exact = single.enc1;
  EXPECT_TRUE(StoreHalf(exact));
  EXPECT_EQ(exact.weight.capacity(), 0u);
  EXPECT_EQ(exact.Weights(), single.enc1.weight);
}

TEST(Model, ModelsSavedBeforeFittedTailsLoadAsTheyWereScored) {
  auto t = TrainOn(sim::Family::kFallingSpectrum, 1e4, 200, 4);
  ASSERT_TRUE(t.model);
  const std::string bytes = SerializeModel(*t.model);
  auto j = nlohmann::json::from_cbor(bytes.begin(), bytes.end());
  j.erase("tests");
  j.erase("cumulative");
  for (const char* part : {"recon", "localised", "latent"}) j[part].erase("shape");
  const auto old_bytes = nlohmann::json::to_cbor(j);
  std::string error;
  const auto old = Deserialize(std::string(old_bytes.begin(), old_bytes.end()), &error);
  ASSERT_TRUE(old) << error;
  EXPECT_EQ(old->tests, 3.0);
  EXPECT_EQ(old->recon.tail_shape(), 0.0);
  EXPECT_TRUE(old->cumulative.empty());
  std::mt19937_64 rng(5);
  Scratch scratch;
  const auto shifted = sim::Draw(t.spec, 1e4, sim::Anomaly::kShiftedPeak, 1.0, rng);
  EXPECT_EQ(ScoreHistogram(*old, shifted.contents, scratch).p_cumulative, 1.0)
      << "a model without the cumulative statistic does not judge by it";
  j["tests"] = 7.0;
  const auto bad_bytes = nlohmann::json::to_cbor(j);
  EXPECT_FALSE(Deserialize(std::string(bad_bytes.begin(), bad_bytes.end()), &error));
  EXPECT_NE(error.find("tests"), std::string::npos) << error;
  j["tests"] = 2.0;
  j["recon"]["shape"] = -1.0;
  const auto bad_shape = nlohmann::json::to_cbor(j);
  EXPECT_FALSE(Deserialize(std::string(bad_shape.begin(), bad_shape.end()), &error));
  EXPECT_NE(error.find("shape"), std::string::npos) << error;
}

TEST(Model, AFirstModelOnAHundredHistogramsKeepsItsPromise) {
  // A monitor's first model trains on 100 histograms and calibrates on 25: few enough that a
  // fitted tail could promise far fewer false alarms than happen, for hours of lumisections.
  for (auto family : {sim::Family::kFallingSpectrum, sim::Family::kPeakOnBackground}) {
    for (uint64_t seed : {1, 2, 3}) {
      auto t = TrainOn(family, 1e4, 100, seed);
      ASSERT_TRUE(t.model);
      std::mt19937_64 rng(seed + 100);
      Scratch scratch;
      int warnings = 0;
      const int n = 4000;
      for (int i = 0; i < n; ++i) {
        const auto s = sim::Draw(t.spec, 1e4, sim::Anomaly::kNone, 0, rng);
        warnings += ScoreHistogram(*t.model, s.contents, scratch).p_value < 1e-2;
      }
      EXPECT_LT(warnings, n * 2e-2) << sim::Name(family) << " seed " << seed << ": " << warnings
                                    << " of " << n << " below p = 0.01";
    }
  }
}

TEST(Model, TrainingFailsCleanlyOnTooFewSamples) {
  std::vector<std::vector<float>> few(5, std::vector<float>(10, 1.0f));
  const auto out = Train(few, {10}, TrainOptions{});
  EXPECT_FALSE(out.model);
  EXPECT_NE(out.error.find("at least 10"), std::string::npos) << out.error;
}

TEST(Model, NormalHistogramsScoreNearOneAndAreNotFlagged) {
  auto t = TrainOn(sim::Family::kPeakOnBackground, 1e4, 200, 2);
  ASSERT_TRUE(t.model);
  std::mt19937_64 rng(1234);
  Scratch scratch;
  int bad = 0, warning = 0;
  double mean_dev = 0;
  const int n = 500;
  for (int i = 0; i < n; ++i) {
    const auto s = sim::Draw(t.spec, 1e4, sim::Anomaly::kNone, 0, rng);
    const auto score = ScoreHistogram(*t.model, s.contents, scratch);
    bad += score.p_value < 1e-5;
    warning += score.p_value < 1e-3;
    mean_dev += score.deviance / n;
  }
  EXPECT_EQ(bad, 0);
  EXPECT_LE(warning, 5) << "nominal 1e-3 of 500";
  EXPECT_LT(mean_dev, 2.0);
  EXPECT_GT(mean_dev, 0.5);
}

TEST(Model, ClearAnomaliesGetTinyPValuesAndPointAtTheDefect) {
  auto t = TrainOn(sim::Family::kPeakOnBackground, 1e4, 200, 3);
  ASSERT_TRUE(t.model);
  std::mt19937_64 rng(77);
  Scratch scratch;
  for (auto kind : {sim::Anomaly::kHotBin, sim::Anomaly::kDeadRegion, sim::Anomaly::kShiftedPeak,
                    sim::Anomaly::kMissingFeature}) {
    int flagged = 0, localised = 0;
    const int n = 20;
    for (int i = 0; i < n; ++i) {
      const auto s = sim::Draw(t.spec, 1e4, kind, 2.0, rng);
      const auto score = ScoreHistogram(*t.model, s.contents, scratch);
      flagged += score.p_value < 1e-5;
      for (const auto& b : score.top_bins)
        if (std::find(s.defect_bins.begin(), s.defect_bins.end(), b.bin) != s.defect_bins.end()) {
          ++localised;
          break;
        }
    }
    EXPECT_GE(flagged, n * 9 / 10) << sim::Name(kind);
    if (kind != sim::Anomaly::kMissingFeature) {
      EXPECT_GE(localised, n * 8 / 10) << sim::Name(kind);
    }
  }
}

// A tower of 5x5 neighbouring cells of a 60x60 map, where the map has 20-50 entries per cell,
// raised to 1.5x its occupancy: each cell moves by 2.2-3.5 sigma, less than the largest of 3,600
// normal cells' fluctuations, but the tower's sum by 11-18.
TEST(Model, ABlockOfNeighbouringBinsEachWithinItsNoiseIsCaughtByTheRegionalStatistic) {
  const std::vector<uint32_t> shape{60, 60};
  const double entries = 40.0 * 3600;
  auto t = TrainOn(sim::Family::kOccupancy2D, entries, 500, 21, shape);
  ASSERT_TRUE(t.model);
  ASSERT_FALSE(t.model->regional.empty());
  std::mt19937_64 rng(22);
  Scratch scratch;
  int normal_flagged = 0;
  const int normals = 400;
  for (int i = 0; i < normals; ++i) {
    const auto s = sim::Draw(t.spec, entries, sim::Anomaly::kNone, 0, rng);
    const auto sc = ScoreHistogram(*t.model, s.contents, scratch);
    normal_flagged += sc.p_value < 1e-3;
  }
  EXPECT_LE(normal_flagged, 3) << "of " << normals << " normal maps flagged at p < 1e-3";
  int caught = 0, by_one_bin = 0, found = 0;
  const int towers = 50;
  for (int i = 0; i < towers; ++i) {
    auto s = sim::Draw(t.spec, entries, sim::Anomaly::kNone, 0, rng);
    // A place where the map has 20-50 entries per cell.
    uint32_t x0 = 0, y0 = 0;
    for (int tries = 0;; ++tries) {
      ASSERT_LT(tries, 10000) << "the map has no 5x5 block at 20-50 entries per cell";
      x0 = static_cast<uint32_t>(rng() % 56);
      y0 = static_cast<uint32_t>(rng() % 56);
      double lowest = 1e9, highest = 0;
      for (uint32_t x = x0; x < x0 + 5; ++x)
        for (uint32_t y = y0; y < y0 + 5; ++y) {
          lowest = std::min(lowest, s.expected[x * shape[1] + y]);
          highest = std::max(highest, s.expected[x * shape[1] + y]);
        }
      if (lowest >= 20 && highest <= 50) break;
    }
    for (uint32_t x = x0; x < x0 + 5; ++x)
      for (uint32_t y = y0; y < y0 + 5; ++y) {
        const size_t b = x * shape[1] + y;
        s.contents[b] = std::poisson_distribution<int>(1.5 * s.expected[b])(rng);
      }
    const auto score = ScoreHistogram(*t.model, s.contents, scratch);
    caught += score.p_value < 1e-3;
    by_one_bin += score.p_localised < 1e-3;
    // The region found overlaps the tower.
    const uint32_t rx = score.region.first / shape[1], ry = score.region.first % shape[1];
    found += score.region.width > 0 && rx < x0 + 5 && x0 < rx + score.region.width && ry < y0 + 5 &&
             y0 < ry + score.region.height && score.region.observed > score.region.expected;
  }
  std::printf(
      "5x5 tower at 1.5x in a 60x60 map: caught %d/%d at p < 1e-3 (the largest bin alone "
      "%d), located %d; normals flagged %d/%d\n",
      caught, towers, by_one_bin, found, normal_flagged, normals);
  EXPECT_GE(caught, towers * 9 / 10);
  EXPECT_GE(found, towers * 9 / 10);
  EXPECT_LT(by_one_bin, towers / 2) << "the tower was visible in a single bin: no test of blocks";
}

// The lasting evidence keeps its promise on a long run of normal histograms (the rate of
// p < 1e-3 and of p < 1e-2 within twice that), stays quiet while the gain drifts away from what
// the model knows (the axis' nuisances are profiled), and adds a block too faint for one
// histogram up to a flag within 20 of them, for the bins where it is.
TEST(Model, LastingEvidenceKeepsItsPromiseFollowsAGainAndAddsUpAFaintBlock) {
  auto t = TrainOn(sim::Family::kFallingSpectrum, 1e4, 500, 31);
  ASSERT_TRUE(t.model);
  ASSERT_FALSE(t.model->lasting.offset.empty())
      << "no lasting reference on a 125-histogram holdout";
  std::mt19937_64 rng(32);
  Scratch scratch;
  LastingRegions lasting;
  const int normals = 3000;
  int below_1e3 = 0, below_1e2 = 0;
  for (int i = 0; i < normals; ++i) {
    const auto s = sim::Draw(t.spec, 1e4, sim::Anomaly::kNone, 0, rng);
    ScoreHistogram(*t.model, s.contents, scratch);
    const auto f = lasting.Add(*t.model, s.contents, scratch);
    below_1e3 += f.p_value < 1e-3;
    below_1e2 += f.p_value < 1e-2;
  }
  // The gain drifts by 3% over 300 lumisections, beyond what the model was trained on.
  int drift_flagged = 0, drift_single = 0;
  sim::MonitorSpec drifting = t.spec;
  for (int i = 0; i < 300; ++i) {
    drifting.gain = 1 + 1e-4 * i;
    const auto s = sim::Draw(drifting, 1e4, sim::Anomaly::kNone, 0, rng);
    drift_single += ScoreHistogram(*t.model, s.contents, scratch).p_value < 1e-3;
    drift_flagged += lasting.Add(*t.model, s.contents, scratch).p_value < 1e-3;
  }
  lasting.Clear();
  // Bins 31-46 at 0.9: about 2 sigma of their sum in each histogram.
  int first = -1, flagged = 0, single_flags = 0;
  LastingRegions::Finding last;
  const int lasting_for = 60;
  for (int i = 0; i < lasting_for; ++i) {
    auto s = sim::Draw(t.spec, 1e4, sim::Anomaly::kNone, 0, rng);
    for (size_t b = 30; b < 46; ++b)
      s.contents[b] = std::poisson_distribution<int>(0.9 * s.expected[b])(rng);
    const auto score = ScoreHistogram(*t.model, s.contents, scratch);
    single_flags += score.p_value < 1e-3;
    last = lasting.Add(*t.model, s.contents, scratch);
    if (last.p_value < 1e-3) {
      if (first < 0) first = i;
      ++flagged;
    }
  }
  std::printf(
      "lasting evidence on %d normal spectra: p < 1e-3 %d, p < 1e-2 %d; a 3%% gain drift: %d/300 "
      "(single histograms %d/300); bins 31-46 at 0.9: single histograms flagged %d/%d, lasting "
      "evidence first at %d, then %d/%d, last at bins %u-%u (%s) for %u\n",
      normals, below_1e3, below_1e2, drift_flagged, drift_single, single_flags, lasting_for,
      first + 1, flagged, lasting_for - first, last.region.first + 1,
      last.region.first + last.region.width, last.low ? "low" : "high", last.length);
  EXPECT_LE(below_1e3, 2 * normals / 1000);
  EXPECT_LE(below_1e2, 2 * normals / 100);
  EXPECT_LE(drift_flagged, 1);
  EXPECT_LT(single_flags, lasting_for / 4) << "the block is visible in single histograms";
  ASSERT_GE(first, 0) << "the faint block was never flagged";
  EXPECT_LT(first, 20);
  EXPECT_GE(flagged, (lasting_for - first) * 95 / 100);
  EXPECT_TRUE(last.low);
  EXPECT_TRUE(last.region.first < 46 && last.region.first + last.region.width > 30);

  // What it gathered outlives a restart: restored, the sums go on as they would have.
  LastingRegions restored;
  ASSERT_TRUE(restored.Restore(*t.model, lasting.Save()));
  auto s = sim::Draw(t.spec, 1e4, sim::Anomaly::kNone, 0, rng);
  for (size_t b = 30; b < 46; ++b)
    s.contents[b] = std::poisson_distribution<int>(0.9 * s.expected[b])(rng);
  ScoreHistogram(*t.model, s.contents, scratch);
  const auto going_on = lasting.Add(*t.model, s.contents, scratch);
  const auto after_restore = restored.Add(*t.model, s.contents, scratch);
  EXPECT_EQ(after_restore.p_value, going_on.p_value);
  EXPECT_EQ(after_restore.length, going_on.length);
  EXPECT_LT(after_restore.p_value, 1e-3);
  // A state of another binning, or with a sum no Add gives, is refused and changes nothing.
  LastingRegions::State other = lasting.Save();
  other.high.pop_back();
  EXPECT_FALSE(restored.Restore(*t.model, other));
  other = lasting.Save();
  other.low[3] = LastingRegions::kCap + 1;
  EXPECT_FALSE(restored.Restore(*t.model, other));
  other.low[3] = std::nanf("");
  EXPECT_FALSE(restored.Restore(*t.model, other));
  EXPECT_EQ(restored.Save().low, lasting.Save().low);
}

// sqrt(N) sup_j |F_c(j) - F_e(j)| over bins in the given order.
double Kolmogorov(const std::vector<double>& c, const std::vector<double>& e) {
  double sc = 0, se = 0, n = 0, d = 0;
  for (double v : c) n += v;
  for (size_t i = 0; i < c.size(); ++i) {
    sc += c[i];
    se += e[i];
    d = std::max(d, std::abs(sc - se) / n);
  }
  return std::sqrt(n) * d;
}

TEST(Model, SmallShiftOfABroadShapeIsCaughtByItsCumulativeSums) {
  // The luminous region of an occupancy moving by a tenth of its width changes each bin by less
  // than its Poisson noise at 1e4 entries, but moves every cumulative sum the same way.
  for (auto family : {sim::Family::kChannelOccupancy, sim::Family::kOccupancy2D}) {
    auto t = TrainOn(family, 1e4, 500, 6);
    ASSERT_TRUE(t.model);
    Model per_bin_only = *t.model;  // the statistics of single bins and of the whole
    per_bin_only.cumulative = Calibration();
    per_bin_only.regional = Calibration();
    std::mt19937_64 rng(8);
    Scratch scratch;
    int false_alarms = 0, false_alarms_per_bin = 0, caught = 0, caught_per_bin = 0;
    const int normals = 2000, shifted = 100;
    for (int i = 0; i < normals; ++i) {
      const auto s = sim::Draw(t.spec, 1e4, sim::Anomaly::kNone, 0, rng);
      false_alarms += ScoreHistogram(*t.model, s.contents, scratch).p_value < 1e-3;
      false_alarms_per_bin += ScoreHistogram(per_bin_only, s.contents, scratch).p_value < 1e-3;
    }
    for (int i = 0; i < shifted; ++i) {
      const auto s = sim::Draw(t.spec, 1e4, sim::Anomaly::kShiftedPeak, 0.25, rng);
      const auto score = ScoreHistogram(*t.model, s.contents, scratch);
      caught += score.p_value < 1e-3;
      caught_per_bin += ScoreHistogram(per_bin_only, s.contents, scratch).p_value < 1e-3;
      if (i == 0) {
        // The statistic is the Kolmogorov distance from the model's expectation; a map's is the
        // larger of its projections'.
        std::vector<double> c = s.contents, e = scratch.expected;
        double expected_ks = Kolmogorov(c, e);
        if (t.spec.shape.size() == 2) {
          const size_t nx = t.spec.shape[0], ny = t.spec.shape[1];
          std::vector<double> cx(nx), ex(nx), cy(ny), ey(ny);
          for (size_t ix = 0; ix < nx; ++ix)
            for (size_t iy = 0; iy < ny; ++iy) {
              cx[ix] += c[ix * ny + iy], ex[ix] += e[ix * ny + iy];
              cy[iy] += c[ix * ny + iy], ey[iy] += e[ix * ny + iy];
            }
          expected_ks = std::max(Kolmogorov(cx, ex), Kolmogorov(cy, ey));
        }
        EXPECT_NEAR(score.ks_distance, expected_ks, 1e-6 * expected_ks) << sim::Name(family);
      }
    }
    std::printf(
        "%s: %d of %d shifted caught at p < 1e-3, %d without the cumulative statistic; "
        "%d and %d of %d normals\n",
        std::string(sim::Name(family)).c_str(), caught, shifted, caught_per_bin, false_alarms,
        false_alarms_per_bin, normals);
    EXPECT_GE(caught, shifted * 3 / 4) << sim::Name(family);
    EXPECT_GE(caught - caught_per_bin, shifted / 4) << sim::Name(family);
    // At most its share of the false alarms (one test of five at 1e-3), and a sample's noise.
    EXPECT_LE(false_alarms, false_alarms_per_bin + 4) << sim::Name(family);
  }
}

TEST(Model, ScoreMeansTheSameAtLowAndHighStatistics) {
  // The frame's promise: normal deviance stays O(1) from 1e3 to 1e6 entries.
  for (double entries : {1e3, 1e6}) {
    auto t = TrainOn(sim::Family::kTiming, entries, 150, 4);
    ASSERT_TRUE(t.model);
    EXPECT_GT(t.report.holdout_deviance, 0.3) << entries;
    EXPECT_LT(t.report.holdout_deviance, 4.0) << entries;
  }
}

TEST(Model, LatentReferenceFollowsTheTrendOfItsWindow) {
  // A gain drift across the window: with a horizon the latent reference expects the drift to go
  // on, so the histograms that follow are not latent outliers; without one they are.
  SetComputeThreads(1);
  sim::MonitorSpec spec;
  for (const auto& s : sim::DefaultMonitors(10))
    if (s.family == sim::Family::kPeakOnBackground) spec = s;
  std::mt19937_64 rng(21);
  auto draw = [&](double gain) {
    spec.gain = gain;
    const auto s = sim::Draw(spec, 1e4, sim::Anomaly::kNone, 0, rng);
    return s.contents;
  };
  std::vector<std::vector<float>> window;
  for (int i = 0; i < 400; ++i) {
    const auto c = draw(1.0 + 0.0002 * i);
    window.emplace_back(c.begin(), c.end());
  }
  std::vector<std::vector<double>> ahead;
  for (int i = 400; i < 500; ++i) ahead.push_back(draw(1.0 + 0.0002 * i));
  std::map<uint32_t, int> latent_outliers;
  for (uint32_t horizon : {0u, 100u}) {
    TrainOptions opt;
    opt.latent_horizon = horizon;
    const auto out = Train(window, spec.shape, opt);
    ASSERT_TRUE(out.model) << out.error;
    Scratch scratch;
    for (const auto& c : ahead)
      latent_outliers[horizon] += ScoreHistogram(*out.model, c, scratch).p_latent < 1e-2;
  }
  std::printf(
      "latent p < 0.01 among 100 histograms after a drifting window: %d without a "
      "horizon, %d with\n",
      latent_outliers[0], latent_outliers[100]);
  EXPECT_LT(latent_outliers[100], 10) << "of 100 following the trend";
  EXPECT_GT(latent_outliers[0], 2 * latent_outliers[100]);
}

}  // namespace
}  // namespace histguard::models
