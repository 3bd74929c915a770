// The histguard.v1.Ingest gRPC service on the callback (reactor) API.
//
// Reactors never block: they validate each histogram (bad ones are answered REJECTED at once),
// hand the rest to the Scorer and answer when it has scored them. Submit answers the whole batch
// in request order; Stream answers one verdict per histogram in the order received, pausing its
// reads while `stream_in_flight` verdicts are still unwritten.
#pragma once

#include "histguard/v1/histguard.grpc.pb.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/scorer.h"

namespace histguard::server {

class IngestService final : public v1::Ingest::CallbackService {
 public:
  IngestService(const Config& config, Metrics& metrics, Scorer& scorer)
      : config_(config), metrics_(metrics), scorer_(scorer) {}

  grpc::ServerUnaryReactor* Submit(grpc::CallbackServerContext* context,
                                   const v1::SubmitRequest* request,
                                   v1::SubmitResponse* response) override;

  grpc::ServerBidiReactor<v1::Histogram, v1::Verdict>* Stream(
      grpc::CallbackServerContext* context) override;

 private:
  const Config& config_;
  Metrics& metrics_;
  Scorer& scorer_;
};

}  // namespace histguard::server
