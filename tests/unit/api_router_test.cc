#include "api/router.h"

#include <gtest/gtest.h>

namespace connreg::api {
namespace {

using boost::beast::http::verb;

void A(Context&) {}
void B(Context&) {}

Router Make() {
  return Router({{verb::post, "/v2/connections/test", true, A},
                 {verb::get, "/v2/connections", true, A},
                 {verb::get, "/v2/connections/{id}", true, B},
                 {verb::put, "/v2/connections/{id}", true, B},
                 {verb::get, "/v2/connections/{id}/grants/{grantId}", true, A},
                 {verb::get, "/v2/connections/{id}/test", true, A, Exec::kPool,
                  /*serves_head=*/false},
                 {verb::post, "/v2/connections/{id}/test", true, B}});
}

TEST(ApiRouter, MatchesLiteralsBeforePlaceholders) {
  Router r = Make();
  auto m = r.Find(verb::post, {"v2", "connections", "test"});
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->pattern, "/v2/connections/test");
  EXPECT_TRUE(m.params.empty());
}

TEST(ApiRouter, CapturesParams) {
  Router r = Make();
  auto m = r.Find(verb::get, {"v2", "connections", "abc", "grants", "g1"});
  ASSERT_NE(m.route, nullptr);
  ASSERT_EQ(m.params.size(), 2u);
  EXPECT_EQ(m.params[0], "abc");
  EXPECT_EQ(m.params[1], "g1");
}

TEST(ApiRouter, ReportsAllowedMethodsFor405) {
  Router r = Make();
  auto m = r.Find(verb::delete_, {"v2", "connections", "abc"});
  EXPECT_EQ(m.route, nullptr);
  EXPECT_EQ(m.allow, "GET, HEAD, PUT");
}

// Issue 18, finding 7 (RFC 9110 section 9.3.2): HEAD is served by every GET route that only
// reads, and listed in Allow there; a GET that acts (the saved-connection test) refuses it.
TEST(ApiRouter, Finding7HeadServesReadingGetRoutesOnly) {
  Router r = Make();
  auto one = r.Find(verb::head, {"v2", "connections", "abc"});
  ASSERT_NE(one.route, nullptr);
  EXPECT_EQ(one.route->method, verb::get);
  EXPECT_EQ(one.params, std::vector<std::string>{"abc"});
  ASSERT_NE(r.Find(verb::head, {"v2", "connections"}).route, nullptr);
  auto test = r.Find(verb::head, {"v2", "connections", "abc", "test"});
  EXPECT_EQ(test.route, nullptr);
  EXPECT_EQ(test.allow, "GET, POST");
  EXPECT_EQ(r.Find(verb::head, {"v2", "connections", "test"}).allow, "POST, GET, HEAD, PUT")
      << "a path that is also /v2/connections/{id} allows what that allows";
}

TEST(ApiRouter, UnknownPathHasNoAllow) {
  Router r = Make();
  auto m = r.Find(verb::get, {"v2", "nothing"});
  EXPECT_EQ(m.route, nullptr);
  EXPECT_TRUE(m.allow.empty());
  EXPECT_EQ(r.Find(verb::get, {"v2", "connections", ""}).route, nullptr);
}

}  // namespace
}  // namespace connreg::api
