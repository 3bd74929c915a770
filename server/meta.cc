#include "server/meta.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "models/json_integer.h"
#include "server/model_files.h"
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

// Whether `b` lies within a histogram of `shape` (see BinBlock).
bool FitsBinning(const BinBlock& b, const std::vector<uint32_t>& shape) {
  uint64_t bins = 1;
  for (uint32_t d : shape) bins *= d;
  const bool two_d = shape.size() == 2 && shape[0] > 1 && shape[1] > 1;
  const uint64_t nx = two_d ? shape[0] : bins, ny = two_d ? shape[1] : 1;
  return b.x0 < b.x1 && b.x1 <= nx && b.y0 < b.y1 && b.y1 <= ny;
}

BinBlock BlockFrom(const nlohmann::json& j, const char* what) {
  const auto b = JsonIntegers<uint32_t>(j, what);
  if (b.size() != 4) throw std::runtime_error(std::string(what) + " is not 4 numbers");
  return {b[0], b[1], b[2], b[3]};
}

// `anchor`: the anchor the record names; the block the lasting evidence pointed at belongs to the
// monitor's anchor, and goes with it.
nlohmann::json VigilanceJson(const Monitor& m, uint64_t anchor) ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu) {
  nlohmann::json j = nlohmann::json::object();
  if (m.lasting_since_anchor && anchor == m.anchor) {
    const BinBlock& b = m.lasting_since_anchor->block;
    j["pointed_since_anchor"] = {{"block", {b.x0, b.x1, b.y0, b.y1}},
                                 {"low", m.lasting_since_anchor->low}};
  }
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
    HeldChange held;
    held.block = BlockFrom(h.at("block"), "held_change.block");
    held.shape = shape;
    held.low = h.at("low").get<bool>();
    held.share = h.at("share").get<double>();
    held.extra_var = h.at("extra_var").get<double>();
    held.where = h.at("where").get<std::string>();
    if (!FitsBinning(held.block, shape) || !std::isfinite(held.share) ||
        !std::isfinite(held.extra_var))
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

nlohmann::json AxisCourseJson(const Monitor& m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu) {
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

// What a held candidate is besides its model (in its own file, see kHeldCandidates).
nlohmann::json HeldCandidateJson(const Monitor& m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu) {
  if (!m.pending || m.pending->held_file == 0 || m.change_rejected) return nullptr;
  const Candidate& c = *m.pending;
  return {{"file", c.held_file},
          {"change", c.change},
          {"change_from", KeyJson(c.change_from)},
          {"nuisances", c.nuisances},
          {"sample_count", c.info.sample_count},
          {"training_loss", c.info.train_loss},
          {"holdout_loss", c.info.holdout_loss},
          {"reason", c.info.reason},
          {"first", KeyJson(c.info.first)},
          {"last", KeyJson(c.info.last)},
          {"seconds", c.seconds},
          {"drift", c.drift}};
}

Candidate HeldCandidateFrom(const nlohmann::json& j, const std::vector<uint32_t>& shape) {
  Candidate c;
  c.held_file = JsonInteger<uint64_t>(j.at("file"), "file");
  if (c.held_file < kHeldCandidates) throw std::runtime_error("its file is not a held one's");
  c.change = j.at("change").get<std::string>();
  c.change_from = KeyFrom(j.at("change_from"), "change_from");
  c.nuisances = j.at("nuisances").get<std::string>();
  c.info.sample_count = JsonInteger<uint64_t>(j.at("sample_count"), "sample_count");
  c.info.train_loss = j.at("training_loss").get<double>();
  c.info.holdout_loss = j.at("holdout_loss").get<double>();
  c.info.reason = j.at("reason").get<std::string>();
  c.info.first = KeyFrom(j.at("first"), "first");
  c.info.last = KeyFrom(j.at("last"), "last");
  c.seconds = j.at("seconds").get<double>();
  c.drift = j.at("drift").get<bool>();
  c.shape = shape;
  return c;
}

// Sparse: most sums are 0 on normal data, and a detector-sized map has tens of thousands.
nlohmann::json LastingJson(const Monitor& m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu) {
  if (!m.model || (!m.lasting.active() && m.flagged_streak == 0)) return nullptr;
  const models::LastingRegions::State sums = m.lasting.Save();
  std::vector<uint32_t> index, high_length, low_length;
  std::vector<float> high, low;
  for (size_t i = 0; i < sums.high.size(); ++i) {
    if (sums.high[i] == 0 && sums.low[i] == 0) continue;
    index.push_back(static_cast<uint32_t>(i));
    high.push_back(sums.high[i]);
    low.push_back(sums.low[i]);
    high_length.push_back(sums.high_length[i]);
    low_length.push_back(sums.low_length[i]);
  }
  return {{"model_version", m.model->version},
          {"as_of",
           {m.last_verdict ? m.last_verdict->run : 0,
            m.last_verdict ? m.last_verdict->lumisection : 0}},
          {"blocks", sums.high.size()},
          {"index", index},
          {"high", high},
          {"low", low},
          {"high_length", high_length},
          {"low_length", low_length},
          {"flagged_streak", m.flagged_streak},
          {"streak_bins", m.streak_bins}};
}

StoredLasting LastingFrom(const nlohmann::json& j) {
  StoredLasting out;
  out.model_version = JsonInteger<uint64_t>(j.at("model_version"), "model_version");
  const std::vector<uint64_t> as_of = JsonIntegers<uint64_t>(j.at("as_of"), "as_of");
  if (as_of.size() != 2) throw std::runtime_error("as_of is not a (run, lumisection)");
  out.as_of = {as_of[0], as_of[1]};
  out.flagged_streak = JsonInteger<uint32_t>(j.at("flagged_streak"), "flagged_streak");
  out.streak_bins = j.at("streak_bins").get<std::string>();
  const uint32_t blocks = JsonInteger<uint32_t>(j.at("blocks"), "blocks");
  const std::vector<uint32_t> index = JsonIntegers<uint32_t>(j.at("index"), "index"),
                              high_length =
                                  JsonIntegers<uint32_t>(j.at("high_length"), "high_length"),
                              low_length = JsonIntegers<uint32_t>(j.at("low_length"), "low_length");
  const auto high = j.at("high").get<std::vector<float>>(),
             low = j.at("low").get<std::vector<float>>();
  if (blocks > (1u << 24)) throw std::runtime_error("more blocks than any binning has");
  if (high.size() != index.size() || low.size() != index.size() ||
      high_length.size() != index.size() || low_length.size() != index.size())
    throw std::runtime_error("its lists differ in length");
  models::LastingRegions::State& s = out.sums;
  s.high.assign(blocks, 0.0f);
  s.low.assign(blocks, 0.0f);
  s.high_length.assign(blocks, 0);
  s.low_length.assign(blocks, 0);
  for (size_t k = 0; k < index.size(); ++k) {
    if (index[k] >= blocks || (k > 0 && index[k] <= index[k - 1]))
      throw std::runtime_error("its block indices are not increasing within the block count");
    s.high[index[k]] = high[k];
    s.low[index[k]] = low[k];
    s.high_length[index[k]] = high_length[k];
    s.low_length[index[k]] = low_length[k];
  }
  return out;
}

}  // namespace

std::string MetaJson(const Monitor& m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu) {
  return MetaJson(m, m.model ? m.model->version : 0, m.versions, m.anchor);
}

std::string MetaJson(const Monitor& m, uint64_t active, const std::vector<VersionInfo>& kept,
                     uint64_t anchor) ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu) {
  nlohmann::json versions = nlohmann::json::array();
  for (const auto& v : kept) versions.push_back(nlohmann::json::parse(v.manifest));
  return nlohmann::json{{"shape", m.shape},
                        {"active_version", active},
                        {"anchor_version", anchor},
                        {"trained_versions", m.trained_versions},
                        {"versions", versions},
                        {"vigilance", VigilanceJson(m, anchor)},
                        {"held_candidate", HeldCandidateJson(m)},
                        {"axis_course", AxisCourseJson(m)},
                        {"lasting", LastingJson(m)}}
      .dump();
}

