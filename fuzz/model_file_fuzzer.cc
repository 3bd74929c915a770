// Model files (server/model_files.h): a file from the data directory, damaged, truncated, of
// another monitor or binning, or made up, is refused with a reason or loads as a model whose
// layers fit the binning it claims, and scores a histogram of that binning.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "models/model.h"
#include "server/model_files.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // The seeds are version 1 of monitor "fuzz/spectrum" with 64 bins, and of "fuzz/map" with 8x8.
  struct Expected {
    const char* monitor;
    std::vector<uint32_t> shape;
  };
  static const Expected kExpected[] = {{"fuzz/spectrum", {64}}, {"fuzz/map", {8, 8}}};
  for (const auto& e : kExpected) {
    auto model = histguard::server::ModelFiles::Parse(bytes, e.monitor, 1, e.shape);
    if (!model.ok()) {
      if (model.status().message().empty()) std::abort();  // a refusal says why
      continue;
    }
    size_t n = 1;
    for (uint32_t s : e.shape) n *= s;
    if (model->bins() != n) std::abort();
    std::vector<double> counts(n);
    for (size_t i = 0; i < n; ++i) counts[i] = static_cast<double>(10 + i % 7);
    histguard::models::Scratch scratch;
    const auto score = histguard::models::ScoreHistogram(*model, counts, scratch);
    // A loaded model may be nonsense, but its p-value must not be: NaN would read as GOOD.
    if (!(score.p_value >= 0 && score.p_value <= 1)) std::abort();
  }
  return 0;
}
