// The SQLite driver of the query layer: connections (one writer, a pool of readers), prepared
// statements, transactions, the dialect and the mapping of SQLite's result codes.
#include "store/sqlite_store.h"

#include <sqlite3.h>

#include <atomic>
#include <cassert>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "store/revocation_epoch.h"
#include "store/sql.h"

namespace connreg::store {
namespace {

constexpr int kBusyTimeoutMs = 5000;
// Idle readers kept open; more concurrent readers than this open a connection per call.
constexpr std::size_t kMaxIdleReaders = 16;

const sql::Dialect kSqliteDialect{
    .name = "sqlite",
    .parameter_marker = '?',
    .index_hints = true,
    .row_locks = false,
    .find_substring = "instr",
    // A quoted FTS5 string is one phrase of the term's trigrams, in a row: a substring.
    .search_index_candidates =
        "connections.rowid IN (SELECT rowid FROM connections_search WHERE connections_search"
        " MATCH '\"' || replace(:search, '\"', '\"\"') || '\"')",
    .search_index_present = "SELECT 1",
    .json_array_texts = "SELECT value FROM json_each({})",
    .least = "min",
    .greatest = "max",
    // Takes the database's write lock at once, waiting up to the busy timeout.
    .begin_migration = "BEGIN IMMEDIATE",
    .bootstrap_lock = "",
    .migration_sql = &Migration::sqlite,
    // A no-op inside a transaction, so run around it (https://sqlite.org/lang_altertable.html).
    .foreign_keys_off = "PRAGMA foreign_keys = OFF",
    .foreign_keys_on = "PRAGMA foreign_keys = ON",
    .foreign_key_violations = "SELECT count(*) FROM pragma_foreign_key_check",
};

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

[[noreturn]] void FailStart(const std::string& what, const Error& e) {
  throw std::runtime_error(what + ": " + e.message);
}

// One sqlite3_stmt. Text and blobs are bound as copies (SQLITE_TRANSIENT).
class Statement final : public sql::Statement {
 public:
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~Statement() override { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  bool busy() const { return sqlite3_stmt_busy(stmt_) != 0; }

  void BindNull(int i) override { Check(sqlite3_bind_null(stmt_, i)); }
  void BindInt(int i, std::int64_t v) override { Check(sqlite3_bind_int64(stmt_, i, v)); }
  void BindBool(int i, bool v) override { Check(sqlite3_bind_int64(stmt_, i, v ? 1 : 0)); }
  // A null data pointer would bind NULL, so empty values point at a static empty string.
  void BindText(int i, std::string_view v) override {
    Check(sqlite3_bind_text64(stmt_, i, v.empty() ? "" : v.data(), v.size(), SQLITE_TRANSIENT,
                              SQLITE_UTF8));
  }
  void BindBytes(int i, std::string_view v) override {
    Check(sqlite3_bind_blob64(stmt_, i, v.empty() ? "" : v.data(), v.size(), SQLITE_TRANSIENT));
  }

  Result<bool> Step() override {
    if (bind_rc_ != SQLITE_OK) return ErrorFrom(bind_rc_, Db(), sqlite3_sql(stmt_));
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return ErrorFrom(rc, Db(), sqlite3_sql(stmt_));
  }
  std::int64_t Changes() const override { return sqlite3_changes64(Db()); }

  bool IsNull(int col) const override { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::int64_t Int(int col) const override { return sqlite3_column_int64(stmt_, col); }
  bool Bool(int col) const override { return Int(col) != 0; }
  std::string_view Text(int col) const override {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
    if (p == nullptr) return {};
    return {p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col))};
  }
  std::string Bytes(int col) const override {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
    if (p == nullptr) return {};
    return std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)));
  }
  int ColumnIndex(std::string_view name) const override {
    const int n = sqlite3_column_count(stmt_);
    for (int i = 0; i < n; ++i) {
      const char* column = sqlite3_column_name(stmt_, i);
      if (column != nullptr && name == column) return i;
    }
    return -1;
  }
  void Reset() override {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    bind_rc_ = SQLITE_OK;
  }

 private:
  sqlite3* Db() const { return sqlite3_db_handle(stmt_); }
  void Check(int rc) {
    if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }

  sqlite3_stmt* stmt_;
  int bind_rc_ = SQLITE_OK;
};

