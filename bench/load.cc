#include "bench/load.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "client/client.h"
#include "histguard/v1/histguard.grpc.pb.h"
#include "proto/histguard/limits.h"

namespace histguard::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Quantile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(q * v.size()));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

class Pacer {
 public:
  Pacer(double rate, Clock::time_point start)
      : interval_(rate > 0 ? 1.0 / rate : 0), start_(start) {}
  // Waits for slot `n` (open loop); returns at once in closed loop.
  void Wait(uint64_t n) const {
    if (interval_ <= 0) return;
    std::this_thread::sleep_until(start_ + std::chrono::duration_cast<Clock::duration>(
                                               std::chrono::duration<double>(n * interval_)));
  }

 private:
  double interval_;
  Clock::time_point start_;
};

}  // namespace

SyncResult MeasureSyncs(const std::string& dir, double seconds) {
  SyncResult r;
  const std::string path = dir + "/sync-probe";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (fd < 0) return r;
  const std::string record(300, 'x');
  std::vector<double> t;
  const auto stop = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(seconds));
  while (Clock::now() < stop) {
    if (::write(fd, record.data(), record.size()) != static_cast<ssize_t>(record.size())) break;
    const auto start = Clock::now();
    if (::fdatasync(fd) != 0) break;
    t.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  ::close(fd);
  ::unlink(path.c_str());
  r.syncs = t.size();
  if (t.empty()) return r;
  r.longest = *std::max_element(t.begin(), t.end());
  r.p50 = Quantile(t, 0.5);
  r.p99 = Quantile(t, 0.99);
  r.p999 = Quantile(t, 0.999);
  return r;
}

LoadResult RunLoad(const LoadOptions& o, const std::vector<v1::Histogram>& pool) {
  Client client(o.address);
  client.WaitForConnected(std::chrono::seconds(10));
  const int workers = o.streams + o.unary_clients;
  const auto start = Clock::now();
  const auto stop_at =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  std::atomic<uint64_t> total{0}, errors{0};
  std::mutex lat_mu;
  std::vector<double> latencies;
  std::vector<std::thread> threads;
  // Each worker takes a share of the rate and a disjoint lumisection range.
  const double worker_rate = o.rate > 0 ? o.rate / std::max(workers, 1) : 0;

  for (int s = 0; s < o.streams; ++s) {
    threads.emplace_back([&, s] {
      auto stream = client.OpenStream();
      std::mutex mu;
      std::condition_variable cv;
      std::deque<Clock::time_point> sent;
      std::vector<double> lat;
      std::thread reader([&] {
        v1::Verdict v;
        while (stream->Read(&v)) {
          Clock::time_point t0;
          {
            std::lock_guard lk(mu);
            t0 = sent.front();
            sent.pop_front();
          }
          cv.notify_one();
          lat.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
        }
      });
      Pacer pacer(worker_rate, start);
      v1::Histogram h;
      uint64_t n = 0;
      while (Clock::now() < stop_at) {
        h = pool[(n * 7 + s) % pool.size()];
        h.set_run(o.run);
        h.set_lumisection(1000000ull * (s + 1) + n);
        pacer.Wait(n);
        {
          std::unique_lock lk(mu);
          if (worker_rate <= 0)
            cv.wait(lk, [&] { return sent.size() < static_cast<size_t>(o.in_flight); });
          sent.push_back(Clock::now());
        }
        if (!stream->Write(h)) break;
        ++n;
      }
      stream->WritesDone();
      reader.join();
      if (!stream->Finish().ok()) ++errors;
      total += lat.size();
      std::lock_guard lk(lat_mu);
      latencies.insert(latencies.end(), lat.begin(), lat.end());
    });
  }
  for (int u = 0; u < o.unary_clients; ++u) {
    threads.emplace_back([&, u] {
      std::vector<v1::Histogram> batch(o.batch);
      std::vector<v1::Verdict> verdicts;
      std::vector<double> lat;
      Pacer pacer(worker_rate / o.batch, start);
      uint64_t n = 0, calls = 0;
      while (Clock::now() < stop_at) {
        for (int i = 0; i < o.batch; ++i) {
          batch[i] = pool[(n * 13 + u + i) % pool.size()];
          batch[i].set_run(o.run);
          batch[i].set_lumisection(500000000ull + 1000000ull * u + n + i);
        }
        pacer.Wait(calls++);
        const auto t0 = Clock::now();
        const auto status = client.Submit(batch, &verdicts, std::chrono::seconds(30));
        const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
        if (!status.ok()) {
          ++errors;
          continue;
        }
        n += o.batch;
        lat.push_back(dt);
      }
      total += n;
      std::lock_guard lk(lat_mu);
      latencies.insert(latencies.end(), lat.begin(), lat.end());
    });
  }
  for (auto& t : threads) t.join();
  LoadResult r;
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  r.histograms = total;
  r.errors = errors;
  r.p50 = Quantile(latencies, 0.5);
  r.p99 = Quantile(latencies, 0.99);
  r.p999 = Quantile(latencies, 0.999);
  return r;
}

