// client/simulator.cc: see simulator.h.
//
// How a draw is built: the family's shape is a density over x in [0, 1] (and
// y for 2D) with parameters in `Params`. MakeNormal() fills them with the
// monitor's fixed layout and this run's variation; the anomalies that act on
// the physics (shift, broadening, missing feature) edit a copy of the
// parameters, the others (dead region, hot bin, extra noise) edit the binned
// expectation. Bins are integrated by averaging the density over sub-points.

#include "simulation/detector_simulator.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <utility>

namespace histguard::sim {
namespace {

constexpr double kPi = 3.14159265358979323846;

// ---- random variates ---------------------------------------------------------
// Own samplers on top of the raw 64-bit output, so draws are reproducible
// across standard libraries.

double Uniform01(std::mt19937_64& rng) {  // [0, 1)
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

double Normal(std::mt19937_64& rng) {      // Box-Muller, one variate per call
  const double u1 = 1.0 - Uniform01(rng);  // (0, 1]
  const double u2 = Uniform01(rng);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * kPi * u2);
}

// Run-to-run variation: in [-1, 1], gaussian with sd 0.5 (clipped at 2 sd).
double Vary(std::mt19937_64& rng) { return std::clamp(Normal(rng), -2.0, 2.0) / 2.0; }

uint32_t UniformIndex(std::mt19937_64& rng, uint64_t n) {  // [0, n), n >= 1
  return static_cast<uint32_t>(
      std::min<uint64_t>(n - 1, static_cast<uint64_t>(Uniform01(rng) * static_cast<double>(n))));
}

double LogFactorial(double k) {
  if (k < 20) {
    double sum = 0;
    for (int i = 2; i <= static_cast<int>(k); ++i) sum += std::log(static_cast<double>(i));
    return sum;
  }
  // Stirling series; error < 1e-12 for k >= 20.
  return k * std::log(k) - k + 0.5 * std::log(2 * kPi * k) + 1.0 / (12 * k) -
         1.0 / (360 * k * k * k);
}

double Poisson(std::mt19937_64& rng, double mean) {
  if (!(mean > 0)) return 0;
  if (mean < 10) {  // inversion
    const double u = Uniform01(rng);
    double p = std::exp(-mean), cdf = p, k = 0;
    while (u > cdf && k < 1000) {
      k += 1;
      p *= mean / k;
      cdf += p;
    }
    return k;
  }
  // PTRS, transformed rejection with squeeze (Hoermann 1993).
  const double slam = std::sqrt(mean), loglam = std::log(mean);
  const double b = 0.931 + 2.53 * slam;
  const double a = -0.059 + 0.02483 * b;
  const double inv_alpha = 1.1239 + 1.1328 / (b - 3.4);
  const double vr = 0.9277 - 3.6224 / (b - 2);
  while (true) {
    const double u = Uniform01(rng) - 0.5;
    const double v = Uniform01(rng);
    const double us = 0.5 - std::fabs(u);
    if (us <= 0) continue;
    const double k = std::floor((2 * a / us + b) * u + mean + 0.43);
    if (us >= 0.07 && v <= vr) return k;
    if (k < 0 || (us < 0.013 && v > us)) continue;
    if (std::log(v) + std::log(inv_alpha) - std::log(a / (us * us) + b) <=
        -mean + k * loglam - LogFactorial(k)) {
      return k;
    }
  }
}

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// ---- shapes --------------------------------------------------------------------

double Gauss(double x, double mean, double sigma) {
  const double z = (x - mean) / sigma;
  return std::exp(-0.5 * z * z) / (sigma * std::sqrt(2 * kPi));
}

// Gaussian convolved with an exponential of length `tail` (a late tail).
double ExpModifiedGauss(double x, double mean, double sigma, double tail) {
  const double lambda = 1.0 / tail;
  const double arg = 0.5 * lambda * (2 * mean + lambda * sigma * sigma - 2 * x);
  const double z = (mean + lambda * sigma * sigma - x) / (std::sqrt(2.0) * sigma);
  if (arg > 700) return 0;  // far before the peak: erfc underflows first
  return 0.5 * lambda * std::exp(arg) * std::erfc(z);
}

double Logistic(double t) {  // 1 / (1 + e^t), safe for large |t|
  return t > 40 ? std::exp(-t) : 1.0 / (1.0 + std::exp(t));
}

struct Params {
  Family family = Family::kFallingSpectrum;
  uint32_t n = 0;           // 1D families: bins
  uint32_t nx = 0, ny = 0;  // kOccupancy2D

