#include "server/meta.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "models/json_integer.h"
#include "server/store.h"

namespace histguard::server {
namespace {

VersionInfo VersionFromManifest(const nlohmann::json& j) {
  VersionInfo v;
  v.version = JsonInteger<uint64_t>(j.at("version"), "version");
  v.created_unix_ms = JsonInteger(j, "created_unix_ms", int64_t{0});
  v.sample_count = JsonInteger(j, "sample_count", uint64_t{0});
  v.train_loss = j.value("training_loss", 0.0);
  v.holdout_loss = j.value("holdout_loss", 0.0);
  v.reason = j.value("reason", "");
  if (j.contains("window")) {
    const auto& w = j.at("window");
    v.first = {JsonInteger(w, "first_run", uint64_t{0}),
               JsonInteger(w, "first_lumisection", uint64_t{0})};
    v.last = {JsonInteger(w, "last_run", uint64_t{0}),
              JsonInteger(w, "last_lumisection", uint64_t{0})};
  }
  v.manifest = j.dump(2);
  return v;
}

nlohmann::json KeyJson(const HistogramKey& k) { return {k.first, k.second}; }

HistogramKey KeyFrom(const nlohmann::json& j, const char* what) {
  const auto v = JsonIntegers<uint64_t>(j, what);
  if (v.size() != 2) throw std::runtime_error(std::string(what) + " is not [run, lumisection]");
  return {v[0], v[1]};
}

nlohmann::json VigilanceJson(const Monitor& m) {
  nlohmann::json j = nlohmann::json::object();
  if (m.held_change) {
    const HeldChange& h = *m.held_change;
    j["held_change"] = {{"block", {h.block.x0, h.block.x1, h.block.y0, h.block.y1}},
                        {"low", h.low},
                        {"share", h.share},
                        {"extra_var", h.extra_var},
                        {"where", h.where}};
  }
  if (m.change_rejected) j["change_rejected"] = true;
  if (m.accepting)
    j["accepting"] = {{"from", KeyJson(m.accepted_from)}, {"target", m.accept_target}};
  return j;
}

StoredVigilance VigilanceFrom(const nlohmann::json& j, const std::vector<uint32_t>& shape) {
  StoredVigilance v;
  if (j.contains("held_change")) {
    const auto& h = j.at("held_change");
    const auto b = JsonIntegers<uint32_t>(h.at("block"), "held_change.block");
    if (b.size() != 4) throw std::runtime_error("held_change.block is not 4 numbers");
    HeldChange held;
    held.block = {b[0], b[1], b[2], b[3]};
    held.shape = shape;
    held.low = h.at("low").get<bool>();
    held.share = h.at("share").get<double>();
    held.extra_var = h.at("extra_var").get<double>();
    held.where = h.at("where").get<std::string>();
    uint64_t bins = 1;
    for (uint32_t d : shape) bins *= d;
    const bool two_d = shape.size() == 2 && shape[0] > 1 && shape[1] > 1;
    const uint64_t nx = two_d ? shape[0] : bins, ny = two_d ? shape[1] : 1;
    if (!(held.block.x0 < held.block.x1 && held.block.x1 <= nx && held.block.y0 < held.block.y1 &&
          held.block.y1 <= ny) ||
        !std::isfinite(held.share) || !std::isfinite(held.extra_var))
      throw std::runtime_error("held_change does not fit the monitor's binning");
    v.held_change = std::move(held);
  }
  v.change_rejected = j.value("change_rejected", false);
  if (j.contains("accepting")) {
    v.accepting = true;
    v.accepted_from = KeyFrom(j.at("accepting").at("from"), "accepting.from");
    v.accept_target = JsonInteger(j.at("accepting"), "target", uint64_t{0});
  }
  return v;
}

nlohmann::json AxisCourseJson(const Monitor& m) {
  if (!m.axis_model || !m.axis_course.started()) return nullptr;
  const models::AxisCourse::State c = m.axis_course.Save();
  return {{"reference_version", m.axis_model->version},
          {"level", c.level},
          {"cov", c.cov},
          {"tilt", c.tilt},
          {"seen", c.seen},
          {"recent", c.recent}};
}

StoredAxisCourse AxisCourseFrom(const nlohmann::json& j) {
  StoredAxisCourse out;
  out.reference_version = JsonInteger<uint64_t>(j.at("reference_version"), "reference_version");
  models::AxisCourse::State& c = out.state;
  c.level = j.at("level").get<std::array<double, 2>>();
  c.cov = j.at("cov").get<std::array<double, 3>>();
  c.tilt = j.at("tilt").get<double>();
  c.seen = JsonInteger<uint32_t>(j.at("seen"), "seen");
  c.recent = j.at("recent").get<std::vector<float>>();
  if (!models::AxisCourse().Restore(c))
    throw std::runtime_error("its values are not those of a course");
  return out;
}

}  // namespace

std::string MetaJson(const Monitor& m) {
  return MetaJson(m, m.model ? m.model->version : 0, m.versions, m.anchor);
}

std::string MetaJson(const Monitor& m, uint64_t active, const std::vector<VersionInfo>& kept,
                     uint64_t anchor) {
  nlohmann::json versions = nlohmann::json::array();
  for (const auto& v : kept) versions.push_back(nlohmann::json::parse(v.manifest));
  return nlohmann::json{{"shape", m.shape},
                        {"active_version", active},
                        {"anchor_version", anchor},
                        {"trained_versions", m.trained_versions},
                        {"versions", versions},
                        {"vigilance", VigilanceJson(m)},
                        {"axis_course", AxisCourseJson(m)}}
      .dump();
}

absl::Status SaveMeta(Store& store, const Monitor& m) {
  Store::Batch batch;
  store.PutMeta(batch, m.name, MetaJson(m));
  return store.Commit(batch);
}

absl::StatusOr<StoredMeta> ParseStoredMeta(std::string_view text) {
  StoredMeta out;
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(text);
    out.shape = JsonIntegers<uint32_t>(meta.at("shape"), "shape");
    out.trained_versions = JsonInteger(meta, "trained_versions", uint64_t{0});
    out.active_version = JsonInteger(meta, "active_version", uint64_t{0});
    out.anchor = JsonInteger(meta, "anchor_version", uint64_t{0});
    for (const auto& v : meta.value("versions", nlohmann::json::array()))
      out.versions.push_back(VersionFromManifest(v));
    if (meta.contains("vigilance")) out.vigilance = VigilanceFrom(meta.at("vigilance"), out.shape);
  } catch (const std::exception& e) {
    return absl::DataLossError(std::string("unreadable state (") + e.what() + ")");
  }
  // A course that does not read costs only its warm-up: the rest of the record stands.
  try {
    if (meta.contains("axis_course") && !meta.at("axis_course").is_null())
      out.axis_course = AxisCourseFrom(meta.at("axis_course"));
  } catch (const std::exception& e) {
    out.axis_course_problem = std::string("axis course not restored (") + e.what() + ")";
  }
  return out;
}

}  // namespace histguard::server
