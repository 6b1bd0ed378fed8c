// FairPool on its own, with jobs that are functions: the order jobs of several keys run in, the
// per-key cap, expiry in the queue and while running, and stopping.
#include "probe/fair_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace connreg::probe {
namespace {

using namespace std::chrono_literals;
using Clock = FairPool::Clock;

// A gate jobs wait at until it opens.
class Gate {
 public:
  void Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return open_; });
  }
  void Open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// A job that runs `run` and reports how it finished.
class FunctionJob : public FairPool::Job {
 public:
  explicit FunctionJob(std::function<void()> run) : run_(std::move(run)) {}
  void Run() override { run_(); }
  void Finish(const FairPool::Expiry* expiry) override {
    ++finishes;
    if (expiry) expired = *expiry;
    done.set_value();
  }
  std::atomic<int> finishes{0};
  std::optional<FairPool::Expiry> expired;  // read after `done`
  std::promise<void> done;

 private:
  std::function<void()> run_;
};

std::shared_ptr<FunctionJob> Job(std::function<void()> run) {
  return std::make_shared<FunctionJob>(std::move(run));
}

Clock::time_point In(std::chrono::milliseconds d) { return Clock::now() + d; }

// Waits up to 2 s for `pred`.
bool Eventually(const std::function<bool()>& pred) {
  for (int i = 0; i < 200; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

TEST(ProbeFairPool, ServesKeysRoundRobinAndEachKeyInOrder) {
  FairPool pool(1, 1);
  Gate gate;
  auto blocker = Job([&] { gate.Wait(); });
  pool.Submit("x", In(10s), blocker);
  ASSERT_TRUE(Eventually([&] { return pool.stats().running == 1; }));

  std::mutex mu;
  std::vector<std::string> order;
  std::vector<std::shared_ptr<FunctionJob>> jobs;
  for (const char* name : {"a1", "a2", "a3", "b1", "b2", "c1"}) {
    auto job = Job([&, name] {
      std::lock_guard lock(mu);
      order.push_back(name);
    });
    jobs.push_back(job);
    pool.Submit(std::string(1, name[0]), In(10s), job);
  }
  EXPECT_EQ(pool.stats().queued, 6);
  gate.Open();
  for (auto& job : jobs) job->done.get_future().wait();
  EXPECT_EQ(order, (std::vector<std::string>{"a1", "b1", "c1", "a2", "b2", "a3"}));
}

TEST(ProbeFairPool, AKeyAtItsCapLeavesTheOtherWorkersToOtherKeys) {
  FairPool pool(4, 2);
  Gate gate;
  std::atomic<int> a_running{0};
  std::vector<std::shared_ptr<FunctionJob>> a;
  for (int i = 0; i < 5; ++i) {
    a.push_back(Job([&] {
      ++a_running;
      gate.Wait();
      --a_running;
    }));
    pool.Submit("a", In(10s), a.back());
  }
  ASSERT_TRUE(Eventually([&] { return a_running == 2; }));
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(a_running.load(), 2) << "the cap holds while workers are free";
  EXPECT_EQ(pool.stats().queued, 3);

  auto start = Clock::now();
  auto b = Job([] {});
  pool.Submit("b", In(10s), b);
  EXPECT_EQ(b->done.get_future().wait_for(1s), std::future_status::ready);
  EXPECT_LT(Clock::now() - start, 500ms) << "key b waited behind key a";
  EXPECT_EQ(b->finishes.load(), 1);
  EXPECT_FALSE(b->expired.has_value());
  gate.Open();
  for (auto& job : a) job->done.get_future().wait();
}

TEST(ProbeFairPool, AQueuedJobExpiresAtItsDeadlineSayingWhy) {
  FairPool pool(2, 1);
  Gate gate;
  auto running = Job([&] { gate.Wait(); });
  pool.Submit("a", In(10s), running);
  ASSERT_TRUE(Eventually([&] { return pool.stats().running == 1; }));

  std::atomic<bool> ran{false};
  auto capped = Job([&] { ran = true; });
  auto start = Clock::now();
  pool.Submit("a", In(150ms), capped);
  capped->done.get_future().wait();
  auto waited = Clock::now() - start;
  EXPECT_GE(waited, 140ms);
  EXPECT_LT(waited, 1s);
  ASSERT_TRUE(capped->expired.has_value());
  EXPECT_FALSE(capped->expired->started);
  EXPECT_FALSE(capped->expired->stopping);
  EXPECT_EQ(capped->expired->running_for_key, 1);
  EXPECT_EQ(capped->expired->per_key_cap, 1);
  EXPECT_EQ(capped->expired->workers, 2);
  EXPECT_EQ(pool.stats().queued, 0) << "an expired job leaves the queue";
  gate.Open();
  running->done.get_future().wait();
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(ran.load()) << "an expired job never runs";
  EXPECT_EQ(capped->finishes.load(), 1);
}

TEST(ProbeFairPool, ARunningJobPastItsDeadlineIsFinishedOnceAndKeepsItsSlot) {
  FairPool pool(1, 1);
  Gate gate;
  auto stuck = Job([&] { gate.Wait(); });
  pool.Submit("a", In(100ms), stuck);
  stuck->done.get_future().wait();
  ASSERT_TRUE(stuck->expired.has_value());
  EXPECT_TRUE(stuck->expired->started);
  EXPECT_EQ(pool.stats().running, 1) << "the stuck call still holds its worker";
  gate.Open();
  ASSERT_TRUE(Eventually([&] { return pool.stats().running == 0; }));
  EXPECT_EQ(stuck->finishes.load(), 1) << "the late return is not reported again";
}

TEST(ProbeFairPool, StoppingFinishesQueuedJobsAndWaitsForRunningOnes) {
  Gate gate;
  auto running = Job([&] { gate.Wait(); });
  auto queued = Job([] {});
  std::atomic<bool> opened{false};
  std::thread opener;
  {
    FairPool pool(1, 1);
    pool.Submit("a", In(10s), running);
    ASSERT_TRUE(Eventually([&] { return pool.stats().running == 1; }));
    pool.Submit("b", In(10s), queued);
    opener = std::thread([&] {
      std::this_thread::sleep_for(100ms);
      opened = true;
      gate.Open();
    });
  }
  EXPECT_TRUE(opened.load()) << "the destructor waited for the running job";
  opener.join();
  ASSERT_TRUE(queued->expired.has_value());
  EXPECT_TRUE(queued->expired->stopping);
  EXPECT_EQ(queued->finishes.load(), 1);
  EXPECT_EQ(running->finishes.load(), 1);
  EXPECT_FALSE(running->expired.has_value()) << "it returned, so it finished normally";
}

}  // namespace
}  // namespace connreg::probe
