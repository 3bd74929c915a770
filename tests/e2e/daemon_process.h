// Starts the real histguardd binary for end-to-end tests: port 0, a fresh temporary data
// directory, and the bound ports read from its machine-readable "listening" line. The daemon's
// log (stderr) goes to a file that is printed when the test has failed, after the failures.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace histguard::testing {

class DaemonProcess {
 public:
  // Starts histguardd with `extra_args`; waits (bounded) for the listening line. With an empty
  // `data_dir` a fresh temporary one is made (and removed afterwards); a given one is kept.
  explicit DaemonProcess(std::vector<std::string> extra_args = {}, std::string data_dir = "");
  ~DaemonProcess();

  bool started() const { return pid_ > 0 && !grpc_address_.empty(); }
  const std::string& grpc_address() const { return grpc_address_; }  // 127.0.0.1:PORT
  const std::string& metrics_address() const { return metrics_address_; }
  const std::string& data_dir() const { return data_dir_; }
  const std::string& error() const { return error_; }
  // What the daemon has logged so far.
  std::string log() const;

  // Sends `signal` and waits for the exit; returns the exit code (or 128 + signal).
  int Stop(int signal);

 private:
  pid_t pid_ = -1;
  std::string grpc_address_, metrics_address_, data_dir_, error_, log_path_;
  bool own_data_dir_ = false;
};

// Runs a command, returns its exit code; stdout and stderr go to `output`.
int RunCommand(const std::string& command, std::string* output);

// HTTP GET on loopback; returns the body, fills `status`.
std::string HttpGet(const std::string& host_port, const std::string& path, int* status);

}  // namespace histguard::testing
