// What /metrics shows of each monitor for alert rules: verdict counters by quality from the
// monitor's first appearance, its own thresholds, significance gauges that leave once stale; and
// the run state that tells the silence between runs from a DAQ that stopped.
#include "server/metrics.h"

#include <gtest/gtest.h>

#include "server/monitors.h"
#include "server/run_state.h"

namespace histguard::server {
namespace {

bool Has(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

TEST(Metrics, MonitorVerdictCountersExistAtZeroFromTheMonitorsFirstHistogram) {
  // A counter that first appears at 1 has no increase for Prometheus: the first BAD lumisection
  // would never alert.
  Config config;
  Metrics metrics;
  MonitorRegistry registry(config, metrics);
  Rejection why;
  ASSERT_TRUE(registry.FindOrCreate("pixel/barrel/l1/occupancy", &why));
  const std::string text = metrics.Render();
  for (const char* q : {"good", "warning", "bad"})
    EXPECT_TRUE(Has(text, std::string("histguard_monitor_verdicts_total{monitor=\"pixel/barrel/l1/"
                                      "occupancy\",quality=\"") +
                              q + "\"} 0"))
        << q << "\n"
        << text;
  EXPECT_TRUE(Has(text,
                  "histguard_monitor_last_bad_timestamp_seconds{monitor=\"pixel/barrel/l1/"
                  "occupancy\"} 0"))
      << text;
}

TEST(Metrics, EachMonitorExportsItsOwnThresholds) {
  Config config;
  config.thresholds.push_back({"ecal/*", 1e-4, 1e-7, 100});
  Metrics metrics;
  MonitorRegistry registry(config, metrics);
  Rejection why;
  ASSERT_TRUE(registry.FindOrCreate("ecal/barrel/timing", &why));
  ASSERT_TRUE(registry.FindOrCreate("hcal/energy", &why));
  const std::string text = metrics.Render();
  const std::string name = "histguard_monitor_threshold_significance";
  EXPECT_TRUE(Has(text, name + "{monitor=\"ecal/barrel/timing\",quality=\"warning\"} 4")) << text;
  EXPECT_TRUE(Has(text, name + "{monitor=\"ecal/barrel/timing\",quality=\"bad\"} 7")) << text;
  EXPECT_TRUE(Has(text, name + "{monitor=\"hcal/energy\",quality=\"warning\"} 3")) << text;
  EXPECT_TRUE(Has(text, name + "{monitor=\"hcal/energy\",quality=\"bad\"} 5")) << text;
}

TEST(Metrics, SignificanceLeavesOnceTheLastVerdictIsStale) {
  Metrics metrics(300);
  auto fresh = metrics.AddMonitor("fresh");
  auto old = metrics.AddMonitor("old");
  auto never = metrics.AddMonitor("never");  // restored, no verdict since the start
  const double now = 1.7e9;
  fresh.last_verdict_time->Set(now - 20);
  fresh.significance->Set(6);
  old.last_verdict_time->Set(now - 301);
  old.significance->Set(6);
  never.significance->Set(0);
  const std::string text = metrics.Render(now);
  EXPECT_TRUE(Has(text, "histguard_anomaly_significance{monitor=\"fresh\"} 6")) << text;
  EXPECT_EQ(text.find("histguard_anomaly_significance{monitor=\"old\""), std::string::npos);
  EXPECT_EQ(text.find("histguard_anomaly_score{monitor=\"old\""), std::string::npos);
  EXPECT_EQ(text.find("histguard_anomaly_significance{monitor=\"never\""), std::string::npos);
  // What the silence alerts read stays.
  EXPECT_TRUE(Has(text, "histguard_last_verdict_timestamp_seconds{monitor=\"old\"} " +
                            std::to_string(static_cast<long long>(now - 301))))
      << text;
  // 0: never stale.
  Metrics keep(0);
  auto k = keep.AddMonitor("old");
  k.last_verdict_time->Set(now - 1e6);
  k.significance->Set(6);
  EXPECT_TRUE(Has(keep.Render(now), "histguard_anomaly_significance{monitor=\"old\"} 6"));
}

TEST(Metrics, AForgottenMonitorsSeriesGoWithIt) {
  Metrics metrics;
  metrics.AddMonitor("gone");
  metrics.RemoveMonitor("gone");
  EXPECT_EQ(metrics.Render().find("monitor=\"gone\""), std::string::npos) << metrics.Render();
}

// Forgetting an idle monitor takes out that one only: a monitor made under the same name since
// (after an operator's forget) stays.
TEST(MonitorRegistry, RemovingAForgottenMonitorLeavesItsSuccessor) {
  Config config;
  Metrics metrics;
  MonitorRegistry registry(config, metrics);
  Rejection why;
  const auto first = registry.FindOrCreate("ecal/barrel/occupancy", &why);
  ASSERT_TRUE(first);
  ASSERT_EQ(registry.Remove(first->name), first);
  const auto second = registry.FindOrCreate("ecal/barrel/occupancy", &why);
  ASSERT_TRUE(second);
  EXPECT_EQ(registry.Remove(first->name, first.get()), nullptr);
  EXPECT_EQ(registry.Find("ecal/barrel/occupancy"), second);
  EXPECT_EQ(registry.Remove(second->name, second.get()), second);
  EXPECT_EQ(registry.size(), 0u);
}

TEST(RunState, HistogramsOpenNewRunsAndOnlyRunControlEndsThem) {
  Metrics metrics;
  RunState runs(metrics);
  EXPECT_FALSE(runs.Get().open);
  EXPECT_TRUE(Has(metrics.Render(), "histguard_run_open 0"));
  runs.Seen(100);
  EXPECT_EQ(runs.Get().run, 100u);
  EXPECT_TRUE(runs.Get().open);
  EXPECT_TRUE(Has(metrics.Render(), "histguard_run 100"));
  EXPECT_TRUE(Has(metrics.Render(), "histguard_run_open 1"));
  runs.Seen(99);  // a late histogram of an older run
  EXPECT_EQ(runs.Get().run, 100u);
  runs.End(100);
  EXPECT_FALSE(runs.Get().open);
  EXPECT_TRUE(Has(metrics.Render(), "histguard_run_open 0"));
  runs.Seen(100);  // the ended run's last histograms do not reopen it
  EXPECT_FALSE(runs.Get().open);
  runs.Seen(101);
  EXPECT_TRUE(runs.Get().open);
  EXPECT_EQ(runs.Get().run, 101u);
}

TEST(RunState, RunControlMayStartAnEndedRunAgain) {
  Metrics metrics;
  RunState runs(metrics);
  runs.Start(7);
  EXPECT_TRUE(runs.Get().open);
  runs.End(7);
  const auto again = runs.Start(7);
  EXPECT_TRUE(again.open);
  EXPECT_EQ(again.run, 7u);
  runs.End(8);  // a run never seen ends: nothing is open
  EXPECT_FALSE(runs.Get().open);
  EXPECT_EQ(runs.Get().run, 8u);
  runs.Seen(8);
  EXPECT_FALSE(runs.Get().open);
}

}  // namespace
}  // namespace histguard::server
