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

std::vector<HistogramKey> Monitor::Admit(const HistogramKey& k, std::span<const double> counts,
                                         size_t capacity, bool counted) {
  std::vector<HistogramKey> unkept;
  if (!window.Insert(k)) return unkept;  // a repeat is in the window once
  while (window.size() > capacity) {
    const HistogramKey old = window.PopOldest();
    if (!records.Contains(old)) unkept.push_back(old);
  }
  if (counted) ++new_since_train;
  if (accepting && k >= accepted_from) ++accepted_admitted;
  if (model) return unkept;
  // While learning, shape_sum holds one unit per collected histogram: the mean shape, scaled.
  double total = 0;
  for (double c : counts) total += c;
  if (total > 0) {
    if (shape_sum.size() != counts.size()) shape_sum.assign(counts.size(), 0.0);
    for (size_t i = 0; i < counts.size(); ++i) shape_sum[i] += counts[i] / total;
  }
  return unkept;
}

size_t Monitor::bins() const {
  size_t n = shape.empty() ? 0 : 1;
  for (uint32_t d : shape) n *= d;
  return n;
}

std::vector<uint64_t> PruneVersions(std::vector<VersionInfo>& kept, size_t keep, uint64_t active,
                                    uint64_t anchor) {
  std::vector<uint64_t> drop;
  while (kept.size() > keep && kept.size() > 1) {
    const auto last = std::prev(kept.end());  // the newest stays
    auto it = std::find_if(kept.begin(), last, [&](const VersionInfo& v) {
      return v.version != anchor && v.version != active;
    });
    if (it == last)
      it = std::find_if(kept.begin(), last,
                        [&](const VersionInfo& v) { return v.version != anchor; });
    if (it == last) break;
    drop.push_back(it->version);
    kept.erase(it);
  }
  return drop;
}

void Monitor::AcceptFrom(const HistogramKey& from, uint64_t target) {
  accepting = true;
  accepted_from = from;
  accepted_admitted = 0;
  accepted_in_training = 0;
  accept_target = target;
  flagged_streak = 0;
  pending.reset();
  change_rejected = false;
  held_change.reset();
  series.lasting_change->Set(0);
  series.pending_change->Set(0);
}

void Monitor::RestartTriggers(uint64_t still_new) {
  new_since_train = still_new;
  drift_sum = 0;
  last_trained = std::chrono::steady_clock::now();
}

bool Monitor::Admits(const HistogramKey& k, v1::Quality quality) const {
  const auto it = labels.find(k);
  if (it != labels.end()) return it->second;
  if (quality == v1::QUALITY_REJECTED || quality == v1::QUALITY_LOW_STATISTICS) return false;
  if (accepting && k >= accepted_from) return true;
  if (held_change) return quality == v1::QUALITY_GOOD || quality == v1::QUALITY_LEARNING;
  return quality != v1::QUALITY_BAD;
}

std::shared_ptr<Monitor> MonitorRegistry::FindOrCreate(const std::string& name, Rejection* why) {
  {
    absl::ReaderMutexLock lk(&mu_);
    auto it = monitors_.find(name);
    if (it != monitors_.end()) return it->second;
  }
  absl::WriterMutexLock lk(&mu_);
  auto it = monitors_.find(name);
  if (it != monitors_.end()) return it->second;
  if (monitors_.size() >= config_.max_monitors) {
    *why = Rejection{"too_many_monitors",
                     "new monitor '" + name + "' refused: max_monitors (" +
                         std::to_string(config_.max_monitors) +
                         ") monitors already known; forget unused ones (histguard forget)"};
    return nullptr;
  }
  // The metric series go with the last holder of the monitor.
  Metrics* metrics = &metrics_;
  std::shared_ptr<Monitor> m(
      new Monitor(name, ThresholdsFor(config_, name), metrics_.AddMonitor(name)),
      [metrics](Monitor* gone) {
        metrics->RemoveMonitor(gone->name);
        delete gone;
      });
  m->series.warning_threshold->Set(Significance(m->thresholds.warning_p));
  m->series.bad_threshold->Set(Significance(m->thresholds.bad_p));
  monitors_.emplace(name, m);
  metrics_.monitors.Set(static_cast<double>(monitors_.size()));
  return m;
}

std::shared_ptr<Monitor> MonitorRegistry::Find(const std::string& name) const {
  absl::ReaderMutexLock lk(&mu_);
  auto it = monitors_.find(name);
  return it == monitors_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<Monitor>> MonitorRegistry::All() const {
  std::vector<std::shared_ptr<Monitor>> out;
  {
    absl::ReaderMutexLock lk(&mu_);
    out.reserve(monitors_.size());
    for (const auto& [_, m] : monitors_) out.push_back(m);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a->name < b->name; });
  return out;
}

std::shared_ptr<Monitor> MonitorRegistry::Remove(const std::string& name, const Monitor* only) {
  absl::WriterMutexLock lk(&mu_);
  auto it = monitors_.find(name);
  if (it == monitors_.end() || (only && it->second.get() != only)) return nullptr;
  std::shared_ptr<Monitor> m = std::move(it->second);
  monitors_.erase(it);
  metrics_.monitors.Set(static_cast<double>(monitors_.size()));
  return m;
}

size_t MonitorRegistry::size() const {
  absl::ReaderMutexLock lk(&mu_);
  return monitors_.size();
}

}  // namespace histguard::server
