#include <unistd.h>

#include <cstdio>
#include <sstream>

#include "client/commands.h"

namespace histguard::cli {

v1::Histogram ToProto(const client::HistogramFile& f) {
  v1::Histogram h;
  h.set_monitor(f.monitor);
  h.set_run(f.run);
  h.set_lumisection(f.lumisection);
  for (uint32_t s : f.shape) h.add_shape(s);
  h.mutable_contents()->Assign(f.contents.begin(), f.contents.end());
  h.set_underflow(f.underflow);
  h.set_overflow(f.overflow);
  h.set_entries(f.entries);
  h.mutable_x_axis()->set_low(f.x_axis.low);
  h.mutable_x_axis()->set_high(f.x_axis.high);
  h.mutable_x_axis()->set_title(f.x_axis.title);
  if (f.shape.size() == 2) {
    h.mutable_y_axis()->set_low(f.y_axis.low);
    h.mutable_y_axis()->set_high(f.y_axis.high);
    h.mutable_y_axis()->set_title(f.y_axis.title);
  }
  return h;
}

std::string QualityName(v1::Quality q) {
  switch (q) {
    case v1::QUALITY_GOOD:
      return "GOOD";
    case v1::QUALITY_WARNING:
      return "WARNING";
    case v1::QUALITY_BAD:
      return "BAD";
    case v1::QUALITY_LEARNING:
      return "LEARNING";
    case v1::QUALITY_LOW_STATISTICS:
      return "LOW_STATISTICS";
    case v1::QUALITY_REJECTED:
      return "REJECTED";
    default:
      return "UNSPECIFIED";
  }
}

namespace {

std::string Number(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

// "[low,high)" of bin i (0-based) of n on the axis; "" when the axis is unknown.
std::string AxisRange(const client::AxisInfo& a, uint32_t i, uint32_t n) {
  if (a.edges.size() == n + size_t{1})
    return "[" + Number(a.edges[i]) + "," + Number(a.edges[i + 1]) + ")";
  if (!(a.high > a.low) || n == 0) return "";
  const double w = (a.high - a.low) / n;
  return "[" + Number(a.low + i * w) + "," + Number(a.low + (i + 1) * w) + ")";
}

client::AxisInfo AxisOf(const v1::Axis& a) {
  client::AxisInfo info;
  info.low = a.low();
  info.high = a.high();
  info.title = a.title();
  return info;
}

}  // namespace

BinNames BinNames::Of(const v1::Histogram& h) {
  BinNames b;
  b.shape.assign(h.shape().begin(), h.shape().end());
  b.x = AxisOf(h.x_axis());
  b.y = AxisOf(h.y_axis());
  return b;
}

BinNames BinNames::Of(const client::HistogramFile& f) {
  BinNames b;
  b.shape = f.shape;
  b.x = f.x_axis;
  b.y = f.y_axis;
  return b;
}

std::string BinNames::Bin(uint32_t flat) const {
  if (shape.size() == 2 && shape[1] > 0)
    return "(" + std::to_string(flat / shape[1] + 1) + "," + std::to_string(flat % shape[1] + 1) +
           ")";
  return std::to_string(uint64_t{flat} + 1);
}

std::string BinNames::Range(uint32_t flat) const {
  if (shape.size() == 2 && shape[1] > 0) {
    const std::string rx = AxisRange(x, flat / shape[1], shape[0]);
    const std::string ry = AxisRange(y, flat % shape[1], shape[1]);
    if (rx.empty() || ry.empty()) return "";
    return rx + " x " + ry;
  }
  if (shape.size() != 1 || flat >= shape[0]) return "";
  return AxisRange(x, flat, shape[0]);
}

std::string FormatVerdict(const v1::Verdict& v, const BinNames& bins) {
  std::ostringstream o;
  char p[32];
  std::snprintf(p, sizeof p, "%.3g", v.p_value());
  o << v.monitor() << " run " << v.run() << " ls " << v.lumisection() << ": "
    << QualityName(v.quality());
  if (v.quality() != v1::QUALITY_REJECTED && v.quality() != v1::QUALITY_LOW_STATISTICS) {
    char sc[32];
    std::snprintf(sc, sizeof sc, "%.3g", v.score());
    o << " score " << sc << " p " << p << " model v" << v.model_version();
  }
  if (v.top_bins_size() > 0 &&
      (v.quality() == v1::QUALITY_BAD || v.quality() == v1::QUALITY_WARNING)) {
    o << " bins";
    for (int i = 0; i < v.top_bins_size(); ++i) {
      const auto& b = v.top_bins(i);
      char pull[32];
      std::snprintf(pull, sizeof pull, "%+.1f", b.pull());
      const std::string range = bins.Range(b.bin());
      o << (i ? ", " : " ") << bins.Bin(b.bin()) << (range.empty() ? "" : " " + range) << " "
        << pull;
    }
  }
  if (!v.detail().empty() && v.quality() != v1::QUALITY_GOOD) o << " - " << v.detail();
  return o.str();
}

bool StderrIsTerminal() { return isatty(STDERR_FILENO) == 1; }

ConnectionFlags& Connection() {
  static ConnectionFlags flags;
  return flags;
}

const ClientOptions& ConnectionOptions() {
  static const ClientOptions options = [] {
    ClientOptions o = Connection().options;
    o.token = ReadToken(Connection().token_file);
    return o;
  }();
  return options;
}

}  // namespace histguard::cli
