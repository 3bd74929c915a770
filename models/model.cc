#include "models/model.h"

#include <cpuid.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace histguard::models {
namespace {

// y = W x + b with W row-major out x in. Scoring time is mostly here, streaming each monitor's
// weights from memory. The AVX2/FMA version is picked at start-up where the processor has both
// (checked by feature, not by processor model: a virtual machine often reports a generic one).
void AffinePortable(const DenseLayer& l, const float* x, float* y) {
  const uint32_t in = l.in;
  for (uint32_t o = 0; o < l.out; ++o) {
    const float* w = l.weight.data() + static_cast<size_t>(o) * in;
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    uint32_t i = 0;
    for (; i + 8 <= in; i += 8)
      for (int j = 0; j < 8; ++j) acc[j] += w[i + j] * x[i + j];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < in; ++i) s += w[i] * x[i];
    y[o] = s + l.bias[o];
  }
}

// The sum of a vector's eight lanes.
__attribute__((target("avx2,fma"))) inline float HorizontalSum(__m256 v) {
  __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  s4 = _mm_add_ss(s4, _mm_shuffle_ps(s4, s4, 1));
  return _mm_cvtss_f32(s4);
}

__attribute__((target("avx2,fma"))) void AffineAvx2(const DenseLayer& l, const float* x, float* y) {
  const uint32_t in = l.in;
  for (uint32_t o = 0; o < l.out; ++o) {
    const float* w = l.weight.data() + static_cast<size_t>(o) * in;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    uint32_t i = 0;
    for (; i + 16 <= in; i += 16) {
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
    }
    if (i + 8 <= in) {
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
      i += 8;
    }
    float s = HorizontalSum(_mm256_add_ps(a0, a1));
    for (; i < in; ++i) s += w[i] * x[i];
    y[o] = s + l.bias[o];
  }
}

// IEEE half precision by bit manipulation (what _Float16 does, for every compiler; checked
// against _Float16 for every float): round to nearest, ties to even; NaN stays NaN.
float FromHalf(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu, bits;
  if (e == 0x1f) {
    bits = sign | 0x7f800000u | (m << 13);  // infinity, NaN
  } else if (e != 0) {
    bits = sign | ((e + 112) << 23) | (m << 13);
  } else if (m == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    e = 113;
    while (!(m & 0x400u)) {
      m <<= 1;
      --e;
    }
    bits = sign | (e << 23) | ((m & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

uint16_t ToHalf(float v) {
  uint32_t x;
  std::memcpy(&x, &v, sizeof x);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u)  // infinity, NaN (kept a NaN)
    return static_cast<uint16_t>(sign | 0x7c00u |
                                 (abs > 0x7f800000u ? 0x200u | ((abs >> 13) & 0x3ffu) : 0u));
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds past 65504
  if (abs >= 0x38800000u) {                                              // a normal half
    uint32_t h = (abs >> 13) - (112u << 10);
    const uint32_t rem = abs & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  if (abs < 0x33000000u) return static_cast<uint16_t>(sign);  // below half the smallest
  const uint32_t e = abs >> 23, m = (abs & 0x7fffffu) | 0x800000u, shift = 126 - e;
  uint32_t h = m >> shift;
  const uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
  if (rem > half || (rem == half && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

void AffineHalfPortable(const DenseLayer& l, const float* x, float* y) {
  const uint32_t in = l.in;
  for (uint32_t o = 0; o < l.out; ++o) {
    const uint16_t* w = l.weight_half.data() + static_cast<size_t>(o) * in;
    float s = 0;
    for (uint32_t i = 0; i < in; ++i) s += FromHalf(w[i]) * x[i];
    y[o] = s + l.bias[o];
  }
}

__attribute__((target("avx2,fma,f16c"))) void AffineHalfAvx2(const DenseLayer& l, const float* x,
                                                             float* y) {
  const uint32_t in = l.in;
  for (uint32_t o = 0; o < l.out; ++o) {
    const uint16_t* w = l.weight_half.data() + static_cast<size_t>(o) * in;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    uint32_t i = 0;
    for (; i + 16 <= in; i += 16) {
      const __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
      const __m256 w1 =
          _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i + 8)));
      a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), a0);
      a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + i + 8), a1);
    }
    if (i + 8 <= in) {
      const __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
      a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), a0);
      i += 8;
    }
    float s = HorizontalSum(_mm256_add_ps(a0, a1));
    for (; i < in; ++i) s += _cvtsh_ss(w[i]) * x[i];
    y[o] = s + l.bias[o];
  }
}

