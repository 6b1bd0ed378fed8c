// Structured application log: one JSON object per line on stdout, through spdlog (pattern "%v",
// so the line is exactly the JSON). Never pass a secret, a token or a request body as a field.
#pragma once

#include <string_view>

#include <boost/json/object.hpp>

namespace connreg::log {

enum class Level { kDebug, kInfo, kWarn, kError };

// Registers the "app" and "access" loggers on one shared stdout sink that writes lines whole and
// flushes once a second (and at exit) instead of after every line: a write(2) per request is a
// measurable share of a small request's cost. Application events still flush at once. Call once,
// before the server starts.
void UseBufferedStdout();

// Sets the minimum level ("debug", "info", "warn", "error"); unknown names keep "info".
void SetLevel(std::string_view level);
// Writes {"time","level","event", ...fields} as one line.
void Event(Level level, std::string_view event, boost::json::object fields = {});

}  // namespace connreg::log
