// Tests for server/change_check.h: a drift of the axis or a smooth tilt is a nuisance, a block of
// channels going low is a localised change, and a held change is tested on single histograms
// with a spread that means the same at any number of entries.
#include "server/change_check.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "simulation/detector_simulator.h"

namespace histguard::server {
namespace {

using sim::Anomaly;
using sim::Family;

sim::MonitorSpec SpecOf(Family family) {
  for (const auto& s : sim::DefaultMonitors(5))
    if (s.family == family) return s;
  return {};
}

// `count` histograms of the family at `entries`, with the gain moving from `gain_from` by
// `gain_step` each; a block (bins) at `efficiency` (half) when given.
std::vector<std::vector<float>> Draw(sim::MonitorSpec spec, int count, double gain_from,
                                     double gain_step, std::mt19937_64& rng,
                                     const std::vector<uint32_t>& halved = {}, double entries = 1e4,
                                     double efficiency = 0.5) {
  std::vector<std::vector<float>> out;
  for (int i = 0; i < count; ++i) {
    spec.gain = gain_from + gain_step * i;
    const auto s = sim::Draw(spec, entries, Anomaly::kNone, 0, rng);
    std::vector<float> c(s.contents.begin(), s.contents.end());
    for (uint32_t b : halved) {
      std::binomial_distribution<long long> keep(static_cast<long long>(c[b]), efficiency);
      c[b] = static_cast<float>(keep(rng));
    }
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<uint32_t> Range(uint32_t from, uint32_t to) {
  std::vector<uint32_t> v;
  for (uint32_t b = from; b < to; ++b) v.push_back(b);
  return v;
}

TEST(ChangeCheck, AGainThatMovedIsANuisanceForEverySpectrum) {
  std::mt19937_64 rng(1);
  for (Family f : {Family::kPeakOnBackground, Family::kFallingSpectrum, Family::kTiming}) {
    const auto spec = SpecOf(f);
    SCOPED_TRACE(spec.name);
    // 200 histograms the model knows, then 100 new ones 3% further on: what a retraining sees
    // when a drift runs ahead of the models.
    const auto ref = Draw(spec, 200, 1.0, 0.0001, rng);
    const auto now = Draw(spec, 100, 1.03, 0.0001, rng);
    const auto r = CompareShapes(Summarise(ref), Summarise(now), spec.shape);
    EXPECT_FALSE(r.localised) << r.where << " at " << r.z << " sd; " << r.nuisances;
    EXPECT_NE(r.nuisances.find("gain 1.0"), std::string::npos) << r.nuisances;
  }
}

TEST(ChangeCheck, NoChangeIsNoChange) {
  std::mt19937_64 rng(2);
  for (Family f : sim::kAllFamilies) {
    const auto spec = SpecOf(f);
    SCOPED_TRACE(spec.name);
    const auto r = CompareShapes(Summarise(Draw(spec, 200, 1.0, 0, rng)),
                                 Summarise(Draw(spec, 60, 1.0, 0, rng)), spec.shape);
    EXPECT_FALSE(r.localised) << r.where << " at " << r.z << " sd";
  }
}

TEST(ChangeCheck, AHalfEfficientBlockIsLocalisedAndNamed) {
  std::mt19937_64 rng(3);
  struct Case {
    Family family;
    std::vector<uint32_t> block;
  };
  std::vector<uint32_t> tile;  // bins x 7-9, y 12-14 of the 20 x 20 map (from 1)
  for (uint32_t x = 6; x < 9; ++x)
    for (uint32_t y = 11; y < 14; ++y) tile.push_back(x * 20 + y);
  for (const Case& c : {Case{Family::kPeakOnBackground, Range(42, 47)},
                        Case{Family::kChannelOccupancy, Range(60, 68)},
                        Case{Family::kTiming, Range(60, 64)}, Case{Family::kOccupancy2D, tile}}) {
    const auto spec = SpecOf(c.family);
    SCOPED_TRACE(spec.name);
    // 20 of the 60 new histograms carry the defect: a retraining soon after it began.
    auto now = Draw(spec, 40, 1.0, 0, rng);
    for (auto& h : Draw(spec, 20, 1.0, 0, rng, c.block)) now.push_back(std::move(h));
    const auto ref = Draw(spec, 200, 1.0, 0, rng);
    const auto r = CompareShapes(Summarise(ref), Summarise(now), spec.shape);
    ASSERT_TRUE(r.localised) << r.where << " at " << r.z << " sd";
    EXPECT_LT(r.relative, 0);
    EXPECT_NE(r.where.find(" low by "), std::string::npos) << r.where;
    // The block it names overlaps the defect.
    bool overlaps = false;
    const uint32_t ny = spec.shape.size() == 2 ? spec.shape[1] : 1;
    for (uint32_t b : c.block)
      overlaps |= b / ny >= r.block.x0 && b / ny < r.block.x1 && b % ny >= r.block.y0 &&
                  b % ny < r.block.y1;
    EXPECT_TRUE(overlaps) << r.where;

    // Held, it is seen in single histograms with the defect, not in normal ones, at 1e4 as at
    // 1e5 entries.
    const HeldChange held = MakeHeldChange(r, ref, spec.shape);
    for (double entries : {1e4, 1e5}) {
      double mean_defect = 0, mean_normal = 0;
      const auto defect = Draw(spec, 50, 1.0, 0, rng, c.block, entries);
      const auto normal = Draw(spec, 50, 1.0, 0, rng, {}, entries);
      for (int i = 0; i < 50; ++i) {
        const std::vector<double> d(defect[i].begin(), defect[i].end());
        const std::vector<double> n(normal[i].begin(), normal[i].end());
        mean_defect += held.Pull(d, nullptr) / 50;
        mean_normal += held.Pull(n, nullptr) / 50;
      }
      EXPECT_GT(mean_defect, 2.5) << entries << " entries";
      EXPECT_LT(std::abs(mean_normal), 0.5) << entries << " entries";
    }
  }
}

TEST(ChangeCheck, WhereTheLastingEvidenceFlaggedASmallerChangeIsHeld) {
  // A faint defect (a tenth of a falling spectrum's bins 31-46 lost) in the 30 newest
  // histograms: a drift retraining soon after it began, set off by its low p-values.
  std::mt19937_64 rng(4);
  const auto spec = SpecOf(Family::kFallingSpectrum);
  const auto ref = Summarise(Draw(spec, 200, 1.0, 0, rng));
  const auto now = Summarise(Draw(spec, 30, 1.0, 0, rng, Range(30, 46), 1e4, 0.9));
  const ChangeReport alone = CompareShapes(ref, now, spec.shape);
  EXPECT_FALSE(alone.localised) << "too faint for the search over every block: " << alone.where
                                << " at " << alone.z << " sd";
  // The lasting evidence flagged bins 33-40 low: the candidate learned that, and is held.
  const LastingBlock flagged{{32, 40, 0, 1}, true};
  const ChangeReport there = CompareShapes(ref, now, spec.shape, flagged);
  ASSERT_TRUE(there.localised) << there.at_lasting;
  EXPECT_EQ(there.block.x0, 32u);
  EXPECT_EQ(there.block.x1, 40u);
  EXPECT_LT(there.relative, 0);
  EXPECT_NE(there.where.find("bins 33-40 low by"), std::string::npos) << there.where;
  EXPECT_EQ(there.at_lasting.find(there.where), 0u) << there.at_lasting;
  // Flagged the other way, it is not what the candidate learned.
  const ChangeReport other =
      CompareShapes(ref, now, spec.shape, LastingBlock{flagged.block, false});
  EXPECT_FALSE(other.localised) << other.where;
  // With a larger change elsewhere as well, the block the crew was told about is the one held.
  std::vector<uint32_t> both = Range(30, 46);
  for (uint32_t b = 70; b < 74; ++b) both.push_back(b);
  const auto elsewhere = Summarise(Draw(spec, 30, 1.0, 0, rng, both, 1e4, 0.9));
  ASSERT_TRUE(CompareShapes(ref, elsewhere, spec.shape).localised);
  const ChangeReport named = CompareShapes(ref, elsewhere, spec.shape, flagged);
  EXPECT_TRUE(named.localised);
  EXPECT_EQ(named.block.x0, 32u) << named.where;
  EXPECT_EQ(named.block.x1, 40u) << named.where;
  // Normal candidates are not held for a block the evidence flagged by chance.
  int held = 0;
  for (int i = 0; i < 20; ++i)
    held +=
        CompareShapes(ref, Summarise(Draw(spec, 30, 1.0, 0, rng)), spec.shape, flagged).localised;
  EXPECT_EQ(held, 0);
}

// A chain of retrainings that each learned a little of a faint defect: against the data before
// the newest (already holding some of it) it shows at a few percent, under the bar; against the
// anchor's data all of it shows, and the held change is tested against the anchor's share.
TEST(ChangeCheck, AgainstTheAnchorsDataAFaintDefectLearnedInStepsIsHeld) {
  std::mt19937_64 rng(9);
  const auto spec = SpecOf(Family::kFallingSpectrum);
  const auto anchor_data = Draw(spec, 100, 1.0, 0, rng);
  const ShapeStats anchor = Summarise(anchor_data);
  // The 200 before the newest: four in five already with the defect.
  auto before = Draw(spec, 40, 1.0, 0, rng);
  for (auto& c : Draw(spec, 160, 1.0, 0, rng, Range(30, 46), 1e4, 0.9)) before.push_back(c);
  const ShapeStats now = Summarise(Draw(spec, 30, 1.0, 0, rng, Range(30, 46), 1e4, 0.9));
  const LastingBlock flagged{{32, 40, 0, 1}, true};
  const ChangeReport recent = CompareShapes(Summarise(before), now, spec.shape, flagged);
  EXPECT_FALSE(recent.localised) << recent.at_lasting;
  const ChangeReport anchored =
      CompareShapes(anchor, now, spec.shape, flagged, kWhereLastingAgainstAnchor);
  ASSERT_TRUE(anchored.held_at_lasting) << anchored.at_lasting;
  EXPECT_NE(anchored.where.find("bins 33-40 low by"), std::string::npos) << anchored.where;
  EXPECT_LT(anchored.relative, -kWhereLastingAgainstAnchor.relative);
  // Tested against the anchor's share, a defect histogram pulls the way of the change more than
  // against the share of the data that already held it.
  const HeldChange plain = MakeHeldChange(anchored, before, spec.shape);
  const HeldChange against_anchor = MakeHeldChange(anchored, before, spec.shape, &anchor);
  EXPECT_GT(against_anchor.share, plain.share);
  double pull_plain = 0, pull_anchor = 0;
  for (const auto& c : Draw(spec, 50, 1.0, 0, rng, Range(30, 46), 1e4, 0.9)) {
    const std::vector<double> d(c.begin(), c.end());
    pull_plain += plain.Pull(d, nullptr) / 50;
    pull_anchor += against_anchor.Pull(d, nullptr) / 50;
  }
  EXPECT_GT(pull_anchor, 1) << "the held test's CUSUM (allowance 1) adds it up";
  EXPECT_GT(pull_anchor, pull_plain + 1) << pull_plain;
  // Normal data and a drifting gain are not held against the anchor for a block flagged once.
  int held = 0;
  for (int i = 0; i < 20; ++i) {
    held += CompareShapes(anchor, Summarise(Draw(spec, 30, 1.0, 0, rng)), spec.shape, flagged,
                          kWhereLastingAgainstAnchor)
                .held_at_lasting;
    held += CompareShapes(anchor, Summarise(Draw(spec, 30, 1.2 + 0.005 * i, 0, rng)), spec.shape,
                          flagged, kWhereLastingAgainstAnchor)
                .held_at_lasting;
  }
  EXPECT_EQ(held, 0);
}

// A dip in a falling spectrum's bulk is taken up in part by the fitted gain and quadratic tilt
// when they are fitted to every bin; fitted outside the block, the dip shows in full. Normal data
// and a gain 1% away are seldom held for a block pointed at by chance.
TEST(ChangeCheck, FittedOutsideTheBlockAFaintDipInASpectrumsBulkShows) {
  std::mt19937_64 rng(77);
  const auto spec = SpecOf(Family::kFallingSpectrum);
  const LastingBlock pointed{{36, 44, 0, 1}, true};
  int every_bin = 0, outside = 0;
  for (int trial = 0; trial < 30; ++trial) {
    const ShapeStats anchor = Summarise(Draw(spec, 200, 1.0, 0, rng));
    const ShapeStats now = Summarise(Draw(spec, 20, 1.0, 0, rng, Range(30, 46), 1e4, 0.9));
    const ChangeReport a =
        CompareShapes(anchor, now, spec.shape, pointed, kWhereLastingAgainstAnchor);
    const ChangeReport b =
        CompareShapes(anchor, now, spec.shape, pointed, kOutsideTheBlockAgainstAnchor);
    every_bin += a.held_at_lasting;
    outside += b.held_at_lasting;
  }
  // 18 of 30, and 7 fitted to every bin.
  EXPECT_GE(outside, 15) << "of 30; fitted to every bin: " << every_bin;
  EXPECT_GE(outside, every_bin + 5);
  int held = 0, tried = 0;
  for (Family f : {Family::kPeakOnBackground, Family::kFallingSpectrum, Family::kTiming}) {
    const auto s = SpecOf(f);
    for (double gain : {1.0, 1.01}) {
      const ShapeStats anchor = Summarise(Draw(s, 200, 1.0, 0, rng));
      const ShapeStats now = Summarise(Draw(s, 20, gain, 0, rng));
      for (uint32_t w : {4u, 8u, 16u})
        for (uint32_t x0 = 0; x0 + w <= s.shape[0]; x0 += w / 2)
          for (bool low : {true, false}) {
            ++tried;
            held += CompareShapes(anchor, now, s.shape, LastingBlock{{x0, x0 + w, 0, 1}, low},
                                  kOutsideTheBlockAgainstAnchor)
                        .held_at_lasting;
          }
    }
  }
  EXPECT_LE(held, tried / 50) << "of " << tried << " blocks";  // 8 of 1,008
}

TEST(ChangeCheck, MismatchedOrTooFewHistogramsAreNoChange) {
  std::mt19937_64 rng(4);
  const auto spec = SpecOf(Family::kTiming);
  const auto ref = Summarise(Draw(spec, 50, 1.0, 0, rng));
  EXPECT_FALSE(CompareShapes(ref, Summarise({}), spec.shape).localised);
  ShapeStats other = ref;
  other.mean.pop_back();
  EXPECT_FALSE(CompareShapes(ref, other, spec.shape).localised);
  EXPECT_FALSE(CompareShapes(ref, ref, {7, 7}).localised) << "a shape of another size";
}

}  // namespace
}  // namespace histguard::server
