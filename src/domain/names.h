// The rule for names people give things (connections, members' first and last names, teams):
// what a name may hold so that every UI shows it as what it is. Pure; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "core/result.h"

namespace connreg::domain {

// A name: a JSON string, trimmed of ASCII whitespace, `min_chars` (1 unless a name may be empty,
// as a last name) to `max_chars` code points, with no control character (C0, DEL, C1
// U+0080..U+009F) and no bidirectional override or isolate (U+202A..U+202E, U+2066..U+2069:
// "Trojan Source" text that displays in another order than it reads). Errors are 400s naming
// `field`. Returns the trimmed name.
Result<std::string> ParseName(const boost::json::value& v, std::string_view field,
                              std::size_t max_chars, std::size_t min_chars = 1);

}  // namespace connreg::domain
