// histguard_detection: how well histguard's scores separate anomalous from normal histograms,
// beside the classical DQM tests and an oracle, for detector-like families at four statistics.
// Prints a Markdown table (ROC AUC and true-positive rate at false-positive rates 1e-3 and 1e-5).
//
//   histguard_detection                         full run (100,000 normals per cell, for FPR 1e-5)
//   histguard_detection --normals 2000          fast run (FPR 1e-5 not measurable: "-")
//   histguard_detection --severity 0.5          every class at one severity, clearly visible at 1e4
//   histguard_detection --tune-severities       the per-class severity table used by default
//   histguard_detection --spatial               only the spatial class (see Spatial below)
//   histguard_detection --lasting               only the lasting-defect class (see Lasting below)
//
// Methods, each a score where larger means more anomalous:
//   recon     histguard's reconstruction deviance (calibrated p-value, as -log p)
//   latent    histguard's latent Mahalanobis score (-log p)
//   cumul     histguard's cumulative (Kolmogorov) distance from its reconstruction (-log p)
//   region    histguard's regional statistic: pooled deviance of blocks of neighbours (-log p)
//   histguard the combined p-value the daemon judges by (-log p)
//   chi2      Pearson chi2 against the reference (mean shape of the training sample)
//   ks        Kolmogorov-Smirnov distance of the cumulative shapes, times sqrt(entries)
//   oracle    deviance against the true normal shape of that very lumisection (the generator
//             knows it; no model of normal data can know more)
// Models are trained by models::Train, the code path the daemon uses, on 500 normal histograms.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <span>
#include <sstream>

#include "models/stats.h"
#include "models/trainer.h"
#include "simulation/detector_simulator.h"

namespace sim = histguard::sim;
namespace hm = histguard::models;

namespace {

// kWithoutRegional: histguard's combination of its other four parts (the smallest of their
// p-values, which ranks as their Sidak combination does), the baseline of what the regional
// statistic costs the other classes.
enum Method {
  kRecon,
  kLatent,
  kCumulative,
  kRegional,
  kHistguard,
  kChi2,
  kKs,
  kOracle,
  kWithoutRegional,
  kMethods
};
const char* kMethodNames[kMethods] = {"recon", "latent", "cumul",  "region",    "histguard",
                                      "chi2",  "ks",     "oracle", "w/o region"};

struct Scores {
  std::array<std::vector<double>, kMethods> by_method;
  std::vector<double> deviance;   // histguard's raw score: Poisson deviance per bin
  std::vector<double> localised;  // -log10 p of the largest bin's term (the third part)
};

struct CellResult {  // one family x statistics x anomaly class x method
  std::string family;
  double entries;
  sim::Anomaly cls;
  int method;
  double auc, tpr3, tpr5;
  double flagged;  // fraction of the anomalies whose score says p < bad_p (histguard: BAD)
};

// The cell of `method` for the same family, statistics and class as `c` (null when not measured).
const CellResult* FindCell(const std::vector<CellResult>& cells, const CellResult& c, int method) {
  for (const auto& o : cells)
    if (o.family == c.family && o.entries == c.entries && o.cls == c.cls && o.method == method)
      return &o;
  return nullptr;
}

struct NormalResult {  // one family x statistics: the normals alone
  std::string family;
  double entries;
  double rate[4];  // observed rate of combined p < 1e-2, 1e-3, 1e-4, 1e-5 (bad_p)
  double median_deviance;
  double part_rate[5][2];  // recon, localised, latent, cumul, region: rate of p < 1e-2, 1e-3
  double tests;            // the number of independent tests the combination assumes
};

struct ContaminationResult {
  std::string family;
  double entries;
  sim::Anomaly cls;
  double auc_clean, auc_contaminated;
};

double NegLog(double p) { return -std::log10(std::max(p, 1e-300)); }

// The daemon's default bad_p: a combined p-value below it is a BAD verdict.
constexpr double kBadP = 1e-5;

// Fraction of the -log10 p scores that say p < t.
double RateAbove(const std::vector<double>& neglog_p, double t) {
  if (neglog_p.empty()) return std::nan("");
  size_t n = 0;
  for (double s : neglog_p) n += s > -std::log10(t);
  return static_cast<double>(n) / neglog_p.size();
}

double Ks(std::span<const double> c, std::span<const double> ref) {
  double nc = 0, nr = 0;
  for (double v : c) nc += v;
  for (double v : ref) nr += v;
  if (nc <= 0 || nr <= 0) return 0;
  double a = 0, b = 0, d = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    a += c[i] / nc;
    b += ref[i] / nr;
    d = std::max(d, std::abs(a - b));
  }
  return d * std::sqrt(nc);
}

// Draws one histogram and the normal expectation of that very lumisection (the simulator draws
// the normal shape first, so an equal generator state gives it), scaled to the observed total.
sim::Sample DrawWithOracle(const sim::MonitorSpec& spec, double entries, sim::Anomaly a,
                           double severity, std::mt19937_64& rng, std::vector<double>& oracle) {
  auto twin = rng;
  oracle = sim::Draw(spec, entries, sim::Anomaly::kNone, 0, twin).expected;
  auto s = sim::Draw(spec, entries, a, severity, rng);
  const double n = hm::Sum(s.contents), e = hm::Sum(oracle);
  for (double& v : oracle) v *= e > 0 ? n / e : 0;
  return s;
}

void ScoreInto(const hm::Model& model, const std::vector<double>& reference, const sim::Sample& s,
               const std::vector<double>& oracle, hm::Scratch& scratch, Scores& out) {
  const auto score = hm::ScoreHistogram(model, s.contents, scratch, 0);
  out.by_method[kRecon].push_back(NegLog(score.p_recon));
  out.by_method[kLatent].push_back(NegLog(score.p_latent));
  out.by_method[kCumulative].push_back(NegLog(score.p_cumulative));
  out.by_method[kRegional].push_back(NegLog(score.p_regional));
  out.by_method[kHistguard].push_back(NegLog(score.p_value));
  out.by_method[kChi2].push_back(hm::Chi2AgainstShape(s.contents, reference).chi2_per_ndf);
  out.by_method[kKs].push_back(Ks(s.contents, reference));
  out.by_method[kOracle].push_back(hm::DeviancePerBin(s.contents, oracle));
  out.by_method[kWithoutRegional].push_back(
      NegLog(std::min({score.p_recon, score.p_localised, score.p_latent, score.p_cumulative})));
  out.deviance.push_back(score.deviance);
  out.localised.push_back(NegLog(score.p_localised));
}

