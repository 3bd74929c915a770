#include "server/ingest_service.h"

#include <deque>
#include <memory>
#include <mutex>

namespace histguard::server {
namespace {

using Clock = std::chrono::steady_clock;

// One bidirectional stream. Owned by gRPC until OnDone; deletes itself once OnDone has run and
// the Scorer holds none of its histograms.
class StreamReactor final : public grpc::ServerBidiReactor<v1::Histogram, v1::Verdict> {
 public:
  StreamReactor(const Config& config, Metrics& metrics, Scorer& scorer)
      : config_(config), metrics_(metrics), scorer_(scorer) {
    StartNextRead();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      {
        std::lock_guard lk(mu_);
        reads_done_ = true;
        // The slot allocated for this read received no message.
        if (!slots_.empty() && slots_.back().get() == reading_) slots_.pop_back();
        reading_ = nullptr;
      }
      Pump();
      return;
    }
    metrics_.received.Increment();
    Slot* slot = reading_;
    if (auto why = Validate(slot->histogram, config_.max_bins)) {
      scorer_.Reject(slot->histogram, *why, slot->verdict);
      std::lock_guard lk(mu_);
      slot->ready = true;
    } else {
      {
        std::lock_guard lk(mu_);
        ++in_scorer_;
      }
      ScoreJob job;
      job.items.push_back({&slot->histogram, &slot->verdict, Clock::now()});
      job.done = [this, slot] { OnScored(slot); };
      if (!scorer_.Enqueue(std::move(job), /*force=*/true)) {
        // Only when the daemon is stopping: answer rather than drop.
        scorer_.Reject(slot->histogram, {"queue_full", "daemon is shutting down"}, slot->verdict);
        std::lock_guard lk(mu_);
        --in_scorer_;
        slot->ready = true;
      }
    }
    bool read_more;
    {
      std::lock_guard lk(mu_);
      read_more = slots_.size() < config_.stream_in_flight && !failed_;
      reads_paused_ = !read_more;
    }
    if (read_more) StartNextRead();
    Pump();
  }

  void OnWriteDone(bool ok) override {
    bool resume = false;
    {
      std::lock_guard lk(mu_);
      writing_ = false;
      slots_.pop_front();
      if (!ok) failed_ = true;
      if (reads_paused_ && !failed_ && slots_.size() < config_.stream_in_flight) {
        reads_paused_ = false;
        resume = true;
      }
    }
    if (resume) StartNextRead();
    Pump();
  }

  void OnDone() override {
    bool last;
    {
      std::lock_guard lk(mu_);
      done_ = true;
      last = in_scorer_ == 0;
    }
    if (last) delete this;
  }

  void OnCancel() override {
    {
      std::lock_guard lk(mu_);
      failed_ = true;
    }
    Pump();
  }

 private:
  struct Slot {
    v1::Histogram histogram;
    v1::Verdict verdict;
    bool ready = false;
  };

  void StartNextRead() {
    Slot* slot;
    {
      std::lock_guard lk(mu_);
      slots_.push_back(std::make_unique<Slot>());
      slot = slots_.back().get();
      reading_ = slot;
    }
    StartRead(&slot->histogram);
  }

  void OnScored(Slot* slot) {
    bool last;
    {
      std::lock_guard lk(mu_);
      slot->ready = true;
      --in_scorer_;
      last = done_ && in_scorer_ == 0;
    }
    if (last) {
      delete this;
      return;
    }
    Pump();
  }

  // Starts the next in-order write, or finishes the call, whichever is due. Decisions are made
  // under the lock; gRPC operations are started outside it.
  void Pump() {
    const v1::Verdict* to_write = nullptr;
    bool finish = false;
    grpc::Status status = grpc::Status::OK;
    {
      std::lock_guard lk(mu_);
      if (finished_ || writing_) return;
      if (failed_) {
        finished_ = finish = true;
        status = grpc::Status(grpc::StatusCode::CANCELLED, "stream cancelled");
      } else if (!slots_.empty() && slots_.front()->ready) {
        // The slot being read into is never ready, so only answered histograms are written.
        writing_ = true;
        to_write = &slots_.front()->verdict;
      } else if (reads_done_ && slots_.empty()) {
        finished_ = finish = true;
      }
    }
    if (to_write) StartWrite(to_write);
    if (finish) Finish(status);
  }

  const Config& config_;
  Metrics& metrics_;
  Scorer& scorer_;

  std::mutex mu_;
  std::deque<std::unique_ptr<Slot>> slots_;  // in arrival order; guarded by mu_
  Slot* reading_ = nullptr;
  int in_scorer_ = 0;
  bool writing_ = false, reads_done_ = false, reads_paused_ = false;
  bool failed_ = false, finished_ = false, done_ = false;
};

}  // namespace

grpc::ServerUnaryReactor* IngestService::Submit(grpc::CallbackServerContext* context,
                                                const v1::SubmitRequest* request,
                                                v1::SubmitResponse* response) {
  auto* reactor = context->DefaultReactor();
  const int n = request->histograms_size();
  if (static_cast<uint32_t>(n) > config_.max_histograms_per_request) {
    reactor->Finish(grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        std::to_string(n) + " histograms in one Submit, at most " +
            std::to_string(config_.max_histograms_per_request) + " allowed: split the batch"));
    return reactor;
  }
  metrics_.received.Increment(n);
  const auto now = Clock::now();
  ScoreJob job;
  job.items.reserve(n);
  response->mutable_verdicts()->Reserve(n);
  for (int i = 0; i < n; ++i) response->add_verdicts();
  for (int i = 0; i < n; ++i) {
    const auto& h = request->histograms(i);
    auto* v = response->mutable_verdicts(i);
    if (auto why = Validate(h, config_.max_bins)) {
      scorer_.Reject(h, *why, *v);
    } else {
      job.items.push_back({&h, v, now});
    }
  }
  if (job.items.empty()) {
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  job.done = [reactor] { reactor->Finish(grpc::Status::OK); };
  if (!scorer_.Enqueue(std::move(job))) {
    metrics_.Rejected("queue_full").Increment(static_cast<double>(n));
    reactor->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                 "scoring queue is full (max_queue " +
                                     std::to_string(config_.max_queue) + "): retry later"));
  }
  return reactor;
}

grpc::ServerBidiReactor<v1::Histogram, v1::Verdict>* IngestService::Stream(
    grpc::CallbackServerContext* context) {
  return new StreamReactor(config_, metrics_, scorer_);
}

}  // namespace histguard::server
