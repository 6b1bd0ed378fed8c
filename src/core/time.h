// Wall-clock time as milliseconds since the Unix epoch, and its RFC 3339 rendering.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace connreg {

using TimeMs = std::int64_t;

TimeMs NowMs();
// "2022-06-22T20:47:07.899Z": UTC, always with milliseconds.
std::string FormatRfc3339(TimeMs t);
// The same text written into `out`, which holds exactly kRfc3339Chars (no terminator): for
// writers that must not allocate.
inline constexpr std::size_t kRfc3339Chars = 24;
void FormatRfc3339(TimeMs t, char (&out)[kRfc3339Chars]);
// Parses what FormatRfc3339 produces; nullopt on anything else.
std::optional<TimeMs> ParseRfc3339(std::string_view s);

}  // namespace connreg
