#include "models/serialize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "models/json_integer.h"

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

// The CBOR reader recurses once per nesting level: a made-up file of nested arrays overflowed
// the stack. A model nests 3 levels; reading stops at kMaxDepth.
class DepthLimitedDom : public nlohmann::detail::json_sax_dom_parser<json> {
 public:
  static constexpr int kMaxDepth = 16;
  explicit DepthLimitedDom(json& out) : json_sax_dom_parser(out, /*allow_exceptions=*/true) {}
  bool start_object(std::size_t n) { return Enter() && json_sax_dom_parser::start_object(n); }
  bool start_array(std::size_t n) { return Enter() && json_sax_dom_parser::start_array(n); }
  bool end_object() { return --depth_, json_sax_dom_parser::end_object(); }
  bool end_array() { return --depth_, json_sax_dom_parser::end_array(); }
  bool too_deep() const { return too_deep_; }

 private:
  bool Enter() {
    too_deep_ = ++depth_ > kMaxDepth;
    return !too_deep_;
  }
  int depth_ = 0;
  bool too_deep_ = false;
};

template <typename T>
bool AllFinite(const std::vector<T>& v) {
  return std::all_of(v.begin(), v.end(), [](T x) { return std::isfinite(x); });
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
  l.in = JsonInteger<uint32_t>(j.at("in"), "layer input size");
  l.out = JsonInteger<uint32_t>(j.at("out"), "layer output size");
  if (j.contains("h"))
    l.weight_half = Unpack<uint16_t>(j.at("h"));
  else
    l.weight = Unpack<float>(j.at("w"));
  l.bias = Unpack<float>(j.at("b"));
  const size_t stored = l.weight_half.empty() ? l.weight.size() : l.weight_half.size();
  if (stored != static_cast<size_t>(l.in) * l.out || l.bias.size() != l.out)
    throw std::runtime_error("layer sizes do not match its weights");
  // A NaN or infinite weight makes every p-value NaN, which no threshold flags.
  if (!AllFinite(l.weight) || !AllFinite(l.bias) ||
      std::any_of(l.weight_half.begin(), l.weight_half.end(),
                  [](uint16_t h) { return (h & 0x7c00u) == 0x7c00u; }))
    throw std::runtime_error("layer has weights that are not finite numbers");
  return l;
}

json Calib(const Calibration& c) {
  json j = {{"s", Pack(c.sorted_scores())},
            {"u", c.tail_threshold()},
            {"scale", c.tail_scale()},
            {"pu", c.tail_p()}};
  if (c.tail_shape() > 0) j["shape"] = c.tail_shape();
  if (c.tail() == Calibration::Tail::kGumbel) j["gumbel_mu"] = c.tail_location();
  return j;
}

// Models saved before the scaled-chi2 tail and the fitted number of tests read as exponential
// tails combined over 3 tests, as they were scored.
Calibration Calib(const json& j) {
  const double shape = j.value("shape", 0.0);
  if (!(shape >= 0 && shape <= 1e9))
    throw std::runtime_error("calibration tail shape out of range");
  double mu = std::nan("");
  if (j.contains("gumbel_mu")) {
    mu = j.at("gumbel_mu").get<double>();
    if (!std::isfinite(mu)) throw std::runtime_error("calibration Gumbel location is not finite");
  }
  const std::vector<double> sorted = Unpack<double>(j.at("s"));
  const double u = j.at("u").get<double>(), scale = j.at("scale").get<double>(),
               pu = j.at("pu").get<double>();
  if (!AllFinite(sorted) || !std::is_sorted(sorted.begin(), sorted.end()) || !std::isfinite(u) ||
      !(scale >= 0 && std::isfinite(scale)) || !(pu >= 0 && pu <= 1))
    throw std::runtime_error("calibration is not a sorted set of finite scores with a tail");
  return Calibration::FromParts(sorted, u, scale, pu, shape, mu);
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
            {"regional", Calib(m.regional)},
            {"regional_spread", Pack(m.regional_spread)},
            {"lasting",
             {{"offset", Pack(m.lasting.offset)},
              {"spread", Pack(m.lasting.spread)},
              {"allowance", m.lasting.allowance}}},
            {"axis_reference", Pack(m.axis_reference)},
            {"tests", m.tests}};
  const auto bytes = json::to_cbor(j);
  return std::string(bytes.begin(), bytes.end());
}

