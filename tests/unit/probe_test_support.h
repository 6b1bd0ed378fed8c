// Helpers shared by the probe tests: a connection to test, one engine for a test binary, and
// step lists that read well in a failure message.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "domain/connection.h"
#include "probe/engine.h"
#include "probe/probe.h"
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

// An engine with the default options (loopback allowed), shared by a test binary's tests.
inline ProbeEngine& Engine() {
  static ProbeEngine* engine = new ProbeEngine(ProbeEngine::Options{});
  return *engine;
}

// The result as the API renders it.
inline std::string Describe(const TestResult& r) {
  return boost::json::serialize(RenderTestResult(r));
}

// "resolve:SUCCESS connect:FAILED/timeout ...".
inline std::string Steps(const TestResult& r) {
  std::string out;
  for (const Step& s : r.steps) {
    if (!out.empty()) out += " ";
    out += s.name + ":" + s.status + (s.code.empty() ? "" : "/" + s.code);
  }
  return out;
}

inline const Step* FindStep(const TestResult& r, std::string_view name) {
  for (const Step& s : r.steps) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

}  // namespace connreg::probe::test_support
