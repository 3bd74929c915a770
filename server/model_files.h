// ModelFiles: each monitor's model versions as files under <data_dir>/models/<monitor>/:
//   v<N>.model  the serialised model (models/serialize.h)
//   v<N>.json   its manifest (version, created time, training window, samples, losses, reason)
// Files are written to a temporary name, synced and renamed, so a crash leaves either the old
// state or the new one. Monitor names are percent-encoded into directory names. Thread-safe
// (no shared state besides the file system).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "models/model.h"

namespace histguard::server {

class ModelFiles {
 public:
  explicit ModelFiles(std::string data_dir);

  // False with `error` on an I/O failure.
  bool Save(const std::string& monitor, const models::Model& model, const std::string& manifest,
            std::string* error) const;
  std::optional<models::Model> Load(const std::string& monitor, uint64_t version,
                                    std::string* error) const;
  void Remove(const std::string& monitor, uint64_t version) const;

  std::string Directory(const std::string& monitor) const;

 private:
  std::string root_;
};

}  // namespace histguard::server