// e^x eight at a time, from the Cephes single-precision polynomial (relative error ~1e-7), for
// x clamped to [-87, 87] (beyond, e^x leaves float's normal range).
__attribute__((target("avx2,fma"))) inline __m256 ExpAvx2(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(87.0f));
  // e^x = 2^k e^r, k = round(x / ln 2), r = x - k ln 2 (ln 2 split for accuracy).
  const __m256 k = _mm256_floor_ps(
      _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
  __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(k, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i bits =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(k), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

void TanhPortable(float* v, size_t n) {
  for (size_t i = 0; i < n; ++i) v[i] = std::tanh(v[i]);
}

// tanh(x) = (e^2x - 1) / (e^2x + 1): eight at a time instead of a libm call each, which took a
// fifth of a 100-bin forward pass. The absolute error near 0 stays ~1e-7, below what float
// weights carry.
__attribute__((target("avx2,fma"))) void TanhAvx2(float* v, size_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    // ExpAvx2 clamps 2x to [-87, 87], where the quotient is already +-1 in float.
    const __m256 e = ExpAvx2(_mm256_mul_ps(_mm256_loadu_ps(v + i), _mm256_set1_ps(2.0f)));
    _mm256_storeu_ps(v + i, _mm256_div_ps(_mm256_sub_ps(e, one), _mm256_add_ps(e, one)));
  }
  for (; i < n; ++i) v[i] = std::tanh(v[i]);
}

// The softmax's numerators: out[i] = e^(logits[i] - mx); returns their sum. The logits are
// float, and so is the exponential (relative error ~1e-7, far below the half-precision weights'
// 2^-11); the sum is taken in double.
double SoftmaxExpPortable(const float* logits, float mx, double* out, size_t n) {
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    out[i] = std::exp(static_cast<double>(logits[i] - mx));
    sum += out[i];
  }
  return sum;
}

__attribute__((target("avx2,fma"))) double SoftmaxExpAvx2(const float* logits, float mx,
                                                          double* out, size_t n) {
  const __m256 m = _mm256_set1_ps(mx);
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = ExpAvx2(_mm256_sub_ps(_mm256_loadu_ps(logits + i), m));
    const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(e));
    const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1));
    _mm256_storeu_pd(out + i, lo);
    _mm256_storeu_pd(out + i + 4, hi);
    s0 = _mm256_add_pd(s0, lo);
    s1 = _mm256_add_pd(s1, hi);
  }
  alignas(32) double part[4];
  _mm256_store_pd(part, _mm256_add_pd(s0, s1));
  return (part[0] + part[1]) + (part[2] + part[3]) +
         SoftmaxExpPortable(logits + i, mx, out + i, n - i);
}

using AffineFn = void (*)(const DenseLayer&, const float*, float*);
using TanhFn = void (*)(float*, size_t);
using SoftmaxExpFn = double (*)(const float*, float, double*, size_t);

bool HaveAvx2Fma() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

bool HaveF16c() {
  unsigned eax, ebx, ecx, edx;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C);
}

const bool kAvx2Fma = HaveAvx2Fma();
const AffineFn AffineSingle = kAvx2Fma ? AffineAvx2 : AffinePortable;
const AffineFn AffineHalf = kAvx2Fma && HaveF16c() ? AffineHalfAvx2 : AffineHalfPortable;
const TanhFn Tanh = kAvx2Fma ? TanhAvx2 : TanhPortable;
const SoftmaxExpFn SoftmaxExp = kAvx2Fma ? SoftmaxExpAvx2 : SoftmaxExpPortable;

