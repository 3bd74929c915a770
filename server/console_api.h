// The shifters' console on the daemon's HTTP port: its pages under /console/ (read from the
// console directory: index.html, console.js, console.css and the bundled JSROOT) and the JSON
// API they read, which Grafana links and scripts can read as well (docs/console.md):
//
//   GET  /api/v1/monitors[?prefix=P]                     ListMonitorsResponse
//   GET  /api/v1/monitor?monitor=M                       MonitorInfo
//   GET  /api/v1/inspect?monitor=M&run=R&lumisection=L   Inspection (histogram, expectation,
//                                                        pulls, verdict, label)
//   GET  /api/v1/history?monitor=M[&run=R][&at=MS]       the run's verdicts by lumisection; with
//                                                        `at` (unix ms), the run and lumisection
//                                                        received nearest that time
//   POST /api/v1/label     LabelRequest                  {}
//   POST /api/v1/retrain   RetrainRequest                202: the training is queued
//   POST /api/v1/rollback  RollbackRequest               RollbackResponse
//   POST /api/v1/forget    ForgetRequest                 ForgetResponse
//   POST /api/v1/approve   ApproveRequest                ApproveResponse
//   POST /api/v1/reject    RejectRequest                 {}
//   POST /api/v1/accept    AcceptRequest                 AcceptResponse
//
// Messages are the proto3 JSON mapping of proto/histguard/v1/histguard.proto (field names as in
// the proto, 64-bit integers as strings, enums by name), made by the same ControlService calls as
// the gRPC API. Reads need the `read` role and POSTs the `operator` role (a bearer token in the
// Authorization header), and POSTs need `Content-Type: application/json`, which a cross-site form
// cannot send. Errors are 400, 401, 403, 404, 409, 500 or 503 with {"error": "..."}. The pages
// themselves hold no data and need no credentials. Thread-compatible; called on the HTTP thread.
#pragma once

#include <optional>
#include <string>

#include "server/control_service.h"
#include "server/http_server.h"
#include "server/security.h"

namespace histguard::server {

class ConsoleApi {
 public:
  // `console_dir` holds the pages; empty: the console is not served (the API still is).
  ConsoleApi(ControlService& control, const Authenticator& auth, std::string console_dir)
      : control_(control), auth_(auth), dir_(std::move(console_dir)) {}

  // The answer when `req` is the console's ("/", "/console/...", "/api/..."); else nullopt.
  std::optional<HttpResponse> Handle(const HttpRequest& req) const;

 private:
  HttpResponse Page(const std::string& path) const;
  HttpResponse Api(const HttpRequest& req) const;

  ControlService& control_;
  const Authenticator& auth_;
  const std::string dir_;
};

// The console directory to serve when none is configured: the installed one
// (<prefix>/share/histguard/console next to the binary's bin/), else the build tree's.
std::string DefaultConsoleDir(const std::string& argv0);

}  // namespace histguard::server
