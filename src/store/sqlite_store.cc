#include "store/sqlite_store.h"

#include <sodium.h>
#include <sqlite3.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "core/time.h"
#include "crypto/random.h"
#include "store/migrations.h"
#include "store/store_call.h"

namespace connreg::store {
namespace sqlite_internal {
namespace {

constexpr int kBusyTimeoutMs = 5000;
// Idle readers kept open; more concurrent readers than this open a connection per call.
constexpr std::size_t kMaxIdleReaders = 16;
constexpr int kMaxPageSize = 1000;
constexpr std::size_t kServerKeyBytes = 32;

// Maps a SQLite result code to the store's error vocabulary (store.h). Messages of kNotFound and
// kConflict may reach a client, so they never carry SQLite's text; the others carry it for the
// log.
Error ErrorFrom(int rc, sqlite3* db, std::string_view context) {
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
        return Error::NotFound("a referenced object does not exist");
      }
      if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
        return Error::Conflict("the object already exists");
      }
      return Error::Conflict("the object violates a constraint of the store");
    default: break;
  }
  std::string message = "sqlite: ";
  message += sqlite3_errstr(rc);
  if (db != nullptr) {
    message += " (";
    message += sqlite3_errmsg(db);
    message += ")";
  }
  if (!context.empty()) {
    message += " in: ";
    message += context.substr(0, 120);
  }
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL: return Error::Unavailable(std::move(message));
    default: return Error::Internal(std::move(message));
  }
}

}  // namespace

// A byte string bound as a BLOB rather than TEXT.
struct Blob {
  std::string_view bytes;
};

// A prepared statement borrowed from a Connection's cache for one execution. Parameters are bound
// in order by Bind(); the destructor resets the statement and clears its bindings so the cached
// statement is ready for the next use. Not thread-safe (neither is its Connection).
class Statement {
 public:
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  Statement(Statement&& other) noexcept
      : stmt_(std::exchange(other.stmt_, nullptr)),
        next_index_(other.next_index_),
        bind_rc_(other.bind_rc_) {}
  Statement& operator=(Statement&&) = delete;
  ~Statement() {
    if (stmt_ != nullptr) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
  }

  // Binds the next parameters (?1, ?2, ... in order); a binding error is reported by Next().
  template <class... Args>
  Statement& Bind(const Args&... args) {
    (BindAt(++next_index_, args), ...);
    return *this;
  }

  // True when a row is ready, false when the statement has finished.
  Result<bool> Next() {
    if (bind_rc_ != SQLITE_OK) return ErrorFrom(bind_rc_, Db(), sqlite3_sql(stmt_));
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return ErrorFrom(rc, Db(), sqlite3_sql(stmt_));
  }

  // Runs a statement that returns no rows (or whose rows do not matter).
  Status Run() {
    for (;;) {
      auto row = Next();
      if (!row) return row.error();
      if (!*row) return OkStatus();
    }
  }

  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  bool Bool(int col) const { return Int(col) != 0; }
  std::string Text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    if (p == nullptr) return {};
    return std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)));
  }
  std::string BlobBytes(int col) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
    if (p == nullptr) return {};
    return std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)));
  }
  std::optional<std::int64_t> OptionalInt(int col) const {
    if (IsNull(col)) return std::nullopt;
    return Int(col);
  }
  std::optional<std::string> OptionalText(int col) const {
    if (IsNull(col)) return std::nullopt;
    return Text(col);
  }

 private:
  sqlite3* Db() const { return sqlite3_db_handle(stmt_); }
  void Check(int rc) {
    if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }

  // A null data pointer would bind NULL, so empty values point at a static empty string.
  void BindAt(int i, std::string_view v) {
    Check(sqlite3_bind_text64(stmt_, i, v.empty() ? "" : v.data(), v.size(), SQLITE_TRANSIENT,
                              SQLITE_UTF8));
  }
  void BindAt(int i, const std::string& v) { BindAt(i, std::string_view(v)); }
  void BindAt(int i, const char* v) { BindAt(i, std::string_view(v)); }
  void BindAt(int i, const Blob& v) {
    Check(sqlite3_bind_blob64(stmt_, i, v.bytes.empty() ? "" : v.bytes.data(), v.bytes.size(),
                              SQLITE_TRANSIENT));
  }
  void BindAt(int i, std::int64_t v) { Check(sqlite3_bind_int64(stmt_, i, v)); }
  void BindAt(int i, int v) { Check(sqlite3_bind_int64(stmt_, i, v)); }
  void BindAt(int i, bool v) { Check(sqlite3_bind_int64(stmt_, i, v ? 1 : 0)); }
  void BindAt(int i, std::nullopt_t) { Check(sqlite3_bind_null(stmt_, i)); }
  template <class T>
  void BindAt(int i, const std::optional<T>& v) {
    if (v) {
      BindAt(i, *v);
    } else {
      BindAt(i, std::nullopt);
    }
  }

  sqlite3_stmt* stmt_;
  int next_index_ = 0;
  int bind_rc_ = SQLITE_OK;
};

// One sqlite3 handle and its prepared statements, keyed by SQL text. Opened with
// SQLITE_OPEN_NOMUTEX: the owner guarantees that one thread at a time uses it.
class Connection {
 public:
  enum class Role { kWriter, kReader };

  static Result<std::unique_ptr<Connection>> Open(const std::string& path, Role role) {
    // Once per process, before any handle: no global memory statistics (they take a global
    // mutex on every sqlite3_malloc, which every reader thread would contend on).
    static const int configured = [] {
      sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
      return sqlite3_initialize();
    }();
    if (configured != SQLITE_OK) return Error::Internal("sqlite3_initialize failed");
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    if (role == Role::kWriter) flags |= SQLITE_OPEN_CREATE;
    sqlite3* db = nullptr;
    const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
    auto conn = std::unique_ptr<Connection>(new Connection(db));  // closes db on every path
    if (rc != SQLITE_OK) return ErrorFrom(rc, db, "open " + path);
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, kBusyTimeoutMs);
    // synchronous=FULL: in WAL mode every commit syncs the log, so an acknowledged write
    // survives a crash or kill -9. query_only keeps a reader from ever writing by mistake.
    const char* pragmas = role == Role::kWriter
                              ? "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;"
                              : "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; "
                                "PRAGMA query_only = ON;";
    if (Status s = conn->Exec(pragmas); !s) return s.error();
    return conn;
  }

  ~Connection() {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  sqlite3* db() const { return db_; }
  bool InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }

  // The cached prepared statement for `sql` (one statement), prepared on first use.
  Result<Statement> Prepare(std::string_view sql) {
    auto it = cache_.find(sql);
    if (it == cache_.end()) {
      sqlite3_stmt* stmt = nullptr;
      const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                        SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
      if (rc != SQLITE_OK) return ErrorFrom(rc, db_, sql);
      it = cache_.emplace(std::string(sql), stmt).first;
    }
    // A statement still stepping would be reset under its user's feet.
    assert(!sqlite3_stmt_busy(it->second) && "statement used twice at once");
    return Statement(it->second);
  }

  // Runs uncached SQL, possibly several statements (pragmas, migrations).
  Status Exec(const char* sql) {
    char* message = nullptr;
    const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &message);
    sqlite3_free(message);  // sqlite3_errmsg(db_) still holds the text
    if (rc != SQLITE_OK) return ErrorFrom(rc, db_, sql);
    return OkStatus();
  }

  // Ends any open transaction; used when a failure left one behind.
  void RollbackIfOpen() {
    if (InTransaction()) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }

 private:
  explicit Connection(sqlite3* db) : db_(db) {}

  struct SqlHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*, SqlHash, std::equal_to<>> cache_;
};

// A transaction on one Connection; rolled back on destruction unless committed.
class Transaction {
 public:
  enum class Kind { kRead, kWrite };

  explicit Transaction(Connection& db) : db_(db) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction() {
    if (open_) db_.RollbackIfOpen();
  }