namespace {

class NoopIngest final : public v1::Ingest::CallbackService {
  grpc::ServerUnaryReactor* Submit(grpc::CallbackServerContext* ctx, const v1::SubmitRequest* req,
                                   v1::SubmitResponse* resp) override {
    for (const auto& h : req->histograms()) {
      auto* v = resp->add_verdicts();
      v->set_monitor(h.monitor());
      v->set_run(h.run());
      v->set_lumisection(h.lumisection());
    }
    auto* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }

  class Echo final : public grpc::ServerBidiReactor<v1::Histogram, v1::Verdict> {
   public:
    Echo() { StartRead(&in_); }
    void OnReadDone(bool ok) override {
      if (!ok) return Finish(grpc::Status::OK);
      out_.Clear();
      out_.set_monitor(in_.monitor());
      out_.set_run(in_.run());
      out_.set_lumisection(in_.lumisection());
      StartWrite(&out_);
    }
    void OnWriteDone(bool ok) override {
      if (!ok) return Finish(grpc::Status::CANCELLED);
      StartRead(&in_);
    }
    void OnDone() override { delete this; }

   private:
    v1::Histogram in_;
    v1::Verdict out_;
  };

  grpc::ServerBidiReactor<v1::Histogram, v1::Verdict>* Stream(
      grpc::CallbackServerContext*) override {
    return new Echo();
  }
};

}  // namespace

struct NoopServer::Impl {
  NoopIngest service;
  std::unique_ptr<grpc::Server> server;
};

NoopServer::NoopServer() : impl_(std::make_unique<Impl>()) {
  grpc::ServerBuilder b;
  int port = 0;
  b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  b.SetMaxReceiveMessageSize(histguard::kMaxMessageBytes);
  b.RegisterService(&impl_->service);
  impl_->server = b.BuildAndStart();
  address_ = "127.0.0.1:" + std::to_string(port);
}

NoopServer::~NoopServer() { impl_->server->Shutdown(); }

void StopDaemon(const Daemon& d) {
  kill(d.pid, SIGTERM);
  int status = 0;
  waitpid(d.pid, &status, 0);
  std::filesystem::remove_all(d.data_dir);
}

Daemon StartDaemon(const std::string& path, const std::vector<std::string>& extra) {
  Daemon d;
  char tmpl[] = "/tmp/histguard-bench-XXXXXX";
  d.data_dir = mkdtemp(tmpl);
  int out[2];
  if (pipe(out) != 0) return d;
  std::vector<std::string> args = {path,          "--listen",   "127.0.0.1:0", "--metrics-listen",
                                   "127.0.0.1:0", "--data-dir", d.data_dir};
  args.insert(args.end(), extra.begin(), extra.end());
  d.pid = fork();
  if (d.pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  std::string line;
  char c;
  while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
  const auto k = line.find("\"grpc\":\"");
  if (k != std::string::npos) {
    const auto e = line.find('"', k + 8);
    const std::string a = line.substr(k + 8, e - k - 8);
    d.grpc = "127.0.0.1:" + a.substr(a.rfind(':') + 1);
  }
  return d;
}

double RssMiB(pid_t pid, const char* field) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  double kb = 0;
  while (f >> key) {
    if (key == field) {
      f >> kb;
      break;
    }
  }
  return kb / 1024.0;
}

}  // namespace histguard::bench
