#include "probe/engine.h"

#include <algorithm>
#include <exception>
#include <future>

#include "probe/deadline.h"
#include "probe/raw_connection.h"
#include "probe/scrub.h"
#include "probe/step_log.h"

namespace connreg::probe {
namespace {

using Clock = std::chrono::steady_clock;

Result<int> ParseInt(std::string_view name, const std::string& raw, int fallback, int lo, int hi) {
  if (raw.empty()) return fallback;
  if (raw.size() > 9 || raw.find_first_not_of("0123456789") != std::string::npos) {
    return Error::BadRequest(std::string(name) + " must be an integer from " + std::to_string(lo) +
                             " to " + std::to_string(hi));
  }
  int v = std::stoi(raw);
  if (v < lo || v > hi) {
    return Error::BadRequest(std::string(name) + " must be an integer from " + std::to_string(lo) +
                             " to " + std::to_string(hi));
  }
  return v;
}

Result<bool> ParseBool(std::string_view name, const std::string& raw, bool fallback) {
  if (raw.empty()) return fallback;
  if (raw == "true") return true;
  if (raw == "false") return false;
  return Error::BadRequest(std::string(name) + " must be true or false");
}

}  // namespace

// Narrows what a driver reports to the request: the prefix's subtree down to `levels` below it,
// without system scopes (a driver's queries usually narrow already; this is the guarantee).
class RequestFilter : public CatalogSink {
 public:
  RequestFilter(const CatalogRequest& request, CatalogSink& next)
      : request_(request), next_(next) {}
  bool Add(domain::WarehouseObject object) override {
    const auto& path = object.path;
    if (path.empty() || !domain::IsPathPrefix(request_.prefix, path)) return true;
    if (request_.levels >= 0 &&
        path.size() > request_.prefix.size() + static_cast<std::size_t>(request_.levels)) {
      return true;
    }
    // Every level above the object is a scope; a scope's own name counts too.
    std::size_t scopes = object.kind == domain::inode_kind::kScope ? path.size() : path.size() - 1;
    for (std::size_t i = 0; i < scopes; ++i) {
      if (domain::IsSystemScope(path[i])) return true;
    }
    return next_.Add(std::move(object));
  }

 private:
  const CatalogRequest& request_;
  CatalogSink& next_;
};

// What a catalog job lists and where it goes.
struct CatalogTask {
  CatalogRequest request;
  std::shared_ptr<CatalogSink> sink;
};

class ProbeEngine::TestJob : public FairPool::Job {
 public:
  TestJob(const ProbeEngine& engine, domain::Connection c, std::map<std::string, std::string> s,
          Done d, int secs, std::optional<CatalogTask> catalog = std::nullopt)
      : engine_(engine),
        connection_(std::move(c)),
        secrets_(std::move(s)),
        done_(std::move(d)),
        submitted_(Clock::now()),
        deadline_(submitted_ + std::chrono::seconds(secs)),
        deadline_secs_(secs),
        scrubber_(secrets_),
        steps_(scrubber_),
        catalog_(std::move(catalog)) {
    if (catalog_) connection_.write_access = false;  // a listing writes nothing
    const Driver* driver = connection_.use_oauth ? nullptr : engine_.drivers_(connection_.type);
    plan_ = {step::kResolve, step::kConnect};
    if (driver && driver->UsesTls(connection_.details)) plan_.push_back(step::kTls);
    plan_.push_back(step::kAuthenticate);
    plan_.push_back(step::kQuery);
    if (connection_.write_access) plan_.push_back(step::kWrite);
  }

  const Deadline& deadline() const { return deadline_; }
  const std::string& organization() const { return connection_.organization_id; }

  void Run() override;
  void Finish(const FairPool::Expiry* expiry) override;

 private:
  // The watchdog's verdict in words: why the test did not finish by its deadline.
  std::string ExpiryMessage(const FairPool::Expiry& x) const;