  // kWrite takes the database's write lock at once (BEGIN IMMEDIATE), waiting up to the busy
  // timeout, so the transaction never fails half-way for a lock it could not upgrade to.
  // kRead pins one snapshot for several queries.
  Status Begin(Kind kind) {
    auto st = db_.Prepare(kind == Kind::kWrite ? "BEGIN IMMEDIATE" : "BEGIN");
    if (!st) return st.error();
    if (Status s = st->Run(); !s) return s;
    open_ = true;
    return OkStatus();
  }

  Status Commit() {
    auto st = db_.Prepare("COMMIT");
    if (!st) return st.error();
    if (Status s = st->Run(); !s) return s;  // the destructor rolls back
    open_ = false;
    return OkStatus();
  }

 private:
  Connection& db_;
  bool open_ = false;
};

namespace {

// Runs one statement that returns no rows.
template <class... Args>
Status Execute(Connection& db, std::string_view sql, const Args&... args) {
  auto st = db.Prepare(sql);
  if (!st) return st.error();
  st->Bind(args...);
  return st->Run();
}

// Rows changed by the last statement of `db`.
std::int64_t Changes(Connection& db) { return sqlite3_changes64(db.db()); }

Result<boost::json::object> ParseObject(std::string_view text, std::string_view column) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec || !v.is_object()) {
    return Error::Internal("store: corrupt JSON in connections." + std::string(column));
  }
  return std::move(v.as_object());
}

// ---- connections ---------------------------------------------------------------------------

// The columns every connection query selects, in the order ReadConnection reads them.
constexpr std::string_view kConnectionColumns =
    "organization_id, connection_id, name, type, is_sample, is_archived, use_oauth, "
    "write_access, use_friendly_names, timeout_secs, created_by, updated_by, created_at, "
    "updated_at, last_active_at, version, details, description, last_test_at, last_test_read, "
    "last_test_write";

const std::string& GetConnectionSql() {
  static const std::string sql = "SELECT " + std::string(kConnectionColumns) +
                                 " FROM connections WHERE connection_id = ?1 AND "
                                 "organization_id = ?2";
  return sql;
}

// The listing filters, shared by the page and count queries: ?1 organization, ?2 include
// archived, ?3 folded search needle or NULL, ?4 type or NULL.
constexpr std::string_view kListFilter =
    " WHERE organization_id = ?1 AND (?2 OR is_archived = 0)"
    " AND (?3 IS NULL OR instr(name_folded, ?3) > 0) AND (?4 IS NULL OR type = ?4)";

// A non-admin's view (ListQuery::visible_to_member), appended to kListFilter: ?5 is the member.
// Two correlated EXISTS, each a point lookup per row of the walk (grants_by_member; grants_by_team
// for each team of the member, a list computed once per statement), so the page keeps seeking
// the name index. Kept out of the admin's statements: any mention of connection_id would make
// their count read the table instead of the covering filter index.
constexpr std::string_view kVisibleFilter =
    " AND (EXISTS (SELECT 1 FROM grants AS g WHERE g.connection_id = connections.connection_id"
    " AND g.member_id = ?5)"
    " OR EXISTS (SELECT 1 FROM grants AS g WHERE g.connection_id = connections.connection_id"
    " AND g.team_id IN (SELECT tm.team_id FROM team_members AS tm WHERE tm.member_id = ?5)))";

// "?n" for a parameter number.
std::string Param(int n) { return "?" + std::to_string(n); }

// INDEXED BY pins the listing to the (organization_id, name, created_at, connection_id) index:
// the planner could otherwise prefer the filter index and sort, which costs the whole
// organization per page. SQLite fails the prepare if the index cannot serve the query.
// The parameters after the filter's start at ?5, or ?6 when the visibility filter takes ?5.
std::string MakeListSql(bool keyset, bool visible) {
  const int p = visible ? 6 : 5;
  std::string sql = "SELECT " + std::string(kConnectionColumns) +
                    " FROM connections INDEXED BY connections_by_name" + std::string(kListFilter);
  if (visible) sql += kVisibleFilter;
  if (keyset) {
    // The sort key of the last entry already seen, then the limit.
    sql += " AND (name, created_at, connection_id) > (" + Param(p) + ", " + Param(p + 1) + ", " +
           Param(p + 2) + ") ORDER BY name, created_at, connection_id LIMIT " + Param(p + 3);
  } else {
    sql +=
        " ORDER BY name, created_at, connection_id LIMIT " + Param(p) + " OFFSET " + Param(p + 1);
  }
  return sql;
}

const std::string& ListSql(bool keyset, bool visible) {
  static const std::string sqls[2][2] = {{MakeListSql(false, false), MakeListSql(false, true)},
                                         {MakeListSql(true, false), MakeListSql(true, true)}};
  return sqls[keyset ? 1 : 0][visible ? 1 : 0];
}

const std::string& CountSql(bool visible) {
  static const std::string all = "SELECT count(*) FROM connections" + std::string(kListFilter);
  static const std::string visible_only = all + std::string(kVisibleFilter);
  return visible ? visible_only : all;
}

// Parameters ?1..?22 in the column order of both statements; the UPDATE adds ?23, the version
// it expects.
constexpr std::string_view kInsertConnectionSql =
    "INSERT INTO connections (organization_id, connection_id, name, name_folded, type, "
    "is_sample, is_archived, use_oauth, write_access, use_friendly_names, timeout_secs, "
    "created_by, updated_by, created_at, updated_at, last_active_at, version, details, "
    "description, last_test_at, last_test_read, last_test_write) VALUES (?1, ?2, ?3, ?4, ?5, "
    "?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)";

constexpr std::string_view kUpdateConnectionSql =
    "UPDATE connections SET name = ?3, name_folded = ?4, type = ?5, is_sample = ?6, "
    "is_archived = ?7, use_oauth = ?8, write_access = ?9, use_friendly_names = ?10, "
    "timeout_secs = ?11, created_by = ?12, updated_by = ?13, created_at = ?14, "
    "updated_at = ?15, last_active_at = ?16, version = ?17, details = ?18, description = ?19, "
    "last_test_at = ?20, last_test_read = ?21, last_test_write = ?22 "
    "WHERE organization_id = ?1 AND connection_id = ?2 AND version = ?23";

void BindConnection(Statement& st, const domain::Connection& c) {
  std::optional<std::string> description;
  if (c.description) description = boost::json::serialize(*c.description);
  std::optional<TimeMs> test_at;
  std::optional<std::string> test_read;
  std::optional<std::string> test_write;
  if (c.last_test) {
    test_at = c.last_test->at;
    test_read = c.last_test->read;
    test_write = c.last_test->write;
  }
  st.Bind(c.organization_id, c.connection_id, c.name, domain::FoldName(c.name), c.type, c.is_sample,
          c.is_archived, c.use_oauth, c.write_access, c.use_friendly_names, c.timeout_secs,
          c.created_by, c.updated_by, c.created_at, c.updated_at, c.last_active_at, c.version,
          boost::json::serialize(c.details), description, test_at, test_read, test_write);
}

// Reads a row selected with kConnectionColumns; secrets are loaded separately.
Result<domain::Connection> ReadConnection(const Statement& st) {
  domain::Connection c;
  c.organization_id = st.Text(0);
  c.connection_id = st.Text(1);
  c.name = st.Text(2);
  c.type = st.Text(3);
  c.is_sample = st.Bool(4);
  c.is_archived = st.Bool(5);
  c.use_oauth = st.Bool(6);
  c.write_access = st.Bool(7);
  c.use_friendly_names = st.Bool(8);
  if (auto t = st.OptionalInt(9)) c.timeout_secs = static_cast<int>(*t);
  c.created_by = st.Text(10);
  c.updated_by = st.Text(11);
  c.created_at = st.Int(12);
  c.updated_at = st.Int(13);
  c.last_active_at = st.Int(14);
  c.version = st.Int(15);
  auto details = ParseObject(st.Text(16), "details");
  if (!details) return details.error();
  c.details = std::move(*details);
  if (!st.IsNull(17)) {
    auto description = ParseObject(st.Text(17), "description");
    if (!description) return description.error();
    c.description = std::move(*description);
  }
  if (!st.IsNull(18)) c.last_test = domain::LastTest{st.Int(18), st.Text(19), st.Text(20)};
  return c;
}

