#include "server/scorer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <stdexcept>

#include "models/stats.h"
#include "server/meta.h"
#include "server/retraining_policy.h"

namespace histguard::server {
namespace {

constexpr size_t kLearningChi2From = 10;  // samples needed before the chi2 fallback is scored

std::string ShapeText(const std::vector<uint32_t>& s) {
  std::string t = "[";
  for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + "]";
}

Quality Judge(double p, const ThresholdRule& th) {
  if (p < th.bad_p) return Quality::kBad;
  if (p < th.warning_p) return Quality::kWarning;
  return Quality::kGood;
}

// Bins a verdict names most deviating, as ROOT numbers them (from 1): "bins 43, 44, 47" (1D),
// "bins (7,12), (8,12)" (2D).
std::string TopBinsText(const Verdict& v, const std::vector<uint32_t>& shape) {
  std::string t = v.top_bins.size() == 1 ? "bin " : "bins ";
  for (size_t i = 0; i < v.top_bins.size() && i < 3; ++i) {
    const uint32_t b = v.top_bins[i].bin;
    if (i) t += ", ";
    if (shape.size() == 2 && shape[1] > 0)
      t += "(" + std::to_string(b / shape[1] + 1) + "," + std::to_string(b % shape[1] + 1) + ")";
    else
      t += std::to_string(b + 1);
  }
  return t;
}

// "bins 17-24" (1D) or "bins (17-24, 17-24)" (2D: x range, y range), numbered from 1 as ROOT
// numbers them.
std::string BinsText(const models::Region& r, const std::vector<uint32_t>& shape) {
  const uint32_t ny = shape.size() == 2 && shape[1] > 0 ? shape[1] : 0;
  const uint32_t x0 = ny ? r.first / ny : r.first, y0 = ny ? r.first % ny : 0;
  if (!ny) return "bins " + std::to_string(x0 + 1) + "-" + std::to_string(x0 + r.width);
  return "bins (" + std::to_string(x0 + 1) + "-" + std::to_string(x0 + r.width) + ", " +
         std::to_string(y0 + 1) + "-" + std::to_string(y0 + r.height) + ")";
}

// The same block as the change check names blocks.
BinBlock BlockOf(const models::Region& r, const std::vector<uint32_t>& shape) {
  const uint32_t ny = shape.size() == 2 && shape[1] > 0 ? shape[1] : 0;
  const uint32_t x0 = ny ? r.first / ny : r.first, y0 = ny ? r.first % ny : 0;
  return {x0, x0 + r.width, y0, y0 + std::max<uint32_t>(r.height, 1)};
}

long Percent(const models::Region& r) {
  return std::lround(100 * r.observed / std::max(r.expected, 1e-9));
}

// The block the regional statistic found: "bins 41-44 at 52% of their expectation".
std::string RegionText(const models::Region& r, const std::vector<uint32_t>& shape) {
  return BinsText(r, shape) + " at " + std::to_string(Percent(r)) + "% of their expectation";
}

// "bins 41-48 low for 37 lumisections (92% of their expectation in this one)".
std::string LastingText(const models::LastingRegions::Finding& f,
                        const std::vector<uint32_t>& shape) {
  return BinsText(f.region, shape) + (f.low ? " low" : " high") + " for " +
         std::to_string(f.length) + " lumisection" + (f.length == 1 ? "" : "s") + " (" +
         std::to_string(Percent(f.region)) + "% of their expectation in this one)";
}

// Follows the monitor's run of flagged verdicts (see Monitor::flagged_streak) and says so in the
// detail once it is a lasting change. Caller holds m.mu.
void FollowStreak(Monitor& m, bool flagged, const std::string& where, Verdict& v)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu) {
  if (!flagged || m.accepting) {
    m.flagged_streak = 0;
    m.series.lasting_change->Set(0);
    if (m.accepting)
      v.detail = "accepted as the new normal from run " + std::to_string(m.accepted_from.first) +
                 " lumisection " + std::to_string(m.accepted_from.second) + ": learning it (" +
                 std::to_string(std::min(m.accepted_admitted, m.accept_target)) + " of " +
                 std::to_string(m.accept_target) + " histograms)";
    return;
  }
  if (m.flagged_streak++ == 0) m.streak_bins = where;
  std::string detail;
  if (m.lasting_open()) {
    m.series.lasting_change->Set(static_cast<double>(m.flagged_streak));
    detail = "flagged for " + std::to_string(m.flagged_streak) +
             " lumisections in a row (from the start: " + m.streak_bins + ")";
  }
  if (m.pending) {
    detail += std::string(detail.empty() ? "" : "; ") + "a lasting change (" + m.pending->change +
              ") is pending approval: flagged histograms stay out of the training window "
              "(histguard approve|reject " +
              m.name + ")";
  } else if (m.change_rejected) {
    detail += std::string(detail.empty() ? "" : "; ") +
              "an operator rejected the lasting change: flagged histograms stay out of the "
              "training window (histguard accept " +
              m.name +
              " --run R --from LS makes it the "
              "new normal)";
  }
  if (!detail.empty()) v.detail = detail;
}

// "gain jumped +5.1% from its course over the last lumisections (now 1.074)", or the shift's
// "axis shifted +1.30 bins from its course over the last lumisections".
std::string JumpText(const models::AxisCourse::Finding& f) {
  char text[96];
  if (f.gain_decides)
    std::snprintf(text, sizeof text,
                  "gain jumped %+.1f%% from its course over the last lumisections (now %.3f)",
                  100 * f.gain_jump, f.gain);
  else
    std::snprintf(text, sizeof text,
                  "axis shifted %+.2f bins from its course over the last lumisections",
                  f.shift_jump);
  return text;
}

// Fits the axis' nuisances of a 1D histogram scored with `model`, follows their course, and
// reports them in the verdict and the monitor's gauges. Caller holds m.mu.
models::AxisCourse::Finding FollowAxis(Monitor& m,
                                       const std::shared_ptr<const models::Model>& model,
                                       const Histogram& h, std::span<const double> counts,
                                       Metrics& metrics, Verdict& v)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu) {
  if (m.nuisances == 0 || model->axis_reference.empty()) return {};
  // The reference: the anchor's once it is active (after an approval, an accepted new normal, a
  // rollback), else the one the course began with; another binning's never.
  if (!m.axis_model || m.axis_model->axis_reference.size() != model->axis_reference.size() ||
      (model->version == m.anchor && m.axis_model->version != model->version)) {
    m.axis_model = model;
    m.axis_course.Clear();
  }
  models::AxisFit start;
  if (m.axis_course.started()) {
    start.valid = true;
    start.gain = m.axis_course.gain();
    start.shift_bins = m.axis_course.shift_bins();
    start.tilt = m.axis_course.tilt();
  }
  const models::AxisFit fit =
      models::FitAxis(m.axis_model->axis_reference, counts, h.x_axis ? h.x_axis->low : 0,
                      h.x_axis ? h.x_axis->high : 0, start, m.nuisances);
  if (!fit.valid) return {};
  const double value[3] = {fit.gain, fit.shift_bins, fit.tilt};
  const double error[3] = {fit.gain_error, fit.shift_error, fit.tilt_error};
  static const char* const kNames[3] = {"gain", "shift", "tilt"};
  for (int k = 0; k < 3; ++k) {
    if (!(m.nuisances & (1u << k))) continue;
    v.nuisances.push_back({kNames[k], value[k], error[k]});
    if (!m.nuisance_gauges[k]) m.nuisance_gauges[k] = metrics.Nuisance(m.name, k);
    if (m.nuisance_gauges[k]) m.nuisance_gauges[k]->Set(value[k]);
  }
  return m.axis_course.Add(fit);
}

double UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

Scorer::Scorer(const Config& config, Metrics& metrics, MonitorRegistry& registry,
               TrainingScheduler& training, Store& store)
    : config_(config), metrics_(metrics), registry_(registry), training_(training), store_(store) {}

void Scorer::Reject(const Rejection& why, Verdict& v) {
  v.quality = Quality::kRejected;
  v.p_value = 1;
  v.detail = why.detail;
  metrics_.Rejected(why.reason).Increment();
  metrics_.Verdicts(Quality::kRejected).Increment();
}

void Scorer::StartTrainings(ScoredWrites& out) {
  for (auto& [m, reason] : out.trainings) {
    absl::MutexLock lk(&m->mu);
    if (!m->training && !m->forgotten) training_.ScheduleLocked(*m, reason);
  }
  out.trainings.clear();
}

void Scorer::RecordLocked(Monitor& m, const HistogramKey& key, Store::Batch& batch) {
  if (!m.records.Insert(key)) return;  // a repeat overwrites its one record
  while (m.records.size() > config_.history) {
    const HistogramKey old = m.records.PopOldest();
    // A window histogram stays stored: training reads it from the store.
    if (!m.InWindow(old)) store_.DeleteRecord(batch, m.name, old.first, old.second);
  }
}

void Scorer::AdmitLocked(Monitor& m, const HistogramKey& key, std::span<const double> counts,
                         Store::Batch& batch) {
  for (const HistogramKey& old : m.Admit(key, counts, config_.window_size))
    store_.DeleteRecord(batch, m.name, old.first, old.second);
}

