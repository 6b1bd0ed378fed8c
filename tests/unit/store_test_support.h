// What the store tests share: the test data (ids, connections), a throwaway SQLite file, and a
// throwaway PostgreSQL database, with raw SQL access to each that bypasses the store.
//
// The PostgreSQL server: CONNREG_TEST_PG_URL when set (a role that may CREATE DATABASE; every
// test gets a database of its own), otherwise a private cluster started on first use from the
// Debian packages (/usr/lib/postgresql/15/bin), as the `postgres` OS user when running as root,
// listening on 127.0.0.1 on a free port, trust authentication, and stopped when the tests end.
// One such server serves the whole test binary. When no server can be had the tests fail; they
// never skip.
//
// Header-only (tests/CMakeLists.txt compiles tests/unit/*_test.cc and nothing else): everything
// is inline, so the shared server is one object however many test files include this.
#pragma once

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "domain/connection.h"
#include "store/migrations.h"
#include "store/postgres_store.h"
#include "store/sqlite_store.h"
#include "store/store.h"

namespace connreg::store::test_support {

inline constexpr TimeMs kT0 = 1655460205324;
inline constexpr TimeMs kDay = 24 * 3600 * 1000;

// ---- test data -----------------------------------------------------------------------------

// Zero-padded so that byte order equals numeric order.
inline std::string Id(int i) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012d", i);
  return buf;
}

inline domain::Connection MakeConnection(const std::string& org, const std::string& id,
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

// A grant to a member (or a team) by admin-a.
inline Grant ToMember(const std::string& grant_id, const std::string& member_id,
                      const std::string& permission = "usage", TimeMs at = kT0) {
  Grant g;
  g.grant_id = grant_id;
  g.member_id = member_id;
  g.permission = permission;
  g.created_by = g.updated_by = "admin-a";
  g.created_at = g.updated_at = at;
  return g;
}

inline Grant ToTeam(const std::string& grant_id, const std::string& team_id,
                    const std::string& permission = "usage", TimeMs at = kT0) {
  Grant g = ToMember(grant_id, "", permission, at);
  g.member_id.reset();
  g.team_id = team_id;
  return g;
}

// Runs `open` (which opens a store and pings it) on `openers` threads released together; returns
// how many failed, after recording each exception as a test failure.
inline int FailuresOpeningAtOnce(int openers, const std::function<bool()>& open) {
  std::atomic<int> ready{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < openers; ++i) {
    threads.emplace_back([&] {
      ++ready;
      while (ready < openers) std::this_thread::yield();
      try {
        if (!open()) ++failures;
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
        ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  return failures;
}

// Runs `threads` threads that each create `per_thread` connections in org-a (ids
// Id(thread * 1000 + i)), reading each back, listing a page and reading a server key after each;
// returns how many of those calls failed.
inline int ErrorsFromConcurrentReadersAndWriters(Store& store, int threads, int per_thread) {
  std::atomic<int> errors{0};
  std::vector<std::thread> running;
  for (int t = 0; t < threads; ++t) {
    running.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        const std::string id = Id(t * 1000 + i);
        if (!store.CreateConnection(MakeConnection("org-a", id, "n" + id)).ok()) ++errors;
        if (!store.GetConnection("org-a", id).ok()) ++errors;
        ListQuery q;
        q.organization_id = "org-a";
        q.limit = 10;
        if (!store.ListConnections(q).ok()) ++errors;
        if (!store.ServerKey("page-token").ok()) ++errors;
      }
    });
  }
  for (auto& t : running) t.join();
  return errors;
}

// Rows as a binary that knew only migration 1 wrote them, for the tests of migration 2:
// organization "org-a", viewer "m1", client "c1" with the access token "tok-v1" (no family),
// and connection `c1_id` named "Old" with its password sealed as the bytes 01 02 under key "k1".
// `bytes_0102` is the SQL literal of those bytes in the backend's dialect.
inline std::string Version1RowsSql(const std::string& c1_id, const std::string& bytes_0102) {
  return "INSERT INTO organizations VALUES ('org-a', 'A', 1);"
         "INSERT INTO members VALUES ('m1', 'org-a', 'a@b.c', 'viewer', 1);"
         "INSERT INTO api_clients VALUES ('c1', 'm1', 'h', 1, NULL);"
         "INSERT INTO access_tokens VALUES ('tok-v1', 'c1', 'm1', 'org-a', " +
         std::to_string(kT0 + 3600) +
         ");"
         "INSERT INTO connections (organization_id, connection_id, name, name_folded, type, "
         "is_sample, is_archived, use_oauth, write_access, use_friendly_names, created_by, "
         "updated_by, created_at, updated_at, last_active_at, version, details) VALUES "
         "('org-a', '" +
         c1_id +
         "', 'Old', 'old', 'snowflake', false, false, false, false, true, 'm1', 'm1', 1, 1, 1, 1, "
         "'{\"type\":\"snowflake\"}');"
         "INSERT INTO connection_secrets VALUES ('" +
         c1_id + "', 'password', " + bytes_0102 + ", 'k1', 1);";
}

// Checks a store just upgraded from a database holding Version1RowsSql(c1_id, ...): the old rows
// read as before, the old token (no family) still resolves, and the newer tables work on them.
inline void ExpectVersion1DataUpgraded(Store& store, const std::string& c1_id) {
  auto p = store.ResolveAccessToken("tok-v1", kT0);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->account_type, "viewer");
  auto c = store.GetConnection("org-a", c1_id);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->name, "Old");
  EXPECT_EQ(c->secrets.at("password").sealed, std::string("\x01\x02", 2));
  EXPECT_EQ(*store.SecretKeyIds(), (std::vector<std::string>{"k1"}));
  ASSERT_TRUE(store.CreateTeam({"t1", "org-a", "T", kT0}, {}).ok());
  ASSERT_TRUE(store.ChangeTeamMembers("org-a", "t1", {{"m1"}, {}}, "admin-a").ok());
  Grant g;
  g.grant_id = "g1";
  g.team_id = "t1";
  g.permission = "usage";
  g.created_by = g.updated_by = "m1";
  ASSERT_TRUE(store.UpsertGrants("org-a", c1_id, {g}).ok());
  EXPECT_TRUE(*store.HasGrant("org-a", c1_id, "m1"));
  ASSERT_TRUE(store
                  .SaveTokenPair({"a", "c1", "m1", "org-a", kT0 + 3600, "f"},
                                 {"r", "f", "c1", "m1", "org-a", kT0 + kDay})
                  .ok());
  ASSERT_TRUE(store.RevokeApiClient("c1", kT0).ok());
  EXPECT_EQ(store.ResolveAccessToken("tok-v1", kT0).error().code, ErrorCode::kNotFound);
}

