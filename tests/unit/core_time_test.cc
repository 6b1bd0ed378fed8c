#include "core/time.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <random>

namespace connreg {
namespace {

// The libc rendering FormatRfc3339 replaced: the reference it must agree with.
std::string Reference(TimeMs t) {
  std::time_t secs = static_cast<std::time_t>(t >= 0 ? t / 1000 : (t - 999) / 1000);
  int ms = static_cast<int>(t - static_cast<TimeMs>(secs) * 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return buf;
}

TEST(CoreTime, FormatsKnownInstants) {
  EXPECT_EQ(FormatRfc3339(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatRfc3339(951782400123), "2000-02-29T00:00:00.123Z");  // a leap day
  EXPECT_EQ(FormatRfc3339(4102444799999), "2099-12-31T23:59:59.999Z");
}

TEST(CoreTime, AgreesWithGmtimeEveryDayFrom1900To2400AndRoundTrips) {
  std::mt19937_64 rng(42);
  const TimeMs day = 86'400'000;
  for (TimeMs d = -25'567; d < 157'800; ++d) {  // 1900-01-01 .. 2402
    TimeMs t = d * day + static_cast<TimeMs>(rng() % day);
    ASSERT_EQ(FormatRfc3339(t), Reference(t)) << t;
    ASSERT_EQ(ParseRfc3339(FormatRfc3339(t)), t) << t;
  }
}

}  // namespace
}  // namespace connreg