domain::StoredSecret ReadSecret(const Statement& st, int first_col) {
  return domain::StoredSecret{st.BlobBytes(first_col), st.Text(first_col + 1),
                              st.Int(first_col + 2)};
}

Status InsertSecrets(Connection& db, const domain::Connection& c) {
  for (const auto& [field, secret] : c.secrets) {
    Status s =
        Execute(db,
                "INSERT INTO connection_secrets (connection_id, field, sealed, key_id, "
                "updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                c.connection_id, field, Blob{secret.sealed}, secret.key_id, secret.updated_at);
    if (!s) return s;
  }
  return OkStatus();
}

Status InsertConnection(Connection& db, const domain::Connection& c) {
  auto st = db.Prepare(kInsertConnectionSql);
  if (!st) return st.error();
  BindConnection(*st, c);
  if (Status s = st->Run(); !s) {
    if (s.error().code == ErrorCode::kConflict) {
      return Error::Conflict("a connection with this id already exists");
    }
    if (s.error().code == ErrorCode::kNotFound) return Error::NotFound("organization not found");
    return s;
  }
  return InsertSecrets(db, c);
}

// Loads the secrets of every connection of `entries` in one query.
Status LoadSecrets(Connection& db, std::vector<domain::Connection>& entries) {
  if (entries.empty()) return OkStatus();
  boost::json::array ids;
  ids.reserve(entries.size());
  std::map<std::string_view, domain::Connection*> by_id;
  for (auto& c : entries) {
    ids.emplace_back(c.connection_id);
    by_id.emplace(c.connection_id, &c);
  }
  auto st = db.Prepare(
      "SELECT connection_id, field, sealed, key_id, updated_at FROM connection_secrets "
      "WHERE connection_id IN (SELECT value FROM json_each(?1))");
  if (!st) return st.error();
  st->Bind(boost::json::serialize(ids));
  for (;;) {
    auto row = st->Next();
    if (!row) return row.error();
    if (!*row) return OkStatus();
    auto it = by_id.find(st->Text(0));
    if (it != by_id.end()) it->second->secrets[st->Text(1)] = ReadSecret(*st, 2);
  }
}

// ---- migrations ----------------------------------------------------------------------------

[[noreturn]] void FailStart(const std::string& what, const Error& e) {
  throw std::runtime_error(what + ": " + e.message);
}

// PRAGMA journal_mode=WAL needs an exclusive lock the busy handler does not always wait for
// (two processes creating the file at once), so it is retried for up to the busy timeout.
void EnableWal(Connection& db) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(kBusyTimeoutMs);
  for (;;) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db.db(), "PRAGMA journal_mode = WAL", -1, &stmt, nullptr);
    std::string mode;
    if (rc == SQLITE_OK) {
      rc = sqlite3_step(stmt);
      if (rc == SQLITE_ROW) {
        const unsigned char* text = sqlite3_column_text(stmt, 0);
        if (text != nullptr) mode = reinterpret_cast<const char*>(text);
        rc = SQLITE_OK;
      }
    }
    if (rc == SQLITE_OK) {
      sqlite3_finalize(stmt);
      if (mode != "wal") throw std::runtime_error("sqlite: cannot enable WAL (mode " + mode + ")");
      return;
    }
    if ((rc & 0xff) != SQLITE_BUSY || std::chrono::steady_clock::now() > deadline) {
      Error error = ErrorFrom(rc, db.db(), "PRAGMA journal_mode = WAL");
      sqlite3_finalize(stmt);
      FailStart("sqlite: cannot enable WAL", error);
    }
    sqlite3_finalize(stmt);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// The highest applied migration, 0 for a new database.
Result<int> AppliedVersion(Connection& db) {
  auto exists = db.Prepare(
      "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'");
  if (!exists) return exists.error();
  auto row = exists->Next();
  if (!row) return row.error();
  if (exists->Int(0) == 0) return 0;
  auto st = db.Prepare("SELECT coalesce(max(version), 0) FROM schema_migrations");
  if (!st) return st.error();
  row = st->Next();
  if (!row) return row.error();
  return static_cast<int>(st->Int(0));
}

// Applies each pending migration in its own BEGIN IMMEDIATE transaction. The write lock
// serialises concurrent starters (other processes included); the version is re-checked inside
// the transaction, so whoever comes second skips what the first applied.
void ApplyMigrations(Connection& db) {
  const auto migrations = Migrations();
  const int latest = migrations.empty() ? 0 : migrations.back().version;
  auto applied = AppliedVersion(db);
  if (!applied) FailStart("sqlite: cannot read the schema version", applied.error());
  if (*applied > latest) {
    throw std::runtime_error("sqlite: the database schema is at version " +
                             std::to_string(*applied) + ", newer than this binary (" +
                             std::to_string(latest) + ")");
  }
  for (const Migration& m : migrations) {
    if (m.version <= *applied) continue;
    const std::string what =
        "sqlite: migration " + std::to_string(m.version) + " (" + std::string(m.name) + ")";
    Transaction tx(db);
    if (Status s = tx.Begin(Transaction::Kind::kWrite); !s) FailStart(what, s.error());
    Status s = db.Exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
        "name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT");
    if (!s) FailStart(what, s.error());
    bool applied_meanwhile = false;
    {
      auto st = db.Prepare("SELECT 1 FROM schema_migrations WHERE version = ?1");
      if (!st) FailStart(what, st.error());
      st->Bind(m.version);
      auto row = st->Next();
      if (!row) FailStart(what, row.error());
      applied_meanwhile = *row;
    }
    if (applied_meanwhile) continue;  // by another process; tx rolls back
    if (s = db.Exec(std::string(m.sqlite).c_str()); !s) FailStart(what, s.error());
    s = Execute(db, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                m.version, m.name, NowMs());
    if (!s) FailStart(what, s.error());
    if (s = tx.Commit(); !s) FailStart(what, s.error());
  }
}

}  // namespace
}  // namespace sqlite_internal

using sqlite_internal::Blob;
using sqlite_internal::Changes;
using sqlite_internal::Connection;
using sqlite_internal::ErrorFrom;
using sqlite_internal::Execute;
using sqlite_internal::Statement;
using sqlite_internal::Transaction;

// ---- connection pool -----------------------------------------------------------------------

// Exclusive use of one reader connection; gives it back to the store when destroyed.
class SqliteStore::ReaderLease {
 public:
  ReaderLease(SqliteStore* store, std::unique_ptr<Connection> conn)
      : store_(store), conn_(std::move(conn)) {}
  ReaderLease(ReaderLease&&) noexcept = default;
  ReaderLease& operator=(ReaderLease&&) = delete;
  ~ReaderLease() {
    if (conn_) store_->ReleaseReader(std::move(conn_));
  }
  Connection& get() { return *conn_; }

 private:
  SqliteStore* store_;
  std::unique_ptr<Connection> conn_;
};

SqliteStore::SqliteStore(const std::string& path) : path_(path) {
  if (sqlite3_threadsafe() == 0) {
    throw std::runtime_error("sqlite: the SQLite library was built without thread support");
  }
  auto writer = Connection::Open(path_, Connection::Role::kWriter);
  if (!writer) sqlite_internal::FailStart("sqlite: cannot open " + path_, writer.error());
  writer_ = std::move(*writer);
  sqlite_internal::EnableWal(*writer_);
  sqlite_internal::ApplyMigrations(*writer_);
}

