// Teams, grants and the non-admin view of the listing (contract sections 1 and 8) on the SQLite
// store.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "domain/connection.h"
#include "store/sqlite_store.h"
#include "store/store.h"

namespace connreg::store {
namespace {

namespace fs = std::filesystem;

constexpr TimeMs kT0 = 1655460205324;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::path(testing::TempDir()) / "sqlite_grants_test.XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// The first column of the first row of `sql`, run on the file directly ("" when none).
std::string RawSql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) throw std::runtime_error("open");
  sqlite3_stmt* st = nullptr;
  std::string out;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    std::string msg = sqlite3_errmsg(db);
    sqlite3_close(db);
    throw std::runtime_error("prepare: " + msg);
  }
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != nullptr) {
    out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

std::string Id(int i) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012d", i);
  return buf;
}

domain::Connection MakeConnection(const std::string& org, const std::string& id,
                                  const std::string& name) {
  domain::Connection c;
  c.organization_id = org;
  c.connection_id = id;
  c.name = name;
  c.type = "snowflake";
  c.created_by = c.updated_by = "admin-a";
  c.created_at = c.updated_at = c.last_active_at = kT0;
  c.details = {{"type", "snowflake"}, {"account", "acme"}};
  return c;
}

Grant ToMember(const std::string& grant_id, const std::string& member_id,
               const std::string& permission = "usage", TimeMs at = kT0) {
  Grant g;
  g.grant_id = grant_id;
  g.member_id = member_id;
  g.permission = permission;
  g.created_by = g.updated_by = "admin-a";
  g.created_at = g.updated_at = at;
  return g;
}

Grant ToTeam(const std::string& grant_id, const std::string& team_id,
             const std::string& permission = "usage", TimeMs at = kT0) {
  Grant g = ToMember(grant_id, "", permission, at);
  g.member_id.reset();
  g.team_id = team_id;
  return g;
}

// org-a: admin-a, m1, m2, m3 (viewers); team t1 = {m2}, team t2 = {m2, m3}; connections Id(1..6)
// named "c1".."c6". org-b: mb, team tb = {mb}, connection Id(100).
class SqliteStoreGrantsTest : public testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("grants.db");
    store_ = std::make_unique<SqliteStore>(path_);
    Must(store_->CreateOrganization({"org-a", "A", kT0}));
    Must(store_->CreateOrganization({"org-b", "B", kT0}));
    Must(store_->CreateMember({"admin-a", "org-a", "admin@a", "admin", kT0}));
    for (const char* m : {"m1", "m2", "m3"}) {
      Must(store_->CreateMember({m, "org-a", std::string(m) + "@a", "viewer", kT0}));
    }
    Must(store_->CreateMember({"mb", "org-b", "mb@b", "viewer", kT0}));
    Must(store_->CreateTeam({"t1", "org-a", "Team 1", kT0}));
    Must(store_->CreateTeam({"t2", "org-a", "Team 2", kT0}));
    Must(store_->CreateTeam({"tb", "org-b", "Team B", kT0}));
    Must(store_->AddTeamMember("t1", "m2"));
    Must(store_->AddTeamMember("t2", "m2"));
    Must(store_->AddTeamMember("t2", "m3"));
    Must(store_->AddTeamMember("tb", "mb"));
    for (int i = 1; i <= 6; ++i) {
      Must(store_->CreateConnection(MakeConnection("org-a", Id(i), "c" + std::to_string(i))));
    }
    Must(store_->CreateConnection(MakeConnection("org-b", Id(100), "b")));
  }

  static void Must(const Status& s) {
    if (!s.ok()) throw std::runtime_error(s.error().message);
  }

  std::string GrantCount() { return RawSql(path_, "SELECT count(*) FROM grants"); }

  // The connection ids a member sees, one keyset page of `limit` at a time; checks `total`.
  std::vector<std::string> Visible(const std::string& member, int limit,
                                   bool include_archived = false) {
    ListQuery q;
    q.organization_id = "org-a";
    q.limit = limit;
    q.include_archived = include_archived;
    q.visible_to_member = member;
    std::vector<std::string> out;
    std::optional<std::int64_t> total;
    for (int pages = 0; pages < 100; ++pages) {
      auto page = store_->ListConnections(q);
      EXPECT_TRUE(page.ok()) << page.error().message;
      if (!page.ok()) break;
      if (total) {
        EXPECT_EQ(page->total, *total);
      }
      total = page->total;
      for (const auto& c : page->entries) out.push_back(c.connection_id);
      if (!page->has_more) break;
      const auto& last = page->entries.back();
      q.after = ListCursor{last.name, last.created_at, last.connection_id};
    }
    EXPECT_EQ(total.value_or(-1), static_cast<std::int64_t>(out.size()));
    return out;
  }

  TempDir dir_;
  std::string path_;
  std::unique_ptr<SqliteStore> store_;
};

