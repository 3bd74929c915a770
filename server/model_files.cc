#include "server/model_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "models/serialize.h"

namespace histguard::server {
namespace {

bool WriteDurably(const std::filesystem::path& path, const std::string& bytes, std::string* error) {
  const auto tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    *error = "cannot write " + tmp;
    return false;
  }
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) {
      ::close(fd);
      *error = "short write to " + tmp;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced || std::rename(tmp.c_str(), path.c_str()) != 0) {
    *error = "cannot commit " + path.string();
    return false;
  }
  return true;
}

}  // namespace

ModelFiles::ModelFiles(std::string data_dir) : root_(std::move(data_dir) + "/models") {}

std::string ModelFiles::Directory(const std::string& monitor) const {
  // Percent-encode everything but [A-Za-z0-9_-], so "a/b" and ".." stay one harmless name.
  std::string dir;
  for (unsigned char c : monitor) {
    if (std::isalnum(c) || c == '_' || c == '-') {
      dir += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      dir += buf;
    }
  }
  return root_ + "/" + dir;
}

bool ModelFiles::Save(const std::string& monitor, const models::Model& model,
                      const std::string& manifest, std::string* error) const {
  const std::filesystem::path dir = Directory(monitor);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    *error = "cannot create " + dir.string() + ": " + ec.message();
    return false;
  }
  const std::string stem = "v" + std::to_string(model.version);
  return WriteDurably(dir / (stem + ".model"), models::SerializeModel(model), error) &&
         WriteDurably(dir / (stem + ".json"), manifest, error);
}

std::optional<models::Model> ModelFiles::Load(const std::string& monitor, uint64_t version,
                                              std::string* error) const {
  const auto path = Directory(monitor) + "/v" + std::to_string(version) + ".model";
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "model file " + path + " is missing";
    return std::nullopt;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  auto m = models::DeserializeModel(ss.str(), error);
  if (!m) *error = path + ": " + *error;
  return m;
}

void ModelFiles::Remove(const std::string& monitor, uint64_t version) const {
  std::error_code ec;
  const std::string stem = Directory(monitor) + "/v" + std::to_string(version);
  std::filesystem::remove(stem + ".model", ec);
  std::filesystem::remove(stem + ".json", ec);
}

}  // namespace histguard::server
