#include "server/metrics.h"

#include <prometheus/text_serializer.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <unordered_map>

#include "histguard/version.h"
#include "server/validation.h"

namespace histguard::server {
namespace {
using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

prometheus::Histogram::BucketBoundaries LatencyBuckets() {
  return {25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3,
          5e-3,  10e-3, 25e-3,  50e-3,  0.1,    0.25, 1};
}
}  // namespace

double Significance(double p) { return std::min(300.0, -std::log10(std::max(p, 1e-300))); }

Metrics::Metrics(double stale_seconds)
    : registry_(std::make_shared<prometheus::Registry>()),
      received(BuildCounter()
                   .Name("histguard_histograms_received_total")
                   .Help("Histograms received over gRPC, valid or not")
                   .Register(*registry_)
                   .Add({})),
      latency(BuildHistogram()
                  .Name("histguard_scoring_latency_seconds")
                  .Help("Time from receipt of a histogram to its verdict")
                  .Register(*registry_)
                  .Add({}, LatencyBuckets())),
      batch_size(BuildHistogram()
                     .Name("histguard_batch_size")
                     .Help("Histograms scored together in one batch")
                     .Register(*registry_)
                     .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128,
                                                                      256, 512, 1024})),
      queue_depth(BuildGauge()
                      .Name("histguard_queue_depth")
                      .Help("Histograms waiting to be scored")
                      .Register(*registry_)
                      .Add({})),
      monitors(BuildGauge()
                   .Name("histguard_monitors")
                   .Help("Monitors known to the daemon")
                   .Register(*registry_)
                   .Add({})),
      training_duration(
          BuildHistogram()
              .Name("histguard_training_duration_seconds")
              .Help("Wall time of one monitor's training job")
              .Register(*registry_)
              .Add({}, prometheus::Histogram::BucketBoundaries{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
                                                               30, 60, 120})),
      model_load_failures(BuildCounter()
                              .Name("histguard_model_load_failures_total")
                              .Help("Model files refused on load: damaged, of another monitor "
                                    "or of another binning")
                              .Register(*registry_)
                              .Add({})),
      data_disk_free(BuildGauge()
                         .Name("histguard_data_disk_free_bytes")
                         .Help("Free space in the data directory's file system; new histograms "
                               "are refused below disk_reserve_bytes")
                         .Register(*registry_)
                         .Add({})),
      inflight_bytes(BuildGauge()
                         .Name("histguard_inflight_bytes")
                         .Help("Bytes of histograms received and not yet answered, against "
                               "memory_budget_bytes / 8")
                         .Register(*registry_)
                         .Add({})),
      run_number(BuildGauge()
                     .Name("histguard_run")
                     .Help("The current run, or the last one (0: none yet)")
                     .Register(*registry_)
                     .Add({})),
      run_open(BuildGauge()
                   .Name("histguard_run_open")
                   .Help("1 while the run is open: started by run control or by its histograms, "
                         "until run control ends it")
                   .Register(*registry_)
                   .Add({})),
      rejected_family_(BuildCounter()
                           .Name("histguard_histograms_rejected_total")
                           .Help("Histograms answered REJECTED, by reason")
                           .Register(*registry_)),
      verdicts_family_(BuildCounter()
                           .Name("histguard_verdicts_total")
                           .Help("Verdicts returned, by quality")
                           .Register(*registry_)),
      score_family_(BuildGauge()
                        .Name("histguard_anomaly_score")
                        .Help("Anomaly score (deviance per bin) of the monitor's last histogram")
                        .Register(*registry_)),
      significance_family_(BuildGauge()
                               .Name("histguard_anomaly_significance")
                               .Help("-log10 of the calibrated p-value of the monitor's last "
                                     "histogram (5 = BAD at the default bad_p)")
                               .Register(*registry_)),
      version_family_(BuildGauge()
                          .Name("histguard_model_version")
                          .Help("Version of the model scoring the monitor (0 = learning)")
                          .Register(*registry_)),
      last_verdict_family_(BuildGauge()
                               .Name("histguard_last_verdict_timestamp_seconds")
                               .Help("Unix time of the monitor's last verdict")
                               .Register(*registry_)),
      window_family_(BuildGauge()
                         .Name("histguard_window_size")
                         .Help("Histograms in the monitor's training window")
                         .Register(*registry_)),
      trained_family_(BuildGauge()
                          .Name("histguard_model_last_trained_timestamp_seconds")
                          .Help("Unix time the monitor's active model was trained")
                          .Register(*registry_)),
      training_runs_family_(BuildCounter()
                                .Name("histguard_training_runs_total")
                                .Help("Training jobs finished, by result")
                                .Register(*registry_)),
      labels_family_(BuildCounter()
                         .Name("histguard_labels_total")
                         .Help("Labels given by people, by label")
                         .Register(*registry_)),
      store_errors_family_(BuildCounter()
                               .Name("histguard_store_errors_total")
                               .Help("Store failures, by kind: write, read, corrupt")
                               .Register(*registry_)),
      monitor_verdicts_family_(BuildCounter()
                                   .Name("histguard_monitor_verdicts_total")
                                   .Help("Verdicts of the monitor by quality (good, warning, bad); "
                                         "one BAD lumisection is one increase")
                                   .Register(*registry_)),
      threshold_family_(BuildGauge()
                            .Name("histguard_monitor_threshold_significance")
                            .Help("Significance (-log10 p) from which the monitor's verdicts are "
                                  "WARNING or BAD, by quality")
                            .Register(*registry_)),
      last_bad_family_(BuildGauge()
                           .Name("histguard_monitor_last_bad_timestamp_seconds")
                           .Help("Unix time of the monitor's last BAD verdict (0: none since "
                                 "start-up)")
                           .Register(*registry_)),
      lasting_family_(BuildGauge()
                          .Name("histguard_monitor_lasting_change_lumisections")
                          .Help("Lumisections in a row the monitor has flagged WARNING or BAD, "
                                "once that is a lasting change (10 or more); 0 otherwise. Flagged "
                                "histograms stay out of the training window until an operator "
                                "accepts the change as the new normal")
                          .Register(*registry_)),
      pending_family_(BuildGauge()
                          .Name("histguard_monitor_pending_change")
                          .Help("1 while a candidate model of the monitor that learned a localised "
                                "change (a block of bins low or high against the data the active "
                                "model knows) waits for an operator: histguard approve|reject")
                          .Register(*registry_)),
      nuisance_family_(BuildGauge()
                           .Name("histguard_monitor_nuisance")
                           .Help("Axis nuisance fitted to the monitor's last 1D histogram "
                                 "against its reference shape (the anchor model's): gain (1 = "
                                 "none), shift (bins), tilt (log-slope across the axis)")
                           .Register(*registry_)),
      stale_seconds_(stale_seconds) {
  const char* q[] = {"good", "warning", "bad", "learning", "low_statistics", "rejected"};
  for (int i = 0; i < kQualities; ++i) verdicts_[i] = &verdicts_family_.Add({{"quality", q[i]}});
  for (const auto& r : RejectionReasons()) rejected_family_.Add({{"reason", r}});
  for (const char* r : {"accepted", "rejected", "held", "dropped", "failed"})
    training_runs_family_.Add({{"result", r}});
  for (const char* l : {"good", "bad"}) labels_family_.Add({{"label", l}});
  for (const char* k : {"write", "read", "corrupt"}) store_errors_family_.Add({{"kind", k}});
  BuildGauge()
      .Name("histguard_build_info")
      .Help("Build information; the value is always 1")
      .Register(*registry_)
      .Add({{"version", HISTGUARD_VERSION}})
      .Set(1);
}