// Mann-Whitney AUC, ties counted half.
double Auc(std::vector<double> normal, const std::vector<double>& anomalous) {
  std::sort(normal.begin(), normal.end());
  double sum = 0;
  for (double a : anomalous) {
    const auto lo = std::lower_bound(normal.begin(), normal.end(), a);
    const auto hi = std::upper_bound(normal.begin(), normal.end(), a);
    sum += (lo - normal.begin()) + 0.5 * (hi - lo);
  }
  return sum / (static_cast<double>(normal.size()) * anomalous.size());
}

// The score that a fraction `fpr` of normals lies strictly above; NaN when not measurable.
double ThresholdAt(std::vector<double> normal, double fpr) {
  if (normal.size() * fpr < 1) return std::nan("");
  std::sort(normal.begin(), normal.end(), std::greater<>());
  return normal[static_cast<size_t>(std::floor(normal.size() * fpr))];
}

// Adds a histogram's shape (its contents over their sum) to a reference being summed.
void AddShape(std::vector<double>& reference, std::span<const double> counts) {
  if (reference.empty()) reference.assign(counts.size(), 0.0);
  const double total = hm::Sum(counts);
  for (size_t b = 0; b < reference.size() && total > 0; ++b) reference[b] += counts[b] / total;
}

// TPR at the threshold that lets through a fraction `fpr` of normals; NaN when not measurable.
double TprAt(const std::vector<double>& normal, const std::vector<double>& anomalous, double fpr) {
  const double threshold = ThresholdAt(normal, fpr);  // scores strictly above it are flagged
  if (std::isnan(threshold)) return threshold;
  size_t hit = 0;
  for (double a : anomalous) hit += a > threshold;
  return static_cast<double>(hit) / anomalous.size();
}

