// Training: fits a monitor's autoencoder on a window of its normal histograms with LibTorch and
// returns an immutable Model evaluated by plain C++ (models/model.h).
//
// The window is split (seeded shuffle) into a training part and a holdout. The network is trained
// on the shape in the Hellinger frame with the multinomial likelihood (Poisson deviance up to the
// total), and a trimmed loss: after a warm-up the worst-fitting fraction of each batch is left
// out, so a few anomalies in the window do not teach the model that they are normal. The holdout
// then calibrates the statistics of model.h.
//
// Train() is reentrant: each call owns its module and optimizer. It runs on the calling thread
// using the intra-op threads set once by SetComputeThreads().
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "models/model.h"

namespace histguard::models {

// Memory a training holds: about kSampleBytesPerBin for each bin of each sample (the counts and
// the tensors made of them), and for the batch in work kBatchBytesPerBin per bin of each of its
// histograms, kept within kMaxBatchBytes by smaller batches of large histograms.
constexpr uint64_t kSampleBytesPerBin = 24;
constexpr uint64_t kBatchBytesPerBin = 40;
constexpr uint64_t kMaxBatchBytes = 128ull << 20;
// The most a training on `samples` histograms of `bins` bins holds.
constexpr uint64_t TrainingBytes(uint64_t samples, uint64_t bins) {
  return samples * bins * kSampleBytesPerBin + kMaxBatchBytes;
}

struct TrainOptions {
  uint32_t hidden = 0;  // 0 = automatic (64, or 32 above 4096 bins)
  uint32_t latent = 8;  // bottleneck width
  double holdout_fraction = 0.25;
  double trim_fraction = 0.05;  // share of each batch left out after warm-up
  double learning_rate = 5e-3;
  uint32_t batch_size = 128;
  uint32_t epochs = 60;
  uint32_t min_steps = 300;
  uint32_t max_steps = 2000;
  // Samples the model is expected to score before the next training (0: no retraining). With a
  // horizon, the latent reference follows a linear trend of the codes over the window.
  uint32_t latent_horizon = 0;
  // The window is drifting: the model will score histograms beyond the newest it was trained on,
  // where its deviance runs higher than on held-out histograms from within the window. The
  // deviance then keeps the exponential tail (heavier) instead of the scaled chi2.
  bool drifting = false;
  double time_budget_seconds = 60;  // stop early (and say so) past this
  uint64_t seed = 1;
  const std::atomic<bool>* cancel = nullptr;  // when set and true, training stops with an error
};

struct TrainReport {
  size_t train_samples = 0;
  size_t holdout_samples = 0;
  uint32_t steps = 0;
  double train_deviance = 0;    // mean deviance per bin on the training part
  double holdout_deviance = 0;  // mean deviance per bin on the holdout
  double seconds = 0;
  bool budget_exhausted = false;
  std::vector<size_t> holdout;  // indices into the samples that were held out (never trained on)
};

struct TrainOutcome {
  std::unique_ptr<Model> model;  // null on failure
  std::string error;             // why, when model is null
  TrainReport report;
};

// Trains on `samples` (each the counts of one histogram with `shape`, all of equal size, each
// with a positive total). Needs at least 10 samples.
TrainOutcome Train(std::span<const std::vector<float>> samples, const std::vector<uint32_t>& shape,
                   const TrainOptions& options);

// Sets LibTorch intra-op threads and OpenBLAS threads. Only the first call takes effect.
void SetComputeThreads(int threads);

}  // namespace histguard::models