// The schema as a binary that knew migrations 1 to `version` made it, in one transaction, in the
// text of one backend (&Migration::sqlite or &Migration::postgres).
inline std::string SchemaUpToSql(int version, std::string_view Migration::*text) {
  std::string sql = "BEGIN; " + std::string(MigrationsTable().*text) + ";";
  for (const Migration& m : Migrations()) {
    if (m.version > version) break;
    sql += std::string(m.*text) + "; INSERT INTO schema_migrations VALUES (" +
           std::to_string(m.version) + ", '" + std::string(m.name) + "', 0);";
  }
  return sql + " COMMIT;";
}

// Connections as a binary that knew migrations 1 to 5 wrote them, for the tests of migration 6
// (the listing's kept counts and search index): in org-a, two active snowflake connections
// ("Sales EU", "Sales US") and an archived postgres one ("Old sales"); in org-b, one.
inline std::string Version5ConnectionsSql() {
  std::string sql =
      "INSERT INTO organizations (organization_id, name, created_at) VALUES ('org-a', 'A', 1),"
      " ('org-b', 'B', 1);";
  const char* rows[][5] = {{"v5-1", "org-a", "Sales EU", "snowflake", "false"},
                           {"v5-2", "org-a", "Sales US", "snowflake", "false"},
                           {"v5-3", "org-a", "Old sales", "postgres", "true"},
                           {"v5-4", "org-b", "Sales B", "snowflake", "false"}};
  for (const auto& r : rows) {
    sql += std::string(
               "INSERT INTO connections (organization_id, connection_id, name, name_folded, "
               "type, is_sample, is_archived, use_oauth, write_access, use_friendly_names, "
               "created_by, updated_by, created_at, updated_at, last_active_at, version, "
               "details) VALUES ('") +
           r[1] + "', '" + r[0] + "', '" + r[2] + "', '" + domain::FoldName(r[2]) + "', '" + r[3] +
           "', false, " + r[4] + ", false, false, true, 'm1', 'm1', 1, 1, 1, 1, " +
           "'{\"type\":\"" + r[3] + "\"}');";
  }
  return sql;
}

