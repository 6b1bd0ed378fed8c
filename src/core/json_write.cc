#include "core/json_write.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstring>

#include <boost/json/object.hpp>

namespace connreg {
namespace {

// What a byte becomes inside a JSON string, as boost::json's serializer has it: 0 for itself,
// 'u' for \u00xx, else the letter of its short escape.
constexpr std::array<char, 256> kEscape = [] {
  std::array<char, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = 'u';
  t['\b'] = 'b';
  t['\t'] = 't';
  t['\n'] = 'n';
  t['\f'] = 'f';
  t['\r'] = 'r';
  t['"'] = '"';
  t['\\'] = '\\';
  return t;
}();

// How many bytes from the start of `s` need no escape: eight at a time while no byte of the
// eight is below 0x20, a quote or a backslash (the exact zero-byte tests of "Bit Twiddling
// Hacks"), then one at a time.
std::size_t CountUnescaped(std::string_view s) {
  constexpr std::uint64_t kOnes = 0x0101010101010101;
  constexpr std::uint64_t kHigh = 0x8080808080808080;
  std::size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t x;
    std::memcpy(&x, s.data() + i, sizeof x);
    const std::uint64_t quote = x ^ (kOnes * '"');
    const std::uint64_t backslash = x ^ (kOnes * '\\');
    const std::uint64_t hit =
        ((x - kOnes * 0x20) & ~x) | ((quote - kOnes) & ~quote) | ((backslash - kOnes) & ~backslash);
    if ((hit & kHigh) != 0) break;
  }
  while (i < s.size() && kEscape[static_cast<unsigned char>(s[i])] == 0) ++i;
  return i;
}

}  // namespace

std::string_view FormatServerNumber(double v, char (&buf)[kServerNumberChars]) {
  if (!std::isfinite(v)) v = 0;
  char* end = std::to_chars(buf, buf + kServerNumberChars, v, std::chars_format::fixed, 2).ptr;
  // "x.yz": drop the zeros that end the fraction, then the point if nothing is left of it.
  while (end[-1] == '0') --end;
  if (end[-1] == '.') --end;
  std::string_view text(buf, static_cast<std::size_t>(end - buf));
  if (text == "-0") text.remove_prefix(1);  // a value that rounds to zero has no sign
  return text;
}

JsonWriter& JsonWriter::BeginObject() {
  Separate();
  out_.push_back('{');
  need_comma_ = false;
  return *this;
}

JsonWriter& JsonWriter::EndObject() {
  out_.push_back('}');
  need_comma_ = true;
  return *this;
}

JsonWriter& JsonWriter::BeginArray() {
  Separate();
  out_.push_back('[');
  need_comma_ = false;
  return *this;
}

JsonWriter& JsonWriter::EndArray() {
  out_.push_back(']');
  need_comma_ = true;
  return *this;
}

JsonWriter& JsonWriter::Key(std::string_view key) {
  Separate();
  Escaped(key);
  out_.push_back(':');
  need_comma_ = false;
  return *this;
}

JsonWriter& JsonWriter::String(std::string_view s) {
  Separate();
  Escaped(s);
  return *this;
}

JsonWriter& JsonWriter::Bool(bool b) {
  Separate();
  out_.append(b ? std::string_view("true") : std::string_view("false"));
  return *this;
}

JsonWriter& JsonWriter::Null() {
  Separate();
  out_.append("null");
  return *this;
}

JsonWriter& JsonWriter::Int(std::int64_t i) {
  Separate();
  char buf[24];
  out_.append(buf, std::to_chars(buf, buf + sizeof buf, i).ptr);
  return *this;
}

JsonWriter& JsonWriter::Uint(std::uint64_t u) {
  Separate();
  char buf[24];
  out_.append(buf, std::to_chars(buf, buf + sizeof buf, u).ptr);
  return *this;
}

JsonWriter& JsonWriter::Time(TimeMs t) {
  Separate();
  char text[kRfc3339Chars];
  FormatRfc3339(t, text);
  out_.push_back('"');
  out_.append(text, kRfc3339Chars);
  out_.push_back('"');
  return *this;
}

JsonWriter& JsonWriter::ServerNumber(double v) {
  Separate();
  char buf[kServerNumberChars];
  out_.append(FormatServerNumber(v, buf));
  return *this;
}

JsonWriter& JsonWriter::Raw(std::string_view json) {
  Separate();
  out_.append(json);
  return *this;
}

void JsonWriter::Double(double d, Doubles doubles) {
  if (doubles == Doubles::kServer) {
    ServerNumber(d);
    return;
  }
  Separate();
  if (!std::isfinite(d)) {  // no stored value holds one (api::ParseJsonBody refuses them)
    out_.append("null");
    return;
  }
  char buf[32];  // the shortest round-trip text of a double is at most 24 characters
  out_.append(buf, std::to_chars(buf, buf + sizeof buf, d).ptr);
}

JsonWriter& JsonWriter::Value(const boost::json::object& o, Doubles doubles) {
  BeginObject();
  for (const auto& member : o) {
    Key(member.key());
    Value(member.value(), doubles);
  }
  return EndObject();
}

JsonWriter& JsonWriter::Value(const boost::json::value& v, Doubles doubles) {
  switch (v.kind()) {
    case boost::json::kind::null: return Null();
    case boost::json::kind::bool_: return Bool(v.get_bool());
    case boost::json::kind::int64: return Int(v.get_int64());
    case boost::json::kind::uint64: return Uint(v.get_uint64());
    case boost::json::kind::double_: Double(v.get_double(), doubles); return *this;
    case boost::json::kind::string: return String(v.get_string());
    case boost::json::kind::object: return Value(v.get_object(), doubles);
    case boost::json::kind::array:
      BeginArray();
      for (const auto& element : v.get_array()) Value(element, doubles);
      return EndArray();
  }
  return *this;
}

void JsonWriter::Escaped(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  const std::size_t clean = CountUnescaped(s);
  if (clean == s.size()) {  // the usual case: the quotes and the bytes, in one append
    const std::size_t at = out_.size();
    out_.append(s.size() + 2, '"');
    s.copy(out_.data() + at + 1, s.size());
    return;
  }
  out_.push_back('"');
  out_.append(s.data(), clean);
  const char* p = s.data() + clean;
  const char* const end = s.data() + s.size();
  while (p != end) {
    const char* run = p;  // the bytes copied as they are
    while (p != end && kEscape[static_cast<unsigned char>(*p)] == 0) ++p;
    out_.append(run, static_cast<std::size_t>(p - run));
    if (p == end) break;
    const unsigned char c = static_cast<unsigned char>(*p++);
    const char e = kEscape[c];
    if (e == 'u') {
      const char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
      out_.append(u, sizeof u);
    } else {
      const char short_escape[2] = {'\\', e};
      out_.append(short_escape, sizeof short_escape);
    }
  }
  out_.push_back('"');
}

}  // namespace connreg
