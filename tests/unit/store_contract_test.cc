// The store contract (store/store.h), written once and run on both backends: every TEST_P below
// runs as `<Suite>.<Test>/Sqlite`, on a fresh SQLite file, and as `<Suite>.<Test>/Postgres`, on a
// fresh PostgreSQL database (the server: see store_test_support.h). To run one backend only:
// --gtest_filter='*/Sqlite'.
//
// What only one backend has stays in its own file: sqlite_store_test.cc (WAL, its migrations, its
// urls) and postgres_store_test.cc (the pool, server restarts, deadlock retries, collations,
// advisory-lock migrations, its urls).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <boost/json/serialize.hpp>

#include "domain/connection.h"
#include "store/postgres_store.h"
#include "store/sqlite_store.h"
#include "store/store.h"
#include "store_test_support.h"

namespace connreg::store {
namespace {

using test_support::Id;
using test_support::kDay;
using test_support::kT0;
using test_support::MakeConnection;
using test_support::ToMember;
using test_support::ToTeam;

using test_support::Backend;
using test_support::BackendName;
using test_support::NewBackend;
using test_support::TestBackend;

// A fresh database holding organizations org-a and org-b, and a store on it.
class StoreContractTest : public test_support::BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(store_->CreateOrganization({"org-a", "A", kT0}).ok());
    ASSERT_TRUE(store_->CreateOrganization({"org-b", "B", kT0}).ok());
  }

  void Create(const domain::Connection& c) {
    Status s = store_->CreateConnection(c);
    ASSERT_TRUE(s.ok()) << s.error().message;
  }

  std::string Raw(const std::string& sql) { return backend_->Raw(sql); }
};

INSTANTIATE_TEST_SUITE_P(, StoreContractTest, testing::Values(Backend::kSqlite, Backend::kPostgres),
                         BackendName);

// ---- connections ---------------------------------------------------------------------------

TEST_P(StoreContractTest, CreateThenGetRoundTripsEveryField) {
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

TEST_P(StoreContractTest, OptionalFieldsStayAbsent) {
  Create(MakeConnection("org-a", Id(1), "plain"));
  auto got = store_->GetConnection("org-a", Id(1));
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->timeout_secs.has_value());
  EXPECT_FALSE(got->description.has_value());
  EXPECT_FALSE(got->last_test.has_value());
  EXPECT_TRUE(got->secrets.empty());
  EXPECT_TRUE(got->use_friendly_names);
}

TEST_P(StoreContractTest, DuplicateIdIsConflictAndUnknownOrganizationIsNotFound) {
  Create(MakeConnection("org-a", Id(1), "one"));
  Status dup = store_->CreateConnection(MakeConnection("org-a", Id(1), "again"));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, ErrorCode::kConflict);
  Status orphan = store_->CreateConnection(MakeConnection("org-none", Id(2), "x"));
  ASSERT_FALSE(orphan.ok());
  EXPECT_EQ(orphan.error().code, ErrorCode::kNotFound);
  // The failed create left nothing behind, secrets included.
  EXPECT_EQ(Raw("SELECT count(*) FROM connections"), "1");
}

