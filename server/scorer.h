// Scorer: turns validated histograms into verdicts.
//
// Histograms from every connection are queued as Jobs; `scoring_threads` threads take them in
// batches (up to max_batch, waiting at most batch_wait_us for a small batch to fill; by default
// they take what is queued and never wait: scoring is per monitor, so waiting gathers nothing
// but commits, and the committer groups those anyway), score each
// against its monitor, then run each Job's `done` callback on the scoring thread. The queue is
// bounded for callers that can be refused (unary calls); streams bound themselves by pausing
// their reads, so they enqueue with `force`.
//
// Every scored histogram is written to the store with its verdict before any `done` of its batch
// runs: an acknowledged verdict is durable. A committer thread writes the scored batches and
// syncs once for all that are waiting (group commit), while the scoring threads go on scoring;
// it runs the `done` callbacks in the order the batches were scored.
//
// Items point into memory the caller owns; it must stay valid until `done` runs. Thread-safe.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <optional>
#include <thread>
#include <vector>

#include "histguard/v1/histguard.pb.h"
#include "models/model.h"
#include "server/config.h"
#include "server/locks.h"
#include "server/metrics.h"
#include "server/monitors.h"
#include "server/store.h"
#include "server/training_scheduler.h"

namespace histguard::server {

struct ScoreItem {
  const v1::Histogram* histogram;
  v1::Verdict* verdict;
  std::chrono::steady_clock::time_point received;
};

// What scoring leaves to do: the store writes, and the trainings to start once those writes are
// durable (a training reads its window from the store, so it must not start before the
// histograms that completed the window are there).
struct ScoredWrites {
  Store::Batch writes;
  std::vector<std::pair<std::shared_ptr<Monitor>, const char*>> trainings;  // (monitor, reason)
};

struct ScoreJob {
  std::vector<ScoreItem> items;
  // Runs once the items are scored and their writes committed; `stored` is not OK when the
  // writes failed (the verdicts are filled, but the histograms are not stored).
  std::function<void(const absl::Status& stored)> done;
};

class Scorer {
 public:
  Scorer(const Config& config, Metrics& metrics, MonitorRegistry& registry,
         TrainingScheduler& training, Store& store);
  ~Scorer();

  // Queues `job`. Returns false (and leaves the job untouched) when the queue is full and
  // `force` is false, or when the scorer has stopped.
  [[nodiscard]] bool Enqueue(ScoreJob&& job, bool force = false);

  // Scores what is queued, then stops the threads. Idempotent.
  void Stop();

  // Scores one validated histogram on the calling thread (used by the threads, tests and
  // in-process benchmarks); its store writes go into `out`, which the caller commits before it
  // calls StartTrainings(out). Never throws: a histogram that cannot be scored is answered
  // REJECTED ("scoring_error") and counted.
  void ScoreOne(const v1::Histogram& h, v1::Verdict& v, models::Scratch& scratch,
                ScoredWrites& out);
  // Starts the trainings that scoring asked for; call once their writes are committed.
  void StartTrainings(ScoredWrites& out);

  // Fills a REJECTED verdict and counts it.
  void Reject(const v1::Histogram& h, const Rejection& why, v1::Verdict& v);

 private:
  void Run();
  void Commit();
  // ScoreOne's work; may throw. Its steps: find and lock the monitor, check the binning, score
  // (below min_entries, with the model, or while learning), keep the verdict, then store it once
  // the monitor is unlocked.
  void ScoreValidated(const v1::Histogram& h, v1::Verdict& v, models::Scratch& scratch,
                      ScoredWrites& out);
  // The verdict on `h` from a monitor that is not forgotten; nullopt, with `why` filled, when its
  // binning differs from the monitor's.
  std::optional<QualityLabel> ScoreLocked(Monitor& m, const v1::Histogram& h,
                                          const HistogramKey& key, models::Scratch& scratch,
                                          ScoredWrites& out, v1::Verdict& v, Rejection& why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu);
  // The model's verdict, with the held change, the lasting evidence and the axis' jumps; admits
  // the histogram to the window and checks the retraining triggers. Releases the monitor while
  // the model scores.
  QualityLabel ScoreWithModel(Monitor& m, const v1::Histogram& h, const HistogramKey& key,
                              models::Scratch& scratch, ScoredWrites& out, v1::Verdict& v)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu);
  // Before the first model: the classical test against what was collected, and the first
  // training once enough was.
  QualityLabel ScoreWhileLearning(Monitor& m, std::span<const double> counts, double total,
                                  const HistogramKey& key, ScoredWrites& out, v1::Verdict& v)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu);
  // Keeps the verdict as the monitor's last and, unless the monitor was forgotten, in its stored
  // history; false when it is not to be stored. `now` is the verdict's time.
  bool KeepVerdictLocked(Monitor& m, const HistogramKey& key, double now, Store::Batch& batch,
                         const v1::Verdict& v) ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu);
  // Counts the verdict in the daemon's and the monitor's metrics.
  void CountVerdict(const Monitor& m, QualityLabel label, double now);
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

  absl::Mutex mu_;
  absl::CondVar cv_;  // signalled when a job is queued or the scorer stops
  std::deque<ScoreJob> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_items_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;

  struct Scored {
    ScoredWrites writes;
    std::vector<ScoreJob> jobs;
    size_t count = 0;
  };
  absl::Mutex commit_mu_;
  absl::CondVar commit_cv_;  // signalled when a batch is scored or the committer stops
  std::deque<Scored> commits_ ABSL_GUARDED_BY(commit_mu_);
  bool commit_stop_ ABSL_GUARDED_BY(commit_mu_) = false;
  std::thread committer_;
};

}  // namespace histguard::server
