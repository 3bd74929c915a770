// A trained model of one monitor's normal histograms, and how a histogram is scored against it.
//
// The network is a small dense autoencoder over the histogram's shape in a variance-stabilised
// (Hellinger) frame:
//   x_i   = sqrt(n c_i / N) - input_mean_i          (every bin's noise of one size)
//   h     = tanh(W1 x + b1);  z = W2 h + b2          (z: the narrow bottleneck, `latent` wide)
//   g     = tanh(W3 z + b3);  q = softmax(W4 g + b4) (expected shape: positive, sums to 1)
//   mu_i  = N q_i                                    (expected counts)
// Four statistics are calibrated on held-out normal histograms and combined (Sidak, over the
// effective number of independent tests measured on the holdout, between 1 and 4):
//   reconstruction: Poisson deviance per bin of c against mu;
//   localisation:   half the largest squared deviance residual (a defect in one or few bins);
//   latent:         half the Mahalanobis distance squared of z from the training codes (catches
//                   anomalies *simpler* than normal, which an autoencoder reconstructs well);
//   cumulative:     Kolmogorov-Smirnov distance squared of c from mu, N sup|F_c - F_mu|^2 (2D:
//                   the larger of the two projections'). A small shift of a broad shape moves
//                   every bin a little, below each bin's noise, but all of its cumulative sums
//                   the same way.
//   regional:       half the largest Poisson deviance of the counts pooled over a block of
//                   neighbouring bins against the expectation pooled over it (blocks of 4 to 64
//                   bins in 1D, boxes of 2x2 to 16x16 in 2D, each size at half-size steps). A
//                   dead or hot module, or a calorimeter tower at 1.5x, moves each of its bins by
//                   less than their noise but their sum far beyond its own.
//
// A Model is built by the trainer and never changes afterwards: share it as
// std::shared_ptr<const Model> between any number of scoring threads. Evaluation here is plain
// C++ (no LibTorch): the weights are those of the trained LibTorch module, and a test checks the
// two forward passes agree.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "models/calibration.h"
#include "models/stats.h"

namespace histguard::models {

// Weights out x in, row-major (LibTorch's Linear layout), in single precision or, once
// StoreHalf has moved them, in IEEE half precision (exactly one of the two is filled).
struct DenseLayer {
  uint32_t in = 0, out = 0;
  std::vector<float> weight;
  std::vector<uint16_t> weight_half;
  std::vector<float> bias;  // out