void Affine(const DenseLayer& l, const float* x, float* y) {
  (l.weight_half.empty() ? AffineSingle : AffineHalf)(l, x, y);
}

}  // namespace

std::vector<float> DenseLayer::Weights() const {
  if (weight_half.empty()) return weight;
  std::vector<float> w(weight_half.size());
  for (size_t i = 0; i < w.size(); ++i) w[i] = FromHalf(weight_half[i]);
  return w;
}

bool StoreHalf(DenseLayer& l) {
  if (!l.weight_half.empty()) return true;
  std::vector<uint16_t> half(l.weight.size());
  for (size_t i = 0; i < half.size(); ++i) {
    half[i] = ToHalf(l.weight[i]);
    if (FromHalf(half[i]) != l.weight[i]) return false;
  }
  l.weight_half = std::move(half);
  std::vector<float>().swap(l.weight);  // `= {}` would keep the capacity: release it
  return true;
}

void HellingerInput(std::span<const double> counts, std::span<const float> input_mean,
                    std::span<float> out) {
  const double total = Sum(counts);
  const double scale = total > 0 ? static_cast<double>(counts.size()) / total : 0.0;
  for (size_t i = 0; i < counts.size(); ++i)
    out[i] = static_cast<float>(std::sqrt(std::max(counts[i], 0.0) * scale)) - input_mean[i];
}

void Expect(const Model& m, std::span<const double> counts, Scratch& s) {
  const uint32_t n = m.bins();
  const uint32_t hidden = m.enc1.out;
  const uint32_t k = m.enc2.out;
  s.x.resize(n);
  s.h.resize(hidden);
  s.z.resize(k);
  s.g.resize(m.dec1.out);
  s.logits.resize(n);
  s.expected.resize(n);
  HellingerInput(counts, m.input_mean, s.x);
  Affine(m.enc1, s.x.data(), s.h.data());
  Tanh(s.h.data(), hidden);
  Affine(m.enc2, s.h.data(), s.z.data());
  Affine(m.dec1, s.z.data(), s.g.data());
  Tanh(s.g.data(), m.dec1.out);
  Affine(m.dec2, s.g.data(), s.logits.data());
  const float mx = *std::max_element(s.logits.begin(), s.logits.end());
  const double norm = SoftmaxExp(s.logits.data(), mx, s.expected.data(), n);
  const double total = Sum(counts);
  for (uint32_t i = 0; i < n; ++i) s.expected[i] *= total / norm;
}

