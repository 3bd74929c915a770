#include "server/ingest_service.h"

#include <deque>
#include <memory>
#include <vector>
#include "server/convert.h"
#include "server/locks.h"

#include <grpcpp/support/proto_buffer_reader.h>

namespace histguard::server {
namespace {

using Clock = std::chrono::steady_clock;

std::string Count(size_t n) { return std::to_string(n) + (n == 1 ? " histogram" : " histograms"); }

}  // namespace

// One bidirectional stream. Owned by gRPC until OnDone; deletes itself once OnDone has run and
// nothing holds it any more: the Scorer (while it scores one of its histograms) or a Drain.
class StreamReactor final : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  explicit StreamReactor(IngestService& service)
      : service_(service),
        config_(service.config_),
        metrics_(service.metrics_),
        queue_(service.queue_) {}

  ~StreamReactor() override {
    uint64_t unanswered = 0;
    for (const auto& s : slots_) unanswered += s->bytes;
    service_.GiveBack(unanswered);
  }

  // Starts reading, or ends at once when the daemon is already draining or the caller may not
  // ingest (`refused` not OK).
  void Start(const absl::Status& refused) {
    if (!refused.ok()) {
      {
        absl::MutexLock lk(&mu_);
        finished_ = true;
      }
      Finish(ToGrpcStatus(refused));
      return;
    }
    if (service_.draining()) {
      Drain();
      return;
    }
    MaybeRead();
  }

  // Reads nothing more; ends the call once what was read is answered.
  void Drain() {
    {
      absl::MutexLock lk(&mu_);
      if (!finished_ && !reads_done_) drained_ = true;
    }
    Pump();
  }

  void Hold() {
    absl::MutexLock lk(&mu_);
    ++holds_;
  }
  void Release() {
    bool last;
    {
      absl::MutexLock lk(&mu_);
      --holds_;
      last = done_ && holds_ == 0;
    }
    if (last) delete this;
  }

  void OnReadDone(bool ok) override {
    absl::ReleasableMutexLock lk(&mu_);
    std::unique_ptr<Slot> slot = std::move(reading_);
    read_pending_ = false;
    if (!ok || finished_) {
      // The client closed its side (or the call ended while this read waited).
      if (!ok) reads_done_ = true;
      lk.Release();
      Pump();
      return;
    }
    ++read_;
    slot->bytes = slot->in.Length();
    service_.budget_.Take(slot->bytes);
    metrics_.inflight_bytes.Set(static_cast<double>(service_.budget_.used()));
    if (!grpc::SerializationTraits<v1::Histogram>::Deserialize(&slot->in, &slot->wire).ok()) {
      reads_done_ = true;
      end_status_ = grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          "message " + std::to_string(read_) + " of this stream is not a histguard.v1.Histogram; " +
              "the " + Count(read_ - 1) + " before it are answered, nothing after it was read");
      lk.Release();
      // Outside the lock: giving bytes back runs other streams' waiting reads.
      service_.GiveBack(slot->bytes);
      metrics_.received.Increment();
      metrics_.Rejected("malformed_message").Increment();
      Pump();
      return;
    }
    Slot* s = slot.get();
    s->index = read_;
    slots_.push_back(std::move(slot));
    lk.Release();

