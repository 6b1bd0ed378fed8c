// The catalog store (store.h, CatalogStore; contract section 13), written once and run on both
// backends as `<Suite>.<Test>/Sqlite` and `/Postgres` (store_test_support.h has the servers):
// sync as a diff (stable ids, removed and back, changed and removed columns, ancestors made),
// the paths listing with its exact totals in every shape, visibility by connection and path
// grants for members and teams, keyset and offset paging, 404 across organizations, path grants.
#include <gtest/gtest.h>

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "domain/catalog.h"
#include "store/store.h"
#include "store_test_support.h"

namespace connreg::store {
namespace {

using domain::CatalogPath;
using domain::WarehouseColumn;
using domain::WarehouseObject;
using test_support::Backend;
using test_support::BackendName;
using test_support::Id;
using test_support::kT0;
using test_support::MakeConnection;
using test_support::ToMember;
using test_support::ToTeam;

WarehouseObject Table(CatalogPath path, std::vector<WarehouseColumn> columns = {},
                      std::string comment = "") {
  return {std::move(path), std::string(domain::inode_kind::kTable), std::move(comment),
          std::move(columns)};
}

WarehouseObject Scope(CatalogPath path, std::string comment = "") {
  return {std::move(path), std::string(domain::inode_kind::kScope), std::move(comment), {}};
}

WarehouseColumn Col(std::string name, std::string type = "integer", bool nullable = true,
                    std::string comment = "") {
  return {std::move(name), std::move(type), nullable, std::move(comment)};
}

// org-a: admin-a, m1, m2, m3 (viewers); team t1 = {m2}, team t2 = {m3}; connections c1 = Id(1)
// and c2 = Id(2). org-b: mb, connection Id(100).
class StoreCatalogTest : public testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    try {
      backend_ = test_support::NewBackend(GetParam());
      store_ = backend_->Open();
    } catch (const std::exception& e) {
      FAIL() << e.what();
    }
    Must(store_->CreateOrganization({"org-a", "A", kT0}));
    Must(store_->CreateOrganization({"org-b", "B", kT0}));
    Must(store_->CreateMember({"admin-a", "org-a", "admin@a", "admin", kT0}, {}));
    for (const char* m : {"m1", "m2", "m3"}) {
      Must(store_->CreateMember({m, "org-a", std::string(m) + "@a", "viewer", kT0}, {}));
    }
    Must(store_->CreateMember({"mb", "org-b", "mb@b", "viewer", kT0}, {}));
    Must(store_->CreateTeam({"t1", "org-a", "Team 1", kT0}, {}));
    Must(store_->CreateTeam({"t2", "org-a", "Team 2", kT0}, {}));
    Must(store_->ChangeTeamMembers("org-a", "t1", {{"m2"}, {}}, "admin-a"));
    Must(store_->ChangeTeamMembers("org-a", "t2", {{"m3"}, {}}, "admin-a"));
    Must(store_->CreateConnection(MakeConnection("org-a", c1_, "c1")));
    Must(store_->CreateConnection(MakeConnection("org-a", c2_, "c2")));
    Must(store_->CreateConnection(MakeConnection("org-b", cb_, "b")));
  }

  static void Must(const Status& s) {
    if (!s.ok()) throw std::runtime_error(s.error().message);
  }

  std::function<std::string()> Ids() {
    return [this] { return "inode-" + std::to_string(++next_id_); };
  }

  CatalogBatchResult Apply(const std::string& connection, const std::vector<WarehouseObject>& o,
                           const std::string& org = "org-a") {
    auto r = store_->ApplyCatalogBatch(org, connection, o, kT0, Ids());
    if (!r.ok()) throw std::runtime_error(r.error().message);
    return *r;
  }

  Inode Find(const std::string& connection, const CatalogPath& path) {
    auto i = store_->FindInode("org-a", connection, path);
    if (!i.ok()) throw std::runtime_error(i.error().message);
    return *i;
  }

