// Operator commands on the daemon's Control service: what the shift crew and detector experts
// use to see the monitors, understand a verdict, label lumisections and manage models.
//
//   histguard monitors [--prefix P] [--json]
//   histguard monitor NAME [--json]
//   histguard inspect NAME --run R --lumisection L [--top N | --all-bins] [--json]
//   histguard label NAME --run R --lumisection L (--good | --bad) [--comment TEXT] [--author A]
//   histguard retrain NAME
//   histguard rollback NAME --version V
//   histguard forget NAME --yes [--comment TEXT]
//   histguard run start|end RUN          (run control, with the ingest role)
//
// Output is plain aligned text for a terminal; --json prints the daemon's answer as proto3 JSON
// (enum names, proto field names, defaults included; 64-bit integers are strings in proto3 JSON).
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "client/client.h"
#include "client/commands.h"

namespace histguard::cli {
namespace {

constexpr std::chrono::seconds kDeadline{10};
constexpr std::chrono::minutes kRetrainDeadline{10};

// ---- Formatting ----

std::string Printf(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string PValue(double p) { return Printf("%.3g", p); }

// "2024-05-01T12:00:00Z"; "-" for 0 (unknown).
std::string UtcTime(int64_t unix_ms) {
  if (unix_ms == 0) return "-";
  const std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  if (gmtime_r(&secs, &tm) == nullptr) return "-";
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// "100 bins" (1D) or "100 x 80 bins" (2D).
std::string ShapeText(const google::protobuf::RepeatedField<uint32_t>& shape) {
  if (shape.empty()) return "-";
  std::string s;
  for (int i = 0; i < shape.size(); ++i) s += (i ? " x " : "") + std::to_string(shape[i]);
  return s + " bins";
}

// Whether the verdict carries a meaningful score and p-value.
bool IsScored(const v1::Verdict& v) {
  return v.quality() == v1::QUALITY_GOOD || v.quality() == v1::QUALITY_WARNING ||
         v.quality() == v1::QUALITY_BAD;
}

// Plain text columns: widths from the widest cell, two spaces between columns, no trailing blanks.
class Table {
 public:
  enum class Align { kLeft, kRight };
  struct Column {
    std::string header;
    Align align = Align::kLeft;
  };

  explicit Table(std::vector<Column> columns) : columns_(std::move(columns)) {}

  void AddRow(std::vector<std::string> cells) {
    cells.resize(columns_.size());
    rows_.push_back(std::move(cells));
  }

  void Print(std::ostream& out) const {
    std::vector<size_t> width(columns_.size());
    for (size_t c = 0; c < columns_.size(); ++c) {
      width[c] = columns_[c].header.size();
      for (const auto& row : rows_) width[c] = std::max(width[c], row[c].size());
    }
    auto print_row = [&](const std::vector<std::string>& cells) {
      std::string line;
      for (size_t c = 0; c < columns_.size(); ++c) {
        if (c > 0) line += "  ";
        const std::string pad(width[c] - cells[c].size(), ' ');
        line += columns_[c].align == Align::kRight ? pad + cells[c] : cells[c] + pad;
      }
      line.erase(line.find_last_not_of(' ') + 1);
      out << line << "\n";
    };
    std::vector<std::string> headers;
    for (const auto& c : columns_) headers.push_back(c.header);
    print_row(headers);
    for (const auto& row : rows_) print_row(row);
  }

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

// ---- Calls ----

// Says why a Control call failed, on stderr, and returns the exit code: 3 when the daemon could
// not be reached or did not answer in time, 1 when it answered no.
int ReportFailure(std::string_view command, const std::string& address, const grpc::Status& s,
                  std::string_view deadline_text) {
  const std::string message = s.error_message().empty()
                                  ? "gRPC status code " + std::to_string(s.error_code())
                                  : s.error_message();
  std::cerr << "histguard " << command << ": ";
  switch (s.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      std::cerr << "cannot reach the daemon at " << address << ": " << message << "\n";
      return 3;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      std::cerr << "no answer from the daemon at " << address << " within " << deadline_text << ": "
                << message << "\n";
      return 3;
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
      std::cerr << "the daemon at " << address << " refused the call: " << message << "\n";
      return 3;
    case grpc::StatusCode::UNIMPLEMENTED:
      std::cerr << "the daemon at " << address
                << " does not offer this call (is it an older version?): " << message << "\n";
      return 1;
    default:
      std::cerr << message << "\n";
      return 1;
  }
}

// Runs one Control call with a deadline. Returns 0 on success, else the exit code after saying why.
template <typename Call>
int CallControl(std::string_view command, const std::string& address, std::chrono::seconds deadline,
                Call call) {
  Client client(address, ConnectionOptions());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + deadline);
  client.Authorize(&context);
  const grpc::Status s = call(client.control(), &context);
  if (s.ok()) return 0;
  const std::string deadline_text = deadline.count() % 60 == 0
                                        ? std::to_string(deadline.count() / 60) + " min"
                                        : std::to_string(deadline.count()) + " s";
  return ReportFailure(command, address, s, deadline_text);
}

int PrintJson(std::string_view command, const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  options.always_print_enums_as_ints = false;
  options.preserve_proto_field_names = true;
  std::string json;
  const auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    std::cerr << "histguard " << command
              << ": cannot print the answer as JSON: " << status.ToString() << "\n";
    return 1;
  }
  if (json.empty() || json.back() != '\n') json += '\n';
  std::cout << json;
  return 0;
}

// ---- monitors ----

struct MonitorsOptions {
  std::string prefix;
  bool json = false;
};

int RunMonitors(const std::string& address, const MonitorsOptions& o) {
  v1::ListMonitorsRequest request;
  request.set_prefix(o.prefix);
  v1::ListMonitorsResponse response;
  if (int rc = CallControl("monitors", address, kDeadline,
                           [&](v1::Control::Stub& stub, grpc::ClientContext* context) {
                             return stub.ListMonitors(context, request, &response);
                           })) {
    return rc;
  }
  if (o.json) return PrintJson("monitors", response);
  if (response.monitors().empty()) {
    std::cout << (o.prefix.empty() ? std::string("no monitors yet\n")
                                   : "no monitors under prefix '" + o.prefix + "'\n");
    return 0;
  }
  std::vector<const v1::MonitorSummary*> monitors;
  for (const auto& m : response.monitors()) monitors.push_back(&m);
  std::sort(monitors.begin(), monitors.end(),
            [](const auto* a, const auto* b) { return a->monitor() < b->monitor(); });
  using Align = Table::Align;
  Table table({{"MONITOR"},
               {"MODEL", Align::kRight},
               {"WINDOW", Align::kRight},
               {"LAST"},
               {"P", Align::kRight}});
  for (const auto* m : monitors) {
    std::string last = "-", p = "-";
    if (m->has_last_verdict() && m->last_verdict().quality() != v1::QUALITY_UNSPECIFIED) {
      const auto& v = m->last_verdict();
      last = QualityName(v.quality()) + " run " + std::to_string(v.run()) + " ls " +
             std::to_string(v.lumisection());
      if (IsScored(v)) p = PValue(v.p_value());
    }
    table.AddRow({m->monitor(), m->model_version() ? "v" + std::to_string(m->model_version()) : "-",
                  std::to_string(m->window_size()), last, p});
  }
  table.Print(std::cout);
  return 0;
}

// ---- monitor ----

struct MonitorOptions {
  std::string monitor;
  bool json = false;
};

int RunMonitor(const std::string& address, const MonitorOptions& o) {
  v1::GetMonitorRequest request;
  request.set_monitor(o.monitor);
  v1::MonitorInfo info;
  if (int rc = CallControl("monitor", address, kDeadline,
                           [&](v1::Control::Stub& stub, grpc::ClientContext* context) {
                             return stub.GetMonitor(context, request, &info);
                           })) {
    return rc;
  }
  if (o.json) return PrintJson("monitor", info);

  std::string thresholds = "-";
  if (info.has_thresholds()) {
    const auto& t = info.thresholds();
    thresholds = "WARNING if p < " + PValue(t.warning_p()) + ", BAD if p < " + PValue(t.bad_p()) +
                 ", LOW_STATISTICS below " + Printf("%.6g", t.min_entries()) + " entries";
  }
  BinNames names;  // the stored axes are not part of MonitorInfo: ROOT's bin numbers only
  names.shape.assign(info.shape().begin(), info.shape().end());
  const std::vector<std::pair<std::string, std::string>> header = {
      {"monitor", info.monitor()},
      {"shape", ShapeText(info.shape())},
      {"active model",
       info.active_version() ? "v" + std::to_string(info.active_version()) : "none yet (learning)"},
      {"anchor", info.anchor_version() ? "v" + std::to_string(info.anchor_version()) +
                                             " (the last a person chose, or the first; always kept)"
                                       : "-"},
      {"window", std::to_string(info.window_size()) + " histograms"},
      {"thresholds", thresholds},
      {"lasting change",
       info.lasting_change().empty()
           ? (info.has_accepting() ? "none: learning the new normal accepted from run " +
                                         std::to_string(info.accepting().run()) + " lumisection " +
                                         std::to_string(info.accepting().from_lumisection())
                                   : "none")
           : info.lasting_change() + " for " + std::to_string(info.lasting_lumisections()) +
                 " lumisections"},
      {"pending change",
       !info.pending_change().empty()
           ? info.pending_change() +
                 " learned by a held candidate; flagged histograms stay out of the window "
                 "(histguard approve|reject)"
           : (info.change_rejected() ? "none (an operator rejected the last one; flagged "
                                       "histograms stay out of the window)"
                                     : "none")},
      {"nuisances", info.nuisances().empty() ? "-" : info.nuisances()},
      {"last verdict",
       info.has_last_verdict() && info.last_verdict().quality() != v1::QUALITY_UNSPECIFIED
           ? FormatVerdict(info.last_verdict(), names)
           : "-"},
  };
  size_t key_width = 0;
  for (const auto& [key, value] : header) key_width = std::max(key_width, key.size());
  for (const auto& [key, value] : header) {
    std::cout << key << std::string(key_width - key.size() + 2, ' ') << value << "\n";
  }
  std::cout << "\n";

  if (info.versions().empty()) {
    std::cout << "no model versions yet\n";
    return 0;
  }
  std::vector<const v1::ModelVersion*> versions;
  for (const auto& v : info.versions()) versions.push_back(&v);
  std::sort(versions.begin(), versions.end(),
            [](const auto* a, const auto* b) { return a->version() > b->version(); });
  using Align = Table::Align;
  Table table({{"VERSION"},
               {"CREATED"},
               {"SAMPLES", Align::kRight},
               {"TRAIN LOSS", Align::kRight},
               {"HOLDOUT LOSS", Align::kRight},
               {"REASON"}});
  for (const auto* v : versions) {
    const bool active =
        v->active() || (info.active_version() != 0 && v->version() == info.active_version());
    const bool anchor = v->anchor() || v->version() == info.anchor_version();
    table.AddRow({std::string(active ? "*" : " ") + (anchor ? "A" : " ") + " v" +
                      std::to_string(v->version()),
                  UtcTime(v->created_unix_ms()), std::to_string(v->sample_count()),
                  Printf("%.4g", v->training_loss()), Printf("%.4g", v->holdout_loss()),
                  v->reason().empty() ? "-" : v->reason()});
  }
  table.Print(std::cout);
  std::cout << "(* = active, A = anchor)\n";
  return 0;
}

// ---- inspect ----

struct InspectOptions {
  std::string monitor;
  uint64_t run = 0;
  uint64_t lumisection = 0;
  size_t top = 10;
  bool all_bins = false;
  bool json = false;
};

int RunInspect(const std::string& address, const InspectOptions& o) {
  v1::InspectRequest request;
  request.set_monitor(o.monitor);
  request.set_run(o.run);
  request.set_lumisection(o.lumisection);
  v1::Inspection inspection;
  if (int rc = CallControl("inspect", address, kDeadline,
                           [&](v1::Control::Stub& stub, grpc::ClientContext* context) {
                             return stub.Inspect(context, request, &inspection);
                           })) {
    return rc;
  }
  if (o.json) return PrintJson("inspect", inspection);

  const auto& h = inspection.histogram();
  const BinNames names = BinNames::Of(h);
  std::cout << FormatVerdict(inspection.verdict(), names) << "\n";
  double entries = h.entries();  // 0 means "the sum of the contents"
  if (entries == 0)
    for (double c : h.contents()) entries += c;
  if (inspection.has_label()) {
    const auto& l = inspection.label();
    std::cout << "label: " << QualityName(l.label()) << " by "
              << (l.author().empty() ? std::string("-") : l.author())
              << (l.comment().empty() ? std::string() : " (" + l.comment() + ")") << "\n";
  }
  std::cout << "histogram: " << ShapeText(h.shape()) << ", entries " << Printf("%.10g", entries)
            << ", underflow " << Printf("%.10g", h.underflow()) << ", overflow "
            << Printf("%.10g", h.overflow()) << "\n";

  // A histogram that no model scored (learning, rejected) has no expectation to compare with.
  const int n = std::min({h.contents_size(), inspection.expected_size(), inspection.pulls_size()});
  if (n == 0) {
    std::cout << "no expectation to compare with: no model scored this histogram";
    if (!inspection.verdict().detail().empty())
      std::cout << " (" << inspection.verdict().detail() << ")";
    std::cout << "\n";
    return 0;
  }
  std::vector<uint32_t> bins(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) bins[static_cast<size_t>(i)] = static_cast<uint32_t>(i);
  // NaN pulls sort last, so the comparison stays a strict weak order.
  auto magnitude = [&](uint32_t bin) {
    const double pull = inspection.pulls(static_cast<int>(bin));
    return std::isnan(pull) ? -1.0 : std::fabs(pull);
  };
  std::stable_sort(bins.begin(), bins.end(),
                   [&](uint32_t a, uint32_t b) { return magnitude(a) > magnitude(b); });
  const size_t shown = o.all_bins ? bins.size() : std::min(o.top, bins.size());

  using Align = Table::Align;
  // ROOT's bin numbers, and each bin's range on the axes when the histogram came with them.
  const bool ranges = !names.Range(0).empty();
  std::vector<Table::Column> columns = {{h.shape_size() == 2 ? "BIN (IX,IY)" : "BIN"}};
  if (ranges) columns.push_back({h.shape_size() == 2 ? "X x Y RANGE" : "RANGE"});
  for (const char* c : {"OBSERVED", "EXPECTED", "PULL"}) columns.push_back({c, Align::kRight});
  Table table(columns);
  for (size_t i = 0; i < shown; ++i) {
    const int b = static_cast<int>(bins[i]);
    std::vector<std::string> row = {names.Bin(bins[i])};
    if (ranges) row.push_back(names.Range(bins[i]));
    for (const std::string& cell :
         {Printf("%.6g", h.contents(b)), Printf("%.6g", inspection.expected(b)),
          Printf("%+.2f", inspection.pulls(b))})
      row.push_back(cell);
    table.AddRow(row);
  }
  std::cout << "\n";
  table.Print(std::cout);
  if (shown < bins.size()) {
    std::cout << "(" << shown << " of " << bins.size()
              << " bins, largest |pull| first; --all-bins shows all)\n";
  }
  return 0;
}

// ---- label ----

struct LabelOptions {
  std::string monitor;
  uint64_t run = 0;
  uint64_t lumisection = 0;
  uint64_t from = 0, to = 0;  // a range instead (both given)
  bool good = false;
  bool bad = false;
  std::string comment;
  std::string author;
};

// The most lumisections one `label` call takes: a range is a person's judgement of a period
// (a run is about 1,500), not a way to relabel a monitor's whole history by mistake.
constexpr uint64_t kMaxLabelRange = 10000;

int RunLabel(const std::string& address, const LabelOptions& o) {
  const bool range = o.from != 0 || o.to != 0;
  if (range && (o.from == 0 || o.to < o.from || o.to - o.from >= kMaxLabelRange)) {
    std::cerr << "histguard label: --from and --to give a range of at most " << kMaxLabelRange
              << " lumisections, --from first\n";
    return 2;
  }
  v1::LabelRequest request;
  request.set_monitor(o.monitor);
  request.set_run(o.run);
  request.set_label(o.good ? v1::QUALITY_GOOD : v1::QUALITY_BAD);
  request.set_comment(o.comment);
  std::string author = o.author;
  if (author.empty()) {
    if (const char* user = std::getenv("USER")) author = user;
  }
  request.set_author(author);
  if (!range) {
    request.set_lumisection(o.lumisection);
    v1::LabelResponse response;
    if (int rc = CallControl("label", address, kDeadline,
                             [&](v1::Control::Stub& stub, grpc::ClientContext* context) {
                               return stub.Label(context, request, &response);
                             })) {
      return rc;
    }
    std::cout << "labelled " << o.monitor << " run " << o.run << " ls " << o.lumisection << " as "
              << QualityName(request.label()) << "\n";
    return 0;
  }
  // A range: every stored lumisection in it; those the daemon does not hold are counted.
  Client client(address, ConnectionOptions());
  uint64_t labelled = 0, missing = 0;
  for (uint64_t ls = o.from; ls <= o.to; ++ls) {
    request.set_lumisection(ls);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + kDeadline);
    client.Authorize(&context);
    v1::LabelResponse response;
    const grpc::Status s = client.control().Label(&context, request, &response);
    if (s.ok()) {
      ++labelled;
    } else if (s.error_code() == grpc::StatusCode::NOT_FOUND &&
               s.error_message().rfind("no monitor named", 0) != 0) {
      ++missing;
    } else {
      if (labelled)
        std::cerr << "histguard label: " << labelled << " lumisections labelled before this\n";
      return ReportFailure("label", address, s, std::to_string(kDeadline.count()) + " s");
    }
  }
  std::cout << "labelled " << labelled << " lumisections of " << o.monitor << " run " << o.run
            << " (" << o.from << "-" << o.to << ") as " << QualityName(request.label());
  if (missing) std::cout << "; " << missing << " in the range are not stored and were skipped";
  std::cout << "\n";
  return labelled ? 0 : 1;
}

// ---- retrain ----

// On a terminal, "WHAT: 12 s" redrawn every second until it goes out of scope, then cleared;
// nothing when stderr is not a terminal.
class ElapsedLine {
 public:
  explicit ElapsedLine(std::string what) {
    if (!StderrIsTerminal()) return;
    thread_ = std::thread([this, what = std::move(what)] {
      const auto start = std::chrono::steady_clock::now();
      std::unique_lock lk(mu_);
      do {
        const auto secs = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::steady_clock::now() - start)
                              .count();
        std::cerr << "\r" << what << ": " << secs << " s" << std::flush;
      } while (!cv_.wait_for(lk, std::chrono::seconds(1), [this] { return done_; }));
      std::cerr << "\r\033[K" << std::flush;
    });
  }
  ~ElapsedLine() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard lk(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  ElapsedLine(const ElapsedLine&) = delete;
  ElapsedLine& operator=(const ElapsedLine&) = delete;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

int RunRetrain(const std::string& address, const std::string& monitor) {
  v1::RetrainRequest request;
  request.set_monitor(monitor);
  v1::RetrainResponse response;
  int rc = 0;
  {
    const ElapsedLine ticking("training a candidate model for " + monitor);
    rc = CallControl("retrain", address, kRetrainDeadline,
                     [&](v1::Control::Stub& stub, grpc::ClientContext* context) {
                       return stub.Retrain(context, request, &response);
                     });
  }
  if (rc != 0) return rc;
  if (response.accepted()) {
    std::cout << monitor << ": new model v" << response.version() << "\n";
    return 0;
  }
  std::cout << monitor << ": candidate rejected: "
            << (response.reason().empty() ? "no reason given" : response.reason()) << "\n";
  return 1;
}

// ---- rollback ----

int RunRollback(const std::string& address, const std::string& monitor, uint64_t version) {
  v1::RollbackRequest request;
  request.set_monitor(monitor);
  request.set_version(version);
  v1::RollbackResponse response;
  if (int rc = CallControl("rollback", address, kDeadline,
                           [&](v1::Control::Stub& stub, grpc::ClientContext* context) {
                             return stub.Rollback(context, request, &response);
                           })) {
    return rc;
  }
  std::cout << monitor << ": active model is now v" << response.active_version() << "\n";
  return 0;
}

// ---- forget ----

int RunForget(const std::string& address, const std::string& monitor, const std::string& comment) {
  v1::ForgetRequest request;
  request.set_monitor(monitor);
  request.set_comment(comment);
  v1::ForgetResponse response;
  if (int rc = CallControl("forget", address, kDeadline,
                           [&](v1::Control::Stub& stub, grpc::ClientContext* context) {
                             return stub.Forget(context, request, &response);
                           })) {
    return rc;
  }
  std::cout << monitor << ": forgotten (" << response.versions_deleted() << " model versions, "
            << response.histograms_deleted() << " stored histograms deleted); the name is free\n";
  return 0;
}

// ---- accept ----

int RunAccept(const std::string& address, const std::string& monitor, uint64_t run, uint64_t from,
              const std::string& comment) {
  v1::AcceptRequest request;
  request.set_monitor(monitor);
  request.set_run(run);
  request.set_from_lumisection(from);
  request.set_comment(comment);
  v1::AcceptResponse response;
  if (int rc = CallControl("accept", address, kDeadline,
                           [&](v1::Control::Stub& stub, grpc::ClientContext* context) {
                             return stub.Accept(context, request, &response);
                           })) {
    return rc;
  }
  std::cout << monitor << ": run " << run << " lumisection " << from
            << " on accepted as the new normal; the next model learns it from "
            << response.histograms_needed() << " of its histograms and is promoted\n";
  return 0;
}

// ---- approve, reject ----

int RunApprove(const std::string& address, const std::string& monitor, const std::string& comment) {
  v1::ApproveRequest request;
  request.set_monitor(monitor);
  request.set_comment(comment);
  v1::ApproveResponse response;
  if (int rc = CallControl("approve", address, kDeadline,
                           [&](v1::Control::Stub& stub, grpc::ClientContext* context) {
                             return stub.Approve(context, request, &response);
                           })) {
    return rc;
  }
  std::cout << monitor << ": held candidate approved; active model is now v" << response.version()
            << "\n";
  return 0;
}

int RunReject(const std::string& address, const std::string& monitor, const std::string& comment) {
  v1::RejectRequest request;
  request.set_monitor(monitor);
  request.set_comment(comment);
  v1::RejectResponse response;
  if (int rc = CallControl("reject", address, kDeadline,
                           [&](v1::Control::Stub& stub, grpc::ClientContext* context) {
                             return stub.Reject(context, request, &response);
                           })) {
    return rc;
  }
  std::cout << monitor
            << ": held candidate rejected; the change stays flagged and is not "
               "learned\n";
  return 0;
}

// ---- run ----

int RunRunControl(const std::string& address, const std::string& action, uint64_t run) {
  Client client(address, ConnectionOptions());
  v1::RunState state;
  const grpc::Status s = client.SetRunState(run, action == "start", &state);
  if (!s.ok()) return ReportFailure("run", address, s, "10 s");
  std::cout << "run " << state.run() << " is " << (state.open() ? "open" : "ended") << "\n";
  return 0;
}

void AddRunLumisection(CLI::App* cmd, uint64_t& run, uint64_t& lumisection) {
  cmd->add_option("--run", run, "run number")->required();
  cmd->add_option("--lumisection,--ls", lumisection, "lumisection number")->required();
}

constexpr const char* kMonitorHelp = "monitor name, e.g. pixel/barrel/l1/occupancy";

}  // namespace

void AddControlCommands(CLI::App& app, const std::string& address, int& exit_code) {
  {
    auto o = std::make_shared<MonitorsOptions>();
    auto* cmd = app.add_subcommand(
        "monitors",
        "List the monitors the daemon knows, sorted by name, with each one's active model "
        "version (MODEL, '-' while still learning), training-window size in histograms (WINDOW), "
        "its last verdict (LAST: quality, run and lumisection) and that verdict's p-value (P). "
        "Start here during a shift to spot BAD or WARNING monitors.");
    cmd->add_option("-p,--prefix", o->prefix,
                    "only monitors whose name starts with this, e.g. pixel/");
    cmd->add_flag("--json", o->json, "print the daemon's answer as JSON");
    cmd->callback([&address, &exit_code, o] { exit_code = RunMonitors(address, *o); });
  }
  {
    auto o = std::make_shared<MonitorOptions>();
    auto* cmd = app.add_subcommand(
        "monitor",
        "Show one monitor in detail: histogram shape, active model, training window, the "
        "thresholds that turn a p-value into WARNING or BAD (and the entries below which a "
        "histogram is LOW_STATISTICS), the last verdict, and every stored model version, newest "
        "first, with its training and holdout loss and why it was trained. Use it before "
        "deciding to retrain or roll back.");
    cmd->add_option("monitor", o->monitor, kMonitorHelp)->required();
    cmd->add_flag("--json", o->json, "print the daemon's answer as JSON");
    cmd->callback([&address, &exit_code, o] { exit_code = RunMonitor(address, *o); });
  }
  {
    auto o = std::make_shared<InspectOptions>();
    auto* cmd = app.add_subcommand(
        "inspect",
        "Explain one lumisection's verdict bin by bin: the observed content of each bin against "
        "the expectation of the model that scored it, and the bin's pull (signed Poisson "
        "deviance residual, roughly (observed - expected) / sigma), largest |pull| first. Bins "
        "of 2D histograms print as ix,iy. Use it to see where in the detector a BAD or WARNING "
        "histogram deviates.");
    cmd->add_option("monitor", o->monitor, kMonitorHelp)->required();
    AddRunLumisection(cmd, o->run, o->lumisection);
    auto* top = cmd->add_option("--top", o->top, "how many bins to list")
                    ->capture_default_str()
                    ->check(CLI::PositiveNumber);
    cmd->add_flag("--all-bins", o->all_bins, "list every bin, largest |pull| first")->excludes(top);
    cmd->add_flag("--json", o->json,
                  "print the daemon's answer as JSON (histogram, expected, pulls, verdict)");
    cmd->callback([&address, &exit_code, o] { exit_code = RunInspect(address, *o); });
  }
  {
    auto o = std::make_shared<LabelOptions>();
    auto* cmd = app.add_subcommand(
        "label",
        "Record a detector expert's judgement that one lumisection of a monitor, or a range of "
        "them (--from/--to), is GOOD or BAD, e.g. after checking it against the run logbook, "
        "whatever verdict the model gave. Give exactly one of --good or --bad. GOOD ones enter "
        "the training window, BAD ones leave it.");
    cmd->add_option("monitor", o->monitor, kMonitorHelp)->required();
    cmd->add_option("--run", o->run, "run number")->required();
    auto* which = cmd->add_option_group("lumisections", "one lumisection or a range");
    auto* one = which->add_option("--lumisection,--ls", o->lumisection, "lumisection number");
    auto* from = which->add_option("--from", o->from, "first lumisection of a range");
    auto* to = which->add_option("--to", o->to, "last lumisection of a range (included)");
    from->needs(to);
    to->needs(from);
    one->excludes(from);
    one->excludes(to);
    which->require_option(1, 2);
    auto* quality = cmd->add_option_group("quality", "the label (exactly one)");
    quality->add_flag("--good", o->good, "the lumisection is good");
    quality->add_flag("--bad", o->bad, "the lumisection is bad");
    quality->require_option(1);
    cmd->add_option("--comment", o->comment, "why, in words (e.g. an elog reference)");
    cmd->add_option("--author", o->author, "who labels (default: $USER)");
    cmd->callback([&address, &exit_code, o] { exit_code = RunLabel(address, *o); });
  }
  {
    auto monitor = std::make_shared<std::string>();
    auto* cmd = app.add_subcommand(
        "retrain",
        "Train a candidate model for a monitor now on its current window instead of waiting for "
        "the schedule. The daemon makes the candidate active only if it passes validation; "
        "otherwise it prints why the candidate was rejected and exits 1, and the current model "
        "stays. Training can take minutes (gives up after 10).");
    cmd->add_option("monitor", *monitor, kMonitorHelp)->required();
    cmd->callback([&address, &exit_code, monitor] { exit_code = RunRetrain(address, *monitor); });
  }
  {
    auto monitor = std::make_shared<std::string>();
    auto version = std::make_shared<uint64_t>(0);
    auto* cmd = app.add_subcommand(
        "rollback",
        "Make an earlier stored model version of a monitor the active one again, e.g. after a "
        "retrain learnt from a bad period. `histguard monitor NAME` lists the versions.");
    cmd->add_option("monitor", *monitor, kMonitorHelp)->required();
    cmd->add_option("--version", *version, "model version to activate")
        ->required()
        ->check(CLI::PositiveNumber);
    cmd->callback([&address, &exit_code, monitor, version] {
      exit_code = RunRollback(address, *monitor, *version);
    });
  }
  {
    auto monitor = std::make_shared<std::string>();
    auto comment = std::make_shared<std::string>();
    auto yes = std::make_shared<bool>(false);
    auto* cmd = app.add_subcommand(
        "forget",
        "Retire a monitor: delete its model versions, stored histograms, labels and state, and "
        "free its name, e.g. for a histogram whose binning changed or one that is no longer "
        "published. Cannot be undone; needs --yes.");
    cmd->add_option("monitor", *monitor, kMonitorHelp)->required();
    cmd->add_option("--comment", *comment, "why, for the daemon's log");
    cmd->add_flag("--yes", *yes, "confirm: everything stored of the monitor is deleted");
    cmd->callback([&address, &exit_code, monitor, comment, yes] {
      if (!*yes) {
        std::cerr << "histguard forget: deletes everything stored of '" << *monitor
                  << "'; run again with --yes to confirm\n";
        exit_code = 2;
        return;
      }
      exit_code = RunForget(address, *monitor, *comment);
    });
  }
  {
    auto monitor = std::make_shared<std::string>();
    auto comment = std::make_shared<std::string>();
    auto run = std::make_shared<uint64_t>(0);
    auto from = std::make_shared<uint64_t>(0);
    auto* cmd = app.add_subcommand(
        "accept",
        "Accept a lasting change of a monitor as its new normal from a lumisection on (a "
        "detector region masked on purpose, a new configuration). Until then a lasting change "
        "stays flagged and is never learned. The histograms from --run/--from on enter the "
        "training window whatever their verdict (label one BAD to keep it out), and the next "
        "model learns them and becomes active without approval. Needs the operator role.");
    cmd->add_option("monitor", *monitor, kMonitorHelp)->required();
    cmd->add_option("--run", *run, "run number")->required();
    cmd->add_option("--from", *from, "first lumisection of the new normal")->required();
    cmd->add_option("--comment", *comment, "why, in words (e.g. an elog reference)");
    cmd->callback([&address, &exit_code, monitor, run, from, comment] {
      exit_code = RunAccept(address, *monitor, *run, *from, *comment);
    });
  }
  for (const bool approve : {true, false}) {
    auto monitor = std::make_shared<std::string>();
    auto comment = std::make_shared<std::string>();
    auto* cmd = app.add_subcommand(
        approve ? "approve" : "reject",
        approve ? "Approve the candidate model a monitor holds because it learned a localised "
                  "change (`histguard monitor NAME` shows it): it becomes the active model and "
                  "the change the new normal. Needs the operator role."
                : "Reject the candidate model a monitor holds because it learned a localised "
                  "change: it is dropped, the change stays flagged and out of the training "
                  "window, and later candidates that learn a localised change are dropped too, "
                  "until one is approved or `histguard accept` is used. Needs the operator role.");
    cmd->add_option("monitor", *monitor, kMonitorHelp)->required();
    cmd->add_option("--comment", *comment, "why, in words (e.g. an elog reference)");
    cmd->callback([&address, &exit_code, monitor, comment, approve] {
      exit_code = approve ? RunApprove(address, *monitor, *comment)
                          : RunReject(address, *monitor, *comment);
    });
  }
  {
    auto action = std::make_shared<std::string>();
    auto run = std::make_shared<uint64_t>(0);
    auto* cmd = app.add_subcommand(
        "run",
        "Run control: tell the daemon that a run started or ended, so that the silence between "
        "runs raises no HistguardDaqSilent alert. A histogram of a newer run also opens it; "
        "only `end` closes one. Needs the ingest role.");
    cmd->add_option("action", *action, "start or end")
        ->required()
        ->check(CLI::IsMember({"start", "end"}));
    cmd->add_option("run", *run, "run number")->required()->check(CLI::PositiveNumber);
    cmd->callback(
        [&address, &exit_code, action, run] { exit_code = RunRunControl(address, *action, *run); });
  }
}

}  // namespace histguard::cli
