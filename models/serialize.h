// Serialisation of a trained Model: a compact, exact binary form (CBOR, with weights as packed
// float32 and calibrations as float64) so a model reloaded after a restart scores bit-for-bit as
// before. Stateless and thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "models/model.h"

namespace histguard::models {

std::string SerializeModel(const Model& model);

// DataLoss saying what is wrong when the bytes are not a model this version can read.
absl::StatusOr<Model> DeserializeModel(std::string_view bytes);

}  // namespace histguard::models
