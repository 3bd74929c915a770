// A small HTTP/1.1 server on Boost.Beast for Prometheus scrapes and liveness checks:
//   GET /metrics  the registry in Prometheus text format
//   GET /healthz  200 while serving, 503 otherwise; the body says what does not work
// It runs on the daemon's io_context; each connection is served sequentially (keep-alive).
// Requests are size-limited; anything else is 404/405.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <string>

namespace histguard::server {

class HttpServer {
 public:
  using Render = std::function<std::string()>;
  using HealthReport = std::function<std::pair<bool, std::string>()>;

  // Binds `address` (host:port, port 0 = any free port). Throws std::runtime_error with a clear
  // message if the address is malformed or cannot be bound.
  HttpServer(boost::asio::io_context& io, const std::string& address, Render metrics,
             HealthReport health);

  unsigned short port() const { return port_; }
  void Stop();

 private:
  void Accept();

  boost::asio::io_context& io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  Render metrics_;
  HealthReport health_;
  unsigned short port_ = 0;
};

// Splits "host:port" (or "[v6]:port"); false if malformed.
bool SplitHostPort(const std::string& address, std::string& host, std::string& port);

}  // namespace histguard::server
