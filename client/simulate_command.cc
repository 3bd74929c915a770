// `histguard simulate`: streams detector-like histograms with injected anomalies and scores how
// well the daemon flags them.
#include <atomic>
#include <csignal>
#include <iostream>
#include <map>
#include <mutex>
#include <queue>
#include <random>
#include <thread>

#include "client/client.h"
#include "client/commands.h"
#include "simulation/detector_simulator.h"

namespace histguard::cli {
namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void OnInterrupt(int) { g_interrupted = true; }

struct SimOptions {
  size_t monitors = 8;
  uint32_t bins = 100;
  double rate = 50;
  uint64_t count = 0;
  double entries = 1e4;
  std::string anomaly = "random";
  double anomaly_fraction = 0.05;
  std::string anomaly_monitor;
  uint64_t warmup = 120;
  double severity = 1.0;
  uint64_t run = 1;
  uint64_t first_lumisection = 1;
  uint64_t seed = 1;
  bool unary = false;
  std::string print = "anomalies";
};

struct Sent {
  std::string monitor;
  uint64_t lumisection;
  sim::Anomaly anomaly;
  std::vector<uint32_t> shape;
};

// Tallies verdicts by (injected anomaly or none) x quality.
struct Tally {
  std::map<std::string, std::map<std::string, size_t>> table;
  size_t total = 0;

  void Add(const Sent& s, const v1::Verdict& v) {
    ++table[std::string(sim::Name(s.anomaly))][QualityName(v.quality())];
    ++total;
  }
  void Print(std::ostream& out, double seconds) const {
    out << "scored " << total << " histograms in " << seconds << " s";
    if (seconds > 0) out << " (" << static_cast<long>(total / seconds) << "/s)";
    out << "\n";
    for (const auto& [kind, qualities] : table) {
      size_t n = 0;
      for (const auto& [_, c] : qualities) n += c;
      out << "  " << (kind == "none" ? "normal" : "injected " + kind) << " (" << n << "):";
      for (const auto& [q, c] : qualities) out << " " << c << " " << q;
      out << "\n";
    }
  }
};

class Generator {
 public:
  explicit Generator(const SimOptions& o)
      : o_(o),
        specs_(sim::DefaultMonitors(o.monitors, o.bins)),
        rng_(o.seed),
        pick_(o.seed ^ 0x9e37) {}

  const std::vector<sim::MonitorSpec>& specs() const { return specs_; }

  v1::Histogram Make(size_t monitor, uint64_t index, Sent* sent) {
    const auto& spec = specs_[monitor];
    sim::Anomaly anomaly = sim::Anomaly::kNone;
    if (index >= o_.warmup && o_.anomaly != "none" &&
        (o_.anomaly_monitor.empty() || o_.anomaly_monitor == spec.name) &&
        std::uniform_real_distribution<double>(0, 1)(pick_) < o_.anomaly_fraction) {
      if (o_.anomaly == "random") {
        static constexpr sim::Anomaly kinds[] = {sim::Anomaly::kDeadRegion, sim::Anomaly::kHotBin,
                                                 sim::Anomaly::kShiftedPeak,
                                                 sim::Anomaly::kExtraNoise};
        anomaly = kinds[std::uniform_int_distribution<int>(0, 3)(pick_)];
      } else {
        anomaly = *sim::ParseAnomaly(o_.anomaly);
      }
    }
    const sim::Sample s = sim::Draw(spec, o_.entries, anomaly, o_.severity, rng_);
    v1::Histogram h;
    h.set_monitor(spec.name);
    h.set_run(o_.run);
    h.set_lumisection(o_.first_lumisection + index);
    for (uint32_t d : s.shape) h.add_shape(d);
    h.mutable_contents()->Assign(s.contents.begin(), s.contents.end());
    *sent = Sent{spec.name, h.lumisection(), anomaly, s.shape};
    return h;
  }

