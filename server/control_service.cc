#include "server/control_service.h"

#include <algorithm>
#include <iostream>

#include "models/stats.h"
#include "server/meta.h"

namespace histguard::server {
namespace {

using grpc::Status;
using grpc::StatusCode;

std::string KeyText(uint64_t run, uint64_t ls) {
  return "run " + std::to_string(run) + " lumisection " + std::to_string(ls);
}

}  // namespace

void ControlService::FinishWithStoreError(grpc::ServerUnaryReactor* reactor,
                                          const absl::Status& status, const Monitor& m,
                                          uint64_t run, uint64_t ls) {
  if (absl::IsNotFound(status)) {
    reactor->Finish(Status(StatusCode::NOT_FOUND, "monitor '" + m.name +
                                                      "' has no stored histogram for " +
                                                      KeyText(run, ls)));
    return;
  }
  metrics_.StoreErrors("corrupt").Increment();
  std::clog << "histguardd: " << m.name << " " << KeyText(run, ls) << ": " << status.message()
            << "\n";
  reactor->Finish(Status(StatusCode::DATA_LOSS, "monitor '" + m.name + "', " + KeyText(run, ls) +
                                                    ": " + std::string(status.message())));
}

std::optional<std::string> ControlService::Authorize(grpc::CallbackServerContext* context,
                                                     grpc::ServerUnaryReactor* reactor,
                                                     Role need) {
  auto who = auth_.Check(context, need);
  if (who.ok()) return *who;
  reactor->Finish(ToGrpcStatus(who.status()));
  return std::nullopt;
}

void ControlService::Audit(const std::string& who, std::string_view action,
                           const std::string& monitor, nlohmann::json fields,
                           const absl::Status& result) {
  audit_.Record(who, action, monitor, fields.dump(), result);
}

std::shared_ptr<Monitor> ControlService::FindOrFinish(const std::string& name,
                                                      grpc::ServerUnaryReactor* reactor) {
  std::shared_ptr<Monitor> m = registry_.Find(name);
  if (!m) reactor->Finish(Status(StatusCode::NOT_FOUND, "no monitor named '" + name + "'"));
  return m;
}

grpc::ServerUnaryReactor* ControlService::ListMonitors(grpc::CallbackServerContext* context,
                                                       const v1::ListMonitorsRequest* request,
                                                       v1::ListMonitorsResponse* response) {
  auto* reactor = context->DefaultReactor();
  if (!Authorize(context, reactor, Role::kRead)) return reactor;
  for (const auto& m : registry_.All()) {
    if (!m->name.starts_with(request->prefix())) continue;
    std::lock_guard lk(m->mu);
    auto* s = response->add_monitors();
    s->set_monitor(m->name);
    s->set_model_version(m->model ? m->model->version : 0);
    s->set_window_size(m->window.size());
    *s->mutable_last_verdict() = m->last_verdict;
  }
  reactor->Finish(Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* ControlService::GetMonitor(grpc::CallbackServerContext* context,
                                                     const v1::GetMonitorRequest* request,
                                                     v1::MonitorInfo* response) {
  auto* reactor = context->DefaultReactor();
  if (!Authorize(context, reactor, Role::kRead)) return reactor;
  std::shared_ptr<Monitor> m = FindOrFinish(request->monitor(), reactor);
  if (!m) return reactor;
  {
    std::lock_guard lk(m->mu);
    response->set_monitor(m->name);
    for (uint32_t d : m->shape) response->add_shape(d);
    const uint64_t active = m->model ? m->model->version : 0;
    response->set_active_version(active);
    for (const auto& v : m->versions) {
      auto* mv = response->add_versions();
      mv->set_version(v.version);
      mv->set_created_unix_ms(v.created_unix_ms);
      mv->set_sample_count(v.sample_count);
      mv->set_training_loss(v.train_loss);
      mv->set_holdout_loss(v.holdout_loss);
      mv->set_reason(v.reason);
      mv->set_manifest_json(v.manifest);
      mv->set_active(v.version == active);
    }
    response->set_window_size(m->window.size());
    auto* th = response->mutable_thresholds();
    th->set_warning_p(m->thresholds.warning_p);
    th->set_bad_p(m->thresholds.bad_p);
    th->set_min_entries(m->thresholds.min_entries);
    *response->mutable_last_verdict() = m->last_verdict;
  }
  reactor->Finish(Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* ControlService::Inspect(grpc::CallbackServerContext* context,
                                                  const v1::InspectRequest* request,
                                                  v1::Inspection* response) {
  auto* reactor = context->DefaultReactor();
  if (!Authorize(context, reactor, Role::kRead)) return reactor;
  std::shared_ptr<Monitor> m = FindOrFinish(request->monitor(), reactor);
  if (!m) return reactor;
  auto rec = store_.GetRecord(m->name, request->run(), request->lumisection());
  if (!rec.ok()) {
    FinishWithStoreError(reactor, rec.status(), *m, request->run(), request->lumisection());
    return reactor;
  }
  *response = std::move(*rec);
  // The expectation of the model that judged it, when that version is still at hand.
  std::shared_ptr<const models::Model> model;
  std::vector<uint32_t> shape;
  {
    std::lock_guard lk(m->mu);
    model = m->model;
    shape = m->shape;
    response->set_in_training_window(m->InWindow({request->run(), request->lumisection()}));
  }
  const uint64_t judged_by = response->verdict().model_version();
  if (judged_by > 0 && (!model || model->version != judged_by)) {
    std::string error;
    if (auto old = files_.Load(m->name, judged_by, shape, &error))
      model = std::make_shared<const models::Model>(std::move(*old));
  }
  const auto& h = response->histogram();
  const std::span<const double> counts(h.contents().data(), h.contents_size());
  if (model && model->bins() == counts.size() && models::Sum(counts) > 0) {
    models::Scratch scratch;
    models::Expect(*model, counts, scratch);
    response->mutable_expected()->Assign(scratch.expected.begin(), scratch.expected.end());
    const auto pulls = models::Residuals(counts, scratch.expected);
    response->mutable_pulls()->Assign(pulls.begin(), pulls.end());
  }
  reactor->Finish(Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* ControlService::Label(grpc::CallbackServerContext* context,
                                                const v1::LabelRequest* request,
                                                v1::LabelResponse* response) {
  auto* reactor = context->DefaultReactor();
  const std::optional<std::string> who = Authorize(context, reactor, Role::kOperator);
  if (!who) return reactor;
  const bool good = request->label() == v1::QUALITY_GOOD;
  if (!good && request->label() != v1::QUALITY_BAD) {
    reactor->Finish(Status(StatusCode::INVALID_ARGUMENT, "a label is QUALITY_GOOD or QUALITY_BAD"));
    return reactor;
  }
  if (request->comment().size() > kMaxComment || request->author().size() > kMaxAuthor) {
    reactor->Finish(Status(StatusCode::INVALID_ARGUMENT,
                           "a label's comment holds at most " + std::to_string(kMaxComment) +
                               " bytes and its author " + std::to_string(kMaxAuthor)));
    return reactor;
  }
  std::shared_ptr<Monitor> m = FindOrFinish(request->monitor(), reactor);
  if (!m) return reactor;
  const auto rec = store_.GetRecord(m->name, request->run(), request->lumisection());
  if (!rec.ok()) {
    FinishWithStoreError(reactor, rec.status(), *m, request->run(), request->lumisection());
    return reactor;
  }
  // The author is who authenticated; a name the client gives counts only without
  // authentication (a local daemon), and is kept as it was given, escaped where it is logged.
  v1::LabelRequest label = *request;
  if (auth_.enabled() || label.author().empty()) label.set_author(*who);
  const nlohmann::json fields = {{"run", request->run()},
                                 {"lumisection", request->lumisection()},
                                 {"label", good ? "GOOD" : "BAD"},
                                 {"comment", request->comment()}};
  Store::Batch batch;
  store_.PutLabel(batch, label);
  if (const absl::Status s = store_.Commit(batch); !s.ok()) {
    metrics_.StoreErrors("write").Increment();
    Audit(label.author(), "label", m->name, fields, s);
    reactor->Finish(Status(StatusCode::UNAVAILABLE, "label not stored: " + std::string(s.message())));
    return reactor;
  }
  Store::Batch unkept;
  {
    std::lock_guard lk(m->mu);
    const HistogramKey key{request->run(), request->lumisection()};
    m->labels[key] = good;
    const auto& h = rec->histogram();
    if (!good) {
      m->RemoveFromWindow(key);
    } else if (!m->InWindow(key) && static_cast<size_t>(h.contents_size()) == m->bins()) {
      for (const HistogramKey& old : m->AddToWindow(key, config_.window_size))
        store_.DeleteRecord(unkept, m->name, old.first, old.second);
      ++m->new_since_train;
    }
    m->series.window_size->Set(static_cast<double>(m->window.size()));
  }
  // Histograms that left the window and are no longer kept records (the label is committed).
  if (const absl::Status s = store_.Commit(unkept); !s.ok())
    std::clog << "histguardd: " << m->name << ": cannot delete old histograms: " << s.message()
              << "\n";
  metrics_.Labels(good ? "good" : "bad").Increment();
  Audit(label.author(), "label", m->name, fields, absl::OkStatus());
  std::clog << "histguardd: " << m->name << " " << KeyText(request->run(), request->lumisection())
            << " labelled " << (good ? "GOOD" : "BAD") << " by " << Printable(label.author())
            << "\n";
  reactor->Finish(Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* ControlService::Retrain(grpc::CallbackServerContext* context,
                                                  const v1::RetrainRequest* request,
                                                  v1::RetrainResponse* response) {
  auto* reactor = context->DefaultReactor();
  const std::optional<std::string> who = Authorize(context, reactor, Role::kOperator);
  if (!who) return reactor;
  std::shared_ptr<Monitor> m = FindOrFinish(request->monitor(), reactor);
  if (!m) return reactor;
  std::lock_guard lk(m->mu);
  if (m->training) {
    reactor->Finish(Status(StatusCode::FAILED_PRECONDITION,
                           "a training of '" + m->name + "' is already running; try again when "
                           "it has finished"));
    return reactor;
  }
  if (m->window.size() < 20) {
    reactor->Finish(Status(StatusCode::FAILED_PRECONDITION,
                           "monitor '" + m->name + "' has only " + std::to_string(m->window.size()) +
                               " histograms in its window; at least 20 are needed"));
    return reactor;
  }
  training_.ScheduleLocked(m, "manual", [this, who = *who, name = m->name, reactor,
                                          response](const TrainResult& r) {
    Audit(who, "retrain", name,
          {{"accepted", r.accepted}, {"version", r.version}, {"reason", r.reason}},
          absl::OkStatus());
    response->set_accepted(r.accepted);
    response->set_version(r.version);
    response->set_reason(r.reason);
    reactor->Finish(Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* ControlService::Rollback(grpc::CallbackServerContext* context,
                                                   const v1::RollbackRequest* request,
                                                   v1::RollbackResponse* response) {
  auto* reactor = context->DefaultReactor();
  const std::optional<std::string> who = Authorize(context, reactor, Role::kOperator);
  if (!who) return reactor;
  std::shared_ptr<Monitor> m = FindOrFinish(request->monitor(), reactor);
  if (!m) return reactor;
  bool kept = false;
  {
    std::lock_guard lk(m->mu);
    for (const auto& v : m->versions) kept |= v.version == request->version();
  }
  if (!kept) {
    reactor->Finish(Status(StatusCode::NOT_FOUND, "monitor '" + m->name + "' keeps no version " +
                                                      std::to_string(request->version())));
    return reactor;
  }
  std::string error;
  std::vector<uint32_t> shape;
  {
    std::lock_guard lk(m->mu);
    shape = m->shape;
  }
  auto model = files_.Load(m->name, request->version(), shape, &error);
  if (!model) {
    metrics_.model_load_failures.Increment();
    std::clog << "histguardd: rollback of " << m->name << " refused: " << error << "\n";
    reactor->Finish(Status(StatusCode::DATA_LOSS, error));
    return reactor;
  }
  {
    std::lock_guard lk(m->mu);
    if (std::none_of(m->versions.begin(), m->versions.end(),
                     [&](const VersionInfo& v) { return v.version == model->version; })) {
      reactor->Finish(Status(StatusCode::ABORTED, "version " + std::to_string(model->version) +
                                                      " was dropped by a training meanwhile"));
      return reactor;
    }
    // Recorded before it is scored with, as after a training: a restart never goes back behind
    // an acknowledged verdict, and a training that finishes meanwhile cannot be overwritten.
    Store::Batch batch;
    store_.PutMeta(batch, m->name,
                   MetaJson(m->shape, model->version, m->trained_versions,
                                               m->versions));
    if (const absl::Status s = store_.Commit(batch); !s.ok()) {
      metrics_.StoreErrors("write").Increment();
      reactor->Finish(Status(StatusCode::UNAVAILABLE, "rollback not recorded in the state store: " +
                                                          std::string(s.message())));
      return reactor;
    }
    m->model = std::make_shared<const models::Model>(std::move(*model));
    // As after a training: the retraining triggers count from here, so a scheduled retraining
    // does not undo the operator's choice at once.
    m->drift_sum = 0;
    m->drifting = false;
    m->new_since_train = 0;
    m->last_trained = std::chrono::steady_clock::now();
    m->series.model_version->Set(static_cast<double>(m->model->version));
  }
  Audit(*who, "rollback", m->name, {{"version", request->version()}}, absl::OkStatus());
  std::clog << "histguardd: " << m->name << " rolled back to v" << request->version() << " by "
            << Printable(*who) << "\n";
  response->set_active_version(request->version());
  reactor->Finish(Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* ControlService::Forget(grpc::CallbackServerContext* context,
                                                 const v1::ForgetRequest* request,
                                                 v1::ForgetResponse* response) {
  auto* reactor = context->DefaultReactor();
  const std::optional<std::string> who = Authorize(context, reactor, Role::kOperator);
  if (!who) return reactor;
  std::shared_ptr<Monitor> m = registry_.Remove(request->monitor());
  if (!m) {
    reactor->Finish(Status(StatusCode::NOT_FOUND, "no monitor named '" + request->monitor() + "'"));
    return reactor;
  }
  if (request->comment().size() > kMaxComment) {
    reactor->Finish(Status(StatusCode::INVALID_ARGUMENT,
                           "a comment holds at most " + std::to_string(kMaxComment) + " bytes"));
    return reactor;
  }
  const absl::Status s = ForgetMonitor(*m, *who + ": " + request->comment(), response);
  Audit(*who, "forget", m->name, {{"comment", request->comment()}}, s);
  if (!s.ok()) {
    reactor->Finish(Status(StatusCode::UNAVAILABLE, std::string(s.message())));
    return reactor;
  }
  reactor->Finish(Status::OK);
  return reactor;
}

absl::Status ControlService::ForgetMonitor(Monitor& m, const std::string& why,
                                           v1::ForgetResponse* response) {
  size_t versions, histograms;
  {
    std::lock_guard lk(m.mu);
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
      std::lock_guard lk(m->mu);
      if (now - m->last_seen < idle || m->training) continue;
    }
    if (registry_.Remove(m->name) != m) continue;
    const absl::Status s = ForgetMonitor(*m, "idle longer than monitor_idle_expiry_seconds", nullptr);
    Audit("histguardd", "forget", m->name, {{"comment", "idle expiry"}}, s);
    if (s.ok()) ++forgotten;
  }
  return forgotten;
}

}  // namespace histguard::server