SqliteStore::~SqliteStore() = default;

Result<SqliteStore::ReaderLease> SqliteStore::AcquireReader() {
  {
    std::lock_guard lock(readers_mu_);
    if (!idle_readers_.empty()) {
      std::unique_ptr<Connection> conn = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return ReaderLease(this, std::move(conn));
    }
  }
  auto conn = Connection::Open(path_, Connection::Role::kReader);
  if (!conn) return conn.error();
  return ReaderLease(this, std::move(*conn));
}

void SqliteStore::ReleaseReader(std::unique_ptr<Connection> reader) {
  reader->RollbackIfOpen();
  std::lock_guard lock(readers_mu_);
  if (idle_readers_.size() < sqlite_internal::kMaxIdleReaders) {
    idle_readers_.push_back(std::move(reader));
  }
  // Otherwise `reader` closes here: more callers than the idle list keeps.
}

template <class Body>
Status SqliteStore::Write(const char* what, Body&& body) {
  std::lock_guard lock(writer_mu_);
  Transaction tx(*writer_);
  if (Status s = tx.Begin(Transaction::Kind::kWrite); !s) return s;
  if (Status s = body(*writer_); !s) return s;  // tx rolls back
  if (Status s = tx.Commit(); !s) {
    return Error{s.error().code, std::string(what) + ": " + s.error().message};
  }
  return OkStatus();
}

// ---- identities ----------------------------------------------------------------------------

namespace {

Status InsertOrganization(Connection& db, const Organization& org) {
  Status s = Execute(db,
                     "INSERT INTO organizations (organization_id, name, created_at) "
                     "VALUES (?1, ?2, ?3)",
                     org.organization_id, org.name, org.created_at);
  if (!s && s.error().code == ErrorCode::kConflict) {
    return Error::Conflict("an organization with this id already exists");
  }
  return s;
}

Status InsertMember(Connection& db, const Member& member) {
  Status s = Execute(db,
                     "INSERT INTO members (member_id, organization_id, email, account_type, "
                     "created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                     member.member_id, member.organization_id, member.email, member.account_type,
                     member.created_at);
  if (!s && s.error().code == ErrorCode::kNotFound) {
    return Error::NotFound("organization not found");
  }
  return s;
}

Status InsertApiClient(Connection& db, const ApiClient& client) {
  Status s = Execute(db,
                     "INSERT INTO api_clients (client_id, member_id, secret_hash, created_at, "
                     "revoked_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                     client.client_id, client.member_id, client.secret_hash, client.created_at,
                     client.revoked_at);
  if (!s && s.error().code == ErrorCode::kNotFound) return Error::NotFound("member not found");
  return s;
}

}  // namespace

Status SqliteStore::CreateOrganization(const Organization& org) {
  return StoreCall("create_organization", [&] {
    return Write("create organization",
                 [&](Connection& db) { return InsertOrganization(db, org); });
  });
}

Result<Organization> SqliteStore::GetOrganization(const std::string& organization_id) {
  return StoreCall("get_organization", [&]() -> Result<Organization> {
    auto reader = AcquireReader();
    if (!reader) return reader.error();
    auto st = reader->get().Prepare(
        "SELECT organization_id, name, created_at FROM organizations WHERE organization_id = ?1");
    if (!st) return st.error();
    st->Bind(organization_id);
    auto row = st->Next();
    if (!row) return row.error();
    if (!*row) return Error::NotFound("organization not found");
    return Organization{st->Text(0), st->Text(1), st->Int(2)};
  });
}

Result<std::int64_t> SqliteStore::CountOrganizations() {
  return StoreCall("count_organizations", [&]() -> Result<std::int64_t> {
    auto reader = AcquireReader();
    if (!reader) return reader.error();
    auto st = reader->get().Prepare("SELECT count(*) FROM organizations");
    if (!st) return st.error();
    auto row = st->Next();
    if (!row) return row.error();
    return st->Int(0);
  });
}

Result<bool> SqliteStore::BootstrapIfEmpty(const Organization& org, const Member& admin,
                                           const ApiClient& client) {
  return StoreCall("bootstrap", [&]() -> Result<bool> {
    bool created = false;
    // BEGIN IMMEDIATE holds the database's write lock, which other processes wait for too.
    Status s = Write("bootstrap", [&](Connection& db) -> Status {
      auto st = db.Prepare("SELECT count(*) FROM organizations");
      if (!st) return st.error();
      auto row = st->Next();
      if (!row) return row.error();
      if (st->Int(0) > 0) return OkStatus();
      if (Status step = InsertOrganization(db, org); !step) return step;
      if (Status step = InsertMember(db, admin); !step) return step;
      if (Status step = InsertApiClient(db, client); !step) return step;
      created = true;
      return OkStatus();
    });
    if (!s) return s.error();
    return created;
  });
}

Status SqliteStore::CreateMember(const Member& member) {
  return StoreCall("create_member", [&] {
    return Write("create member", [&](Connection& db) { return InsertMember(db, member); });
  });
}

Result<Member> SqliteStore::GetMember(const std::string& member_id) {
  return StoreCall("get_member", [&]() -> Result<Member> {
    auto reader = AcquireReader();
    if (!reader) return reader.error();
    auto st = reader->get().Prepare(
        "SELECT member_id, organization_id, email, account_type, created_at FROM members "
        "WHERE member_id = ?1");
    if (!st) return st.error();
    st->Bind(member_id);
    auto row = st->Next();
    if (!row) return row.error();
    if (!*row) return Error::NotFound("member not found");
    return Member{st->Text(0), st->Text(1), st->Text(2), st->Text(3), st->Int(4)};
  });
}

Status SqliteStore::CreateApiClient(const ApiClient& client) {
  return StoreCall("create_api_client", [&] {
    return Write("create api client", [&](Connection& db) { return InsertApiClient(db, client); });
  });
}

Result<ApiClient> SqliteStore::GetActiveApiClient(const std::string& client_id) {
  return StoreCall("get_active_api_client", [&]() -> Result<ApiClient> {
    auto reader = AcquireReader();
    if (!reader) return reader.error();
    auto st = reader->get().Prepare(
        "SELECT client_id, member_id, secret_hash, created_at, revoked_at FROM api_clients "
        "WHERE client_id = ?1 AND revoked_at IS NULL");
    if (!st) return st.error();
    st->Bind(client_id);
    auto row = st->Next();
    if (!row) return row.error();
    if (!*row) return Error::NotFound("client not found");
    return ApiClient{st->Text(0), st->Text(1), st->Text(2), st->Int(3), st->OptionalInt(4)};
  });
}

Status SqliteStore::RevokeApiClient(const std::string& client_id, TimeMs now) {
  return StoreCall("revoke_api_client", [&] {
    return Write("revoke api client", [&](Connection& db) -> Status {
      // A second revocation keeps the first time.
      Status s = Execute(db,
                         "UPDATE api_clients SET revoked_at = coalesce(revoked_at, ?2) "
                         "WHERE client_id = ?1",
                         client_id, now);
      if (!s) return s;
      if (Changes(db) == 0) return Error::NotFound("client not found");
      // ResolveAccessToken already refuses them through revoked_at; deleting them as well keeps
      // a revoked client's tokens from outliving it anywhere (and the refresh grant from
      // reviving one).
      s = Execute(db, "DELETE FROM access_tokens WHERE client_id = ?1", client_id);
      if (!s) return s;
      return Execute(db, "DELETE FROM refresh_tokens WHERE client_id = ?1", client_id);
    });
  });
}

