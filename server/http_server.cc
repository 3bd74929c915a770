#include "server/http_server.h"

#include <sys/stat.h>

#include <array>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <iostream>
#include <optional>
#include <stdexcept>

namespace histguard::server {
namespace {
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

// One connection; Stream is a beast::tcp_stream or a beast::ssl_stream over one.
template <typename Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  // `keep` stays alive as long as the session (the TLS context it was made with).
  template <typename... Args>
  Session(const HttpServer::Handler& handler, std::shared_ptr<void> keep, Args&&... stream_args)
      : keep_(std::move(keep)), stream_(std::forward<Args>(stream_args)...), handler_(handler) {}

  void Start() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      Read();
    } else {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(30));
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (!ec) self->Read();
                              });
    }
  }

 private:
  void Read() {
    request_ = {};
    parser_.emplace();
    parser_->body_limit(64 * 1024);
    parser_->header_limit(16 * 1024);
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(30));
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return self->Refuse(ec);
                       self->request_ = self->parser_->release();
                       self->Respond();
                     });
  }

  // A request that could not be read: a client that sent one it could not finish parsing is
  // told why before the connection closes; one that went away or timed out is not answered.
  void Refuse(beast::error_code ec) {
    int status = 400;
    std::string why = "malformed HTTP request (" + ec.message() + ")\n";
    if (ec == http::error::body_limit) {
      status = 413;
      why = "request body over 64 KiB\n";
    } else if (ec == http::error::header_limit) {
      status = 431;
      why = "request headers over 16 KiB\n";
    } else if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
               ec.category() != http::make_error_code(http::error::bad_target).category()) {
      return Close();  // gone, timed out, or a transport (TLS) failure
    }
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(11);
    res->keep_alive(false);
    res->result(static_cast<http::status>(status));
    res->set(http::field::server, "histguard");
    res->set(http::field::content_type, "text/plain; charset=utf-8");
    res->body() = std::move(why);
    res->prepare_payload();
    http::async_write(stream_, *res,
                      [self = this->shared_from_this(), res](beast::error_code ec, size_t) {
                        self->Close();
                        if (!ec) self->Drain(0);
                      });
  }

  // After a refusal: reads and drops what the client is still sending (up to 1 MiB, for 5 s at
  // most), so that closing with unread bytes does not reset the connection before the client
  // has read the answer.
  void Drain(size_t drained) {
    static constexpr size_t kMaxDrain = 1 << 20;
    if (drained == 0) beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(5));
    stream_.async_read_some(boost::asio::buffer(drain_), [self = this->shared_from_this(), drained](
                                                             beast::error_code ec, size_t n) {
      if (!ec && drained + n < kMaxDrain) self->Drain(drained + n);
    });
  }

  void Respond() {
    HttpRequest req;
    req.method = std::string(request_.method_string());
    const std::string target(request_.target());
    const auto q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos) req.query = target.substr(q + 1);
    req.authorization = std::string(request_[http::field::authorization]);
    req.content_type = std::string(request_[http::field::content_type]);
    req.body = request_.body();
    HttpResponse out = handler_(req);

    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(request_.version());
    res->keep_alive(request_.keep_alive());
    res->result(static_cast<http::status>(out.status));
    res->set(http::field::server, "histguard");
    res->set(http::field::content_type, out.content_type);
    for (const auto& [k, v] : out.headers) res->set(k, v);
    res->body() = std::move(out.body);
    res->prepare_payload();
    // HEAD: the headers GET would send, Content-Length included, without the body.
    if (request_.method() == http::verb::head) res->body().clear();
    http::async_write(stream_, *res,
                      [self = this->shared_from_this(), res](beast::error_code ec, size_t) {
                        if (ec || !res->keep_alive()) return self->Close();
                        self->Read();
                      });
  }

  void Close() {
    beast::error_code ec;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  std::shared_ptr<void> keep_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::array<char, 4096> drain_{};
  http::request<http::string_body> request_;
  const HttpServer::Handler& handler_;
};

int64_t MtimeNs(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

// A server context with `cert` and `key`; throws with a clear message when they do not load.
std::shared_ptr<ssl::context> MakeContext(const HttpServer::Tls& tls) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(tls.cert_file, ec);
  if (ec)
    throw std::runtime_error("cannot load TLS certificate " + tls.cert_file + ": " + ec.message());
  ctx->use_private_key_file(tls.key_file, ssl::context::pem, ec);
  if (ec) throw std::runtime_error("cannot load TLS key " + tls.key_file + ": " + ec.message());
  return ctx;
}

}  // namespace

struct HttpServer::TlsState {
  Tls files;
  std::shared_ptr<ssl::context> context;
  int64_t cert_mtime = 0, key_mtime = 0;
  std::chrono::steady_clock::time_point checked;

  // The context for a new connection, reloaded first when the files changed.
  std::shared_ptr<ssl::context> Current() {
    const auto now = std::chrono::steady_clock::now();
    if (now - checked < std::chrono::seconds(1)) return context;
    checked = now;
    const int64_t c = MtimeNs(files.cert_file), k = MtimeNs(files.key_file);
    if (c == cert_mtime && k == key_mtime) return context;
    cert_mtime = c;
    key_mtime = k;
    try {
      context = MakeContext(files);
      std::clog << "histguardd: HTTP TLS certificate reloaded from " << files.cert_file << "\n";
    } catch (const std::exception& e) {
      std::clog << "histguardd: HTTP TLS certificate not reloaded (" << e.what()
                << "); the previous one stays\n";
    }
    return context;
  }
};

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

HttpServer::HttpServer(boost::asio::io_context& io, const std::string& address, Handler handler,
                       Tls tls)
    : io_(io), acceptor_(io), handler_(std::move(handler)) {
  if (!tls.cert_file.empty() || !tls.key_file.empty()) {
    tls_ = std::make_unique<TlsState>();
    tls_->files = tls;
    tls_->context = MakeContext(tls);
    tls_->cert_mtime = MtimeNs(tls.cert_file);
    tls_->key_mtime = MtimeNs(tls.key_file);
    tls_->checked = std::chrono::steady_clock::now();
  }
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
  if (ec)
    throw std::runtime_error("cannot listen on metrics address '" + address + "': " + ec.message());
  port_ = acceptor_.local_endpoint().port();
  Accept();
}

HttpServer::~HttpServer() = default;

void HttpServer::Accept() {
  acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    if (ec == boost::asio::error::operation_aborted) return;
    if (!ec) {
      if (tls_) {
        auto ctx = tls_->Current();
        std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(handler_, ctx,
                                                                        std::move(socket), *ctx)
            ->Start();
      } else {
        std::make_shared<Session<beast::tcp_stream>>(handler_, nullptr, std::move(socket))->Start();
      }
    }
    if (acceptor_.is_open()) Accept();
  });
}

void HttpServer::Stop() {
  boost::system::error_code ec;
  acceptor_.close(ec);
}

}  // namespace histguard::server