// One sqlite3 handle and its prepared statements, by Query slot. Opened with
// SQLITE_OPEN_NOMUTEX: the owner guarantees that one thread at a time uses it.
class Connection final : public sql::Session {
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
    for (auto [sql, stmt] :
         {std::pair{"BEGIN", &conn->begin_read_}, std::pair{"BEGIN IMMEDIATE", &conn->begin_write_},
          std::pair{"COMMIT", &conn->commit_}, std::pair{"SAVEPOINT write", &conn->savepoint_},
          std::pair{"RELEASE write", &conn->release_},
          std::pair{"ROLLBACK TO write", &conn->rollback_to_}}) {
      const int prc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, nullptr);
      if (prc != SQLITE_OK) return ErrorFrom(prc, db, sql);
    }
    return conn;
  }

  ~Connection() override {
    cache_.clear();
    for (sqlite3_stmt* stmt :
         {begin_read_, begin_write_, commit_, savepoint_, release_, rollback_to_}) {
      sqlite3_finalize(stmt);
    }
    sqlite3_close_v2(db_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  sqlite3* db() const { return db_; }

  Result<sql::Stmt> Prepare(const sql::Query& query) override {
    if (query.slot() >= cache_.size()) cache_.resize(query.slot() + 1);
    std::unique_ptr<Statement>& st = cache_[query.slot()];
    if (st == nullptr) {
      sqlite3_stmt* stmt = nullptr;
      const std::string& sql = query.sql();
      const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                        SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
      if (rc != SQLITE_OK) return ErrorFrom(rc, db_, sql);
      st = std::make_unique<Statement>(stmt);
    }
    // A statement still stepping would be reset under its user's feet.
    assert(!st->busy() && "statement used twice at once");
    return sql::Stmt(*st, query);
  }

  // Uncached SQL, possibly several statements (pragmas, migrations).
  Status Exec(std::string_view sql) override {
    const std::string text(sql);
    char* message = nullptr;
    const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &message);
    sqlite3_free(message);  // sqlite3_errmsg(db_) still holds the text
    if (rc != SQLITE_OK) return ErrorFrom(rc, db_, sql);
    return OkStatus();
  }

  // kWrite takes the database's write lock at once (BEGIN IMMEDIATE), waiting up to the busy
  // timeout, so the transaction never fails half-way for a lock it could not upgrade to.
  // Otherwise a deferred BEGIN pins one snapshot for several reads.
  Status Begin(bool write) { return RunInternal(write ? begin_write_ : begin_read_); }
  Status Commit() { return RunInternal(commit_); }
  // Ends any open transaction; used when a failure left one behind.
  void RollbackIfOpen() {
    if (InTransaction()) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  // False once the transaction has ended, also when SQLite rolled it back on its own (it may,
  // after SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM: https://sqlite.org/lang_transaction.html).
  bool InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }

  // One write of a group commit runs between Savepoint() and Release() (kept) or Undo() (only
  // its own statements undone; the earlier writes of the transaction stay).
  Status Savepoint() { return RunInternal(savepoint_); }
  Status Release() { return RunInternal(release_); }
  Status Undo() {
    if (Status s = RunInternal(rollback_to_); !s) return s;
    return RunInternal(release_);
  }
  // True while the transaction holds a violation of a deferred foreign key, which would fail
  // the COMMIT (of every write of the batch) rather than the statement that made it.
  bool HasDeferredViolation() {
    int current = 0;
    int highwater = 0;
    sqlite3_db_status(db_, SQLITE_DBSTATUS_DEFERRED_FKS, &current, &highwater, 0);
    return current != 0;
  }

 private:
  explicit Connection(sqlite3* db) : db_(db) {}

  Status RunInternal(sqlite3_stmt* stmt) {
    const int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE) return ErrorFrom(rc, db_, sqlite3_sql(stmt));
    return OkStatus();
  }

  sqlite3* db_;
  sqlite3_stmt* begin_read_ = nullptr;
  sqlite3_stmt* begin_write_ = nullptr;
  sqlite3_stmt* commit_ = nullptr;
  sqlite3_stmt* savepoint_ = nullptr;
  sqlite3_stmt* release_ = nullptr;
  sqlite3_stmt* rollback_to_ = nullptr;
  std::vector<std::unique_ptr<Statement>> cache_;  // by Query::slot
};

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

class Database final : public SqliteDatabase {
 public:
  Database(const std::string& path, GroupCommitBounds bounds) : path_(path), bounds_(bounds) {
    if (sqlite3_threadsafe() == 0) {
      throw std::runtime_error("sqlite: the SQLite library was built without thread support");
    }
    auto writer = Connection::Open(path_, Connection::Role::kWriter);
    if (!writer) FailStart("sqlite: cannot open " + path_, writer.error());
    writer_ = std::move(*writer);
    EnableWal(*writer_);
  }

  const sql::Dialect& dialect() const override { return kSqliteDialect; }
  bool PointReadsAreLocal() const override { return true; }
  bool Shared() const override { return false; }