 private:
  const SimOptions& o_;
  std::vector<sim::MonitorSpec> specs_;
  std::mt19937_64 rng_;
  std::mt19937_64 pick_;
};

bool ShouldPrint(const SimOptions& o, const Sent& s, const v1::Verdict& v) {
  if (o.print == "all") return true;
  if (o.print == "summary") return false;
  return s.anomaly != sim::Anomaly::kNone || v.quality() == v1::QUALITY_BAD ||
         v.quality() == v1::QUALITY_WARNING || v.quality() == v1::QUALITY_REJECTED;
}

// On a terminal, a status line on stderr (answered so far, rate), redrawn at most every half
// second and cleared before a verdict line is printed; nothing when stderr is not a terminal.
class Progress {
 public:
  Progress() : tty_(StderrIsTerminal()), start_(std::chrono::steady_clock::now()) {}
  void Answered(uint64_t n) {
    if (!tty_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(500)) return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    std::cerr << "\ranswered " << n << " (" << static_cast<long>(secs > 0 ? n / secs : 0)
              << "/s)\033[K" << std::flush;
    shown_ = true;
  }
  void Clear() {
    if (!shown_) return;
    std::cerr << "\r\033[K" << std::flush;
    shown_ = false;
  }

 private:
  const bool tty_;
  const std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_{};
  bool shown_ = false;
};

void PrintVerdict(const Sent& s, const v1::Verdict& v) {
  BinNames bins;
  bins.shape = s.shape;
  std::cout << FormatVerdict(v, bins);
  if (s.anomaly != sim::Anomaly::kNone) std::cout << "   <- injected " << sim::Name(s.anomaly);
  std::cout << std::endl;
}

int RunSimulate(const std::string& address, const SimOptions& o) {
  using Clock = std::chrono::steady_clock;
  if (o.anomaly != "none" && o.anomaly != "random" && !sim::ParseAnomaly(o.anomaly)) {
    std::cerr << "histguard simulate: unknown anomaly '" << o.anomaly << "'\n";
    return 2;
  }
  std::signal(SIGINT, OnInterrupt);
  std::signal(SIGTERM, OnInterrupt);
  Client client(address, ConnectionOptions());
  if (!client.WaitForConnected(std::chrono::seconds(10))) {
    std::cerr << "histguard simulate: cannot connect to " << address << "\n";
    return 3;
  }
  Generator gen(o);
  const size_t m = gen.specs().size();
  const auto start = Clock::now();
  const double interval = o.rate > 0 ? 1.0 / o.rate : 0.0;
  Tally tally;
  Progress progress;
  uint64_t answered = 0;
  auto pace = [&](uint64_t sent_so_far) {
    if (interval <= 0) return;
    std::this_thread::sleep_until(start +
                                  std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(sent_so_far * interval)));
  };
  const bool forever = o.count == 0;

