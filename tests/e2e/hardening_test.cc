// End to end: inputs and faults that once took the daemon down or lost data in silence, each
// against the real histguardd binary.
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "client/client.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/e2e/daemon_process.h"

namespace histguard::testing {
namespace {

using namespace std::chrono_literals;

// A peak on a flat floor, `entries` Poisson-drawn over `bins` bins.
v1::Histogram Peak(const std::string& monitor, uint64_t ls, uint32_t bins, double entries,
                   std::mt19937_64& rng) {
  v1::Histogram h;
  h.set_monitor(monitor);
  h.set_run(1);
  h.set_lumisection(ls);
  h.add_shape(bins);
  std::vector<double> shape(bins);
  double sum = 0;
  for (uint32_t i = 0; i < bins; ++i)
    sum += shape[i] = 0.3 + std::exp(-0.5 * std::pow((i - bins * 0.4) / (bins * 0.08), 2));
  for (uint32_t i = 0; i < bins; ++i)
    h.add_contents(
        static_cast<double>(std::poisson_distribution<long>(entries * shape[i] / sum)(rng)));
  return h;
}

std::vector<v1::Verdict> Submit(Client& client, const std::vector<v1::Histogram>& hs) {
  std::vector<v1::Verdict> out;
  const auto s = client.Submit(hs, &out);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return out;
}

uint64_t ActiveVersion(Client& client, const std::string& monitor) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  v1::GetMonitorRequest req;
  req.set_monitor(monitor);
  v1::MonitorInfo info;
  return client.control().GetMonitor(&ctx, req, &info).ok() ? info.active_version() : 0;
}

// Sends normal histograms of `monitor` until its model reaches `version` (bounded).
bool TrainUntil(Client& client, const std::string& monitor, uint32_t bins, uint64_t version,
                uint64_t& ls, std::mt19937_64& rng) {
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (ActiveVersion(client, monitor) < version) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::vector<v1::Histogram> hs;
    for (int i = 0; i < 10; ++i) hs.push_back(Peak(monitor, ++ls, bins, 2e4, rng));
    Submit(client, hs);
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

double MetricValue(const std::string& metrics_address, const std::string& series) {
  int status = 0;
  const std::string body = HttpGet(metrics_address, "/metrics", &status);
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  return std::nan("");
}

// A source re-sending the running mean: thousands of filled bins with a chi2 near 0 took the
// daemon down (Boost.Math threw from the learning-phase chi2).
TEST(Hardening, StaleHistogramsOfThousandsOfBinsAreAnsweredWhileLearning) {
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.started()) << daemon.error();
  Client client(daemon.grpc_address());
  ASSERT_TRUE(client.WaitForConnected(30s));
  v1::Histogram h;
  h.set_monitor("hcal/stale/occupancy");
  h.add_shape(5000);
  for (int i = 0; i < 5000; ++i) h.add_contents(20 + i % 7);
  std::vector<v1::Histogram> hs;
  for (uint64_t ls = 1; ls <= 40; ++ls) {
    h.set_lumisection(ls);
    hs.push_back(h);
  }
  const auto verdicts = Submit(client, hs);
  ASSERT_EQ(verdicts.size(), hs.size());
  for (size_t i = 10; i < verdicts.size(); ++i) {
    EXPECT_EQ(verdicts[i].quality(), v1::QUALITY_LEARNING) << i << " " << verdicts[i].detail();
    EXPECT_DOUBLE_EQ(verdicts[i].p_value(), 1.0) << i;  // the same shape as the mean
  }
  EXPECT_EQ(client.CheckHealth(10s), Client::Health::kServing);
}

// A Submit batch on a new monitor used to start its first training before the batch was
// stored: one failed training per new monitor.
TEST(Hardening, NewMonitorsFedInBatchesTrainWithoutAFailedAttempt) {
  DaemonProcess daemon({"--min-train-samples", "40"});
  ASSERT_TRUE(daemon.started()) << daemon.error();
  Client client(daemon.grpc_address());
  ASSERT_TRUE(client.WaitForConnected(30s));
  std::mt19937_64 rng(5);
  for (const char* name : {"a/one", "b/two", "c/three"}) {
    std::vector<v1::Histogram> hs;
    for (uint64_t ls = 1; ls <= 60; ++ls) hs.push_back(Peak(name, ls, 40, 1e4, rng));
    ASSERT_EQ(Submit(client, hs).size(), hs.size());
  }
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (MetricValue(daemon.metrics_address(),
                     "histguard_training_runs_total{result=\"accepted\"}") < 3 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(100ms);
  EXPECT_EQ(
      MetricValue(daemon.metrics_address(), "histguard_training_runs_total{result=\"accepted\"}"),
      3);
  EXPECT_EQ(
      MetricValue(daemon.metrics_address(), "histguard_training_runs_total{result=\"failed\"}"), 0);
}

// Names the validator accepts but that encode to more than 255 bytes never saved a model.
TEST(Hardening, TheLongestValidNamesSaveTheirModels) {
  DaemonProcess daemon({"--min-train-samples", "30"});
  ASSERT_TRUE(daemon.started()) << daemon.error();
  Client client(daemon.grpc_address());
  ASSERT_TRUE(client.WaitForConnected(30s));
  std::mt19937_64 rng(6);
  std::string slashes;
  for (int i = 0; i < 128; ++i) slashes += "x/";
  for (const std::string& name : {std::string(256, 'n'), slashes}) {
    uint64_t ls = 0;
    ASSERT_TRUE(TrainUntil(client, name, 30, 1, ls, rng)) << name;
  }
  const DaemonProcess* d = &daemon;
  size_t files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(d->data_dir() + "/models"))
    files += e.path().extension() == ".model";
  EXPECT_EQ(files, 2u);
}

// A second daemon on the same port used to share its traffic (gRPC's SO_REUSEPORT).
TEST(Hardening, ASecondDaemonOnAPortInUseRefusesToStart) {
  DaemonProcess first;
  ASSERT_TRUE(first.started()) << first.error();
  char tmpl[] = "/tmp/histguard-second-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  std::string output;
  const int code = RunCommand("timeout 60 " HISTGUARDD_PATH " --listen " + first.grpc_address() +
                                  " --metrics-listen 127.0.0.1:0 --data-dir " + dir,
                              &output);
  std::filesystem::remove_all(dir);
  EXPECT_EQ(code, 1) << output;
  EXPECT_NE(output.find("cannot listen for gRPC on " + first.grpc_address()), std::string::npos)
      << output;
}

// Raw bytes on Ingest/Stream: three histograms, a message that is no Histogram, two more.
TEST(Hardening, AMalformedMessageEndsTheStreamWithAnErrorAfterAnsweringWhatCameBefore) {
  DaemonProcess daemon;
  ASSERT_TRUE(daemon.started()) << daemon.error();
  Client client(daemon.grpc_address());
  ASSERT_TRUE(client.WaitForConnected(30s));
  std::mt19937_64 rng(7);
  std::vector<grpc::ByteBuffer> messages;
  auto add = [&](const std::string& bytes) {
    grpc::Slice slice(bytes);
    messages.emplace_back(&slice, 1);
  };
  for (uint64_t ls = 1; ls <= 3; ++ls)
    add(Peak("mid/stream", ls, 20, 1e3, rng).SerializeAsString());
  add("\xff\xff\xff\xff\x0f");
  for (uint64_t ls = 5; ls <= 6; ++ls)
    add(Peak("mid/stream", ls, 20, 1e3, rng).SerializeAsString());

  grpc::GenericStub stub(client.channel());
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 60s);
  auto call = stub.PrepareCall(&ctx, "/histguard.v1.Ingest/Stream", &cq);
  auto wait = [&] {
    void* tag;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&tag, &ok));
    return ok;
  };
  call->StartCall(nullptr);
  ASSERT_TRUE(wait());
  for (const auto& m : messages) {
    call->Write(m, nullptr);
    if (!wait()) break;  // the server may end the call before all are written
  }
  call->WritesDone(nullptr);
  wait();
  std::vector<v1::Verdict> verdicts;
  for (;;) {
    grpc::ByteBuffer bb;
    call->Read(&bb, nullptr);
    if (!wait()) break;
    v1::Verdict v;
    ASSERT_TRUE(grpc::SerializationTraits<v1::Verdict>::Deserialize(&bb, &v).ok());
    verdicts.push_back(v);
  }
  grpc::Status status;
  call->Finish(&status, nullptr);
  wait();
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }

  ASSERT_EQ(verdicts.size(), 3u);
  for (uint64_t i = 0; i < 3; ++i) EXPECT_EQ(verdicts[i].lumisection(), i + 1);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("message 4 of this stream is not a histguard.v1.Histogram"),
            std::string::npos)
      << status.error_message();
  // What came before is stored; nothing after the bad message was taken.
  for (uint64_t ls : {3, 5}) {
    grpc::ClientContext ictx;
    ictx.set_deadline(std::chrono::system_clock::now() + 10s);
    v1::InspectRequest req;
    req.set_monitor("mid/stream");
    req.set_run(1);
    req.set_lumisection(ls);
    v1::Inspection ins;
    const auto s = client.control().Inspect(&ictx, req, &ins);
    EXPECT_EQ(s.error_code(), ls == 3 ? grpc::StatusCode::OK : grpc::StatusCode::NOT_FOUND) << ls;
  }
  EXPECT_EQ(MetricValue(daemon.metrics_address(),
                        "histguard_histograms_rejected_total{reason=\"malformed_message\"}"),
            1);
}

