// histguard token: a new bearer token and the line that gives it a role in the daemon's token
// file. The daemon stores only the token's SHA-256; the token itself is shown once.
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <iostream>

#include "client/commands.h"

namespace histguard::cli {
namespace {

std::string Hex(const unsigned char* bytes, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += digits[bytes[i] >> 4];
    out += digits[bytes[i] & 15];
  }
  return out;
}

}  // namespace

void AddTokenCommand(CLI::App& app, int& exit_code) {
  auto role = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand(
      "token",
      "Make a new bearer token for a daemon with a token file. Prints the token (give it to the "
      "client: --token-file or HISTGUARD_TOKEN) and the line to add to the daemon's token file, "
      "which holds only its SHA-256. Roles: ingest (send histograms), read (monitors, inspect, "
      "metrics), operator (read, and label, retrain, rollback, forget).");
  cmd->add_option("--role", *role, "ingest, read or operator")
      ->required()
      ->check(CLI::IsMember({"ingest", "read", "operator"}));
  cmd->add_option("--name", *name, "who or what uses it; names the caller in the audit log")
      ->required()
      ->check([](const std::string& s) {
        return s.find_first_of(" \t\r\n#") == std::string::npos ? std::string()
                                                                : "no spaces or '#' in a name";
      });
  cmd->callback([role, name, &exit_code] {
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof raw) != 1) {
      std::cerr << "histguard token: no randomness available\n";
      exit_code = 1;
      return;
    }
    const std::string token = Hex(raw, sizeof raw);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(token.data(), token.size(), digest, &len, EVP_sha256(), nullptr);
    std::cout << "token: " << token << "\n"
              << "token-file line: " << *role << " sha256:" << Hex(digest, len) << " " << *name
              << "\n";
    exit_code = 0;
  });
}

}  // namespace histguard::cli
