#include "server/validation.h"

#include <cmath>
#include <cstdio>
#include <vector>

namespace histguard::server {
namespace {

bool NameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == ':' || c == '/' || c == '-';
}

std::string Printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > 64) out += "...";
  return out;
}
std::string Number(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.10g", v);
  return b;
}

}  // namespace

const std::vector<std::string>& RejectionReasons() {
  static const std::vector<std::string> r = {
      "bad_monitor_name", "empty_contents", "bad_shape",         "shape_mismatch",
      "bad_value",        "too_many_bins",  "binning_changed",   "too_many_monitors",
      "queue_full",       "scoring_error",  "malformed_message", "disk_full",
      "memory_budget",    "not_counts"};
  return r;
}

std::optional<Rejection> CheckMonitorName(std::string_view name) {
  if (name.empty()) return Rejection{"bad_monitor_name", "monitor name is empty"};
  if (name.size() > kMaxMonitorName)
    return Rejection{"bad_monitor_name", "monitor name is " + std::to_string(name.size()) +
                                             " characters long, at most " +
                                             std::to_string(kMaxMonitorName) + " allowed"};
  for (size_t i = 0; i < name.size(); ++i) {
    if (!NameChar(name[i]))
      return Rejection{"bad_monitor_name", "monitor name '" + Printable(name) +
                                               "' has a character not in "
                                               "[A-Za-z0-9_.:/-] at position " +
                                               std::to_string(i)};
  }
  return std::nullopt;
}

std::optional<Rejection> Validate(const v1::Histogram& h, uint32_t max_bins) {
  if (auto r = CheckMonitorName(h.monitor())) return r;
  const int dims = h.shape_size();
  if (h.contents_size() == 0) return Rejection{"empty_contents", "contents are empty"};
  if (dims != 1 && dims != 2)
    return Rejection{"bad_shape", "shape has " + std::to_string(dims) +
                                      " dimensions; expected [nx] or [nx, ny]"};
  uint64_t product = 1;
  for (int d = 0; d < dims; ++d) {
    if (h.shape(d) == 0) return Rejection{"bad_shape", "shape has a zero dimension"};
    product *= h.shape(d);
  }
  if (product > max_bins || static_cast<uint64_t>(h.contents_size()) > max_bins)
    return Rejection{"too_many_bins",
                     std::to_string(std::max<uint64_t>(product, h.contents_size())) +
                         " bins, more than max_bins " + std::to_string(max_bins)};
  if (product != static_cast<uint64_t>(h.contents_size()))
    return Rejection{"shape_mismatch", "shape product is " + std::to_string(product) +
                                           " but contents have " +
                                           std::to_string(h.contents_size()) + " values"};
  // The wire's index, and the bin as ROOT numbers it: from 1, (ix,iy) in 2D.
  auto bin = [&h, dims](int i) {
    const uint32_t ny = dims == 2 ? h.shape(1) : 1;
    const std::string root =
        dims == 2 ? "(" + std::to_string(i / ny + 1) + "," + std::to_string(i % ny + 1) + ")"
                  : std::to_string(i + 1);
    return "contents[" + std::to_string(i) + "] (ROOT bin " + root + ")";
  };
  double total = 0;
  for (int i = 0; i < h.contents_size(); ++i) {
    const double v = h.contents(i);
    if (std::isnan(v)) return Rejection{"bad_value", bin(i) + " is NaN"};
    if (std::isinf(v)) return Rejection{"bad_value", bin(i) + " is infinite"};
    if (v < 0) return Rejection{"bad_value", bin(i) + " is negative (" + Number(v) + ")"};
    // Scores are Poisson likelihoods of counts: a weighted, scaled or averaged histogram
    // (efficiencies, normalised plots) has no such noise, and its sum is no number of entries.
    if (v != std::floor(v))
      return Rejection{"not_counts",
                       bin(i) + " is " + Number(v) +
                           ", not a whole number: histguard scores counts of entries. Send the "
                           "unweighted histogram of fills (an efficiency as its numerator and "
                           "denominator, two monitors), not a weighted or normalised one"};
    total += v;
  }
  if (!std::isfinite(total)) return Rejection{"bad_value", "sum of contents overflows"};
  // Beyond 2^53 a double no longer holds every count, and the likelihood's arithmetic overflows.
  if (total > 9007199254740992.0)
    return Rejection{"bad_value", "sum of contents is " + std::to_string(total) +
                                      ", above 2^53 (9.0e15): not a count of entries"};
  for (double v : {h.underflow(), h.overflow(), h.entries()}) {
    if (!std::isfinite(v) || v < 0)
      return Rejection{"bad_value", "underflow, overflow and entries must be finite and >= 0"};
  }
  return std::nullopt;
}

}  // namespace histguard::server
