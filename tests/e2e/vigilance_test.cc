// End to end, vigilance: a defect that lasts stays flagged while the monitor keeps retraining, a
// slow drift in the same daemon is still followed, and an operator's "accept as normal" makes the
// lasting change the new normal. Everything runs against the real daemon binary.
#include <gtest/gtest.h>

#include <signal.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "simulation/detector_simulator.h"
#include "tests/e2e/daemon_process.h"
#include "tests/e2e/histograms.h"

namespace histguard::testing {
namespace {

using sim::Anomaly;
using Clock = std::chrono::steady_clock;

sim::MonitorSpec SpecOf(sim::Family family) {
  for (const auto& s : sim::DefaultMonitors(5))
    if (s.family == family) return s;
  return {};
}

// A block of channels at `efficiency`: each count survives with that probability (what a
// half-efficient readout does to Poisson counts).
void Thin(v1::Histogram& h, const std::vector<uint32_t>& bins, double efficiency,
          std::mt19937_64& rng) {
  for (uint32_t b : bins) {
    std::binomial_distribution<long long> keep(static_cast<long long>(h.contents(b)), efficiency);
    h.set_contents(b, static_cast<double>(keep(rng)));
  }
}

bool Flagged(const v1::Verdict& v) {
  return v.quality() == v1::QUALITY_WARNING || v.quality() == v1::QUALITY_BAD;
}

// One monitor of the shared run: its histograms, and what its verdicts gave.
struct Lane {
  sim::MonitorSpec spec;
  std::vector<uint32_t> block;  // bins of the lasting defect (empty: none)
  double efficiency = 0.5;      // of the block's channels
  double gain_per_ls = 0;       // a drift instead
  bool late_anomalies = false;  // every 10th of the last 300 lumisections carries a hot channel
  std::mt19937_64 rng;
  // Results over the lumisections after the first model.
  int sent = 0, flagged_last = 0, last_count = 0, normals = 0, false_alarms = 0;
  int anomalies = 0, caught = 0;
  int first_flag = -1;      // lumisections into the defect before the first flag
  int last_unflagged = -1;  // the last lumisection of the defect not flagged
  int gaps_after = 0;       // unflagged lumisections after the first flag
  std::vector<std::string> alarms;  // what the false alarms said
  uint64_t last_version = 0;
  int model_changes = 0;
};

// The bins of a w x h rectangle of a [nx, ny] map at (x0, y0), row-major.
std::vector<uint32_t> Rectangle(uint32_t ny, uint32_t x0, uint32_t y0, uint32_t w, uint32_t h) {
  std::vector<uint32_t> bins;
  for (uint32_t x = x0; x < x0 + w; ++x)
    for (uint32_t y = y0; y < y0 + h; ++y) bins.push_back(x * ny + y);
  return bins;
}

std::vector<uint32_t> Range(uint32_t from, uint32_t to) {
  std::vector<uint32_t> bins;
  for (uint32_t b = from; b < to; ++b) bins.push_back(b);
  return bins;
}

// Sends normal histograms on every lane until each has a model; returns the last lumisection.
uint64_t TrainLanes(Client& client, std::vector<Lane>& lanes, int learn) {
  uint64_t ls = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(180);
  for (bool all = false; !all && Clock::now() < deadline;) {
    ++ls;
    std::vector<v1::Histogram> hs;
    for (auto& l : lanes)
      hs.push_back(Make(l.spec, sim::Draw(l.spec, 1e4, Anomaly::kNone, 0, l.rng), 1, ls));
    std::vector<v1::Verdict> vs;
    EXPECT_TRUE(client.Submit(hs, &vs).ok());
    if (vs.size() != lanes.size()) return ls;
    all = true;
    for (size_t i = 0; i < lanes.size(); ++i) {
      all = all && vs[i].model_version() > 0;
      lanes[i].last_version = vs[i].model_version();
    }
    if (static_cast<int>(ls) > learn) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return ls;
}

// Feeds every lane `length` lumisections after `ls`; the lasting defects are present from
// `defect_from` on (counted from 0), the drift goes on from where `drift_at` says. Fills the
// lanes' results, counting "the last" over the final 200.
void FeedLanes(Client& client, std::vector<Lane>& lanes, uint64_t& ls, int length, int defect_from,
               int drift_at = 0, bool late_anomalies = true) {
  for (int i = 0; i < length; ++i) {
    ++ls;
    std::vector<v1::Histogram> hs;
    std::vector<bool> anomalous;
    for (auto& l : lanes) {
      if (l.gain_per_ls != 0) l.spec.gain = 1.0 + l.gain_per_ls * (drift_at + i);
      auto h = Make(l.spec, sim::Draw(l.spec, 1e4, Anomaly::kNone, 0, l.rng), 1, ls);
      if (!l.block.empty() && i >= defect_from) Thin(h, l.block, l.efficiency, l.rng);
      const bool anomaly = late_anomalies && l.late_anomalies && i >= length - 300 && i % 10 == 0;
      if (anomaly) AddHotBin(h, 20 + static_cast<uint32_t>(i % 50));
      anomalous.push_back(anomaly);
      hs.push_back(std::move(h));
    }
    std::vector<v1::Verdict> vs;
    ASSERT_TRUE(client.Submit(hs, &vs).ok());
    ASSERT_EQ(vs.size(), lanes.size());
    for (size_t j = 0; j < lanes.size(); ++j) {
      Lane& l = lanes[j];
      const bool flagged = Flagged(vs[j]);
      ++l.sent;
      if (vs[j].model_version() != l.last_version) ++l.model_changes;
      l.last_version = vs[j].model_version();
      if (anomalous[j]) {
        ++l.anomalies;
        l.caught += vs[j].quality() == v1::QUALITY_BAD;
        continue;
      }
      if (l.block.empty() || i < defect_from) {
        ++l.normals;
        l.false_alarms += flagged;
        if (flagged) {
          char p[48];
          std::snprintf(p, sizeof p, " (p %.2g, v%llu): ", vs[j].p_value(),
                        static_cast<unsigned long long>(vs[j].model_version()));
          l.alarms.push_back(std::to_string(i) + p + vs[j].detail());
        }
        continue;
      }
      if (l.first_flag < 0 && flagged) l.first_flag = i - defect_from;
      if (!flagged) l.last_unflagged = i - defect_from;
      if (l.first_flag >= 0 && !flagged) ++l.gaps_after;
      if (i >= length - 200) {
        ++l.last_count;
        l.flagged_last += flagged;
      }
    }
    // About 30 lumisections a second (700 times real time): trainings run while the stream
    // goes on.
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
}

v1::MonitorInfo GetMonitor(Client& client, const std::string& name) {
  grpc::ClientContext ctx;
  v1::GetMonitorRequest req;
  req.set_monitor(name);
  v1::MonitorInfo info;
  EXPECT_TRUE(client.control().GetMonitor(&ctx, req, &info).ok());
  return info;
}

// A shifter labels a lane's last `count` lumisections up to `ls` GOOD, and asks for a retraining:
// the labelled histograms enter the window, the candidate learns the lasting change from them, and
// the change is held for approval (a label is a word on lumisections, not on the new normal).
// Returns whether a change is held.
bool LabelGoodAndRetrain(Client& client, const Lane& l, uint64_t ls, int count) {
  for (uint64_t k = ls - count + 1; k <= ls; ++k) {
    grpc::ClientContext ctx;
    v1::LabelRequest req;
    req.set_monitor(l.spec.name);
    req.set_run(1);
    req.set_lumisection(k);
    req.set_label(v1::QUALITY_GOOD);
    req.set_comment("looks fine on the shift's plots");
    v1::LabelResponse resp;
    const auto s = client.control().Label(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
  }
  // A retraining the labels set off may be running: the manual one waits for it.
  const auto deadline = Clock::now() + std::chrono::seconds(120);
  while (GetMonitor(client, l.spec.name).pending_change().empty() && Clock::now() < deadline) {
    grpc::ClientContext ctx;
    v1::RetrainRequest req;
    req.set_monitor(l.spec.name);
    v1::RetrainResponse resp;
    const auto s = client.control().Retrain(&ctx, req, &resp);
    if (s.ok())
      std::printf("%s: retraining on %d lumisections labelled GOOD: %s\n", l.spec.name.c_str(),
                  count, resp.accepted() ? "accepted" : resp.reason().c_str());
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return !GetMonitor(client, l.spec.name).pending_change().empty();
}

// The value of a monitor's series in the daemon's /metrics ("" when absent).
std::string MetricValue(const DaemonProcess& d, const std::string& family,
                        const std::string& monitor) {
  int status = 0;
  const std::string body = HttpGet(d.metrics_address(), "/metrics", &status);
  const std::string key = family + "{monitor=\"" + monitor + "\"} ";
  const size_t at = body.find(key);
  if (at == std::string::npos) return "";
  return body.substr(at + key.size(), body.find('\n', at) - at - key.size());
}

void Reset(Lane& l) {
  l.flagged_last = l.last_count = l.normals = l.false_alarms = l.anomalies = l.caught = 0;
  l.first_flag = l.last_unflagged = -1;
  l.gaps_after = 0;
  l.alarms.clear();
}

void Print(const char* phase, const Lane& l) {
  if (!l.block.empty())
    std::printf(
        "%s: lasting defect %-28s first flag after %d ls, flagged without a break from "
        "ls %d on (%d unflagged after the first flag), last 200: %d/%d flagged; normals "
        "flagged %d/%d; %d model changes\n",
        phase, l.spec.name.c_str(), l.first_flag + 1, l.last_unflagged + 2, l.gaps_after,
        l.flagged_last, l.last_count, l.false_alarms, l.normals, l.model_changes);
  else
    std::printf(
        "%s: no defect      %-28s %d/%d normals flagged, %d/%d late anomalies BAD, %d "
        "model changes\n",
        phase, l.spec.name.c_str(), l.false_alarms, l.normals, l.caught, l.anomalies,
        l.model_changes);
  for (const std::string& a : l.alarms) std::printf("  false alarm at %s\n", a.c_str());
}

// A half-efficient block at a fixed place for 1,000 lumisections in three families (a spectrum,
// a channel occupancy and a 2D map) with retraining on, while a spectrum in the same daemon
// drifts by 30% over 1,500 lumisections, and two timing distributions' tails lose a fifth of
// their counts; then an operator's word: accept the spectrum's block as the new normal, approve
// one timing's held change and reject the other's.
TEST(Vigilance, ALastingDefectStaysFlaggedWhileADriftIsFollowed) {
  DaemonProcess d;
  ASSERT_TRUE(d.started()) << d.error();
  Client client(d.grpc_address());
  std::vector<Lane> lanes(7);
  lanes[0].spec = SpecOf(sim::Family::kPeakOnBackground);
  lanes[0].block = Range(42, 47);  // the peak's upper flank
  lanes[1].spec = SpecOf(sim::Family::kChannelOccupancy);
  lanes[1].block = Range(60, 68);  // a module's worth of channels
  lanes[2].spec = SpecOf(sim::Family::kOccupancy2D);
  lanes[2].block = Rectangle(20, 6, 11, 3, 3);
  lanes[3].spec = SpecOf(sim::Family::kPeakOnBackground);
  lanes[3].spec.name = "ecal/endcap/pi0_mass_drifting";
  lanes[3].gain_per_ls = 0.3 / 1500;
  lanes[3].late_anomalies = true;
  lanes[4].spec = SpecOf(sim::Family::kPeakOnBackground);
  lanes[4].spec.name = "ecal/endcap/pi0_mass_steady";
  lanes[4].late_anomalies = true;
  lanes[5].spec = SpecOf(sim::Family::kTiming);
  lanes[5].block = Range(60, 64);  // the late tail
  // A fifth of the tail lost: flagged, mostly by the evidence of a few lumisections, and never
  // learned on its own; a shifter's GOOD labels then let a candidate learn it, which is held.
  lanes[5].efficiency = 0.8;
  lanes[6].spec = SpecOf(sim::Family::kTiming);
  lanes[6].spec.name = "ecal/endcap/timing";
  lanes[6].block = Range(60, 64);
  lanes[6].efficiency = 0.8;
  for (size_t i = 0; i < lanes.size(); ++i) lanes[i].rng.seed(100 + i);
  uint64_t ls = TrainLanes(client, lanes, 100);
  for (auto& l : lanes) Reset(l);
  FeedLanes(client, lanes, ls, 1500, 500);
  for (const Lane& l : lanes) Print("defect", l);
  for (const Lane& l : lanes) {
    SCOPED_TRACE(l.spec.name);
    if (l.block.empty()) {
      // Within 2x warning_p (1e-3) as a count: a monitor at a rate of exactly 2e-3 flags more
      // than 6 of ~1,470 3% of the time (seen here: none). The drifting monitor is never held
      // and follows the drift by retraining (1-3 of 1,470 flagged in this test, where six
      // monitors share one training thread at 700 times real time); it is counted over the
      // whole run below.
      if (l.gain_per_ls == 0) {
        EXPECT_LE(l.false_alarms, 6) << "normal lumisections flagged";
      }
      EXPECT_GE(l.caught, l.anomalies - 1) << "late anomalies are caught";
      continue;
    }
    EXPECT_GE(l.flagged_last, 0.95 * l.last_count) << "the defect is learned as normal";
    EXPECT_GE(l.first_flag, 0);
    // A half-efficient block is seen at once; the fainter ones take a few dozen lumisections.
    if (l.efficiency <= 0.5) {
      EXPECT_LT(l.first_flag, 20);
    }
    EXPECT_LE(l.false_alarms, 6) << "normal lumisections before the defect flagged";
  }

  // The defects stayed flagged (above), so none entered the window. A shifter who takes the
  // timings' tails for fine labels their last 60 lumisections GOOD: the candidate that learns the
  // change from them is held, visible where the crew looks.
  for (size_t i : {5, 6}) {
    SCOPED_TRACE(lanes[i].spec.name);
    EXPECT_TRUE(LabelGoodAndRetrain(client, lanes[i], ls, 60)) << "no change held";
    const auto info = GetMonitor(client, lanes[i].spec.name);
    EXPECT_EQ(MetricValue(d, "histguard_monitor_pending_change", lanes[i].spec.name), "1");
  }
  EXPECT_EQ(MetricValue(d, "histguard_monitor_pending_change", lanes[3].spec.name), "0")
      << "the drift is followed, not held";
  EXPECT_TRUE(GetMonitor(client, lanes[3].spec.name).pending_change().empty());
  EXPECT_FALSE(GetMonitor(client, lanes[3].spec.name).nuisances().empty());
  {
    // The drift lane retrained more often than versions are kept (5): its anchor, the first
    // model, is still there to roll back to.
    const auto info = GetMonitor(client, lanes[3].spec.name);
    EXPECT_GT(info.active_version(), 6u);
    EXPECT_EQ(info.anchor_version(), 1u);
    ASSERT_FALSE(info.versions().empty());
    EXPECT_EQ(info.versions(0).version(), 1u) << "the anchor was dropped";
    EXPECT_TRUE(info.versions(0).anchor());
    EXPECT_LE(info.versions_size(), 6);
  }

  // Reject one timing's change: it stays flagged. Approve the other's: the candidate that
  // learned it becomes active. Accept the spectrum's from the next lumisection on.
  {
    grpc::ClientContext ctx;
    v1::RejectRequest req;
    req.set_monitor(lanes[6].spec.name);
    req.set_comment("a fifth of the late hits are lost: a defect");
    v1::RejectResponse resp;
    const auto s = client.control().Reject(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_TRUE(GetMonitor(client, lanes[6].spec.name).change_rejected());
  }
  {
    const uint64_t before = GetMonitor(client, lanes[5].spec.name).active_version();
    grpc::ClientContext ctx;
    v1::ApproveRequest req;
    req.set_monitor(lanes[5].spec.name);
    v1::ApproveResponse resp;
    const auto s = client.control().Approve(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(MetricValue(d, "histguard_monitor_pending_change", lanes[5].spec.name), "0");
    const auto info = GetMonitor(client, lanes[5].spec.name);
    EXPECT_GT(info.active_version(), before);
    EXPECT_EQ(info.active_version(), resp.version());
    EXPECT_EQ(info.anchor_version(), resp.version()) << "the approved model is the anchor";
    EXPECT_TRUE(info.pending_change().empty());
  }
  {
    grpc::ClientContext ctx;
    v1::AcceptRequest req;
    req.set_monitor(lanes[0].spec.name);
    req.set_run(1);
    req.set_from_lumisection(ls + 1);
    req.set_comment("the flank channels are masked from now on");
    v1::AcceptResponse resp;
    ASSERT_TRUE(client.control().Accept(&ctx, req, &resp).ok());
    EXPECT_TRUE(GetMonitor(client, lanes[0].spec.name).has_accepting());
  }
  // 600 more lumisections with the defects; the drift lane goes on drifting.
  const int drift_false_alarms = lanes[3].false_alarms;
  for (auto& l : lanes) Reset(l);
  FeedLanes(client, lanes, ls, 600, 0, 1500, /*late_anomalies=*/false);
  for (const Lane& l : lanes) Print("after the operator's word", l);
  EXPECT_GE(lanes[6].flagged_last, 0.95 * lanes[6].last_count) << "a rejected change stays flagged";
  EXPECT_GE(lanes[2].flagged_last, 0.95 * lanes[2].last_count) << "the map's block too";
  EXPECT_GE(lanes[1].flagged_last, 0.95 * lanes[1].last_count) << "the occupancy's block too";
  // Over the whole run, 2,070 normal lumisections: 2x warning_p is 4.1 as a count, and a rate
  // of exactly 2e-3 flags 10 or more 1% of the time (seen: 2-5).
  EXPECT_LE(drift_false_alarms + lanes[3].false_alarms, 9) << "the drift is still followed";
  // Accepted: GOOD again within 600 lumisections (counted over the last 200), and a new defect
  // on top of the new normal is still caught.
  EXPECT_LE(lanes[0].flagged_last, 0.02 * lanes[0].last_count) << "the accepted normal is flagged";
  {
    const auto info = GetMonitor(client, lanes[0].spec.name);
    EXPECT_FALSE(info.has_accepting()) << "still learning it";
    EXPECT_GT(info.anchor_version(), 1u) << "the model that learned the accepted normal anchors";
    EXPECT_TRUE(std::any_of(info.versions().begin(), info.versions().end(),
                            [&](const auto& v) { return v.anchor(); }));
  }
  EXPECT_LE(lanes[5].flagged_last, 0.02 * lanes[5].last_count) << "the approved change is flagged";
  int caught = 0;
  for (int i = 0; i < 20; ++i) {
    Lane& l = lanes[0];
    auto h = Make(l.spec, sim::Draw(l.spec, 1e4, Anomaly::kNone, 0, l.rng), 1, ++ls);
    Thin(h, l.block, 0.5, l.rng);
    AddHotBin(h, 20 + static_cast<uint32_t>(i));
    std::vector<v1::Verdict> vs;
    ASSERT_TRUE(client.Submit({h}, &vs).ok());
    caught += vs.at(0).quality() == v1::QUALITY_BAD;
  }
  std::printf("after accept: %d/20 hot channels on top of the accepted change BAD\n", caught);
  EXPECT_GE(caught, 19);
}

// What a person decided outlives a restart: a rejected change stays rejected and flagged, a held
// one stays held (its candidate model does not: approve says what to do instead).
TEST(Vigilance, HeldAndRejectedChangesOutliveARestart) {
  char tmpl[] = "/tmp/histguard-vigilance-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  std::vector<Lane> lanes(2);
  lanes[0].spec = SpecOf(sim::Family::kPeakOnBackground);
  lanes[0].block = Range(42, 47);
  lanes[1].spec = SpecOf(sim::Family::kTiming);
  lanes[1].block = Range(60, 64);
  // Faint blocks (a fifth lost), flagged and never learned on their own: a shifter's GOOD labels
  // let candidates learn them, which are held.
  for (size_t i = 0; i < lanes.size(); ++i) {
    lanes[i].rng.seed(200 + i);
    lanes[i].efficiency = 0.8;
  }
  uint64_t ls = 0;
  std::vector<v1::MonitorInfo> before(lanes.size());
  {
    DaemonProcess d({}, dir);
    ASSERT_TRUE(d.started()) << d.error();
    Client client(d.grpc_address());
    ls = TrainLanes(client, lanes, 100);
    FeedLanes(client, lanes, ls, 150, 0, 0, false);
    for (const Lane& l : lanes) Print("the defect", l);
    for (const Lane& l : lanes) ASSERT_TRUE(LabelGoodAndRetrain(client, l, ls, 60)) << l.spec.name;
    grpc::ClientContext ctx;
    v1::RejectRequest req;
    req.set_monitor(lanes[0].spec.name);
    v1::RejectResponse resp;
    ASSERT_TRUE(client.control().Reject(&ctx, req, &resp).ok());
    for (size_t i = 0; i < lanes.size(); ++i) before[i] = GetMonitor(client, lanes[i].spec.name);
    ASSERT_EQ(d.Stop(SIGTERM), 0);
  }
  DaemonProcess d({}, dir);
  ASSERT_TRUE(d.started()) << d.error();
  Client client(d.grpc_address());
  EXPECT_TRUE(GetMonitor(client, lanes[0].spec.name).change_rejected());
  const auto held = GetMonitor(client, lanes[1].spec.name);
  EXPECT_EQ(held.pending_change(), before[1].pending_change()) << "the held candidate is kept";
  EXPECT_EQ(MetricValue(d, "histguard_monitor_pending_change", lanes[1].spec.name), "1");
  for (size_t i = 0; i < lanes.size(); ++i) {
    // The anchor (here the first model, even where drift retrainings followed it) is restored.
    const auto after = GetMonitor(client, lanes[i].spec.name);
    EXPECT_EQ(before[i].anchor_version(), 1u);
    EXPECT_EQ(after.anchor_version(), before[i].anchor_version());
    EXPECT_EQ(after.active_version(), before[i].active_version());
  }
  for (auto& l : lanes) Reset(l);
  FeedLanes(client, lanes, ls, 200, 0, 0, false);
  for (const Lane& l : lanes) Print("after a restart", l);
  for (const Lane& l : lanes)
    EXPECT_GE(l.flagged_last, 0.95 * l.last_count) << l.spec.name << ": flagged after a restart";
  {
    // The held candidate itself outlived the restart: an operator approves it now, and it is
    // the active model and the anchor.
    grpc::ClientContext ctx;
    v1::ApproveRequest req;
    req.set_monitor(lanes[1].spec.name);
    req.set_comment("the timing tail cut is intended");
    v1::ApproveResponse resp;
    const auto s = client.control().Approve(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_GT(resp.version(), before[1].active_version());
    const auto approved = GetMonitor(client, lanes[1].spec.name);
    EXPECT_EQ(approved.active_version(), resp.version());
    EXPECT_EQ(approved.anchor_version(), resp.version());
    EXPECT_TRUE(approved.pending_change().empty()) << approved.pending_change();
  }
  {
    // The other monitor's change was rejected: it holds nothing to approve.
    grpc::ClientContext ctx;
    v1::ApproveRequest req;
    req.set_monitor(lanes[0].spec.name);
    v1::ApproveResponse resp;
    EXPECT_EQ(client.control().Approve(&ctx, req, &resp).error_code(),
              grpc::StatusCode::FAILED_PRECONDITION);
  }
  // No held candidate's file is left behind.
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir + "/models")) {
    const std::string file = entry.path().filename().string();
    EXPECT_FALSE(file.starts_with("v") && file.size() > 16) << entry.path();
  }
  std::filesystem::remove_all(dir);
}

// Blocks too faint for one lumisection (2-3 sd of their sum), from right after a first model
// trained on 200 histograms, for 1,000 lumisections with retraining on: flagged within 20 by
// the evidence that grows over lumisections, and still flagged at the end. The retrainings that
// the flagged lumisections feed must not learn the block as normal. (A first model of 100 has
// 25 held-out histograms to measure its blocks with, and the evidence a wider allowance: the
// spectrum's block is then first flagged after a median of 18 lumisections, 12 with 200, in
// `histguard_detection --lasting --training N`; see docs/detection.md.)
TEST(Vigilance, AFaintLastingDefectIsNotLearnedByRetraining) {
  DaemonProcess d({"--min-train-samples", "200"});
  ASSERT_TRUE(d.started()) << d.error();
  Client client(d.grpc_address());
  std::vector<Lane> lanes(3);
  lanes[0].spec = SpecOf(sim::Family::kFallingSpectrum);
  lanes[0].block = Range(30, 46);
  lanes[0].efficiency = 0.9;
  lanes[1].spec = SpecOf(sim::Family::kChannelOccupancy);
  lanes[1].block = Range(60, 68);
  lanes[1].efficiency = 0.9;
  lanes[2].spec = SpecOf(sim::Family::kOccupancy2D);
  lanes[2].block = Rectangle(20, 6, 11, 4, 4);
  lanes[2].efficiency = 0.85;
  for (size_t i = 0; i < lanes.size(); ++i) lanes[i].rng.seed(500 + i);
  uint64_t ls = TrainLanes(client, lanes, 200);
  for (auto& l : lanes) Reset(l);
  FeedLanes(client, lanes, ls, 1000, 0, 0, false);
  for (const Lane& l : lanes) {
    Print("faint defect", l);
    const auto info = GetMonitor(client, l.spec.name);
    std::printf("  active v%llu, anchor v%llu, pending: %s\n",
                static_cast<unsigned long long>(info.active_version()),
                static_cast<unsigned long long>(info.anchor_version()),
                info.pending_change().c_str());
  }
  for (const Lane& l : lanes) {
    SCOPED_TRACE(l.spec.name);
    EXPECT_GE(l.first_flag, 0);
    EXPECT_LT(l.first_flag, 20);
    EXPECT_GE(l.flagged_last, 0.95 * l.last_count) << "the faint defect is learned as normal";
  }
}

// A lasting change too faint for one lumisection, flagged by the evidence it has gathered over
// many, stays flagged across a restart (an upgrade in the middle of a run), and its streak counts
// on: the evidence is not gathered again from nothing.
TEST(Vigilance, AFaintLastingChangeStaysFlaggedAcrossARestart) {
  char tmpl[] = "/tmp/histguard-lasting-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  std::vector<Lane> lanes(1);
  lanes[0].spec = SpecOf(sim::Family::kFallingSpectrum);
  lanes[0].block = Range(30, 46);
  lanes[0].efficiency = 0.9;  // about 3 sd of the block's sum: one lumisection rarely shows it
  lanes[0].rng.seed(400);
  const std::string& name = lanes[0].spec.name;
  // One model, trained on 400 histograms: what is tested is what a restart keeps.
  const std::vector<std::string> flags = {"--min-train-samples", "400", "--retraining", "false"};
  uint64_t ls = 0;
  v1::MonitorInfo before;
  {
    DaemonProcess d(flags, dir);
    ASSERT_TRUE(d.started()) << d.error();
    Client client(d.grpc_address());
    ls = TrainLanes(client, lanes, 400);
    for (int round = 0; round < 12 && before.lasting_lumisections() < 20; ++round) {
      FeedLanes(client, lanes, ls, 50, 0, 0, false);
      before = GetMonitor(client, name);
    }
    Print("before a restart", lanes[0]);
    ASSERT_GE(before.lasting_lumisections(), 20u) << "the faint block was not flagged as lasting";
    ASSERT_EQ(d.Stop(SIGTERM), 0);
  }
  DaemonProcess d(flags, dir);
  ASSERT_TRUE(d.started()) << d.error();
  Client client(d.grpc_address());
  const auto restored = GetMonitor(client, name);
  EXPECT_EQ(restored.lasting_lumisections(), before.lasting_lumisections());
  EXPECT_EQ(restored.lasting_change(), before.lasting_change());
  EXPECT_EQ(MetricValue(d, "histguard_monitor_lasting_change_lumisections", name),
            std::to_string(before.lasting_lumisections()));
  // The next lumisections are flagged from the first on, and the streak goes on counting.
  int flagged = 0;
  const int after = 10;
  v1::Verdict last;
  for (int i = 0; i < after; ++i) {
    auto h = Make(lanes[0].spec, sim::Draw(lanes[0].spec, 1e4, Anomaly::kNone, 0, lanes[0].rng), 1,
                  ++ls);
    Thin(h, lanes[0].block, lanes[0].efficiency, lanes[0].rng);
    std::vector<v1::Verdict> vs;
    ASSERT_TRUE(client.Submit({h}, &vs).ok());
    ASSERT_EQ(vs.size(), 1u);
    if (i == 0) {
      EXPECT_TRUE(Flagged(vs[0])) << "the first after the restart: " << vs[0].DebugString();
    }
    flagged += Flagged(vs[0]);
    last = vs[0];
  }
  std::printf("after a restart: %d/%d flagged; %s\n", flagged, after, last.detail().c_str());
  EXPECT_EQ(flagged, after);
  EXPECT_NE(
      last.detail().find("flagged for " + std::to_string(before.lasting_lumisections() + after) +
                         " lumisections in a row"),
      std::string::npos)
      << last.detail();
  std::filesystem::remove_all(dir);
}

// The axis nuisances of 1D spectra: fitted to every histogram against the anchor's reference
// shape, reported in the verdict and on /metrics, followed while they creep across retrainings,
// and flagged, by name, when they jump.
TEST(Vigilance, TheAxisNuisancesAreReportedFollowedAndAJumpIsFlagged) {
  char tmpl[] = "/tmp/histguard-axis-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  // Retraining every 150 lumisections: the spectrum's drift is learned by new models while its
  // nuisances stay measured against the anchor.
  const std::vector<std::string> flags = {"--retrain-every", "150"};
  auto d = std::make_unique<DaemonProcess>(flags, dir);
  ASSERT_TRUE(d->started()) << d->error();
  auto client_ptr = std::make_unique<Client>(d->grpc_address());
  std::vector<Lane> lanes(2);
  // A falling energy spectrum whose axis the gain scales, creeping by 0.02% a lumisection.
  lanes[0].spec = SpecOf(sim::Family::kFallingSpectrum);
  lanes[0].gain_per_ls = 0.0002;
  // A mass peak that will jump.
  lanes[1].spec = SpecOf(sim::Family::kPeakOnBackground);
  for (size_t i = 0; i < lanes.size(); ++i) lanes[i].rng.seed(300 + i);
  uint64_t ls = TrainLanes(*client_ptr, lanes, 100);
  for (auto& l : lanes) Reset(l);
  FeedLanes(*client_ptr, lanes, ls, 300, 0, 0, false);
  for (const Lane& l : lanes) Print("nuisances", l);
  // Within 2% (0-1 of 300 when the machine is idle): a retraining that runs late on a loaded
  // machine (5 of 300 seen while other suites ran) lets the creep outrun the model for a while.
  for (const Lane& l : lanes) EXPECT_LE(l.false_alarms, 6) << l.spec.name;

  auto nuisances = [&](const v1::Verdict& v) {
    std::map<std::string, double> out;
    for (const auto& n : v.nuisances()) {
      EXPECT_GT(n.error(), 0) << n.name();
      out[n.name()] = n.value();
    }
    return out;
  };
  // A restart (an upgrade, a rescheduled pod): the nuisances go on against the same reference,
  // and their course is not learned again, so a jump right after it is still flagged.
  const auto before = GetMonitor(*client_ptr, lanes[0].spec.name);
  std::printf("spectrum: active v%llu, anchor v%llu\n",
              static_cast<unsigned long long>(before.active_version()),
              static_cast<unsigned long long>(before.anchor_version()));
  EXPECT_GT(before.active_version(), before.anchor_version()) << "the drift was retrained on";
  ASSERT_EQ(d->Stop(SIGTERM), 0);
  client_ptr.reset();
  d = std::make_unique<DaemonProcess>(flags, dir);
  ASSERT_TRUE(d->started()) << d->error();
  client_ptr = std::make_unique<Client>(d->grpc_address());

  // The gain the spectrum's last lumisections were drawn with: 1 + 0.0002 x 299.
  const auto falling = GetMonitor(*client_ptr, lanes[0].spec.name);
  const auto fitted = nuisances(falling.last_verdict());
  ASSERT_TRUE(fitted.count("gain") && fitted.count("shift"))
      << falling.last_verdict().DebugString();
  EXPECT_FALSE(fitted.count("tilt")) << "not fitted by default";
  // One lumisection's gain varies with the simulated spectrum's own shape from one to the next
  // (sd 0.017-0.021 seen here), so a mean of 20 missed 1.06 by 0.015 now and then (1.061-1.075
  // seen). And the anchor's reference is the mean shape of the first model's few dozen held-out
  // histograms, which reads the same lumisections' gain differently from one training to the
  // next (at 1.00: 1.000-1.007 over 60). So: 100 at the gain the drift reached against 100 at the
  // gain the anchor learned, the ratio of their means (1.052-1.065 seen with 60 each).
  auto mean_gain_at = [&](double gain, double* last_gain) {
    lanes[0].spec.gain = gain;
    double mean = 0, squares = 0;
    const int n = 100;
    for (int i = 0; i < n; ++i) {
      std::vector<v1::Verdict> more;
      const auto h = Make(lanes[0].spec,
                          sim::Draw(lanes[0].spec, 1e4, Anomaly::kNone, 0, lanes[0].rng), 1, ++ls);
      EXPECT_TRUE((*client_ptr).Submit({h}, &more).ok());
      if (more.size() != 1) return 0.0;
      *last_gain = nuisances(more[0])["gain"];
      mean += *last_gain / n;
      squares += *last_gain * *last_gain / n;
    }
    std::printf("spectrum drawn at gain %.3f: fitted %.4f, sd %.4f (of %d)\n", gain, mean,
                std::sqrt(std::max(squares - mean * mean, 0.0)), n);
    return mean;
  };
  double last_gain = 0;
  const double drifted = mean_gain_at(1.06, &last_gain);
  int status = 0;
  const std::string body = HttpGet(d->metrics_address(), "/metrics", &status);
  const std::string key =
      "histguard_monitor_nuisance{monitor=\"" + lanes[0].spec.name + "\",nuisance=\"gain\"} ";
  const size_t at = body.find(key);
  ASSERT_NE(at, std::string::npos) << "no gain gauge";
  EXPECT_NEAR(std::stod(body.substr(at + key.size())), last_gain, 1e-6);
  double unused = 0;
  const double learned = mean_gain_at(1.0, &unused);
  std::printf("the gain before the restart %.4f; 1.060 against 1.000: %.4f\n", fitted.at("gain"),
              drifted / learned);
  EXPECT_NEAR(drifted / learned, 1.06, 0.02);
  EXPECT_NEAR(learned, 1.0, 0.04) << "against the anchor's reference";

  // The peak jumps by 5% (an HV trip): flagged at once, and the verdict says what jumped.
  lanes[1].spec.gain = 1.05;
  std::vector<v1::Verdict> vs;
  ASSERT_TRUE(
      (*client_ptr)
          .Submit({Make(lanes[1].spec,
                        sim::Draw(lanes[1].spec, 1e4, Anomaly::kNone, 0, lanes[1].rng), 1, ++ls)},
                  &vs)
          .ok());
  ASSERT_EQ(vs.size(), 1u);
  std::printf("a 5%% jump of the peak: %s, p %.3g: %s\n", v1::Quality_Name(vs[0].quality()).c_str(),
              vs[0].p_value(), vs[0].detail().c_str());
  EXPECT_TRUE(Flagged(vs[0])) << vs[0].DebugString();
  EXPECT_TRUE(vs[0].detail().find("jumped") != std::string::npos ||
              vs[0].detail().find("shifted") != std::string::npos)
      << vs[0].detail();
  EXPECT_EQ(nuisances(vs[0]).size(), 2u);
  d.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace histguard::testing
