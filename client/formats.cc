// client/formats.cc: see formats.h. The ROOT layout facts used here are those
// of TBufferJSON (fArray with under/overflow, global bin ix + (nx+2)*iy, the
// "$arr" compressed typed arrays of TBufferJSON::JsonWriteArrayCompress).

#include "client/formats.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

namespace histguard::client {
namespace {

using Json = nlohmann::json;

// Value-or-message, the local shape of every step below.
template <typename T>
using Or = std::variant<T, std::string>;

template <typename T>
const std::string* ErrorOf(const Or<T>& v) {
  return std::get_if<std::string>(&v);
}

std::string Quoted(std::string_view s) {
  std::string out = "\"";
  out.append(s);
  out += '"';
  return out;
}

std::string FormatNumber(double v) {
  Json j = v;
  return j.dump();
}

// A short rendering of a JSON value for error messages.
std::string Show(const Json& v) {
  if (v.is_number() || v.is_boolean() || v.is_null()) return v.dump();
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    if (s.size() > 40) {
      size_t cut = 40;
      while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // UTF-8
      s = s.substr(0, cut) + "...";
    }
    return Quoted(s);
  }
  return std::string("a JSON ") + v.type_name();
}

// The value of `v` if it is a finite number. Cheap: arrays of millions of
// values go through here, so messages are built only on failure.
std::optional<double> FiniteNumber(const Json& v) {
  if (!v.is_number()) return std::nullopt;
  const double d = v.get<double>();
  if (!std::isfinite(d)) return std::nullopt;
  return d;
}

std::string NotFiniteNumber(const Json& v, const std::string& what) {
  if (v.is_null()) {
    return what + " is null (ROOT writes NaN as null); values must be finite numbers";
  }
  if (!v.is_number()) return what + " is " + Show(v) + ", expected a number";
  return what + " is not a finite number";
}

Or<double> ToFiniteNumber(const Json& v, const std::string& what) {
  if (auto d = FiniteNumber(v)) return *d;
  return NotFiniteNumber(v, what);
}

std::string Indexed(const std::string& what, int64_t index) {
  return what + "[" + std::to_string(index) + "]";
}

Or<int64_t> ToInteger(const Json& v, const std::string& what) {
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) return what + " is " + v.dump() + ", too large";
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) {
      return static_cast<int64_t>(d);
    }
  }
  return what + " is " + Show(v) + ", expected an integer";
}

// ---- TBufferJSON compressed typed arrays ------------------------------------

struct ElementType {
  std::string_view name;
  int bytes;
  enum Kind { kSigned, kUnsigned, kFloat } kind;
};

constexpr std::array<ElementType, 11> kElementTypes = {{
    {"Float32", 4, ElementType::kFloat},
    {"Float64", 8, ElementType::kFloat},
    {"Int8", 1, ElementType::kSigned},
    {"Int16", 2, ElementType::kSigned},
    {"Int32", 4, ElementType::kSigned},
    {"Int64", 8, ElementType::kSigned},
    {"Uint8", 1, ElementType::kUnsigned},
    {"Uint16", 2, ElementType::kUnsigned},
    {"Uint32", 4, ElementType::kUnsigned},
    {"Uint64", 8, ElementType::kUnsigned},
    {"Bool", 1, ElementType::kUnsigned},
}};

