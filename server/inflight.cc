#include "server/inflight.h"

namespace histguard::server {

bool InFlightBudget::TryTake(uint64_t n) {
  absl::MutexLock lk(&mu_);
  if (used_ + n > limit_) return false;
  used_ += n;
  return true;
}

void InFlightBudget::Take(uint64_t n) {
  absl::MutexLock lk(&mu_);
  used_ += n;
}

void InFlightBudget::Give(uint64_t n) {
  std::vector<std::function<void()>> ready;
  {
    absl::MutexLock lk(&mu_);
    used_ -= std::min(n, used_);
    if (used_ < limit_) ready.swap(waiting_);
  }
  for (auto& f : ready) f();
}

bool InFlightBudget::AvailableOr(std::function<void()> resume) {
  absl::MutexLock lk(&mu_);
  if (used_ < limit_) return true;
  waiting_.push_back(std::move(resume));
  return false;
}

uint64_t InFlightBudget::used() const {
  absl::MutexLock lk(&mu_);
  return used_;
}

}  // namespace histguard::server