namespace {

// sup_j |sum_{i<=j} (c_i - e_i)|, in counts.
double LargestCumulativeGap(const double* c, const double* e, size_t n) {
  double gap = 0, largest = 0;
  for (size_t i = 0; i < n; ++i) {
    gap += c[i] - e[i];
    largest = std::max(largest, std::abs(gap));
  }
  return largest;
}

// N sup|F_c - F_mu|^2 for the expectation in scratch; for a 2D shape [nx, ny] (contents
// row-major, index ix * ny + iy) the larger of the x and y projections'. The total of the
// expectation is the observed one, so the gap of the last cumulative sum is zero.
double CumulativeDistance(std::span<const uint32_t> shape, std::span<const double> counts,
                          Scratch& s) {
  const size_t n = counts.size();
  const double total = Sum(counts);
  if (!(total > 0) || s.expected.size() != n) return 0;
  double gap = 0;
  if (shape.size() == 2 && static_cast<size_t>(shape[0]) * shape[1] == n && shape[0] > 1 &&
      shape[1] > 1) {
    const size_t nx = shape[0], ny = shape[1];
    // Layout: x counts, x expected, y counts, y expected.
    s.projection.assign(2 * (nx + ny), 0.0);
    double* cx = s.projection.data();
    double* ex = cx + nx;
    double* cy = ex + nx;
    double* ey = cy + ny;
    for (size_t ix = 0; ix < nx; ++ix) {
      for (size_t iy = 0; iy < ny; ++iy) {
        const double c = counts[ix * ny + iy], e = s.expected[ix * ny + iy];
        cx[ix] += c;
        ex[ix] += e;
        cy[iy] += c;
        ey[iy] += e;
      }
    }
    gap = std::max(LargestCumulativeGap(cx, ex, nx), LargestCumulativeGap(cy, ey, ny));
  } else {
    gap = LargestCumulativeGap(counts.data(), s.expected.data(), n);
  }
  return gap * gap / total;
}

// Calls visit(block, c, e, first, w, h) for every block of RegionalBlocks(shape) (`block` its
// index there) with the counts `c` and the expectation `e` pooled over it. Blocks of b bins along
// an axis start every max(1, b/2) bins, so a defect of 1.5 b bins or more along each axis holds a
// whole block. Running sums (in `prefix`) make it linear in the bins per block size. Visits
// nothing when the shape does not fit the contents.
template <typename Visit>
void ForEachBlock(std::span<const uint32_t> shape, std::span<const double> counts,
                  std::span<const double> expected, std::vector<double>& prefix, Visit visit) {
  const BlockSizes sizes = RegionalBlocks(shape);
  const std::span<const uint32_t> blocks = sizes.get();
  const size_t n = counts.size();
  size_t shape_bins = 1;
  for (uint32_t d : shape) shape_bins *= d;
  if (blocks.empty() || expected.size() != n || shape_bins != n) return;
  if (shape.size() == 1) {
    // prefix: counts [0, n], then expectations [n + 1, 2n + 1].
    prefix.assign(2 * (n + 1), 0.0);
    double* pc = prefix.data();
    double* pe = pc + n + 1;
    for (size_t i = 0; i < n; ++i) {
      pc[i + 1] = pc[i] + counts[i];
      pe[i + 1] = pe[i] + expected[i];
    }
    for (size_t k = 0; k < blocks.size(); ++k) {
      const uint32_t b = blocks[k];
      const size_t step = std::max<uint32_t>(1, b / 2);
      for (size_t i = 0; i + b <= n; i += step)
        visit(k, pc[i + b] - pc[i], pe[i + b] - pe[i], static_cast<uint32_t>(i), b, 1u);
    }
    return;
  }
  const size_t nx = shape[0], ny = shape[1], row = ny + 1, cells = (nx + 1) * row;
  // prefix[ix * row + iy]: sums over [0, ix) x [0, iy); counts, then expectations.
  prefix.assign(2 * cells, 0.0);
  double* pc = prefix.data();
  double* pe = pc + cells;
  for (size_t ix = 0; ix < nx; ++ix) {
    double rc = 0, re = 0;
    for (size_t iy = 0; iy < ny; ++iy) {
      rc += counts[ix * ny + iy];
      re += expected[ix * ny + iy];
      pc[(ix + 1) * row + iy + 1] = pc[ix * row + iy + 1] + rc;
      pe[(ix + 1) * row + iy + 1] = pe[ix * row + iy + 1] + re;
    }
  }
  auto box = [row](const double* p, size_t x0, size_t y0, size_t b) {
    return p[(x0 + b) * row + y0 + b] - p[x0 * row + y0 + b] - p[(x0 + b) * row + y0] +
           p[x0 * row + y0];
  };
  for (size_t k = 0; k < blocks.size(); ++k) {
    const uint32_t b = blocks[k];
    const size_t step = std::max<uint32_t>(1, b / 2);
    for (size_t x0 = 0; x0 + b <= nx; x0 += step)
      for (size_t y0 = 0; y0 + b <= ny; y0 += step)
        visit(k, box(pc, x0, y0, b), box(pe, x0, y0, b), static_cast<uint32_t>(x0 * ny + y0), b, b);
  }
}

// Half the largest pooled deviance over the blocks, each divided by the variance the model's
// spread adds at that block size (1 + spread M), for the expectation in scratch; where it is in
// `region` when given. A block whose expectation is under one count is passed over (its deviance
// is mostly the discreteness of tiny counts).
double RegionalDeviance(const Model& m, std::span<const double> counts, Scratch& s,
                        Region* region) {
  double best = 0;
  ForEachBlock(m.shape, counts, s.expected, s.prefix,
               [&](size_t k, double c, double e, uint32_t first, uint32_t w, uint32_t h) {
                 if (!(e >= 1)) return;
                 const double spread = k < m.regional_spread.size() ? m.regional_spread[k] : 0;
                 const double inflation = e * (1 + spread * e);
                 // ln x <= x - 1 bounds the deviance by twice Pearson's term: most blocks are
                 // passed over without a logarithm or a division.
                 if (2 * (c - e) * (c - e) <= best * inflation) return;
                 const double d = DevianceTerm(c, e) * e / inflation;
                 if (d <= best) return;
                 best = d;
                 if (region) *region = Region{first, w, h, c, e};
               });
  return 0.5 * best;
}

}  // namespace

