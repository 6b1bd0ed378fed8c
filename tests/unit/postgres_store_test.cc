// What only the PostgreSQL store has, against a real server: a pool (waiting for a connection,
// giving up after the acquire timeout), recovery after a server restart, the retry of a
// deadlocked transaction, the refusal of a NUL in text, byte order whatever the database's
// collation, migrations under an advisory lock, and its urls. The behaviour it shares with the
// SQLite store (several stores on one database included) is tested once, on both, in
// store_contract_test.cc.
//
// The server: see store_test_support.h. The reconnect test always starts a cluster of its own,
// since it stops and restarts it.
#include "store/postgres_store.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "domain/connection.h"
#include "store/migrations.h"
#include "store/store.h"
#include "store_test_support.h"

namespace connreg::store {
namespace {

using Clock = std::chrono::steady_clock;
using test_support::FailuresOpeningAtOnce;
using test_support::Id;
using test_support::kT0;
using test_support::LocalPostgres;
using test_support::MakeConnection;
using test_support::PostgresRawSql;
using test_support::TestDatabase;
using test_support::ToMember;
using test_support::WithQuery;

// A fresh database holding organizations org-a and org-b, and a store on it.
class PostgresStoreTest : public testing::Test {
 protected:
  void SetUp() override {
    try {
      db_ = std::make_unique<TestDatabase>();
    } catch (const std::exception& e) {
      FAIL() << e.what();
    }
    url_ = db_->url();
    store_ = std::make_unique<PostgresStore>(url_);
    ASSERT_TRUE(store_->CreateOrganization({"org-a", "A", kT0}).ok());
    ASSERT_TRUE(store_->CreateOrganization({"org-b", "B", kT0}).ok());
  }

  void Create(const domain::Connection& c) {
    Status s = store_->CreateConnection(c);
    ASSERT_TRUE(s.ok()) << s.error().message;
  }

  std::string Raw(const std::string& sql) { return PostgresRawSql(url_, sql); }

