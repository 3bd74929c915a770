#include "client/client.h"

#include "grpc/health/v1/health.grpc.pb.h"

namespace histguard {

Client::Client(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  channel_ = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  ingest_ = v1::Ingest::NewStub(channel_);
  control_ = v1::Control::NewStub(channel_);
}

grpc::Status Client::Submit(const std::vector<v1::Histogram>& histograms,
                            std::vector<v1::Verdict>* verdicts, std::chrono::milliseconds timeout) {
  v1::SubmitRequest request;
  request.mutable_histograms()->Reserve(static_cast<int>(histograms.size()));
  for (const auto& h : histograms) *request.add_histograms() = h;
  v1::SubmitResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  grpc::Status status = ingest_->Submit(&context, request, &response);
  if (status.ok() && verdicts) {
    verdicts->assign(response.verdicts().begin(), response.verdicts().end());
  }
  return status;
}

std::unique_ptr<Client::Stream> Client::OpenStream() {
  auto s = std::unique_ptr<Stream>(new Stream());
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
  if (detail) *detail = grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status());
  return Health::kNotServing;
}

bool Client::WaitForConnected(std::chrono::milliseconds timeout) {
  return channel_->WaitForConnected(std::chrono::system_clock::now() + timeout);
}

}  // namespace histguard
