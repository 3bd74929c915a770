// Monitors: the daemon's state for each monitored histogram name, and the registry that holds
// them.
//
// A Monitor is created on the first valid histogram of its name (or restored from the store at
// start-up) and lives until it is forgotten (by an operator, or when idle past
// monitor_idle_expiry_seconds). The registry and everyone working on a monitor share it
// (shared_ptr): a forgotten monitor is marked `forgotten` and leaves the registry at once, and
// its object (and its metric series) goes when the last holder lets go. Its mutable state is
// guarded by its own mutex (every field it guards says so); scoring threads, the training scheduler
// and the Control service take it briefly. The model is an immutable snapshot (shared_ptr<const
// Model>) replaced whole by a training job, a rollback or a restore.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "models/axis_nuisances.h"
#include "models/model.h"
#include "server/change_check.h"
#include "server/config.h"
#include "server/domain.h"
#include "server/locks.h"
#include "server/metrics.h"
#include "server/validation.h"

namespace histguard::server {

// Histogram keys in (run, lumisection) order, for a monitor's window and stored records. Keys
// nearly always arrive in order, so an insert is an append; membership is a binary search.
// 16 bytes a key, where a tree set took about 64.
class SortedKeys {
 public:
  // False when `k` is already there.
  bool Insert(const HistogramKey& k);
  bool Erase(const HistogramKey& k);
  bool Contains(const HistogramKey& k) const {
    return std::binary_search(keys_.begin(), keys_.end(), k);
  }
  HistogramKey PopOldest() {
    const HistogramKey k = keys_.front();
    keys_.pop_front();
    return k;
  }
  size_t size() const { return keys_.size(); }
  bool empty() const { return keys_.empty(); }
  std::deque<HistogramKey>::const_iterator begin() const { return keys_.begin(); }
  std::deque<HistogramKey>::const_iterator end() const { return keys_.end(); }

 private:
  std::deque<HistogramKey> keys_;
};

// A trained model that passed validation and is not (yet) the active one.
struct Candidate {
  std::shared_ptr<models::Model> model;  // its version is set when it is installed
  VersionInfo info;                      // all but version, created_unix_ms and manifest
  std::vector<uint32_t> shape;
  double seconds = 0;  // training time
  bool drift = false;  // trained for a drift
  uint64_t new_at_snapshot = 0;
  std::string change;  // the localised change it learned ("bins 43-47 low by 48%"), if any
  HeldChange held;     // that change, to test new histograms for
  HistogramKey change_from{0, 0};  // the first histogram of the data that showed it
  std::string nuisances;           // what the change check fitted ("gain 1.021, ...")
  // The mean shape of the histograms it trained on: the reference later candidates are compared
  // with while it is the anchor. Null for a held candidate restored after a restart.
  std::shared_ptr<const ShapeStats> trained_on;
  // While held: the number of its model file (see kHeldCandidates), 0 when it is not written.
  uint64_t held_file = 0;
};

struct Monitor : std::enable_shared_from_this<Monitor> {
  Monitor(std::string n, ThresholdRule t, Metrics::MonitorSeries s)
      : name(std::move(n)),
        thresholds(std::move(t)),
        nuisances(ParseNuisances(thresholds.nuisances).value_or(0)),
        series(s) {}
  Monitor(const Monitor&) = delete;

  const std::string name;
  const ThresholdRule thresholds;
  const unsigned nuisances;  // the axis nuisances fitted (models::AxisFree bits; 0: none)
  const Metrics::MonitorSeries series;

