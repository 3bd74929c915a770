#include "server/meta.h"

#include <nlohmann/json.hpp>

#include "models/json_integer.h"

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

}  // namespace

std::string MetaJson(const Monitor& m) {
  return MetaJson(m.shape, m.model ? m.model->version : 0, m.trained_versions, m.versions);
}

std::string MetaJson(const std::vector<uint32_t>& shape, uint64_t active,
                     uint64_t trained_versions, const std::vector<VersionInfo>& kept) {
  nlohmann::json versions = nlohmann::json::array();
  for (const auto& v : kept) versions.push_back(nlohmann::json::parse(v.manifest));
  return nlohmann::json{{"shape", shape},
                        {"active_version", active},
                        {"trained_versions", trained_versions},
                        {"versions", versions}}
      .dump();
}

absl::StatusOr<StoredMeta> ParseStoredMeta(std::string_view text) {
  StoredMeta out;
  try {
    const auto meta = nlohmann::json::parse(text);
    out.shape = JsonIntegers<uint32_t>(meta.at("shape"), "shape");
    out.trained_versions = JsonInteger(meta, "trained_versions", uint64_t{0});
    out.active_version = JsonInteger(meta, "active_version", uint64_t{0});
    for (const auto& v : meta.value("versions", nlohmann::json::array()))
      out.versions.push_back(VersionFromManifest(v));
  } catch (const std::exception& e) {
    return absl::DataLossError(std::string("unreadable state (") + e.what() + ")");
  }
  return out;
}

}  // namespace histguard::server
