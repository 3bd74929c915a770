#include <iostream>

#include "client/client.h"
#include "client/commands.h"

namespace histguard::cli {

void AddHealthCommand(CLI::App& app, const std::string& address, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "health",
      "Ask the daemon's grpc.health.v1 service whether it is serving. Exit 0 when SERVING, 1 when "
      "not serving (starting or draining), 3 when unreachable.");
  auto timeout_s = std::make_shared<double>(3.0);
  cmd->add_option("--timeout", *timeout_s, "seconds to wait for an answer")->capture_default_str();
  cmd->callback([&address, &exit_code, timeout_s] {
    Client client(address, ConnectionOptions());
    std::string detail;
    const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(*timeout_s * 1000));
    switch (client.CheckHealth(timeout, &detail)) {
      case Client::Health::kServing:
        std::cout << "SERVING (" << address << ")\n";
        exit_code = 0;
        break;
      case Client::Health::kNotServing:
        std::cout << "NOT_SERVING (" << address << "): " << detail << "\n";
        exit_code = 1;
        break;
      case Client::Health::kUnreachable:
        std::cerr << "histguard health: cannot reach " << address << ": " << detail << "\n";
        exit_code = 3;
        break;
    }
  });
}

}  // namespace histguard::cli