// SIGTERM with a stream open: reading stops, what was read is answered, the stream ends with
// UNAVAILABLE saying so (not cut at the drain's deadline), and the daemon exits 0.
TEST(Hardening, SigtermEndsOpenStreamsWithTheirHistogramsAnswered) {
  DaemonProcess daemon({"--drain-timeout-seconds", "30"});
  ASSERT_TRUE(daemon.started()) << daemon.error();
  Client client(daemon.grpc_address());
  ASSERT_TRUE(client.WaitForConnected(30s));
  std::mt19937_64 rng(8);
  auto stream = client.OpenStream();
  for (uint64_t ls = 1; ls <= 10; ++ls)
    ASSERT_TRUE(stream->Write(Peak("drain/me", ls, 20, 1e3, rng)));
  v1::Verdict v;
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(stream->Read(&v)) << i;
  // The stream stays open, its next read waiting, while the daemon is told to stop.
  std::thread stop([&] { EXPECT_EQ(daemon.Stop(SIGTERM), 0); });
  EXPECT_FALSE(stream->Read(&v));
  const grpc::Status status = stream->Finish();
  stop.join();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_NE(status.error_message().find("10 histograms of this stream were answered"),
            std::string::npos)
      << status.error_message();
}

// Model files swapped or damaged on disk: the monitor falls back to its newest good version (or
// learns again), the refusal is counted, and the daemon keeps answering across restarts.
TEST(Hardening, DamagedOrForeignModelFilesAreRefusedAndTheMonitorFallsBack) {
  char tmpl[] = "/tmp/histguard-models-e2e-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  std::mt19937_64 rng(9);
  uint64_t ls_a = 0, ls_b = 0;
  const std::vector<std::string> args = {"--min-train-samples", "30", "--retraining", "false"};
  {
    DaemonProcess daemon(args, dir);
    ASSERT_TRUE(daemon.started()) << daemon.error();
    Client client(daemon.grpc_address());
    ASSERT_TRUE(client.WaitForConnected(30s));
    ASSERT_TRUE(TrainUntil(client, "det/a", 50, 1, ls_a, rng));
    ASSERT_TRUE(TrainUntil(client, "det/b", 80, 1, ls_b, rng));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 120s);
    v1::RetrainRequest req;
    req.set_monitor("det/a");
    v1::RetrainResponse resp;
    ASSERT_TRUE(client.control().Retrain(&ctx, req, &resp).ok());
    ASSERT_TRUE(resp.accepted()) << resp.reason();
    ASSERT_EQ(resp.version(), 2u);
    EXPECT_EQ(daemon.Stop(SIGTERM), 0);
  }
  const std::string models = dir + "/models/";
  // a's active v2 gets b's model (another binning); b's only model gets a flipped byte.
  std::filesystem::copy_file(models + "det%2Fb/v1.model", models + "det%2Fa/v2.model",
                             std::filesystem::copy_options::overwrite_existing);
  {
    std::fstream f(models + "det%2Fb/v1.model", std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(0, std::ios::end);
    const auto size = static_cast<long>(f.tellg());
    f.seekg(size - 40);
    char c;
    f.read(&c, 1);
    c ^= 0x04;
    f.seekp(size - 40);
    f.write(&c, 1);
  }
  for (int restart = 0; restart < 2; ++restart) {
    DaemonProcess daemon(args, dir);
    ASSERT_TRUE(daemon.started()) << daemon.error();
    Client client(daemon.grpc_address());
    ASSERT_TRUE(client.WaitForConnected(30s));
    // The first restart records det/a's fallback to v1, so the second tries only b's file.
    EXPECT_EQ(MetricValue(daemon.metrics_address(), "histguard_model_load_failures_total"),
              restart == 0 ? 2 : 1);
    EXPECT_EQ(ActiveVersion(client, "det/a"), 1u);
    EXPECT_EQ(ActiveVersion(client, "det/b"), 0u);
    const auto va = Submit(client, {Peak("det/a", ++ls_a, 50, 2e4, rng)});
    const auto vb = Submit(client, {Peak("det/b", ++ls_b, 80, 2e4, rng)});
    ASSERT_EQ(va.size(), 1u);
    ASSERT_EQ(vb.size(), 1u);
    EXPECT_EQ(va[0].model_version(), 1u);
    EXPECT_EQ(va[0].quality(), v1::QUALITY_GOOD) << va[0].detail();
    EXPECT_EQ(vb[0].quality(), v1::QUALITY_LEARNING) << vb[0].detail();
    EXPECT_EQ(daemon.Stop(SIGTERM), 0);
  }
  std::filesystem::remove_all(dir);
}

