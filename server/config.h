// Daemon configuration: embedded defaults, overridden by an optional YAML file (--config), in turn
// overridden by command-line flags. Immutable once the daemon starts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "proto/histguard/limits.h"

namespace histguard::server {

// Thresholds for monitors whose name matches `match` (shell glob, e.g. "pixel/*"); the first
// matching rule wins, else the global ones apply.
struct ThresholdRule {
  std::string match;
  double warning_p = 1e-3;
  double bad_p = 1e-5;
  double min_entries = 100;
  // The axis nuisances fitted on 1D histograms (see models/axis_nuisances.h): "gain,shift",
  // "gain,shift,tilt", "none", ... "auto": gain and shift. Maps have none. Empty in a rule: the
  // global setting.
  std::string nuisances = "auto";
};

// The axis nuisances a `nuisances` setting names, as models::kFitGain | ... bits; nullopt when it
// names something else.
std::optional<unsigned> ParseNuisances(std::string_view text);

struct Config {
  // Loopback by default: without TLS or tokens another address needs `insecure`.
  std::string listen = "127.0.0.1:50051";
  std::string metrics_listen = "127.0.0.1:9650";
  std::string data_dir = "./var/histguard";
  // The console's pages (index.html, console.js, JSROOT), served under /console/ on the HTTP port.
  // Empty: the installed ones (share/histguard/console beside bin/), else the build tree's.
  std::string console_dir;

  // Security (server/security.h). TLS on both ports when tls_cert and tls_key are given; with
  // tls_client_ca, client certificates signed by it are verified and identify callers.
  std::string tls_cert, tls_key, tls_client_ca;
  std::string token_file;  // roles for bearer tokens and certificate names; empty: none
  std::string audit_log;   // JSON lines of state-changing calls; empty: <data_dir>/audit.log
  bool insecure = false;   // listen beyond loopback without TLS or tokens
  int scoring_threads = 1;
  int train_threads = 1;
  int compute_threads = 1;  // LibTorch intra-op and OpenBLAS threads, per training job
  double warning_p = 1e-3;
  double bad_p = 1e-5;
  double min_entries = 100;
  std::string nuisances = "auto";
  std::vector<ThresholdRule> thresholds;
  uint32_t min_train_samples = 100;
  uint32_t max_monitors = 10000;
  uint32_t max_bins = 65536;
  uint32_t max_histograms_per_request = 10000;
  uint32_t max_message_bytes = kMaxMessageBytes;
  uint32_t max_batch = 512;    // histograms scored per batch
  uint32_t batch_wait_us = 0;  // how long a small batch waits for more (0: the committer's
                               // group commit already gathers what arrives while it syncs)
  // Sync the store's write-ahead log before a verdict is answered: an acknowledged histogram
  // survives a power loss. false: it is in the log (the operating system's cache) before it is
  // answered, which survives a crash or kill -9 of the daemon but not of the node, and takes the
  // disk's sync latency off every answer.
  bool sync_writes = true;
  uint32_t max_queue = 100000;      // histograms waiting for scoring before unary calls are refused
  uint32_t stream_in_flight = 256;  // unanswered histograms per stream before reads pause
  double drain_timeout_seconds = 10;
  double train_budget_seconds = 60;
  uint32_t train_min_steps = 300;  // optimiser steps at least (small windows get several epochs)

  // Continual learning.
  uint32_t window_size = 2000;   // recent accepted histograms a monitor trains on
  bool retraining = true;        // retrain as new normal data arrive (false: first model only)
  uint32_t retrain_every = 500;  // new window samples that trigger a retraining
  double retrain_interval_seconds = 600;  // ... or this much time with at least retrain_min_new
  uint32_t retrain_min_new = 50;
  // Drift trigger: p-values of a model's verdicts are uniform while the data look like what it
  // was trained on, so -ln p averages 1. A CUSUM of -ln p (capped at -ln 0.01, so that a lone
  // anomaly does not retrain) minus `drift_allowance`, reset when a model is swapped in, crossing
  // `drift_threshold` means the data are moving away: retrain early, before warnings. At the
  // defaults, uniform p-values cross once in ~800 verdicts (the conservative combined p-value of
  // a real model far less often); p-values whose -ln averages 1.5 cross after ~36, 2 after ~17.
  double drift_allowance = 1.2;
  double drift_threshold = 10;
  // New histograms the drift trigger needs, and, unless a drift is known to go on, verdicts in a
  // row its sum has been above 0: a faint defect's own p-values (-ln p about 2-3) crossed 7
  // lumisections in, before the lasting evidence leaned to its block, and the drifting model
  // learned part of it.
  uint32_t drift_min_new = 20;
  uint32_t drift_window = 500;       // a drift retraining uses only the newest this many
  double candidate_tolerance = 0.1;  // reject a candidate worse than the current model by this
  uint32_t keep_versions = 5;        // model versions kept for rollback
  uint32_t history = 2500;           // stored histograms per monitor (for Inspect and labels)

  // New histograms are refused while the data directory has less free space than this, so the
  // store never meets a failing write; taken again when space returns.
  uint64_t disk_reserve_bytes = 128ull << 20;
  // Memory the daemon plans for beyond its monitors' models and windows: an eighth bounds the
  // histograms in flight (received, not yet answered), an eighth gRPC's transport buffers, half
  // the training jobs (a window larger than its share trains on its newest histograms that fit);
  // the rest is headroom for the store and the allocator.
  uint64_t memory_budget_bytes = 2ull << 30;
  // A monitor that receives nothing for this long is forgotten (0: never), as `histguard forget`
  // does: a flood of one-off names cannot hold max_monitors for good.
  double monitor_idle_expiry_seconds = 0;
  // A monitor's anomaly score and significance gauges leave /metrics this long after its last
  // verdict (0: never): a last value must not keep an alert firing through the gap between runs.
  // Alerts on single lumisections count histguard_monitor_verdicts_total instead.
  double metrics_stale_seconds = 300;
};

// Parses argv (flags and --config FILE). On --help, fills `exit_message` with the help text and
// returns nullopt with `exit_code` 0; on an error, the message and exit code 2.
struct ParseOutcome {
  std::optional<Config> config;
  std::string exit_message;
  int exit_code = 0;
};
ParseOutcome ParseConfig(int argc, char** argv);

// Loads a YAML file onto `config`: NotFound when it cannot be read; InvalidArgument naming the
// key for an unknown key or an ill-typed value.
[[nodiscard]] absl::Status LoadYaml(const std::string& path, Config& config);
// The same for the text of such a file; `path` names it in errors.
[[nodiscard]] absl::Status LoadYamlText(std::string_view text, const std::string& path,
                                        Config& config);

// Checks ranges (threads >= 1, 0 < bad_p <= warning_p < 1, ...): InvalidArgument with the first
// problem.
[[nodiscard]] absl::Status Validate(const Config& config);

// The thresholds that apply to `monitor`.
ThresholdRule ThresholdsFor(const Config& config, const std::string& monitor);

}  // namespace histguard::server
