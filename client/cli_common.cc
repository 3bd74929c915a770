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
    case v1::QUALITY_GOOD: return "GOOD";
    case v1::QUALITY_WARNING: return "WARNING";
    case v1::QUALITY_BAD: return "BAD";
    case v1::QUALITY_LEARNING: return "LEARNING";
    case v1::QUALITY_LOW_STATISTICS: return "LOW_STATISTICS";
    case v1::QUALITY_REJECTED: return "REJECTED";
    default: return "UNSPECIFIED";
  }
}

std::string FormatVerdict(const v1::Verdict& v) {
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
    for (const auto& b : v.top_bins()) {
      char pull[32];
      std::snprintf(pull, sizeof pull, "%+.1f", b.pull());
      o << " " << b.bin() << "(" << pull << ")";
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
