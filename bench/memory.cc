// histguard_memory: the daemon's memory under the loads that once grew without bound, against
// memory_budget_bytes (in the same run: the RSS of the idle daemon is the baseline).
//
//   1. a 170 x 360 map (61,200 bins) trains its first model: RSS after it, and the peak;
//   2. 24 streams of 65,536-bin histograms, closed loop, while the map retrains: the peak RSS,
//      sampled every 50 ms, and what the streams carried.
//
//   histguard_memory --daemon build/server/histguardd [--streams 24] [--seconds 20]
#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <thread>

#include "bench/load.h"
#include "client/client.h"

namespace hb = histguard::bench;
namespace hv = histguard::v1;
using namespace std::chrono_literals;

namespace {

// Poisson counts around a smooth pattern over `shape`, `entries` in all.
hv::Histogram Smooth(const std::string& monitor, std::vector<uint32_t> shape, double entries,
                     uint64_t ls, std::mt19937_64& rng) {
  hv::Histogram h;
  h.set_monitor(monitor);
  h.set_run(1);
  h.set_lumisection(ls);
  size_t n = 1;
  for (uint32_t d : shape) {
    h.add_shape(d);
    n *= d;
  }
  std::vector<double> mu(n);
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += mu[i] = 1.5 + std::sin(0.001 * i) + std::cos(0.037 * i);
  for (size_t i = 0; i < n; ++i)
    h.add_contents(
        static_cast<double>(std::poisson_distribution<long>(entries * mu[i] / sum)(rng)));
  return h;
}

uint64_t ActiveVersion(histguard::Client& client, const std::string& monitor) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  hv::GetMonitorRequest req;
  req.set_monitor(monitor);
  hv::MonitorInfo info;
  return client.control().GetMonitor(&ctx, req, &info).ok() ? info.active_version() : 0;
}

// The largest RSS seen while it runs, sampled every 50 ms.
class PeakSampler {
 public:
  explicit PeakSampler(pid_t pid)
      : thread_([this, pid] {
          while (!stop_) {
            peak_ = std::max(peak_.load(), hb::RssMiB(pid));
            std::this_thread::sleep_for(50ms);
          }
        }) {}
  double Stop() {
    stop_ = true;
    thread_.join();
    return peak_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<double> peak_{0};
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Measures the daemon's memory against memory_budget_bytes."};
  std::string daemon_path;
  int streams = 24;
  double seconds = 20;
  uint32_t bins = 65536;
  int map_samples = 300;
  std::vector<std::string> daemon_args;
  bool streams_only = false;
  app.add_option("--daemon", daemon_path, "path of histguardd")->required();
  app.add_flag("--streams-only", streams_only,
               "no map and no training: what the streams alone take");
  app.add_option("--streams", streams, "streams of large histograms")->capture_default_str();
  app.add_option("--bins", bins, "bins of the streamed histograms")->capture_default_str();
  app.add_option("--seconds", seconds, "how long the streams run")->capture_default_str();
  app.add_option("--map-samples", map_samples, "histograms the 170x360 map trains on first")
      ->capture_default_str();
  app.add_option("--daemon-arg", daemon_args, "extra flag for histguardd (repeatable)");
  CLI11_PARSE(app, argc, argv);

  std::vector<std::string> args = {"--min-train-samples", std::to_string(map_samples),
                                   "--retraining", "false"};
  if (streams_only)  // no monitor collects enough to train
    args = {"--min-train-samples", "1000000", "--window-size", "1000000", "--history", "1000000"};
  args.insert(args.end(), daemon_args.begin(), daemon_args.end());
  const hb::Daemon d = hb::StartDaemon(daemon_path, args);
  if (d.grpc.empty()) {
    std::fprintf(stderr, "histguard_memory: the daemon did not start\n");
    return 1;
  }
  histguard::Client client(d.grpc);
  client.WaitForConnected(30s);
  std::this_thread::sleep_for(500ms);
  const double rss_idle = hb::RssMiB(d.pid);
  std::printf("idle daemon: RSS %.0f MiB\n", rss_idle);

  // 1. The map's first training.
  std::mt19937_64 rng(1);
  const std::string map = "calo/map/occupancy";
  uint64_t ls = 0;
  const auto t0 = std::chrono::steady_clock::now();
  while (!streams_only && ls < static_cast<uint64_t>(map_samples)) {
    std::vector<hv::Histogram> batch;
    for (int i = 0; i < 10; ++i) batch.push_back(Smooth(map, {170, 360}, 1e6, ++ls, rng));
    std::vector<hv::Verdict> out;
    if (!client.Submit(batch, &out).ok()) std::this_thread::sleep_for(100ms);
  }
  PeakSampler first(d.pid);
  while (!streams_only && ActiveVersion(client, map) == 0 &&
         std::chrono::steady_clock::now() - t0 < 600s)
    std::this_thread::sleep_for(200ms);
  const double first_peak = first.Stop();
  std::this_thread::sleep_for(1s);
  const double rss_after_training = hb::RssMiB(d.pid);
  std::printf(
      "170x360 map, first model on %d histograms: peak RSS %.0f MiB, after %.0f MiB "
      "(%.0f MiB above idle)\n",
      map_samples, first_peak, rss_after_training, rss_after_training - rss_idle);

  // 2. Streams of large histograms while the map retrains.
  std::vector<hv::Histogram> pool;
  for (int s = 0; s < streams; ++s)
    pool.push_back(Smooth("big/stream" + std::to_string(s), {bins}, 1e6, 1, rng));
  PeakSampler load_peak(d.pid);
  std::thread retrain([&] {
    if (streams_only) return;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 600s);
    hv::RetrainRequest req;
    req.set_monitor(map);
    hv::RetrainResponse resp;
    client.control().Retrain(&ctx, req, &resp);
  });
  hb::LoadOptions lo;
  lo.address = d.grpc;
  lo.streams = streams;
  lo.seconds = seconds;
  lo.run = 2;
  const hb::LoadResult r = hb::RunLoad(lo, pool);
  retrain.join();
  const double peak = load_peak.Stop();
  std::printf(
      "%d streams of %u-bin histograms for %.0f s with a retraining: %llu histograms "
      "(%.0f/s, %.0f MiB/s), %llu errors; peak RSS %.0f MiB (%.0f MiB above idle)\n",
      streams, bins, r.seconds, static_cast<unsigned long long>(r.histograms), r.rate(),
      r.rate() * bins * 8 / (1 << 20), static_cast<unsigned long long>(r.errors), peak,
      peak - rss_idle);
  std::printf("daemon's high-water mark (VmHWM): %.0f MiB; RSS at the end %.0f MiB\n",
              hb::RssMiB(d.pid, "VmHWM:"), hb::RssMiB(d.pid));
  hb::StopDaemon(d);
  return 0;
}