std::string Fmt(double v) {
  if (std::isnan(v)) return "-";
  char b[16];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

// Severity of each anomaly class per family, at which the better classical test (chi2 or KS)
// has a TPR of about 0.5 at FPR 1e-3 at 1e4 entries, so that the benchmark measures what a
// method adds where the classical tests catch a class only partly. From `--tune-severities
// --normals 20000 --anomalies 400` (seed 1, references from 500 normal histograms).
struct TunedSeverity {
  const char* family;
  const char* cls;
  double severity;
};
constexpr TunedSeverity kTunedSeverities[] = {
    {"spectrum", "dead_region", 0.24},       {"spectrum", "hot_bin", 0.109},
    {"spectrum", "shifted_peak", 0.687},     {"spectrum", "broadened_peak", 0.528},
    {"spectrum", "missing_feature", 0.549},  {"spectrum", "extra_noise", 0.043},
    {"peak", "dead_region", 0.277},          {"peak", "hot_bin", 0.147},
    {"peak", "shifted_peak", 0.083},         {"peak", "broadened_peak", 0.233},
    {"peak", "missing_feature", 0.236},      {"peak", "extra_noise", 0.242},
    {"occupancy", "dead_region", 0.264},     {"occupancy", "hot_bin", 0.144},
    {"occupancy", "shifted_peak", 0.19},     {"occupancy", "broadened_peak", 0.423},
    {"occupancy", "missing_feature", 0.307}, {"occupancy", "extra_noise", 1.17},
    {"map2d", "dead_region", 0.328},         {"map2d", "hot_bin", 0.205},
    {"map2d", "shifted_peak", 0.162},        {"map2d", "broadened_peak", 0.164},
    {"map2d", "missing_feature", 0.345},     {"map2d", "extra_noise", 0.698},
};

double SeverityFor(const std::string& family, sim::Anomaly cls, double uniform) {
  if (!std::isnan(uniform)) return uniform;
  for (const auto& t : kTunedSeverities)
    if (family == t.family && sim::Name(cls) == t.cls) return t.severity;
  return 0.5;
}

// The better classical test's TPR at FPR 1e-3 for one class at one severity, against the
// thresholds of the normals; the same anomaly draws (seeded) at every severity, so the TPR is
// close to monotone in it.
double ClassicalTpr(const sim::MonitorSpec& spec, double entries, sim::Anomaly cls, double severity,
                    const std::vector<double>& reference, double chi2_cut, double ks_cut, size_t n,
                    uint64_t seed) {
  std::mt19937_64 rng(seed);
  size_t chi2_hits = 0, ks_hits = 0;
  for (size_t i = 0; i < n; ++i) {
    const auto a = sim::Draw(spec, entries, cls, severity, rng);
    chi2_hits += hm::Chi2AgainstShape(a.contents, reference).chi2_per_ndf > chi2_cut;
    ks_hits += Ks(a.contents, reference) > ks_cut;
  }
  return static_cast<double>(std::max(chi2_hits, ks_hits)) / n;
}

// Prints kTunedSeverities: per family and class, the severity (bisected in log space between
// 0.01 and 5) at which the better classical test's TPR at FPR 1e-3 is 0.5 at 1e4 entries.
void TuneSeverities(const std::vector<std::pair<std::string, sim::MonitorSpec>>& families,
                    const std::vector<sim::Anomaly>& classes, size_t training, size_t normals,
                    size_t anomalies, uint64_t seed) {
  constexpr double kEntries = 1e4;
  std::mt19937_64 rng(seed);
  for (const auto& [fname, spec] : families) {
    std::vector<double> reference;
    for (size_t i = 0; i < training; ++i)
      AddShape(reference, sim::Draw(spec, kEntries, sim::Anomaly::kNone, 0, rng).contents);
    std::vector<double> chi2, ks;
    for (size_t i = 0; i < normals; ++i) {
      const auto s = sim::Draw(spec, kEntries, sim::Anomaly::kNone, 0, rng);
      chi2.push_back(hm::Chi2AgainstShape(s.contents, reference).chi2_per_ndf);
      ks.push_back(Ks(s.contents, reference));
    }
    const double chi2_cut = ThresholdAt(chi2, 1e-3), ks_cut = ThresholdAt(ks, 1e-3);
    for (auto cls : classes) {
      const uint64_t draw_seed = rng();
      auto tpr = [&](double sev) {
        return ClassicalTpr(spec, kEntries, cls, sev, reference, chi2_cut, ks_cut, anomalies,
                            draw_seed);
      };
      double lo = std::log(0.01), hi = std::log(5.0);
      double sev = 5.0;
      if (tpr(sev) > 0.5) {
        for (int it = 0; it < 14; ++it) {
          const double mid = 0.5 * (lo + hi);
          (tpr(std::exp(mid)) > 0.5 ? hi : lo) = mid;
        }
        sev = std::exp(hi);
      }
      std::printf("    {\"%s\", \"%s\", %.3g},  // classical TPR %.2f\n", fname.c_str(),
                  std::string(sim::Name(cls)).c_str(), sev, tpr(sev));
      std::fflush(stdout);
    }
  }
}

// The orderings a change must not break, checked by --check (the ctest run): each a statement
// about the cells of this run at >= 1e4 entries. Returns the number of failures.
int Check(const std::vector<CellResult>& cells, const std::vector<NormalResult>& normals,
          const std::vector<ContaminationResult>& contamination) {
  int failures = 0;
  auto report = [&](bool ok, const std::string& what) {
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
    failures += !ok;
  };
  auto find = [&](const CellResult& c, int method) { return FindCell(cells, c, method); };
  char line[256];
  for (const auto& c : cells) {
    if (c.entries < 1e4 || c.method != kHistguard) continue;
    const CellResult* ks = find(c, kKs);
    const CellResult* recon = find(c, kRecon);
    const CellResult* latent = find(c, kLatent);
    std::snprintf(line, sizeof line, "%s %g %s:", c.family.c_str(), c.entries,
                  std::string(sim::Name(c.cls)).c_str());
    const std::string cell = line;
    const CellResult* chi2 = find(c, kChi2);
    const CellResult* oracle = find(c, kOracle);
    if (c.cls == sim::Anomaly::kHotBin && ks && chi2 && oracle) {
      // A defect in a few bins hides in a cumulative test and stands out in a per-bin one:
      // histguard beats both classical tests, and reaches 0.95 where any of them or the oracle
      // does.
      const double best = std::max(ks->tpr3, chi2->tpr3);
      const double need = std::max({best, oracle->tpr3}) >= 0.95 ? std::max(best, 0.95) : best;
      std::snprintf(line, sizeof line,
                    " histguard TPR@1e-3 %.2f >= %.2f on a hot channel (KS %.2f, chi2 %.2f, "
                    "oracle %.2f)",
                    c.tpr3, need, ks->tpr3, chi2->tpr3, oracle->tpr3);
      report(c.tpr3 >= need - 0.02, cell + line);  // 0.02: two anomalies of the small run's 100
    }
    if (c.cls == sim::Anomaly::kMissingFeature) {
      // The complexity trap: an anomaly simpler than normal is still told apart.
      std::snprintf(line, sizeof line, " missing feature AUC %.2f >= 0.9", c.auc);
      report(c.auc >= 0.9, cell + line);
    }
    if (const CellResult* without = find(c, kWithoutRegional)) {
      // The regional statistic takes a share of the false-alarm budget: what it costs the classes
      // it does not see, against the same models' combination of the other four parts.
      std::snprintf(line, sizeof line,
                    " AUC %.3f and TPR@1e-3 %.2f at most 0.02 below %.3f and %.2f without the "
                    "regional statistic",
                    c.auc, c.tpr3, without->auc, without->tpr3);
      report(c.auc >= without->auc - 0.02 && c.tpr3 >= without->tpr3 - 0.02, cell + line);
    }
    const CellResult* cumulative = find(c, kCumulative);
    const CellResult* regional = find(c, kRegional);
    if (recon && latent && cumulative && regional &&
        std::max({recon->auc, latent->auc, cumulative->auc, regional->auc}) >= 0.9) {
      // Where a part detects well, combining the statistics costs little against it.
      const double best = std::max({recon->auc, latent->auc, cumulative->auc, regional->auc});
      std::snprintf(line, sizeof line, " combined AUC %.2f within 0.05 of its best part %.2f",
                    c.auc, best);
      report(c.auc >= best - 0.05, cell + line);
    }
  }
  for (const auto& n : normals) {
    // Never more false alarms than promised (conservative calibrations are reported, not failed:
    // a small holdout's fitted tail errs on the safe side).
    std::snprintf(line, sizeof line, "%s %g: normal rate of p < 1e-2 is %.2e, at most 2x 1e-2",
                  n.family.c_str(), n.entries, n.rate[0]);
    report(n.rate[0] <= 2e-2, line);
  }
  // Statistics-aware: the normal score means the same at every statistics.
  for (const auto& a : normals)
    for (const auto& b : normals)
      if (a.family == b.family && a.entries < b.entries) {
        const double ratio = std::max(a.median_deviance, b.median_deviance) /
                             std::min(a.median_deviance, b.median_deviance);
        std::snprintf(line, sizeof line,
                      "%s: median normal deviance %.3f at %g and %.3f at %g, ratio %.2f < 2",
                      a.family.c_str(), a.median_deviance, a.entries, b.median_deviance, b.entries,
                      ratio);
        report(ratio < 2, line);
      }
  for (const auto& c : contamination) {
    if (c.entries < 1e4) continue;
    std::snprintf(line, sizeof line,
                  "%s %g %s: AUC %.3f trained on a contaminated sample, %.3f on a clean one",
                  c.family.c_str(), c.entries, std::string(sim::Name(c.cls)).c_str(),
                  c.auc_contaminated, c.auc_clean);
    report(c.auc_contaminated >= c.auc_clean - 0.05, line);
  }
  return failures;
}

}  // namespace

