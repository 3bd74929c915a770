#include "server/console_api.h"

#include <google/protobuf/util/json_util.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "server/convert.h"
#include "server/metrics.h"

namespace histguard::server {
namespace {

namespace fs = std::filesystem;

constexpr uintmax_t kMaxPageBytes = 32u << 20;

HttpResponse Json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  r.headers["Cache-Control"] = "no-store";
  return r;
}

HttpResponse Error(int status, const std::string& message) {
  return Json(status, nlohmann::json{{"error", message}}.dump() + "\n");
}

HttpResponse Error(const absl::Status& s) {
  int status = 500;
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
      status = 400;
      break;
    case absl::StatusCode::kUnauthenticated:
      status = 401;
      break;
    case absl::StatusCode::kPermissionDenied:
      status = 403;
      break;
    case absl::StatusCode::kNotFound:
      status = 404;
      break;
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted:
      status = 409;
      break;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kResourceExhausted:
      status = 503;
      break;
    default:
      break;
  }
  HttpResponse r = Error(status, std::string(s.message()));
  if (status == 401) r.headers["WWW-Authenticate"] = "Bearer realm=\"histguard\"";
  return r;
}

HttpResponse MessageJson(const google::protobuf::Message& m, int status = 200) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(m, &out, options).ok())
    return Error(500, "cannot write the answer as JSON");
  return Json(status, out + "\n");
}

// The call's answer as JSON, or its error.
HttpResponse Answer(const absl::Status& s, const google::protobuf::Message& out) {
  return s.ok() ? MessageJson(out) : Error(s);
}

int Hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded values: %XX and '+'.
std::optional<std::string> UrlDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%') {
      const int hi = i + 1 < s.size() ? Hex(s[i + 1]) : -1;
      const int lo = i + 2 < s.size() ? Hex(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::optional<std::map<std::string, std::string>> ParseQuery(std::string_view q) {
  std::map<std::string, std::string> out;
  while (!q.empty()) {
    const size_t amp = q.find('&');
    const std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    auto key = UrlDecode(pair.substr(0, eq));
    auto value = UrlDecode(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    if (!key || !value) return std::nullopt;
    out[*key] = *value;
  }
  return out;
}

// A run or lumisection number from the query; nullopt (with `error` set) when malformed.
std::optional<uint64_t> Number(const std::map<std::string, std::string>& q, const std::string& key,
                               std::string* error) {
  auto it = q.find(key);
  if (it == q.end() || it->second.empty()) {
    *error = "missing " + key;
    return std::nullopt;
  }
  uint64_t v = 0;
  for (char c : it->second) {
    if (c < '0' || c > '9' || v > (UINT64_MAX - 9) / 10) {
      *error = key + " '" + it->second.substr(0, 32) + "' is not a number";
      return std::nullopt;
    }
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

std::string ContentType(const std::string& path) {
  static const std::map<std::string, std::string> types = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".woff2", "font/woff2"},
      {".txt", "text/plain; charset=utf-8"}};
  const auto it = types.find(fs::path(path).extension().string());
  return it == types.end() ? "application/octet-stream" : it->second;
}

std::string QualityName(Quality q) { return v1::Quality_Name(ToProto(q)); }

}  // namespace

std::optional<HttpResponse> ConsoleApi::Handle(const HttpRequest& req) const {
  if (req.path == "/" || req.path == "/console") {
    HttpResponse r;
    r.status = 302;
    r.headers["Location"] = "/console/";
    r.body = "the console is at /console/\n";
    return r;
  }
  if (req.path.starts_with("/console/")) {
    if (req.method != "GET" && req.method != "HEAD") {
      HttpResponse r = Error(405, "only GET");
      r.headers["Allow"] = "GET, HEAD";
      return r;
    }
    return Page(req.path.substr(std::string("/console/").size()));
  }
  if (req.path.starts_with("/api/")) return Api(req);
  return std::nullopt;
}

HttpResponse ConsoleApi::Page(const std::string& path) const {
  if (dir_.empty()) return Error(404, "the console's pages are not installed (see --console-dir)");
  const std::string file = path.empty() ? "index.html" : path;
  // Only plain relative names inside the console directory.
  if (file.size() > 512 || file.front() == '/' || file.find("..") != std::string::npos ||
      file.find_first_not_of(
          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._/-") !=
          std::string::npos)
    return Error(404, "no such page");
  const fs::path full = fs::path(dir_) / file;
  std::error_code ec;
  const uintmax_t size = fs::file_size(full, ec);
  if (ec || !fs::is_regular_file(full, ec) || size > kMaxPageBytes)
    return Error(404, "no such page");
  std::ifstream in(full, std::ios::binary);
  std::ostringstream body;
  body << in.rdbuf();
  if (!in) return Error(500, "cannot read " + file);
  HttpResponse r;
  r.content_type = ContentType(file);
  r.body = std::move(body).str();
  r.headers["Cache-Control"] = "no-cache";
  r.headers["X-Content-Type-Options"] = "nosniff";
  return r;
}

HttpResponse ConsoleApi::Api(const HttpRequest& req) const {
  constexpr std::string_view kPrefix = "/api/v1/";
  if (!req.path.starts_with(kPrefix)) return Error(404, "the API is under /api/v1/");
  const std::string_view route = std::string_view(req.path).substr(kPrefix.size());
  const bool post = req.method == "POST";
  if (!post && req.method != "GET" && req.method != "HEAD") {
    HttpResponse r = Error(405, "GET for reads, POST for actions");
    r.headers["Allow"] = "GET, HEAD, POST";
    return r;
  }
  auto who = auth_.Check(req.authorization, "", post ? Role::kOperator : Role::kRead);
  if (!who.ok()) return Error(who.status());

  if (post) {
    if (!req.content_type.starts_with("application/json"))
      return Error(415, "actions take a JSON body with Content-Type: application/json");
    google::protobuf::util::JsonParseOptions options;
    auto parse = [&](google::protobuf::Message& m) -> std::optional<HttpResponse> {
      const auto s = google::protobuf::util::JsonStringToMessage(req.body, &m, options);
      if (!s.ok())
        return Error(400, "the body is not a " + m.GetTypeName() + ": " + std::string(s.message()));
      return std::nullopt;
    };
    if (route == "label") {
      v1::LabelRequest r;
      if (auto bad = parse(r)) return *bad;
      const absl::Status s = control_.DoLabel(*who, r);
      return s.ok() ? Json(200, "{}\n") : Error(s);
    }
    if (route == "retrain") {
      v1::RetrainRequest r;
      if (auto bad = parse(r)) return *bad;
      const absl::Status s = control_.DoRetrain(*who, r, {});
      if (!s.ok()) return Error(s);
      return Json(202, nlohmann::json{{"queued", true},
                                      {"detail", "training " + r.monitor() +
                                                     "; the model versions show the result"}}
                               .dump() +
                           "\n");
    }
    if (route == "rollback") {
      v1::RollbackRequest r;
      if (auto bad = parse(r)) return *bad;
      v1::RollbackResponse out;
      const absl::Status s = control_.DoRollback(*who, r, &out);
      return Answer(s, out);
    }
    if (route == "approve") {
      v1::ApproveRequest r;
      if (auto bad = parse(r)) return *bad;
      v1::ApproveResponse out;
      const absl::Status s = control_.DoApprove(*who, r, &out);
      return Answer(s, out);
    }
    if (route == "reject") {
      v1::RejectRequest r;
      if (auto bad = parse(r)) return *bad;
      const absl::Status s = control_.DoReject(*who, r);
      return s.ok() ? Json(200, "{}\n") : Error(s);
    }
    if (route == "accept") {
      v1::AcceptRequest r;
      if (auto bad = parse(r)) return *bad;
      v1::AcceptResponse out;
      const absl::Status s = control_.DoAccept(*who, r, &out);
      return Answer(s, out);
    }
    if (route == "forget") {
      v1::ForgetRequest r;
      if (auto bad = parse(r)) return *bad;
      v1::ForgetResponse out;
      const absl::Status s = control_.DoForget(*who, r, &out);
      return Answer(s, out);
    }
    return Error(404, "no action " + std::string(route));
  }

  const auto query = ParseQuery(req.query);
  if (!query) return Error(400, "the query is not URL-encoded");
  auto get = [&](const std::string& key) {
    auto it = query->find(key);
    return it == query->end() ? std::string() : it->second;
  };
  std::string error;
  if (route == "monitors") {
    v1::ListMonitorsRequest r;
    r.set_prefix(get("prefix"));
    v1::ListMonitorsResponse out;
    const absl::Status s = control_.DoListMonitors(r, &out);
    return Answer(s, out);
  }
  if (route == "monitor") {
    v1::GetMonitorRequest r;
    r.set_monitor(get("monitor"));
    v1::MonitorInfo out;
    const absl::Status s = control_.DoGetMonitor(r, &out);
    return Answer(s, out);
  }
  if (route == "inspect") {
    v1::InspectRequest r;
    r.set_monitor(get("monitor"));
    const auto run = Number(*query, "run", &error);
    const auto ls = run ? Number(*query, "lumisection", &error) : std::nullopt;
    if (!run || !ls) return Error(400, error);
    r.set_run(*run);
    r.set_lumisection(*ls);
    v1::Inspection out;
    const absl::Status s = control_.DoInspect(r, &out);
    return Answer(s, out);
  }
  if (route == "history") {
    std::optional<uint64_t> run;
    if (!get("run").empty()) {
      run = Number(*query, "run", &error);
      if (!run) return Error(400, error);
    }
    std::optional<int64_t> at;
    if (!get("at").empty()) {
      const auto at_ms = Number(*query, "at", &error);
      if (!at_ms || *at_ms > static_cast<uint64_t>(INT64_MAX)) return Error(400, error);
      at = static_cast<int64_t>(*at_ms);
    }
    auto h = control_.DoHistory(get("monitor"), run, at);
    if (!h.ok()) return Error(h.status());
    nlohmann::json points = nlohmann::json::array();
    for (const auto& p : h->points) {
      nlohmann::json j = {{"lumisection", p.lumisection},
                          {"quality", QualityName(p.quality)},
                          {"p_value", p.p_value},
                          {"significance", Significance(p.p_value)},
                          {"score", std::isfinite(p.score) ? p.score : 0.0},
                          {"time_unix_ms", p.time_unix_ms}};
      if (p.label) j["label"] = QualityName(*p.label);
      points.push_back(std::move(j));
    }
    nlohmann::json out = {{"monitor", get("monitor")},
                          {"run", h->run},
                          {"runs", h->runs},
                          {"points", std::move(points)}};
    if (h->at_lumisection) out["at_lumisection"] = *h->at_lumisection;
    return Json(200, out.dump() + "\n");
  }
  return Error(404, "no API call " + std::string(route));
}

std::string DefaultConsoleDir(const std::string& argv0) {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) exe = fs::absolute(argv0, ec);
  std::vector<fs::path> candidates = {exe.parent_path().parent_path() / "share/histguard/console"};
#ifdef HISTGUARD_BUILD_CONSOLE_DIR
  candidates.emplace_back(HISTGUARD_BUILD_CONSOLE_DIR);
#endif
  for (const auto& c : candidates)
    if (fs::is_regular_file(c / "index.html", ec)) return c.string();
  return "";
}

}  // namespace histguard::server
