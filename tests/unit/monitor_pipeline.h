// An in-process monitor pipeline for tests: a store, model files, metrics, a registry, a
// training scheduler and a scorer in a temporary directory, fed as a scoring thread feeds them.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <thread>

#include "server/convert.h"
#include "server/scorer.h"
#include "server/security.h"
#include "simulation/detector_simulator.h"

namespace histguard::server {

class MonitorPipeline : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.min_train_samples = 40;
    config_.max_monitors = 3;
    config_.min_entries = 100;
    spec_ = sim::DefaultMonitors(2)[1];
    config_.window_size = 100;
    config_.history = 200;
    char tmpl[] = "/tmp/histguard-pipeline-XXXXXX";
    dir_ = mkdtemp(tmpl);
    auto store = Store::Open(dir_ + "/state");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    files_ = std::make_unique<ModelFiles>(dir_);
    metrics_ = std::make_unique<Metrics>();
    registry_ = std::make_unique<MonitorRegistry>(config_, *metrics_);
    training_ = std::make_unique<TrainingScheduler>(config_, *metrics_, *store_, *files_);
    scorer_ = std::make_unique<Scorer>(config_, *metrics_, *registry_, *training_, *store_);
  }
  void TearDown() override {
    scorer_.reset();
    training_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  v1::Histogram Make(sim::Anomaly a = sim::Anomaly::kNone, double entries = 1e4,
                     const std::string& name = "") {
    const auto s = sim::Draw(spec_, entries, a, 2.0, rng_);
    v1::Histogram h;
    h.set_monitor(name.empty() ? spec_.name : name);
    h.set_lumisection(++ls_);
    for (auto d : s.shape) h.add_shape(d);
    h.mutable_contents()->Assign(s.contents.begin(), s.contents.end());
    return h;
  }

  // Scores and commits one histogram as a scoring thread does, converted as the services do.
  v1::Verdict Score(const v1::Histogram& h) {
    Verdict v = VerdictFor(h);
    ScoredWrites out;
    scorer_->ScoreOne(FromProto(h), v, scratch_, out);
    const absl::Status stored = store_->Commit(out.writes);
    EXPECT_TRUE(stored.ok()) << stored.message();
    if (stored.ok()) scorer_->StartTrainings(out);
    v1::Verdict answer;
    ToProto(v, &answer);
    return answer;
  }

  // Waits (up to two minutes) until `done` holds for the monitor, checked under its lock.
  bool WaitFor(const std::function<bool(const Monitor&)>& done) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::minutes(2);
    while (std::chrono::steady_clock::now() < until) {
      if (const auto m = registry_->Find(spec_.name)) {
        absl::MutexLock lk(&m->mu);
        if (done(*m)) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  // Until the monitor's active model is `version` or newer.
  bool WaitForModel(uint64_t version) {
    return WaitFor([&](const Monitor& m) { return m.model && m.model->version >= version; });
  }
  // Until no training of the monitor runs.
  bool WaitIdle() {
    return WaitFor([](const Monitor& m) { return !m.training; });
  }

  // For the services: no authentication, and an audit log at `audit_path` ("" logs nothing).
  void OpenSecurity(const std::string& audit_path) {
    auto auth = Authenticator::Open("");
    ASSERT_TRUE(auth.ok()) << auth.status().message();
    auth_ = std::move(*auth);
    auto audit = AuditLog::Open(audit_path);
    ASSERT_TRUE(audit.ok()) << audit.status().message();
    audit_ = std::move(*audit);
  }

  Config config_;
  std::string dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<ModelFiles> files_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<MonitorRegistry> registry_;
  std::unique_ptr<TrainingScheduler> training_;
  std::unique_ptr<Scorer> scorer_;
  std::unique_ptr<Authenticator> auth_;  // after OpenSecurity
  std::unique_ptr<AuditLog> audit_;
  sim::MonitorSpec spec_;
  std::mt19937_64 rng_{5};
  uint64_t ls_ = 0;
  models::Scratch scratch_;
};

}  // namespace histguard::server
