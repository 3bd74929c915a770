// The Control service's calls on an in-process pipeline: what an operator's label, retrain,
// rollback and forget change, what each records in the audit log, and that a refused call
// changes nothing.
#include "server/control_service.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>

#include "tests/unit/monitor_pipeline.h"

namespace histguard::server {
namespace {

class ControlServiceTest : public MonitorPipeline {
 protected:
  void SetUp() override {
    MonitorPipeline::SetUp();
    if (HasFatalFailure()) return;
    // Any candidate is installed: what a retraining or rollback does is the subject here.
    config_.candidate_tolerance = 100;
    OpenSecurity(dir_ + "/audit.log");
    if (HasFatalFailure()) return;
    control_ = std::make_unique<ControlService>(config_, *metrics_, *registry_, *store_, *files_,
                                                *training_, *auth_, *audit_);
  }
  void TearDown() override {
    control_.reset();
    MonitorPipeline::TearDown();
  }

  // Scores normal histograms until the first model is active.
  void TrainFirst() {
    for (uint32_t i = 0; i < config_.min_train_samples; ++i) Score(Make());
    ASSERT_TRUE(WaitForModel(1));
  }

  TrainResult Retrain() {
    std::promise<TrainResult> result;
    v1::RetrainRequest req;
    req.set_monitor(spec_.name);
    const absl::Status s =
        control_->DoRetrain("alice", req, [&](const TrainResult& r) { result.set_value(r); });
    EXPECT_TRUE(s.ok()) << s.message();
    if (!s.ok()) return {};
    return result.get_future().get();
  }

  uint64_t ActiveVersion() {
    v1::GetMonitorRequest req;
    req.set_monitor(spec_.name);
    v1::MonitorInfo info;
    const absl::Status s = control_->DoGetMonitor(req, &info);
    EXPECT_TRUE(s.ok()) << s.message();
    return info.active_version();
  }

  absl::Status Label(const v1::Histogram& h, v1::Quality q, std::string comment = "checked") {
    v1::LabelRequest req;
    req.set_monitor(h.monitor());
    req.set_run(h.run());
    req.set_lumisection(h.lumisection());
    req.set_label(q);
    req.set_comment(std::move(comment));
    return control_->DoLabel("alice", req);
  }

  absl::StatusOr<v1::Inspection> Inspect(const v1::Histogram& h) {
    v1::InspectRequest req;
    req.set_monitor(h.monitor());
    req.set_run(h.run());
    req.set_lumisection(h.lumisection());
    v1::Inspection out;
    const absl::Status s = control_->DoInspect(req, &out);
    if (!s.ok()) return s;
    return out;
  }

  bool InWindow(const v1::Histogram& h) {
    const auto seen = Inspect(h);
    EXPECT_TRUE(seen.ok()) << seen.status().message();
    return seen.ok() && seen->in_training_window();
  }

  // The audit log's records, one JSON object per line.
  std::vector<nlohmann::json> AuditRecords() {
    std::vector<nlohmann::json> out;
    std::ifstream in(dir_ + "/audit.log");
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }

