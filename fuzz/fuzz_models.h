// A model with the trainer's layout, made without training, for the fuzz targets and their seeds.
#pragma once

#include <cstdint>
#include <vector>

#include "models/model.h"

namespace histguard::fuzz {

// Version 1 of a model for `shape`: random weights from `seed`, calibrated on made-up scores.
// What the fuzz targets exercise is the arithmetic on a histogram, not what a model learnt.
models::Model MakeModel(std::vector<uint32_t> shape, uint32_t seed);

}  // namespace histguard::fuzz