void Scorer::MaybeRetrainLocked(Monitor& m, double p_value, ScoredWrites& out) {
  m.drift_sum = DriftStep(m.drift_sum, p_value, config_);
  m.drift_run = m.drift_sum > 0 ? m.drift_run + 1 : 0;
  if (const char* reason = DueRetraining(m, config_, std::chrono::steady_clock::now()))
    out.trainings.emplace_back(m.shared_from_this(), reason);
}

void Scorer::ScoreOne(const Histogram& h, Verdict& v, models::Scratch& scratch, ScoredWrites& out) {
  // A failure confined to one histogram answers that histogram with an error and leaves the
  // rest of its batch, and the daemon, unharmed.
  try {
    ScoreValidated(h, v, scratch, out);
  } catch (const std::exception& e) {
    v = Verdict();  // nothing of the failed attempt is said
    v.monitor = h.monitor;
    v.run = h.run;
    v.lumisection = h.lumisection;
    std::clog << "histguardd: scoring " << h.monitor << " run " << h.run << " ls " << h.lumisection
              << " failed: " << e.what() << "\n";
    Reject({"scoring_error",
            std::string("could not be scored (") + e.what() + "); the histogram was not stored"},
           v);
  }
}

void Scorer::ScoreValidated(const Histogram& h, Verdict& v, models::Scratch& scratch,
                            ScoredWrites& out) {
  v.monitor = h.monitor;
  v.run = h.run;
  v.lumisection = h.lumisection;
  const HistogramKey key = h.key();
  Rejection why;  // filled by whatever refuses the histogram
  // A monitor forgotten between the lookup and the lock: its name belongs to a new one now.
  for (int attempt = 0; attempt < 3; ++attempt) {
    const std::shared_ptr<Monitor> held = registry_.FindOrCreate(h.monitor, &why);
    if (!held) break;
    Monitor& m = *held;
    absl::ReleasableMutexLock lk(&m.mu);
    if (m.forgotten) continue;
    const std::optional<Quality> label = ScoreLocked(m, h, key, scratch, out, v, why);
    if (!label) break;
    const double now = UnixNow();
    const bool keep = KeepVerdictLocked(m, key, now, out.writes, v);
    lk.Release();
    if (keep) store_.PutRecord(out.writes, h, v, static_cast<int64_t>(now * 1000));
    return CountVerdict(m, *label, now);
  }
  if (why.reason.empty())
    why = {"scoring_error", "monitor '" + h.monitor + "' is being forgotten; send again"};
  Reject(why, v);
}

std::optional<Quality> Scorer::ScoreLocked(Monitor& m, const Histogram& h, const HistogramKey& key,
                                           models::Scratch& scratch, ScoredWrites& out, Verdict& v,
                                           Rejection& why) {
  const std::span<const double> counts(h.contents);
  const double total = models::Sum(counts);
  const std::vector<uint32_t>& shape = h.shape;
  m.last_seen = std::chrono::steady_clock::now();
  if (m.shape.empty()) m.shape = shape;
  if (!m.meta_saved) {
    store_.PutMeta(out.writes, m.name, MetaJson(m));
    m.meta_saved = true;
  }
  if (shape != m.shape) {
    why = {"binning_changed", "binning " + ShapeText(shape) + " differs from " +
                                  ShapeText(m.shape) + ", which monitor '" + m.name +
                                  "' has been learning"};
    return std::nullopt;
  }
  v.model_version = m.model ? m.model->version : 0;
  if (total < m.thresholds.min_entries) {
    v.quality = Quality::kLowStatistics;
    v.p_value = 1;
    v.detail = std::to_string(static_cast<long long>(total)) +
               " entries in range, below min_entries " +
               std::to_string(static_cast<long long>(m.thresholds.min_entries));
    m.series.significance->Set(0);
    return Quality::kLowStatistics;
  }
  if (m.model) return ScoreWithModel(m, h, key, scratch, out, v);
  return ScoreWhileLearning(m, counts, total, key, out, v);
}

