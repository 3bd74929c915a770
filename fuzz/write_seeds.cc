// Writes the fuzz targets' binary seeds from the current formats, so the seeds can be made again
// when a format changes: serialised histograms (histogram_scoring), stored records and meta
// records (store_record) and model files (model_file). The text seeds (JSON, YAML) are kept by
// hand. Usage: fuzz_write_seeds CORPUS_DIR (fuzz/corpus); existing seeds of the same name are
// replaced, others are left alone.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "fuzz/fuzz_models.h"
#include "histguard/v1/histguard.pb.h"
#include "models/serialize.h"
#include "server/convert.h"
#include "server/model_files.h"
#include "server/store.h"

namespace {

namespace fs = std::filesystem;

void Write(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
  std::printf("%s (%zu bytes)\n", path.c_str(), bytes.size());
}

histguard::v1::Histogram Histogram(const std::string& monitor, std::vector<uint32_t> shape,
                                   double mean, uint32_t seed) {
  std::mt19937 rng(seed);
  histguard::v1::Histogram h;
  h.set_monitor(monitor);
  h.set_run(356000 + seed);
  h.set_lumisection(12 + seed);
  size_t n = 1;
  for (uint32_t s : shape) {
    h.add_shape(s);
    n *= s;
  }
  for (size_t i = 0; i < n; ++i)
    h.add_contents(mean > 0 ? std::poisson_distribution<int>(mean * (1 + i % 5))(rng) : 0);
  h.mutable_x_axis()->set_low(0);
  h.mutable_x_axis()->set_high(shape[0]);
  h.mutable_x_axis()->set_title("channel");
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const fs::path corpus(argv[1]);
  const std::vector<histguard::v1::Histogram> histograms = {
      Histogram("fuzz/spectrum", {64}, 40, 1), Histogram("fuzz/map", {8, 8}, 30, 2),
      Histogram("fuzz/tiny", {2}, 1000, 3), Histogram("fuzz/spectrum", {64}, 0, 4),
      Histogram("fuzz/spectrum", {64}, 1e5, 5)};
  for (size_t i = 0; i < histograms.size(); ++i) {
    Write(corpus / "histogram_scoring" / ("seed-" + std::to_string(i) + ".pb"),
          histograms[i].SerializeAsString());
    histguard::v1::Verdict v;
    v.set_quality(i % 2 ? histguard::v1::QUALITY_BAD : histguard::v1::QUALITY_GOOD);
    v.set_p_value(i % 2 ? 1e-9 : 0.4);
    v.set_model_version(1);
    auto* pull = v.add_top_bins();
    pull->set_bin(3);
    pull->set_pull(-7.5);
    Write(corpus / "store_record" / ("record-" + std::to_string(i) + ".bin"),
          histguard::server::EncodeRecord(histguard::server::FromProto(histograms[i]),
                                          *histguard::server::FromProto(v)));
    histguard::v1::Inspection legacy;
    *legacy.mutable_histogram() = histograms[i];
    *legacy.mutable_verdict() = v;
    Write(corpus / "store_record" / ("legacy-record-" + std::to_string(i) + ".bin"),
          legacy.SerializeAsString());
  }
  histguard::v1::LabelRequest label;
  label.set_monitor("fuzz/spectrum");
  label.set_run(356001);
  label.set_lumisection(13);
  label.set_label(histguard::v1::QUALITY_BAD);
  label.set_comment("HV trip in sector 3");
  Write(corpus / "store_record" / "legacy-label.bin", label.SerializeAsString());
  Write(corpus / "store_record" / "label.bin",
        histguard::server::EncodeLabel(*histguard::server::FromProto(label)));
  Write(corpus / "store_record" / "meta.json",
        R"({"shape":[64],"active_version":2,"trained_versions":2,"versions":[)"
        R"({"version":1,"created_unix_ms":1764000000000,"sample_count":500,"training_loss":0.8,)"
        R"("holdout_loss":0.9,"reason":"first model","window":{"first_run":356000,)"
        R"("first_lumisection":1,"last_run":356000,"last_lumisection":500}},)"
        R"({"version":2,"reason":"drift"}]})");

  const fs::path tmp = fs::temp_directory_path() / ("histguard-seeds-" + std::to_string(getpid()));
  const histguard::server::ModelFiles files(tmp.string());
  const std::pair<const char*, std::vector<uint32_t>> models[] = {{"fuzz/spectrum", {64}},
                                                                  {"fuzz/map", {8, 8}}};
  for (const auto& [monitor, shape] : models) {
    const auto model = histguard::fuzz::MakeModel(shape, 7);
    if (const absl::Status s = files.Save(monitor, model, R"({"version":1})"); !s.ok()) {
      std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
      return 1;
    }
    std::ifstream in(files.Directory(monitor) + "/v1.model", std::ios::binary);
    const std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string name = std::string(monitor).substr(5);  // without "fuzz/"
    Write(corpus / "model_file" / (name + ".model"), file);
    // A file from before the header: the serialised model alone.
    Write(corpus / "model_file" / (name + "-legacy.model"),
          histguard::models::SerializeModel(model));
  }
  fs::remove_all(tmp);
  return 0;
}
