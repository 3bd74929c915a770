// histguard: command-line client of the histguard daemon.
#include <cstdlib>
#include <iostream>

#include "client/commands.h"
#include "histguard/version.h"

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
  auto& connection = histguard::cli::Connection();
  app.add_option("--tls-ca", connection.options.tls_ca,
                 "PEM CA that signed the daemon's certificate: connect with TLS");
  app.add_flag("--tls", connection.options.tls,
               "connect with TLS, verifying the daemon with the system's CAs");
  app.add_option("--tls-cert", connection.options.tls_cert, "PEM client certificate (mTLS)");
  app.add_option("--tls-key", connection.options.tls_key, "PEM key of --tls-cert");
  app.add_option("--tls-server-name", connection.options.tls_server_name,
                 "name to expect in the daemon's certificate when it is not the address's host");
  app.add_option("--token-file", connection.token_file,
                 "file holding the bearer token (default: env HISTGUARD_TOKEN)");
  app.set_version_flag("--version", "histguard " HISTGUARD_VERSION);
  int exit_code = 0;
  histguard::cli::AddSendCommand(app, address, exit_code);
  histguard::cli::AddSimulateCommand(app, address, exit_code);
  histguard::cli::AddHealthCommand(app, address, exit_code);
  histguard::cli::AddControlCommands(app, address, exit_code);
  histguard::cli::AddTokenCommand(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Help and version print once, for the command asked about; usage errors exit 2.
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const std::runtime_error& e) {
    std::cerr << "histguard: " << e.what() << "\n";
    return 2;
  }
  return exit_code;
}