namespace sqlite_internal {
namespace {

// An empty family_id is stored as NULL, like the rows written before families existed, so that
// no family-wide deletion can ever match them.
Status InsertAccessToken(Connection& db, const AccessToken& t) {
  std::optional<std::string> family;
  if (!t.family_id.empty()) family = t.family_id;
  return Execute(db,
                 "INSERT INTO access_tokens (token_hash, client_id, member_id, organization_id, "
                 "expires_at, family_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                 t.token_hash, t.client_id, t.member_id, t.organization_id, t.expires_at, family);
}

Status InsertRefreshToken(Connection& db, const RefreshToken& t) {
  return Execute(db,
                 "INSERT INTO refresh_tokens (token_hash, family_id, client_id, member_id, "
                 "organization_id, expires_at, used_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL)",
                 t.token_hash, t.family_id, t.client_id, t.member_id, t.organization_id,
                 t.expires_at);
}

// A duplicate token hash means a broken random source, not a conflict the caller could act on;
// for the refresh grant a kConflict would even read as "token reused".
Status TokenInsertError(Status s) {
  if (!s && s.error().code == ErrorCode::kConflict) {
    return Error::Internal("store: token hash collision");
  }
  return s;
}

}  // namespace
}  // namespace sqlite_internal

Status SqliteStore::SaveAccessToken(const AccessToken& token) {
  return StoreCall("save_access_token", [&] {
    return Write("save access token", [&](Connection& db) -> Status {
      return sqlite_internal::InsertAccessToken(db, token);
    });
  });
}

// The pair belongs to the refresh token's family; an access token without a family_id joins it.
Status SqliteStore::SaveTokenPair(const AccessToken& access, const RefreshToken& refresh) {
  return StoreCall("save_token_pair", [&]() -> Status {
    if (refresh.family_id.empty()) {
      return Error::Internal("store: a refresh token needs a family_id");
    }
    if (!access.family_id.empty() && access.family_id != refresh.family_id) {
      return Error::Internal("store: a token pair must share its family_id");
    }
    AccessToken a = access;
    a.family_id = refresh.family_id;
    return Write("save token pair", [&](Connection& db) -> Status {
      Status s = sqlite_internal::TokenInsertError(sqlite_internal::InsertAccessToken(db, a));
      if (!s) return s;
      return sqlite_internal::TokenInsertError(sqlite_internal::InsertRefreshToken(db, refresh));
    });
  });
}

// One BEGIN IMMEDIATE transaction, so two presentations of the same token are serialised: the
// second one sees used_at and is treated as reuse. The family deletion of a reuse is committed
// (the body succeeds) and only then reported as kConflict.
Result<Principal> SqliteStore::RotateRefreshToken(const std::string& presented_hash,
                                                  const std::string& client_id, TimeMs now,
                                                  AccessToken next_access,
                                                  RefreshToken next_refresh) {
  return StoreCall("rotate_refresh_token", [&]() -> Result<Principal> {
    bool reused = false;
    Principal principal;
    Status s = Write("rotate refresh token", [&](Connection& db) -> Status {
      std::string family_id;
      {
        auto st = db.Prepare(
            "SELECT r.family_id, r.client_id, r.member_id, r.organization_id, r.expires_at, "
            "r.used_at, c.revoked_at, m.account_type "
            "FROM refresh_tokens AS r "
            "JOIN api_clients AS c ON c.client_id = r.client_id "
            "JOIN members AS m ON m.member_id = r.member_id "
            "WHERE r.token_hash = ?1");
        if (!st) return st.error();
        st->Bind(presented_hash);
        auto row = st->Next();
        if (!row) return row.error();
        if (!*row) return Error::NotFound("refresh token not found");
        const bool expired = st->Int(4) <= now;
        const bool revoked = !st->IsNull(6);
        const bool other_client = !client_id.empty() && client_id != st->Text(1);
        if (expired || revoked || other_client) {
          return Error::NotFound("refresh token not found");
        }
        family_id = st->Text(0);
        reused = !st->IsNull(5);
        principal = Principal{st->Text(3), st->Text(2), st->Text(1), st->Text(7)};
      }
      if (reused) {
        Status d = Execute(db, "DELETE FROM access_tokens WHERE family_id = ?1", family_id);
        if (!d) return d;
        return Execute(db, "DELETE FROM refresh_tokens WHERE family_id = ?1", family_id);
      }
      Status u = Execute(db, "UPDATE refresh_tokens SET used_at = ?2 WHERE token_hash = ?1",
                         presented_hash, now);
      if (!u) return u;
      next_access.family_id = next_refresh.family_id = family_id;
      next_access.client_id = next_refresh.client_id = principal.client_id;
      next_access.member_id = next_refresh.member_id = principal.member_id;
      next_access.organization_id = next_refresh.organization_id = principal.organization_id;
      u = sqlite_internal::TokenInsertError(sqlite_internal::InsertAccessToken(db, next_access));
      if (!u) return u;
      return sqlite_internal::TokenInsertError(
          sqlite_internal::InsertRefreshToken(db, next_refresh));
    });
    if (!s) return s.error();
    if (reused) {
      return Error::Conflict("the refresh token was already used; its family is revoked");
    }
    return principal;
  });
}

// On the path of every request: three primary-key lookups in one statement, no transaction.
Result<Principal> SqliteStore::ResolveAccessToken(const std::string& token_hash, TimeMs now) {
  return StoreCall("resolve_access_token", [&]() -> Result<Principal> {
    auto reader = AcquireReader();
    if (!reader) return reader.error();
    auto st = reader->get().Prepare(
        "SELECT t.organization_id, t.member_id, t.client_id, m.account_type "
        "FROM access_tokens AS t "
        "JOIN api_clients AS c ON c.client_id = t.client_id AND c.revoked_at IS NULL "
        "JOIN members AS m ON m.member_id = t.member_id "
        "WHERE t.token_hash = ?1 AND t.expires_at > ?2");
    if (!st) return st.error();
    st->Bind(token_hash, now);
    auto row = st->Next();
    if (!row) return row.error();
    if (!*row) return Error::NotFound("token not found");
    return Principal{st->Text(0), st->Text(1), st->Text(2), st->Text(3)};
  });
}

// Used refresh tokens go only when they expire: until then they are what reuse detection checks.
Result<std::int64_t> SqliteStore::PurgeExpired(TimeMs now, TimeMs idempotency_not_before) {
  return StoreCall("purge_expired", [&]() -> Result<std::int64_t> {
    std::int64_t purged = 0;
    Status s = Write("purge expired", [&](Connection& db) -> Status {
      purged = 0;
      Status d = Execute(db, "DELETE FROM access_tokens WHERE expires_at <= ?1", now);
      if (!d) return d;
      purged += Changes(db);
      d = Execute(db, "DELETE FROM refresh_tokens WHERE expires_at <= ?1", now);
      if (!d) return d;
      purged += Changes(db);
      d = Execute(db, "DELETE FROM idempotency_keys WHERE created_at < ?1", idempotency_not_before);
      if (!d) return d;
      purged += Changes(db);
      return OkStatus();
    });
    if (!s) return s.error();
    return purged;
  });
}

// ---- teams ---------------------------------------------------------------------------------

Status SqliteStore::CreateTeam(const Team& team) {
  return StoreCall("create_team", [&] {
    return Write("create team", [&](Connection& db) -> Status {
      Status s = Execute(db,
                         "INSERT INTO teams (team_id, organization_id, name, created_at) "
                         "VALUES (?1, ?2, ?3, ?4)",
                         team.team_id, team.organization_id, team.name, team.created_at);
      if (!s && s.error().code == ErrorCode::kNotFound) {
        return Error::NotFound("organization not found");
      }
      if (!s && s.error().code == ErrorCode::kConflict) {
        return Error::Conflict("a team with this id already exists");
      }
      return s;
    });
  });
}

Result<Team> SqliteStore::GetTeam(const std::string& team_id) {
  return StoreCall("get_team", [&]() -> Result<Team> {
    auto reader = AcquireReader();
    if (!reader) return reader.error();
    auto st = reader->get().Prepare(
        "SELECT team_id, organization_id, name, created_at FROM teams WHERE team_id = ?1");
    if (!st) return st.error();
    st->Bind(team_id);
    auto row = st->Next();
    if (!row) return row.error();
    if (!*row) return Error::NotFound("team not found");
    return Team{st->Text(0), st->Text(1), st->Text(2), st->Int(3)};
  });
}

Status SqliteStore::AddTeamMember(const std::string& team_id, const std::string& member_id) {
  return StoreCall("add_team_member", [&] {
    return Write("add team member", [&](Connection& db) -> Status {
      {
        auto st = db.Prepare(
            "SELECT (SELECT organization_id FROM teams WHERE team_id = ?1), "
            "(SELECT organization_id FROM members WHERE member_id = ?2)");
        if (!st) return st.error();
        st->Bind(team_id, member_id);
        auto row = st->Next();
        if (!row) return row.error();
        if (st->IsNull(0)) return Error::NotFound("team not found");
        if (st->IsNull(1)) return Error::NotFound("member not found");
        if (st->Text(0) != st->Text(1)) {
          return Error::BadRequest("member " + member_id +
                                   " is not a member of the team's organization");
        }
      }
      return Execute(db, "INSERT OR IGNORE INTO team_members (team_id, member_id) VALUES (?1, ?2)",
                     team_id, member_id);
    });
  });
}

// ---- connections ---------------------------------------------------------------------------

Status SqliteStore::CreateConnection(const domain::Connection& c) {
  return StoreCall("create_connection", [&] {
    return Write("create connection",
                 [&](Connection& db) { return sqlite_internal::InsertConnection(db, c); });
  });
}

Result<domain::Connection> SqliteStore::GetConnection(const std::string& organization_id,
                                                      const std::string& connection_id) {
  return StoreCall("get_connection", [&]() -> Result<domain::Connection> {
    auto reader = AcquireReader();
    if (!reader) return reader.error();
    Connection& db = reader->get();
    Transaction tx(db);  // the row and its secrets from one snapshot
    if (Status s = tx.Begin(Transaction::Kind::kRead); !s) return s.error();
    std::optional<domain::Connection> found;
    {
      auto st = db.Prepare(sqlite_internal::GetConnectionSql());
      if (!st) return st.error();
      st->Bind(connection_id, organization_id);
      auto row = st->Next();
      if (!row) return row.error();
      if (!*row) return Error::NotFound("connection not found");
      auto c = sqlite_internal::ReadConnection(*st);
      if (!c) return c.error();
      found = std::move(*c);
    }
    auto st = db.Prepare(
        "SELECT field, sealed, key_id, updated_at FROM connection_secrets "
        "WHERE connection_id = ?1");
    if (!st) return st.error();
    st->Bind(connection_id);
    for (;;) {
      auto row = st->Next();
      if (!row) return row.error();
      if (!*row) break;
      found->secrets[st->Text(0)] = sqlite_internal::ReadSecret(*st, 1);
    }
    return std::move(*found);
  });
}

Status SqliteStore::UpdateConnection(const domain::Connection& next,
                                     std::int64_t expected_version) {
  return StoreCall("update_connection", [&] {
    return Write("update connection", [&](Connection& db) -> Status {
      {
        auto st = db.Prepare(sqlite_internal::kUpdateConnectionSql);
        if (!st) return st.error();
        sqlite_internal::BindConnection(*st, next);
        st->Bind(expected_version);
        if (Status s = st->Run(); !s) return s;
      }
      if (Changes(db) == 0) {
        auto st = db.Prepare(
            "SELECT 1 FROM connections WHERE connection_id = ?1 AND organization_id = ?2");
        if (!st) return st.error();
        st->Bind(next.connection_id, next.organization_id);
        auto row = st->Next();
        if (!row) return row.error();
        if (!*row) return Error::NotFound("connection not found");
        return Error::PreconditionFailed("the connection was changed by another request");
      }
      // The stored secrets become exactly next.secrets.
      boost::json::array fields;
      for (const auto& [field, secret] : next.secrets) fields.emplace_back(field);
      Status s = Execute(db,
                         "DELETE FROM connection_secrets WHERE connection_id = ?1 AND field NOT "
                         "IN (SELECT value FROM json_each(?2))",
                         next.connection_id, boost::json::serialize(fields));
      if (!s) return s;
      for (const auto& [field, secret] : next.secrets) {
        s = Execute(db,
                    "INSERT INTO connection_secrets (connection_id, field, sealed, key_id, "
                    "updated_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (connection_id, field) "
                    "DO UPDATE SET sealed = excluded.sealed, key_id = excluded.key_id, "
                    "updated_at = excluded.updated_at",
                    next.connection_id, field, Blob{secret.sealed}, secret.key_id,
                    secret.updated_at);
        if (!s) return s;
      }
      return OkStatus();
    });
  });
}

Result<ConnectionPage> SqliteStore::ListConnections(const ListQuery& q) {
  return StoreCall("list_connections", [&]() -> Result<ConnectionPage> {
    const int limit = std::clamp(q.limit, 1, sqlite_internal::kMaxPageSize);
    auto reader = AcquireReader();
    if (!reader) return reader.error();
    Connection& db = reader->get();
    Transaction tx(db);  // total and entries from one snapshot
    if (Status s = tx.Begin(Transaction::Kind::kRead); !s) return s.error();

    ConnectionPage page;
    const bool visible = q.visible_to_member.has_value();
    {
      auto st = db.Prepare(sqlite_internal::CountSql(visible));
      if (!st) return st.error();
      st->Bind(q.organization_id, q.include_archived, q.search, q.type);
      if (visible) st->Bind(*q.visible_to_member);
      auto row = st->Next();
      if (!row) return row.error();
      page.total = st->Int(0);
    }
    {
      auto st = db.Prepare(sqlite_internal::ListSql(q.after.has_value(), visible));
      if (!st) return st.error();
      st->Bind(q.organization_id, q.include_archived, q.search, q.type);
      if (visible) st->Bind(*q.visible_to_member);
      if (q.after) {
        st->Bind(q.after->name, q.after->created_at, q.after->connection_id, limit + 1);
      } else {
        st->Bind(limit + 1, std::max<std::int64_t>(q.offset, 0));
      }
      page.entries.reserve(static_cast<std::size_t>(limit) + 1);
      for (;;) {
        auto row = st->Next();
        if (!row) return row.error();
        if (!*row) break;
        if (page.entries.size() == static_cast<std::size_t>(limit)) {
          page.has_more = true;
          break;
        }
        auto c = sqlite_internal::ReadConnection(*st);
        if (!c) return c.error();
        page.entries.push_back(std::move(*c));
      }
    }
    if (Status s = sqlite_internal::LoadSecrets(db, page.entries); !s) return s.error();
    if (Status s = tx.Commit(); !s) return s.error();
    return page;
  });
}

Status SqliteStore::RecordTest(const std::string& organization_id, const std::string& connection_id,
                               const domain::LastTest& test, bool query_reached) {
  return StoreCall("record_test", [&] {
    return Write("record test", [&](Connection& db) -> Status {
      Status s =
          Execute(db,
                  "UPDATE connections SET last_test_at = ?3, last_test_read = ?4, "
                  "last_test_write = ?5, "
                  "last_active_at = CASE WHEN ?6 THEN ?3 ELSE last_active_at END "
                  "WHERE organization_id = ?1 AND connection_id = ?2",
                  organization_id, connection_id, test.at, test.read, test.write, query_reached);
      if (!s) return s;
      if (Changes(db) == 0) return Error::NotFound("connection not found");
      return OkStatus();
    });
  });
}

// Two range scans of connection_secrets_by_key (key_id < K, then key_id > K), each already in
// the index order (key_id, connection_id, field): a batch reads about `limit` rows however many
// secrets were re-sealed before, where `key_id <> K` would rescan them every batch.
Result<std::vector<ConnectionStore::SealedSecretRef>> SqliteStore::SecretsNotUnderKey(
    const std::string& key_id, int limit) {
  return StoreCall("secrets_not_under_key", [&]() -> Result<std::vector<SealedSecretRef>> {
    std::vector<SealedSecretRef> out;
    if (limit <= 0) return out;
    auto reader = AcquireReader();
    if (!reader) return reader.error();
    Connection& db = reader->get();
    Transaction tx(db);  // both ranges from one snapshot
    if (Status s = tx.Begin(Transaction::Kind::kRead); !s) return s.error();
    for (std::string_view sql :
         {"SELECT connection_id, field, sealed, key_id, updated_at FROM connection_secrets "
          "INDEXED BY connection_secrets_by_key WHERE key_id < ?1 "
          "ORDER BY key_id, connection_id, field LIMIT ?2",
          "SELECT connection_id, field, sealed, key_id, updated_at FROM connection_secrets "
          "INDEXED BY connection_secrets_by_key WHERE key_id > ?1 "
          "ORDER BY key_id, connection_id, field LIMIT ?2"}) {
      const auto wanted = static_cast<std::int64_t>(limit) - static_cast<std::int64_t>(out.size());
      if (wanted <= 0) break;
      auto st = db.Prepare(sql);
      if (!st) return st.error();
      st->Bind(key_id, wanted);
      for (;;) {
        auto row = st->Next();
        if (!row) return row.error();
        if (!*row) break;
        out.push_back(
            SealedSecretRef{st->Text(0), st->Text(1), sqlite_internal::ReadSecret(*st, 2)});
      }
    }
    if (Status s = tx.Commit(); !s) return s.error();
    return out;
  });
}

// Compare-and-set on the sealed bytes themselves: a concurrent UpdateConnection that rewrote the
// secret (under whatever key) wins, and the rotation re-reads it.
Status SqliteStore::ResealSecret(const std::string& connection_id, const std::string& field,
                                 const std::string& expected_sealed,
                                 const domain::StoredSecret& next) {
  return StoreCall("reseal_secret", [&] {
    return Write("reseal secret", [&](Connection& db) -> Status {
      Status s = Execute(db,
                         "UPDATE connection_secrets SET sealed = ?3, key_id = ?4, updated_at = ?5 "
                         "WHERE connection_id = ?1 AND field = ?2 AND sealed = ?6",
                         connection_id, field, Blob{next.sealed}, next.key_id, next.updated_at,
                         Blob{expected_sealed});
      if (!s) return s;
      if (Changes(db) > 0) return OkStatus();
      auto st =
          db.Prepare("SELECT 1 FROM connection_secrets WHERE connection_id = ?1 AND field = ?2");
      if (!st) return st.error();
      st->Bind(connection_id, field);
      auto row = st->Next();
      if (!row) return row.error();
      if (!*row) return Error::NotFound("secret not found");
      return Error::PreconditionFailed("the secret was changed by another request");
    });
  });
}

Result<std::vector<std::string>> SqliteStore::SecretKeyIds() {
  return StoreCall("secret_key_ids", [&]() -> Result<std::vector<std::string>> {
    auto reader = AcquireReader();
    if (!reader) return reader.error();
    auto st = reader->get().Prepare(
        "SELECT DISTINCT key_id FROM connection_secrets INDEXED BY connection_secrets_by_key "
        "ORDER BY key_id");
    if (!st) return st.error();
    std::vector<std::string> out;
    for (;;) {
      auto row = st->Next();
      if (!row) return row.error();
      if (!*row) return out;
      out.push_back(st->Text(0));
    }
  });
}

// ---- grants --------------------------------------------------------------------------------

namespace sqlite_internal {
namespace {

// The columns every grant query selects, in the order ReadGrant reads them.
constexpr std::string_view kGrantColumns =
    "grant_id, organization_id, connection_id, member_id, team_id, permission, created_by, "
    "updated_by, created_at, updated_at";

Grant ReadGrant(const Statement& st) {
  return Grant{st.Text(0), st.Text(1), st.Text(2), st.OptionalText(3), st.OptionalText(4),
               st.Text(5), st.Text(6), st.Text(7), st.Int(8),          st.Int(9)};
}

// kNotFound unless the connection exists in the organization.
Status CheckConnectionInOrganization(Connection& db, const std::string& organization_id,
                                     const std::string& connection_id) {
  auto st =
      db.Prepare("SELECT 1 FROM connections WHERE connection_id = ?1 AND organization_id = ?2");
  if (!st) return st.error();
  st->Bind(connection_id, organization_id);
  auto row = st->Next();
  if (!row) return row.error();
  if (!*row) return Error::NotFound("connection not found");
  return OkStatus();
}

// True when `sql` (binding ?1 id, ?2 organization) returns a row.
Result<bool> Exists(Connection& db, std::string_view sql, const std::string& id,
                    const std::string& organization_id) {
  auto st = db.Prepare(sql);
  if (!st) return st.error();
  st->Bind(id, organization_id);
  return st->Next();
}

}  // namespace
}  // namespace sqlite_internal

// Each grant is validated just before it is written, so the error names the first bad grantee
// in batch order; any error rolls the whole batch back. A grantee repeated within the batch is
// upserted twice: the last permission wins and the first grant_id stays.
Status SqliteStore::UpsertGrants(const std::string& organization_id,
                                 const std::string& connection_id,
                                 const std::vector<Grant>& grants) {
  return StoreCall("upsert_grants", [&] {
    return Write("upsert grants", [&](Connection& db) -> Status {
      Status s = sqlite_internal::CheckConnectionInOrganization(db, organization_id, connection_id);
      if (!s) return s;
      for (const Grant& g : grants) {
        if (g.member_id.has_value() == g.team_id.has_value()) {
          return Error::BadRequest("a grantee is either a memberId or a teamId");
        }
        std::string_view upsert;
        if (g.member_id) {
          auto found = sqlite_internal::Exists(
              db, "SELECT 1 FROM members WHERE member_id = ?1 AND organization_id = ?2",
              *g.member_id, organization_id);
          if (!found) return found.error();
          if (!*found) {
            return Error::BadRequest("member " + *g.member_id +
                                     " is not a member of this organization");
          }
          upsert = "ON CONFLICT (connection_id, member_id) DO UPDATE SET ";
        } else {
          auto found = sqlite_internal::Exists(
              db, "SELECT 1 FROM teams WHERE team_id = ?1 AND organization_id = ?2", *g.team_id,
              organization_id);
          if (!found) return found.error();
          if (!*found) {
            return Error::BadRequest("team " + *g.team_id + " is not a team of this organization");
          }
          upsert = "ON CONFLICT (connection_id, team_id) DO UPDATE SET ";
        }
        const std::string sql =
            "INSERT INTO grants (" + std::string(sqlite_internal::kGrantColumns) +
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) " + std::string(upsert) +
            "permission = excluded.permission, updated_by = excluded.updated_by, "
            "updated_at = excluded.updated_at";
        s = Execute(db, sql, g.grant_id, organization_id, connection_id, g.member_id, g.team_id,
                    g.permission, g.created_by, g.updated_by, g.created_at, g.updated_at);
        if (!s) {
          if (s.error().code == ErrorCode::kConflict) {
            return Error::Conflict("a grant with this id already exists");
          }
          return s;
        }
      }
      return OkStatus();
    });
  });
}

