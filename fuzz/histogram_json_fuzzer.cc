// The ROOT JSON and plain JSON histogram readers (client/formats.h), which `histguard send`
// runs on files from anywhere. Any bytes must give a histogram or an error message, and a
// histogram must be one the daemon could take: a shape that matches the contents, in bounds.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "client/formats.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using histguard::client::HistogramFile;
  const auto parsed = histguard::client::ParseHistogramJson(
      std::string_view(reinterpret_cast<const char*>(data), size));
  if (const auto* h = std::get_if<HistogramFile>(&parsed)) {
    size_t cells = 1;
    for (uint32_t n : h->shape) cells *= n;
    if (h->shape.empty() || h->shape.size() > 2 || cells != h->contents.size() ||
        cells > histguard::client::kMaxHistogramCells)
      std::abort();  // a parsed histogram whose shape does not describe its contents
  } else if (std::get<std::string>(parsed).empty()) {
    std::abort();  // an error must say what is wrong
  }
  return 0;
}
