// Structured application log: one JSON object per line on stdout, through spdlog (pattern "%v",
// so the line is exactly the JSON). Never pass a secret, a token or a request body as a field.
#pragma once

#include <cstdint>
#include <string_view>

#include <boost/json/object.hpp>

namespace connreg::log {

enum class Level { kDebug, kInfo, kWarn, kError };

// Registers the "app" and "access" loggers on one shared stdout sink. Lines are appended to a
// buffer that a thread of its own writes out in batches of 8 KiB, or after 200 ms (application
// events at once): a write(2) per request is a measurable share of a small request's cost, and a
// reader that stops draining stdout must never block a request. Beyond 8 MiB waiting, lines are
// dropped and counted. Call once, before the server starts.
void UseBufferedStdout();
// Waits (up to 2 s) until every line logged so far is written: at exit.
void Drain();
// Lines dropped because stdout did not drain (the metric connreg_log_lines_dropped_total).
std::uint64_t DroppedLines();

// Sets the minimum level ("debug", "info", "warn", "error"); unknown names keep "info".
void SetLevel(std::string_view level);
// Writes {"time","level","event", ...fields} as one line.
void Event(Level level, std::string_view event, boost::json::object fields = {});

}  // namespace connreg::log
