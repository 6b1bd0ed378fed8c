#include "store/sqlite_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "domain/connection.h"
#include "store/migrations.h"
#include "store/store.h"

namespace connreg::store {
namespace {

namespace fs = std::filesystem;

constexpr TimeMs kT0 = 1655460205324;
constexpr TimeMs kDay = 24 * 3600 * 1000;

// A fresh directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::path(testing::TempDir()) / "sqlite_store_test.XXXXXX").string();
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

// Runs one SQL statement on the file directly, bypassing the store; returns the first column of
// the first row as text ("" when none).
std::string RawSql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) throw std::runtime_error("open");
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* st = nullptr;
  std::string out;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    std::string msg = sqlite3_errmsg(db);
    sqlite3_close(db);
    throw std::runtime_error("prepare: " + msg);
  }
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW && sqlite3_column_text(st, 0) != nullptr) {
    out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) throw std::runtime_error("step failed");
  return out;
}

domain::Connection MakeConnection(const std::string& org, const std::string& id,
                                  const std::string& name, TimeMs created_at = kT0) {
  domain::Connection c;
  c.organization_id = org;
  c.connection_id = id;
  c.name = name;
  c.type = "snowflake";
  c.created_by = "member-1";
  c.updated_by = "member-1";
  c.created_at = created_at;
  c.updated_at = created_at;
  c.last_active_at = created_at;
  c.details = {{"type", "snowflake"}, {"account", "acme"}, {"warehouse", "WH"}};
  return c;
}

// Zero-padded so that byte order equals numeric order.
std::string Id(int i) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012d", i);
  return buf;
}

class SqliteStoreTest : public testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("connreg.db");
    store_ = std::make_unique<SqliteStore>(path_);
    ASSERT_TRUE(store_->CreateOrganization({"org-a", "A", kT0}).ok());
    ASSERT_TRUE(store_->CreateOrganization({"org-b", "B", kT0}).ok());
  }

  void Create(const domain::Connection& c) {
    Status s = store_->CreateConnection(c);
    ASSERT_TRUE(s.ok()) << s.error().message;
  }

  TempDir dir_;
  std::string path_;
  std::unique_ptr<SqliteStore> store_;
};

// ---- connections ---------------------------------------------------------------------------

TEST_F(SqliteStoreTest, CreateThenGetRoundTripsEveryField) {
  domain::Connection c = MakeConnection("org-a", Id(1), "Sales DW");
  c.is_sample = true;
  c.use_oauth = true;
  c.write_access = true;
  c.use_friendly_names = false;
  c.timeout_secs = 120;
  c.updated_by = "member-2";
  c.updated_at = kT0 + 5;
  c.last_active_at = kT0 + 7;
  c.version = 3;
  c.description = boost::json::object{{"text", "main \"warehouse\""}, {"n", 1}};
  c.secrets["password"] = {std::string("ct\0\x01\xff", 5), "key-1", kT0 + 1};
  c.secrets["privateKey"] = {"pk", "key-2", kT0 + 2};
  c.last_test = domain::LastTest{kT0 + 9, "SUCCESS", "DISABLED"};
  Create(c);

  auto got = store_->GetConnection("org-a", Id(1));
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->organization_id, "org-a");
  EXPECT_EQ(got->name, "Sales DW");
  EXPECT_EQ(got->type, "snowflake");
  EXPECT_TRUE(got->is_sample);
  EXPECT_FALSE(got->is_archived);
  EXPECT_TRUE(got->use_oauth);
  EXPECT_TRUE(got->write_access);
  EXPECT_FALSE(got->use_friendly_names);
  EXPECT_EQ(got->timeout_secs, 120);
  EXPECT_EQ(got->created_by, "member-1");
  EXPECT_EQ(got->updated_by, "member-2");
  EXPECT_EQ(got->created_at, kT0);
  EXPECT_EQ(got->updated_at, kT0 + 5);
  EXPECT_EQ(got->last_active_at, kT0 + 7);
  EXPECT_EQ(got->version, 3);
  EXPECT_EQ(got->details, c.details);
  ASSERT_TRUE(got->description.has_value());
  EXPECT_EQ(*got->description, *c.description);
  ASSERT_EQ(got->secrets.size(), 2u);
  EXPECT_EQ(got->secrets["password"].sealed, std::string("ct\0\x01\xff", 5));
  EXPECT_EQ(got->secrets["password"].key_id, "key-1");
  EXPECT_EQ(got->secrets["password"].updated_at, kT0 + 1);
  EXPECT_EQ(got->secrets["privateKey"].sealed, "pk");
  ASSERT_TRUE(got->last_test.has_value());
  EXPECT_EQ(got->last_test->at, kT0 + 9);
  EXPECT_EQ(got->last_test->read, "SUCCESS");
  EXPECT_EQ(got->last_test->write, "DISABLED");
}

TEST_F(SqliteStoreTest, OptionalFieldsStayAbsent) {
  Create(MakeConnection("org-a", Id(1), "plain"));
  auto got = store_->GetConnection("org-a", Id(1));
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->timeout_secs.has_value());
  EXPECT_FALSE(got->description.has_value());
  EXPECT_FALSE(got->last_test.has_value());
  EXPECT_TRUE(got->secrets.empty());
  EXPECT_TRUE(got->use_friendly_names);
}

TEST_F(SqliteStoreTest, DuplicateIdIsConflictAndUnknownOrganizationIsNotFound) {
  Create(MakeConnection("org-a", Id(1), "one"));
  Status dup = store_->CreateConnection(MakeConnection("org-a", Id(1), "again"));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, ErrorCode::kConflict);
  Status orphan = store_->CreateConnection(MakeConnection("org-none", Id(2), "x"));
  ASSERT_FALSE(orphan.ok());
  EXPECT_EQ(orphan.error().code, ErrorCode::kNotFound);
  // The failed create left nothing behind, secrets included.
  EXPECT_EQ(RawSql(path_, "SELECT count(*) FROM connections"), "1");
}

TEST_F(SqliteStoreTest, OtherOrganizationsConnectionIsNotFound) {
  Create(MakeConnection("org-a", Id(1), "a's"));
  auto got = store_->GetConnection("org-b", Id(1));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, ErrorCode::kNotFound);
  auto missing = store_->GetConnection("org-a", Id(99));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);

  ListQuery q;
  q.organization_id = "org-b";
  auto page = store_->ListConnections(q);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->entries.empty());
  EXPECT_EQ(page->total, 0);

  domain::Connection hijack = MakeConnection("org-b", Id(1), "stolen");
  hijack.version = 2;
  Status s = store_->UpdateConnection(hijack, 1);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->GetConnection("org-a", Id(1))->name, "a's");
}

