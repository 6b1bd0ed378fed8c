#include "api/render.h"

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>

#include <bit>
#include <cstdint>
#include <limits>
#include <random>

#include "domain/json_text.h"
#include "render_reference.h"

namespace connreg::api {
namespace {

namespace json = boost::json;

domain::Connection Sample() {
  domain::Connection c;
  c.organization_id = "org";
  c.connection_id = "0b0e2f7a-1111-4222-8333-444455556666";
  c.name = "n";
  c.type = "snowflake";
  c.created_at = 1655930827899;
  c.updated_at = c.created_at;
  c.last_active_at = c.created_at;
  c.details = {{"type", "snowflake"}, {"account", "acme"}, {"user", "dev"}, {"role", "R"}};
  c.secrets["password"] = {"c2VhbGVk", "key1", 1655928427000};
  c.version = 3;
  return c;
}

json::object Parsed(const std::string& text) {
  boost::system::error_code ec;
  json::value v = domain::ParseJsonText(text, ec);
  EXPECT_FALSE(ec) << text;
  return v.is_object() ? v.get_object() : json::object{};
}

TEST(ApiRender, HasSigmaFieldsAndNoSecretValue) {
  const std::string text = RenderConnection(Sample());
  auto o = Parsed(text);
  for (const char* f :
       {"organizationId", "connectionId", "isSample", "isAuditLog", "lastActiveAt", "name", "type",
        "useOauth", "createdBy", "updatedBy", "createdAt", "updatedAt", "isArchived"}) {
    EXPECT_TRUE(o.contains(f)) << f;
  }
  EXPECT_EQ(std::string_view(o.at("createdAt").as_string()), "2022-06-22T20:47:07.899Z");
  EXPECT_EQ(std::string_view(o.at("account").as_string()), "acme");
  EXPECT_EQ(std::string_view(o.at("user").as_string()), "dev");
  EXPECT_FALSE(o.contains("warehouse"));
  EXPECT_FALSE(o.contains("timeout"));
  EXPECT_EQ(o.at("secrets").at("password").at("isSet").as_bool(), true);
  EXPECT_EQ(o.at("version").as_int64(), 3);
  EXPECT_EQ(text.find("c2VhbGVk"), std::string::npos);
  EXPECT_EQ(text.find("key1"), std::string::npos);
}

TEST(ApiRender, TimeoutAndEtag) {
  auto c = Sample();
  c.timeout_secs = 120;
  auto o = Parsed(RenderConnection(c));
  EXPECT_EQ(o.at("timeout").at("default").as_int64(), 120);
  EXPECT_EQ(EtagOf(c), "\"3\"");
}

// ---- the direct writer against the tree it replaced -------------------------------------------

// Strings that exercise every escape: each byte value (control characters, quote, backslash,
// DEL, bytes that are not UTF-8), UTF-8 of every length, and runs of plain text between them.
class Generator {
 public:
  explicit Generator(std::uint32_t seed) : rng_(seed) {}

  std::string Text() {
    std::string s;
    const int n = Below(24);
    for (int i = 0; i < n; ++i) {
      switch (Below(6)) {
        case 0: s.push_back(static_cast<char>(Below(256))); break;  // any byte, valid or not
        case 1: s.push_back(static_cast<char>(Below(0x20))); break;
        case 2: s.push_back("\"\\/\x7f"[Below(4)]); break;
        case 3: s += "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80" + Below(3) * 2; break;  // é € 😀
        default: s += "plain text "; break;
      }
    }
    return s;
  }

  // Integers at the edges of int64 and uint64 and in between; no doubles (see below).
  json::value Scalar() {
    switch (Below(7)) {
      case 0: return nullptr;
      case 1: return Below(2) == 1;
      case 2: return std::numeric_limits<std::int64_t>::min() + Below(3);
      case 3: return std::numeric_limits<std::int64_t>::max() - Below(3);
      case 4: return std::numeric_limits<std::uint64_t>::max() - static_cast<unsigned>(Below(3));
      case 5: return static_cast<std::int64_t>(rng_()) - (1LL << 31);
      default: return json::string(Text());
    }
  }

  json::value Value(int depth) {
    if (depth == 0 || Below(3) != 0) return Scalar();
    if (Below(2) == 0) return Object(depth - 1);
    json::array a;
    for (int i = Below(4); i > 0; --i) a.push_back(Value(depth - 1));
    return a;
  }

