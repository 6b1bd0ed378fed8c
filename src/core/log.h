// Structured application log: one JSON object per line on stdout, through spdlog (pattern "%v",
// so the line is exactly the JSON). Never pass a secret, a token or a request body as a field.
#pragma once

#include <string_view>

#include <boost/json/object.hpp>

namespace connreg::log {

enum class Level { kDebug, kInfo, kWarn, kError };

// Sets the minimum level ("debug", "info", "warn", "error"); unknown names keep "info".
void SetLevel(std::string_view level);
// Writes {"time","level","event", ...fields} as one line.
void Event(Level level, std::string_view event, boost::json::object fields = {});

}  // namespace connreg::log