  // kFallingSpectrum: exp(-x/slope) + shoulder * exp(-x/shoulder_slope) cut at `edge`.
  double slope = 0.11, shoulder = 0.075, shoulder_slope = 0.6, edge = 0.45, edge_width = 0.012;
  double gain = 1.0;  // x is read as x / gain

  // kPeakOnBackground and kTiming.
  double peak_pos = 0.5, peak_width = 0.04, peak_weight = 0.25, background_weight = 0.75;
  double bkg_slope = 0.3;                          // kPeakOnBackground
  double tail_fraction = 0.2, tail_length = 0.06;  // kTiming

  // kChannelOccupancy.
  uint32_t module_size = 10;
  std::vector<double> module_eff, channel_factor;
  double bump_pos = 0.5, bump_width = 0.2, bump_amp = 1.0;
  double structure = 1.0;  // 1: module structure present, 0: flattened away

  // kOccupancy2D.
  double cx = 0.5, cy = 0.5, rho = 0.22, floor_2d = 0.15, bump_2d = 1.0;
  uint32_t tile_x = 5, tile_y = 5, tiles_x = 4;
  std::vector<double> tile_eff;
};

double Density1D(const Params& p, double x) {
  switch (p.family) {
    case Family::kFallingSpectrum: {
      const double xs = x / p.gain;
      const double main = std::exp(-xs / p.slope);
      const double shoulder =
          p.shoulder * std::exp(-xs / p.shoulder_slope) * Logistic((xs - p.edge) / p.edge_width);
      return (main + shoulder) / p.gain;
    }
    case Family::kPeakOnBackground: {
      const double norm = p.bkg_slope * (1 - std::exp(-1 / p.bkg_slope));
      return p.background_weight * std::exp(-x / p.bkg_slope) / norm +
             p.peak_weight * Gauss(x, p.peak_pos, p.peak_width);
    }
    case Family::kTiming: {
      const double peak =
          (1 - p.tail_fraction) * Gauss(x, p.peak_pos, p.peak_width) +
          p.tail_fraction * ExpModifiedGauss(x, p.peak_pos, p.peak_width, p.tail_length);
      return p.background_weight + p.peak_weight * peak;
    }
    case Family::kChannelOccupancy: {
      const auto channel =
          static_cast<uint32_t>(std::clamp(std::floor(x * p.n), 0.0, static_cast<double>(p.n - 1)));
      const double eff = 1 + p.structure * (p.module_eff[channel / p.module_size] - 1);
      const double factor = 1 + p.structure * (p.channel_factor[channel] - 1);
      const double dz = (x - p.bump_pos) / p.bump_width;
      return (1 + p.bump_amp * std::exp(-0.5 * dz * dz)) * eff * factor;
    }
    case Family::kOccupancy2D:
      break;
  }
  return 0;
}

// Expected shape per bin (arbitrary normalisation), row-major for 2D.
std::vector<double> Integrate(const Params& p) {
  std::vector<double> out;
  if (p.family == Family::kOccupancy2D) {
    constexpr int kSub = 3;
    out.resize(size_t{p.nx} * p.ny);
    for (uint32_t ix = 0; ix < p.nx; ++ix) {
      for (uint32_t iy = 0; iy < p.ny; ++iy) {
        double sum = 0;
        for (int a = 0; a < kSub; ++a) {
          for (int b = 0; b < kSub; ++b) {
            const double x = (ix + (a + 0.5) / kSub) / p.nx;
            const double y = (iy + (b + 0.5) / kSub) / p.ny;
            const double r2 = (x - p.cx) * (x - p.cx) + (y - p.cy) * (y - p.cy);
            sum += p.floor_2d + p.bump_2d * std::exp(-0.5 * r2 / (p.rho * p.rho));
          }
        }
        const uint32_t tile = (ix / p.tile_x) + p.tiles_x * (iy / p.tile_y);
        out[size_t{ix} * p.ny + iy] = sum / (kSub * kSub) * p.tile_eff[tile];
      }
    }
    return out;
  }
  constexpr int kSub = 8;
  out.resize(p.n);
  for (uint32_t i = 0; i < p.n; ++i) {
    double sum = 0;
    for (int k = 0; k < kSub; ++k) sum += Density1D(p, (i + (k + 0.5) / kSub) / p.n);
    out[i] = std::max(0.0, sum / kSub);
  }
  return out;
}

void Normalize(std::vector<double>& v, double total) {
  const double sum = std::accumulate(v.begin(), v.end(), 0.0);
  const double scale = sum > 0 ? total / sum : 0.0;
  for (double& x : v) x *= scale;
}

// The normal shape of this monitor for this run: the layout fixed by the
// monitor name, the variation drawn from `rng`.
Params MakeNormal(const MonitorSpec& spec, uint32_t n, uint32_t nx, uint32_t ny,
                  std::mt19937_64& rng) {
  Params p;
  p.family = spec.family;
  p.n = n;
  p.nx = nx;
  p.ny = ny;
  std::mt19937_64 layout(Fnv1a(spec.name) ^
                         (0x9E3779B97F4A7C15ull * (1 + static_cast<int>(spec.family))));
  switch (spec.family) {
    case Family::kFallingSpectrum:
      p.slope = 0.11 * (1 + 0.07 * Vary(rng));
      p.shoulder = 0.075 * (1 + 0.08 * Vary(rng));
      p.edge = 0.45 * (1 + 0.01 * Vary(rng));
      break;
    case Family::kPeakOnBackground:
      p.peak_pos = 0.35 * (1 + 0.01 * Vary(rng));
      p.peak_width = 0.03 * (1 + 0.03 * Vary(rng));
      p.bkg_slope = 0.3 * (1 + 0.08 * Vary(rng));
      p.peak_weight = 0.25 * (1 + 0.08 * Vary(rng));
      p.background_weight = 1 - p.peak_weight;
      break;
    case Family::kTiming:
      p.peak_pos = 0.5 * (1 + 0.01 * Vary(rng));
      p.peak_width = 0.04 * (1 + 0.03 * Vary(rng));
      p.tail_length = 0.06;
      p.tail_fraction = 0.2 * (1 + 0.1 * Vary(rng));
      p.background_weight = 0.15 * (1 + 0.1 * Vary(rng));  // the flat noise floor
      p.peak_weight = 1 - p.background_weight;
      break;
    case Family::kChannelOccupancy: {
      p.module_size = std::min(n, std::clamp<uint32_t>(n / 10, 4, 16));
      const uint32_t modules = (n + p.module_size - 1) / p.module_size;
      p.channel_factor.assign(n, 1.0);
      if (p.module_size >= 4) {  // larger edge channels see more hits
        for (uint32_t c = 0; c < n; ++c) {
          const uint32_t in_module = c % p.module_size;
          if (in_module == 0 || in_module == p.module_size - 1 || c == n - 1) {
            p.channel_factor[c] = 1.8;
          }
        }
      }
      for (uint32_t q = 0; q < std::max<uint32_t>(1, n / 40); ++q) {  // quiet channels
        p.channel_factor[UniformIndex(layout, n)] = 0.3 + 0.3 * Uniform01(layout);
      }
      for (uint32_t m = 0; m < modules; ++m) p.module_eff.push_back(0.9 + 0.1 * Uniform01(layout));
      for (double& eff : p.module_eff) eff *= 1 + 0.03 * Vary(rng);
      for (double& f : p.channel_factor) {
        if (f < 1) f *= 1 + 0.05 * Vary(rng);
      }
      p.bump_pos = 0.5 * (1 + 0.01 * Vary(rng));
      p.bump_width = 0.2 * (1 + 0.05 * Vary(rng));
      p.bump_amp = 1.0 * (1 + 0.05 * Vary(rng));
      break;
    }
    case Family::kOccupancy2D: {
      p.tile_x = std::clamp<uint32_t>(nx / 4, 1, 16);
      p.tile_y = std::clamp<uint32_t>(ny / 4, 1, 16);
      p.tiles_x = (nx + p.tile_x - 1) / p.tile_x;
      const uint32_t tiles = p.tiles_x * ((ny + p.tile_y - 1) / p.tile_y);
      for (uint32_t t = 0; t < tiles; ++t) p.tile_eff.push_back(0.9 + 0.1 * Uniform01(layout));
      for (double& eff : p.tile_eff) eff *= 1 + 0.03 * Vary(rng);
      p.cx = 0.5 * (1 + 0.01 * Vary(rng));
      p.cy = 0.5 * (1 + 0.01 * Vary(rng));
      p.rho = 0.22 * (1 + 0.05 * Vary(rng));
      p.floor_2d = 0.15 * (1 + 0.08 * Vary(rng));
      break;
    }
  }
  // A detector gain other than nominal moves the energy-like features of the spectra.
  p.gain *= spec.gain;
  if (spec.family == Family::kPeakOnBackground || spec.family == Family::kTiming)
    p.peak_pos *= spec.gain;
  return p;
}

double RandomSign(std::mt19937_64& rng) { return Uniform01(rng) < 0.5 ? -1.0 : 1.0; }

// A contiguous block of 5-10% of the bins (whole modules for the channel
// occupancy, a rectangle for 2D); 1D spectra place it where the counts are.
std::vector<uint32_t> DeadBins(const Params& p, const std::vector<double>& normal,
                               std::mt19937_64& rng) {
  std::vector<uint32_t> bins;
  const double fraction = 0.05 + 0.05 * Uniform01(rng);
  if (p.family == Family::kOccupancy2D) {
    const double area = fraction * p.nx * p.ny;
    const double aspect = 0.7 + 0.6 * Uniform01(rng);
    const auto w = static_cast<uint32_t>(
        std::clamp(std::round(std::sqrt(area) * aspect * p.nx / std::max(p.nx, p.ny)), 1.0,
                   static_cast<double>(p.nx)));
    const auto h =
        static_cast<uint32_t>(std::clamp(std::round(area / w), 1.0, static_cast<double>(p.ny)));
    const uint32_t x0 = UniformIndex(rng, p.nx - w + 1);
    const uint32_t y0 = UniformIndex(rng, p.ny - h + 1);
    for (uint32_t ix = x0; ix < x0 + w; ++ix) {
      for (uint32_t iy = y0; iy < y0 + h; ++iy) bins.push_back(ix * p.ny + iy);
    }
    return bins;
  }
  if (p.family == Family::kChannelOccupancy) {
    const uint32_t modules = static_cast<uint32_t>(p.module_eff.size());
    const uint32_t k =
        std::min(modules, static_cast<uint32_t>(std::ceil(0.05 * p.n / p.module_size)));
    const uint32_t first = UniformIndex(rng, modules - k + 1);
    for (uint32_t c = first * p.module_size; c < std::min(p.n, (first + k) * p.module_size); ++c) {
      bins.push_back(c);
    }
    return bins;
  }
  const auto len =
      static_cast<uint32_t>(std::clamp(std::round(fraction * p.n), 1.0, static_cast<double>(p.n)));
  // Start chosen with probability proportional to the square root of the
  // block's content, among blocks holding at least a tenth of the average:
  // where there are counts to lose, but not always on the peak.
  std::vector<double> weight(p.n - len + 1);
  double window = std::accumulate(normal.begin(), normal.begin() + len, 0.0);
  for (uint32_t s = 0; s < weight.size(); ++s) {
    weight[s] = std::max(0.0, window);
    if (s + len < p.n) window += normal[s + len] - normal[s];
  }
  const double mean = std::accumulate(weight.begin(), weight.end(), 0.0) / weight.size();
  for (double& w : weight) w = w >= 0.1 * mean ? std::sqrt(w) : 0.0;
  const double total = std::accumulate(weight.begin(), weight.end(), 0.0);
  uint32_t start = 0;
  if (total > 0) {
    double target = Uniform01(rng) * total;
    while (start + 1 < weight.size() && target >= weight[start]) target -= weight[start++];
  } else {
    start = UniformIndex(rng, weight.size());
  }
  for (uint32_t b = start; b < start + len; ++b) bins.push_back(b);
  return bins;
}

std::vector<double> ApplyAnomaly(const Params& normal_params, const std::vector<double>& normal,
                                 double entries, Anomaly anomaly, double s, std::mt19937_64& rng) {
  Params p = normal_params;
  const double fade = std::min(s, 1.0);
  std::vector<double> out;
  switch (anomaly) {
    case Anomaly::kNone:
      return normal;
    case Anomaly::kDeadRegion: {
      out = normal;
      for (uint32_t b : DeadBins(p, normal, rng)) out[b] *= 1 - fade;
      return out;  // not renormalised: dead channels lose their counts
    }
    case Anomaly::kHotBin: {
      out = normal;
      std::vector<uint32_t> hot = {UniformIndex(rng, out.size())};
      if (out.size() >= 2 && Uniform01(rng) < 0.4) {
        uint32_t other = UniformIndex(rng, out.size() - 1);
        if (other >= hot[0]) ++other;
        hot.push_back(other);
      }
      for (uint32_t b : hot) out[b] = normal[b] * (1 + 4 * s) + 0.01 * s * entries;
      break;
    }
    case Anomaly::kExtraNoise: {
      out = normal;
      const double flat = 0.25 * s * entries / static_cast<double>(out.size());
      for (double& x : out) x += flat;
      break;
    }
    case Anomaly::kShiftedPeak:
      switch (p.family) {
        case Family::kFallingSpectrum:
          p.gain = std::max(0.3, 1 + RandomSign(rng) * 0.1 * s);
          break;
        case Family::kPeakOnBackground:
        case Family::kTiming:
          p.peak_pos += RandomSign(rng) * 3 * p.peak_width * s;
          break;
        case Family::kChannelOccupancy:  // the luminous region moves
          p.bump_pos += RandomSign(rng) * 0.75 * p.bump_width * s;
          break;
        case Family::kOccupancy2D: {
          const double angle = 2 * kPi * Uniform01(rng);
          p.cx += 0.15 * s * std::cos(angle);
          p.cy += 0.15 * s * std::sin(angle);
          break;
        }
      }
      out = Integrate(p);
      break;
    case Anomaly::kBroadenedPeak:
      p.peak_width *= 1 + s;
      p.bump_width *= 1 + s;
      p.rho *= 1 + s;
      p.edge_width *= 1 + 8 * s;
      out = Integrate(p);
      break;
    case Anomaly::kMissingFeature:
      p.shoulder *= 1 - fade;
      p.peak_weight *= 1 - fade;
      p.structure = 1 - fade;
      p.bump_2d *= 1 - fade;
      out = Integrate(p);
      break;
  }
  Normalize(out, entries);
  return out;
}

std::vector<uint32_t> DefectBins(const std::vector<double>& normal,
                                 const std::vector<double>& anomalous) {
  std::vector<std::pair<double, uint32_t>> scored;
  double top = 0;
  for (uint32_t i = 0; i < normal.size(); ++i) {
    const double score = std::fabs(anomalous[i] - normal[i]) / std::sqrt(normal[i] + 1);
    scored.emplace_back(score, i);
    top = std::max(top, score);
  }
  std::vector<uint32_t> bins;
  if (top <= 1e-6) return bins;
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (const auto& [score, bin] : scored) {
    if (bins.size() == 10 || score < 0.2 * top) break;
    bins.push_back(bin);
  }
  return bins;
}

std::string IndexedName(std::string_view base, size_t round) {
  std::string name(base);
  if (round > 0) name += "_" + std::to_string(round);
  return name;
}

}  // namespace

std::string_view Name(Family family) {
  switch (family) {
    case Family::kFallingSpectrum:
      return "falling_spectrum";
    case Family::kPeakOnBackground:
      return "peak_on_background";
    case Family::kChannelOccupancy:
      return "channel_occupancy";
    case Family::kTiming:
      return "timing";
    case Family::kOccupancy2D:
      return "occupancy_2d";
  }
  return "unknown";
}

std::string_view Name(Anomaly anomaly) {
  switch (anomaly) {
    case Anomaly::kNone:
      return "none";
    case Anomaly::kDeadRegion:
      return "dead_region";
    case Anomaly::kHotBin:
      return "hot_bin";
    case Anomaly::kShiftedPeak:
      return "shifted_peak";
    case Anomaly::kBroadenedPeak:
      return "broadened_peak";
    case Anomaly::kExtraNoise:
      return "extra_noise";
    case Anomaly::kMissingFeature:
      return "missing_feature";
  }
  return "unknown";
}

std::optional<Family> ParseFamily(std::string_view name) {
  for (Family f : kAllFamilies) {
    if (Name(f) == name) return f;
  }
  return std::nullopt;
}

std::optional<Anomaly> ParseAnomaly(std::string_view name) {
  for (Anomaly a : kAllAnomalies) {
    if (Name(a) == name) return a;
  }
  return std::nullopt;
}

Sample Draw(const MonitorSpec& spec, double entries, Anomaly anomaly, double severity,
            std::mt19937_64& rng) {
  Sample sample;
  sample.shape = spec.shape;
  sample.anomaly = anomaly;

  uint64_t bins = spec.shape.empty() ? 0 : 1;
  for (uint32_t d : spec.shape) bins = std::min<uint64_t>(bins * d, kMaxSimulatedBins + 1);
  if (bins == 0 || bins > kMaxSimulatedBins) return sample;
  uint32_t n = static_cast<uint32_t>(bins), nx = 0, ny = 0;
  if (spec.family == Family::kOccupancy2D) {
    nx = spec.shape[0];
    ny = n / nx;
  }
  if (!(entries > 0) || !std::isfinite(entries)) entries = 0;
  const double s = std::isfinite(severity) ? std::clamp(severity, 0.0, 5.0) : 0.0;

  const Params params = MakeNormal(spec, n, nx, ny, rng);
  std::vector<double> normal = Integrate(params);
  Normalize(normal, entries);
  sample.expected = ApplyAnomaly(params, normal, entries, anomaly, s, rng);
  if (anomaly != Anomaly::kNone) sample.defect_bins = DefectBins(normal, sample.expected);

  sample.contents.reserve(sample.expected.size());
  for (double mean : sample.expected) sample.contents.push_back(Poisson(rng, mean));
  return sample;
}

std::vector<MonitorSpec> DefaultMonitors(size_t n, uint32_t bins) {
  struct FamilyNames {
    Family family;
    std::vector<std::string_view> names;
  };
  static const std::array<FamilyNames, 5> kCycle = {{
      {Family::kChannelOccupancy,
       {"pixel/barrel/l1/occupancy", "pixel/barrel/l2/occupancy", "strip/tib/layer1/occupancy",
        "pixel/endcap/disk1/occupancy", "strip/tob/layer3/occupancy",
        "muon/csc/station1/occupancy"}},
      {Family::kTiming,
       {"ecal/barrel/timing", "hcal/barrel/timing", "muon/rpc/timing", "ecal/endcap/timing",
        "hcal/endcap/timing"}},
      {Family::kFallingSpectrum,
       {"hcal/endcap/energy_spectrum", "ecal/barrel/energy_spectrum", "tracker/track_pt",
        "hcal/barrel/energy_spectrum", "muon/standalone/pt"}},
      {Family::kOccupancy2D,
       {"muon/dt/wheel0/occupancy_map", "pixel/barrel/l1/occupancy_map",
        "ecal/endcap/occupancy_map", "muon/dt/wheel1/occupancy_map", "hcal/forward/occupancy_map"}},
      {Family::kPeakOnBackground,
       {"ecal/barrel/pi0_mass", "muon/dimuon_mass", "tracker/kshort_mass", "ecal/endcap/pi0_mass",
        "hcal/barrel/mip_peak"}},
  }};
  const uint32_t n1d = std::max<uint32_t>(bins, 1);
  std::vector<MonitorSpec> specs;
  specs.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const FamilyNames& f = kCycle[i % kCycle.size()];
    const size_t k = i / kCycle.size();  // how many of this family came before
    MonitorSpec spec;
    spec.family = f.family;
    spec.name = IndexedName(f.names[k % f.names.size()], k / f.names.size());
    spec.shape = f.family == Family::kOccupancy2D ? std::vector<uint32_t>{20, 20}
                                                  : std::vector<uint32_t>{n1d};
    specs.push_back(std::move(spec));
  }
  return specs;
}

}  // namespace histguard::sim