grpc::health::v1::HealthCheckResponse::ServingStatus IngestHealth(Client& client) {
  auto stub = grpc::health::v1::Health::NewStub(client.channel());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  grpc::health::v1::HealthCheckRequest req;
  req.set_service("histguard.v1.Ingest");
  grpc::health::v1::HealthCheckResponse resp;
  if (!stub->Check(&ctx, req, &resp).ok()) return grpc::health::v1::HealthCheckResponse::UNKNOWN;
  return resp.status();
}

grpc::Status Inspect(Client& client, const std::string& monitor, uint64_t ls) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  v1::InspectRequest req;
  req.set_monitor(monitor);
  req.set_run(1);
  req.set_lumisection(ls);
  v1::Inspection ins;
  return client.control().Inspect(&ctx, req, &ins);
}

// A small tmpfs mounted for the test's data directory (needs root), unmounted afterwards.
class SmallDisk {
 public:
  SmallDisk() {
    char tmpl[] = "/tmp/histguard-disk-XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::string out;
    mounted_ = RunCommand("mount -t tmpfs -o size=32m tmpfs " + dir_, &out) == 0;
  }
  ~SmallDisk() {
    std::string out;
    if (mounted_) RunCommand("umount " + dir_, &out);
    std::filesystem::remove_all(dir_);
  }
  bool mounted() const { return mounted_; }
  const std::string& dir() const { return dir_; }
  void Fill() {
    std::string out;
    RunCommand("dd if=/dev/zero of=" + dir_ + "/filler bs=1M count=64", &out);
  }
  void Free() { std::filesystem::remove(dir_ + "/filler"); }

