#include "api/json_body.h"

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>

namespace connreg::api {
namespace {

http::Request Make(std::string body, std::string content_type = "application/json") {
  http::Request req;
  if (!content_type.empty()) req.set(boost::beast::http::field::content_type, content_type);
  req.body() = std::move(body);
  return req;
}

TEST(ApiJsonBody, ParsesObjects) {
  auto v = ParseJsonBody(Make(R"({"a":1})", "Application/JSON; charset=utf-8"));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->as_object().at("a").as_int64(), 1);
}

TEST(ApiJsonBody, RequiresJsonContentType) {
  auto v = ParseJsonBody(Make("{}", "text/plain"));
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, ErrorCode::kUnsupportedMediaType);
  EXPECT_FALSE(ParseJsonBody(Make("{}", "")).ok());
  EXPECT_FALSE(ParseJsonBody(Make("{}", "application/jsonx")).ok());
}

TEST(ApiJsonBody, NamesTheByteOffset) {
  auto v = ParseJsonBody(Make(R"({"a": 1 "b": 2})"));
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, ErrorCode::kBadRequest);
  EXPECT_NE(v.error().message.find("byte offset 8"), std::string::npos) << v.error().message;
}

TEST(ApiJsonBody, RejectsTrailingDataDepthAndBadUtf8) {
  EXPECT_FALSE(ParseJsonBody(Make("{} x")).ok());
  EXPECT_TRUE(ParseJsonBody(Make("{} \n")).ok());
  std::string deep32(32, '['), deep33(33, '[');
  deep32 += std::string(32, ']');
  deep33 += std::string(33, ']');
  EXPECT_TRUE(ParseJsonBody(Make(deep32)).ok());
  auto too_deep = ParseJsonBody(Make(deep33));
  ASSERT_FALSE(too_deep.ok());
  EXPECT_NE(too_deep.error().message.find("nesting"), std::string::npos);
  EXPECT_FALSE(ParseJsonBody(Make("{\"a\":\"\xff\xfe\"}")).ok());
  EXPECT_FALSE(ParseJsonBody(Make("")).ok());
  EXPECT_TRUE(ParseJsonBody(Make("", ""), /*allow_empty=*/true).ok());
}

TEST(ApiJsonBody, RefusesANulCharacterAnywhereNamingItsPath) {
  auto in_details = ParseJsonBody(Make(R"({"details":{"user":"a\u0000b"}})"));
  ASSERT_FALSE(in_details.ok());
  EXPECT_EQ(in_details.error().code, ErrorCode::kBadRequest);
  EXPECT_NE(in_details.error().message.find("details.user contains a NUL"), std::string::npos)
      << in_details.error().message;
  auto in_array = ParseJsonBody(Make(R"({"description":{"tags":["x","\u0000"]}})"));
  ASSERT_FALSE(in_array.ok());
  EXPECT_NE(in_array.error().message.find("description.tags[1]"), std::string::npos);
  auto in_key = ParseJsonBody(Make(R"({"k\u0000":1})"));
  ASSERT_FALSE(in_key.ok());
  EXPECT_TRUE(ParseJsonBody(Make(R"({"details":{"user":"a\u0001b"}})")).ok())
      << "other control characters are the validators' business";
}

// Issue 18, finding 1: a number too large for a double (read as infinity) was accepted, stored
// as Infinity, and made the connection and every list page holding it answer 500.
TEST(ApiJsonBody, Finding1NonFiniteNumbersAre400NamingThePath) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"description":{"a":1e999}})", "description.a must be a finite number"},
      {R"({"description":{"a":-1e400}})", "description.a must be a finite number"},
      {R"({"name":"n","details":{"type":"postgres","port":1e999}})",
       "details.port must be a finite number"},
      {R"({"description":{"list":[1,{"x":[2e308]}]}})",
       "description.list[1].x[0] must be a finite number"},
      {R"(1e999)", "the body must be a finite number"},
  };
  for (const auto& [body, message] : cases) {
    auto v = ParseJsonBody(Make(body));
    ASSERT_FALSE(v.ok()) << body;
    EXPECT_EQ(v.error().code, ErrorCode::kBadRequest);
    EXPECT_EQ(v.error().message, message);
  }
  // The largest doubles, underflow to zero, and integers beyond 64 bits (read as doubles) are
  // finite: accepted.
  for (const char* body :
       {R"({"a":1.7976931348623157e308,"b":-1.7976931348623157e308})",
        R"({"a":1e-400,"b":4.9e-324})", R"({"a":123456789012345678901234567890})"}) {
    EXPECT_TRUE(ParseJsonBody(Make(body)).ok()) << body;
  }
}

// Boost.JSON 1.81 reads some 17-digit numbers a unit in the last place off; bodies are read
// correctly rounded (domain::ParseJsonText), so what is stored is the number the client sent.
TEST(ApiJsonBody, DoublesAreReadCorrectlyRounded) {
  auto v = ParseJsonBody(Make(R"({"a":123456799012345678901234567890,"b":0.30000000000000004})"));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->at("a").as_double(), 123456799012345678901234567890.0);
  EXPECT_EQ(v->at("b").as_double(), 0.30000000000000004);
  EXPECT_EQ(boost::json::serialize(*v), R"({"a":1.2345679901234568E29,"b":3.0000000000000004E-1})");
}

}  // namespace
}  // namespace connreg::api