  Status Run(sql::Access access, const char* operation,
             sql::FunctionRef<Status(sql::Session&)> body) override {
    if (access == sql::Access::kWrite) return RunWrite(operation, body);
    auto reader = AcquireReader();
    if (!reader) return std::move(reader).error();
    Connection& db = reader->get();
    if (access == sql::Access::kPoint) return body(db);
    if (Status s = db.Begin(/*write=*/false); !s) return s;
    Status s = body(db);
    if (s) s = db.Commit();
    if (!s) db.RollbackIfOpen();
    return s;
  }

  // The writer's connection: every migration takes the write lock (BEGIN IMMEDIATE), which
  // other processes wait for too.
  Status Migrate(sql::FunctionRef<Status(sql::Session&)> body) override {
    std::unique_lock lock(writer_mu_);
    // A migration runs its own transactions: a batch still open (writers already at work, which
    // start does not do) commits first.
    if (batch_ != nullptr) Finish(*std::exchange(batch_, nullptr), CommitTransaction());
    Status s = body(*writer_);
    writer_->RollbackIfOpen();
    return s;
  }

  Status Ping() override {
    auto reader = AcquireReader();
    if (!reader) return std::move(reader).error();
    sqlite3* db = reader->get().db();
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db, "SELECT 1", -1, &stmt, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_step(stmt);
    const bool one = rc == SQLITE_ROW && sqlite3_column_int64(stmt, 0) == 1;
    Error error = rc == SQLITE_ROW ? Error::Internal("sqlite: SELECT 1 returned no row")
                                   : ErrorFrom(rc, db, "SELECT 1");
    sqlite3_finalize(stmt);
    if (!one) return error;
    return OkStatus();
  }

  int WritesWaiting() const override { return writes_arriving_.load(); }

 private:
  // The writes of one group commit: bodies run one after the other in one transaction of the
  // writer connection, each in its savepoint, and committed (made durable) together.
  struct Batch {
    // Guarded by writer_mu_: the bodies that succeeded (released savepoints), and when the
    // first of them did (since then, a write is waiting for the commit).
    std::size_t kept = 0;
    std::chrono::steady_clock::time_point first_kept;
    std::mutex mu;
    std::condition_variable finished_cv;
    bool finished = false;        // guarded by mu
    Status outcome = OkStatus();  // the COMMIT's, for every kept write; guarded by mu
  };

  // Group commit. Each write runs its own body, on its caller's thread, under writer_mu_, in a
  // savepoint of the open batch's transaction (BEGIN IMMEDIATE when none is open). Then, if
  // another write is already waiting for writer_mu_ (writes_arriving_) and the batch is within
  // its bounds (GroupCommitBounds), it leaves the transaction open for that write and waits for the
  // batch's outcome; otherwise it is the batch's last write: it commits, with one fsync for the
  // whole batch (synchronous=FULL), and hands the outcome to the others. A lone write commits at
  // once, as before. A body that fails is undone alone (ROLLBACK TO its savepoint), and the batch
  // goes on. Every write is acknowledged (returns) only after the COMMIT that holds it: a failed
  // COMMIT fails every write of its batch, and nothing of the batch stays. A body sees the
  // earlier writes of its batch, as it would after their commit; so a failed body that saw any
  // waits for the commit too, and reports the commit's failure instead of its own answer when
  // the writes it was decided against did not commit.
  Status RunWrite(const char* operation, sql::FunctionRef<Status(sql::Session&)> body) {
    writes_arriving_.fetch_add(1);
    std::unique_lock lock(writer_mu_);
    writes_arriving_.fetch_sub(1);
    Connection& db = *writer_;
    if (batch_ == nullptr) {
      // Waits up to the busy timeout for another process's writer, as before.
      if (Status s = db.Begin(/*write=*/true); !s) {
        db.RollbackIfOpen();
        return s;
      }
      batch_ = std::make_shared<Batch>();
    }
    std::shared_ptr<Batch> batch = batch_;
    const bool saw_others = batch->kept > 0;

    std::exception_ptr thrown;  // rethrown once the batch is settled
    Status s = db.Savepoint();
    if (s) {
      try {
        s = body(db);
      } catch (...) {
        thrown = std::current_exception();
        s = Error::Internal("sqlite: the write threw");
      }
      if (s && db.HasDeferredViolation()) s = Error::NotFound("a referenced object does not exist");
      if (s) s = db.Release();
      // Undone alone; or, if SQLite already rolled the whole transaction back (or the undo
      // failed), the batch is lost.
      if (!s && db.InTransaction() && !db.Undo()) db.RollbackIfOpen();
    }
    if (!db.InTransaction()) {
      batch_.reset();
      lock.unlock();
      const std::string cause =
          s ? std::string("sqlite: a write ended its own transaction") : s.error().message;
      // Their writes are not committed; trying again is safe.
      Finish(*batch, Error::Unavailable("sqlite: the group commit was rolled back by another "
                                        "write's error: " +
                                        cause));
      if (thrown) std::rethrow_exception(thrown);
      if (s) return Error::Internal(std::string(operation) + ": " + cause);
      return s;
    }
    const auto now = std::chrono::steady_clock::now();
    if (s && batch->kept++ == 0) batch->first_kept = now;

    const bool wait_for_more = writes_arriving_.load() > 0 && batch->kept < bounds_.max_writes &&
                               (batch->kept == 0 || now - batch->first_kept < bounds_.max_wait);
    Status outcome = OkStatus();
    if (wait_for_more) {
      lock.unlock();
      if (thrown) std::rethrow_exception(thrown);
      if (!s && !saw_others) return s;  // decided on committed state alone: final now
      outcome = AwaitOutcome(*batch);
    } else {
      batch_.reset();
      outcome = CommitTransaction();
      lock.unlock();
      Finish(*batch, outcome);
      if (thrown) std::rethrow_exception(thrown);
    }
    if (!outcome) {
      return Error{outcome.error().code, std::string(operation) + ": " + outcome.error().message};
    }
    return s;
  }

