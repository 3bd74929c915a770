// histguard::Client: the C++ client library for the histguard daemon.
//
//   histguard::Client client("localhost:50051");
//   std::vector<histguard::v1::Verdict> verdicts;
//   grpc::Status s = client.Submit(histograms, &verdicts);        // unary batch
//   auto stream = client.OpenStream();                            // bidirectional stream
//   stream->Write(h); stream->Read(&verdict); ... stream->WritesDone(); stream->Finish();
//   client.control().ListMonitors(&context, request, &response);  // operators' Control service
//
// A Client holds one channel and may be used from several threads at once. A Stream may be
// written from one thread while another reads it (one writer, one reader).
//
// Against a daemon with TLS and tokens:
//   histguard::ClientOptions o;
//   o.tls_ca = "ca.pem";                 // verify the daemon's certificate
//   o.token = histguard::ReadToken("");  // $HISTGUARD_TOKEN
//   histguard::Client client("dqm.example.org:50051", o);
// Calls made through control() carry the token once the caller's context went through
// client.Authorize(&context).
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "histguard/v1/histguard.grpc.pb.h"

namespace histguard {

struct ClientOptions {
  bool tls = false;      // TLS, verifying the daemon with the system's CAs (implied by tls_ca)
  std::string tls_ca;    // PEM file of the CA that signed the daemon's certificate
  std::string tls_cert;  // PEM client certificate and key (mTLS), both or neither
  std::string tls_key;
  std::string tls_server_name;  // the name to expect in the daemon's certificate, if not the host
  std::string token;            // bearer token, sent as "authorization: Bearer TOKEN"
};

// The token in `path` (its first line, trimmed), or $HISTGUARD_TOKEN when `path` is empty; empty
// when neither is given. Throws std::runtime_error when the file cannot be read.
std::string ReadToken(const std::string& path);

class Client {
 public:
  // Throws std::runtime_error when a TLS file cannot be read.
  explicit Client(const std::string& address, const ClientOptions& options = {});

  // Adds the bearer token, if any, to a call's context.
  void Authorize(grpc::ClientContext* context) const;

  grpc::Status Submit(const std::vector<v1::Histogram>& histograms,
                      std::vector<v1::Verdict>* verdicts,
                      std::chrono::milliseconds timeout = std::chrono::seconds(60));

  class Stream {
   public:
    bool Write(const v1::Histogram& h) { return rw_->Write(h); }
    bool Read(v1::Verdict* v) { return rw_->Read(v); }
    bool WritesDone() { return rw_->WritesDone(); }
    grpc::Status Finish() { return rw_->Finish(); }

   private:
    friend class Client;
    grpc::ClientContext context_;
    std::unique_ptr<grpc::ClientReaderWriter<v1::Histogram, v1::Verdict>> rw_;
  };
  std::unique_ptr<Stream> OpenStream();

  // Run control: `run` started (open) or ended. `state` gets the daemon's run state after it.
  grpc::Status SetRunState(uint64_t run, bool open, v1::RunState* state,
                           std::chrono::milliseconds timeout = std::chrono::seconds(10));

  enum class Health { kServing, kNotServing, kUnreachable };
  // Asks grpc.health.v1.Health for the overall status; `detail` says why when not serving.
  Health CheckHealth(std::chrono::milliseconds timeout, std::string* detail = nullptr);

  // Waits until the channel connects or `timeout` passes.
  bool WaitForConnected(std::chrono::milliseconds timeout);

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

  // The operators' Control service, on the same channel. The caller sets each call's deadline.
  v1::Control::Stub& control() { return *control_; }

 private:
  std::string token_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Ingest::Stub> ingest_;
  std::unique_ptr<v1::Control::Stub> control_;
};

}  // namespace histguard
