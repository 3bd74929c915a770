// TrainingScheduler: runs monitors' training jobs on a bounded background pool, so ingestion and
// scoring never wait for training.
//
// A job trains a candidate on a snapshot of the monitor's window. When the monitor already has a
// model, the candidate must not be worse than it, by more than candidate_tolerance, on the
// histograms of the candidate's holdout that are newer than the current model's training window
// (so neither was trained on them); a worse one is rejected and the current model stays. An
// accepted candidate gets the next version number, is written to disk with its manifest, swapped in
// under the monitor's lock and recorded in the store; versions beyond keep_versions are deleted
// (never the active one).
//
// A job holds its monitor; one forgotten while it trains keeps no model and writes nothing.
//
// Thread-safe. Stop() cancels running jobs and joins the pool.
#pragma once

#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "models/trainer.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/model_files.h"
#include "server/monitors.h"
#include "server/store.h"

namespace histguard::server {

struct TrainResult {
  bool accepted = false;
  uint64_t version = 0;
  std::string reason;  // why not, when not accepted
};

class TrainingScheduler {
 public:
  using Done = std::function<void(const TrainResult&)>;

  TrainingScheduler(const Config& config, Metrics& metrics, Store& store, const ModelFiles& files);
  ~TrainingScheduler();

  // Queues a training of `monitor` on a snapshot of its window. The caller has checked that no
  // training is running; `reason` goes into the manifest ("first training",
  // "scheduled", "interval", "drift", "manual"). `done` runs on the training thread, with no
  // monitor's mutex held (it may lock the monitor).
  void ScheduleLocked(Monitor& monitor, std::string reason, Done done = {})
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(monitor.mu);

  // Makes a candidate that passed validation the monitor's active model: saves it, records it in
  // the store, swaps it in. `from_training`: called by the training job that made it (which
  // then ends); otherwise an operator approved a held candidate.
  TrainResult Install(Monitor* monitor, std::shared_ptr<Candidate> candidate, bool from_training);

  // Asks running and queued jobs to end soon, keeping their current models; Stop() also joins.
  void Cancel() { cancel_ = true; }
  void Stop();

 private:
  void Run(Monitor* monitor, std::vector<HistogramKey> window,
           std::shared_ptr<const models::Model> current, HistogramKey current_until,
           uint64_t new_at_snapshot, std::string reason, const Done& done);
  // The histograms a training reads, oldest first, with their counts from the store.
  struct TrainingSet {
    std::vector<HistogramKey> keys;
    std::vector<std::vector<float>> counts;
    std::vector<uint32_t> shape;
  };
  // The window's newest histograms that a drift (drift_window) and the training share of
  // memory_budget_bytes allow, read from the store; missing and damaged ones are left out.
  TrainingSet ReadWindow(Monitor& monitor, std::vector<HistogramKey> window, bool drift);
  models::TrainOptions Options(const Monitor& monitor, const TrainingSet& set,
                               uint64_t new_at_snapshot, bool drift);
  // Why `candidate` is worse than `current` beyond candidate_tolerance on the held-out histograms
  // newer than `current_until` (neither model trained on them); empty when it is not, or when
  // fewer than 10 can be compared.
  std::string WorseThanCurrent(const models::Model& candidate, const std::vector<size_t>& holdout,
                               const TrainingSet& set, const models::Model& current,
                               HistogramKey current_until) const;
  // Compares the histograms the current model knows with the newer ones (change_check.h), and
  // the newest scored with the anchor's data where the lasting evidence pointed (AgainstTheAnchor,
  // which names the change when it holds). A localised change holds the candidate for an
  // operator (or drops it after a rejection): returns why the current model stays. Without
  // monitor->mu.
  std::optional<std::string> HoldIfLocalised(Monitor* monitor,
                                             const std::shared_ptr<Candidate>& candidate,
                                             const TrainingSet& set, HistogramKey current_until,
                                             const std::string& reason);
  // Where the lasting evidence pointed at a block since the anchor, and the axis is about where
  // the anchor had it: the newest lumisections scored (see ScoredSince) against the data the
  // anchor trained on, at that block. Returns the change to hold, with the anchor's data as the
  // held test's baseline, when that block changed the way the evidence said; logs the
  // comparison. Without m.mu.
  std::optional<std::pair<ChangeReport, std::shared_ptr<const ShapeStats>>> AgainstTheAnchor(
      Monitor& m, HistogramKey current_until, const std::string& reason);
  // The fewest new histograms a comparison of what changed is made on (in a candidate's window
  // beyond the active model's data, and scored since it).
  static constexpr size_t kMinNew = 10;
  // The mean shape of the newest (up to Monitor::kComparedNewest) lumisections of `m` scored
  // after `since`, or in the run the lasting evidence points at (Monitor::pointed_from), whatever
  // their verdict, but those a person labelled BAD and those not scored for quality; only that
  // run's when it has kMinNew of them. Read from the store, without m->mu held meanwhile.
  ShapeStats ScoredSince(Monitor& m, HistogramKey since, size_t bins);
  // Writes a candidate about to be held to its file (see kHeldCandidates), setting its held_file;
  // logs a failure (then a restart forgets it). Without monitor->mu: file I/O.
  void WriteHeld(const Monitor& monitor, Candidate& candidate);
  // Writes the mean shape `candidate` trained on beside its model file numbered `number`; logs a
  // failure. Without the monitor's mutex: file I/O.
  void SaveShape(const std::string& monitor, uint64_t number, const Candidate& candidate) const;

  const Config& config_;
  Metrics& metrics_;
  Store& store_;
  const ModelFiles& files_;
  boost::asio::thread_pool pool_;
  std::atomic<bool> cancel_{false};
};

}  // namespace histguard::server
