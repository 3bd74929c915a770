// What the daemon's code locks with: absl::Mutex and its scoped locks, whose annotations clang
// checks (-Wthread-safety; see docs/concurrency.md for the lock order), and a helper for working
// with a held mutex released.
#pragma once

#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace histguard::server {

// Runs `work` with `mu` released and returns what it returns; `mu` is held again when `work`
// returns or throws. For slow work in the middle of a locked section. (clang 14 does not follow a
// scoped object that takes a mutex again in its destructor, so this is a function.)
template <typename Work>
auto Unlocked(absl::Mutex& mu, Work&& work) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
  mu.Unlock();
  try {
    auto result = std::forward<Work>(work)();
    mu.Lock();
    return result;
  } catch (...) {
    mu.Lock();
    throw;
  }
}

}  // namespace histguard::server