  json::object Object(int depth) {
    json::object o;
    for (int i = Below(5); i > 0; --i) o[Text()] = Value(depth);
    return o;
  }

  TimeMs Time() { return static_cast<TimeMs>(rng_() % 4'000'000'000u) * 1000 + Below(1000); }

  domain::Connection Connection() {
    domain::Connection c;
    c.organization_id = Text();
    c.connection_id = Text();
    c.name = Text();
    c.type = Text();
    c.is_sample = Below(2) == 1;
    c.is_archived = Below(2) == 1;
    c.use_oauth = Below(2) == 1;
    c.write_access = Below(2) == 1;
    c.use_friendly_names = Below(2) == 1;
    if (Below(2) == 1) c.timeout_secs = Below(86400) + 1;
    c.created_by = Text();
    c.updated_by = Text();
    c.created_at = Time();
    c.updated_at = Time();
    c.last_active_at = Time();
    c.version = static_cast<std::int64_t>(rng_()) * 4096;
    c.details = Object(3);
    for (const char* field : {"account", "warehouse", "user", "role"}) {
      if (Below(2) == 1) c.details[field] = Below(3) == 0 ? Scalar() : json::value(Text());
    }
    if (Below(2) == 1) c.description = Object(4);
    for (int i = Below(4); i > 0; --i) c.secrets[Text()] = {"sealed", "key", Time()};
    if (Below(2) == 1) c.last_test = domain::LastTest{Time(), Text(), Text()};
    return c;
  }

  int Below(int n) { return static_cast<int>(rng_() % static_cast<unsigned>(n)); }

 private:
  std::mt19937 rng_;
};

TEST(ApiRender, WriterBytesEqualTheTreeSerializedByBoost) {
  Generator gen(20261201);
  for (int i = 0; i < 3000; ++i) {
    const domain::Connection c = gen.Connection();
    ASSERT_EQ(RenderConnection(c), json::serialize(reference::ConnectionTree(c))) << "case " << i;
  }
}

// Every byte value at every offset of a string longer than the writer's eight-byte scan.
TEST(ApiRender, EveryByteAtEveryOffsetEscapesAsBoostDoes) {
  for (int b = 0; b < 256; ++b) {
    for (std::size_t at = 0; at < 20; ++at) {
      std::string s(19, 'a');
      s.insert(at, 1, static_cast<char>(b));
      std::string text;
      JsonWriter(text).String(s);
      ASSERT_EQ(text, json::serialize(json::string(s))) << "byte " << b << " at " << at;
    }
  }
}

TEST(ApiRender, PageIsTheObjectsInOneArray) {
  Generator gen(7);
  std::vector<domain::Connection> entries;
  json::array tree;
  for (int i = 0; i < 50; ++i) {
    entries.push_back(gen.Connection());
    tree.push_back(reference::ConnectionTree(entries.back()));
  }
  EXPECT_EQ(RenderConnectionPage({}, "tok\"en", true, 7),
            R"({"entries":[],"nextPage":"tok\"en","hasMore":true,"total":7})");
  const std::string page = RenderConnectionPage(entries, "", false, 50);
  EXPECT_EQ(
      page,
      json::serialize(json::object{
          {"entries", std::move(tree)}, {"nextPage", nullptr}, {"hasMore", false}, {"total", 50}}));
}

// A user's doubles are the one place where the writer's bytes differ from Boost's: Boost writes
// 1.5 as 1.5E0; the writer as the user wrote it, when the stored double allows.
TEST(ApiRender, UsersDoublesComeBackAsWritten) {
  auto c = Sample();
  boost::system::error_code ec;
  json::value body = domain::ParseJsonText(
      R"({"a":1.5,"b":0.1,"c":-2.25,"d":1e300,"e":123.456,"f":5e-324,"g":18446744073709551615,)"
      R"("h":-9223372036854775808,"i":0,"j":[0.5,{"k":2.5e-7}]})",
      ec);
  ASSERT_FALSE(ec);
  c.description = body.get_object();
  const std::string text = RenderConnection(c);
  EXPECT_NE(text.find(R"("description":{"a":1.5,"b":0.1,"c":-2.25,"d":1e+300,"e":123.456,)"
                      R"("f":5e-324,"g":18446744073709551615,"h":-9223372036854775808,"i":0,)"
                      R"("j":[0.5,{"k":2.5e-07}]})"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find('E'), std::string::npos) << text;
  // The same values as the tree held, double for double.
  EXPECT_EQ(json::value(Parsed(text).at("description")), body);
}

// What the stored form cannot tell apart comes back as the shortest text of the same number
// (issue 17: 1e3 and 0.1000 are stored as doubles, so they read 1000 and 0.1).
TEST(ApiRender, UsersNumbersTheStoredDoubleCannotKeep) {
  auto c = Sample();
  boost::system::error_code ec;
  c.description = domain::ParseJsonText(R"({"a":1e3,"b":0.1000,"c":1E-2})", ec).get_object();
  EXPECT_NE(RenderConnection(c).find(R"("description":{"a":1000,"b":0.1,"c":0.01})"),
            std::string::npos);
}

TEST(ApiRender, EveryDoubleReadsBackExactly) {
  std::mt19937_64 rng(17);
  for (int i = 0; i < 200000; ++i) {
    const double d = std::bit_cast<double>(rng());
    if (!std::isfinite(d)) continue;
    std::string text;
    JsonWriter(text).Value(json::value(d));
    boost::system::error_code ec;
    json::value back = domain::ParseJsonText(text, ec);
    ASSERT_FALSE(ec) << text;
    ASSERT_EQ(back.is_double() ? back.get_double() : back.to_number<double>(), d) << text;
  }
}

// ---- the server's own numbers: FormatServerNumber ----------------------------------------------

std::string ServerNumber(double v) {
  char buf[kServerNumberChars];
  return std::string(FormatServerNumber(v, buf));
}

TEST(ServerNumberRule, AtMostTwoDecimalsRoundedNoExponentNoTrailingZeros) {
  EXPECT_EQ(ServerNumber(1.065807), "1.07");
  EXPECT_EQ(ServerNumber(0.0), "0");
  EXPECT_EQ(ServerNumber(-0.0), "0");
  EXPECT_EQ(ServerNumber(2.5), "2.5");
  EXPECT_EQ(ServerNumber(2.50000001), "2.5");
  EXPECT_EQ(ServerNumber(3.0), "3");
  EXPECT_EQ(ServerNumber(9.999), "10");
  EXPECT_EQ(ServerNumber(0.004), "0");
  EXPECT_EQ(ServerNumber(0.006), "0.01");
  EXPECT_EQ(ServerNumber(0.125), "0.12");  // exactly half: to even, as the double is exact
  EXPECT_EQ(ServerNumber(0.375), "0.38");
  EXPECT_EQ(ServerNumber(702.754), "702.75");
  EXPECT_EQ(ServerNumber(-1.065807), "-1.07");
  EXPECT_EQ(ServerNumber(-0.001), "0");  // rounds to zero: no "-0"
  EXPECT_EQ(ServerNumber(-12.0), "-12");
  EXPECT_EQ(ServerNumber(1e-300), "0");
  EXPECT_EQ(ServerNumber(1e20), "100000000000000000000");
  EXPECT_EQ(ServerNumber(123456789.129), "123456789.13");
}

TEST(ServerNumberRule, NeverAnExponentNaNOrInfinity) {
  EXPECT_EQ(ServerNumber(std::numeric_limits<double>::quiet_NaN()), "0");
  EXPECT_EQ(ServerNumber(std::numeric_limits<double>::infinity()), "0");
  EXPECT_EQ(ServerNumber(-std::numeric_limits<double>::infinity()), "0");
  const std::string max = ServerNumber(std::numeric_limits<double>::max());
  EXPECT_EQ(max.size(), 309u);
  EXPECT_EQ(ServerNumber(-std::numeric_limits<double>::max()).size(), 310u);
  std::mt19937_64 rng(5);
  for (int i = 0; i < 100000; ++i) {
    const double d = std::bit_cast<double>(rng());
    const std::string text = ServerNumber(d);
    ASSERT_EQ(text.find_first_not_of("-0123456789."), std::string::npos) << d << " " << text;
    const auto point = text.find('.');
    if (point != std::string::npos) {
      ASSERT_LE(text.size() - point - 1, 2u) << text;
      ASSERT_NE(text.back(), '0') << text;
    }
    if (std::isfinite(d)) {  // within half a hundredth of the value
      ASSERT_LE(std::fabs(std::stod(text) - d), 0.005 + std::fabs(d) * 1e-15) << d << " " << text;
    }
  }
}

}  // namespace
}  // namespace connreg::api