  mutable absl::Mutex mu;
  std::vector<uint32_t> shape ABSL_GUARDED_BY(mu);  // binning of the first valid histogram
  std::shared_ptr<const models::Model> model ABSL_GUARDED_BY(mu);  // null while learning
  std::vector<VersionInfo> versions ABSL_GUARDED_BY(mu);           // kept versions, ascending
  uint64_t trained_versions ABSL_GUARDED_BY(mu) = 0;               // last version number handed out
  // The anchor: the last version a person chose (approved, accepted as a new normal, rolled back
  // to), at first the first model. It is never dropped from the kept versions, so the model that
  // knew the detector as a person last saw it can always be rolled back to. 0 while learning.
  uint64_t anchor ABSL_GUARDED_BY(mu) = 0;
  // The mean shape of the histograms the anchor trained on (null when its file is missing), and
  // the block the lasting evidence last pointed at (p < kLastingSuspected, flagged or not) since
  // it became the anchor, under any model.
  // While that is set, a candidate is also compared with the anchor's data at that block, so a
  // chain of retrainings that each learned a little of a faint defect is held once together
  // they learned it (see TrainingScheduler::HoldIfLocalised).
  std::shared_ptr<const ShapeStats> anchor_shape ABSL_GUARDED_BY(mu);
  std::optional<LastingBlock> lasting_since_anchor ABSL_GUARDED_BY(mu);
  static constexpr double kLastingSuspected = 0.01;
  // The lasting evidence pointed at a block under the current model since it was last checked
  // against the anchor's data (flagged or not): that check runs without waiting for
  // a retraining (see DueRetraining), from kCheckFrom new histograms on and then at most every
  // kCheckEvery (`next_check_at`), so that a faint defect the model is slow to flag is held, and
  // flagged, within a few dozen lumisections.
  bool suspected ABSL_GUARDED_BY(mu) = false;
  uint64_t next_check_at ABSL_GUARDED_BY(mu) = 0;
  static constexpr uint64_t kCheckFrom = 10, kCheckEvery = 5;
  // The run of lumisections over which the block the evidence leans to (p below kLastingLeans)
  // has gathered (models::LastingRegions::Finding::length): the first of them (`pointed_from`,
  // the oldest still among scored_recently if it began before), and how long it was at the last
  // histogram scored (`pointed_length`; 0 when the evidence does not lean). The anchor's data is
  // compared with the lumisections of that run, and retrainings wait while it is shorter than
  // kComparedNewest (see DueRetraining). Compared earlier, a faint defect was diluted in the
  // normal lumisections before it (1% at -0.7 sd, then 4% at -2.1 sd where 20 of its own showed
  // 7% at -5.9 sd), the drift candidate that learned part of it was installed, and the model
  // that followed first flagged it after 52 lumisections; trained before the evidence pointed at
  // all, after 212.
  std::optional<HistogramKey> pointed_from ABSL_GUARDED_BY(mu);
  uint32_t pointed_length ABSL_GUARDED_BY(mu) = 0;
  static constexpr double kLastingLeans = 0.1;
  // How many of the newest lumisections scored are compared with the anchor's data.
  static constexpr size_t kComparedNewest = 20;
  // Where the lasting evidence stands after a histogram scored with the active model: its
  // p-value and the run of lumisections its block has gathered over (`length`, this one
  // included). Keeps the pointed block (see lasting_since_anchor, suspected) and its run.
  void FollowPointed(double p_value, std::optional<LastingBlock> block, uint32_t length)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Retrainings wait: the evidence leans to a block whose run is still too short to be compared
  // with the anchor's data, while the axis is near the anchor's and no drift is known to go on
  // (`drifting`: in a 30% gain drift the evidence leaned often while the gain was within 4%, and
  // the waits raised the warnings among 1,420 normals from 1-6 to 3-8).
  bool PointedRunYoung() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // What the lasting evidence points at may be compared with the anchor's data now: the anchor's
  // data is known, no change is held, no new normal is being accepted, and the axis is near the
  // anchor's.
  bool MayCompareWithAnchor() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return anchor_shape && !held_change && !accepting && AxisNearAnchor();
  }

  // The newest accepted histograms in (run, lumisection) order. Only their keys are held here:
  // the counts are in the store (a window's histograms are never deleted from it), and a
  // training job reads them from there.
  SortedKeys window ABSL_GUARDED_BY(mu);
  std::map<HistogramKey, bool> labels ABSL_GUARDED_BY(mu);  // a person's verdict: true = GOOD
  std::vector<double> shape_sum
      ABSL_GUARDED_BY(mu);  // sum of normalised shapes seen while learning

  SortedKeys records ABSL_GUARDED_BY(mu);  // the newest `history` stored histograms (for retention)
  // The last kScoredRecently histograms scored with a model, oldest first, and whether they were
  // judged GOOD and not yet taken back: where a lasting change, once flagged, may already have
  // been (see Scored, TakeBack).
  std::deque<std::pair<HistogramKey, bool>> scored_recently ABSL_GUARDED_BY(mu);
  static constexpr size_t kScoredRecently = 128;

