#include "core/time.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace connreg {

TimeMs NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

void FormatRfc3339(TimeMs t, char (&out)[kRfc3339Chars]) {
  // Days since the epoch to a civil date (H. Hinnant's days_from_civil inverse): no gmtime_r or
  // printf, which were a visible share of rendering a page of connections.
  TimeMs ms_of_day = t % 86'400'000;
  TimeMs days = t / 86'400'000;
  if (ms_of_day < 0) {
    ms_of_day += 86'400'000;
    --days;
  }
  const TimeMs z = days + 719468;
  const TimeMs era = (z >= 0 ? z : z - 146096) / 146097;
  const TimeMs doe = z - era * 146097;                                       // [0, 146096]
  const TimeMs yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const TimeMs doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                // [0, 365]
  const TimeMs mp = (5 * doy + 2) / 153;                                     // [0, 11]
  const TimeMs day = doy - (153 * mp + 2) / 5 + 1;
  const TimeMs month = mp < 10 ? mp + 3 : mp - 9;
  const TimeMs year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  if (year < 0 || year > 9999) {  // outside RFC 3339's range
    std::string_view("0000-01-01T00:00:00.000Z").copy(out, kRfc3339Chars);
    return;
  }
  std::string_view("0000-00-00T00:00:00.000Z").copy(out, kRfc3339Chars);
  auto put = [&](std::size_t at, TimeMs value, int width) {
    for (int i = width - 1; i >= 0; --i, value /= 10)
      out[at + i] = static_cast<char>('0' + value % 10);
  };
  put(0, year, 4);
  put(5, month, 2);
  put(8, day, 2);
  put(11, ms_of_day / 3'600'000, 2);
  put(14, ms_of_day / 60'000 % 60, 2);
  put(17, ms_of_day / 1000 % 60, 2);
  put(20, ms_of_day % 1000, 3);
}

std::string FormatRfc3339(TimeMs t) {
  char out[kRfc3339Chars];
  FormatRfc3339(t, out);
  return std::string(out, kRfc3339Chars);
}

std::optional<TimeMs> ParseRfc3339(std::string_view s) {
  if (s.size() != 24 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
      s[16] != ':' || s[19] != '.' || s[23] != 'Z') {
    return std::nullopt;
  }
  auto num = [&](size_t pos, size_t len) -> int {
    int v = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (s[i] < '0' || s[i] > '9') return -1;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  std::tm tm{};
  tm.tm_year = num(0, 4) - 1900;
  tm.tm_mon = num(5, 2) - 1;
  tm.tm_mday = num(8, 2);
  tm.tm_hour = num(11, 2);
  tm.tm_min = num(14, 2);
  tm.tm_sec = num(17, 2);
  int ms = num(20, 3);
  if (tm.tm_year < 0 || tm.tm_mon < 0 || tm.tm_mday < 0 || tm.tm_hour < 0 || tm.tm_min < 0 ||
      tm.tm_sec < 0 || ms < 0) {
    return std::nullopt;
  }
  return static_cast<TimeMs>(timegm(&tm)) * 1000 + ms;
}

}  // namespace connreg
