#include "server/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "models/axis_nuisances.h"

namespace histguard::server {
namespace {

struct Args {
  std::vector<std::string> words;
  std::vector<char*> argv;
  explicit Args(std::vector<std::string> w) : words(std::move(w)) {
    for (auto& s : words) argv.push_back(s.data());
  }
  ParseOutcome Parse() { return ParseConfig(static_cast<int>(argv.size()), argv.data()); }
};

std::string WriteTemp(const std::string& text) {
  auto path = std::filesystem::temp_directory_path() /
              ("histguard_cfg_" + std::to_string(::getpid()) + "_" +
               std::to_string(std::hash<std::string>{}(text)) + ".yaml");
  std::ofstream(path) << text;
  return path;
}

TEST(Config, DefaultsAreTheDocumentedOnes) {
  auto out = Args({"histguardd"}).Parse();
  ASSERT_TRUE(out.config) << out.exit_message;
  EXPECT_EQ(out.config->max_monitors, 10000u);
  EXPECT_EQ(out.config->max_bins, 65536u);
  EXPECT_EQ(out.config->min_train_samples, 100u);
  EXPECT_DOUBLE_EQ(out.config->bad_p, 1e-5);
  EXPECT_DOUBLE_EQ(out.config->warning_p, 1e-3);
  EXPECT_EQ(out.config->data_dir, "./var/histguard");
  EXPECT_EQ(out.config->listen, "127.0.0.1:50051") << "loopback unless secured or --insecure";
  EXPECT_EQ(out.config->metrics_listen, "127.0.0.1:9650");
  EXPECT_TRUE(out.config->sync_writes) << "an acknowledged histogram survives a power loss";
}

TEST(Config, YamlThenFlagsOverride) {
  const auto path = WriteTemp(
      "listen: 127.0.0.1:7000\nmax_bins: 1000\nbad_p: 1.0e-6\n"
      "thresholds:\n  - {match: \"pixel/*\", bad_p: 1.0e-7, warning_p: 1.0e-4}\n");
  auto out = Args({"histguardd", "--config", path, "--max-bins", "2000"}).Parse();
  ASSERT_TRUE(out.config) << out.exit_message;
  EXPECT_EQ(out.config->listen, "127.0.0.1:7000");
  EXPECT_EQ(out.config->max_bins, 2000u);
  EXPECT_DOUBLE_EQ(out.config->bad_p, 1e-6);
  EXPECT_DOUBLE_EQ(ThresholdsFor(*out.config, "pixel/barrel/occ").bad_p, 1e-7);
  EXPECT_DOUBLE_EQ(ThresholdsFor(*out.config, "ecal/timing").bad_p, 1e-6);
  std::filesystem::remove(path);
}

TEST(Config, UnknownYamlKeyIsNamed) {
  const auto path = WriteTemp("max_binz: 10\n");
  auto out = Args({"histguardd", "--config", path}).Parse();
  EXPECT_FALSE(out.config);
  EXPECT_EQ(out.exit_code, 2);
  EXPECT_NE(out.exit_message.find("unknown setting 'max_binz'"), std::string::npos);
  std::filesystem::remove(path);
}

// Found by fuzzing: a key that is a list, or a threshold entry that is not a mapping, threw
// out of LoadYaml and ended histguardd with an uncaught exception.
TEST(Config, YamlOfTheWrongStructureIsAClearError) {
  Config c;
  absl::Status e = LoadYamlText("[a]: 1\n", "x.yaml", c);
  EXPECT_TRUE(absl::IsInvalidArgument(e)) << e;
  EXPECT_NE(e.message().find("a setting's name must be a plain word"), std::string::npos) << e;
  e = LoadYamlText("thresholds:\n  - pixel/*\n", "x.yaml", c);
  EXPECT_TRUE(absl::IsInvalidArgument(e)) << e;
  EXPECT_NE(e.message().find("needs a 'match' pattern"), std::string::npos) << e;
  e = LoadYamlText("max_bins: [1, 2]\n", "x.yaml", c);
  EXPECT_TRUE(absl::IsInvalidArgument(e)) << e;
  EXPECT_NE(e.message().find("bad value for 'max_bins'"), std::string::npos) << e;
}

TEST(Config, BadValuesAndMissingFileAreClearErrors) {
  auto out = Args({"histguardd", "--bad-p", "0.1", "--warning-p", "0.01"}).Parse();
  EXPECT_FALSE(out.config);
  EXPECT_NE(out.exit_message.find("bad_p <= warning_p"), std::string::npos) << out.exit_message;
  out = Args({"histguardd", "--config", "/nonexistent/histguard.yaml"}).Parse();
  EXPECT_FALSE(out.config);
  EXPECT_NE(out.exit_message.find("cannot read"), std::string::npos);
  out = Args({"histguardd", "--drift-allowance", "0.5"}).Parse();
  EXPECT_FALSE(out.config);
  EXPECT_NE(out.exit_message.find("drift_allowance must be between 1 and 10"), std::string::npos)
      << out.exit_message;
  out = Args({"histguardd", "--drift-threshold", "0"}).Parse();
  EXPECT_FALSE(out.config);
  EXPECT_NE(out.exit_message.find("drift_threshold"), std::string::npos) << out.exit_message;
  out = Args({"histguardd", "--scoring-threads", "many"}).Parse();
  EXPECT_FALSE(out.config);
  EXPECT_EQ(out.exit_code, 2);
  out = Args({"histguardd", "--nuisances", "gain,offset"}).Parse();
  EXPECT_FALSE(out.config);
  EXPECT_NE(out.exit_message.find("nuisances 'gain,offset'"), std::string::npos)
      << out.exit_message;
}

TEST(Config, NuisancesAreChosenByNamePattern) {
  Config c;
  // The global setting after the rules, as a file may have it.
  const absl::Status loaded =
      LoadYamlText("thresholds:\n"
                   "  - {match: \"ecal/*/timing\", nuisances: \"shift, tilt\"}\n"
                   "  - {match: \"pixel/*\", nuisances: none}\n"
                   "  - {match: \"hcal/*\", warning_p: 1e-4}\n"
                   "nuisances: gain\n",
                   "x.yaml", c);
  ASSERT_TRUE(loaded.ok()) << loaded;
  ASSERT_TRUE(Validate(c).ok()) << Validate(c);
  EXPECT_EQ(ParseNuisances(ThresholdsFor(c, "ecal/barrel/timing").nuisances),
            models::kFitShift | models::kFitTilt);
  EXPECT_EQ(ParseNuisances(ThresholdsFor(c, "pixel/barrel/l1").nuisances), 0u);
  // A rule that says nothing of them, and a monitor no rule matches, take the global setting.
  EXPECT_EQ(ParseNuisances(ThresholdsFor(c, "hcal/endcap/energy").nuisances), models::kFitGain);
  EXPECT_EQ(ParseNuisances(ThresholdsFor(c, "muon/dt/occupancy").nuisances), models::kFitGain);
  EXPECT_EQ(ParseNuisances("auto"), models::kFitGain | models::kFitShift);
  for (const char* bad : {"", "scale", "none,gain", "gain;shift"})
    EXPECT_FALSE(ParseNuisances(bad));
  c.thresholds[1].nuisances = "wobble";
  const absl::Status e = Validate(c);
  EXPECT_TRUE(absl::IsInvalidArgument(e)) << e;
  EXPECT_NE(e.message().find("pixel/*"), std::string::npos) << e;
}

TEST(Config, SettingsThatDoNotWorkTogetherAreRefused) {
  // Each value is valid alone; together every full-size Submit would be refused by an idle daemon.
  auto out =
      Args({"histguardd", "--max-queue", "100", "--max-histograms-per-request", "500"}).Parse();
  EXPECT_FALSE(out.config);
  EXPECT_EQ(out.exit_code, 2);
  EXPECT_NE(out.exit_message.find("max_queue (100) is below max_histograms_per_request (500)"),
            std::string::npos)
      << out.exit_message;
  EXPECT_TRUE(Args({"histguardd", "--max-queue", "500", "--max-histograms-per-request", "500"})
                  .Parse()
                  .config);
}

TEST(Config, HelpListsEverySetting) {
  auto out = Args({"histguardd", "--help"}).Parse();
  EXPECT_FALSE(out.config);
  EXPECT_EQ(out.exit_code, 0);
  for (const char* flag : {"--listen", "--metrics-listen", "--data-dir", "--max-monitors",
                           "--max-bins", "--scoring-threads", "--bad-p", "--config"})
    EXPECT_NE(out.exit_message.find(flag), std::string::npos) << flag;
}

}  // namespace
}  // namespace histguard::server