std::optional<std::string> DecodeBase64(std::string_view in) {
  auto value_of = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = value_of(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  if (bits >= 6) return std::nullopt;  // a dangling single character
  return out;
}

// Reads element `index` of little-endian raw data.
double ElementAt(const std::string& raw, size_t index, const ElementType& type) {
  uint64_t bits = 0;
  const size_t base = index * static_cast<size_t>(type.bytes);
  for (int b = type.bytes - 1; b >= 0; --b) {
    bits = (bits << 8) | static_cast<unsigned char>(raw[base + static_cast<size_t>(b)]);
  }
  switch (type.kind) {
    case ElementType::kFloat:
      if (type.bytes == 4) return std::bit_cast<float>(static_cast<uint32_t>(bits));
      return std::bit_cast<double>(bits);
    case ElementType::kUnsigned:
      return static_cast<double>(bits);
    case ElementType::kSigned: {
      const int shift = 64 - 8 * type.bytes;
      // Sign-extend by shifting the value to the top and back.
      return static_cast<double>(static_cast<int64_t>(bits << shift) >> shift);
    }
  }
  return 0;
}

Or<std::vector<double>> ReadCompressedArray(const Json& v, const std::string& what,
                                            size_t max_len) {
  const Json& type_json = v["$arr"];
  if (!type_json.is_string())
    return what + ".$arr is " + Show(type_json) + ", expected a type name";
  const std::string type_name = type_json.get<std::string>();
  const ElementType* type = nullptr;
  for (const auto& t : kElementTypes) {
    if (t.name == type_name) type = &t;
  }
  if (type == nullptr) return what + " has unknown compressed array type " + Quoted(type_name);

  if (!v.contains("len")) return what + " is a compressed array without \"len\"";
  auto len_or = ToInteger(v["len"], what + ".len");
  if (auto* e = ErrorOf(len_or)) return *e;
  const int64_t len = std::get<int64_t>(len_or);
  if (len < 0) return what + ".len is " + std::to_string(len) + ", expected >= 0";
  if (static_cast<uint64_t>(len) > max_len) {
    return what + ".len is " + std::to_string(len) + ", more than the limit of " +
           std::to_string(max_len) + " values";
  }
  std::vector<double> out(static_cast<size_t>(len), 0.0);

  if (v.contains("b")) {  // base64 of the raw little-endian values from byte offset "o"
    if (!v["b"].is_string()) return what + ".b is " + Show(v["b"]) + ", expected a base64 string";
    auto raw = DecodeBase64(v["b"].get_ref<const std::string&>());
    if (!raw) return what + ".b is not valid base64";
    int64_t offset = 0;
    if (v.contains("o")) {
      auto o = ToInteger(v["o"], what + ".o");
      if (auto* e = ErrorOf(o)) return *e;
      offset = std::get<int64_t>(o);
    }
    const int64_t total_bytes = len * type->bytes;
    if (offset < 0 || offset % type->bytes != 0 ||
        offset + static_cast<int64_t>(raw->size()) > total_bytes ||
        raw->size() % static_cast<size_t>(type->bytes) != 0) {
      return what + ": base64 data of " + std::to_string(raw->size()) + " bytes at offset " +
             std::to_string(offset) + " does not fit " + std::to_string(len) + " " + type_name +
             " values";
    }
    const size_t first = static_cast<size_t>(offset / type->bytes);
    const size_t count = raw->size() / static_cast<size_t>(type->bytes);
    for (size_t i = 0; i < count; ++i) {
      double d = ElementAt(*raw, i, *type);
      if (!std::isfinite(d)) {
        return Indexed(what, static_cast<int64_t>(first + i)) + " is not a finite number";
      }
      out[first + i] = d;
    }
    return out;
  }

  // Runs: "p<k>" start index (default: where the previous run ended), "v<k>"
  // an array of values or one value repeated "n<k>" times (default 1); k is
  // "", "1", "2", ... and the runs end at the first missing "v<k>".
  int64_t p = 0;
  for (int id = 0;; ++id) {
    const std::string suffix = id == 0 ? "" : std::to_string(id);
    if (v.contains("p" + suffix)) {
      auto p_or = ToInteger(v["p" + suffix], what + ".p" + suffix);
      if (auto* e = ErrorOf(p_or)) return *e;
      p = std::get<int64_t>(p_or);
    }
    if (!v.contains("v" + suffix)) break;
    const Json& values = v["v" + suffix];
    int64_t count = 1;
    if (values.is_array()) {
      count = static_cast<int64_t>(values.size());
    } else if (v.contains("n" + suffix)) {
      auto n_or = ToInteger(v["n" + suffix], what + ".n" + suffix);
      if (auto* e = ErrorOf(n_or)) return *e;
      count = std::get<int64_t>(n_or);
    }
    if (p < 0 || count < 0 || p > len || count > len - p) {
      return what + ": compressed run " + Quoted("v" + suffix) + " writes values " +
             std::to_string(p) + ".." + std::to_string(p + count - 1) +
             " outside len=" + std::to_string(len);
    }
    if (values.is_array()) {
      for (int64_t i = 0; i < count; ++i) {
        const Json& value = values[static_cast<size_t>(i)];
        auto d = FiniteNumber(value);
        if (!d) return NotFiniteNumber(value, Indexed(what, p + i));
        out[static_cast<size_t>(p + i)] = *d;
      }
    } else {
      auto d = FiniteNumber(values);
      if (!d) return NotFiniteNumber(values, Indexed(what, p));
      std::fill_n(out.begin() + p, count, *d);
    }
    p += count;
  }
  return out;
}

// A plain JSON array of numbers or a TBufferJSON compressed array.
Or<std::vector<double>> ReadNumberArray(const Json& v, const std::string& what, size_t max_len) {
  if (v.is_object() && v.contains("$arr")) return ReadCompressedArray(v, what, max_len);
  if (!v.is_array()) return what + " is " + Show(v) + ", expected an array of numbers";
  if (v.size() > max_len) {
    return what + " has " + std::to_string(v.size()) + " values, more than the limit of " +
           std::to_string(max_len);
  }
  std::vector<double> out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    auto d = FiniteNumber(v[i]);
    if (!d) return NotFiniteNumber(v[i], Indexed(what, static_cast<int64_t>(i)));
    out.push_back(*d);
  }
  return out;
}