std::string Metrics::Render() const {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return Render(std::chrono::duration<double>(now).count());
}

namespace {
const std::string* MonitorLabel(const prometheus::ClientMetric& m) {
  for (const auto& l : m.label)
    if (l.name == "monitor") return &l.value;
  return nullptr;
}
}  // namespace

std::string Metrics::Render(double now) const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  if (stale_seconds_ > 0) {
    // The last verdict's time of each monitor, from its gauge in this same collection.
    std::unordered_map<std::string, double> last;
    for (const auto& f : families) {
      if (f.name != "histguard_last_verdict_timestamp_seconds") continue;
      for (const auto& m : f.metric)
        if (const std::string* name = MonitorLabel(m)) last[*name] = m.gauge.value;
    }
    for (auto& f : families) {
      if (f.name != "histguard_anomaly_score" && f.name != "histguard_anomaly_significance" &&
          f.name != "histguard_monitor_nuisance")
        continue;
      std::erase_if(f.metric, [&](const prometheus::ClientMetric& m) {
        const std::string* name = MonitorLabel(m);
        if (!name) return false;
        auto it = last.find(*name);
        // No verdict yet (0) or an old one: nothing current to report.
        return it == last.end() || now - it->second > stale_seconds_;
      });
    }
  }
  return prometheus::TextSerializer().Serialize(families);
}

