// client/formats.h: reads histogram files into plain C++ values.
//
// The CLI (`histguard send`) and the tests read histograms from JSON files in
// two forms:
//
//  * ROOT's TBufferJSON / JSROOT form, as written by `TBufferJSON::ToJSON` or
//    `TObject::SaveAs("h.json")`: an object with "_typename" TH1F/TH1D/TH1I/
//    TH1S/TH1C/TH1L or TH2F/TH2D/TH2I/TH2S/TH2C/TH2L. "fArray" holds fNcells
//    values including under- and overflow. It may be a plain JSON array or
//    TBufferJSON's compressed typed array ({"$arr":"Float32","len":N,...} with
//    "p"/"v"/"n" runs, or "b"/"o" base64 of little-endian values).
//    Profiles (TProfile*), TH3*, TH2Poly and other classes are rejected.
//  * A plain form:
//      {"monitor": "ecal/barrel/timing", "run": 1, "lumisection": 7,
//       "shape": [nx] or [nx, ny], "contents": [...],
//       "underflow": 0, "overflow": 0, "entries": 123, "title": "..."}
//    where "shape" and "contents" are required; the rest is optional.
//
// What the caller gets (HistogramFile):
//  * contents excludes under/overflow and is row-major over `shape`: bin
//    (ix, iy), 0-based, is at contents[ix * ny + iy]. For ROOT that is
//    (ix-1)*ny + (iy-1) with ROOT's 1-based bin numbers.
//  * 2D under/overflow (ROOT): underflow is the sum of all cells with ix == 0
//    or iy == 0 (including the corners); overflow is the sum of all other
//    cells outside the range (ix == nx+1 or iy == ny+1).
//  * entries: ROOT's fEntries; for the plain form "entries" if given, else the
//    sum of contents, underflow and overflow. Contents are taken as written
//    (negative values of weighted histograms are kept).
//  * monitor: the plain form's "monitor"; always empty for ROOT files, which
//    do not name a monitor. `object_name` holds ROOT's fName, which a caller
//    may use as the monitor name when the user gave none.
//
// Errors are values: every function returns either the HistogramFile or a
// message naming the problem, e.g. "fArray has 51 values, expected fNcells=52".
// Nothing throws. Files larger than kMaxHistogramFileBytes and histograms with
// more than kMaxHistogramCells cells are refused.
//
// Thread-safety: all functions are pure (no shared state) and safe to call
// concurrently.
//
// Example:
//   auto parsed = histguard::client::ReadHistogramFile("h.json");
//   if (auto* error = std::get_if<std::string>(&parsed)) { ...report... }
//   const auto& h = std::get<histguard::client::HistogramFile>(parsed);

#ifndef HISTGUARD_CLIENT_FORMATS_H_
#define HISTGUARD_CLIENT_FORMATS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace histguard::client {

inline constexpr std::size_t kMaxHistogramFileBytes = 64u << 20;  // 64 MiB
inline constexpr std::size_t kMaxHistogramCells = 1u << 24;       // incl. under/overflow

struct AxisInfo {
  double low = 0, high = 0;  // for variable bins: first and last edge
  std::string title;
  std::vector<double> edges;  // nbins + 1 variable bin edges; empty if uniform
};

struct HistogramFile {
  std::string monitor;  // empty if the file does not say
  uint64_t run = 0, lumisection = 0;
  bool has_run = false, has_lumisection = false;
  std::vector<uint32_t> shape;   // [nx] or [nx, ny]
  std::vector<double> contents;  // row-major, index ix*ny+iy (0-based), no under/overflow
  double underflow = 0, overflow = 0, entries = 0;
  AxisInfo x_axis, y_axis;  // y_axis is left empty for 1D
  std::string title;        // ROOT fTitle (before the first ';') or fName, for display
  std::string object_name;  // ROOT fName; empty for the plain form
};

// Either the parsed histogram or a message saying what is wrong.
using HistogramFileOrError = std::variant<HistogramFile, std::string>;

// Parses one JSON document in either form described above.
[[nodiscard]] HistogramFileOrError ParseHistogramJson(std::string_view text);

// Reads and parses the file at `path`; error messages start with the path.
[[nodiscard]] HistogramFileOrError ReadHistogramFile(const std::string& path);

}  // namespace histguard::client

#endif  // HISTGUARD_CLIENT_FORMATS_H_
