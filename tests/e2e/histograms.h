// Histograms for the end-to-end tests: a simulator sample as the API's message, and a defect put
// on one.
#pragma once

#include <cmath>
#include <cstdint>

#include "histguard/v1/histguard.pb.h"
#include "simulation/detector_simulator.h"

namespace histguard::testing {

inline v1::Histogram Make(const sim::MonitorSpec& spec, const sim::Sample& s, uint64_t run,
                          uint64_t ls) {
  v1::Histogram h;
  h.set_monitor(spec.name);
  h.set_run(run);
  h.set_lumisection(ls);
  for (auto d : s.shape) h.add_shape(d);
  h.mutable_contents()->Assign(s.contents.begin(), s.contents.end());
  return h;
}

// A hot channel on top of whatever the histogram is (counts stay whole).
inline void AddHotBin(v1::Histogram& h, uint32_t bin) {
  double total = 0;
  for (double c : h.contents()) total += c;
  h.set_contents(bin, std::round(h.contents(bin) * 5 + 0.01 * total));
}

}  // namespace histguard::testing