 private:
  std::string dir_;
  bool mounted_ = false;
};

// A full data disk used to abort the daemon (a RocksDB assertion on the first failing write) and
// again at every restart. Now: histograms are refused with UNAVAILABLE, reads go on, the Ingest
// service reports NOT_SERVING, the daemon stops and starts cleanly on the full disk, and it takes
// histograms again by itself once there is room.
TEST(Hardening, AFullDataDiskRefusesHistogramsKeepsReadsAndRecovers) {
  SmallDisk disk;
  if (!disk.mounted()) GTEST_SKIP() << "mounting a small tmpfs needs root";
  const std::string data = disk.dir() + "/data";
  const std::vector<std::string> args = {"--disk-reserve-bytes", "4000000"};
  std::mt19937_64 rng(10);
  uint64_t ls = 0;
  auto submit = [&](Client& client, grpc::Status* status) {
    std::vector<v1::Histogram> hs;
    for (int i = 0; i < 5; ++i) hs.push_back(Peak("disk/full", ++ls, 100, 1e4, rng));
    std::vector<v1::Verdict> out;
    *status = client.Submit(hs, &out);
    return out;
  };
  grpc::Status status;
  {
    DaemonProcess daemon(args, data);
    ASSERT_TRUE(daemon.started()) << daemon.error();
    Client client(daemon.grpc_address());
    ASSERT_TRUE(client.WaitForConnected(30s));
    ASSERT_EQ(submit(client, &status).size(), 5u) << status.error_message();
    disk.Fill();
    submit(client, &status);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_NE(status.error_message().find("data disk full"), std::string::npos)
        << status.error_message();
    EXPECT_TRUE(Inspect(client, "disk/full", 3).ok());
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (IngestHealth(client) != grpc::health::v1::HealthCheckResponse::NOT_SERVING &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(100ms);
    EXPECT_EQ(IngestHealth(client), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
    EXPECT_EQ(client.CheckHealth(10s), Client::Health::kServing);  // reads are served
    int http = 0;
    EXPECT_NE(HttpGet(daemon.metrics_address(), "/healthz", &http)
                  .find("ingest: refused, data disk full"),
              std::string::npos);
    EXPECT_LT(MetricValue(daemon.metrics_address(), "histguard_data_disk_free_bytes"), 4000000);
    EXPECT_EQ(daemon.Stop(SIGTERM), 0);
  }
  {
    // Starts on the full disk, reads, refuses, then takes histograms once there is room.
    DaemonProcess daemon(args, data);
    ASSERT_TRUE(daemon.started()) << daemon.error();
    Client client(daemon.grpc_address());
    ASSERT_TRUE(client.WaitForConnected(30s));
    EXPECT_TRUE(Inspect(client, "disk/full", 3).ok());
    submit(client, &status);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
    disk.Free();
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    std::vector<v1::Verdict> verdicts;
    do {
      std::this_thread::sleep_for(200ms);
      verdicts = submit(client, &status);
    } while (!status.ok() && std::chrono::steady_clock::now() < deadline);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(verdicts.size(), 5u);
    EXPECT_TRUE(Inspect(client, "disk/full", verdicts.back().lumisection()).ok());
    EXPECT_EQ(IngestHealth(client), grpc::health::v1::HealthCheckResponse::SERVING);
    EXPECT_EQ(daemon.Stop(SIGTERM), 0);
  }
}

// A flipped byte in the store's write-ahead log: RocksDB replays up to the damage and drops the
// rest. That used to go unsaid; now the loss is counted, named in the log and in /healthz, and
// the daemon serves what survived.
TEST(Hardening, ALossInTheStoreIsReportedAtStartUp) {
  char tmpl[] = "/tmp/histguard-flip-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  std::mt19937_64 rng(11);
  {
    DaemonProcess daemon({}, dir);
    ASSERT_TRUE(daemon.started()) << daemon.error();
    Client client(daemon.grpc_address());
    ASSERT_TRUE(client.WaitForConnected(30s));
    for (uint64_t ls = 1; ls <= 60; ++ls) Submit(client, {Peak("flip/me", ls, 100, 1e4, rng)});
    EXPECT_EQ(daemon.Stop(SIGTERM), 0);
  }
  std::string wal;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/state"))
    if (e.path().extension() == ".log" && std::filesystem::file_size(e.path()) > 10000)
      wal = e.path().string();
  ASSERT_FALSE(wal.empty()) << "no write-ahead log with the histograms in " << dir << "/state";
  {
    std::fstream f(wal, std::ios::in | std::ios::out | std::ios::binary);
    const auto size = static_cast<long>(std::filesystem::file_size(wal));
    f.seekg(size / 2);
    char c;
    f.read(&c, 1);
    c ^= 0x20;
    f.seekp(size / 2);
    f.write(&c, 1);
  }
  DaemonProcess daemon({}, dir);
  ASSERT_TRUE(daemon.started()) << daemon.error();
  Client client(daemon.grpc_address());
  ASSERT_TRUE(client.WaitForConnected(30s));
  EXPECT_GE(MetricValue(daemon.metrics_address(), "histguard_store_errors_total{kind=\"corrupt\"}"),
            1);
  int http = 0;
  const std::string health = HttpGet(daemon.metrics_address(), "/healthz", &http);
  EXPECT_EQ(http, 200);
  EXPECT_NE(health.find("problems restoring the state"), std::string::npos) << health;
  // What came before the damage is there; the daemon takes histograms as before.
  EXPECT_TRUE(Inspect(client, "flip/me", 1).ok());
  const auto v = Submit(client, {Peak("flip/me", 61, 100, 1e4, rng)});
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].quality(), v1::QUALITY_LEARNING);
  EXPECT_EQ(daemon.Stop(SIGTERM), 0);
  std::filesystem::remove_all(dir);
}

