// histguard_bench: throughput, latency and training-time figures of histguard on this machine,
// each next to its baseline measured in the same run (prints numbers, never pass/fail).
//
//   histguard_bench --daemon build/server/histguardd              full run (1,000 monitors)
//   histguard_bench --daemon ... --monitors 20 --seconds 1        smoke run
//
// Baselines: the model limit (the same histograms scored in-process through the same scoring
// code, with the models the daemon trained, read from its data directory) and the transport
// limit (a no-op gRPC service with the same messages). The load generator shares the cores with
// the daemon, as a DAQ publisher on the same node would. For latency, a third: the storage limit
// (how long the data directory's disk takes to sync a small append, which every answer waits
// for unless the daemon runs with --sync-writes false).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "bench/load.h"
#include "client/client.h"
#include "models/axis_nuisances.h"
#include "models/torch_reference.h"
#include "models/trainer.h"
#include "server/model_files.h"
#include "simulation/detector_simulator.h"

namespace hb = histguard::bench;
namespace hv = histguard::v1;
using Clock = std::chrono::steady_clock;

using hb::Daemon;
using hb::RssMiB;
using hb::StartDaemon;
using hb::StopDaemon;

namespace {

std::vector<hv::Histogram> MakePool(const std::vector<histguard::sim::MonitorSpec>& specs,
                                    int per_monitor, std::mt19937_64& rng) {
  std::vector<hv::Histogram> pool;
  for (int r = 0; r < per_monitor; ++r)
    for (const auto& spec : specs) {
      const auto s = histguard::sim::Draw(spec, 1e4, histguard::sim::Anomaly::kNone, 0, rng);
      hv::Histogram h;
      h.set_monitor(spec.name);
      for (auto d : s.shape) h.add_shape(d);
      h.mutable_contents()->Assign(s.contents.begin(), s.contents.end());
      pool.push_back(std::move(h));
    }
  return pool;
}

// Sends `rounds` more lumisections of every monitor (run 2) with Submit, so windows fill up.
void Fill(histguard::Client& client, const std::vector<hv::Histogram>& pool, size_t rounds) {
  std::vector<hv::Histogram> batch;
  std::vector<hv::Verdict> verdicts;
  uint64_t ls = 0;
  for (size_t r = 0; r < rounds; ++r)
    for (const auto& h : pool) {
      batch.push_back(h);
      batch.back().set_run(2);
      batch.back().set_lumisection(++ls);
      if (batch.size() == 100) {
        client.Submit(batch, &verdicts);
        batch.clear();
      }
    }
  if (!batch.empty()) client.Submit(batch, &verdicts);
}

// Sends `per_monitor` lumisections of every monitor with Submit, then waits until all have models.
bool TrainAll(histguard::Client& client, const std::vector<hv::Histogram>& pool, size_t monitors,
              int per_monitor) {
  std::vector<hv::Histogram> batch;
  std::vector<hv::Verdict> verdicts;
  uint64_t ls = 0;
  for (size_t i = 0; i < pool.size(); ++i) {
    batch.push_back(pool[i]);
    batch.back().set_run(1);
    batch.back().set_lumisection(++ls);
    if (batch.size() == 100 || i + 1 == pool.size()) {
      if (!client.Submit(batch, &verdicts).ok()) return false;
      batch.clear();
    }
  }
  const auto deadline = Clock::now() + std::chrono::minutes(20);
  while (Clock::now() < deadline) {
    grpc::ClientContext ctx;
    hv::ListMonitorsRequest req;
    hv::ListMonitorsResponse resp;
    if (!client.control().ListMonitors(&ctx, req, &resp).ok()) return false;
    size_t trained = 0;
    for (const auto& m : resp.monitors()) trained += m.model_version() > 0;
    if (trained >= monitors) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return false;
}

using ModelMap = std::map<std::string, std::shared_ptr<const histguard::models::Model>>;

// The models the daemon trained for the pool's monitors, read from its data directory.
ModelMap LoadModels(const std::string& data_dir, const std::vector<hv::Histogram>& pool) {
  const histguard::server::ModelFiles files(data_dir);
  ModelMap models;
  for (const auto& h : pool) {
    if (models.count(h.monitor())) continue;
    if (auto m = files.Load(h.monitor(), 1, {h.shape().begin(), h.shape().end()}); m.ok())
      models[h.monitor()] = std::make_shared<const histguard::models::Model>(std::move(*m));
  }
  return models;
}

// LibTorch's ways to compute the expected shapes (one histogram per monitor), against the plain
// pass the scorer uses: the options for scoring many small models, measured on one thread.
void PrintForwardRates(const ModelMap& models, const std::vector<hv::Histogram>& pool,
                       double seconds) {
  std::vector<const histguard::models::Model*> order;
  std::vector<std::vector<double>> histograms;
  std::set<std::string> seen;
  for (const auto& h : pool) {
    const auto it = models.find(h.monitor());
    if (it == models.end() || !seen.insert(h.monitor()).second) continue;
    order.push_back(it->second.get());
    histograms.emplace_back(h.contents().begin(), h.contents().end());
  }
  const auto r = histguard::models::MeasureForwardRates(order, histograms, seconds);
  std::printf(
      "expected shapes only, 1 thread, one histogram per monitor: plain pass %.0f/s; "
      "LibTorch per monitor, batch of 1: %.0f/s; LibTorch torch::bmm over the stacked "
      "weights of %zu monitors: %.0f/s; one shared model in batches of 64: %.0f/s\n",
      r.plain, r.one_at_a_time, r.stacked_monitors, r.stacked, r.shared);
}

// The model limit: the daemon's own models, the same histograms, in-process, on `threads`.
// `axis`: each 1D histogram's axis nuisances fitted too, as the daemon does.
double ModelLimit(const ModelMap& models, const std::vector<hv::Histogram>& pool, double seconds,
                  int threads, bool axis = false) {
  std::atomic<uint64_t> n{0};
  std::vector<std::thread> ts;
  const auto stop = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(seconds));
  const auto start = Clock::now();
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      histguard::models::Scratch scratch;
      uint64_t k = 0;
      double sink = 0;
      while (Clock::now() < stop) {
        for (int j = 0; j < 64; ++j, ++k) {
          const auto& h = pool[(k * 7 + t) % pool.size()];
          const auto m = models.find(h.monitor());
          if (m == models.end()) continue;
          const std::span<const double> counts(h.contents().data(), h.contents_size());
          sink += histguard::models::ScoreHistogram(*m->second, counts, scratch).p_value;
          if (axis && !m->second->axis_reference.empty()) {
            // From where a course would start it: no change, one lumisection before.
            histguard::models::AxisFit start;
            start.valid = true;
            sink += histguard::models::FitAxis(m->second->axis_reference, counts, 0, 0, start).gain;
          }
        }
      }
      n += k;
      if (sink < 0) std::puts("");
    });
  for (auto& t : ts) t.join();
  return n / std::chrono::duration<double>(Clock::now() - start).count();
}

