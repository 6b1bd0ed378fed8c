// The PostgreSQL driver of the query layer: the url, libpq connections and their pool, prepared
// statements, transactions with their retries, the dialect and the mapping of SQLSTATEs.
#include "store/postgres_store.h"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "metrics/metrics.h"
#include "store/sql.h"

namespace connreg::store {
namespace postgres_internal {
namespace {

constexpr int kDefaultPoolSize = 8;
constexpr int kMaxPoolSize = 1000;
constexpr std::chrono::milliseconds kDefaultAcquireTimeout{2000};
constexpr std::chrono::milliseconds kPingTimeout{2000};
// Attempts of one transaction that keeps failing with a serialization failure or deadlock.
constexpr int kMaxTransactionAttempts = 4;
// The session advisory lock that serialises migrations across nodes ("connreg" in ASCII).
constexpr std::string_view kMigrationLockKey = "27988542784431463";

const sql::Dialect kPostgresDialect{
    .name = "postgres",
    .parameter_marker = '$',
    .index_hints = false,
    .row_locks = true,
    .find_substring = "strpos",
    .search_index_candidates = "",
    .search_index_present =
        "SELECT CASE WHEN to_regclass('connections_by_trigram') IS NULL THEN 0 ELSE 1 END",
    .json_array_texts = "SELECT jsonb_array_elements_text(CAST({} AS jsonb))",
    .least = "LEAST",
    .greatest = "GREATEST",
    .begin_migration = "BEGIN",
    // The transaction advisory lock that serialises the first-start bootstrap across nodes.
    .bootstrap_lock = "SELECT pg_advisory_xact_lock(27988542784431464)",
    .migration_sql = &Migration::postgres,
    .foreign_keys_off = "",
    .foreign_keys_on = "",
    .foreign_key_violations = "SELECT 0",
};

std::string TrimmedMessage(const char* m) {
  std::string s = m != nullptr ? m : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  for (char& ch : s) {
    if (ch == '\n') ch = ' ';
  }
  return s;
}

// Removes every occurrence of `secret` from `text`.
std::string Scrub(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  for (std::size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at)) {
    text.replace(at, secret.size(), "***");
  }
  return text;
}

// Owns one PGresult.
class PgResult {
 public:
  explicit PgResult(PGresult* r = nullptr) : r_(r) {}
  PgResult(PgResult&& other) noexcept : r_(std::exchange(other.r_, nullptr)) {}
  PgResult& operator=(PgResult&& other) noexcept {
    reset(std::exchange(other.r_, nullptr));
    return *this;
  }
  ~PgResult() { reset(); }
  void reset(PGresult* r = nullptr) {
    if (r_ != nullptr) PQclear(r_);
    r_ = r;
  }
  PGresult* get() const { return r_; }

