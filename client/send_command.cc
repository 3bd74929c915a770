#include <chrono>
#include <iostream>
#include <map>

#include "client/client.h"
#include "client/commands.h"

namespace histguard::cli {
namespace {

struct SendOptions {
  std::vector<std::string> files;
  std::string monitor;
  uint64_t run = 0;
  uint64_t lumisection = 0;
  bool run_set = false, lumisection_set = false;
  size_t batch = 100;
  bool quiet = false;
};

int RunSend(const std::string& address, const SendOptions& o) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const bool tty = StderrIsTerminal();
  size_t failed_files = 0, sent = 0;
  std::map<std::string, size_t> by_quality;
  std::vector<v1::Histogram> batch;
  std::vector<std::string> batch_files;
  std::vector<BinNames> batch_bins;
  Client client(address, ConnectionOptions());

  auto progress = [&](bool final) {
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    const double rate = secs > 0 ? sent / secs : 0;
    if (tty && !final) {
      std::cerr << "\rsent " << sent << "/" << o.files.size() << " (" << static_cast<long>(rate)
                << "/s)" << std::flush;
    }
  };
  auto flush = [&]() -> bool {
    if (batch.empty()) return true;
    std::vector<v1::Verdict> verdicts;
    const grpc::Status s = client.Submit(batch, &verdicts);
    if (!s.ok()) {
      if (tty) std::cerr << "\n";
      std::cerr << "histguard send: the daemon at " << address
                << " refused or failed the call: " << s.error_message() << " (code "
                << s.error_code() << ")\n";
      return false;
    }
    for (size_t i = 0; i < verdicts.size(); ++i) {
      ++by_quality[QualityName(verdicts[i].quality())];
      if (!o.quiet) {
        if (tty) std::cerr << "\r\033[K";
        std::cout << batch_files[i] << ": " << FormatVerdict(verdicts[i], batch_bins[i]) << "\n";
      }
    }
    sent += verdicts.size();
    batch.clear();
    batch_files.clear();
    batch_bins.clear();
    progress(false);
    return true;
  };

  std::map<std::string, uint64_t> next_ls;  // per monitor, for files that give none
  size_t no_run = 0, no_lumisection = 0;    // files that give none, with no flag for it
  for (const auto& path : o.files) {
    auto parsed = client::ReadHistogramFile(path);
    if (auto* err = std::get_if<std::string>(&parsed)) {
      if (tty) std::cerr << "\r\033[K";
      std::cerr << "histguard send: " << *err << "\n";
      ++failed_files;
      continue;
    }
    auto& f = std::get<client::HistogramFile>(parsed);
    if (!o.monitor.empty()) f.monitor = o.monitor;
    if (f.monitor.empty()) f.monitor = f.object_name;
    if (f.monitor.empty()) {
      std::cerr << "histguard send: " << path << ": the file names no monitor: give --monitor\n";
      ++failed_files;
      continue;
    }
    if (!f.has_run && !o.run_set) ++no_run;
    if (!f.has_lumisection && !o.lumisection_set) ++no_lumisection;
    if (o.run_set || !f.has_run) f.run = o.run;
    if (o.lumisection_set || !f.has_lumisection) {
      auto [it, inserted] = next_ls.try_emplace(f.monitor, o.lumisection);
      f.lumisection = it->second++;
    }
    batch.push_back(ToProto(f));
    batch_files.push_back(path);
    batch_bins.push_back(BinNames::Of(f));
    if (batch.size() >= o.batch && !flush()) return 3;
  }
  if (!flush()) return 3;
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  if (tty) std::cerr << "\r\033[K";
  std::cerr << "sent " << sent << " of " << o.files.size() << " files in " << secs << " s";
  if (secs > 0) std::cerr << " (" << static_cast<long>(sent / secs) << "/s)";
  std::cerr << ":";
  for (const auto& [q, n] : by_quality) std::cerr << " " << n << " " << q;
  if (failed_files) std::cerr << "; " << failed_files << " files failed";
  std::cerr << "\n";
  // ROOT files carry no run or lumisection: sent as run 0, a later send of other files would
  // replace these histograms (a repeated monitor, run and lumisection is the same histogram).
  if (no_run > 0)
    std::cerr << "histguard send: warning: " << no_run
              << (no_run == 1 ? " file gives" : " files give")
              << " no run number and no --run was given: sent as run " << o.run
              << "; give --run (and --lumisection) so that they are stored as what they are\n";
  if (no_lumisection > 0 && !(no_run > 0 && no_lumisection == no_run))
    std::cerr << "histguard send: warning: " << no_lumisection
              << (no_lumisection == 1 ? " file gives" : " files give")
              << " no lumisection and no --lumisection was given: numbered from " << o.lumisection
              << " per monitor\n";
  return (failed_files > 0 || by_quality.count("REJECTED")) ? 1 : 0;
}

}  // namespace

void AddSendCommand(CLI::App& app, const std::string& address, int& exit_code) {
  auto o = std::make_shared<SendOptions>();
  auto* cmd = app.add_subcommand(
      "send",
      "Send histogram files and print each verdict. Files are ROOT TH1*/TH2* objects as written "
      "by TBufferJSON::ToJSON or JSROOT, or plain JSON {monitor, run, lumisection, shape, "
      "contents}. A missing or malformed file is reported by name and skipped; the others are "
      "still sent; the exit code is 1 if any file failed or was rejected. ROOT files carry no "
      "run or lumisection: give --run and --lumisection. Bins are named as ROOT numbers them "
      "(from 1; (ix,iy) in 2D), with their axis ranges.");
  // Not CLI::ExistingFile: a missing file is reported and skipped like a malformed one.
  cmd->add_option("files", o->files, "histogram files")->required();
  cmd->add_option("-m,--monitor", o->monitor,
                  "monitor name for every file (default: the file's, or the ROOT object's name)");
  cmd->add_option("--run", o->run, "run number for files that give none")
      ->each([o](const std::string&) { o->run_set = true; });
  cmd->add_option("--lumisection", o->lumisection,
                  "first lumisection for files that give none (counts up per monitor)")
      ->each([o](const std::string&) { o->lumisection_set = true; });
  cmd->add_option("--batch", o->batch, "histograms per Submit call")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  cmd->add_flag("-q,--quiet", o->quiet, "print only the summary");
  cmd->callback([&address, &exit_code, o] { exit_code = RunSend(address, *o); });
}

}  // namespace histguard::cli