Result<GrantPage> SqliteStore::ListGrants(const std::string& organization_id,
                                          const std::string& connection_id, int limit,
                                          const std::optional<GrantCursor>& after,
                                          std::int64_t offset) {
  return StoreCall("list_grants", [&]() -> Result<GrantPage> {
    limit = std::clamp(limit, 1, sqlite_internal::kMaxPageSize);
    auto reader = AcquireReader();
    if (!reader) return reader.error();
    Connection& db = reader->get();
    Transaction tx(db);  // total and entries from one snapshot
    if (Status s = tx.Begin(Transaction::Kind::kRead); !s) return s.error();
    Status s = sqlite_internal::CheckConnectionInOrganization(db, organization_id, connection_id);
    if (!s) return s.error();

    GrantPage page;
    {
      auto st = db.Prepare(
          "SELECT count(*) FROM grants WHERE connection_id = ?1 AND organization_id = ?2");
      if (!st) return st.error();
      st->Bind(connection_id, organization_id);
      auto row = st->Next();
      if (!row) return row.error();
      page.total = st->Int(0);
    }
    static const std::string first_sql =
        "SELECT " + std::string(sqlite_internal::kGrantColumns) +
        " FROM grants INDEXED BY grants_by_page WHERE connection_id = ?1 AND organization_id = ?2"
        " ORDER BY created_at, grant_id LIMIT ?3 OFFSET ?4";
    static const std::string after_sql =
        "SELECT " + std::string(sqlite_internal::kGrantColumns) +
        " FROM grants INDEXED BY grants_by_page WHERE connection_id = ?1 AND organization_id = ?2"
        " AND (created_at, grant_id) > (?3, ?4) ORDER BY created_at, grant_id LIMIT ?5";
    auto st = db.Prepare(after ? after_sql : first_sql);
    if (!st) return st.error();
    st->Bind(connection_id, organization_id);
    if (after) {
      st->Bind(after->created_at, after->grant_id, limit + 1);
    } else {
      st->Bind(limit + 1, std::max<std::int64_t>(offset, 0));
    }
    for (;;) {
      auto row = st->Next();
      if (!row) return row.error();
      if (!*row) break;
      if (page.entries.size() == static_cast<std::size_t>(limit)) {
        page.has_more = true;
        break;
      }
      page.entries.push_back(sqlite_internal::ReadGrant(*st));
    }
    return page;
  });
}

