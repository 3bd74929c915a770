// simulation/detector_simulator.h: synthetic detector-like histograms with injected anomalies:
// test data, not part of the client API.
//
// Used by `histguard simulate` (the demo's source), the tests and the benchmarks. Each monitor
// belongs to a Family of shapes; Draw() produces one lumisection's histogram of that family:
//
//   1. the family's normal shape with run-to-run variation (peak position
//      ±1% of its value, width ±3%, background level/slope ±5-10%, module
//      efficiencies ±3%; gaussian with sd half of that, clipped at it), drawn
//      from `rng`;
//   2. the anomaly, at `severity` (1.0 = clearly visible to a shifter at 1e4
//      entries, 0.3 = subtle; clamped to [0, 5]);
//   3. Poisson counts around the expectation, whose total is `entries`.
//
// Families (x is the axis scaled to [0, 1]):
//   kFallingSpectrum   exponential over ~4 decades with a small shoulder that
//                      ends at a sharp edge near x=0.45 (a kinematic edge).
//   kPeakOnBackground  gaussian peak near x=0.35 over an exponential background.
//   kChannelOccupancy  channels grouped in modules of 4-16; each module has its
//                      own efficiency, its two edge channels are larger (about
//                      1.8x the hits) and a few channels are legitimately quiet;
//                      a broad luminous-region bump on top.
//   kTiming            gaussian peak at x=0.5 with a late tail over a flat noise
//                      floor.
//   kOccupancy2D       [nx, ny] map: radial gaussian falloff from the centre
//                      over a floor, in tiles (modules) with own efficiencies.
// The per-monitor layout (module efficiencies, quiet channels, tile
// efficiencies) is fixed by the monitor name, so every draw of one monitor
// shares it; run-to-run variation comes from `rng`.
//
// Anomalies (what changes at severity s):
//   kDeadRegion      a contiguous block of 5-10% of the bins (kChannelOccupancy:
//                    whole modules; 2D: a rectangle of 5-10% of the cells)
//                    loses a fraction min(s, 1) of its counts; 1D spectra
//                    place it preferably where there are counts. The only
//                    anomaly that is not renormalised: the total drops with it.
//   kHotBin          1 or 2 bins get (1 + 4s) times their expectation plus
//                    s * 1% of `entries`.
//   kShiftedPeak     kPeakOnBackground, kTiming: the peak moves by 3s widths;
//                    kFallingSpectrum: gain drift, x scaled by 1 ± 0.1s;
//                    kChannelOccupancy: the luminous bump moves by 0.75s of its
//                    width (the modules stay); 2D: the centre moves by 0.15s of
//                    the range.
//   kBroadenedPeak   the peak (2D: the radial falloff; occupancy: the luminous
//                    bump) width times (1 + s); kFallingSpectrum: the edge is
//                    smeared, its width times (1 + 8s).
//   kExtraNoise      a flat background holding 25s% of the normal entries is
//                    added.
//   kMissingFeature  something normally there fades by min(s, 1): the peak
//                    (kPeakOnBackground, kTiming), the central bump (2D), the
//                    shoulder and edge (kFallingSpectrum), the module structure:
//                    edge channels, quiet channels, module-to-module spread
//                    (kChannelOccupancy).
// Apart from kDeadRegion, the anomalous expectation is renormalised to
// `entries`: anomalies change the shape, not the rate.
//
// Shapes: 1D families use shape [n] (a [nx, ny] shape is treated as nx*ny bins
// in a row); kOccupancy2D uses [nx, ny] (a shape [n] is treated as [n, 1]).
// Contents are row-major: bin (ix, iy) is at ix * ny + iy. Draw never fails:
// an empty shape, a zero dimension or more than kMaxSimulatedBins bins gives
// empty contents.
//
// Pairing: the normal shape is drawn before anything anomaly-specific, so
// draws from equal generator states share it: Draw(spec, E, kNone, ...) gives
// the `expected_normal` that Draw(spec, E, anomaly, ...) departs from.
//
// Determinism: given the seed of `rng`, Draw's result is the same on every
// platform up to libm rounding (normal and Poisson variates are drawn with
// this file's own samplers, not std:: distributions, whose algorithms differ
// between standard libraries).
//
// Thread-safety: all functions are pure apart from advancing the `rng` the
// caller passes; concurrent calls with distinct generators are safe.
//
// Example:
//   std::mt19937_64 rng(42);
//   for (const auto& spec : histguard::sim::DefaultMonitors(8)) {
//     auto sample = histguard::sim::Draw(spec, 1e4, histguard::sim::Anomaly::kHotBin, 1.0, rng);
//   }