  std::vector<float> Weights() const;  // single precision, whichever is stored
};

// Scoring a histogram mostly streams its monitor's two histogram-wide layers from memory (a
// thousand monitors' weights never stay in cache), so those are kept in half precision: half the
// bytes per histogram. The trainer rounds them to half precision before it computes the codes and
// calibrates, so what is scored is what was calibrated. Moves the weights to half precision when
// every weight is a half-precision value, so nothing changes; returns whether it did. A model
// saved with single-precision weights keeps them and scores as it did.
bool StoreHalf(DenseLayer& layer);

// The statistics combined into one p-value: reconstruction, localisation, latent, cumulative,
// regional.
constexpr int kParts = 5;

// What LastingRegions compares each block of RegionalBlocks with, measured on held-out histograms,
// as scoring sees them (beyond the sample the network was fitted to, whose blocks it follows
// more closely than any new histogram's):
//   offset:    per block, in ForEachBlock's order, the mean of its Freeman-Tukey deviate: what
//              the model misses of that block as a rule;
//   spread:    per block size, phi of the deviate's variance beyond Poisson, 1 + phi e;
//   allowance: of the CUSUMs, 1 + 3 / sqrt(held-out histograms): a block whose offset is off by
//              three times the error of its estimate still falls on normal data.
// `offset` is empty in models saved before it, in models that misfit (see Train) or whose
// histograms are too small for its blocks, and in those of too few held-out histograms: no
// lasting evidence is gathered with them. (A drifting window's model has it, though not the
// regional calibration.)
struct LastingReference {
  std::vector<float> offset;
  std::vector<double> spread;
  double allowance = 1;
};

struct Model {
  uint64_t version = 0;
  std::vector<uint32_t> shape;    // binning it was trained on
  std::vector<float> input_mean;  // n
  DenseLayer enc1, enc2, dec1, dec2;
  std::vector<double> latent_mean;     // k
  std::vector<double> latent_inv_cov;  // k x k
  // `cumulative` and `regional` are empty (their p-value 1) in models saved before them and in
  // models whose deviance is mostly misfit (see Train); `regional` also for histograms too small
  // for its blocks.
  Calibration recon, localised, latent, cumulative, regional;
  // Per block size of RegionalBlocks(shape): the relative variance phi of a block's counts that
  // the model misses, var(c - mu) = mu + phi mu^2 over the training sample (a module's
  // efficiency that varies beyond what the bottleneck follows). The regional statistic divides a
  // block's deviance by 1 + phi mu, so well-filled blocks are judged against what the model can
  // know of them. Empty: phi = 0.
  std::vector<double> regional_spread;
  // What the lasting evidence compares each block with (see LastingRegions).
  LastingReference lasting;
  // 1D histograms of kMinAxisBins or more: the cumulative distribution (n + 1 edges, 0 to 1) of
  // the held-out histograms' mean shape, the reference the axis' nuisances are fitted with (see
  // axis_nuisances.h). Empty for maps and in models saved before it.
  std::vector<double> axis_reference;
  // Effective number of independent tests among the p-values, in [1, kParts]: kParts when they
  // are independent on normal histograms, 1 when they always agree (see CombinePValues).
  double tests = kParts;

  uint32_t bins() const { return enc1.in; }
  uint32_t latent_dim() const { return enc2.out; }
};

// Working memory for scoring: one per scoring thread, reused across histograms.
struct Scratch {
  std::vector<float> x, h, z, g, logits;
  std::vector<double> expected;
  std::vector<double> terms;       // per-bin deviance terms of the last ComputeRawStats
  std::vector<double> projection;  // 2D: the projections' counts and expectations
  std::vector<double> prefix;      // running sums of the counts and expectations (regional)
  std::vector<double> profiled;    // the expectation with the axis' nuisances profiled (lasting)
};

// The block of neighbouring bins whose pooled counts deviate most from their expectation.
struct Region {
  uint32_t first = 0;              // its first bin (2D: its lowest ix and iy, index ix * ny + iy)
  uint32_t width = 0, height = 0;  // bins along x (1D: along the axis) and along y (1D: 1)
  double observed = 0, expected = 0;  // pooled counts
};

struct Score {
  double deviance = 0;         // reconstruction score: Poisson deviance per bin
  double max_residual = 0;     // largest |deviance residual|
  double latent_distance = 0;  // Mahalanobis distance squared of the code
  double ks_distance = 0;      // sqrt(N) sup|F_c - F_mu| (the cumulative statistic's root)
  double p_recon = 1, p_localised = 1, p_latent = 1, p_cumulative = 1, p_regional = 1;
  double p_value = 1;  // combined
  std::vector<BinPull> top_bins;
  Region region;  // where the regional statistic is largest (width 0: none)
};

// Forward pass: fills scratch.expected with the expected counts (N q_i) and scratch.z with the
// code. `counts` must have model.bins() entries and a positive total.
void Expect(const Model& model, std::span<const double> counts, Scratch& scratch);

// The bins a verdict names: the largest |residual| first.
inline constexpr size_t kTopBins = 5;

// Scores `counts` (size model.bins(), total > 0). `top_k` bins by |residual| in top_bins.
Score ScoreHistogram(const Model& model, std::span<const double> counts, Scratch& scratch,
                     size_t top_k = kTopBins);

// The raw statistics for an expectation already in scratch (used by calibration); leaves the
// per-bin deviance terms in scratch.terms.
struct RawStats {
  double deviance, localised, latent, cumulative, regional;
};
RawStats ComputeRawStats(const Model& model, std::span<const double> counts, Scratch& scratch,
                         Region* region = nullptr);

// Accumulates a training sample's blocks for Model::regional_spread.
class RegionalSpread {
 public:
  void Add(std::span<const uint32_t> shape, std::span<const double> counts,
           std::span<const double> expected);
  std::vector<double> Result() const;  // per block size, >= 0

