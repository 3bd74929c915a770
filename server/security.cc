#include "server/security.h"

#include <fcntl.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "server/http_server.h"

namespace histguard::server {
namespace {

bool RoleAllows(Role have, Role need) {
  return have == need || (have == Role::kOperator && need == Role::kRead);
}

std::optional<Role> ParseRole(std::string_view s) {
  if (s == "ingest") return Role::kIngest;
  if (s == "read") return Role::kRead;
  if (s == "operator") return Role::kOperator;
  return std::nullopt;
}

int64_t MtimeNs(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

bool IsLoopback(const std::string& address) {
  std::string host, port;
  if (!SplitHostPort(address, host, port)) return false;
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kIngest:
      return "ingest";
    case Role::kRead:
      return "read";
    case Role::kOperator:
      return "operator";
  }
  return "?";
}

std::string Sha256Hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

std::string Printable(std::string_view text, size_t max) {
  std::string out;
  for (size_t i = 0; i < text.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\\' || c == '"') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > max) out += "...";
  return out;
}

absl::StatusOr<Authenticator::Table> Authenticator::Read(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError("cannot read token file " + path);
  Table t;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (const auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::string role_text, credential, name;
    if (!(words >> role_text)) continue;  // blank or comment
    const std::string where = path + " line " + std::to_string(n) + ": ";
    const auto role = ParseRole(role_text);
    if (!role)
      return absl::InvalidArgumentError(where + "unknown role '" + Printable(role_text, 32) +
                                        "' (ingest, read or operator)");
    if (!(words >> credential))
      return absl::InvalidArgumentError(where +
                                        "a role needs a credential (sha256:HEX or cn:NAME)");
    words >> name;
    if (credential.rfind("sha256:", 0) == 0) {
      const std::string hex = credential.substr(7);
      if (hex.size() != 64 || hex.find_first_not_of("0123456789abcdef") != std::string::npos)
        return absl::InvalidArgumentError(
            where + "sha256: takes 64 lower-case hex digits (histguard token prints the line)");
      t.tokens[hex] = {*role, name.empty() ? "token-" + hex.substr(0, 8) : name};
    } else if (credential.rfind("cn:", 0) == 0 && credential.size() > 3) {
      const std::string cn = credential.substr(3);
      t.certs[cn] = {*role, name.empty() ? cn : name};
    } else {
      return absl::InvalidArgumentError(where + "credential '" + Printable(credential, 32) +
                                        "' is neither sha256:HEX nor cn:NAME");
    }
  }
  return t;
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Open(const std::string& token_file) {
  std::unique_ptr<Authenticator> a(new Authenticator(token_file));
  if (token_file.empty()) return a;
  auto table = Read(token_file);
  if (!table.ok()) return table.status();
  absl::MutexLock lk(&a->mu_);
  a->table_ = std::move(*table);
  a->mtime_ns_ = MtimeNs(token_file);
  a->checked_ = std::chrono::steady_clock::now();
  return a;
}

void Authenticator::Refresh() const {
  const auto now = std::chrono::steady_clock::now();
  if (now - checked_ < std::chrono::seconds(1)) return;
  checked_ = now;
  const int64_t mtime = MtimeNs(path_);
  if (mtime == mtime_ns_) return;
  auto table = Read(path_);
  if (!table.ok()) {
    // Keep the tokens that worked; say once why the new file does not.
    std::clog << "histguardd: token file not reloaded: " << table.status().message() << "\n";
    mtime_ns_ = mtime;
    return;
  }
  table_ = std::move(*table);
  mtime_ns_ = mtime;
  std::clog << "histguardd: token file " << path_ << " reloaded\n";
}

absl::StatusOr<std::string> Authenticator::Check(std::string_view authorization,
                                                 std::string_view cert_cn, Role need) const {
  if (!enabled()) return std::string("anonymous");
  absl::MutexLock lk(&mu_);
  Refresh();
  const Entry* who = nullptr;
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.size() > kBearer.size() && authorization.substr(0, kBearer.size()) == kBearer) {
    const auto it = table_.tokens.find(Sha256Hex(authorization.substr(kBearer.size())));
    if (it == table_.tokens.end())
      return absl::UnauthenticatedError("the bearer token is not known to this daemon");
    who = &it->second;
  } else if (!cert_cn.empty()) {
    const auto it = table_.certs.find(std::string(cert_cn));
    if (it == table_.certs.end())
      return absl::UnauthenticatedError("client certificate '" + Printable(cert_cn, 64) +
                                        "' is not in the token file");
    who = &it->second;
  } else {
    return absl::UnauthenticatedError(
        "this daemon needs a bearer token (authorization: Bearer TOKEN; the CLI's --token-file "
        "or HISTGUARD_TOKEN) or a client certificate");
  }
  if (!RoleAllows(who->role, need))
    return absl::PermissionDeniedError("'" + who->name + "' has the " + RoleName(who->role) +
                                       " role; this call needs " + RoleName(need));
  return who->name;
}

absl::StatusOr<std::string> Authenticator::Check(grpc::CallbackServerContext* context,
                                                 Role need) const {
  if (!enabled()) return std::string("anonymous");
  std::string_view authorization;
  const auto& md = context->client_metadata();
  if (const auto it = md.find("authorization"); it != md.end())
    authorization = std::string_view(it->second.data(), it->second.size());
  std::string cn;
  if (const auto auth = context->auth_context(); auth && auth->IsPeerAuthenticated()) {
    const auto values = auth->FindPropertyValues("x509_common_name");
    if (!values.empty()) cn.assign(values.front().data(), values.front().size());
  }
  return Check(authorization, cn, need);
}

grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  const std::string message(s.message());
  switch (s.code()) {
    case absl::StatusCode::kUnauthenticated:
      return {grpc::StatusCode::UNAUTHENTICATED, message};
    case absl::StatusCode::kPermissionDenied:
      return {grpc::StatusCode::PERMISSION_DENIED, message};
    case absl::StatusCode::kInvalidArgument:
      return {grpc::StatusCode::INVALID_ARGUMENT, message};
    case absl::StatusCode::kNotFound:
      return {grpc::StatusCode::NOT_FOUND, message};
    case absl::StatusCode::kResourceExhausted:
      return {grpc::StatusCode::RESOURCE_EXHAUSTED, message};
    case absl::StatusCode::kDataLoss:
      return {grpc::StatusCode::DATA_LOSS, message};
    case absl::StatusCode::kFailedPrecondition:
      return {grpc::StatusCode::FAILED_PRECONDITION, message};
    case absl::StatusCode::kAborted:
      return {grpc::StatusCode::ABORTED, message};
    default:
      return {grpc::StatusCode::UNAVAILABLE, message};
  }
}

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path) {
  if (path.empty()) return std::unique_ptr<AuditLog>(new AuditLog(-1));
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return absl::PermissionDeniedError("cannot open audit log " + path);
  return std::unique_ptr<AuditLog>(new AuditLog(fd));
}

AuditLog::~AuditLog() {
  if (fd_ >= 0) ::close(fd_);
}

void AuditLog::Record(std::string_view identity, std::string_view action, std::string_view monitor,
                      const std::string& fields_json, const absl::Status& result) {
  if (fd_ < 0) return;
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch());
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  char stamp[40];
  std::tm tm{};
  gmtime_r(&secs, &tm);
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  char full[48];
  std::snprintf(full, sizeof full, "%s.%03dZ", stamp, static_cast<int>(ms.count() % 1000));
  nlohmann::json line = {{"time", full},
                         {"identity", std::string(identity)},
                         {"action", std::string(action)},
                         {"monitor", std::string(monitor)},
                         {"result", result.ok() ? "ok" : std::string(result.message())}};
  if (!fields_json.empty()) {
    const auto fields = nlohmann::json::parse(fields_json, nullptr, false);
    if (fields.is_object()) line.update(fields);
  }
  // dump() escapes control characters: one line per record whatever the strings hold.
  const std::string text =
      line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  absl::MutexLock lk(&mu_);
  if (::write(fd_, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    std::clog << "histguardd: audit log write failed\n";
}

absl::Status CheckTlsFiles(const Config& config) {
  if (config.tls_cert.empty()) return absl::OkStatus();
  auto read = [](const std::string& path) -> BIO* { return BIO_new_file(path.c_str(), "r"); };
  BIO* cert_bio = read(config.tls_cert);
  if (!cert_bio) return absl::NotFoundError("cannot read tls_cert " + config.tls_cert);
  X509* cert = PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr);
  BIO_free(cert_bio);
  if (!cert)
    return absl::InvalidArgumentError("tls_cert " + config.tls_cert + " holds no PEM certificate");
  BIO* key_bio = read(config.tls_key);
  if (!key_bio) {
    X509_free(cert);
    return absl::NotFoundError("cannot read tls_key " + config.tls_key);
  }
  EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr);
  BIO_free(key_bio);
  const bool match = key && X509_check_private_key(cert, key) == 1;
  EVP_PKEY_free(key);
  X509_free(cert);
  if (!match)
    return absl::InvalidArgumentError("tls_key " + config.tls_key +
                                      " is not the private key of tls_cert " + config.tls_cert);
  if (!config.tls_client_ca.empty()) {
    BIO* ca_bio = read(config.tls_client_ca);
    if (!ca_bio) return absl::NotFoundError("cannot read tls_client_ca " + config.tls_client_ca);
    X509* ca = PEM_read_bio_X509(ca_bio, nullptr, nullptr, nullptr);
    BIO_free(ca_bio);
    if (!ca)
      return absl::InvalidArgumentError("tls_client_ca " + config.tls_client_ca +
                                        " holds no PEM certificate");
    X509_free(ca);
  }
  return absl::OkStatus();
}

