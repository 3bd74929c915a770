// A monitor's meta record in the state store: its binning, its kept model versions (their
// manifests), which of them is active, and what a person decided about lasting changes (a held
// or rejected change, a new normal being learned: see Monitor) and the axis nuisances' course.
// Written whenever one of the first changes and at shutdown, read back at start-up
// (server/restore.h). Plain functions, no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "server/monitors.h"

namespace histguard::server {

// The lasting-change state that outlives a restart (the held candidate apart: see StoredMeta).
struct StoredVigilance {
  std::optional<HeldChange> held_change;
  bool change_rejected = false;
  bool accepting = false;
  HistogramKey accepted_from{0, 0};
  uint64_t accept_target = 0;
  // The block the lasting evidence pointed at since the record's anchor (Monitor::
  // lasting_since_anchor).
  std::optional<LastingBlock> pointed_since_anchor;
};

// The axis nuisances' course (see models/axis_nuisances.h) and the version whose reference it
// was measured against: written with the record and at shutdown, so a restart neither moves the
// nuisances' values nor learns their course again.
struct StoredAxisCourse {
  uint64_t reference_version = 0;
  models::AxisCourse::State state;
};

// The lasting evidence (see models::LastingRegions) and the open streak of flagged verdicts, so a
// lasting change stays flagged across a restart and its length counts on. The sums belong to the
// model version they were gathered with, and hold as of one histogram (the last scored): a record
// older than the newest stored histogram (written before a crash) is out of date and not used.
struct StoredLasting {
  uint64_t model_version = 0;
  HistogramKey as_of{0, 0};
  models::LastingRegions::State sums;
  uint32_t flagged_streak = 0;
  std::string streak_bins;
};

struct StoredMeta {
  std::vector<uint32_t> shape;
  uint64_t trained_versions = 0, active_version = 0;
  uint64_t anchor = 0;  // 0 in a record written before anchors were kept
  std::vector<VersionInfo> versions;
  StoredVigilance vigilance;
  std::optional<StoredAxisCourse> axis_course;
  std::string axis_course_problem;  // why a stored course was unreadable (the rest still is)
  std::optional<StoredLasting> lasting;
  std::string lasting_problem;  // likewise
  std::string pointed_problem;  // likewise, for vigilance.pointed_since_anchor
  // The held candidate without its model, which is in the file its held_file names.
  std::optional<Candidate> held_candidate;
  std::string held_candidate_problem;  // likewise
};

// The record of `monitor` as it is now. Caller holds monitor.mu.
std::string MetaJson(const Monitor& monitor) ABSL_EXCLUSIVE_LOCKS_REQUIRED(monitor.mu);
// The record of `monitor` with `active` the active version, `kept` the kept versions and `anchor`
// the anchor (about to be installed). Caller holds monitor.mu.
std::string MetaJson(const Monitor& monitor, uint64_t active, const std::vector<VersionInfo>& kept,
                     uint64_t anchor) ABSL_EXCLUSIVE_LOCKS_REQUIRED(monitor.mu);

class Store;
// Writes the record of `monitor` as it is now (after a change of its lasting-change state).
// Caller holds monitor.mu.
absl::Status SaveMeta(Store& store, const Monitor& monitor)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(monitor.mu);

// DataLoss naming what is wrong when the text is not such a record.
absl::StatusOr<StoredMeta> ParseStoredMeta(std::string_view text);

}  // namespace histguard::server
