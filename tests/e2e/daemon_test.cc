// End to end: the real histguardd on port 0 with a temporary data dir, driven by the real
// client library and CLI over loopback.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <thread>

#include "client/client.h"
#include "simulation/detector_simulator.h"
#include "tests/e2e/daemon_process.h"

namespace histguard::testing {
namespace {

using sim::Anomaly;

v1::Histogram ToHistogram(const sim::MonitorSpec& spec, const sim::Sample& s, uint64_t ls) {
  v1::Histogram h;
  h.set_monitor(spec.name);
  h.set_run(1);
  h.set_lumisection(ls);
  for (auto d : s.shape) h.add_shape(d);
  h.mutable_contents()->Assign(s.contents.begin(), s.contents.end());
  return h;
}

// Streams `hs` over one bidi stream and returns the verdicts in the order received.
std::vector<v1::Verdict> StreamAll(Client& client, const std::vector<v1::Histogram>& hs) {
  auto stream = client.OpenStream();
  std::thread writer([&] {
    for (const auto& h : hs)
      if (!stream->Write(h)) break;
    stream->WritesDone();
  });
  std::vector<v1::Verdict> out;
  v1::Verdict v;
  while (stream->Read(&v)) out.push_back(v);
  writer.join();
  EXPECT_TRUE(stream->Finish().ok());
  return out;
}

class DaemonTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    daemon_ =
        new DaemonProcess({"--max-histograms-per-request", "500", "--max-message-bytes", "200000"});
    ASSERT_TRUE(daemon_->started()) << daemon_->error();
    client_ = new Client(daemon_->grpc_address());
    ASSERT_TRUE(client_->WaitForConnected(std::chrono::seconds(30)));
    specs_ = sim::DefaultMonitors(5);
    TrainAll();
  }
  static void TearDownTestSuite() {
    delete client_;
    delete daemon_;
  }

