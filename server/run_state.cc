#include "server/run_state.h"

#include <algorithm>

namespace histguard::server {

void RunState::Seen(uint64_t run) {
  if (run == 0 || open_run_.load(std::memory_order_relaxed) == run) return;
  absl::MutexLock lk(&mu_);
  if (run <= last_ended_ || run <= view_.run) return;
  view_ = {run, true};
  PublishLocked();
}

RunState::View RunState::Start(uint64_t run) {
  absl::MutexLock lk(&mu_);
  view_ = {run, true};
  last_ended_ = std::min(last_ended_, run - 1);
  PublishLocked();
  return view_;
}

RunState::View RunState::End(uint64_t run) {
  absl::MutexLock lk(&mu_);
  last_ended_ = std::max(last_ended_, run);
  if (run >= view_.run) view_ = {run, false};
  PublishLocked();
  return view_;
}

RunState::View RunState::Get() const {
  absl::MutexLock lk(&mu_);
  return view_;
}

void RunState::PublishLocked() {
  open_run_.store(view_.open ? view_.run : 0, std::memory_order_relaxed);
  metrics_.run_number.Set(static_cast<double>(view_.run));
  metrics_.run_open.Set(view_.open ? 1 : 0);
}

}  // namespace histguard::server