// ---- teams ---------------------------------------------------------------------------------

TEST_F(SqliteStoreGrantsTest, TeamsAndMembership) {
  auto t = store_->GetTeam("t1");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->organization_id, "org-a");
  EXPECT_EQ(t->name, "Team 1");
  EXPECT_EQ(t->created_at, kT0);
  EXPECT_EQ(store_->GetTeam("t-none").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->CreateTeam({"t9", "org-none", "x", kT0}).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->CreateTeam({"t1", "org-a", "again", kT0}).error().code, ErrorCode::kConflict);

  // Adding twice is not an error and adds no row.
  ASSERT_TRUE(store_->AddTeamMember("t1", "m2").ok());
  EXPECT_EQ(RawSql(path_, "SELECT count(*) FROM team_members WHERE team_id = 't1'"), "1");
  EXPECT_EQ(store_->AddTeamMember("t-none", "m1").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->AddTeamMember("t1", "m-none").error().code, ErrorCode::kNotFound);
  Status cross = store_->AddTeamMember("t1", "mb");
  ASSERT_FALSE(cross.ok());
  EXPECT_EQ(cross.error().code, ErrorCode::kBadRequest);
  EXPECT_EQ(RawSql(path_, "SELECT count(*) FROM team_members WHERE member_id = 'mb'"), "1");
}

// ---- upsert --------------------------------------------------------------------------------

TEST_F(SqliteStoreGrantsTest, GrantingAgainChangesThePermissionWithoutDuplicating) {
  ASSERT_TRUE(
      store_->UpsertGrants("org-a", Id(1), {ToMember("g1", "m1"), ToTeam("g2", "t1")}).ok());
  Grant again = ToMember("g9", "m1", "annotate", kT0 + 50);
  again.updated_by = "admin-2";
  Grant team_again = ToTeam("g8", "t1", "annotate", kT0 + 60);
  ASSERT_TRUE(store_->UpsertGrants("org-a", Id(1), {again, team_again}).ok());
  EXPECT_EQ(GrantCount(), "2");

  auto page = store_->ListGrants("org-a", Id(1), 10, std::nullopt, 0);
  ASSERT_TRUE(page.ok()) << page.error().message;
  ASSERT_EQ(page->entries.size(), 2u);
  const Grant& g = page->entries[0];
  EXPECT_EQ(g.grant_id, "g1");  // the original id and creation stay
  EXPECT_EQ(g.organization_id, "org-a");
  EXPECT_EQ(g.connection_id, Id(1));
  EXPECT_EQ(g.member_id, "m1");
  EXPECT_FALSE(g.team_id.has_value());
  EXPECT_EQ(g.permission, "annotate");
  EXPECT_EQ(g.created_by, "admin-a");
  EXPECT_EQ(g.created_at, kT0);
  EXPECT_EQ(g.updated_by, "admin-2");
  EXPECT_EQ(g.updated_at, kT0 + 50);
  EXPECT_EQ(page->entries[1].grant_id, "g2");
  EXPECT_EQ(page->entries[1].team_id, "t1");
  EXPECT_FALSE(page->entries[1].member_id.has_value());
  EXPECT_EQ(page->entries[1].permission, "annotate");

  // The same grantee on another connection is another grant.
  ASSERT_TRUE(store_->UpsertGrants("org-a", Id(2), {ToMember("g3", "m1")}).ok());
  EXPECT_EQ(GrantCount(), "3");
}