// Checks a store just upgraded from a database holding Version5ConnectionsSql(): the totals
// (from the backfilled counts) and the search (from the rebuilt index) find the old rows, and
// the counts go on from there.
inline void ExpectVersion5ConnectionsCountedAndSearchable(Store& store) {
  ListQuery q;
  q.organization_id = "org-a";
  EXPECT_EQ(store.ListConnections(q)->total, 2);
  q.include_archived = true;
  EXPECT_EQ(store.ListConnections(q)->total, 3);
  q.type = "postgres";
  EXPECT_EQ(store.ListConnections(q)->total, 1);
  q.type.reset();
  q.search = "sales";
  auto page = store.ListConnections(q);
  ASSERT_TRUE(page.ok()) << page.error().message;
  ASSERT_EQ(page->entries.size(), 3u);
  EXPECT_EQ(page->total, 3);
  EXPECT_EQ(page->entries[0].connection_id, "v5-3");  // "Old sales" < "Sales EU" < "Sales US"
  q.search = "s u";
  page = store.ListConnections(q);
  ASSERT_TRUE(page.ok()) << page.error().message;
  ASSERT_EQ(page->entries.size(), 1u);
  EXPECT_EQ(page->entries[0].connection_id, "v5-2");
  EXPECT_EQ(page->total, 1);
  ASSERT_TRUE(store.CreateConnection(MakeConnection("org-a", "v6-1", "New sales")).ok());
  q.search.reset();
  EXPECT_EQ(store.ListConnections(q)->total, 4);
  q.organization_id = "org-b";
  EXPECT_EQ(store.ListConnections(q)->total, 1);
}

// Rows as a binary that knew migrations 1 to 3 wrote them, for the tests of migration 4 (members
// and teams, contract section 12): admin "m1" and viewer "m2" of "org-a", team "t1" holding m2.
inline std::string Version3MembersSql() {
  return "INSERT INTO organizations VALUES ('org-a', 'A', 1);"
         "INSERT INTO members VALUES ('m1', 'org-a', 'Ann.Lee@Example.com', 'admin', 5);"
         "INSERT INTO members VALUES ('m2', 'org-a', 'bob', 'viewer', 6);"
         "INSERT INTO teams VALUES ('t1', 'org-a', 'Old Team', 7);"
         "INSERT INTO team_members VALUES ('t1', 'm2');";
}

