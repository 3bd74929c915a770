#include "server/config.h"

#include <fnmatch.h>
#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "histguard/version.h"
#include "models/axis_nuisances.h"

namespace histguard::server {
namespace {

// One table of every scalar setting: the flag/YAML key, its help, and how to read it into Config.
struct Setting {
  const char* key;  // YAML key; the flag is --key with '_' as '-'
  const char* help;
  std::function<void(CLI::App&, const std::string&, Config&)> add_flag;
  std::function<void(const YAML::Node&, Config&)> from_yaml;
};

template <typename T>
Setting Make(const char* key, const char* help, T Config::*field) {
  return Setting{key, help,
                 [field, help](CLI::App& app, const std::string& flag, Config& c) {
                   app.add_option(flag, c.*field, help)->capture_default_str();
                 },
                 [field](const YAML::Node& n, Config& c) { c.*field = n.as<T>(); }};
}

// A switch given alone on the command line (--insecure), or as `insecure: true` in the file.
Setting MakeSwitch(const char* key, const char* help, bool Config::*field) {
  return Setting{key, help,
                 [field, help](CLI::App& app, const std::string& flag, Config& c) {
                   app.add_flag(flag, c.*field, help);
                 },
                 [field](const YAML::Node& n, Config& c) { c.*field = n.as<bool>(); }};
}

const std::vector<Setting>& Settings() {
  static const std::vector<Setting> s = {
      Make("listen", "gRPC listen address host:port (port 0 picks a free one)", &Config::listen),
      Make("metrics_listen", "HTTP address for /metrics and /healthz (port 0 picks one)",
           &Config::metrics_listen),
      Make("data_dir", "directory for models and state", &Config::data_dir),
      Make("console_dir",
           "folder of the web console's pages, served under /console/ on the HTTP port (default: "
           "the installed or built ones)",
           &Config::console_dir),
      Make("tls_cert",
           "PEM certificate (chain) for TLS on the gRPC and HTTP ports, reloaded when it changes",
           &Config::tls_cert),
      Make("tls_key", "PEM private key of tls_cert", &Config::tls_key),
      Make("tls_client_ca",
           "PEM CA whose client certificates are verified (mTLS); their common names can be "
           "given roles in the token file",
           &Config::tls_client_ca),
      Make("token_file",
           "roles of bearer tokens (SHA-256 hashes) and client certificate names, one per line: "
           "'ROLE sha256:HEX NAME' or 'ROLE cn:NAME' with ROLE ingest, read or operator "
           "(histguard token prints a line); reloaded when it changes. Empty: no authentication",
           &Config::token_file),
      Make("audit_log", "JSON-lines record of state-changing calls (default <data_dir>/audit.log)",
           &Config::audit_log),
      MakeSwitch(
          "insecure",
          "allow listening beyond loopback with neither TLS nor a token file (anyone who reaches "
          "the ports can send, read and steer)",
          &Config::insecure),
      Make("scoring_threads", "threads scoring histograms", &Config::scoring_threads),
      Make("train_threads", "background training jobs at once", &Config::train_threads),
      Make("compute_threads", "LibTorch/OpenBLAS threads per training job",
           &Config::compute_threads),
      Make("warning_p", "p-value below which a histogram is WARNING", &Config::warning_p),
      Make("bad_p", "p-value below which a histogram is BAD", &Config::bad_p),
      Make("min_entries", "histograms with fewer entries are LOW_STATISTICS", &Config::min_entries),
      Make("nuisances",
           "axis nuisances fitted per 1D histogram, reported in verdicts and /metrics and "
           "watched for jumps: a comma-separated list of gain, shift, tilt; 'none'; or 'auto' "
           "(gain,shift)",
           &Config::nuisances),
      Make("min_train_samples", "histograms collected before a monitor's first training",
           &Config::min_train_samples),
      Make("max_monitors", "distinct monitors accepted; new ones beyond are rejected",
           &Config::max_monitors),
      Make("max_bins", "largest histogram accepted, in bins", &Config::max_bins),
      Make("max_histograms_per_request", "largest Submit batch accepted",
           &Config::max_histograms_per_request),
      Make("max_message_bytes", "largest gRPC message accepted", &Config::max_message_bytes),
      Make("max_batch", "histograms scored together in one batch", &Config::max_batch),
      Make("batch_wait_us", "how long a small batch waits for more histograms (microseconds)",
           &Config::batch_wait_us),
      Make("sync_writes",
           "sync the store before answering, so an acknowledged histogram survives a power loss "
           "(false: it survives a crash or kill -9 of the daemon, not of the node, and answers do "
           "not wait for the disk)",
           &Config::sync_writes),
      Make("max_queue", "histograms waiting to be scored before unary calls are refused",
           &Config::max_queue),
      Make("stream_in_flight", "unanswered histograms per stream before its reads pause",
           &Config::stream_in_flight),
      Make("drain_timeout_seconds", "on SIGTERM, how long in-flight calls may take to finish",
           &Config::drain_timeout_seconds),
      Make("train_budget_seconds", "longest a single training job may run",
           &Config::train_budget_seconds),
      Make("train_min_steps", "optimiser steps a training takes at least",
           &Config::train_min_steps),
      Make("window_size", "recent accepted histograms each monitor trains on",
           &Config::window_size),
      Make("monitor_idle_expiry_seconds",
           "forget a monitor (models, stored histograms, state) that has received nothing for "
           "this long; 0 = never",
           &Config::monitor_idle_expiry_seconds),
      Make("metrics_stale_seconds",
           "stop exporting a monitor's anomaly score and significance this long after its last "
           "verdict (0 = never), so that a last value does not keep alerts firing between runs",
           &Config::metrics_stale_seconds),
      Make("memory_budget_bytes",
           "memory for histograms in flight (an eighth: beyond it Submit is refused and streams "
           "wait), gRPC's buffers (an eighth) and training jobs (half: larger windows train on "
           "their newest histograms)",
           &Config::memory_budget_bytes),
      Make("disk_reserve_bytes",
           "refuse new histograms (UNAVAILABLE) while the data directory has less free space "
           "than this; taken again when space returns",
           &Config::disk_reserve_bytes),
      Make("retraining", "retrain as new normal data arrive (false: keep the first model)",
           &Config::retraining),
      Make("retrain_every", "new window histograms that trigger a retraining",
           &Config::retrain_every),
      Make("retrain_interval_seconds",
           "also retrain after this long if at least retrain_min_new histograms are new",
           &Config::retrain_interval_seconds),
      Make("retrain_min_new", "new histograms needed by the interval trigger",
           &Config::retrain_min_new),
      Make("drift_allowance",
           "drift trigger: subtracted from each verdict's -ln p (which averages 1 while the data "
           "look like the training data) before it is added to the running sum",
           &Config::drift_allowance),
      Make("drift_threshold", "drift trigger: the running sum that retrains early",
           &Config::drift_threshold),
      Make("drift_min_new",
           "new histograms needed by the drift trigger (and, outside a known drift, verdicts in a "
           "row with its sum above 0)",
           &Config::drift_min_new),
      Make("drift_window", "a drift retraining trains on only the newest this many histograms",
           &Config::drift_window),
      Make("candidate_tolerance",
           "a retrained model worse than the current one by more than this fraction is rejected",
           &Config::candidate_tolerance),
      Make("keep_versions", "model versions kept per monitor for rollback", &Config::keep_versions),
      Make("history", "histograms stored per monitor for inspection and labelling",
           &Config::history),
  };
  return s;
}

std::string FlagName(const char* key) {
  std::string f = std::string("--") + key;
  for (char& ch : f)
    if (ch == '_') ch = '-';
  return f;
}

// A configuration that cannot be used: which setting, and what is wrong with it.
absl::Status Invalid(const std::string& text) { return absl::InvalidArgumentError(text); }

}  // namespace

absl::Status LoadYaml(const std::string& path, Config& config) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError("cannot read configuration file " + path);
  std::stringstream text;
  text << in.rdbuf();
  return LoadYamlText(text.str(), path, config);
}