void RegionalSpread::Add(std::span<const uint32_t> shape, std::span<const double> counts,
                         std::span<const double> expected) {
  ForEachBlock(shape, counts, expected, prefix_,
               [&](size_t k, double c, double e, uint32_t, uint32_t, uint32_t) {
                 if (!(e >= 1)) return;
                 if (excess_.size() <= k) {
                   excess_.resize(k + 1, 0.0);
                   squares_.resize(k + 1, 0.0);
                 }
                 excess_[k] += (c - e) * (c - e) - e;
                 squares_[k] += e * e;
               });
}

std::vector<double> RegionalSpread::Result() const {
  std::vector<double> out(excess_.size(), 0.0);
  for (size_t k = 0; k < out.size(); ++k)
    if (squares_[k] > 0) out[k] = std::max(0.0, excess_[k] / squares_[k]);
  return out;
}

double FreemanTukey(double c, double e) {
  c = std::max(c, 0.0);
  return std::sqrt(c) + std::sqrt(c + 1) - std::sqrt(4 * std::max(e, 0.0) + 1);
}

size_t RegionalBlockCount(std::span<const uint32_t> shape) {
  size_t count = 0;
  const BlockSizes sizes = RegionalBlocks(shape);  // the span below points into it
  for (uint32_t b : sizes.get()) {
    const size_t step = std::max<uint32_t>(1, b / 2);
    size_t along = 1;
    for (uint32_t d : shape) along *= (d - b) / step + 1;
    count += along;
  }
  return count;
}

std::span<const double> ProfileAxis(std::span<const uint32_t> shape, std::span<const double> counts,
                                    std::span<const double> expected, std::vector<double>& out) {
  const size_t n = expected.size();
  if (shape.size() != 1 || n < 8 || counts.size() != n) return expected;
  out.assign(expected.begin(), expected.end());
  auto slope = [&](size_t i) {
    if (i == 0) return expected[1] - expected[0];
    if (i == n - 1) return expected[n - 1] - expected[n - 2];
    return 0.5 * (expected[i + 1] - expected[i - 1]);
  };
  double a11 = 0, a12 = 0, a22 = 0, r1 = 0, r2 = 0;
  for (size_t i = 0; i < n; ++i) {
    const double w = 1 / std::max(expected[i], 1.0);
    const double t1 = slope(i), t2 = (static_cast<double>(i) + 0.5) / static_cast<double>(n) * t1;
    const double r = counts[i] - expected[i];
    a11 += w * t1 * t1;
    a12 += w * t1 * t2;
    a22 += w * t2 * t2;
    r1 += w * r * t1;
    r2 += w * r * t2;
  }
  const double det = a11 * a22 - a12 * a12;
  if (!(det > 1e-12 * a11 * a22) || !std::isfinite(det)) return out;
  // a: minus the shift in bins; b: minus the gain's change times the axis' length in bins.
  const double a = std::clamp((r1 * a22 - r2 * a12) / det, -2.0, 2.0);
  const double b = std::clamp((r2 * a11 - r1 * a12) / det, -0.1 * static_cast<double>(n),
                              0.1 * static_cast<double>(n));
  for (size_t i = 0; i < n; ++i) {
    const double t1 = slope(i), t2 = (static_cast<double>(i) + 0.5) / static_cast<double>(n) * t1;
    out[i] = std::max(expected[i] + a * t1 + b * t2, 0.1 * expected[i]);
  }
  return out;
}

