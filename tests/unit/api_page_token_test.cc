#include "api/page_token.h"

#include <gtest/gtest.h>

#include "crypto/encoding.h"

namespace connreg::api {
namespace {

const std::string kKey(32, 'k');

PageToken Sample() { return {"org-1", "fp", {"name é", 1655460205324, "c-1"}}; }

TEST(ApiPageToken, RoundTrips) {
  auto decoded = DecodePageToken(EncodePageToken(Sample(), kKey), kKey);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->organization_id, "org-1");
  EXPECT_EQ(decoded->filter, "fp");
  EXPECT_EQ(decoded->cursor.name, "name é");
  EXPECT_EQ(decoded->cursor.created_at, 1655460205324);
  EXPECT_EQ(decoded->cursor.connection_id, "c-1");
}

TEST(ApiPageToken, RejectsEveryFlippedCharacter) {
  std::string token = EncodePageToken(Sample(), kKey);
  for (size_t i = 0; i < token.size(); ++i) {
    std::string forged = token;
    forged[i] = forged[i] == 'A' ? 'B' : 'A';
    auto r = DecodePageToken(forged, kKey);
    ASSERT_FALSE(r.ok()) << "flipped position " << i;
    EXPECT_EQ(r.error().code, ErrorCode::kBadRequest);
  }
}

TEST(ApiPageToken, RejectsOtherKeyTruncationAndGarbage) {
  std::string token = EncodePageToken(Sample(), kKey);
  EXPECT_FALSE(DecodePageToken(token, std::string(32, 'x')).ok());
  EXPECT_FALSE(DecodePageToken(token.substr(0, token.size() - 1), kKey).ok());
  EXPECT_FALSE(DecodePageToken("", kKey).ok());
  EXPECT_FALSE(DecodePageToken(".", kKey).ok());
  EXPECT_FALSE(DecodePageToken(crypto::Base64UrlEncode("{\"o\":1}"), kKey).ok());
  EXPECT_FALSE(DecodePageToken(std::string(10000, 'a') + ".b", kKey).ok());
}

TEST(ApiPageToken, FingerprintDependsOnFilters) {
  store::ListQuery a, b;
  b.include_archived = true;
  store::ListQuery c;
  c.search = "x";
  EXPECT_NE(QueryFingerprint("connections", a), QueryFingerprint("connections", b));
  EXPECT_NE(QueryFingerprint("connections", a), QueryFingerprint("connections", c));
  EXPECT_NE(QueryFingerprint("connections", a), QueryFingerprint("grants", a));
  EXPECT_EQ(QueryFingerprint("connections", a),
            QueryFingerprint("connections", store::ListQuery{}));
}

}  // namespace
}  // namespace connreg::api
