// Testing a connection against its warehouse (contract section 7). The engine resolves, checks
// egress, connects, authenticates and runs the read and write steps through one driver per
// warehouse family. This build has no drivers yet: every test reports `driver_unavailable`
// (or `auth_failed` for OAuth connections, which are tested with a user's token, never ours).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "domain/connection.h"

namespace connreg::probe {

struct Step {
  std::string name;    // resolve | connect | tls | authenticate | query | write
  std::string status;  // SUCCESS | FAILED | SKIPPED
  double duration_ms = 0;
  std::string code;     // empty when the step succeeded or was skipped
  std::string message;  // never contains a secret
};

struct TestResult {
  std::string read;   // SUCCESS | FAILED
  std::string write;  // SUCCESS | FAILED | DISABLED
  double duration_ms = 0;
  std::vector<Step> steps;
  bool query_reached = false;  // the read step ran a query: lastActiveAt moves
};

// Tests `c` with its opened secrets (field -> plaintext). Blocking; thread-safe.
TestResult RunTest(const domain::Connection& c,
                   const std::map<std::string, std::string>& secrets);

boost::json::object RenderTestResult(const TestResult& r);

}  // namespace connreg::probe
