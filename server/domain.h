// The daemon's own types for what it handles: a histogram, the verdict on it, a person's label,
// a stored record, and what a monitor reports of itself. Plain C++: the public API's messages
// (histguard/v1) are converted to and from them in one place, server/convert.h, at the two
// service boundaries, and the store keeps them in its private schema (server/store.h). So the
// wire contract, the disk format and the daemon's logic can each change without the others.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "models/stats.h"

namespace histguard::server {

using HistogramKey = std::pair<uint64_t, uint64_t>;  // (run, lumisection)

// A verdict's quality. The order is the metrics' (histguard_verdicts_total{quality}).
enum class Quality { kGood, kWarning, kBad, kLearning, kLowStatistics, kRejected };
inline constexpr int kQualities = 6;

struct Axis {
  double low = 0, high = 0;
  std::string title;
};

// One monitoring histogram of one lumisection, as validated (server/validation.h).
struct Histogram {
  std::string monitor;
  uint64_t run = 0, lumisection = 0;
  int64_t time_unix_ms = 0;  // the producer's; 0: the time it was received
  std::vector<uint32_t> shape;
  std::vector<double> contents;  // row-major, without under- and overflow
  double underflow = 0, overflow = 0, entries = 0;
  std::optional<Axis> x_axis, y_axis;

  HistogramKey key() const { return {run, lumisection}; }
};

struct Nuisance {
  std::string name;  // gain, shift, tilt
  double value = 0, error = 0;
};

// The verdict on one histogram.
struct Verdict {
  std::string monitor;
  uint64_t run = 0, lumisection = 0;
  Quality quality = Quality::kRejected;
  double score = 0;
  double p_value = 1;                     // 1 when unknown
  uint64_t model_version = 0;             // 0: no model yet
  std::vector<models::BinPull> top_bins;  // the most deviating bins, largest |pull| first
  std::string detail;
  std::vector<Nuisance> nuisances;

  HistogramKey key() const { return {run, lumisection}; }
};

// A stored histogram with the verdict it was given.
struct Record {
  Histogram histogram;
  Verdict verdict;
};

// A person's verdict on one lumisection of a monitor.
struct Label {
  std::string monitor;
  uint64_t run = 0, lumisection = 0;
  bool good = false;  // GOOD, else BAD
  std::string comment, author;

  HistogramKey key() const { return {run, lumisection}; }
};

// One kept model version, as its manifest describes it.
struct VersionInfo {
  uint64_t version = 0;
  int64_t created_unix_ms = 0;
  uint64_t sample_count = 0;
  double train_loss = 0, holdout_loss = 0;
  std::string reason;
  HistogramKey first{}, last{};  // training window range
  std::string manifest;          // the JSON as stored
};

// What a monitor reports of itself (Monitor::Describe): its model versions, thresholds, last
// verdict and the changes it holds or learns.
struct MonitorStatus {
  std::string monitor;
  std::vector<uint32_t> shape;
  uint64_t active_version = 0, anchor_version = 0;
  std::vector<VersionInfo> versions;  // ascending
  uint64_t window_size = 0;
  double warning_p = 0, bad_p = 0, min_entries = 0;
  std::optional<Verdict> last_verdict;  // none since start-up
  int64_t last_verdict_unix_ms = 0;
  std::string lasting_change;  // an open lasting change: where its first lumisection deviated
  uint32_t lasting_lumisections = 0;
  std::optional<HistogramKey> accepting_from;  // learning a new normal accepted from there
  std::string pending_change;
  bool change_rejected = false;
  std::string nuisances;
};

}  // namespace histguard::server
