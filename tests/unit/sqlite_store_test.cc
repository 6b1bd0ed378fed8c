// What only the SQLite store has: its file (WAL mode, the directories a url names) and the
// migrations of that file. The behaviour it shares with the PostgreSQL store is tested once, on
// both, in store_contract_test.cc.
#include "store/sqlite_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>
#include <string>

#include "store/migrations.h"
#include "store/store.h"
#include "store_test_support.h"

namespace connreg::store {
namespace {

using test_support::FailuresOpeningAtOnce;
using test_support::Id;
using test_support::kT0;
using test_support::SqliteRawExec;
using test_support::SqliteRawSql;
using test_support::TempDir;

TEST(SqliteStoreFile, StaysInWalModeAcrossReopen) {
  TempDir dir;
  const std::string path = dir.File("connreg.db");
  { SqliteStore first(path); }
  SqliteStore reopened(path);
  EXPECT_TRUE(reopened.Ping().ok());
  EXPECT_EQ(SqliteRawSql(path, "PRAGMA journal_mode"), "wal");
}

TEST(SqliteStoreMigrations, AppliedOnceWhenTwoStoresOpenANewFileAtOnce) {
  const std::string latest = std::to_string(Migrations().back().version);
  for (int round = 0; round < 10; ++round) {
    TempDir dir;
    const std::string path = dir.File("race.db");
    EXPECT_EQ(FailuresOpeningAtOnce(2, [&] { return SqliteStore(path).Ping().ok(); }), 0);
    EXPECT_EQ(SqliteRawSql(path, "SELECT count(*) FROM schema_migrations"),
              std::to_string(Migrations().size()));
    EXPECT_EQ(SqliteRawSql(path, "SELECT max(version) FROM schema_migrations"), latest);
  }
}

// A database written by a binary that knew only migration 1 is upgraded in place.
TEST(SqliteStoreMigrations, Migration2UpgradesAVersion1DatabaseKeepingItsData) {
  ASSERT_GE(Migrations().size(), 2u);
  ASSERT_EQ(Migrations()[0].version, 1);
  TempDir dir;
  const std::string path = dir.File("v1.db");
  SqliteRawExec(path, "PRAGMA journal_mode = WAL; BEGIN; " + std::string(Migrations()[0].sqlite) +
                          "; CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name "
                          "TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT; "
                          "INSERT INTO schema_migrations VALUES (1, 'initial', 0); COMMIT;");
  const std::string c1 = Id(1);
  SqliteRawExec(path, test_support::Version1RowsSql(c1, "x'0102'"));
  EXPECT_EQ(SqliteRawSql(path, "SELECT max(version) FROM schema_migrations"), "1");

  SqliteStore store(path);
  EXPECT_EQ(SqliteRawSql(path, "SELECT max(version) FROM schema_migrations"),
            std::to_string(Migrations().back().version));
  EXPECT_EQ(SqliteRawSql(path, "SELECT count(*) FROM pragma_foreign_key_check"), "0");
  test_support::ExpectVersion1DataUpgraded(store, c1);
}

// Migration 4 rebuilds members (SQLite cannot change a CHECK in place) with foreign keys off:
// every row referencing a member still does, and the old rows read as section 12's objects.
TEST(SqliteStoreMigrations, Migration6CountsAndIndexesTheConnectionsOfAVersion5Database) {
  ASSERT_GE(Migrations().size(), 6u);
  ASSERT_EQ(Migrations()[5].version, 6);
  TempDir dir;
  const std::string path = dir.File("v5.db");
  SqliteRawExec(path, "PRAGMA journal_mode = WAL; " +
                          test_support::SchemaUpToSql(5, &Migration::sqlite) +
                          test_support::Version5ConnectionsSql());
  SqliteStore store(path);
  EXPECT_EQ(SqliteRawSql(path, "SELECT max(version) FROM schema_migrations"),
            std::to_string(Migrations().back().version));
  test_support::ExpectVersion5ConnectionsCountedAndSearchable(store);
  // The index agrees with the rows it indexes (FTS5 fails the command when it does not).
  EXPECT_NO_THROW(SqliteRawExec(path,
                                "INSERT INTO connections_search (connections_search, rank)"
                                " VALUES ('integrity-check', 1)"));
}

TEST(SqliteStoreMigrations, Migration4UpgradesAVersion3DatabaseKeepingItsMembersAndTeams) {
  ASSERT_GE(Migrations().size(), 4u);
  ASSERT_EQ(Migrations()[3].version, 4);
  TempDir dir;
  const std::string path = dir.File("v3.db");
  SqliteRawExec(path, "PRAGMA journal_mode = WAL; " +
                          test_support::SchemaUpToSql(3, &Migration::sqlite) +
                          test_support::Version3MembersSql());
  SqliteRawExec(path, "INSERT INTO api_clients VALUES ('c2', 'm2', 'h', 1, NULL);");
  EXPECT_EQ(SqliteRawSql(path, "SELECT max(version) FROM schema_migrations"), "3");

  SqliteStore store(path);
  EXPECT_EQ(SqliteRawSql(path, "SELECT max(version) FROM schema_migrations"),
            std::to_string(Migrations().back().version));
  EXPECT_EQ(SqliteRawSql(path, "SELECT count(*) FROM pragma_foreign_key_check"), "0");
  EXPECT_TRUE(store.GetActiveApiClient("c2").ok());
  // Foreign keys are on again on the connection that ran the rebuild (the writer).
  EXPECT_EQ(store.CreateApiClient({"c9", "no-such-member", "h", kT0, std::nullopt}).error().code,
            ErrorCode::kNotFound);
  test_support::ExpectVersion3MembersUpgraded(store);
}

TEST(SqliteStoreOpen, ParsesDatabaseUrls) {
  TempDir dir;
  const std::string nested = dir.File("a/b/c.db");
  auto store = OpenStore("sqlite:" + nested);
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->Ping().ok());
  EXPECT_TRUE(std::filesystem::exists(nested));
  // A PostgreSQL url that cannot be reached fails start-up without echoing its password.
  try {
    OpenStore("postgresql://u:secret@127.0.0.1:1/db?connect_timeout=1");
    ADD_FAILURE() << "unreachable postgresql accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).find("secret"), std::string::npos) << e.what();
  }
  EXPECT_THROW(OpenStore("sqlite:"), std::runtime_error);
}

}  // namespace
}  // namespace connreg::store
