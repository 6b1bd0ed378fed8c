// How the registry reads JSON text (request bodies, and the JSON columns of the store): as
// boost::json::parse does, except that every number with a fraction or an exponent is read
// correctly rounded. Boost.JSON 1.81 reads some such numbers (mostly those of 16 or 17
// significant digits) a unit or more in the last place off, so a double written with
// boost::json::serialize (the shortest text that reads back exactly) can read back as a
// neighbour, and drift on every rewrite (found by fuzz/fuzz_stored_render). A number too large
// for a double reads as an infinity, as with Boost; callers that keep values refuse it
// (api::ParseJsonBody). Thread-safe.
#pragma once

#include <cstddef>
#include <string_view>

#include <boost/json/parse_options.hpp>
#include <boost/json/value.hpp>
#include <boost/system/error_code.hpp>

namespace connreg::domain {

// Parses one JSON document filling all of `text` (trailing whitespace allowed; anything else is
// boost::json::error::extra_data). On error sets `ec` and, when given, `*consumed` to the byte
// offset where parsing stopped, and returns null.
boost::json::value ParseJsonText(std::string_view text, boost::system::error_code& ec,
                                 const boost::json::parse_options& options = {},
                                 std::size_t* consumed = nullptr);

}  // namespace connreg::domain
