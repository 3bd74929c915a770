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
  drift_run = 0;
  suspected = false;
  next_check_at = kCheckFrom;
  last_trained = std::chrono::steady_clock::now();
}

std::vector<HistogramKey> Monitor::ApplyLabel(const Label& label, std::span<const double> counts,
                                              size_t capacity) {
  const HistogramKey key = label.key();
  labels[key] = label.good;
  std::vector<HistogramKey> dropped;
  if (!label.good)
    window.Erase(key);
  else if (counts.size() == bins())
    dropped = Admit(key, counts, capacity);
  series.window_size->Set(static_cast<double>(window.size()));
  return dropped;
}

bool Monitor::Install(std::shared_ptr<const models::Model> installed, std::vector<VersionInfo> kept,
                      uint64_t new_anchor, const Candidate& c, bool approved, bool drifting_on,
                      uint64_t target) {
  model = std::move(installed);
  versions = std::move(kept);
  if (new_anchor != anchor) {
    anchor_shape = c.trained_on;
    lasting_since_anchor.reset();
  }
  anchor = new_anchor;
  if (!approved) training = false;  // its training job ends here
  RestartTriggers(approved ? 0 : NewSince(c.new_at_snapshot));
  drifting = drifting_on;
  lasting_block.reset();
  last_training_error.clear();
  last_nuisances = c.nuisances;
  bool vigilance_changed = false;
  // The new normal an operator accepted is learned: flagged histograms stay out again.
  if (accepting && accepted_in_training >= accept_target) {
    accepting = false;
    vigilance_changed = true;
  }
  // An approved change is the new normal from the data that showed it on, learned as an accepted
  // one (the candidate saw only part of it). (A model trained while a change is held learned none
  // only because flagged histograms stayed out: the hold goes when the change does.)
  if (approved) {
    AcceptFrom(c.change_from, target);
    vigilance_changed = true;
  }
  series.model_version->Set(static_cast<double>(model->version));
  for (const VersionInfo& v : versions)
    if (v.version == model->version)
      series.last_trained_time->Set(static_cast<double>(v.created_unix_ms) / 1000.0);
  return vigilance_changed;
}

void Monitor::StartTraining() {
  training = true;
  accepted_in_training = accepting ? accepted_admitted : 0;
}

void Monitor::KeepCurrent(uint64_t new_at_snapshot) {
  training = false;
  // Count anew from here, so the same trigger does not fire again at once.
  RestartTriggers(NewSince(new_at_snapshot));
}

void Monitor::TrainingFailed(std::string why, bool job_ends) {
  if (job_ends) training = false;
  last_training_error = std::move(why);
  failed_at_new = new_since_train;
}

void Monitor::Hold(std::shared_ptr<Candidate> held) {
  held_change = held->held;
  pending = std::move(held);
  held_quiet = 0;
  held_cusum = 0;
  series.pending_change->Set(1);
}

void Monitor::RejectHeld() {
  pending.reset();
  change_rejected = true;
  series.pending_change->Set(0);
}

void Monitor::ReleaseHold() {
  held_change.reset();
  pending.reset();
  series.pending_change->Set(0);
}

void Monitor::KeepVerdict(const Verdict& v, int64_t unix_ms) {
  last_verdict = v;
  last_verdict_unix_ms = unix_ms;
}

void Monitor::RollBackTo(std::shared_ptr<const models::Model> restored,
                         std::shared_ptr<const ShapeStats> restored_shape) {
  model = std::move(restored);
  anchor = model->version;
  anchor_shape = std::move(restored_shape);
  lasting_since_anchor.reset();
  RestartTriggers(0);
  drifting = false;
  // The blocks' evidence was summed against the offsets of the model rolled back from: it starts
  // again against the restored one.
  lasting.Clear();
  lasting_block.reset();
  pointed_from.reset();
  pointed_length = 0;
  series.model_version->Set(static_cast<double>(model->version));
}

void Monitor::FollowPointed(double p_value, std::optional<LastingBlock> block, uint32_t length) {
  if (!block || p_value >= kLastingLeans) {
    pointed_length = 0;
    return;
  }
  if (p_value < kLastingSuspected) {
    lasting_since_anchor = block;
    suspected = true;
  }
  // Scored() has put this histogram last: the run began `length` histograms back.
  const size_t back = std::min<size_t>(length, scored_recently.size());
  if (back > 0) pointed_from = scored_recently[scored_recently.size() - back].first;
  pointed_length = length;
}

bool Monitor::PointedRunYoung() const {
  return pointed_length > 0 && pointed_length < kComparedNewest && !drifting &&
         MayCompareWithAnchor();
}

std::vector<HistogramKey> Monitor::TakeBack(size_t lumisections) {
  std::vector<HistogramKey> unkept;
  if (accepting) return unkept;
  const size_t n = std::min(lumisections, scored_recently.size());
  for (auto it = scored_recently.end() - static_cast<std::ptrdiff_t>(n);
       it != scored_recently.end(); ++it) {
    auto& [key, good] = *it;
    if (!good) continue;
    if (const auto label = labels.find(key); label != labels.end() && label->second) continue;
    // Looked at once: the lumisections after this one find it done.
    good = false;
    if (!window.Erase(key)) continue;
    if (!records.Contains(key)) unkept.push_back(key);
  }
  series.window_size->Set(static_cast<double>(window.size()));
  return unkept;
}

void Monitor::Scored(const HistogramKey& k, Quality quality) {
  scored_recently.emplace_back(k, quality == Quality::kGood);
  if (scored_recently.size() > kScoredRecently) scored_recently.pop_front();
}

bool Monitor::Admits(const HistogramKey& k, Quality quality) const {
  const auto it = labels.find(k);
  if (it != labels.end()) return it->second;
  if (quality == Quality::kRejected || quality == Quality::kLowStatistics) return false;
  if (accepting && k >= accepted_from) return true;
  if (held_change) return quality == Quality::kGood || quality == Quality::kLearning;
  return quality != Quality::kBad;
}

MonitorStatus Monitor::Summary() const {
  MonitorStatus s;
  s.monitor = name;
  s.active_version = model ? model->version : 0;
  s.window_size = window.size();
  s.last_verdict = last_verdict;
  s.last_verdict_unix_ms = last_verdict_unix_ms;
  return s;
}

MonitorStatus Monitor::Describe() const {
  MonitorStatus s = Summary();
  s.shape = shape;
  s.anchor_version = anchor;
  s.versions = versions;
  s.warning_p = thresholds.warning_p;
  s.bad_p = thresholds.bad_p;
  s.min_entries = thresholds.min_entries;
  if (lasting_open()) {
    s.lasting_change = streak_bins;
    s.lasting_lumisections = flagged_streak;
  }
  if (accepting) s.accepting_from = accepted_from;
  if (pending) {
    s.pending_change = pending->change;
  } else if (held_change && !change_rejected) {
    s.pending_change = held_change->where +
                       " (its candidate did not outlive a restart; the next training that "
                       "learns it holds a new one)";
  }
  s.change_rejected = change_rejected;
  s.nuisances = last_nuisances;
  return s;
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