// The spatial class: a detector-sized occupancy map (`side` x `side` cells) where one tower of
// 5x5 neighbouring cells, at a place where the map has 20-50 entries per cell, is raised to 1.5x
// its occupancy in one lumisection. Each cell of it moves by 2-3.5 sigma, within the largest
// normal fluctuation among the map's cells; the tower's sum by 11-18. Prints AUC and TPR at FPR
// 1e-3 (on the normals' scores) for the combined p-value, its parts and the chi2 test, and the
// rates of calibrated p < 1e-3 (WARNING). Returns the combined TPR at FPR 1e-3.
double Spatial(uint32_t side, size_t training, size_t normals, size_t anomalies, uint64_t seed,
               const hm::TrainOptions& options, std::string& table) {
  const sim::MonitorSpec spec{"bench/calorimeter_map", sim::Family::kOccupancy2D, {side, side}};
  const size_t cells = static_cast<size_t>(side) * side;
  const double entries = 35.0 * static_cast<double>(cells);
  std::mt19937_64 rng(seed);
  std::vector<std::vector<float>> train;
  std::vector<double> reference;
  for (size_t i = 0; i < training; ++i) {
    const auto s = sim::Draw(spec, entries, sim::Anomaly::kNone, 0, rng);
    train.emplace_back(s.contents.begin(), s.contents.end());
    AddShape(reference, s.contents);
  }
  const auto trained = hm::Train(train, spec.shape, options);
  std::vector<std::vector<float>>().swap(train);
  if (!trained.model) {
    std::fprintf(stderr, "spatial: training failed: %s\n", trained.error.c_str());
    return 0;
  }
  enum { kCombined, kRegion, kLargestBin, kDeviance, kChi2Test, kSpatialMethods };
  const char* names[kSpatialMethods] = {"histguard", "region", "largest bin", "recon", "chi2"};
  std::array<std::vector<double>, kSpatialMethods> normal, towers;
  hm::Scratch scratch;
  auto score_into = [&](const std::vector<double>& counts, auto& out) {
    const auto s = hm::ScoreHistogram(*trained.model, counts, scratch, 0);
    out[kCombined].push_back(NegLog(s.p_value));
    out[kRegion].push_back(NegLog(s.p_regional));
    out[kLargestBin].push_back(NegLog(s.p_localised));
    out[kDeviance].push_back(NegLog(s.p_recon));
    out[kChi2Test].push_back(hm::Chi2AgainstShape(counts, reference).chi2_per_ndf);
  };
  for (size_t i = 0; i < normals; ++i)
    score_into(sim::Draw(spec, entries, sim::Anomaly::kNone, 0, rng).contents, normal);
  size_t placed = 0;
  for (size_t i = 0; i < anomalies; ++i) {
    auto s = sim::Draw(spec, entries, sim::Anomaly::kNone, 0, rng);
    for (int tries = 0; tries < 100000; ++tries) {
      const uint32_t x0 = static_cast<uint32_t>(rng() % (side - 4));
      const uint32_t y0 = static_cast<uint32_t>(rng() % (side - 4));
      double lowest = 1e300, highest = 0;
      for (uint32_t x = x0; x < x0 + 5; ++x)
        for (uint32_t y = y0; y < y0 + 5; ++y) {
          lowest = std::min(lowest, s.expected[x * side + y]);
          highest = std::max(highest, s.expected[x * side + y]);
        }
      if (lowest < 20 || highest > 50) continue;
      for (uint32_t x = x0; x < x0 + 5; ++x)
        for (uint32_t y = y0; y < y0 + 5; ++y) {
          const size_t b = x * side + y;
          s.contents[b] =
              static_cast<double>(std::poisson_distribution<long>(1.5 * s.expected[b])(rng));
        }
      ++placed;
      break;
    }
    score_into(s.contents, towers);
  }
  std::ostringstream out;
  out << "\nSpatial: a 5x5 tower at 1.5x its occupancy in a " << side << "x" << side << " map ("
      << cells << " cells, " << entries / cells << " entries per cell on average; each tower where "
      << "the map has 20-50 per cell: " << placed << " of " << anomalies << " placed), model "
      << "trained on " << training << " maps, " << normals << " normal maps.\n\n"
      << "| method | AUC | TPR@1e-3 | towers at p < 1e-3 | normals at p < 1e-3 |\n"
      << "|---|---:|---:|---:|---:|\n";
  for (int m = 0; m < kSpatialMethods; ++m) {
    const bool calibrated = m != kChi2Test;
    out << "| " << names[m] << " | " << Fmt(Auc(normal[m], towers[m])) << " | "
        << Fmt(TprAt(normal[m], towers[m], 1e-3)) << " | "
        << (calibrated ? Fmt(RateAbove(towers[m], 1e-3)) : "-") << " | ";
    if (calibrated) {
      char b[32];
      std::snprintf(b, sizeof b, "%.2e", RateAbove(normal[m], 1e-3));
      out << b;
    } else {
      out << "-";
    }
    out << " |\n";
  }
  // What the statistics cost beside the forward pass, on this map: scoring against the expected
  // counts alone, timed in the same run.
  const auto map = sim::Draw(spec, entries, sim::Anomaly::kNone, 0, rng).contents;
  using Clock = std::chrono::steady_clock;
  double sink = 0;
  auto time_of = [&](auto fn) {
    const auto start = Clock::now();
    int calls = 0;
    while (Clock::now() - start < std::chrono::seconds(2)) {
      fn();
      ++calls;
    }
    return std::chrono::duration<double>(Clock::now() - start).count() / calls;
  };
  const double forward = time_of([&] {
    hm::Expect(*trained.model, map, scratch);
    sink += scratch.expected[0];
  });
  const double scoring =
      time_of([&] { sink += hm::ScoreHistogram(*trained.model, map, scratch).p_value; });
  const double statistics =
      time_of([&] { sink += hm::ComputeRawStats(*trained.model, map, scratch).regional; });
  hm::LastingRegions lasting;
  const double lasting_cost = time_of([&] {
    sink +=
        lasting.Add(*trained.model, map, scratch).p_value;  // scratch holds the map's expectation
  });
  // The same model seen as one row of cells: no block fits, so no regional statistic.
  hm::Model row = *trained.model;
  row.shape = {static_cast<uint32_t>(cells), 1};
  const double without = time_of([&] { sink += hm::ComputeRawStats(row, map, scratch).deviance; });
  char line[256];
  std::snprintf(line, sizeof line,
                "\nScoring one map: %.2f ms, the forward pass %.2f ms, the statistics %.2f ms, of "
                "which the regional one %.2f ms (%.0f%% of the scoring); the lasting evidence "
                "besides %.2f ms%s\n",
                scoring * 1e3, forward * 1e3, statistics * 1e3, (statistics - without) * 1e3,
                100 * (statistics - without) / scoring, lasting_cost * 1e3, sink == -1 ? " " : "");
  out << line;
  table += out.str();
  return TprAt(normal[kCombined], towers[kCombined], 1e-3);
}

