// Testing a connection against its warehouse (contract section 7). The path of one test:
//   ProbeEngine (this file): queue, deadline and watchdog, on the engine's own threads
//   -> ResolveAndCheck (egress.h): resolve the host, check every address against the policy
//   -> Driver (driver.h): one per warehouse type, from its family's folder under drivers/
//      (drivers/registry.h), connecting to the checked address: connect, tls, authenticate,
//      query, write
//   -> StepLog (step_log.h) and Scrubber (scrub.h): every message recorded is free of secrets
//   -> TestResult (test_result.h), rendered by RenderTestResult.
//
// ProbeEngine runs connection tests off the request threads, as jobs of the organization they
// belong to on a FairPool (fair_pool.h): at most `concurrency` tests run at once, at most
// `concurrency_per_org` of them for one organization, and the queue is served round-robin between
// organizations. Each test's result is delivered by its deadline (timeoutSecs, default 30, capped
// by timeout_max_secs; time queued counts) even when a driver call blocks: the pool's watchdog
// completes the test with a `timeout` step and the stuck worker's late result is discarded.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "core/result.h"
#include "domain/connection.h"
#include "probe/driver.h"
#include "probe/egress.h"
#include "probe/fair_pool.h"
#include "probe/test_result.h"

namespace connreg::probe {

// Thread-safe: Submit and RunTest may be called from any thread.
class ProbeEngine {
 public:
  struct Options {
    int concurrency = 32;           // CONNREG_TEST_CONCURRENCY
    int concurrency_per_org = 0;    // CONNREG_TEST_CONCURRENCY_PER_ORG; 0: half, at least 1
    int timeout_max_secs = 60;      // CONNREG_TEST_TIMEOUT_MAX
    int default_timeout_secs = 30;  // for connections without timeoutSecs
    // CONNREG_EGRESS_DENY / CONNREG_EGRESS_ALLOW / CONNREG_EGRESS_ALLOW_LOOPBACK
    EgressPolicy egress;
    DriverSettings drivers;  // CONNREG_TLS_CA_FILE, CONNREG_BIGQUERY_API_URL
  };
  // The operator's settings as given (`connreg serve` flags or their CONNREG_ variables); an
  // empty string keeps the default.
  struct Settings {
    std::string test_concurrency;          // CONNREG_TEST_CONCURRENCY: 1..4096
    std::string test_concurrency_per_org;  // CONNREG_TEST_CONCURRENCY_PER_ORG: 1..4096, <= pool
    std::string test_timeout_max;          // CONNREG_TEST_TIMEOUT_MAX: 1..86400
    // CONNREG_EGRESS_DENY (added to the built-in deny list) and CONNREG_EGRESS_ALLOW: CIDR lists,
    // comma or space separated.
    std::string egress_deny;
    std::string egress_allow;
    std::string egress_allow_loopback;  // CONNREG_EGRESS_ALLOW_LOOPBACK: true or false
    DriverSettings drivers;             // taken as they are
  };
  // Finds the driver for a details.type (the registry's FindDriver; tests substitute their own).
  using DriverLookup = std::function<const Driver*(std::string_view type)>;
  using Done = std::function<void(TestResult)>;

  // The options `settings` ask for. A bad value is a kBadRequest error naming its variable; meant
  // for start-up.
  static Result<Options> ParseOptions(const Settings& settings);

  ProbeEngine(Options options, DriverLookup drivers);
  // Completes every queued test with a failed result, then waits for running drivers to return
  // (they end by their own timeouts, at the latest shortly after their deadlines).
  ~ProbeEngine() = default;
  ProbeEngine(const ProbeEngine&) = delete;
  ProbeEngine& operator=(const ProbeEngine&) = delete;

  // Queues a test of `c` with its opened secrets (field -> plaintext). `done` is called exactly
  // once, on an engine thread (a worker or the watchdog), never on the caller's; it must not
  // block. The deadline starts now: time spent queued counts against it.
  void Submit(domain::Connection c, std::map<std::string, std::string> secrets, Done done);

  // Queues a listing of `c`'s catalog (contract section 13) on the same workers, under the same
  // rules as a test (egress check, pinned addresses, the organization's share of the slots,
  // scrubbing), but with its own deadline of `deadline_secs` (the sync's or the lookup's). What
  // the driver finds goes to `sink` on the worker thread, narrowed to `request` (prefix, levels,
  // no system scopes) by the engine; the sink may be called after `done` (a stuck driver that
  // answers late) and must then refuse. `done` gets the steps: read SUCCESS when the listing
  // completed; it is called as Submit's is.
  void SubmitCatalog(domain::Connection c, std::map<std::string, std::string> secrets,
                     CatalogRequest request, std::shared_ptr<CatalogSink> sink, int deadline_secs,
                     Done done);

  // Submit and wait: for tools, tests and callers that are on a thread they may block.
  TestResult RunTest(const domain::Connection& c,
                     const std::map<std::string, std::string>& secrets);

  // The deadline a test of `c` gets, in seconds.
  int DeadlineSecs(const domain::Connection& c) const;

  // Driver calls in progress (including ones already timed out) and tests queued.
  using Stats = FairPool::Stats;
  Stats stats() const { return pool_.stats(); }

  const Options& options() const { return options_; }
  // The workers and their fairness rule, for other work that talks to warehouses for an
  // organization (the catalog sync): it shares the slots of the tests.
  FairPool& pool() { return pool_; }

 private:
  class TestJob;

  Options options_;
  DriverLookup drivers_;
  FairPool pool_;  // last: destroyed first, while the jobs may still use the members above
};

}  // namespace connreg::probe
