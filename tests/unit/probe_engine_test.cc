// The engine with stand-in drivers (queueing, concurrency bound, watchdog) and with the real
// drivers against local sockets that refuse or never answer.
#include "probe/engine.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>

#include <boost/json/parse.hpp>

#include "probe_test_support.h"

namespace connreg::probe {
namespace {

using test_support::BlackHole;
using test_support::ClosedPort;
using test_support::FindStep;
using test_support::LoopbackOptions;
using test_support::MakeConnection;

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string Names(const TestResult& r) {
  std::string out;
  for (const Step& s : r.steps)
    out += s.name + ":" + s.status + (s.code.empty() ? "" : "/" + s.code) + " ";
  return out;
}

// A driver that records every step as passed after `work`, and counts how many run at once.
class CountingDriver : public Driver {
 public:
  int PathDepth() const override { return 2; }
  void Introspect(CatalogRun&) const override {}
  explicit CountingDriver(std::chrono::milliseconds work) : work_(work) {}
  std::optional<Endpoint> Target(const boost::json::object&, const DriverSettings&,
                                 std::string&) const override {
    return Endpoint{"127.0.0.1", 1};
  }
  bool UsesTls(const boost::json::object&) const override { return false; }
  void Run(ProbeRun& run) const override {
    int now = ++running_;
    int seen = max_.load();
    while (now > seen && !max_.compare_exchange_weak(seen, now)) {
    }
    run.steps.Begin(step::kConnect);
    std::this_thread::sleep_for(work_);
    run.steps.Begin(step::kAuthenticate);
    run.steps.Begin(step::kQuery);
    run.steps.Pass();
    --running_;
  }
  int max() const { return max_; }

 private:
  std::chrono::milliseconds work_;
  mutable std::atomic<int> running_{0};
  mutable std::atomic<int> max_{0};
};

// A driver whose query never returns until released: a library call that ignores its timeouts.
class StuckDriver : public Driver {
 public:
  int PathDepth() const override { return 2; }
  void Introspect(CatalogRun&) const override {}
  std::optional<Endpoint> Target(const boost::json::object&, const DriverSettings&,
                                 std::string&) const override {
    return Endpoint{"127.0.0.1", 1};
  }
  bool UsesTls(const boost::json::object&) const override { return false; }
  void Run(ProbeRun& run) const override {
    run.steps.Begin(step::kConnect);
    run.steps.Begin(step::kAuthenticate);
    run.steps.Begin(step::kQuery);
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return released_; });
    run.steps.Pass();  // too late: ignored
  }
  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool released_ = false;
};

TEST(ProbeEngine, RunsAtMostConcurrencyAtOnceAndQueuesTheRestInOrder) {
  CountingDriver driver(150ms);
  ProbeEngine::Options options = LoopbackOptions();
  options.concurrency = 3;
  options.concurrency_per_org = 3;  // one organization may use the whole pool here
  ProbeEngine engine(options, [&](std::string_view) { return &driver; });

  constexpr int kTests = 10;
  std::mutex mu;
  std::vector<int> order;
  std::vector<std::promise<TestResult>> results(kTests);
  auto start = Clock::now();
  for (int i = 0; i < kTests; ++i) {
    engine.Submit(MakeConnection("postgres", {{"host", "h"}}), {}, [&, i](TestResult r) {
      {
        std::lock_guard lock(mu);
        order.push_back(i);
      }
      results[i].set_value(std::move(r));
    });
  }
  EXPECT_GE(engine.stats().queued, kTests - 3 - 1);
  for (auto& p : results) {
    TestResult r = p.get_future().get();
    EXPECT_EQ(r.read, "SUCCESS") << Names(r);
    EXPECT_EQ(r.write, "DISABLED");
    EXPECT_TRUE(r.query_reached);
  }
  double took = Seconds(Clock::now() - start);
  EXPECT_EQ(driver.max(), 3);
  EXPECT_GE(took, 4 * 0.150 - 0.01) << "10 tests of 150 ms, 3 at a time: 4 rounds";
  // FIFO: a test never finishes a full round ahead of one submitted earlier.
  for (int k = 0; k < kTests; ++k) EXPECT_LE(std::abs(order[k] - k), 2) << k;
  EXPECT_EQ(engine.stats().running, 0);
}