Status SqliteStore::DeleteGrant(const std::string& organization_id,
                                const std::string& connection_id, const std::string& grant_id) {
  return StoreCall("delete_grant", [&] {
    return Write("delete grant", [&](Connection& db) -> Status {
      Status s = Execute(db,
                         "DELETE FROM grants WHERE grant_id = ?1 AND connection_id = ?2 AND "
                         "organization_id = ?3",
                         grant_id, connection_id, organization_id);
      if (!s) return s;
      if (Changes(db) == 0) return Error::NotFound("grant not found");
      return OkStatus();
    });
  });
}

// Two point lookups, as in the visibility filter of ListConnections.
Result<bool> SqliteStore::HasGrant(const std::string& organization_id,
                                   const std::string& connection_id, const std::string& member_id) {
  return StoreCall("has_grant", [&]() -> Result<bool> {
    auto reader = AcquireReader();
    if (!reader) return reader.error();
    auto st = reader->get().Prepare(
        "SELECT EXISTS (SELECT 1 FROM grants WHERE connection_id = ?1 AND member_id = ?2 "
        "AND organization_id = ?3) "
        "OR EXISTS (SELECT 1 FROM grants WHERE connection_id = ?1 AND organization_id = ?3 "
        "AND team_id IN (SELECT team_id FROM team_members WHERE member_id = ?2))");
    if (!st) return st.error();
    st->Bind(connection_id, member_id, organization_id);
    auto row = st->Next();
    if (!row) return row.error();
    return st->Bool(0);
  });
}