 private:
  PGresult* r_;
};

bool Retryable(const std::string& sqlstate) { return sqlstate == "40001" || sqlstate == "40P01"; }

}  // namespace

// The libpq connection parameters of a store, parsed once from its url.
struct ConnParams {
  std::vector<std::string> keywords;
  std::vector<std::string> values;
  std::string password;     // decoded, only to scrub it from messages
  std::string description;  // host, port and database, for messages
};

// ---- url -----------------------------------------------------------------------------------

namespace {

// The raw password of "scheme://user:password@host...", "" when there is none.
std::string RawPassword(std::string_view url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return {};
  std::string_view rest = url.substr(scheme_end + 3);
  rest = rest.substr(0, rest.find_first_of("/?"));
  const auto at = rest.rfind('@');
  if (at == std::string_view::npos) return {};
  const std::string_view userinfo = rest.substr(0, at);
  const auto colon = userinfo.find(':');
  if (colon == std::string_view::npos) return {};
  return std::string(userinfo.substr(colon + 1));
}

int ParsePositive(std::string_view key, std::string_view value, int max) {
  int v = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end != value.data() + value.size() || v < 1 || v > max) {
    throw std::runtime_error("postgres: invalid database url parameter " + std::string(key) +
                             " (expected an integer from 1 to " + std::to_string(max) + ")");
  }
  return v;
}

// Splits the store's own parameters (pool_size, pool_timeout_ms) off the url and turns the rest
// into libpq keywords, adding connect_timeout=2, client_encoding=UTF8 and application_name
// unless the url sets them.
ConnParams ParseUrl(const std::string& url, int* pool_size, std::chrono::milliseconds* timeout) {
  const std::string raw_password = RawPassword(url);
  const auto q = url.find('?');
  std::string libpq_url = url.substr(0, q);
  if (q != std::string::npos) {
    std::string_view query = std::string_view(url).substr(q + 1);
    char sep = '?';
    while (!query.empty()) {
      const auto amp = query.find('&');
      const std::string_view part = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
      if (part.empty()) continue;
      const auto eq = part.find('=');
      const std::string_view key = part.substr(0, eq);
      const std::string_view value =
          eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1);
      if (key == "pool_size") {
        *pool_size = ParsePositive(key, value, kMaxPoolSize);
      } else if (key == "pool_timeout_ms") {
        *timeout = std::chrono::milliseconds(ParsePositive(key, value, 3600 * 1000));
      } else {
        libpq_url += sep;
        libpq_url += part;
        sep = '&';
      }
    }
  }
  char* err = nullptr;
  PQconninfoOption* options = PQconninfoParse(libpq_url.c_str(), &err);
  if (options == nullptr) {
    std::string message = Scrub(TrimmedMessage(err), raw_password);
    if (err != nullptr) PQfreemem(err);
    throw std::runtime_error("postgres: invalid database url: " + message);
  }
  ConnParams params;
  std::string host;
  std::string port;
  std::string dbname;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    const std::string_view k = o->keyword;
    params.keywords.emplace_back(k);
    params.values.emplace_back(o->val);
    if (k == "password") params.password = o->val;
    if (k == "host" || k == "hostaddr") host = o->val;
    if (k == "port") port = o->val;
    if (k == "dbname") dbname = o->val;
  }
  PQconninfoFree(options);
  const auto add_default = [&](const char* key, const char* value) {
    if (std::find(params.keywords.begin(), params.keywords.end(), key) == params.keywords.end()) {
      params.keywords.emplace_back(key);
      params.values.emplace_back(value);
    }
  };
  // A server that does not answer: connecting gives up after 2 s; an established connection
  // whose peer vanished (no RST) is dropped once sent data stays unacknowledged for 10 s, or
  // after about a minute of failed keepalive probes while waiting for an answer.
  add_default("connect_timeout", "2");
  add_default("tcp_user_timeout", "10000");
  add_default("keepalives_idle", "30");
  add_default("keepalives_interval", "10");
  add_default("keepalives_count", "3");
  add_default("client_encoding", "UTF8");
  add_default("application_name", "connreg");
  params.description = "postgres server " + (host.empty() ? std::string("(default host)") : host) +
                       (port.empty() ? "" : ":" + port) +
                       (dbname.empty() ? "" : " database " + dbname);
  params.description = Scrub(Scrub(params.description, params.password), raw_password);
  if (params.password.empty()) params.password = raw_password;
  return params;
}

}  // namespace

// ---- statements and connections ------------------------------------------------------------

class Connection;

// One prepared statement of a connection. Parameters go in text format, except BYTEA values,
// which go in binary so that any byte survives; a parameter not bound is NULL. The value buffers
// are kept across executions, so a statement run again allocates only for longer values.
class Statement final : public sql::Statement {
 public:
  Statement(Connection& conn, std::string name, const std::string& sql, int params)
      : conn_(conn),
        name_(std::move(name)),
        sql_(sql),
        values_(static_cast<std::size_t>(params)),
        null_(static_cast<std::size_t>(params), true),
        formats_(static_cast<std::size_t>(params), 0),
        pointers_(static_cast<std::size_t>(params)),
        lengths_(static_cast<std::size_t>(params)) {}

  // The server no longer knows the statement (SQLSTATE 26000): prepare it again next time.
  bool stale() const { return stale_; }

  void BindNull(int i) override { null_[Index(i)] = true; }
  void BindInt(int i, std::int64_t v) override {
    char buf[24];
    const auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
    Set(i, std::string_view(buf, static_cast<std::size_t>(end - buf)), 0);
  }
  void BindBool(int i, bool v) override { Set(i, v ? "true" : "false", 0); }
  void BindText(int i, std::string_view v) override {
    // Text goes NUL-terminated: a NUL inside would cut the value short without a word.
    if (v.find('\0') != std::string_view::npos) has_nul_ = true;
    Set(i, v, 0);
  }
  void BindBytes(int i, std::string_view v) override { Set(i, v, 1); }

