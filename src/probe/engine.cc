#include "probe/engine.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <future>

#include "metrics/metrics.h"
#include "probe/deadline.h"
#include "probe/scrub.h"
#include "probe/step_log.h"

namespace connreg::probe {
namespace {

using Clock = std::chrono::steady_clock;

Result<int> IntFromEnv(const char* name, int fallback, int lo, int hi) {
  const char* raw = std::getenv(name);
  if (!raw || !*raw) return fallback;
  std::string s(raw);
  if (s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) {
    return Error::BadRequest(std::string(name) + " must be an integer from " + std::to_string(lo) +
                             " to " + std::to_string(hi));
  }
  int v = std::stoi(s);
  if (v < lo || v > hi) {
    return Error::BadRequest(std::string(name) + " must be an integer from " + std::to_string(lo) +
                             " to " + std::to_string(hi));
  }
  return v;
}

}  // namespace

struct ProbeEngine::Job {
  Job(domain::Connection c, std::map<std::string, std::string> s, Done d, int secs)
      : connection(std::move(c)),
        secrets(std::move(s)),
        done(std::move(d)),
        submitted(Clock::now()),
        deadline(submitted + std::chrono::seconds(secs)),
        deadline_secs(secs),
        scrubber(secrets),
        steps(scrubber) {}

  domain::Connection connection;
  std::map<std::string, std::string> secrets;
  Done done;
  Clock::time_point submitted;
  Deadline deadline;
  int deadline_secs;
  Scrubber scrubber;  // before `steps`, which refers to it
  StepLog steps;
  // The steps a full run records, in order; the ones after the last recorded step are reported
  // SKIPPED.
  std::vector<std::string_view> plan;
  std::atomic<bool> started{false};
  std::atomic<bool> delivered{false};
  // Guarded by ProbeEngine::mu_.
  bool in_deadlines = false;
  std::multimap<Clock::time_point, std::weak_ptr<Job>>::iterator deadline_it;
};

Result<ProbeEngine::Options> ProbeEngine::OptionsFromEnv() {
  Options o;
  auto concurrency = IntFromEnv("CONNREG_TEST_CONCURRENCY", o.concurrency, 1, 4096);
  if (!concurrency) return concurrency.error();
  auto max = IntFromEnv("CONNREG_TEST_TIMEOUT_MAX", o.timeout_max_secs, 1, 86400);
  if (!max) return max.error();
  o.concurrency = *concurrency;
  o.timeout_max_secs = *max;
  std::vector<Cidr> deny = DefaultDenyList();
  std::vector<Cidr> allow;
  if (const char* raw = std::getenv("CONNREG_EGRESS_DENY")) {
    auto list = ParseCidrList(raw);
    if (!list) return Error::BadRequest("CONNREG_EGRESS_DENY: " + list.error().message);
    deny = std::move(*list);
  }
  if (const char* raw = std::getenv("CONNREG_EGRESS_ALLOW")) {
    auto list = ParseCidrList(raw);
    if (!list) return Error::BadRequest("CONNREG_EGRESS_ALLOW: " + list.error().message);
    allow = std::move(*list);
  }
  o.egress = EgressPolicy(std::move(deny), std::move(allow));
  return o;
}

ProbeEngine::ProbeEngine(Options options, DriverLookup drivers)
    : options_(std::move(options)), drivers_(std::move(drivers)) {
  options_.concurrency = std::max(1, options_.concurrency);
  options_.timeout_max_secs = std::max(1, options_.timeout_max_secs);
  metrics::SetPoolSize(metrics::Pool::kProbe, options_.concurrency);
  workers_.reserve(options_.concurrency);
  for (int i = 0; i < options_.concurrency; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  watchdog_ = std::thread([this] { WatchdogLoop(); });
}

ProbeEngine::~ProbeEngine() {
  std::deque<std::shared_ptr<Job>> pending;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    pending.swap(queue_);
  }
  metrics::AddPoolWaiting(metrics::Pool::kProbe, -static_cast<long>(pending.size()));
  work_cv_.notify_all();
  watchdog_cv_.notify_all();
  static const std::string kStopping = "the server stopped before the test could run";
  for (const auto& job : pending) Finish(job, &kStopping);
  for (std::thread& t : workers_) t.join();
  watchdog_.join();
}

int ProbeEngine::DeadlineSecs(const domain::Connection& c) const {
  int secs = c.timeout_secs.value_or(options_.default_timeout_secs);
  return std::clamp(secs, 1, options_.timeout_max_secs);
}

void ProbeEngine::Submit(domain::Connection c, std::map<std::string, std::string> secrets,
                         Done done) {
  int secs = DeadlineSecs(c);
  auto job = std::make_shared<Job>(std::move(c), std::move(secrets), std::move(done), secs);
  const domain::Connection& conn = job->connection;
  const Driver* driver = conn.use_oauth ? nullptr : drivers_(conn.type);
  job->plan = {step::kResolve, step::kConnect};
  if (driver && driver->UsesTls(conn.details)) job->plan.push_back(step::kTls);
  job->plan.push_back(step::kAuthenticate);
  job->plan.push_back(step::kQuery);
  if (conn.write_access) job->plan.push_back(step::kWrite);

  bool stopping;
  {
    std::lock_guard lock(mu_);
    stopping = stopping_;
    if (!stopping) {
      job->deadline_it = deadlines_.emplace(job->deadline.at(), job);
      job->in_deadlines = true;
      queue_.push_back(job);
    }
  }
  if (!stopping) metrics::AddPoolWaiting(metrics::Pool::kProbe, 1);
  if (stopping) {
    static const std::string kStopping = "the server is stopping";
    return Finish(job, &kStopping);
  }
  work_cv_.notify_one();
  watchdog_cv_.notify_one();
}

TestResult ProbeEngine::RunTest(const domain::Connection& c,
                                const std::map<std::string, std::string>& secrets) {
  auto promise = std::make_shared<std::promise<TestResult>>();
  std::future<TestResult> result = promise->get_future();
  Submit(c, secrets, [promise](TestResult r) { promise->set_value(std::move(r)); });
  return result.get();
}

ProbeEngine::Stats ProbeEngine::stats() const {
  std::lock_guard lock(mu_);
  Stats s;
  s.running = running_;
  for (const auto& job : queue_) s.queued += job->delivered ? 0 : 1;
  return s;
}

void ProbeEngine::WorkerLoop() {
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping
      job = std::move(queue_.front());
      queue_.pop_front();
      metrics::AddPoolWaiting(metrics::Pool::kProbe, -1);
      if (job->delivered) continue;  // timed out while it waited
      job->started = true;
      ++running_;
    }
    metrics::AddPoolInUse(metrics::Pool::kProbe, 1);
    Execute(job);
    metrics::AddPoolInUse(metrics::Pool::kProbe, -1);
    {
      std::lock_guard lock(mu_);
      --running_;
    }
    Finish(job, nullptr);
  }
}

