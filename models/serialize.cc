#include "models/serialize.h"

#include <cstring>
#include <nlohmann/json.hpp>

namespace histguard::models {
namespace {

using json = nlohmann::json;
constexpr int kFormat = 1;

template <typename T>
json Pack(const std::vector<T>& v) {
  std::vector<uint8_t> bytes(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(bytes.data(), v.data(), bytes.size());
  return json::binary(std::move(bytes));
}

template <typename T>
std::vector<T> Unpack(const json& j) {
  const auto& bytes = j.get_binary();
  if (bytes.size() % sizeof(T) != 0) throw std::runtime_error("packed array of odd size");
  std::vector<T> v(bytes.size() / sizeof(T));
  if (!v.empty()) std::memcpy(v.data(), bytes.data(), bytes.size());
  return v;
}

json Layer(const DenseLayer& l) {
  json j = {{"in", l.in}, {"out", l.out}, {"b", Pack(l.bias)}};
  if (l.weight_half.empty())
    j["w"] = Pack(l.weight);
  else
    j["h"] = Pack(l.weight_half);
  return j;
}

DenseLayer Layer(const json& j) {
  DenseLayer l;
  l.in = j.at("in").get<uint32_t>();
  l.out = j.at("out").get<uint32_t>();
  if (j.contains("h"))
    l.weight_half = Unpack<uint16_t>(j.at("h"));
  else
    l.weight = Unpack<float>(j.at("w"));
  l.bias = Unpack<float>(j.at("b"));
  const size_t stored = l.weight_half.empty() ? l.weight.size() : l.weight_half.size();
  if (stored != static_cast<size_t>(l.in) * l.out || l.bias.size() != l.out)
    throw std::runtime_error("layer sizes do not match its weights");
  return l;
}

json Calib(const Calibration& c) {
  json j = {{"s", Pack(c.sorted_scores())}, {"u", c.tail_threshold()}, {"scale", c.tail_scale()},
            {"pu", c.tail_p()}};
  if (c.tail_shape() > 0) j["shape"] = c.tail_shape();
  if (c.tail() == Calibration::Tail::kGumbel) j["gumbel_mu"] = c.tail_location();
  return j;
}

// Models saved before the scaled-chi2 tail and the fitted number of tests read as exponential
// tails combined over 3 tests, as they were scored.
Calibration Calib(const json& j) {
  const double shape = j.value("shape", 0.0);
  if (!(shape >= 0 && shape <= 1e9)) throw std::runtime_error("calibration tail shape out of range");
  double mu = std::nan("");
  if (j.contains("gumbel_mu")) {
    mu = j.at("gumbel_mu").get<double>();
    if (!std::isfinite(mu)) throw std::runtime_error("calibration Gumbel location is not finite");
  }
  return Calibration::FromParts(Unpack<double>(j.at("s")), j.at("u").get<double>(),
                                j.at("scale").get<double>(), j.at("pu").get<double>(), shape, mu);
}

}  // namespace

std::string SerializeModel(const Model& m) {
  json j = {{"format", kFormat},
            {"version", m.version},
            {"shape", m.shape},
            {"input_mean", Pack(m.input_mean)},
            {"enc1", Layer(m.enc1)},
            {"enc2", Layer(m.enc2)},
            {"dec1", Layer(m.dec1)},
            {"dec2", Layer(m.dec2)},
            {"latent_mean", Pack(m.latent_mean)},
            {"latent_inv_cov", Pack(m.latent_inv_cov)},
            {"recon", Calib(m.recon)},
            {"localised", Calib(m.localised)},
            {"latent", Calib(m.latent)},
            {"cumulative", Calib(m.cumulative)},
            {"tests", m.tests}};
  const auto bytes = json::to_cbor(j);
  return std::string(bytes.begin(), bytes.end());
}

std::optional<Model> DeserializeModel(std::string_view bytes, std::string* error) {
  try {
    const json j = json::from_cbor(bytes.begin(), bytes.end());
    if (j.at("format").get<int>() != kFormat) {
      *error = "unknown model format " + j.at("format").dump();
      return std::nullopt;
    }
    Model m;
    m.version = j.at("version").get<uint64_t>();
    m.shape = j.at("shape").get<std::vector<uint32_t>>();
    m.input_mean = Unpack<float>(j.at("input_mean"));
    m.enc1 = Layer(j.at("enc1"));
    m.enc2 = Layer(j.at("enc2"));
    m.dec1 = Layer(j.at("dec1"));
    m.dec2 = Layer(j.at("dec2"));
    m.latent_mean = Unpack<double>(j.at("latent_mean"));
    m.latent_inv_cov = Unpack<double>(j.at("latent_inv_cov"));
    m.recon = Calib(j.at("recon"));
    m.localised = Calib(j.at("localised"));
    m.latent = Calib(j.at("latent"));
    // Models saved before the cumulative statistic have none (p-value 1) and 3 tests at most.
    if (j.contains("cumulative")) m.cumulative = Calib(j.at("cumulative"));
    m.tests = j.value("tests", 3.0);
    if (!(m.tests >= 1 && m.tests <= kParts)) {
      *error = "model's number of tests is out of range";
      return std::nullopt;
    }
    const uint32_t n = m.enc1.in;
    uint64_t shape_bins = m.shape.empty() || m.shape.size() > 2 ? 0 : 1;
    for (uint32_t d : m.shape) shape_bins *= d;
    if (shape_bins != n) {
      *error = "model's layers do not fit its binning " + j.at("shape").dump();
      return std::nullopt;
    }
    if (m.input_mean.size() != n || m.dec2.out != n || m.enc2.in != m.enc1.out ||
        m.dec1.in != m.enc2.out || m.dec2.in != m.dec1.out ||
        m.latent_mean.size() != m.enc2.out ||
        m.latent_inv_cov.size() != m.latent_mean.size() * m.latent_mean.size()) {
      *error = "model layers do not fit together";
      return std::nullopt;
    }
    return m;
  } catch (const std::exception& e) {
    *error = std::string("cannot read model: ") + e.what();
    return std::nullopt;
  }
}

}  // namespace histguard::models
