#include "models/holdout.h"

#include <algorithm>
#include <vector>

#include "models/axis_nuisances.h"
#include "models/calibration.h"
#include "models/stats.h"

namespace histguard::models {
namespace {

// The lasting evidence's allowance for a drifting window's model: it scores beyond the newest
// histogram it knows, where a block's deviate runs above what its holdout showed by what the
// profiled gain and shift do not follow, and at the holdout's allowance (about 1.3) that summed
// to 3-4x more flags on a drifting peak's normal lumisections. A faint defect's block (3 sd per
// lumisection) still gains a standard deviation per lumisection.
constexpr double kDriftingAllowance = 2;

}  // namespace

HoldoutFit CalibrateOnHoldout(Model& m, const HoldoutInput& in) {
  const auto& samples = in.samples;
  const auto& order = in.order;
  const size_t n_train = in.n_train, total = order.size(), n_hold = total - n_train;
  const size_t n = samples.empty() ? 0 : samples.front().size();
  const std::vector<uint32_t> shape(in.shape.begin(), in.shape.end());
  const auto& trend = in.trend;
  const double newest = in.newest;
  const bool small_holdout = in.small_holdout, trending = in.trending;
  Scratch scratch;
  std::vector<double> counts(n);
  auto raw_of = [&](size_t idx) {
    const auto& c = samples[order[idx]];
    std::copy(c.begin(), c.end(), counts.begin());
    Expect(m, counts, scratch);
    // Each code brought forward along the trend to the newest end, as scoring will see it.
    const double ahead = newest - static_cast<double>(order[idx]);
    for (size_t a = 0; a < trend.size(); ++a) scratch.z[a] += static_cast<float>(trend[a] * ahead);
    return ComputeRawStats(m, counts, scratch);
  };
  double train_dev = 0;
  // What the model misses of each block size, measured on the training sample (the holdout
  // is kept for calibrating what is left).
  RegionalSpread spread;
  for (size_t r = 0; r < n_train; ++r) {
    train_dev += raw_of(r).deviance;
    spread.Add(shape, counts, scratch.expected);
  }
  m.regional_spread = spread.Result();
  std::vector<double> rec, loc, lat, cum, reg;
  LastingReferenceFit lasting;  // on the holdout: what scoring will see of each block
  double hold_mean_count = 0;
  std::vector<double> mean_shape(n, 0.0);  // the holdout's, each histogram normalised to 1
  for (size_t r = n_train; r < total; ++r) {
    double entries = 0;
    for (float v : samples[order[r]]) entries += v;
    hold_mean_count += entries;
    if (entries > 0)
      for (size_t i = 0; i < n; ++i) mean_shape[i] += samples[order[r]][i] / entries;
    const RawStats s = raw_of(r);
    lasting.Add(shape, counts, scratch.expected);
    rec.push_back(s.deviance);
    loc.push_back(s.localised);
    lat.push_back(s.latent);
    cum.push_back(s.cumulative);
    reg.push_back(s.regional);
  }
  double hold_dev = 0;
  for (double d : rec) hold_dev += d;
  hold_mean_count /= static_cast<double>(n_hold) * static_cast<double>(n);
  // Tails fitted to the moments of the whole holdout, checked against its top decile (see
  // Calibration::Fit): the deviance is a sum over many bins (a scaled chi2), the largest bin's
  // term a maximum (a Gumbel), the latent distance a quadratic form of the code (a scaled
  // chi2). From the top decile alone (12 scores of a 125-histogram holdout) an exponential's
  // scale came out 1.5-2.5x too wide for the latter two, and their p-values below 1e-2 up to
  // 100x too large. Where a shape's derivation does not hold, the exponential stays: the safe
  // side.
  // - A small holdout, or a drifting window (the model will score beyond its newest sample).
  // - The chi2 tails rest on Gaussian limits: of each bin's counts for the deviance, of the
  //   code's noise for the latent distance. Below ~20 counts per bin neither holds (at 1e3
  //   entries the latent chi2 promised 3-5x fewer p < 1e-3 than happened).
  // - A deviance well above its Poisson value (1 per bin at such counts) is mostly the model's
  //   misfit along a few directions of shape variation: a heavier tail than a sum over many
  //   bins (at 1e6 entries the chi2 promised up to 5x fewer p < 1e-3).
  // - Codes that trend: the latent reference extrapolates the trend, and the holdout shows
  //   only the past.
  const bool safe_tails = small_holdout || in.drifting;
  const bool gaussian_counts = hold_mean_count >= 20;
  const double median_deviance = Median(rec);
  const bool misfit = median_deviance > 1.15;
  auto tail = [&](Calibration::Tail t, bool holds) {
    return safe_tails || !holds ? Calibration::Tail::kExponential : t;
  };
  m.recon = Calibration::Fit(rec, 1.0 / static_cast<double>(n),
                             tail(Calibration::Tail::kChiSquare, gaussian_counts && !misfit));
  m.localised = Calibration::Fit(loc, 0.25, tail(Calibration::Tail::kGumbel, true));
  m.latent = Calibration::Fit(lat, 0.25,
                              tail(Calibration::Tail::kChiSquare, gaussian_counts && !trending));
  // The Kolmogorov distance's tail is exponential in its square: P(K^2 > s) ~ 2 exp(-2s), a
  // scale of half K^2's own, whose median is 0.685. A model that absorbs part of the noise
  // scales K^2 down, shape variation it misses scales it up: the holdout's median gives the
  // scale, at 1.2x (the largest ratio of tail to median-derived scale measured on normal
  // occupancies, peaks and maps). The exceedances overrule it where they are clearly heavier
  // (see Calibration::Fit): 12 of them alone left the tail up to 4.6x too light at 1e-3, or
  // 25x too heavy at 1e-2. The law holds where the counts' noise makes the gaps: a deviance
  // within 5% of its Poisson value. Beyond, the model's misfit adds to them, and the tail is
  // heavier than the median says (at 1e5 entries 4-9x more p < 1e-3 than promised); there, and
  // for a small holdout or a drifting window, the larger of the two scales is kept. A model
  // that misfits (see above) is not judged by the gaps at all: they are then mostly its
  // misfit, which the deviance scores already, and their tail was up to 28x heavier than its
  // holdout showed (1e6 entries: 28 normal spectra in 100,000 BAD). In the benchmark no
  // anomaly at those statistics was caught by the gaps alone.
  const double kolmogorov_scale = std::max(1.2 * 0.5 * Median(cum) / 0.685, 0.05);
  if (!misfit)
    m.cumulative = Calibration::Fit(cum, kolmogorov_scale, Calibration::Tail::kExponential,
                                    safe_tails || median_deviance > 1.05 ? 0.0 : kolmogorov_scale);
  // The regional statistic is a maximum over blocks like the localised one over bins, and its
  // tail a Gumbel's. A model that misfits is not judged by it (its blocks' deviances are then
  // mostly the misfit, pooled), nor one of a histogram too small for its blocks, nor one of a
  // drifting window: it scores beyond the newest histogram it knows, and a shape that moved
  // since is a block of bins one way beside a block the other (a 30% gain drift at 1e4
  // entries: 0.9% of the normal lumisections flagged, 0.1% without it).
  if (!misfit && !in.drifting && *std::max_element(reg.begin(), reg.end()) > 0)
    m.regional = Calibration::Fit(reg, 0.25, tail(Calibration::Tail::kGumbel, true));
  // Lasting evidence is gathered where single lumisections could be judged by blocks, a drifting
  // window's model included: the evidence profiles the axis' gain and shift, so the drift that
  // keeps the regional statistic off adds up to nothing in it. (Without it, a faint defect that
  // set off a drift retraining by its own low p-values went unseen by the model that followed.)
  if (!misfit && *std::max_element(reg.begin(), reg.end()) > 0) {
    m.lasting = lasting.Result();
    if (in.drifting) m.lasting.allowance = std::max(m.lasting.allowance, kDriftingAllowance);
  }
  if (shape.size() == 1 && n >= kMinAxisBins) {
    m.axis_reference = Cumulative(mean_shape);
    if (!(m.axis_reference.back() > 0)) m.axis_reference.clear();
  }
  std::vector<std::vector<double>> p(kParts);
  for (size_t i = 0; i < rec.size(); ++i) {
    p[0].push_back(m.recon.PValue(rec[i]));
    p[1].push_back(m.localised.PValue(loc[i]));
    p[2].push_back(m.latent.PValue(lat[i]));
    p[3].push_back(m.cumulative.PValue(cum[i]));
    p[4].push_back(m.regional.PValue(reg[i]));
  }
  m.tests = EffectiveTests(p);

  return {train_dev / static_cast<double>(n_train), hold_dev / static_cast<double>(n_hold)};
}

}  // namespace histguard::models