  std::unique_ptr<TestDatabase> db_;
  std::string url_;
  std::unique_ptr<PostgresStore> store_;  // declared after db_: closed before the database goes
};

// ---- the pool ------------------------------------------------------------------------------

// Many threads reading and writing through a pool smaller than their number: they wait for a
// connection rather than fail.
TEST_F(PostgresStoreTest, ConcurrentReadersAndWritersShareASmallPool) {
  PostgresOptions options;
  options.pool_size = 3;
  PostgresStore small(url_, options);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  EXPECT_EQ(test_support::ErrorsFromConcurrentReadersAndWriters(small, kThreads, kPerThread), 0);
  ListQuery q;
  q.organization_id = "org-a";
  EXPECT_EQ(store_->ListConnections(q)->total, kThreads * kPerThread);
  EXPECT_LE(std::stoi(Raw("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                          "'connreg' AND datname = current_database()")),
            3 + 8 + 1);  // small's pool, store_'s (at most 8), and no leak
}

TEST_F(PostgresStoreTest, ExhaustedPoolAnswersUnavailableWithinTheAcquireTimeout) {
  for (const auto& [query, timeout] :
       {std::pair<std::string, std::chrono::milliseconds>{"pool_size=1&pool_timeout_ms=300",
                                                          std::chrono::milliseconds(300)},
        std::pair<std::string, std::chrono::milliseconds>{"pool_size=1",
                                                          std::chrono::milliseconds(2000)}}) {
    SCOPED_TRACE(query);
    PostgresStore one(WithQuery(url_, query));
    ASSERT_EQ(one.acquire_timeout(), timeout);
    auto hold = one.HoldConnectionForTest();
    ASSERT_TRUE(hold.ok()) << hold.error().message;
    // Another caller, on another thread, waits the acquire timeout and gives up.
    Result<Organization> got = Error::Internal("not run");
    Clock::duration waited{};
    std::thread other([&] {
      const auto t0 = Clock::now();
      got = one.GetOrganization("org-a");
      waited = Clock::now() - t0;
    });
    other.join();
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.error().code, ErrorCode::kUnavailable);
    EXPECT_EQ(got.error().message, "the database connection pool is exhausted");
    EXPECT_GE(waited, timeout - std::chrono::milliseconds(5));
    EXPECT_LT(waited, timeout + std::chrono::milliseconds(1000));
    std::printf("[          ] pool exhausted after %lld ms (acquire timeout %lld ms)\n",
                static_cast<long long>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()),
                static_cast<long long>(timeout.count()));
    // A waiter gets the connection as soon as it comes back.
    std::thread late([&] {
      const auto t0 = Clock::now();
      got = one.GetOrganization("org-a");
      waited = Clock::now() - t0;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    hold->reset();
    late.join();
    ASSERT_TRUE(got.ok()) << got.error().message;
    EXPECT_EQ(got->name, "A");
    EXPECT_GE(waited, std::chrono::milliseconds(90));
  }
}

// ---- values and order ----------------------------------------------------------------------

// A value pasted into SQL would have broken on quotes (store_contract_test.cc round-trips them);
// a NUL in a text value is refused rather than cut short.
TEST_F(PostgresStoreTest, TextWithANulIsRefused) {
  Status nul = store_->CreateOrganization({std::string("org\0x", 5), "x", kT0});
  ASSERT_FALSE(nul.ok());
  EXPECT_EQ(nul.error().code, ErrorCode::kBadRequest);
}

// The listing is in byte order whatever the database's default collation (the local test
// cluster's is ICU en-US, where 'a' sorts before 'B').
TEST_F(PostgresStoreTest, ListingIsInByteOrderWhateverTheDefaultCollation) {
  const std::string default_order = Raw("SELECT 'a' < 'B'");
  std::printf("[          ] default collation: %s ('a' < 'B' is %s)\n",
              Raw("SELECT coalesce(daticulocale, datcollate) FROM pg_database "
                  "WHERE datname = current_database()")
                  .c_str(),
              default_order.c_str());
  for (const char* name : {"a", "B", "b", "A", "_x", "Z"}) {
    Create(MakeConnection("org-a", Id(static_cast<int>(name[0])), name));
  }
  ListQuery q;
  q.organization_id = "org-a";
  q.limit = 2;
  std::vector<std::string> names;
  for (;;) {
    auto page = store_->ListConnections(q);
    ASSERT_TRUE(page.ok()) << page.error().message;
    for (const auto& c : page->entries) names.push_back(c.name);
    if (!page->has_more) break;
    const auto& last = page->entries.back();
    q.after = ListCursor{last.name, last.created_at, last.connection_id};
  }
  EXPECT_EQ(names, (std::vector<std::string>{"A", "B", "Z", "_x", "a", "b"}));
}

// ---- transactions --------------------------------------------------------------------------

// A session of its own on `url`, for holding locks across statements.
class RawSession {
 public:
  explicit RawSession(const std::string& url) : conn_(PQconnectdb(url.c_str())) {
    if (PQstatus(conn_) != CONNECTION_OK) throw std::runtime_error(PQerrorMessage(conn_));
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
  }
  ~RawSession() { PQfinish(conn_); }
  // "" when the statement succeeded, else the error message.
  std::string Exec(const std::string& sql) {
    PGresult* r = PQexec(conn_, sql.c_str());
    const ExecStatusType st = PQresultStatus(r);
    std::string error =
        st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? "" : PQresultErrorMessage(r);
    PQclear(r);
    return error;
  }

 private:
  PGconn* conn_;
};

// A deadlock between a store transaction and another session: the server aborts the store's
// transaction (it waited first, so its deadlock check runs first) with 40P01, and the store
// runs it again, which then succeeds. Without the retry the call would fail.
TEST_F(PostgresStoreTest, DeadlockedTransactionIsRetried) {
  ASSERT_TRUE(store_->CreateMember({"m1", "org-a", "m1@a", "viewer", kT0}, {}).ok());
  ASSERT_TRUE(store_->CreateMember({"m2", "org-a", "m2@a", "viewer", kT0}, {}).ok());
  Create(MakeConnection("org-a", Id(1), "c"));
  ASSERT_TRUE(store_
                  ->UpsertGrants("org-a", Id(1),
                                 {ToMember("g1", "m1", "usage"), ToMember("g2", "m2", "usage")})
                  .ok());
  const std::string deadlocks_sql =
      "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()";
  const long long deadlocks_before = std::stoll(Raw(deadlocks_sql));

  RawSession other(url_);
  ASSERT_EQ(other.Exec("BEGIN"), "");
  ASSERT_EQ(other.Exec("UPDATE grants SET updated_by = 'other' WHERE grant_id = 'g2'"), "");
  // The store locks g1, then waits for g2.
  Status upsert = Error::Internal("not run");
  std::thread store_thread([&] {
    upsert = store_->UpsertGrants(
        "org-a", Id(1), {ToMember("x1", "m1", "annotate"), ToMember("x2", "m2", "annotate")});
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // The other session now waits for g1: a cycle, which the store's session detects first.
  EXPECT_EQ(other.Exec("UPDATE grants SET updated_by = 'other' WHERE grant_id = 'g1'"), "");
  EXPECT_EQ(other.Exec("COMMIT"), "");
  store_thread.join();
  ASSERT_TRUE(upsert.ok()) << upsert.error().message;
  EXPECT_EQ(Raw("SELECT string_agg(permission || '/' || updated_by, ',' ORDER BY grant_id) "
                "FROM grants"),
            "annotate/admin-a,annotate/admin-a");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // statistics are flushed late
  EXPECT_GE(std::stoll(Raw(deadlocks_sql)) - deadlocks_before, 1);
}

// ---- migrations ----------------------------------------------------------------------------

// Three stores starting together on a fresh database: each migration is applied once, under an
// advisory lock that every starter releases.
TEST(PostgresStoreMigrations, AppliedOnceWhenTwoStoresOpenAFreshDatabaseAtOnce) {
  const std::string latest = std::to_string(Migrations().back().version);
  for (int round = 0; round < 5; ++round) {
    std::unique_ptr<TestDatabase> db;
    try {
      db = std::make_unique<TestDatabase>();
    } catch (const std::exception& e) {
      FAIL() << e.what();
    }
    EXPECT_EQ(FailuresOpeningAtOnce(3, [&] { return PostgresStore(db->url()).Ping().ok(); }), 0);
    EXPECT_EQ(PostgresRawSql(db->url(), "SELECT count(*) FROM schema_migrations"),
              std::to_string(Migrations().size()));
    EXPECT_EQ(PostgresRawSql(db->url(), "SELECT max(version) FROM schema_migrations"), latest);
    // The migration lock was released by every starter.
    EXPECT_EQ(
        PostgresRawSql(db->url(), "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"),
        "0");
  }
}

// A database written by a binary that knew only migration 1 is upgraded in place.
TEST(PostgresStoreMigrations, Migration2UpgradesAVersion1DatabaseKeepingItsData) {
  ASSERT_GE(Migrations().size(), 2u);
  ASSERT_FALSE(Migrations()[0].postgres.empty());
  std::unique_ptr<TestDatabase> db;
  try {
    db = std::make_unique<TestDatabase>();
  } catch (const std::exception& e) {
    FAIL() << e.what();
  }
  const std::string url = db->url();
  PostgresRawSql(url,
                 "BEGIN; " + std::string(Migrations()[0].postgres) +
                     "; CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT "
                     "NOT NULL, applied_at BIGINT NOT NULL); "
                     "INSERT INTO schema_migrations VALUES (1, 'initial', 0); COMMIT;");
  const std::string c1 = Id(1);
  PostgresRawSql(url, test_support::Version1RowsSql(c1, "'\\x0102'::bytea"));
  EXPECT_EQ(PostgresRawSql(url, "SELECT max(version) FROM schema_migrations"), "1");

  PostgresStore store(url);
  EXPECT_EQ(PostgresRawSql(url, "SELECT max(version) FROM schema_migrations"),
            std::to_string(Migrations().back().version));
  test_support::ExpectVersion1DataUpgraded(store, c1);
}

TEST(PostgresStoreMigrations, Migration6CountsAndIndexesTheConnectionsOfAVersion5Database) {
  ASSERT_GE(Migrations().size(), 6u);
  ASSERT_EQ(Migrations()[5].version, 6);
  std::unique_ptr<TestDatabase> db;
  try {
    db = std::make_unique<TestDatabase>();
  } catch (const std::exception& e) {
    FAIL() << e.what();
  }
  const std::string url = db->url();
  PostgresRawSql(url, test_support::SchemaUpToSql(5, &Migration::postgres));
  PostgresRawSql(url, test_support::Version5ConnectionsSql());
  PostgresStore store(url);
  EXPECT_EQ(PostgresRawSql(url, "SELECT max(version) FROM schema_migrations"),
            std::to_string(Migrations().back().version));
  EXPECT_EQ(PostgresRawSql(url, "SELECT to_regclass('connections_by_trigram') IS NOT NULL"), "t");
  test_support::ExpectVersion5ConnectionsCountedAndSearchable(store);
}

// A managed server may refuse CREATE EXTENSION: here a role without CREATE on its database, which
// pg_trgm (a trusted extension) needs, gets the refusal a real server gives (42501). The store
// starts without the trigram index and the same searches scan, with the same results.
TEST(PostgresStoreSearch, WithoutTheRightToCreateExtensionsSearchScansWithTheSameResults) {
  std::string error;
  const std::string base = test_support::BaseUrl(&error);
  ASSERT_FALSE(base.empty()) << error;
  const std::string role = "connreg_no_ext_" + std::to_string(getpid());
  struct DropRole {  // after the database (declared before it): the role owns its tables
    ~DropRole() {
      try {
        PostgresRawSql(base, "DROP ROLE IF EXISTS " + role);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "cannot drop role %s: %s\n", role.c_str(), e.what());
      }
    }
    std::string base, role;
  } drop_role{base, role};
  std::unique_ptr<TestDatabase> db;
  try {
    db = std::make_unique<TestDatabase>();
  } catch (const std::exception& e) {
    FAIL() << e.what();
  }
  PostgresRawSql(db->url(),
                 "DROP ROLE IF EXISTS " + role + "; CREATE ROLE " + role +
                     " LOGIN PASSWORD 'no-ext'; GRANT USAGE, CREATE ON SCHEMA public TO " + role);
  {
    PostgresStore store(WithQuery(db->url(), "user=" + role + "&password=no-ext"));
    EXPECT_EQ(PostgresRawSql(db->url(),
                             "SELECT count(*) FROM pg_extension"
                             " WHERE extname = 'pg_trgm'"),
              "0");
    EXPECT_EQ(PostgresRawSql(db->url(), "SELECT to_regclass('connections_by_trigram') IS NULL"),
              "t");
    EXPECT_EQ(PostgresRawSql(db->url(), "SELECT max(version) FROM schema_migrations"),
              std::to_string(Migrations().back().version));
    ASSERT_TRUE(store.CreateOrganization({"org-a", "A", kT0}).ok());
    const char* names[] = {"Sales EU", "sales_us", "100% sales", "Finance", "Ünïcode sales"};
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(store.CreateConnection(MakeConnection("org-a", Id(i + 1), names[i])).ok());
    }
    auto ids = [&](const std::string& search) {
      ListQuery q;
      q.organization_id = "org-a";
      q.search = search;
      auto page = store.ListConnections(q);
      EXPECT_TRUE(page.ok()) << page.error().message;
      std::vector<std::string> out;
      if (!page.ok()) return out;
      for (const auto& e : page->entries) out.push_back(e.connection_id);
      EXPECT_EQ(page->total, static_cast<std::int64_t>(out.size()));
      return out;
    };
    using V = std::vector<std::string>;
    EXPECT_EQ(ids("sales"), (V{Id(3), Id(1), Id(2), Id(5)}));
    EXPECT_EQ(ids("s_u"), (V{Id(2)}));
    EXPECT_EQ(ids("0% "), (V{Id(3)}));
    EXPECT_EQ(ids("ünï"), V{});  // folding is ASCII-only: Ü stays Ü
    EXPECT_EQ(ids("Ünï"), (V{Id(5)}));
    EXPECT_EQ(ids("e"), (V{Id(3), Id(4), Id(1), Id(2), Id(5)}));
  }
}

// Migration 4 alters members and teams in place; the old rows read as section 12's objects.
TEST(PostgresStoreMigrations, Migration4UpgradesAVersion3DatabaseKeepingItsMembersAndTeams) {
  ASSERT_GE(Migrations().size(), 4u);
  ASSERT_EQ(Migrations()[3].version, 4);
  std::unique_ptr<TestDatabase> db;
  try {
    db = std::make_unique<TestDatabase>();
  } catch (const std::exception& e) {
    FAIL() << e.what();
  }
  const std::string url = db->url();
  PostgresRawSql(url, test_support::SchemaUpToSql(3, &Migration::postgres));
  PostgresRawSql(url, test_support::Version3MembersSql());
  EXPECT_EQ(PostgresRawSql(url, "SELECT max(version) FROM schema_migrations"), "3");

  PostgresStore store(url);
  EXPECT_EQ(PostgresRawSql(url, "SELECT max(version) FROM schema_migrations"),
            std::to_string(Migrations().back().version));
  test_support::ExpectVersion3MembersUpgraded(store);
}

// ---- urls ----------------------------------------------------------------------------------

TEST(PostgresStoreOpen, OpensPostgresUrlsWithoutEchoingPasswords) {
  std::unique_ptr<TestDatabase> db;
  try {
    db = std::make_unique<TestDatabase>();
  } catch (const std::exception& e) {
    FAIL() << e.what();
  }
  auto store = OpenStore(db->url());
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->Ping().ok());
  // postgres:// is the same scheme; the pool parameters are the store's, not libpq's.
  std::string alias = db->url();
  alias.replace(0, std::string("postgresql").size(), "postgres");
  auto store2 = OpenStore(WithQuery(alias, "pool_size=2&pool_timeout_ms=100"));
  auto* pg = dynamic_cast<PostgresStore*>(store2.get());
  ASSERT_NE(pg, nullptr);
  EXPECT_EQ(pg->pool_size(), 2);
  EXPECT_EQ(pg->acquire_timeout(), std::chrono::milliseconds(100));
  EXPECT_TRUE(store2->Ping().ok());

  // Unreachable (nothing listens on port 1): a quick failure naming the server, not the
  // password.
  const auto t0 = Clock::now();
  try {
    OpenStore("postgresql://u:s3cr%25etpw@127.0.0.1:1/db");
    ADD_FAILURE() << "unreachable server accepted";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find("s3cr"), std::string::npos) << what;
    EXPECT_NE(what.find("127.0.0.1"), std::string::npos) << what;
  }
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));
  for (const std::string bad : {"postgresql://u:s3cr%zzetpw@127.0.0.1:1/db",
                                "postgresql://u:s3cretpw@127.0.0.1:1/db?pool_size=x",
                                "postgresql://u:s3cretpw@127.0.0.1:1/db?bogus=1"}) {
    try {
      OpenStore(bad);
      ADD_FAILURE() << "accepted a bad url";
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(std::string(e.what()).find("s3cr"), std::string::npos) << e.what();
    }
  }
}