TEST_F(SqliteStoreTest, UpdateIsCompareAndSetOnVersion) {
  Create(MakeConnection("org-a", Id(1), "before"));
  domain::Connection next = *store_->GetConnection("org-a", Id(1));
  next.name = "After";
  next.version = 2;
  next.is_archived = true;
  next.updated_at = kT0 + 100;
  ASSERT_TRUE(store_->UpdateConnection(next, 1).ok());

  auto got = store_->GetConnection("org-a", Id(1));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->name, "After");
  EXPECT_EQ(got->version, 2);
  EXPECT_TRUE(got->is_archived);
  EXPECT_EQ(got->updated_at, kT0 + 100);

  // A writer that read version 1 lost the race.
  domain::Connection stale = next;
  stale.name = "stale";
  Status s = store_->UpdateConnection(stale, 1);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kPreconditionFailed);
  EXPECT_EQ(store_->GetConnection("org-a", Id(1))->name, "After");

  domain::Connection gone = MakeConnection("org-a", Id(42), "gone");
  s = store_->UpdateConnection(gone, 1);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kNotFound);

  // name_folded follows the new name.
  ListQuery q;
  q.organization_id = "org-a";
  q.include_archived = true;
  q.search = domain::FoldName("AFTER");
  EXPECT_EQ(store_->ListConnections(q)->total, 1);
  q.search = "before";
  EXPECT_EQ(store_->ListConnections(q)->total, 0);
}

TEST_F(SqliteStoreTest, UpdateReplacesSecretsExactly) {
  domain::Connection c = MakeConnection("org-a", Id(1), "s");
  c.secrets["password"] = {"p1", "k1", kT0};
  c.secrets["privateKey"] = {"pk1", "k1", kT0};
  Create(c);

  domain::Connection next = c;
  next.version = 2;
  next.secrets.erase("privateKey");
  next.secrets["password"] = {"p2", "k2", kT0 + 1};
  next.secrets["privateKeyPassphrase"] = {"pp", "k2", kT0 + 1};
  ASSERT_TRUE(store_->UpdateConnection(next, 1).ok());

  auto got = store_->GetConnection("org-a", Id(1));
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->secrets.size(), 2u);
  EXPECT_EQ(got->secrets.count("privateKey"), 0u);
  EXPECT_EQ(got->secrets["password"].sealed, "p2");
  EXPECT_EQ(got->secrets["password"].key_id, "k2");
  EXPECT_EQ(got->secrets["password"].updated_at, kT0 + 1);
  EXPECT_EQ(got->secrets["privateKeyPassphrase"].sealed, "pp");

  next.version = 3;
  next.secrets.clear();
  ASSERT_TRUE(store_->UpdateConnection(next, 2).ok());
  EXPECT_TRUE(store_->GetConnection("org-a", Id(1))->secrets.empty());
  EXPECT_EQ(RawSql(path_, "SELECT count(*) FROM connection_secrets"), "0");
}

TEST_F(SqliteStoreTest, FailedUpdateChangesNoSecret) {
  domain::Connection c = MakeConnection("org-a", Id(1), "s");
  c.secrets["password"] = {"p1", "k1", kT0};
  Create(c);
  domain::Connection next = c;
  next.version = 5;
  next.secrets.clear();
  ASSERT_FALSE(store_->UpdateConnection(next, 4).ok());
  EXPECT_EQ(store_->GetConnection("org-a", Id(1))->secrets.at("password").sealed, "p1");
}

TEST_F(SqliteStoreTest, CorruptJsonRowIsInternalNotAThrow) {
  Create(MakeConnection("org-a", Id(1), "c"));
  RawSql(path_,
         "UPDATE connections SET details = '{not json' WHERE connection_id = '" + Id(1) + "'");
  auto got = store_->GetConnection("org-a", Id(1));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, ErrorCode::kInternal);
  ListQuery q;
  q.organization_id = "org-a";
  auto page = store_->ListConnections(q);
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.error().code, ErrorCode::kInternal);
}

// ---- listing -------------------------------------------------------------------------------

using SortKey = std::tuple<std::string, TimeMs, std::string>;

SortKey KeyOf(const domain::Connection& c) { return {c.name, c.created_at, c.connection_id}; }

// Walks every keyset page; fails the test on an error.
std::vector<domain::Connection> WalkAll(Store& store, ListQuery q, int* pages,
                                        std::int64_t expected_total) {
  std::vector<domain::Connection> all;
  *pages = 0;
  for (;;) {
    auto page = store.ListConnections(q);
    EXPECT_TRUE(page.ok()) << page.error().message;
    if (!page.ok()) break;
    ++*pages;
    EXPECT_EQ(page->total, expected_total);
    EXPECT_LE(page->entries.size(), static_cast<std::size_t>(q.limit));
    for (auto& c : page->entries) all.push_back(std::move(c));
    if (!page->has_more) break;
    EXPECT_EQ(page->entries.size(), static_cast<std::size_t>(q.limit));
    if (page->entries.empty() || *pages > 5000) {
      ADD_FAILURE() << "has_more without progress";
      break;
    }
    const auto& last = all.back();
    q.after = ListCursor{last.name, last.created_at, last.connection_id};
  }
  return all;
}

// 2,500 rows written once for the whole suite (each write is an fsync); the tests only read.
class SqliteStoreListTest : public testing::Test {
 protected:
  static constexpr int kRows = 2500;

  // Names repeat (ties broken by created_at, then id) in mixed case (byte order puts 'C' before
  // 'c'); a third of the rows are archived, a fifth are postgres, every seventh has a secret.
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    store_ = new SqliteStore(dir_->File("list.db"));
    expected_ = new std::vector<domain::Connection>();
    auto create = [](const domain::Connection& c) {
      Status s = store_->CreateConnection(c);
      if (!s.ok()) throw std::runtime_error(s.error().message);
    };
    if (!store_->CreateOrganization({"org-a", "A", kT0}).ok() ||
        !store_->CreateOrganization({"org-b", "B", kT0}).ok()) {
      throw std::runtime_error("cannot create organizations");
    }
    for (int i = 0; i < kRows; ++i) {
      std::string name = (i % 2 == 0 ? "Conn " : "conn ") + std::to_string(i % 700);
      domain::Connection c = MakeConnection("org-a", Id(kRows - i), name, kT0 + (i % 3));
      if (i % 3 == 0) c.is_archived = true;
      if (i % 5 == 0) {
        c.type = "postgres";
        c.details["type"] = "postgres";
      }
      if (i % 7 == 0) c.secrets["password"] = {"sealed-" + std::to_string(i), "k", kT0};
      create(c);
      expected_->push_back(c);
    }
    // Another organization's rows never show up.
    create(MakeConnection("org-b", Id(9000001), "Conn 1"));
    std::sort(expected_->begin(), expected_->end(),
              [](const auto& a, const auto& b) { return KeyOf(a) < KeyOf(b); });
  }

  static void TearDownTestSuite() {
    delete store_;
    delete expected_;
    delete dir_;
  }

  static std::vector<domain::Connection> Expected(bool include_archived) {
    std::vector<domain::Connection> out;
    for (const auto& c : *expected_) {
      if (include_archived || !c.is_archived) out.push_back(c);
    }
    return out;
  }

  static inline TempDir* dir_ = nullptr;
  static inline SqliteStore* store_ = nullptr;
  static inline std::vector<domain::Connection>* expected_ = nullptr;
};

TEST_F(SqliteStoreListTest, WalksEveryPageWithoutSkipsOrRepeats) {
  for (bool include_archived : {true, false}) {
    const auto expected = Expected(include_archived);
    for (int limit : {1, 50, 1000}) {
      SCOPED_TRACE("limit " + std::to_string(limit) + " archived " +
                   std::to_string(include_archived));
      ListQuery q;
      q.organization_id = "org-a";
      q.limit = limit;
      q.include_archived = include_archived;
      int pages = 0;
      auto all = WalkAll(*store_, q, &pages, static_cast<std::int64_t>(expected.size()));
      ASSERT_EQ(all.size(), expected.size());
      EXPECT_EQ(pages, static_cast<int>((expected.size() + limit - 1) / limit));
      for (std::size_t i = 0; i < all.size(); ++i) {
        ASSERT_EQ(all[i].connection_id, expected[i].connection_id) << "position " << i;
        EXPECT_EQ(all[i].secrets.size(), expected[i].secrets.size());
        if (!expected[i].secrets.empty()) {
          EXPECT_EQ(all[i].secrets.at("password").sealed,
                    expected[i].secrets.at("password").sealed);
        }
      }
    }
  }
}