void LastingReferenceFit::Add(std::span<const uint32_t> shape, std::span<const double> counts,
                              std::span<const double> expected) {
  size_t i = 0;
  ForEachBlock(shape, counts, ProfileAxis(shape, counts, expected, profiled_), prefix_,
               [&](size_t k, double c, double e, uint32_t, uint32_t, uint32_t) {
                 if (sum_.size() <= i) {
                   sum_.resize(i + 1, 0.0);
                   squares_.resize(i + 1, 0.0);
                   expected_.resize(i + 1, 0.0);
                   size_of_.resize(i + 1, static_cast<uint8_t>(k));
                 }
                 const double z = FreemanTukey(c, e);
                 sum_[i] += z;
                 squares_[i] += z * z;
                 expected_[i++] += e;
               });
  if (i > 0) ++rows_;
}

LastingReference LastingReferenceFit::Result() const {
  LastingReference out;
  if (rows_ < kMinRows || sum_.empty()) return out;
  const double n = static_cast<double>(rows_);
  out.offset.resize(sum_.size());
  // phi per block size, by moments over the blocks that take part: sum (var - 1) = phi sum e.
  std::vector<double> excess, mass;
  for (size_t b = 0; b < sum_.size(); ++b) {
    const double mean = sum_[b] / n;
    out.offset[b] = static_cast<float>(mean);
    const double e = expected_[b] / n;
    if (e < LastingRegions::kMinExpected) continue;
    const size_t k = size_of_[b];
    if (excess.size() <= k) {
      excess.resize(k + 1, 0.0);
      mass.resize(k + 1, 0.0);
    }
    const double var = std::max(0.0, (squares_[b] - n * mean * mean) / (n - 1));
    excess[k] += var - 1;
    mass[k] += e;
  }
  out.spread.resize(excess.size(), 0.0);
  for (size_t k = 0; k < excess.size(); ++k)
    if (mass[k] > 0) out.spread[k] = std::max(0.0, excess[k] / mass[k]);
  out.allowance = 1 + 3 / std::sqrt(n);
  return out;
}

void LastingRegions::Clear() {
  high_ = {};
  low_ = {};
  high_length_ = {};
  low_length_ = {};
}

bool LastingRegions::Restore(const Model& m, State state) {
  const size_t blocks = state.high.size();
  if (blocks == 0) {
    Clear();
    return state.low.empty() && state.high_length.empty() && state.low_length.empty();
  }
  const auto sums_ok = [](const std::vector<float>& sums) {
    return std::all_of(sums.begin(), sums.end(),
                       [](float x) { return std::isfinite(x) && x >= 0 && x <= kCap; });
  };
  if (blocks != m.lasting.offset.size() || blocks != RegionalBlockCount(m.shape) ||
      state.low.size() != blocks || state.high_length.size() != blocks ||
      state.low_length.size() != blocks || !sums_ok(state.high) || !sums_ok(state.low))
    return false;
  high_ = std::move(state.high);
  low_ = std::move(state.low);
  high_length_ = std::move(state.high_length);
  low_length_ = std::move(state.low_length);
  return true;
}

