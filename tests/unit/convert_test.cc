// The one conversion between the API's messages and the daemon's types: what a client sends
// reaches the scorer whole, and what the daemon says reaches the client whole.
#include "server/convert.h"

#include <gtest/gtest.h>

#include "proto/histguard/limits.h"

namespace histguard::server {
namespace {

TEST(ConvertTest, AHistogramCrossesTheBoundaryWhole) {
  v1::Histogram h;
  h.set_monitor("ecal/barrel/timing");
  h.set_run(356001);
  h.set_lumisection(42);
  h.set_time_unix_ms(1700000000123);
  h.add_shape(2);
  h.add_shape(3);
  for (double c : {0.0, 1.0, 2.5, 1e9, 7.0, 3.0}) h.add_contents(c);
  h.set_underflow(4);
  h.set_overflow(0.5);
  h.set_entries(1234);
  h.mutable_x_axis()->set_low(-5);
  h.mutable_x_axis()->set_high(5);
  h.mutable_x_axis()->set_title("t [ns]");
  const Histogram d = FromProto(h);
  EXPECT_EQ(d.key(), HistogramKey(356001, 42));
  EXPECT_EQ(d.contents, (std::vector<double>{0, 1, 2.5, 1e9, 7, 3}));
  ASSERT_TRUE(d.x_axis.has_value());
  EXPECT_EQ(d.x_axis->title, "t [ns]");
  EXPECT_FALSE(d.y_axis.has_value());  // not given, not invented
  v1::Histogram back;
  ToProto(d, &back);
  EXPECT_EQ(back.SerializeAsString(), h.SerializeAsString()) << back.DebugString();
}

TEST(ConvertTest, AVerdictReachesTheClientWhole) {
  v1::Verdict v;
  v.set_monitor("ecal/barrel/timing");
  v.set_run(1);
  v.set_lumisection(2);
  v.set_quality(v1::QUALITY_WARNING);
  v.set_score(3.5);
  v.set_p_value(2e-3);
  v.set_model_version(4);
  auto* b = v.add_top_bins();
  b->set_bin(17);
  b->set_pull(-6.25);
  v.set_detail("bins 17-20 low");
  auto* n = v.add_nuisances();
  n->set_name("gain");
  n->set_value(1.02);
  n->set_error(0.003);
  const std::optional<Verdict> d = FromProto(v);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->quality, Quality::kWarning);
  v1::Verdict back;
  ToProto(*d, &back);
  EXPECT_EQ(back.SerializeAsString(), v.SerializeAsString()) << back.DebugString();
  // Every quality maps both ways; an unspecified or unknown one is no quality.
  for (int q = 0; q < kQualities; ++q)
    EXPECT_EQ(FromProto(ToProto(static_cast<Quality>(q))), static_cast<Quality>(q));
  EXPECT_FALSE(FromProto(v1::QUALITY_UNSPECIFIED).has_value());
  EXPECT_FALSE(FromProto(static_cast<v1::Quality>(99)).has_value());
  v.set_quality(v1::QUALITY_UNSPECIFIED);
  EXPECT_FALSE(FromProto(v).has_value());
}

TEST(ConvertTest, ARejectedHistogramsVerdictNamesIt) {
  v1::Histogram h;
  h.set_monitor(std::string(300, 'a'));  // too long to be a monitor's name
  h.set_run(9);
  h.set_lumisection(10);
  const Verdict v = VerdictFor(h);
  EXPECT_EQ(v.monitor.size(), kMaxMonitorName);
  EXPECT_EQ(v.key(), HistogramKey(9, 10));
  EXPECT_EQ(v.quality, Quality::kRejected);
}

TEST(ConvertTest, OnlyGoodAndBadAreLabels) {
  v1::LabelRequest l;
  l.set_monitor("m");
  l.set_run(1);
  l.set_lumisection(2);
  l.set_comment("c");
  l.set_author("a");
  l.set_label(v1::QUALITY_BAD);
  const std::optional<Label> bad = FromProto(l);
  ASSERT_TRUE(bad.has_value());
  EXPECT_FALSE(bad->good);
  v1::LabelRequest back;
  ToProto(*bad, &back);
  EXPECT_EQ(back.SerializeAsString(), l.SerializeAsString());
  l.set_label(v1::QUALITY_GOOD);
  EXPECT_TRUE(FromProto(l)->good);
  for (v1::Quality q : {v1::QUALITY_UNSPECIFIED, v1::QUALITY_WARNING, v1::QUALITY_LEARNING}) {
    l.set_label(q);
    EXPECT_FALSE(FromProto(l).has_value()) << v1::Quality_Name(q);
  }
}

TEST(ConvertTest, AMonitorsStatusNamesItsActiveAndAnchorVersions) {
  MonitorStatus s;
  s.monitor = "m";
  s.shape = {64};
  s.active_version = 3;
  s.anchor_version = 1;
  for (uint64_t v : {1, 2, 3}) {
    VersionInfo info;
    info.version = v;
    s.versions.push_back(info);
  }
  s.accepting_from = HistogramKey(5, 6);
  v1::MonitorInfo info;
  ToProto(s, &info);
  ASSERT_EQ(info.versions_size(), 3);
  EXPECT_TRUE(info.versions(0).anchor());
  EXPECT_FALSE(info.versions(0).active());
  EXPECT_TRUE(info.versions(2).active());
  EXPECT_FALSE(info.versions(2).anchor());
  EXPECT_EQ(info.accepting().run(), 5u);
  EXPECT_EQ(info.accepting().from_lumisection(), 6u);
  EXPECT_FALSE(info.has_last_verdict());  // none since start-up
  s.last_verdict = Verdict();
  s.last_verdict->monitor = "m";
  s.last_verdict->run = 5;
  s.last_verdict->lumisection = 9;
  s.last_verdict->quality = Quality::kBad;
  v1::MonitorSummary summary;
  ToProto(s, &summary);
  EXPECT_EQ(summary.model_version(), 3u);
  EXPECT_EQ(summary.last_verdict().quality(), v1::QUALITY_BAD);
  EXPECT_EQ(summary.last_verdict().lumisection(), 9u);
}

}  // namespace
}  // namespace histguard::server
