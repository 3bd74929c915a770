#include "server/model_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/crc.hpp>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "models/json_integer.h"
#include "models/serialize.h"

namespace histguard::server {
namespace {

constexpr std::string_view kMagic = "histguard-model ";
constexpr int kFileFormat = 2;

std::string Crc32c(std::string_view bytes) {
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(bytes.data(), bytes.size());
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", crc.checksum());
  return buf;
}

std::string ShapeText(const std::vector<uint32_t>& s) { return nlohmann::json(s).dump(); }

// A framed file: its magic, what it is called in errors, and its format number.
struct Frame {
  std::string_view magic, what;
  int format;
};
constexpr Frame kModelFrame{kMagic, "model file", kFileFormat};
constexpr Frame kShapeFrame{"histguard-shape ", "reference shape file", 1};

// The payload of a framed file after its header checks out; DataLoss saying why not.
absl::StatusOr<std::string_view> CheckHeader(
    std::string_view file, const Frame& frame, const std::string& monitor, uint64_t version,
    const std::vector<uint32_t>& shape) {
  const std::string what(frame.what);
  const size_t eol = file.find('\n');
  if (!file.starts_with(frame.magic) || eol == std::string_view::npos || eol > 64 * 1024) {
    return absl::DataLossError(what + " header is cut off");
  }
  nlohmann::json h;
  try {
    h = nlohmann::json::parse(file.substr(frame.magic.size(), eol - frame.magic.size()));
    if (JsonInteger<int>(h.at("format"), "format") != frame.format) {
      return absl::DataLossError("unknown " + what + " format " + h.at("format").dump());
    }
    if (h.at("monitor").get<std::string>() != monitor) {
      return absl::DataLossError(what + " belongs to monitor '" + h.at("monitor").get<std::string>() + "'");
    }
    if (JsonInteger<uint64_t>(h.at("version"), "version") != version) {
      return absl::DataLossError(what + " holds version " + h.at("version").dump());
    }
    if (JsonIntegers<uint32_t>(h.at("shape"), "shape") != shape) {
      return absl::DataLossError(what + " is for binning " + h.at("shape").dump() + ", the monitor has " +
               ShapeText(shape));
    }
    const std::string_view payload = file.substr(eol + 1);
    if (JsonInteger<uint64_t>(h.at("payload_bytes"), "payload_bytes") != payload.size()) {
      return absl::DataLossError(what + " is " + std::to_string(payload.size()) + " bytes after its header, " +
               h.at("payload_bytes").dump() + " expected (truncated or appended to)");
    }
    if (h.at("crc32c").get<std::string>() != Crc32c(payload)) {
      return absl::DataLossError(what + " checksum does not match its contents (the file is damaged)");
    }
    return payload;
  } catch (const std::exception& e) {
    return absl::DataLossError(what + " header is unreadable: " + e.what());
  }
}

// `payload` behind the header CheckHeader reads.
std::string Framed(const Frame& frame, const std::string& monitor, uint64_t version,
                   const std::vector<uint32_t>& shape, const std::string& payload) {
  const nlohmann::json header = {{"format", frame.format},          {"monitor", monitor},
                                 {"version", version},              {"shape", shape},
                                 {"payload_bytes", payload.size()}, {"crc32c", Crc32c(payload)}};
  return std::string(frame.magic) + header.dump() + "\n" + payload;
}

absl::StatusOr<std::string> ReadFile(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(std::string(what) + " " + path + " is missing");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// An I/O failure as a status: out of space (or quota) is ResourceExhausted, the rest Internal.
absl::Status IoError(const std::string& what, int err) {
  const std::string text = what + ": " + std::strerror(err);
  return err == ENOSPC || err == EDQUOT ? absl::ResourceExhaustedError(text)
                                        : absl::InternalError(text);
}

absl::Status WriteDurably(const std::filesystem::path& path, const std::string& bytes) {
  const auto tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("cannot write " + tmp, errno);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) {
      const int err = n < 0 ? errno : ENOSPC;
      ::close(fd);
      return IoError("short write to " + tmp, err);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    return IoError("cannot sync " + tmp, err);
  }
  ::close(fd);
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    return IoError("cannot commit " + path.string(), errno);
  return absl::OkStatus();
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
  // A file name holds at most 255 bytes, and a valid 256-character name can encode to 768. Long
  // ones keep a readable prefix and a hash of the whole name (FNV-1a, stable across builds);
  // the model file's header names the monitor, so a collision could never be scored with.
  constexpr size_t kMaxDir = 200, kPrefix = 160;
  if (dir.size() > kMaxDir) {
    uint64_t hash = 1469598103934665603ull;
    for (unsigned char c : monitor) hash = (hash ^ c) * 1099511628211ull;
    size_t cut = kPrefix;
    while (cut > 0 && (dir[cut - 1] == '%' || (cut > 1 && dir[cut - 2] == '%'))) --cut;
    char buf[24];
    std::snprintf(buf, sizeof buf, "~%016llx", static_cast<unsigned long long>(hash));
    dir = dir.substr(0, cut) + buf;
  }
  return root_ + "/" + dir;
}

absl::Status ModelFiles::Save(const std::string& monitor, const models::Model& model,
                              const std::string& manifest) const {
  const std::filesystem::path dir = Directory(monitor);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return IoError("cannot create " + dir.string(), ec.value());
  const std::string stem = "v" + std::to_string(model.version);
  const std::string file =
      Framed(kModelFrame, monitor, model.version, model.shape, models::SerializeModel(model));
  if (absl::Status s = WriteDurably(dir / (stem + ".model"), file); !s.ok()) return s;
  return WriteDurably(dir / (stem + ".json"), manifest);
}

absl::StatusOr<models::Model> ModelFiles::Load(const std::string& monitor, uint64_t version,
                                               const std::vector<uint32_t>& shape) const {
  const auto path = Directory(monitor) + "/v" + std::to_string(version) + ".model";
  const auto file = ReadFile(path, kModelFrame.what);
  if (!file.ok()) return file.status();
  auto m = Parse(*file, monitor, version, shape);
  if (!m.ok()) return absl::Status(m.status().code(), path + ": " + std::string(m.status().message()));
  return m;
}

absl::StatusOr<models::Model> ModelFiles::Parse(std::string_view file, const std::string& monitor,
                                                uint64_t version,
                                                const std::vector<uint32_t>& shape) {
  std::string_view payload = file;
  if (file.starts_with(kMagic)) {
    auto checked = CheckHeader(file, kModelFrame, monitor, version, shape);
    if (!checked.ok()) return checked.status();
    payload = *checked;
  }
  auto m = models::DeserializeModel(payload);
  if (!m.ok()) return m.status();
  // Also what a file without a header (written before it) must pass: the layers were checked
  // against the model's own shape, and that against the monitor's.
  if (m->shape != shape || m->version != version)
    return absl::DataLossError("holds version " + std::to_string(m->version) + " for binning " +
                               ShapeText(m->shape) + ", expected version " +
                               std::to_string(version) + " for binning " + ShapeText(shape));
  return m;
}

absl::Status ModelFiles::SaveShape(const std::string& monitor, uint64_t version,
                                   const std::vector<uint32_t>& shape,
                                   const ShapeStats& stats) const {
  const std::filesystem::path dir = Directory(monitor);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return IoError("cannot create " + dir.string(), ec.value());
  // The count, then the means, then the variances: all under the checksum.
  const size_t n = stats.mean.size();
  const uint64_t count = stats.count;
  std::string payload(sizeof count + 2 * n * sizeof(double), '\0');
  std::memcpy(payload.data(), &count, sizeof count);
  std::memcpy(payload.data() + sizeof count, stats.mean.data(), n * sizeof(double));
  std::memcpy(payload.data() + sizeof count + n * sizeof(double), stats.var.data(),
              std::min(stats.var.size(), n) * sizeof(double));
  return WriteDurably(dir / ("v" + std::to_string(version) + ".shape"),
                      Framed(kShapeFrame, monitor, version, shape, payload));
}

absl::StatusOr<ShapeStats> ModelFiles::LoadShape(const std::string& monitor, uint64_t version,
                                                 const std::vector<uint32_t>& shape) const {
  const auto path = Directory(monitor) + "/v" + std::to_string(version) + ".shape";
  const auto file = ReadFile(path, kShapeFrame.what);
  if (!file.ok()) return file.status();
  auto checked = CheckHeader(*file, kShapeFrame, monitor, version, shape);
  if (!checked.ok())
    return absl::Status(checked.status().code(), path + ": " + std::string(checked.status().message()));
  size_t bins = 1;
  for (uint32_t n : shape) bins *= n;
  const std::string_view payload = *checked;
  uint64_t count = 0;
  const size_t expected = sizeof count + 2 * bins * sizeof(double);
  if (payload.size() != expected)
    return absl::DataLossError(path + ": holds " + std::to_string(payload.size()) +
                               " bytes of shape, " + std::to_string(expected) + " expected");
  std::memcpy(&count, payload.data(), sizeof count);
  ShapeStats stats;
  stats.count = count;
  stats.mean.resize(bins);
  stats.var.resize(bins);
  std::memcpy(stats.mean.data(), payload.data() + sizeof count, bins * sizeof(double));
  std::memcpy(stats.var.data(), payload.data() + sizeof count + bins * sizeof(double),
              bins * sizeof(double));
  return stats;
}

void ModelFiles::Remove(const std::string& monitor, uint64_t version) const {
  std::error_code ec;
  const std::string stem = Directory(monitor) + "/v" + std::to_string(version);
  std::filesystem::remove(stem + ".model", ec);
  std::filesystem::remove(stem + ".json", ec);
  std::filesystem::remove(stem + ".shape", ec);
}

void ModelFiles::RemoveHeldCandidates(const std::string& monitor, uint64_t keep) const {
  std::error_code ec;
  std::vector<uint64_t> held;
  for (const auto& entry : std::filesystem::directory_iterator(Directory(monitor), ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() < 8 || name[0] != 'v' || !name.ends_with(".model")) continue;
    uint64_t number = 0;
    const char* end = name.data() + name.size() - 6;
    if (std::from_chars(name.data() + 1, end, number).ptr == end && number >= kHeldCandidates &&
        number != keep)
      held.push_back(number);
  }
  for (uint64_t number : held) Remove(monitor, number);
}

void ModelFiles::RemoveAll(const std::string& monitor) const {
  std::error_code ec;
  std::filesystem::remove_all(Directory(monitor), ec);
}

}  // namespace histguard::server
