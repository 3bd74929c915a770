// LibTorch's own evaluation of a Model, for tests that check the plain C++ forward pass (Expect)
// against it and for the performance benchmark. Not linked into the daemon.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "models/model.h"

namespace histguard::models {

// LibTorch's own forward pass over `model`'s weights: expected counts for `counts`. For tests
// that check the plain C++ evaluation against it.
std::vector<double> ReferenceExpected(const Model& model, std::span<const double> counts);

// The ways LibTorch offers to compute many monitors' expected shapes, measured against the plain
// C++ pass scoring uses (Expect), for the performance benchmark. Histograms per second on the
// calling thread (LibTorch's threads as SetComputeThreads left them), each way for `seconds`:
struct ForwardRates {
  double plain = 0;          // Expect(), one histogram at a time, as the scorer runs it
  double one_at_a_time = 0;  // each histogram through its monitor's LibTorch module, batch of 1
  double stacked = 0;        // every monitor's weights stacked, one histogram each, in torch::bmm
  double shared = 0;         // one model for all, batches of 64 (per-family shared models)
  size_t stacked_monitors = 0;
};
// `models[i]` scores `histograms[i]`; the stacked way takes the models that share the first one's
// binning and layer sizes.
ForwardRates MeasureForwardRates(std::span<const Model* const> models,
                                 std::span<const std::vector<double>> histograms, double seconds);

}  // namespace histguard::models