  bool training ABSL_GUARDED_BY(mu) = false;  // a training job is queued or running
  std::string last_training_error ABSL_GUARDED_BY(mu);
  uint64_t failed_at_new ABSL_GUARDED_BY(mu) = 0;  // new_since_train when training last failed
  // Histograms admitted to the window since the snapshot the active model trained on (while
  // learning: since start-up).
  uint64_t new_since_train ABSL_GUARDED_BY(mu) = 0;
  std::chrono::steady_clock::time_point last_trained ABSL_GUARDED_BY(mu) =
      std::chrono::steady_clock::now();
  double drift_sum ABSL_GUARDED_BY(mu) =
      0;  // the drift trigger's CUSUM over the current model's verdicts
  // Verdicts in a row that drift_sum has been above 0 (see DueRetraining).
  uint64_t drift_run ABSL_GUARDED_BY(mu) = 0;
  // The current model replaced one that a drift overtook young: the drift is likely going on, and
  // the trigger watches this one with half the threshold.
  bool drifting ABSL_GUARDED_BY(mu) = false;
  bool meta_saved ABSL_GUARDED_BY(mu) = false;  // the store knows this monitor
  bool forgotten ABSL_GUARDED_BY(mu) =
      false;  // removed from the registry: nothing more is stored for it
  // Model verdicts flagged WARNING or BAD in a row, and where the streak's first one deviated
  // (the block it named, else its most deviating bins). From kLastingAfter on the streak is an open
  // lasting change: reported in the verdict's detail, GetMonitor and /metrics. (Flagged histograms
  // never enter the window, so it is not learned as normal whether open or not.)
  uint32_t flagged_streak ABSL_GUARDED_BY(mu) = 0;
  std::string streak_bins ABSL_GUARDED_BY(mu);
  static constexpr uint32_t kLastingAfter = 10;
  bool lasting_open() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return flagged_streak >= kLastingAfter;
  }
  // An operator accepted what comes from `accepted_from` on as the new normal: those histograms
  // enter the window whatever their verdict (unless labelled BAD), until a model trained on
  // `accept_target` of them is in place.
  bool accepting ABSL_GUARDED_BY(mu) = false;
  HistogramKey accepted_from ABSL_GUARDED_BY(mu) = {0, 0};
  uint64_t accepted_admitted ABSL_GUARDED_BY(mu) = 0;  // admitted since the accept
  uint64_t accept_target ABSL_GUARDED_BY(mu) = 0;
  uint64_t accepted_in_training ABSL_GUARDED_BY(mu) =
      0;  // accepted_admitted when the running training started
  // A candidate that learned a localised change, held until an operator approves or rejects it
  // (see change_check.h). While one is held, or after a rejection, only histograms judged GOOD
  // enter the window. After a rejection, later localised candidates are dropped, until an
  // operator approves or accepts a change. Kept across a restart (see kHeldCandidates).
  std::shared_ptr<Candidate> pending ABSL_GUARDED_BY(mu);
  bool change_rejected ABSL_GUARDED_BY(mu) = false;
  // The change held or rejected: while set, every histogram is also tested for it, so it stays
  // flagged as long as it lasts (the model alone may see it only now and then).
  std::optional<HeldChange> held_change ABSL_GUARDED_BY(mu);
  // Histograms in a row in which the held change was not seen (p >= 0.01): a held change that
  // went away releases the hold after kHeldGoneAfter of them.
  uint32_t held_quiet ABSL_GUARDED_BY(mu) = 0;
  // CUSUM of the held change's pulls (allowance 1, steps clipped at 4, capped at 10): a change
  // too faint to see in one lumisection adds up over the ones it lasts. On normal data it
  // exceeds s with probability about exp(-2 s), its p-value.
  double held_cusum ABSL_GUARDED_BY(mu) = 0;
  static constexpr uint32_t kHeldGoneAfter = 50;
  // Each block's evidence over the lumisections in a row that it deviates (see LastingRegions):
  // a change too faint for one lumisection is flagged once it has lasted. Kept in the meta record
  // with the flagged streak (see StoredLasting), written at shutdown.
  models::LastingRegions lasting ABSL_GUARDED_BY(mu);
  // The block whose evidence last flagged a lumisection under the active model, and which way
  // (unset once another model is put in place). A candidate trained meanwhile learned from the
  // lumisections flagged WARNING there; the change check holds it for a smaller change there
  // than elsewhere (see CompareShapes), since a change too faint for one lumisection is often
  // too faint for its search over every block too.
  std::optional<LastingBlock> lasting_block ABSL_GUARDED_BY(mu);
  // The axis nuisances of 1D histograms (see models/axis_nuisances.h), fitted against the axis
  // reference of `axis_model`: the anchor's once it is the active model, until then (after a
  // start-up) the first model scored with. Retrainings keep it, so a slow drift shows as a gain
  // moving away from 1 across them. Their course flags a jump. Both are kept in the meta record
  // (its version and the course), written with it and at shutdown (see server/meta.h).
  std::shared_ptr<const models::Model> axis_model ABSL_GUARDED_BY(mu);
  models::AxisCourse axis_course ABSL_GUARDED_BY(mu);
  // Whether the fitted axis is about where the anchor had it: only then are candidates, and the
  // block the lasting evidence points at, compared with the anchor's data (see
  // TrainingScheduler::AgainstTheAnchor for why, and for the bounds).
  bool AxisNearAnchor() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return std::fabs(axis_course.gain() - 1) <= kAnchorGain &&
           std::fabs(axis_course.shift_bins()) <= kAnchorShiftBins;
  }
  static constexpr double kAnchorGain = 0.04, kAnchorShiftBins = 1;
  prometheus::Gauge* nuisance_gauges[3] ABSL_GUARDED_BY(
      mu) = {};  // gain, shift, tilt; made with the first fit
  std::string last_nuisances
      ABSL_GUARDED_BY(mu);  // of the active model against the data it replaced
  // The last verdict given (or, after a restart, the newest stored), and when it was given (0:
  // none since start-up).
  std::optional<Verdict> last_verdict ABSL_GUARDED_BY(mu);
  int64_t last_verdict_unix_ms ABSL_GUARDED_BY(mu) = 0;
  // When the monitor last received a histogram (its restore, for a restored one).
  std::chrono::steady_clock::time_point last_seen ABSL_GUARDED_BY(mu) =
      std::chrono::steady_clock::now();

  // A person made what comes from `from` on the new normal (Accept, or Approve from where the
  // approved change began): it is learned from the next `target` histograms, and no change is
  // held any more.
  void AcceptFrom(const HistogramKey& from, uint64_t target) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // A model was put in place (trained, approved, rolled back to): the retraining triggers count
  // from here. `still_new` of the admitted histograms are newer than what it learned from.
  void RestartTriggers(uint64_t still_new) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // The histograms admitted since a training job took its snapshot at `new_at_snapshot`: those
  // the model it trained has not seen.
  uint64_t NewSince(uint64_t new_at_snapshot) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return new_since_train - std::min(new_since_train, new_at_snapshot);
  }

  // Training. A job starts on the window as it is now; one that ends without a new model either
  // keeps the current one (it restarts the triggers from the histograms the job did not see) or
  // failed: `why` is kept, and the next attempt waits for new histograms. `job_ends` is false for
  // an approval, which is no job of its own.
  void StartTraining() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void KeepCurrent(uint64_t new_at_snapshot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void TrainingFailed(std::string why, bool job_ends = true) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // A held change: a candidate that learned a localised change waits for an operator (Hold); an
  // operator rejects it (RejectHeld: later localised candidates are dropped, the change stays
  // tested for); or the change went away on its own (ReleaseHold).
  void Hold(std::shared_ptr<Candidate> held) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void RejectHeld() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void ReleaseHold() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // The verdict just given, at `unix_ms`.
  void KeepVerdict(const Verdict& v, int64_t unix_ms) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // Puts `c`'s model (numbered in `kept`, the versions kept with it) in place, with `anchor` the
  // version a person chose last. A trained one ends its training job and restarts the triggers
  // from the histograms it did not see; an `approved` one makes its change the new normal from
  // where it began (learned from `accept_target` histograms). `drifting`: the drift is likely going
  // on (KeepsDrifting). Returns whether what the monitor holds or accepts changed (its meta record
  // is to be saved). The caller has recorded the new version in the store.
  bool Install(std::shared_ptr<const models::Model> installed, std::vector<VersionInfo> kept,
               uint64_t anchor, const Candidate& c, bool approved, bool drifting,
               uint64_t accept_target) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // An operator rolled back to `restored`, a kept version: it is the anchor, and the retraining
  // triggers count from here, so a scheduled retraining does not undo the choice at once. The
  // caller has recorded it in the store. `restored_shape`: the mean shape it trained on (null
  // when unknown).
  void RollBackTo(std::shared_ptr<const models::Model> restored,
                  std::shared_ptr<const ShapeStats> restored_shape) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // Window operations.
  bool InWindow(const HistogramKey& k) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return window.Contains(k);
  }
  // Takes the histogram `k` into the window (Admits said it belongs there), dropping the oldest
  // beyond `capacity`. It counts towards the next training (unless `counted` is false: the active
  // model trained on it already) and towards an accepted new normal, and while learning its
  // `counts` join the mean shape. Returns the dropped keys whose histograms are no longer kept as
  // records either: the caller deletes them from the store. Nothing happens when `k` is in the
  // window already.
  std::vector<HistogramKey> Admit(const HistogramKey& k, std::span<const double> counts,
                                  size_t capacity, bool counted = true)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // A person's label of a stored histogram with these `counts`: GOOD takes it into the window
  // (returning what leaves it, as Admit), BAD takes it out; from now on it decides whether the
  // histogram belongs there (Admits).
  std::vector<HistogramKey> ApplyLabel(const Label& label, std::span<const double> counts,
                                       size_t capacity) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // What the monitor reports of itself (GetMonitor); its Summary has only the name, active
  // version, window size and last verdict (ListMonitors).
  MonitorStatus Describe() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  MonitorStatus Summary() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // A lasting change is flagged now, after its evidence gathered over `lumisections`: those of
  // the last that many histograms scored with a model that were judged GOOD leave the window. A
  // change too faint to flag in one lumisection entered it as GOOD before it was flagged, and a
  // retraining would learn from them. (Those flagged WARNING stay: a candidate that learns the
  // change from them is held for an operator, see change_check.h.) Not those a person labelled
  // GOOD, and nothing while an accepted new normal is learned. They still count as new for the
  // retraining triggers. Returns the keys no longer kept as records either: the caller deletes
  // them from the store.
  std::vector<HistogramKey> TakeBack(size_t lumisections) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // A histogram was scored with a model and judged `quality`: what TakeBack looks back on.
  void Scored(const HistogramKey& k, Quality quality) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Bins of this monitor's histograms (0 before the first one).
  size_t bins() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Whether a histogram with this key and verdict belongs in the training window: a person's
  // label decides; then an accepted new normal (everything from it on); while a localised change
  // is held or was rejected, only what was judged GOOD (so neither the change nor its warnings
  // are learned); otherwise everything not judged BAD.
  bool Admits(const HistogramKey& k, Quality quality) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
};