void Row(const std::string& what, const hb::LoadResult& r, const std::string& extra = "") {
  std::printf("| %-58s | %10.0f | %8.3f | %8.3f | %8.3f | %s\n", what.c_str(), r.rate(),
              r.p50 * 1e3, r.p99 * 1e3, r.p999 * 1e3, extra.c_str());
}

// Wall time of 2,000-histogram trainings on one core, at 100 and 1,000 bins.
void PrintTrainingTimes(std::mt19937_64& rng) {
  for (uint32_t b : {100u, 1000u}) {
    histguard::sim::MonitorSpec spec{"bench/train", histguard::sim::Family::kPeakOnBackground, {b}};
    std::vector<std::vector<float>> samples;
    for (int i = 0; i < 2000; ++i) {
      const auto s = histguard::sim::Draw(spec, 1e4, histguard::sim::Anomaly::kNone, 0, rng);
      samples.emplace_back(s.contents.begin(), s.contents.end());
    }
    const auto out = histguard::models::Train(samples, spec.shape, {});
    std::printf("training: %u bins, 2000 histograms, 1 core: %.2f s (%u steps)\n", b,
                out.report.seconds, out.report.steps);
  }
}

// --only: one load against the daemon, without the baselines.
void RunOnly(const std::string& only, int only_clients, double seconds, const Daemon& d,
             const std::vector<hv::Histogram>& pool) {
  const std::map<std::string, hb::LoadOptions> loads = {
      {"stream", {.streams = 4}},
      {"submit100", {.unary_clients = 2, .batch = 100}},
      {"submit10", {.unary_clients = 4, .batch = 10}},
      {"unary", {.unary_clients = 4, .batch = 1}},
      {"unary-2000", {.unary_clients = 4, .batch = 1, .rate = 2000}}};
  hb::LoadOptions o = loads.at(only);
  if (only_clients > 0) (o.streams > 0 ? o.streams : o.unary_clients) = only_clients;
  o.seconds = seconds;
  o.run = 11;
  o.address = d.grpc;
  std::printf("daemon pid %d: running %s for %.1f s\n", static_cast<int>(d.pid), only.c_str(),
              seconds);
  std::fflush(stdout);
  Row("histguardd: " + only, hb::RunLoad(o, pool));
}