  if (o.unary) {
    uint64_t n = 0;
    for (uint64_t ls = 0; (forever || ls < o.count) && !g_interrupted; ++ls) {
      std::vector<v1::Histogram> batch;
      std::vector<Sent> sent(m);
      for (size_t i = 0; i < m; ++i) batch.push_back(gen.Make(i, ls, &sent[i]));
      pace(n);
      n += m;
      std::vector<v1::Verdict> verdicts;
      const grpc::Status s = client.Submit(batch, &verdicts);
      if (!s.ok()) {
        progress.Clear();
        std::cerr << "histguard simulate: Submit failed: " << s.error_message() << "\n";
        return 3;
      }
      for (size_t i = 0; i < m; ++i) {
        tally.Add(sent[i], verdicts[i]);
        if (ShouldPrint(o, sent[i], verdicts[i])) {
          progress.Clear();
          PrintVerdict(sent[i], verdicts[i]);
        }
      }
      progress.Answered(n);
    }
  } else {
    auto stream = client.OpenStream();
    std::mutex mu;
    std::queue<Sent> in_flight;
    std::thread writer([&] {
      uint64_t n = 0;
      for (uint64_t ls = 0; (forever || ls < o.count) && !g_interrupted; ++ls) {
        for (size_t i = 0; i < m && !g_interrupted; ++i) {
          Sent sent;
          v1::Histogram h = gen.Make(i, ls, &sent);
          pace(n++);
          {
            std::lock_guard lk(mu);
            in_flight.push(sent);
          }
          if (!stream->Write(h)) return;
        }
      }
      stream->WritesDone();
    });
    v1::Verdict v;
    while (stream->Read(&v)) {
      Sent sent;
      {
        std::lock_guard lk(mu);
        sent = in_flight.front();
        in_flight.pop();
      }
      tally.Add(sent, v);
      if (ShouldPrint(o, sent, v)) {
        progress.Clear();
        PrintVerdict(sent, v);
      }
      progress.Answered(++answered);
    }
    progress.Clear();
    writer.join();
    const grpc::Status s = stream->Finish();
    if (!s.ok()) {
      std::cerr << "histguard simulate: stream ended: " << s.error_message() << "\n";
      tally.Print(std::cerr, std::chrono::duration<double>(Clock::now() - start).count());
      return 3;
    }
  }
  progress.Clear();
  tally.Print(std::cout, std::chrono::duration<double>(Clock::now() - start).count());
  return 0;
}

}  // namespace

void AddSimulateCommand(CLI::App& app, const std::string& address, int& exit_code) {
  auto o = std::make_shared<SimOptions>();
  auto* cmd = app.add_subcommand(
      "simulate",
      "Stream simulated detector histograms (spectra, peaks, channel occupancies, timing, 2D "
      "maps) to the daemon, with injected anomalies after a clean warm-up, and print the "
      "verdicts. Ctrl-C stops and prints the summary: per injected anomaly kind, how the daemon "
      "judged it.");
  cmd->add_option("--monitors", o->monitors, "number of monitors")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  cmd->add_option("--bins", o->bins, "bins of 1D histograms (2D maps are 20x20)")
      ->capture_default_str()
      ->check(CLI::Range(2, 1 << 20));
  cmd->add_option("--rate", o->rate, "histograms per second in all (0 = as fast as possible)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--count", o->count, "lumisections per monitor (0 = until Ctrl-C)")
      ->capture_default_str();
  cmd->add_option("--entries", o->entries, "mean entries per histogram")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--anomaly", o->anomaly,
                  "what to inject: none, random (dead_region, hot_bin, shifted_peak, extra_noise), "
                  "or one of dead_region, hot_bin, shifted_peak, broadened_peak, extra_noise, "
                  "missing_feature")
      ->capture_default_str();
  cmd->add_option("--anomaly-fraction", o->anomaly_fraction,
                  "share of histograms after the warm-up that get the anomaly")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--anomaly-monitor", o->anomaly_monitor,
                  "inject only into this monitor (default: any)");
  cmd->add_option("--severity", o->severity, "anomaly strength (1 = clearly visible, 0.3 = subtle)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 5.0));
  cmd->add_option("--warmup", o->warmup,
                  "clean lumisections per monitor before anomalies (lets the models train)")
      ->capture_default_str();
  cmd->add_option("--run", o->run, "run number")->capture_default_str();
  cmd->add_option("--first-lumisection", o->first_lumisection, "number of the first lumisection")
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "random seed")->capture_default_str();
  cmd->add_flag("--unary", o->unary, "one Submit per lumisection instead of a stream");
  cmd->add_option("--print", o->print,
                  "which verdicts to print: all, anomalies (injected or flagged), summary")
      ->capture_default_str()
      ->check(CLI::IsMember({"all", "anomalies", "summary"}));
  cmd->callback([&address, &exit_code, o] { exit_code = RunSimulate(address, *o); });
}

}  // namespace histguard::cli
