// What the daemon does with a histogram from the network, short of the store: the protobuf
// message is parsed, validated (server/validation.h) and, when it is accepted, scored against a
// model of its binning (models/model.h). Validation must refuse what scoring cannot take, and
// scoring anything validation accepts must give a p-value in [0, 1] and finite pulls: a NaN
// p-value compares false against every threshold and would read as GOOD.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "fuzz/fuzz_models.h"
#include "histguard/v1/histguard.pb.h"
#include "models/model.h"
#include "models/stats.h"
#include "server/validation.h"

namespace {

namespace hm = histguard::models;

const hm::Model* ModelFor(const google::protobuf::RepeatedField<uint32_t>& shape) {
  static const hm::Model kSpectrum = histguard::fuzz::MakeModel({64}, 1);
  static const hm::Model kMap = histguard::fuzz::MakeModel({8, 8}, 2);
  static const hm::Model kTiny = histguard::fuzz::MakeModel({2}, 3);
  const std::vector<uint32_t> s(shape.begin(), shape.end());
  for (const hm::Model* m : {&kSpectrum, &kMap, &kTiny})
    if (m->shape == s) return m;
  return nullptr;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool kQuiet = [] {  // protobuf logs every invalid UTF-8 string it parses
    google::protobuf::SetLogHandler(nullptr);
    return true;
  }();
  (void)kQuiet;
  histguard::v1::Histogram h;
  if (!h.ParseFromArray(data, static_cast<int>(size))) return 0;
  (void)histguard::server::CheckMonitorName(h.monitor());
  if (histguard::server::Validate(h, 1u << 16)) return 0;  // refused, with a reason
  const hm::Model* model = ModelFor(h.shape());
  if (!model) return 0;
  const std::span<const double> counts(h.contents().data(), h.contents_size());
  if (!(hm::Sum(counts) > 0)) return 0;  // answered LOW_STATISTICS before any model
  hm::Scratch scratch;
  const hm::Score s = hm::ScoreHistogram(*model, counts, scratch);
  if (!(s.p_value >= 0 && s.p_value <= 1)) std::abort();
  for (const auto& pull : s.top_bins)
    if (!std::isfinite(pull.pull) || pull.bin >= counts.size()) std::abort();
  return 0;
}
