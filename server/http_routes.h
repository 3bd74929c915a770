// What the daemon's HTTP port answers:
//   GET /healthz  200 while serving (503 while draining); the body says what does not work.
//                 No credentials needed, so probes and load balancers can ask.
//   GET /metrics  Prometheus text format; the `read` role when authentication is on.
//   /, /console/, /api/v1/...  the console and its JSON API (server/console_api.h), when given.
#pragma once

#include "server/console_api.h"
#include "server/health.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/security.h"

namespace histguard::server {

HttpServer::Handler MakeHttpRoutes(const Metrics& metrics, const Health& health,
                                   const Authenticator& auth, const ConsoleApi* console = nullptr);

// 401 (no or unknown credentials) or 403 (a role that does not allow it), saying why.
HttpResponse Refusal(const absl::Status& why);

}  // namespace histguard::server
