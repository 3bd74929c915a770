// The histguard.v1.Ingest gRPC service on the callback (reactor) API.
//
// Reactors never block: they validate each histogram (bad ones are answered REJECTED at once),
// hand the rest to the Scorer and answer when it has scored them. Submit answers the whole batch
// in request order; Stream answers one verdict per histogram in the order received, pausing its
// reads while `stream_in_flight` verdicts are still unwritten.
//
// Stream reads raw bytes and parses each message itself: a message that is not a Histogram ends
// the stream with INVALID_ARGUMENT once everything read before it is answered (gRPC's own
// parsing would report it as an ordinary end of the stream and drop what follows in silence).
//
// Drain() (at SIGTERM) stops all reading: Submit answers UNAVAILABLE, and each stream ends with
// UNAVAILABLE once the histograms it has read are answered. While the data disk is full (see
// Health) new histograms are refused with UNAVAILABLE; a histogram scored but not stored ends its
// call with UNAVAILABLE too, never with a verdict that looks stored.
//
// Memory: every histogram between arrival and answer counts against one byte budget
// (memory_budget_bytes / 8, see InFlightBudget; gRPC's transport buffers get another eighth): a
// Submit that does not fit is refused with RESOURCE_EXHAUSTED, streams stop reading until answers
// give bytes back. Thread-safe.
#pragma once

#include <atomic>
#include <unordered_set>
#include "server/locks.h"

#include "histguard/v1/histguard.grpc.pb.h"
#include "server/config.h"
#include "server/health.h"
#include "server/inflight.h"
#include "server/metrics.h"
#include "server/run_state.h"
#include "server/score_queue.h"
#include "server/security.h"

namespace histguard::server {

class StreamReactor;

class IngestService final
    : public v1::Ingest::WithCallbackMethod_Submit<v1::Ingest::WithRawCallbackMethod_Stream<
          v1::Ingest::WithCallbackMethod_SetRunState<v1::Ingest::Service>>> {
 public:
  // Submit, Stream and SetRunState need the `ingest` role of `auth`; run changes go to `audit`.
  IngestService(const Config& config, Metrics& metrics, ScoreQueue& queue, const Health& health,
                const Authenticator& auth, AuditLog& audit, RunState& runs)
      : config_(config),
        metrics_(metrics),
        queue_(queue),
        health_(health),
        auth_(auth),
        audit_(audit),
        runs_(runs),
        budget_(config.memory_budget_bytes / 8) {}

  // Stops reading new histograms on every call, now and later; what was read is still answered.
  void Drain();
  bool draining() const { return draining_.load(); }

  grpc::ServerUnaryReactor* Submit(grpc::CallbackServerContext* context,
                                   const v1::SubmitRequest* request,
                                   v1::SubmitResponse* response) override;

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Stream(
      grpc::CallbackServerContext* context) override;

  grpc::ServerUnaryReactor* SetRunState(grpc::CallbackServerContext* context,
                                        const v1::RunStateRequest* request,
                                        v1::RunState* response) override;

 private:
  friend class StreamReactor;
  void Forget(StreamReactor* r);
  void GiveBack(uint64_t bytes);

  const Config& config_;
  Metrics& metrics_;
  ScoreQueue& queue_;
  const Health& health_;
  const Authenticator& auth_;
  AuditLog& audit_;
  RunState& runs_;
  InFlightBudget budget_;
  std::atomic<bool> draining_{false};
  absl::Mutex streams_mu_;
  std::unordered_set<StreamReactor*> streams_ ABSL_GUARDED_BY(streams_mu_);  // live streams
};

}  // namespace histguard::server
