// Integers from JSON or CBOR that histguard wrote and reads back (model files, meta records).
// nlohmann's get<T>() converts a number T cannot hold with undefined behaviour (a double of 1e20
// to int64_t), so files that were damaged or made up are read through these, which throw
// std::out_of_range or std::invalid_argument naming the field instead.
#pragma once

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace histguard {

template <typename T>
T JsonInteger(const nlohmann::json& v, const std::string& what) {
  static_assert(std::is_integral_v<T>);
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<T>::max()))
      throw std::out_of_range(what + " is out of range");
    return static_cast<T>(u);
  }
  if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if (i < 0 && !std::is_signed_v<T>) throw std::out_of_range(what + " is negative");
    if (i > 0 && static_cast<uint64_t>(i) > static_cast<uint64_t>(std::numeric_limits<T>::max()))
      throw std::out_of_range(what + " is out of range");
    if constexpr (std::is_signed_v<T>)
      if (i < static_cast<int64_t>(std::numeric_limits<T>::min()))
        throw std::out_of_range(what + " is out of range");
    return static_cast<T>(i);
  }
  throw std::invalid_argument(what + " is not an integer");
}

// `key` of object `j`, or `fallback` when it is absent.
template <typename T>
T JsonInteger(const nlohmann::json& j, const char* key, T fallback) {
  const auto it = j.find(key);
  return it == j.end() ? fallback : JsonInteger<T>(*it, key);
}

template <typename T>
std::vector<T> JsonIntegers(const nlohmann::json& v, const std::string& what) {
  if (!v.is_array()) throw std::invalid_argument(what + " is not a list");
  std::vector<T> out;
  for (const auto& e : v) out.push_back(JsonInteger<T>(e, what));
  return out;
}

}  // namespace histguard
