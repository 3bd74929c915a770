// Health: what the daemon can do right now, for /healthz, the gRPC health service and the
// Ingest service's refusals.
//
//   serving      false once the daemon drains (SIGTERM)
//   disk full    the data directory's free space is below disk_reserve_bytes, or a store write
//                failed for want of space: new histograms are refused (UNAVAILABLE) while
//                Control reads go on; cleared when space returns
//   problems     damage found at start-up (state store, model files), kept to be reported
//
// Thread-safe.
#pragma once

#include <atomic>
#include <string>
#include <vector>
#include "server/locks.h"

namespace histguard::server {

class Health {
 public:
  void SetServing(bool serving) { serving_ = serving; }
  bool serving() const { return serving_.load(); }

  // `why` says what is full and by how much; empty when cleared.
  void SetDiskFull(bool full, std::string why);
  bool disk_full() const { return disk_full_.load(); }
  std::string disk_full_reason() const;

  // Whether new histograms are taken.
  bool ingesting() const { return serving() && !disk_full(); }

  void AddStartupProblems(const std::vector<std::string>& problems);

  // The /healthz answer: whether the daemon serves (200) or not (503), and lines that say what
  // does not work, or "ok".
  std::pair<bool, std::string> Report() const;

 private:
  std::atomic<bool> serving_{true};
  std::atomic<bool> disk_full_{false};
  mutable absl::Mutex mu_;
  std::string disk_full_reason_ ABSL_GUARDED_BY(mu_);
  size_t startup_problems_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace histguard::server