TEST_F(SqliteStoreListTest, FilteredWalkMatchesFilteredRows) {
  const std::string needle = domain::FoldName("CONN 1");
  std::vector<domain::Connection> expected;
  for (const auto& c : Expected(false)) {
    if (c.type == "postgres" && domain::FoldName(c.name).find(needle) != std::string::npos) {
      expected.push_back(c);
    }
  }
  ASSERT_GT(expected.size(), 50u);  // more than one page
  ListQuery q;
  q.organization_id = "org-a";
  q.limit = 50;
  q.search = needle;
  q.type = "postgres";
  int pages = 0;
  auto all = WalkAll(*store_, q, &pages, static_cast<std::int64_t>(expected.size()));
  ASSERT_EQ(all.size(), expected.size());
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].connection_id, expected[i].connection_id) << "position " << i;
  }
}

TEST_F(SqliteStoreListTest, OffsetFormMatchesKeysetPages) {
  const auto expected = Expected(false);
  ListQuery q;
  q.organization_id = "org-a";
  q.limit = 50;
  q.offset = 150;
  auto page = store_->ListConnections(q);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->entries.size(), 50u);
  EXPECT_TRUE(page->has_more);
  for (std::size_t i = 0; i < 50; ++i) {
    EXPECT_EQ(page->entries[i].connection_id, expected[150 + i].connection_id);
  }
  q.offset = static_cast<std::int64_t>(expected.size()) - 10;
  page = store_->ListConnections(q);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->entries.size(), 10u);
  EXPECT_FALSE(page->has_more);
  q.offset = 100000;
  page = store_->ListConnections(q);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->entries.empty());
  EXPECT_EQ(page->total, static_cast<std::int64_t>(expected.size()));
}

TEST_F(SqliteStoreListTest, LimitIsClampedTo1000) {
  ListQuery q;
  q.organization_id = "org-a";
  q.include_archived = true;
  q.limit = 5000;
  auto page = store_->ListConnections(q);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->entries.size(), 1000u);
  EXPECT_TRUE(page->has_more);
}

TEST_F(SqliteStoreTest, KeysetWalkIsStableWhileRowsAreInserted) {
  std::set<std::string> before;
  for (int i = 0; i < 200; ++i) {
    Create(MakeConnection("org-a", Id(i), "n" + std::to_string(1000 + i * 5)));
    before.insert(Id(i));
  }
  ListQuery q;
  q.organization_id = "org-a";
  q.limit = 7;
  std::vector<std::string> seen;
  std::optional<SortKey> previous;
  int inserted = 0;
  for (int pages = 0; pages < 1000; ++pages) {
    auto page = store_->ListConnections(q);
    ASSERT_TRUE(page.ok());
    for (const auto& c : page->entries) {
      if (previous) {
        EXPECT_LT(*previous, KeyOf(c));
      }
      previous = KeyOf(c);
      seen.push_back(c.connection_id);
    }
    if (!page->has_more) break;
    const auto& last = page->entries.back();
    q.after = ListCursor{last.name, last.created_at, last.connection_id};
    // Rows sorting before the cursor, right after it, and at the end.
    for (const std::string& name : {std::string("a"), last.name, std::string("z")}) {
      Create(MakeConnection("org-a", Id(100000 + inserted++), name, last.created_at));
    }
  }
  std::set<std::string> unique(seen.begin(), seen.end());
  EXPECT_EQ(unique.size(), seen.size()) << "an entry was repeated";
  for (const auto& id : before) EXPECT_EQ(unique.count(id), 1u) << "skipped " << id;
}

TEST_F(SqliteStoreTest, FiltersSearchTypeAndArchived) {
  domain::Connection a = MakeConnection("org-a", Id(1), "Sales Warehouse");
  domain::Connection b = MakeConnection("org-a", Id(2), "MARKETING sales");
  b.type = "bigQuery";
  domain::Connection c = MakeConnection("org-a", Id(3), "Old sales");
  c.is_archived = true;
  domain::Connection d = MakeConnection("org-a", Id(4), "Finance");
  for (const auto& x : {a, b, c, d}) Create(x);
  Create(MakeConnection("org-b", Id(5), "sales elsewhere"));

  auto ids = [&](const ListQuery& q) {
    auto page = store_->ListConnections(q);
    EXPECT_TRUE(page.ok());
    std::vector<std::string> out;
    for (const auto& e : page->entries) out.push_back(e.connection_id);
    EXPECT_EQ(page->total, static_cast<std::int64_t>(out.size()));
    return out;
  };
  ListQuery q;
  q.organization_id = "org-a";
  // Byte order: uppercase before lowercase.
  EXPECT_EQ(ids(q), (std::vector<std::string>{Id(4), Id(2), Id(1)}));
  q.search = domain::FoldName("SALES");
  EXPECT_EQ(ids(q), (std::vector<std::string>{Id(2), Id(1)}));
  q.include_archived = true;
  EXPECT_EQ(ids(q), (std::vector<std::string>{Id(2), Id(3), Id(1)}));
  q.type = "bigQuery";
  EXPECT_EQ(ids(q), (std::vector<std::string>{Id(2)}));
  q.search.reset();
  q.type = "snowflake";
  EXPECT_EQ(ids(q), (std::vector<std::string>{Id(4), Id(3), Id(1)}));
  q.type = "bigquery";  // exact, not folded
  EXPECT_TRUE(ids(q).empty());
  q.type.reset();
  q.search = "%";  // not a LIKE pattern
  EXPECT_TRUE(ids(q).empty());
}

// ---- identities ----------------------------------------------------------------------------

TEST_F(SqliteStoreTest, OrganizationsAndMembers) {
  auto org = store_->GetOrganization("org-a");
  ASSERT_TRUE(org.ok());
  EXPECT_EQ(org->name, "A");
  EXPECT_EQ(org->created_at, kT0);
  EXPECT_EQ(store_->GetOrganization("nope").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(*store_->CountOrganizations(), 2);
  EXPECT_EQ(store_->CreateOrganization({"org-a", "again", kT0}).error().code, ErrorCode::kConflict);

  ASSERT_TRUE(store_->CreateMember({"m1", "org-a", "a@b.c", "viewer", kT0}).ok());
  auto m = store_->GetMember("m1");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->organization_id, "org-a");
  EXPECT_EQ(m->email, "a@b.c");
  EXPECT_EQ(m->account_type, "viewer");
  EXPECT_EQ(store_->GetMember("m2").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->CreateMember({"m2", "org-none", "x@y.z", "admin", kT0}).error().code,
            ErrorCode::kNotFound);
  EXPECT_FALSE(store_->CreateMember({"m3", "org-a", "x@y.z", "owner", kT0}).ok());
}