// ---- a server restart ----------------------------------------------------------------------

long long Ms(Clock::duration d) {
  return static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

// Stops the server under a live store, checks that calls fail fast with kUnavailable, starts it
// again and checks that the same store object works again, without being re-created.
TEST(PostgresStoreReconnect, RecoversAfterTheServerRestarts) {
  std::unique_ptr<LocalPostgres> server;
  try {
    server = std::make_unique<LocalPostgres>();
  } catch (const std::exception& e) {
    FAIL() << "cannot start a private PostgreSQL server: " << e.what();
  }
  PostgresStore store(WithQuery(server->Url("postgres"), "pool_size=4"));
  ASSERT_TRUE(store.CreateOrganization({"org-a", "A", kT0}).ok());
  ASSERT_TRUE(store.CreateConnection(MakeConnection("org-a", Id(1), "before")).ok());
  // Reads connection `id` on four threads at once: several pooled connections, all idle after.
  auto fill_pool = [&store](const std::string& id) {
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&] { EXPECT_TRUE(store.GetConnection("org-a", id).ok()); });
    }
    for (auto& t : threads) t.join();
  };
  fill_pool(Id(1));

  // 1. Server down: every kind of call fails quickly with kUnavailable.
  server->Stop();
  auto t0 = Clock::now();
  auto got = store.GetConnection("org-a", Id(1));
  const auto first_failure = Clock::now() - t0;
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, ErrorCode::kUnavailable) << got.error().message;
  t0 = Clock::now();
  Status ping = store.Ping();
  const auto ping_failure = Clock::now() - t0;
  ASSERT_FALSE(ping.ok());
  EXPECT_EQ(ping.error().code, ErrorCode::kUnavailable) << ping.error().message;
  t0 = Clock::now();
  Status write = store.CreateConnection(MakeConnection("org-a", Id(2), "while down"));
  const auto write_failure = Clock::now() - t0;
  ASSERT_FALSE(write.ok());
  EXPECT_EQ(write.error().code, ErrorCode::kUnavailable) << write.error().message;
  EXPECT_EQ(store.ResolveAccessToken("t", kT0).error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(store.ServerKey("k").error().code, ErrorCode::kUnavailable);
  EXPECT_LT(first_failure, std::chrono::seconds(3));
  EXPECT_LT(ping_failure, std::chrono::seconds(3));
  EXPECT_LT(write_failure, std::chrono::seconds(3));

  // 2. Server back: the same store works again.
  server->Start();
  t0 = Clock::now();
  got = store.GetConnection("org-a", Id(1));
  const auto first_success = Clock::now() - t0;
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->name, "before");
  EXPECT_TRUE(store.Ping().ok());
  ASSERT_TRUE(store.CreateConnection(MakeConnection("org-a", Id(2), "after")).ok());

  // 3. A restart between two calls, with connections idle in the pool: the next call does not
  // even see it (the dead connections are noticed and replaced).
  fill_pool(Id(2));
  server->Stop();
  server->Start();
  t0 = Clock::now();
  got = store.GetConnection("org-a", Id(2));
  const auto after_bounce = Clock::now() - t0;
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->name, "after");
  Status write_after_bounce = store.CreateConnection(MakeConnection("org-a", Id(3), "bounced"));
  EXPECT_TRUE(write_after_bounce.ok()) << write_after_bounce.error().message;
  EXPECT_TRUE(store.Ping().ok());
  std::printf(
      "[          ] server down: read failed in %lld ms, ping in %lld ms, write in %lld ms; "
      "server up again: first read ok in %lld ms; read right after a restart ok in %lld ms\n",
      Ms(first_failure), Ms(ping_failure), Ms(write_failure), Ms(first_success), Ms(after_bounce));
}

}  // namespace
}  // namespace connreg::store