// The lasting-defect class: a block of neighbouring bins at a fixed place runs at a reduced
// efficiency in every lumisection from one on, as a module with a weak HV channel does. For each
// family at 1e4 entries (the map: 40x40 cells at 50 per cell) and each efficiency, `runs` runs of
// 100 lumisections with the defect, each after 30 normal ones, are scored as a monitor scores
// them: the single-lumisection p-value alone, and combined with the lasting evidence gathered
// since the run began (CombineWithLasting). Prints how many lumisections pass until the first flag
// (p < 1e-3; the median over the runs, "-" when most are never flagged), the share flagged in the
// last 50, and the rate of flags on `normals` consecutive normal lumisections. Returns the number
// of failed checks: the half-efficient block flagged within 20 and in 95% of the last 50, and
// the lasting evidence adding at most 1e-3 to the rate of flags on normal lumisections.
int Lasting(size_t training, size_t normals, size_t runs, uint64_t seed,
            const hm::TrainOptions& options, std::string& table) {
  struct Case {
    std::string name;
    sim::MonitorSpec spec;
    double entries;
    std::vector<size_t> block;  // its bins
    std::string where;
  };
  std::vector<Case> cases;
  {
    std::vector<size_t> b0, b1, b2, b3;
    for (size_t b = 30; b < 46; ++b) b0.push_back(b);
    for (size_t b = 40; b < 56; ++b) b1.push_back(b);
    for (size_t b = 48; b < 64; ++b) b2.push_back(b);
    for (size_t x = 20; x < 24; ++x)
      for (size_t y = 8; y < 12; ++y) b3.push_back(x * 40 + y);
    // The spectrum's tail (bins 41-56) holds 2% of its entries: a deficit there looks much like
    // a lower gain, which the lasting evidence follows (see ProfileAxis).
    cases.push_back({"spectrum",
                     {"bench/spectrum", sim::Family::kFallingSpectrum, {100}},
                     1e4,
                     b0,
                     "bins 31-46"});
    cases.push_back({"spectrum",
                     {"bench/spectrum", sim::Family::kFallingSpectrum, {100}},
                     1e4,
                     b1,
                     "bins 41-56"});
    cases.push_back({"occupancy",
                     {"bench/occupancy", sim::Family::kChannelOccupancy, {128}},
                     1e4,
                     b2,
                     "channels 49-64"});
    cases.push_back({"map",
                     {"bench/map", sim::Family::kOccupancy2D, {40, 40}},
                     50.0 * 1600,
                     b3,
                     "cells (21-24, 9-12)"});
  }
  const std::vector<double> efficiencies = {0.95, 0.9, 0.8, 0.5};
  constexpr int kBefore = 30, kDuring = 100, kLast = 50;
  constexpr double kFlag = 1e-3;
  std::mt19937_64 rng(seed);
  std::ostringstream out;
  out << "\nLasting defects: a block at a reduced efficiency in every lumisection, " << runs
      << " runs of " << kDuring << " lumisections each (after " << kBefore
      << " normal ones), models "
      << "trained on " << training << " histograms. First flag: median lumisections until "
      << "p < 1e-3 (1 = the first). Normals: share of " << normals
      << " consecutive normal lumisections at p < 1e-3.\n\n"
      << "| family | block | efficiency | block's deficit per LS (sigma) | single LS: first flag | "
         "single LS: last 50 flagged | with lasting evidence: first flag | with lasting evidence: "
         "last 50 flagged |\n"
      << "|---|---|---:|---:|---:|---:|---:|---:|\n";
  std::ostringstream normal_rows;
  int failures = 0;
  for (const Case& c : cases) {
    std::vector<std::vector<float>> train;
    for (size_t i = 0; i < training; ++i) {
      const auto s = sim::Draw(c.spec, c.entries, sim::Anomaly::kNone, 0, rng);
      train.emplace_back(s.contents.begin(), s.contents.end());
    }
    const auto trained = hm::Train(train, c.spec.shape, options);
    if (!trained.model) {
      std::fprintf(stderr, "lasting %s: training failed: %s\n", c.name.c_str(),
                   trained.error.c_str());
      ++failures;
      continue;
    }
    const hm::Model& model = *trained.model;
    hm::Scratch scratch;
    // Scores one histogram: {single p, combined p}.
    auto score = [&](const std::vector<double>& counts, hm::LastingRegions& lasting) {
      const double single = hm::ScoreHistogram(model, counts, scratch, 0).p_value;
      const double p_lasting = lasting.Add(model, counts, scratch).p_value;
      return std::array<double, 2>{
          single, lasting.active() ? hm::CombineWithLasting(single, p_lasting) : single};
    };
    {
      hm::LastingRegions lasting;
      size_t flagged[2] = {0, 0};
      for (size_t i = 0; i < normals; ++i) {
        const auto p =
            score(sim::Draw(c.spec, c.entries, sim::Anomaly::kNone, 0, rng).contents, lasting);
        for (int k = 0; k < 2; ++k) flagged[k] += p[k] < kFlag;
      }
      const double rate_single = static_cast<double>(flagged[0]) / normals,
                   rate = static_cast<double>(flagged[1]) / normals;
      char line[200];
      std::snprintf(line, sizeof line, "| %s (the model of the %s rows) | %.1e | %.1e |%s\n",
                    c.name.c_str(), c.where.c_str(), rate_single, rate,
                    lasting.active() ? "" : " (no lasting evidence: model without it)");
      normal_rows << line;
      if (rate > rate_single + kFlag) ++failures;
    }
    for (double eff : efficiencies) {
      std::vector<double> first[2];
      size_t last_flagged[2] = {0, 0};
      double sigma = 0;
      for (size_t r = 0; r < runs; ++r) {
        hm::LastingRegions lasting;
        for (int i = 0; i < kBefore; ++i)
          score(sim::Draw(c.spec, c.entries, sim::Anomaly::kNone, 0, rng).contents, lasting);
        double found[2] = {-1, -1};
        for (int i = 0; i < kDuring; ++i) {
          auto s = sim::Draw(c.spec, c.entries, sim::Anomaly::kNone, 0, rng);
          double expected = 0;
          for (size_t b : c.block) {
            expected += s.expected[b];
            s.contents[b] =
                static_cast<double>(std::poisson_distribution<long>(eff * s.expected[b])(rng));
          }
          if (r == 0 && i == 0) sigma = (1 - eff) * expected / std::sqrt(expected);
          const auto p = score(s.contents, lasting);
          for (int k = 0; k < 2; ++k) {
            if (p[k] < kFlag && found[k] < 0) found[k] = i + 1;
            if (i >= kDuring - kLast) last_flagged[k] += p[k] < kFlag;
          }
        }
        for (int k = 0; k < 2; ++k) first[k].push_back(found[k] < 0 ? 1e9 : found[k]);
      }
      auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
      };
      auto first_text = [&](int k) {
        const double m = median(first[k]);
        return m >= 1e9 ? std::string("-") : std::to_string(static_cast<int>(m));
      };
      const double share[2] = {static_cast<double>(last_flagged[0]) / (runs * kLast),
                               static_cast<double>(last_flagged[1]) / (runs * kLast)};
      char line[300];
      std::snprintf(line, sizeof line, "| %s | %s | %.2f | %.1f | %s | %.2f | %s | %.2f |\n",
                    c.name.c_str(), c.where.c_str(), eff, sigma, first_text(0).c_str(), share[0],
                    first_text(1).c_str(), share[1]);
      out << line;
      if (eff == 0.5 && (median(first[1]) > 20 || share[1] < 0.95)) ++failures;
    }
  }
  out << "\n| family | normals at p < 1e-3, single LS | with lasting evidence |\n|---|---:|---:|\n"
      << normal_rows.str();
  table += out.str();
  return failures;
}