TEST_F(SqliteStoreTest, AccessTokensResolveOnlyWhileValid) {
  ASSERT_TRUE(store_->CreateMember({"m1", "org-a", "a@b.c", "admin", kT0}).ok());
  ASSERT_TRUE(store_->CreateApiClient({"c1", "m1", "hash-1", kT0, std::nullopt}).ok());
  ASSERT_TRUE(store_->CreateApiClient({"c2", "m1", "hash-2", kT0, kT0 + 1}).ok());
  EXPECT_EQ(store_->CreateApiClient({"c3", "m-none", "h", kT0, std::nullopt}).error().code,
            ErrorCode::kNotFound);

  auto client = store_->GetActiveApiClient("c1");
  ASSERT_TRUE(client.ok());
  EXPECT_EQ(client->secret_hash, "hash-1");
  EXPECT_FALSE(client->revoked_at.has_value());
  EXPECT_EQ(store_->GetActiveApiClient("c2").error().code, ErrorCode::kNotFound);

  ASSERT_TRUE(store_->SaveAccessToken({"tok-1", "c1", "m1", "org-a", kT0 + 3600}).ok());
  ASSERT_TRUE(store_->SaveAccessToken({"tok-2", "c2", "m1", "org-a", kT0 + 3600}).ok());
  ASSERT_TRUE(store_->SaveAccessToken({"tok-old", "c1", "m1", "org-a", kT0 - 1}).ok());

  auto p = store_->ResolveAccessToken("tok-1", kT0);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->organization_id, "org-a");
  EXPECT_EQ(p->member_id, "m1");
  EXPECT_EQ(p->client_id, "c1");
  EXPECT_EQ(p->account_type, "admin");

  // Expiry is exclusive: a token is dead at its expires_at.
  EXPECT_EQ(store_->ResolveAccessToken("tok-1", kT0 + 3600).error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(store_->ResolveAccessToken("tok-1", kT0 + 3599).ok());
  EXPECT_EQ(store_->ResolveAccessToken("tok-old", kT0).error().code, ErrorCode::kNotFound);
  // The revoked client's token is dead although unexpired.
  EXPECT_EQ(store_->ResolveAccessToken("tok-2", kT0).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->ResolveAccessToken("tok-none", kT0).error().code, ErrorCode::kNotFound);

  auto purged = store_->PurgeExpired(kT0, 0);
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(*purged, 1);
  EXPECT_EQ(RawSql(path_, "SELECT count(*) FROM access_tokens"), "2");
}

TEST_F(SqliteStoreTest, RevokingAClientKillsItsIssuedTokens) {
  ASSERT_TRUE(store_->CreateMember({"m1", "org-a", "a@b.c", "creator", kT0}).ok());
  ASSERT_TRUE(store_->CreateApiClient({"c1", "m1", "h", kT0, std::nullopt}).ok());
  ASSERT_TRUE(store_->SaveAccessToken({"tok", "c1", "m1", "org-a", kT0 + 3600}).ok());
  ASSERT_EQ(store_->ResolveAccessToken("tok", kT0)->account_type, "creator");
  RawSql(path_, "UPDATE api_clients SET revoked_at = 1 WHERE client_id = 'c1'");
  EXPECT_EQ(store_->ResolveAccessToken("tok", kT0).error().code, ErrorCode::kNotFound);
}

