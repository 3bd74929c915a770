// Limits of the wire protocol that the daemon and its clients (the CLI, the benches) share.
#pragma once

#include <cstddef>
#include <cstdint>

namespace histguard {

// The largest gRPC message the daemon accepts by default (max_message_bytes) and clients send
// and receive: a request of many large maps, or an Inspection of a 65,536-bin histogram.
inline constexpr uint32_t kMaxMessageBytes = 64 << 20;

// Monitor names are 1..kMaxMonitorName characters of [A-Za-z0-9_.:/-].
inline constexpr size_t kMaxMonitorName = 256;

}  // namespace histguard