TEST_P(StoreContractTest, OtherOrganizationsConnectionIsNotFound) {
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

TEST_P(StoreContractTest, UpdateIsCompareAndSetOnVersion) {
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

TEST_P(StoreContractTest, UpdateReplacesSecretsExactly) {
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
  EXPECT_EQ(Raw("SELECT count(*) FROM connection_secrets"), "0");
}

TEST_P(StoreContractTest, FailedUpdateChangesNoSecret) {
  domain::Connection c = MakeConnection("org-a", Id(1), "s");
  c.secrets["password"] = {"p1", "k1", kT0};
  Create(c);
  domain::Connection next = c;
  next.version = 5;
  next.secrets.clear();
  ASSERT_FALSE(store_->UpdateConnection(next, 4).ok());
  EXPECT_EQ(store_->GetConnection("org-a", Id(1))->secrets.at("password").sealed, "p1");
}

TEST_P(StoreContractTest, CorruptJsonRowIsInternalNotAThrow) {
  Create(MakeConnection("org-a", Id(1), "c"));
  Raw("UPDATE connections SET details = '{not json' WHERE connection_id = '" + Id(1) + "'");
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
// 2,500 rows written once per backend for the whole suite (on SQLite each write is an fsync);
// the tests only read.
class StoreListContractTest : public testing::TestWithParam<Backend> {
 protected:
  static constexpr int kRows = 2500;

  struct Rows {
    std::unique_ptr<TestBackend> backend;
    std::unique_ptr<Store> store;
    std::vector<domain::Connection> expected;  // in listing order
    std::string error;                         // why the rows could not be written
  };

  static void TearDownTestSuite() {
    for (Rows*& rows : rows_) {
      delete rows;
      rows = nullptr;
    }
  }

  void SetUp() override {
    Rows*& rows = rows_[static_cast<int>(GetParam())];
    if (rows == nullptr) rows = WriteRows(GetParam());
    ASSERT_TRUE(rows->error.empty()) << rows->error;
    store_ = rows->store.get();
    expected_ = &rows->expected;
  }

  // Names repeat (ties broken by created_at, then id) in mixed case (byte order puts 'C' before
  // 'c', where PostgreSQL's default ICU collation would not); a third of the rows are archived,
  // a fifth are postgres, every seventh has a secret.
  static Rows* WriteRows(Backend backend) {
    auto rows = std::make_unique<Rows>();
    try {
      rows->backend = NewBackend(backend);
      rows->store = rows->backend->Open();
      auto must = [](const Status& s) {
        if (!s.ok()) throw std::runtime_error(s.error().message);
      };
      must(rows->store->CreateOrganization({"org-a", "A", kT0}));
      must(rows->store->CreateOrganization({"org-b", "B", kT0}));
      for (int i = 0; i < kRows; ++i) {
        std::string name = (i % 2 == 0 ? "Conn " : "conn ") + std::to_string(i % 700);
        domain::Connection c = MakeConnection("org-a", Id(kRows - i), name, kT0 + (i % 3));
        if (i % 3 == 0) c.is_archived = true;
        if (i % 5 == 0) {
          c.type = "postgres";
          c.details["type"] = "postgres";
        }
        if (i % 7 == 0) c.secrets["password"] = {"sealed-" + std::to_string(i), "k", kT0};
        must(rows->store->CreateConnection(c));
        rows->expected.push_back(c);
      }
      // Another organization's rows never show up.
      must(rows->store->CreateConnection(MakeConnection("org-b", Id(9000001), "Conn 1")));
      std::sort(rows->expected.begin(), rows->expected.end(),
                [](const auto& a, const auto& b) { return KeyOf(a) < KeyOf(b); });
    } catch (const std::exception& e) {
      rows->error = e.what();
    }
    return rows.release();
  }

  std::vector<domain::Connection> Expected(bool include_archived) const {
    std::vector<domain::Connection> out;
    for (const auto& c : *expected_) {
      if (include_archived || !c.is_archived) out.push_back(c);
    }
    return out;
  }

  static inline Rows* rows_[2] = {nullptr, nullptr};  // by Backend

  Store* store_ = nullptr;
  const std::vector<domain::Connection>* expected_ = nullptr;
};

INSTANTIATE_TEST_SUITE_P(, StoreListContractTest,
                         testing::Values(Backend::kSqlite, Backend::kPostgres), BackendName);

TEST_P(StoreListContractTest, WalksEveryPageWithoutSkipsOrRepeats) {
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

TEST_P(StoreListContractTest, FilteredWalkMatchesFilteredRows) {
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

TEST_P(StoreListContractTest, OffsetFormMatchesKeysetPages) {
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

TEST_P(StoreListContractTest, LimitIsClampedTo1000) {
  ListQuery q;
  q.organization_id = "org-a";
  q.include_archived = true;
  q.limit = 5000;
  auto page = store_->ListConnections(q);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->entries.size(), 1000u);
  EXPECT_TRUE(page->has_more);
}

TEST_P(StoreContractTest, KeysetWalkIsStableWhileRowsAreInserted) {
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

TEST_P(StoreContractTest, FiltersSearchTypeAndArchived) {
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

// The search is a substring of the folded name, whatever the term holds: LIKE's own characters
// (% _ \) are plain characters, non-ASCII letters are not folded (FoldName folds ASCII only),
// and a term of 1 or 2 characters (counted as characters, not bytes) finds the same as a scan.
TEST_P(StoreContractTest, SearchTakesEveryCharacterLiterally) {
  const char* names[] = {"100% sure", "a_b", "a\\b",      "aXb",         "Émile",
                         "émile",     "éé",  "quote\"d'", "two  spaces", "abc"};
  for (int i = 0; i < 10; ++i) Create(MakeConnection("org-a", Id(i + 1), names[i]));
  auto ids = [&](const std::string& search) {
    ListQuery q;
    q.organization_id = "org-a";
    q.search = domain::FoldName(search);
    auto page = store_->ListConnections(q);
    EXPECT_TRUE(page.ok()) << page.error().message;
    std::vector<std::string> out;
    if (!page.ok()) return out;
    for (const auto& e : page->entries) out.push_back(e.connection_id);
    EXPECT_EQ(page->total, static_cast<std::int64_t>(out.size())) << search;
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(ids("%"), (V{Id(1)}));
  EXPECT_EQ(ids("0% s"), (V{Id(1)}));
  EXPECT_EQ(ids("_"), (V{Id(2)}));
  EXPECT_EQ(ids("a_b"), (V{Id(2)}));
  EXPECT_EQ(ids("\\"), (V{Id(3)}));
  EXPECT_EQ(ids("A\\B"), (V{Id(3)}));
  EXPECT_EQ(ids("axb"), (V{Id(4)}));
  EXPECT_EQ(ids("ab"), (V{Id(10)}));
  EXPECT_EQ(ids("ÉMILE"), (V{Id(5)}));  // É is not folded: only the É name
  EXPECT_EQ(ids("émi"), (V{Id(6)}));
  EXPECT_EQ(ids("MILE"), (V{Id(5), Id(6)}));
  EXPECT_EQ(ids("éé"), (V{Id(7)}));  // 2 characters, 4 bytes: the scan
  EXPECT_EQ(ids("\"d'"), (V{Id(8)}));
  EXPECT_EQ(ids("o  s"), (V{Id(9)}));
  EXPECT_EQ(ids("b"), (V{Id(4), Id(3), Id(2), Id(10)}));  // "aX" < "a\\" < "a_" < "ab"
  EXPECT_EQ(ids("zzz"), V{});
}

// A term of 1 or 2 characters has no trigram, so it scans the organization's rows that pass the
// other filters: beyond 10,000 of them it is refused with a 400 (kBadRequest) rather than made
// slow; a longer term, or a narrower filter, is still served. (The kept counts are raised by hand
// here, to stand for a large organization.)
TEST_P(StoreContractTest, ShortSearchTermIsRefusedBeyondTheScanBound) {
  Create(MakeConnection("org-a", Id(1), "abc"));
  domain::Connection other = MakeConnection("org-a", Id(2), "abd");
  other.type = "postgres";
  Create(other);
  ListQuery q;
  q.organization_id = "org-a";
  q.search = "ab";
  EXPECT_EQ(store_->ListConnections(q)->total, 2);
  Raw("INSERT INTO connection_counts (organization_id, type, is_archived, shard, connections)"
      " VALUES ('org-a', 'snowflake', false, 99, 999998)");
  EXPECT_EQ(store_->ListConnections(q)->total, 2);  // 1,000,000 rows: still scanned
  Raw("UPDATE connection_counts SET connections = 999999 WHERE shard = 99");
  auto refused = store_->ListConnections(q);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kBadRequest);
  EXPECT_NE(refused.error().message.find("shorter than 3 characters"), std::string::npos);
  q.type = "postgres";  // 1 row passes the other filters
  EXPECT_EQ(store_->ListConnections(q)->total, 1);
  q.type.reset();
  q.search = "abc";
  EXPECT_EQ(store_->ListConnections(q)->total, 1);
  q.search.reset();
  EXPECT_EQ(store_->ListConnections(q)->total, 1000001);  // what the counts say
}

// ---- identities ----------------------------------------------------------------------------

// The first-start bootstrap, raced by several stores on one fresh database (nodes starting
// together): exactly one creates its organization, admin and client; the rest write nothing.
class StoreBootstrapTest : public testing::TestWithParam<Backend> {};
INSTANTIATE_TEST_SUITE_P(, StoreBootstrapTest,
                         testing::Values(Backend::kSqlite, Backend::kPostgres), BackendName);

TEST_P(StoreBootstrapTest, RacingNodesBootstrapAnEmptyStoreOnce) {
  std::unique_ptr<TestBackend> backend;
  try {
    backend = NewBackend(GetParam());
  } catch (const std::exception& e) {
    FAIL() << e.what();
  }
  constexpr int kNodes = 6;
  std::vector<std::unique_ptr<Store>> stores;
  for (int i = 0; i < kNodes; ++i) stores.push_back(backend->Open());
  std::vector<int> outcome(kNodes, -1);  // 1 created, 0 found it bootstrapped, -1 error
  std::vector<std::thread> threads;
  for (int i = 0; i < kNodes; ++i) {
    threads.emplace_back([&, i] {
      const std::string n = std::to_string(i);
      auto r = stores[i]->BootstrapIfEmpty({"org-" + n, "Default", kT0},
                                           {"member-" + n, "org-" + n, "a@b.c", "admin", kT0},
                                           {"client-" + n, "member-" + n, "hash-" + n, kT0, {}});
      if (r.ok()) outcome[i] = *r ? 1 : 0;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(std::count(outcome.begin(), outcome.end(), -1), 0);
  ASSERT_EQ(std::count(outcome.begin(), outcome.end(), 1), 1);
  const std::string winner =
      std::to_string(std::find(outcome.begin(), outcome.end(), 1) - outcome.begin());
  EXPECT_EQ(*stores[0]->CountOrganizations(), 1);
  EXPECT_EQ(backend->Raw("SELECT organization_id FROM organizations"), "org-" + winner);
  EXPECT_EQ(backend->Raw("SELECT count(*) FROM members"), "1");
  auto client = stores[0]->GetActiveApiClient("client-" + winner);
  ASSERT_TRUE(client.ok());
  EXPECT_EQ(client->member_id, "member-" + winner);
  // Once bootstrapped, later starts write nothing.
  auto again =
      stores[0]->BootstrapIfEmpty({"org-x", "X", kT0}, {"member-x", "org-x", "x@y.z", "admin", kT0},
                                  {"client-x", "member-x", "hash-x", kT0, {}});
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_EQ(*stores[0]->CountOrganizations(), 1);
}

TEST_P(StoreContractTest, OrganizationsAndMembers) {
  auto org = store_->GetOrganization("org-a");
  ASSERT_TRUE(org.ok());
  EXPECT_EQ(org->name, "A");
  EXPECT_EQ(org->created_at, kT0);
  EXPECT_EQ(store_->GetOrganization("nope").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(*store_->CountOrganizations(), 2);
  EXPECT_EQ(store_->CreateOrganization({"org-a", "again", kT0}).error().code, ErrorCode::kConflict);

  ASSERT_TRUE(store_->CreateMember({"m1", "org-a", "a@b.c", "viewer", kT0}, {}).ok());
  auto m = store_->GetMember("m1");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->organization_id, "org-a");
  EXPECT_EQ(m->email, "a@b.c");
  EXPECT_EQ(m->account_type, "viewer");
  EXPECT_EQ(store_->GetMember("m2").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->CreateMember({"m2", "org-none", "x@y.z", "admin", kT0}, {}).error().code,
            ErrorCode::kNotFound);
}

TEST_P(StoreContractTest, AccessTokensResolveOnlyWhileValid) {
  ASSERT_TRUE(store_->CreateMember({"m1", "org-a", "a@b.c", "admin", kT0}, {}).ok());
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
  ASSERT_TRUE(store_->SaveAccessToken({"tok-old", "c1", "m1", "org-a", kT0 - 1}).ok());
  // Nothing is saved for a revoked client; a token saved before its revocation (written here
  // behind the store's back, as revocation also deletes them) never resolves.
  EXPECT_EQ(store_->SaveAccessToken({"tok-2", "c2", "m1", "org-a", kT0 + 3600}).error().code,
            ErrorCode::kNotFound);
  Raw("UPDATE api_clients SET revoked_at = NULL WHERE client_id = 'c2'");
  ASSERT_TRUE(store_->SaveAccessToken({"tok-2", "c2", "m1", "org-a", kT0 + 3600}).ok());
  Raw("UPDATE api_clients SET revoked_at = 1 WHERE client_id = 'c2'");

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
  EXPECT_EQ(Raw("SELECT count(*) FROM access_tokens"), "2");
}

TEST_P(StoreContractTest, RevokingAClientKillsItsIssuedTokens) {
  ASSERT_TRUE(store_->CreateMember({"m1", "org-a", "a@b.c", "creator", kT0}, {}).ok());
  ASSERT_TRUE(store_->CreateApiClient({"c1", "m1", "h", kT0, std::nullopt}).ok());
  ASSERT_TRUE(store_->SaveAccessToken({"tok", "c1", "m1", "org-a", kT0 + 3600}).ok());
  ASSERT_EQ(store_->ResolveAccessToken("tok", kT0)->account_type, "creator");
  Raw("UPDATE api_clients SET revoked_at = 1 WHERE client_id = 'c1'");
  EXPECT_EQ(store_->ResolveAccessToken("tok", kT0).error().code, ErrorCode::kNotFound);
}

TEST_P(StoreContractTest, RevokeApiClientKillsTokensAtOnceAndKeepsTheFirstTime) {
  ASSERT_TRUE(store_->CreateMember({"m1", "org-a", "a@b.c", "admin", kT0}, {}).ok());
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
  EXPECT_EQ(Raw("SELECT count(*) FROM access_tokens WHERE client_id = 'c1'"), "0");
  EXPECT_EQ(Raw("SELECT count(*) FROM refresh_tokens WHERE client_id = 'c1'"), "0");
  EXPECT_EQ(Raw("SELECT revoked_at FROM api_clients WHERE client_id = 'c1'"),
            std::to_string(kT0 + 5));
  // The other client is untouched.
  EXPECT_TRUE(store_->ResolveAccessToken("a2", kT0).ok());
  EXPECT_EQ(Raw("SELECT count(*) FROM refresh_tokens WHERE client_id = 'c2'"), "1");

  ASSERT_TRUE(store_->RevokeApiClient("c1", kT0 + 99).ok());
  EXPECT_EQ(Raw("SELECT revoked_at FROM api_clients WHERE client_id = 'c1'"),
            std::to_string(kT0 + 5));
  EXPECT_EQ(store_->RevokeApiClient("c-none", kT0).error().code, ErrorCode::kNotFound);
}

// ---- refresh tokens ------------------------------------------------------------------------

// Adds creator m1 with clients c1 and c2, and c1's token pair a1/r1 of family "fam".
class StoreRefreshContractTest : public StoreContractTest {
 protected:
  void SetUp() override {
    StoreContractTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(store_->CreateMember({"m1", "org-a", "a@b.c", "creator", kT0}, {}).ok());
    ASSERT_TRUE(store_->CreateApiClient({"c1", "m1", "h1", kT0, std::nullopt}).ok());
    ASSERT_TRUE(store_->CreateApiClient({"c2", "m1", "h2", kT0, std::nullopt}).ok());
    ASSERT_TRUE(store_
                    ->SaveTokenPair({"a1", "c1", "m1", "org-a", kT0 + 3600, "fam"},
                                    {"r1", "fam", "c1", "m1", "org-a", kT0 + kDay})
                    .ok());
  }

  // The caller fills in only the hashes and expiries; the store fills in the rest. On `store`
  // when given, else on store_.
  Result<Principal> Rotate(const std::string& presented, const std::string& client_id, TimeMs now,
                           const std::string& next_access, const std::string& next_refresh,
                           Store* store = nullptr) {
    AccessToken a;
    a.token_hash = next_access;
    a.expires_at = now + 3600;
    RefreshToken r;
    r.token_hash = next_refresh;
    r.expires_at = now + kDay;
    return (store != nullptr ? store : store_.get())
        ->RotateRefreshToken(presented, client_id, now, a, r);
  }

  std::string Count(const std::string& table) { return Raw("SELECT count(*) FROM " + table); }
};

INSTANTIATE_TEST_SUITE_P(, StoreRefreshContractTest,
                         testing::Values(Backend::kSqlite, Backend::kPostgres), BackendName);

TEST_P(StoreRefreshContractTest, SavedPairSharesItsFamily) {
  EXPECT_EQ(Raw("SELECT family_id FROM access_tokens WHERE token_hash = 'a1'"), "fam");
  EXPECT_EQ(Raw("SELECT family_id FROM refresh_tokens WHERE token_hash = 'r1'"), "fam");
  // An access token without a family joins the refresh token's.
  ASSERT_TRUE(store_
                  ->SaveTokenPair({"a2", "c1", "m1", "org-a", kT0 + 3600, ""},
                                  {"r2", "fam2", "c1", "m1", "org-a", kT0 + kDay})
                  .ok());
  EXPECT_EQ(Raw("SELECT family_id FROM access_tokens WHERE token_hash = 'a2'"), "fam2");
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
  EXPECT_EQ(Raw("SELECT count(*) FROM access_tokens WHERE token_hash = 'a5' AND family_id IS NULL"),
            "1");
}

TEST_P(StoreRefreshContractTest, RotationThenReuseRevokesTheWholeFamily) {
  auto p = Rotate("r1", "c1", kT0 + 10, "a2", "r2");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->organization_id, "org-a");
  EXPECT_EQ(p->member_id, "m1");
  EXPECT_EQ(p->client_id, "c1");
  EXPECT_EQ(p->account_type, "creator");
  EXPECT_EQ(Raw("SELECT used_at FROM refresh_tokens WHERE token_hash = 'r1'"),
            std::to_string(kT0 + 10));
  EXPECT_EQ(Raw("SELECT family_id || '/' || client_id || '/' || member_id || '/' || "
                "organization_id || '/' || expires_at FROM access_tokens "
                "WHERE token_hash = 'a2'"),
            "fam/c1/m1/org-a/" + std::to_string(kT0 + 10 + 3600));
  // The new refresh token joins the family, unused.
  EXPECT_EQ(Raw("SELECT family_id || '/' || client_id || '/' || member_id || '/' || "
                "organization_id FROM refresh_tokens WHERE token_hash = 'r2' AND used_at IS NULL"),
            "fam/c1/m1/org-a");
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
  EXPECT_EQ(Raw("SELECT count(*) FROM refresh_tokens WHERE family_id = 'fam'"), "0");
  EXPECT_EQ(Raw("SELECT count(*) FROM access_tokens WHERE family_id = 'fam'"), "0");
  EXPECT_EQ(store_->ResolveAccessToken("ox", kT0 + 31).ok(), true);
  EXPECT_EQ(Raw("SELECT count(*) FROM refresh_tokens WHERE family_id = 'other'"), "1");
  // The newest refresh token of the family is gone with it.
  EXPECT_EQ(Rotate("r3", "c1", kT0 + 40, "a5", "r5").error().code, ErrorCode::kNotFound);
}

TEST_P(StoreRefreshContractTest, AnotherClientsRefreshIsNotFoundAndChangesNothing) {
  auto wrong = Rotate("r1", "c2", kT0 + 10, "a2", "r2");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(Raw("SELECT count(*) FROM refresh_tokens WHERE token_hash = 'r1' AND used_at IS NULL"),
            "1");
  EXPECT_EQ(Count("access_tokens"), "1");
  EXPECT_EQ(Count("refresh_tokens"), "1");
  // Still good for its own client.
  EXPECT_TRUE(Rotate("r1", "c1", kT0 + 11, "a2", "r2").ok());
}

TEST_P(StoreRefreshContractTest, ExpiredUnknownOrRevokedIsNotFoundAndChangesNothing) {
  // Expiry is exclusive, as for access tokens.
  EXPECT_EQ(Rotate("r1", "", kT0 + kDay, "a2", "r2").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(Rotate("r-none", "", kT0, "a2", "r2").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(Raw("SELECT count(*) FROM refresh_tokens WHERE token_hash = 'r1' AND used_at IS NULL"),
            "1");
  EXPECT_EQ(Count("access_tokens"), "1");
  EXPECT_EQ(Count("refresh_tokens"), "1");

  Raw("UPDATE api_clients SET revoked_at = 1 WHERE client_id = 'c1'");
  EXPECT_EQ(Rotate("r1", "", kT0 + 1, "a2", "r2").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(Count("refresh_tokens"), "1");
}

TEST_P(StoreRefreshContractTest, ConcurrentRotationsOfOneTokenLetOneWinThenRevoke) {
  constexpr int kThreads = 8;
  std::unique_ptr<Store> other = backend_->Open();  // another node, or another process
  std::atomic<int> ok{0};
  std::atomic<int> conflict{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto p = Rotate("r1", "c1", kT0 + 10, "a-next-" + std::to_string(i),
                      "r-next-" + std::to_string(i), i % 2 == 0 ? other.get() : nullptr);
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

TEST_P(StoreRefreshContractTest, PurgeExpiredRemovesTokensAndOldIdempotencyKeys) {
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
  EXPECT_EQ(Raw("SELECT token_hash FROM access_tokens ORDER BY token_hash"), "a1,a2");
  EXPECT_EQ(Raw("SELECT token_hash FROM refresh_tokens ORDER BY token_hash"), "r1,r2");
  EXPECT_EQ(Raw("SELECT key FROM idempotency_keys"), "k-new");
  // The used token, once expired, goes too.
  purged = store_->PurgeExpired(kT0 + kDay, kT0 - kDay);
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(*purged, 3);  // a1, a2, r1
  EXPECT_EQ(*store_->PurgeExpired(kT0 + kDay, kT0 - kDay), 0);
}

// ---- test results and key rotation ---------------------------------------------------------

TEST_P(StoreContractTest, RecordTestIsNotAChange) {
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

TEST_P(StoreContractTest, KeyRotationReadsBatchesAndResealsByCompareAndSet) {
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

TEST_P(StoreContractTest, SealedBytesCompareExactly) {
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

TEST_P(StoreContractTest, IdempotencyKeyCreatesOnceAndConflictsAfter) {
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
  EXPECT_EQ(Raw("SELECT count(*) FROM connection_secrets"), "1");

  // The same key of another member is another key.
  EXPECT_TRUE(store_->CreateConnectionIdempotent(second, "m2", "key-1", r, kT0 - kDay).ok());
  // A connection id clash rolls the key back too.
  Status clash = store_->CreateConnectionIdempotent(second, "m1", "key-2", r, kT0 - kDay);
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.error().code, ErrorCode::kConflict);
  EXPECT_EQ(store_->GetIdempotent("org-a", "m1", "key-2", 0).error().code, ErrorCode::kNotFound);
}

TEST_P(StoreContractTest, StaleIdempotencyRecordIsReplaced) {
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
  EXPECT_EQ(Raw("SELECT count(*) FROM idempotency_keys"), "1");
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

TEST_P(StoreContractTest, PingAnswers) { EXPECT_TRUE(store_->Ping().ok()); }

TEST_P(StoreContractTest, ServerKeyIsStableAcrossInstancesAndPurposes) {
  auto k1 = store_->ServerKey("page-token");
  ASSERT_TRUE(k1.ok()) << k1.error().message;
  EXPECT_EQ(k1->size(), 32u);
  EXPECT_NE(*k1, std::string(32, '\0'));
  EXPECT_EQ(*store_->ServerKey("page-token"), *k1);

  std::unique_ptr<Store> other = backend_->Open();
  EXPECT_EQ(*other->ServerKey("page-token"), *k1);
  auto k2 = other->ServerKey("other");
  ASSERT_TRUE(k2.ok());
  EXPECT_NE(*k2, *k1);
  EXPECT_EQ(*store_->ServerKey("other"), *k2);
}

TEST_P(StoreContractTest, ServerKeyCreatedOnceUnderRaceBetweenTwoStores) {
  std::unique_ptr<Store> other = backend_->Open();
  std::vector<std::string> keys(8);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto k = (i % 2 == 0 ? *store_ : *other).ServerKey("race");
      if (k.ok()) keys[i] = *k;
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& k : keys) EXPECT_EQ(k, keys[0]);
  EXPECT_EQ(keys[0].size(), 32u);
  EXPECT_EQ(Raw("SELECT count(*) FROM server_keys"), "1");
}

// The bucket SQL is written once for both dialects (only PostgreSQL's stores use it in a
// server: Store::SharesRateLimits); the same arithmetic holds on both.
TEST_P(StoreContractTest, RateTokensRefillAtTheRateUpToOneSecondsWorth) {
  // 2 per second: a bucket of 2 tokens, full at first.
  EXPECT_EQ(*store_->TakeRateToken("c1", 2, kT0), 0);
  EXPECT_EQ(*store_->TakeRateToken("c1", 2, kT0), 0);
  EXPECT_EQ(*store_->TakeRateToken("c1", 2, kT0), 1);  // empty: one token is 500 ms away
  EXPECT_EQ(*store_->TakeRateToken("c1", 2, kT0 + 499), 1);
  EXPECT_EQ(*store_->TakeRateToken("c1", 2, kT0 + 500), 0);  // refilled by one
  // Another client has a bucket of its own; a long pause refills no more than the capacity.
  EXPECT_EQ(*store_->TakeRateToken("c2", 2, kT0), 0);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(*store_->TakeRateToken("c1", 2, kT0 + 60'000), 0);
  EXPECT_EQ(*store_->TakeRateToken("c1", 2, kT0 + 60'000), 1);
  // A clock that goes back a little (another node's) refills nothing, and takes nothing.
  EXPECT_EQ(*store_->TakeRateToken("c1", 2, kT0 + 59'000), 1);
  // Below one per second the wait rounds up to whole seconds.
  EXPECT_EQ(*store_->TakeRateToken("c3", 0.25, kT0), 0);
  EXPECT_EQ(*store_->TakeRateToken("c3", 0.25, kT0), 4);
  std::unique_ptr<Store> other = backend_->Open();  // another node sees the same bucket
  EXPECT_EQ(*other->TakeRateToken("c3", 0.25, kT0 + 1000), 3);
}

TEST_P(StoreContractTest, DataSurvivesReopen) {
  domain::Connection c = MakeConnection("org-a", Id(1), "durable");
  c.secrets["password"] = {"p", "k", kT0};
  Create(c);
  store_.reset();
  std::unique_ptr<Store> reopened = backend_->Open();
  auto got = reopened->GetConnection("org-a", Id(1));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->name, "durable");
  EXPECT_EQ(got->secrets.at("password").sealed, "p");
  EXPECT_EQ(*reopened->CountOrganizations(), 2);
}

// Many threads reading and writing at once: no errors, nothing lost.
TEST_P(StoreContractTest, ConcurrentReadersAndWriters) {
  constexpr int kThreads = 6;
  constexpr int kPerThread = 40;
  EXPECT_EQ(test_support::ErrorsFromConcurrentReadersAndWriters(*store_, kThreads, kPerThread), 0);
  ListQuery q;
  q.organization_id = "org-a";
  EXPECT_EQ(store_->ListConnections(q)->total, kThreads * kPerThread);
}

// The compare-and-set holds across stores (several nodes, or several processes on one file): of
// updates racing from the same version, one wins.
TEST_P(StoreContractTest, ConcurrentUpdatesFromTwoStoresLetExactlyOneWin) {
  std::unique_ptr<Store> other = backend_->Open();
  for (int round = 0; round < 5; ++round) {
    const std::string id = Id(round + 1);
    Create(MakeConnection("org-a", id, "race"));
    constexpr int kThreads = 8;
    std::atomic<int> ok{0};
    std::atomic<int> lost{0};
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        domain::Connection next = MakeConnection("org-a", id, "writer " + std::to_string(i));
        next.version = 2;
        next.secrets["password"] = {"p" + std::to_string(i), "k", kT0};
        ++ready;
        while (ready < kThreads) std::this_thread::yield();
        Status s = (i % 2 == 0 ? *store_ : *other).UpdateConnection(next, 1);
        if (s.ok()) {
          ++ok;
        } else if (s.error().code == ErrorCode::kPreconditionFailed) {
          ++lost;
        } else {
          ADD_FAILURE() << s.error().message;
        }
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(ok, 1);
    EXPECT_EQ(lost, kThreads - 1);
    auto got = store_->GetConnection("org-a", id);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->version, 2);
    // The winner's name and secret, together.
    const std::string winner = got->name.substr(std::string("writer ").size());
    EXPECT_EQ(got->secrets.at("password").sealed, "p" + winner);
  }
}

TEST_P(StoreContractTest, ConcurrentIdempotentCreatesOnOneKeyFromTwoStoresCreateOnce) {
  std::unique_ptr<Store> other = backend_->Open();
  constexpr int kThreads = 8;
  std::atomic<int> ok{0};
  std::atomic<int> conflict{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      IdempotentResponse r{"h", 201, "{}", "/x", kT0};
      Status s = (i % 2 == 0 ? *store_ : *other)
                     .CreateConnectionIdempotent(MakeConnection("org-a", Id(i + 1), "n"), "m1",
                                                 "same-key", r, kT0 - kDay);
      if (s.ok()) {
        ++ok;
      } else if (s.error().code == ErrorCode::kConflict) {
        ++conflict;
      } else {
        ADD_FAILURE() << s.error().message;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(conflict, kThreads - 1);
  EXPECT_EQ(Raw("SELECT count(*) FROM connections"), "1");
}

TEST_P(StoreContractTest, NamesAndJsonRoundTripByteForByte) {
  domain::Connection c = MakeConnection("org-a", Id(1), "Entrepôt — 東京 \"q\" \\ 'x'");
  c.details["note"] = "line\nbreak\ttab \u00e9 \xf0\x9f\x98\x80";
  c.details["nul"] = std::string("a\0b", 3);
  c.description = boost::json::object{{"text", "100% 'quoted' $1 ?1"}};
  Create(c);
  auto got = store_->GetConnection("org-a", Id(1));
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->name, c.name);
  EXPECT_EQ(got->details, c.details);
  EXPECT_EQ(boost::json::serialize(got->details), boost::json::serialize(c.details));
  EXPECT_EQ(*got->description, *c.description);
}

TEST_P(StoreContractTest, RefusesASchemaNewerThanTheBinary) {
  Raw("INSERT INTO schema_migrations VALUES (999, 'future', 0)");
  try {
    backend_->Open();
    ADD_FAILURE() << "a newer schema was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("newer than this binary"), std::string::npos) << e.what();
  }
}
// ---- teams and grants (contract sections 1 and 8) ------------------------------------------

// org-a: admin-a, m1, m2, m3 (viewers); team t1 = {m2}, team t2 = {m2, m3}; connections Id(1..6)
// named "c1".."c6". org-b: mb, team tb = {mb}, connection Id(100).
// The ids of every entry of a keyset walk: `list(q)` reads a page, `id(entry)` is an entry's id,
// `advance(q, last)` moves `q` past the page's last entry. Checks that `total` stays the same on
// every page and counts what the walk saw.
template <class Query, class List, class IdOf, class Advance>
std::vector<std::string> WalkPages(Query q, List list, IdOf id, Advance advance) {
  std::vector<std::string> out;
  std::optional<std::int64_t> total;
  for (int pages = 0; pages < 100; ++pages) {
    auto page = list(q);
    EXPECT_TRUE(page.ok()) << page.error().message;
    if (!page.ok()) break;
    if (total) {
      EXPECT_EQ(page->total, *total);
    }
    total = page->total;
    for (const auto& e : page->entries) out.push_back(id(e));
    if (!page->has_more) break;
    advance(q, page->entries.back());
  }
  EXPECT_EQ(total.value_or(-1), static_cast<std::int64_t>(out.size()));
  return out;
}

// The kept counts and the search index against a brute-force count over the rows, after random
// creates, renames, type changes, archives and restores: every filter combination, every search
// (short and long, with LIKE's characters and non-ASCII), one page of everything and a keyset
// walk, in the listing's order.
TEST_P(StoreContractTest, ListingAgreesWithABruteForceCountOverRandomOperations) {
  std::vector<domain::Connection> rows;
  std::mt19937 rng(17);
  const std::vector<std::string> pieces = {"a", "b", "A", "%", "_", "\\", "é", " ", "ab", "Ba"};
  const std::vector<std::string> types = {"snowflake", "postgres", "bigQuery"};
  auto pick = [&](const auto& v) { return v[rng() % v.size()]; };
  auto random_name = [&] {
    std::string name;
    const int n = 1 + static_cast<int>(rng() % 6);
    for (int i = 0; i < n; ++i) name += pick(pieces);
    return name;
  };
  for (int op = 0; op < 120; ++op) {
    if (rows.empty() || rng() % 3 == 0) {
      domain::Connection c =
          MakeConnection(rng() % 5 == 0 ? "org-b" : "org-a", Id(static_cast<int>(rows.size()) + 1),
                         random_name(), kT0 + static_cast<TimeMs>(rng() % 4));
      c.type = pick(types);
      c.details["type"] = c.type;
      c.is_archived = rng() % 4 == 0;
      Create(c);
      rows.push_back(c);
      continue;
    }
    domain::Connection& c = rows[rng() % rows.size()];
    domain::Connection next = c;
    switch (rng() % 3) {
      case 0: next.name = random_name(); break;
      case 1:
        next.type = pick(types);
        next.details["type"] = next.type;
        break;
      default: next.is_archived = !next.is_archived; break;
    }
    next.version = c.version + 1;
    Status updated = store_->UpdateConnection(next, c.version);
    ASSERT_TRUE(updated.ok()) << updated.error().message;
    c = next;
  }
  if (GetParam() == Backend::kSqlite) {  // the FTS5 index agrees with its rows after the renames
    EXPECT_NO_THROW(
        Raw("INSERT INTO connections_search (connections_search, rank)"
            " VALUES ('integrity-check', 1)"));
  }
  std::vector<std::optional<std::string>> searches = {std::nullopt, "a",   "%",    "_",   "\\",
                                                      "é",          "ab",  "a%",   "b_",  "éa",
                                                      "aba",        "a b", "%_\\", "ééé", "zzz"};
  for (int i = 0; i < 10; ++i) {
    // 1 to 4 whole characters (a search is UTF-8 text) from a random name.
    const std::string folded = domain::FoldName(pick(rows).name);
    auto is_start = [&](std::size_t i) {
      return i >= folded.size() || (static_cast<unsigned char>(folded[i]) & 0xC0) != 0x80;
    };
    std::size_t from = rng() % folded.size();
    while (!is_start(from)) --from;
    std::size_t to = from;
    for (int n = 1 + static_cast<int>(rng() % 4); n > 0 && to < folded.size(); --n) {
      do {
        ++to;
      } while (!is_start(to));
    }
    searches.push_back(folded.substr(from, to - from));
  }
  for (const char* org : {"org-a", "org-b"}) {
    for (bool include_archived : {false, true}) {
      for (const std::optional<std::string>& type :
           {std::optional<std::string>(), std::optional<std::string>("postgres")}) {
        for (const auto& search : searches) {
          SCOPED_TRACE(std::string(org) + " archived " + std::to_string(include_archived) +
                       " type " + type.value_or("-") + " search [" + search.value_or("-") + "]");
          std::vector<const domain::Connection*> want;
          for (const auto& c : rows) {
            if (c.organization_id != org || (c.is_archived && !include_archived) ||
                (type && c.type != *type) ||
                (search && domain::FoldName(c.name).find(*search) == std::string::npos)) {
              continue;
            }
            want.push_back(&c);
          }
          std::sort(want.begin(), want.end(), [](const auto* x, const auto* y) {
            return std::tie(x->name, x->created_at, x->connection_id) <
                   std::tie(y->name, y->created_at, y->connection_id);
          });
          std::vector<std::string> want_ids;
          for (const auto* c : want) want_ids.push_back(c->connection_id);
          ListQuery q;
          q.organization_id = org;
          q.include_archived = include_archived;
          q.type = type;
          q.search = search;
          q.limit = 1000;
          auto page = store_->ListConnections(q);
          ASSERT_TRUE(page.ok()) << page.error().message;
          std::vector<std::string> got;
          for (const auto& e : page->entries) got.push_back(e.connection_id);
          EXPECT_EQ(got, want_ids);
          EXPECT_EQ(page->total, static_cast<std::int64_t>(want_ids.size()));
          q.limit = 3;
          EXPECT_EQ(WalkPages(
                        q, [&](const ListQuery& p) { return store_->ListConnections(p); },
                        [](const domain::Connection& c) { return c.connection_id; },
                        [](ListQuery& next, const domain::Connection& last) {
                          next.after = ListCursor{last.name, last.created_at, last.connection_id};
                        }),
                    want_ids);
        }
      }
    }
  }
}

class StoreGrantsContractTest : public StoreContractTest {
 protected:
  void SetUp() override {
    StoreContractTest::SetUp();
    if (HasFatalFailure()) return;
    Must(store_->CreateMember({"admin-a", "org-a", "admin@a", "admin", kT0}, {}));
    for (const char* m : {"m1", "m2", "m3"}) {
      Must(store_->CreateMember({m, "org-a", std::string(m) + "@a", "viewer", kT0}, {}));
    }
    Must(store_->CreateMember({"mb", "org-b", "mb@b", "viewer", kT0}, {}));
    Must(store_->CreateTeam({"t1", "org-a", "Team 1", kT0}, {}));
    Must(store_->CreateTeam({"t2", "org-a", "Team 2", kT0}, {}));
    Must(store_->CreateTeam({"tb", "org-b", "Team B", kT0}, {}));
    Must(store_->ChangeTeamMembers("org-a", "t1", {{"m2"}, {}}, "admin-a"));
    Must(store_->ChangeTeamMembers("org-a", "t2", {{"m2"}, {}}, "admin-a"));
    Must(store_->ChangeTeamMembers("org-a", "t2", {{"m3"}, {}}, "admin-a"));
    Must(store_->ChangeTeamMembers("org-b", "tb", {{"mb"}, {}}, "admin-a"));
    for (int i = 1; i <= 6; ++i) {
      Must(store_->CreateConnection(MakeConnection("org-a", Id(i), "c" + std::to_string(i))));
    }
    Must(store_->CreateConnection(MakeConnection("org-b", Id(100), "b")));
  }

  static void Must(const Status& s) {
    if (!s.ok()) throw std::runtime_error(s.error().message);
  }

  std::string GrantCount() { return Raw("SELECT count(*) FROM grants"); }

  // The connection ids a member sees, one keyset page of `limit` at a time; checks `total`.
  std::vector<std::string> Visible(const std::string& member, int limit,
                                   bool include_archived = false) {
    ListQuery q;
    q.organization_id = "org-a";
    q.limit = limit;
    q.include_archived = include_archived;
    q.visible_to_member = member;
    return WalkPages(
        q, [&](const ListQuery& page) { return store_->ListConnections(page); },
        [](const domain::Connection& c) { return c.connection_id; },
        [](ListQuery& next, const domain::Connection& last) {
          next.after = ListCursor{last.name, last.created_at, last.connection_id};
        });
  }
};

INSTANTIATE_TEST_SUITE_P(, StoreGrantsContractTest,
                         testing::Values(Backend::kSqlite, Backend::kPostgres), BackendName);

// ---- teams ---------------------------------------------------------------------------------

TEST_P(StoreGrantsContractTest, TeamsAndMembership) {
  auto t = store_->GetTeam("org-a", "t1", nullptr);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->organization_id, "org-a");
  EXPECT_EQ(t->name, "Team 1");
  EXPECT_EQ(t->created_at, kT0);
  EXPECT_EQ(store_->GetTeam("org-a", "t-none", nullptr).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->CreateTeam({"t9", "org-none", "x", kT0}, {}).error().code,
            ErrorCode::kNotFound);
  EXPECT_EQ(store_->CreateTeam({"t1", "org-a", "again", kT0}, {}).error().code,
            ErrorCode::kConflict);

  // Adding twice is not an error and adds no row.
  ASSERT_TRUE(store_->ChangeTeamMembers("org-a", "t1", {{"m2"}, {}}, "admin-a").ok());
  EXPECT_EQ(Raw("SELECT count(*) FROM team_members WHERE team_id = 't1'"), "1");
  EXPECT_EQ(store_->ChangeTeamMembers("org-a", "t-none", {{"m1"}, {}}, "admin-a").error().code,
            ErrorCode::kNotFound);
  EXPECT_EQ(store_->ChangeTeamMembers("org-a", "t1", {{"m-none"}, {}}, "admin-a").error().code,
            ErrorCode::kBadRequest);
  Status cross = store_->ChangeTeamMembers("org-a", "t1", {{"mb"}, {}}, "admin-a");
  ASSERT_FALSE(cross.ok());
  EXPECT_EQ(cross.error().code, ErrorCode::kBadRequest);
  EXPECT_EQ(Raw("SELECT count(*) FROM team_members WHERE member_id = 'mb'"), "1");
}

// ---- upsert --------------------------------------------------------------------------------

TEST_P(StoreGrantsContractTest, GrantingAgainChangesThePermissionWithoutDuplicating) {
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

TEST_P(StoreGrantsContractTest, DuplicateGranteeWithinABatchLastOneWins) {
  ASSERT_TRUE(store_
                  ->UpsertGrants("org-a", Id(1),
                                 {ToMember("g1", "m1", "usage"), ToTeam("g2", "t1", "annotate"),
                                  ToMember("g3", "m1", "annotate"), ToTeam("g4", "t1", "usage")})
                  .ok());
  EXPECT_EQ(GrantCount(), "2");
  EXPECT_EQ(Raw("SELECT permission FROM grants WHERE member_id = 'm1'"), "annotate");
  EXPECT_EQ(Raw("SELECT permission FROM grants WHERE team_id = 't1'"), "usage");
}

TEST_P(StoreGrantsContractTest, BatchWithOneUnknownGranteeCreatesNothing) {
  ASSERT_TRUE(store_->UpsertGrants("org-a", Id(1), {ToMember("g0", "m3", "usage")}).ok());
  Status s = store_->UpsertGrants("org-a", Id(1),
                                  {ToMember("g1", "m1"), ToMember("g0b", "m3", "annotate"),
                                   ToMember("g2", "ghost"), ToMember("g3", "ghost-2")});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kBadRequest);
  EXPECT_EQ(s.error().message, "member ghost is not a member of this organization");
  EXPECT_EQ(GrantCount(), "1");
  // The earlier change of the batch rolled back too.
  EXPECT_EQ(Raw("SELECT permission FROM grants WHERE member_id = 'm3'"), "usage");

  s = store_->UpsertGrants("org-a", Id(1), {ToTeam("g4", "t1"), ToTeam("g5", "t-ghost")});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kBadRequest);
  EXPECT_EQ(s.error().message, "team t-ghost is not a team of this organization");
  EXPECT_EQ(GrantCount(), "1");
}

TEST_P(StoreGrantsContractTest, CrossOrganizationGrantsAreRefused) {
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

TEST_P(StoreGrantsContractTest, MalformedGrantsAreBadRequests) {
  Grant both = ToMember("g1", "m1");
  both.team_id = "t1";
  EXPECT_EQ(store_->UpsertGrants("org-a", Id(1), {both}).error().code, ErrorCode::kBadRequest);
  Grant neither = ToMember("g1", "m1");
  neither.member_id.reset();
  EXPECT_EQ(store_->UpsertGrants("org-a", Id(1), {neither}).error().code, ErrorCode::kBadRequest);
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

TEST_P(StoreGrantsContractTest, ListPagesByCreationThenIdWithKeysetOrOffset) {
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

TEST_P(StoreGrantsContractTest, DeleteOnlyOnItsConnectionInItsOrganization) {
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

TEST_P(StoreGrantsContractTest, HasGrantDirectlyOrThroughATeam) {
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

TEST_P(StoreGrantsContractTest, ListingShowsOnlyGrantedConnectionsWithTheirTotal) {
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

// A non-admin's total counts what their grants reach, as their pages do: a team's grants stop
// counting when the team is archived, and all of them when the member is deactivated.
TEST_P(StoreGrantsContractTest, NonAdminTotalFollowsGrantsTeamsAndMemberState) {
  ASSERT_TRUE(store_->UpsertGrants("org-a", Id(1), {ToMember("g1", "m2")}).ok());
  ASSERT_TRUE(store_->UpsertGrants("org-a", Id(2), {ToTeam("g2", "t1")}).ok());
  ASSERT_TRUE(
      store_->UpsertGrants("org-a", Id(3), {ToTeam("g3a", "t1"), ToTeam("g3b", "t2")}).ok());
  ASSERT_TRUE(
      store_->UpsertGrants("org-a", Id(4), {ToTeam("g4", "t2"), ToMember("g4m", "m2")}).ok());
  using V = std::vector<std::string>;
  EXPECT_EQ(Visible("m2", 2), (V{Id(1), Id(2), Id(3), Id(4)}));
  ListQuery q;
  q.organization_id = "org-a";
  q.visible_to_member = "m2";
  q.search = "c3";
  EXPECT_EQ(store_->ListConnections(q)->total, 1);
  q.search = "c";
  EXPECT_EQ(store_->ListConnections(q)->total, 4);
  // A short term reads only the grants' rows: not refused however large the organization.
  Raw("INSERT INTO connection_counts (organization_id, type, is_archived, shard, connections)"
      " VALUES ('org-a', 'snowflake', false, 99, 20000)");
  EXPECT_EQ(store_->ListConnections(q)->total, 4);

  ASSERT_TRUE(store_->ArchiveTeam("org-a", "t1", "admin-a", kT0 + 1).ok());
  EXPECT_EQ(Visible("m2", 2), (V{Id(1), Id(3), Id(4)}));
  EXPECT_EQ(store_->ListConnections(q)->total, 3);

  Raw("UPDATE members SET is_inactive = true WHERE member_id = 'm2'");
  EXPECT_EQ(Visible("m2", 2), V{});
  EXPECT_EQ(store_->ListConnections(q)->total, 0);
}

// Grants of another organization never leak into a listing, even on a shared member id.
TEST_P(StoreGrantsContractTest, VisibilityStaysWithinTheOrganization) {
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

// ---- members and teams (contract section 12) -----------------------------------------------

// A member with every field set, active, made by admin-a.
Member NewMember(const std::string& id, const std::string& org, const std::string& email,
                 const std::string& account_type = "viewer") {
  Member m;
  m.member_id = id;
  m.organization_id = org;
  m.email = email;
  m.account_type = account_type;
  m.created_at = m.updated_at = kT0;
  m.first_name = "First " + id;
  m.last_name = "Last";
  m.created_by = m.updated_by = "admin-a";
  return m;
}

Team NewTeam(const std::string& id, const std::string& org, const std::string& name) {
  Team t;
  t.team_id = id;
  t.organization_id = org;
  t.name = name;
  t.created_at = t.updated_at = kT0;
  t.created_by = t.updated_by = "admin-a";
  return t;
}

domain::MemberChange Change(std::optional<std::string> account_type,
                            std::optional<bool> archived = std::nullopt,
                            std::optional<bool> inactive = std::nullopt) {
  domain::MemberChange c;
  c.account_type = std::move(account_type);
  c.is_archived = archived;
  c.is_inactive = inactive;
  return c;
}

// org-a: admin-a (admin) and viewers m1, m2; org-b: admin-b. Clients c-<member> of each.
class StoreMembersContractTest : public StoreContractTest {
 protected:
  void SetUp() override {
    StoreContractTest::SetUp();
    if (HasFatalFailure()) return;
    for (const Member& m :
         {NewMember("admin-a", "org-a", "Admin@A.example", "admin"),
          NewMember("m1", "org-a", "m1@a.example"), NewMember("m2", "org-a", "m2@a.example"),
          NewMember("admin-b", "org-b", "admin@b.example", "admin")}) {
      Must(store_->CreateMember(m, {}));
      Must(store_->CreateApiClient({"c-" + m.member_id, m.member_id, "h", kT0, std::nullopt}));
    }
  }

  static void Must(const Status& s) {
    if (!s.ok()) throw std::runtime_error(s.error().message);
  }

  // Defined below, by the tests of races.
  void RaceDeactivation(const std::function<void(const std::string&)>& prepare,
                        const std::function<Status(const std::string&)>& issue);

  Result<Member> Update(const std::string& member_id, const domain::MemberChange& change,
                        const std::string& org = "org-a") {
    return store_->UpdateMember(org, member_id, change, "admin-a", kT0 + 10);
  }

  std::vector<std::string> MemberIds(MemberListQuery q, int limit) {
    q.limit = limit;
    return WalkPages(
        q, [&](const MemberListQuery& page) { return store_->ListMembers(page); },
        [](const Member& m) { return m.member_id; },
        [](MemberListQuery& next, const Member& last) {
          next.after = MemberCursor{domain::FoldName(last.email), last.member_id};
        });
  }
};

INSTANTIATE_TEST_SUITE_P(, StoreMembersContractTest,
                         testing::Values(Backend::kSqlite, Backend::kPostgres), BackendName);

TEST_P(StoreMembersContractTest, MemberRoundTripsEveryFieldWithinItsOrganization) {
  Member m = NewMember("m9", "org-a", "Nine@Example.com", "explorer");
  m.first_name = "Zoë \"q\"";
  m.last_name = "";
  m.is_inactive = true;
  ASSERT_TRUE(store_->CreateMember(m, {}).ok());
  auto got = store_->GetMember("org-a", "m9");
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(*got, m);
  EXPECT_EQ(*store_->GetMember("m9"), m);  // TokenStore: any organization's
  EXPECT_EQ(store_->GetMember("org-b", "m9").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->CreateMember(NewMember("m9", "org-a", "x@y.z"), {}).error().code,
            ErrorCode::kConflict);
  EXPECT_EQ(store_->CreateMember(NewMember("m8", "org-none", "x@y.z"), {}).error().code,
            ErrorCode::kNotFound);
}

TEST_P(StoreMembersContractTest, TwoActiveMembersOfAnOrganizationNeverShareAnEmail) {
  auto taken = store_->CreateMember(NewMember("m3", "org-a", "M1@A.EXAMPLE"), {});
  EXPECT_EQ(taken.error().code, ErrorCode::kConflict);
  EXPECT_TRUE(store_->CreateMember(NewMember("mb2", "org-b", "m1@a.example"), {}).ok());
  // A change of email to a taken one changes nothing.
  domain::MemberChange to_m1;
  to_m1.email = "m1@A.example";
  to_m1.first_name = "Renamed";
  EXPECT_EQ(Update("m2", to_m1).error().code, ErrorCode::kConflict);
  EXPECT_EQ(store_->GetMember("org-a", "m2")->first_name, "First m2");
  // A member that is not active frees its address; reactivating it once taken is refused.
  ASSERT_TRUE(Update("m1", Change(std::nullopt, true)).ok());
  ASSERT_TRUE(store_->CreateMember(NewMember("m3", "org-a", "m1@a.example"), {}).ok());
  EXPECT_EQ(Update("m1", Change(std::nullopt, false)).error().code, ErrorCode::kConflict);
  EXPECT_TRUE(store_->GetMember("org-a", "m1")->is_archived);
  ASSERT_TRUE(Update("m3", Change(std::nullopt, std::nullopt, true)).ok());
  EXPECT_TRUE(Update("m1", Change(std::nullopt, false)).ok());
}

TEST_P(StoreMembersContractTest, UpdateAppliesTheChangeAndAnEmptyOneChangesNothing) {
  domain::MemberChange c;
  c.account_type = "creator";
  c.first_name = "Ann";
  c.last_name = "Lee";
  c.email = "ann@a.example";
  auto next = Update("m1", c);
  ASSERT_TRUE(next.ok()) << next.error().message;
  EXPECT_EQ(next->account_type, "creator");
  EXPECT_EQ(next->updated_at, kT0 + 10);
  EXPECT_EQ(*store_->GetMember("org-a", "m1"), *next);
  auto same = store_->UpdateMember("org-a", "m1", domain::MemberChange{}, "m2", kT0 + 99);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, *next);
  EXPECT_EQ(Update("m1", c, "org-b").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(Update("m-none", c).error().code, ErrorCode::kNotFound);
}

TEST_P(StoreMembersContractTest, TheLastActiveAdminIsNeverDemotedArchivedOrDeactivated) {
  for (const auto& change :
       {Change("viewer"), Change(std::nullopt, true), Change(std::nullopt, std::nullopt, true)}) {
    EXPECT_EQ(Update("admin-a", change).error().code, ErrorCode::kConflict);
  }
  EXPECT_TRUE(store_->GetMember("org-a", "admin-a")->IsActiveAdmin());
  // Another organization's admin does not count; an inactive admin does not either.
  Member idle = NewMember("idle", "org-a", "idle@a.example", "admin");
  idle.is_inactive = true;
  ASSERT_TRUE(store_->CreateMember(idle, {}).ok());
  EXPECT_EQ(Update("admin-a", Change("viewer")).error().code, ErrorCode::kConflict);
  // With a second active admin, the first may go; then the second is the last.
  ASSERT_TRUE(Update("m1", Change("admin")).ok());
  ASSERT_TRUE(Update("admin-a", Change("viewer")).ok());
  EXPECT_EQ(Update("m1", Change(std::nullopt, true)).error().code, ErrorCode::kConflict);
  // Changes that keep the admin an active admin pass.
  domain::MemberChange rename;
  rename.first_name = "Still admin";
  EXPECT_TRUE(Update("m1", rename).ok());
  EXPECT_TRUE(Update("idle", Change(std::nullopt, true)).ok());  // not an active admin
}

TEST_P(StoreMembersContractTest, DeactivationKillsTheMembersTokensAndClientsUntilReactivated) {
  ASSERT_TRUE(store_
                  ->SaveTokenPair({"a1", "c-m1", "m1", "org-a", kT0 + 3600, "f1"},
                                  {"r1", "f1", "c-m1", "m1", "org-a", kT0 + kDay})
                  .ok());
  ASSERT_TRUE(store_->SaveAccessToken({"a2", "c-m2", "m2", "org-a", kT0 + 3600, ""}).ok());
  ASSERT_TRUE(store_->ResolveAccessToken("a1", kT0).ok());
  for (const auto& off : {Change(std::nullopt, true), Change(std::nullopt, std::nullopt, true)}) {
    ASSERT_TRUE(Update("m1", off).ok());
    EXPECT_EQ(store_->ResolveAccessToken("a1", kT0).error().code, ErrorCode::kNotFound);
    EXPECT_EQ(store_->GetActiveApiClient("c-m1").error().code, ErrorCode::kNotFound);
    EXPECT_EQ(store_
                  ->RotateRefreshToken("r1", "", kT0, {"a3", "", "", "", kT0 + 3600, ""},
                                       {"r3", "", "", "", "", kT0 + kDay})
                  .error()
                  .code,
              ErrorCode::kNotFound);
    EXPECT_EQ(Raw("SELECT count(*) FROM access_tokens WHERE member_id = 'm1'"), "0");
    EXPECT_EQ(Raw("SELECT count(*) FROM refresh_tokens WHERE member_id = 'm1'"), "0");
    // Another member's tokens are untouched.
    EXPECT_TRUE(store_->ResolveAccessToken("a2", kT0).ok());
    ASSERT_TRUE(Update("m1", Change(std::nullopt, false, false)).ok());
    EXPECT_TRUE(store_->GetActiveApiClient("c-m1").ok());
    ASSERT_TRUE(store_
                    ->SaveTokenPair({"a1", "c-m1", "m1", "org-a", kT0 + 3600, "f1"},
                                    {"r1", "f1", "c-m1", "m1", "org-a", kT0 + kDay})
                    .ok());
    EXPECT_TRUE(store_->ResolveAccessToken("a1", kT0).ok());
  }
  // No token is saved for the client of an inactive member (a token endpoint that looked the
  // client up before the deactivation committed), so none revives when it is reactivated.
  ASSERT_TRUE(Update("m2", Change(std::nullopt, true)).ok());
  EXPECT_EQ(store_->SaveAccessToken({"a4", "c-m2", "m2", "org-a", kT0 + 3600, ""}).error().code,
            ErrorCode::kNotFound);
  EXPECT_EQ(store_
                ->SaveTokenPair({"a5", "c-m2", "m2", "org-a", kT0 + 3600, "f5"},
                                {"r5", "f5", "c-m2", "m2", "org-a", kT0 + kDay})
                .error()
                .code,
            ErrorCode::kNotFound);
  ASSERT_TRUE(Update("m2", Change(std::nullopt, false)).ok());
  EXPECT_EQ(store_->ResolveAccessToken("a4", kT0).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->ResolveAccessToken("a5", kT0).error().code, ErrorCode::kNotFound);
}

TEST_P(StoreMembersContractTest, GrantsApplyOnlyFromActiveMembersAndUnarchivedTeams) {
  Create(MakeConnection("org-a", Id(1), "direct"));
  Create(MakeConnection("org-a", Id(2), "through a team"));
  ASSERT_TRUE(store_->CreateTeam(NewTeam("t1", "org-a", "T1"), {"m1"}).ok());
  ASSERT_TRUE(store_->UpsertGrants("org-a", Id(1), {ToMember("g1", "m1")}).ok());
  ASSERT_TRUE(store_->UpsertGrants("org-a", Id(2), {ToTeam("g2", "t1")}).ok());
  auto visible = [&] {
    ListQuery q;
    q.organization_id = "org-a";
    q.visible_to_member = "m1";
    auto page = store_->ListConnections(q);
    EXPECT_TRUE(page.ok());
    std::vector<std::string> ids;
    for (const auto& c : page->entries) ids.push_back(c.connection_id);
    EXPECT_EQ(page->total, static_cast<std::int64_t>(ids.size()));
    const bool one = *store_->HasGrant("org-a", Id(1), "m1");
    const bool two = *store_->HasGrant("org-a", Id(2), "m1");
    EXPECT_EQ(one, std::count(ids.begin(), ids.end(), Id(1)) == 1);
    EXPECT_EQ(two, std::count(ids.begin(), ids.end(), Id(2)) == 1);
    return ids;
  };
  EXPECT_EQ(visible(), (std::vector<std::string>{Id(1), Id(2)}));
  ASSERT_TRUE(Update("m1", Change(std::nullopt, std::nullopt, true)).ok());
  EXPECT_TRUE(visible().empty());
  ASSERT_TRUE(Update("m1", Change(std::nullopt, std::nullopt, false)).ok());
  EXPECT_EQ(visible().size(), 2u);
  ASSERT_TRUE(store_->ChangeTeamMembers("org-a", "t1", {{}, {"m1"}}, "admin-a").ok());
  EXPECT_EQ(visible(), (std::vector<std::string>{Id(1)}));
  ASSERT_TRUE(store_->ChangeTeamMembers("org-a", "t1", {{"m1"}, {}}, "admin-a").ok());
  EXPECT_EQ(visible().size(), 2u);
  ASSERT_TRUE(store_->ArchiveTeam("org-a", "t1", "admin-a", kT0 + 5).ok());
  EXPECT_EQ(visible(), (std::vector<std::string>{Id(1)}));
  // The grants themselves stay: they are listed, and apply again once the member is back.
  EXPECT_EQ(store_->ListGrants("org-a", Id(2), 10, std::nullopt, 0)->total, 1);
}

TEST_P(StoreMembersContractTest, ListMembersPagesByFoldedEmailWithItsFilters) {
  for (int i = 0; i < 9; ++i) {
    Member m = NewMember("p" + std::to_string(i), "org-a",
                         (i % 2 ? "Page" : "page") + std::to_string(i) + "@a.example");
    m.last_name = i % 3 == 0 ? "Zed" : "Other";
    m.is_archived = i == 4;
    m.is_inactive = i == 5;
    ASSERT_TRUE(store_->CreateMember(m, {}).ok());
  }
  MemberListQuery q;
  q.organization_id = "org-a";
  q.include_archived = q.include_inactive = true;
  const auto all = MemberIds(q, 2);
  ASSERT_EQ(all.size(), 12u);
  EXPECT_EQ(all.front(), "admin-a");  // admin@a.example folded sorts first
  EXPECT_EQ(std::vector<std::string>(all.begin() + 3, all.end()),
            (std::vector<std::string>{"p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"}));
  EXPECT_EQ(MemberIds(q, 1000), all);
  // The offset form gives the same pages.
  q.limit = 4;
  q.offset = 4;
  auto page = store_->ListMembers(q);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->entries.size(), 4u);
  EXPECT_EQ(page->entries[0].member_id, all[4]);
  EXPECT_EQ(page->total, 12);
  q.offset = 0;
  q.include_archived = q.include_inactive = false;
  q.search = "page";
  EXPECT_EQ(MemberIds(q, 3).size(), 7u);
  q.include_inactive = true;
  EXPECT_EQ(MemberIds(q, 3).size(), 8u);
  q.search = "zed";
  q.include_archived = true;
  EXPECT_EQ(MemberIds(q, 3), (std::vector<std::string>{"p0", "p3", "p6"}));
  q.search = "first p7 other";  // the full name
  EXPECT_EQ(MemberIds(q, 3), (std::vector<std::string>{"p7"}));
  q.search.reset();
  q.email = "page7@a.example";
  EXPECT_EQ(MemberIds(q, 3), (std::vector<std::string>{"p7"}));
  q.organization_id = "org-b";
  EXPECT_TRUE(MemberIds(q, 3).empty());
}

TEST_P(StoreMembersContractTest, TeamsKeepActiveNamesUniqueAndArchivingFreesThem) {
  Team t = NewTeam("t1", "org-a", "Analysts");
  t.description = "The analysts";
  t.visibility = "public";
  ASSERT_TRUE(store_->CreateTeam(t, {"m2", "m1"}).ok());
  std::vector<std::string> members;
  auto got = store_->GetTeam("org-a", "t1", &members);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(*got, t);
  EXPECT_EQ(members, (std::vector<std::string>{"m1", "m2"}));
  EXPECT_EQ(store_->GetTeam("org-b", "t1", nullptr).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->CreateTeam(NewTeam("t2", "org-a", "ANALYSTS"), {}).error().code,
            ErrorCode::kConflict);
  EXPECT_TRUE(store_->CreateTeam(NewTeam("tb", "org-b", "Analysts"), {}).ok());
  // Members must be active members of the organization; nothing is created otherwise.
  EXPECT_EQ(store_->CreateTeam(NewTeam("t3", "org-a", "Three"), {"m1", "admin-b"}).error().code,
            ErrorCode::kBadRequest);
  EXPECT_EQ(store_->GetTeam("org-a", "t3", nullptr).error().code, ErrorCode::kNotFound);

  domain::TeamChange rename;
  rename.name = "Data";
  ASSERT_TRUE(store_->CreateTeam(NewTeam("t2", "org-a", "Data"), {}).ok());
  EXPECT_EQ(store_->UpdateTeam("org-a", "t1", rename, "admin-a", kT0 + 1).error().code,
            ErrorCode::kConflict);
  ASSERT_TRUE(store_->ArchiveTeam("org-a", "t2", "admin-a", kT0 + 2).ok());
  ASSERT_TRUE(store_->ArchiveTeam("org-a", "t2", "m1", kT0 + 3).ok());  // again: no change
  auto archived = store_->GetTeam("org-a", "t2", nullptr);
  ASSERT_TRUE(archived.ok());
  EXPECT_TRUE(archived->is_archived);
  EXPECT_EQ(archived->updated_at, kT0 + 2);
  auto renamed = store_->UpdateTeam("org-a", "t1", rename, "admin-a", kT0 + 4);
  ASSERT_TRUE(renamed.ok()) << renamed.error().message;
  EXPECT_EQ(renamed->name, "Data");
  EXPECT_EQ(store_->UpdateTeam("org-a", "t2", rename, "admin-a", kT0 + 5).error().code,
            ErrorCode::kConflict);  // archived
  EXPECT_EQ(store_->ChangeTeamMembers("org-a", "t2", {{"m1"}, {}}, "admin-a").error().code,
            ErrorCode::kConflict);
}

TEST_P(StoreMembersContractTest, TeamMembershipChangesAreAllOrNothing) {
  ASSERT_TRUE(store_->CreateTeam(NewTeam("t1", "org-a", "T"), {"m1"}).ok());
  EXPECT_EQ(
      store_->ChangeTeamMembers("org-a", "t1", {{"m2", "admin-b"}, {"m1"}}, "admin-a").error().code,
      ErrorCode::kBadRequest);
  std::vector<std::string> members;
  ASSERT_TRUE(store_->GetTeam("org-a", "t1", &members).ok());
  EXPECT_EQ(members, (std::vector<std::string>{"m1"}));
  ASSERT_TRUE(Update("m2", Change(std::nullopt, true)).ok());
  EXPECT_EQ(store_->ChangeTeamMembers("org-a", "t1", {{"m2"}, {}}, "admin-a").error().code,
            ErrorCode::kBadRequest);
  ASSERT_TRUE(store_->ChangeTeamMembers("org-a", "t1", {{"m1", "admin-a"}, {}}, "m1").ok());
  auto page = store_->ListTeamMembers("org-a", "t1", 1, std::nullopt, 0);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->total, 2);
  ASSERT_EQ(page->entries.size(), 1u);
  EXPECT_TRUE(page->has_more);
  EXPECT_EQ(page->entries[0].member_id, "admin-a");
  EXPECT_EQ(page->entries[0].added_by, "m1");
  page = store_->ListTeamMembers("org-a", "t1", 1, std::string("admin-a"), 0);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->entries.size(), 1u);
  EXPECT_FALSE(page->has_more);
  EXPECT_EQ(page->entries[0].member_id, "m1");
  EXPECT_EQ(page->entries[0].added_by, "admin-a");  // added first, by the team's creator
  EXPECT_EQ(store_->ListTeamMembers("org-b", "t1", 1, std::nullopt, 0).error().code,
            ErrorCode::kNotFound);
  // An inactive member may leave: taking access away is never refused.
  ASSERT_TRUE(Update("m1", Change(std::nullopt, std::nullopt, true)).ok());
  ASSERT_TRUE(store_->ChangeTeamMembers("org-a", "t1", {{}, {"m1"}}, "admin-a").ok());
  ASSERT_TRUE(store_->GetTeam("org-a", "t1", &members).ok());
  EXPECT_EQ(members, (std::vector<std::string>{"admin-a"}));
}

TEST_P(StoreMembersContractTest, ListTeamsFiltersActiveTeamsAndAMembersTeams) {
  for (int i = 0; i < 5; ++i) {
    Team t = NewTeam("t" + std::to_string(i), "org-a", "Team " + std::to_string(i));
    t.visibility = i % 2 ? "public" : "private";
    if (i == 3) t.description = "Blue";
    ASSERT_TRUE(
        store_->CreateTeam(t, i < 3 ? std::vector<std::string>{"m1"} : std::vector<std::string>{})
            .ok());
  }
  ASSERT_TRUE(store_->ArchiveTeam("org-a", "t2", "admin-a", kT0).ok());
  auto ids = [&](const TeamListQuery& q) {
    return WalkPages(
        q, [&](const TeamListQuery& page) { return store_->ListTeams(page); },
        [](const Team& t) { return t.team_id; },
        [](TeamListQuery& next, const Team& last) {
          next.after = TeamCursor{domain::FoldName(last.name), last.team_id};
        });
  };
  TeamListQuery q;
  q.organization_id = "org-a";
  q.limit = 2;
  EXPECT_EQ(ids(q), (std::vector<std::string>{"t0", "t1", "t3", "t4"}));
  EXPECT_EQ(store_->ListTeams(q)->total, 4);
  q.visibility = "public";
  EXPECT_EQ(ids(q), (std::vector<std::string>{"t1", "t3"}));
  q.visibility.reset();
  q.description = "blue";
  EXPECT_EQ(ids(q), (std::vector<std::string>{"t3"}));
  q.description.reset();
  q.name = "team 4";
  EXPECT_EQ(ids(q), (std::vector<std::string>{"t4"}));
  q.name.reset();
  q.member_id = "m1";
  EXPECT_EQ(ids(q), (std::vector<std::string>{"t0", "t1"}));
  EXPECT_EQ(store_->ListTeams(q)->total, 2);
}

TEST_P(StoreMembersContractTest, CreateMemberJoinsActiveTeamsAllOrNothing) {
  ASSERT_TRUE(store_->CreateTeam(NewTeam("t1", "org-a", "T1"), {}).ok());
  ASSERT_TRUE(store_->CreateTeam(NewTeam("t2", "org-a", "T2"), {}).ok());
  ASSERT_TRUE(store_->ArchiveTeam("org-a", "t2", "admin-a", kT0).ok());
  EXPECT_EQ(store_
                ->CreateMember(NewMember("m3", "org-a", "m3@a.example"),
                               {{"t1", "", true, "admin-a"}, {"t2", "", false, "admin-a"}})
                .error()
                .code,
            ErrorCode::kBadRequest);
  EXPECT_EQ(store_->GetMember("org-a", "m3").error().code, ErrorCode::kNotFound);
  ASSERT_TRUE(
      store_->CreateMember(NewMember("m3", "org-a", "m3@a.example"), {{"t1", "", true, "admin-a"}})
          .ok());
  auto page = store_->ListTeamMembers("org-a", "t1", 10, std::nullopt, 0);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->entries.size(), 1u);
  EXPECT_EQ(page->entries[0].member_id, "m3");
  EXPECT_TRUE(page->entries[0].is_team_admin);
}

// ---- members and teams: races between nodes -------------------------------------------------

// Runs `body(i)` on `threads` threads released together.
template <class Body>
void AtOnce(int threads, Body body) {
  std::atomic<int> ready{0};
  std::vector<std::thread> running;
  for (int i = 0; i < threads; ++i) {
    running.emplace_back([&, i] {
      ++ready;
      while (ready < threads) std::this_thread::yield();
      body(i);
    });
  }
  for (auto& t : running) t.join();
}

// Two admins demoting each other at once on two nodes: a check-then-write alone would let both
// pass at READ COMMITTED; the organization's row lock lets exactly one.
TEST_P(StoreMembersContractTest, ConcurrentMutualDemotionFromTwoStoresLetsExactlyOneWin) {
  std::unique_ptr<Store> other = backend_->Open();
  for (int round = 0; round < 10; ++round) {
    const std::string org = "org-r" + std::to_string(round);
    ASSERT_TRUE(store_->CreateOrganization({org, "R", kT0}).ok());
    const std::string x = "x" + std::to_string(round), y = "y" + std::to_string(round);
    ASSERT_TRUE(store_->CreateMember(NewMember(x, org, x + "@r", "admin"), {}).ok());
    ASSERT_TRUE(store_->CreateMember(NewMember(y, org, y + "@r", "admin"), {}).ok());
    std::atomic<int> ok{0}, refused{0};
    AtOnce(2, [&](int i) {
      auto r = (i == 0 ? *store_ : *other)
                   .UpdateMember(org, i == 0 ? y : x, Change("viewer"), i == 0 ? x : y, kT0);
      if (r.ok()) {
        ++ok;
      } else if (r.error().code == ErrorCode::kConflict) {
        ++refused;
      } else {
        ADD_FAILURE() << r.error().message;
      }
    });
    EXPECT_EQ(ok, 1);
    EXPECT_EQ(refused, 1);
    const int admins =
        store_->GetMember(org, x)->IsActiveAdmin() + store_->GetMember(org, y)->IsActiveAdmin();
    EXPECT_EQ(admins, 1);
  }
}

TEST_P(StoreMembersContractTest, ConcurrentCreatesOfOneEmailOrTeamNameFromTwoStoresCreateOne) {
  std::unique_ptr<Store> other = backend_->Open();
  constexpr int kThreads = 8;
  for (int round = 0; round < 3; ++round) {
    const std::string r = std::to_string(round);
    std::atomic<int> members_ok{0}, teams_ok{0};
    AtOnce(kThreads, [&](int i) {
      Store& s = i % 2 == 0 ? *store_ : *other;
      const std::string n = r + "-" + std::to_string(i);
      Status m = s.CreateMember(NewMember("race-m" + n, "org-a", "Race" + r + "@A.example"), {});
      Status t = s.CreateTeam(NewTeam("race-t" + n, "org-a", "Race team " + r), {});
      for (const Status* st : {&m, &t}) {
        if (!st->ok() && st->error().code != ErrorCode::kConflict)
          ADD_FAILURE() << st->error().message;
      }
      members_ok += m.ok();
      teams_ok += t.ok();
    });
    EXPECT_EQ(members_ok, 1);
    EXPECT_EQ(teams_ok, 1);
  }
  EXPECT_EQ(Raw("SELECT count(*) FROM members WHERE member_id LIKE 'race-m%'"), "3");
  EXPECT_EQ(Raw("SELECT count(*) FROM teams WHERE team_id LIKE 'race-t%'"), "3");
}

// Ten rounds of `issue(round)` on one store racing the deactivation of m1 on another (a token
// endpoint on one node, an admin on the other): whichever commits first, no token of m1 is left
// behind, so none revives when m1 is reactivated. `issue` may fail only as kNotFound (it came
// too late); `prepare(round)` runs before each race.
void StoreMembersContractTest::RaceDeactivation(
    const std::function<void(const std::string&)>& prepare,
    const std::function<Status(const std::string&)>& issue) {
  std::unique_ptr<Store> other = backend_->Open();
  for (int round = 0; round < 10; ++round) {
    const std::string r = std::to_string(round);
    prepare(r);
    AtOnce(2, [&](int i) {
      if (i == 0) {
        Status issued = issue(r);
        if (!issued.ok() && issued.error().code != ErrorCode::kNotFound) {
          ADD_FAILURE() << issued.error().message;
        }
      } else {
        auto off = other->UpdateMember("org-a", "m1", Change(std::nullopt, true), "admin-a", kT0);
        if (!off.ok()) ADD_FAILURE() << off.error().message;
      }
    });
    EXPECT_EQ(Raw("SELECT count(*) FROM access_tokens WHERE member_id = 'm1'"), "0");
    EXPECT_EQ(Raw("SELECT count(*) FROM refresh_tokens WHERE member_id = 'm1'"), "0");
    ASSERT_TRUE(Update("m1", Change(std::nullopt, false)).ok());
  }
}

// A refresh rotation racing the deactivation: the rotation share-locks the member row.
TEST_P(StoreMembersContractTest, ConcurrentRefreshAndDeactivationLeaveNoTokenBehind) {
  RaceDeactivation(
      [&](const std::string& r) {
        ASSERT_TRUE(store_
                        ->SaveTokenPair({"a" + r, "c-m1", "m1", "org-a", kT0 + 3600, "f" + r},
                                        {"r" + r, "f" + r, "c-m1", "m1", "org-a", kT0 + kDay})
                        .ok());
      },
      [&](const std::string& r) -> Status {
        auto rotated =
            store_->RotateRefreshToken("r" + r, "", kT0, {"na" + r, "", "", "", kT0 + 3600, ""},
                                       {"nr" + r, "", "", "", "", kT0 + kDay});
        if (!rotated.ok()) return std::move(rotated).error();
        return OkStatus();
      });
}

// A client credentials grant racing the deactivation (the token endpoint looked the client up
// before it): the save checks the client and member under share locks.
TEST_P(StoreMembersContractTest, ConcurrentTokenSaveAndDeactivationLeaveNoTokenBehind) {
  RaceDeactivation(
      [&](const std::string&) { ASSERT_TRUE(store_->GetActiveApiClient("c-m1").ok()); },
      [&](const std::string& r) {
        return store_->SaveTokenPair({"sa" + r, "c-m1", "m1", "org-a", kT0 + 3600, "sf" + r},
                                     {"sr" + r, "sf" + r, "c-m1", "m1", "org-a", kT0 + kDay});
      });
}

// ---- not per backend -----------------------------------------------------------------------

// OpenStore picks the backend by the url's scheme; each backend's own urls are tested in
// sqlite_store_test.cc and postgres_store_test.cc.
TEST(StoreOpen, RefusesOtherSchemesNamingTheKnownOnesWithoutEchoingThePassword) {
  try {
    OpenStore("mysql://u:secret@h/db");
    ADD_FAILURE() << "mysql accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("sqlite:PATH"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("postgresql://"), std::string::npos);
    EXPECT_EQ(std::string(e.what()).find("secret"), std::string::npos);
  }
}

}  // namespace
}  // namespace connreg::store
