// A monitor's meta record in the state store: its binning, its kept model versions (their
// manifests) and which of them is active. Written whenever one of those changes, read back at
// start-up (server/restore.h). Plain functions, no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "server/monitors.h"

namespace histguard::server {

struct StoredMeta {
  std::vector<uint32_t> shape;
  uint64_t trained_versions = 0, active_version = 0;
  std::vector<VersionInfo> versions;
};

// The record of `monitor` as it is now. Caller holds monitor.mu.
std::string MetaJson(const Monitor& monitor);
// The record with `active` the active version and `kept` the kept versions.
std::string MetaJson(const std::vector<uint32_t>& shape, uint64_t active,
                     uint64_t trained_versions, const std::vector<VersionInfo>& kept);

// DataLoss naming what is wrong when the text is not such a record.
absl::StatusOr<StoredMeta> ParseStoredMeta(std::string_view text);

}  // namespace histguard::server
