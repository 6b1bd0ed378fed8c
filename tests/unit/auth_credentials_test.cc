#include "auth/credentials.h"

#include <gtest/gtest.h>

#include "crypto/encoding.h"

namespace connreg::auth {
namespace {

TEST(AuthForm, DecodesPlusAndPercent) {
  auto f = ParseForm("grant_type=client_credentials&client_secret=a%2Bb+c&empty=&flag");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->at("grant_type"), "client_credentials");
  EXPECT_EQ(f->at("client_secret"), "a+b c");
  EXPECT_EQ(f->at("empty"), "");
  EXPECT_EQ(f->at("flag"), "");
}

TEST(AuthForm, RejectsBadEscapesAndRepeats) {
  EXPECT_FALSE(ParseForm("a=%").ok());
  EXPECT_FALSE(ParseForm("a=%4").ok());
  EXPECT_FALSE(ParseForm("a=%zz").ok());
  EXPECT_FALSE(ParseForm("a=1&a=2").ok());
  EXPECT_TRUE(ParseForm("").ok());
  EXPECT_TRUE(ParseForm("&&").ok());
}

TEST(AuthBasic, ParsesAndDecodes) {
  auto c = ParseBasic("Basic " + crypto::Base64Encode("my%20id:s3:cr%3Aet"));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->id, "my id");
  EXPECT_EQ(c->secret, "s3:cr:et");
  EXPECT_TRUE(ParseBasic("basic " + crypto::Base64Encode("a:b")).has_value());
}

TEST(AuthBasic, RejectsMalformed) {
  EXPECT_FALSE(ParseBasic("Basic").has_value());
  EXPECT_FALSE(ParseBasic("Basic !!!").has_value());
  EXPECT_FALSE(ParseBasic("Basic " + crypto::Base64Encode("nocolon")).has_value());
  EXPECT_FALSE(ParseBasic("Basic " + crypto::Base64Encode(":secret")).has_value());
  EXPECT_FALSE(ParseBasic("Bearer abc").has_value());
  EXPECT_TRUE(IsBasicScheme("Basic !!!"));
  EXPECT_FALSE(IsBasicScheme("Bearer x"));
}

TEST(AuthBearer, AcceptsOnlyWellFormedTokens) {
  EXPECT_EQ(ParseBearer("Bearer abc-_09XYZ").value_or(""), "abc-_09XYZ");
  EXPECT_EQ(ParseBearer("bearer   abc  ").value_or(""), "abc");
  EXPECT_FALSE(ParseBearer("Bearer").has_value());
  EXPECT_FALSE(ParseBearer("Bearer ").has_value());
  EXPECT_FALSE(ParseBearer("Bearer a b").has_value());
  EXPECT_FALSE(ParseBearer("Bearer a=b").has_value());
  EXPECT_FALSE(ParseBearer("Basic abc").has_value());
  EXPECT_FALSE(ParseBearer("Bearer " + std::string(513, 'a')).has_value());
}

}  // namespace
}  // namespace connreg::auth