// The versions to delete when `kept` (ascending, the one being installed last) holds more than
// `keep`: the oldest first, never the anchor or the newest, and the active one only when nothing
// else can go. `kept` loses them. More than `keep` stay when only those are left.
std::vector<uint64_t> PruneVersions(std::vector<VersionInfo>& kept, size_t keep, uint64_t active,
                                    uint64_t anchor);

class MonitorRegistry {
 public:
  MonitorRegistry(const Config& config, Metrics& metrics) : config_(config), metrics_(metrics) {}

  // The monitor of that name, created if new. Null with `why` filled when max_monitors is reached.
  std::shared_ptr<Monitor> FindOrCreate(const std::string& name, Rejection* why);
  std::shared_ptr<Monitor> Find(const std::string& name) const;
  std::vector<std::shared_ptr<Monitor>> All() const;  // by name
  size_t size() const;
  // Takes the monitor out of the registry, so its name is free for a new one; null when unknown,
  // or when `only` is given and the monitor of that name is another (one made after `only` was
  // taken out). The caller marks it forgotten (under its mutex) and deletes what is stored of it.
  std::shared_ptr<Monitor> Remove(const std::string& name, const Monitor* only = nullptr);

 private:
  const Config& config_;
  Metrics& metrics_;
  mutable absl::Mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Monitor>> monitors_ ABSL_GUARDED_BY(mu_);
};

}  // namespace histguard::server