// What bounds the daemon from below: the models in process, their forward passes, and synced
// writes in the data directory.
void PrintLimits(const Daemon& d, const std::vector<hv::Histogram>& pool, double seconds) {
  const ModelMap models = LoadModels(d.data_dir, pool);
  std::printf("model limit, in-process, 1 thread: %.0f histograms/s; 2 threads: %.0f/s\n",
              ModelLimit(models, pool, seconds, 1), ModelLimit(models, pool, seconds, 2));
  {
    const double plain = ModelLimit(models, pool, seconds, 1),
                 axis = ModelLimit(models, pool, seconds, 1, true);
    std::printf(
        "model limit with each 1D histogram's axis nuisances fitted, 1 thread: %.0f/s (%.0f/s "
        "without them in this row, %.2f us more per histogram)\n",
        axis, plain, 1e6 / axis - 1e6 / plain);
  }
  PrintForwardRates(models, pool, seconds);
  const hb::SyncResult syncs = hb::MeasureSyncs(d.data_dir, seconds);
  std::printf(
      "storage limit, synced 300-byte appends in the data directory for %.0f s: "
      "p50 %.3f ms, p99 %.3f ms, p999 %.3f ms, longest %.1f ms%s\n",
      seconds, syncs.p50 * 1e3, syncs.p99 * 1e3, syncs.p999 * 1e3, syncs.longest * 1e3,
      syncs.syncs == 0 ? " (could not write there)" : "");
}