  std::vector<CatalogColumn> Columns(const std::string& table_id, int limit = 1000) {
    auto page = store_->ListColumns("org-a", table_id, limit, std::nullopt);
    if (!page.ok()) throw std::runtime_error(page.error().message);
    return page->entries;
  }

  // Every page of `q` by keyset, `limit` at a time: the paths in order, with the total checked
  // to be the same on every page and to count what the walk saw. The offset form, page by
  // page, must give the same entries.
  std::vector<CatalogPath> Walk(InodeListQuery q, int limit = 2) {
    q.limit = limit;
    std::vector<CatalogPath> out;
    std::vector<std::string> connections;
    std::optional<std::int64_t> total;
    for (int pages = 0; pages < 1000; ++pages) {
      auto page = store_->ListInodes(q);
      EXPECT_TRUE(page.ok()) << page.error().message;
      if (!page.ok()) break;
      if (total) {
        EXPECT_EQ(page->total, *total);
      }
      total = page->total;
      for (const Inode& i : page->entries) {
        EXPECT_FALSE(i.removed);
        out.push_back(i.path);
        connections.push_back(i.connection_id);
      }
      if (!page->has_more) break;
      q.after = InodeCursor{page->entries.back().connection_id,
                            domain::PathKey(page->entries.back().path)};
    }
    EXPECT_EQ(total.value_or(-1), static_cast<std::int64_t>(out.size()));
    for (std::size_t i = 1; i < out.size(); ++i) {  // listing order
      EXPECT_LT(std::make_pair(connections[i - 1], domain::PathKey(out[i - 1])),
                std::make_pair(connections[i], domain::PathKey(out[i])));
    }
    q.after.reset();
    std::vector<CatalogPath> by_offset;
    for (std::int64_t offset = 0;; offset += limit) {
      q.offset = offset;
      auto page = store_->ListInodes(q);
      if (!page.ok()) break;
      EXPECT_EQ(page->total, total.value_or(-1));
      for (const Inode& i : page->entries) by_offset.push_back(i.path);
      if (!page->has_more) break;
    }
    EXPECT_EQ(by_offset, out);
    return out;
  }

  InodeListQuery Query(std::optional<std::string> member = std::nullopt) {
    InodeListQuery q;
    q.organization_id = "org-a";
    q.visible_to_member = std::move(member);
    return q;
  }

  std::string Raw(const std::string& sql) { return backend_->Raw(sql); }

  // c1: s1 (comment) with t1 (a, b), t2; s2 with t3; c2: s3 with t4.
  void SeedTwoConnections() {
    Apply(c1_, {Scope({"s1"}, "first"), Table({"s1", "t1"}, {Col("a"), Col("b", "text")}),
                Table({"s1", "t2"}), Table({"s2", "t3"})});
    Apply(c2_, {Table({"s3", "t4"})});
  }

  std::unique_ptr<test_support::TestBackend> backend_;
  std::unique_ptr<Store> store_;
  const std::string c1_ = Id(1);
  const std::string c2_ = Id(2);
  const std::string cb_ = Id(100);
  int next_id_ = 0;
};

INSTANTIATE_TEST_SUITE_P(, StoreCatalogTest, testing::Values(Backend::kSqlite, Backend::kPostgres),
                         BackendName);

using Paths = std::vector<CatalogPath>;

// ---- sync as a diff --------------------------------------------------------------------------