 private:
  std::vector<double> excess_, squares_, prefix_;
};

// Block sizes of the regional statistic (bins along an axis), for a histogram of `shape`: those
// at most half of every axis. Empty when none fits (a histogram of fewer than 8 bins along an
// axis, 4 cells along a map's).
struct BlockSizes {
  std::array<uint32_t, 3> size{};
  size_t count = 0;
  std::span<const uint32_t> get() const { return {size.data(), count}; }
};
BlockSizes RegionalBlocks(std::span<const uint32_t> shape);

// Number of blocks of RegionalBlocks(shape), at their half-size steps.
size_t RegionalBlockCount(std::span<const uint32_t> shape);

// A block's Freeman-Tukey deviate, sqrt(c) + sqrt(c + 1) - sqrt(4 e + 1): close to a unit normal
// for Poisson counts from a few expected on, at the cost of three square roots.
double FreemanTukey(double c, double e);

// The expectation moved by the gain and shift of the axis that fit `counts` best, in `out`:
//   mu_i + a mu'_i + b x_i mu'_i    (x_i = (i + 1/2) / n, mu' the slope by central differences)
// with a and b the least-squares fit of the residuals c - mu, weighted by 1 / mu, and bounded
// (a shift of at most 2 bins, a gain within 10%). Linear in the two nuisances, so exact for the
// small moves a slow gain drift makes between two retrainings; two smooth templates over the
// whole axis, so a block of a few bins is hardly absorbed. Returns the moved expectation (a view
// of `out`), or `expected` itself for histograms of fewer than 8 bins and maps (whose axes have
// no gain), which are not copied.
std::span<const double> ProfileAxis(std::span<const uint32_t> shape, std::span<const double> counts,
                                    std::span<const double> expected, std::vector<double>& out);

// Accumulates a Model's LastingReference over held-out histograms.
class LastingReferenceFit {
 public:
  void Add(std::span<const uint32_t> shape, std::span<const double> counts,
           std::span<const double> expected);
  // Empty (no offsets) below kMinRows histograms.
  LastingReference Result() const;
  static constexpr size_t kMinRows = 20;

 private:
  std::vector<double> sum_, squares_, expected_, prefix_, profiled_;
  std::vector<uint8_t> size_of_;  // block size index per block
  size_t rows_ = 0;
};

// Evidence that grows with every lumisection a change lasts. Per block of RegionalBlocks, two
// one-sided CUSUMs of its standardised deviate z = (FreemanTukey - offset) / sqrt(1 + phi e)
// (Model::lasting; e against the expectation with the axis' gain and shift profiled, see
// ProfileAxis, so a slow drift of the axis the model has not followed yet adds up to nothing),
// with the allowance k of the model (1 to 1.6):
//   S+ = max(0, S+ + min(z, 4) - k),   S- = max(0, S- + min(-z, 4) - k),   both capped at 12.
// A block at 1.5 sigma in every lumisection, below what one lumisection can show among thousands
// of blocks, adds up to 0.5 per lumisection; a clipped step adds at most 3, so one lumisection
// alone never makes a lasting change. On normal data S exceeds s with probability below exp(-2 s)
// (the random walk with drift -1), so the largest of the B blocks' 2 B sums has the p-value min(1,
// 2 B exp(-2 S)). The cap bounds how long a change that ended stays flagged: S falls by about 1 per
// lumisection. Not safe for concurrent use: one per monitor, under its lock.
class LastingRegions {
 public:
  struct Finding {
    double p_value = 1;
    Region region;        // the block with the largest sum (width 0: none)
    bool low = false;     // its counts below expectation
    uint32_t length = 0;  // lumisections its sum has been above 0 in a row
  };
  // Adds one histogram scored against `model` (its expectation in scratch.expected, as
  // ScoreHistogram leaves it). Gathers nothing, and forgets what it held, when the model has no
  // regional offsets.
  Finding Add(const Model& model, std::span<const double> counts, Scratch& scratch);
  void Clear();
  bool active() const { return !high_.empty(); }  // gathered with the last model it was given