namespace {

// The held change, tested directly on `counts`: one hypothesis, no search, so a change the model
// sees only now and then is seen every time. Returns the p-value of it with the model's `p`
// (Sidak over the two); `detail` says how far it is now when it flags. Caller holds m.mu.
double TestHeldChange(Monitor& m, std::span<const double> counts, double p, std::string& detail)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu) {
  double relative = 0;
  const double pull = m.held_change->Pull(counts, &relative);
  m.held_cusum = std::min(10.0, std::max(0.0, m.held_cusum + std::min(pull, 4.0) - 1.0));
  // This lumisection's pull, or the pulls of those before it added up.
  const double p_held = std::min(
      1.0, 2 * std::min(0.5 * std::erfc(pull / std::sqrt(2.0)), std::exp(-2 * m.held_cusum)));
  m.held_quiet = p_held >= 0.01 ? m.held_quiet + 1 : 0;
  if (p_held < m.thresholds.warning_p)
    detail = m.held_change->where.substr(0, m.held_change->where.find(" by ")) + " by " +
             std::to_string(static_cast<int>(std::lround(std::fabs(relative) * 100))) +
             "% in this lumisection";
  const double parts[2] = {p, p_held};
  return models::CombinePValues(parts, 2);
}

// Where a flagged verdict deviates: a block that lasted (where, which way, for how long), a jump
// of the axis, a block of bins that no single bin gives away, or else the bins that deviate most.
// `decides` as CombineShares gives it. Returns the detail and sets `where` (the streak's start).
std::string DescribeFlag(const Monitor& m, const models::Score& s,
                         const models::LastingRegions::Finding& lasting,
                         const models::AxisCourse::Finding& jump, size_t decides, const Verdict& v,
                         std::string& where) ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu) {
  if (decides == 1) {
    where = BinsText(lasting.region, m.shape);
    return LastingText(lasting, m.shape);
  }
  if (decides == 2) {
    where = JumpText(jump);
    return where;
  }
  if (s.region.width > 0 &&
      s.p_regional <= std::min({s.p_recon, s.p_localised, s.p_latent, s.p_cumulative})) {
    where = BinsText(s.region, m.shape);
    return RegionText(s.region, m.shape);
  }
  if (m.flagged_streak == 0) where = TopBinsText(v, m.shape);
  return "";
}

void Prepend(const std::string& text, Verdict& v) {
  if (!text.empty()) v.detail = text + (v.detail.empty() ? "" : "; " + v.detail);
}

}  // namespace

Quality Scorer::ScoreWithModel(Monitor& m, const Histogram& h, const HistogramKey& key,
                               models::Scratch& scratch, ScoredWrites& out, Verdict& v) {
  const std::span<const double> counts(h.contents);
  std::shared_ptr<const models::Model> model = m.model;
  // The snapshot is immutable: score without holding the monitor.
  const models::Score s = Unlocked(m.mu, [&] {
    models::Score s = models::ScoreHistogram(*model, counts, scratch);
    // NaN compares false against every threshold and would read as GOOD.
    if (!(s.p_value >= 0 && s.p_value <= 1))
      throw std::runtime_error("the model gave no p-value for this histogram");
    v.score = s.deviance;
    v.top_bins = s.top_bins;
    m.series.score->Set(s.deviance);
    return s;
  });
  // The blocks' evidence over the lumisections before this one: a faint change that lasts.
  const models::LastingRegions::Finding lasting = m.lasting.Add(*model, counts, scratch);
  std::string held_detail;
  double p = m.held_change ? TestHeldChange(m, counts, s.p_value, held_detail) : s.p_value;
  // The axis' nuisances, and how far they jumped from their course.
  const models::AxisCourse::Finding jump = FollowAxis(m, model, h, counts, metrics_, v);
  // This lumisection's own statistics (and a held change), the blocks' evidence over the
  // lumisections before it, and a jump of the axis, each with its share of the false alarms.
  const models::Evidence beside[2] = {
      {lasting.p_value, m.lasting.active() ? models::kLastingShare : 0},
      {jump.p_value, jump.tested ? models::kJumpShare : 0}};
  size_t decides = 0;
  p = models::CombineShares(p, beside, &decides);
  if (m.held_change && m.held_quiet >= Monitor::kHeldGoneAfter && !m.change_rejected) {
    std::clog << "histguardd: " << m.name << ": the held change (" << m.held_change->where
              << ") is gone for " << m.held_quiet << " histograms; the hold ends\n";
    m.ReleaseHold();
    store_.PutMeta(out.writes, m.name, MetaJson(m));
  }
  v.p_value = p;
  const Quality label = v.quality = Judge(p, m.thresholds);
  m.series.significance->Set(Significance(p));
  const bool flagged = label == Quality::kWarning || label == Quality::kBad;
  std::string where;
  const std::string region_detail =
      flagged ? DescribeFlag(m, s, lasting, jump, decides, v, where) : "";
  FollowStreak(m, flagged, where, v);
  Prepend(region_detail, v);
  Prepend(held_detail, v);
  // A jump of the axis that would flag on its own is named, whatever flagged more strongly.
  if (flagged && decides != 2 && jump.tested &&
      jump.p_value < models::kJumpShare * m.thresholds.warning_p)
    Prepend(JumpText(jump), v);
  if (m.Admits(key, v.quality)) AdmitLocked(m, key, counts, out.writes);
  m.Scored(key, label);
  // Flagged by the evidence of a change that lasts: the lumisections it was in and that were
  // judged GOOD before it was flagged leave the window (twice its length, as a faint change's sum
  // may have fallen back to zero once).
  if (flagged && decides == 1)
    for (const HistogramKey& old : m.TakeBack(2 * static_cast<size_t>(lasting.length)))
      store_.DeleteRecord(out.writes, m.name, old.first, old.second);
  if (m.model && m.model->version == model->version) {
    std::optional<LastingBlock> pointed;
    if (lasting.region.width > 0)
      pointed = LastingBlock{BlockOf(lasting.region, m.shape), lasting.low};
    if (flagged && decides == 1 && pointed) m.lasting_block = pointed;
    // Where the evidence points before it flags: a faint defect's own low p-values can set off
    // a drift retraining first, and the drifting model that follows may never flag it.
    m.FollowPointed(lasting.p_value, pointed, lasting.length);
    MaybeRetrainLocked(m, p, out);
  }
  return label;
}

