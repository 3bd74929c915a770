#include "server/training_scheduler.h"

#include "server/change_check.h"

#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <boost/asio/post.hpp>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "models/trainer.h"
#include "server/meta.h"
#include "server/retraining_policy.h"

namespace histguard::server {
namespace {

// Trainings share the cores with scoring. Under SCHED_IDLE (nice 19 where that is refused) a
// training thread runs only on a core that scoring, the committer and gRPC leave idle, so a
// training never delays a verdict: the unary p99 at 2,000/s while a 2,000-histogram training
// runs fell from 4-6 ms to 2-3 ms. Under a full load a training slows down instead; its time
// budget, train_budget_seconds, is wall time.
void LowerThisThreadsPriority() {
  thread_local bool lowered = false;
  if (lowered) return;
  lowered = true;
  sched_param none{};
  if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &none) != 0)
    setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 19);
}

int64_t UnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

nlohmann::json ManifestJson(const std::string& monitor, const VersionInfo& v,
                            const std::vector<uint32_t>& shape, double seconds) {
  return {{"monitor", monitor},
          {"version", v.version},
          {"created_unix_ms", v.created_unix_ms},
          {"reason", v.reason},
          {"shape", shape},
          {"sample_count", v.sample_count},
          {"window",
           {{"first_run", v.first.first},
            {"first_lumisection", v.first.second},
            {"last_run", v.last.first},
            {"last_lumisection", v.last.second}}},
          {"training_loss", v.train_loss},
          {"holdout_loss", v.holdout_loss},
          {"loss", "mean Poisson deviance per bin"},
          {"training_seconds", seconds}};
}

}  // namespace

TrainingScheduler::TrainingScheduler(const Config& config, Metrics& metrics, Store& store,
                                     const ModelFiles& files)
    : config_(config),
      metrics_(metrics),
      store_(store),
      files_(files),
      pool_(static_cast<size_t>(config.train_threads)) {}

TrainingScheduler::~TrainingScheduler() { Stop(); }

void TrainingScheduler::ScheduleLocked(Monitor& m, std::string reason, Done done) {
  m.StartTraining();
  if (reason == kSuspected) {
    m.suspected = false;
    m.next_check_at = m.new_since_train + Monitor::kCheckEvery;
  }
  std::vector<HistogramKey> keys(m.window.begin(), m.window.end());
  HistogramKey current_until{0, 0};
  for (const auto& v : m.versions)
    if (m.model && v.version == m.model->version) current_until = v.last;
  // The job holds the monitor until it ends, also when it is forgotten meanwhile.
  boost::asio::post(pool_, [this, held = m.shared_from_this(), keys = std::move(keys),
                            current = m.model, current_until, new_at = m.new_since_train,
                            reason = std::move(reason), done = std::move(done)]() mutable {
    LowerThisThreadsPriority();
    Run(held.get(), std::move(keys), std::move(current), current_until, new_at, std::move(reason),
        done);
    // A large window's tensors are freed by now; hand the pages back rather than keep them in
    // the allocator's arenas (a 61,200-bin monitor held 1.1 GB after its first training).
    malloc_trim(0);
  });
}

TrainingScheduler::TrainingSet TrainingScheduler::ReadWindow(Monitor& m,
                                                             std::vector<HistogramKey> window,
                                                             bool drift) {
  TrainingSet set;
  size_t bins;
  {
    absl::MutexLock lk(&m.mu);
    set.shape = m.shape;
    bins = m.bins();
  }
  TrimForDrift(window, drift, config_);
  // A window beyond the training share of memory_budget_bytes trains on its newest histograms
  // that fit (models::TrainingBytes).
  const uint64_t share =
      config_.memory_budget_bytes / 2 / static_cast<uint64_t>(std::max(1, config_.train_threads));
  const uint64_t per_sample = std::max<uint64_t>(1, bins * models::kSampleBytesPerBin);
  const size_t fit = static_cast<size_t>(
      share > models::kMaxBatchBytes ? (share - models::kMaxBatchBytes) / per_sample : 0);
  if (window.size() > fit) {
    std::clog << "histguardd: training " << m.name << " on its newest " << fit << " of "
              << window.size() << " histograms: " << bins
              << " bins each, within the training share of memory_budget_bytes\n";
    window.erase(window.begin(), window.end() - static_cast<ptrdiff_t>(fit));
  }
  // The window's counts, from the store. A histogram scored a moment ago may not be written yet
  // (its batch is being committed): it is left for the next training.
  set.keys.reserve(window.size());
  set.counts.reserve(window.size());
  size_t damaged = 0;
  for (const HistogramKey& k : window) {
    if (cancel_.load()) break;
    const auto rec = store_.GetRecord(m.name, k.first, k.second);
    if (!rec.ok()) {
      if (!absl::IsNotFound(rec.status())) {
        metrics_.StoreErrors("corrupt").Increment();
        if (damaged++ == 0)
          std::clog << "histguardd: training " << m.name << ": run " << k.first << " ls "
                    << k.second << ": " << rec.status().message() << "; left out\n";
      }
      continue;
    }
    if (rec->histogram.contents.size() != bins) continue;
    set.keys.push_back(k);
    set.counts.emplace_back(rec->histogram.contents.begin(), rec->histogram.contents.end());
  }
  return set;
}