Metrics::MonitorSeries Metrics::AddMonitor(const std::string& m) {
  absl::MutexLock lk(&series_mu_);
  auto& [count, series] = series_[m];
  if (count++ == 0) {
    const prometheus::Labels l{{"monitor", m}};
    series = MonitorSeries{};
    series.score = &score_family_.Add(l);
    series.significance = &significance_family_.Add(l);
    series.model_version = &version_family_.Add(l);
    series.last_verdict_time = &last_verdict_family_.Add(l);
    series.window_size = &window_family_.Add(l);
    series.last_trained_time = &trained_family_.Add(l);
    // Created at 0 with the monitor, so that its first BAD is already an increase.
    const char* q[] = {"good", "warning", "bad"};
    for (int i = 0; i < 3; ++i)
      series.verdicts[i] = &monitor_verdicts_family_.Add({{"monitor", m}, {"quality", q[i]}});
    series.warning_threshold = &threshold_family_.Add({{"monitor", m}, {"quality", "warning"}});
    series.bad_threshold = &threshold_family_.Add({{"monitor", m}, {"quality", "bad"}});
    series.last_bad_time = &last_bad_family_.Add(l);
    series.lasting_change = &lasting_family_.Add(l);
    series.pending_change = &pending_family_.Add(l);
  }
  return series;
}

void Metrics::RemoveMonitor(const std::string& m) {
  absl::MutexLock lk(&series_mu_);
  auto it = series_.find(m);
  if (it == series_.end() || --it->second.first > 0) return;
  const MonitorSeries& s = it->second.second;
  score_family_.Remove(s.score);
  significance_family_.Remove(s.significance);
  version_family_.Remove(s.model_version);
  last_verdict_family_.Remove(s.last_verdict_time);
  window_family_.Remove(s.window_size);
  trained_family_.Remove(s.last_trained_time);
  for (prometheus::Counter* c : s.verdicts) monitor_verdicts_family_.Remove(c);
  threshold_family_.Remove(s.warning_threshold);
  threshold_family_.Remove(s.bad_threshold);
  last_bad_family_.Remove(s.last_bad_time);
  lasting_family_.Remove(s.lasting_change);
  pending_family_.Remove(s.pending_change);
  for (prometheus::Gauge* g : s.nuisances)
    if (g) nuisance_family_.Remove(g);
  series_.erase(it);
}

prometheus::Gauge* Metrics::Nuisance(const std::string& monitor, int which) {
  static const char* const kNames[3] = {"gain", "shift", "tilt"};
  absl::MutexLock lk(&series_mu_);
  auto it = series_.find(monitor);
  if (it == series_.end() || which < 0 || which > 2) return nullptr;
  prometheus::Gauge*& g = it->second.second.nuisances[which];
  if (!g) g = &nuisance_family_.Add({{"monitor", monitor}, {"nuisance", kNames[which]}});
  return g;
}

prometheus::Counter& Metrics::Rejected(const std::string& reason) {
  return rejected_family_.Add({{"reason", reason}});
}
prometheus::Counter& Metrics::TrainingRuns(const std::string& result) {
  return training_runs_family_.Add({{"result", result}});
}
prometheus::Counter& Metrics::StoreErrors(const std::string& kind) {
  return store_errors_family_.Add({{"kind", kind}});
}
prometheus::Counter& Metrics::Labels(const std::string& label) {
  return labels_family_.Add({{"label", label}});
}

}  // namespace histguard::server