  std::unique_ptr<ControlService> control_;
};

// A rollback restarts the retraining triggers as a training does: the scheduled retraining does
// not undo the operator's choice after the few histograms that the replaced model had left.
TEST_F(ControlServiceTest, ARollbackIsNotUndoneByTheNextScheduledRetraining) {
  config_.retrain_every = 30;
  TrainFirst();
  for (int i = 0; i < 5; ++i) Score(Make());
  const TrainResult r = Retrain();
  ASSERT_TRUE(r.accepted) << r.reason;
  ASSERT_EQ(r.version, 2u);
  // 20 of the 30 that schedule the next retraining of v2.
  for (int i = 0; i < 20; ++i) ASSERT_EQ(Score(Make()).model_version(), 2u);

  v1::RollbackRequest req;
  req.set_monitor(spec_.name);
  req.set_version(1);
  v1::RollbackResponse resp;
  const absl::Status s = control_->DoRollback("alice", req, &resp);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(resp.active_version(), 1u);
  EXPECT_EQ(ActiveVersion(), 1u);

  // Well past where v2's count would have fired, v1 still scores.
  for (int i = 0; i < 25; ++i) EXPECT_EQ(Score(Make()).model_version(), 1u);
  ASSERT_TRUE(WaitIdle()) << "the training did not end";
  EXPECT_EQ(ActiveVersion(), 1u) << "a scheduled retraining replaced the rolled-back model";
  // The schedule resumes from the rollback.
  for (int i = 0; i < 10; ++i) Score(Make());
  EXPECT_TRUE(WaitForModel(3)) << "retraining does not resume after a rollback";

  const auto records = AuditRecords();
  const bool audited = std::any_of(records.begin(), records.end(), [](const nlohmann::json& j) {
    return j["action"] == "rollback" && j["identity"] == "alice" && j["version"] == 1 &&
           j["result"] == "ok";
  });
  EXPECT_TRUE(audited) << "the rollback is not in the audit log";
}

TEST_F(ControlServiceTest, LabelsTakeHistogramsOutOfTheWindowAndBackIn) {
  TrainFirst();
  const v1::Histogram normal = Make();
  Score(normal);
  ASSERT_TRUE(InWindow(normal));

  ASSERT_TRUE(Label(normal, v1::QUALITY_BAD).ok());
  auto seen = Inspect(normal);
  ASSERT_TRUE(seen.ok()) << seen.status().message();
  EXPECT_FALSE(seen->in_training_window()) << "labelled BAD, yet trained on";
  EXPECT_EQ(seen->label().label(), v1::QUALITY_BAD);
  EXPECT_EQ(seen->label().author(), "alice") << "the label's author is who made the call";

  ASSERT_TRUE(Label(normal, v1::QUALITY_GOOD).ok());
  EXPECT_TRUE(InWindow(normal)) << "the latest label counts";

  // A histogram flagged BAD stays out of the window until a person says it is good.
  v1::Histogram hot = Make(sim::Anomaly::kHotBin);
  ASSERT_EQ(Score(hot).quality(), v1::QUALITY_BAD);
  EXPECT_FALSE(InWindow(hot));
  ASSERT_TRUE(Label(hot, v1::QUALITY_GOOD).ok());
  EXPECT_TRUE(InWindow(hot));
}

TEST_F(ControlServiceTest, RefusedCallsNameWhyAndChangeNothing) {
  TrainFirst();
  const v1::Histogram h = Make();
  Score(h);

  const absl::Status long_comment =
      Label(h, v1::QUALITY_BAD, std::string(ControlService::kMaxComment + 1, 'x'));
  EXPECT_EQ(long_comment.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(InWindow(h)) << "a refused label took effect";
  const auto seen = Inspect(h);
  ASSERT_TRUE(seen.ok()) << seen.status().message();
  EXPECT_FALSE(seen->has_label());

  EXPECT_EQ(Label(h, v1::QUALITY_WARNING).code(), absl::StatusCode::kInvalidArgument)
      << "a person's label is GOOD or BAD";

  v1::Histogram unseen = h;
  unseen.set_lumisection(h.lumisection() + 1000);
  const absl::Status missing = Label(unseen, v1::QUALITY_BAD);
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Inspect(unseen).status().code(), absl::StatusCode::kNotFound);

  v1::RollbackRequest rollback;
  rollback.set_monitor(spec_.name);
  rollback.set_version(7);
  v1::RollbackResponse resp;
  const absl::Status no_version = control_->DoRollback("alice", rollback, &resp);
  EXPECT_EQ(no_version.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(no_version.message().find("7"), std::string::npos) << no_version.message();
  EXPECT_EQ(ActiveVersion(), 1u);

  v1::GetMonitorRequest get;
  get.set_monitor("no/such/monitor");
  v1::MonitorInfo info;
  const absl::Status unknown = control_->DoGetMonitor(get, &info);
  EXPECT_EQ(unknown.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(unknown.message().find("no/such/monitor"), std::string::npos) << unknown.message();
}

TEST_F(ControlServiceTest, ForgetDeletesTheMonitorAndItsNameStartsAfresh) {
  TrainFirst();
  const v1::Histogram h = Make();
  Score(h);
  ASSERT_TRUE(WaitIdle()) << "the training did not end";
  const std::string models = files_->Directory(spec_.name);
  ASSERT_TRUE(std::filesystem::exists(models));

  v1::ForgetRequest req;
  req.set_monitor(spec_.name);
  req.set_comment("the channel was recabled");
  v1::ForgetResponse resp;
  const absl::Status s = control_->DoForget("alice", req, &resp);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_GE(resp.versions_deleted(), 1u);
  EXPECT_EQ(resp.histograms_deleted(), ls_) << "every stored histogram of it";
  EXPECT_EQ(registry_->Find(spec_.name), nullptr);
  EXPECT_FALSE(std::filesystem::exists(models)) << "its model files are left behind";
  EXPECT_EQ(Inspect(h).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(control_->DoForget("alice", req, &resp).code(), absl::StatusCode::kNotFound)
      << "forgetting twice";

  // The name is free: a histogram of it starts a new monitor, learning from nothing.
  const v1::Verdict v = Score(Make());
  EXPECT_EQ(v.model_version(), 0u);
  EXPECT_EQ(v.quality(), v1::QUALITY_LEARNING);

  const auto records = AuditRecords();
  const bool audited = std::any_of(records.begin(), records.end(), [](const nlohmann::json& j) {
    return j["action"] == "forget" && j["identity"] == "alice" &&
           j["comment"] == "the channel was recabled";
  });
  EXPECT_TRUE(audited) << "the forget is not in the audit log";
}

}  // namespace
}  // namespace histguard::server