// The load table: each closed-loop load against a no-op server and the daemon, and the open-loop
// 2,000/s before and after them. Returns the open-loop load's settings; `run` is the last run
// sent.
hb::LoadOptions PrintLoadTable(const Daemon& d, const std::vector<hv::Histogram>& pool,
                               double seconds, uint64_t& run) {
  std::printf("\n| %-58s | %10s | %8s | %8s | %8s |\n", "load", "hist/s", "p50 ms", "p99 ms",
              "p999 ms");
  std::printf("|%s|%s|%s|%s|%s|\n", std::string(60, '-').c_str(), std::string(12, '-').c_str(),
              std::string(10, '-').c_str(), std::string(10, '-').c_str(),
              std::string(10, '-').c_str());
  hb::NoopServer noop;
  auto both = [&](const std::string& what, hb::LoadOptions o) {
    o.seconds = seconds;
    o.run = ++run;
    o.address = noop.address();
    const auto base = hb::RunLoad(o, pool);
    Row("no-op transport: " + what, base);
    o.address = d.grpc;
    const auto r = hb::RunLoad(o, pool);
    char ratio[64];
    std::snprintf(ratio, sizeof ratio, "%.0f%% of no-op",
                  100.0 * r.rate() / std::max(base.rate(), 1.0));
    Row("histguardd: " + what, r, ratio);
    return r;
  };
  hb::LoadOptions open{.unary_clients = 4, .batch = 1, .rate = 2000};
  open.seconds = seconds;
  open.address = d.grpc;
  // First on a store that is not busy compacting, as at a steady 2,000/s; again after the
  // closed-loop loads, while RocksDB flushes and compacts the millions of records they wrote.
  open.run = ++run;
  Row("histguardd: unary single histograms at 2,000/s (open loop)", hb::RunLoad(open, pool));
  both("4 streams, 1 histogram/message", {.streams = 4});
  both("Submit batches of 100, 2 clients", {.unary_clients = 2, .batch = 100});
  both("Submit batches of 10, 4 clients", {.unary_clients = 4, .batch = 10});
  both("unary single histograms, 4 clients", {.unary_clients = 4, .batch = 1});
  open.run = ++run;
  Row("histguardd: the same, after the closed-loop loads", hb::RunLoad(open, pool));

  return open;
}