void ProbeEngine::WatchdogLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (deadlines_.empty()) {
      watchdog_cv_.wait(lock);
      continue;
    }
    auto it = deadlines_.begin();
    if (Clock::now() < it->first) {
      // A copy: wait_until reads its deadline again after waking, and while the lock is released
      // the job may finish and erase this node (heap-use-after-free found by fuzz/fuzz_http).
      const Clock::time_point deadline = it->first;
      watchdog_cv_.wait_until(lock, deadline);
      continue;
    }
    std::shared_ptr<Job> job = it->second.lock();
    deadlines_.erase(it);
    if (!job) continue;
    job->in_deadlines = false;
    int ahead = running_;
    lock.unlock();
    std::string why =
        job->started
            ? "no answer within the test's deadline of " + std::to_string(job->deadline_secs) + " s"
            : "the test did not start within its deadline of " +
                  std::to_string(job->deadline_secs) + " s: " + std::to_string(ahead) +
                  " tests were running, the most this server runs at once is " +
                  std::to_string(options_.concurrency);
    Finish(job, &why);
    lock.lock();
  }
}

void ProbeEngine::Execute(const std::shared_ptr<Job>& job) {
  const domain::Connection& c = job->connection;
  StepLog& steps = job->steps;
  if (c.use_oauth) {
    return steps.Add(step::kAuthenticate, status::kFailed, code::kAuthFailed,
                     "OAuth connections are tested with a signed-in user's token; the registry "
                     "holds no credential to test this connection with");
  }
  const Driver* driver = drivers_(c.type);
  if (!driver) {
    return steps.Add(step::kConnect, status::kFailed, code::kDriverUnavailable,
                     "no " + c.type + " driver is built into this server");
  }
  std::string why;
  std::optional<Endpoint> endpoint = driver->Target(c.details, why);
  if (!endpoint) return steps.Add(step::kResolve, status::kFailed, code::kDnsFailure, why);

  steps.Begin(step::kResolve);
  Resolution resolved = ResolveAndCheck(endpoint->host, options_.egress);
  if (!resolved.code.empty()) return steps.Fail(step::kResolve, resolved.code, resolved.message);
  steps.Pass();

  ProbeRun run{c.details,          job->secrets,  c.write_access, *endpoint,
               resolved.addresses, job->deadline, steps,          options_.egress};
  try {
    driver->Run(run);
  } catch (const std::exception& e) {
    // Drivers do not throw; a bad_alloc or a library bug still must not lose the result.
    steps.Fail(step::kConnect, code::kProtocolError, std::string("driver error: ") + e.what());
  }
}

void ProbeEngine::Finish(const std::shared_ptr<Job>& job, const std::string* timeout_message) {
  if (job->delivered.exchange(true)) return;
  {
    std::lock_guard lock(mu_);
    if (job->in_deadlines) {
      deadlines_.erase(job->deadline_it);
      job->in_deadlines = false;
    }
  }
  std::vector<Step> steps =
      timeout_message ? job->steps.Close(code::kTimeout, *timeout_message)
                      : job->steps.Close(code::kProtocolError, "the driver stopped in this step");

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
    for (std::string_view name : job->plan) {
      if (find(name)) continue;
      steps.push_back({std::string(name), std::string(status::kFailed), 0,
                       std::string(code::kTimeout), job->scrubber.Scrub(*timeout_message)});
      break;
    }
  }
  // Steps after the last recorded one did not run.
  std::size_t last = 0;
  for (std::size_t i = 0; i < job->plan.size(); ++i) {
    if (find(job->plan[i])) last = i + 1;
  }
  for (std::size_t i = last; i < job->plan.size(); ++i) {
    steps.push_back({std::string(job->plan[i]), std::string(status::kSkipped), 0, "", ""});
  }

  TestResult r;
  const Step* query = find(step::kQuery);
  const Step* write = find(step::kWrite);
  r.read = query && query->status == status::kSuccess ? status::kSuccess : status::kFailed;
  r.write = !job->connection.write_access                ? status::kDisabled
            : write && write->status == status::kSuccess ? status::kSuccess
                                                         : status::kFailed;
  r.query_reached = query && query->status != status::kSkipped;
  r.steps = std::move(steps);
  r.duration_ms = std::chrono::duration<double, std::milli>(Clock::now() - job->submitted).count();
  Done done = std::move(job->done);
  done(std::move(r));
}

}  // namespace connreg::probe
