#include "tests/e2e/daemon_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace histguard::testing {
namespace {

std::string JsonField(const std::string& line, const std::string& key) {
  const std::string k = "\"" + key + "\":\"";
  const auto a = line.find(k);
  if (a == std::string::npos) return "";
  const auto b = line.find('"', a + k.size());
  return line.substr(a + k.size(), b - a - k.size());
}

std::string Loopback(const std::string& address) {
  return "127.0.0.1:" + address.substr(address.rfind(':') + 1);
}

}  // namespace

DaemonProcess::DaemonProcess(std::vector<std::string> extra_args, std::string data_dir)
    : data_dir_(std::move(data_dir)) {
  if (data_dir_.empty()) {
    char tmpl[] = "/tmp/histguard-e2e-XXXXXX";
    data_dir_ = mkdtemp(tmpl);
    own_data_dir_ = true;
  }
  char log_tmpl[] = "/tmp/histguard-e2e-log-XXXXXX";
  const int log_fd = mkstemp(log_tmpl);
  if (log_fd < 0) {
    error_ = "no log file";
    return;
  }
  log_path_ = log_tmpl;
  int out[2];
  if (pipe(out) != 0) {
    close(log_fd);
    error_ = "pipe failed";
    return;
  }
  std::vector<std::string> args = {HISTGUARDD_PATH, "--listen",   "127.0.0.1:0", "--metrics-listen",
                                   "127.0.0.1:0",   "--data-dir", data_dir_};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  pid_ = fork();
  if (pid_ == 0) {
    dup2(out[1], STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    close(out[0]);
    close(out[1]);
    close(log_fd);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  close(log_fd);
  // Read the first line, bounded in time (loading LibTorch takes a moment).
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{out[0], POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    char buf[512];
    const ssize_t n = read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  // Keep draining stdout in the background so the daemon never blocks on a full pipe.
  if (fork() == 0) {
    char buf[4096];
    while (read(out[0], buf, sizeof buf) > 0) {
    }
    _exit(0);
  }
  close(out[0]);
  if (line.find("\"event\":\"listening\"") == std::string::npos) {
    error_ = "no listening line from histguardd, got: " + line + "; its log:\n" + log();
    return;
  }
  grpc_address_ = Loopback(JsonField(line, "grpc"));
  metrics_address_ = Loopback(JsonField(line, "metrics"));
}

DaemonProcess::~DaemonProcess() {
  if (pid_ > 0) Stop(SIGKILL);
  std::error_code ec;
  if (!log_path_.empty()) {
    // A daemon shared by a suite ends after its tests: then any failure in the suite counts.
    const auto* suite = ::testing::UnitTest::GetInstance()->current_test_suite();
    if (::testing::Test::HasFailure() || (suite && suite->failed_test_count() > 0)) {
      std::fprintf(stderr, "---- histguardd's log ----\n%s---- end of histguardd's log ----\n",
                   log().c_str());
    }
    // HISTGUARD_E2E_KEEP_LOGS=1 keeps every daemon's log, to read what a passing run did.
    if (const char* keep = std::getenv("HISTGUARD_E2E_KEEP_LOGS"); keep && *keep == '1')
      std::fprintf(stderr, "histguardd's log kept: %s\n", log_path_.c_str());
    else
      std::filesystem::remove(log_path_, ec);
  }
  if (own_data_dir_) std::filesystem::remove_all(data_dir_, ec);
}

std::string DaemonProcess::log() const {
  std::ifstream in(log_path_);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

int DaemonProcess::Stop(int signal) {
  if (pid_ <= 0) return -1;
  kill(pid_, signal);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

int RunCommand(const std::string& command, std::string* output) {
  FILE* f = popen((command + " 2>&1").c_str(), "r");
  if (!f) return -1;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), f)) > 0) output->append(buf.data(), n);
  const int status = pclose(f);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string HttpGet(const std::string& host_port, const std::string& path, int* status) {
  *status = 0;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port =
      htons(static_cast<uint16_t>(std::stoi(host_port.substr(host_port.rfind(':') + 1))));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return "";
  }
  const std::string req =
      "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return "";
  }
  std::string resp;
  char buf[8192];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) resp.append(buf, static_cast<size_t>(n));
  close(fd);
  if (resp.size() > 12) *status = std::atoi(resp.substr(9, 3).c_str());
  const auto body = resp.find("\r\n\r\n");
  return body == std::string::npos ? "" : resp.substr(body + 4);
}

}  // namespace histguard::testing
