// A small HTTP/1.1 server on Boost.Beast for Prometheus scrapes, liveness checks and the
// daemon's JSON API. It runs on the daemon's io_context; each connection is served sequentially
// (keep-alive). Requests are size-limited. What a path answers is the Handler's business.
//
// With TLS files it serves HTTPS only; the certificate and key are read again when they change
// (looked at once a second at most, when a connection arrives), so a renewed certificate needs
// no restart. A pair that does not load keeps the previous one and is logged.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace histguard::server {

struct HttpRequest {
  std::string method;         // "GET", "HEAD", ...
  std::string path;           // without the query
  std::string query;          // after '?', undecoded
  std::string authorization;  // the Authorization header
  std::string content_type;   // the Content-Type header
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::map<std::string, std::string> headers;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  struct Tls {
    std::string cert_file, key_file;  // PEM; both empty: plain HTTP
  };

  // Binds `address` (host:port, port 0 = any free port). Throws std::runtime_error with a clear
  // message if the address is malformed or cannot be bound, or the TLS files do not load.
  HttpServer(boost::asio::io_context& io, const std::string& address, Handler handler,
             Tls tls = {});
  ~HttpServer();

  unsigned short port() const { return port_; }
  void Stop();

 private:
  struct TlsState;
  void Accept();

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  Handler handler_;
  std::unique_ptr<TlsState> tls_;
  unsigned short port_ = 0;
};

// Splits "host:port" (or "[v6]:port"); false if malformed.
bool SplitHostPort(const std::string& address, std::string& host, std::string& port);

}  // namespace histguard::server