using Families = std::vector<std::pair<std::string, sim::MonitorSpec>>;

// The main comparison's settings: sample sizes, statistics levels and how anomalies are drawn.
struct CellOptions {
  size_t normals = 100000, anomalies = 200, training = 500;
  std::vector<double> statistics = {1e3, 1e4, 1e5, 1e6};
  double severity = std::nan("");  // one for every class; NaN: tuned per family and class
  double contamination = 0;
  uint64_t seed = 1;
  hm::TrainOptions train;
};

struct Measured {
  std::vector<CellResult> cells;
  std::vector<NormalResult> normals;
  std::vector<ContaminationResult> contaminated;
};

// One family at one statistics level: a model trained on a clean sample (and, with
// contamination, one on a sample with anomalies in it), every method scored on the normals and on
// each anomaly class.
void MeasureFamily(const std::string& fname, const sim::MonitorSpec& spec, double entries,
                   const std::vector<sim::Anomaly>& classes, const CellOptions& o,
                   std::mt19937_64& rng, Measured& out) {
  std::vector<std::vector<float>> train, dirty;
  std::vector<double> reference(
      spec.shape.size() == 2 ? spec.shape[0] * spec.shape[1] : spec.shape[0], 0.0);
  const size_t every =
      o.contamination > 0 ? static_cast<size_t>(std::lround(1 / o.contamination)) : 0;
  for (size_t i = 0; i < o.training; ++i) {
    const auto s = sim::Draw(spec, entries, sim::Anomaly::kNone, 0, rng);
    train.emplace_back(s.contents.begin(), s.contents.end());
    AddShape(reference, s.contents);
    if (every > 0) {
      // The same sample with every n-th histogram replaced by an anomaly of the next class.
      if (i % every == every / 2) {
        const auto cls = classes[(i / every) % classes.size()];
        const auto a = sim::Draw(spec, entries, cls, SeverityFor(fname, cls, o.severity), rng);
        dirty.emplace_back(a.contents.begin(), a.contents.end());
      } else {
        dirty.push_back(train.back());
      }
    }
  }
  const auto trained = hm::Train(train, spec.shape, o.train);
  if (!trained.model) {
    std::fprintf(stderr, "%s %g: training failed: %s\n", fname.c_str(), entries,
                 trained.error.c_str());
    return;
  }
  hm::TrainOutcome trained_dirty;
  if (every > 0) trained_dirty = hm::Train(dirty, spec.shape, o.train);
  hm::Scratch scratch;
  Scores normal, normal_dirty;
  std::vector<double> oracle;
  for (size_t i = 0; i < o.normals; ++i) {
    const auto s = DrawWithOracle(spec, entries, sim::Anomaly::kNone, 0, rng, oracle);
    ScoreInto(*trained.model, reference, s, oracle, scratch, normal);
    if (trained_dirty.model)
      ScoreInto(*trained_dirty.model, reference, s, oracle, scratch, normal_dirty);
  }
  for (auto cls : classes) {
    Scores anom, anom_dirty;
    for (size_t i = 0; i < o.anomalies; ++i) {
      const auto s =
          DrawWithOracle(spec, entries, cls, SeverityFor(fname, cls, o.severity), rng, oracle);
      ScoreInto(*trained.model, reference, s, oracle, scratch, anom);
      if (trained_dirty.model)
        ScoreInto(*trained_dirty.model, reference, s, oracle, scratch, anom_dirty);
    }
    for (int m = 0; m < kMethods; ++m)
      out.cells.push_back({fname, entries, cls, m, Auc(normal.by_method[m], anom.by_method[m]),
                           TprAt(normal.by_method[m], anom.by_method[m], 1e-3),
                           TprAt(normal.by_method[m], anom.by_method[m], 1e-5),
                           m <= kHistguard ? RateAbove(anom.by_method[m], kBadP) : std::nan("")});
    if (trained_dirty.model)
      out.contaminated.push_back(
          {fname, entries, cls, Auc(normal.by_method[kHistguard], anom.by_method[kHistguard]),
           Auc(normal_dirty.by_method[kHistguard], anom_dirty.by_method[kHistguard])});
  }
  NormalResult nr{
      fname, entries, {0, 0, 0, 0}, hm::Median(normal.deviance), {}, trained.model->tests};
  const double ts[4] = {1e-2, 1e-3, 1e-4, kBadP};
  for (int k = 0; k < 4; ++k) nr.rate[k] = RateAbove(normal.by_method[kHistguard], ts[k]);
  const std::vector<double>* parts[5] = {&normal.by_method[kRecon], &normal.localised,
                                         &normal.by_method[kLatent], &normal.by_method[kCumulative],
                                         &normal.by_method[kRegional]};
  for (int p = 0; p < 5; ++p)
    for (int k = 0; k < 2; ++k) nr.part_rate[p][k] = RateAbove(*parts[p], ts[k]);
  out.normals.push_back(nr);
}