// ---- idempotency keys ----------------------------------------------------------------------

Result<IdempotentResponse> SqliteStore::GetIdempotent(const std::string& organization_id,
                                                      const std::string& member_id,
                                                      const std::string& key, TimeMs not_before) {
  return StoreCall("get_idempotent", [&]() -> Result<IdempotentResponse> {
    auto reader = AcquireReader();
    if (!reader) return reader.error();
    auto st = reader->get().Prepare(
        "SELECT request_hash, status, body, location, created_at FROM idempotency_keys "
        "WHERE organization_id = ?1 AND member_id = ?2 AND key = ?3 AND created_at >= ?4");
    if (!st) return st.error();
    st->Bind(organization_id, member_id, key, not_before);
    auto row = st->Next();
    if (!row) return row.error();
    if (!*row) return Error::NotFound("idempotency key not found");
    return IdempotentResponse{st->Text(0), static_cast<int>(st->Int(1)), st->Text(2), st->Text(3),
                              st->Int(4)};
  });
}

// A record older than `not_before` is one GetIdempotent no longer returns: it is replaced here
// rather than left to block its key until the next purge.
Status SqliteStore::CreateConnectionIdempotent(const domain::Connection& c,
                                               const std::string& member_id, const std::string& key,
                                               const IdempotentResponse& response,
                                               TimeMs not_before) {
  return StoreCall("create_connection_idempotent", [&] {
    return Write("create connection (idempotent)", [&](Connection& db) -> Status {
      Status s = Execute(db,
                         "DELETE FROM idempotency_keys WHERE organization_id = ?1 AND "
                         "member_id = ?2 AND key = ?3 AND created_at < ?4",
                         c.organization_id, member_id, key, not_before);
      if (!s) return s;
      s = Execute(db,
                  "INSERT INTO idempotency_keys (organization_id, member_id, key, "
                  "request_hash, status, body, location, created_at) "
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                  c.organization_id, member_id, key, response.request_hash, response.status,
                  response.body, response.location, response.created_at);
      if (!s) {
        if (s.error().code == ErrorCode::kConflict) {
          return Error::Conflict("the Idempotency-Key was already used");
        }
        return s;
      }
      return sqlite_internal::InsertConnection(db, c);
    });
  });
}

// ---- store ---------------------------------------------------------------------------------

Status SqliteStore::Ping() {
  return StoreCall("ping", [&]() -> Status {
    auto reader = AcquireReader();
    if (!reader) return reader.error();
    auto st = reader->get().Prepare("SELECT 1");
    if (!st) return st.error();
    auto row = st->Next();
    if (!row) return row.error();
    if (!*row || st->Int(0) != 1) return Error::Internal("sqlite: SELECT 1 returned no row");
    return OkStatus();
  });
}

Result<std::string> SqliteStore::ServerKey(const std::string& purpose) {
  return StoreCall("server_key", [&]() -> Result<std::string> {
    constexpr std::string_view kSelect = "SELECT key FROM server_keys WHERE purpose = ?1";
    auto checked = [](std::string key) -> Result<std::string> {
      if (key.size() != sqlite_internal::kServerKeyBytes) {
        return Error::Internal("sqlite: corrupt server key");
      }
      return key;
    };
    {
      // Almost every call finds the key: a read, without the writer.
      auto reader = AcquireReader();
      if (!reader) return reader.error();
      auto st = reader->get().Prepare(kSelect);
      if (!st) return st.error();
      st->Bind(purpose);
      auto row = st->Next();
      if (!row) return row.error();
      if (*row) return checked(st->BlobBytes(0));
    }
    // First use: whoever inserts first wins, and everyone reads the winner's key.
    crypto::EnsureSodium();
    std::string candidate(sqlite_internal::kServerKeyBytes, '\0');
    randombytes_buf(candidate.data(), candidate.size());
    std::string key;
    Status s = Write("create server key", [&](Connection& db) -> Status {
      Status inserted = Execute(db,
                                "INSERT OR IGNORE INTO server_keys (purpose, key, created_at) "
                                "VALUES (?1, ?2, ?3)",
                                purpose, Blob{candidate}, NowMs());
      if (!inserted) return inserted;
      auto st = db.Prepare(kSelect);
      if (!st) return st.error();
      st->Bind(purpose);
      auto row = st->Next();
      if (!row) return row.error();
      if (!*row) return Error::Internal("sqlite: server key vanished after insert");
      key = st->BlobBytes(0);
      return OkStatus();
    });
    sodium_memzero(candidate.data(), candidate.size());
    if (!s) return s.error();
    return checked(std::move(key));
  });
}

}  // namespace connreg::store