  Result<bool> Step() override;
  std::int64_t Changes() const override {
    const char* n = PQcmdTuples(result_.get());
    std::int64_t v = 0;
    if (n != nullptr) std::from_chars(n, n + std::char_traits<char>::length(n), v);
    return v;
  }

  bool IsNull(int col) const override { return PQgetisnull(result_.get(), row_, col) != 0; }
  std::int64_t Int(int col) const override {
    const char* p = PQgetvalue(result_.get(), row_, col);
    std::int64_t v = 0;
    std::from_chars(p, p + PQgetlength(result_.get(), row_, col), v);
    return v;
  }
  bool Bool(int col) const override { return PQgetvalue(result_.get(), row_, col)[0] == 't'; }
  std::string_view Text(int col) const override {
    return {PQgetvalue(result_.get(), row_, col),
            static_cast<std::size_t>(PQgetlength(result_.get(), row_, col))};
  }
  std::string Bytes(int col) const override {
    std::size_t n = 0;
    unsigned char* raw = PQunescapeBytea(
        reinterpret_cast<const unsigned char*>(PQgetvalue(result_.get(), row_, col)), &n);
    if (raw == nullptr) throw std::bad_alloc();
    std::string out(reinterpret_cast<const char*>(raw), n);
    PQfreemem(raw);
    return out;
  }
  int ColumnIndex(std::string_view name) const override {
    const int n = PQnfields(result_.get());
    for (int i = 0; i < n; ++i) {
      if (name == PQfname(result_.get(), i)) return i;
    }
    return -1;
  }
  void Reset() override {
    result_.reset();
    executed_ = false;
    row_ = 0;
    rows_ = 0;
    has_nul_ = false;
    std::fill(null_.begin(), null_.end(), true);
  }

 private:
  static std::size_t Index(int i) { return static_cast<std::size_t>(i - 1); }
  void Set(int i, std::string_view v, int format) {
    const std::size_t at = Index(i);
    values_[at].assign(v);
    null_[at] = false;
    formats_[at] = format;
  }

  Connection& conn_;
  const std::string name_;  // of the prepared statement on the server
  const std::string sql_;   // for messages
  std::vector<std::string> values_;
  std::vector<bool> null_;
  std::vector<int> formats_;
  std::vector<const char*> pointers_;
  std::vector<int> lengths_;
  bool has_nul_ = false;
  bool stale_ = false;
  PgResult result_;
  bool executed_ = false;
  int row_ = 0;
  int rows_ = 0;
};