// The Markdown tables of a measurement.
std::string Report(const Measured& r, const Families& families,
                   const std::vector<sim::Anomaly>& classes, const CellOptions& o) {
  std::ostringstream table;
  table << "Seed " << o.seed << ", "
        << (std::isnan(o.severity) ? std::string("severities tuned per family and class (below)")
                                   : "severity " + Fmt(o.severity))
        << ", " << o.normals << " normal and " << o.anomalies
        << " anomalous histograms per cell, models trained on " << o.training
        << " normal histograms.\n\n"
        << "| family | entries | anomaly | method | AUC | TPR@1e-3 | TPR@1e-5 | p < 1e-5 |\n"
        << "|---|---:|---|---|---:|---:|---:|---:|\n";
  for (const auto& c : r.cells)
    table << "| " << c.family << " | " << c.entries << " | " << sim::Name(c.cls) << " | "
          << kMethodNames[c.method] << " | " << Fmt(c.auc) << " | " << Fmt(c.tpr3) << " | "
          << Fmt(c.tpr5) << " | " << Fmt(c.flagged) << " |\n";
  {
    // What the regional statistic costs the classes it does not see: the same models, the same
    // histograms, combined without it.
    int losses = 0, gains = 0, compared = 0;
    double worst = 0;
    std::string worst_cell = "none";
    for (const auto& c : r.cells) {
      if (c.entries < 1e4 || c.method != kHistguard) continue;
      const CellResult* without = FindCell(r.cells, c, kWithoutRegional);
      if (!without) continue;
      const std::pair<const char*, double> deltas[] = {{"AUC", without->auc - c.auc},
                                                       {"TPR@1e-3", without->tpr3 - c.tpr3},
                                                       {"TPR@1e-5", without->tpr5 - c.tpr5}};
      for (const auto& [what, d] : deltas) {
        ++compared;
        losses += d > 0.02;
        gains += d < -0.02;
        if (d > worst) {
          worst = d;
          char label[128];
          std::snprintf(label, sizeof label, "%s %g %s, %s", c.family.c_str(), c.entries,
                        std::string(sim::Name(c.cls)).c_str(), what);
          worst_cell = label;
        }
      }
    }
    table << "\nThe regional statistic's cost: of " << compared
          << " cells (AUC, TPR@1e-3 and TPR@1e-5 of each family, statistics and class at >= 1e4 "
             "entries), histguard loses more than 0.02 in "
          << losses << " and gains more than 0.02 in " << gains
          << " against the same models combined without it (`w/o region`); the largest loss is "
          << Fmt(worst) << " (" << worst_cell << ").\n";
  }
  table << "\nNormal histograms: observed rate of combined p < t (calibration; p < 1e-5 is "
           "BAD), and the median histguard score (deviance per bin).\n\n"
        << "| family | entries | p < 1e-2 | p < 1e-3 | p < 1e-4 | p < 1e-5 | median score |\n"
        << "|---|---:|---:|---:|---:|---:|---:|\n";
  char buf[256];
  for (const auto& n : r.normals) {
    std::snprintf(buf, sizeof buf, "| %s | %g | %.2e | %.2e | %.2e | %.2e | %.3f |\n",
                  n.family.c_str(), n.entries, n.rate[0], n.rate[1], n.rate[2], n.rate[3],
                  n.median_deviance);
    table << buf;
  }
  table << "\nThe parts of the combination on the normal histograms: observed rate of each part's "
           "p < t, and the number of independent tests the model combines them over.\n\n"
        << "| family | entries | recon 1e-2 | recon 1e-3 | largest bin 1e-2 | largest bin 1e-3 "
           "| latent 1e-2 | latent 1e-3 | cumul 1e-2 | cumul 1e-3 | region 1e-2 | region 1e-3 "
           "| tests |\n"
        << "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& n : r.normals) {
    std::snprintf(buf, sizeof buf,
                  "| %s | %g | %.2e | %.2e | %.2e | %.2e | %.2e | %.2e | %.2e | %.2e | %.2e | %.2e "
                  "| %.2f |\n",
                  n.family.c_str(), n.entries, n.part_rate[0][0], n.part_rate[0][1],
                  n.part_rate[1][0], n.part_rate[1][1], n.part_rate[2][0], n.part_rate[2][1],
                  n.part_rate[3][0], n.part_rate[3][1], n.part_rate[4][0], n.part_rate[4][1],
                  n.tests);
    table << buf;
  }
  // The BAD flag at the daemon's default bad_p: how many clearly detectable anomalies (histguard
  // separates them from every normal at FPR 1e-5) it really raises.
  size_t clear = 0, clear_bad = 0;
  double flagged_sum = 0;
  for (const auto& c : r.cells)
    if (c.method == kHistguard && c.tpr5 >= 0.9) {
      ++clear;
      flagged_sum += c.flagged;
      clear_bad += c.flagged >= 0.5;
    }
  if (clear > 0) {
    std::snprintf(buf, sizeof buf,
                  "\nBAD (p < %g) in the %zu cells histguard detects clearly (TPR@1e-5 >= 0.9): "
                  "mean %.2f of the anomalies, most of them in %zu cells.\n",
                  kBadP, clear, flagged_sum / clear, clear_bad);
    table << buf;
  }
  if (!r.contaminated.empty()) {
    table << "\nTraining on a sample with " << o.contamination * 100
          << "% anomalies: histguard's AUC against the clean model's.\n\n"
          << "| family | entries | anomaly | AUC clean | AUC contaminated | loss |\n"
          << "|---|---:|---|---:|---:|---:|\n";
    for (const auto& c : r.contaminated) {
      std::snprintf(buf, sizeof buf, "| %s | %g | %s | %.3f | %.3f | %.3f |\n", c.family.c_str(),
                    c.entries, std::string(sim::Name(c.cls)).c_str(), c.auc_clean,
                    c.auc_contaminated, c.auc_clean - c.auc_contaminated);
      table << buf;
    }
  }
  if (std::isnan(o.severity)) {
    table << "\nSeverities (simulator units), each where the better classical test's TPR at FPR "
             "1e-3 is about 0.5 at 1e4 entries (`--tune-severities`).\n\n| family |";
    for (auto cls : classes) table << " " << sim::Name(cls) << " |";
    table << "\n|---|";
    for (size_t i = 0; i < classes.size(); ++i) table << "---:|";
    table << "\n";
    for (const auto& [fname, spec] : families) {
      table << "| " << fname << " |";
      for (auto cls : classes) table << " " << SeverityFor(fname, cls, o.severity) << " |";
      table << "\n";
    }
  }
  return table.str();
}