models::TrainOptions TrainingScheduler::Options(const Monitor& m, const TrainingSet& set,
                                                uint64_t new_at_snapshot, bool drift) {
  models::TrainOptions opt;
  opt.time_budget_seconds = config_.train_budget_seconds;
  opt.cancel = &cancel_;
  opt.min_steps = config_.train_min_steps;
  // The latent reference follows the window's trend over the life the new model can expect:
  // short while a drift keeps triggering retrainings, up to retrain_every when conditions are
  // steady.
  opt.latent_horizon = LatentHorizon(new_at_snapshot, config_);
  opt.drifting = drift;
  opt.seed = std::hash<std::string>{}(m.name) ^ set.keys.size();
  return opt;
}

std::string TrainingScheduler::WorseThanCurrent(const models::Model& candidate,
                                                const std::vector<size_t>& holdout,
                                                const TrainingSet& set,
                                                const models::Model& current,
                                                HistogramKey current_until) const {
  // Both models on the histograms neither was trained on, through the same scoring code.
  constexpr size_t kMinCompared = 10;
  models::Scratch scratch;
  std::vector<double> c;
  double current_dev = 0, candidate_dev = 0;
  size_t compared = 0;
  for (size_t i : holdout) {
    if (!(set.keys[i] > current_until)) continue;
    c.assign(set.counts[i].begin(), set.counts[i].end());
    models::Expect(current, c, scratch);
    current_dev += models::DeviancePerBin(c, scratch.expected);
    models::Expect(candidate, c, scratch);
    candidate_dev += models::DeviancePerBin(c, scratch.expected);
    ++compared;
  }
  if (compared < kMinCompared) return {};
  current_dev /= static_cast<double>(compared);
  candidate_dev /= static_cast<double>(compared);
  if (candidate_dev <= current_dev * (1 + config_.candidate_tolerance)) return {};
  char why[256];
  std::snprintf(why, sizeof why,
                "on %zu held-out histograms neither model was trained on, the candidate's "
                "deviance %.4g is worse than the current model's %.4g (v%llu) by more than "
                "%.0f%%",
                compared, candidate_dev, current_dev,
                static_cast<unsigned long long>(current.version),
                config_.candidate_tolerance * 100);
  return why;
}

ShapeStats TrainingScheduler::ScoredSince(Monitor& m, HistogramKey since, size_t bins) {
  // The detector as it is now: a defect that began a little before the retraining it set off is
  // diluted in all that came since the active model's data (the first drift retraining of a
  // faint defect saw 2-4% of its 10% in the 56-72 lumisections since, 15-20 of them with it).
  // Nor should it be diluted in the normal lumisections just before it: where the run the
  // evidence points at began is known, and the run has kMinNew of them, only those are compared.
  std::vector<HistogramKey> keys;
  {
    absl::MutexLock lk(&m.mu);
    const std::optional<HistogramKey> from = m.pointed_from;
    size_t in_run = 0;
    for (const HistogramKey& k : m.records) {
      const bool run = from && k >= *from;
      if (!(k > since) && !run) continue;
      // A lumisection a person labelled BAD is not the detector's (a beam problem, a test).
      if (const auto label = m.labels.find(k); label != m.labels.end() && !label->second) continue;
      keys.push_back(k);
      in_run += run;
    }
    if (in_run >= kMinNew) std::erase_if(keys, [&](const HistogramKey& k) { return k < *from; });
  }
  if (keys.size() > Monitor::kComparedNewest)
    keys.erase(keys.begin(), keys.end() - Monitor::kComparedNewest);
  std::vector<std::vector<float>> counts;
  counts.reserve(keys.size());
  for (const HistogramKey& k : keys) {
    if (cancel_.load()) break;
    const auto rec = store_.GetRecord(m.name, k.first, k.second);
    if (!rec.ok() || rec->histogram.contents.size() != bins) continue;
    const Quality q = rec->verdict.quality;
    if (q == Quality::kRejected || q == Quality::kLowStatistics) continue;
    counts.emplace_back(rec->histogram.contents.begin(), rec->histogram.contents.end());
  }
  return Summarise(counts);
}