std::shared_ptr<grpc::ServerCredentials> GrpcServerCredentials(const Config& config) {
  if (config.tls_cert.empty()) return grpc::InsecureServerCredentials();
  constexpr unsigned kRefreshSeconds = 10;
  using grpc::experimental::FileWatcherCertificateProvider;
  std::shared_ptr<grpc::experimental::CertificateProviderInterface> provider =
      config.tls_client_ca.empty()
          ? std::make_shared<FileWatcherCertificateProvider>(config.tls_key, config.tls_cert,
                                                             kRefreshSeconds)
          : std::make_shared<FileWatcherCertificateProvider>(config.tls_key, config.tls_cert,
                                                             config.tls_client_ca, kRefreshSeconds);
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (config.tls_client_ca.empty()) {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  } else {
    // Requested and verified when sent; a caller may still identify itself with a token.
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

absl::Status ValidateExposure(const std::string& grpc_address, const std::string& http_address,
                              bool tls, bool tokens, bool insecure) {
  if (tls || tokens || insecure) return absl::OkStatus();
  for (const std::string& a : {grpc_address, http_address})
    if (!IsLoopback(a))
      return absl::FailedPreconditionError(
          "refusing to listen on " + a +
          " without TLS or a token file: anyone who reaches it could send, read and steer "
          "every monitor. Give --tls-cert/--tls-key and --token-file, listen on 127.0.0.1, or "
          "pass --insecure to accept that");
  return absl::OkStatus();
}

}  // namespace histguard::server
