#include "probe/test_result.h"

#include <boost/json/array.hpp>

namespace connreg::probe {

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
    if (s.status != status::kFailed) continue;
    if (s.name == step::kWrite) {
      out["writeError"] = s.message;
    } else if (!out.contains("readError")) {
      out["readError"] = s.message;
    }
  }
  if (r.write == status::kFailed && !out.contains("writeError")) {
    out["writeError"] = "the write test did not run because the read test failed";
  }
  return out;
}

}  // namespace connreg::probe