absl::Status LoadYamlText(std::string_view text, const std::string& path, Config& config) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return Invalid("configuration file " + path + ": " + e.what());
  }
  if (root.IsNull()) return absl::OkStatus();
  if (!root.IsMap())
    return Invalid("configuration file " + path + ": expected a mapping of settings");
  std::map<std::string, const Setting*> by_key;
  for (const auto& s : Settings()) by_key[s.key] = &s;
  for (const auto& kv : root) {
    if (!kv.first.IsScalar()) return Invalid(path + ": a setting's name must be a plain word");
    const std::string key = kv.first.Scalar();
    try {
      if (key == "thresholds") {
        if (!kv.second.IsSequence()) return Invalid(path + ": 'thresholds' must be a list");
        for (const auto& r : kv.second) {
          // The nuisances are left to the global setting unless given: it may come later in the
          // file.
          ThresholdRule rule{"", config.warning_p, config.bad_p, config.min_entries, ""};
          if (!r.IsMap() || !r["match"])
            return Invalid(path + ": every 'thresholds' entry needs a 'match' pattern");
          rule.match = r["match"].as<std::string>();
          if (r["warning_p"]) rule.warning_p = r["warning_p"].as<double>();
          if (r["bad_p"]) rule.bad_p = r["bad_p"].as<double>();
          if (r["min_entries"]) rule.min_entries = r["min_entries"].as<double>();
          if (r["nuisances"]) rule.nuisances = r["nuisances"].as<std::string>();
          config.thresholds.push_back(rule);
        }
        continue;
      }
      auto it = by_key.find(key);
      if (it == by_key.end()) return Invalid(path + ": unknown setting '" + key + "'");
      it->second->from_yaml(kv.second, config);
    } catch (const YAML::Exception& e) {
      return Invalid(path + ": bad value for '" + key + "': " + e.what());
    }
  }
  return absl::OkStatus();
}

