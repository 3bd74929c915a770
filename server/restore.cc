#include "server/restore.h"

#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "models/stats.h"
#include "server/meta.h"

namespace histguard::server {
namespace {

// The axis nuisances go on against the reference they were measured against before the restart
// (the anchor's), with their course where it was, so neither their values nor the jump test start
// over. `m` has its model; the caller holds its mutex.
void RestoreAxis(const ModelFiles& files, const std::optional<StoredAxisCourse>& course, Monitor& m,
                 RestoreReport& report) ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu) {
  if (m.nuisances == 0) return;
  std::shared_ptr<const models::Model> reference = m.model;
  if (m.anchor != 0 && m.anchor != m.model->version) {
    if (auto anchor = files.Load(m.name, m.anchor, m.shape); anchor.ok())
      reference = std::make_shared<const models::Model>(std::move(*anchor));
    else
      report.problems.push_back(m.name + ": axis nuisances measured against v" +
                                std::to_string(m.model->version) + ", not the anchor (" +
                                std::string(anchor.status().message()) + ")");
  }
  if (reference->axis_reference.empty()) return;  // a model file from before they were fitted
  m.axis_model = reference;
  if (course && course->reference_version == reference->version)
    m.axis_course.Restore(course->state);
}

// What later candidates are compared with while the anchor is the anchor: the mean shape it
// trained on. The caller holds m.mu.
void RestoreAnchorShape(const ModelFiles& files, Monitor& m, RestoreReport& report)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu) {
  if (m.anchor == 0) return;
  auto stats = files.LoadShape(m.name, m.anchor, m.shape);
  if (stats.ok())
    m.anchor_shape = std::make_shared<const ShapeStats>(std::move(*stats));
  else if (absl::IsNotFound(stats.status()))  // saved before these files were written
    std::clog << "histguardd: " << m.name << ": " << stats.status().message()
              << "; candidates are compared only with the data before them\n";
  else
    report.problems.push_back(m.name + ": candidates are compared only with the data before them, "
                              "not with the anchor's (" + std::string(stats.status().message()) +
                              ")");
}

// The lasting evidence goes on where it was when it was gathered with the model now active, and
// an open streak of flagged verdicts keeps its length, when the record is as of the newest stored
// histogram (after a crash it may be older: then both start again). `m` has its records; the
// caller holds its mutex.
void RestoreLasting(const std::optional<StoredLasting>& lasting, Monitor& m, RestoreReport& report)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu) {
  if (!lasting || !m.last_verdict || lasting->as_of != m.last_verdict->key()) return;
  m.flagged_streak = lasting->flagged_streak;
  m.streak_bins = lasting->streak_bins;
  if (m.lasting_open()) m.series.lasting_change->Set(static_cast<double>(m.flagged_streak));
  if (!m.model || lasting->model_version != m.model->version) return;
  if (!m.lasting.Restore(*m.model, lasting->sums))
    report.problems.push_back(m.name + ": lasting evidence not restored (it does not fit v" +
                              std::to_string(m.model->version) + "'s blocks)");
}

// The candidate held for approval comes back from its file, so `approve` works after a restart;
// files of candidates no longer held go. Caller holds m.mu.
void RestoreHeldCandidate(const ModelFiles& files, std::optional<Candidate> held, Monitor& m,
                          RestoreReport& report) ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu) {
  if (held && m.model && m.held_change && !m.change_rejected) {
    if (auto model = files.Load(m.name, held->held_file, m.shape); model.ok()) {
      held->model = std::make_shared<models::Model>(std::move(*model));
      if (auto stats = files.LoadShape(m.name, held->held_file, m.shape); stats.ok())
        held->trained_on = std::make_shared<const ShapeStats>(std::move(*stats));
      held->held = *m.held_change;
      m.pending = std::make_shared<Candidate>(std::move(*held));
    } else {
      report.problems.push_back(m.name + ": the held candidate does not load (" +
                                std::string(model.status().message()) + "); the change stays held");
    }
  }
  files.RemoveHeldCandidates(m.name, m.pending ? m.pending->held_file : 0);
}

}  // namespace