TEST_P(StoreCatalogTest, ApplyCreatesAncestorsAndKeepsIdsAcrossReapply) {
  auto first = Apply(c1_, {Table({"s", "t"}, {Col("a")}), Table({"s", "u"})});
  EXPECT_EQ(first.added, 3);  // s made as a scope, t, u
  EXPECT_EQ(first.changed, 0);
  Inode s = Find(c1_, {"s"});
  Inode t = Find(c1_, {"s", "t"});
  EXPECT_EQ(s.kind, "scope");
  EXPECT_EQ(s.parent_id, std::nullopt);
  EXPECT_EQ(t.kind, "table");
  EXPECT_EQ(t.parent_id, s.inode_id);
  EXPECT_EQ(t.path, (CatalogPath{"s", "t"}));
  EXPECT_EQ(t.connection_id, c1_);

  auto again = Apply(c1_, {Table({"s", "t"}, {Col("a")}), Table({"s", "u"})});
  EXPECT_EQ(again.added, 0);
  EXPECT_EQ(again.changed, 0);
  EXPECT_EQ(Find(c1_, {"s", "t"}).inode_id, t.inode_id);
  EXPECT_EQ(Find(c1_, {"s"}).inode_id, s.inode_id);
  EXPECT_EQ(Raw("SELECT count(*) FROM catalog_inodes"), "3");
  // A scope reported later with a comment is the same inode, changed.
  auto scope = Apply(c1_, {Scope({"s"}, "the schema")});
  EXPECT_EQ(scope.changed, 1);
  EXPECT_EQ(Find(c1_, {"s"}).comment, "the schema");
  EXPECT_EQ(Find(c1_, {"s"}).inode_id, s.inode_id);
}

TEST_P(StoreCatalogTest, ChangedAndRemovedColumnsAreWrittenFieldByField) {
  Apply(c1_, {Table({"s", "t"}, {Col("a"), Col("b", "text"), Col("c")})});
  const std::string t = Find(c1_, {"s", "t"}).inode_id;
  ASSERT_EQ(Columns(t).size(), 3u);
  // b changes type, c goes, d comes; a stays as it was.
  auto r =
      Apply(c1_, {Table({"s", "t"}, {Col("a"), Col("b", "varchar(3)", false, "B"), Col("d")})});
  EXPECT_EQ(r.changed, 1);
  EXPECT_EQ(r.added, 0);
  auto cols = Columns(t);
  ASSERT_EQ(cols.size(), 4u);
  EXPECT_EQ(cols[0].name, "a");
  EXPECT_FALSE(cols[0].removed);
  EXPECT_EQ(cols[1].name, "b");
  EXPECT_EQ(cols[1].warehouse_type, "varchar(3)");
  EXPECT_FALSE(cols[1].nullable);
  EXPECT_EQ(cols[1].comment, "B");
  EXPECT_EQ(cols[2].name, "c");  // ordinal 3, kept, removed
  EXPECT_TRUE(cols[2].removed);
  EXPECT_EQ(cols[3].name, "d");
  EXPECT_EQ(cols[3].ordinal, 3);
  EXPECT_FALSE(cols[3].removed);
  // The same listing again writes nothing.
  EXPECT_EQ(
      Apply(c1_, {Table({"s", "t"}, {Col("a"), Col("b", "varchar(3)", false, "B"), Col("d")})})
          .changed,
      0);
  // A comment of the table alone is a change too.
  EXPECT_EQ(Apply(c1_, {Table({"s", "t"}, {Col("a"), Col("b", "varchar(3)", false, "B"), Col("d")},
                              "now commented")})
                .changed,
            1);
}

TEST_P(StoreCatalogTest, RemovedThenBackKeepsItsIdColumnsAndGrants) {
  Apply(c1_, {Table({"s", "t"}, {Col("a")}), Table({"s", "u"})});
  const Inode t = Find(c1_, {"s", "t"});
  ASSERT_TRUE(store_->UpsertPathGrants("org-a", t.inode_id, {ToMember("pg1", "m1")}).ok());
  // A full listing that saw s and u only.
  std::unordered_set<std::string> seen = {domain::PathKey({"s"}), domain::PathKey({"s", "u"})};
  auto marked = store_->MarkUnseenRemoved("org-a", c1_, {}, seen, kT0 + 1);
  ASSERT_TRUE(marked.ok()) << marked.error().message;
  EXPECT_EQ(*marked, 1);
  auto gone = store_->GetInode("org-a", t.inode_id);
  ASSERT_TRUE(gone.ok());
  EXPECT_TRUE(gone->removed);
  auto cols = Columns(t.inode_id);
  ASSERT_EQ(cols.size(), 1u);
  EXPECT_TRUE(cols[0].removed);
  EXPECT_EQ(Walk(Query()), (Paths{{"s"}, {"s", "u"}}));
  EXPECT_FALSE(*store_->CanSeeInode("org-a", Find(c1_, {"s"}).inode_id, "m1"));

  auto back = Apply(c1_, {Table({"s", "t"}, {Col("a")})});
  EXPECT_EQ(back.added, 1);
  EXPECT_EQ(back.changed, 0);
  Inode again = Find(c1_, {"s", "t"});
  EXPECT_EQ(again.inode_id, t.inode_id);
  EXPECT_FALSE(again.removed);
  EXPECT_FALSE(Columns(t.inode_id)[0].removed);
  EXPECT_EQ(Walk(Query()), (Paths{{"s"}, {"s", "t"}, {"s", "u"}}));
  // Its grant came back with it.
  EXPECT_EQ(Walk(Query("m1")), (Paths{{"s"}, {"s", "t"}}));
}

