// Whether a run is open: the DAQ's run control says so (Ingest.SetRunState, `histguard run`), and
// a histogram of a run newer than the last one ended opens that run by itself. Exported as
// histguard_run and histguard_run_open, so that an alert on silence fires only while a run is open,
// not in every gap between runs. Held in memory: after a restart the first histogram reopens its
// run. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include "server/locks.h"

#include "server/metrics.h"

namespace histguard::server {

class RunState {
 public:
  explicit RunState(Metrics& metrics) : metrics_(metrics) {}

  struct View {
    uint64_t run = 0;  // the current run, or the last one; 0: none yet
    bool open = false;
  };

  // A histogram of `run` arrived. Opens it if it is newer than the current run and was not ended
  // (late histograms of an ended run do not reopen it).
  void Seen(uint64_t run);
  // Run control: `run` started (it becomes the current run, open, even if it was ended before) or
  // ended (closed; histograms of it or an older run no longer open anything).
  View Start(uint64_t run);
  View End(uint64_t run);
  View Get() const;

 private:
  void PublishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Metrics& metrics_;
  // Seen() is called for every histogram: it takes the mutex only when its run is not the open one.
  std::atomic<uint64_t> open_run_{0};  // the open run, 0 when none
  mutable absl::Mutex mu_;
  View view_ ABSL_GUARDED_BY(mu_);
  uint64_t last_ended_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace histguard::server