// The open-loop load while a 2,000-histogram training of another monitor runs, again and again.
void PrintWhileRetraining(histguard::Client& client,
                          const std::vector<histguard::sim::MonitorSpec>& specs,
                          const std::vector<hv::Histogram>& pool, hb::LoadOptions open,
                          uint64_t& run, std::mt19937_64& rng) {
  const std::string big = specs[1].name;
  std::vector<hv::Histogram> batch;
  std::vector<hv::Verdict> verdicts;
  for (int i = 0; i < 2000; ++i) {
    const auto s = histguard::sim::Draw(specs[1], 1e4, histguard::sim::Anomaly::kNone, 0, rng);
    hv::Histogram h;
    h.set_monitor(big);
    h.set_run(++run);
    h.set_lumisection(i + 1);
    for (auto dd : s.shape) h.add_shape(dd);
    h.mutable_contents()->Assign(s.contents.begin(), s.contents.end());
    batch.push_back(std::move(h));
    if (batch.size() == 100) {
      client.Submit(batch, &verdicts);
      batch.clear();
    }
  }
  std::atomic<bool> done{false};
  std::thread trainer([&] {
    while (!done) {
      grpc::ClientContext ctx;
      hv::RetrainRequest req;
      req.set_monitor(big);
      hv::RetrainResponse resp;
      client.control().Retrain(&ctx, req, &resp);
    }
  });
  open.run = ++run;
  Row("histguardd: unary at 2,000/s while retraining (2,000 hists)", hb::RunLoad(open, pool));
  done = true;
  trainer.join();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "histguard_bench: throughput, latency and training time of histguard, with the "
      "model and transport limits measured in the same run."};
  std::string daemon_path;
  size_t monitors = 1000;
  uint32_t bins = 100;
  double seconds = 5;
  bool skip_training_time = false;
  size_t fill = 0;
  std::vector<std::string> daemon_args;
  app.add_option("--daemon", daemon_path, "path of histguardd")->required();
  app.add_option("--monitors", monitors, "monitors (100-bin)")->capture_default_str();
  app.add_option("--bins", bins, "bins of the main monitor set")->capture_default_str();
  app.add_option("--seconds", seconds, "duration of each load measurement")->capture_default_str();
  app.add_flag("--skip-training-time", skip_training_time, "do not time 2,000-sample trainings");
  app.add_option("--fill", fill,
                 "after training, send this many more histograms per monitor and report RSS "
                 "per monitor with that window (e.g. 2000: full windows)");
  std::string only;
  app.add_option("--only", only,
                 "after setup, run just this load against the daemon, without the baselines (for "
                 "profiling: perf record -p <daemon pid>; the daemon's pid is printed): stream, "
                 "submit100, submit10, unary, unary-2000 (open loop at 2,000/s)")
      ->check(CLI::IsMember({"stream", "submit100", "submit10", "unary", "unary-2000"}));
  int only_clients = 0;
  app.add_option("--only-clients", only_clients,
                 "with --only: this many streams or unary clients instead of the table's");
  app.add_option("--daemon-arg", daemon_args,
                 "extra flag for histguardd (repeatable), e.g. "
                 "--daemon-arg=--scoring-threads=2");
  CLI11_PARSE(app, argc, argv);
  histguard::models::SetComputeThreads(1);
  std::mt19937_64 rng(1);

  std::printf("# histguard_bench: %zu monitors x %u bins, %.1f s per measurement, %u cores\n",
              monitors, bins, seconds, std::thread::hardware_concurrency());

  if (!skip_training_time) PrintTrainingTimes(rng);

  auto specs = histguard::sim::DefaultMonitors(monitors, bins);
  for (auto& s : specs)
    if (s.family == histguard::sim::Family::kOccupancy2D)
      s.family = histguard::sim::Family::kTiming, s.shape = {bins};
  const int per_monitor = 20;
  const auto pool = MakePool(specs, per_monitor, rng);

  std::vector<std::string> args = {"--min-train-samples", std::to_string(per_monitor),
                                   "--train-min-steps",   "50",
                                   "--train-threads",     "2",
                                   "--retraining",        "false"};
  args.insert(args.end(), daemon_args.begin(), daemon_args.end());
  Daemon d = StartDaemon(daemon_path, args);
  if (d.grpc.empty()) {
    std::cerr << "histguard_bench: the daemon did not start\n";
    return 1;
  }
  const double rss_empty = RssMiB(d.pid);
  histguard::Client client(d.grpc);
  client.WaitForConnected(std::chrono::seconds(30));
  const auto t0 = Clock::now();
  if (!TrainAll(client, pool, monitors, per_monitor)) {
    std::cerr << "histguard_bench: monitors did not train\n";
    kill(d.pid, SIGKILL);
    return 1;
  }
  const double rss_trained = RssMiB(d.pid);
  std::printf(
      "setup: %zu monitors trained in %.1f s; daemon RSS %.0f MiB empty, %.0f MiB with "
      "%zu monitors (%d histograms each in the window) = %.1f KiB per monitor\n",
      monitors, std::chrono::duration<double>(Clock::now() - t0).count(), rss_empty, rss_trained,
      monitors, per_monitor, (rss_trained - rss_empty) * 1024 / static_cast<double>(monitors));

  if (fill > 0) {
    const auto t1 = Clock::now();
    Fill(client, pool, (fill + per_monitor - 1) / per_monitor);
    const double rss_full = RssMiB(d.pid);
    std::printf(
        "fill: %zu more histograms per monitor in %.1f s; daemon RSS %.0f MiB = %.1f KiB "
        "per monitor with %zu histograms per monitor sent (windows hold at most window_size, "
        "2000)\n",
        fill, std::chrono::duration<double>(Clock::now() - t1).count(), rss_full,
        (rss_full - rss_empty) * 1024 / static_cast<double>(monitors),
        per_monitor + (fill + per_monitor - 1) / per_monitor * per_monitor);
  }

  if (!only.empty()) {
    RunOnly(only, only_clients, seconds, d, pool);
    StopDaemon(d);
    return 0;
  }

  PrintLimits(d, pool, seconds);
  uint64_t run = 10;  // after the runs of training and filling: the loads are the newest data
  const hb::LoadOptions open = PrintLoadTable(d, pool, seconds, run);
  PrintWhileRetraining(client, specs, pool, open, run, rng);
  std::printf("daemon RSS at the end: %.0f MiB\n", RssMiB(d.pid));
  StopDaemon(d);
  return 0;
}