TEST_P(StoreCatalogTest, MarkUnseenRemovedKeepsScopesOfSeenObjectsAndWorksInBatches) {
  // 2,500 tables under two scopes: more than one batch of the walk.
  std::vector<WarehouseObject> objects;
  for (int i = 0; i < 2500; ++i) {
    objects.push_back(Table({i % 2 == 0 ? "even" : "odd", "t" + std::to_string(10000 + i)}));
  }
  Apply(c1_, objects);
  Apply(c2_, {Table({"other", "t"})});
  std::unordered_set<std::string> seen;
  seen.insert(domain::PathKey({"odd", "t10001"}));  // one table of "odd", not "odd" itself
  auto marked = store_->MarkUnseenRemoved("org-a", c1_, {}, seen, kT0 + 1);
  ASSERT_TRUE(marked.ok()) << marked.error().message;
  EXPECT_EQ(*marked, 2500 - 1 + 1);  // every other table, and "even"
  EXPECT_EQ(Walk(Query(), 50), (Paths{{"odd"}, {"odd", "t10001"}, {"other"}, {"other", "t"}}));
  InodeListQuery children = Query();
  children.parent_id = Find(c1_, {"odd"}).inode_id;
  EXPECT_EQ(Walk(children), (Paths{{"odd", "t10001"}}));
  // A subtree only: the other connection and the rest stay.
  auto none = store_->MarkUnseenRemoved("org-a", c2_, {"other"}, {}, kT0 + 2);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 2);
  EXPECT_EQ(Walk(Query()), (Paths{{"odd"}, {"odd", "t10001"}}));
}

TEST_P(StoreCatalogTest, WrongOrganizationIsNotFound) {
  SeedTwoConnections();
  const std::string t1 = Find(c1_, {"s1", "t1"}).inode_id;
  EXPECT_EQ(store_->ApplyCatalogBatch("org-b", c1_, {Table({"x"})}, kT0, Ids()).error().code,
            ErrorCode::kNotFound);
  EXPECT_EQ(store_->GetInode("org-b", t1).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->FindInode("org-b", c1_, {"s1", "t1"}).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->ListColumns("org-b", t1, 10, std::nullopt).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->CanSeeInode("org-b", t1, "mb").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->UpsertPathGrants("org-b", t1, {ToMember("g", "mb")}).error().code,
            ErrorCode::kNotFound);
  EXPECT_EQ(store_->ListPathGrants("org-b", t1, 10, std::nullopt, 0).error().code,
            ErrorCode::kNotFound);
  InodeListQuery q;
  q.organization_id = "org-b";
  q.parent_id = Find(c1_, {"s1"}).inode_id;
  EXPECT_EQ(store_->ListInodes(q).error().code, ErrorCode::kNotFound);
  q.parent_id.reset();
  q.connection_id = c1_;
  EXPECT_EQ(store_->ListInodes(q).error().code, ErrorCode::kNotFound);
  q.connection_id.reset();
  EXPECT_EQ(store_->ListInodes(q)->total, 0);
  // A scope is not a table.
  EXPECT_EQ(store_->ListColumns("org-a", Find(c1_, {"s1"}).inode_id, 10, std::nullopt).error().code,
            ErrorCode::kNotFound);
}