  // Streams normal histograms until every monitor has a model, checking order on the way.
  static void TrainAll() {
    std::vector<v1::Histogram> hs;
    for (uint64_t ls = 0; ls < 100; ++ls)
      for (const auto& spec : specs_)
        hs.push_back(ToHistogram(spec, Draw(spec, Anomaly::kNone), ++ls_));
    const auto verdicts = StreamAll(*client_, hs);
    ASSERT_EQ(verdicts.size(), hs.size());
    for (size_t i = 0; i < hs.size(); ++i) {
      ASSERT_EQ(verdicts[i].monitor(), hs[i].monitor()) << i;
      ASSERT_EQ(verdicts[i].lumisection(), hs[i].lumisection()) << i;
      ASSERT_EQ(verdicts[i].quality(), v1::QUALITY_LEARNING) << i;
    }
    // Training runs in the background: keep sending normal data until all report a model.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    std::set<std::string> trained;
    while (trained.size() < specs_.size() && std::chrono::steady_clock::now() < deadline) {
      std::vector<v1::Histogram> batch;
      for (const auto& spec : specs_)
        batch.push_back(ToHistogram(spec, Draw(spec, Anomaly::kNone), ++ls_));
      std::vector<v1::Verdict> vs;
      ASSERT_TRUE(client_->Submit(batch, &vs).ok());
      for (const auto& v : vs)
        if (v.model_version() > 0) trained.insert(v.monitor());
      if (trained.size() < specs_.size())
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_EQ(trained.size(), specs_.size()) << "models did not train in time";
  }

  static sim::Sample Draw(const sim::MonitorSpec& spec, Anomaly a, double severity = 2.0) {
    return sim::Draw(spec, 1e5, a, severity, rng_);
  }

  static DaemonProcess* daemon_;
  static Client* client_;
  static std::vector<sim::MonitorSpec> specs_;
  static std::mt19937_64 rng_;
  static uint64_t ls_;
};

DaemonProcess* DaemonTest::daemon_ = nullptr;
Client* DaemonTest::client_ = nullptr;
std::vector<sim::MonitorSpec> DaemonTest::specs_;
std::mt19937_64 DaemonTest::rng_(2024);
uint64_t DaemonTest::ls_ = 0;

TEST_F(DaemonTest, NormalHistogramsComeBackGood) {
  std::vector<v1::Histogram> hs;
  for (int rep = 0; rep < 40; ++rep)
    for (const auto& spec : specs_)
      hs.push_back(ToHistogram(spec, Draw(spec, Anomaly::kNone), ++ls_));
  const auto verdicts = StreamAll(*client_, hs);
  ASSERT_EQ(verdicts.size(), hs.size());
  std::map<v1::Quality, int> count;
  for (const auto& v : verdicts) {
    ++count[v.quality()];
    EXPECT_GT(v.model_version(), 0u);
    EXPECT_GT(v.p_value(), 0.0);
    EXPECT_LE(v.p_value(), 1.0);
  }
  EXPECT_EQ(count[v1::QUALITY_BAD], 0);
  EXPECT_GE(count[v1::QUALITY_GOOD], static_cast<int>(hs.size() * 95 / 100));
}

TEST_F(DaemonTest, EachInjectedAnomalyKindComesBackBadAtTheDefect) {
  // Every monitor family, each anomaly kind the simulator injects by default, clearly visible.
  for (auto kind :
       {Anomaly::kDeadRegion, Anomaly::kHotBin, Anomaly::kShiftedPeak, Anomaly::kExtraNoise}) {
    std::vector<v1::Histogram> hs;
    std::vector<sim::Sample> samples;
    for (int rep = 0; rep < 4; ++rep)
      for (const auto& spec : specs_) {
        // Flat noise on a nearly flat channel occupancy raises its rate, not its shape, and the
        // model scores shapes: that pair is not a shape anomaly.
        if (kind == Anomaly::kExtraNoise && spec.family == sim::Family::kChannelOccupancy) continue;
        samples.push_back(Draw(spec, kind, 3.0));
        hs.push_back(ToHistogram(spec, samples.back(), ++ls_));
      }
    const auto verdicts = StreamAll(*client_, hs);
    ASSERT_EQ(verdicts.size(), hs.size());
    int bad = 0, at_defect = 0;
    for (size_t i = 0; i < verdicts.size(); ++i) {
      if (verdicts[i].quality() == v1::QUALITY_BAD) ++bad;
      const auto& defect = samples[i].defect_bins;
      for (const auto& b : verdicts[i].top_bins())
        if (std::find(defect.begin(), defect.end(), b.bin()) != defect.end()) {
          ++at_defect;
          break;
        }
      EXPECT_LE(verdicts[i].top_bins_size(), 5);
    }
    EXPECT_GE(bad, static_cast<int>(hs.size() * 9 / 10)) << sim::Name(kind);
    for (size_t i = 0; i < verdicts.size(); ++i)
      if (verdicts[i].quality() != v1::QUALITY_BAD)
        std::cerr << sim::Name(kind) << " not BAD: " << verdicts[i].monitor() << " p "
                  << verdicts[i].p_value() << "\n";
    if (kind == Anomaly::kHotBin || kind == Anomaly::kDeadRegion) {
      EXPECT_GE(at_defect, static_cast<int>(hs.size() * 9 / 10)) << sim::Name(kind);
    }
  }
}

TEST_F(DaemonTest, InvalidHistogramsAreRejectedInPlaceAndTheRestGoesOn) {
  const auto& spec = specs_[0];
  std::vector<v1::Histogram> hs;
  auto good = [&] { return ToHistogram(spec, Draw(spec, Anomaly::kNone), ++ls_); };
  hs.push_back(good());
  auto h = good();
  h.set_monitor("bad name!");
  hs.push_back(h);
  h = good();
  h.clear_contents();
  hs.push_back(h);
  h = good();
  h.add_contents(1);
  hs.push_back(h);
  h = good();
  h.set_contents(3, std::nan(""));
  hs.push_back(h);
  h = good();
  h.set_contents(3, -5);
  hs.push_back(h);
  h = good();
  h.clear_shape();
  h.add_shape(h.contents_size() / 2);
  h.add_shape(2);
  hs.push_back(h);  // binning differs from what the monitor trained on
  hs.push_back(good());
  const std::vector<std::string> expect_detail = {
      "",    "monitor name", "contents are empty", "shape product",
      "NaN", "negative",     "differs from",       ""};
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<v1::Verdict> verdicts;
    if (pass == 0) {
      verdicts = StreamAll(*client_, hs);
    } else {
      ASSERT_TRUE(client_->Submit(hs, &verdicts).ok());
    }
    ASSERT_EQ(verdicts.size(), hs.size());
    for (size_t i = 0; i < hs.size(); ++i) {
      EXPECT_EQ(verdicts[i].lumisection(), hs[i].lumisection()) << "order, pass " << pass;
      if (expect_detail[i].empty()) {
        EXPECT_NE(verdicts[i].quality(), v1::QUALITY_REJECTED) << i << " " << verdicts[i].detail();
      } else {
        EXPECT_EQ(verdicts[i].quality(), v1::QUALITY_REJECTED) << i;
        EXPECT_NE(verdicts[i].detail().find(expect_detail[i]), std::string::npos)
            << i << ": " << verdicts[i].detail();
      }
    }
  }
}

