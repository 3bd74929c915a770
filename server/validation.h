// Validation of untrusted histograms before they reach a monitor.
//
// Every check that can be made on a histogram alone is here; checks that need the monitor's
// state (binning it was trained on, max_monitors) are made by the registry. A problem is a value:
// a reason label (bounded set, for the rejected metric) and a detail in words for the sender.
// Stateless and thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "histguard/v1/histguard.pb.h"
#include "proto/histguard/limits.h"

namespace histguard::server {

struct Rejection {
  std::string reason;  // metric label: bad_monitor_name, empty_contents, shape_mismatch, ...
  std::string detail;  // for the sender
};

// Monitor names: 1..kMaxMonitorName (256) chars of [A-Za-z0-9_.:/-].
std::optional<Rejection> CheckMonitorName(std::string_view name);

std::optional<Rejection> Validate(const v1::Histogram& h, uint32_t max_bins);

// The reason labels Validate and the registry can produce (to pre-register metric series).
const std::vector<std::string>& RejectionReasons();

}  // namespace histguard::server