std::optional<std::pair<ChangeReport, std::shared_ptr<const ShapeStats>>>
TrainingScheduler::AgainstTheAnchor(Monitor& m, HistogramKey current_until,
                                    const std::string& reason) {
  std::optional<LastingBlock> since_anchor;
  std::shared_ptr<const ShapeStats> anchor_shape;
  std::vector<uint32_t> shape;
  size_t bins = 0;
  uint64_t anchor = 0;
  double gain = 1, shift_bins = 0;
  bool near = false;
  {
    absl::MutexLock lk(&m.mu);
    since_anchor = m.lasting_since_anchor;
    anchor_shape = m.anchor_shape;
    anchor = m.anchor;
    shape = m.shape;
    bins = m.bins();
    gain = m.axis_course.gain();
    shift_bins = m.axis_course.shift_bins();
    near = m.AxisNearAnchor();
  }
  if (!since_anchor || !anchor_shape) return std::nullopt;
  // A faint defect's lumisections enter the window only when they happen to look normal (the
  // flagged ones stay out, the ones the lasting evidence then points at are taken back), so the
  // window shows it at a few percent, and each retraining learns a little more of it. Where the
  // lasting evidence pointed at a block since the anchor (flagged or not), the newest
  // lumisections scored since the active model's data, whatever their verdicts, are also
  // compared with the data the anchor trained on.
  // Only while the axis is about where the anchor had it: the anchor's shape moved by a fitted
  // gain does not follow every feature of a drifted one (against 100 simulated histograms, 20 at
  // a gain of 1.05 left 28-34 of 200 blocks of a timing distribution's edges and 7-14 of a
  // peak's 4% off at 3 sd; at 1.02-1.03 already 7-19 and 1-3), and the comparison with the data
  // before each candidate, a small step of the drift away, decides. A faint defect moves the
  // fitted axis itself (a tenth of a falling spectrum's bins 31-46 lost: gain 0.977-0.989, shift
  // up to 0.49 bins), so the bounds (Monitor::kAnchorGain, kAnchorShiftBins: 4% and one bin) are
  // wider than the smallest drift that shows.
  if (!near) {
    std::clog << "histguardd: " << m.name << " (" << reason << ") not compared with the "
              << "anchor's data: the axis moved since (gain " << gain << ", shift " << shift_bins
              << " bins)\n";
    return std::nullopt;
  }
  const ShapeStats scored = ScoredSince(m, current_until, bins);
  if (scored.count < kMinNew) return std::nullopt;
  // With the nuisances fitted to every bin, and to the bins outside the block.
  ChangeReport anchored =
      CompareShapes(*anchor_shape, scored, shape, since_anchor, kWhereLastingAgainstAnchor);
  const ChangeReport outside =
      CompareShapes(*anchor_shape, scored, shape, since_anchor, kOutsideTheBlockAgainstAnchor);
  std::clog << "histguardd: " << m.name << " (" << reason << ") the newest " << scored.count
            << " lumisections scored, against the anchor's " << anchor_shape->count
            << " histograms (v" << anchor
            << "), at the block the lasting evidence pointed at: " << anchored.at_lasting
            << (outside.at_lasting.empty() || outside.at_lasting == anchored.at_lasting
                    ? ""
                    : "; " + outside.at_lasting + " with the nuisances fitted outside it")
            << "\n";
  if (!anchored.held_at_lasting && outside.held_at_lasting) anchored = outside;
  if (!anchored.held_at_lasting) return std::nullopt;
  // Named by its largest change when that is localised on its own, more significant and several
  // times larger: half a module lost raises every other block's share, and the evidence may point
  // at one of those. (Not by a less significant one: a falling spectrum's last two bins, a few
  // counts, "low by 100%", were held instead of the faint block, and the hold ended. Nor by one
  // the fit made of the block's neighbours: with a tenth of bins 31-46 lost, the gain and tilt
  // fitted to every bin left bins 28-29 "high by 11%" beside the block's 5%, more significant.)
  const ChangeReport largest = CompareShapes(*anchor_shape, scored, shape);
  constexpr double kLarger = 3;
  const bool larger = largest.localised && std::fabs(largest.z) > std::fabs(anchored.z) &&
                      std::fabs(largest.relative) >= kLarger * std::fabs(anchored.relative);
  ChangeReport change = larger ? largest : anchored;
  change.where += " against the anchor (v" + std::to_string(anchor) + ")";
  return std::make_pair(std::move(change), std::move(anchor_shape));
}