  // Commits the open transaction of the writer (under writer_mu_); on failure nothing of it stays.
  Status CommitTransaction() {
    Status committed = writer_->Commit();
    if (!committed) writer_->RollbackIfOpen();
    return committed;
  }

  // Hands the batch's outcome to its writes waiting in AwaitOutcome.
  static void Finish(Batch& batch, Status outcome) {
    {
      std::lock_guard lock(batch.mu);
      batch.finished = true;
      batch.outcome = std::move(outcome);
    }
    batch.finished_cv.notify_all();
  }

  static Status AwaitOutcome(Batch& batch) {
    std::unique_lock lock(batch.mu);
    batch.finished_cv.wait(lock, [&] { return batch.finished; });
    return batch.outcome;
  }

  // Exclusive use of one reader connection; gives it back when destroyed.
  class ReaderLease {
   public:
    ReaderLease(Database* db, std::unique_ptr<Connection> conn) : db_(db), conn_(std::move(conn)) {}
    ReaderLease(ReaderLease&&) noexcept = default;
    ReaderLease& operator=(ReaderLease&&) = delete;
    ~ReaderLease() {
      if (conn_) db_->ReleaseReader(std::move(conn_));
    }
    Connection& get() { return *conn_; }

   private:
    Database* db_;
    std::unique_ptr<Connection> conn_;
  };

  // A reader from the idle list, or a new one.
  Result<ReaderLease> AcquireReader() {
    {
      std::lock_guard lock(readers_mu_);
      if (!idle_readers_.empty()) {
        std::unique_ptr<Connection> conn = std::move(idle_readers_.back());
        idle_readers_.pop_back();
        return ReaderLease(this, std::move(conn));
      }
    }
    auto conn = Connection::Open(path_, Connection::Role::kReader);
    if (!conn) return std::move(conn).error();
    return ReaderLease(this, std::move(*conn));
  }

  void ReleaseReader(std::unique_ptr<Connection> reader) {
    reader->RollbackIfOpen();
    std::lock_guard lock(readers_mu_);
    if (idle_readers_.size() < kMaxIdleReaders) idle_readers_.push_back(std::move(reader));
    // Otherwise `reader` closes here: more callers than the idle list keeps.
  }

  const std::string path_;
  const GroupCommitBounds bounds_;
  // Held while a body or a COMMIT runs on the writer connection.
  std::mutex writer_mu_;
  std::unique_ptr<Connection> writer_;  // guarded by writer_mu_
  // The batch whose transaction is open on writer_, null when none is; guarded by writer_mu_.
  std::shared_ptr<Batch> batch_;
  // Writes that have called Run(kWrite) and not yet taken writer_mu_: the next to take it joins
  // the open batch.
  std::atomic<int> writes_arriving_{0};
  std::mutex readers_mu_;
  std::vector<std::unique_ptr<Connection>> idle_readers_;  // guarded by readers_mu_
};

}  // namespace

std::unique_ptr<SqliteDatabase> OpenSqliteDatabase(const std::string& path,
                                                   GroupCommitBounds bounds) {
  return std::make_unique<Database>(path, bounds);
}

// The epoch file is made after the database file, whose mode it takes.
SqliteStore::SqliteStore(const std::string& path, GroupCommitBounds bounds)
    : SqlStore(OpenSqliteDatabase(path, bounds)) {
  UseRevocationEpoch(RevocationEpoch::OpenBeside(path));
}

}  // namespace connreg::store