Quality Scorer::ScoreWhileLearning(Monitor& m, std::span<const double> counts, double total,
                                   const HistogramKey& key, ScoredWrites& out, Verdict& v) {
  // The classical test against the mean shape of what was collected so far.
  const size_t have = m.window.size();
  if (have >= kLearningChi2From) {
    const auto chi2 = models::Chi2AgainstShape(counts, m.shape_sum);
    v.score = chi2.chi2_per_ndf;
    v.p_value = chi2.p_value;
    // Expected counts: the mean shape (shape_sum holds one unit per collected histogram).
    double collected = 0;
    for (double x : m.shape_sum) collected += x;
    std::vector<double> mu(m.shape_sum);
    for (double& x : mu) x *= total / collected;
    v.top_bins = models::TopPulls(counts, mu, models::kTopBins);
    m.series.score->Set(chi2.chi2_per_ndf);
  } else {
    v.p_value = 1;
  }
  v.quality = Quality::kLearning;
  if (m.Admits(key, Quality::kLearning)) AdmitLocked(m, key, counts, out.writes);
  const size_t need = config_.min_train_samples;
  std::string detail = "learning: " + std::to_string(m.window.size()) + " of " +
                       std::to_string(need) + " histograms collected before the first training";
  if (m.window.size() >= need) {
    // After a failed attempt, retry only once more histograms came in (not on every one). The
    // count, not the window's size: a full window no longer grows.
    const bool retry_due =
        m.last_training_error.empty() || m.new_since_train >= m.failed_at_new + need / 4;
    if (!m.training && retry_due)
      out.trainings.emplace_back(m.shared_from_this(), "first training");
    detail = "learning: first training in progress on " + std::to_string(m.window.size()) +
             " histograms";
    if (!m.last_training_error.empty())
      detail += " (last attempt failed: " + m.last_training_error + ")";
  } else if (have < kLearningChi2From) {
    detail +=
        "; classical chi2 against the mean shape from " + std::to_string(kLearningChi2From) + " on";
  } else {
    detail += "; score is chi2/ndf against their mean shape";
  }
  v.detail = detail;
  m.series.significance->Set(0);
  return Quality::kLearning;
}

bool Scorer::KeepVerdictLocked(Monitor& m, const HistogramKey& key, double now, Store::Batch& batch,
                               const Verdict& v) {
  m.series.window_size->Set(static_cast<double>(m.window.size()));
  m.series.last_verdict_time->Set(now);
  m.KeepVerdict(v, static_cast<int64_t>(now * 1000));
  // Forgotten while this histogram was scored: answered, but nothing more is stored for it.
  if (m.forgotten) return false;
  RecordLocked(m, key, batch);
  return true;
}

void Scorer::CountVerdict(const Monitor& m, Quality label, double now) {
  metrics_.Verdicts(label).Increment();
  if (label == Quality::kGood || label == Quality::kWarning || label == Quality::kBad)
    m.series.verdicts[static_cast<int>(label)]->Increment();
  if (label == Quality::kBad) m.series.last_bad_time->Set(now);
}

}  // namespace histguard::server
