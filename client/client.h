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
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "histguard/v1/histguard.grpc.pb.h"

namespace histguard {

class Client {
 public:
  explicit Client(const std::string& address);

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

  enum class Health { kServing, kNotServing, kUnreachable };
  // Asks grpc.health.v1.Health for the overall status; `detail` says why when not serving.
  Health CheckHealth(std::chrono::milliseconds timeout, std::string* detail = nullptr);

  // Waits until the channel connects or `timeout` passes.
  bool WaitForConnected(std::chrono::milliseconds timeout);

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

  // The operators' Control service, on the same channel. The caller sets each call's deadline.
  v1::Control::Stub& control() { return *control_; }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Ingest::Stub> ingest_;
  std::unique_ptr<v1::Control::Stub> control_;
};

}  // namespace histguard