std::vector<std::string> MonitorNames(Client& client) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  v1::ListMonitorsResponse resp;
  EXPECT_TRUE(client.control().ListMonitors(&ctx, v1::ListMonitorsRequest(), &resp).ok());
  std::vector<std::string> names;
  for (const auto& m : resp.monitors()) names.push_back(m.monitor());
  return names;
}

// Junk names filled max_monitors for good, across restarts. `histguard forget` frees a name and
// everything stored under it; the name can come back with another binning.
TEST(Hardening, ForgettingAMonitorFreesItsNameAndEverythingStoredOfIt) {
  char tmpl[] = "/tmp/histguard-forget-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const std::vector<std::string> args = {"--max-monitors", "3",    "--min-train-samples", "30",
                                         "--retraining",   "false"};
  std::mt19937_64 rng(12);
  {
    DaemonProcess daemon(args, dir);
    ASSERT_TRUE(daemon.started()) << daemon.error();
    Client client(daemon.grpc_address());
    ASSERT_TRUE(client.WaitForConnected(30s));
    uint64_t ls = 0;
    ASSERT_TRUE(TrainUntil(client, "junk/a", 40, 1, ls, rng));
    Submit(client, {Peak("junk/b", 1, 40, 1e3, rng), Peak("junk/c", 1, 40, 1e3, rng)});
    auto refused = Submit(client, {Peak("real/d", 1, 40, 1e3, rng)});
    ASSERT_EQ(refused.size(), 1u);
    EXPECT_EQ(refused[0].quality(), v1::QUALITY_REJECTED);
    EXPECT_NE(refused[0].detail().find("max_monitors"), std::string::npos);
    ASSERT_TRUE(std::filesystem::exists(dir + "/models/junk%2Fa"));

    std::string out;
    EXPECT_EQ(RunCommand(HISTGUARD_CLI_PATH " forget junk/a -a " + daemon.grpc_address(), &out), 2)
        << out;  // needs --yes
    EXPECT_EQ(RunCommand(HISTGUARD_CLI_PATH " forget junk/a --yes --comment 'test junk' -a " +
                             daemon.grpc_address(),
                         &out),
              0)
        << out;
    EXPECT_NE(out.find("junk/a: forgotten (1 model versions"), std::string::npos) << out;
    EXPECT_FALSE(std::filesystem::exists(dir + "/models/junk%2Fa"));
    EXPECT_EQ(Inspect(client, "junk/a", 1).error_code(), grpc::StatusCode::NOT_FOUND);
    int http = 0;
    EXPECT_EQ(HttpGet(daemon.metrics_address(), "/metrics", &http).find("monitor=\"junk/a\""),
              std::string::npos);
    // The freed slot takes a new monitor; the old name comes back with another binning.
    const auto d = Submit(client, {Peak("real/d", 1, 40, 1e3, rng)});
    EXPECT_EQ(d[0].quality(), v1::QUALITY_LEARNING) << d[0].detail();
    EXPECT_EQ(
        RunCommand(HISTGUARD_CLI_PATH " forget junk/b --yes -a " + daemon.grpc_address(), &out), 0);
    const auto again = Submit(client, {Peak("junk/a", 1, 64, 1e3, rng)});
    EXPECT_EQ(again[0].quality(), v1::QUALITY_LEARNING) << again[0].detail();
    EXPECT_EQ(daemon.Stop(SIGTERM), 0);
  }
  DaemonProcess daemon(args, dir);
  ASSERT_TRUE(daemon.started()) << daemon.error();
  Client client(daemon.grpc_address());
  ASSERT_TRUE(client.WaitForConnected(30s));
  EXPECT_EQ(MonitorNames(client), (std::vector<std::string>{"junk/a", "junk/c", "real/d"}));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  v1::GetMonitorRequest req;
  req.set_monitor("junk/a");
  v1::MonitorInfo info;
  ASSERT_TRUE(client.control().GetMonitor(&ctx, req, &info).ok());
  EXPECT_EQ(info.shape(0), 64u);  // the new binning, not the forgotten one's
  EXPECT_EQ(info.active_version(), 0u);
  EXPECT_EQ(daemon.Stop(SIGTERM), 0);
  std::filesystem::remove_all(dir);
}

