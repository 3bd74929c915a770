// Load generation against any histguard.v1.Ingest server over loopback, and the no-op server
// that measures what the transport alone can carry. Used by histguard_bench.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "histguard/v1/histguard.pb.h"

namespace histguard::bench {

struct LoadOptions {
  std::string address{};  // host:port of the daemon
  int streams = 0;        // bidi streams, one histogram per message
  int unary_clients = 0;  // threads calling Submit
  int batch = 1;          // histograms per Submit
  double rate = 0;        // histograms/s in all; 0 = closed loop, as fast as possible
  double seconds = 5;
  int in_flight = 64;  // per stream, closed loop
  uint64_t run = 1;
};

struct LoadResult {
  uint64_t histograms = 0;
  double seconds = 0;
  double p50 = 0, p99 = 0, p999 = 0;  // seconds, per histogram (send to verdict)
  uint64_t errors = 0;
  double rate() const { return seconds > 0 ? histograms / seconds : 0; }
};

// Sends copies of `pool` (lumisection rewritten) until `seconds` pass.
LoadResult RunLoad(const LoadOptions& options, const std::vector<v1::Histogram>& pool);

// The storage limit: appends of a record's size (300 bytes) to a file in `dir` for `seconds`,
// each synced as the daemon syncs its write-ahead log (fdatasync). Measured for as long as a load
// row: the disk's rare stalls are what the p99 of synced answers feels. Latencies in seconds;
// syncs 0 when the directory cannot be written.
struct SyncResult {
  uint64_t syncs = 0;
  double p50 = 0, p99 = 0, p999 = 0, longest = 0;
};
SyncResult MeasureSyncs(const std::string& dir, double seconds);

// A server implementing Ingest that parses and answers an empty verdict: the transport limit.
class NoopServer {
 public:
  NoopServer();
  ~NoopServer();
  const std::string& address() const { return address_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string address_;
};

// A histguardd started for a benchmark on free loopback ports with a fresh data directory.
struct Daemon {
  pid_t pid = -1;
  std::string grpc, data_dir;
};
// Starts `path` with `extra` flags; grpc is empty when it did not come up.
Daemon StartDaemon(const std::string& path, const std::vector<std::string>& extra);
// SIGTERM (it drains and exits), then removes its data directory.
void StopDaemon(const Daemon& d);
// A /proc/PID/status memory figure in MiB: "VmRSS:" now, "VmHWM:" the peak.
double RssMiB(pid_t pid, const char* field = "VmRSS:");

}  // namespace histguard::bench
