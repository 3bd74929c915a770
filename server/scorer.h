// Scorer: turns a validated histogram into a verdict against its monitor: below min_entries,
// with the model (with the held change, the lasting evidence and the axis' jumps), or while
// learning; admits it to the window, keeps it in the stored history and asks for the trainings
// that are due. The writes go into a ScoredWrites the caller commits (ScoreQueue, or a test)
// before it starts the trainings. Thread-safe: each monitor is locked while it is worked on.
#pragma once

#include <optional>
#include <vector>

#include "models/model.h"
#include "server/config.h"
#include "server/domain.h"
#include "server/locks.h"
#include "server/metrics.h"
#include "server/monitors.h"
#include "server/store.h"
#include "server/training_scheduler.h"

namespace histguard::server {

// What scoring leaves to do: the store writes, and the trainings to start once those writes are
// durable (a training reads its window from the store, so it must not start before the
// histograms that completed the window are there).
struct ScoredWrites {
  Store::Batch writes;
  std::vector<std::pair<std::shared_ptr<Monitor>, const char*>> trainings;  // (monitor, reason)
};

class Scorer {
 public:
  Scorer(const Config& config, Metrics& metrics, MonitorRegistry& registry,
         TrainingScheduler& training, Store& store);

  // Scores one validated histogram on the calling thread (the ScoreQueue's threads, tests and
  // in-process benchmarks); its store writes go into `out`, which the caller commits before it
  // calls StartTrainings(out). Never throws: a histogram that cannot be scored is answered
  // REJECTED ("scoring_error") and counted.
  // `v` arrives with the histogram's name and key (VerdictFor).
  void ScoreOne(const Histogram& h, Verdict& v, models::Scratch& scratch, ScoredWrites& out);
  // Starts the trainings that scoring asked for; call once their writes are committed.
  void StartTrainings(ScoredWrites& out);

  // Makes `v` (which names its histogram) a REJECTED verdict saying why, and counts it.
  void Reject(const Rejection& why, Verdict& v);

 private:
  // ScoreOne's work; may throw. Its steps: find and lock the monitor, check the binning, score
  // (below min_entries, with the model, or while learning), keep the verdict, then store it once
  // the monitor is unlocked.
  void ScoreValidated(const Histogram& h, Verdict& v, models::Scratch& scratch, ScoredWrites& out);
  // The verdict on `h` from a monitor that is not forgotten; nullopt, with `why` filled, when its
  // binning differs from the monitor's.
  std::optional<Quality> ScoreLocked(Monitor& m, const Histogram& h, const HistogramKey& key,
                                     models::Scratch& scratch, ScoredWrites& out, Verdict& v,
                                     Rejection& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu);
  // The model's verdict, with the held change, the lasting evidence and the axis' jumps; admits
  // the histogram to the window and checks the retraining triggers. Releases the monitor while
  // the model scores.
  Quality ScoreWithModel(Monitor& m, const Histogram& h, const HistogramKey& key,
                         models::Scratch& scratch, ScoredWrites& out, Verdict& v)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu);
  // Before the first model: the classical test against what was collected, and the first
  // training once enough was.
  Quality ScoreWhileLearning(Monitor& m, std::span<const double> counts, double total,
                             const HistogramKey& key, ScoredWrites& out, Verdict& v)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu);
  // Keeps the verdict as the monitor's last and, unless the monitor was forgotten, in its stored
  // history; false when it is not to be stored. `now` is the verdict's time.
  bool KeepVerdictLocked(Monitor& m, const HistogramKey& key, double now, Store::Batch& batch,
                         const Verdict& v) ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu);
  // Counts the verdict in the daemon's and the monitor's metrics.
  void CountVerdict(const Monitor& m, Quality label, double now);
  // The retraining triggers, after a model verdict; a due training goes into `out`.
  void MaybeRetrainLocked(Monitor& m, double p_value, ScoredWrites& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu);
  // Keeps the stored history of `m` bounded.
  void RecordLocked(Monitor& m, const HistogramKey& key, Store::Batch& batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu);
  // Admits `key` to the window (Monitor::Admit); what leaves it, and is no longer a kept record,
  // is deleted.
  void AdmitLocked(Monitor& m, const HistogramKey& key, std::span<const double> counts,
                   Store::Batch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu);

  const Config& config_;
  Metrics& metrics_;
  MonitorRegistry& registry_;
  TrainingScheduler& training_;
  Store& store_;
};

}  // namespace histguard::server