LastingRegions::Finding LastingRegions::Add(const Model& m, std::span<const double> counts,
                                            Scratch& s) {
  Finding out;
  const LastingReference& ref = m.lasting;
  const size_t blocks = ref.offset.size();
  if (blocks == 0 || blocks != RegionalBlockCount(m.shape)) {
    Clear();
    return out;
  }
  if (high_.size() != blocks) {
    high_.assign(blocks, 0.0f);
    low_.assign(blocks, 0.0f);
    high_length_.assign(blocks, 0);
    low_length_.assign(blocks, 0);
  }
  const double allowance = ref.allowance;
  auto follow = [allowance](float& sum, uint32_t& length, double step) {
    sum = static_cast<float>(std::clamp(sum + std::min(step, kMaxStep) - allowance, 0.0, kCap));
    length = sum > 0 ? length + 1 : 0;
  };
  size_t i = 0, taking_part = 0;
  double largest = 0;
  ForEachBlock(
      m.shape, counts, ProfileAxis(m.shape, counts, s.expected, s.profiled), s.prefix,
      [&](size_t k, double c, double e, uint32_t first, uint32_t w, uint32_t h) {
        const size_t at = i++;
        if (at >= blocks) return;
        double z = 0;  // a block too small to judge lets its sums fall
        if (e >= kMinExpected) {
          ++taking_part;
          // In single precision (a deviate to 1e-4 at a million counts): the square
          // roots are most of the cost of a large map's tens of thousands of blocks.
          const float cf = static_cast<float>(std::max(c, 0.0)), ef = static_cast<float>(e),
                      spread = k < ref.spread.size() ? static_cast<float>(ref.spread[k]) : 0;
          z = (std::sqrt(cf) + std::sqrt(cf + 1) - std::sqrt(4 * ef + 1) - ref.offset[at]) /
              std::sqrt(1 + spread * ef);
        }
        follow(high_[at], high_length_[at], z);
        follow(low_[at], low_length_[at], -z);
        const bool low = low_[at] > high_[at];
        const double sum = low ? low_[at] : high_[at];
        if (sum > largest) {
          largest = sum;
          out.region = Region{first, w, h, c, e};
          out.low = low;
          out.length = low ? low_length_[at] : high_length_[at];
        }
      });
  if (taking_part > 0 && largest > 0)
    out.p_value = std::min(1.0, 2.0 * static_cast<double>(taking_part) * std::exp(-2 * largest));
  return out;
}

BlockSizes RegionalBlocks(std::span<const uint32_t> shape) {
  static constexpr std::array<uint32_t, 3> k1D = {4, 8, 16};
  static constexpr std::array<uint32_t, 3> k2D = {2, 4, 8};
  BlockSizes out;
  if (shape.empty() || shape.size() > 2) return out;
  uint32_t shortest = shape[0];
  for (uint32_t d : shape) shortest = std::min(shortest, d);
  for (uint32_t b : shape.size() == 1 ? k1D : k2D)
    if (2 * b <= shortest) out.size[out.count++] = b;
  return out;
}

RawStats ComputeRawStats(const Model& m, std::span<const double> counts, Scratch& s,
                         Region* region) {
  RawStats r{};
  double dev = 0, max_term = 0;
  s.terms.resize(counts.size());
  for (size_t i = 0; i < counts.size(); ++i) {
    const double t = DevianceTerm(counts[i], s.expected[i]);
    s.terms[i] = t;
    dev += t;
    max_term = std::max(max_term, t);
  }
  r.deviance = counts.empty() ? 0 : dev / static_cast<double>(counts.size());
  r.localised = 0.5 * max_term;
  const size_t k = m.latent_mean.size();
  double d2 = 0;
  if (k > 0 && m.latent_inv_cov.size() == k * k) {
    for (size_t a = 0; a < k; ++a) {
      const double da = s.z[a] - m.latent_mean[a];
      double row = 0;
      for (size_t b = 0; b < k; ++b)
        row += m.latent_inv_cov[a * k + b] * (s.z[b] - m.latent_mean[b]);
      d2 += da * row;
    }
  }
  r.latent = 0.5 * std::max(d2, 0.0);
  r.cumulative = CumulativeDistance(m.shape, counts, s);
  r.regional = RegionalDeviance(m, counts, s, region);
  return r;
}

