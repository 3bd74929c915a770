#include "server/monitors.h"

#include <algorithm>

namespace histguard::server {

bool SortedKeys::Insert(const HistogramKey& k) {
  if (keys_.empty() || keys_.back() < k) {
    keys_.push_back(k);
    return true;
  }
  const auto it = std::lower_bound(keys_.begin(), keys_.end(), k);
  if (it != keys_.end() && *it == k) return false;
  keys_.insert(it, k);
  return true;
}

bool SortedKeys::Erase(const HistogramKey& k) {
  const auto it = std::lower_bound(keys_.begin(), keys_.end(), k);
  if (it == keys_.end() || *it != k) return false;
  keys_.erase(it);
  return true;
}

std::vector<HistogramKey> Monitor::AddToWindow(const HistogramKey& k, size_t capacity) {
  std::vector<HistogramKey> unkept;
  if (!window.Insert(k)) return unkept;  // a repeat is in the window once
  while (window.size() > capacity) {
    const HistogramKey old = window.PopOldest();
    if (!records.Contains(old)) unkept.push_back(old);
  }
  return unkept;
}

size_t Monitor::bins() const {
  size_t n = shape.empty() ? 0 : 1;
  for (uint32_t d : shape) n *= d;
  return n;
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
