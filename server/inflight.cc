#include "server/inflight.h"

namespace histguard::server {

bool InFlightBudget::TryTake(uint64_t n) {
  std::lock_guard lk(mu_);
  if (used_ + n > limit_) return false;
  used_ += n;
  return true;
}

void InFlightBudget::Take(uint64_t n) {
  std::lock_guard lk(mu_);
  used_ += n;
}

void InFlightBudget::Give(uint64_t n) {
  std::vector<std::function<void()>> ready;
  {
    std::lock_guard lk(mu_);
    used_ -= std::min(n, used_);
    if (used_ < limit_) ready.swap(waiting_);
  }
  for (auto& f : ready) f();
}

bool InFlightBudget::AvailableOr(std::function<void()> resume) {
  std::lock_guard lk(mu_);
  if (used_ < limit_) return true;
  waiting_.push_back(std::move(resume));
  return false;
}

uint64_t InFlightBudget::used() const {
  std::lock_guard lk(mu_);
  return used_;
}

}  // namespace histguard::server
