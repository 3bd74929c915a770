// The only translation unit of histguard that includes LibTorch.
#include "models/trainer.h"

#include <dlfcn.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <numeric>
#include <random>

#include "models/autoencoder.h"
#include "models/holdout.h"

namespace histguard::models {
namespace {

using torch_internal::Autoencoder;
using torch_internal::Export;
using torch_internal::ModuleOf;
using torch_internal::ToTensor;

// The spread the centred inputs are scaled up to when they vary less (see Train).
constexpr double kInputRms = 0.1;

// Splits counts into Binomial(c, 1/2) halves: exact (popcount of c random bits) up to 256
// counts, the normal approximation above, where it is exact to far better than the noise it
// models. Several times faster than torch::binomial, which dominated a training step.
class HalfSplitter {
 public:
  explicit HalfSplitter(uint64_t seed) : state_(seed ^ 0x9E3779B97F4A7C15ull) {}

  torch::Tensor operator()(const torch::Tensor& counts) {
    auto c = counts.contiguous();
    auto out = torch::empty_like(c);
    const float* in = c.data_ptr<float>();
    float* half = out.data_ptr<float>();
    for (int64_t i = 0, n = c.numel(); i < n; ++i) half[i] = Split(in[i]);
    return out;
  }

 private:
  uint64_t Next() {  // splitmix64
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  float Split(float count) {
    if (!(count > 0)) return 0.0f;
    if (count <= 256) {
      uint32_t left = static_cast<uint32_t>(count), k = 0;
      for (; left >= 64; left -= 64) k += static_cast<uint32_t>(__builtin_popcountll(Next()));
      if (left > 0) k += static_cast<uint32_t>(__builtin_popcountll(Next() & ((1ull << left) - 1)));
      return static_cast<float>(k);
    }
    // Box-Muller from two uniforms in (0, 1].
    const double u1 = (static_cast<double>(Next() >> 11) + 1.0) * 0x1.0p-53;
    const double u2 = static_cast<double>(Next() >> 11) * 0x1.0p-53;
    const double g = std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    const double h = std::round(0.5 * count + 0.5 * std::sqrt(static_cast<double>(count)) * g);
    return static_cast<float>(std::clamp(h, 0.0, static_cast<double>(count)));
  }

  uint64_t state_;
};

// Inverse of a small symmetric positive-definite matrix by Cholesky, with a ridge so a
// degenerate code distribution still inverts.
std::vector<double> InverseSpd(std::vector<double> a, size_t k) {
  double trace = 0;
  for (size_t i = 0; i < k; ++i) trace += a[i * k + i];
  const double ridge = 1e-3 * std::max(trace / std::max<size_t>(k, 1), 1e-12);
  for (size_t i = 0; i < k; ++i) a[i * k + i] += ridge;
  std::vector<double> l(k * k, 0.0);
  for (size_t i = 0; i < k; ++i) {
    for (size_t j = 0; j <= i; ++j) {
      double s = a[i * k + j];
      for (size_t p = 0; p < j; ++p) s -= l[i * k + p] * l[j * k + p];
      if (i == j) {
        l[i * k + i] = std::sqrt(std::max(s, 1e-300));
      } else {
        l[i * k + j] = s / l[j * k + j];
      }
    }
  }
  // inv = L^-T L^-1, column by column.
  std::vector<double> inv(k * k, 0.0);
  std::vector<double> y(k), x(k);
  for (size_t c = 0; c < k; ++c) {
    for (size_t i = 0; i < k; ++i) {
      double s = (i == c) ? 1.0 : 0.0;
      for (size_t p = 0; p < i; ++p) s -= l[i * k + p] * y[p];
      y[i] = s / l[i * k + i];
    }
    for (size_t ii = k; ii-- > 0;) {
      double s = y[ii];
      for (size_t p = ii + 1; p < k; ++p) s -= l[p * k + ii] * x[p];
      x[ii] = s / l[ii * k + ii];
    }
    for (size_t i = 0; i < k; ++i) inv[i * k + c] = x[i];
  }
  return inv;
}

void SetLearningRate(torch::optim::Adam& opt, double lr) {
  for (auto& group : opt.param_groups())
    static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
}

}  // namespace

void SetComputeThreads(int threads) {
  // Once per process: LibTorch refuses to change inter-op threads after its first parallel work.
  static std::once_flag once;
  std::call_once(once, [threads] {
    const int n = std::max(threads, 1);
    torch::set_num_threads(n);
    try {
      torch::set_num_interop_threads(1);
    } catch (const c10::Error&) {
      // Already fixed by earlier LibTorch work; the intra-op setting above still applies.
    }
    // OpenBLAS reads its environment before main(); its own setter is the only way afterwards.
    using SetFn = void (*)(int);
    if (auto fn = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) fn(n);
  });
}

TrainOutcome Train(std::span<const std::vector<float>> samples, const std::vector<uint32_t>& shape,
                   const TrainOptions& opt) {
  TrainOutcome out;
  const auto start = std::chrono::steady_clock::now();
  const size_t total = samples.size();
  if (total < 10) {
    out.error = "need at least 10 samples to train, have " + std::to_string(total);
    return out;
  }
  const size_t n = samples.front().size();
  if (n == 0) {
    out.error = "empty histograms";
    return out;
  }
  for (const auto& s : samples) {
    if (s.size() != n) {
      out.error = "samples of different sizes in the training window";
      return out;
    }
  }
  try {
    torch::NoGradGuard outer_guard_off_for_setup;  // re-enabled for the optimisation below
    torch::manual_seed(opt.seed);
    std::vector<size_t> order(total);
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(opt.seed);
    std::shuffle(order.begin(), order.end(), rng);
    size_t n_hold = static_cast<size_t>(std::round(opt.holdout_fraction * total));
    n_hold = std::clamp<size_t>(n_hold, 5, total - 5);
    const size_t n_train = total - n_hold;
    // Too few held-out histograms to fit light tails or a code covariance on: the safe side.
    const bool small_holdout = n_hold < kMinHoldoutForFittedTails;

    // Hellinger inputs (uncentred) and shapes, row-major.
    auto fill = [&](size_t from, size_t count, std::vector<float>& x, std::vector<float>& f) {
      x.resize(count * n);
      f.resize(count * n);
      for (size_t r = 0; r < count; ++r) {
        const auto& c = samples[order[from + r]];
        double sum = 0;
        for (float v : c) sum += std::max(v, 0.0f);
        const double inv = sum > 0 ? 1.0 / sum : 0.0;
        for (size_t i = 0; i < n; ++i) {
          const double fi = std::max<double>(c[i], 0.0) * inv;
          f[r * n + i] = static_cast<float>(fi);
          x[r * n + i] = static_cast<float>(std::sqrt(fi * n));
        }
      }
    };
    std::vector<float> xs, fs;
    fill(0, n_train, xs, fs);
    auto x_train = ToTensor(xs, n_train, n);
    auto f_train = ToTensor(fs, n_train, n);
    // The tensors hold copies: a 65,536-bin window would otherwise keep two more of itself.
    std::vector<float>().swap(xs);
    std::vector<float>().swap(fs);
    auto input_mean = x_train.mean(0);
    x_train = x_train - input_mean;
    // At high statistics the centred inputs barely vary (at 1e6 entries a 1% shape change moves
    // an input by ~0.005), so the encoder would need weights in the hundreds to see run-to-run
    // variations, which Adam's lr-sized steps never reach: the model missed them and normal
    // histograms scored 2.7 at 1e6 against 1.0 at 1e4. Inputs are scaled up to an rms of
    // kInputRms, never down (at 1e3 entries a 100-bin histogram's already vary more). Scaling
    // further, to O(1), fits even better but makes the codes of normal histograms noisy, and the
    // latent score loses the anomalies simpler than normal. Folded into the first layer after
    // training, so scoring and saved models see plain weights.
    const double input_rms = std::sqrt(x_train.pow(2).mean().item<double>());
    const double input_scale = std::clamp(kInputRms / std::max(input_rms, 1e-12), 1.0, 1e4);
    auto f_mean = f_train.mean(0);

    const uint32_t hidden = opt.hidden ? opt.hidden : (n > 4096 ? 32 : 64);
    const uint32_t latent = std::min<uint32_t>(opt.latent, static_cast<uint32_t>(n));
    Autoencoder net(static_cast<int64_t>(n), hidden, latent);
    {
      // Start from the mean shape: the network then learns the deviations around it.
      net->dec2->weight.mul_(0.1);
      net->dec2->bias.copy_(torch::log(f_mean + 1e-6));
    }

    torch::optim::Adam adam(net->parameters(),
                            torch::optim::AdamOptions(opt.learning_rate).weight_decay(1e-5));
    // A batch's activations and gradients take about kBatchBytesPerBin per bin of each of its
    // histograms: batches of large histograms are made smaller to stay within kMaxBatchBytes
    // (128 histograms of 61,200 bins took 300 MB).
    const int64_t batch_cap = std::max<int64_t>(
        16, static_cast<int64_t>(kMaxBatchBytes / (kBatchBytesPerBin * static_cast<uint64_t>(n))));
    const int64_t batch = std::min<int64_t>(std::min<int64_t>(opt.batch_size, batch_cap),
                                            static_cast<int64_t>(n_train));
    const uint32_t per_epoch = static_cast<uint32_t>((n_train + batch - 1) / batch);
    const uint32_t steps = std::clamp(opt.epochs * per_epoch, opt.min_steps, opt.max_steps);
    const uint32_t warmup = steps * 3 / 10;
    const int64_t keep =
        std::max<int64_t>(1, batch - static_cast<int64_t>(std::floor(opt.trim_fraction * batch)));
    // Raw counts for the binomial split (rounded: weighted histograms are treated as counts).
    std::vector<float> cs(n_train * n);
    for (size_t r = 0; r < n_train; ++r)
      for (size_t i = 0; i < n; ++i)
        cs[r * n + i] = std::round(std::max(samples[order[r]][i], 0.0f));
    auto c_train = ToTensor(cs, n_train, n);
    std::vector<float>().swap(cs);

    torch::Tensor perm;
    HalfSplitter split(opt.seed);
    uint32_t step = 0;
    {
      torch::AutoGradMode enable(true);
      net->train();
      for (; step < steps; ++step) {
        const int64_t pos = (step % per_epoch) * batch;
        if (pos == 0) perm = torch::randperm(static_cast<int64_t>(n_train), torch::kLong);
        const int64_t len = std::min<int64_t>(batch, static_cast<int64_t>(n_train) - pos);
        auto idx = perm.narrow(0, pos, len);
        // Noise-to-noise: split each histogram's counts binomially into two independent Poisson
        // halves; the network sees one half and is scored on the other, so it can only learn the
        // shape, never a histogram's own fluctuations (nor a defect confined to its bins).
        auto cb = c_train.index_select(0, idx);
        auto half = split(cb);
        auto other = cb - half;
        auto half_tot = half.sum(1, true).clamp_min(1.0);
        auto other_tot = other.sum(1, true).clamp_min(1.0);
        auto xb =
            (torch::sqrt(half / half_tot * static_cast<double>(n)) - input_mean) * input_scale;
        auto fb = other / other_tot;
        auto [logits, z] = net->forward(xb);
        auto ce = -(fb * torch::log_softmax(logits, 1)).sum(1);
        torch::Tensor loss;
        if (step >= warmup && opt.trim_fraction > 0 && len > 4) {
          // Rank by the deviance the sample would get (total x KL), keep the best-fitting.
          auto ent = -(fb * torch::log(fb + 1e-12)).sum(1);
          auto dev = ((ce - ent) * other_tot.squeeze(1)).detach();
          const int64_t k_keep = std::min<int64_t>(len, std::max<int64_t>(1, keep * len / batch));
          auto kept = std::get<1>(dev.topk(k_keep, 0, /*largest=*/false));
          loss = ce.index_select(0, kept).mean();
        } else {
          loss = ce.mean();
        }
        adam.zero_grad();
        loss.backward();
        adam.step();
        if (step == steps * 7 / 10) SetLearningRate(adam, opt.learning_rate * 0.2);
        // Every step: one of a 65,536-bin window takes a good part of a second.
        {
          const double elapsed =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          if (opt.cancel && opt.cancel->load()) {
            out.error = "training failed: cancelled";  // the daemon is stopping
            return out;
          }
          if (elapsed > opt.time_budget_seconds) {
            out.report.budget_exhausted = true;
            ++step;
            break;
          }
        }
      }
    }
    net->eval();
    net->enc1->weight.mul_(input_scale);
    // The histogram-wide layers are scored in half precision (see StoreHalf): rounded here, so the
    // codes and the calibration below see the weights scoring will use. Relative rounding of
    // 2^-11 moves an expected count by ~1e-4 of itself, a tenth of the Poisson noise of a bin
    // with 1e6 counts. Weights beyond half's range keep single precision.
    for (torch::nn::Linear* l : {&net->enc1, &net->dec2}) {
      auto& w = (*l)->weight;
      if (w.abs().max().item<double>() < 60000.0) w.copy_(w.to(torch::kHalf).to(torch::kFloat32));
    }

    auto model = std::make_unique<Model>();
    model->shape = shape;
    auto mean_c = input_mean.contiguous();
    model->input_mean.assign(mean_c.data_ptr<float>(), mean_c.data_ptr<float>() + n);
    model->enc1 = Export(net->enc1);
    model->enc2 = Export(net->enc2);
    model->dec1 = Export(net->dec1);
    model->dec2 = Export(net->dec2);
    StoreHalf(model->enc1);
    StoreHalf(model->dec2);

    // Latent reference from the training codes. The window is in arrival order; with a horizon,
    // a linear trend of the codes (a slow drift of conditions) is taken out: the reference sits
    // where the trend leads over the next `latent_horizon` samples, and the spread is the codes'
    // scatter about the trend plus the trend's travel over that horizon. A model is then not
    // surprised by the drift it was trained on, only by a jump away from it. The trend is the
    // newest codes' (4 horizons, at least 100 positions): over a long drift the codes follow a
    // curve, and a line through all of them pointed off it at the newest end, where the model
    // scores: in a 30% gain drift, fresh models' latent p-values averaged -ln p = 1.6 (uniform:
    // 1), and 0.6 with the local trend.
    std::vector<double> trend(latent, 0.0);  // code change per window position
    const double newest = static_cast<double>(total - 1);
    // Whether the codes trend beyond their noise: the slope's chi2 against its own scatter
    // exceeds latent + 3 sqrt(2 latent) (about p = 0.01 for a window that does not drift).
    bool trending = false;
    {
      auto z = net->forward(x_train).second.to(torch::kFloat64);
      torch::Tensor extra = torch::zeros({latent, latent}, torch::kFloat64);
      std::vector<double> ts;
      double sum_tc2 = 0;  // spread of the positions the trend is fitted over
      if (opt.latent_horizon > 0 && n_train > 2) {
        const double span = std::max(4.0 * static_cast<double>(opt.latent_horizon), 100.0);
        std::vector<int64_t> rows;
        for (size_t r = 0; r < n_train; ++r)
          if (static_cast<double>(order[r]) >= newest - span)
            rows.push_back(static_cast<int64_t>(r));
        if (rows.size() < std::max<size_t>(4 * latent, 20)) {
          rows.clear();
          for (size_t r = 0; r < n_train; ++r) rows.push_back(static_cast<int64_t>(r));
        }
        for (int64_t r : rows) ts.push_back(static_cast<double>(order[r]));
        z = z.index_select(0, torch::tensor(rows, torch::kInt64));
      }
      auto mu = z.mean(0);
      auto zc = z - mu;
      if (!ts.empty()) {
        auto t = torch::tensor(ts, torch::kFloat64);
        auto tc = t - t.mean();
        sum_tc2 = tc.pow(2).sum().item<double>();
        auto slope = (tc.unsqueeze(1) * zc).sum(0) / std::max(sum_tc2, 1e-12);
        zc = zc - tc.unsqueeze(1) * slope.unsqueeze(0);
        const double h = static_cast<double>(opt.latent_horizon);
        mu = mu + slope * (newest - t.mean().item<double>() + 0.5 * h);
        extra = slope.unsqueeze(1).mm(slope.unsqueeze(0)) * (h * h / 12.0);
        slope = slope.contiguous();
        trend.assign(slope.data_ptr<double>(), slope.data_ptr<double>() + latent);
      }
      auto cov = zc.t().mm(zc) / std::max<int64_t>(1, z.size(0) - 1);
      if (!ts.empty()) {
        auto slope = torch::tensor(trend, torch::kFloat64);
        auto reg = cov + 1e-12 * torch::eye(latent, torch::kFloat64);
        const double chi2 = sum_tc2 * slope.dot(torch::linalg_solve(reg, slope)).item<double>();
        trending = chi2 > latent + 3 * std::sqrt(2.0 * latent);
      }
      {
        // With a small holdout (a first training on 100: 75 codes, 25 held out), shrunk towards
        // its average variance by latent/n. From few codes a direction they happen to barely
        // spread along makes every fresh code an outlier, and 25 held-out codes cannot
        // calibrate that away: 18% of normal spectra had latent p < 0.01. With a larger
        // holdout the covariance is left as measured, so a drift along a quiet direction
        // still stands out.
        const double lambda =
            small_holdout ? std::min(1.0, static_cast<double>(latent) / n_train) : 0.0;
        const double avg = cov.trace().item<double>() / latent;
        cov = (1 - lambda) * cov + lambda * avg * torch::eye(latent, torch::kFloat64);
      }
      cov = cov + extra;
      cov = cov.contiguous();
      mu = mu.contiguous();
      model->latent_mean.assign(mu.data_ptr<double>(), mu.data_ptr<double>() + latent);
      std::vector<double> c(cov.data_ptr<double>(), cov.data_ptr<double>() + latent * latent);
      model->latent_inv_cov = InverseSpd(std::move(c), latent);
    }

    // Deviance on both parts and calibration on the holdout, through the same scoring code.
    const HoldoutFit fit = CalibrateOnHoldout(
        *model,
        {samples, order, n_train, shape, trend, newest, small_holdout, opt.drifting, trending});

    out.report.holdout.assign(order.begin() + static_cast<std::ptrdiff_t>(n_train), order.end());
    out.report.train_samples = n_train;
    out.report.holdout_samples = n_hold;
    out.report.steps = step;
    out.report.train_deviance = fit.train_deviance;
    out.report.holdout_deviance = fit.holdout_deviance;
    out.report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    out.model = std::move(model);
  } catch (const c10::Error& e) {
    out.model.reset();
    out.error = std::string("LibTorch error during training: ") + e.what_without_backtrace();
  } catch (const std::exception& e) {
    out.model.reset();
    out.error = std::string("training failed: ") + e.what();
  }
  return out;
}

}  // namespace histguard::models
