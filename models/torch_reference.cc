// LibTorch references for the plain C++ forward pass, for tests and benchmarks only.
#include "models/torch_reference.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "models/autoencoder.h"

namespace histguard::models {

using torch_internal::Autoencoder;
using torch_internal::AutoencoderImpl;
using torch_internal::ModuleOf;
using torch_internal::ToTensor;

std::vector<double> ReferenceExpected(const Model& m, std::span<const double> counts) {
  torch::NoGradGuard no_grad;
  const int64_t n = m.bins();
  Autoencoder net = ModuleOf(m);
  std::vector<float> x(n);
  HellingerInput(counts, m.input_mean, x);
  auto logits = net->forward(ToTensor(x, 1, n)).first;
  auto q = torch::softmax(logits.to(torch::kFloat64), 1).contiguous();
  const double total = Sum(counts);
  std::vector<double> out(q.data_ptr<double>(), q.data_ptr<double>() + n);
  for (double& v : out) v *= total;
  return out;
}

namespace {

// Calls `batch` (which scores `per_call` histograms) until `seconds` have passed.
template <typename Fn>
double RateOf(double seconds, size_t per_call, Fn batch) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto stop =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  size_t done = 0;
  while (Clock::now() < stop) {
    batch();
    done += per_call;
  }
  return static_cast<double>(done) / std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

ForwardRates MeasureForwardRates(std::span<const Model* const> models,
                                 std::span<const std::vector<double>> histograms, double seconds) {
  torch::NoGradGuard no_grad;
  ForwardRates r;
  const size_t m = std::min(models.size(), histograms.size());
  if (m == 0) return r;
  double sink = 0;

  Scratch scratch;
  size_t k = 0;
  r.plain = RateOf(seconds, 64, [&] {
    for (int j = 0; j < 64; ++j, k = (k + 1) % m) {
      Expect(*models[k], histograms[k], scratch);
      sink += scratch.expected[0];
    }
  });

  // Every model's LibTorch module and Hellinger input, built once.
  std::vector<Autoencoder> nets;
  std::vector<torch::Tensor> inputs;
  for (size_t i = 0; i < m; ++i) {
    const Model& mod = *models[i];
    nets.push_back(ModuleOf(mod));
    std::vector<float> x(mod.bins());
    HellingerInput(histograms[i], mod.input_mean, x);
    inputs.push_back(ToTensor(x, 1, mod.bins()));
  }
  k = 0;
  r.one_at_a_time = RateOf(seconds, 64, [&] {
    for (int j = 0; j < 64; ++j, k = (k + 1) % m) {
      auto q = torch::softmax(nets[k]->forward(inputs[k]).first, 1);
      sink += q[0][0].item<float>();
    }
  });

  // The monitors of the first one's sizes, their layers stacked: W [monitors, out, in].
  std::vector<size_t> same;
  for (size_t i = 0; i < m; ++i)
    if (models[i]->bins() == models[0]->bins() && models[i]->enc1.out == models[0]->enc1.out &&
        models[i]->enc2.out == models[0]->enc2.out)
      same.push_back(i);
  r.stacked_monitors = same.size();
  auto stack = [&](auto layer) {
    std::vector<torch::Tensor> w, b;
    for (size_t i : same) {
      w.push_back((nets[i].get()->*layer)->weight);
      b.push_back((nets[i].get()->*layer)->bias.unsqueeze(1));
    }
    return std::pair{torch::stack(w).contiguous(), torch::stack(b).contiguous()};
  };
  const auto [w1, b1] = stack(&AutoencoderImpl::enc1);
  const auto [w2, b2] = stack(&AutoencoderImpl::enc2);
  const auto [w3, b3] = stack(&AutoencoderImpl::dec1);
  const auto [w4, b4] = stack(&AutoencoderImpl::dec2);
  std::vector<torch::Tensor> columns;
  for (size_t i : same) columns.push_back(inputs[i].t());
  const torch::Tensor x = torch::stack(columns).contiguous();  // [monitors, n, 1]
  r.stacked = RateOf(seconds, same.size(), [&] {
    auto h = torch::tanh(torch::baddbmm(b1, w1, x));
    auto z = torch::baddbmm(b2, w2, h);
    auto g = torch::tanh(torch::baddbmm(b3, w3, z));
    auto q = torch::softmax(torch::baddbmm(b4, w4, g), 1);
    sink += q[0][0][0].item<float>();
  });

  torch::Tensor batch = torch::cat(std::vector<torch::Tensor>(64, inputs[0]));  // [64, n]
  r.shared = RateOf(seconds, 64, [&] {
    auto q = torch::softmax(nets[0]->forward(batch).first, 1);
    sink += q[0][0].item<float>();
  });
  if (sink == -1) std::puts("");
  return r;
}

}  // namespace histguard::models
