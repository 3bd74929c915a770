#include "server/monitors.h"

#include <algorithm>

namespace histguard::server {

void Monitor::AddToWindow(const HistogramKey& k, std::vector<float> counts, size_t capacity) {
  if (!window_keys.insert(k).second) return;  // a repeat is stored once
  window.push_back({k, std::move(counts)});
  while (window.size() > capacity) {
    window_keys.erase(window.front().key);
    window.pop_front();
  }
}

void Monitor::RemoveFromWindow(const HistogramKey& k) {
  if (!window_keys.erase(k)) return;
  for (auto it = window.begin(); it != window.end(); ++it)
    if (it->key == k) {
      window.erase(it);
      return;
    }
}

bool Monitor::Admits(const HistogramKey& k, bool flagged_bad) const {
  const auto it = labels.find(k);
  if (it != labels.end()) return it->second;
  return !flagged_bad;
}

Monitor* MonitorRegistry::FindOrCreate(const std::string& name, Rejection* why) {
  {
    std::shared_lock lk(mu_);
    auto it = monitors_.find(name);
    if (it != monitors_.end()) return it->second.get();
  }
  std::unique_lock lk(mu_);
  auto it = monitors_.find(name);
  if (it != monitors_.end()) return it->second.get();
  if (monitors_.size() >= config_.max_monitors) {
    *why = Rejection{"too_many_monitors",
                     "new monitor '" + name + "' refused: max_monitors (" +
                         std::to_string(config_.max_monitors) + ") monitors already known"};
    return nullptr;
  }
  auto m = std::make_unique<Monitor>(name, ThresholdsFor(config_, name), metrics_.AddMonitor(name));
  Monitor* raw = m.get();
  monitors_.emplace(name, std::move(m));
  metrics_.monitors.Set(static_cast<double>(monitors_.size()));
  return raw;
}

Monitor* MonitorRegistry::Find(const std::string& name) const {
  std::shared_lock lk(mu_);
  auto it = monitors_.find(name);
  return it == monitors_.end() ? nullptr : it->second.get();
}

std::vector<Monitor*> MonitorRegistry::All() const {
  std::shared_lock lk(mu_);
  std::vector<Monitor*> out;
  out.reserve(monitors_.size());
  for (const auto& [_, m] : monitors_) out.push_back(m.get());
  std::sort(out.begin(), out.end(), [](Monitor* a, Monitor* b) { return a->name < b->name; });
  return out;
}

size_t MonitorRegistry::size() const {
  std::shared_lock lk(mu_);
  return monitors_.size();
}

}  // namespace histguard::server
