// ConnectionStore::GetConnectionForToken on both backends: the token rule of
// ResolveAccessToken and the visibility rule of GET one (admin, or GrantStore::HasGrant), in one
// statement, agreeing with the separate calls it replaces.
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "store_test_support.h"

namespace connreg::store {
namespace {

using test_support::Backend;
using test_support::BackendName;
using test_support::Id;
using test_support::kT0;
using test_support::MakeConnection;
using test_support::ToMember;
using test_support::ToTeam;

class StoreTokenReadTest : public test_support::BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (HasFatalFailure()) return;
    for (const char* org : {"org-a", "org-b"}) Must(store_->CreateOrganization({org, org, kT0}));
    Must(store_->CreateMember({"admin", "org-a", "admin@a", "admin", kT0}, {}));
    Must(store_->CreateMember({"m1", "org-a", "m1@a", "viewer", kT0}, {}));
    Must(store_->CreateMember({"m2", "org-a", "m2@a", "viewer", kT0}, {}));
    Must(store_->CreateTeam({"t1", "org-a", "T1", kT0}, {}));
    Must(store_->ChangeTeamMembers("org-a", "t1", {{"m2"}, {}}, "admin"));
    for (const char* m : {"admin", "m1", "m2"}) {
      const std::string client = std::string("c-") + m;
      Must(store_->CreateApiClient({client, m, "h", kT0, std::nullopt}));
      Must(store_->SaveAccessToken({std::string("tok-") + m, client, m, "org-a", kT0 + 1000}));
    }
    domain::Connection c = MakeConnection("org-a", Id(1), "one");
    c.secrets["password"] = {"sealed-bytes", "k1", kT0};
    Must(store_->CreateConnection(c));
    Must(store_->CreateConnection(MakeConnection("org-b", Id(2), "other org")));
    Must(store_->CreateConnection(MakeConnection("org-a", Id(3), "no secrets")));
  }

  static void Must(const Status& s) {
    if (!s.ok()) throw std::runtime_error(s.error().message);
  }
};

INSTANTIATE_TEST_SUITE_P(, StoreTokenReadTest,
                         testing::Values(Backend::kSqlite, Backend::kPostgres), BackendName);

TEST_P(StoreTokenReadTest, ReadsTheConnectionWithItsSecretsAndThePrincipal) {
  auto r = store_->GetConnectionForToken("tok-admin", kT0, Id(1));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->principal.member_id, "admin");
  EXPECT_EQ(r->principal.client_id, "c-admin");
  EXPECT_EQ(r->principal.organization_id, "org-a");
  EXPECT_EQ(r->principal.account_type, "admin");
  EXPECT_EQ(r->principal.expires_at, kT0 + 1000);
  EXPECT_TRUE(r->visible);
  ASSERT_TRUE(r->connection.has_value());
  auto alone = store_->GetConnection("org-a", Id(1));
  ASSERT_TRUE(alone.ok());
  EXPECT_EQ(r->connection->connection_id, alone->connection_id);
  EXPECT_EQ(r->connection->name, alone->name);
  EXPECT_EQ(r->connection->version, alone->version);
  EXPECT_EQ(r->connection->details, alone->details);
  EXPECT_EQ(r->connection->secrets.size(), alone->secrets.size());
  EXPECT_EQ(r->connection->secrets.at("password").sealed, "sealed-bytes");
  auto bare = store_->GetConnectionForToken("tok-admin", kT0, Id(3));
  ASSERT_TRUE(bare.ok() && bare->connection.has_value());
  EXPECT_TRUE(bare->connection->secrets.empty());
}

TEST_P(StoreTokenReadTest, AConnectionOfAnotherOrganizationOrNoneIsAbsent) {
  for (const std::string& id : {Id(2), Id(99)}) {
    auto r = store_->GetConnectionForToken("tok-admin", kT0, id);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->principal.member_id, "admin");
    EXPECT_FALSE(r->connection.has_value()) << id;
  }
}

TEST_P(StoreTokenReadTest, VisibilityIsHasGrantsForOthers) {
  auto visible = [&](const char* member) {
    auto r = store_->GetConnectionForToken(std::string("tok-") + member, kT0, Id(1));
    EXPECT_TRUE(r.ok());
    EXPECT_TRUE(r->connection.has_value());
    EXPECT_EQ(r->visible, *store_->HasGrant("org-a", Id(1), member)) << member;
    return r->visible;
  };
  EXPECT_FALSE(visible("m1"));
  EXPECT_FALSE(visible("m2"));
  Must(store_->UpsertGrants("org-a", Id(1), {ToMember("g1", "m1"), ToTeam("g2", "t1")}));
  EXPECT_TRUE(visible("m1"));
  EXPECT_TRUE(visible("m2"));
  Must(store_->ArchiveTeam("org-a", "t1", "admin", kT0));
  EXPECT_FALSE(visible("m2"));  // an archived team's grants stop applying
}

TEST_P(StoreTokenReadTest, TheTokenRuleIsResolveAccessTokens) {
  auto fails = [&](const std::string& token, TimeMs now) {
    auto r = store_->GetConnectionForToken(token, now, Id(1));
    const bool resolves = store_->ResolveAccessToken(token, now).ok();
    EXPECT_EQ(r.ok(), resolves) << token;
    return !r.ok() && r.error().code == ErrorCode::kNotFound;
  };
  EXPECT_FALSE(fails("tok-m1", kT0 + 999));
  EXPECT_TRUE(fails("tok-m1", kT0 + 1000));  // expired (exclusive)
  EXPECT_TRUE(fails("tok-none", kT0));
  ASSERT_TRUE(store_->UpdateMember("org-a", "m1", {.is_inactive = true}, "admin", kT0).ok());
  EXPECT_TRUE(fails("tok-m1", kT0));
  Must(store_->RevokeApiClient("c-m2", kT0));
  EXPECT_TRUE(fails("tok-m2", kT0));
}

}  // namespace
}  // namespace connreg::store
