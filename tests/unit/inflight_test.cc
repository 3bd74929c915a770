// The in-flight byte budget: what Submit and streams see when histograms fill it.
#include "server/inflight.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace histguard::server {
namespace {

TEST(InFlightBudget, ASubmitThatDoesNotFitTakesNothing) {
  InFlightBudget budget(1000);
  EXPECT_TRUE(budget.TryTake(600));
  EXPECT_FALSE(budget.TryTake(500));
  EXPECT_EQ(budget.used(), 600u);
  EXPECT_TRUE(budget.TryTake(400));
  budget.Give(1000);
  EXPECT_EQ(budget.used(), 0u);
}

TEST(InFlightBudget, APausedStreamResumesOnceBytesComeBack) {
  InFlightBudget budget(1000);
  budget.Take(1500);  // a stream's read may overshoot by the message it had read
  int resumed = 0;
  EXPECT_FALSE(budget.AvailableOr([&] { ++resumed; }));
  EXPECT_FALSE(budget.AvailableOr([&] { ++resumed; }));
  budget.Give(400);  // still 1100 used: nobody resumes
  EXPECT_EQ(resumed, 0);
  budget.Give(200);
  EXPECT_EQ(resumed, 2);
  budget.Give(900);  // each waiter runs once
  EXPECT_EQ(resumed, 2);
  EXPECT_TRUE(budget.AvailableOr([&] { ++resumed; }));
  EXPECT_EQ(resumed, 2);
}

TEST(InFlightBudget, ManyThreadsNeverLoseAWakeUp) {
  InFlightBudget budget(64);
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        std::atomic<bool> go{false};
        while (!budget.AvailableOr([&go] { go = true; }))
          while (!go.load()) std::this_thread::yield();
        budget.Take(16);
        budget.Give(16);
      }
      ++done;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(done.load(), 8);
  EXPECT_EQ(budget.used(), 0u);
}

}  // namespace
}  // namespace histguard::server
