// ProbeEngine: runs connection tests off the request threads (contract section 7). At most
// `concurrency` tests run at once on the engine's own threads, the rest wait in FIFO order; each
// test's result is delivered by its deadline (timeoutSecs, default 30, capped by
// timeout_max_secs) even when a driver call blocks: a watchdog completes the test with a
// `timeout` step and the stuck worker's late result is discarded.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"
#include "domain/connection.h"
#include "probe/drivers/driver.h"
#include "probe/egress.h"
#include "probe/test_result.h"

namespace connreg::probe {

// Thread-safe: Submit and RunTest may be called from any thread.
class ProbeEngine {
 public:
  struct Options {
    int concurrency = 32;           // CONNREG_TEST_CONCURRENCY
    int timeout_max_secs = 60;      // CONNREG_TEST_TIMEOUT_MAX
    int default_timeout_secs = 30;  // for connections without timeoutSecs
    EgressPolicy egress;            // CONNREG_EGRESS_DENY / CONNREG_EGRESS_ALLOW
  };
  // Finds the driver for a details.type (FindDriver; tests substitute their own).
  using DriverLookup = std::function<const Driver*(std::string_view type)>;
  using Done = std::function<void(TestResult)>;

  // Options from the environment: CONNREG_TEST_CONCURRENCY (1..4096), CONNREG_TEST_TIMEOUT_MAX
  // (1..86400), CONNREG_EGRESS_DENY (replaces the default deny list when set, even to "") and
  // CONNREG_EGRESS_ALLOW (CIDR lists, comma or space separated). A bad value is a kBadRequest
  // error naming the variable; meant for start-up.
  static Result<Options> OptionsFromEnv();

  explicit ProbeEngine(Options options, DriverLookup drivers = FindDriver);
  // Completes every queued test with a failed result, then waits for running drivers to return
  // (they end by their own timeouts, at the latest shortly after their deadlines).
  ~ProbeEngine();
  ProbeEngine(const ProbeEngine&) = delete;
  ProbeEngine& operator=(const ProbeEngine&) = delete;

  // Queues a test of `c` with its opened secrets (field -> plaintext). `done` is called exactly
  // once, on an engine thread (a worker or the watchdog), never on the caller's; it must not
  // block. The deadline starts now: time spent queued counts against it.
  void Submit(domain::Connection c, std::map<std::string, std::string> secrets, Done done);

  // Submit and wait: for tools, tests and callers that are on a thread they may block.
  TestResult RunTest(const domain::Connection& c,
                     const std::map<std::string, std::string>& secrets);

  // The deadline a test of `c` gets, in seconds.
  int DeadlineSecs(const domain::Connection& c) const;

  struct Stats {
    int running = 0;  // driver calls in progress (including ones already timed out)
    int queued = 0;   // submitted, not started, not yet timed out
  };
  Stats stats() const;

  const Options& options() const { return options_; }

 private:
  struct Job;

  void WorkerLoop();
  void WatchdogLoop();
  void Execute(const std::shared_ptr<Job>& job);
  // Delivers `job`'s result unless it was delivered already. `timeout_message` set: the
  // watchdog's verdict (the open step, or the queue wait, timed out).
  void Finish(const std::shared_ptr<Job>& job, const std::string* timeout_message);

  Options options_;
  DriverLookup drivers_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable watchdog_cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::multimap<std::chrono::steady_clock::time_point, std::weak_ptr<Job>> deadlines_;
  int running_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
  std::thread watchdog_;
};

}  // namespace connreg::probe
