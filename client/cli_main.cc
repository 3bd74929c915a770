// histguard: command-line client of the histguard daemon.
#include <cstdlib>
#include <iostream>

#include "client/commands.h"

int main(int argc, char** argv) {
  CLI::App app{
      "histguard: client of the histguard data-quality-monitoring daemon.\n"
      "Sends detector-monitoring histograms (ROOT TBufferJSON/JSROOT files or plain JSON), "
      "streams simulated ones, and checks the daemon's health. Operator commands list the "
      "monitors and their models, show why a lumisection got its verdict bin by bin, label "
      "lumisections GOOD or BAD, and retrain or roll back a monitor's model.",
      "histguard"};
  app.require_subcommand(1);
  app.fallthrough();  // --address may follow the command name
  std::string address = "localhost:50051";
  if (const char* env = std::getenv("HISTGUARD_ADDRESS")) address = env;
  app.add_option("-a,--address", address, "daemon gRPC address host:port (env HISTGUARD_ADDRESS)")
      ->capture_default_str();
  int exit_code = 0;
  histguard::cli::AddSendCommand(app, address, exit_code);
  histguard::cli::AddSimulateCommand(app, address, exit_code);
  histguard::cli::AddHealthCommand(app, address, exit_code);
  histguard::cli::AddControlCommands(app, address, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    for (auto* sub : app.get_subcommands()) std::cout << sub->help();
    return 0;
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return exit_code;
}