TEST(ProbeEngine, WatchdogDeliversATimeoutWhenADriverBlocks) {
  StuckDriver driver;
  ProbeEngine::Options options = LoopbackOptions();
  options.concurrency = 1;
  ProbeEngine engine(options, [&](std::string_view) { return &driver; });

  std::atomic<int> calls{0};
  std::promise<TestResult> first;
  std::promise<TestResult> queued;
  auto start = Clock::now();
  engine.Submit(
      MakeConnection("postgres", {{"host", "h"}, {"writeAccess", {{"writeSchema", "s"}}}}, 1), {},
      [&](TestResult r) {
        ++calls;
        first.set_value(std::move(r));
      });
  engine.Submit(MakeConnection("postgres", {{"host", "h"}}, 1), {},
                [&](TestResult r) { queued.set_value(std::move(r)); });

  TestResult r = first.get_future().get();
  double took = Seconds(Clock::now() - start);
  EXPECT_GE(took, 0.99);
  EXPECT_LT(took, 2.0) << "deadline 1 s, delivered after " << took << " s";
  std::printf(
      "[ timing ] stuck driver: watchdog delivered the timeout after %.3f s for a 1 s deadline\n",
      took);
  EXPECT_EQ(r.read, "FAILED");
  EXPECT_EQ(r.write, "FAILED");
  EXPECT_TRUE(r.query_reached);
  const Step* q = FindStep(r, "query");
  ASSERT_NE(q, nullptr) << Names(r);
  EXPECT_EQ(q->status, "FAILED");
  EXPECT_EQ(q->code, "timeout");
  EXPECT_EQ(FindStep(r, "write")->status, "SKIPPED");
  EXPECT_EQ(FindStep(r, "connect")->status, "SUCCESS");

  // The second test never started: its only worker is stuck. It times out in the queue.
  TestResult q2 = queued.get_future().get();
  EXPECT_LT(Seconds(Clock::now() - start), 2.0);
  ASSERT_FALSE(q2.steps.empty());
  EXPECT_EQ(q2.steps[0].name, "resolve");
  EXPECT_EQ(q2.steps[0].code, "timeout");
  EXPECT_NE(q2.steps[0].message.find("did not start"), std::string::npos) << q2.steps[0].message;
  EXPECT_FALSE(q2.query_reached);

  EXPECT_EQ(engine.stats().running, 1) << "the stuck call still holds its slot";
  driver.Release();
  for (int i = 0; i < 100 && engine.stats().running; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(engine.stats().running, 0);
  EXPECT_EQ(calls.load(), 1) << "the late result is discarded";
}

TEST(ProbeEngine, DeadlineIsTimeoutSecsCappedByTheMaximum) {
  ProbeEngine::Options options = LoopbackOptions();
  options.concurrency = 1;
  options.timeout_max_secs = 60;
  ProbeEngine engine(options, FindDriver);
  EXPECT_EQ(engine.DeadlineSecs(MakeConnection("postgres", {}, std::nullopt)), 30);
  EXPECT_EQ(engine.DeadlineSecs(MakeConnection("postgres", {}, 5)), 5);
  EXPECT_EQ(engine.DeadlineSecs(MakeConnection("postgres", {}, 86400)), 60);
}

TEST(ProbeEngine, OAuthAndMissingDriversFailWithoutConnecting) {
  ProbeEngine engine(LoopbackOptions(), FindDriver);
  domain::Connection oauth = MakeConnection("snowflake", {{"account", "a"}, {"useOauth", true}});
  oauth.use_oauth = true;
  TestResult r = engine.RunTest(oauth, {});
  EXPECT_EQ(r.read, "FAILED");
  ASSERT_FALSE(r.steps.empty());
  EXPECT_EQ(r.steps[0].name, "authenticate");
  EXPECT_EQ(r.steps[0].code, "auth_failed");
  EXPECT_NE(r.steps[0].message.find("signed-in user's token"), std::string::npos);
  EXPECT_EQ(FindStep(r, "query")->status, "SKIPPED");

  // Every contract type has a driver; a type this build does not know still answers cleanly.
  for (const char* type : {"teradata", "oracle"}) {
    TestResult u = engine.RunTest(MakeConnection(type, {{"host", "h"}}), {});
    EXPECT_EQ(u.read, "FAILED");
    ASSERT_FALSE(u.steps.empty());
    EXPECT_EQ(u.steps[0].code, "driver_unavailable") << type;
    EXPECT_NE(u.steps[0].message.find(type), std::string::npos) << u.steps[0].message;
    EXPECT_FALSE(u.query_reached);
  }
}

TEST(ProbeEngine, DeniedAddressFailsResolveWithEgressDenied) {
  ProbeEngine engine(LoopbackOptions(), FindDriver);
  for (const char* type : {"postgres", "mysql"}) {
    TestResult r = engine.RunTest(
        MakeConnection(type, {{"host", "169.254.169.254"}, {"port", 5432}, {"user", "u"}}), {});
    ASSERT_FALSE(r.steps.empty());
    EXPECT_EQ(r.steps[0].name, "resolve");
    EXPECT_EQ(r.steps[0].status, "FAILED");
    EXPECT_EQ(r.steps[0].code, "egress_denied") << r.steps[0].message;
    EXPECT_EQ(FindStep(r, "connect")->status, "SKIPPED");
    EXPECT_EQ(r.read, "FAILED");
  }
  ProbeEngine::Options allow_only_ten;
  allow_only_ten.egress = EgressPolicy({}, {*ParseCidr("10.0.0.0/8")});
  ProbeEngine strict(allow_only_ten, FindDriver);
  TestResult r = strict.RunTest(MakeConnection("postgres", {{"host", "127.0.0.1"}}), {});
  EXPECT_EQ(r.steps[0].code, "egress_denied");
}

TEST(ProbeEngine, UnresolvableHostFailsResolveWithDnsFailure) {
  ProbeEngine engine(LoopbackOptions(), FindDriver);
  TestResult r = engine.RunTest(MakeConnection("postgres", {{"host", "no-such-host.invalid"}}), {});
  EXPECT_EQ(r.steps[0].name, "resolve");
  EXPECT_EQ(r.steps[0].code, "dns_failure");
}

TEST(ProbeEngine, ClosedPortIsConnectionRefused) {
  ProbeEngine engine(LoopbackOptions(), FindDriver);
  int port = ClosedPort();
  for (const char* type : {"postgres", "mysql"}) {
    TestResult r = engine.RunTest(
        MakeConnection(type,
                       {{"host", "127.0.0.1"}, {"port", port}, {"database", "d"}, {"user", "u"}}),
        {{"password", "pw"}});
    const Step* connect = FindStep(r, "connect");
    ASSERT_NE(connect, nullptr) << Names(r);
    EXPECT_EQ(connect->status, "FAILED") << type;
    EXPECT_EQ(connect->code, "connection_refused") << type << ": " << connect->message;
    EXPECT_EQ(FindStep(r, "authenticate")->status, "SKIPPED");
    EXPECT_FALSE(r.query_reached);
  }
}

TEST(ProbeEngine, ServerThatNeverAnswersTimesOutWithinTheDeadline) {
  BlackHole hole;
  ProbeEngine engine(LoopbackOptions(), FindDriver);
  for (const char* type : {"postgres", "mysql"}) {
    for (bool tls : {false, true}) {
      auto start = Clock::now();
      TestResult r = engine.RunTest(MakeConnection(type,
                                                   {{"host", "127.0.0.1"},
                                                    {"port", hole.port()},
                                                    {"database", "d"},
                                                    {"user", "u"},
                                                    {"useTls", tls}},
                                                   /*timeout_secs=*/2),
                                    {{"password", "pw"}});
      double took = Seconds(Clock::now() - start);
      EXPECT_LT(took, 3.0) << type << " tls=" << tls;
      EXPECT_GE(took, 1.9) << type << " tls=" << tls;
      bool timed_out = false;
      for (const Step& s : r.steps) timed_out = timed_out || s.code == "timeout";
      EXPECT_TRUE(timed_out) << type << " tls=" << tls << ": " << Names(r);
      EXPECT_EQ(r.read, "FAILED");
      std::printf(
          "[ timing ] %s tls=%d black hole: timeout delivered after %.2f s for a 2 s deadline "
          "(%s)\n",
          type, tls, took, Names(r).c_str());
    }
  }
}

TEST(ProbeRender, RendersStepsAndErrors) {
  TestResult r;
  r.read = "SUCCESS";
  r.write = "FAILED";
  r.duration_ms = 12.5;
  r.steps = {{"resolve", "SUCCESS", 1, "", ""},
             {"query", "SUCCESS", 2, "", ""},
             {"write", "FAILED", 3, "permission_denied", "no CREATE"}};
  boost::system::error_code ec;
  boost::json::object o = boost::json::parse(RenderTestResult(r), ec).as_object();
  EXPECT_EQ(o.at("read"), "SUCCESS");
  EXPECT_EQ(o.at("write"), "FAILED");
  EXPECT_EQ(o.at("writeError"), "no CREATE");
  EXPECT_FALSE(o.contains("readError"));
  const auto& steps = o.at("steps").as_array();
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_FALSE(steps[0].as_object().contains("code"));
  EXPECT_EQ(steps[2].as_object().at("code"), "permission_denied");

  TestResult failed;
  failed.read = "FAILED";
  failed.write = "FAILED";
  failed.steps = {{"connect", "FAILED", 1, "connection_refused", "refused"},
                  {"query", "SKIPPED", 0, "", ""},
                  {"write", "SKIPPED", 0, "", ""}};
  o = boost::json::parse(RenderTestResult(failed), ec).as_object();
  EXPECT_EQ(o.at("readError"), "refused");
  EXPECT_NE(o.at("writeError").as_string().find("read test failed"), std::string::npos);
}

TEST(ProbeRender, DurationsFollowTheServersNumberRule) {
  TestResult r;
  r.read = "FAILED";
  r.write = "FAILED";
  r.duration_ms = 1.065807;
  r.steps = {{"resolve", "SUCCESS", 0.0, "", ""},
             {"connect", "FAILED", 12.3456, "connection_refused", "refused \"here\""},
             {"write", "SKIPPED", 0.5, "", ""}};
  EXPECT_EQ(
      RenderTestResult(r),
      R"({"read":"FAILED","write":"FAILED","durationMs":1.07,"steps":[)"
      R"({"name":"resolve","status":"SUCCESS","durationMs":0},)"
      R"({"name":"connect","status":"FAILED","durationMs":12.35,"code":"connection_refused",)"
      R"("message":"refused \"here\""},{"name":"write","status":"SKIPPED","durationMs":0.5}],)"
      R"("readError":"refused \"here\"",)"
      R"("writeError":"the write test did not run because the read test failed"})");
  // A sync's record keeps the same steps array.
  EXPECT_NE(RenderTestResult(r).find("\"steps\":" + RenderTestSteps(r.steps) + ","),
            std::string::npos);
}