std::optional<std::string> TrainingScheduler::HoldIfLocalised(
    Monitor* m, const std::shared_ptr<Candidate>& held, const TrainingSet& set,
    HistogramKey current_until, const std::string& reason) {
  constexpr size_t kReference = 200;
  const std::vector<HistogramKey>& keys = set.keys;
  size_t split = 0;
  while (split < keys.size() && !(keys[split] > current_until)) ++split;
  if (split < kMinNew || keys.size() - split < kMinNew) return std::nullopt;
  const std::span<const std::vector<float>> all(set.counts);
  const size_t from = split > kReference ? split - kReference : 0;
  std::optional<LastingBlock> lasting;
  {
    absl::MutexLock lk(&m->mu);
    lasting = m->lasting_block;
  }
  const std::span<const std::vector<float>> reference = all.subspan(from, split - from);
  ChangeReport change =
      CompareShapes(Summarise(reference), Summarise(all.subspan(split)), set.shape, lasting);
  Candidate& candidate = *held;
  candidate.nuisances = change.nuisances;
  std::clog << "histguardd: " << m->name << " (" << reason << ") candidate against the "
            << split - from << " histograms the active model knows: "
            << (change.nuisances.empty() ? "" : change.nuisances + "; ")
            << (change.where.empty() ? "no block changed by 10% or more"
                                     : "largest block change " + change.where + " at " +
                                           std::to_string(change.z).substr(0, 5) + " sd")
            << (change.at_lasting.empty()
                    ? ""
                    : "; where the lasting evidence flagged: " + change.at_lasting)
            << "\n";
  // What the lasting evidence pointed at, against the anchor's data, names the change first: a
  // few new histograms in the window, the GOOD ones of a faint defect, gave the comparison above
  // a block of a falling spectrum's tail (bins 53-56 high by 11% at 4.5 sd, its gain fitted at
  // 1.03-1.09); held there, the held test saw nothing, and the defect went unflagged.
  std::shared_ptr<const ShapeStats> baseline;
  if (auto anchored = AgainstTheAnchor(*m, current_until, reason)) {
    change = std::move(anchored->first);
    baseline = std::move(anchored->second);
  }
  if (!change.localised) return std::nullopt;
  candidate.change = change.where;
  candidate.held = MakeHeldChange(change, reference, set.shape, baseline.get());
  candidate.change_from = keys[split];
  bool rejected = false;
  {
    absl::MutexLock lk(&m->mu);
    rejected = m->change_rejected;
  }
  if (!rejected) WriteHeld(*m, candidate);
  std::string why;
  absl::ReleasableMutexLock lk(&m->mu);
  m->KeepCurrent(candidate.new_at_snapshot);
  metrics_.TrainingRuns("held").Increment();
  if (m->change_rejected) {
    why = "it learned a localised change (" + change.where +
          ") after an operator rejected one; it is dropped and the current model stays";
  } else {
    why = "it learned a localised change (" + change.where +
          "): held for an operator's approval (histguard approve|reject " + m->name +
          "); the current model stays";
    m->Hold(held);
    if (const absl::Status s = SaveMeta(store_, *m); !s.ok()) {
      metrics_.StoreErrors("write").Increment();
      std::clog << "histguardd: " << m->name << ": the held change is not recorded in the "
                << "state store (" << s.message() << "); a restart forgets it\n";
    } else {
      // The candidate held before (if any) is no longer named by the record.
      files_.RemoveHeldCandidates(m->name, candidate.held_file);
    }
  }
  lk.Release();
  std::clog << "histguardd: " << m->name << " (" << reason << ") candidate " << why << "\n";
  return why;
}