TEST_F(SqliteStoreGrantsTest, DuplicateGranteeWithinABatchLastOneWins) {
  ASSERT_TRUE(store_
                  ->UpsertGrants("org-a", Id(1),
                                 {ToMember("g1", "m1", "usage"), ToTeam("g2", "t1", "annotate"),
                                  ToMember("g3", "m1", "annotate"), ToTeam("g4", "t1", "usage")})
                  .ok());
  EXPECT_EQ(GrantCount(), "2");
  EXPECT_EQ(RawSql(path_, "SELECT permission FROM grants WHERE member_id = 'm1'"), "annotate");
  EXPECT_EQ(RawSql(path_, "SELECT permission FROM grants WHERE team_id = 't1'"), "usage");
}

TEST_F(SqliteStoreGrantsTest, BatchWithOneUnknownGranteeCreatesNothing) {
  ASSERT_TRUE(store_->UpsertGrants("org-a", Id(1), {ToMember("g0", "m3", "usage")}).ok());
  Status s = store_->UpsertGrants("org-a", Id(1),
                                  {ToMember("g1", "m1"), ToMember("g0b", "m3", "annotate"),
                                   ToMember("g2", "ghost"), ToMember("g3", "ghost-2")});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kBadRequest);
  EXPECT_EQ(s.error().message, "member ghost is not a member of this organization");
  EXPECT_EQ(GrantCount(), "1");
  // The earlier change of the batch rolled back too.
  EXPECT_EQ(RawSql(path_, "SELECT permission FROM grants WHERE member_id = 'm3'"), "usage");

  s = store_->UpsertGrants("org-a", Id(1), {ToTeam("g4", "t1"), ToTeam("g5", "t-ghost")});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kBadRequest);
  EXPECT_EQ(s.error().message, "team t-ghost is not a team of this organization");
  EXPECT_EQ(GrantCount(), "1");
}

TEST_F(SqliteStoreGrantsTest, CrossOrganizationGrantsAreRefused) {
  Status s = store_->UpsertGrants("org-a", Id(1), {ToMember("g1", "mb")});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kBadRequest);
  EXPECT_EQ(s.error().message, "member mb is not a member of this organization");
  s = store_->UpsertGrants("org-a", Id(1), {ToTeam("g1", "tb")});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kBadRequest);
  EXPECT_EQ(s.error().message, "team tb is not a team of this organization");
  // Another organization's connection does not exist for this one.
  EXPECT_EQ(store_->UpsertGrants("org-a", Id(100), {ToMember("g1", "m1")}).error().code,
            ErrorCode::kNotFound);
  EXPECT_EQ(store_->UpsertGrants("org-b", Id(1), {ToMember("g1", "mb")}).error().code,
            ErrorCode::kNotFound);
  EXPECT_EQ(store_->UpsertGrants("org-a", Id(99), {ToMember("g1", "m1")}).error().code,
            ErrorCode::kNotFound);
  EXPECT_EQ(GrantCount(), "0");
  EXPECT_EQ(store_->ListGrants("org-b", Id(1), 10, std::nullopt, 0).error().code,
            ErrorCode::kNotFound);
}

TEST_F(SqliteStoreGrantsTest, MalformedGrantsAreBadRequests) {
  Grant both = ToMember("g1", "m1");
  both.team_id = "t1";
  EXPECT_EQ(store_->UpsertGrants("org-a", Id(1), {both}).error().code, ErrorCode::kBadRequest);
  Grant neither = ToMember("g1", "m1");
  neither.member_id.reset();
  EXPECT_EQ(store_->UpsertGrants("org-a", Id(1), {neither}).error().code, ErrorCode::kBadRequest);
  EXPECT_EQ(store_->UpsertGrants("org-a", Id(1), {ToMember("g1", "m1", "owner")}).error().code,
            ErrorCode::kBadRequest);
  EXPECT_TRUE(store_->UpsertGrants("org-a", Id(1), {}).ok());
  EXPECT_EQ(GrantCount(), "0");
  // A grant id already used elsewhere is a conflict, and the batch rolls back.
  ASSERT_TRUE(store_->UpsertGrants("org-a", Id(1), {ToMember("g1", "m1")}).ok());
  EXPECT_EQ(store_->UpsertGrants("org-a", Id(2), {ToMember("g2", "m2"), ToMember("g1", "m1")})
                .error()
                .code,
            ErrorCode::kConflict);
  EXPECT_EQ(GrantCount(), "1");
}

