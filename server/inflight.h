// InFlightBudget: one budget in bytes on the histograms the daemon holds between their arrival
// and their answer, shared by every Submit and Stream.
//
// A Submit takes its bytes all at once or is refused (RESOURCE_EXHAUSTED); a stream charges each
// message it has read and stops reading while the budget is spent (flow control: the client's
// writes then wait), resuming when answers give bytes back. A stream may overshoot by the one
// message it had already read, so the bound is the budget plus one message per stream.
//
//   InFlightBudget budget(512 << 20);
//   if (!budget.TryTake(request_bytes)) refuse();
//   ...
//   budget.Give(request_bytes);
//
// Thread-safe. Callbacks given to WhenAvailable run on the thread that gives bytes back, outside
// the budget's lock.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>
#include "server/locks.h"

namespace histguard::server {

class InFlightBudget {
 public:
  explicit InFlightBudget(uint64_t bytes) : limit_(bytes) {}

  // Takes `n` bytes if they fit; false (nothing taken) otherwise.
  bool TryTake(uint64_t n);
  // Takes `n` bytes whatever is left (for what was read already).
  void Take(uint64_t n);
  // Gives `n` bytes back and runs the waiting callbacks once bytes are available.
  void Give(uint64_t n);
  // Whether anything is left; when not, `resume` is queued and runs once something is given
  // back (and this returns false).
  bool AvailableOr(std::function<void()> resume);

  uint64_t used() const;
  uint64_t limit() const { return limit_; }

 private:
  const uint64_t limit_;
  mutable absl::Mutex mu_;
  uint64_t used_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::function<void()>> waiting_ ABSL_GUARDED_BY(mu_);
};

}  // namespace histguard::server
