// The continual-learning policy: when a monitor retrains, on which histograms, how far its new
// model's latent reference looks ahead, and how much of an accepted new normal it learns from.
// Plain functions of a monitor's counters and the configuration, so each rule is in one place and
// tested without threads; the scorer and the training scheduler apply them.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "server/config.h"
#include "server/monitors.h"

namespace histguard::server {

// The drift trigger's CUSUM after a model verdict of p-value `p`: -ln p, capped at -ln 0.01, less
// `config.drift_allowance`, and never below 0. It sees p-values leaning small from their whole
// distribution, where a count of p < 0.05 among the latest 50 waited for the tail.
double DriftStep(double drift_sum, double p_value, const Config& config);

// Why `m` is due for a retraining after a model verdict ("accepted", kSuspected, "scheduled",
// "drift", "interval"), or null when it is not (or retraining is off, or one runs). In that order:
//  - accepted: as many histograms of an accepted new normal as AcceptTarget were admitted, and
//    the running or last training had fewer;
//  - suspected (kSuspected): the lasting evidence pointed at a block under the current model
//    (Monitor::suspected), flagged or not (a model may flag a faint defect only now and then), no
//    change is held, the fitted axis is near the anchor's (Monitor::AxisNearAnchor), and
//    next_check_at new histograms came: a check against the anchor's data, which trains a
//    candidate only to hold it (see TrainingScheduler::Run);
//  - none of the rest while the run of lumisections the lasting evidence leans to is too short
//    to be compared with the anchor's data (Monitor::PointedRunYoung): a candidate trained then
//    would be compared with a change diluted in the lumisections before it, and installed;
//  - scheduled: retrain_every histograms admitted since the active model's snapshot;
//  - drift: the drift CUSUM reached drift_threshold (half of it while `drifting`) after at least
//    drift_min_new, unless a localised change is held (it would be learned); unless `drifting`,
//    the sum must also have been above 0 for drift_min_new verdicts in a row (Monitor::drift_run):
//    a faint defect's own p-values set it off a few lumisections in, before the lasting evidence
//    leaned to the block. (While a drift goes on, a new model's sum touches 0 now and then: with
//    the run required there too, a 30% gain drift raised 8 warnings among 1,420 normals, not 0-6.)
//  - interval: retrain_interval_seconds since the last training, with retrain_min_new admitted.
inline constexpr char kSuspected[] = "suspected";
const char* DueRetraining(const Monitor& m, const Config& config,
                          std::chrono::steady_clock::time_point now)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu);

// Whether the successor of a model that a drift overtook watches with half the drift threshold:
// the drift overtook it within half the scheduled life (`new_at_snapshot` admitted histograms),
// so it likely goes on. A trigger that fires late, as a spurious one does, leaves this mode.
bool KeepsDrifting(bool trained_for_drift, uint64_t new_at_snapshot, const Config& config);

// Whether a retraining for `reason` trains as a drifting window's model (see
// models::TrainOptions::drifting): an accepted new normal, and a drift, unless the lasting
// evidence flagged a block under the current model (`lasting_flagged`). The low p-values that set
// that drift off may be the block's, and a drifting window's model (no regional statistic, a
// higher allowance for the lasting evidence) let a faint defect pass now and then for hundreds of
// lumisections; trained as a steady one, the change check decides at that block what it learned.
bool TrainsForDrift(const std::string& reason, bool lasting_flagged);

// The window a training reads: for a drift only its newest drift_window histograms, since the
// older part no longer looks like the present.
void TrimForDrift(std::vector<HistogramKey>& window, bool drift, const Config& config);

// How far a new model's latent reference follows the window's trend: over the life the model can
// expect, taken to be the current one's (`new_at_snapshot`), between drift_min_new and
// retrain_every; 0 without retraining.
uint32_t LatentHorizon(uint64_t new_at_snapshot, const Config& config);

// Accepted histograms a monitor learns a new normal from: enough for a drift retraining's window
// to be mostly the new normal.
uint64_t AcceptTarget(const Config& config);

}  // namespace histguard::server