TEST_F(SqliteStoreTest, RevokeApiClientKillsTokensAtOnceAndKeepsTheFirstTime) {
  ASSERT_TRUE(store_->CreateMember({"m1", "org-a", "a@b.c", "admin", kT0}).ok());
  ASSERT_TRUE(store_->CreateApiClient({"c1", "m1", "h1", kT0, std::nullopt}).ok());
  ASSERT_TRUE(store_->CreateApiClient({"c2", "m1", "h2", kT0, std::nullopt}).ok());
  ASSERT_TRUE(store_
                  ->SaveTokenPair({"a1", "c1", "m1", "org-a", kT0 + 3600, "f1"},
                                  {"r1", "f1", "c1", "m1", "org-a", kT0 + kDay})
                  .ok());
  ASSERT_TRUE(store_
                  ->SaveTokenPair({"a2", "c2", "m1", "org-a", kT0 + 3600, "f2"},
                                  {"r2", "f2", "c2", "m1", "org-a", kT0 + kDay})
                  .ok());
  ASSERT_TRUE(store_->ResolveAccessToken("a1", kT0).ok());

  ASSERT_TRUE(store_->RevokeApiClient("c1", kT0 + 5).ok());
  EXPECT_EQ(store_->ResolveAccessToken("a1", kT0).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->GetActiveApiClient("c1").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(
      store_->RotateRefreshToken("r1", "", kT0 + 6, {"a1b"}, {"r1b", "", "", "", "", kT0 + kDay})
          .error()
          .code,
      ErrorCode::kNotFound);
  EXPECT_EQ(RawSql(path_, "SELECT count(*) FROM access_tokens WHERE client_id = 'c1'"), "0");
  EXPECT_EQ(RawSql(path_, "SELECT count(*) FROM refresh_tokens WHERE client_id = 'c1'"), "0");
  EXPECT_EQ(RawSql(path_, "SELECT revoked_at FROM api_clients WHERE client_id = 'c1'"),
            std::to_string(kT0 + 5));
  // The other client is untouched.
  EXPECT_TRUE(store_->ResolveAccessToken("a2", kT0).ok());
  EXPECT_EQ(RawSql(path_, "SELECT count(*) FROM refresh_tokens WHERE client_id = 'c2'"), "1");

  ASSERT_TRUE(store_->RevokeApiClient("c1", kT0 + 99).ok());
  EXPECT_EQ(RawSql(path_, "SELECT revoked_at FROM api_clients WHERE client_id = 'c1'"),
            std::to_string(kT0 + 5));
  EXPECT_EQ(store_->RevokeApiClient("c-none", kT0).error().code, ErrorCode::kNotFound);
}

// ---- refresh tokens ------------------------------------------------------------------------

class SqliteStoreRefreshTest : public SqliteStoreTest {
 protected:
  void SetUp() override {
    SqliteStoreTest::SetUp();
    ASSERT_TRUE(store_->CreateMember({"m1", "org-a", "a@b.c", "creator", kT0}).ok());
    ASSERT_TRUE(store_->CreateApiClient({"c1", "m1", "h1", kT0, std::nullopt}).ok());
    ASSERT_TRUE(store_->CreateApiClient({"c2", "m1", "h2", kT0, std::nullopt}).ok());
    ASSERT_TRUE(store_
                    ->SaveTokenPair({"a1", "c1", "m1", "org-a", kT0 + 3600, "fam"},
                                    {"r1", "fam", "c1", "m1", "org-a", kT0 + kDay})
                    .ok());
  }

  // The caller fills in only the hashes and expiries; the store fills in the rest.
  Result<Principal> Rotate(const std::string& presented, const std::string& client_id, TimeMs now,
                           const std::string& next_access, const std::string& next_refresh) {
    AccessToken a;
    a.token_hash = next_access;
    a.expires_at = now + 3600;
    RefreshToken r;
    r.token_hash = next_refresh;
    r.expires_at = now + kDay;
    return store_->RotateRefreshToken(presented, client_id, now, a, r);
  }

  std::string Count(const std::string& table) {
    return RawSql(path_, "SELECT count(*) FROM " + table);
  }
};

TEST_F(SqliteStoreRefreshTest, SavedPairSharesItsFamily) {
  EXPECT_EQ(RawSql(path_, "SELECT family_id FROM access_tokens WHERE token_hash = 'a1'"), "fam");
  EXPECT_EQ(RawSql(path_, "SELECT family_id FROM refresh_tokens WHERE token_hash = 'r1'"), "fam");
  // An access token without a family joins the refresh token's.
  ASSERT_TRUE(store_
                  ->SaveTokenPair({"a2", "c1", "m1", "org-a", kT0 + 3600, ""},
                                  {"r2", "fam2", "c1", "m1", "org-a", kT0 + kDay})
                  .ok());
  EXPECT_EQ(RawSql(path_, "SELECT family_id FROM access_tokens WHERE token_hash = 'a2'"), "fam2");
  // Mismatched families, or a refresh token without one, save nothing.
  EXPECT_FALSE(store_
                   ->SaveTokenPair({"a3", "c1", "m1", "org-a", kT0 + 3600, "x"},
                                   {"r3", "y", "c1", "m1", "org-a", kT0 + kDay})
                   .ok());
  EXPECT_FALSE(store_
                   ->SaveTokenPair({"a3", "c1", "m1", "org-a", kT0 + 3600, ""},
                                   {"r3", "", "c1", "m1", "org-a", kT0 + kDay})
                   .ok());
  // All or nothing: a refresh token of an unknown client leaves no access token behind.
  EXPECT_EQ(store_
                ->SaveTokenPair({"a4", "c1", "m1", "org-a", kT0 + 3600, "f4"},
                                {"r4", "f4", "c-none", "m1", "org-a", kT0 + kDay})
                .error()
                .code,
            ErrorCode::kNotFound);
  EXPECT_EQ(Count("access_tokens"), "2");
  EXPECT_EQ(Count("refresh_tokens"), "2");
  // A plain access token (no family) is stored with NULL.
  ASSERT_TRUE(store_->SaveAccessToken({"a5", "c1", "m1", "org-a", kT0 + 3600}).ok());
  EXPECT_EQ(RawSql(path_, "SELECT family_id IS NULL FROM access_tokens WHERE token_hash = 'a5'"),
            "1");
}

TEST_F(SqliteStoreRefreshTest, RotationThenReuseRevokesTheWholeFamily) {
  auto p = Rotate("r1", "c1", kT0 + 10, "a2", "r2");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->organization_id, "org-a");
  EXPECT_EQ(p->member_id, "m1");
  EXPECT_EQ(p->client_id, "c1");
  EXPECT_EQ(p->account_type, "creator");
  EXPECT_EQ(RawSql(path_, "SELECT used_at FROM refresh_tokens WHERE token_hash = 'r1'"),
            std::to_string(kT0 + 10));
  EXPECT_EQ(RawSql(path_,
                   "SELECT family_id || '/' || client_id || '/' || member_id || '/' || "
                   "organization_id || '/' || expires_at FROM access_tokens "
                   "WHERE token_hash = 'a2'"),
            "fam/c1/m1/org-a/" + std::to_string(kT0 + 10 + 3600));
  EXPECT_EQ(RawSql(path_,
                   "SELECT family_id || '/' || client_id || '/' || member_id || '/' || "
                   "organization_id || '/' || (used_at IS NULL) FROM refresh_tokens "
                   "WHERE token_hash = 'r2'"),
            "fam/c1/m1/org-a/1");
  auto resolved = store_->ResolveAccessToken("a2", kT0 + 11);
  ASSERT_TRUE(resolved.ok());
  EXPECT_EQ(resolved->member_id, "m1");
  // The next link rotates as well, without client credentials.
  ASSERT_TRUE(Rotate("r2", "", kT0 + 20, "a3", "r3").ok());

  // A token of another family is not touched by what follows.
  ASSERT_TRUE(store_
                  ->SaveTokenPair({"ox", "c1", "m1", "org-a", kT0 + 3600, "other"},
                                  {"rx", "other", "c1", "m1", "org-a", kT0 + kDay})
                  .ok());

  // r1 again: reuse. Every token of the family goes, and nothing is issued.
  auto reuse = Rotate("r1", "c1", kT0 + 30, "a4", "r4");
  ASSERT_FALSE(reuse.ok());
  EXPECT_EQ(reuse.error().code, ErrorCode::kConflict);
  for (const char* t : {"a1", "a2", "a3", "a4"}) {
    EXPECT_EQ(store_->ResolveAccessToken(t, kT0 + 31).error().code, ErrorCode::kNotFound) << t;
  }
  EXPECT_EQ(RawSql(path_, "SELECT count(*) FROM refresh_tokens WHERE family_id = 'fam'"), "0");
  EXPECT_EQ(RawSql(path_, "SELECT count(*) FROM access_tokens WHERE family_id = 'fam'"), "0");
  EXPECT_EQ(store_->ResolveAccessToken("ox", kT0 + 31).ok(), true);
  EXPECT_EQ(RawSql(path_, "SELECT count(*) FROM refresh_tokens WHERE family_id = 'other'"), "1");
  // The newest refresh token of the family is gone with it.
  EXPECT_EQ(Rotate("r3", "c1", kT0 + 40, "a5", "r5").error().code, ErrorCode::kNotFound);
}

TEST_F(SqliteStoreRefreshTest, AnotherClientsRefreshIsNotFoundAndChangesNothing) {
  auto wrong = Rotate("r1", "c2", kT0 + 10, "a2", "r2");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(RawSql(path_, "SELECT used_at IS NULL FROM refresh_tokens WHERE token_hash = 'r1'"),
            "1");
  EXPECT_EQ(Count("access_tokens"), "1");
  EXPECT_EQ(Count("refresh_tokens"), "1");
  // Still good for its own client.
  EXPECT_TRUE(Rotate("r1", "c1", kT0 + 11, "a2", "r2").ok());
}