  const ProbeEngine& engine_;
  domain::Connection connection_;
  std::map<std::string, std::string> secrets_;
  Done done_;
  Clock::time_point submitted_;
  Deadline deadline_;
  int deadline_secs_;
  Scrubber scrubber_;  // before `steps_`, which refers to it
  StepLog steps_;
  // The steps a full run records, in order; the ones after the last recorded step are reported
  // SKIPPED.
  std::vector<std::string_view> plan_;
  std::optional<CatalogTask> catalog_;  // set: a catalog listing rather than a test
};

Result<ProbeEngine::Options> ProbeEngine::ParseOptions(const Settings& settings) {
  Options o;
  auto concurrency =
      ParseInt("CONNREG_TEST_CONCURRENCY", settings.test_concurrency, o.concurrency, 1, 4096);
  if (!concurrency) return concurrency.error();
  auto max =
      ParseInt("CONNREG_TEST_TIMEOUT_MAX", settings.test_timeout_max, o.timeout_max_secs, 1, 86400);
  if (!max) return max.error();
  o.concurrency = *concurrency;
  o.timeout_max_secs = *max;
  auto per_org =
      ParseInt("CONNREG_TEST_CONCURRENCY_PER_ORG", settings.test_concurrency_per_org, 0, 1, 4096);
  if (!per_org) return per_org.error();
  if (*per_org > o.concurrency) {
    return Error::BadRequest(
        "CONNREG_TEST_CONCURRENCY_PER_ORG must be at most "
        "CONNREG_TEST_CONCURRENCY (" +
        std::to_string(o.concurrency) + ")");
  }
  o.concurrency_per_org = *per_org;
  std::vector<Cidr> deny;
  std::vector<Cidr> allow;
  if (!settings.egress_deny.empty()) {
    auto list = ParseCidrList(settings.egress_deny);
    if (!list) return Error::BadRequest("CONNREG_EGRESS_DENY: " + list.error().message);
    deny = std::move(*list);
  }
  if (!settings.egress_allow.empty()) {
    auto list = ParseCidrList(settings.egress_allow);
    if (!list) return Error::BadRequest("CONNREG_EGRESS_ALLOW: " + list.error().message);
    allow = std::move(*list);
  }
  auto loopback = ParseBool(kAllowLoopbackVariable, settings.egress_allow_loopback, false);
  if (!loopback) return loopback.error();
  o.egress = EgressPolicy(std::move(deny), std::move(allow), *loopback);
  o.drivers = settings.drivers;
  return o;
}

ProbeEngine::ProbeEngine(Options options, DriverLookup drivers)
    : options_(std::move(options)),
      drivers_(std::move(drivers)),
      pool_(std::max(1, options_.concurrency), options_.concurrency_per_org > 0
                                                   ? options_.concurrency_per_org
                                                   : std::max(1, options_.concurrency) / 2) {
  options_.concurrency = pool_.workers();
  options_.concurrency_per_org = pool_.per_key_cap();
  options_.timeout_max_secs = std::max(1, options_.timeout_max_secs);
}

int ProbeEngine::DeadlineSecs(const domain::Connection& c) const {
  int secs = c.timeout_secs.value_or(options_.default_timeout_secs);
  return std::clamp(secs, 1, options_.timeout_max_secs);
}

void ProbeEngine::Submit(domain::Connection c, std::map<std::string, std::string> secrets,
                         Done done) {
  int secs = DeadlineSecs(c);
  auto job =
      std::make_shared<TestJob>(*this, std::move(c), std::move(secrets), std::move(done), secs);
  std::string org = job->organization();
  Clock::time_point deadline = job->deadline().at();
  pool_.Submit(std::move(org), deadline, std::move(job));
}

void ProbeEngine::SubmitCatalog(domain::Connection c, std::map<std::string, std::string> secrets,
                                CatalogRequest request, std::shared_ptr<CatalogSink> sink,
                                int deadline_secs, Done done) {
  auto job = std::make_shared<TestJob>(*this, std::move(c), std::move(secrets), std::move(done),
                                       std::max(1, deadline_secs),
                                       CatalogTask{std::move(request), std::move(sink)});
  std::string org = job->organization();
  Clock::time_point deadline = job->deadline().at();
  pool_.Submit(std::move(org), deadline, std::move(job));
}

TestResult ProbeEngine::RunTest(const domain::Connection& c,
                                const std::map<std::string, std::string>& secrets) {
  auto promise = std::make_shared<std::promise<TestResult>>();
  std::future<TestResult> result = promise->get_future();
  Submit(c, secrets, [promise](TestResult r) { promise->set_value(std::move(r)); });
  return result.get();
}

std::string ProbeEngine::TestJob::ExpiryMessage(const FairPool::Expiry& x) const {
  const std::string what = catalog_ ? "listing" : "test";
  if (x.stopping) {
    return x.started ? "the server stopped before the " + what + " finished"
                     : "the server stopped before the " + what + " could run";
  }
  std::string deadline = "deadline of " + std::to_string(deadline_secs_) + " s";
  if (x.started) return "no answer within the " + what + "'s " + deadline;
  std::string why = "the " + what + " did not start within its " + deadline + ": ";
  if (x.running_for_key >= x.per_key_cap) {
    return why + std::to_string(x.running_for_key) +
           " tests of this organization were running, the most one organization runs at once "
           "is " +
           std::to_string(x.per_key_cap);
  }
  return why + std::to_string(x.running) +
         " tests were running, the most this server runs at once is " + std::to_string(x.workers);
}

void ProbeEngine::TestJob::Run() {
  const domain::Connection& c = connection_;
  StepLog& steps = steps_;
  if (c.use_oauth) {
    return steps.Add(step::kAuthenticate, status::kFailed, code::kAuthFailed,
                     "OAuth connections are tested with a signed-in user's token; the registry "
                     "holds no credential to test this connection with");
  }
  const Driver* driver = engine_.drivers_(c.type);
  if (!driver) {
    return steps.Add(step::kConnect, status::kFailed, code::kDriverUnavailable,
                     "no " + c.type + " driver is built into this server");
  }
  std::string why;
  std::optional<Endpoint> endpoint = driver->Target(c.details, engine_.options_.drivers, why);
  if (!endpoint) return steps.Add(step::kResolve, status::kFailed, code::kDnsFailure, why);

  steps.Begin(step::kResolve);
  const EgressPolicy& egress = engine_.options_.egress;
  Resolution resolved = ResolveAndCheck(endpoint->host, egress);
  if (!resolved.code.empty()) return steps.Fail(step::kResolve, resolved.code, resolved.message);
  steps.Pass();
  PreferReachable(resolved.addresses, endpoint->port, deadline_);

  ProbeRun run{
      c.details, secrets_, c.write_access,          *endpoint, resolved.addresses, deadline_,
      steps,     egress,   engine_.options_.drivers};
  try {
    if (catalog_) {
      RequestFilter filter(catalog_->request, *catalog_->sink);
      CatalogRun listing{run, catalog_->request, filter};
      driver->Introspect(listing);
    } else {
      driver->Run(run);
    }
  } catch (const std::exception& e) {
    // Drivers do not throw; a bad_alloc or a library bug still must not lose the result.
    steps.Fail(step::kConnect, code::kProtocolError, std::string("driver error: ") + e.what());
  }
}

void ProbeEngine::TestJob::Finish(const FairPool::Expiry* expiry) {
  const std::string timeout = expiry ? ExpiryMessage(*expiry) : "";
  const std::string* timeout_message = expiry ? &timeout : nullptr;
  std::vector<Step> steps =
      timeout_message ? steps_.Close(code::kTimeout, *timeout_message)
                      : steps_.Close(code::kProtocolError, "the driver stopped in this step");

  auto find = [&](std::string_view name) -> const Step* {
    for (const Step& s : steps) {
      if (s.name == name) return &s;
    }
    return nullptr;
  };
  bool any_failed = std::any_of(steps.begin(), steps.end(),
                                [](const Step& s) { return s.status == status::kFailed; });
  // Timed out between two steps (or before the first): blame the next one.
  if (timeout_message && !any_failed) {
    for (std::string_view name : plan_) {
      if (find(name)) continue;
      steps.push_back({std::string(name), std::string(status::kFailed), 0,
                       std::string(code::kTimeout), scrubber_.Scrub(*timeout_message)});
      break;
    }
  }
  // Steps after the last recorded one did not run.
  std::size_t last = 0;
  for (std::size_t i = 0; i < plan_.size(); ++i) {
    if (find(plan_[i])) last = i + 1;
  }
  for (std::size_t i = last; i < plan_.size(); ++i) {
    steps.push_back({std::string(plan_[i]), std::string(status::kSkipped), 0, "", ""});
  }

  TestResult r;
  const Step* query = find(step::kQuery);
  const Step* write = find(step::kWrite);
  r.read = query && query->status == status::kSuccess ? status::kSuccess : status::kFailed;
  r.write = !connection_.write_access                    ? status::kDisabled
            : write && write->status == status::kSuccess ? status::kSuccess
                                                         : status::kFailed;
  r.query_reached = query && query->status != status::kSkipped;
  r.steps = std::move(steps);
  r.duration_ms = std::chrono::duration<double, std::milli>(Clock::now() - submitted_).count();
  Done done = std::move(done_);
  done(std::move(r));
}

}  // namespace connreg::probe