// One PGconn and the statements prepared on it, by Query slot. Used by one thread at a time (the
// pool hands it out exclusively).
class Connection final : public sql::Session {
 public:
  static Result<std::unique_ptr<Connection>> Open(const ConnParams& params) {
    std::vector<const char*> keys;
    std::vector<const char*> values;
    for (std::size_t i = 0; i < params.keywords.size(); ++i) {
      keys.push_back(params.keywords[i].c_str());
      values.push_back(params.values[i].c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    PGconn* conn = PQconnectdbParams(keys.data(), values.data(), 0);
    if (conn == nullptr) return Error::Unavailable("postgres: out of memory while connecting");
    auto owned = std::unique_ptr<Connection>(new Connection(conn, &params));
    // Server notices ("relation already exists, skipping", a shutdown notice) are not errors;
    // libpq would print them on stderr.
    PQsetNoticeProcessor(
        conn, [](void*, const char*) {}, nullptr);
    if (PQstatus(conn) != CONNECTION_OK) {
      return Error::Unavailable("postgres: cannot connect to " + params.description + ": " +
                                Scrub(TrimmedMessage(PQerrorMessage(conn)), params.password));
    }
    return owned;
  }

  ~Connection() override {
    cache_.clear();
    PQfinish(conn_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  PGconn* raw() const { return conn_; }
  bool broken() const { return broken_ || PQstatus(conn_) != CONNECTION_OK; }
  void MarkBroken() { broken_ = true; }
  const std::string& last_sqlstate() const { return last_sqlstate_; }
  bool InTransaction() const { return PQtransactionStatus(conn_) != PQTRANS_IDLE; }

  // Cheap, non-blocking check of an idle connection: reads whatever the server sent meanwhile
  // (an administrator shutdown notice, the end of the stream), which marks a dead one bad.
  bool CheckAlive() {
    if (broken()) return false;
    if (PQconsumeInput(conn_) == 0) broken_ = true;
    while (PGnotify* n = PQnotifies(conn_)) PQfreemem(n);
    if (PQtransactionStatus(conn_) == PQTRANS_UNKNOWN) broken_ = true;
    return !broken();
  }

  Result<sql::Stmt> Prepare(const sql::Query& query) override {
    if (broken()) return Error::Unavailable("postgres: the connection is broken");
    if (query.slot() >= cache_.size()) cache_.resize(query.slot() + 1);
    std::unique_ptr<Statement>& st = cache_[query.slot()];
    if (st == nullptr || st->stale()) {
      std::string name = "connreg_" + std::to_string(next_statement_++);
      PgResult prepared(PQprepare(conn_, name.c_str(), query.sql().c_str(), 0, nullptr));
      if (Status s = Check(prepared, query.sql()); !s) return std::move(s).error();
      st = std::make_unique<Statement>(*this, std::move(name), query.sql(), query.param_count());
    }
    return sql::Stmt(*st, query);
  }

  // SQL without parameters, possibly several statements (BEGIN, COMMIT, migrations, locks).
  Status Exec(std::string_view sql) override { return Run(std::string(sql).c_str()); }
  Status Run(const char* sql) {
    if (broken()) return Error::Unavailable("postgres: the connection is broken");
    PgResult rows(PQexec(conn_, sql));
    return Check(rows, sql);
  }

  // Checks the result of a statement: OK, or the error it carries, mapped.
  Status Check(const PgResult& result, std::string_view context) {
    const PGresult* r = result.get();
    if (r != nullptr) {
      const ExecStatusType st = PQresultStatus(r);
      if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        last_sqlstate_.clear();
        return OkStatus();
      }
    }
    return ErrorFrom(r, context);
  }

  // Maps a failed result to the store's error vocabulary (store.h). Messages of kNotFound and
  // kConflict may reach a client, so they never carry the server's text; the others carry it
  // for the log.
  Error ErrorFrom(const PGresult* r, std::string_view context) {
    const char* state = r != nullptr ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    last_sqlstate_ = state != nullptr ? state : "";
    const std::string_view sqlstate = last_sqlstate_;
    std::string text = TrimmedMessage(r != nullptr ? PQresultErrorMessage(r) : nullptr);
    if (text.empty()) text = TrimmedMessage(PQerrorMessage(conn_));
    text = Scrub(std::move(text), params_->password);
    const bool dead = PQstatus(conn_) != CONNECTION_OK;
    if (dead || sqlstate.starts_with("08") || sqlstate == "57P01" || sqlstate == "57P02" ||
        sqlstate == "57P03") {
      broken_ = true;
      return Error::Unavailable("postgres: the database is unavailable: " + text);
    }
    if (sqlstate.starts_with("53") || sqlstate == "57014") {
      return Error::Unavailable("postgres: the database is overloaded: " + text);
    }
    if (sqlstate == "40001" || sqlstate == "40P01") {
      return Error::Unavailable("postgres: serialization failure or deadlock: " + text);
    }
    if (sqlstate == "23503") return Error::NotFound("a referenced object does not exist");
    if (sqlstate == "23505") return Error::Conflict("the object already exists");
    if (sqlstate.starts_with("23")) {
      return Error::Conflict("the object violates a constraint of the store");
    }
    std::string message = "postgres: " + text;
    if (!last_sqlstate_.empty()) message += " (SQLSTATE " + last_sqlstate_ + ")";
    if (!context.empty()) {
      message += " in: ";
      message += context.substr(0, 120);
    }
    return Error::Internal(std::move(message));
  }

 private:
  Connection(PGconn* conn, const ConnParams* params) : conn_(conn), params_(params) {}

  PGconn* conn_;
  const ConnParams* params_;
  bool broken_ = false;
  std::string last_sqlstate_;
  int next_statement_ = 1;
  std::vector<std::unique_ptr<Statement>> cache_;  // by Query::slot
};

Result<bool> Statement::Step() {
  if (executed_) return ++row_ < rows_;
  if (has_nul_) return Error::BadRequest("a value contains a NUL byte");
  if (conn_.broken()) return Error::Unavailable("postgres: the connection is broken");
  for (std::size_t i = 0; i < values_.size(); ++i) {
    pointers_[i] = null_[i] ? nullptr : values_[i].c_str();
    lengths_[i] = null_[i] ? 0 : static_cast<int>(values_[i].size());
  }
  result_.reset(PQexecPrepared(conn_.raw(), name_.c_str(), static_cast<int>(values_.size()),
                               pointers_.data(), lengths_.data(), formats_.data(), 0));
  if (Status s = conn_.Check(result_, sql_); !s) {
    // 26000: the statement is unknown to the server after all.
    if (conn_.last_sqlstate() == "26000") stale_ = true;
    return std::move(s).error();
  }
  executed_ = true;
  row_ = 0;
  rows_ = PQntuples(result_.get());
  return rows_ > 0;
}

// ---- the pool ------------------------------------------------------------------------------

// The pool of a store's connections, and its transactions.
class Database final : public sql::Database {
 public:
  Database(const std::string& url, PostgresOptions options) {
    int pool_size = kDefaultPoolSize;
    std::chrono::milliseconds timeout = kDefaultAcquireTimeout;
    params_ = ParseUrl(url, &pool_size, &timeout);
    if (options.pool_size > 0) pool_size = std::min(options.pool_size, kMaxPoolSize);
    if (options.acquire_timeout.count() > 0) timeout = options.acquire_timeout;
    pool_size_ = pool_size;
    metrics::SetPoolSize(metrics::Pool::kDatabase, pool_size);
    acquire_timeout_ = timeout;
    auto conn = Connection::Open(params_);
    if (!conn) throw std::runtime_error(conn.error().message);
    // The first connection runs the migrations, then serves in the pool.
    idle_.push_back(std::move(*conn));
    open_ = 1;
  }

  int pool_size() const { return pool_size_; }
  std::chrono::milliseconds acquire_timeout() const { return acquire_timeout_; }

  const sql::Dialect& dialect() const override { return kPostgresDialect; }
  bool PointReadsAreLocal() const override { return false; }
  bool Shared() const override { return true; }

  // kPoint runs the body outside any transaction; a body that met a dead connection is run once
  // more on a fresh one. kSnapshot and kWrite run it inside BEGIN ... COMMIT (kSnapshot:
  // REPEATABLE READ READ ONLY, one snapshot), again after a serialization failure or a
  // deadlock, and once more on a fresh connection when the pooled one turned out dead before
  // anything was committed.
  Status Run(sql::Access access, const char* operation,
             sql::FunctionRef<Status(sql::Session&)> body) override {
    if (access == sql::Access::kPoint) {
      for (int reconnects = 0;; ++reconnects) {
        auto lease = Acquire();
        if (!lease) return std::move(lease).error();
        Status s = body(lease->get());
        if (s || !lease->get().broken() || reconnects >= 1) return s;
      }
    }
    const char* begin = access == sql::Access::kSnapshot
                            ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
                            : "BEGIN";
    for (int attempt = 1, reconnects = 0;;) {
      auto lease = Acquire();
      if (!lease) return std::move(lease).error();
      Connection& db = lease->get();
      bool committing = false;
      Status s = db.Run(begin);
      if (s) s = body(db);
      if (s) {
        committing = true;
        s = db.Run("COMMIT");
      }
      if (s) return OkStatus();
      // A connection that died before COMMIT committed nothing: once more on a fresh one. (After
      // a lost COMMIT the outcome is unknown, so that is reported, not retried.)
      if (db.broken() && !committing && reconnects++ < 1) continue;
      if (Retryable(db.last_sqlstate())) {
        if (attempt++ < kMaxTransactionAttempts) {
          thread_local std::minstd_rand jitter(std::random_device{}());
          std::this_thread::sleep_for(std::chrono::milliseconds(5 * attempt + jitter() % 10));
          continue;
        }
        return Error::Unavailable(std::string("postgres: ") + operation +
                                  ": gave up after repeated serialization failures or deadlocks");
      }
      const Error& e = s.error();
      if (e.code == ErrorCode::kInternal || e.code == ErrorCode::kUnavailable) {
        return Error{e.code, std::string(operation) + ": " + e.message};
      }
      return s;
    }
  }

  // Under a session advisory lock, so concurrent starters (other nodes) wait for each other. The
  // lock is released explicitly, or with the connection, which is closed when anything failed.
  Status Migrate(sql::FunctionRef<Status(sql::Session&)> body) override {
    auto lease = Acquire();
    if (!lease) return std::move(lease).error();
    Connection& db = lease->get();
    const std::string lock = "SELECT pg_advisory_lock(" + std::string(kMigrationLockKey) + ")";
    if (Status s = db.Run(lock.c_str()); !s) {
      db.MarkBroken();
      return Error{s.error().code,
                   "postgres: cannot take the migration lock: " + s.error().message};
    }
    Status s = body(db);
    const std::string unlock = "SELECT pg_advisory_unlock(" + std::string(kMigrationLockKey) + ")";
    if (s) {
      if (Status u = db.Run(unlock.c_str()); !u) {
        s = Error{u.error().code,
                  "postgres: cannot release the migration lock: " + u.error().message};
      }
    }
    if (!s) db.MarkBroken();
    return s;
  }

  // SELECT 1 sent asynchronously and waited for at most kPingTimeout: a server that accepts the
  // connection but does not answer is reported, and its connection dropped.
  Status Ping() override {
    for (int reconnects = 0;; ++reconnects) {
      auto lease = Acquire();
      if (!lease) return std::move(lease).error();
      Connection& db = lease->get();
      PGconn* conn = db.raw();
      const auto deadline = std::chrono::steady_clock::now() + kPingTimeout;
      auto fail = [&](const std::string& why) -> Status {
        db.MarkBroken();
        return Error::Unavailable("postgres: ping failed: " + why);
      };
      Status s = OkStatus();
      if (PQsendQuery(conn, "SELECT 1") == 0) {
        s = fail(TrimmedMessage(PQerrorMessage(conn)));
      } else {
        for (;;) {
          if (PQconsumeInput(conn) == 0) {
            s = fail(TrimmedMessage(PQerrorMessage(conn)));
            break;
          }
          if (PQisBusy(conn) == 0) break;
          const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
              deadline - std::chrono::steady_clock::now());
          if (left.count() <= 0) {
            s = fail("no answer within " + std::to_string(kPingTimeout.count()) + " ms");
            break;
          }
          pollfd pfd{PQsocket(conn), POLLIN, 0};
          if (poll(&pfd, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) {
            s = fail("poll failed");
            break;
          }
        }
        if (s) {
          bool answered = false;
          while (PGresult* raw = PQgetResult(conn)) {
            PgResult r(raw);
            if (PQresultStatus(raw) == PGRES_TUPLES_OK && PQntuples(raw) == 1 &&
                std::string_view(PQgetvalue(raw, 0, 0)) == "1") {
              answered = true;
            } else if (s) {
              s = db.ErrorFrom(raw, "SELECT 1");
            }
          }
          if (s && !answered) s = Error::Internal("postgres: SELECT 1 returned no row");
        }
      }
      if (s || !db.broken() || reconnects >= 1) return s;
    }
  }

  // Holds one connection until destroyed (PostgresStore::HoldConnectionForTest).
  class Hold final : public PostgresStore::Hold {
   public:
    Hold(Database* db, std::unique_ptr<Connection> conn) : db_(db), conn_(std::move(conn)) {}
    ~Hold() override { db_->Release(std::move(conn_)); }

   private:
    Database* db_;
    std::unique_ptr<Connection> conn_;
  };

  Result<std::unique_ptr<PostgresStore::Hold>> HoldConnection() {
    auto lease = Acquire();
    if (!lease) return std::move(lease).error();
    return std::unique_ptr<PostgresStore::Hold>(std::make_unique<Hold>(this, lease->Take()));
  }

 private:
  // Exclusive use of one pooled connection; gives it back to the pool when destroyed.
  class Lease {
   public:
    Lease(Database* db, std::unique_ptr<Connection> conn) : db_(db), conn_(std::move(conn)) {}
    Lease(Lease&&) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (conn_) db_->Release(std::move(conn_));
    }
    Connection& get() { return *conn_; }
    // Ends the lease without giving the connection back (the caller returns it later).
    std::unique_ptr<Connection> Take() { return std::move(conn_); }

   private:
    Database* db_;
    std::unique_ptr<Connection> conn_;
  };

  // A connection from the pool: an idle one (checked, replaced when broken), or a new one while
  // fewer than pool_size are open; waits up to acquire_timeout_ for one to come back.
  Result<Lease> Acquire() {
    const auto deadline = std::chrono::steady_clock::now() + acquire_timeout_;
    std::unique_lock lock(mu_);
    for (;;) {
      while (!idle_.empty()) {
        std::unique_ptr<Connection> conn = std::move(idle_.back());
        idle_.pop_back();
        lock.unlock();
        if (conn->CheckAlive()) {
          metrics::AddPoolInUse(metrics::Pool::kDatabase, 1);
          return Lease(this, std::move(conn));
        }
        conn.reset();
        DropIdle();  // its siblings most likely died with it (a server restart)
        lock.lock();
        --open_;
        cv_.notify_all();
      }
      if (open_ < pool_size_) {
        ++open_;
        lock.unlock();
        auto conn = Connection::Open(params_);
        if (!conn) {
          {
            std::lock_guard relock(mu_);
            --open_;
          }
          cv_.notify_one();
          return std::move(conn).error();
        }
        metrics::AddPoolInUse(metrics::Pool::kDatabase, 1);
        return Lease(this, std::move(*conn));
      }
      metrics::AddPoolWaiting(metrics::Pool::kDatabase, 1);
      bool timed_out = cv_.wait_until(lock, deadline) == std::cv_status::timeout;
      metrics::AddPoolWaiting(metrics::Pool::kDatabase, -1);
      if (timed_out && idle_.empty() && open_ >= pool_size_) {
        return Error::Unavailable("the database connection pool is exhausted");
      }
    }
  }

  void Release(std::unique_ptr<Connection> conn) {
    metrics::AddPoolInUse(metrics::Pool::kDatabase, -1);
    if (!conn->broken() && conn->InTransaction()) {
      (void)conn->Run("ROLLBACK");
      if (conn->InTransaction()) conn->MarkBroken();
    }
    if (conn->broken()) {
      conn.reset();
      {
        std::lock_guard lock(mu_);
        --open_;
      }
      cv_.notify_all();
      DropIdle();
      return;
    }
    {
      std::lock_guard lock(mu_);
      idle_.push_back(std::move(conn));
    }
    cv_.notify_one();
  }

  // Closes every idle connection: called when one was found broken, as its siblings most
  // likely are too (a server restart).
  void DropIdle() {
    std::vector<std::unique_ptr<Connection>> dropped;
    {
      std::lock_guard lock(mu_);
      dropped.swap(idle_);
      open_ -= static_cast<int>(dropped.size());
    }
    if (!dropped.empty()) cv_.notify_all();
    // `dropped` closes here, outside the lock.
  }

  // For libpq; may hold a password, which no message ever shows. Connections point at it.
  ConnParams params_;
  int pool_size_ = kDefaultPoolSize;
  std::chrono::milliseconds acquire_timeout_{kDefaultAcquireTimeout};

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by mu_
  int open_ = 0;                                   // leased + idle + being opened; mu_
};

}  // namespace postgres_internal

PostgresStore::PostgresStore(const std::string& url, PostgresOptions options)
    : PostgresStore(std::make_unique<postgres_internal::Database>(url, options)) {}

PostgresStore::PostgresStore(std::unique_ptr<postgres_internal::Database> db)
    : SqlStore(std::move(db)), pg_(static_cast<postgres_internal::Database&>(database())) {}

int PostgresStore::pool_size() const { return pg_.pool_size(); }

std::chrono::milliseconds PostgresStore::acquire_timeout() const { return pg_.acquire_timeout(); }

Result<std::unique_ptr<PostgresStore::Hold>> PostgresStore::HoldConnectionForTest() {
  return pg_.HoldConnection();
}

}  // namespace connreg::store
