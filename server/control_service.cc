#include "server/control_service.h"

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>
#include <set>

#include "models/stats.h"
#include "server/convert.h"
#include "server/meta.h"
#include "server/retraining_policy.h"

namespace histguard::server {
namespace {

std::string KeyText(uint64_t run, uint64_t ls) {
  return "run " + std::to_string(run) + " lumisection " + std::to_string(ls);
}

}  // namespace

absl::Status ControlService::StoreError(const absl::Status& status, const Monitor& m, uint64_t run,
                                        uint64_t ls) {
  if (absl::IsNotFound(status))
    return absl::NotFoundError("monitor '" + m.name + "' has no stored histogram for " +
                               KeyText(run, ls));
  metrics_.StoreErrors("corrupt").Increment();
  std::clog << "histguardd: " << m.name << " " << KeyText(run, ls) << ": " << status.message()
            << "\n";
  return absl::DataLossError("monitor '" + m.name + "', " + KeyText(run, ls) + ": " +
                             std::string(status.message()));
}

absl::StatusOr<std::shared_ptr<Monitor>> ControlService::Find(const std::string& name) const {
  std::shared_ptr<Monitor> m = registry_.Find(name);
  if (!m) return absl::NotFoundError("no monitor named '" + name + "'");
  return m;
}

void ControlService::Audit(const std::string& who, std::string_view action,
                           const std::string& monitor, nlohmann::json fields,
                           const absl::Status& result) {
  audit_.Record(who, action, monitor, fields.dump(), result);
}

// ---- the calls ----

absl::Status ControlService::DoListMonitors(const v1::ListMonitorsRequest& request,
                                            v1::ListMonitorsResponse* response) {
  for (const auto& m : registry_.All()) {
    if (!m->name.starts_with(request.prefix())) continue;
    MonitorStatus summary;
    {
      absl::MutexLock lk(&m->mu);
      summary = m->Summary();
    }
    ToProto(summary, response->add_monitors());
  }
  return absl::OkStatus();
}

absl::Status ControlService::DoGetMonitor(const v1::GetMonitorRequest& request,
                                          v1::MonitorInfo* response) {
  auto m = Find(request.monitor());
  if (!m.ok()) return m.status();
  MonitorStatus status;
  {
    absl::MutexLock lk(&(*m)->mu);
    status = (*m)->Describe();
  }
  ToProto(status, response);
  return absl::OkStatus();
}

absl::Status ControlService::DoInspect(const v1::InspectRequest& request,
                                       v1::Inspection* response) {
  auto found = Find(request.monitor());
  if (!found.ok()) return found.status();
  const std::shared_ptr<Monitor>& m = *found;
  auto rec = store_.GetRecord(m->name, request.run(), request.lumisection());
  if (!rec.ok()) return StoreError(rec.status(), *m, request.run(), request.lumisection());
  ToProto(*rec, response);
  // The expectation of the model that judged it, when that version is still at hand.
  std::shared_ptr<const models::Model> model;
  std::vector<uint32_t> shape;
  {
    absl::MutexLock lk(&m->mu);
    model = m->model;
    shape = m->shape;
    response->set_in_training_window(m->InWindow({request.run(), request.lumisection()}));
  }
  // The latest label a person gave it.
  const absl::Status labels = store_.ForEachLabel(m->name, [&](const server::Label& l) {
    if (l.key() == rec->histogram.key()) ToProto(l, response->mutable_label());
  });
  if (!labels.ok()) {
    metrics_.StoreErrors(absl::IsDataLoss(labels) ? "corrupt" : "read").Increment();
    std::clog << "histguardd: " << m->name << ": labels: " << labels.message() << "\n";
  }
  const uint64_t judged_by = rec->verdict.model_version;
  if (judged_by > 0 && (!model || model->version != judged_by)) {
    if (auto old = files_.Load(m->name, judged_by, shape); old.ok())
      model = std::make_shared<const models::Model>(std::move(*old));
  }
  const std::span<const double> counts(rec->histogram.contents);
  if (model && model->bins() == counts.size() && models::Sum(counts) > 0) {
    models::Scratch scratch;
    models::Expect(*model, counts, scratch);
    response->mutable_expected()->Assign(scratch.expected.begin(), scratch.expected.end());
    const auto pulls = models::Residuals(counts, scratch.expected);
    response->mutable_pulls()->Assign(pulls.begin(), pulls.end());
  }
  return absl::OkStatus();
}

absl::StatusOr<ControlService::History> ControlService::DoHistory(
    const std::string& monitor, std::optional<uint64_t> run, std::optional<int64_t> at_unix_ms) {
  auto found = Find(monitor);
  if (!found.ok()) return found.status();
  History h;
  std::set<uint64_t> runs;
  std::vector<std::pair<uint64_t, HistoryPoint>> all;  // (run, point)
  std::map<HistogramKey, bool> labels;
  {
    absl::MutexLock lk(&(*found)->mu);
    labels = (*found)->labels;
  }
  const absl::Status s = store_.ForEachRecord(monitor, [&](const Record& rec) {
    const Verdict& v = rec.verdict;
    runs.insert(v.run);
    HistoryPoint p;
    p.lumisection = v.lumisection;
    p.quality = v.quality;
    p.p_value = v.p_value;
    p.score = v.score;
    p.time_unix_ms = rec.histogram.time_unix_ms;
    if (auto it = labels.find(v.key()); it != labels.end())
      p.label = it->second ? Quality::kGood : Quality::kBad;
    all.emplace_back(v.run, p);
    return true;
  });
  if (absl::IsDataLoss(s)) {  // damaged records are skipped: the rest is shown
    metrics_.StoreErrors("corrupt").Increment();
    std::clog << "histguardd: " << monitor << ": " << s.message() << "\n";
  } else if (!s.ok()) {
    metrics_.StoreErrors("read").Increment();
    return absl::UnavailableError(
        "monitor '" + monitor +
        "': reading its stored histograms failed: " + std::string(s.message()));
  }
  h.runs.assign(runs.rbegin(), runs.rend());
  h.run = run ? *run : (runs.empty() ? 0 : *runs.rbegin());
  if (at_unix_ms) {
    const std::pair<uint64_t, HistoryPoint>* nearest = nullptr;
    for (const auto& rp : all) {
      if ((run && rp.first != *run) || rp.second.time_unix_ms <= 0) continue;
      if (!nearest || std::llabs(rp.second.time_unix_ms - *at_unix_ms) <
                          std::llabs(nearest->second.time_unix_ms - *at_unix_ms))
        nearest = &rp;
    }
    if (nearest) {
      h.run = nearest->first;
      h.at_lumisection = nearest->second.lumisection;
    }
  }
  for (auto& [r, p] : all)
    if (r == h.run) h.points.push_back(p);
  std::sort(h.points.begin(), h.points.end(), [](const HistoryPoint& a, const HistoryPoint& b) {
    return a.lumisection < b.lumisection;
  });
  return h;
}

absl::Status ControlService::DoLabel(const std::string& who, const v1::LabelRequest& request) {
  std::optional<server::Label> label = FromProto(request);
  if (!label) return absl::InvalidArgumentError("a label is QUALITY_GOOD or QUALITY_BAD");
  const bool good = label->good;
  if (request.comment().size() > kMaxComment || request.author().size() > kMaxAuthor)
    return absl::InvalidArgumentError("a label's comment holds at most " +
                                      std::to_string(kMaxComment) + " bytes and its author " +
                                      std::to_string(kMaxAuthor));
  auto found = Find(request.monitor());
  if (!found.ok()) return found.status();
  const std::shared_ptr<Monitor>& m = *found;
  const auto rec = store_.GetRecord(m->name, request.run(), request.lumisection());
  if (!rec.ok()) return StoreError(rec.status(), *m, request.run(), request.lumisection());
  // The author is who authenticated; a name the client gives counts only without
  // authentication (a local daemon), and is kept as it was given, escaped where it is logged.
  if (auth_.enabled() || label->author.empty()) label->author = who;
  const nlohmann::json fields = {{"run", request.run()},
                                 {"lumisection", request.lumisection()},
                                 {"label", good ? "GOOD" : "BAD"},
                                 {"comment", request.comment()}};
  Store::Batch batch;
  store_.PutLabel(batch, *label);
  if (const absl::Status s = store_.Commit(batch); !s.ok()) {
    metrics_.StoreErrors("write").Increment();
    Audit(label->author, "label", m->name, fields, s);
    return absl::UnavailableError("label not stored: " + std::string(s.message()));
  }
  Store::Batch unkept;
  {
    absl::MutexLock lk(&m->mu);
    for (const HistogramKey& old :
         m->ApplyLabel(*label, rec->histogram.contents, config_.window_size))
      store_.DeleteRecord(unkept, m->name, old.first, old.second);
  }
  // Histograms that left the window and are no longer kept records (the label is committed).
  if (const absl::Status s = store_.Commit(unkept); !s.ok())
    std::clog << "histguardd: " << m->name << ": cannot delete old histograms: " << s.message()
              << "\n";
  metrics_.Labels(good ? "good" : "bad").Increment();
  Audit(label->author, "label", m->name, fields, absl::OkStatus());
  std::clog << "histguardd: " << m->name << " " << KeyText(request.run(), request.lumisection())
            << " labelled " << (good ? "GOOD" : "BAD") << " by " << Printable(label->author)
            << "\n";
  return absl::OkStatus();
}

absl::Status ControlService::DoRetrain(const std::string& who, const v1::RetrainRequest& request,
                                       std::function<void(const TrainResult&)> done) {
  auto found = Find(request.monitor());
  if (!found.ok()) return found.status();
  const std::shared_ptr<Monitor>& m = *found;
  absl::MutexLock lk(&m->mu);
  if (m->training)
    return absl::FailedPreconditionError("a training of '" + m->name +
                                         "' is already running; try again when it has finished");
  if (m->window.size() < 20)
    return absl::FailedPreconditionError("monitor '" + m->name + "' has only " +
                                         std::to_string(m->window.size()) +
                                         " histograms in its window; at least 20 are needed");
  training_.ScheduleLocked(
      *m, "manual", [this, who, name = m->name, done = std::move(done)](const TrainResult& r) {
        Audit(who, "retrain", name,
              {{"accepted", r.accepted}, {"version", r.version}, {"reason", r.reason}},
              absl::OkStatus());
        if (done) done(r);
      });
  return absl::OkStatus();
}

absl::Status ControlService::DoRollback(const std::string& who, const v1::RollbackRequest& request,
                                        v1::RollbackResponse* response) {
  auto found = Find(request.monitor());
  if (!found.ok()) return found.status();
  const std::shared_ptr<Monitor>& m = *found;
  bool kept = false;
  std::vector<uint32_t> shape;
  {
    absl::MutexLock lk(&m->mu);
    for (const auto& v : m->versions) kept |= v.version == request.version();
    shape = m->shape;
  }
  if (!kept)
    return absl::NotFoundError("monitor '" + m->name + "' keeps no version " +
                               std::to_string(request.version()));
  auto model = files_.Load(m->name, request.version(), shape);
  if (!model.ok()) {
    metrics_.model_load_failures.Increment();
    std::clog << "histguardd: rollback of " << m->name << " refused: " << model.status().message()
              << "\n";
    // The version is kept, so its file should be there: missing or damaged, it is lost.
    return absl::DataLossError(model.status().message());
  }
  // What later candidates are compared with while it is the anchor; without it (a version saved
  // before these files were written), only with the data before them.
  std::shared_ptr<const ShapeStats> trained_on;
  if (auto stats = files_.LoadShape(m->name, request.version(), shape); stats.ok())
    trained_on = std::make_shared<const ShapeStats>(std::move(*stats));
  else
    std::clog << "histguardd: " << m->name << " v" << request.version() << ": "
              << stats.status().message() << "; candidates are compared only with the data "
              << "before them\n";
  {
    absl::MutexLock lk(&m->mu);
    if (std::none_of(m->versions.begin(), m->versions.end(),
                     [&](const VersionInfo& v) { return v.version == model->version; }))
      return absl::AbortedError("version " + std::to_string(model->version) +
                                " was dropped by a training meanwhile");
    // Recorded before it is scored with, as after a training: a restart never goes back behind
    // an acknowledged verdict, and a training that finishes meanwhile cannot be overwritten.
    Store::Batch batch;
    store_.PutMeta(batch, m->name, MetaJson(*m, model->version, m->versions, model->version));
    if (const absl::Status s = store_.Commit(batch); !s.ok()) {
      metrics_.StoreErrors("write").Increment();
      return absl::UnavailableError("rollback not recorded in the state store: " +
                                    std::string(s.message()));
    }
    m->RollBackTo(std::make_shared<const models::Model>(std::move(*model)), std::move(trained_on));
  }
  Audit(who, "rollback", m->name, {{"version", request.version()}}, absl::OkStatus());
  std::clog << "histguardd: " << m->name << " rolled back to v" << request.version() << " by "
            << Printable(who) << "\n";
  response->set_active_version(request.version());
  return absl::OkStatus();
}

absl::Status ControlService::CheckComment(const std::string& comment) {
  if (comment.size() <= kMaxComment) return absl::OkStatus();
  return absl::InvalidArgumentError("a comment holds at most " + std::to_string(kMaxComment) +
                                    " bytes");
}

absl::Status ControlService::DoForget(const std::string& who, const v1::ForgetRequest& request,
                                      v1::ForgetResponse* response) {
  if (absl::Status s = CheckComment(request.comment()); !s.ok()) return s;
  std::shared_ptr<Monitor> m = registry_.Remove(request.monitor());
  if (!m) return absl::NotFoundError("no monitor named '" + request.monitor() + "'");
  const absl::Status s = ForgetMonitor(*m, who + ": " + request.comment(), response);
  Audit(who, "forget", m->name, {{"comment", request.comment()}}, s);
  return s;
}

// ---- gRPC: authorize, then the call ----

template <typename Call>
grpc::ServerUnaryReactor* ControlService::Answer(grpc::CallbackServerContext* context, Role need,
                                                 Call call) {
  auto* reactor = context->DefaultReactor();
  auto who = auth_.Check(context, need);
  reactor->Finish(ToGrpcStatus(who.ok() ? call(*who) : who.status()));
  return reactor;
}

grpc::ServerUnaryReactor* ControlService::ListMonitors(grpc::CallbackServerContext* context,
                                                       const v1::ListMonitorsRequest* request,
                                                       v1::ListMonitorsResponse* response) {
  return Answer(context, Role::kRead,
                [&](const std::string&) { return DoListMonitors(*request, response); });
}

grpc::ServerUnaryReactor* ControlService::GetMonitor(grpc::CallbackServerContext* context,
                                                     const v1::GetMonitorRequest* request,
                                                     v1::MonitorInfo* response) {
  return Answer(context, Role::kRead,
                [&](const std::string&) { return DoGetMonitor(*request, response); });
}

grpc::ServerUnaryReactor* ControlService::Inspect(grpc::CallbackServerContext* context,
                                                  const v1::InspectRequest* request,
                                                  v1::Inspection* response) {
  return Answer(context, Role::kRead,
                [&](const std::string&) { return DoInspect(*request, response); });
}

grpc::ServerUnaryReactor* ControlService::Label(grpc::CallbackServerContext* context,
                                                const v1::LabelRequest* request,
                                                v1::LabelResponse*) {
  return Answer(context, Role::kOperator,
                [&](const std::string& who) { return DoLabel(who, *request); });
}

grpc::ServerUnaryReactor* ControlService::Retrain(grpc::CallbackServerContext* context,
                                                  const v1::RetrainRequest* request,
                                                  v1::RetrainResponse* response) {
  // Answered from the training thread when the job ends; reactors never wait for training.
  auto* reactor = context->DefaultReactor();
  auto who = auth_.Check(context, Role::kOperator);
  if (!who.ok()) {
    reactor->Finish(ToGrpcStatus(who.status()));
    return reactor;
  }
  const absl::Status s = DoRetrain(*who, *request, [reactor, response](const TrainResult& r) {
    response->set_accepted(r.accepted);
    response->set_version(r.version);
    response->set_reason(r.reason);
    reactor->Finish(grpc::Status::OK);
  });
  if (!s.ok()) reactor->Finish(ToGrpcStatus(s));
  return reactor;
}

grpc::ServerUnaryReactor* ControlService::Rollback(grpc::CallbackServerContext* context,
                                                   const v1::RollbackRequest* request,
                                                   v1::RollbackResponse* response) {
  return Answer(context, Role::kOperator,
                [&](const std::string& who) { return DoRollback(who, *request, response); });
}

absl::Status ControlService::DoAccept(const std::string& who, const v1::AcceptRequest& request,
                                      v1::AcceptResponse* response) {
  if (absl::Status s = CheckComment(request.comment()); !s.ok()) return s;
  auto found = Find(request.monitor());
  if (!found.ok()) return found.status();
  const std::shared_ptr<Monitor>& m = *found;
  uint64_t needed = 0;
  {
    absl::MutexLock lk(&m->mu);
    if (!m->model)
      return absl::FailedPreconditionError(
          "monitor '" + m->name + "' is still learning: everything it collects is its normal");
    m->AcceptFrom({request.run(), request.from_lumisection()}, AcceptTarget(config_));
    needed = m->accept_target;
    if (const absl::Status s = SaveMeta(store_, *m); !s.ok()) {
      metrics_.StoreErrors("write").Increment();
      Audit(who, "accept", m->name,
            {{"run", request.run()}, {"from_lumisection", request.from_lumisection()}}, s);
      return absl::UnavailableError("accepted, but not recorded in the state store (" +
                                    std::string(s.message()) + "): a restart forgets it");
    }
  }
  Audit(who, "accept", m->name,
        {{"run", request.run()},
         {"from_lumisection", request.from_lumisection()},
         {"comment", request.comment()}},
        absl::OkStatus());
  std::clog << "histguardd: " << m->name << ": run " << request.run() << " lumisection "
            << request.from_lumisection() << " on accepted as the new normal by " << Printable(who)
            << "\n";
  response->set_histograms_needed(needed);
  return absl::OkStatus();
}

absl::Status ControlService::DoApprove(const std::string& who, const v1::ApproveRequest& request,
                                       v1::ApproveResponse* response) {
  if (absl::Status s = CheckComment(request.comment()); !s.ok()) return s;
  auto found = Find(request.monitor());
  if (!found.ok()) return found.status();
  const std::shared_ptr<Monitor>& m = *found;
  std::shared_ptr<Candidate> candidate;
  {
    absl::MutexLock lk(&m->mu);
    candidate = m->pending;
  }
  if (!candidate) {
    absl::MutexLock lk(&m->mu);
    if (m->held_change && !m->change_rejected)
      return absl::FailedPreconditionError(
          "monitor '" + m->name + "' holds a change (" + m->held_change->where +
          ") but its candidate did not outlive a restart: the next training that learns the "
          "change holds a new one; or make it the new normal with histguard accept " +
          m->name + " --run R --from LS");
    return absl::FailedPreconditionError("monitor '" + m->name +
                                         "' holds no candidate for approval");
  }
  const std::string change = candidate->change;
  const TrainResult r = training_.Install(m.get(), std::move(candidate), /*from_training=*/false);
  const absl::Status s = r.accepted ? absl::OkStatus() : absl::UnavailableError(r.reason);
  Audit(who, "approve", m->name, {{"change", change}, {"comment", request.comment()}}, s);
  if (s.ok()) response->set_version(r.version);
  return s;
}

absl::Status ControlService::DoReject(const std::string& who, const v1::RejectRequest& request) {
  if (absl::Status s = CheckComment(request.comment()); !s.ok()) return s;
  auto found = Find(request.monitor());
  if (!found.ok()) return found.status();
  const std::shared_ptr<Monitor>& m = *found;
  std::string change;
  {
    absl::MutexLock lk(&m->mu);
    if (!m->pending)
      return absl::FailedPreconditionError("monitor '" + m->name +
                                           "' holds no candidate for approval");
    change = m->pending->change;
    m->RejectHeld();
    if (const absl::Status s = SaveMeta(store_, *m); !s.ok()) {
      metrics_.StoreErrors("write").Increment();
      Audit(who, "reject", m->name, {{"change", change}, {"comment", request.comment()}}, s);
      return absl::UnavailableError("rejected, but not recorded in the state store (" +
                                    std::string(s.message()) + "): a restart forgets it");
    }
  }
  Audit(who, "reject", m->name, {{"change", change}, {"comment", request.comment()}},
        absl::OkStatus());
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* ControlService::Approve(grpc::CallbackServerContext* context,
                                                  const v1::ApproveRequest* request,
                                                  v1::ApproveResponse* response) {
  return Answer(context, Role::kOperator,
                [&](const std::string& who) { return DoApprove(who, *request, response); });
}

grpc::ServerUnaryReactor* ControlService::Reject(grpc::CallbackServerContext* context,
                                                 const v1::RejectRequest* request,
                                                 v1::RejectResponse*) {
  return Answer(context, Role::kOperator,
                [&](const std::string& who) { return DoReject(who, *request); });
}

grpc::ServerUnaryReactor* ControlService::Accept(grpc::CallbackServerContext* context,
                                                 const v1::AcceptRequest* request,
                                                 v1::AcceptResponse* response) {
  return Answer(context, Role::kOperator,
                [&](const std::string& who) { return DoAccept(who, *request, response); });
}

grpc::ServerUnaryReactor* ControlService::Forget(grpc::CallbackServerContext* context,
                                                 const v1::ForgetRequest* request,
                                                 v1::ForgetResponse* response) {
  return Answer(context, Role::kOperator,
                [&](const std::string& who) { return DoForget(who, *request, response); });
}

absl::Status ControlService::ForgetMonitor(Monitor& m, const std::string& why,
                                           v1::ForgetResponse* response) {
  size_t versions, histograms;
  {
    absl::MutexLock lk(&m.mu);
    m.forgotten = true;
    versions = m.versions.size();
    histograms = m.records.size();
    for (const HistogramKey& k : m.window) histograms += !m.records.Contains(k);
  }
  Store::Batch batch;
  store_.DeleteMonitor(batch, m.name);
  const absl::Status s = store_.Commit(batch);
  files_.RemoveAll(m.name);
  std::clog << "histguardd: forgot monitor " << m.name << " (" << versions << " model versions, "
            << histograms << " stored histograms): " << Printable(why, 1024) << "\n";
  if (!s.ok()) {
    metrics_.StoreErrors("write").Increment();
    return absl::UnavailableError("monitor '" + m.name +
                                  "' is forgotten, but deleting what is stored of it failed (" +
                                  std::string(s.message()) + "); it reappears after a restart");
  }
  if (response) {
    response->set_versions_deleted(versions);
    response->set_histograms_deleted(histograms);
  }
  return absl::OkStatus();
}

size_t ControlService::ForgetIdle(std::chrono::steady_clock::duration idle) {
  const auto now = std::chrono::steady_clock::now();
  size_t forgotten = 0;
  for (const auto& m : registry_.All()) {
    {
      absl::MutexLock lk(&m->mu);
      if (now - m->last_seen < idle || m->training) continue;
    }
    // Only this one: a monitor of the same name made since (after a forget) is not idle.
    if (registry_.Remove(m->name, m.get()) != m) continue;
    const absl::Status s =
        ForgetMonitor(*m, "idle longer than monitor_idle_expiry_seconds", nullptr);
    Audit("histguardd", "forget", m->name, {{"comment", "idle expiry"}}, s);
    if (s.ok()) ++forgotten;
  }
  return forgotten;
}

}  // namespace histguard::server
