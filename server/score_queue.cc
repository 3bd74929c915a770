#include "server/score_queue.h"

#include <iostream>

namespace histguard::server {

ScoreQueue::ScoreQueue(const Config& config, Metrics& metrics, Scorer& scorer, Store& store)
    : config_(config), metrics_(metrics), scorer_(scorer), store_(store) {
  committer_ = std::thread([this] { Commit(); });
  for (int i = 0; i < config.scoring_threads; ++i) threads_.emplace_back([this] { Run(); });
}

ScoreQueue::~ScoreQueue() { Stop(); }

bool ScoreQueue::Enqueue(ScoreJob&& job, bool force) {
  const size_t n = job.items.size();
  {
    absl::MutexLock lk(&mu_);
    if (stopping_) return false;
    if (!force && queued_items_ + n > config_.max_queue) return false;
    queued_items_ += n;
    queue_.push_back(std::move(job));
    metrics_.queue_depth.Set(static_cast<double>(queued_items_));
  }
  cv_.Signal();
  return true;
}

void ScoreQueue::Stop() {
  {
    absl::MutexLock lk(&mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.SignalAll();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
  {
    absl::MutexLock lk(&commit_mu_);
    commit_stop_ = true;
  }
  commit_cv_.SignalAll();
  if (committer_.joinable()) committer_.join();
}

void ScoreQueue::Commit() {
  std::vector<Scored> ready;
  for (;;) {
    ready.clear();
    {
      absl::MutexLock lk(&commit_mu_);
      while (!commit_stop_ && commits_.empty()) commit_cv_.Wait(&commit_mu_);
      if (commits_.empty()) return;  // stopping, and everything scored has been committed
      while (!commits_.empty()) {
        ready.push_back(std::move(commits_.front()));
        commits_.pop_front();
      }
    }
    // After a failed write nothing more is written or synced in this round (RocksDB must not
    // sync a log whose append failed), and every histogram of the round is answered as not
    // stored.
    absl::Status stored;
    for (auto& s : ready)
      if (stored.ok()) stored = store_.Write(s.writes.writes);
    if (stored.ok() && config_.sync_writes) stored = store_.Sync();
    if (!stored.ok()) metrics_.StoreErrors("write").Increment();
    // A training that a failed write left short of its window is asked for again by the
    // histograms that follow.
    if (stored.ok())
      for (auto& s : ready) scorer_.StartTrainings(s.writes);
    size_t count = 0;
    const auto now = std::chrono::steady_clock::now();
    for (auto& s : ready) {
      count += s.count;
      metrics_.batch_size.Observe(static_cast<double>(s.count));
      for (auto& job : s.jobs) {
        for (auto& item : job.items)
          metrics_.latency.Observe(std::chrono::duration<double>(now - item.received).count());
        job.done(stored);
      }
    }
    if (!stored.ok()) std::clog << "histguardd: " << stored.message() << "\n";
    absl::MutexLock lk(&mu_);
    queued_items_ -= count;
    metrics_.queue_depth.Set(static_cast<double>(queued_items_));
  }
}

void ScoreQueue::Run() {
  models::Scratch scratch;
  std::vector<ScoreJob> batch;
  for (;;) {
    batch.clear();
    size_t count = 0;
    {
      absl::MutexLock lk(&mu_);
      while (!stopping_ && queue_.empty()) cv_.Wait(&mu_);
      if (queue_.empty()) return;  // stopping, and everything queued has been scored
      auto take = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        while (!queue_.empty() && count < config_.max_batch) {
          count += queue_.front().items.size();
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      };
      take();
      if (config_.batch_wait_us > 0) {
        const absl::Time deadline =
            absl::Now() + absl::Microseconds(static_cast<int64_t>(config_.batch_wait_us));
        while (count < config_.max_batch && !stopping_) {
          while (!stopping_ && queue_.empty())
            if (cv_.WaitWithDeadline(&mu_, deadline)) break;  // timed out
          if (queue_.empty()) break;
          take();
        }
      }
    }
    Scored scored;
    for (auto& job : batch)
      for (auto& item : job.items)
        scorer_.ScoreOne(*item.histogram, *item.verdict, scratch, scored.writes);
    scored.jobs = std::move(batch);
    scored.count = count;
    batch = {};
    {
      absl::MutexLock lk(&commit_mu_);
      commits_.push_back(std::move(scored));
    }
    commit_cv_.Signal();
  }
}

}  // namespace histguard::server
