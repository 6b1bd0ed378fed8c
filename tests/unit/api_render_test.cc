#include "api/render.h"

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>

namespace connreg::api {
namespace {

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

TEST(ApiRender, HasSigmaFieldsAndNoSecretValue) {
  auto o = RenderConnection(Sample());
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
  std::string text = boost::json::serialize(o);
  EXPECT_EQ(text.find("c2VhbGVk"), std::string::npos);
  EXPECT_EQ(text.find("key1"), std::string::npos);
}

TEST(ApiRender, TimeoutAndEtag) {
  auto c = Sample();
  c.timeout_secs = 120;
  auto o = RenderConnection(c);
  EXPECT_EQ(o.at("timeout").at("default").as_int64(), 120);
  EXPECT_EQ(EtagOf(c), "\"3\"");
}

}  // namespace
}  // namespace connreg::api
