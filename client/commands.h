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
// Names a histogram's bins as ROOT users count them: from 1, and "(ix,iy)" in 2D, from the API's
// 0-based flat index (ix * ny + iy); with the bin's axis range where the axes are known.
struct BinNames {
  std::vector<uint32_t> shape;  // empty: unknown, the flat index + 1 is shown
  client::AxisInfo x, y;        // low == high: no range
  static BinNames Of(const v1::Histogram& h);
  static BinNames Of(const client::HistogramFile& f);  // keeps variable bin edges
  std::string Bin(uint32_t flat) const;                // "20", "(5,3)"
  std::string Range(uint32_t flat) const;  // "[1.9,2)", "[0.4,0.5) x [1,1.5)"; "" when unknown
};
// One line: monitor, run, lumisection, quality, score, p-value, model, the deviating bins.
std::string FormatVerdict(const v1::Verdict& v, const BinNames& bins);
bool StderrIsTerminal();

}  // namespace histguard::cli
