#include "server/health.h"

namespace histguard::server {

void Health::SetDiskFull(bool full, std::string why) {
  absl::MutexLock lk(&mu_);
  disk_full_reason_ = full ? std::move(why) : "";
  disk_full_ = full;
}

std::string Health::disk_full_reason() const {
  absl::MutexLock lk(&mu_);
  return disk_full_reason_;
}

void Health::AddStartupProblems(const std::vector<std::string>& problems) {
  absl::MutexLock lk(&mu_);
  startup_problems_ += problems.size();
}

std::pair<bool, std::string> Health::Report() const {
  absl::MutexLock lk(&mu_);
  std::string body = serving() ? "ok\n" : "not serving\n";
  if (disk_full_) body += "ingest: refused, " + disk_full_reason_ + "\n";
  if (startup_problems_ > 0)
    body += "start-up: " + std::to_string(startup_problems_) +
            " problems restoring the state (the daemon's log names each; "
            "histguard_store_errors_total, histguard_model_load_failures_total)\n";
  return {serving(), body};
}

}  // namespace histguard::server