    metrics_.received.Increment();
    s->verdict = VerdictFor(s->wire);
    if (auto why = Validate(s->wire, config_.max_bins)) {
      queue_.Reject(*why, s->verdict);
      MarkReady(s);
    } else if (service_.health_.disk_full()) {
      metrics_.Rejected("disk_full").Increment();
      StopReading(s, grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                  service_.health_.disk_full_reason() + ": " + NotTaken(s->index)));
      return;
    } else {
      s->histogram = FromProto(s->wire);
      s->wire = v1::Histogram();  // one copy in flight, not two
      service_.runs_.Seen(s->histogram.run);
      Hold();
      ScoreJob job;
      job.items.push_back({&s->histogram, &s->verdict, Clock::now()});
      job.done = [this, s](const absl::Status& stored) {
        if (stored.ok()) {
          MarkReady(s);
        } else {
          StopReading(s, grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                      "not stored (" + std::string(stored.message()) +
                                          "): " + NotTaken(s->index)));
        }
        Pump();
        Release();
      };
      if (!queue_.Enqueue(std::move(job), /*force=*/true)) {
        // Only when the daemon is stopping: answer rather than drop.
        queue_.Reject({"queue_full", "daemon is shutting down"}, s->verdict);
        MarkReady(s);
        Release();
      }
    }
    MaybeRead();
    Pump();
  }

  void OnWriteDone(bool ok) override {
    uint64_t answered;
    {
      absl::MutexLock lk(&mu_);
      writing_ = false;
      answered = slots_.front()->bytes;
      slots_.pop_front();
      if (!ok) failed_ = true;
    }
    service_.GiveBack(answered);
    MaybeRead();
    Pump();
  }

  void OnDone() override {
    service_.Forget(this);
    bool last;
    {
      absl::MutexLock lk(&mu_);
      done_ = true;
      last = holds_ == 0;
    }
    if (last) delete this;
  }

  void OnCancel() override {
    {
      absl::MutexLock lk(&mu_);
      failed_ = true;
    }
    Pump();
  }

 private:
  struct Slot {
    grpc::ByteBuffer in, out;
    v1::Histogram wire;  // as read, until it is validated
    Histogram histogram;
    Verdict verdict;
    bool ready = false;
    bool dropped = false;  // the call ends before this one is answered
    size_t index = 0;      // 1 for the stream's first message
    uint64_t bytes = 0;    // taken from the in-flight budget
  };

  // Starts the next read unless something holds reading back: the end of reading, the stream's
  // own limit of unanswered histograms (a write's completion calls again), or the daemon's
  // in-flight byte budget (bytes given back call again).
  void MaybeRead() {
    {
      absl::MutexLock lk(&mu_);
      if (read_pending_ || finished_ || failed_ || drained_ || reads_done_ ||
          slots_.size() >= config_.stream_in_flight)
        return;
      read_pending_ = true;
    }
    Hold();
    if (service_.budget_.AvailableOr([this] { ReadWithinBudget(); })) ReadWithinBudget();
  }

  void ReadWithinBudget() {
    grpc::ByteBuffer* in = nullptr;
    {
      absl::MutexLock lk(&mu_);
      if (!finished_ && !failed_ && !drained_ && !reads_done_) {
        reading_ = std::make_unique<Slot>();
        in = &reading_->in;
      } else {
        read_pending_ = false;
      }
    }
    if (in) StartRead(in);
    Release();
  }

  void MarkReady(Slot* s) {
    absl::MutexLock lk(&mu_);
    s->ready = true;
  }

  // Ends the call at `s`: it and everything after it are dropped unanswered, reading stops, and
  // the call finishes with `status` once the verdicts before `s` are written.
  void StopReading(Slot* s, grpc::Status status) {
    {
      absl::MutexLock lk(&mu_);
      reads_done_ = true;
      if (end_status_.ok()) end_status_ = std::move(status);
      bool after = false;
      for (auto& slot : slots_) {
        after |= slot.get() == s;
        slot->dropped |= after;
      }
    }
    Pump();
  }

  // For a status that ends the stream early: where it stopped.
  static std::string NotTaken(size_t message) {
    return "message " + std::to_string(message) +
           " of this stream and those after it were not taken; every verdict sent before it is "
           "stored";
  }

  // Starts the next in-order write, or finishes the call, whichever is due. Decisions are made
  // under the lock; gRPC operations are started outside it.
  void Pump() {
    const grpc::ByteBuffer* to_write = nullptr;
    bool finish = false;
    grpc::Status status = grpc::Status::OK;
    {
      absl::MutexLock lk(&mu_);
      if (finished_ || writing_) return;
      if (failed_) {
        finished_ = finish = true;
        status = grpc::Status(grpc::StatusCode::CANCELLED, "stream cancelled");
      } else if (!slots_.empty() && slots_.front()->dropped) {
        // Still in the scorer or not; either way nothing more is written on this call.
        finished_ = finish = true;
        status = end_status_;
      } else if (!slots_.empty() && slots_.front()->ready) {
        writing_ = true;
        Slot& s = *slots_.front();
        bool own = false;
        v1::Verdict answer;
        ToProto(s.verdict, &answer);
        (void)grpc::SerializationTraits<v1::Verdict>::Serialize(answer, &s.out, &own);
        to_write = &s.out;
      } else if (slots_.empty() && (reads_done_ || drained_)) {
        finished_ = finish = true;
        if (!end_status_.ok()) {
          status = end_status_;
        } else if (drained_) {
          status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                "daemon is shutting down: " + Count(read_) +
                                    " of this stream were answered; send the rest again");
        }
      }
    }
    if (to_write) StartWrite(to_write);
    if (finish) Finish(status);
  }

  IngestService& service_;
  const Config& config_;
  Metrics& metrics_;
  ScoreQueue& queue_;

  absl::Mutex mu_;
  // read and not yet written, in arrival order
  std::deque<std::unique_ptr<Slot>> slots_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<Slot> reading_ ABSL_GUARDED_BY(mu_);  // the buffer of the read in progress
  size_t read_ ABSL_GUARDED_BY(mu_) = 0;                // messages read
  int holds_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::Status end_status_ ABSL_GUARDED_BY(mu_);  // why reading stopped early, when an error
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool read_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool drained_ ABSL_GUARDED_BY(mu_) = false;
  bool failed_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

void IngestService::Drain() {
  draining_ = true;
  std::vector<StreamReactor*> live;
  {
    absl::MutexLock lk(&streams_mu_);
    for (StreamReactor* r : streams_) {
      r->Hold();
      live.push_back(r);
    }
  }
  for (StreamReactor* r : live) {
    r->Drain();
    r->Release();
  }
}