void TrainingScheduler::Run(Monitor* m, std::vector<HistogramKey> window,
                            std::shared_ptr<const models::Model> current,
                            HistogramKey current_until, uint64_t new_at_snapshot,
                            std::string reason, const Done& done) {
  auto finish = [&](const TrainResult& r) {
    if (done) done(r);
  };
  if (cancel_.load()) {
    {
      absl::MutexLock lk(&m->mu);
      m->training = false;
    }
    return finish({false, 0, "the daemon is shutting down"});
  }
  // A check of the block the lasting evidence points at trains a candidate only to hold it: the
  // scheduled and drift retrainings decide when the monitor learns.
  const bool check = reason == kSuspected;
  auto end_check = [&](std::string why) {
    {
      absl::MutexLock lk(&m->mu);
      m->training = false;
    }
    finish({false, 0, std::move(why)});
  };
  if (check && !AgainstTheAnchor(*m, current_until, reason))
    return end_check("no change against the anchor's data where the lasting evidence pointed");
  bool accepting, lasting_flagged;
  {
    absl::MutexLock lk(&m->mu);
    accepting = m->accepting;
    lasting_flagged = m->lasting_block.has_value();
  }
  const bool drift = TrainsForDrift(reason, lasting_flagged);
  if (reason == "drift" && !drift)
    std::clog << "histguardd: " << m->name
              << " (drift): the lasting evidence flagged a block under the current model; the "
                 "candidate trains on the whole window, as a steady one\n";
  const TrainingSet set = ReadWindow(*m, std::move(window), drift);
  models::TrainOutcome outcome =
      models::Train(set.counts, set.shape, Options(*m, set, new_at_snapshot, drift));
  metrics_.training_duration.Observe(outcome.report.seconds);

  if (!outcome.model) {
    if (!cancel_.load()) {
      metrics_.TrainingRuns("failed").Increment();
      std::clog << "histguardd: training " << m->name << " (" << reason
                << ") failed: " << outcome.error << "\n";
    }
    {
      absl::MutexLock lk(&m->mu);
      m->TrainingFailed(outcome.error);
    }
    return finish({false, 0, "training failed: " + outcome.error});
  }

  if (current) {
    const std::string worse =
        WorseThanCurrent(*outcome.model, outcome.report.holdout, set, *current, current_until);
    if (!worse.empty()) {
      metrics_.TrainingRuns("rejected").Increment();
      std::clog << "histguardd: " << m->name << " (" << reason << "): " << worse << "\n";
      if (check) return end_check(worse);
      {
        absl::MutexLock lk(&m->mu);
        m->KeepCurrent(new_at_snapshot);
      }
      return finish({false, 0, worse});
    }
  }

  auto candidate = std::make_shared<Candidate>();
  candidate->info.sample_count = set.keys.size();
  candidate->info.train_loss = outcome.report.train_deviance;
  candidate->info.holdout_loss = outcome.report.holdout_deviance;
  candidate->info.reason = reason;
  candidate->info.first = set.keys.front();
  candidate->info.last = set.keys.back();
  candidate->shape = set.shape;
  candidate->seconds = outcome.report.seconds;
  candidate->drift = drift;
  candidate->new_at_snapshot = new_at_snapshot;
  candidate->model = std::move(outcome.model);
  candidate->trained_on = std::make_shared<const ShapeStats>(Summarise(set.counts));

  // What the candidate learned that the current model had not seen: a nuisance it may follow on
  // its own, or a localised change that waits for a person (see change_check.h). Not for the
  // new normal an operator accepted.
  if (current && !accepting) {
    if (auto why = HoldIfLocalised(m, candidate, set, current_until, reason))
      return finish({false, 0, *why});
  }
  if (check) {
    metrics_.TrainingRuns("dropped").Increment();
    return end_check("the candidate showed no localised change; it is dropped");
  }
  finish(Install(m, std::move(candidate), /*from_training=*/true));
}

void TrainingScheduler::SaveShape(const std::string& monitor, uint64_t number,
                                  const Candidate& candidate) const {
  if (!candidate.trained_on) return;
  if (const absl::Status s = files_.SaveShape(monitor, number, candidate.shape, *candidate.trained_on);
      !s.ok()) {
    metrics_.StoreErrors("write").Increment();
    std::clog << "histguardd: " << monitor << ": " << s.message()
              << "; while it is the anchor, candidates are compared only with the data before "
                 "them\n";
  }
}

