#include "server/retraining_policy.h"

#include <algorithm>
#include <cmath>

namespace histguard::server {

double DriftStep(double drift_sum, double p_value, const Config& config) {
  // Simulated on uniform p-values, the count (6 of 50) fired once in ~460 verdicts and this once
  // in ~800; on p-values with -ln p averaging 1.5 the count fired after ~49 verdicts, this after
  // ~36.
  constexpr double kMaxTerm = 4.6;  // -ln 0.01
  const double term = std::min(-std::log(std::max(p_value, 1e-300)), kMaxTerm);
  return std::max(0.0, drift_sum + term - config.drift_allowance);
}

const char* DueRetraining(const Monitor& m, const Config& config,
                          std::chrono::steady_clock::time_point now) {
  if (!config.retraining || m.training) return nullptr;
  if (m.accepting && m.accepted_admitted >= m.accept_target &&
      m.accepted_in_training < m.accept_target)
    return "accepted";
  if (m.suspected && m.lasting_since_anchor && m.MayCompareWithAnchor() &&
      m.new_since_train >= m.next_check_at)
    return kSuspected;
  // What the evidence points at is compared with the anchor's data once its run is long enough.
  if (m.PointedRunYoung()) return nullptr;
  if (m.new_since_train >= config.retrain_every) return "scheduled";
  if (!m.held_change && m.new_since_train >= config.drift_min_new &&
      (m.drifting || m.drift_run >= config.drift_min_new) &&
      m.drift_sum >= (m.drifting ? 0.5 : 1.0) * config.drift_threshold)
    return "drift";
  if (m.new_since_train >= config.retrain_min_new &&
      now - m.last_trained >= std::chrono::duration<double>(config.retrain_interval_seconds))
    return "interval";
  return nullptr;
}

bool KeepsDrifting(bool trained_for_drift, uint64_t new_at_snapshot, const Config& config) {
  // In a 30% gain drift the warnings fell from 0.6-0.8% of normal histograms to 0.13-0.47%:
  // models lived 30-50 histograms, not 50-90.
  return trained_for_drift && new_at_snapshot < config.retrain_every / 2;
}

bool TrainsForDrift(const std::string& reason, bool lasting_flagged) {
  return (reason == "drift" && !lasting_flagged) || reason == "accepted";
}

void TrimForDrift(std::vector<HistogramKey>& window, bool drift, const Config& config) {
  if (drift && window.size() > config.drift_window)
    window.erase(window.begin(), window.end() - config.drift_window);
}

uint32_t LatentHorizon(uint64_t new_at_snapshot, const Config& config) {
  // Projected further than the model lives, the reference runs ahead of the codes it will see
  // and they look like outliers.
  if (!config.retraining) return 0;
  return static_cast<uint32_t>(
      std::clamp<uint64_t>(new_at_snapshot, config.drift_min_new,
                           std::max<uint64_t>(config.retrain_every, config.drift_min_new)));
}

uint64_t AcceptTarget(const Config& config) {
  return std::max<uint64_t>(config.min_train_samples, config.drift_window / 2);
}

}  // namespace histguard::server