TEST(Hardening, MonitorsIdlePastTheExpiryAreForgotten) {
  DaemonProcess daemon({"--monitor-idle-expiry-seconds", "2"});
  ASSERT_TRUE(daemon.started()) << daemon.error();
  Client client(daemon.grpc_address());
  ASSERT_TRUE(client.WaitForConnected(30s));
  std::mt19937_64 rng(13);
  Submit(client, {Peak("idle/once", 1, 20, 1e3, rng)});
  uint64_t ls = 0;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  std::vector<std::string> names;
  do {
    Submit(client, {Peak("busy/always", ++ls, 20, 1e3, rng)});
    std::this_thread::sleep_for(200ms);
    names = MonitorNames(client);
  } while (names.size() > 1 && std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(names, std::vector<std::string>{"busy/always"});
}

// Streams of large histograms under a small memory budget: reads wait for answers to give bytes
// back, and every stream still gets every verdict, in order (no stream waits for good).
TEST(Hardening, StreamsWaitForTheMemoryBudgetAndAllFinish) {
  // An eighth of 8 MiB: 1 MiB in flight, two or three of these 400 kB histograms.
  DaemonProcess daemon({"--memory-budget-bytes", "8388608", "--max-message-bytes", "1048576"});
  ASSERT_TRUE(daemon.started()) << daemon.error();
  Client client(daemon.grpc_address());
  ASSERT_TRUE(client.WaitForConnected(30s));
  std::vector<std::thread> streams;
  std::atomic<int> complete{0};
  for (int s = 0; s < 4; ++s) {
    streams.emplace_back([&, s] {
      std::mt19937_64 rng(20 + s);
      std::vector<v1::Histogram> hs;
      for (uint64_t ls = 1; ls <= 40; ++ls)
        hs.push_back(Peak("budget/s" + std::to_string(s), ls, 50000, 1e6, rng));
      auto stream = client.OpenStream();
      std::thread writer([&] {
        for (const auto& h : hs)
          if (!stream->Write(h)) break;
        stream->WritesDone();
      });
      v1::Verdict v;
      uint64_t expect = 1;
      while (stream->Read(&v)) {
        EXPECT_EQ(v.lumisection(), expect++);
        EXPECT_EQ(v.quality(), v1::QUALITY_LEARNING) << v.detail();
      }
      writer.join();
      EXPECT_TRUE(stream->Finish().ok());
      if (expect == 41) ++complete;
    });
  }
  for (auto& t : streams) t.join();
  EXPECT_EQ(complete.load(), 4);
  EXPECT_EQ(MetricValue(daemon.metrics_address(), "histguard_inflight_bytes"), 0);
}

// kill -9 at a random point of a stream, 100 times, with retraining on, as a source that resends
// what was not answered would see it. After each restart: every acknowledged verdict is stored
// as it was answered (nothing lost, one record per lumisection), the window holds no repeat, and
// the active version is never older than one that already answered a histogram.
TEST(Hardening, HundredKillsMidStreamLoseNothingAndNoVersionRegresses) {
  char tmpl[] = "/tmp/histguard-kill-e2e-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const std::vector<std::string> args = {
      "--min-train-samples", "30", "--window-size",  "60", "--retrain-every", "25",
      "--retrain-min-new",   "20", "--drift-window", "30", "--history",       "100000"};
  const std::string monitor = "kill/spectrum";
  const uint32_t bins = 40;
  auto histogram = [&](uint64_t ls) {  // the same histogram each time a lumisection is sent
    std::mt19937_64 rng(ls);
    return Peak(monitor, ls, bins, 5e3, rng);
  };
  std::mt19937_64 rng(2024);
  std::map<uint64_t, v1::Verdict> acknowledged;  // lumisection -> verdict, over every round
  std::vector<uint64_t> last_round;
  uint64_t next_ls = 1, newest_answering = 0, active_before = 0;
  const int kRounds = 100;
  for (int round = 0; round <= kRounds; ++round) {
    DaemonProcess daemon(args, dir);
    ASSERT_TRUE(daemon.started()) << "round " << round << ": " << daemon.error();
    Client client(daemon.grpc_address());
    ASSERT_TRUE(client.WaitForConnected(30s));
    const uint64_t active = ActiveVersion(client, monitor);
    EXPECT_GE(active, newest_answering) << "round " << round;
    EXPECT_GE(active, active_before) << "round " << round;
    active_before = active;
    // The last round's acknowledged verdicts (all of them after the last round).
    std::vector<uint64_t> check = last_round;
    if (round == kRounds) {
      check.clear();
      for (const auto& [ls, v] : acknowledged) check.push_back(ls);
    }
    for (uint64_t ls : check) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 10s);
      v1::InspectRequest req;
      req.set_monitor(monitor);
      req.set_run(1);
      req.set_lumisection(ls);
      v1::Inspection ins;
      const grpc::Status s = client.control().Inspect(&ctx, req, &ins);
      ASSERT_TRUE(s.ok()) << "round " << round << ": acknowledged ls " << ls
                          << " is lost: " << s.error_message();
      const v1::Verdict& was = acknowledged[ls];
      EXPECT_EQ(ins.verdict().quality(), was.quality()) << "ls " << ls;
      EXPECT_EQ(ins.verdict().model_version(), was.model_version()) << "ls " << ls;
      EXPECT_DOUBLE_EQ(ins.verdict().p_value(), was.p_value()) << "ls " << ls;
    }
    if (round > 0) {  // the monitor exists from the first answered histogram on
      grpc::ClientContext ctx;
      v1::GetMonitorRequest req;
      req.set_monitor(monitor);
      v1::MonitorInfo info;
      ASSERT_TRUE(client.control().GetMonitor(&ctx, req, &info).ok()) << "round " << round;
      EXPECT_LE(info.window_size(), 60u) << "round " << round;
    }
    if (round == kRounds) {
      EXPECT_EQ(daemon.Stop(SIGTERM), 0);
      break;
    }
    // Stream from the first unanswered lumisection on, a histogram every 2 ms (trainings
    // finish within some rounds and are cut off in others); kill -9 after a random number of
    // answers, while later histograms are in flight.
    const int kill_after = std::uniform_int_distribution<int>(3, 150)(rng);
    auto stream = client.OpenStream();
    std::thread writer([&, from = next_ls] {
      for (uint64_t ls = from; ls < from + 200; ++ls) {
        if (!stream->Write(histogram(ls))) break;
        std::this_thread::sleep_for(2ms);
      }
      stream->WritesDone();
    });
    last_round.clear();
    v1::Verdict v;
    int answered = 0;
    while (stream->Read(&v)) {
      ASSERT_EQ(v.lumisection(), next_ls) << "verdicts come in the order sent";
      acknowledged[v.lumisection()] = v;
      last_round.push_back(v.lumisection());
      newest_answering = std::max(newest_answering, v.model_version());
      ++next_ls;
      if (++answered == kill_after) daemon.Stop(SIGKILL);
    }
    writer.join();
    stream->Finish();
    ASSERT_GE(answered, kill_after) << "round " << round;
  }
  EXPECT_GE(active_before, 3u) << "the monitor retrained during the rounds";
  std::printf("[ kill -9 ] %d rounds, %zu histograms acknowledged, model v%llu at the end\n",
              kRounds, acknowledged.size(), static_cast<unsigned long long>(active_before));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace histguard::testing
