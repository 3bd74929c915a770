// The `histguard` command-line tool's commands. Each Add*Command registers a CLI11 subcommand
// whose callback runs the command and stores its exit code in `exit_code`.
//
// Exit codes: 0 success; 1 some input failed (malformed file, rejected histogram) or the daemon
// said no (unknown monitor, no such model version, retrain candidate rejected); 2 usage;
// 3 the daemon could not be reached or refused the call.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "client/client.h"
#include "client/formats.h"
#include "histguard/v1/histguard.pb.h"

namespace histguard::cli {

void AddSendCommand(CLI::App& app, const std::string& address, int& exit_code);
void AddSimulateCommand(CLI::App& app, const std::string& address, int& exit_code);
void AddHealthCommand(CLI::App& app, const std::string& address, int& exit_code);
// Operator commands on the Control service: monitors, monitor, inspect, label, retrain, rollback.
void AddControlCommands(CLI::App& app, const std::string& address, int& exit_code);
// histguard token: makes a bearer token and prints the daemon's token-file line for it.
void AddTokenCommand(CLI::App& app, int& exit_code);

// How commands connect: TLS and the token, from the global options (--tls-ca, --tls-cert,
// --tls-key, --tls-server-name, --token-file; HISTGUARD_TOKEN). Set once by main.
struct ConnectionFlags {
  ClientOptions options;
  std::string token_file;
};
ConnectionFlags& Connection();
// The options with the token read; throws std::runtime_error when a file cannot be read.
const ClientOptions& ConnectionOptions();

// Shared helpers.
v1::Histogram ToProto(const client::HistogramFile& f);
std::string QualityName(v1::Quality q);  // "GOOD", "BAD", ...
std::string FormatVerdict(const v1::Verdict& v);  // one line
bool StderrIsTerminal();

}  // namespace histguard::cli
