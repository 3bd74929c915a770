// The autoencoder as a LibTorch module, and conversions between it and a Model's plain weights.
// Internal to the LibTorch translation units of models/ (training and the torch references that
// tests and benchmarks check the plain C++ evaluation against).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "models/model.h"

namespace histguard::models::torch_internal {

struct AutoencoderImpl : torch::nn::Module {
  AutoencoderImpl(int64_t n, int64_t hidden, int64_t latent)
      : enc1(register_module("enc1", torch::nn::Linear(n, hidden))),
        enc2(register_module("enc2", torch::nn::Linear(hidden, latent))),
        dec1(register_module("dec1", torch::nn::Linear(latent, hidden))),
        dec2(register_module("dec2", torch::nn::Linear(hidden, n))) {}

  // Returns {logits, code}.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x) {
    auto z = enc2(torch::tanh(enc1(x)));
    auto logits = dec2(torch::tanh(dec1(z)));
    return {logits, z};
  }

  torch::nn::Linear enc1, enc2, dec1, dec2;
};
TORCH_MODULE(Autoencoder);

inline torch::Tensor ToTensor(const std::vector<float>& v, int64_t rows, int64_t cols) {
  return torch::from_blob(const_cast<float*>(v.data()), {rows, cols}, torch::kFloat32).clone();
}

inline DenseLayer Export(const torch::nn::Linear& l) {
  DenseLayer d;
  auto w = l->weight.detach().contiguous();
  auto b = l->bias.detach().contiguous();
  d.out = static_cast<uint32_t>(w.size(0));
  d.in = static_cast<uint32_t>(w.size(1));
  d.weight.assign(w.data_ptr<float>(), w.data_ptr<float>() + w.numel());
  d.bias.assign(b.data_ptr<float>(), b.data_ptr<float>() + b.numel());
  return d;
}

inline void Import(const DenseLayer& d, torch::nn::Linear& l) {
  torch::NoGradGuard no_grad;
  l->weight.copy_(ToTensor(d.Weights(), d.out, d.in));
  l->bias.copy_(torch::from_blob(const_cast<float*>(d.bias.data()), {d.out}, torch::kFloat32));
}

// A LibTorch module holding `m`'s weights.
inline Autoencoder ModuleOf(const Model& m) {
  Autoencoder net(m.bins(), m.enc1.out, m.enc2.out);
  Import(m.enc1, net->enc1);
  Import(m.enc2, net->enc2);
  Import(m.dec1, net->dec1);
  Import(m.dec2, net->dec2);
  return net;
}

}  // namespace histguard::models::torch_internal
