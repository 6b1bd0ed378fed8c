// The PostgreSQL store against a real server: the essential SqliteStore tests ported, plus what
// only a client/server database has (several store instances as several nodes, a pool, a server
// restart).
//
// The server: CONNREG_TEST_PG_URL when set (a role that may CREATE DATABASE; every test gets a
// database of its own), otherwise a private cluster started on first use from the Debian
// packages (/usr/lib/postgresql/15/bin), as the `postgres` OS user when running as root,
// listening on 127.0.0.1 on a free port, trust authentication, and stopped when the tests end.
// The reconnect tests always start a cluster of their own, since they stop and restart it.
// When no server can be had the tests fail; they never skip.
#include "store/postgres_store.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <boost/json/serialize.hpp>

#include "domain/connection.h"
#include "store/migrations.h"
#include "store/store.h"

namespace connreg::store {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr TimeMs kT0 = 1655460205324;
constexpr TimeMs kDay = 24 * 3600 * 1000;

// ---- the server ----------------------------------------------------------------------------

int Sh(const std::string& command) {
  const int rc = std::system(command.c_str());
  return rc == -1 ? -1 : WEXITSTATUS(rc);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int FreePort() {
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
    fs::remove_all(dir_, ec);
  }

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

// The server every test but the reconnect ones shares, started on first use.
struct SharedServer {
  std::mutex mu;
  bool tried = false;
  std::unique_ptr<LocalPostgres> local;
  std::string base_url;  // a url of a database the tests can CREATE DATABASE from
  std::string error;
};

SharedServer& Shared() {
  static SharedServer* shared = new SharedServer();
  return *shared;
}

// Stops the shared server (if one was started) when the tests end.
class StopSharedServer : public testing::Environment {
 public:
  void TearDown() override {
    std::lock_guard lock(Shared().mu);
    Shared().local.reset();
  }
};
testing::Environment* const kStopSharedServer =
    testing::AddGlobalTestEnvironment(new StopSharedServer);

// "" and an explanation in `*error` when no server could be had.
std::string BaseUrl(std::string* error) {
  SharedServer& s = Shared();
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
std::string WithDatabase(const std::string& url, const std::string& db) {
  const auto scheme = url.find("://");
  const auto slash = url.find('/', scheme + 3);
  const auto query = url.find('?', scheme + 3);
  const std::string head = url.substr(0, std::min(slash, query));
  const std::string tail = query == std::string::npos ? "" : url.substr(query);
  return head + "/" + db + tail;
}

// Runs `sql` (no parameters) on `url` directly, bypassing the store; returns the first column of
// the first row as text ("" when none). Throws on failure.
std::string RawSql(const std::string& url, const std::string& sql) {
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
  if (st == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
    out = PQgetvalue(r, 0, 0);
  }
  std::string msg = PQresultErrorMessage(r);
  PQclear(r);
  PQfinish(conn);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    throw std::runtime_error("exec: " + msg + " in " + sql);
  }
  return out;
}

// A fresh, empty database for one test (or suite); dropped on destruction.
class TestDatabase {
 public:
  TestDatabase() {
    std::string error;
    base_ = BaseUrl(&error);
    if (base_.empty()) throw std::runtime_error(error);
    static std::atomic<int> counter{0};
    name_ = "connreg_test_" + std::to_string(getpid()) + "_" + std::to_string(++counter);
    RawSql(base_, "DROP DATABASE IF EXISTS " + name_);
    RawSql(base_, "CREATE DATABASE " + name_);
    url_ = WithDatabase(base_, name_);
  }
  ~TestDatabase() {
    try {
      RawSql(base_, "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    } catch (...) {
    }
  }
  const std::string& url() const { return url_; }

 private:
  std::string base_;
  std::string name_;
  std::string url_;
};

std::string WithQuery(const std::string& url, const std::string& param) {
  return url + (url.find('?') == std::string::npos ? "?" : "&") + param;
}

// ---- fixtures ------------------------------------------------------------------------------

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
  void TearDown() override {
    store_.reset();
    db_.reset();
  }

  void Create(const domain::Connection& c) {
    Status s = store_->CreateConnection(c);
    ASSERT_TRUE(s.ok()) << s.error().message;
  }

  std::string Raw(const std::string& sql) { return RawSql(url_, sql); }

  std::unique_ptr<TestDatabase> db_;
  std::string url_;
  std::unique_ptr<PostgresStore> store_;
};

// ---- connections ---------------------------------------------------------------------------

TEST_F(PostgresStoreTest, CreateThenGetRoundTripsEveryField) {
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

TEST_F(PostgresStoreTest, OptionalFieldsStayAbsent) {
  Create(MakeConnection("org-a", Id(1), "plain"));
  auto got = store_->GetConnection("org-a", Id(1));
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->timeout_secs.has_value());
  EXPECT_FALSE(got->description.has_value());
  EXPECT_FALSE(got->last_test.has_value());
  EXPECT_TRUE(got->secrets.empty());
  EXPECT_TRUE(got->use_friendly_names);
}

TEST_F(PostgresStoreTest, DuplicateIdIsConflictAndUnknownOrganizationIsNotFound) {
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

TEST_F(PostgresStoreTest, OtherOrganizationsConnectionIsNotFound) {
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

TEST_F(PostgresStoreTest, UpdateIsCompareAndSetOnVersion) {
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

TEST_F(PostgresStoreTest, UpdateReplacesSecretsExactly) {
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

TEST_F(PostgresStoreTest, FailedUpdateChangesNoSecret) {
  domain::Connection c = MakeConnection("org-a", Id(1), "s");
  c.secrets["password"] = {"p1", "k1", kT0};
  Create(c);
  domain::Connection next = c;
  next.version = 5;
  next.secrets.clear();
  ASSERT_FALSE(store_->UpdateConnection(next, 4).ok());
  EXPECT_EQ(store_->GetConnection("org-a", Id(1))->secrets.at("password").sealed, "p1");
}

TEST_F(PostgresStoreTest, CorruptJsonRowIsInternalNotAThrow) {
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
// 2,500 rows written once for the whole suite; the tests only read.
class PostgresStoreListTest : public testing::Test {
 protected:
  static constexpr int kRows = 2500;

  // Names repeat (ties broken by created_at, then id) in mixed case (byte order puts 'C' before
  // 'c', where the server's default ICU collation would not); a third of the rows are archived,
  // a fifth are postgres, every seventh has a secret.
  static void SetUpTestSuite() {
    try {
      db_ = new TestDatabase();
      store_ = new PostgresStore(db_->url());
    } catch (const std::exception& e) {
      *setup_error_ = e.what();
      return;
    }
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
    delete db_;
    store_ = nullptr;
    expected_ = nullptr;
    db_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(store_, nullptr) << *setup_error_;
    ASSERT_NE(expected_, nullptr);
  }

  static std::vector<domain::Connection> Expected(bool include_archived) {
    std::vector<domain::Connection> out;
    for (const auto& c : *expected_) {
      if (include_archived || !c.is_archived) out.push_back(c);
    }
    return out;
  }

  static inline TestDatabase* db_ = nullptr;
  static inline PostgresStore* store_ = nullptr;
  static inline std::vector<domain::Connection>* expected_ = nullptr;
  static inline std::string* setup_error_ = new std::string();
};

TEST_F(PostgresStoreListTest, WalksEveryPageWithoutSkipsOrRepeats) {
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

TEST_F(PostgresStoreListTest, FilteredWalkMatchesFilteredRows) {
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

TEST_F(PostgresStoreListTest, OffsetFormMatchesKeysetPages) {
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

TEST_F(PostgresStoreListTest, LimitIsClampedTo1000) {
  ListQuery q;
  q.organization_id = "org-a";
  q.include_archived = true;
  q.limit = 5000;
  auto page = store_->ListConnections(q);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->entries.size(), 1000u);
  EXPECT_TRUE(page->has_more);
}

TEST_F(PostgresStoreTest, KeysetWalkIsStableWhileRowsAreInserted) {
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

TEST_F(PostgresStoreTest, FiltersSearchTypeAndArchived) {
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

TEST_F(PostgresStoreTest, OrganizationsAndMembers) {
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

TEST_F(PostgresStoreTest, AccessTokensResolveOnlyWhileValid) {
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
  EXPECT_EQ(Raw("SELECT count(*) FROM access_tokens"), "2");
}

TEST_F(PostgresStoreTest, RevokingAClientKillsItsIssuedTokens) {
  ASSERT_TRUE(store_->CreateMember({"m1", "org-a", "a@b.c", "creator", kT0}).ok());
  ASSERT_TRUE(store_->CreateApiClient({"c1", "m1", "h", kT0, std::nullopt}).ok());
  ASSERT_TRUE(store_->SaveAccessToken({"tok", "c1", "m1", "org-a", kT0 + 3600}).ok());
  ASSERT_EQ(store_->ResolveAccessToken("tok", kT0)->account_type, "creator");
  Raw("UPDATE api_clients SET revoked_at = 1 WHERE client_id = 'c1'");
  EXPECT_EQ(store_->ResolveAccessToken("tok", kT0).error().code, ErrorCode::kNotFound);
}

TEST_F(PostgresStoreTest, RevokeApiClientKillsTokensAtOnceAndKeepsTheFirstTime) {
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

class PostgresStoreRefreshTest : public PostgresStoreTest {
 protected:
  void SetUp() override {
    PostgresStoreTest::SetUp();
    if (HasFatalFailure()) return;
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
                           const std::string& next_access, const std::string& next_refresh,
                           PostgresStore* store = nullptr) {
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

TEST_F(PostgresStoreRefreshTest, SavedPairSharesItsFamily) {
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
  EXPECT_EQ(Raw("SELECT family_id IS NULL FROM access_tokens WHERE token_hash = 'a5'"), "t");
}

TEST_F(PostgresStoreRefreshTest, RotationThenReuseRevokesTheWholeFamily) {
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
  EXPECT_EQ(Raw("SELECT family_id || '/' || client_id || '/' || member_id || '/' || "
                "organization_id || '/' || (used_at IS NULL) FROM refresh_tokens "
                "WHERE token_hash = 'r2'"),
            "fam/c1/m1/org-a/true");
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

TEST_F(PostgresStoreRefreshTest, AnotherClientsRefreshIsNotFoundAndChangesNothing) {
  auto wrong = Rotate("r1", "c2", kT0 + 10, "a2", "r2");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(Raw("SELECT used_at IS NULL FROM refresh_tokens WHERE token_hash = 'r1'"), "t");
  EXPECT_EQ(Count("access_tokens"), "1");
  EXPECT_EQ(Count("refresh_tokens"), "1");
  // Still good for its own client.
  EXPECT_TRUE(Rotate("r1", "c1", kT0 + 11, "a2", "r2").ok());
}

TEST_F(PostgresStoreRefreshTest, ExpiredUnknownOrRevokedIsNotFoundAndChangesNothing) {
  // Expiry is exclusive, as for access tokens.
  EXPECT_EQ(Rotate("r1", "", kT0 + kDay, "a2", "r2").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(Rotate("r-none", "", kT0, "a2", "r2").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(Raw("SELECT used_at IS NULL FROM refresh_tokens WHERE token_hash = 'r1'"), "t");
  EXPECT_EQ(Count("access_tokens"), "1");
  EXPECT_EQ(Count("refresh_tokens"), "1");

  Raw("UPDATE api_clients SET revoked_at = 1 WHERE client_id = 'c1'");
  EXPECT_EQ(Rotate("r1", "", kT0 + 1, "a2", "r2").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(Count("refresh_tokens"), "1");
}

TEST_F(PostgresStoreRefreshTest, ConcurrentRotationsOfOneTokenLetOneWinThenRevoke) {
  constexpr int kThreads = 8;
  PostgresStore other(url_);  // another node
  std::atomic<int> ok{0};
  std::atomic<int> conflict{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto p = Rotate("r1", "c1", kT0 + 10, "a-next-" + std::to_string(i),
                      "r-next-" + std::to_string(i), i % 2 == 0 ? &other : nullptr);
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

TEST_F(PostgresStoreRefreshTest, PurgeExpiredRemovesTokensAndOldIdempotencyKeys) {
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
  EXPECT_EQ(Raw("SELECT string_agg(token_hash, ',' ORDER BY token_hash) FROM access_tokens"),
            "a1,a2");
  EXPECT_EQ(Raw("SELECT string_agg(token_hash, ',' ORDER BY token_hash) FROM refresh_tokens"),
            "r1,r2");
  EXPECT_EQ(Raw("SELECT string_agg(key, ',') FROM idempotency_keys"), "k-new");
  // The used token, once expired, goes too.
  purged = store_->PurgeExpired(kT0 + kDay, kT0 - kDay);
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(*purged, 3);  // a1, a2, r1
  EXPECT_EQ(*store_->PurgeExpired(kT0 + kDay, kT0 - kDay), 0);
}

// ---- test results and key rotation ---------------------------------------------------------

TEST_F(PostgresStoreTest, RecordTestIsNotAChange) {
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

TEST_F(PostgresStoreTest, KeyRotationReadsBatchesAndResealsByCompareAndSet) {
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

TEST_F(PostgresStoreTest, SealedBytesCompareExactly) {
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

TEST_F(PostgresStoreTest, IdempotencyKeyCreatesOnceAndConflictsAfter) {
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

TEST_F(PostgresStoreTest, StaleIdempotencyRecordIsReplaced) {
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

TEST_F(PostgresStoreTest, PingAnswers) { EXPECT_TRUE(store_->Ping().ok()); }

TEST_F(PostgresStoreTest, ServerKeyIsStableAcrossInstancesAndPurposes) {
  auto k1 = store_->ServerKey("page-token");
  ASSERT_TRUE(k1.ok()) << k1.error().message;
  EXPECT_EQ(k1->size(), 32u);
  EXPECT_NE(*k1, std::string(32, '\0'));
  EXPECT_EQ(*store_->ServerKey("page-token"), *k1);

  PostgresStore other(url_);
  EXPECT_EQ(*other.ServerKey("page-token"), *k1);
  auto k2 = other.ServerKey("other");
  ASSERT_TRUE(k2.ok());
  EXPECT_NE(*k2, *k1);
  EXPECT_EQ(*store_->ServerKey("other"), *k2);
}

// ---- teams and grants ------------------------------------------------------------------------

domain::Connection MakeGrantsConnection(const std::string& org, const std::string& id,
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
class PostgresStoreGrantsTest : public testing::Test {
 protected:
  void SetUp() override {
    try {
      db_ = std::make_unique<TestDatabase>();
    } catch (const std::exception& e) {
      FAIL() << e.what();
    }
    url_ = db_->url();
    store_ = std::make_unique<PostgresStore>(url_);
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
      Must(store_->CreateConnection(MakeGrantsConnection("org-a", Id(i), "c" + std::to_string(i))));
    }
    Must(store_->CreateConnection(MakeGrantsConnection("org-b", Id(100), "b")));
  }

  static void Must(const Status& s) {
    if (!s.ok()) throw std::runtime_error(s.error().message);
  }

  void TearDown() override {
    store_.reset();
    db_.reset();
  }

  std::string GrantCount() { return RawSql(url_, "SELECT count(*) FROM grants"); }

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

  std::unique_ptr<TestDatabase> db_;
  std::string url_;
  std::unique_ptr<PostgresStore> store_;
};

// ---- teams ---------------------------------------------------------------------------------

TEST_F(PostgresStoreGrantsTest, TeamsAndMembership) {
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
  EXPECT_EQ(RawSql(url_, "SELECT count(*) FROM team_members WHERE team_id = 't1'"), "1");
  EXPECT_EQ(store_->AddTeamMember("t-none", "m1").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(store_->AddTeamMember("t1", "m-none").error().code, ErrorCode::kNotFound);
  Status cross = store_->AddTeamMember("t1", "mb");
  ASSERT_FALSE(cross.ok());
  EXPECT_EQ(cross.error().code, ErrorCode::kBadRequest);
  EXPECT_EQ(RawSql(url_, "SELECT count(*) FROM team_members WHERE member_id = 'mb'"), "1");
}

// ---- upsert --------------------------------------------------------------------------------

TEST_F(PostgresStoreGrantsTest, GrantingAgainChangesThePermissionWithoutDuplicating) {
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

TEST_F(PostgresStoreGrantsTest, DuplicateGranteeWithinABatchLastOneWins) {
  ASSERT_TRUE(store_
                  ->UpsertGrants("org-a", Id(1),
                                 {ToMember("g1", "m1", "usage"), ToTeam("g2", "t1", "annotate"),
                                  ToMember("g3", "m1", "annotate"), ToTeam("g4", "t1", "usage")})
                  .ok());
  EXPECT_EQ(GrantCount(), "2");
  EXPECT_EQ(RawSql(url_, "SELECT permission FROM grants WHERE member_id = 'm1'"), "annotate");
  EXPECT_EQ(RawSql(url_, "SELECT permission FROM grants WHERE team_id = 't1'"), "usage");
}

TEST_F(PostgresStoreGrantsTest, BatchWithOneUnknownGranteeCreatesNothing) {
  ASSERT_TRUE(store_->UpsertGrants("org-a", Id(1), {ToMember("g0", "m3", "usage")}).ok());
  Status s = store_->UpsertGrants("org-a", Id(1),
                                  {ToMember("g1", "m1"), ToMember("g0b", "m3", "annotate"),
                                   ToMember("g2", "ghost"), ToMember("g3", "ghost-2")});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kBadRequest);
  EXPECT_EQ(s.error().message, "member ghost is not a member of this organization");
  EXPECT_EQ(GrantCount(), "1");
  // The earlier change of the batch rolled back too.
  EXPECT_EQ(RawSql(url_, "SELECT permission FROM grants WHERE member_id = 'm3'"), "usage");

  s = store_->UpsertGrants("org-a", Id(1), {ToTeam("g4", "t1"), ToTeam("g5", "t-ghost")});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kBadRequest);
  EXPECT_EQ(s.error().message, "team t-ghost is not a team of this organization");
  EXPECT_EQ(GrantCount(), "1");
}

TEST_F(PostgresStoreGrantsTest, CrossOrganizationGrantsAreRefused) {
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

TEST_F(PostgresStoreGrantsTest, MalformedGrantsAreBadRequests) {
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

TEST_F(PostgresStoreGrantsTest, ListPagesByCreationThenIdWithKeysetOrOffset) {
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

TEST_F(PostgresStoreGrantsTest, DeleteOnlyOnItsConnectionInItsOrganization) {
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

TEST_F(PostgresStoreGrantsTest, HasGrantDirectlyOrThroughATeam) {
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

TEST_F(PostgresStoreGrantsTest, ListingShowsOnlyGrantedConnectionsWithTheirTotal) {
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
TEST_F(PostgresStoreGrantsTest, VisibilityStaysWithinTheOrganization) {
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

// ---- several nodes -------------------------------------------------------------------------

TEST_F(PostgresStoreTest, ServerKeyCreatedOnceUnderRaceBetweenNodes) {
  PostgresStore other(url_);
  std::vector<std::string> keys(8);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto k = (i % 2 == 0 ? *store_ : other).ServerKey("race");
      if (k.ok()) keys[i] = *k;
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& k : keys) EXPECT_EQ(k, keys[0]);
  EXPECT_EQ(keys[0].size(), 32u);
  EXPECT_EQ(Raw("SELECT count(*) FROM server_keys"), "1");
}

// The compare-and-set holds across nodes: of updates racing from the same version, one wins.
TEST_F(PostgresStoreTest, ConcurrentUpdatesFromTwoNodesLetExactlyOneWin) {
  PostgresStore other(url_);
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
        Status s = (i % 2 == 0 ? *store_ : other).UpdateConnection(next, 1);
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

TEST_F(PostgresStoreTest, ConcurrentIdempotentCreatesOnOneKeyCreateOnce) {
  PostgresStore other(url_);
  constexpr int kThreads = 8;
  std::atomic<int> ok{0};
  std::atomic<int> conflict{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      IdempotentResponse r{"h", 201, "{}", "/x", kT0};
      Status s = (i % 2 == 0 ? *store_ : other)
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

// Many threads reading and writing through a pool smaller than their number: they wait for a
// connection rather than fail.
TEST_F(PostgresStoreTest, ConcurrentReadersAndWritersShareASmallPool) {
  PostgresOptions options;
  options.pool_size = 3;
  PostgresStore small(url_, options);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string id = Id(t * 1000 + i);
        if (!small.CreateConnection(MakeConnection("org-a", id, "n" + id)).ok()) ++errors;
        if (!small.GetConnection("org-a", id).ok()) ++errors;
        ListQuery q;
        q.organization_id = "org-a";
        q.limit = 10;
        if (!small.ListConnections(q).ok()) ++errors;
        if (!small.ServerKey("page-token").ok()) ++errors;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors, 0);
  ListQuery q;
  q.organization_id = "org-a";
  EXPECT_EQ(store_->ListConnections(q)->total, kThreads * kPerThread);
  EXPECT_LE(std::stoi(RawSql(url_,
                             "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                             "'connreg' AND datname = current_database()")),
            3 + 8 + 1);  // small's pool, store_'s (at most 8), and no leak
}

TEST_F(PostgresStoreTest, DataSurvivesReopen) {
  domain::Connection c = MakeConnection("org-a", Id(1), "durable");
  c.secrets["password"] = {"p", "k", kT0};
  Create(c);
  store_.reset();
  PostgresStore reopened(url_);
  auto got = reopened.GetConnection("org-a", Id(1));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->name, "durable");
  EXPECT_EQ(got->secrets.at("password").sealed, "p");
  EXPECT_EQ(*reopened.CountOrganizations(), 2);
}

TEST_F(PostgresStoreTest, NamesAndJsonRoundTripByteForByte) {
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
  // A value pasted into SQL would have broken on the quotes; a NUL in a text value is refused
  // rather than cut short.
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
  ASSERT_TRUE(store_->CreateMember({"m1", "org-a", "m1@a", "viewer", kT0}).ok());
  ASSERT_TRUE(store_->CreateMember({"m2", "org-a", "m2@a", "viewer", kT0}).ok());
  Create(MakeConnection("org-a", Id(1), "c"));
  auto grant = [](const std::string& id, const std::string& member, const std::string& perm) {
    Grant g;
    g.grant_id = id;
    g.member_id = member;
    g.permission = perm;
    g.created_by = g.updated_by = "admin";
    g.created_at = g.updated_at = kT0;
    return g;
  };
  ASSERT_TRUE(
      store_->UpsertGrants("org-a", Id(1), {grant("g1", "m1", "usage"), grant("g2", "m2", "usage")})
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
    upsert = store_->UpsertGrants("org-a", Id(1),
                                  {grant("x1", "m1", "annotate"), grant("x2", "m2", "annotate")});
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // The other session now waits for g1: a cycle, which the store's session detects first.
  EXPECT_EQ(other.Exec("UPDATE grants SET updated_by = 'other' WHERE grant_id = 'g1'"), "");
  EXPECT_EQ(other.Exec("COMMIT"), "");
  store_thread.join();
  ASSERT_TRUE(upsert.ok()) << upsert.error().message;
  EXPECT_EQ(Raw("SELECT string_agg(permission || '/' || updated_by, ',' ORDER BY grant_id) "
                "FROM grants"),
            "annotate/admin,annotate/admin");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // statistics are flushed late
  EXPECT_GE(std::stoll(Raw(deadlocks_sql)) - deadlocks_before, 1);
}

// ---- migrations ----------------------------------------------------------------------------

TEST(PostgresStoreMigrations, AppliedOnceWhenTwoStoresOpenAFreshDatabaseAtOnce) {
  const std::string latest = std::to_string(Migrations().back().version);
  for (int round = 0; round < 5; ++round) {
    std::unique_ptr<TestDatabase> db;
    try {
      db = std::make_unique<TestDatabase>();
    } catch (const std::exception& e) {
      FAIL() << e.what();
    }
    std::atomic<int> ready{0};
    std::atomic<int> failures{0};
    auto open = [&] {
      ++ready;
      while (ready < 3) std::this_thread::yield();
      try {
        PostgresStore s(db->url());
        if (!s.Ping().ok()) ++failures;
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
        ++failures;
      }
    };
    std::thread t1(open);
    std::thread t2(open);
    std::thread t3(open);
    t1.join();
    t2.join();
    t3.join();
    EXPECT_EQ(failures, 0);
    EXPECT_EQ(RawSql(db->url(), "SELECT count(*) FROM schema_migrations"),
              std::to_string(Migrations().size()));
    EXPECT_EQ(RawSql(db->url(), "SELECT max(version) FROM schema_migrations"), latest);
    // The migration lock was released by every starter.
    EXPECT_EQ(RawSql(db->url(), "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"), "0");
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
  RawSql(url, "BEGIN; " + std::string(Migrations()[0].postgres) +
                  "; CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT "
                  "NOT NULL, applied_at BIGINT NOT NULL); "
                  "INSERT INTO schema_migrations VALUES (1, 'initial', 0); COMMIT;");
  const std::string c1 = Id(1);
  RawSql(url,
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
             "', 'Old', 'old', 'snowflake', false, false, false, false, true, 'm1', 'm1', 1, 1, "
             "1, 1, '{\"type\":\"snowflake\"}');"
             "INSERT INTO connection_secrets VALUES ('" +
             c1 + "', 'password', '\\x0102'::bytea, 'k1', 1);");
  EXPECT_EQ(RawSql(url, "SELECT max(version) FROM schema_migrations"), "1");

  PostgresStore store(url);
  EXPECT_EQ(RawSql(url, "SELECT max(version) FROM schema_migrations"),
            std::to_string(Migrations().back().version));
  auto p = store.ResolveAccessToken("tok-v1", kT0);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->account_type, "viewer");
  auto c = store.GetConnection("org-a", c1);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->name, "Old");
  EXPECT_EQ(c->secrets.at("password").sealed, std::string("\x01\x02", 2));
  EXPECT_EQ(*store.SecretKeyIds(), (std::vector<std::string>{"k1"}));
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

TEST(PostgresStoreMigrations, RefusesASchemaNewerThanTheBinary) {
  std::unique_ptr<TestDatabase> db;
  try {
    db = std::make_unique<TestDatabase>();
  } catch (const std::exception& e) {
    FAIL() << e.what();
  }
  { PostgresStore s(db->url()); }
  RawSql(db->url(), "INSERT INTO schema_migrations VALUES (999, 'future', 0)");
  try {
    PostgresStore s(db->url());
    ADD_FAILURE() << "a newer schema was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("newer than this binary"), std::string::npos) << e.what();
  }
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
  try {
    OpenStore("mysql://u:secret@h/db");
    ADD_FAILURE() << "mysql accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("postgresql://"), std::string::npos);
    EXPECT_EQ(std::string(e.what()).find("secret"), std::string::npos);
  }
}

// ---- the pool ------------------------------------------------------------------------------

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
  // Several pooled connections, all idle now.
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&] { EXPECT_TRUE(store.GetConnection("org-a", Id(1)).ok()); });
    }
    for (auto& t : threads) t.join();
  }

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
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&] { EXPECT_TRUE(store.GetConnection("org-a", Id(2)).ok()); });
    }
    for (auto& t : threads) t.join();
  }
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
