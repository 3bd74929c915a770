// End to end: the real daemon with TLS on both ports, client certificates and a token file, as a
// control room would run it; and what it refuses.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "client/client.h"
#include "tests/e2e/daemon_process.h"

namespace histguard::testing {
namespace {

using namespace std::chrono_literals;

std::string Run(const std::string& command) {
  std::string out;
  const int code = RunCommand(command, &out);
  EXPECT_EQ(code, 0) << command << "\n" << out;
  return out;
}

// A CA, a daemon certificate for localhost/127.0.0.1 and a client certificate (CN dqm-source),
// made with the openssl tool in `dir`.
void MakeCertificates(const std::string& dir, const std::string& prefix = "") {
  const std::string d = dir + "/" + prefix;
  Run("cd " + dir + " && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca " +
      "-keyout " + d + "ca.key -out " + d + "ca.pem");
  std::ofstream(d + "san.cnf") << "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
  for (const std::string who : {"server", "client"}) {
    const std::string cn = who == "server" ? "localhost" : "dqm-source";
    Run("openssl req -newkey rsa:2048 -nodes -subj /CN=" + cn + " -keyout " + d + who +
        ".key -out " + d + who + ".csr");
    Run("openssl x509 -req -in " + d + who + ".csr -CA " + d + "ca.pem -CAkey " + d +
        "ca.key -CAcreateserial -days 2 -out " + d + who + ".pem" +
        (who == "server" ? " -extfile " + d + "san.cnf" : ""));
  }
}

// `histguard token`: the token and its token-file line.
std::pair<std::string, std::string> NewToken(const std::string& role, const std::string& name) {
  const std::string out =
      Run(std::string(HISTGUARD_CLI_PATH) + " token --role " + role + " --name " + name);
  std::istringstream in(out);
  std::string line, token, file_line;
  while (std::getline(in, line)) {
    if (line.rfind("token: ", 0) == 0) token = line.substr(7);
    if (line.rfind("token-file line: ", 0) == 0) file_line = line.substr(17);
  }
  return {token, file_line};
}

v1::Histogram Flat(const std::string& monitor, uint64_t ls) {
  v1::Histogram h;
  h.set_monitor(monitor);
  h.set_run(1);
  h.set_lumisection(ls);
  h.add_shape(10);
  for (int i = 0; i < 10; ++i) h.add_contents(100);
  return h;
}

class SecureDaemon : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/histguard-tls-XXXXXX";
    dir_ = new std::string(mkdtemp(tmpl));
    MakeCertificates(*dir_);
    std::ofstream tokens(*dir_ + "/tokens");
    for (auto [role, name] :
         {std::pair{"ingest", "daq"}, {"read", "grafana"}, {"operator", "alice"}}) {
      auto [token, line] = NewToken(role, name);
      (*tokens_)[role] = token;
      tokens << line << "\n";
    }
    tokens << "ingest cn:dqm-source\n";
    tokens.close();
    daemon_ = new DaemonProcess({"--tls-cert", *dir_ + "/server.pem", "--tls-key",
                                 *dir_ + "/server.key", "--tls-client-ca", *dir_ + "/ca.pem",
                                 "--token-file", *dir_ + "/tokens"});
  }
  static void TearDownTestSuite() {
    delete daemon_;
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }
  void SetUp() override { ASSERT_TRUE(daemon_->started()) << daemon_->error(); }