// ---- listing and totals ----------------------------------------------------------------------

TEST_P(StoreCatalogTest, AdminTotalsInEveryShapeAndPagesAcrossConnections) {
  SeedTwoConnections();
  Apply(cb_, {Table({"b", "t"})}, "org-b");
  EXPECT_EQ(
      Walk(Query()),
      (Paths{{"s1"}, {"s1", "t1"}, {"s1", "t2"}, {"s2"}, {"s2", "t3"}, {"s3"}, {"s3", "t4"}}));
  for (int limit : {1, 3, 7, 8}) EXPECT_EQ(Walk(Query(), limit).size(), 7u);
  InodeListQuery one = Query();
  one.connection_id = c2_;
  EXPECT_EQ(Walk(one), (Paths{{"s3"}, {"s3", "t4"}}));
  InodeListQuery children = Query();
  children.parent_id = Find(c1_, {"s1"}).inode_id;
  EXPECT_EQ(Walk(children, 1), (Paths{{"s1", "t1"}, {"s1", "t2"}}));
  children.connection_id = c2_;  // a parent of another connection: nothing
  EXPECT_EQ(store_->ListInodes(children)->total, 0);
  // The totals are the kept counts, not a count of the rows.
  EXPECT_EQ(Raw("SELECT live_inodes FROM catalog_organization_counts"
                " WHERE organization_id = 'org-a'"),
            "7");
  EXPECT_EQ(Raw("SELECT live_children FROM catalog_inodes WHERE name = 's1'"), "2");
}