// Checks a store just upgraded from a database holding Version3MembersSql(): members read as
// Sigma's member object (first name the email's local part, made by the operator CLI), teams as
// Sigma's team, the folded columns serve the filters and the uniqueness rules, and explorer is
// an account type.
inline void ExpectVersion3MembersUpgraded(Store& store) {
  auto m1 = store.GetMember("org-a", "m1");
  ASSERT_TRUE(m1.ok()) << m1.error().message;
  EXPECT_EQ(m1->email, "Ann.Lee@Example.com");
  EXPECT_EQ(m1->first_name, "Ann.Lee");
  EXPECT_EQ(m1->last_name, "");
  EXPECT_EQ(m1->account_type, "admin");
  EXPECT_EQ(m1->created_by, "connreg-cli");
  EXPECT_EQ(m1->updated_by, "connreg-cli");
  EXPECT_EQ(m1->created_at, 5);
  EXPECT_EQ(m1->updated_at, 5);
  EXPECT_TRUE(m1->IsActiveAdmin());
  EXPECT_EQ(store.GetMember("org-a", "m2")->first_name, "bob");  // no '@': the whole address

  MemberListQuery by_email;
  by_email.organization_id = "org-a";
  by_email.email = "ann.lee@example.com";
  EXPECT_EQ(store.ListMembers(by_email)->total, 1);
  MemberListQuery by_name = by_email;
  by_name.email.reset();
  by_name.search = "ann.lee";
  EXPECT_EQ(store.ListMembers(by_name)->total, 1);
  Member twin = *m1;
  twin.member_id = "m3";
  EXPECT_EQ(store.CreateMember(twin, {}).error().code, ErrorCode::kConflict);

  domain::MemberChange to_viewer;
  to_viewer.account_type = "viewer";
  EXPECT_EQ(store.UpdateMember("org-a", "m1", to_viewer, "m1", kT0).error().code,
            ErrorCode::kConflict);  // the last active admin
  domain::MemberChange to_explorer;
  to_explorer.account_type = "explorer";
  auto m2 = store.UpdateMember("org-a", "m2", to_explorer, "m1", kT0);
  ASSERT_TRUE(m2.ok()) << m2.error().message;
  EXPECT_EQ(store.GetMember("org-a", "m2")->account_type, "explorer");

  std::vector<std::string> members;
  auto t1 = store.GetTeam("org-a", "t1", &members);
  ASSERT_TRUE(t1.ok()) << t1.error().message;
  EXPECT_EQ(t1->name, "Old Team");
  EXPECT_EQ(t1->visibility, "private");
  EXPECT_FALSE(t1->is_archived);
  EXPECT_EQ(t1->description, std::nullopt);
  EXPECT_EQ(t1->created_by, "connreg-cli");
  EXPECT_EQ(t1->updated_at, 7);
  EXPECT_EQ(members, (std::vector<std::string>{"m2"}));
  auto team_members = store.ListTeamMembers("org-a", "t1", 10, std::nullopt, 0);
  ASSERT_TRUE(team_members.ok()) << team_members.error().message;
  ASSERT_EQ(team_members->entries.size(), 1u);
  EXPECT_EQ(team_members->entries[0].added_by, "connreg-cli");
  EXPECT_FALSE(team_members->entries[0].is_team_admin);
  TeamListQuery by_team_name;
  by_team_name.organization_id = "org-a";
  by_team_name.name = "old team";
  EXPECT_EQ(store.ListTeams(by_team_name)->total, 1);
  Team twin_team = *t1;
  twin_team.team_id = "t2";
  twin_team.name = "OLD TEAM";
  EXPECT_EQ(store.CreateTeam(twin_team, {}).error().code, ErrorCode::kConflict);

  // The old membership grants through the team.
  const std::string c1 = Id(1);
  ASSERT_TRUE(store.CreateConnection(MakeConnection("org-a", c1, "c")).ok());
  ASSERT_TRUE(store.UpsertGrants("org-a", c1, {ToTeam("g1", "t1")}).ok());
  EXPECT_TRUE(*store.HasGrant("org-a", c1, "m2"));
}

// ---- SQLite --------------------------------------------------------------------------------

// A fresh directory, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::path(testing::TempDir()) / "connreg_store_test.XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Runs one SQL statement on the file at `path` directly, bypassing the store; returns the first
// column of every row as text, joined by ',' ("" when none). Throws on failure.
inline std::string SqliteRawSql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    sqlite3_close(db);
    throw std::runtime_error("open " + path);
  }
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    std::string msg = sqlite3_errmsg(db);
    sqlite3_close(db);
    throw std::runtime_error("prepare: " + msg);
  }
  std::string out;
  int rows = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (rows++ > 0) out += ',';
    if (sqlite3_column_text(st, 0) != nullptr) {
      out += reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  if (rc != SQLITE_DONE) throw std::runtime_error("step failed: " + sql);
  return out;
}

// Runs several statements (migration SQL) on the file at `path`; throws on failure.
inline void SqliteRawExec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    sqlite3_close(db);
    throw std::runtime_error("open " + path);
  }
  char* message = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message);
  std::string text = message != nullptr ? message : "";
  sqlite3_free(message);
  sqlite3_close(db);
  if (rc != SQLITE_OK) throw std::runtime_error("exec: " + text);
}

// ---- PostgreSQL ----------------------------------------------------------------------------