absl::StatusOr<Model> DeserializeModel(std::string_view bytes) {
  try {
    json j;
    DepthLimitedDom dom(j);
    if (!json::sax_parse(bytes.begin(), bytes.end(), &dom,
                         nlohmann::detail::input_format_t::cbor)) {
      return absl::DataLossError(dom.too_deep() ? "cannot read model: nested deeper than a model is"
                              : "cannot read model: not CBOR");
    }
    if (JsonInteger<int>(j.at("format"), "format") != kFormat) {
      return absl::DataLossError("unknown model format " + j.at("format").dump());
    }
    Model m;
    m.version = JsonInteger<uint64_t>(j.at("version"), "version");
    m.shape = JsonIntegers<uint32_t>(j.at("shape"), "shape");
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
    // Models saved before the regional statistic have none (p-value 1) and 4 tests at most.
    if (j.contains("regional")) m.regional = Calib(j.at("regional"));
    if (j.contains("regional_spread")) m.regional_spread = Unpack<double>(j.at("regional_spread"));
    // Models saved before the lasting evidence gather none.
    if (j.contains("lasting")) {
      const json& l = j.at("lasting");
      m.lasting.offset = Unpack<float>(l.at("offset"));
      m.lasting.spread = Unpack<double>(l.at("spread"));
      m.lasting.allowance = l.at("allowance").get<double>();
    }
    // Models saved before it fit no axis nuisances.
    if (j.contains("axis_reference")) m.axis_reference = Unpack<double>(j.at("axis_reference"));
    m.tests = j.value("tests", 3.0);
    if (!(m.tests >= 1 && m.tests <= kParts)) {
      return absl::DataLossError("model's number of tests is out of range");
    }
    const uint32_t n = m.enc1.in;
    uint64_t shape_bins = m.shape.empty() || m.shape.size() > 2 ? 0 : 1;
    for (uint32_t d : m.shape) shape_bins *= d;
    if (shape_bins != n) {
      return absl::DataLossError("model's layers do not fit its binning " + j.at("shape").dump());
    }
    if (m.input_mean.size() != n || m.dec2.out != n || m.enc2.in != m.enc1.out ||
        m.dec1.in != m.enc2.out || m.dec2.in != m.dec1.out || m.latent_mean.size() != m.enc2.out ||
        m.latent_inv_cov.size() != m.latent_mean.size() * m.latent_mean.size()) {
      return absl::DataLossError("model layers do not fit together");
    }
    if (m.regional_spread.size() > RegionalBlocks(m.shape).count ||
        !std::all_of(m.regional_spread.begin(), m.regional_spread.end(),
                     [](double v) { return v >= 0 && std::isfinite(v); })) {
      return absl::DataLossError("model's regional spread does not fit its binning");
    }
    const LastingReference& l = m.lasting;
    if ((!l.offset.empty() && l.offset.size() != RegionalBlockCount(m.shape)) ||
        l.spread.size() > RegionalBlocks(m.shape).count || !AllFinite(l.offset) ||
        !std::all_of(l.spread.begin(), l.spread.end(),
                     [](double v) { return v >= 0 && std::isfinite(v); }) ||
        !(l.allowance >= 1 && l.allowance <= 10)) {
      return absl::DataLossError("model's lasting-evidence reference does not fit its binning");
    }
    const auto& ar = m.axis_reference;
    if (!ar.empty() &&
        (m.shape.size() != 1 || ar.size() != n + 1u || ar.front() != 0 || !(ar.back() > 0) ||
         !std::is_sorted(ar.begin(), ar.end()) || !AllFinite(ar))) {
      return absl::DataLossError("model's axis reference does not fit its binning");
    }
    if (!AllFinite(m.input_mean) || !AllFinite(m.latent_mean) || !AllFinite(m.latent_inv_cov)) {
      return absl::DataLossError("model has values that are not finite numbers");
    }
    return m;
  } catch (const std::exception& e) {
    return absl::DataLossError(std::string("cannot read model: ") + e.what());
  }
}

}  // namespace histguard::models
