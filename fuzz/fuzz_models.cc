#include "fuzz/fuzz_models.h"

#include <cmath>
#include <random>

#include "models/calibration.h"

namespace histguard::fuzz {
namespace {

namespace hm = histguard::models;

hm::DenseLayer Layer(uint32_t in, uint32_t out, std::mt19937& rng) {
  std::normal_distribution<float> w(0.0f, 1.0f / std::sqrt(static_cast<float>(in)));
  hm::DenseLayer l;
  l.in = in;
  l.out = out;
  l.weight.resize(static_cast<size_t>(in) * out);
  for (float& x : l.weight) x = w(rng);
  l.bias.assign(out, 0.0f);
  return l;
}

hm::Calibration Calibrated(std::mt19937& rng, double scale) {
  std::exponential_distribution<double> e(1.0 / scale);
  std::vector<double> scores(60);  // small: the model files are seeds
  for (double& s : scores) s = e(rng);
  return hm::Calibration::Fit(std::move(scores));
}

}  // namespace

hm::Model MakeModel(std::vector<uint32_t> shape, uint32_t seed) {
  std::mt19937 rng(seed);
  uint32_t n = 1;
  for (uint32_t s : shape) n *= s;
  const uint32_t hidden = 16, k = 3;
  hm::Model m;
  m.version = 1;
  m.shape = std::move(shape);
  m.input_mean.assign(n, 1.0f);
  m.enc1 = Layer(n, hidden, rng);
  m.enc2 = Layer(hidden, k, rng);
  m.dec1 = Layer(k, hidden, rng);
  m.dec2 = Layer(hidden, n, rng);
  hm::StoreHalf(m.enc1);
  m.latent_mean.assign(k, 0.0);
  m.latent_inv_cov.assign(static_cast<size_t>(k) * k, 0.0);
  for (uint32_t i = 0; i < k; ++i) m.latent_inv_cov[i * k + i] = 1.0;
  m.recon = Calibrated(rng, 0.2);
  m.localised = Calibrated(rng, 2.0);
  m.latent = Calibrated(rng, 3.0);
  m.cumulative = Calibrated(rng, 1.0);
  m.regional = Calibrated(rng, 1.0);
  m.tests = 2.5;
  return m;
}

}  // namespace histguard::fuzz
