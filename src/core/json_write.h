// Writes JSON text straight into a string, without a boost::json::value tree in between: the
// response bodies of the API are built this way, each into one buffer. Strings are escaped
// exactly as boost::json::serialize escapes them (`"` and `\`, the short escapes \b \t \n \f \r,
// every other byte below 0x20 as \u00xx; all other bytes, UTF-8 or not, copied as they are), so
// a body written here is the same text Boost would have written from the same tree.
//
// Numbers follow one of two rules (see FormatServerNumber and JsonWriter::Value): a number the
// server makes is written as people write it; a value a user stored comes back as it was read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "core/time.h"

namespace connreg {

// The longest text FormatServerNumber writes: -DBL_MAX with no exponent is 309 digits.
inline constexpr std::size_t kServerNumberChars = 320;

// THE rule for every number the server itself makes (a test's and its steps' durations, a
// sync's steps, the access log's durationMs): at most two decimals, rounded to the nearest,
// no exponent, no trailing zeros, an integral value without a fraction, never "-0":
// 1.065807 -> 1.07, 0.0 -> 0, 2.50 -> 2.5, -0.001 -> 0, 1e20 -> 100000000000000000000.
// NaN and the infinities, which no JSON text can spell, are written as 0. Returns the text, a
// view of `buf`.
std::string_view FormatServerNumber(double v, char (&buf)[kServerNumberChars]);

class JsonWriter {
 public:
  // Appends to `out` (which the caller may have reserved), after what it holds.
  explicit JsonWriter(std::string& out) : out_(out) {}

  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  // The key of the next member of the object being written.
  JsonWriter& Key(std::string_view key);

  JsonWriter& String(std::string_view s);
  JsonWriter& Bool(bool b);
  JsonWriter& Null();
  JsonWriter& Int(std::int64_t i);
  JsonWriter& Uint(std::uint64_t u);
  // An RFC 3339 timestamp as a string (FormatRfc3339), without allocating.
  JsonWriter& Time(TimeMs t);
  // A number the server made: FormatServerNumber.
  JsonWriter& ServerNumber(double v);
  // Text that is already one JSON value, copied as it is.
  JsonWriter& Raw(std::string_view json);

  // How Value() writes a double.
  enum class Doubles {
    // A user's value as stored: integers exactly; a double as the shortest text that reads back
    // as the same double (1.5 -> 1.5, 0.1 -> 0.1, 1e300 -> 1e+300), never Boost's "1.5E0".
    kAsStored,
    // A value the server made earlier and stored as JSON (a sync's steps): FormatServerNumber.
    kServer,
  };
  // A whole value (a user's `details`), members in the tree's order, as boost::json::serialize
  // orders them.
  JsonWriter& Value(const boost::json::value& v, Doubles doubles = Doubles::kAsStored);
  JsonWriter& Value(const boost::json::object& o, Doubles doubles = Doubles::kAsStored);

 private:
  // A comma when a value or a member came before this one at the same level.
  void Separate() {
    if (need_comma_) out_.push_back(',');
    need_comma_ = true;
  }
  void Escaped(std::string_view s);
  void Double(double d, Doubles doubles);

  std::string& out_;
  bool need_comma_ = false;  // after a value; false after '{', '[' and a key
};

}  // namespace connreg
