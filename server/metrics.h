// The daemon's Prometheus metrics. Owns the prometheus-cpp Registry; every member is a reference
// into it, valid for the Metrics object's lifetime. prometheus-cpp metrics are thread-safe, so
// any thread may update them. Per-monitor series are created by AddMonitor(), bounded by
// max_monitors.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <string>
#include "server/domain.h"
#include "server/locks.h"

namespace histguard::server {

// -log10 p, as exported: 3 is p = 1e-3; capped at 300 (p = 0 included).
double Significance(double p);

class Metrics {
 private:
  std::shared_ptr<prometheus::Registry> registry_;  // first: every member below lives in it

 public:
  // A monitor's anomaly score and significance are left out of Render() once its last verdict is
  // older than `stale_seconds` (0: never), so that a last value does not outlive its lumisection
  // (after a run, or when a source stops) and keep alerts firing.
  explicit Metrics(double stale_seconds = 0);

  // Prometheus text exposition of everything in the registry, at unix time `now` (default: the
  // clock's).
  std::string Render() const;
  std::string Render(double now) const;

  struct MonitorSeries {
    prometheus::Gauge* score;
    prometheus::Gauge* significance;
    prometheus::Gauge* model_version;
    prometheus::Gauge* last_verdict_time;
    prometheus::Gauge* window_size;
    prometheus::Gauge* last_trained_time;
    // Verdicts of the monitor by quality, GOOD, WARNING and BAD in that order: alert rules count
    // their increase, which a last-value gauge cannot show for a single lumisection.
    prometheus::Counter* verdicts[3];
    // -log10 of the monitor's warning_p and bad_p: the significance from which it is WARNING, BAD.
    prometheus::Gauge* warning_threshold;
    prometheus::Gauge* bad_threshold;
    // Unix time of the monitor's last BAD verdict (0: none since start-up), so that an alert can
    // link to that lumisection in the console.
    prometheus::Gauge* last_bad_time;
    // Lumisections a lasting change has been building up (0: none open).
    prometheus::Gauge* lasting_change;
    // 1 while a candidate that learned a localised change waits for an operator's approval.
    prometheus::Gauge* pending_change;
    prometheus::Gauge* nuisances[3] = {};  // see Nuisance()
  };
  // The monitor's series, created with the first caller for that name; RemoveMonitor drops them
  // once every caller that added them has removed them (an old and a new monitor of one name may
  // overlap while the forgotten one's last holder finishes).
  MonitorSeries AddMonitor(const std::string& monitor);
  void RemoveMonitor(const std::string& monitor);
  // The monitor's gauge of one axis nuisance, 0: gain, 1: shift (bins), 2: tilt; made on the first
  // call for it and removed with the monitor's other series.
  prometheus::Gauge* Nuisance(const std::string& monitor, int which);

  prometheus::Counter& received;
  prometheus::Counter& Rejected(const std::string& reason);
  prometheus::Counter& Verdicts(Quality q) { return *verdicts_[static_cast<int>(q)]; }
  prometheus::Histogram& latency;
  prometheus::Histogram& batch_size;
  prometheus::Gauge& queue_depth;
  prometheus::Gauge& monitors;
  prometheus::Counter& TrainingRuns(const std::string& result);  // accepted, rejected, held, failed
  prometheus::Histogram& training_duration;
  prometheus::Counter& Labels(const std::string& label);
  // Model files refused on load (damaged, foreign, another binning), at start-up or rollback.
  prometheus::Counter& model_load_failures;
  prometheus::Gauge& data_disk_free;
  prometheus::Gauge& inflight_bytes;
  prometheus::Gauge& run_number;  // the current or last run (RunState)
  prometheus::Gauge& run_open;    // 1 while it is open
  // Store failures by kind: "write" (a commit failed), "read" (a read failed), "corrupt" (a
  // stored record could not be decoded).
  prometheus::Counter& StoreErrors(const std::string& kind);

 private:
  prometheus::Family<prometheus::Counter>& rejected_family_;
  prometheus::Family<prometheus::Counter>& verdicts_family_;
  prometheus::Family<prometheus::Gauge>& score_family_;
  prometheus::Family<prometheus::Gauge>& significance_family_;
  prometheus::Family<prometheus::Gauge>& version_family_;
  prometheus::Family<prometheus::Gauge>& last_verdict_family_;
  prometheus::Family<prometheus::Gauge>& window_family_;
  prometheus::Family<prometheus::Gauge>& trained_family_;
  prometheus::Family<prometheus::Counter>& training_runs_family_;
  prometheus::Family<prometheus::Counter>& labels_family_;
  prometheus::Family<prometheus::Counter>& store_errors_family_;
  prometheus::Family<prometheus::Counter>& monitor_verdicts_family_;
  prometheus::Family<prometheus::Gauge>& threshold_family_;
  prometheus::Family<prometheus::Gauge>& last_bad_family_;
  prometheus::Family<prometheus::Gauge>& lasting_family_;
  prometheus::Family<prometheus::Gauge>& pending_family_;
  prometheus::Family<prometheus::Gauge>& nuisance_family_;
  const double stale_seconds_;
  prometheus::Counter* verdicts_[kQualities];
  absl::Mutex series_mu_;
  std::map<std::string, std::pair<int, MonitorSeries>> series_ ABSL_GUARDED_BY(series_mu_);
};

}  // namespace histguard::server