TEST_F(SqliteStoreRefreshTest, ExpiredUnknownOrRevokedIsNotFoundAndChangesNothing) {
  // Expiry is exclusive, as for access tokens.
  EXPECT_EQ(Rotate("r1", "", kT0 + kDay, "a2", "r2").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(Rotate("r-none", "", kT0, "a2", "r2").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(RawSql(path_, "SELECT used_at IS NULL FROM refresh_tokens WHERE token_hash = 'r1'"),
            "1");
  EXPECT_EQ(Count("access_tokens"), "1");
  EXPECT_EQ(Count("refresh_tokens"), "1");

  RawSql(path_, "UPDATE api_clients SET revoked_at = 1 WHERE client_id = 'c1'");
  EXPECT_EQ(Rotate("r1", "", kT0 + 1, "a2", "r2").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(Count("refresh_tokens"), "1");
}

TEST_F(SqliteStoreRefreshTest, ConcurrentRotationsOfOneTokenLetOneWinThenRevoke) {
  constexpr int kThreads = 6;
  std::atomic<int> ok{0};
  std::atomic<int> conflict{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto p = Rotate("r1", "c1", kT0 + 10, "a-next-" + std::to_string(i),
                      "r-next-" + std::to_string(i));
      if (p.ok()) {
        ++ok;
      } else if (p.error().code == ErrorCode::kConflict || p.error().code == ErrorCode::kNotFound) {
        ++conflict;  // the family may already be gone by the time a late presenter looks
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(conflict, kThreads - 1);
  // The second presentation revoked the family, including the winner's new pair.
  EXPECT_EQ(Count("access_tokens"), "0");
  EXPECT_EQ(Count("refresh_tokens"), "0");
}

TEST_F(SqliteStoreRefreshTest, PurgeExpiredRemovesTokensAndOldIdempotencyKeys) {
  ASSERT_TRUE(Rotate("r1", "c1", kT0 + 10, "a2", "r2").ok());  // r1 used, kept until it expires
  ASSERT_TRUE(store_
                  ->SaveTokenPair({"old-a", "c1", "m1", "org-a", kT0 - 1, "f-old"},
                                  {"old-r", "f-old", "c1", "m1", "org-a", kT0 - 1})
                  .ok());
  IdempotentResponse r{"h", 201, "{}", "/x", kT0 - 2 * kDay};
  ASSERT_TRUE(store_
                  ->CreateConnectionIdempotent(MakeConnection("org-a", Id(1), "old"), "m1", "k-old",
                                               r, kT0 - 3 * kDay)
                  .ok());
  r.created_at = kT0;
  ASSERT_TRUE(store_
                  ->CreateConnectionIdempotent(MakeConnection("org-a", Id(2), "new"), "m1", "k-new",
                                               r, kT0 - kDay)
                  .ok());

  auto purged = store_->PurgeExpired(kT0, kT0 - kDay);
  ASSERT_TRUE(purged.ok()) << purged.error().message;
  EXPECT_EQ(*purged, 3);  // old-a, old-r, k-old
  EXPECT_EQ(RawSql(path_,
                   "SELECT group_concat(token_hash) FROM (SELECT token_hash FROM "
                   "access_tokens ORDER BY 1)"),
            "a1,a2");
  EXPECT_EQ(RawSql(path_,
                   "SELECT group_concat(token_hash) FROM (SELECT token_hash FROM "
                   "refresh_tokens ORDER BY 1)"),
            "r1,r2");
  EXPECT_EQ(RawSql(path_, "SELECT group_concat(key) FROM idempotency_keys"), "k-new");
  // The used token, once expired, goes too.
  purged = store_->PurgeExpired(kT0 + kDay, kT0 - kDay);
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(*purged, 3);  // a1, a2, r1
  EXPECT_EQ(*store_->PurgeExpired(kT0 + kDay, kT0 - kDay), 0);
}

// ---- test results and key rotation ---------------------------------------------------------

TEST_F(SqliteStoreTest, RecordTestIsNotAChange) {
  domain::Connection c = MakeConnection("org-a", Id(1), "tested");
  c.version = 4;
  Create(c);
  ASSERT_TRUE(store_->RecordTest("org-a", Id(1), {kT0 + 50, "SUCCESS", "DISABLED"}, true).ok());
  auto got = store_->GetConnection("org-a", Id(1));
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->last_test.has_value());
  EXPECT_EQ(got->last_test->at, kT0 + 50);
  EXPECT_EQ(got->last_test->read, "SUCCESS");
  EXPECT_EQ(got->last_test->write, "DISABLED");
  EXPECT_EQ(got->last_active_at, kT0 + 50);
  EXPECT_EQ(got->version, 4);
  EXPECT_EQ(got->updated_at, kT0);

  // A test that did not reach the query leaves last_active_at alone.
  ASSERT_TRUE(store_->RecordTest("org-a", Id(1), {kT0 + 90, "FAILED", "FAILED"}, false).ok());
  got = store_->GetConnection("org-a", Id(1));
  EXPECT_EQ(got->last_test->at, kT0 + 90);
  EXPECT_EQ(got->last_test->read, "FAILED");
  EXPECT_EQ(got->last_active_at, kT0 + 50);
  EXPECT_EQ(got->version, 4);

  EXPECT_EQ(store_->RecordTest("org-b", Id(1), {kT0, "SUCCESS", "SUCCESS"}, true).error().code,
            ErrorCode::kNotFound);
  EXPECT_EQ(store_->RecordTest("org-a", Id(2), {kT0, "SUCCESS", "SUCCESS"}, true).error().code,
            ErrorCode::kNotFound);
  EXPECT_EQ(store_->GetConnection("org-a", Id(1))->last_test->at, kT0 + 90);
}

TEST_F(SqliteStoreTest, KeyRotationReadsBatchesAndResealsByCompareAndSet) {
  // Keys sort on both sides of the target key "k".
  for (int i = 1; i <= 4; ++i) {
    domain::Connection c = MakeConnection("org-a", Id(i), "c" + std::to_string(i));
    c.secrets["password"] = {"p" + std::to_string(i), i % 2 == 0 ? "a-old" : "z-old", kT0};
    c.secrets["privateKey"] = {"pk" + std::to_string(i), "k", kT0};
    Create(c);
  }
  auto ids = store_->SecretKeyIds();
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<std::string>{"a-old", "k", "z-old"}));

  auto all = store_->SecretsNotUnderKey("k", 100);
  ASSERT_TRUE(all.ok()) << all.error().message;
  ASSERT_EQ(all->size(), 4u);
  std::vector<std::string> order;
  for (const auto& ref : *all) {
    EXPECT_EQ(ref.field, "password");
    EXPECT_NE(ref.secret.key_id, "k");
    order.push_back(ref.connection_id);
  }
  EXPECT_EQ(order, (std::vector<std::string>{Id(2), Id(4), Id(1), Id(3)}));
  // A smaller batch is a prefix of the same stable order, across both key ranges.
  auto three = store_->SecretsNotUnderKey("k", 3);
  ASSERT_TRUE(three.ok());
  ASSERT_EQ(three->size(), 3u);
  EXPECT_EQ((*three)[2].connection_id, Id(1));
  EXPECT_EQ((*three)[2].secret.sealed, "p1");
  EXPECT_EQ((*three)[2].secret.key_id, "z-old");
  EXPECT_TRUE(store_->SecretsNotUnderKey("k", 0)->empty());

  // Compare-and-set on the sealed bytes.
  Status stale = store_->ResealSecret(Id(1), "password", "not-p1", {"P1", "k", kT0 + 1});
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code, ErrorCode::kPreconditionFailed);
  EXPECT_EQ(store_->GetConnection("org-a", Id(1))->secrets.at("password").sealed, "p1");
  EXPECT_EQ(store_->ResealSecret(Id(1), "passphrase", "p1", {"P1", "k", kT0}).error().code,
            ErrorCode::kNotFound);
  EXPECT_EQ(store_->ResealSecret(Id(99), "password", "p1", {"P1", "k", kT0}).error().code,
            ErrorCode::kNotFound);

  for (const auto& ref : *all) {
    Status s = store_->ResealSecret(ref.connection_id, ref.field, ref.secret.sealed,
                                    {"re-" + ref.secret.sealed, "k", ref.secret.updated_at});
    ASSERT_TRUE(s.ok()) << s.error().message;
  }
  auto got = store_->GetConnection("org-a", Id(1));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->secrets.at("password").sealed, "re-p1");
  EXPECT_EQ(got->secrets.at("password").key_id, "k");
  EXPECT_EQ(got->secrets.at("password").updated_at, kT0);
  EXPECT_EQ(got->version, 1);
  EXPECT_EQ(got->updated_at, kT0);
  EXPECT_TRUE(store_->SecretsNotUnderKey("k", 100)->empty());
  EXPECT_EQ(*store_->SecretKeyIds(), (std::vector<std::string>{"k"}));
  // Resealing again with the old bytes is a lost race.
  EXPECT_EQ(store_->ResealSecret(Id(1), "password", "p1", {"x", "k", kT0}).error().code,
            ErrorCode::kPreconditionFailed);
}