int main(int argc, char** argv) {
  CLI::App app{
      "histguard_detection: detection quality of histguard against the classical DQM tests"};
  CellOptions cell;
  std::vector<std::string> family_names;
  std::string out_path;
  bool check = false;
  app.add_option("--normals", cell.normals, "normal histograms per family and statistics")
      ->capture_default_str();
  app.add_option("--anomalies", cell.anomalies, "anomalous histograms per class")
      ->capture_default_str();
  app.add_option("--training", cell.training, "normal histograms each model trains on")
      ->capture_default_str();
  app.add_option("--entries", cell.statistics, "statistics levels")->capture_default_str();
  app.add_option("--families", family_names,
                 "only these families (spectrum, peak, occupancy, map2d)");
  app.add_option("--severity", cell.severity,
                 "one anomaly severity for every class (simulator units); by default each family "
                 "and class has the severity at which the classical tests catch it partly (TPR "
                 "0.5 at FPR 1e-3 at 1e4 entries)");
  bool tune = false;
  app.add_flag("--tune-severities", tune,
               "print the table of those severities (bisected on --normals normal and --anomalies "
               "anomalous histograms per class at 1e4 entries) and exit");
  app.add_option(
         "--contamination", cell.contamination,
         "also train each model on a sample with this fraction of anomalies (all classes in "
         "turn) and compare histguard's AUC with the clean model's")
      ->check(CLI::Range(0.0, 0.5));
  app.add_option("--out", out_path, "also write the tables to this Markdown file");
  app.add_option("--seed", cell.seed, "random seed")->capture_default_str();
  app.add_flag(
      "--check", check,
      "check the orderings that must hold (exit 1 when one does not): histguard beats chi2 "
      "and KS on hot channels (and reaches 0.95 where they or the oracle do), catches missing "
      "features, combines without loss, loses at most 0.02 to its combination without the "
      "regional statistic, raises at most 2x the promised false alarms at p < 1e-2, scores the "
      "same at every statistics, survives "
      "contamination");
  bool spatial_only = false;
  uint32_t spatial_side = 180;
  app.add_flag("--spatial", spatial_only,
               "run only the spatial class: a 5x5 tower at 1.5x in a detector-sized map, trained "
               "on --training maps, --normals normal maps and --anomalies towers");
  app.add_option("--spatial-side", spatial_side, "cells along each axis of the spatial class's map")
      ->capture_default_str()
      ->check(CLI::Range(20, 256));
  bool lasting_only = false;
  app.add_flag("--lasting", lasting_only,
               "run only the lasting-defect class: a block at 0.95-0.5 efficiency for 100 "
               "lumisections in a spectrum, a channel occupancy and a map, --anomalies / 10 runs "
               "each, and --normals consecutive normal lumisections");
  app.add_option("--latent", cell.train.latent, "bottleneck width of the models")
      ->capture_default_str();
  app.add_option("--min-steps", cell.train.min_steps, "optimiser steps of a training at least")
      ->capture_default_str();
  app.add_option("--learning-rate", cell.train.learning_rate, "optimiser learning rate")
      ->capture_default_str();
  app.add_option("--max-steps", cell.train.max_steps, "optimiser steps of a training at most")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  hm::SetComputeThreads(1);

  Families families = {
      {"spectrum", {"bench/spectrum", sim::Family::kFallingSpectrum, {100}}},
      {"peak", {"bench/peak", sim::Family::kPeakOnBackground, {100}}},
      {"occupancy", {"bench/occupancy", sim::Family::kChannelOccupancy, {128}}},
      {"map2d", {"bench/map2d", sim::Family::kOccupancy2D, {20, 20}}},
  };
  if (!family_names.empty()) {
    std::erase_if(families, [&](const auto& f) {
      return std::find(family_names.begin(), family_names.end(), f.first) == family_names.end();
    });
    if (families.empty()) {
      std::fprintf(stderr, "histguard_detection: no known family in --families\n");
      return 2;
    }
  }
  const std::vector<sim::Anomaly> classes = {
      sim::Anomaly::kDeadRegion,    sim::Anomaly::kHotBin,         sim::Anomaly::kShiftedPeak,
      sim::Anomaly::kBroadenedPeak, sim::Anomaly::kMissingFeature, sim::Anomaly::kExtraNoise};

  if (tune) {
    TuneSeverities(families, classes, cell.training, cell.normals, cell.anomalies, cell.seed);
    return 0;
  }
  if (spatial_only) {
    std::string table;
    const double tpr = Spatial(spatial_side, cell.training, cell.normals, cell.anomalies, cell.seed,
                               cell.train, table);
    std::fputs(table.c_str(), stdout);
    if (!out_path.empty()) std::ofstream(out_path) << table;
    if (check) {
      std::printf("%s spatial: histguard TPR@1e-3 %.2f >= 0.9\n", tpr >= 0.9 ? "ok  " : "FAIL",
                  tpr);
      return tpr >= 0.9 ? 0 : 1;
    }
    return 0;
  }

  if (lasting_only) {
    std::string table;
    const int failures =
        Lasting(cell.training, cell.normals, std::max<size_t>(cell.anomalies / 10, 1), cell.seed,
                cell.train, table);
    std::fputs(table.c_str(), stdout);
    if (!out_path.empty()) std::ofstream(out_path) << table;
    if (check)
      std::printf(
          "%s lasting: half-efficient blocks flagged within 20 LS and in 95%% of the last "
          "50, the lasting evidence adds at most 1e-3 to the normals flagged (%d failed)\n",
          failures == 0 ? "ok  " : "FAIL", failures);
    return check && failures > 0 ? 1 : 0;
  }

  Measured measured;
  std::mt19937_64 rng(cell.seed);
  for (const auto& [fname, spec] : families)
    for (double entries : cell.statistics)
      MeasureFamily(fname, spec, entries, classes, cell, rng, measured);
  const std::string table = Report(measured, families, classes, cell);
  std::fputs(table.c_str(), stdout);
  if (!out_path.empty()) std::ofstream(out_path) << table;
  if (check) {
    const int failures = Check(measured.cells, measured.normals, measured.contaminated);
    std::printf("%d check(s) failed\n", failures);
    return failures == 0 ? 0 : 1;
  }
  return 0;
}