TEST_F(DaemonTest, RequestLevelLimitsAreRpcErrors) {
  v1::Histogram small;
  small.set_monitor("small/one");
  small.add_shape(2);
  small.add_contents(500);
  small.add_contents(500);
  std::vector<v1::Histogram> many(501, small);
  std::vector<v1::Verdict> vs;
  auto s = client_->Submit(many, &vs);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("at most 500"), std::string::npos) << s.error_message();

  v1::Histogram huge;
  huge.set_monitor("big/one");
  huge.add_shape(30000);
  for (int i = 0; i < 30000; ++i) huge.add_contents(1);
  s = client_->Submit({huge}, &vs);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  // The daemon is still there.
  EXPECT_EQ(client_->CheckHealth(std::chrono::seconds(5)), Client::Health::kServing);
}

TEST_F(DaemonTest, MetricsAreServedAndCleanUnderPromtool) {
  int status = 0;
  const std::string body = HttpGet(daemon_->metrics_address(), "/metrics", &status);
  ASSERT_EQ(status, 200);
  for (const char* name :
       {"histguard_histograms_received_total",
        "histguard_histograms_rejected_total{reason=", "histguard_verdicts_total{quality=\"bad\"}",
        "histguard_anomaly_score{monitor=", "histguard_anomaly_significance{monitor=",
        "histguard_model_version{monitor=", "histguard_scoring_latency_seconds_bucket",
        "histguard_batch_size_bucket", "histguard_queue_depth", "histguard_monitors "})
    EXPECT_NE(body.find(name), std::string::npos) << name;
  const std::string path = daemon_->data_dir() + "/scrape.txt";
  std::ofstream(path) << body;
  std::string out;
  EXPECT_EQ(RunCommand("promtool check metrics < " + path, &out), 0) << out;
  EXPECT_EQ(HttpGet(daemon_->metrics_address(), "/healthz", &status), "ok\n");
  EXPECT_EQ(status, 200);
}

TEST_F(DaemonTest, CliHealthAndSendOfRootFiles) {
  std::string out;
  EXPECT_EQ(
      RunCommand(std::string(HISTGUARD_CLI_PATH) + " health -a " + daemon_->grpc_address(), &out),
      0)
      << out;
  EXPECT_NE(out.find("SERVING"), std::string::npos);

  const std::string bad = daemon_->data_dir() + "/broken.json";
  std::ofstream(bad) << "{\"_typename\":\"TH1F\",\"fNcells\":";
  const std::string data = HISTGUARD_TEST_DATA_DIR "/root-json/";
  out.clear();
  const int rc = RunCommand(std::string(HISTGUARD_CLI_PATH) + " send -a " +
                                daemon_->grpc_address() + " " + data + "th1f_timing_pretty.json " +
                                bad + " " + data + "th2f_occupancy_compact.json",
                            &out);
  EXPECT_EQ(rc, 1) << "a malformed file makes the exit code say so\n" << out;
  EXPECT_NE(out.find("broken.json"), std::string::npos) << out;
  EXPECT_NE(out.find("th1f_timing_pretty.json: hit_time_f run 0 ls 0: LEARNING"), std::string::npos)
      << out;
  EXPECT_NE(out.find("th2f_occupancy_compact.json: pixel_occupancy"), std::string::npos) << out;
  EXPECT_NE(out.find("sent 2 of 3 files"), std::string::npos) << out;
  // The files give no run or lumisection and none was given: said, not stored in silence.
  EXPECT_NE(out.find("no run number"), std::string::npos) << out;

  // A missing file and a binary ROOT file are reported by name; the others are still sent.
  const std::string root_file = daemon_->data_dir() + "/dqm.root";
  std::ofstream(root_file, std::ios::binary)
      << std::string("root\0\0\xf4\x3c", 8) << std::string(200, '\0');
  out.clear();
  EXPECT_EQ(RunCommand(std::string(HISTGUARD_CLI_PATH) + " send -a " + daemon_->grpc_address() +
                           " --run 7 " + data + "th1f_timing_pretty.json " + daemon_->data_dir() +
                           "/no-such-file.json " + root_file,
                       &out),
            1)
      << out;
  EXPECT_NE(out.find("no-such-file.json: no such file"), std::string::npos) << out;
  EXPECT_NE(out.find("dqm.root: a binary ROOT file"), std::string::npos) << out;
  EXPECT_NE(out.find("hit_time_f run 7 ls 0"), std::string::npos) << out;
  EXPECT_NE(out.find("sent 1 of 3 files"), std::string::npos) << out;
}

