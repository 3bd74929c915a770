// The daemon's YAML configuration (server/config.h): any text gives a configuration or an error
// naming what is wrong, and a configuration that loads is then validated the way histguardd does.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "server/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  histguard::server::Config config;
  const absl::Status loaded = histguard::server::LoadYamlText(
      std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.yaml", config);
  if (!loaded.ok()) {
    if (loaded.message().empty()) std::abort();  // a refusal says why
    return 0;
  }
  (void)histguard::server::Validate(config);
  for (const auto& rule : config.thresholds)
    (void)histguard::server::ThresholdsFor(config, rule.match);
  return 0;
}