RestoreReport RestoreMonitors(const Config& config, Store& store, const ModelFiles& files,
                              MonitorRegistry& registry) {
  RestoreReport report;
  for (const std::string& r : store.RecoveryReports()) {
    ++report.store_errors;
    report.problems.push_back("state store: " + r);
  }
  std::vector<std::pair<std::string, std::string>> metas;
  auto noted = [&report](const absl::Status& s) {
    if (s.ok()) return;
    ++report.store_errors;
    report.problems.push_back(std::string(s.message()));
  };
  noted(store.ForEachMeta(
      [&](const std::string& name, const std::string& json) { metas.emplace_back(name, json); }));
  for (const auto& [name, meta_text] : metas) {
    Rejection why;
    std::shared_ptr<Monitor> m = registry.FindOrCreate(name, &why);
    if (!m) {
      report.problems.push_back(name + ": " + why.detail);
      continue;
    }
    absl::MutexLock lk(&m->mu);
    m->meta_saved = true;
    uint64_t active = 0;
    std::optional<StoredAxisCourse> axis_course;
    std::optional<StoredLasting> lasting;
    std::optional<Candidate> held_candidate;
    if (auto meta = ParseStoredMeta(meta_text); meta.ok()) {
      axis_course = std::move(meta->axis_course);
      lasting = std::move(meta->lasting);
      held_candidate = std::move(meta->held_candidate);
      for (const std::string* problem :
           {&meta->axis_course_problem, &meta->lasting_problem, &meta->held_candidate_problem,
            &meta->pointed_problem})
        if (!problem->empty()) report.problems.push_back(name + ": " + *problem);
      m->shape = std::move(meta->shape);
      m->trained_versions = meta->trained_versions;
      active = meta->active_version;
      m->versions = std::move(meta->versions);
      // A record from before anchors were kept, or a damaged one: the active version is it.
      m->anchor = std::any_of(m->versions.begin(), m->versions.end(),
                              [&](const VersionInfo& v) { return v.version == meta->anchor; })
                      ? meta->anchor
                      : active;
      m->held_change = std::move(meta->vigilance.held_change);
      if (m->anchor == meta->anchor) m->lasting_since_anchor = meta->vigilance.pointed_since_anchor;
      m->change_rejected = meta->vigilance.change_rejected;
      if (meta->vigilance.accepting)
        m->AcceptFrom(meta->vigilance.accepted_from, meta->vigilance.accept_target);
      m->series.pending_change->Set(m->held_change && !m->change_rejected ? 1 : 0);
    } else {
      report.problems.push_back(name + ": " + std::string(meta.status().message()));
    }
    if (active > 0) {
      // The active version first, then the kept ones from newest to oldest: a damaged or foreign
      // file costs its version, not the monitor, and is never scored with.
      std::vector<uint64_t> order{active};
      for (auto it = m->versions.rbegin(); it != m->versions.rend(); ++it)
        if (it->version != active) order.push_back(it->version);
      for (uint64_t v : order) {
        auto model = files.Load(name, v, m->shape);
        if (model.ok()) {
          m->model = std::make_shared<const models::Model>(std::move(*model));
          ++report.models;
          if (v != active) {
            report.problems.push_back(name + ": scores with v" + std::to_string(v) +
                                      ", the newest kept version that loads");
            // Recorded, so the next start does not try the refused version first again.
            Store::Batch batch;
            store.PutMeta(batch, name, MetaJson(*m));
            if (const absl::Status s = store.Commit(batch); !s.ok())
              report.problems.push_back(name + ": v" + std::to_string(v) +
                                        " not recorded as active (" + std::string(s.message()) +
                                        ")");
          }
          break;
        }
        ++report.model_load_failures;
        report.problems.push_back(name + ": " + std::string(model.status().message()));
      }
      if (!m->model) report.problems.push_back(name + ": no kept model loads; it learns again");
      if (m->model) {
        RestoreAxis(files, axis_course, *m, report);
        RestoreAnchorShape(files, *m, report);
      }
    }
    RestoreHeldCandidate(files, std::move(held_candidate), *m, report);
    noted(store.ForEachLabel(name, [&m](const Label& label) ABSL_EXCLUSIVE_LOCKS_REQUIRED(m->mu) {
      m->labels[label.key()] = label.good;
    }));

    HistogramKey trained_until{0, 0};
    for (const auto& v : m->versions)
      if (m->model && v.version == m->model->version) trained_until = v.last;
    noted(store.ForEachRecord(name, [&](const Record& rec) ABSL_EXCLUSIVE_LOCKS_REQUIRED(m->mu) {
      const HistogramKey key = rec.histogram.key();
      ++report.histograms;
      m->records.Insert(key);
      m->last_verdict = rec.verdict;
      const Quality q = rec.verdict.quality;
      if (q == Quality::kRejected || q == Quality::kLowStatistics) return true;
      if (!m->Admits(key, q)) return true;
      // Every stored record is a kept one here: nothing leaves the store.
      m->Admit(key, rec.histogram.contents, config.window_size,
               /*counted=*/m->model && key > trained_until);
      return true;
    }));
    m->series.window_size->Set(static_cast<double>(m->window.size()));
    RestoreLasting(lasting, *m, report);
    if (m->model) {
      m->series.model_version->Set(static_cast<double>(m->model->version));
      for (const auto& v : m->versions)
        if (v.version == m->model->version)
          m->series.last_trained_time->Set(static_cast<double>(v.created_unix_ms) / 1000.0);
    }
    ++report.monitors;
  }
  return report;
}

}  // namespace histguard::server
