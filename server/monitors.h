// Monitors: the daemon's state for each monitored histogram name, and the registry that holds
// them.
//
// A Monitor is created on the first valid histogram of its name and lives until the daemon stops
// (the registry never removes one, so a Monitor* stays valid). Its mutable state is guarded by
// its own mutex; scoring threads and the training scheduler take it briefly. The model is an
// immutable snapshot (shared_ptr<const Model>) replaced whole when a training job finishes.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "histguard/v1/histguard.pb.h"
#include "models/model.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/validation.h"

namespace histguard::server {

struct Monitor {
  Monitor(std::string n, ThresholdRule t, Metrics::MonitorSeries s)
      : name(std::move(n)), thresholds(std::move(t)), series(s) {}

  const std::string name;
  const ThresholdRule thresholds;
  const Metrics::MonitorSeries series;

  std::mutex mu;
  // Everything below is guarded by mu.
  std::vector<uint32_t> shape;                  // binning of the first valid histogram
  std::shared_ptr<const models::Model> model;   // null while learning
  std::deque<std::vector<float>> window;        // recent accepted histograms (counts)
  std::vector<double> shape_sum;                // sum of the window's normalised shapes
  bool training = false;                        // a training job is queued or running
  uint64_t trained_versions = 0;                // last version number handed out
  std::string last_training_error;
  size_t failed_at_window = 0;                  // window size when training last failed
  v1::Verdict last_verdict;
};

class MonitorRegistry {
 public:
  MonitorRegistry(const Config& config, Metrics& metrics) : config_(config), metrics_(metrics) {}

  // The monitor of that name, created if new. Null with `why` filled when max_monitors is reached.
  Monitor* FindOrCreate(const std::string& name, Rejection* why);
  Monitor* Find(const std::string& name) const;
  std::vector<Monitor*> All() const;
  size_t size() const;

 private:
  const Config& config_;
  Metrics& metrics_;
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, std::unique_ptr<Monitor>> monitors_;  // guarded by mu_
};

}  // namespace histguard::server