// ROOT users count bins from 1 and read (ix, iy) in 2D; the API's index is 0-based and flat.
TEST_F(DaemonTest, TheCliNamesBinsAsRootDoesWithTheirAxisRanges) {
  // ROOT bins 20-24 of a channel occupancy dead, sent as a TH1D over [0, 100): bin k is [k-1, k).
  const sim::MonitorSpec* occupancy = nullptr;
  const sim::MonitorSpec* map = nullptr;
  for (const auto& spec : specs_) {
    if (spec.family == sim::Family::kChannelOccupancy) occupancy = &spec;
    if (spec.family == sim::Family::kOccupancy2D) map = &spec;
  }
  ASSERT_TRUE(occupancy && map);
  sim::Sample s = Draw(*occupancy, Anomaly::kNone);
  const size_t n = s.contents.size();
  for (size_t i = 19; i <= 23; ++i) s.contents[i] = 0;
  std::string cells = "0";
  for (double c : s.contents) cells += "," + std::to_string(static_cast<long long>(c));
  const std::string th1 = daemon_->data_dir() + "/dead.json";
  std::ofstream(th1) << "{\"_typename\":\"TH1D\",\"fName\":\"occ\",\"fNcells\":" << n + 2
                     << ",\"fXaxis\":{\"fNbins\":" << n << ",\"fXmin\":0,\"fXmax\":" << n
                     << ",\"fXbins\":[]},\"fArray\":[" << cells << ",0]}";
  // A hot bin in the 2D map, sent in the plain form (no axes: bin numbers only).
  const sim::Sample hot = Draw(*map, Anomaly::kHotBin, 3.0);
  ASSERT_FALSE(hot.defect_bins.empty());
  const uint32_t ny = hot.shape[1];
  std::string contents;
  for (double c : hot.contents)
    contents += (contents.empty() ? "" : ",") + std::to_string(static_cast<long long>(c));
  const std::string plain = daemon_->data_dir() + "/hot.json";
  std::ofstream(plain) << "{\"monitor\":\"" << map->name << "\",\"run\":1,\"lumisection\":" << ++ls_
                       << ",\"shape\":[" << hot.shape[0] << "," << ny << "],\"contents\":["
                       << contents << "]}";
  const std::string cli = std::string(HISTGUARD_CLI_PATH) + " send -a " + daemon_->grpc_address();
  std::string out;
  RunCommand(cli + " --monitor " + occupancy->name + " --run 1 --lumisection " +
                 std::to_string(++ls_) + " " + th1,
             &out);
  EXPECT_NE(out.find(": BAD"), std::string::npos) << out;
  for (int k = 20; k <= 24; ++k)
    EXPECT_NE(out.find(" " + std::to_string(k) + " [" + std::to_string(k - 1) + "," +
                       std::to_string(k) + ") -"),
              std::string::npos)
        << "ROOT bin " << k << " with its range, pulling low\n"
        << out;
  EXPECT_EQ(out.find(" 19 [18,19)"), std::string::npos) << out;
  out.clear();
  RunCommand(cli + " " + plain, &out);
  const uint32_t flat = hot.defect_bins[0];
  const std::string root_bin =
      "(" + std::to_string(flat / ny + 1) + "," + std::to_string(flat % ny + 1) + ") +";
  EXPECT_NE(out.find(": BAD"), std::string::npos) << out;
  EXPECT_NE(out.find(root_bin), std::string::npos) << "hot bin " << root_bin << "\n" << out;
}

