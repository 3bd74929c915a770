// Calibration of a trained model on its held-out histograms, and what it measures on its
// training sample: no LibTorch, so it can be tested and read apart from the optimisation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "models/model.h"

namespace histguard::models {

struct HoldoutInput {
  std::span<const std::vector<float>> samples;  // the training window, oldest first
  std::span<const size_t> order;  // sample indices: the training rows, then the holdout
  size_t n_train = 0;
  std::span<const uint32_t> shape;
  // Code change per window position (one per latent dimension; empty: none) and the newest
  // position: each code is brought forward along the trend, as scoring will see it.
  std::span<const double> trend;
  double newest = 0;
  bool small_holdout = false;  // too few held-out histograms to fit light tails on
  bool drifting = false;       // a drifting window: the model scores beyond its newest sample
  bool trending = false;       // the codes trend beyond their noise
};

struct HoldoutFit {
  double train_deviance = 0, holdout_deviance = 0;  // per bin, mean over the rows
};

// Fills `model`'s calibrations (the five statistics' tails and the effective number of tests),
// its regional spread (from the training rows) and its lasting-evidence reference (from the
// holdout). The model's weights and latent reference must be final.
HoldoutFit CalibrateOnHoldout(Model& model, const HoldoutInput& in);

}  // namespace histguard::models