std::optional<std::string> OptionalString(const Json& doc, const char* key) {
  auto it = doc.find(key);
  if (it == doc.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

// ---- ROOT ------------------------------------------------------------------

struct RootAxis {
  uint32_t nbins = 0;
  AxisInfo info;
};

Or<RootAxis> ParseRootAxis(const Json& doc, const std::string& key) {
  auto it = doc.find(key);
  if (it == doc.end()) return "missing " + Quoted(key);
  const Json& axis = *it;
  if (!axis.is_object()) return key + " is " + Show(axis) + ", expected an axis object";
  RootAxis out;
  if (!axis.contains("fNbins")) return "missing " + key + ".fNbins";
  auto nbins = ToInteger(axis["fNbins"], key + ".fNbins");
  if (auto* e = ErrorOf(nbins)) return *e;
  const int64_t n = std::get<int64_t>(nbins);
  if (n < 1 || static_cast<uint64_t>(n) > kMaxHistogramCells) {
    return key + ".fNbins is " + std::to_string(n) + ", expected 1.." +
           std::to_string(kMaxHistogramCells);
  }
  out.nbins = static_cast<uint32_t>(n);
  for (auto [bound, value] :
       {std::pair{"fXmin", &out.info.low}, std::pair{"fXmax", &out.info.high}}) {
    if (!axis.contains(bound)) return "missing " + key + "." + bound;
    auto d = ToFiniteNumber(axis[bound], key + "." + bound);
    if (auto* e = ErrorOf(d)) return *e;
    *value = std::get<double>(d);
  }
  if (auto bins = axis.find("fXbins"); bins != axis.end() && !bins->is_null()) {
    auto edges = ReadNumberArray(*bins, key + ".fXbins", kMaxHistogramCells + 1);
    if (auto* e = ErrorOf(edges)) return *e;
    auto& values = std::get<std::vector<double>>(edges);
    if (!values.empty()) {
      if (values.size() != out.nbins + size_t{1}) {
        return key + ".fXbins has " + std::to_string(values.size()) +
               " edges, expected fNbins+1=" + std::to_string(out.nbins + 1);
      }
      for (size_t i = 1; i < values.size(); ++i) {
        if (!(values[i] > values[i - 1])) {
          return key + ".fXbins is not increasing at index " + std::to_string(i) + " (" +
                 FormatNumber(values[i - 1]) + " then " + FormatNumber(values[i]) + ")";
        }
      }
      out.info.low = values.front();
      out.info.high = values.back();
      out.info.edges = std::move(values);
    }
  }
  out.info.title = OptionalString(axis, "fTitle").value_or("");
  return out;
}

// Splits ROOT's "title;x title;y title" convention.
std::vector<std::string> SplitTitle(const std::string& title) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t end = title.find(';', start);
    parts.push_back(title.substr(start, end == std::string::npos ? end : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return parts;
}

// 1 or 2 for the supported classes; otherwise a message saying why not.
Or<int> RootDimension(const std::string& type) {
  if (type.rfind("TProfile", 0) == 0) {
    return "_typename " + Quoted(type) +
           " is a profile (a mean per bin), not a histogram of counts; not supported";
  }
  if (type.rfind("TH3", 0) == 0) {
    return "_typename " + Quoted(type) + " is a 3D histogram; only TH1 and TH2 are supported";
  }
  const bool storage_ok =
      type.size() == 4 && std::string_view("FDISCL").find(type[3]) != std::string_view::npos;
  if (storage_ok && type.rfind("TH1", 0) == 0) return 1;
  if (storage_ok && type.rfind("TH2", 0) == 0) return 2;
  return "unsupported _typename " + Quoted(type) +
         ": expected a TH1 or TH2 class (TH1F, TH1D, TH1I, TH1S, TH1C, TH2F, TH2D, ...)";
}

Or<HistogramFile> ParseRoot(const Json& doc) {
  const Json& type_json = doc["_typename"];
  if (!type_json.is_string()) return "_typename is " + Show(type_json) + ", expected a class name";
  auto dim_or = RootDimension(type_json.get<std::string>());
  if (auto* e = ErrorOf(dim_or)) return *e;
  const int dims = std::get<int>(dim_or);

  HistogramFile h;
  auto x = ParseRootAxis(doc, "fXaxis");
  if (auto* e = ErrorOf(x)) return *e;
  RootAxis y;
  y.nbins = 1;
  if (dims == 2) {
    auto y_or = ParseRootAxis(doc, "fYaxis");
    if (auto* e = ErrorOf(y_or)) return *e;
    y = std::move(std::get<RootAxis>(y_or));
  }
  const uint32_t nx = std::get<RootAxis>(x).nbins;
  const uint32_t ny = y.nbins;
  const uint64_t nx2 = uint64_t{nx} + 2;
  const uint64_t ny2 = dims == 2 ? uint64_t{ny} + 2 : 1;
  const uint64_t cells = nx2 * ny2;  // each factor <= 2^24 + 2: no overflow
  if (cells > kMaxHistogramCells) {
    return "histogram has " + std::to_string(cells) + " cells, more than the limit of " +
           std::to_string(kMaxHistogramCells);
  }

  if (!doc.contains("fNcells")) return "missing \"fNcells\"";
  auto ncells_or = ToInteger(doc["fNcells"], "fNcells");
  if (auto* e = ErrorOf(ncells_or)) return *e;
  const int64_t ncells = std::get<int64_t>(ncells_or);
  if (ncells < 0 || static_cast<uint64_t>(ncells) != cells) {
    return "fNcells=" + std::to_string(ncells) + " does not match the axes: expected " +
           (dims == 2 ? "(fXaxis.fNbins+2)*(fYaxis.fNbins+2)=" : "fXaxis.fNbins+2=") +
           std::to_string(cells);
  }

  if (!doc.contains("fArray")) return "missing \"fArray\"";
  auto array_or = ReadNumberArray(doc["fArray"], "fArray", kMaxHistogramCells);
  if (auto* e = ErrorOf(array_or)) return *e;
  const auto& array = std::get<std::vector<double>>(array_or);
  if (array.size() != cells) {
    return "fArray has " + std::to_string(array.size()) +
           " values, expected fNcells=" + std::to_string(cells);
  }

  double all_cells = 0;
  if (dims == 1) {
    h.shape = {nx};
    h.contents.assign(array.begin() + 1, array.begin() + 1 + nx);
    h.underflow = array.front();
    h.overflow = array.back();
  } else {
    h.shape = {nx, ny};
    h.contents.resize(size_t{nx} * ny);
    for (uint64_t iy = 0; iy < ny2; ++iy) {
      for (uint64_t ix = 0; ix < nx2; ++ix) {
        const double v = array[ix + nx2 * iy];
        if (ix == 0 || iy == 0) {
          h.underflow += v;
        } else if (ix == nx + 1 || iy == ny + 1) {
          h.overflow += v;
        } else {
          h.contents[(ix - 1) * ny + (iy - 1)] = v;
        }
      }
    }
  }
  for (double v : array) all_cells += v;

  h.entries = all_cells;
  if (auto it = doc.find("fEntries"); it != doc.end()) {
    auto entries = ToFiniteNumber(*it, "fEntries");
    if (auto* e = ErrorOf(entries)) return *e;
    h.entries = std::get<double>(entries);
  }

  h.object_name = OptionalString(doc, "fName").value_or("");
  const std::vector<std::string> title_parts =
      SplitTitle(OptionalString(doc, "fTitle").value_or(""));
  h.title = title_parts[0].empty() ? h.object_name : title_parts[0];
  h.x_axis = std::move(std::get<RootAxis>(x).info);
  if (h.x_axis.title.empty() && title_parts.size() > 1) h.x_axis.title = title_parts[1];
  if (dims == 2) {
    h.y_axis = std::move(y.info);
    if (h.y_axis.title.empty() && title_parts.size() > 2) h.y_axis.title = title_parts[2];
  }
  return h;
}

// ---- plain form ------------------------------------------------------------

Or<HistogramFile> ParsePlain(const Json& doc) {
  HistogramFile h;
  auto shape_it = doc.find("shape");
  if (shape_it == doc.end()) return "missing \"shape\" (e.g. \"shape\": [100])";
  if (!shape_it->is_array()) return "shape is " + Show(*shape_it) + ", expected an array";
  if (shape_it->empty() || shape_it->size() > 2) {
    return "shape has " + std::to_string(shape_it->size()) +
           " dimensions, expected 1 ([nx]) or 2 ([nx, ny])";
  }
  uint64_t cells = 1;
  for (size_t i = 0; i < shape_it->size(); ++i) {
    const std::string what = "shape[" + std::to_string(i) + "]";
    auto n_or = ToInteger((*shape_it)[i], what);
    if (auto* e = ErrorOf(n_or)) return *e;
    const int64_t n = std::get<int64_t>(n_or);
    if (n < 1) return what + " is " + std::to_string(n) + ", expected a positive integer";
    if (static_cast<uint64_t>(n) > kMaxHistogramCells ||
        (cells *= static_cast<uint64_t>(n)) > kMaxHistogramCells) {
      return "shape has more than the limit of " + std::to_string(kMaxHistogramCells) + " bins";
    }
    h.shape.push_back(static_cast<uint32_t>(n));
  }

  auto contents_it = doc.find("contents");
  if (contents_it == doc.end()) return "missing \"contents\"";
  auto contents = ReadNumberArray(*contents_it, "contents", kMaxHistogramCells);
  if (auto* e = ErrorOf(contents)) return *e;
  h.contents = std::move(std::get<std::vector<double>>(contents));
  if (h.contents.size() != cells) {
    std::string shape_text = "[";
    for (size_t i = 0; i < h.shape.size(); ++i) {
      shape_text += (i ? ", " : "") + std::to_string(h.shape[i]);
    }
    shape_text += "]";
    return "contents has " + std::to_string(h.contents.size()) + " values, but shape " +
           shape_text + " needs " + std::to_string(cells);
  }

  if (auto it = doc.find("monitor"); it != doc.end() && !it->is_null()) {
    if (!it->is_string()) return "monitor is " + Show(*it) + ", expected a string";
    h.monitor = it->get<std::string>();
  }
  for (auto [key, value, has] : {std::tuple{"run", &h.run, &h.has_run},
                                 std::tuple{"lumisection", &h.lumisection, &h.has_lumisection}}) {
    auto it = doc.find(key);
    if (it == doc.end() || it->is_null()) continue;
    auto n_or = ToInteger(*it, key);
    if (auto* e = ErrorOf(n_or)) return *e;
    const int64_t n = std::get<int64_t>(n_or);
    if (n < 0) return std::string(key) + " is " + std::to_string(n) + ", expected >= 0";
    *value = static_cast<uint64_t>(n);
    *has = true;
  }
  for (auto [key, value] :
       {std::pair{"underflow", &h.underflow}, std::pair{"overflow", &h.overflow}}) {
    auto it = doc.find(key);
    if (it == doc.end() || it->is_null()) continue;
    auto d = ToFiniteNumber(*it, key);
    if (auto* e = ErrorOf(d)) return *e;
    *value = std::get<double>(d);
  }
  h.entries = h.underflow + h.overflow;
  for (double v : h.contents) h.entries += v;
  if (auto it = doc.find("entries"); it != doc.end() && !it->is_null()) {
    auto d = ToFiniteNumber(*it, "entries");
    if (auto* e = ErrorOf(d)) return *e;
    h.entries = std::get<double>(d);
  }
  h.title = OptionalString(doc, "title").value_or("");
  return h;
}

std::string DescribeJsonError(const nlohmann::json::exception& e, std::string_view text) {
  std::string what = e.what();
  // Drop nlohmann's "[json.exception.parse_error.101] " tag.
  if (!what.empty() && what[0] == '[') {
    if (size_t close = what.find("] "); close != std::string::npos) what.erase(0, close + 2);
  }
  std::string message = "invalid JSON: " + what;
  std::string window;
  if (const auto* parse = dynamic_cast<const nlohmann::json::parse_error*>(&e)) {
    const size_t at = std::min(parse->byte, text.size());
    const size_t from = at > 16 ? at - 16 : 0;
    window = std::string(text.substr(from, at + 8 - from));
  }
  std::transform(window.begin(), window.end(), window.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (window.find("nan") != std::string::npos || window.find("inf") != std::string::npos) {
    message += " (NaN and Infinity are not valid JSON numbers)";
  } else if (what.find("overflow") != std::string::npos) {
    message += " (infinite values are not accepted; ROOT writes +-inf as +-2e308)";
  }
  return message;
}

HistogramFileOrError ParseDocument(std::string_view text) {
  if (text.size() > kMaxHistogramFileBytes) {
    return "input is " + std::to_string(text.size()) + " bytes, more than the limit of " +
           std::to_string(kMaxHistogramFileBytes) + " bytes (64 MiB)";
  }
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return std::string("empty input: no JSON document");
  }
  Json doc;
  try {
    doc = Json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    return DescribeJsonError(e, text);
  }
  if (!doc.is_object()) {
    const std::string kind = doc.is_null()    ? "null"
                             : doc.is_array() ? "an array"
                                              : std::string("a ") + doc.type_name();
    return "the JSON document is " + kind + ", expected an object describing one histogram";
  }
  Or<HistogramFile> result = std::string();
  if (doc.contains("_typename")) {
    result = ParseRoot(doc);
  } else if (doc.contains("shape") || doc.contains("contents")) {
    result = ParsePlain(doc);
  } else {
    return std::string(
        "not a histogram: neither a ROOT object (no \"_typename\") nor the plain form "
        "(no \"shape\"/\"contents\")");
  }
  if (auto* e = ErrorOf(result)) return *e;
  return std::move(std::get<HistogramFile>(result));
}

}  // namespace

HistogramFileOrError ParseHistogramJson(std::string_view text) {
  try {
    return ParseDocument(text);
  } catch (const std::exception& e) {  // e.g. std::bad_alloc: still an error value
    return std::string("cannot read histogram: ") + e.what();
  } catch (...) {
    return std::string("cannot read histogram: unknown error");
  }
}

HistogramFileOrError ReadHistogramFile(const std::string& path) {
  try {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::file_status status = fs::status(path, ec);
    if (ec || !fs::exists(status)) return path + ": no such file";
    if (fs::is_directory(status)) return path + ": is a directory, expected a JSON file";
    if (fs::is_regular_file(status)) {
      const uintmax_t size = fs::file_size(path, ec);
      if (!ec && size > kMaxHistogramFileBytes) {
        return path + ": file is " + std::to_string(size) + " bytes, more than the limit of " +
               std::to_string(kMaxHistogramFileBytes) + " bytes (64 MiB)";
      }
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) return path + ": cannot open: " + std::strerror(errno);
    // Read at most one byte past the limit, so pipes and growing files are capped too.
    std::string text;
    char buffer[1 << 16];
    while (text.size() <= kMaxHistogramFileBytes && in.read(buffer, sizeof buffer).gcount() > 0) {
      text.append(buffer, static_cast<size_t>(in.gcount()));
    }
    if (in.bad()) return path + ": read error: " + std::strerror(errno);
    if (text.empty()) return path + ": file is empty";
    if (text.size() > kMaxHistogramFileBytes) {
      return path + ": file is larger than the limit of " + std::to_string(kMaxHistogramFileBytes) +
             " bytes (64 MiB)";
    }
    // A ROOT file starts with "root"; no JSON text does.
    if (text.compare(0, 4, "root") == 0) {
      return path +
             ": a binary ROOT file, not JSON. Write its histograms as JSON with ROOT "
             "(TBufferJSON::ToJSON(h), or h->SaveAs(\"h.json\")), or send them straight "
             "from the file with the Python client, which reads ROOT files with uproot "
             "(docs/python.md)";
    }
    HistogramFileOrError parsed = ParseHistogramJson(text);
    if (auto* e = std::get_if<std::string>(&parsed)) return path + ": " + *e;
    return parsed;
  } catch (const std::exception& e) {
    return path + ": cannot read histogram: " + e.what();
  } catch (...) {
    return path + ": cannot read histogram: unknown error";
  }
}

}  // namespace histguard::client