TEST_P(StoreCatalogTest, ConnectionGrantShowsTheWholeCatalogOfThatConnection) {
  SeedTwoConnections();
  EXPECT_EQ(Walk(Query("m1")), Paths{});
  ASSERT_TRUE(store_->UpsertGrants("org-a", c2_, {ToMember("g1", "m1")}).ok());
  EXPECT_EQ(Walk(Query("m1")), (Paths{{"s3"}, {"s3", "t4"}}));
  InodeListQuery other = Query("m1");
  other.connection_id = c1_;
  EXPECT_EQ(Walk(other), Paths{});
  InodeListQuery children = Query("m1");
  children.parent_id = Find(c2_, {"s3"}).inode_id;
  EXPECT_EQ(Walk(children), (Paths{{"s3", "t4"}}));
  children.parent_id = Find(c1_, {"s1"}).inode_id;
  EXPECT_EQ(store_->ListInodes(children).error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(*store_->CanSeeInode("org-a", Find(c2_, {"s3", "t4"}).inode_id, "m1"));
  EXPECT_FALSE(*store_->CanSeeInode("org-a", Find(c1_, {"s1", "t1"}).inode_id, "m1"));
  // Through a team, and no more once the team is archived.
  ASSERT_TRUE(store_->UpsertGrants("org-a", c1_, {ToTeam("g2", "t1")}).ok());
  EXPECT_EQ(Walk(Query("m2")).size(), 5u);
  ASSERT_TRUE(store_->ArchiveTeam("org-a", "t1", "admin-a", kT0).ok());
  EXPECT_EQ(Walk(Query("m2")), Paths{});
  EXPECT_FALSE(*store_->CanSeeInode("org-a", Find(c1_, {"s1"}).inode_id, "m2"));
}

TEST_P(StoreCatalogTest, PathGrantShowsThePathItsAncestorsAndItsSubtree) {
  Apply(c1_, {Table({"db", "a", "t1"}), Table({"db", "a", "t2"}), Table({"db", "b", "t3"}),
              Table({"db", "b", "t4"}), Table({"db2", "c", "t5"})});
  const Inode a = Find(c1_, {"db", "a"});
  ASSERT_TRUE(store_->UpsertPathGrants("org-a", a.inode_id, {ToMember("p1", "m1")}).ok());
  EXPECT_EQ(Walk(Query("m1")), (Paths{{"db"}, {"db", "a"}, {"db", "a", "t1"}, {"db", "a", "t2"}}));
  // A table of another scope: its scope joins as an ancestor; "db" is counted once.
  const Inode t3 = Find(c1_, {"db", "b", "t3"});
  ASSERT_TRUE(store_->UpsertPathGrants("org-a", t3.inode_id, {ToMember("p2", "m1")}).ok());
  // Overlapping grants: one inside the first adds nothing.
  ASSERT_TRUE(
      store_
          ->UpsertPathGrants("org-a", Find(c1_, {"db", "a", "t1"}).inode_id, {ToMember("p3", "m1")})
          .ok());
  const Paths seen = {{"db"},      {"db", "a"},      {"db", "a", "t1"}, {"db", "a", "t2"},
                      {"db", "b"}, {"db", "b", "t3"}};
  for (int limit : {1, 2, 4, 6, 7}) EXPECT_EQ(Walk(Query("m1"), limit), seen);
  // The children of an ancestor: only those on the way; of a granted scope: all of them.
  InodeListQuery children = Query("m1");
  children.parent_id = Find(c1_, {"db", "b"}).inode_id;
  EXPECT_EQ(Walk(children), (Paths{{"db", "b", "t3"}}));
  children.parent_id = Find(c1_, {"db"}).inode_id;
  EXPECT_EQ(Walk(children), (Paths{{"db", "a"}, {"db", "b"}}));
  children.parent_id = a.inode_id;
  EXPECT_EQ(Walk(children), (Paths{{"db", "a", "t1"}, {"db", "a", "t2"}}));
  children.parent_id = Find(c1_, {"db2"}).inode_id;
  EXPECT_EQ(store_->ListInodes(children).error().code, ErrorCode::kNotFound);
  // One inode at a time, the same rule.
  EXPECT_TRUE(*store_->CanSeeInode("org-a", Find(c1_, {"db"}).inode_id, "m1"));
  EXPECT_TRUE(*store_->CanSeeInode("org-a", Find(c1_, {"db", "a", "t2"}).inode_id, "m1"));
  EXPECT_FALSE(*store_->CanSeeInode("org-a", Find(c1_, {"db", "b", "t4"}).inode_id, "m1"));
  EXPECT_FALSE(*store_->CanSeeInode("org-a", Find(c1_, {"db2"}).inode_id, "m1"));
  // A connection grant covers the path grants inside it: no double count.
  ASSERT_TRUE(store_->UpsertGrants("org-a", c1_, {ToMember("g1", "m1")}).ok());
  EXPECT_EQ(Walk(Query("m1")).size(), 10u);
  // New tables under a granted scope show at once, and the totals follow.
  ASSERT_TRUE(store_->DeleteGrant("org-a", c1_, "g1").ok());
  Apply(c1_, {Table({"db", "a", "t0"})});
  EXPECT_EQ(Walk(Query("m1")).size(), seen.size() + 1);
}

TEST_P(StoreCatalogTest, PathGrantsThroughTeamsAcrossConnectionsAndWhenTheyStopApplying) {
  SeedTwoConnections();
  ASSERT_TRUE(store_
                  ->UpsertPathGrants("org-a", Find(c1_, {"s2", "t3"}).inode_id,
                                     {ToTeam("p1", "t2"), ToMember("p2", "m3")})
                  .ok());
  ASSERT_TRUE(
      store_->UpsertPathGrants("org-a", Find(c2_, {"s3"}).inode_id, {ToTeam("p3", "t2")}).ok());
  const Paths seen = {{"s2"}, {"s2", "t3"}, {"s3"}, {"s3", "t4"}};
  EXPECT_EQ(Walk(Query("m3"), 1), seen);
  InodeListQuery one = Query("m3");
  one.connection_id = c2_;
  EXPECT_EQ(Walk(one), (Paths{{"s3"}, {"s3", "t4"}}));
  EXPECT_EQ(Walk(Query("m2")), Paths{});  // t1 holds none of these
  // The team archived: only m3's own grant is left.
  ASSERT_TRUE(store_->ArchiveTeam("org-a", "t2", "admin-a", kT0).ok());
  EXPECT_EQ(Walk(Query("m3")), (Paths{{"s2"}, {"s2", "t3"}}));
  // The member deactivated: nothing at all.
  domain::MemberChange off;
  off.is_inactive = true;
  ASSERT_TRUE(store_->UpdateMember("org-a", "m3", off, "admin-a", kT0).ok());
  EXPECT_EQ(Walk(Query("m3")), Paths{});
  EXPECT_FALSE(*store_->CanSeeInode("org-a", Find(c1_, {"s2", "t3"}).inode_id, "m3"));
}

// ---- columns ---------------------------------------------------------------------------------

TEST_P(StoreCatalogTest, ColumnsPageByOrdinalAndARemovedTablesColumnsAreRemoved) {
  std::vector<WarehouseColumn> cols;
  for (int i = 0; i < 25; ++i) cols.push_back(Col("z" + std::to_string(100 - i)));
  Apply(c1_, {Table({"s", "t"}, cols)});
  const std::string t = Find(c1_, {"s", "t"}).inode_id;
  std::vector<std::string> names;
  std::optional<ColumnCursor> after;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = store_->ListColumns("org-a", t, 10, after);
    ASSERT_TRUE(page.ok()) << page.error().message;
    for (const CatalogColumn& c : page->entries) names.push_back(c.name);
    if (!page->has_more) break;
    after = ColumnCursor{page->entries.back().ordinal, page->entries.back().name};
  }
  ASSERT_EQ(names.size(), 25u);
  for (int i = 0; i < 25; ++i) EXPECT_EQ(names[i], "z" + std::to_string(100 - i));
  ASSERT_TRUE(store_->MarkUnseenRemoved("org-a", c1_, {"s", "t"}, {}, kT0).ok());
  for (const CatalogColumn& c : Columns(t)) EXPECT_TRUE(c.removed) << c.name;
}