TEST_F(SqliteStoreTest, SealedBytesCompareExactly) {
  domain::Connection c = MakeConnection("org-a", Id(1), "bin");
  const std::string sealed("a\0b\xff", 4);
  c.secrets["password"] = {sealed, "k1", kT0};
  Create(c);
  // A prefix up to the NUL is not the same value.
  EXPECT_EQ(store_->ResealSecret(Id(1), "password", "a", {"x", "k2", kT0}).error().code,
            ErrorCode::kPreconditionFailed);
  ASSERT_TRUE(store_->ResealSecret(Id(1), "password", sealed, {"x\0y", "k2", kT0}).ok());
  auto refs = store_->SecretsNotUnderKey("k1", 10);
  ASSERT_TRUE(refs.ok());
  ASSERT_EQ(refs->size(), 1u);
  EXPECT_EQ(refs->front().secret.key_id, "k2");
}

// ---- idempotency ---------------------------------------------------------------------------

TEST_F(SqliteStoreTest, IdempotencyKeyCreatesOnceAndConflictsAfter) {
  IdempotentResponse r{"req-hash", 201, "{\"connectionId\":\"x\"}", "/v2/connections/x", kT0};
  domain::Connection first = MakeConnection("org-a", Id(1), "first");
  first.secrets["password"] = {"p", "k", kT0};
  ASSERT_TRUE(store_->CreateConnectionIdempotent(first, "m1", "key-1", r, kT0 - kDay).ok());

  auto stored = store_->GetIdempotent("org-a", "m1", "key-1", kT0 - 1000);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->request_hash, "req-hash");
  EXPECT_EQ(stored->status, 201);
  EXPECT_EQ(stored->body, r.body);
  EXPECT_EQ(stored->location, "/v2/connections/x");
  EXPECT_EQ(stored->created_at, kT0);
  EXPECT_EQ(store_->GetIdempotent("org-a", "m1", "key-1", kT0 + 1).error().code,
            ErrorCode::kNotFound);
  EXPECT_EQ(store_->GetIdempotent("org-a", "m2", "key-1", 0).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->GetIdempotent("org-b", "m1", "key-1", 0).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->GetConnection("org-a", Id(1))->secrets.size(), 1u);

  domain::Connection second = MakeConnection("org-a", Id(2), "second");
  second.secrets["password"] = {"p2", "k", kT0};
  Status again = store_->CreateConnectionIdempotent(second, "m1", "key-1", r, kT0 - kDay);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kConflict);
  EXPECT_EQ(store_->GetConnection("org-a", Id(2)).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(RawSql(path_, "SELECT count(*) FROM connection_secrets"), "1");

  // The same key of another member is another key.
  EXPECT_TRUE(store_->CreateConnectionIdempotent(second, "m2", "key-1", r, kT0 - kDay).ok());
  // A connection id clash rolls the key back too.
  Status clash = store_->CreateConnectionIdempotent(second, "m1", "key-2", r, kT0 - kDay);
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.error().code, ErrorCode::kConflict);
  EXPECT_EQ(store_->GetIdempotent("org-a", "m1", "key-2", 0).error().code, ErrorCode::kNotFound);
}

TEST_F(SqliteStoreTest, StaleIdempotencyRecordIsReplaced) {
  IdempotentResponse r{"h1", 201, "{\"n\":1}", "/v2/connections/1", kT0};
  ASSERT_TRUE(store_
                  ->CreateConnectionIdempotent(MakeConnection("org-a", Id(1), "one"), "m1", "key",
                                               r, kT0 - kDay)
                  .ok());
  // Fresh: the boundary itself (created_at == not_before) still counts as fresh.
  IdempotentResponse r2{"h2", 201, "{\"n\":2}", "/v2/connections/2", kT0 + kDay};
  Status fresh = store_->CreateConnectionIdempotent(MakeConnection("org-a", Id(2), "two"), "m1",
                                                    "key", r2, kT0);
  ASSERT_FALSE(fresh.ok());
  EXPECT_EQ(fresh.error().code, ErrorCode::kConflict);
  EXPECT_EQ(store_->GetConnection("org-a", Id(2)).error().code, ErrorCode::kNotFound);

  // Stale: replaced in the same transaction as the create.
  ASSERT_TRUE(store_
                  ->CreateConnectionIdempotent(MakeConnection("org-a", Id(2), "two"), "m1", "key",
                                               r2, kT0 + 1)
                  .ok());
  auto stored = store_->GetIdempotent("org-a", "m1", "key", kT0 + 1);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->request_hash, "h2");
  EXPECT_EQ(stored->created_at, kT0 + kDay);
  EXPECT_EQ(RawSql(path_, "SELECT count(*) FROM idempotency_keys"), "1");
  EXPECT_TRUE(store_->GetConnection("org-a", Id(1)).ok());  // the old connection stays

  // A failed create keeps the stale record: the deletion rolls back with it.
  IdempotentResponse r3{"h3", 201, "{}", "/x", kT0 + 3 * kDay};
  Status clash = store_->CreateConnectionIdempotent(MakeConnection("org-a", Id(1), "dup"), "m1",
                                                    "key", r3, kT0 + 2 * kDay);
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.error().code, ErrorCode::kConflict);
  EXPECT_EQ(store_->GetIdempotent("org-a", "m1", "key", 0)->request_hash, "h2");
}

// ---- store-wide ----------------------------------------------------------------------------

TEST_F(SqliteStoreTest, PingAnswers) { EXPECT_TRUE(store_->Ping().ok()); }

TEST_F(SqliteStoreTest, ServerKeyIsStableAcrossInstancesAndPurposes) {
  auto k1 = store_->ServerKey("page-token");
  ASSERT_TRUE(k1.ok()) << k1.error().message;
  EXPECT_EQ(k1->size(), 32u);
  EXPECT_NE(*k1, std::string(32, '\0'));
  EXPECT_EQ(*store_->ServerKey("page-token"), *k1);

  SqliteStore other(path_);
  EXPECT_EQ(*other.ServerKey("page-token"), *k1);
  auto k2 = other.ServerKey("other");
  ASSERT_TRUE(k2.ok());
  EXPECT_NE(*k2, *k1);
  EXPECT_EQ(*store_->ServerKey("other"), *k2);
}

TEST(SqliteStoreConcurrency, ServerKeyCreatedOnceUnderRace) {
  TempDir dir;
  const std::string path = dir.File("k.db");
  SqliteStore a(path);
  SqliteStore b(path);
  std::vector<std::string> keys(8);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto k = (i % 2 == 0 ? a : b).ServerKey("race");
      if (k.ok()) keys[i] = *k;
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& k : keys) EXPECT_EQ(k, keys[0]);
  EXPECT_EQ(keys[0].size(), 32u);
}

TEST_F(SqliteStoreTest, DataSurvivesReopen) {
  domain::Connection c = MakeConnection("org-a", Id(1), "durable");
  c.secrets["password"] = {"p", "k", kT0};
  Create(c);
  store_.reset();
  SqliteStore reopened(path_);
  auto got = reopened.GetConnection("org-a", Id(1));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->name, "durable");
  EXPECT_EQ(got->secrets.at("password").sealed, "p");
  EXPECT_EQ(*reopened.CountOrganizations(), 2);
  EXPECT_EQ(RawSql(path_, "PRAGMA journal_mode"), "wal");
}

