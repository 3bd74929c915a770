// Change check: is what a candidate model would learn a nuisance the monitor may follow on its
// own (a drifting gain, a shifted axis, a smooth tilt), or a localised change (a block of bins,
// a module, a region of a map going low or high) that only a person may make the new normal?
//
// It compares the mean shapes of two sets of a monitor's histograms: the newest ones the
// candidate trained on (`now`) against the ones the current model also trained on (`reference`).
// On 1D histograms the reference is first fitted to `now` with the nuisances profiled:
//   M(x) = exp(t1 u + t2 u^2) A((x - shift) / gain) / norm,   u = x - 1/2,  x in [0, 1]
// (the reference's cumulative distribution is transformed, so counts are moved between bins, not
// resampled). Maps get the normalisation only. The residual B - M is then pooled over blocks of
// neighbouring bins (1D widths 2 to n/8, 2D squares of 2 up to a quarter of the map), each against
// the spread of the two means (the histograms' own lumisection-to-lumisection variance over their
// number). A block is a localised change when it is both significant (|z| >= kMinZ) and large
// (|relative change| >= kMinRelative): a nuisance the fit leaves over is smooth and small.
//
// Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace histguard::server {

// Mean and lumisection-to-lumisection variance of normalised shapes.
struct ShapeStats {
  std::vector<double> mean, var;
  size_t count = 0;
};
// Of the histograms in `counts` (each of the same size; empty ones skipped).
ShapeStats Summarise(std::span<const std::vector<float>> counts);

// A block of bins: half-open ranges; 1D: y0 = 0, y1 = 1.
struct BinBlock {
  uint32_t x0 = 0, x1 = 0, y0 = 0, y1 = 1;
};

struct ChangeReport {
  bool localised = false;
  BinBlock block;       // where, when localised
  double z = 0;         // pooled significance of the most significant large block
  double relative = 0;  // its relative change, (now - fitted reference) / fitted reference
  // The most significant block that changed by kMinRelative or more, localised or not: "bins
  // 43-47 low by 48%" (numbered from 1, as ROOT does); empty when none did.
  std::string where;
  std::string nuisances;  // "gain 1.021, shift +0.003, tilt +0.01/+0.00" (1D), "" for maps
  // The block the lasting evidence flagged, when given: "bins 31-46 low by 7% at -6.2 sd".
  std::string at_lasting;
  // That block changed the way the evidence said by `bar` or more: it is the block reported.
  bool held_at_lasting = false;
};

inline constexpr double kMinZ = 4.5;
inline constexpr double kMinRelative = 0.1;
// Where the monitor's lasting evidence (see models::LastingRegions) flagged it, and which way.
struct LastingBlock {
  BinBlock block;
  bool low = false;
};
// The bar at that block: the evidence over many lumisections already says it changed, so a
// candidate whose change there goes the same way by 2% at 2 sd learned it, and is held. (Every
// candidate of a faint defect's drift retrainings, each on a few dozen new histograms, showed
// it at 1.7-2.9 sd and 2.5-3%; each learned a little more of it, and in six the defect was
// normal. A creeping gain's flagged block showed 1% at 0.6 sd.)
struct LastingBar {
  double z, relative;
  // 1D: the nuisances are fitted to the bins outside the block and half its width either side
  // (at most a 25th of the axis), as a background to its sidebands, so that the fitted gain and
  // tilt cannot take up a change there that reaches a little beyond the block.
  bool fit_outside = false;
};
inline constexpr LastingBar kWhereLasting{2, 0.02};
// Against the data the anchor trained on, the bar at a block the lasting evidence pointed at since
// the anchor (see TrainingScheduler::HoldIfLocalised). The candidates of a chain of retrainings
// that each learned a little of a faint defect (a tenth of a block lost) showed it at 0-3%
// against the data before each; the newest lumisections against the anchor's data showed 5-16%
// at 4.6-9.4 sd (a falling spectrum's the least: its fitted gain and tilt take up some of it).
inline constexpr LastingBar kWhereLastingAgainstAnchor{3, 0.04};
// The same comparison with the nuisances fitted outside the block. A tenth of a falling
// spectrum's bins 31-46 lost showed at 2-5% with them fitted to every bin (the gain and the
// quadratic tilt take up a dip in the bulk), at 4-10% fitted outside. Its extrapolation under the
// block is looser, so the bar is 5 sd: against 200 simulated histograms, 20 at a gain 0-2% away
// left 0-2.7% of the blocks of a peak, a falling spectrum and a timing distribution over it
// (0-1.5% with every bin fitted, at 3 sd), and 20 with that defect were held at its blocks 33-40
// and 37-44 in 30 and 22 of 30 draws (19 and 14 with every bin fitted).
inline constexpr LastingBar kOutsideTheBlockAgainstAnchor{5, 0.04, true};

ChangeReport CompareShapes(const ShapeStats& reference, const ShapeStats& now,
                           const std::vector<uint32_t>& shape,
                           const std::optional<LastingBlock>& lasting = std::nullopt,
                           LastingBar bar = kWhereLasting);

// A held change, tested on each new histogram: the block's share of the histogram's entries
// against its share in the reference histograms. The spread is the reference's
// lumisection-to-lumisection spread beyond Poisson plus the Poisson spread at the new
// histogram's entries, so the test means the same at 1e3 and 1e6 entries.
struct HeldChange {
  BinBlock block;
  std::vector<uint32_t> shape;
  bool low = false;      // the change lowered the block
  double share = 0;      // the block's mean share in the reference
  double extra_var = 0;  // its variance beyond Poisson
  std::string where;     // "bins 43-46 low by 45%"
  // How far `counts` moved the block the way the change did, in standard deviations (negative:
  // the other way), and the relative change of its share.
  double Pull(std::span<const double> counts, double* relative) const;
};
// From the reference histograms (each of `shape`'s size). With `baseline`, the block's share is
// its mean shape's (the anchor's data), the spread still the reference histograms'.
HeldChange MakeHeldChange(const ChangeReport& change, std::span<const std::vector<float>> reference,
                          const std::vector<uint32_t>& shape,
                          const ShapeStats* baseline = nullptr);

}  // namespace histguard::server
