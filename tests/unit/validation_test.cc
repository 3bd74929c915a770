#include "server/validation.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace histguard::server {
namespace {

v1::Histogram Good() {
  v1::Histogram h;
  h.set_monitor("pixel/barrel/l1/occupancy");
  h.add_shape(4);
  for (double v : {1.0, 2.0, 3.0, 4.0}) h.add_contents(v);
  return h;
}

std::string ReasonOf(const v1::Histogram& h, uint32_t max_bins = 65536) {
  auto r = Validate(h, max_bins);
  return r ? r->reason + ": " + r->detail : "ok";
}

TEST(Validation, AcceptsWellFormed1DAnd2D) {
  EXPECT_EQ(ReasonOf(Good()), "ok");
  v1::Histogram h = Good();
  h.clear_shape();
  h.add_shape(2);
  h.add_shape(2);
  EXPECT_EQ(ReasonOf(h), "ok");
}

TEST(Validation, MonitorNames) {
  auto h = Good();
  h.set_monitor("");
  EXPECT_NE(ReasonOf(h).find("monitor name is empty"), std::string::npos);
  h.set_monitor(std::string(257, 'a'));
  EXPECT_NE(ReasonOf(h).find("at most 256"), std::string::npos);
  h.set_monitor(std::string(256, 'a'));
  EXPECT_EQ(ReasonOf(h), "ok");
  h.set_monitor("pixel barrel");
  EXPECT_NE(ReasonOf(h).find("position 5"), std::string::npos);
  h.set_monitor("ok/name\n");
  EXPECT_NE(ReasonOf(h).find("bad_monitor_name"), std::string::npos);
}

TEST(Validation, ContentsAndShape) {
  auto h = Good();
  h.clear_contents();
  EXPECT_NE(ReasonOf(h).find("contents are empty"), std::string::npos);
  h = Good();
  h.add_contents(5);
  EXPECT_NE(ReasonOf(h).find("shape product is 4 but contents have 5"), std::string::npos);
  h = Good();
  h.clear_shape();
  EXPECT_NE(ReasonOf(h).find("0 dimensions"), std::string::npos);
  h.add_shape(1);
  h.add_shape(2);
  h.add_shape(2);
  EXPECT_NE(ReasonOf(h).find("3 dimensions"), std::string::npos);
  h = Good();
  h.set_shape(0, 0);
  EXPECT_NE(ReasonOf(h).find("zero dimension"), std::string::npos);
}

TEST(Validation, BadValues) {
  for (double v : {std::nan(""), std::numeric_limits<double>::infinity(),
                   -std::numeric_limits<double>::infinity(), -1.0}) {
    auto h = Good();
    h.set_contents(2, v);
    EXPECT_NE(ReasonOf(h).find("bad_value: contents[2] (ROOT bin 3)"), std::string::npos) << v;
  }
  auto h = Good();
  h.set_entries(std::nan(""));
  EXPECT_NE(ReasonOf(h).find("bad_value"), std::string::npos);
}

// Efficiencies and normalised plots have no Poisson noise to score: refused with what to send.
TEST(Validation, FractionalContentsAreNotCounts) {
  auto h = Good();
  h.set_contents(3, 0.37);
  EXPECT_NE(ReasonOf(h).find("not_counts: contents[3] (ROOT bin 4) is 0.37"), std::string::npos)
      << ReasonOf(h);
  EXPECT_NE(ReasonOf(h).find("unweighted"), std::string::npos) << ReasonOf(h);
  h = Good();
  h.clear_shape();
  h.add_shape(2);
  h.add_shape(2);
  h.set_contents(1, 2.5);
  EXPECT_NE(ReasonOf(h).find("contents[1] (ROOT bin (1,2))"), std::string::npos) << ReasonOf(h);
  h.set_contents(1, 16777217);  // large counts, as a TH1D holds them, are whole numbers
  EXPECT_EQ(ReasonOf(h), "ok");
}

// Contents adding up past 2^53 are not counts, and gave NaN p-values that read as GOOD.
TEST(Validation, ContentsBeyondExactCountsAreRefused) {
  auto h = Good();
  h.set_contents(1, 1.3e308);
  EXPECT_NE(ReasonOf(h).find("bad_value: sum of contents"), std::string::npos) << ReasonOf(h);
  h = Good();
  h.set_contents(1, 9.0e15);  // just below 2^53 in all
  EXPECT_EQ(ReasonOf(h), "ok");
}

TEST(Validation, TooManyBinsEvenWhenShapeLies) {
  auto h = Good();
  EXPECT_NE(ReasonOf(h, 3).find("too_many_bins"), std::string::npos);
  // A hostile shape whose product overflows 32 bits must not pass as small.
  h.clear_shape();
  h.add_shape(65536);
  h.add_shape(65536);
  EXPECT_NE(ReasonOf(h).find("too_many_bins"), std::string::npos);
}

}  // namespace
}  // namespace histguard::server