void TrainingScheduler::WriteHeld(const Monitor& m, Candidate& candidate) {
  candidate.info.created_unix_ms = UnixMillis();
  const uint64_t number =
      kHeldCandidates + static_cast<uint64_t>(std::max<int64_t>(candidate.info.created_unix_ms, 0));
  candidate.model->version = number;
  VersionInfo info = candidate.info;
  info.version = number;
  const absl::Status saved =
      files_.Save(m.name, *candidate.model,
                  ManifestJson(m.name, info, candidate.shape, candidate.seconds).dump(2));
  if (saved.ok()) {
    candidate.held_file = number;
    SaveShape(m.name, number, candidate);
    return;
  }
  metrics_.StoreErrors("write").Increment();
  std::clog << "histguardd: " << m.name << ": the held candidate is not written ("
            << saved.message() << "); a restart forgets it\n";
}

TrainResult TrainingScheduler::Install(Monitor* m, std::shared_ptr<Candidate> candidate,
                                       bool from_training) {
  VersionInfo info = candidate->info;
  {
    absl::MutexLock lk(&m->mu);
    info.version = ++m->trained_versions;
  }
  info.created_unix_ms = UnixMillis();
  info.manifest = ManifestJson(m->name, info, candidate->shape, candidate->seconds).dump(2);
  candidate->model->version = info.version;
  if (const absl::Status saved = files_.Save(m->name, *candidate->model, info.manifest);
      !saved.ok()) {
    metrics_.TrainingRuns("failed").Increment();
    std::clog << "histguardd: cannot save model of " << m->name << ": " << saved.message() << "\n";
    absl::MutexLock lk(&m->mu);
    m->TrainingFailed(std::string(saved.message()), from_training);
    return {false, 0, m->last_training_error};
  }
  SaveShape(m->name, info.version, *candidate);

  // Recorded before it is used: the meta record naming the new version active is committed
  // before any histogram is scored with it, so a restart never goes back to an older version
  // than one that already answered.
  std::vector<uint64_t> drop;
  {
    absl::MutexLock lk(&m->mu);
    if (m->forgotten) {
      // Forgotten while it trained: nothing of it is kept.
      if (from_training) m->training = false;
      files_.RemoveAll(m->name);
      return {false, 0, "the monitor was forgotten while it trained"};
    }
    std::vector<VersionInfo> kept = m->versions;
    kept.push_back(info);
    // A person chose this one: an approved change, the first model that learned an accepted new
    // normal; or it is the first model.
    const bool chosen = !from_training ||
                        (m->accepting && m->accepted_in_training >= m->accept_target) ||
                        m->anchor == 0;
    const uint64_t anchor = chosen ? info.version : m->anchor;
    drop = PruneVersions(kept, config_.keep_versions, m->model ? m->model->version : 0, anchor);
    Store::Batch batch;
    store_.PutMeta(batch, m->name, MetaJson(*m, info.version, kept, anchor));
    if (const absl::Status s = store_.Commit(batch); !s.ok()) {
      metrics_.StoreErrors("write").Increment();
      metrics_.TrainingRuns("failed").Increment();
      const std::string why =
          "the new version cannot be recorded in the state store: " + std::string(s.message());
      std::clog << "histguardd: " << m->name << " v" << info.version << ": " << why
                << "; the current model stays\n";
      files_.Remove(m->name, info.version);
      m->TrainingFailed(why, from_training);
      return {false, 0, why};
    }
    const bool vigilance_changed =
        m->Install(candidate->model, std::move(kept), anchor, *candidate, !from_training,
                   KeepsDrifting(candidate->drift, candidate->new_at_snapshot, config_),
                   AcceptTarget(config_));
    if (vigilance_changed) {
      if (const absl::Status s = SaveMeta(store_, *m); !s.ok()) {
        metrics_.StoreErrors("write").Increment();
        std::clog << "histguardd: " << m->name << ": the new normal is not recorded in the state "
                  << "store (" << s.message() << ")\n";
      }
    }
  }
  for (uint64_t v : drop) files_.Remove(m->name, v);
  if (candidate->held_file != 0) files_.Remove(m->name, candidate->held_file);
  metrics_.TrainingRuns("accepted").Increment();
  std::clog << "histguardd: " << (from_training ? "trained " : "approved ") << m->name << " v"
            << info.version << " (" << info.reason << ") on " << info.sample_count
            << " histograms in " << candidate->seconds << " s, holdout deviance "
            << info.holdout_loss
            << (candidate->nuisances.empty() ? "" : "; against the data it replaces: ")
            << candidate->nuisances << "\n";
  return {true, info.version, ""};
}

void TrainingScheduler::Stop() {
  cancel_ = true;
  pool_.join();
}

}  // namespace histguard::server