  static std::unique_ptr<Client> As(const std::string& role, bool client_cert = false) {
    ClientOptions o;
    o.tls_ca = *dir_ + "/ca.pem";
    o.tls_server_name = "localhost";
    if (!role.empty()) o.token = (*tokens_)[role];
    if (client_cert) {
      o.tls_cert = *dir_ + "/client.pem";
      o.tls_key = *dir_ + "/client.key";
    }
    return std::make_unique<Client>(daemon_->grpc_address(), o);
  }
  static grpc::Status List(Client& c) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    c.Authorize(&ctx);
    v1::ListMonitorsResponse resp;
    return c.control().ListMonitors(&ctx, v1::ListMonitorsRequest(), &resp);
  }
  static grpc::Status Label(Client& c, const std::string& author, const std::string& comment) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    c.Authorize(&ctx);
    v1::LabelRequest req;
    req.set_monitor("secure/h");
    req.set_run(1);
    req.set_lumisection(1);
    req.set_label(v1::QUALITY_BAD);
    req.set_author(author);
    req.set_comment(comment);
    v1::LabelResponse resp;
    return c.control().Label(&ctx, req, &resp);
  }
  static std::string Curl(const std::string& path, const std::string& token, int* code) {
    std::string out;
    const std::string header = token.empty() ? "" : " -H 'Authorization: Bearer " + token + "'";
    RunCommand("curl -s -o /dev/null -w '%{http_code}' --cacert " + *dir_ + "/ca.pem" + header +
                   " https://localhost:" +
                   daemon_->metrics_address().substr(daemon_->metrics_address().rfind(':') + 1) +
                   path,
               &out);
    *code = std::atoi(out.c_str());
    return out;
  }

  static std::string* dir_;
  static std::map<std::string, std::string>* tokens_;
  static DaemonProcess* daemon_;
};
std::string* SecureDaemon::dir_ = nullptr;
std::map<std::string, std::string>* SecureDaemon::tokens_ = new std::map<std::string, std::string>;
DaemonProcess* SecureDaemon::daemon_ = nullptr;