absl::Status SaveMeta(Store& store, const Monitor& m) ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu) {
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
  // A course or lasting evidence that does not read costs only what it held: the rest of the
  // record stands.
  try {
    if (meta.contains("axis_course") && !meta.at("axis_course").is_null())
      out.axis_course = AxisCourseFrom(meta.at("axis_course"));
  } catch (const std::exception& e) {
    out.axis_course_problem = std::string("axis course not restored (") + e.what() + ")";
  }
  try {
    if (meta.contains("held_candidate") && !meta.at("held_candidate").is_null())
      out.held_candidate = HeldCandidateFrom(meta.at("held_candidate"), out.shape);
  } catch (const std::exception& e) {
    out.held_candidate_problem = std::string("held candidate not restored (") + e.what() + ")";
  }
  try {
    if (meta.contains("lasting") && !meta.at("lasting").is_null())
      out.lasting = LastingFrom(meta.at("lasting"));
  } catch (const std::exception& e) {
    out.lasting_problem = std::string("lasting evidence not restored (") + e.what() + ")";
  }
  try {
    if (meta.contains("vigilance") && meta.at("vigilance").is_object() &&
        meta.at("vigilance").contains("pointed_since_anchor")) {
      const auto& p = meta.at("vigilance").at("pointed_since_anchor");
      const LastingBlock pointed{BlockFrom(p.at("block"), "block"), p.at("low").get<bool>()};
      if (!FitsBinning(pointed.block, out.shape))
        throw std::runtime_error("the block does not fit the monitor's binning");
      out.vigilance.pointed_since_anchor = pointed;
    }
  } catch (const std::exception& e) {
    out.pointed_problem = std::string("where the lasting evidence pointed since the anchor is not "
                                      "restored (") + e.what() + ")";
  }
  return out;
}

}  // namespace histguard::server