  // What the sums hold, to outlive a restart: per block, in ForEachBlock's order (all empty when
  // nothing is gathered).
  struct State {
    std::vector<float> high, low;
    std::vector<uint32_t> high_length, low_length;
  };
  State Save() const { return {high_, low_, high_length_, low_length_}; }
  // Gives back the sums gathered with `model`. False, and nothing changed, when `state` is not
  // one that Save could have given with it (another block count, a sum outside [0, kCap]).
  bool Restore(const Model& model, State state);

  static constexpr double kMaxStep = 4, kCap = 12;
  // A block must expect this many counts to take part: its deviate is then near normal.
  static constexpr double kMinExpected = 5;

 private:
  std::vector<float> high_, low_;
  std::vector<uint32_t> high_length_, low_length_;
};

// The lasting evidence's share of the false-alarm budget when it is combined with the p-value of
// what the lumisection itself shows (weighted Bonferroni): min(1, p / (1 - w), p_lasting / w)
// with w = kLastingShare. A small share costs the lasting evidence about one lumisection more
// (ln 10 / 2 of its sum) and the lumisection's own statistics a tenth of their false alarms,
// where an even split (Sidak over two) doubled those.
inline constexpr double kLastingShare = 0.1;
double CombineWithLasting(double p, double p_lasting);
// A jump of the axis' nuisances against their course (see AxisCourse) gets this share.
inline constexpr double kJumpShare = 0.05;
// The general rule: the evidence gathered beside the lumisection's own p-value, each with its
// share (0: not gathered), and the lumisection keeps the rest: min(1, p / (1 - sum of shares),
// p_k / share_k). `decides`: 0 when the lumisection's own p-value sets the result, else 1 + the
// index of the evidence that does.
struct Evidence {
  double p_value = 1;
  double share = 0;
};
double CombineShares(double p, std::span<const Evidence> beside, size_t* decides = nullptr);

// Combination rule: the smallest of the p-values, corrected for `tests` independent tests
// (Sidak): 1 - (1 - min p)^tests, about tests x min p when small.
double CombinePValues(std::span<const double> p, double tests);

// Below this many held-out histograms the calibration keeps to the safe side: exponential tails
// and a Bonferroni factor of kParts. Fitted from 25 held-out histograms (a first training on
// 100), a light tail and the number of tests promised 10-80x fewer false alarms at p < 1e-3 than
// happened; from 125 they were within 2x or conservative.
constexpr size_t kMinHoldoutForFittedTails = 100;

// The `tests` for CombinePValues that makes the combined p-value honest on a holdout, from the
// p-values of each held-out histogram (`parts[j][i]`: part j of histogram i): m with
// 1 - (1 - t)^m equal to the observed rate of min p <= t at t = 0.1, clamped to
// [1, parts.size()]; parts.size() below kMinHoldoutForFittedTails.
double EffectiveTests(std::span<const std::vector<double>> parts);

// Model input for `counts` (Hellinger frame, centred by input_mean); `out` has counts.size().
void HellingerInput(std::span<const double> counts, std::span<const float> input_mean,
                    std::span<float> out);

}  // namespace histguard::models