inline int Sh(const std::string& command) {
  const int rc = std::system(command.c_str());
  return rc == -1 ? -1 : WEXITSTATUS(rc);
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    throw std::runtime_error("cannot find a free port");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

// A PostgreSQL 15 cluster in a temporary directory, owned by the `postgres` OS user when the
// tests run as root (the server refuses to run as root).
class LocalPostgres {
 public:
  LocalPostgres() {
    std::string pattern = "/tmp/connreg_pg_test.XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    as_root_ = geteuid() == 0;
    if (as_root_) {
      const passwd* pw = getpwnam("postgres");
      if (pw == nullptr) throw std::runtime_error("no `postgres` OS user to run the server as");
      if (chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        throw std::runtime_error("cannot chown " + dir_);
      }
    }
    port_ = FreePort();
    // An ICU default collation (not byte order) shows that the store's COLLATE "C" is what
    // orders the listing; plain C.UTF-8 when this build has no ICU.
    const std::string initdb = kBin + "/initdb -D " + dir_ + "/data -U postgres -A trust -E UTF8";
    if (Sh(AsPostgres(initdb + " --locale=C.UTF-8 --locale-provider=icu --icu-locale=en-US") +
           " > " + dir_ + "/initdb.log 2>&1") != 0) {
      Sh("rm -rf " + dir_ + "/data");
      if (Sh(AsPostgres(initdb + " --locale=C.UTF-8") + " >> " + dir_ + "/initdb.log 2>&1") != 0) {
        throw std::runtime_error("initdb failed: " + ReadFile(dir_ + "/initdb.log"));
      }
    }
    Start();
  }

  ~LocalPostgres() {
    Stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  LocalPostgres(const LocalPostgres&) = delete;
  LocalPostgres& operator=(const LocalPostgres&) = delete;

  void Start() {
    const std::string options = "-p " + std::to_string(port_) +
                                " -c listen_addresses=127.0.0.1 -k " + dir_ +
                                " -c fsync=off -c synchronous_commit=off"
                                " -c full_page_writes=off -c max_connections=300";
    if (Sh(AsPostgres(kBin + "/pg_ctl -D " + dir_ + "/data -l " + dir_ +
                      "/server.log -w -t 60 -o '" + options + "' start") +
           " > /dev/null 2>&1") != 0) {
      throw std::runtime_error("pg_ctl start failed: " + ReadFile(dir_ + "/server.log"));
    }
    running_ = true;
  }

  void Stop() {
    if (!running_) return;
    Sh(AsPostgres(kBin + "/pg_ctl -D " + dir_ + "/data -m fast -w -t 60 stop") +
       " > /dev/null 2>&1");
    running_ = false;
  }

  std::string Url(const std::string& db) const {
    return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + db;
  }

 private:
  inline static const std::string kBin = "/usr/lib/postgresql/15/bin";

  std::string AsPostgres(const std::string& command) const {
    return as_root_ ? "runuser -u postgres -- " + command : command;
  }

  std::string dir_;
  bool as_root_ = false;
  int port_ = 0;
  bool running_ = false;
};

// The server every PostgreSQL test shares (but the reconnect test, which stops and restarts a
// server of its own), started on first use.
struct SharedPostgres {
  std::mutex mu;
  bool tried = false;
  std::unique_ptr<LocalPostgres> local;
  std::string base_url;  // a url of a database the tests can CREATE DATABASE from
  std::string error;
};

inline SharedPostgres& Shared() {
  static SharedPostgres* shared = new SharedPostgres();
  return *shared;
}

// Stops the shared server (if one was started) when the tests end.
class StopSharedPostgres : public testing::Environment {
 public:
  void TearDown() override {
    std::lock_guard lock(Shared().mu);
    Shared().local.reset();
  }
};
inline testing::Environment* const kStopSharedPostgres =
    testing::AddGlobalTestEnvironment(new StopSharedPostgres);

// "" and an explanation in `*error` when no server could be had.
inline std::string BaseUrl(std::string* error) {
  SharedPostgres& s = Shared();
  std::lock_guard lock(s.mu);
  if (!s.tried) {
    s.tried = true;
    if (const char* env = std::getenv("CONNREG_TEST_PG_URL"); env != nullptr && *env != '\0') {
      s.base_url = env;
    } else {
      try {
        s.local = std::make_unique<LocalPostgres>();
        s.base_url = s.local->Url("postgres");
      } catch (const std::exception& e) {
        s.error = std::string(
                      "cannot start a PostgreSQL server for the tests (set "
                      "CONNREG_TEST_PG_URL to use an existing one): ") +
                  e.what();
      }
    }
  }
  *error = s.error;
  return s.base_url;
}

// `url` with its database replaced by `db`.
inline std::string WithDatabase(const std::string& url, const std::string& db) {
  const auto scheme = url.find("://");
  const auto slash = url.find('/', scheme + 3);
  const auto query = url.find('?', scheme + 3);
  const std::string head = url.substr(0, std::min(slash, query));
  const std::string tail = query == std::string::npos ? "" : url.substr(query);
  return head + "/" + db + tail;
}

// `url` with the query parameter `param` ("name=value") added.
inline std::string WithQuery(const std::string& url, const std::string& param) {
  return url + (url.find('?') == std::string::npos ? "?" : "&") + param;
}

// Runs `sql` (no parameters; several statements run as one) on `url` directly, bypassing the
// store; returns the first column of every row of the last result as text, joined by ',' (""
// when none). Throws on failure.
inline std::string PostgresRawSql(const std::string& url, const std::string& sql) {
  PGconn* conn = PQconnectdb(url.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(conn);
    PQfinish(conn);
    throw std::runtime_error("connect: " + msg);
  }
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  PGresult* r = PQexec(conn, sql.c_str());
  const ExecStatusType st = PQresultStatus(r);
  std::string out;
  if (st == PGRES_TUPLES_OK) {
    for (int row = 0; row < PQntuples(r); ++row) {
      if (row > 0) out += ',';
      if (!PQgetisnull(r, row, 0)) out += PQgetvalue(r, row, 0);
    }
  }
  std::string msg = PQresultErrorMessage(r);
  PQclear(r);
  PQfinish(conn);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    throw std::runtime_error("exec: " + msg + " in " + sql);
  }
  return out;
}

// A fresh, empty database on the shared server; dropped on destruction. Throws when no server
// can be had.
class TestDatabase {
 public:
  TestDatabase() {
    std::string error;
    base_ = BaseUrl(&error);
    if (base_.empty()) throw std::runtime_error(error);
    static std::atomic<int> counter{0};
    name_ = "connreg_test_" + std::to_string(getpid()) + "_" + std::to_string(++counter);
    PostgresRawSql(base_, "DROP DATABASE IF EXISTS " + name_);
    PostgresRawSql(base_, "CREATE DATABASE " + name_);
    url_ = WithDatabase(base_, name_);
  }
  ~TestDatabase() {
    try {
      PostgresRawSql(base_, "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "cannot drop the test database %s: %s\n", name_.c_str(), e.what());
    }
  }
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  const std::string& url() const { return url_; }

 private:
  std::string base_;
  std::string name_;
  std::string url_;
};

// ---- both backends, for the tests written once for both ------------------------------------

enum class Backend { kSqlite, kPostgres };

inline std::string BackendName(const testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "Sqlite" : "Postgres";
}

// A fresh, empty database of one backend, dropped on destruction.
class TestBackend {
 public:
  virtual ~TestBackend() = default;
  // A new store on the database (the same file opened again, or another node); applies pending
  // migrations. Throws std::runtime_error as the store's constructor does.
  virtual std::unique_ptr<Store> Open() const = 0;
  // Runs `sql` on the database directly, bypassing the store: the first column of every row as
  // text, joined by ','. Throws on failure.
  virtual std::string Raw(const std::string& sql) const = 0;
};

class SqliteBackend final : public TestBackend {
 public:
  std::unique_ptr<Store> Open() const override { return std::make_unique<SqliteStore>(path_); }
  std::string Raw(const std::string& sql) const override {
    return test_support::SqliteRawSql(path_, sql);
  }

 private:
  test_support::TempDir dir_;
  std::string path_ = dir_.File("connreg.db");
};

class PostgresBackend final : public TestBackend {
 public:
  std::unique_ptr<Store> Open() const override {
    return std::make_unique<PostgresStore>(db_.url());
  }
  std::string Raw(const std::string& sql) const override {
    return test_support::PostgresRawSql(db_.url(), sql);
  }

 private:
  test_support::TestDatabase db_;  // throws when no server can be had
};

inline std::unique_ptr<TestBackend> NewBackend(Backend backend) {
  if (backend == Backend::kSqlite) return std::make_unique<SqliteBackend>();
  return std::make_unique<PostgresBackend>();
}

// A fresh database of the test's backend and a store on it. A subclass's SetUp calls this one
// first and returns when it failed (HasFatalFailure()).
class BackendTest : public testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    try {
      backend_ = NewBackend(GetParam());
      store_ = backend_->Open();
    } catch (const std::exception& e) {
      FAIL() << e.what();
    }
  }

  std::unique_ptr<TestBackend> backend_;
  std::unique_ptr<Store> store_;  // declared after backend_: closed before the database goes
};

}  // namespace connreg::store::test_support