#ifndef HISTGUARD_CLIENT_SIMULATOR_H_
#define HISTGUARD_CLIENT_SIMULATOR_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace histguard::sim {

enum class Family { kFallingSpectrum, kPeakOnBackground, kChannelOccupancy, kTiming, kOccupancy2D };
enum class Anomaly {
  kNone,
  kDeadRegion,
  kHotBin,
  kShiftedPeak,
  kBroadenedPeak,
  kExtraNoise,
  kMissingFeature
};

inline constexpr std::size_t kMaxSimulatedBins = std::size_t{1} << 24;

inline constexpr std::array<Family, 5> kAllFamilies = {
    Family::kFallingSpectrum, Family::kPeakOnBackground, Family::kChannelOccupancy, Family::kTiming,
    Family::kOccupancy2D};
inline constexpr std::array<Anomaly, 7> kAllAnomalies = {
    Anomaly::kNone,          Anomaly::kDeadRegion, Anomaly::kHotBin,        Anomaly::kShiftedPeak,
    Anomaly::kBroadenedPeak, Anomaly::kExtraNoise, Anomaly::kMissingFeature};

// "falling_spectrum", "peak_on_background", "channel_occupancy", "timing",
// "occupancy_2d".
std::string_view Name(Family family);
// "none", "dead_region", "hot_bin", "shifted_peak", "broadened_peak",
// "extra_noise", "missing_feature".
std::string_view Name(Anomaly anomaly);
// The inverses of Name(); nullopt for anything else.
std::optional<Family> ParseFamily(std::string_view name);
std::optional<Anomaly> ParseAnomaly(std::string_view name);

struct MonitorSpec {
  std::string name;  // e.g. "ecal/barrel/timing"; also fixes the module layout
  Family family = Family::kFallingSpectrum;
  std::vector<uint32_t> shape;  // [n] or [nx, ny]
  // Detector gain, 1 = nominal. A slow drift of it is normal (calibration drifts over a run):
  // the falling spectrum's x scale and the peak position of kPeakOnBackground and kTiming
  // follow it; the occupancy families do not depend on it.
  double gain = 1.0;
};

struct Sample {
  std::vector<uint32_t> shape;
  std::vector<double> contents;  // Poisson-sampled counts
  std::vector<double> expected;  // true expected counts of this histogram (after the anomaly)
  Anomaly anomaly = Anomaly::kNone;
  // Bins where the anomaly acts most: sorted by
  // |expected_anomalous - expected_normal| / sqrt(expected_normal + 1), descending;
  // at most 10, only bins scoring at least 20% of the top score. Empty for
  // kNone (and for severity 0).
  std::vector<uint32_t> defect_bins;
};

// Draws one lumisection's histogram (see the header comment). `entries` <= 0
// gives all-zero contents.
Sample Draw(const MonitorSpec& spec, double entries, Anomaly anomaly, double severity,
            std::mt19937_64& rng);

// n monitors with detector-like, unique names ("pixel/barrel/l1/occupancy",
// "ecal/barrel/timing", "hcal/endcap/energy_spectrum",
// "muon/dt/wheel0/occupancy_map", "ecal/barrel/pi0_mass", ...), cycling through
// the families in that order; 1D ones get `bins` bins, 2D ones 20x20.
std::vector<MonitorSpec> DefaultMonitors(size_t n, uint32_t bins = 100);

}  // namespace histguard::sim

#endif  // HISTGUARD_CLIENT_SIMULATOR_H_
