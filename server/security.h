// Security: who may call what, and the record of what they changed.
//
// Three roles: `ingest` (Submit, Stream, SetRunState), `read` (ListMonitors, GetMonitor, Inspect,
// /metrics, the console) and `operator` (Label, Retrain, Rollback, Approve, Forget; it may also
// read).
// A caller proves an identity with a bearer token (gRPC metadata or HTTP header
// "authorization: Bearer TOKEN") or a TLS client certificate. The token file maps them to roles;
// it stores only SHA-256 hashes of tokens, and is read again when it changes:
//
//   # role    credential                                                             name
//   ingest    sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08  daq-feeder
//   operator  sha256:...                                                              alice
//   read      cn:grafana.dqm.example.org      # a client certificate's common name
//
// `histguard token --role operator --name alice` makes a token and prints its line.
//
// Without a token file every caller is "anonymous" with every role: the daemon then listens on
// loopback only unless started with --insecure (see ValidateExposure).
//
// Thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include "server/locks.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/config.h"

namespace histguard::server {

enum class Role { kIngest, kRead, kOperator };
const char* RoleName(Role role);

class Authenticator {
 public:
  // `token_file` empty: no authentication. An unreadable or malformed file is an error that
  // names the line.
  static absl::StatusOr<std::unique_ptr<Authenticator>> Open(const std::string& token_file);

  // Whether callers must prove who they are.
  bool enabled() const { return !path_.empty(); }

  // The caller's identity if it may act as `need`: Unauthenticated without a known credential,
  // PermissionDenied with one whose role does not allow it. `authorization` is the header value
  // ("Bearer TOKEN", or empty), `cert_cn` the verified client certificate's common name (or
  // empty).
  absl::StatusOr<std::string> Check(std::string_view authorization, std::string_view cert_cn,
                                    Role need) const;

  // The same for a gRPC call.
  absl::StatusOr<std::string> Check(grpc::CallbackServerContext* context, Role need) const;

 private:
  struct Entry {
    Role role;
    std::string name;
  };
  struct Table {
    std::unordered_map<std::string, Entry> tokens;  // hex SHA-256 of the token
    std::unordered_map<std::string, Entry> certs;   // common name
  };
  explicit Authenticator(std::string path) : path_(std::move(path)) {}
  static absl::StatusOr<Table> Read(const std::string& path);
  // Reads the file again when it changed (looked at once a second at most).
  void Refresh() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  mutable absl::Mutex mu_;
  mutable Table table_ ABSL_GUARDED_BY(mu_);
  mutable std::chrono::steady_clock::time_point checked_ ABSL_GUARDED_BY(mu_);
  mutable int64_t mtime_ns_ ABSL_GUARDED_BY(mu_) = 0;
};

// gRPC status for an authentication result.
grpc::Status ToGrpcStatus(const absl::Status& s);

// Hex SHA-256 of `bytes`.
std::string Sha256Hex(std::string_view bytes);

// `text` with control characters and quotes escaped, cut at `max` bytes: safe to put in a log
// line (a client's string with a newline cannot forge another line).
std::string Printable(std::string_view text, size_t max = 256);

// The audit log: one JSON line for every state-changing call, with the authenticated identity.
class AuditLog {
 public:
  // Appends to `path` (created if missing); an empty path logs nothing.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(const std::string& path);
  ~AuditLog();

  // action: "label", "retrain", ...; `fields` a JSON object's members (already escaped JSON).
  void Record(std::string_view identity, std::string_view action, std::string_view monitor,
              const std::string& fields_json, const absl::Status& result);

 private:
  explicit AuditLog(int fd) : fd_(fd) {}
  absl::Mutex mu_;
  int fd_ = -1;
};

// Checks that the TLS files of `config` load and belong together (a certificate provider would
// otherwise fail every handshake in silence).
absl::Status CheckTlsFiles(const Config& config);

// The gRPC port's credentials: TLS from the files (watched for changes; client certificates
// requested and verified with tls_client_ca), or plaintext.
std::shared_ptr<grpc::ServerCredentials> GrpcServerCredentials(const Config& config);

// With neither TLS nor a token file, anyone who reaches the ports could ingest, read and steer:
// an address other than loopback is refused unless `insecure`. OK, or why not.
absl::Status ValidateExposure(const std::string& grpc_address, const std::string& http_address,
                              bool tls, bool tokens, bool insecure);

}  // namespace histguard::server
