// The histguard.v1.Control gRPC service: what operators use to look at and steer the monitors.
//
// - ListMonitors, GetMonitor: the monitors' state (versions with manifests, window, thresholds).
// - Inspect: a stored histogram with the expectation, pulls and verdict.
// - Label: a person's GOOD/BAD; BAD leaves the training window, GOOD enters it.
// - Retrain: trains now; answers with the new version or why it was rejected.
// - Rollback: makes a kept older version active again (and the anchor).
// - Forget: retires a monitor, deleting its models and everything stored of it.
// - Accept: takes a lasting change as the new normal from a lumisection on.
// - Approve, Reject: an operator's word on a candidate held for a localised change.
//
// Unknown monitors, histograms or versions are NOT_FOUND with a message naming them. Reactors
// never wait for training: Retrain answers from the training thread when the job ends.
//
// Reads need the `read` role, the rest `operator` (server/security.h); every state-changing
// call is recorded in the audit log with the caller's identity, which is also a label's author.
// The console's HTTP API (server/console_api.h) makes the same calls through the Do* methods.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "histguard/v1/histguard.grpc.pb.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/model_files.h"
#include "server/monitors.h"
#include "server/security.h"
#include "server/store.h"
#include "server/training_scheduler.h"

namespace histguard::server {

class ControlService final : public v1::Control::CallbackService {
 public:
  ControlService(const Config& config, Metrics& metrics, MonitorRegistry& registry, Store& store,
                 const ModelFiles& files, TrainingScheduler& training, const Authenticator& auth,
                 AuditLog& audit)
      : config_(config),
        metrics_(metrics),
        registry_(registry),
        store_(store),
        files_(files),
        training_(training),
        auth_(auth),
        audit_(audit) {}

  static constexpr size_t kMaxComment = 4096;  // bytes of an operator's comment
  static constexpr size_t kMaxAuthor = 128;

  grpc::ServerUnaryReactor* ListMonitors(grpc::CallbackServerContext* context,
                                         const v1::ListMonitorsRequest* request,
                                         v1::ListMonitorsResponse* response) override;
  grpc::ServerUnaryReactor* GetMonitor(grpc::CallbackServerContext* context,
                                       const v1::GetMonitorRequest* request,
                                       v1::MonitorInfo* response) override;
  grpc::ServerUnaryReactor* Inspect(grpc::CallbackServerContext* context,
                                    const v1::InspectRequest* request,
                                    v1::Inspection* response) override;
  grpc::ServerUnaryReactor* Label(grpc::CallbackServerContext* context,
                                  const v1::LabelRequest* request,
                                  v1::LabelResponse* response) override;
  grpc::ServerUnaryReactor* Retrain(grpc::CallbackServerContext* context,
                                    const v1::RetrainRequest* request,
                                    v1::RetrainResponse* response) override;
  grpc::ServerUnaryReactor* Rollback(grpc::CallbackServerContext* context,
                                     const v1::RollbackRequest* request,
                                     v1::RollbackResponse* response) override;
  grpc::ServerUnaryReactor* Forget(grpc::CallbackServerContext* context,
                                   const v1::ForgetRequest* request,
                                   v1::ForgetResponse* response) override;
  grpc::ServerUnaryReactor* Accept(grpc::CallbackServerContext* context,
                                   const v1::AcceptRequest* request,
                                   v1::AcceptResponse* response) override;
  grpc::ServerUnaryReactor* Approve(grpc::CallbackServerContext* context,
                                    const v1::ApproveRequest* request,
                                    v1::ApproveResponse* response) override;
  grpc::ServerUnaryReactor* Reject(grpc::CallbackServerContext* context,
                                   const v1::RejectRequest* request,
                                   v1::RejectResponse* response) override;

  // Forgets every monitor that has received nothing for `idle` (none in training); returns how
  // many. Called from the daemon's housekeeping timer.
  size_t ForgetIdle(std::chrono::steady_clock::duration idle);

  // The calls themselves, shared by the gRPC methods above and the console's HTTP API: the
  // caller has checked the role (reads need `read`, the rest `operator`), and `who` is the
  // authenticated identity. Errors are NOT_FOUND (unknown monitor, histogram or version),
  // INVALID_ARGUMENT, FAILED_PRECONDITION, DATA_LOSS (a damaged record or model file, counted and
  // logged) or UNAVAILABLE (the store refused a write).
  absl::Status DoListMonitors(const v1::ListMonitorsRequest& request,
                              v1::ListMonitorsResponse* response);
  absl::Status DoGetMonitor(const v1::GetMonitorRequest& request, v1::MonitorInfo* response);
  absl::Status DoInspect(const v1::InspectRequest& request, v1::Inspection* response);
  absl::Status DoLabel(const std::string& who, const v1::LabelRequest& request);
  // Queues the training; `done` runs on the training thread when it ends.
  absl::Status DoRetrain(const std::string& who, const v1::RetrainRequest& request,
                         std::function<void(const TrainResult&)> done);
  absl::Status DoRollback(const std::string& who, const v1::RollbackRequest& request,
                          v1::RollbackResponse* response);
  absl::Status DoForget(const std::string& who, const v1::ForgetRequest& request,
                        v1::ForgetResponse* response);
  absl::Status DoAccept(const std::string& who, const v1::AcceptRequest& request,
                        v1::AcceptResponse* response);
  absl::Status DoApprove(const std::string& who, const v1::ApproveRequest& request,
                         v1::ApproveResponse* response);
  absl::Status DoReject(const std::string& who, const v1::RejectRequest& request);

  // A monitor's stored verdicts of one run (default: its newest), for the console's history.
  struct HistoryPoint {
    uint64_t lumisection = 0;
    Quality quality = Quality::kRejected;
    double p_value = 1, score = 0;
    int64_t time_unix_ms = 0;
    std::optional<Quality> label;  // a person's GOOD or BAD, if any
  };
  struct History {
    uint64_t run = 0;
    std::vector<uint64_t> runs;              // every run with stored histograms, newest first
    std::vector<HistoryPoint> points;        // by lumisection
    std::optional<uint64_t> at_lumisection;  // the one nearest `at_unix_ms`, when asked
  };
  // With `at_unix_ms` (e.g. where a Grafana panel or an alert points) and no run: the run of the
  // stored lumisection received nearest that time.
  absl::StatusOr<History> DoHistory(const std::string& monitor, std::optional<uint64_t> run,
                                    std::optional<int64_t> at_unix_ms = std::nullopt);

 private:
  absl::StatusOr<std::shared_ptr<Monitor>> Find(const std::string& name) const;
  // InvalidArgument when an operator's comment is longer than kMaxComment.
  static absl::Status CheckComment(const std::string& comment);
  // Authorizes the caller for `need` and answers with what `call(identity)` returns.
  template <typename Call>
  grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* context, Role need, Call call);
  void Audit(const std::string& who, std::string_view action, const std::string& monitor,
             nlohmann::json fields, const absl::Status& result);
  // Marks `m` (already out of the registry) forgotten and deletes its files and stored state.
  absl::Status ForgetMonitor(Monitor& m, const std::string& why, v1::ForgetResponse* response);
  // A failed store read: NOT_FOUND when nothing is stored, DATA_LOSS (counted, logged) when the
  // stored record is damaged.
  absl::Status StoreError(const absl::Status& status, const Monitor& m, uint64_t run, uint64_t ls);

  const Config& config_;
  Metrics& metrics_;
  MonitorRegistry& registry_;
  Store& store_;
  const ModelFiles& files_;
  TrainingScheduler& training_;
  const Authenticator& auth_;
  AuditLog& audit_;
};

}  // namespace histguard::server