TEST_P(StoreCatalogTest, DbtDescriptionsMatchTablesAndColumnsAndSurviveResync) {
  Apply(c1_, {Table({"s", "t"}, {Col("a"), Col("b")})});
  auto n = store_->ApplyDbtDescriptions("org-a", c1_,
                                        {{{"s", "t"}, "", "the table"},
                                         {{"s", "t"}, "b", "column b"},
                                         {{"s", "t"}, "nope", "no such column"},
                                         {{"s", "x"}, "", "no such table"}});
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, 2);
  const Inode t = Find(c1_, {"s", "t"});
  EXPECT_EQ(t.dbt_description, "the table");
  Apply(c1_, {Table({"s", "t"}, {Col("a"), Col("b", "bigint")})});
  auto cols = Columns(t.inode_id);
  ASSERT_EQ(cols.size(), 2u);
  EXPECT_EQ(cols[1].dbt_description, "column b");
  EXPECT_EQ(cols[1].warehouse_type, "bigint");
  EXPECT_EQ(store_->ApplyDbtDescriptions("org-b", c1_, {}).error().code, ErrorCode::kNotFound);
}

// ---- path grants -----------------------------------------------------------------------------

TEST_P(StoreCatalogTest, PathGrantsCrudAsConnectionGrants) {
  SeedTwoConnections();
  const std::string s1 = Find(c1_, {"s1"}).inode_id;
  ASSERT_TRUE(store_
                  ->UpsertPathGrants(
                      "org-a", s1,
                      {ToMember("p1", "m1", "usage", kT0), ToTeam("p2", "t1", "annotate", kT0 + 1)})
                  .ok());
  // The same grantee again: the permission changes, the grant stays.
  ASSERT_TRUE(
      store_->UpsertPathGrants("org-a", s1, {ToMember("p9", "m1", "annotate", kT0 + 5)}).ok());
  auto page = store_->ListPathGrants("org-a", s1, 1, std::nullopt, 0);
  ASSERT_TRUE(page.ok()) << page.error().message;
  EXPECT_EQ(page->total, 2);
  ASSERT_EQ(page->entries.size(), 1u);
  EXPECT_TRUE(page->has_more);
  EXPECT_EQ(page->entries[0].grant_id, "p1");
  EXPECT_EQ(page->entries[0].permission, "annotate");
  EXPECT_EQ(page->entries[0].inode_id, s1);
  EXPECT_EQ(page->entries[0].connection_id, c1_);
  auto next = store_->ListPathGrants("org-a", s1, 1, GrantCursor{kT0, "p1"}, 0);
  ASSERT_TRUE(next.ok());
  ASSERT_EQ(next->entries.size(), 1u);
  EXPECT_EQ(next->entries[0].grant_id, "p2");
  EXPECT_EQ(next->entries[0].team_id, "t1");
  EXPECT_FALSE(next->has_more);
  // Grantees of another organization, named as GrantStore names them; nothing written.
  auto bad = store_->UpsertPathGrants("org-a", s1, {ToMember("p3", "m2"), ToMember("p4", "mb")});
  EXPECT_EQ(bad.error().code, ErrorCode::kBadRequest);
  EXPECT_EQ(bad.error().message, "member mb is not a member of this organization");
  EXPECT_EQ(store_->UpsertPathGrants("org-a", s1, {ToTeam("p5", "tb")}).error().message,
            "team tb is not a team of this organization");
  EXPECT_EQ(store_->ListPathGrants("org-a", s1, 10, std::nullopt, 0)->total, 2);
  // Connection grants and path grants are apart.
  EXPECT_EQ(store_->ListGrants("org-a", c1_, 10, std::nullopt, 0)->total, 0);
  EXPECT_EQ(store_->DeletePathGrant("org-a", Find(c1_, {"s2"}).inode_id, "p1").error().code,
            ErrorCode::kNotFound);
  EXPECT_EQ(store_->DeleteGrant("org-a", c1_, "p1").error().code, ErrorCode::kNotFound);
  ASSERT_TRUE(store_->DeletePathGrant("org-a", s1, "p1").ok());
  EXPECT_EQ(store_->DeletePathGrant("org-a", s1, "p1").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->ListPathGrants("org-a", s1, 10, std::nullopt, 1)->entries.size(), 0u);
}

