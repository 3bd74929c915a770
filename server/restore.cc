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
  for (const auto& [name, meta_text] : store.AllMeta()) {
    Rejection why;
    Monitor* m = registry.FindOrCreate(name, &why);
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
      std::string error;
      if (auto model = files.Load(name, active, &error)) {
        m->model = std::make_shared<const models::Model>(std::move(*model));
        ++report.models;
      } else {
        report.problems.push_back(name + ": " + error + "; it learns again");
      }
    }
    for (const auto& label : store.Labels(name))
      m->labels[{label.run(), label.lumisection()}] = label.label() == v1::QUALITY_GOOD;

    HistogramKey trained_until{0, 0};
    for (const auto& v : m->versions)
      if (m->model && v.version == m->model->version) trained_until = v.last;
    store.ForEachRecord(name, [&](const v1::Inspection& rec) {
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
    });
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
