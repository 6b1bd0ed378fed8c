// The outcome of a connection test (contract section 7) and its JSON rendering.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/json_write.h"

namespace connreg::probe {

// Step names, statuses and failure codes of contract section 7.
namespace step {
inline constexpr std::string_view kResolve = "resolve";
inline constexpr std::string_view kConnect = "connect";
inline constexpr std::string_view kTls = "tls";
inline constexpr std::string_view kAuthenticate = "authenticate";
inline constexpr std::string_view kQuery = "query";
inline constexpr std::string_view kWrite = "write";
}  // namespace step

namespace status {
inline constexpr std::string_view kSuccess = "SUCCESS";
inline constexpr std::string_view kFailed = "FAILED";
inline constexpr std::string_view kSkipped = "SKIPPED";
inline constexpr std::string_view kDisabled = "DISABLED";
}  // namespace status

namespace code {
inline constexpr std::string_view kDnsFailure = "dns_failure";
inline constexpr std::string_view kEgressDenied = "egress_denied";
inline constexpr std::string_view kConnectionRefused = "connection_refused";
inline constexpr std::string_view kTimeout = "timeout";
inline constexpr std::string_view kTlsFailure = "tls_failure";
inline constexpr std::string_view kAuthFailed = "auth_failed";
inline constexpr std::string_view kPermissionDenied = "permission_denied";
inline constexpr std::string_view kNotFound = "not_found";
inline constexpr std::string_view kProtocolError = "protocol_error";
inline constexpr std::string_view kDriverUnavailable = "driver_unavailable";
}  // namespace code

struct Step {
  std::string name;    // resolve | connect | tls | authenticate | query | write
  std::string status;  // SUCCESS | FAILED | SKIPPED
  double duration_ms = 0;
  std::string code;     // empty unless FAILED
  std::string message;  // never contains a secret
};

struct TestResult {
  std::string read;   // SUCCESS | FAILED
  std::string write;  // SUCCESS | FAILED | DISABLED
  double duration_ms = 0;
  std::vector<Step> steps;
  bool query_reached = false;  // the read query was sent: lastActiveAt moves
};

// {"read","write","durationMs","steps":[{"name","status","durationMs","code"?,"message"?}],
//  "readError"?,"writeError"?}: readError is the message of the first failed read step,
// writeError the message of the failed write step (or why the write was not tried). Durations
// follow the server's number rule (FormatServerNumber: 1.07, 0).
void WriteTestResult(JsonWriter& w, const TestResult& r);
std::string RenderTestResult(const TestResult& r);
// The "steps" array alone, as a sync's record keeps it.
std::string RenderTestSteps(const std::vector<Step>& steps);

}  // namespace connreg::probe
