// ModelFiles: each monitor's model versions as files under <data_dir>/models/<monitor>/:
//   v<N>.model  a header line, then the serialised model (models/serialize.h):
//               "histguard-model " {"format":2,"monitor":..,"version":N,"shape":[..],
//               "payload_bytes":K,"crc32c":"xxxxxxxx"} "\n" <payload>
//               Load checks all of it against what the caller expects, so a file of another
//               monitor or binning, a truncated one or a flipped bit is refused, never scored.
//   v<N>.json   its manifest (version, created time, training window, samples, losses, reason)
//   v<N>.shape  the mean shape of the histograms it trained on and their spread (ShapeStats),
//               framed like the model ("histguard-shape " {..} "\n" the count of histograms,
//               then mean and var as doubles): what later candidates are compared with while it is the anchor
// A candidate held for an operator's approval (see Candidate) is kept the same way under a number
// no version reaches, kHeldCandidates + the time it was held (ms): the meta record names it, so a
// restart can still approve it, and the number is the file's identity.
// Files are written to a temporary name, synced and renamed, so a crash leaves either the old
// state or the new one. Monitor names are percent-encoded into directory names. Thread-safe
// (no shared state besides the file system).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "models/model.h"
#include "server/change_check.h"

namespace histguard::server {

inline constexpr uint64_t kHeldCandidates = uint64_t{1} << 62;

class ModelFiles {
 public:
  explicit ModelFiles(std::string data_dir);

  // Writes the model and its manifest. ResourceExhausted when the disk is full, Internal on
  // another I/O failure; each names the file.
  [[nodiscard]] absl::Status Save(const std::string& monitor, const models::Model& model,
                                  const std::string& manifest) const;
  // The model `version` of `monitor`, whose binning must be `shape`: NotFound when its file is
  // missing, DataLoss saying what is wrong when it is damaged or not that monitor's model of that
  // shape. Files written before the header (no checksum) load after the same shape checks.
  absl::StatusOr<models::Model> Load(const std::string& monitor, uint64_t version,
                                     const std::vector<uint32_t>& shape) const;
  // Load's checks on the bytes of a file.
  static absl::StatusOr<models::Model> Parse(std::string_view file, const std::string& monitor,
                                             uint64_t version, const std::vector<uint32_t>& shape);
  // The mean shape of the histograms version `version` trained on, and Load's counterpart (same
  // checks, and the size against `shape`).
  [[nodiscard]] absl::Status SaveShape(const std::string& monitor, uint64_t version,
                                       const std::vector<uint32_t>& shape,
                                       const ShapeStats& stats) const;
  absl::StatusOr<ShapeStats> LoadShape(const std::string& monitor, uint64_t version,
                                       const std::vector<uint32_t>& shape) const;
  void Remove(const std::string& monitor, uint64_t version) const;
  // Every version of `monitor`, and its folder.
  void RemoveAll(const std::string& monitor) const;
  // The held candidates' files of `monitor`, but the one numbered `keep` (0: all of them).
  void RemoveHeldCandidates(const std::string& monitor, uint64_t keep) const;

  std::string Directory(const std::string& monitor) const;

 private:
  std::string root_;
};

}  // namespace histguard::server
