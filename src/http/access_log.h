// The access log: exactly one JSON line per request on the spdlog logger "access" (pattern "%v",
// stdout unless someone registered that logger first). Its fields never carry a query string, a
// header value or a body: those may hold tokens or secrets.
#pragma once

#include <memory>
#include <string_view>

#include <spdlog/logger.h>

namespace connreg::http {

struct AccessRecord {
  std::string_view request_id;
  std::string_view method;
  std::string_view route;  // route template set by the handler, "-" before routing
  int status = 0;
  double duration_ms = 0;
  std::string_view member_id;  // empty renders as null
  std::string_view remote;     // peer IP address
};

// Returns the "access" logger, creating it on stdout if nobody registered it. Thread-safe.
std::shared_ptr<spdlog::logger> AccessLogger();

// Writes `r` as one line {"time","requestId","method","route","status","durationMs","memberId",
// "remote"}; "time" is now, RFC 3339 UTC with milliseconds. Thread-safe.
void WriteAccessLine(spdlog::logger& logger, const AccessRecord& r);

}  // namespace connreg::http