// SIGTERM in the middle of a stream (2,000 histograms sent, 20 answers read): every histogram
// the daemon read is answered and stored before it exits 0, and the stream's status says how
// many were answered, so the sender knows what to send again.
TEST(DaemonLifecycle, SigtermDrainsAndExitsZero) {
  char tmpl[] = "/tmp/histguard-drain-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const sim::MonitorSpec spec = sim::DefaultMonitors(1).at(0);
  std::mt19937_64 rng(31);
  std::vector<v1::Histogram> hs;
  for (uint64_t ls = 1; ls <= 2000; ++ls)
    hs.push_back(ToHistogram(spec, sim::Draw(spec, 1e3, Anomaly::kNone, 0, rng), ls));
  std::vector<v1::Verdict> verdicts;
  grpc::Status status;
  {
    DaemonProcess d({"--drain-timeout-seconds", "30"}, dir);
    ASSERT_TRUE(d.started()) << d.error();
    Client client(d.grpc_address());
    ASSERT_EQ(client.CheckHealth(std::chrono::seconds(10)), Client::Health::kServing);
    auto stream = client.OpenStream();
    std::thread writer([&] {
      for (const auto& h : hs)
        if (!stream->Write(h)) break;
      stream->WritesDone();
    });
    v1::Verdict v;
    for (int i = 0; i < 20 && stream->Read(&v); ++i) verdicts.push_back(v);
    ASSERT_EQ(verdicts.size(), 20u);
    // The call is in flight: its answers are not read, so the daemon cannot have ended it.
    std::thread stop([&] { EXPECT_EQ(d.Stop(SIGTERM), 0); });
    while (stream->Read(&v)) verdicts.push_back(v);
    writer.join();
    status = stream->Finish();
    stop.join();
  }
  for (size_t i = 0; i < verdicts.size(); ++i)
    ASSERT_EQ(verdicts[i].lumisection(), i + 1) << "answered in order, none skipped";
  if (verdicts.size() < hs.size()) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
    // The daemon's status says how many it answered. While the sender is still writing, the
    // connection's reset as the daemon exits can overtake that status, and the sender sees only
    // the transport's error (Hardening.SigtermEndsOpenStreams... checks the message on a stream
    // that is not writing). Either way the answers read are in order and stored (below).
    const std::string& message = status.error_message();
    if (message.find("histograms of this stream were answered") != std::string::npos)
      EXPECT_NE(message.find(std::to_string(verdicts.size()) +
                             " histograms of this stream were answered"),
                std::string::npos)
          << verdicts.size() << " answers; " << message;
  } else {
    EXPECT_TRUE(status.ok()) << status.error_message();
  }
  std::printf("SIGTERM after 20 answers: %zu of %zu histograms answered before the exit\n",
              verdicts.size(), hs.size());
  // Nothing answered is lost: each is stored.
  DaemonProcess again({}, dir);
  ASSERT_TRUE(again.started()) << again.error();
  Client client(again.grpc_address());
  for (const auto& answered : verdicts) {
    grpc::ClientContext ctx;
    v1::InspectRequest req;
    req.set_monitor(spec.name);
    req.set_run(1);
    req.set_lumisection(answered.lumisection());
    v1::Inspection out;
    const grpc::Status s = client.control().Inspect(&ctx, req, &out);
    ASSERT_TRUE(s.ok()) << "ls " << answered.lumisection() << ": " << s.error_message();
  }
  std::filesystem::remove_all(dir);
}

TEST(DaemonLifecycle, BadFlagsAreAClearErrorNotACrash) {
  std::string out;
  EXPECT_EQ(RunCommand(std::string(HISTGUARDD_PATH) + " --max-bins lots", &out), 2);
  EXPECT_NE(out.find("--max-bins"), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(RunCommand(std::string(HISTGUARDD_PATH) + " --help", &out), 0);
  EXPECT_NE(out.find("--min-train-samples"), std::string::npos);
}

}  // namespace
}  // namespace histguard::testing