// ---- list and delete -----------------------------------------------------------------------

TEST_F(SqliteStoreGrantsTest, ListPagesByCreationThenIdWithKeysetOrOffset) {
  // Ties on created_at are broken by grant_id; inserted out of order.
  std::vector<Grant> batch = {
      ToMember("g-e", "m1", "usage", kT0 + 2), ToTeam("g-b", "t1", "usage", kT0 + 1),
      ToMember("g-a", "m2", "usage", kT0 + 2), ToTeam("g-d", "t2", "annotate", kT0),
      ToMember("g-c", "m3", "usage", kT0 + 1), ToMember("g-f", "admin-a", "usage", kT0 + 3)};
  ASSERT_TRUE(store_->UpsertGrants("org-a", Id(1), batch).ok());
  ASSERT_TRUE(store_->UpsertGrants("org-a", Id(2), {ToMember("g-x", "m1")}).ok());
  const std::vector<std::string> expected = {"g-d", "g-b", "g-c", "g-a", "g-e", "g-f"};

  for (int limit : {1, 2, 4, 6, 1000}) {
    SCOPED_TRACE("limit " + std::to_string(limit));
    std::vector<std::string> seen;
    std::optional<GrantCursor> after;
    for (int pages = 0; pages < 20; ++pages) {
      auto page = store_->ListGrants("org-a", Id(1), limit, after, 0);
      ASSERT_TRUE(page.ok()) << page.error().message;
      EXPECT_EQ(page->total, 6);
      EXPECT_LE(page->entries.size(), static_cast<std::size_t>(limit));
      for (const auto& g : page->entries) seen.push_back(g.grant_id);
      if (!page->has_more) break;
      after = GrantCursor{page->entries.back().created_at, page->entries.back().grant_id};
    }
    EXPECT_EQ(seen, expected);
  }
  auto page = store_->ListGrants("org-a", Id(1), 2, std::nullopt, 3);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->entries.size(), 2u);
  EXPECT_EQ(page->entries[0].grant_id, "g-a");
  EXPECT_EQ(page->entries[1].grant_id, "g-e");
  EXPECT_TRUE(page->has_more);
  page = store_->ListGrants("org-a", Id(1), 2, std::nullopt, 4);
  EXPECT_FALSE(page->has_more);
  page = store_->ListGrants("org-a", Id(1), 2, std::nullopt, 100);
  EXPECT_TRUE(page->entries.empty());
  EXPECT_EQ(page->total, 6);
  // A connection without grants.
  page = store_->ListGrants("org-a", Id(3), 10, std::nullopt, 0);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->entries.empty());
  EXPECT_EQ(page->total, 0);
  EXPECT_FALSE(page->has_more);
}

