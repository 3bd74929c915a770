#include "server/convert.h"

#include <algorithm>

#include "proto/histguard/limits.h"

namespace histguard::server {
namespace {

void ToProto(const Axis& a, v1::Axis* out) {
  out->set_low(a.low);
  out->set_high(a.high);
  out->set_title(a.title);
}

Axis FromProto(const v1::Axis& a) { return {a.low(), a.high(), a.title()}; }

void ToProto(const VersionInfo& v, uint64_t active, uint64_t anchor, v1::ModelVersion* out) {
  out->set_version(v.version);
  out->set_created_unix_ms(v.created_unix_ms);
  out->set_sample_count(v.sample_count);
  out->set_training_loss(v.train_loss);
  out->set_holdout_loss(v.holdout_loss);
  out->set_reason(v.reason);
  out->set_manifest_json(v.manifest);
  out->set_active(v.version == active);
  out->set_anchor(v.version == anchor);
}

}  // namespace

v1::Quality ToProto(Quality q) { return static_cast<v1::Quality>(static_cast<int>(q) + 1); }

std::optional<Quality> FromProto(v1::Quality q) {
  const int n = static_cast<int>(q);
  if (n < 1 || n > kQualities) return std::nullopt;
  return static_cast<Quality>(n - 1);
}
static_assert(v1::QUALITY_GOOD == 1 && v1::QUALITY_REJECTED == kQualities);

Histogram FromProto(const v1::Histogram& h) {
  Histogram out;
  out.monitor = h.monitor();
  out.run = h.run();
  out.lumisection = h.lumisection();
  out.time_unix_ms = h.time_unix_ms();
  out.shape.assign(h.shape().begin(), h.shape().end());
  out.contents.assign(h.contents().begin(), h.contents().end());
  out.underflow = h.underflow();
  out.overflow = h.overflow();
  out.entries = h.entries();
  if (h.has_x_axis()) out.x_axis = FromProto(h.x_axis());
  if (h.has_y_axis()) out.y_axis = FromProto(h.y_axis());
  return out;
}

void ToProto(const Histogram& h, v1::Histogram* out) {
  out->set_monitor(h.monitor);
  out->set_run(h.run);
  out->set_lumisection(h.lumisection);
  out->set_time_unix_ms(h.time_unix_ms);
  out->mutable_shape()->Assign(h.shape.begin(), h.shape.end());
  out->mutable_contents()->Assign(h.contents.begin(), h.contents.end());
  out->set_underflow(h.underflow);
  out->set_overflow(h.overflow);
  out->set_entries(h.entries);
  if (h.x_axis) ToProto(*h.x_axis, out->mutable_x_axis());
  if (h.y_axis) ToProto(*h.y_axis, out->mutable_y_axis());
}

void ToProto(const Verdict& v, v1::Verdict* out) {
  out->set_monitor(v.monitor);
  out->set_run(v.run);
  out->set_lumisection(v.lumisection);
  out->set_quality(ToProto(v.quality));
  out->set_score(v.score);
  out->set_p_value(v.p_value);
  out->set_model_version(v.model_version);
  for (const models::BinPull& b : v.top_bins) {
    v1::BinPull* tb = out->add_top_bins();
    tb->set_bin(b.bin);
    tb->set_pull(b.pull);
  }
  out->set_detail(v.detail);
  for (const Nuisance& n : v.nuisances) {
    v1::Nuisance* pn = out->add_nuisances();
    pn->set_name(n.name);
    pn->set_value(n.value);
    pn->set_error(n.error);
  }
}

std::optional<Verdict> FromProto(const v1::Verdict& v) {
  const std::optional<Quality> quality = FromProto(v.quality());
  if (!quality) return std::nullopt;
  Verdict out;
  out.monitor = v.monitor();
  out.run = v.run();
  out.lumisection = v.lumisection();
  out.quality = *quality;
  out.score = v.score();
  out.p_value = v.p_value();
  out.model_version = v.model_version();
  for (const v1::BinPull& b : v.top_bins()) out.top_bins.push_back({b.bin(), b.pull()});
  out.detail = v.detail();
  for (const v1::Nuisance& n : v.nuisances())
    out.nuisances.push_back({n.name(), n.value(), n.error()});
  return out;
}

Verdict VerdictFor(const v1::Histogram& h) {
  Verdict v;
  v.monitor = h.monitor().substr(0, kMaxMonitorName);
  v.run = h.run();
  v.lumisection = h.lumisection();
  return v;
}

std::optional<Label> FromProto(const v1::LabelRequest& l) {
  if (l.label() != v1::QUALITY_GOOD && l.label() != v1::QUALITY_BAD) return std::nullopt;
  return Label{l.monitor(), l.run(),   l.lumisection(), l.label() == v1::QUALITY_GOOD,
               l.comment(), l.author()};
}

void ToProto(const Label& l, v1::LabelRequest* out) {
  out->set_monitor(l.monitor);
  out->set_run(l.run);
  out->set_lumisection(l.lumisection);
  out->set_label(l.good ? v1::QUALITY_GOOD : v1::QUALITY_BAD);
  out->set_comment(l.comment);
  out->set_author(l.author);
}

void ToProto(const Record& r, v1::Inspection* out) {
  ToProto(r.histogram, out->mutable_histogram());
  ToProto(r.verdict, out->mutable_verdict());
}

std::optional<Record> FromProto(const v1::Inspection& in) {
  std::optional<Verdict> v = FromProto(in.verdict());
  if (!v) return std::nullopt;
  return Record{FromProto(in.histogram()), std::move(*v)};
}

void ToProto(const MonitorStatus& s, v1::MonitorInfo* out) {
  out->set_monitor(s.monitor);
  out->mutable_shape()->Assign(s.shape.begin(), s.shape.end());
  out->set_active_version(s.active_version);
  out->set_anchor_version(s.anchor_version);
  for (const VersionInfo& v : s.versions)
    ToProto(v, s.active_version, s.anchor_version, out->add_versions());
  out->set_window_size(s.window_size);
  v1::Thresholds* th = out->mutable_thresholds();
  th->set_warning_p(s.warning_p);
  th->set_bad_p(s.bad_p);
  th->set_min_entries(s.min_entries);
  if (s.last_verdict) ToProto(*s.last_verdict, out->mutable_last_verdict());
  out->set_last_verdict_unix_ms(s.last_verdict_unix_ms);
  out->set_lasting_change(s.lasting_change);
  out->set_lasting_lumisections(s.lasting_lumisections);
  if (s.accepting_from) {
    v1::AcceptRequest* a = out->mutable_accepting();
    a->set_monitor(s.monitor);
    a->set_run(s.accepting_from->first);
    a->set_from_lumisection(s.accepting_from->second);
  }
  out->set_pending_change(s.pending_change);
  out->set_change_rejected(s.change_rejected);
  out->set_nuisances(s.nuisances);
}

void ToProto(const MonitorStatus& s, v1::MonitorSummary* out) {
  out->set_monitor(s.monitor);
  out->set_model_version(s.active_version);
  out->set_window_size(s.window_size);
  if (s.last_verdict) ToProto(*s.last_verdict, out->mutable_last_verdict());
  out->set_last_verdict_unix_ms(s.last_verdict_unix_ms);
}

}  // namespace histguard::server