absl::Status Validate(const Config& c) {
  if (c.scoring_threads < 1) return Invalid("scoring_threads must be at least 1");
  if (c.train_threads < 1) return Invalid("train_threads must be at least 1");
  if (c.compute_threads < 1) return Invalid("compute_threads must be at least 1");
  auto check_p = [](double w, double b, const std::string& where) -> absl::Status {
    if (!(b > 0 && b <= w && w < 1)) return Invalid(where + ": need 0 < bad_p <= warning_p < 1");
    return absl::OkStatus();
  };
  if (auto e = check_p(c.warning_p, c.bad_p, "thresholds"); !e.ok()) return e;
  auto check_nuisances = [](const std::string& text, const std::string& where) -> absl::Status {
    if (ParseNuisances(text)) return absl::OkStatus();
    return Invalid(where + ": nuisances '" + text +
                   "' is not 'auto', 'none' or a comma-separated list of gain, shift, tilt");
  };
  if (auto e = check_nuisances(c.nuisances, "nuisances"); !e.ok()) return e;
  for (const auto& r : c.thresholds) {
    if (auto e = check_p(r.warning_p, r.bad_p, "thresholds for '" + r.match + "'"); !e.ok())
      return e;
    if (!r.nuisances.empty())
      if (auto e = check_nuisances(r.nuisances, "thresholds for '" + r.match + "'"); !e.ok())
        return e;
  }
  if (c.min_train_samples < 20) return Invalid("min_train_samples must be at least 20");
  if (c.max_monitors < 1) return Invalid("max_monitors must be at least 1");
  if (c.max_bins < 2) return Invalid("max_bins must be at least 2");
  if (c.max_batch < 1) return Invalid("max_batch must be at least 1");
  if (c.stream_in_flight < 1) return Invalid("stream_in_flight must be at least 1");
  if (c.listen.empty()) return Invalid("listen address is empty");
  if (c.tls_cert.empty() != c.tls_key.empty()) return Invalid("tls_cert and tls_key go together");
  if (!c.tls_client_ca.empty() && c.tls_cert.empty())
    return Invalid(
        "tls_client_ca needs tls_cert and tls_key (mTLS is TLS with client certificates)");
  if (c.window_size < c.min_train_samples)
    return Invalid("window_size must be at least min_train_samples");
  if (c.keep_versions < 1) return Invalid("keep_versions must be at least 1");
  if (c.drift_window < 20) return Invalid("drift_window must be at least 20");
  if (!(c.drift_allowance >= 1 && c.drift_allowance <= 10))
    return Invalid(
        "drift_allowance must be between 1 and 10 (below 1 the sum grows without a drift)");
  if (!(c.drift_threshold > 0 && c.drift_threshold <= 1e6))
    return Invalid("drift_threshold must be > 0");
  if (c.retrain_every < 1) return Invalid("retrain_every must be at least 1");
  if (c.history < c.window_size) return Invalid("history must be at least window_size");
  if (c.candidate_tolerance < 0) return Invalid("candidate_tolerance must be >= 0");
  if (!(c.monitor_idle_expiry_seconds >= 0))
    return Invalid("monitor_idle_expiry_seconds must be >= 0");
  if (!(c.metrics_stale_seconds >= 0)) return Invalid("metrics_stale_seconds must be >= 0");
  if (c.memory_budget_bytes / 8 < c.max_message_bytes)
    return Invalid(
        "memory_budget_bytes (" + std::to_string(c.memory_budget_bytes) +
        ") must be at least 8 x max_message_bytes (" + std::to_string(c.max_message_bytes) +
        "): an eighth of it bounds the histograms in flight, and the largest message must fit");
  // Settings that are each valid but do not work together.
  if (c.max_queue < c.max_histograms_per_request)
    return Invalid("max_queue (" + std::to_string(c.max_queue) +
                   ") is below max_histograms_per_request (" +
                   std::to_string(c.max_histograms_per_request) +
                   "): a full-size Submit would be refused even by an idle daemon");
  return absl::OkStatus();
}