TEST_F(SqliteStoreGrantsTest, DeleteOnlyOnItsConnectionInItsOrganization) {
  ASSERT_TRUE(store_->UpsertGrants("org-a", Id(1), {ToMember("g1", "m1")}).ok());
  EXPECT_EQ(store_->DeleteGrant("org-a", Id(2), "g1").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->DeleteGrant("org-b", Id(1), "g1").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->DeleteGrant("org-a", Id(1), "g-none").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(GrantCount(), "1");
  ASSERT_TRUE(store_->DeleteGrant("org-a", Id(1), "g1").ok());
  EXPECT_EQ(GrantCount(), "0");
  EXPECT_EQ(store_->DeleteGrant("org-a", Id(1), "g1").error().code, ErrorCode::kNotFound);
  EXPECT_FALSE(*store_->HasGrant("org-a", Id(1), "m1"));
}

// ---- visibility ----------------------------------------------------------------------------

TEST_F(SqliteStoreGrantsTest, HasGrantDirectlyOrThroughATeam) {
  ASSERT_TRUE(store_->UpsertGrants("org-a", Id(1), {ToMember("g1", "m1")}).ok());
  ASSERT_TRUE(store_->UpsertGrants("org-a", Id(2), {ToTeam("g2", "t2")}).ok());
  EXPECT_TRUE(*store_->HasGrant("org-a", Id(1), "m1"));
  EXPECT_FALSE(*store_->HasGrant("org-a", Id(1), "m2"));
  EXPECT_FALSE(*store_->HasGrant("org-a", Id(2), "m1"));
  EXPECT_TRUE(*store_->HasGrant("org-a", Id(2), "m2"));
  EXPECT_TRUE(*store_->HasGrant("org-a", Id(2), "m3"));
  EXPECT_FALSE(*store_->HasGrant("org-a", Id(3), "m3"));
  EXPECT_FALSE(*store_->HasGrant("org-b", Id(1), "m1"));  // another organization's view
  EXPECT_FALSE(*store_->HasGrant("org-a", Id(1), "m-none"));
}

TEST_F(SqliteStoreGrantsTest, ListingShowsOnlyGrantedConnectionsWithTheirTotal) {
  ASSERT_TRUE(store_->UpsertGrants("org-a", Id(1), {ToMember("g1", "m1")}).ok());
  ASSERT_TRUE(
      store_->UpsertGrants("org-a", Id(3), {ToMember("g3", "m1"), ToTeam("g3t", "t1")}).ok());
  ASSERT_TRUE(
      store_->UpsertGrants("org-a", Id(4), {ToTeam("g4", "t2"), ToMember("g4m", "m2")}).ok());
  ASSERT_TRUE(
      store_->UpsertGrants("org-a", Id(5), {ToTeam("g5a", "t1"), ToTeam("g5b", "t2")}).ok());
  ASSERT_TRUE(store_->UpsertGrants("org-a", Id(6), {ToMember("g6", "m3")}).ok());
  domain::Connection archived = *store_->GetConnection("org-a", Id(6));
  archived.is_archived = true;
  archived.version = 2;
  ASSERT_TRUE(store_->UpdateConnection(archived, 1).ok());

  using V = std::vector<std::string>;
  for (int limit : {1, 2, 50}) {
    SCOPED_TRACE("limit " + std::to_string(limit));
    EXPECT_EQ(Visible("m1", limit), (V{Id(1), Id(3)}));
    // m2: directly (4), through t1 (3, 5) and t2 (4, 5): each connection once.
    EXPECT_EQ(Visible("m2", limit), (V{Id(3), Id(4), Id(5)}));
    EXPECT_EQ(Visible("m3", limit), (V{Id(4), Id(5)}));
    EXPECT_EQ(Visible("m3", limit, true), (V{Id(4), Id(5), Id(6)}));
    EXPECT_EQ(Visible("admin-a", limit), V{});
    EXPECT_EQ(Visible("mb", limit), V{});
  }

  // The numeric page form and the other filters combine with it.
  ListQuery q;
  q.organization_id = "org-a";
  q.visible_to_member = "m2";
  q.limit = 1;
  q.offset = 1;
  auto page = store_->ListConnections(q);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->entries.size(), 1u);
  EXPECT_EQ(page->entries[0].connection_id, Id(4));
  EXPECT_TRUE(page->has_more);
  EXPECT_EQ(page->total, 3);
  q.offset = 0;
  q.limit = 10;
  q.search = "c5";
  page = store_->ListConnections(q);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->entries.size(), 1u);
  EXPECT_EQ(page->entries[0].connection_id, Id(5));
  EXPECT_EQ(page->total, 1);

  // Without visible_to_member: everything (the admin's view).
  ListQuery all;
  all.organization_id = "org-a";
  EXPECT_EQ(store_->ListConnections(all)->total, 5);

  // Revoking the grant hides the connection at once.
  ASSERT_TRUE(store_->DeleteGrant("org-a", Id(3), "g3").ok());
  EXPECT_EQ(Visible("m1", 10), (V{Id(1)}));
}

// Grants of another organization never leak into a listing, even on a shared member id.
TEST_F(SqliteStoreGrantsTest, VisibilityStaysWithinTheOrganization) {
  ASSERT_TRUE(
      store_->UpsertGrants("org-b", Id(100), {ToMember("gb", "mb"), ToTeam("gt", "tb")}).ok());
  ListQuery q;
  q.organization_id = "org-b";
  q.visible_to_member = "mb";
  auto page = store_->ListConnections(q);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->entries.size(), 1u);
  EXPECT_EQ(page->entries[0].connection_id, Id(100));
  q.organization_id = "org-a";
  page = store_->ListConnections(q);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->entries.empty());
  EXPECT_EQ(page->total, 0);
}

}  // namespace
}  // namespace connreg::store
