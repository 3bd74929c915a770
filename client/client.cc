#include "client/client.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "grpc/health/v1/health.grpc.pb.h"
#include "proto/histguard/limits.h"

namespace histguard {
namespace {

std::string ReadFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(std::string("cannot read ") + what + " " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Trim(std::string s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_first_of("\r\n", b);
  s = s.substr(b, e == std::string::npos ? std::string::npos : e - b);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
  return s;
}

}  // namespace

std::string ReadToken(const std::string& path) {
  if (!path.empty()) return Trim(ReadFile(path, "token file"));
  const char* env = std::getenv("HISTGUARD_TOKEN");
  return env ? Trim(env) : "";
}

Client::Client(const std::string& address, const ClientOptions& options) : token_(options.token) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (options.tls || !options.tls_ca.empty()) {
    grpc::SslCredentialsOptions ssl;
    if (!options.tls_ca.empty()) ssl.pem_root_certs = ReadFile(options.tls_ca, "TLS CA");
    if (!options.tls_cert.empty()) {
      ssl.pem_cert_chain = ReadFile(options.tls_cert, "TLS client certificate");
      ssl.pem_private_key = ReadFile(options.tls_key, "TLS client key");
    }
    creds = grpc::SslCredentials(ssl);
    if (!options.tls_server_name.empty()) args.SetSslTargetNameOverride(options.tls_server_name);
  }
  channel_ = grpc::CreateCustomChannel(address, creds, args);
  ingest_ = v1::Ingest::NewStub(channel_);
  control_ = v1::Control::NewStub(channel_);
}

void Client::Authorize(grpc::ClientContext* context) const {
  // Set per call rather than as call credentials: gRPC sends those over TLS only, and a token
  // on a plaintext loopback connection (or behind a TLS-terminating proxy) is legitimate.
  if (!token_.empty()) context->AddMetadata("authorization", "Bearer " + token_);
}

grpc::Status Client::Submit(const std::vector<v1::Histogram>& histograms,
                            std::vector<v1::Verdict>* verdicts, std::chrono::milliseconds timeout) {
  v1::SubmitRequest request;
  request.mutable_histograms()->Reserve(static_cast<int>(histograms.size()));
  for (const auto& h : histograms) *request.add_histograms() = h;
  v1::SubmitResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  Authorize(&context);
  grpc::Status status = ingest_->Submit(&context, request, &response);
  if (status.ok() && verdicts) {
    verdicts->assign(response.verdicts().begin(), response.verdicts().end());
  }
  return status;
}

grpc::Status Client::SetRunState(uint64_t run, bool open, v1::RunState* state,
                                 std::chrono::milliseconds timeout) {
  v1::RunStateRequest request;
  request.set_run(run);
  request.set_open(open);
  v1::RunState response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  Authorize(&context);
  grpc::Status status = ingest_->SetRunState(&context, request, &response);
  if (status.ok() && state) *state = response;
  return status;
}

std::unique_ptr<Client::Stream> Client::OpenStream() {
  auto s = std::unique_ptr<Stream>(new Stream());
  Authorize(&s->context_);
  s->rw_ = ingest_->Stream(&s->context_);
  return s;
}

Client::Health Client::CheckHealth(std::chrono::milliseconds timeout, std::string* detail) {
  auto stub = grpc::health::v1::Health::NewStub(channel_);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status s = stub->Check(&context, request, &response);
  if (!s.ok()) {
    if (detail) *detail = s.error_message();
    return Health::kUnreachable;
  }
  if (response.status() == grpc::health::v1::HealthCheckResponse::SERVING) return Health::kServing;
  if (detail)
    *detail = grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status());
  return Health::kNotServing;
}

bool Client::WaitForConnected(std::chrono::milliseconds timeout) {
  return channel_->WaitForConnected(std::chrono::system_clock::now() + timeout);
}

}  // namespace histguard