TEST_F(SecureDaemon, EachRoleMayDoItsOwnCallsOnly) {
  std::vector<v1::Verdict> out;
  EXPECT_EQ(As("")->Submit({Flat("secure/h", 1)}, &out).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(As("ingest")->Submit({Flat("secure/h", 1)}, &out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].quality(), v1::QUALITY_LEARNING);
  EXPECT_EQ(List(*As("ingest")).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(List(*As("read")).ok());
  EXPECT_TRUE(List(*As("operator")).ok());
  EXPECT_EQ(Label(*As("read"), "", "").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(As("read")->Submit({Flat("secure/h", 2)}, &out).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // A client certificate the token file names is an identity of its own.
  EXPECT_TRUE(As("", /*client_cert=*/true)->Submit({Flat("secure/h", 3)}, &out).ok());
  // Plaintext against the TLS port gets nowhere.
  Client plain(daemon_->grpc_address());
  EXPECT_FALSE(plain.Submit({Flat("secure/h", 4)}, &out, 5s).ok());
}

TEST_F(SecureDaemon, TheAuthorIsWhoAuthenticatedAndTheAuditLogSaysSo) {
  std::vector<v1::Verdict> out;
  ASSERT_TRUE(As("ingest")->Submit({Flat("secure/h", 1)}, &out).ok());
  ASSERT_TRUE(Label(*As("operator"), "mallory\nhistguardd: forged line", "beam test").ok());
  EXPECT_EQ(Label(*As("operator"), "", std::string(5 << 20, 'x')).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  std::ifstream audit(daemon_->data_dir() + "/audit.log");
  std::string line, last;
  int lines = 0;
  while (std::getline(audit, line)) {
    ++lines;
    EXPECT_EQ(line.rfind("{", 0), 0u) << "every line is one JSON record: " << line;
    if (line.find("\"action\":\"label\"") != std::string::npos) last = line;
  }
  EXPECT_GE(lines, 1);
  EXPECT_NE(last.find("\"identity\":\"alice\""), std::string::npos) << last;
  EXPECT_NE(last.find("\"comment\":\"beam test\""), std::string::npos) << last;
  EXPECT_EQ(last.find("mallory"), std::string::npos) << last;
}

TEST_F(SecureDaemon, MetricsNeedTheReadRoleOverHttps) {
  int code = 0;
  Curl("/metrics", "", &code);
  EXPECT_EQ(code, 401);
  Curl("/metrics", (*tokens_)["ingest"], &code);
  EXPECT_EQ(code, 403);
  Curl("/metrics", (*tokens_)["read"], &code);
  EXPECT_EQ(code, 200);
  Curl("/healthz", "", &code);
  EXPECT_EQ(code, 200) << "probes need no credentials";
}

TEST_F(SecureDaemon, TheCliTakesTheSameCredentials) {
  const std::string token_file = *dir_ + "/alice.token";
  std::ofstream(token_file) << (*tokens_)["operator"] << "\n";
  std::string out;
  const std::string cli = std::string(HISTGUARD_CLI_PATH) + " -a " + daemon_->grpc_address() +
                          " --tls-ca " + *dir_ + "/ca.pem --tls-server-name localhost";
  EXPECT_EQ(RunCommand(cli + " --token-file " + token_file + " monitors", &out), 0) << out;
  EXPECT_EQ(RunCommand(cli + " monitors", &out), 3) << out;
  EXPECT_NE(out.find("refused the call"), std::string::npos) << out;
  EXPECT_EQ(RunCommand("HISTGUARD_TOKEN=" + (*tokens_)["read"] + " " + cli + " monitors", &out), 0)
      << out;
}

// The console's JSON API: the same roles as the gRPC Control service, actions only as JSON.
TEST_F(SecureDaemon, TheConsoleApiKeepsTheRolesAndRefusesWhatItCannotRead) {
  std::vector<v1::Verdict> out;
  ASSERT_TRUE(As("ingest")->Submit({Flat("secure/h", 1)}, &out).ok());
  const std::string port =
      daemon_->metrics_address().substr(daemon_->metrics_address().rfind(':') + 1);
  // Answers "CODE BODY" for a request with curl.
  auto call = [&](const std::string& role, const std::string& path, const std::string& body = "",
                  const std::string& type = "application/json") {
    std::string result;
    std::string cmd = "curl -s -w ' %{http_code}' --cacert " + *dir_ + "/ca.pem";
    if (!role.empty()) cmd += " -H 'Authorization: Bearer " + (*tokens_)[role] + "'";
    if (!body.empty()) cmd += " -H 'Content-Type: " + type + "' --data-binary '" + body + "'";
    RunCommand(cmd + " 'https://localhost:" + port + path + "'", &result);
    const size_t space = result.rfind(' ');
    return std::make_pair(std::atoi(result.c_str() + space + 1), result.substr(0, space));
  };
  EXPECT_EQ(call("", "/api/v1/monitors").first, 401);
  EXPECT_EQ(call("ingest", "/api/v1/monitors").first, 403);
  auto [code, body] = call("read", "/api/v1/monitors?prefix=secure%2F");
  EXPECT_EQ(code, 200) << body;
  EXPECT_NE(body.find("\"monitor\":\"secure/h\""), std::string::npos) << body;
  std::tie(code, body) = call("read", "/api/v1/inspect?monitor=secure%2Fh&run=1&lumisection=1");
  EXPECT_EQ(code, 200) << body;
  EXPECT_NE(body.find("\"quality\":\"QUALITY_LEARNING\""), std::string::npos) << body;
  std::tie(code, body) = call("read", "/api/v1/inspect?monitor=secure%2Fh&run=1&lumisection=x");
  EXPECT_EQ(code, 400) << body;
  EXPECT_NE(body.find("lumisection 'x' is not a number"), std::string::npos) << body;
  EXPECT_EQ(call("read", "/api/v1/monitor?monitor=no%2Fsuch").first, 404);
  std::tie(code, body) = call("read", "/api/v1/history?monitor=secure%2Fh");
  EXPECT_EQ(code, 200) << body;
  EXPECT_NE(body.find("\"lumisection\":1"), std::string::npos) << body;
  // By time, as a Grafana point or an alert links: the lumisection received nearest then.
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::tie(code, body) =
      call("read", "/api/v1/history?monitor=secure%2Fh&at=" + std::to_string(now_ms));
  EXPECT_EQ(code, 200) << body;
  EXPECT_NE(body.find("\"at_lumisection\":1"), std::string::npos) << body;

  const std::string label =
      R"({"monitor":"secure/h","run":"1","lumisection":"1","label":"QUALITY_BAD","comment":"c"})";
  EXPECT_EQ(call("read", "/api/v1/label", label).first, 403);
  EXPECT_EQ(call("operator", "/api/v1/label", label, "text/plain").first, 415)
      << "a cross-site form cannot send JSON";
  std::tie(code, body) = call("operator", "/api/v1/label", "{\"monitor\": 7}");
  EXPECT_EQ(code, 400) << body;
  std::tie(code, body) = call("operator", "/api/v1/label", label);
  EXPECT_EQ(code, 200) << body;
  // The label is the gRPC API's too, by the identity that made it.
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  auto reader = As("read");
  reader->Authorize(&ctx);
  v1::InspectRequest req;
  req.set_monitor("secure/h");
  req.set_run(1);
  req.set_lumisection(1);
  v1::Inspection ins;
  ASSERT_TRUE(reader->control().Inspect(&ctx, req, &ins).ok());
  EXPECT_EQ(ins.label().label(), v1::QUALITY_BAD);
  EXPECT_EQ(ins.label().author(), "alice");
  EXPECT_EQ(call("read", "/api/v1/nothing").first, 404);
}

TEST_F(SecureDaemon, RunControlNeedsTheIngestRoleAndIsAudited) {
  v1::RunState state;
  EXPECT_EQ(As("read")->SetRunState(5, true, &state).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(As("ingest")->SetRunState(0, true, &state).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(As("ingest")->SetRunState(5, true, &state).ok());
  EXPECT_EQ(state.run(), 5u);
  EXPECT_TRUE(state.open());
  // The CLI, as run control would call it at the end of the run.
  const std::string token_file = *dir_ + "/daq.token";
  std::ofstream(token_file) << (*tokens_)["ingest"] << "\n";
  std::string out;
  EXPECT_EQ(RunCommand(std::string(HISTGUARD_CLI_PATH) + " -a " + daemon_->grpc_address() +
                           " --tls-ca " + *dir_ + "/ca.pem --tls-server-name localhost" +
                           " --token-file " + token_file + " run end 5",
                       &out),
            0)
      << out;
  EXPECT_NE(out.find("run 5 is ended"), std::string::npos) << out;
  std::ifstream audit(daemon_->data_dir() + "/audit.log");
  std::string line;
  bool ended = false;
  while (std::getline(audit, line))
    ended |= line.find("\"action\":\"run_end\"") != std::string::npos &&
             line.find("\"run\":5") != std::string::npos;
  EXPECT_TRUE(ended) << "no run_end record for run 5 in the audit log";
}

TEST_F(SecureDaemon, ARenewedHttpsCertificateIsServedWithoutARestart) {
  // A new CA and certificate written over the daemon's files.
  const std::string renew = *dir_ + "/renew";
  std::filesystem::create_directories(renew);
  MakeCertificates(renew);
  std::filesystem::copy_file(renew + "/server.pem", *dir_ + "/server.pem",
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(renew + "/server.key", *dir_ + "/server.key",
                             std::filesystem::copy_options::overwrite_existing);
  const std::string port =
      daemon_->metrics_address().substr(daemon_->metrics_address().rfind(':') + 1);
  std::string out;
  int code = -1;
  for (int i = 0; i < 30 && code != 0; ++i) {
    std::this_thread::sleep_for(200ms);
    code = RunCommand("curl -sf -o /dev/null --cacert " + renew +
                          "/ca.pem https://localhost:" + port + "/healthz",
                      &out);
  }
  EXPECT_EQ(code, 0) << "the renewed certificate is not served: " << out;
}

// Without TLS or tokens the daemon keeps to loopback: another address needs --insecure.
TEST(Security, AnOpenAddressWithoutSecurityIsRefused) {
  char tmpl[] = "/tmp/histguard-open-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  std::string out;
  const int code = RunCommand("timeout 60 " HISTGUARDD_PATH
                              " --listen 0.0.0.0:0 --metrics-listen "
                              "127.0.0.1:0 --data-dir " +
                                  dir,
                              &out);
  std::filesystem::remove_all(dir);
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("refusing to listen on 0.0.0.0:0 without TLS or a token file"),
            std::string::npos)
      << out;
}

}  // namespace
}  // namespace histguard::testing