TEST(SqliteStoreMigrations, AppliedOnceWhenTwoStoresOpenANewFileAtOnce) {
  const std::string latest = std::to_string(Migrations().back().version);
  for (int round = 0; round < 10; ++round) {
    TempDir dir;
    const std::string path = dir.File("race.db");
    std::atomic<int> ready{0};
    std::atomic<int> failures{0};
    auto open = [&] {
      ++ready;
      while (ready < 2) std::this_thread::yield();
      try {
        SqliteStore s(path);
        if (!s.Ping().ok()) ++failures;
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
        ++failures;
      }
    };
    std::thread t1(open);
    std::thread t2(open);
    t1.join();
    t2.join();
    EXPECT_EQ(failures, 0);
    EXPECT_EQ(RawSql(path, "SELECT count(*) FROM schema_migrations"),
              std::to_string(Migrations().size()));
    EXPECT_EQ(RawSql(path, "SELECT max(version) FROM schema_migrations"), latest);
  }
}

// Runs several statements on the file directly (migration SQL); throws on failure.
void RawExec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) throw std::runtime_error("open");
  char* message = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message);
  std::string text = message != nullptr ? message : "";
  sqlite3_free(message);
  sqlite3_close(db);
  if (rc != SQLITE_OK) throw std::runtime_error("exec: " + text);
}

// A database written by a binary that knew only migration 1 is upgraded in place.
TEST(SqliteStoreMigrations, Migration2UpgradesAVersion1DatabaseKeepingItsData) {
  ASSERT_GE(Migrations().size(), 2u);
  ASSERT_EQ(Migrations()[0].version, 1);
  TempDir dir;
  const std::string path = dir.File("v1.db");
  RawExec(path, "PRAGMA journal_mode = WAL; BEGIN; " + std::string(Migrations()[0].sqlite) +
                    "; CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT "
                    "NOT NULL, applied_at INTEGER NOT NULL) STRICT; "
                    "INSERT INTO schema_migrations VALUES (1, 'initial', 0); COMMIT;");
  const std::string c1 = Id(1);
  RawExec(path,
          "INSERT INTO organizations VALUES ('org-a', 'A', 1);"
          "INSERT INTO members VALUES ('m1', 'org-a', 'a@b.c', 'viewer', 1);"
          "INSERT INTO api_clients VALUES ('c1', 'm1', 'h', 1, NULL);"
          "INSERT INTO access_tokens VALUES ('tok-v1', 'c1', 'm1', 'org-a', " +
              std::to_string(kT0 + 3600) +
              ");"
              "INSERT INTO connections (organization_id, connection_id, name, name_folded, type, "
              "is_sample, is_archived, use_oauth, write_access, use_friendly_names, created_by, "
              "updated_by, created_at, updated_at, last_active_at, version, details) VALUES "
              "('org-a', '" +
              c1 +
              "', 'Old', 'old', 'snowflake', 0, 0, 0, 0, 1, 'm1', 'm1', 1, 1, 1, 1, "
              "'{\"type\":\"snowflake\"}');"
              "INSERT INTO connection_secrets VALUES ('" +
              c1 + "', 'password', x'0102', 'k1', 1);");
  EXPECT_EQ(RawSql(path, "SELECT max(version) FROM schema_migrations"), "1");

  SqliteStore store(path);
  EXPECT_EQ(RawSql(path, "SELECT max(version) FROM schema_migrations"),
            std::to_string(Migrations().back().version));
  EXPECT_EQ(RawSql(path, "SELECT count(*) FROM pragma_foreign_key_check"), "0");
  // The old rows read as before; the old token (no family) still resolves.
  auto p = store.ResolveAccessToken("tok-v1", kT0);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->account_type, "viewer");
  auto c = store.GetConnection("org-a", c1);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->name, "Old");
  EXPECT_EQ(c->secrets.at("password").sealed, std::string("\x01\x02", 2));
  EXPECT_EQ(*store.SecretKeyIds(), (std::vector<std::string>{"k1"}));
  // ...and the new tables work on them.
  ASSERT_TRUE(store.CreateTeam({"t1", "org-a", "T", kT0}).ok());
  ASSERT_TRUE(store.AddTeamMember("t1", "m1").ok());
  Grant g;
  g.grant_id = "g1";
  g.team_id = "t1";
  g.permission = "usage";
  g.created_by = g.updated_by = "m1";
  ASSERT_TRUE(store.UpsertGrants("org-a", c1, {g}).ok());
  EXPECT_TRUE(*store.HasGrant("org-a", c1, "m1"));
  ASSERT_TRUE(store
                  .SaveTokenPair({"a", "c1", "m1", "org-a", kT0 + 3600, "f"},
                                 {"r", "f", "c1", "m1", "org-a", kT0 + kDay})
                  .ok());
  ASSERT_TRUE(store.RevokeApiClient("c1", kT0).ok());
  EXPECT_EQ(store.ResolveAccessToken("tok-v1", kT0).error().code, ErrorCode::kNotFound);
}

TEST(SqliteStoreMigrations, RefusesASchemaNewerThanTheBinary) {
  TempDir dir;
  const std::string path = dir.File("new.db");
  { SqliteStore s(path); }
  RawSql(path, "INSERT INTO schema_migrations VALUES (999, 'future', 0)");
  EXPECT_THROW(SqliteStore s(path), std::runtime_error);
}

TEST(SqliteStoreOpen, ParsesDatabaseUrls) {
  TempDir dir;
  const std::string nested = dir.File("a/b/c.db");
  auto store = OpenStore("sqlite:" + nested);
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->Ping().ok());
  EXPECT_TRUE(fs::exists(nested));
  // A PostgreSQL url that cannot be reached fails start-up without echoing its password.
  try {
    OpenStore("postgresql://u:secret@127.0.0.1:1/db?connect_timeout=1");
    ADD_FAILURE() << "unreachable postgresql accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).find("secret"), std::string::npos) << e.what();
  }
  try {
    OpenStore("mysql://u:secret@h/db");
    ADD_FAILURE() << "mysql accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("sqlite:PATH"), std::string::npos);
    EXPECT_EQ(std::string(e.what()).find("secret"), std::string::npos);
  }
  EXPECT_THROW(OpenStore("sqlite:"), std::runtime_error);
}

// Many threads reading and writing at once: no errors, nothing lost.
TEST_F(SqliteStoreTest, ConcurrentReadersAndWriters) {
  constexpr int kThreads = 6;
  constexpr int kPerThread = 40;
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string id = Id(t * 1000 + i);
        if (!store_->CreateConnection(MakeConnection("org-a", id, "n" + id)).ok()) ++errors;
        if (!store_->GetConnection("org-a", id).ok()) ++errors;
        ListQuery q;
        q.organization_id = "org-a";
        q.limit = 10;
        if (!store_->ListConnections(q).ok()) ++errors;
        if (!store_->ServerKey("page-token").ok()) ++errors;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors, 0);
  ListQuery q;
  q.organization_id = "org-a";
  EXPECT_EQ(store_->ListConnections(q)->total, kThreads * kPerThread);
}

}  // namespace
}  // namespace connreg::store