ThresholdRule ThresholdsFor(const Config& config, const std::string& monitor) {
  for (const auto& r : config.thresholds)
    if (fnmatch(r.match.c_str(), monitor.c_str(), 0) == 0) {
      ThresholdRule rule = r;
      if (rule.nuisances.empty()) rule.nuisances = config.nuisances;
      return rule;
    }
  return ThresholdRule{"", config.warning_p, config.bad_p, config.min_entries, config.nuisances};
}

std::optional<unsigned> ParseNuisances(std::string_view text) {
  if (text == "auto") return models::kFitGain | models::kFitShift;
  if (text == "none") return 0u;
  unsigned bits = 0;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view word = text.substr(0, comma);
    while (!word.empty() && word.front() == ' ') word.remove_prefix(1);
    while (!word.empty() && word.back() == ' ') word.remove_suffix(1);
    if (word == "gain")
      bits |= models::kFitGain;
    else if (word == "shift")
      bits |= models::kFitShift;
    else if (word == "tilt")
      bits |= models::kFitTilt;
    else
      return std::nullopt;
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  if (bits == 0) return std::nullopt;
  return bits;
}

ParseOutcome ParseConfig(int argc, char** argv) {
  ParseOutcome out;
  Config config;
  // The YAML file is read first, so that flags given on the command line override it.
  std::string config_path;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--config") == 0 && i + 1 < argc) config_path = argv[i + 1];
    if (std::strncmp(argv[i], "--config=", 9) == 0) config_path = argv[i] + 9;
  }
  if (!config_path.empty()) {
    if (const absl::Status err = LoadYaml(config_path, config); !err.ok()) {
      out.exit_message = "histguardd: " + std::string(err.message());
      out.exit_code = 2;
      return out;
    }
  }
  CLI::App app{
      "histguardd: data-quality-monitoring daemon. Receives detector-monitoring histograms over "
      "gRPC (histguard.v1.Ingest), scores each with a per-monitor autoencoder that learns what "
      "normal looks like, answers GOOD / WARNING / BAD with a calibrated p-value and the bins "
      "that deviate, and exports the figures to Prometheus on /metrics.\n\n"
      "Every setting can also be given in a YAML file (--config) under the flag's name with '_' "
      "for '-'; per-monitor thresholds go in the file as a list:\n"
      "  thresholds:\n    - {match: \"pixel/*\", warning_p: 1e-3, bad_p: 1e-6, min_entries: 500}\n"
      "    - {match: \"ecal/*/timing\", nuisances: \"gain,shift,tilt\"}\n",
      "histguardd"};
  app.get_formatter()->column_width(44);
  app.add_option("--config", config_path, "YAML configuration file (flags override it)");
  for (const auto& s : Settings()) s.add_flag(app, FlagName(s.key), config);
  app.set_version_flag("--version", "histguardd " HISTGUARD_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    out.exit_message = app.help();
    return out;
  } catch (const CLI::CallForVersion& e) {
    out.exit_message = e.what();
    return out;
  } catch (const CLI::ParseError& e) {
    out.exit_message = std::string("histguardd: ") + e.what() + "\nRun with --help for usage.";
    out.exit_code = 2;
    return out;
  }
  if (const absl::Status err = Validate(config); !err.ok()) {
    out.exit_message = "histguardd: invalid configuration: " + std::string(err.message());
    out.exit_code = 2;
    return out;
  }
  out.config = std::move(config);
  return out;
}

}  // namespace histguard::server