TEST(ProbeRender, WriteErrorWithoutAReadErrorKeepsItsPlace) {
  TestResult r;
  r.read = "SUCCESS";
  r.write = "FAILED";
  r.steps = {{"write", "FAILED", 1, "permission_denied", "no"}};
  EXPECT_EQ(RenderTestResult(r),
            R"({"read":"SUCCESS","write":"FAILED","durationMs":0,"steps":[{"name":"write",)"
            R"("status":"FAILED","durationMs":1,"code":"permission_denied","message":"no"}],)"
            R"("writeError":"no"})");
}

TEST(ProbeEngine, ParseOptionsRejectsBadValuesNamingTheirVariable) {
  ProbeEngine::Settings settings;
  settings.egress_deny = "10.0.0.0/8, not-a-cidr";
  auto bad = ProbeEngine::ParseOptions(settings);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("CONNREG_EGRESS_DENY"), std::string::npos);

  settings = {};
  settings.test_concurrency = "0";
  EXPECT_FALSE(ProbeEngine::ParseOptions(settings).ok());
  settings.test_concurrency = "4";
  settings.test_concurrency_per_org = "5";
  auto above_pool = ProbeEngine::ParseOptions(settings);
  ASSERT_FALSE(above_pool.ok());
  EXPECT_NE(above_pool.error().message.find("CONNREG_TEST_CONCURRENCY_PER_ORG"), std::string::npos);
  settings.test_concurrency_per_org = "3";
  settings.egress_allow_loopback = "yes";
  auto not_bool = ProbeEngine::ParseOptions(settings);
  ASSERT_FALSE(not_bool.ok());
  EXPECT_NE(not_bool.error().message.find("CONNREG_EGRESS_ALLOW_LOOPBACK must be true or false"),
            std::string::npos);
  settings.egress_allow_loopback = "true";
  settings.test_timeout_max = "7";
  settings.egress_allow = "10.0.0.0/8";
  settings.drivers.tls_ca_file = "/etc/connreg/ca.pem";
  auto ok = ProbeEngine::ParseOptions(settings);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->concurrency, 4);
  EXPECT_EQ(ok->concurrency_per_org, 3);
  EXPECT_EQ(ok->timeout_max_secs, 7);
  EXPECT_TRUE(ok->egress.allow_loopback());
  EXPECT_EQ(ok->egress.allow().size(), 1u);
  EXPECT_TRUE(ok->egress.deny().empty()) << "the built-in denials are not the operator's list";
  EXPECT_EQ(ok->drivers.tls_ca_file, "/etc/connreg/ca.pem");

  auto defaults = ProbeEngine::ParseOptions({});
  ASSERT_TRUE(defaults.ok());
  EXPECT_FALSE(defaults->egress.allow_loopback());
  ProbeEngine engine(*defaults, [](std::string_view) { return nullptr; });
  EXPECT_EQ(engine.options().concurrency_per_org, 16) << "half of the default pool of 32";
}

TEST(ProbeEngine, RedshiftDefaultsToPort5439AndMysqlNeedsAPort) {
  std::string why;
  const DriverSettings settings;
  auto redshift = FindDriver("redshift")->Target({{"host", "h"}}, settings, why);
  ASSERT_TRUE(redshift.has_value());
  EXPECT_EQ(redshift->port, 5439);
  auto postgres = FindDriver("postgres")->Target({{"host", "h"}}, settings, why);
  EXPECT_EQ(postgres->port, 5432);
  EXPECT_EQ(FindDriver("alloydb")->Target({{"host", "h"}, {"port", 6000}}, settings, why)->port,
            6000);
  EXPECT_FALSE(FindDriver("mysql")->Target({{"host", "h"}}, settings, why).has_value());
}

}  // namespace
}  // namespace connreg::probe
