// histguard_detection: how well histguard's scores separate anomalous from normal histograms,
// beside the classical DQM tests and an oracle, for detector-like families at four statistics.
// Prints a Markdown table (ROC AUC and true-positive rate at false-positive rates 1e-3 and 1e-5).
//
//   histguard_detection                         full run (100,000 normals per cell, for FPR 1e-5)
//   histguard_detection --normals 2000 --quick  fast run (FPR 1e-5 not measurable: "-")
//
// Methods, each a score where larger means more anomalous:
//   recon     histguard's reconstruction deviance (calibrated p-value, as -log p)
//   latent    histguard's latent Mahalanobis score (-log p)
//   histguard the combined p-value the daemon judges by (-log p)
//   chi2      Pearson chi2 against the reference (mean shape of the training sample)
//   ks        Kolmogorov-Smirnov distance of the cumulative shapes, times sqrt(entries)
//   oracle    deviance against the true normal shape of that very lumisection (the generator
//             knows it; no model of normal data can know more)
// Models are trained by models::Train, the code path the daemon uses, on 500 normal histograms.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include "client/simulator.h"
#include "models/stats.h"
#include "models/trainer.h"

namespace sim = histguard::sim;
namespace hm = histguard::models;

namespace {

constexpr int kMethods = 6;
const char* kMethodNames[kMethods] = {"recon", "latent", "histguard", "chi2", "ks", "oracle"};

struct Scores {
  std::array<std::vector<double>, kMethods> by_method;
};

double NegLog(double p) { return -std::log10(std::max(p, 1e-300)); }

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

void ScoreInto(const hm::Model& model, const std::vector<double>& reference,
               const sim::Sample& s, const std::vector<double>& oracle, hm::Scratch& scratch,
               Scores& out) {
  const auto score = hm::ScoreHistogram(model, s.contents, scratch, 0);
  out.by_method[0].push_back(NegLog(score.p_recon));
  out.by_method[1].push_back(NegLog(score.p_latent));
  out.by_method[2].push_back(NegLog(score.p_value));
  out.by_method[3].push_back(hm::Chi2AgainstShape(s.contents, reference).chi2_per_ndf);
  out.by_method[4].push_back(Ks(s.contents, reference));
  out.by_method[5].push_back(hm::DeviancePerBin(s.contents, oracle));
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

// TPR at the threshold that lets through a fraction `fpr` of normals; NaN when not measurable.
double TprAt(std::vector<double> normal, const std::vector<double>& anomalous, double fpr) {
  if (normal.size() * fpr < 1) return std::nan("");
  std::sort(normal.begin(), normal.end(), std::greater<>());
  const size_t k = static_cast<size_t>(std::floor(normal.size() * fpr));
  const double threshold = normal[k];  // scores strictly above it are flagged
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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"histguard_detection: detection quality of histguard against the classical DQM tests"};
  size_t normals = 100000, anomalies = 200, training = 500;
  std::vector<double> statistics = {1e3, 1e4, 1e5, 1e6};
  double severity = 0.5;
  std::string out_path;
  uint64_t seed = 1;
  app.add_option("--normals", normals, "normal histograms per family and statistics")
      ->capture_default_str();
  app.add_option("--anomalies", anomalies, "anomalous histograms per class")->capture_default_str();
  app.add_option("--training", training, "normal histograms each model trains on")
      ->capture_default_str();
  app.add_option("--entries", statistics, "statistics levels")->capture_default_str();
  app.add_option("--severity", severity, "anomaly severity (simulator units)")->capture_default_str();
  app.add_option("--out", out_path, "also write the table to this Markdown file");
  app.add_option("--seed", seed, "random seed")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  hm::SetComputeThreads(1);

  const std::vector<std::pair<std::string, sim::MonitorSpec>> families = {
      {"spectrum", {"bench/spectrum", sim::Family::kFallingSpectrum, {100}}},
      {"peak", {"bench/peak", sim::Family::kPeakOnBackground, {100}}},
      {"occupancy", {"bench/occupancy", sim::Family::kChannelOccupancy, {128}}},
      {"map2d", {"bench/map2d", sim::Family::kOccupancy2D, {20, 20}}},
  };
  const std::vector<sim::Anomaly> classes = {
      sim::Anomaly::kDeadRegion,     sim::Anomaly::kHotBin,     sim::Anomaly::kShiftedPeak,
      sim::Anomaly::kBroadenedPeak,  sim::Anomaly::kMissingFeature, sim::Anomaly::kExtraNoise};

  std::ostringstream table;
  table << "Seed " << seed << ", severity " << severity << ", " << normals
        << " normal and " << anomalies << " anomalous histograms per cell, models trained on "
        << training << " normal histograms.\n\n"
        << "| family | entries | anomaly | method | AUC | TPR@1e-3 | TPR@1e-5 |\n"
        << "|---|---:|---|---|---:|---:|---:|\n";
  std::mt19937_64 rng(seed);
  for (const auto& [fname, spec] : families) {
    for (double entries : statistics) {
      std::vector<std::vector<float>> train;
      std::vector<double> reference(spec.shape.size() == 2 ? spec.shape[0] * spec.shape[1]
                                                           : spec.shape[0], 0.0);
      for (size_t i = 0; i < training; ++i) {
        const auto s = sim::Draw(spec, entries, sim::Anomaly::kNone, 0, rng);
        train.emplace_back(s.contents.begin(), s.contents.end());
        const double total = hm::Sum(s.contents);
        for (size_t b = 0; b < reference.size() && total > 0; ++b) reference[b] += s.contents[b] / total;
      }
      const auto trained = hm::Train(train, spec.shape, {});
      if (!trained.model) {
        std::fprintf(stderr, "%s %g: training failed: %s\n", fname.c_str(), entries,
                     trained.error.c_str());
        continue;
      }
      hm::Scratch scratch;
      Scores normal;
      std::vector<double> oracle;
      for (size_t i = 0; i < normals; ++i) {
        const auto s = DrawWithOracle(spec, entries, sim::Anomaly::kNone, 0, rng, oracle);
        ScoreInto(*trained.model, reference, s, oracle, scratch, normal);
      }
      for (auto cls : classes) {
        Scores anom;
        for (size_t i = 0; i < anomalies; ++i) {
          const auto s = DrawWithOracle(spec, entries, cls, severity, rng, oracle);
          ScoreInto(*trained.model, reference, s, oracle, scratch, anom);
        }
        for (int m = 0; m < kMethods; ++m) {
          table << "| " << fname << " | " << entries << " | " << sim::Name(cls) << " | "
                << kMethodNames[m] << " | " << Fmt(Auc(normal.by_method[m], anom.by_method[m]))
                << " | " << Fmt(TprAt(normal.by_method[m], anom.by_method[m], 1e-3)) << " | "
                << Fmt(TprAt(normal.by_method[m], anom.by_method[m], 1e-5)) << " |\n";
        }
      }
      // Calibration: the observed rate of p < t among normals, for the combined p-value.
      size_t below[3] = {0, 0, 0};
      const double ts[3] = {1e-2, 1e-3, 1e-4};
      for (double s : normal.by_method[2])
        for (int k = 0; k < 3; ++k) below[k] += s > -std::log10(ts[k]);
      std::fprintf(stderr, "%s %g: normal rate of p<1e-2 %.2e, p<1e-3 %.2e, p<1e-4 %.2e; median score %.3f\n",
                   fname.c_str(), entries, below[0] / double(normals), below[1] / double(normals),
                   below[2] / double(normals), [&] {
                     auto v = normal.by_method[5];
                     std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
                     return v[v.size() / 2];
                   }());
    }
  }
  std::fputs(table.str().c_str(), stdout);
  if (!out_path.empty()) std::ofstream(out_path) << table.str();
  return 0;
}
