#include "domain/names.h"

#include <cstdint>

namespace connreg::domain {
namespace {

bool IsAsciiSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// The code point that starts at `s[i]` (the body parser has checked that the text is UTF-8),
// and its length in bytes.
std::uint32_t DecodeAt(std::string_view s, std::size_t i, std::size_t* len) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  std::size_t n = b0 < 0x80 ? 1 : b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4;
  if (i + n > s.size()) n = s.size() - i;
  std::uint32_t cp = n == 1 ? b0 : n == 2 ? (b0 & 0x1F) : n == 3 ? (b0 & 0x0F) : (b0 & 0x07);
  for (std::size_t k = 1; k < n; ++k)
    cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  *len = n;
  return cp;
}

bool IsControl(std::uint32_t cp) { return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F); }

bool IsBidiControl(std::uint32_t cp) {
  return (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

}  // namespace

Result<std::string> ParseName(const boost::json::value& v, std::string_view field,
                              std::size_t max_chars, std::size_t min_chars) {
  const auto* s = v.if_string();
  if (s == nullptr) return Error::BadRequest(std::string(field) + " must be a string");
  std::string_view name(*s);
  while (!name.empty() && IsAsciiSpace(name.front())) name.remove_prefix(1);
  while (!name.empty() && IsAsciiSpace(name.back())) name.remove_suffix(1);
  std::size_t chars = 0;
  for (std::size_t i = 0; i < name.size();) {
    std::size_t len = 1;
    const std::uint32_t cp = DecodeAt(name, i, &len);
    if (IsControl(cp)) {
      return Error::BadRequest(std::string(field) + " must not contain control characters");
    }
    if (IsBidiControl(cp)) {
      return Error::BadRequest(std::string(field) +
                               " must not contain bidirectional override or isolate characters");
    }
    ++chars;
    i += len;
  }
  if (chars < min_chars || chars > max_chars) {
    return Error::BadRequest(std::string(field) + " must be " + std::to_string(min_chars) + " to " +
                             std::to_string(max_chars) + " characters after trimming whitespace");
  }
  return std::string(name);
}

}  // namespace connreg::domain
