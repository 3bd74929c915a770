// TrainingScheduler: runs monitors' training jobs on a bounded background pool, so ingestion and
// scoring never wait for training. A finished job swaps the new model into its monitor under the
// monitor's lock.
//
// Thread-safe. Stop() cancels running jobs and joins the pool.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <string>
#include <vector>

#include "server/config.h"
#include "server/metrics.h"
#include "server/monitors.h"

namespace histguard::server {

class TrainingScheduler {
 public:
  TrainingScheduler(const Config& config, Metrics& metrics);
  ~TrainingScheduler();

  // Queues a first training of `monitor` on `samples` (a copy of its window). The caller has set
  // monitor->training under the monitor's lock.
  void Schedule(Monitor* monitor, std::vector<std::vector<float>> samples, std::string reason);

  // Waits until every queued job has finished (for tests and orderly shutdown).
  void WaitIdle();

  void Stop();

 private:
  const Config& config_;
  Metrics& metrics_;
  boost::asio::thread_pool pool_;
  std::atomic<bool> cancel_{false};
  std::mutex idle_mu_;
  std::condition_variable idle_cv_;
  int pending_ = 0;  // guarded by idle_mu_
};

}  // namespace histguard::server
