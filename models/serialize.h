// Serialisation of a trained Model: a compact, exact binary form (CBOR, with weights as packed
// float32 and calibrations as float64) so a model reloaded after a restart scores bit-for-bit as
// before. Stateless and thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "models/model.h"

namespace histguard::models {

std::string SerializeModel(const Model& model);

// Null with `error` filled when the bytes are not a model this version can read.
std::optional<Model> DeserializeModel(std::string_view bytes, std::string* error);

}  // namespace histguard::models