double CombineWithLasting(double p, double p_lasting) {
  const Evidence lasting{p_lasting, kLastingShare};
  return CombineShares(p, std::span(&lasting, 1));
}

double CombineShares(double p, std::span<const Evidence> beside, size_t* decides) {
  double kept = 1;
  for (const Evidence& e : beside) kept -= e.share;
  double best = p / std::max(kept, 1e-9);
  size_t by = 0;
  for (size_t k = 0; k < beside.size(); ++k)
    if (beside[k].share > 0 && beside[k].p_value / beside[k].share < best) {
      best = beside[k].p_value / beside[k].share;
      by = k + 1;
    }
  if (decides) *decides = by;
  return std::min(1.0, best);
}

double CombinePValues(std::span<const double> p, double tests) {
  double smallest = 1;
  for (double v : p) smallest = std::min(smallest, v);
  smallest = std::clamp(smallest, 0.0, 1.0);
  return std::min(1.0, -std::expm1(tests * std::log1p(-smallest)));
}

double EffectiveTests(std::span<const std::vector<double>> parts) {
  const double most = static_cast<double>(std::max<size_t>(parts.size(), 1));
  size_t n = parts.empty() ? 0 : parts[0].size();
  for (const auto& part : parts) n = std::min(n, part.size());
  if (n < kMinHoldoutForFittedTails) return most;
  constexpr double t = 0.1;
  size_t hits = 0;
  for (size_t i = 0; i < n; ++i) {
    bool hit = false;
    for (const auto& part : parts) hit = hit || part[i] <= t;
    hits += hit;
  }
  // One hit more than seen: a small holdout errs towards more tests (a conservative correction).
  const double rate = std::min(0.999, (hits + 1.0) / (n + 1.0));
  return std::clamp(std::log1p(-rate) / std::log1p(-t), 1.0, most);
}

Score ScoreHistogram(const Model& m, std::span<const double> counts, Scratch& s, size_t top_k) {
  Expect(m, counts, s);
  Score out;
  const RawStats raw = ComputeRawStats(m, counts, s, &out.region);
  out.deviance = raw.deviance;
  out.max_residual = std::sqrt(2 * raw.localised);
  out.latent_distance = 2 * raw.latent;
  out.ks_distance = std::sqrt(raw.cumulative);
  out.p_recon = m.recon.PValue(raw.deviance);
  out.p_localised = m.localised.PValue(raw.localised);
  out.p_latent = m.latent.PValue(raw.latent);
  out.p_cumulative = m.cumulative.PValue(raw.cumulative);
  out.p_regional = m.regional.PValue(raw.regional);
  const double parts[kParts] = {out.p_recon, out.p_localised, out.p_latent, out.p_cumulative,
                                out.p_regional};
  out.p_value = CombinePValues(parts, m.tests);
  // The largest |residual| is the largest term: rank by the terms already computed.
  std::vector<BinPull>& top = out.top_bins;
  top.reserve(top_k + 1);
  for (size_t i = 0; i < counts.size() && top_k > 0; ++i) {
    const double t = s.terms[i];
    if (top.size() == top_k && t <= top.back().pull) continue;
    BinPull p{static_cast<uint32_t>(i), t};
    auto pos = std::upper_bound(top.begin(), top.end(), p,
                                [](const BinPull& a, const BinPull& b) { return a.pull > b.pull; });
    top.insert(pos, p);
    if (top.size() > top_k) top.pop_back();
  }
  for (auto& b : top) {
    const double r = std::sqrt(b.pull);
    b.pull = counts[b.bin] >= s.expected[b.bin] ? r : -r;
  }
  return out;
}

}  // namespace histguard::models
