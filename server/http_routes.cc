#include "server/http_routes.h"

namespace histguard::server {

HttpResponse Refusal(const absl::Status& why) {
  HttpResponse r;
  r.status = absl::IsPermissionDenied(why) ? 403 : 401;
  r.body = std::string(why.message()) + "\n";
  if (r.status == 401) r.headers["WWW-Authenticate"] = "Bearer realm=\"histguard\"";
  return r;
}

HttpServer::Handler MakeHttpRoutes(const Metrics& metrics, const Health& health,
                                   const Authenticator& auth, const ConsoleApi* console) {
  return [&metrics, &health, &auth, console](const HttpRequest& req) {
    if (console)
      if (auto answer = console->Handle(req)) return *answer;
    HttpResponse r;
    if (req.method != "GET" && req.method != "HEAD") {
      r.status = 405;
      r.body = "only GET\n";
      r.headers["Allow"] = "GET, HEAD";
      return r;
    }
    if (req.path == "/healthz") {
      auto [ok, body] = health.Report();
      r.status = ok ? 200 : 503;
      r.body = std::move(body);
      return r;
    }
    if (req.path == "/metrics") {
      if (auto who = auth.Check(req.authorization, "", Role::kRead); !who.ok())
        return Refusal(who.status());
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      r.body = metrics.Render();
      return r;
    }
    r.status = 404;
    r.body =
        "histguard serves /metrics, /healthz, the console (/console/) and its API (/api/v1/)\n";
    return r;
  };
}

}  // namespace histguard::server