// ---- syncs -----------------------------------------------------------------------------------

TEST_P(StoreCatalogTest, SyncRecordsSaveReplaceLastAndRunning) {
  EXPECT_EQ(store_->LastSync("org-a", c1_).error().code, ErrorCode::kNotFound);
  SyncRecord r;
  r.sync_id = "sync-1";
  r.organization_id = "org-a";
  r.connection_id = c1_;
  r.path = {"s", "t\"x"};
  r.status = "RUNNING";
  r.steps_json = "[]";
  r.started_by = "admin-a";
  r.started_at = kT0;
  ASSERT_TRUE(store_->SaveSync(r).ok());
  SyncRecord later = r;
  later.sync_id = "sync-2";
  later.started_at = kT0 + 10;
  later.status = "RUNNING";
  ASSERT_TRUE(store_->SaveSync(later).ok());
  r.status = "SUCCESS";
  r.added = 3;
  r.ended_at = kT0 + 5;
  ASSERT_TRUE(store_->SaveSync(r).ok());  // replaced by id
  auto last = store_->LastSync("org-a", c1_);
  ASSERT_TRUE(last.ok()) << last.error().message;
  EXPECT_EQ(last->sync_id, "sync-2");
  EXPECT_EQ(last->path, r.path);
  EXPECT_EQ(last->ended_at, std::nullopt);
  auto running = store_->RunningSyncs();
  ASSERT_TRUE(running.ok());
  ASSERT_EQ(running->size(), 1u);
  EXPECT_EQ((*running)[0].sync_id, "sync-2");
  EXPECT_EQ(store_->LastSync("org-b", c1_).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(Raw("SELECT added FROM catalog_syncs WHERE sync_id = 'sync-1'"), "3");
}

}  // namespace
}  // namespace connreg::store
