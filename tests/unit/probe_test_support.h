// Helpers shared by the probe tests: a connection to test, one engine for a test binary, and
// step lists that read well in a failure message.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "domain/connection.h"
#include "probe/drivers/registry.h"
#include "probe/engine.h"
#include "probe/scrub.h"
#include "probe/step_log.h"
#include "probe/test_result.h"

namespace connreg::probe::test_support {

// A saved connection of `type` with `details` (writeAccess in them turns the write step on).
inline domain::Connection MakeConnection(std::string type, boost::json::object details,
                                         std::optional<int> timeout_secs = 10) {
  domain::Connection c;
  c.connection_id = "00000000-0000-4000-8000-0000000000cc";
  c.type = std::move(type);
  c.write_access = details.contains("writeAccess");
  details["type"] = c.type;
  c.details = std::move(details);
  c.timeout_secs = timeout_secs;
  return c;
}

// The default options with loopback allowed (CONNREG_EGRESS_ALLOW_LOOPBACK=true): the servers and
// fakes of these tests listen on 127.0.0.1.
inline ProbeEngine::Options LoopbackOptions() {
  ProbeEngine::Options o;
  o.egress = EgressPolicy({}, {}, /*allow_loopback=*/true);
  return o;
}

// An engine with LoopbackOptions(), shared by a test binary's tests.
inline ProbeEngine& Engine() {
  static ProbeEngine* engine = new ProbeEngine(LoopbackOptions(), FindDriver);
  return *engine;
}

// The result as the API renders it.
inline std::string Describe(const TestResult& r) { return RenderTestResult(r); }

// "resolve:SUCCESS connect:FAILED/timeout ...".
inline std::string Steps(const TestResult& r) {
  std::string out;
  for (const Step& s : r.steps) {
    if (!out.empty()) out += " ";
    out += s.name + ":" + s.status + (s.code.empty() ? "" : "/" + s.code);
  }
  return out;
}

// A test with a deadline of D seconds must answer by about D (the watchdog delivers the result
// at the deadline): by D + kAnswerSlack. The slack allows a loaded 2-core CI machine (3.13 s was
// seen for D = 2 at load average 10), while a driver that ignored its deadline (the default is
// 30 s) still fails.
inline constexpr std::chrono::seconds kAnswerSlack{3};

// A port on 127.0.0.1 that nothing listens on (bound, then closed).
inline int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// A listener on 127.0.0.1 whose connections complete (the kernel accepts them into the backlog)
// but never receive a byte: a warehouse that hangs.
class BlackHole {
 public:
  BlackHole() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 128);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~BlackHole() { ::close(fd_); }
  BlackHole(const BlackHole&) = delete;
  BlackHole& operator=(const BlackHole&) = delete;
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

inline const Step* FindStep(const TestResult& r, std::string_view name) {
  for (const Step& s : r.steps) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

// The throwaway servers' database and roles (scripts/test-databases.sh).
inline constexpr const char* kDatabase = "connreg_probe";
inline constexpr const char* kWriter = "connreg_writer";
inline constexpr const char* kReader = "connreg_reader";

// A catalog listing by the driver of `type`, run as the engine runs a test (the same ProbeRun:
// egress-checked addresses under LoopbackOptions, a deadline `secs` away, a step log scrubbing
// `secrets`), into `sink`. The steps it recorded; a failed resolve is one FAILED resolve step.
inline std::vector<Step> RunIntrospect(const std::string& type, boost::json::object details,
                                       const std::map<std::string, std::string>& secrets,
                                       const CatalogRequest& request, CatalogSink& sink,
                                       int secs = 20) {
  details["type"] = type;
  const Driver* driver = FindDriver(type);
  if (!driver) return {{"resolve", std::string(status::kFailed), 0, "", "no driver " + type}};
  Scrubber scrubber(secrets);
  StepLog steps(scrubber);
  const DriverSettings settings;
  const EgressPolicy egress = LoopbackOptions().egress;
  std::string why;
  std::optional<Endpoint> endpoint = driver->Target(details, settings, why);
  Resolution resolved = endpoint ? ResolveAndCheck(endpoint->host, egress) : Resolution{};
  if (!endpoint || !resolved.code.empty()) {
    return {{"resolve", std::string(status::kFailed), 0, resolved.code, why + resolved.message}};
  }
  ProbeRun probe{details,
                 secrets,
                 /*write_access=*/false,
                 *endpoint,
                 resolved.addresses,
                 Deadline::In(std::chrono::seconds(secs)),
                 steps,
                 egress,
                 settings};
  CatalogRun run{probe, request, sink};
  driver->Introspect(run);
  return steps.Close(code::kProtocolError, "the driver left this step open");
}

// The throwaway servers' settings (scripts/test-databases.sh): a CONNREG_TEST_* variable, or the
// line of the KEY=VALUE file named by CONNREG_TEST_DB_ENV (what the CTest fixture sets); "" when
// neither has it.
inline std::string Env(const std::string& name) {
  if (const char* v = std::getenv(name.c_str()); v && *v) return v;
  static const std::map<std::string, std::string> file = [] {
    std::map<std::string, std::string> out;
    const char* path = std::getenv("CONNREG_TEST_DB_ENV");
    if (!path) return out;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("export ", 0) == 0) line = line.substr(7);
      auto eq = line.find('=');
      if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return out;
  }();
  auto it = file.find(name);
  return it == file.end() ? "" : it->second;
}

}  // namespace connreg::probe::test_support

// `const std::string var = Env(name)`, failing the test when the servers are not running: the
// tests against them are part of the suite, not optional.
#define REQUIRE_ENV(var, name)                                                         \
  const std::string var = ::connreg::probe::test_support::Env(name);                   \
  ASSERT_FALSE(var.empty())                                                            \
      << name << " is not set: run `eval \"$(scripts/test-databases.sh start DIR)\"` " \
      << "first (and `scripts/test-databases.sh stop DIR` after), or run through ctest"
