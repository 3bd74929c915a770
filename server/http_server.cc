#include "server/http_server.h"

#include <boost/asio/ip/address.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <optional>
#include <stdexcept>

namespace histguard::server {
namespace {
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const HttpServer::Render& metrics,
          const HttpServer::HealthReport& health)
      : stream_(std::move(socket)), metrics_(metrics), health_(health) {}

  void Read() {
    request_ = {};
    parser_.emplace();
    parser_->body_limit(64 * 1024);
    parser_->header_limit(16 * 1024);
    stream_.expires_after(std::chrono::seconds(30));
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return self->Close();
                       self->request_ = self->parser_->release();
                       self->Respond();
                     });
  }

 private:
  void Respond() {
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(request_.version());
    res->keep_alive(request_.keep_alive());
    res->set(http::field::server, "histguard");
    const std::string target(request_.target());
    const std::string path = target.substr(0, target.find('?'));
    if (request_.method() != http::verb::get && request_.method() != http::verb::head) {
      res->result(http::status::method_not_allowed);
      res->set(http::field::content_type, "text/plain");
      res->body() = "only GET\n";
    } else if (path == "/metrics") {
      res->result(http::status::ok);
      res->set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      res->body() = metrics_();
    } else if (path == "/healthz") {
      auto [ok, body] = health_();
      res->result(ok ? http::status::ok : http::status::service_unavailable);
      res->set(http::field::content_type, "text/plain");
      res->body() = std::move(body);
    } else {
      res->result(http::status::not_found);
      res->set(http::field::content_type, "text/plain");
      res->body() = "histguard serves /metrics and /healthz\n";
    }
    if (request_.method() == http::verb::head) {
      res->content_length(res->body().size());
      res->body().clear();
    }
    res->prepare_payload();
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, size_t) {
                        if (ec || !res->keep_alive()) return self->Close();
                        self->Read();
                      });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::request<http::string_body> request_;
  const HttpServer::Render& metrics_;
  const HttpServer::HealthReport& health_;
};

}  // namespace

bool SplitHostPort(const std::string& address, std::string& host, std::string& port) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 >= address.size()) return false;
  host = address.substr(0, colon);
  port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty()) return false;
  for (char c : port)
    if (c < '0' || c > '9') return false;
  return std::stoul(port) <= 65535;
}

HttpServer::HttpServer(boost::asio::io_context& io, const std::string& address, Render metrics,
                       HealthReport health)
    : io_(io), acceptor_(io), metrics_(std::move(metrics)), health_(std::move(health)) {
  std::string host, port;
  if (!SplitHostPort(address, host, port))
    throw std::runtime_error("metrics address '" + address + "' is not host:port");
  boost::system::error_code ec;
  tcp::resolver resolver(io);
  auto results = resolver.resolve(host, port, ec);
  if (ec || results.empty())
    throw std::runtime_error("cannot resolve metrics address '" + address + "': " + ec.message());
  const tcp::endpoint ep = *results.begin();
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(boost::asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error("cannot listen on metrics address '" + address + "': " + ec.message());
  port_ = acceptor_.local_endpoint().port();
  Accept();
}

void HttpServer::Accept() {
  acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    if (ec == boost::asio::error::operation_aborted) return;
    if (!ec) std::make_shared<Session>(std::move(socket), metrics_, health_)->Read();
    if (acceptor_.is_open()) Accept();
  });
}

void HttpServer::Stop() {
  boost::system::error_code ec;
  acceptor_.close(ec);
}

}  // namespace histguard::server
