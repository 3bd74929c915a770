// The HTTP server alone, on a free port of the loopback: what a handler sees of a request, kept
// alive connections, HEAD, and clear answers to requests it cannot read.
#include "server/http_server.h"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <stdexcept>
#include <string>
#include <thread>

namespace histguard::server {
namespace {
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<HttpServer>(io_, "127.0.0.1:0", [](const HttpRequest& r) {
      HttpResponse out;
      out.body = r.method + " " + r.path + " ?" + r.query + " [" + r.body + "]";
      out.headers["X-Seen"] = r.authorization;
      return out;
    });
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    server_->Stop();
    io_.stop();
    thread_.join();
  }

  tcp::socket Connect() {
    tcp::socket s(client_io_);
    s.connect({boost::asio::ip::make_address("127.0.0.1"), server_->port()});
    return s;
  }
  // Sends `raw` and reads one response. A server that refuses a request answers before it has
  // read all of it and may stop taking the rest, which the reading below does not mind.
  http::response<http::string_body> Exchange(tcp::socket& s, const std::string& raw) {
    boost::system::error_code ignored;
    boost::asio::write(s, boost::asio::buffer(raw), ignored);
    http::response<http::string_body> res;
    http::read(s, buffer_, res);
    return res;
  }

  boost::asio::io_context io_, client_io_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  beast::flat_buffer buffer_;
};

TEST_F(HttpServerTest, AHandlerSeesTheRequestAndAConnectionServesSeveral) {
  auto s = Connect();
  auto first = Exchange(s,
                        "GET /metrics?name=a%20b HTTP/1.1\r\nHost: x\r\n"
                        "Authorization: Bearer t0k\r\n\r\n");
  EXPECT_EQ(first.result_int(), 200);
  EXPECT_EQ(first.body(), "GET /metrics ?name=a%20b []");
  EXPECT_EQ(first["X-Seen"], "Bearer t0k");
  EXPECT_EQ(first[http::field::server], "histguard");
  // The same connection, kept alive: a POST with a body.
  auto second = Exchange(s, "POST /api/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(second.result_int(), 200);
  EXPECT_EQ(second.body(), "POST /api/x ? [hello]");
  // HEAD: the length of what GET would send, no body.
  boost::asio::write(s, boost::asio::buffer(std::string("HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n")));
  http::response_parser<http::empty_body> head;
  head.skip(true);
  http::read(s, buffer_, head);
  EXPECT_EQ(head.get().result_int(), 200);
  EXPECT_EQ(head.get()[http::field::content_length],
            std::to_string(std::string("HEAD /a ? []").size()));
}

TEST_F(HttpServerTest, RequestsItCannotReadGetAClearAnswerAndTheServerGoesOn) {
  {
    auto s = Connect();
    auto res = Exchange(s, "HELLO THERE\r\n\r\n");
    EXPECT_EQ(res.result_int(), 400);
    EXPECT_NE(res.body().find("malformed HTTP request"), std::string::npos) << res.body();
  }
  {
    buffer_.clear();
    auto s = Connect();
    const std::string body(100 * 1024, 'x');
    auto res = Exchange(s, "POST /api/x HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                               std::to_string(body.size()) + "\r\n\r\n" + body);
    EXPECT_EQ(res.result_int(), 413);
    EXPECT_NE(res.body().find("64 KiB"), std::string::npos) << res.body();
    EXPECT_FALSE(res.keep_alive());
  }
  {
    buffer_.clear();
    auto s = Connect();
    const std::string cookie(20 * 1024, 'c');
    auto res = Exchange(s, "GET / HTTP/1.1\r\nHost: x\r\nCookie: " + cookie + "\r\n\r\n");
    EXPECT_EQ(res.result_int(), 431);
  }
  buffer_.clear();
  auto s = Connect();
  EXPECT_EQ(Exchange(s, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").result_int(), 200);
}

TEST(HttpServerAddress, AnAddressThatCannotBeBoundIsAClearError) {
  boost::asio::io_context io;
  auto handler = [](const HttpRequest&) { return HttpResponse{}; };
  for (const char* bad : {"nonsense", "127.0.0.1:99999", "256.1.1.1:80"}) {
    try {
      HttpServer server(io, bad, handler);
      ADD_FAILURE() << bad << " was bound";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
  std::string host, port;
  EXPECT_TRUE(SplitHostPort("[::1]:9090", host, port));
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, "9090");
  EXPECT_FALSE(SplitHostPort("9090", host, port));
}

}  // namespace
}  // namespace histguard::server
