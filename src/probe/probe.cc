#include "probe/probe.h"

#include <chrono>

namespace connreg::probe {

TestResult RunTest(const domain::Connection& c, const std::map<std::string, std::string>&) {
  auto start = std::chrono::steady_clock::now();
  TestResult r;
  r.read = "FAILED";
  r.write = c.write_access ? "FAILED" : "DISABLED";
  if (c.use_oauth) {
    r.steps.push_back({"authenticate", "FAILED", 0, "auth_failed",
                       "OAuth connections are tested with a signed-in user's token; the "
                       "registry holds no credential to test this connection with"});
  } else {
    r.steps.push_back({"connect", "FAILED", 0, "driver_unavailable",
                       "no " + c.type + " driver is built into this server"});
  }
  for (const char* later : {"query", "write"}) {
    if (std::string(later) == "write" && !c.write_access) continue;
    r.steps.push_back({later, "SKIPPED", 0, "", ""});
  }
  r.duration_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return r;
}

boost::json::object RenderTestResult(const TestResult& r) {
  boost::json::array steps;
  for (const Step& s : r.steps) {
    boost::json::object o{{"name", s.name}, {"status", s.status}, {"durationMs", s.duration_ms}};
    if (!s.code.empty()) o["code"] = s.code;
    if (!s.message.empty()) o["message"] = s.message;
    steps.push_back(std::move(o));
  }
  boost::json::object out{{"read", r.read},
                          {"write", r.write},
                          {"durationMs", r.duration_ms},
                          {"steps", std::move(steps)}};
  for (const Step& s : r.steps) {
    if (s.status != "FAILED") continue;
    if (s.name == "write") {
      out["writeError"] = s.message;
    } else if (!out.contains("readError")) {
      out["readError"] = s.message;
    }
  }
  return out;
}

}  // namespace connreg::probe
