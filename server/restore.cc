#include "server/restore.h"

#include <nlohmann/json.hpp>

#include "models/stats.h"

namespace histguard::server {
namespace {

VersionInfo VersionFromManifest(const nlohmann::json& j) {
  VersionInfo v;
  v.version = j.at("version").get<uint64_t>();
  v.created_unix_ms = j.value("created_unix_ms", int64_t{0});
  v.sample_count = j.value("sample_count", uint64_t{0});
  v.train_loss = j.value("training_loss", 0.0);
  v.holdout_loss = j.value("holdout_loss", 0.0);
  v.reason = j.value("reason", "");
  if (j.contains("window")) {
    const auto& w = j.at("window");
    v.first = {w.value("first_run", uint64_t{0}), w.value("first_lumisection", uint64_t{0})};
    v.last = {w.value("last_run", uint64_t{0}), w.value("last_lumisection", uint64_t{0})};
  }
  v.manifest = j.dump(2);
  return v;
}

}  // namespace

RestoreReport RestoreMonitors(const Config& config, const Store& store, const ModelFiles& files,
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
  noted(store.ForEachMeta([&](const std::string& name, const std::string& json) {
    metas.emplace_back(name, json);
  }));
  for (const auto& [name, meta_text] : metas) {
    Rejection why;
    std::shared_ptr<Monitor> m = registry.FindOrCreate(name, &why);
    if (!m) {
      report.problems.push_back(name + ": " + why.detail);
      continue;
    }
    std::lock_guard lk(m->mu);
    m->meta_saved = true;
    uint64_t active = 0;
    try {
      const auto meta = nlohmann::json::parse(meta_text);
      m->shape = meta.at("shape").get<std::vector<uint32_t>>();
      m->trained_versions = meta.value("trained_versions", uint64_t{0});
      active = meta.value("active_version", uint64_t{0});
      for (const auto& v : meta.value("versions", nlohmann::json::array()))
        m->versions.push_back(VersionFromManifest(v));
    } catch (const std::exception& e) {
      report.problems.push_back(name + ": unreadable state (" + e.what() + ")");
    }
    if (active > 0) {
      // The active version first, then the kept ones from newest to oldest: a damaged or foreign
      // file costs its version, not the monitor, and is never scored with.
      std::vector<uint64_t> order{active};
      for (auto it = m->versions.rbegin(); it != m->versions.rend(); ++it)
        if (it->version != active) order.push_back(it->version);
      for (uint64_t v : order) {
        std::string error;
        if (auto model = files.Load(name, v, m->shape, &error)) {
          m->model = std::make_shared<const models::Model>(std::move(*model));
          ++report.models;
          if (v != active)
            report.problems.push_back(name + ": scores with v" + std::to_string(v) +
                                      ", the newest kept version that loads");
          break;
        }
        ++report.model_load_failures;
        report.problems.push_back(name + ": " + error);
      }
      if (!m->model) report.problems.push_back(name + ": no kept model loads; it learns again");
    }
    noted(store.ForEachLabel(name, [&m](const v1::LabelRequest& label) {
      m->labels[{label.run(), label.lumisection()}] = label.label() == v1::QUALITY_GOOD;
    }));

    HistogramKey trained_until{0, 0};
    for (const auto& v : m->versions)
      if (m->model && v.version == m->model->version) trained_until = v.last;
    noted(store.ForEachRecord(name, [&](const v1::Inspection& rec) {
      const auto& h = rec.histogram();
      const HistogramKey key{h.run(), h.lumisection()};
      ++report.histograms;
      m->records.Insert(key);
      m->last_verdict = rec.verdict();
      const auto q = rec.verdict().quality();
      if (q == v1::QUALITY_REJECTED || q == v1::QUALITY_LOW_STATISTICS) return true;
      if (!m->Admits(key, q == v1::QUALITY_BAD) || m->InWindow(key)) return true;
      m->AddToWindow(key, config.window_size);  // every stored record is a kept one here
      if (m->model && key > trained_until) ++m->new_since_train;
      if (!m->model) {
        const std::span<const double> c(h.contents().data(), h.contents_size());
        const double total = models::Sum(c);
        if (m->shape_sum.size() != c.size()) m->shape_sum.assign(c.size(), 0.0);
        for (size_t i = 0; i < c.size() && total > 0; ++i) m->shape_sum[i] += c[i] / total;
      }
      return true;
    }));
    m->series.window_size->Set(static_cast<double>(m->window.size()));
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