void IngestService::GiveBack(uint64_t bytes) {
  if (bytes == 0) return;
  budget_.Give(bytes);
  metrics_.inflight_bytes.Set(static_cast<double>(budget_.used()));
}

void IngestService::Forget(StreamReactor* r) {
  absl::MutexLock lk(&streams_mu_);
  streams_.erase(r);
}

grpc::ServerUnaryReactor* IngestService::Submit(grpc::CallbackServerContext* context,
                                                const v1::SubmitRequest* request,
                                                v1::SubmitResponse* response) {
  auto* reactor = context->DefaultReactor();
  const int n = request->histograms_size();
  if (auto who = auth_.Check(context, Role::kIngest); !who.ok()) {
    reactor->Finish(ToGrpcStatus(who.status()));
    return reactor;
  }
  if (draining()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 "daemon is shutting down: send again to a running daemon"));
    return reactor;
  }
  if (health_.disk_full()) {
    metrics_.Rejected("disk_full").Increment(n);
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 health_.disk_full_reason() + ": nothing was taken, retry later"));
    return reactor;
  }
  if (static_cast<uint32_t>(n) > config_.max_histograms_per_request) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 std::to_string(n) + " histograms in one Submit, at most " +
                                     std::to_string(config_.max_histograms_per_request) +
                                     " allowed: split the batch"));
    return reactor;
  }
  const uint64_t bytes = request->ByteSizeLong();
  if (!budget_.TryTake(bytes)) {
    metrics_.Rejected("memory_budget").Increment(n);
    reactor->Finish(grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        "histograms in flight fill the memory budget (" + std::to_string(budget_.used() >> 20) +
            " of " + std::to_string(budget_.limit() >> 20) +
            " MiB, memory_budget_bytes / 8): " + "retry later, or send smaller batches"));
    return reactor;
  }
  metrics_.inflight_bytes.Set(static_cast<double>(budget_.used()));
  metrics_.received.Increment(n);
  const auto now = Clock::now();
  // The batch's histograms and verdicts, until the verdicts are answered.
  struct Batch {
    std::vector<Histogram> histograms;
    std::vector<Verdict> verdicts;
  };
  auto batch = std::make_shared<Batch>();
  batch->histograms.reserve(n);  // the queue holds pointers into both
  batch->verdicts.reserve(n);
  ScoreJob job;
  job.items.reserve(n);
  for (int i = 0; i < n; ++i) {
    const v1::Histogram& h = request->histograms(i);
    Verdict& v = batch->verdicts.emplace_back(VerdictFor(h));
    if (auto why = Validate(h, config_.max_bins)) {
      queue_.Reject(*why, v);
    } else {
      runs_.Seen(h.run());
      job.items.push_back({&batch->histograms.emplace_back(FromProto(h)), &v, now});
    }
  }
  const auto answer = [batch, response] {
    response->mutable_verdicts()->Reserve(static_cast<int>(batch->verdicts.size()));
    for (const Verdict& v : batch->verdicts) ToProto(v, response->add_verdicts());
  };
  if (job.items.empty()) {
    GiveBack(bytes);
    answer();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  job.done = [this, reactor, bytes, answer](const absl::Status& stored) {
    GiveBack(bytes);
    answer();
    reactor->Finish(stored.ok()
                        ? grpc::Status::OK
                        : grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                       "scored but not stored (" + std::string(stored.message()) +
                                           "): nothing of this batch was taken, retry"));
  };
  if (!queue_.Enqueue(std::move(job))) {
    GiveBack(bytes);
    metrics_.Rejected("queue_full").Increment(static_cast<double>(n));
    reactor->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                 "scoring queue is full (max_queue " +
                                     std::to_string(config_.max_queue) + "): retry later"));
  }
  return reactor;
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* IngestService::Stream(
    grpc::CallbackServerContext* context) {
  auto* r = new StreamReactor(*this);
  {
    absl::MutexLock lk(&streams_mu_);
    streams_.insert(r);
  }
  r->Start(auth_.Check(context, Role::kIngest).status());
  return r;
}

grpc::ServerUnaryReactor* IngestService::SetRunState(grpc::CallbackServerContext* context,
                                                     const v1::RunStateRequest* request,
                                                     v1::RunState* response) {
  auto* reactor = context->DefaultReactor();
  auto who = auth_.Check(context, Role::kIngest);
  if (!who.ok()) {
    reactor->Finish(ToGrpcStatus(who.status()));
    return reactor;
  }
  if (request->run() == 0) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "run numbers start at 1"));
    return reactor;
  }
  const RunState::View now =
      request->open() ? runs_.Start(request->run()) : runs_.End(request->run());
  response->set_run(now.run);
  response->set_open(now.open);
  audit_.Record(*who, request->open() ? "run_start" : "run_end", "",
                "{\"run\":" + std::to_string(request->run()) + "}", absl::OkStatus());
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace histguard::server
