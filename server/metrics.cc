#include "server/metrics.h"

#include <prometheus/text_serializer.h>

#include "histguard/version.h"
#include "server/validation.h"

namespace histguard::server {
namespace {
using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

prometheus::Histogram::BucketBoundaries LatencyBuckets() {
  return {25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 0.1, 0.25, 1};
}
}  // namespace

Metrics::Metrics()
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
      training_duration(BuildHistogram()
                            .Name("histguard_training_duration_seconds")
                            .Help("Wall time of one monitor's training job")
                            .Register(*registry_)
                            .Add({}, prometheus::Histogram::BucketBoundaries{
                                         0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120})),
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
                               .Register(*registry_)) {
  const char* q[] = {"good", "warning", "bad", "learning", "low_statistics", "rejected"};
  for (int i = 0; i < 6; ++i) verdicts_[i] = &verdicts_family_.Add({{"quality", q[i]}});
  for (const auto& r : RejectionReasons()) rejected_family_.Add({{"reason", r}});
  for (const char* r : {"accepted", "rejected", "failed"}) training_runs_family_.Add({{"result", r}});
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
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

Metrics::MonitorSeries Metrics::AddMonitor(const std::string& m) {
  std::lock_guard lk(series_mu_);
  auto& [count, series] = series_[m];
  if (count++ == 0) {
    const prometheus::Labels l{{"monitor", m}};
    series = MonitorSeries{&score_family_.Add(l),   &significance_family_.Add(l),
                           &version_family_.Add(l), &last_verdict_family_.Add(l),
                           &window_family_.Add(l),  &trained_family_.Add(l)};
  }
  return series;
}

void Metrics::RemoveMonitor(const std::string& m) {
  std::lock_guard lk(series_mu_);
  auto it = series_.find(m);
  if (it == series_.end() || --it->second.first > 0) return;
  const MonitorSeries& s = it->second.second;
  score_family_.Remove(s.score);
  significance_family_.Remove(s.significance);
  version_family_.Remove(s.model_version);
  last_verdict_family_.Remove(s.last_verdict_time);
  window_family_.Remove(s.window_size);
  trained_family_.Remove(s.last_trained_time);
  series_.erase(it);
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
