// ScoreQueue: the scoring threads, their queue and the group commit.
//
// Histograms from every connection are queued as Jobs; `scoring_threads` threads take them in
// batches (up to max_batch, waiting at most batch_wait_us for a small batch to fill; by default
// they take what is queued and never wait: scoring is per monitor, so waiting gathers nothing
// but commits, and the committer groups those anyway) and score each with the Scorer. The queue
// is bounded for callers that can be refused (unary calls); streams bound themselves by pausing
// their reads, so they enqueue with `force`.
//
// Every scored histogram is written to the store with its verdict before any `done` of its batch
// runs: an acknowledged verdict is durable. A committer thread writes the scored batches and
// syncs once for all that are waiting (group commit), while the scoring threads go on scoring;
// it then starts the trainings the batches asked for (they read their windows from the store) and
// runs the `done` callbacks in the order the batches were scored.
//
// Items point into memory the caller owns; it must stay valid until `done` runs. Thread-safe.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "server/config.h"
#include "server/domain.h"
#include "server/locks.h"
#include "server/metrics.h"
#include "server/scorer.h"
#include "server/store.h"

namespace histguard::server {

struct ScoreItem {
  const Histogram* histogram;
  Verdict* verdict;  // arrives naming its histogram (VerdictFor)
  std::chrono::steady_clock::time_point received;
};

struct ScoreJob {
  std::vector<ScoreItem> items;
  // Runs once the items are scored and their writes committed; `stored` is not OK when the
  // writes failed (the verdicts are filled, but the histograms are not stored).
  std::function<void(const absl::Status& stored)> done;
};

class ScoreQueue {
 public:
  // Starts the scoring threads and the committer.
  ScoreQueue(const Config& config, Metrics& metrics, Scorer& scorer, Store& store);
  ~ScoreQueue();

  // Queues `job`. Returns false (and leaves the job untouched) when the queue is full and
  // `force` is false, or when the queue has stopped.
  [[nodiscard]] bool Enqueue(ScoreJob&& job, bool force = false);

  // Scores what is queued, commits it, then stops the threads. Idempotent.
  void Stop();

  // Answers a histogram that is not queued (invalid, or refused): REJECTED, counted as such.
  void Reject(const Rejection& why, Verdict& v) { scorer_.Reject(why, v); }

 private:
  void Run();
  void Commit();

  const Config& config_;
  Metrics& metrics_;
  Scorer& scorer_;
  Store& store_;

  absl::Mutex mu_;
  absl::CondVar cv_;  // signalled when a job is queued or the queue stops
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
