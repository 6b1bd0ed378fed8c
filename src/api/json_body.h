// Reading JSON request bodies by the contract's rules (section 10): Content-Type must be
// application/json (415), malformed JSON is a 400 naming the byte offset, nesting deeper than 32
// is a 400, invalid UTF-8 is a 400. A value no store could keep and read back (a NUL character,
// or a number too large for a double such as 1e999) is a 400 naming its JSON path, so that every
// body a handler sees can be stored and rendered again. Thread-safe.
#pragma once

#include <boost/json/value.hpp>

#include "core/result.h"
#include "http/exchange.h"

namespace connreg::api {

inline constexpr int kMaxJsonDepth = 32;

// True when the request's Content-Type is application/json (parameters such as charset allowed).
bool IsJsonContentType(const http::Request& req);

// Parses the body; with `allow_empty`, an empty body yields a null value.
Result<boost::json::value> ParseJsonBody(const http::Request& req, bool allow_empty = false);

}  // namespace connreg::api
