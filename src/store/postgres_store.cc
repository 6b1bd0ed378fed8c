#include "store/postgres_store.h"

#include <libpq-fe.h>
#include <poll.h>
#include <sodium.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <exception>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <string_view>
#include <system_error>
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
namespace postgres_internal {
namespace {

constexpr int kDefaultPoolSize = 8;
constexpr int kMaxPoolSize = 1000;
constexpr std::chrono::milliseconds kDefaultAcquireTimeout{2000};
constexpr std::chrono::milliseconds kPingTimeout{2000};
constexpr int kMaxPageSize = 1000;
constexpr std::size_t kServerKeyBytes = 32;
// Attempts of one transaction that keeps failing with a serialization failure or deadlock.
constexpr int kMaxTransactionAttempts = 4;
// The session advisory lock that serialises migrations across nodes ("connreg" in ASCII).
constexpr std::string_view kMigrationLockKey = "27988542784431463";
// The transaction advisory lock that serialises the first-start bootstrap across nodes.
constexpr std::string_view kBootstrapLockKey = "27988542784431464";

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

}  // namespace

// A byte string bound as BYTEA (sent in binary format).
struct Bytea {
  std::string_view bytes;
};

// The parameters of one statement ($1, $2, ... in order), as libpq wants them: text format,
// except BYTEA values, which go in binary so that any byte survives.
class Params {
 public:
  template <class... Args>
  explicit Params(const Args&... args) {
    (Add(args), ...);
  }
  template <class... Args>
  Params& Append(const Args&... args) {
    (Add(args), ...);
    return *this;
  }

  bool has_nul() const { return has_nul_; }
  int size() const { return static_cast<int>(values_.size()); }
  const std::vector<std::optional<std::string>>& values() const { return values_; }
  const std::vector<int>& formats() const { return formats_; }

 private:
  void Add(std::string_view v) {
    // Text goes NUL-terminated: a NUL inside would cut the value short without a word.
    if (v.find('\0') != std::string_view::npos) has_nul_ = true;
    values_.emplace_back(std::string(v));
    formats_.push_back(0);
  }
  void Add(const std::string& v) { Add(std::string_view(v)); }
  void Add(const char* v) { Add(std::string_view(v)); }
  void Add(const Bytea& v) {
    values_.emplace_back(std::string(v.bytes));
    formats_.push_back(1);
  }
  void Add(std::int64_t v) {
    values_.emplace_back(std::to_string(v));
    formats_.push_back(0);
  }
  void Add(int v) { Add(static_cast<std::int64_t>(v)); }
  void Add(bool v) {
    values_.emplace_back(v ? "true" : "false");
    formats_.push_back(0);
  }
  void Add(std::nullopt_t) {
    values_.emplace_back(std::nullopt);
    formats_.push_back(0);
  }
  template <class T>
  void Add(const std::optional<T>& v) {
    if (v) {
      Add(*v);
    } else {
      Add(std::nullopt);
    }
  }

  std::vector<std::optional<std::string>> values_;
  std::vector<int> formats_;
  bool has_nul_ = false;
};

// The rows of one statement (text format), owning its PGresult.
class Rows {
 public:
  explicit Rows(PGresult* r) : r_(r) {}
  Rows(Rows&& other) noexcept : r_(std::exchange(other.r_, nullptr)) {}
  Rows& operator=(Rows&&) = delete;
  ~Rows() {
    if (r_ != nullptr) PQclear(r_);
  }

  int Count() const { return PQntuples(r_); }
  // Rows changed by an INSERT, UPDATE or DELETE.
  std::int64_t Affected() const {
    const char* n = PQcmdTuples(r_);
    std::int64_t v = 0;
    if (n != nullptr) std::from_chars(n, n + std::char_traits<char>::length(n), v);
    return v;
  }
  bool IsNull(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
  std::string Text(int row, int col) const {
    return std::string(PQgetvalue(r_, row, col),
                       static_cast<std::size_t>(PQgetlength(r_, row, col)));
  }
  std::int64_t Int(int row, int col) const {
    const char* p = PQgetvalue(r_, row, col);
    std::int64_t v = 0;
    std::from_chars(p, p + PQgetlength(r_, row, col), v);
    return v;
  }
  bool Bool(int row, int col) const { return PQgetvalue(r_, row, col)[0] == 't'; }
  std::string Bytes(int row, int col) const {
    std::size_t n = 0;
    unsigned char* raw =
        PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(r_, row, col)), &n);
    if (raw == nullptr) throw std::bad_alloc();
    std::string out(reinterpret_cast<const char*>(raw), n);
    PQfreemem(raw);
    return out;
  }
  std::optional<std::int64_t> OptionalInt(int row, int col) const {
    if (IsNull(row, col)) return std::nullopt;
    return Int(row, col);
  }
  std::optional<std::string> OptionalText(int row, int col) const {
    if (IsNull(row, col)) return std::nullopt;
    return Text(row, col);
  }
  const PGresult* get() const { return r_; }

 private:
  PGresult* r_;
};

// The libpq connection parameters of a store, parsed once from its url.
struct ConnParams {
  std::vector<std::string> keywords;
  std::vector<std::string> values;
  std::string password;     // decoded, only to scrub it from messages
  std::string description;  // host, port and database, for messages
};

// One PGconn and the statements prepared on it, keyed by SQL text. Used by one thread at a time
// (the pool hands it out exclusively).
class Connection {
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

  ~Connection() { PQfinish(conn_); }
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

  // Runs the statement `sql` (one statement, parameters $1...), prepared on this connection at
  // its first use.
  Result<Rows> Exec(std::string_view sql, const Params& params) {
    if (params.has_nul()) return Error::BadRequest("a value contains a NUL byte");
    if (broken()) return Error::Unavailable("postgres: the connection is broken");
    auto it = prepared_.find(sql);
    if (it == prepared_.end()) {
      std::string name = "connreg_" + std::to_string(next_statement_++);
      Rows prepared(PQprepare(conn_, name.c_str(), std::string(sql).c_str(), 0, nullptr));
      if (Status s = Check(prepared, sql); !s) return s.error();
      it = prepared_.emplace(std::string(sql), std::move(name)).first;
    }
    std::vector<const char*> values;
    std::vector<int> lengths;
    values.reserve(static_cast<std::size_t>(params.size()));
    lengths.reserve(static_cast<std::size_t>(params.size()));
    for (const auto& v : params.values()) {
      values.push_back(v ? v->c_str() : nullptr);
      lengths.push_back(v ? static_cast<int>(v->size()) : 0);
    }
    Rows rows(PQexecPrepared(conn_, it->second.c_str(), params.size(), values.data(),
                             lengths.data(), params.formats().data(), 0));
    if (Status s = Check(rows, sql); !s) {
      // 26000: the statement is unknown to the server after all; prepare it again next time.
      if (last_sqlstate_ == "26000") prepared_.erase(it);
      return s.error();
    }
    return rows;
  }

  // Runs SQL without parameters, possibly several statements (BEGIN, COMMIT, migrations).
  Status Run(const std::string& sql) {
    if (broken()) return Error::Unavailable("postgres: the connection is broken");
    Rows rows(PQexec(conn_, sql.c_str()));
    return Check(rows, sql);
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

  Status Check(const Rows& rows, std::string_view context) {
    const PGresult* r = rows.get();
    if (r != nullptr) {
      const ExecStatusType st = PQresultStatus(r);
      if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        last_sqlstate_.clear();
        return OkStatus();
      }
    }
    return ErrorFrom(r, context);
  }

  struct SqlHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  PGconn* conn_;
  const ConnParams* params_;
  bool broken_ = false;
  std::string last_sqlstate_;
  int next_statement_ = 1;
  std::unordered_map<std::string, std::string, SqlHash, std::equal_to<>> prepared_;
};

namespace {

// Runs one statement that returns no rows; the number of rows it changed.
template <class... Args>
Result<std::int64_t> Execute(Connection& db, std::string_view sql, const Args&... args) {
  auto rows = db.Exec(sql, Params(args...));
  if (!rows) return rows.error();
  return rows->Affected();
}

template <class... Args>
Status ExecuteStatus(Connection& db, std::string_view sql, const Args&... args) {
  auto rows = db.Exec(sql, Params(args...));
  if (!rows) return rows.error();
  return OkStatus();
}

template <class... Args>
Result<Rows> Query(Connection& db, std::string_view sql, const Args&... args) {
  return db.Exec(sql, Params(args...));
}

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

// The connection and its secrets in one statement (one snapshot, one round trip): a row per
// secret, or one with NULL secret columns; the secret's field, sealed, key_id and updated_at
// follow the connection's columns, from kSecretColumn.
constexpr int kSecretColumn = static_cast<int>(std::ranges::count(kConnectionColumns, ',')) + 1;
const std::string& GetConnectionSql() {
  static const std::string sql =
      "SELECT c.*, s.field, s.sealed, s.key_id, s.updated_at FROM (SELECT " +
      std::string(kConnectionColumns) +
      " FROM connections WHERE connection_id = $1 AND organization_id = $2) AS c"
      " LEFT JOIN connection_secrets AS s ON s.connection_id = c.connection_id";
  return sql;
}

// The listing filters, shared by the page and count queries: $1 organization, $2 include
// archived, $3 folded search needle or NULL, $4 type or NULL. strpos is a plain substring
// search: no LIKE pattern characters.
constexpr std::string_view kListFilter =
    " WHERE organization_id = $1 AND ($2::boolean OR NOT is_archived)"
    " AND ($3::text IS NULL OR strpos(name_folded, $3::text) > 0)"
    " AND ($4::text IS NULL OR type = $4::text)";

// A non-admin's view (ListQuery::visible_to_member), appended to kListFilter: $5 is the member.
constexpr std::string_view kVisibleFilter =
    " AND (EXISTS (SELECT 1 FROM grants AS g WHERE g.connection_id = connections.connection_id"
    " AND g.member_id = $5::text)"
    " OR EXISTS (SELECT 1 FROM grants AS g WHERE g.connection_id = connections.connection_id"
    " AND g.team_id IN (SELECT tm.team_id FROM team_members AS tm WHERE tm.member_id = $5::text)))";

std::string Param(int n) { return "$" + std::to_string(n); }

// The text columns are COLLATE "C" (migration 1), so the order and the row comparison are in
// byte order, served by connections_by_name. The parameters after the filter's start at $5, or
// $6 when the visibility filter takes $5.
std::string MakeListSql(bool keyset, bool visible) {
  const int p = visible ? 6 : 5;
  std::string sql =
      "SELECT " + std::string(kConnectionColumns) + " FROM connections" + std::string(kListFilter);
  if (visible) sql += kVisibleFilter;
  if (keyset) {
    sql += " AND (name, created_at, connection_id) > (" + Param(p) + "::text, " + Param(p + 1) +
           "::bigint, " + Param(p + 2) + "::text) ORDER BY name, created_at, connection_id LIMIT " +
           Param(p + 3) + "::bigint";
  } else {
    sql += " ORDER BY name, created_at, connection_id LIMIT " + Param(p) + "::bigint OFFSET " +
           Param(p + 1) + "::bigint";
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

// Parameters $1..$22 in the column order of both statements; the UPDATE adds $23, the version
// it expects.
constexpr std::string_view kInsertConnectionSql =
    "INSERT INTO connections (organization_id, connection_id, name, name_folded, type, "
    "is_sample, is_archived, use_oauth, write_access, use_friendly_names, timeout_secs, "
    "created_by, updated_by, created_at, updated_at, last_active_at, version, details, "
    "description, last_test_at, last_test_read, last_test_write) VALUES ($1, $2, $3, $4, $5, "
    "$6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)";

constexpr std::string_view kUpdateConnectionSql =
    "UPDATE connections SET name = $3, name_folded = $4, type = $5, is_sample = $6, "
    "is_archived = $7, use_oauth = $8, write_access = $9, use_friendly_names = $10, "
    "timeout_secs = $11, created_by = $12, updated_by = $13, created_at = $14, "
    "updated_at = $15, last_active_at = $16, version = $17, details = $18, description = $19, "
    "last_test_at = $20, last_test_read = $21, last_test_write = $22 "
    "WHERE organization_id = $1 AND connection_id = $2 AND version = $23";

Params ConnectionParams(const domain::Connection& c) {
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
  return Params(c.organization_id, c.connection_id, c.name, domain::FoldName(c.name), c.type,
                c.is_sample, c.is_archived, c.use_oauth, c.write_access, c.use_friendly_names,
                c.timeout_secs, c.created_by, c.updated_by, c.created_at, c.updated_at,
                c.last_active_at, c.version, boost::json::serialize(c.details), description,
                test_at, test_read, test_write);
}

// Reads a row selected with kConnectionColumns; secrets are loaded separately.
Result<domain::Connection> ReadConnection(const Rows& r, int row) {
  domain::Connection c;
  c.organization_id = r.Text(row, 0);
  c.connection_id = r.Text(row, 1);
  c.name = r.Text(row, 2);
  c.type = r.Text(row, 3);
  c.is_sample = r.Bool(row, 4);
  c.is_archived = r.Bool(row, 5);
  c.use_oauth = r.Bool(row, 6);
  c.write_access = r.Bool(row, 7);
  c.use_friendly_names = r.Bool(row, 8);
  if (auto t = r.OptionalInt(row, 9)) c.timeout_secs = static_cast<int>(*t);
  c.created_by = r.Text(row, 10);
  c.updated_by = r.Text(row, 11);
  c.created_at = r.Int(row, 12);
  c.updated_at = r.Int(row, 13);
  c.last_active_at = r.Int(row, 14);
  c.version = r.Int(row, 15);
  auto details = ParseObject(r.Text(row, 16), "details");
  if (!details) return details.error();
  c.details = std::move(*details);
  if (!r.IsNull(row, 17)) {
    auto description = ParseObject(r.Text(row, 17), "description");
    if (!description) return description.error();
    c.description = std::move(*description);
  }
  if (!r.IsNull(row, 18)) {
    c.last_test = domain::LastTest{r.Int(row, 18), r.Text(row, 19), r.Text(row, 20)};
  }
  return c;
}

domain::StoredSecret ReadSecret(const Rows& r, int row, int first_col) {
  return domain::StoredSecret{r.Bytes(row, first_col), r.Text(row, first_col + 1),
                              r.Int(row, first_col + 2)};
}

Status InsertSecrets(Connection& db, const domain::Connection& c) {
  for (const auto& [field, secret] : c.secrets) {
    Status s = ExecuteStatus(db,
                             "INSERT INTO connection_secrets (connection_id, field, sealed, "
                             "key_id, updated_at) VALUES ($1, $2, $3, $4, $5)",
                             c.connection_id, field, Bytea{secret.sealed}, secret.key_id,
                             secret.updated_at);
    if (!s) return s;
  }
  return OkStatus();
}

Status InsertConnection(Connection& db, const domain::Connection& c) {
  auto rows = db.Exec(kInsertConnectionSql, ConnectionParams(c));
  if (!rows) {
    if (rows.error().code == ErrorCode::kConflict) {
      return Error::Conflict("a connection with this id already exists");
    }
    if (rows.error().code == ErrorCode::kNotFound) return Error::NotFound("organization not found");
    return rows.error();
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
  auto rows = Query(db,
                    "SELECT connection_id, field, sealed, key_id, updated_at FROM "
                    "connection_secrets WHERE connection_id IN "
                    "(SELECT jsonb_array_elements_text($1::jsonb))",
                    boost::json::serialize(ids));
  if (!rows) return rows.error();
  for (int i = 0; i < rows->Count(); ++i) {
    auto it = by_id.find(rows->Text(i, 0));
    if (it != by_id.end()) it->second->secrets[rows->Text(i, 1)] = ReadSecret(*rows, i, 2);
  }
  return OkStatus();
}

// ---- url -----------------------------------------------------------------------------------

[[noreturn]] void FailStart(const std::string& what, const Error& e) {
  throw std::runtime_error(what + ": " + e.message);
}

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

// ---- migrations ----------------------------------------------------------------------------

// Applies the pending migrations on `db` (a connection of its own) under a session advisory
// lock, so concurrent starters (other nodes) wait for each other; each migration is one
// transaction and the version is re-read under the lock, so whoever comes second skips what the
// first applied.
void ApplyMigrations(Connection& db) {
  const auto migrations = Migrations();
  const int latest = migrations.empty() ? 0 : migrations.back().version;
  if (Status s = db.Run("SELECT pg_advisory_lock(" + std::string(kMigrationLockKey) + ")"); !s) {
    FailStart("postgres: cannot take the migration lock", s.error());
  }
  // The lock is a session lock: released explicitly below, or with the connection if a
  // migration throws.
  auto applied_version = [&]() -> int {
    auto exists = Query(db, "SELECT to_regclass('schema_migrations') IS NOT NULL");
    if (!exists) FailStart("postgres: cannot read the schema version", exists.error());
    if (!exists->Bool(0, 0)) return 0;
    auto v = Query(db, "SELECT coalesce(max(version), 0) FROM schema_migrations");
    if (!v) FailStart("postgres: cannot read the schema version", v.error());
    return static_cast<int>(v->Int(0, 0));
  };
  const int applied = applied_version();
  if (applied > latest) {
    throw std::runtime_error("postgres: the database schema is at version " +
                             std::to_string(applied) + ", newer than this binary (" +
                             std::to_string(latest) + ")");
  }
  for (const Migration& m : migrations) {
    if (m.version <= applied) continue;
    const std::string what =
        "postgres: migration " + std::to_string(m.version) + " (" + std::string(m.name) + ")";
    if (m.postgres.empty()) throw std::runtime_error(what + " has no PostgreSQL text");
    if (Status s = db.Run("BEGIN"); !s) FailStart(what, s.error());
    Status s = db.Run(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
        "name TEXT NOT NULL, applied_at BIGINT NOT NULL)");
    if (!s) FailStart(what, s.error());
    auto found =
        Query(db, "SELECT 1 FROM schema_migrations WHERE version = $1::integer", m.version);
    if (!found) FailStart(what, found.error());
    if (found->Count() > 0) {
      if (s = db.Run("ROLLBACK"); !s) FailStart(what, s.error());
      continue;
    }
    if (s = db.Run(std::string(m.postgres)); !s) FailStart(what, s.error());
    s = ExecuteStatus(db,
                      "INSERT INTO schema_migrations (version, name, applied_at) "
                      "VALUES ($1, $2, $3)",
                      m.version, m.name, NowMs());
    if (!s) FailStart(what, s.error());
    if (s = db.Run("COMMIT"); !s) FailStart(what, s.error());
  }
  if (Status s = db.Run("SELECT pg_advisory_unlock(" + std::string(kMigrationLockKey) + ")"); !s) {
    FailStart("postgres: cannot release the migration lock", s.error());
  }
}

bool Retryable(const std::string& sqlstate) { return sqlstate == "40001" || sqlstate == "40P01"; }

}  // namespace

}  // namespace postgres_internal

using postgres_internal::Bytea;
using postgres_internal::Connection;
using postgres_internal::Execute;
using postgres_internal::ExecuteStatus;
using postgres_internal::Query;
using postgres_internal::Rows;

// ---- connection pool -----------------------------------------------------------------------

// Exclusive use of one pooled connection; gives it back to the pool when destroyed.
class PostgresStore::Lease {
 public:
  Lease(PostgresStore* store, std::unique_ptr<Connection> conn)
      : store_(store), conn_(std::move(conn)) {}
  Lease(Lease&&) noexcept = default;
  Lease& operator=(Lease&&) = delete;
  ~Lease() {
    if (conn_) store_->Release(std::move(conn_));
  }
  Connection& get() { return *conn_; }
  // Ends the lease without giving the connection back (the caller returns it later).
  std::unique_ptr<Connection> Take() { return std::move(conn_); }

 private:
  PostgresStore* store_;
  std::unique_ptr<Connection> conn_;
};

PostgresStore::Hold::Hold(PostgresStore* store, std::unique_ptr<Connection> conn)
    : store_(store), conn_(std::move(conn)) {}

PostgresStore::Hold::~Hold() {
  if (conn_) store_->Release(std::move(conn_));
}

PostgresStore::PostgresStore(const std::string& url, PostgresOptions options) {
  int pool_size = postgres_internal::kDefaultPoolSize;
  std::chrono::milliseconds timeout = postgres_internal::kDefaultAcquireTimeout;
  params_ = std::make_unique<postgres_internal::ConnParams>(
      postgres_internal::ParseUrl(url, &pool_size, &timeout));
  if (options.pool_size > 0)
    pool_size = std::min(options.pool_size, postgres_internal::kMaxPoolSize);
  if (options.acquire_timeout.count() > 0) timeout = options.acquire_timeout;
  pool_size_ = pool_size;
  metrics::SetPoolSize(metrics::Pool::kDatabase, pool_size);
  acquire_timeout_ = timeout;
  auto conn = Connection::Open(*params_);
  if (!conn) throw std::runtime_error(conn.error().message);
  postgres_internal::ApplyMigrations(**conn);
  // The migration connection (its lock released) becomes the pool's first.
  idle_.push_back(std::move(*conn));
  open_ = 1;
}

PostgresStore::~PostgresStore() = default;

Result<PostgresStore::Lease> PostgresStore::Acquire() {
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
      auto conn = Connection::Open(*params_);
      if (!conn) {
        {
          std::lock_guard relock(mu_);
          --open_;
        }
        cv_.notify_one();
        return conn.error();
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

void PostgresStore::Release(std::unique_ptr<Connection> conn) {
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

void PostgresStore::DropIdle() {
  std::vector<std::unique_ptr<Connection>> dropped;
  {
    std::lock_guard lock(mu_);
    dropped.swap(idle_);
    open_ -= static_cast<int>(dropped.size());
  }
  if (!dropped.empty()) cv_.notify_all();
  // `dropped` closes here, outside the lock.
}

Result<std::unique_ptr<PostgresStore::Hold>> PostgresStore::HoldConnectionForTest() {
  auto lease = Acquire();
  if (!lease) return lease.error();
  return std::unique_ptr<Hold>(new Hold(this, lease->Take()));
}

template <class Body>
Status PostgresStore::Transact(const char* what, bool read_only, Body&& body) {
  using namespace std::chrono_literals;
  for (int attempt = 1, reconnects = 0;;) {
    auto lease = Acquire();
    if (!lease) return lease.error();
    Connection& db = lease->get();
    bool committing = false;
    Status s = db.Run(read_only ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN");
    if (s) s = body(db);
    if (s) {
      committing = true;
      s = db.Run("COMMIT");
    }
    if (s) return OkStatus();
    // A connection that died before COMMIT committed nothing: once more on a fresh one. (After
    // a lost COMMIT the outcome is unknown, so that is reported, not retried.)
    if (db.broken() && !committing && reconnects++ < 1) continue;
    if (postgres_internal::Retryable(db.last_sqlstate())) {
      if (attempt++ < postgres_internal::kMaxTransactionAttempts) {
        thread_local std::minstd_rand jitter(std::random_device{}());
        std::this_thread::sleep_for(std::chrono::milliseconds(5 * attempt + jitter() % 10));
        continue;
      }
      return Error::Unavailable(std::string("postgres: ") + what +
                                ": gave up after repeated serialization failures or deadlocks");
    }
    const Error& e = s.error();
    if (e.code == ErrorCode::kInternal || e.code == ErrorCode::kUnavailable) {
      return Error{e.code, std::string(what) + ": " + e.message};
    }
    return s;
  }
}

template <class Body>
Status PostgresStore::Single(Body&& body) {
  for (int reconnects = 0;; ++reconnects) {
    auto lease = Acquire();
    if (!lease) return lease.error();
    Status s = body(lease->get());
    // A read that met a dead connection is simply tried once more on a fresh one.
    if (s || !lease->get().broken() || reconnects >= 1) return s;
  }
}

// ---- identities ----------------------------------------------------------------------------

namespace {

Status InsertOrganization(Connection& db, const Organization& org) {
  Status s = ExecuteStatus(db,
                           "INSERT INTO organizations (organization_id, name, created_at) "
                           "VALUES ($1, $2, $3)",
                           org.organization_id, org.name, org.created_at);
  if (!s && s.error().code == ErrorCode::kConflict) {
    return Error::Conflict("an organization with this id already exists");
  }
  return s;
}

Status InsertMember(Connection& db, const Member& member) {
  Status s = ExecuteStatus(db,
                           "INSERT INTO members (member_id, organization_id, email, account_type, "
                           "created_at) VALUES ($1, $2, $3, $4, $5)",
                           member.member_id, member.organization_id, member.email,
                           member.account_type, member.created_at);
  if (!s && s.error().code == ErrorCode::kNotFound) {
    return Error::NotFound("organization not found");
  }
  return s;
}

Status InsertApiClient(Connection& db, const ApiClient& client) {
  Status s = ExecuteStatus(db,
                           "INSERT INTO api_clients (client_id, member_id, secret_hash, "
                           "created_at, revoked_at) VALUES ($1, $2, $3, $4, $5)",
                           client.client_id, client.member_id, client.secret_hash,
                           client.created_at, client.revoked_at);
  if (!s && s.error().code == ErrorCode::kNotFound) return Error::NotFound("member not found");
  return s;
}

}  // namespace

Status PostgresStore::CreateOrganization(const Organization& org) {
  return StoreCall("create_organization", [&] {
    return Transact("create organization", false,
                    [&](Connection& db) { return InsertOrganization(db, org); });
  });
}

Result<Organization> PostgresStore::GetOrganization(const std::string& organization_id) {
  return StoreCall("get_organization", [&]() -> Result<Organization> {
    Organization out;
    Status s = Single([&](Connection& db) -> Status {
      auto r = Query(db,
                     "SELECT organization_id, name, created_at FROM organizations "
                     "WHERE organization_id = $1",
                     organization_id);
      if (!r) return r.error();
      if (r->Count() == 0) return Error::NotFound("organization not found");
      out = Organization{r->Text(0, 0), r->Text(0, 1), r->Int(0, 2)};
      return OkStatus();
    });
    if (!s) return s.error();
    return out;
  });
}

Result<std::int64_t> PostgresStore::CountOrganizations() {
  return StoreCall("count_organizations", [&]() -> Result<std::int64_t> {
    std::int64_t out = 0;
    Status s = Single([&](Connection& db) -> Status {
      auto r = Query(db, "SELECT count(*) FROM organizations");
      if (!r) return r.error();
      out = r->Int(0, 0);
      return OkStatus();
    });
    if (!s) return s.error();
    return out;
  });
}

Result<bool> PostgresStore::BootstrapIfEmpty(const Organization& org, const Member& admin,
                                             const ApiClient& client) {
  return StoreCall("bootstrap", [&]() -> Result<bool> {
    bool created = false;
    Status s = Transact("bootstrap", false, [&](Connection& db) -> Status {
      created = false;
      if (Status l = db.Run("SELECT pg_advisory_xact_lock(" +
                            std::string(postgres_internal::kBootstrapLockKey) + ")");
          !l) {
        return l;
      }
      auto r = Query(db, "SELECT count(*) FROM organizations");
      if (!r) return r.error();
      if (r->Int(0, 0) > 0) return OkStatus();
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

Status PostgresStore::CreateMember(const Member& member) {
  return StoreCall("create_member", [&] {
    return Transact("create member", false,
                    [&](Connection& db) { return InsertMember(db, member); });
  });
}

Result<Member> PostgresStore::GetMember(const std::string& member_id) {
  return StoreCall("get_member", [&]() -> Result<Member> {
    Member out;
    Status s = Single([&](Connection& db) -> Status {
      auto r = Query(db,
                     "SELECT member_id, organization_id, email, account_type, created_at "
                     "FROM members WHERE member_id = $1",
                     member_id);
      if (!r) return r.error();
      if (r->Count() == 0) return Error::NotFound("member not found");
      out = Member{r->Text(0, 0), r->Text(0, 1), r->Text(0, 2), r->Text(0, 3), r->Int(0, 4)};
      return OkStatus();
    });
    if (!s) return s.error();
    return out;
  });
}

Status PostgresStore::CreateApiClient(const ApiClient& client) {
  return StoreCall("create_api_client", [&] {
    return Transact("create api client", false,
                    [&](Connection& db) { return InsertApiClient(db, client); });
  });
}

Result<ApiClient> PostgresStore::GetActiveApiClient(const std::string& client_id) {
  return StoreCall("get_active_api_client", [&]() -> Result<ApiClient> {
    ApiClient out;
    Status s = Single([&](Connection& db) -> Status {
      auto r = Query(db,
                     "SELECT client_id, member_id, secret_hash, created_at, revoked_at "
                     "FROM api_clients WHERE client_id = $1 AND revoked_at IS NULL",
                     client_id);
      if (!r) return r.error();
      if (r->Count() == 0) return Error::NotFound("client not found");
      out = ApiClient{r->Text(0, 0), r->Text(0, 1), r->Text(0, 2), r->Int(0, 3),
                      r->OptionalInt(0, 4)};
      return OkStatus();
    });
    if (!s) return s.error();
    return out;
  });
}

Status PostgresStore::RevokeApiClient(const std::string& client_id, TimeMs now) {
  return StoreCall("revoke_api_client", [&] {
    return Transact("revoke api client", false, [&](Connection& db) -> Status {
      // A second revocation keeps the first time. The row lock also waits for a refresh
      // rotation of this client in flight (it holds FOR SHARE on the row), so the deletions
      // below see the tokens it issued.
      auto n = Execute(db,
                       "UPDATE api_clients SET revoked_at = coalesce(revoked_at, $2) "
                       "WHERE client_id = $1",
                       client_id, now);
      if (!n) return n.error();
      if (*n == 0) return Error::NotFound("client not found");
      Status s = ExecuteStatus(db, "DELETE FROM access_tokens WHERE client_id = $1", client_id);
      if (!s) return s;
      return ExecuteStatus(db, "DELETE FROM refresh_tokens WHERE client_id = $1", client_id);
    });
  });
}

namespace postgres_internal {
namespace {

// An empty family_id is stored as NULL, like the rows written before families existed, so that
// no family-wide deletion can ever match them.
Status InsertAccessToken(Connection& db, const AccessToken& t) {
  std::optional<std::string> family;
  if (!t.family_id.empty()) family = t.family_id;
  return ExecuteStatus(db,
                       "INSERT INTO access_tokens (token_hash, client_id, member_id, "
                       "organization_id, expires_at, family_id) VALUES ($1, $2, $3, $4, $5, $6)",
                       t.token_hash, t.client_id, t.member_id, t.organization_id, t.expires_at,
                       family);
}

Status InsertRefreshToken(Connection& db, const RefreshToken& t) {
  return ExecuteStatus(db,
                       "INSERT INTO refresh_tokens (token_hash, family_id, client_id, member_id, "
                       "organization_id, expires_at, used_at) "
                       "VALUES ($1, $2, $3, $4, $5, $6, NULL)",
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
}  // namespace postgres_internal

Status PostgresStore::SaveAccessToken(const AccessToken& token) {
  return StoreCall("save_access_token", [&] {
    return Transact("save access token", false, [&](Connection& db) -> Status {
      return postgres_internal::InsertAccessToken(db, token);
    });
  });
}

// The pair belongs to the refresh token's family; an access token without a family_id joins it.
Status PostgresStore::SaveTokenPair(const AccessToken& access, const RefreshToken& refresh) {
  return StoreCall("save_token_pair", [&]() -> Status {
    if (refresh.family_id.empty()) {
      return Error::Internal("store: a refresh token needs a family_id");
    }
    if (!access.family_id.empty() && access.family_id != refresh.family_id) {
      return Error::Internal("store: a token pair must share its family_id");
    }
    AccessToken a = access;
    a.family_id = refresh.family_id;
    return Transact("save token pair", false, [&](Connection& db) -> Status {
      Status s = postgres_internal::TokenInsertError(postgres_internal::InsertAccessToken(db, a));
      if (!s) return s;
      return postgres_internal::TokenInsertError(
          postgres_internal::InsertRefreshToken(db, refresh));
    });
  });
}

// The presented token's row is locked (FOR UPDATE), so two presentations on any nodes are
// serialised: the second one waits, then sees used_at (reuse) or no row (the family is gone).
// The client row is share-locked so that a revocation waits for the rotation and deletes what
// it issued. The family deletion of a reuse is committed and only then reported as kConflict.
Result<Principal> PostgresStore::RotateRefreshToken(const std::string& presented_hash,
                                                    const std::string& client_id, TimeMs now,
                                                    AccessToken next_access,
                                                    RefreshToken next_refresh) {
  return StoreCall("rotate_refresh_token", [&]() -> Result<Principal> {
    bool reused = false;
    Principal principal;
    Status s = Transact("rotate refresh token", false, [&](Connection& db) -> Status {
      reused = false;
      std::string family_id;
      {
        auto r = Query(db,
                       "SELECT r.family_id, r.client_id, r.member_id, r.organization_id, "
                       "r.expires_at, r.used_at, c.revoked_at, m.account_type "
                       "FROM refresh_tokens AS r "
                       "JOIN api_clients AS c ON c.client_id = r.client_id "
                       "JOIN members AS m ON m.member_id = r.member_id "
                       "WHERE r.token_hash = $1 FOR UPDATE OF r FOR SHARE OF c",
                       presented_hash);
        if (!r) return r.error();
        if (r->Count() == 0) return Error::NotFound("refresh token not found");
        const bool expired = r->Int(0, 4) <= now;
        const bool revoked = !r->IsNull(0, 6);
        const bool other_client = !client_id.empty() && client_id != r->Text(0, 1);
        if (expired || revoked || other_client) {
          return Error::NotFound("refresh token not found");
        }
        family_id = r->Text(0, 0);
        reused = !r->IsNull(0, 5);
        principal = Principal{r->Text(0, 3), r->Text(0, 2), r->Text(0, 1), r->Text(0, 7)};
      }
      if (reused) {
        Status d = ExecuteStatus(db, "DELETE FROM access_tokens WHERE family_id = $1", family_id);
        if (!d) return d;
        return ExecuteStatus(db, "DELETE FROM refresh_tokens WHERE family_id = $1", family_id);
      }
      Status u = ExecuteStatus(db, "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1",
                               presented_hash, now);
      if (!u) return u;
      next_access.family_id = next_refresh.family_id = family_id;
      next_access.client_id = next_refresh.client_id = principal.client_id;
      next_access.member_id = next_refresh.member_id = principal.member_id;
      next_access.organization_id = next_refresh.organization_id = principal.organization_id;
      u = postgres_internal::TokenInsertError(
          postgres_internal::InsertAccessToken(db, next_access));
      if (!u) return u;
      return postgres_internal::TokenInsertError(
          postgres_internal::InsertRefreshToken(db, next_refresh));
    });
    if (!s) return s.error();
    if (reused) {
      return Error::Conflict("the refresh token was already used; its family is revoked");
    }
    return principal;
  });
}

// On the path of every request: one statement, no transaction.
Result<Principal> PostgresStore::ResolveAccessToken(const std::string& token_hash, TimeMs now) {
  return StoreCall("resolve_access_token", [&]() -> Result<Principal> {
    Principal out;
    Status s = Single([&](Connection& db) -> Status {
      auto r = Query(db,
                     "SELECT t.organization_id, t.member_id, t.client_id, m.account_type "
                     "FROM access_tokens AS t "
                     "JOIN api_clients AS c ON c.client_id = t.client_id "
                     "AND c.revoked_at IS NULL "
                     "JOIN members AS m ON m.member_id = t.member_id "
                     "WHERE t.token_hash = $1 AND t.expires_at > $2",
                     token_hash, now);
      if (!r) return r.error();
      if (r->Count() == 0) return Error::NotFound("token not found");
      out = Principal{r->Text(0, 0), r->Text(0, 1), r->Text(0, 2), r->Text(0, 3)};
      return OkStatus();
    });
    if (!s) return s.error();
    return out;
  });
}

// Used refresh tokens go only when they expire: until then they are what reuse detection checks.
Result<std::int64_t> PostgresStore::PurgeExpired(TimeMs now, TimeMs idempotency_not_before) {
  return StoreCall("purge_expired", [&]() -> Result<std::int64_t> {
    std::int64_t purged = 0;
    Status s = Transact("purge expired", false, [&](Connection& db) -> Status {
      purged = 0;
      auto n = Execute(db, "DELETE FROM access_tokens WHERE expires_at <= $1", now);
      if (!n) return n.error();
      purged += *n;
      n = Execute(db, "DELETE FROM refresh_tokens WHERE expires_at <= $1", now);
      if (!n) return n.error();
      purged += *n;
      n = Execute(db, "DELETE FROM idempotency_keys WHERE created_at < $1", idempotency_not_before);
      if (!n) return n.error();
      purged += *n;
      return OkStatus();
    });
    if (!s) return s.error();
    return purged;
  });
}

// ---- teams ---------------------------------------------------------------------------------

Status PostgresStore::CreateTeam(const Team& team) {
  return StoreCall("create_team", [&] {
    return Transact("create team", false, [&](Connection& db) -> Status {
      Status s = ExecuteStatus(db,
                               "INSERT INTO teams (team_id, organization_id, name, created_at) "
                               "VALUES ($1, $2, $3, $4)",
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

Result<Team> PostgresStore::GetTeam(const std::string& team_id) {
  return StoreCall("get_team", [&]() -> Result<Team> {
    Team out;
    Status s = Single([&](Connection& db) -> Status {
      auto r = Query(db,
                     "SELECT team_id, organization_id, name, created_at FROM teams "
                     "WHERE team_id = $1",
                     team_id);
      if (!r) return r.error();
      if (r->Count() == 0) return Error::NotFound("team not found");
      out = Team{r->Text(0, 0), r->Text(0, 1), r->Text(0, 2), r->Int(0, 3)};
      return OkStatus();
    });
    if (!s) return s.error();
    return out;
  });
}

Status PostgresStore::AddTeamMember(const std::string& team_id, const std::string& member_id) {
  return StoreCall("add_team_member", [&] {
    return Transact("add team member", false, [&](Connection& db) -> Status {
      {
        auto r = Query(db,
                       "SELECT (SELECT organization_id FROM teams WHERE team_id = $1), "
                       "(SELECT organization_id FROM members WHERE member_id = $2)",
                       team_id, member_id);
        if (!r) return r.error();
        if (r->IsNull(0, 0)) return Error::NotFound("team not found");
        if (r->IsNull(0, 1)) return Error::NotFound("member not found");
        if (r->Text(0, 0) != r->Text(0, 1)) {
          return Error::BadRequest("member " + member_id +
                                   " is not a member of the team's organization");
        }
      }
      return ExecuteStatus(db,
                           "INSERT INTO team_members (team_id, member_id) VALUES ($1, $2) "
                           "ON CONFLICT DO NOTHING",
                           team_id, member_id);
    });
  });
}

// ---- connections ---------------------------------------------------------------------------

Status PostgresStore::CreateConnection(const domain::Connection& c) {
  return StoreCall("create_connection", [&] {
    return Transact("create connection", false,
                    [&](Connection& db) { return postgres_internal::InsertConnection(db, c); });
  });
}

Result<domain::Connection> PostgresStore::GetConnection(const std::string& organization_id,
                                                        const std::string& connection_id) {
  return StoreCall("get_connection", [&]() -> Result<domain::Connection> {
    std::optional<domain::Connection> found;
    Status s = Single([&](Connection& db) -> Status {
      found.reset();
      auto r = Query(db, postgres_internal::GetConnectionSql(), connection_id, organization_id);
      if (!r) return r.error();
      if (r->Count() == 0) return Error::NotFound("connection not found");
      auto c = postgres_internal::ReadConnection(*r, 0);
      if (!c) return c.error();
      found = std::move(*c);
      for (int i = 0; i < r->Count(); ++i) {
        if (r->IsNull(i, postgres_internal::kSecretColumn)) continue;  // no secret at all
        found->secrets[r->Text(i, postgres_internal::kSecretColumn)] =
            postgres_internal::ReadSecret(*r, i, postgres_internal::kSecretColumn + 1);
      }
      return OkStatus();
    });
    if (!s) return s.error();
    return std::move(*found);
  });
}

// The compare-and-set is the UPDATE's WHERE version = $23: of concurrent updates (on any
// nodes) the first to commit wins; the others wait for its row lock, re-check the row's new
// version and change nothing.
Status PostgresStore::UpdateConnection(const domain::Connection& next,
                                       std::int64_t expected_version) {
  return StoreCall("update_connection", [&] {
    return Transact("update connection", false, [&](Connection& db) -> Status {
      {
        auto r = db.Exec(postgres_internal::kUpdateConnectionSql,
                         postgres_internal::ConnectionParams(next).Append(expected_version));
        if (!r) return r.error();
        if (r->Affected() == 0) {
          auto e = Query(db,
                         "SELECT 1 FROM connections WHERE connection_id = $1 AND "
                         "organization_id = $2",
                         next.connection_id, next.organization_id);
          if (!e) return e.error();
          if (e->Count() == 0) return Error::NotFound("connection not found");
          return Error::PreconditionFailed("the connection was changed by another request");
        }
      }
      // The stored secrets become exactly next.secrets.
      boost::json::array fields;
      for (const auto& [field, secret] : next.secrets) fields.emplace_back(field);
      Status s = ExecuteStatus(db,
                               "DELETE FROM connection_secrets WHERE connection_id = $1 AND "
                               "field NOT IN (SELECT jsonb_array_elements_text($2::jsonb))",
                               next.connection_id, boost::json::serialize(fields));
      if (!s) return s;
      for (const auto& [field, secret] : next.secrets) {
        s = ExecuteStatus(db,
                          "INSERT INTO connection_secrets (connection_id, field, sealed, key_id, "
                          "updated_at) VALUES ($1, $2, $3, $4, $5) "
                          "ON CONFLICT (connection_id, field) DO UPDATE SET "
                          "sealed = excluded.sealed, key_id = excluded.key_id, "
                          "updated_at = excluded.updated_at",
                          next.connection_id, field, Bytea{secret.sealed}, secret.key_id,
                          secret.updated_at);
        if (!s) return s;
      }
      return OkStatus();
    });
  });
}

Result<ConnectionPage> PostgresStore::ListConnections(const ListQuery& q) {
  return StoreCall("list_connections", [&]() -> Result<ConnectionPage> {
    const int limit = std::clamp(q.limit, 1, postgres_internal::kMaxPageSize);
    const bool visible = q.visible_to_member.has_value();
    ConnectionPage page;
    // Total and entries from one snapshot.
    Status s = Transact("list connections", true, [&](Connection& db) -> Status {
      page = ConnectionPage{};
      postgres_internal::Params filter(q.organization_id, q.include_archived, q.search, q.type);
      if (visible) filter.Append(*q.visible_to_member);
      {
        auto r = db.Exec(postgres_internal::CountSql(visible), filter);
        if (!r) return r.error();
        page.total = r->Int(0, 0);
      }
      postgres_internal::Params params = filter;
      if (q.after) {
        params.Append(q.after->name, q.after->created_at, q.after->connection_id, limit + 1);
      } else {
        params.Append(limit + 1, std::max<std::int64_t>(q.offset, 0));
      }
      auto r = db.Exec(postgres_internal::ListSql(q.after.has_value(), visible), params);
      if (!r) return r.error();
      const int n = r->Count();
      page.has_more = n > limit;
      page.entries.reserve(static_cast<std::size_t>(std::min(n, limit)));
      for (int i = 0; i < n && i < limit; ++i) {
        auto c = postgres_internal::ReadConnection(*r, i);
        if (!c) return c.error();
        page.entries.push_back(std::move(*c));
      }
      return postgres_internal::LoadSecrets(db, page.entries);
    });
    if (!s) return s.error();
    return page;
  });
}

// The bucket's tokens after refilling by the time since its last use.
#define RATE_REFILLED                                                       \
  "LEAST($2::bigint, rate_buckets.tokens_milli + GREATEST(0, $3::bigint - " \
  "rate_buckets.refilled_at) * $4::bigint / 1000)"

// One upsert per request: the bucket refills by the time since its last use (never negative:
// node clocks may disagree a little), then gives one token (1000 milli-tokens) if it has one.
Result<int> PostgresStore::TakeRateToken(const std::string& client_id, double per_second,
                                         TimeMs now) {
  const std::int64_t rate_milli = std::max<std::int64_t>(1, std::llround(per_second * 1000));
  const std::int64_t capacity = std::max<std::int64_t>(1000, rate_milli);
  return StoreCall("take_rate_token", [&]() -> Result<int> {
    std::int64_t tokens = 0;
    bool allowed = false;
    Status s = Transact("take rate token", false, [&](Connection& db) -> Status {
      // clang-format off
      auto r = Query(
          db,
          "INSERT INTO rate_buckets (client_id, tokens_milli, refilled_at, allowed) "
          "VALUES ($1, $2::bigint - 1000, $3::bigint, true) "
          "ON CONFLICT (client_id) DO UPDATE SET "
          // Every SET expression sees the row as it was (locked by the conflict), so concurrent
          // requests on any node queue on the row and each sees the others' takes.
          "tokens_milli = CASE WHEN " RATE_REFILLED " >= 1000 THEN " RATE_REFILLED " - 1000 "
          "ELSE " RATE_REFILLED " END, "
          "refilled_at = $3::bigint, allowed = " RATE_REFILLED " >= 1000 "
          "RETURNING tokens_milli, allowed",
          client_id, capacity, now, rate_milli);
      // clang-format on
      if (!r) return r.error();
      tokens = r->Int(0, 0);
      allowed = r->Text(0, 1) == "t";
      return OkStatus();
    });
    if (!s) return s.error();
    if (allowed) return 0;
    const double wait_secs = static_cast<double>(1000 - tokens) / static_cast<double>(rate_milli);
    return std::max(1, static_cast<int>(std::ceil(wait_secs)));
  });
}

Status PostgresStore::RecordTest(const std::string& organization_id,
                                 const std::string& connection_id, const domain::LastTest& test,
                                 bool query_reached) {
  return StoreCall("record_test", [&] {
    return Transact("record test", false, [&](Connection& db) -> Status {
      auto n =
          Execute(db,
                  "UPDATE connections SET last_test_at = $3::bigint, last_test_read = $4, "
                  "last_test_write = $5, "
                  "last_active_at = CASE WHEN $6::boolean THEN $3::bigint "
                  "ELSE last_active_at END "
                  "WHERE organization_id = $1 AND connection_id = $2",
                  organization_id, connection_id, test.at, test.read, test.write, query_reached);
      if (!n) return n.error();
      if (*n == 0) return Error::NotFound("connection not found");
      return OkStatus();
    });
  });
}

// Two range scans of connection_secrets_by_key (key_id < K, then key_id > K), each in the order
// (key_id, connection_id, field), bytewise (COLLATE "C" columns).
Result<std::vector<ConnectionStore::SealedSecretRef>> PostgresStore::SecretsNotUnderKey(
    const std::string& key_id, int limit) {
  return StoreCall("secrets_not_under_key", [&]() -> Result<std::vector<SealedSecretRef>> {
    std::vector<SealedSecretRef> out;
    if (limit <= 0) return out;
    Status s = Transact("secrets not under key", true, [&](Connection& db) -> Status {
      out.clear();
      for (std::string_view sql :
           {"SELECT connection_id, field, sealed, key_id, updated_at FROM connection_secrets "
            "WHERE key_id < $1 ORDER BY key_id, connection_id, field LIMIT $2",
            "SELECT connection_id, field, sealed, key_id, updated_at FROM connection_secrets "
            "WHERE key_id > $1 ORDER BY key_id, connection_id, field LIMIT $2"}) {
        const auto wanted =
            static_cast<std::int64_t>(limit) - static_cast<std::int64_t>(out.size());
        if (wanted <= 0) break;
        auto r = Query(db, sql, key_id, wanted);
        if (!r) return r.error();
        for (int i = 0; i < r->Count(); ++i) {
          out.push_back(SealedSecretRef{r->Text(i, 0), r->Text(i, 1),
                                        postgres_internal::ReadSecret(*r, i, 2)});
        }
      }
      return OkStatus();
    });
    if (!s) return s.error();
    return out;
  });
}

// Compare-and-set on the sealed bytes themselves: a concurrent UpdateConnection that rewrote the
// secret (under whatever key) wins, and the rotation re-reads it.
Status PostgresStore::ResealSecret(const std::string& connection_id, const std::string& field,
                                   const std::string& expected_sealed,
                                   const domain::StoredSecret& next) {
  return StoreCall("reseal_secret", [&] {
    return Transact("reseal secret", false, [&](Connection& db) -> Status {
      auto n = Execute(db,
                       "UPDATE connection_secrets SET sealed = $3, key_id = $4, updated_at = $5 "
                       "WHERE connection_id = $1 AND field = $2 AND sealed = $6",
                       connection_id, field, Bytea{next.sealed}, next.key_id, next.updated_at,
                       Bytea{expected_sealed});
      if (!n) return n.error();
      if (*n > 0) return OkStatus();
      auto r = Query(db, "SELECT 1 FROM connection_secrets WHERE connection_id = $1 AND field = $2",
                     connection_id, field);
      if (!r) return r.error();
      if (r->Count() == 0) return Error::NotFound("secret not found");
      return Error::PreconditionFailed("the secret was changed by another request");
    });
  });
}

Result<std::vector<std::string>> PostgresStore::SecretKeyIds() {
  return StoreCall("secret_key_ids", [&]() -> Result<std::vector<std::string>> {
    std::vector<std::string> out;
    Status s = Single([&](Connection& db) -> Status {
      out.clear();
      auto r = Query(db, "SELECT DISTINCT key_id FROM connection_secrets ORDER BY key_id");
      if (!r) return r.error();
      for (int i = 0; i < r->Count(); ++i) out.push_back(r->Text(i, 0));
      return OkStatus();
    });
    if (!s) return s.error();
    return out;
  });
}

// ---- grants --------------------------------------------------------------------------------

namespace postgres_internal {
namespace {

// The columns every grant query selects, in the order ReadGrant reads them.
constexpr std::string_view kGrantColumns =
    "grant_id, organization_id, connection_id, member_id, team_id, permission, created_by, "
    "updated_by, created_at, updated_at";

Grant ReadGrant(const Rows& r, int i) {
  return Grant{r.Text(i, 0), r.Text(i, 1), r.Text(i, 2), r.OptionalText(i, 3), r.OptionalText(i, 4),
               r.Text(i, 5), r.Text(i, 6), r.Text(i, 7), r.Int(i, 8),          r.Int(i, 9)};
}

// kNotFound unless the connection exists in the organization.
Status CheckConnectionInOrganization(Connection& db, const std::string& organization_id,
                                     const std::string& connection_id) {
  auto r = Query(db, "SELECT 1 FROM connections WHERE connection_id = $1 AND organization_id = $2",
                 connection_id, organization_id);
  if (!r) return r.error();
  if (r->Count() == 0) return Error::NotFound("connection not found");
  return OkStatus();
}

// True when `sql` (binding $1 id, $2 organization) returns a row.
Result<bool> Exists(Connection& db, std::string_view sql, const std::string& id,
                    const std::string& organization_id) {
  auto r = Query(db, sql, id, organization_id);
  if (!r) return r.error();
  return r->Count() > 0;
}

}  // namespace
}  // namespace postgres_internal

// Each grant is validated just before it is written, so the error names the first bad grantee
// in batch order; any error rolls the whole batch back. A grantee repeated within the batch is
// upserted twice: the last permission wins and the first grant_id stays.
Status PostgresStore::UpsertGrants(const std::string& organization_id,
                                   const std::string& connection_id,
                                   const std::vector<Grant>& grants) {
  return StoreCall("upsert_grants", [&] {
    return Transact("upsert grants", false, [&](Connection& db) -> Status {
      Status s =
          postgres_internal::CheckConnectionInOrganization(db, organization_id, connection_id);
      if (!s) return s;
      for (const Grant& g : grants) {
        if (g.member_id.has_value() == g.team_id.has_value()) {
          return Error::BadRequest("a grantee is either a memberId or a teamId");
        }
        std::string_view upsert;
        if (g.member_id) {
          auto found = postgres_internal::Exists(
              db, "SELECT 1 FROM members WHERE member_id = $1 AND organization_id = $2",
              *g.member_id, organization_id);
          if (!found) return found.error();
          if (!*found) {
            return Error::BadRequest("member " + *g.member_id +
                                     " is not a member of this organization");
          }
          upsert = "ON CONFLICT (connection_id, member_id) DO UPDATE SET ";
        } else {
          auto found = postgres_internal::Exists(
              db, "SELECT 1 FROM teams WHERE team_id = $1 AND organization_id = $2", *g.team_id,
              organization_id);
          if (!found) return found.error();
          if (!*found) {
            return Error::BadRequest("team " + *g.team_id + " is not a team of this organization");
          }
          upsert = "ON CONFLICT (connection_id, team_id) DO UPDATE SET ";
        }
        const std::string sql =
            "INSERT INTO grants (" + std::string(postgres_internal::kGrantColumns) +
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) " + std::string(upsert) +
            "permission = excluded.permission, updated_by = excluded.updated_by, "
            "updated_at = excluded.updated_at";
        s = ExecuteStatus(db, sql, g.grant_id, organization_id, connection_id, g.member_id,
                          g.team_id, g.permission, g.created_by, g.updated_by, g.created_at,
                          g.updated_at);
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

Result<GrantPage> PostgresStore::ListGrants(const std::string& organization_id,
                                            const std::string& connection_id, int limit,
                                            const std::optional<GrantCursor>& after,
                                            std::int64_t offset) {
  return StoreCall("list_grants", [&]() -> Result<GrantPage> {
    limit = std::clamp(limit, 1, postgres_internal::kMaxPageSize);
    GrantPage page;
    // Total and entries from one snapshot.
    Status s = Transact("list grants", true, [&](Connection& db) -> Status {
      page = GrantPage{};
      Status c =
          postgres_internal::CheckConnectionInOrganization(db, organization_id, connection_id);
      if (!c) return c;
      {
        auto r = Query(db,
                       "SELECT count(*) FROM grants WHERE connection_id = $1 AND "
                       "organization_id = $2",
                       connection_id, organization_id);
        if (!r) return r.error();
        page.total = r->Int(0, 0);
      }
      static const std::string first_sql =
          "SELECT " + std::string(postgres_internal::kGrantColumns) +
          " FROM grants WHERE connection_id = $1 AND organization_id = $2"
          " ORDER BY created_at, grant_id LIMIT $3::bigint OFFSET $4::bigint";
      static const std::string after_sql =
          "SELECT " + std::string(postgres_internal::kGrantColumns) +
          " FROM grants WHERE connection_id = $1 AND organization_id = $2"
          " AND (created_at, grant_id) > ($3::bigint, $4::text) ORDER BY created_at, grant_id"
          " LIMIT $5::bigint";
      postgres_internal::Params params(connection_id, organization_id);
      if (after) {
        params.Append(after->created_at, after->grant_id, limit + 1);
      } else {
        params.Append(limit + 1, std::max<std::int64_t>(offset, 0));
      }
      auto r = db.Exec(after ? after_sql : first_sql, params);
      if (!r) return r.error();
      const int n = r->Count();
      page.has_more = n > limit;
      for (int i = 0; i < n && i < limit; ++i) {
        page.entries.push_back(postgres_internal::ReadGrant(*r, i));
      }
      return OkStatus();
    });
    if (!s) return s.error();
    return page;
  });
}

Status PostgresStore::DeleteGrant(const std::string& organization_id,
                                  const std::string& connection_id, const std::string& grant_id) {
  return StoreCall("delete_grant", [&] {
    return Transact("delete grant", false, [&](Connection& db) -> Status {
      auto n = Execute(db,
                       "DELETE FROM grants WHERE grant_id = $1 AND connection_id = $2 AND "
                       "organization_id = $3",
                       grant_id, connection_id, organization_id);
      if (!n) return n.error();
      if (*n == 0) return Error::NotFound("grant not found");
      return OkStatus();
    });
  });
}

Result<bool> PostgresStore::HasGrant(const std::string& organization_id,
                                     const std::string& connection_id,
                                     const std::string& member_id) {
  return StoreCall("has_grant", [&]() -> Result<bool> {
    bool out = false;
    Status s = Single([&](Connection& db) -> Status {
      auto r = Query(db,
                     "SELECT EXISTS (SELECT 1 FROM grants WHERE connection_id = $1 AND "
                     "member_id = $2 AND organization_id = $3) "
                     "OR EXISTS (SELECT 1 FROM grants WHERE connection_id = $1 AND "
                     "organization_id = $3 AND team_id IN "
                     "(SELECT team_id FROM team_members WHERE member_id = $2))",
                     connection_id, member_id, organization_id);
      if (!r) return r.error();
      out = r->Bool(0, 0);
      return OkStatus();
    });
    if (!s) return s.error();
    return out;
  });
}

// ---- idempotency keys ----------------------------------------------------------------------

Result<IdempotentResponse> PostgresStore::GetIdempotent(const std::string& organization_id,
                                                        const std::string& member_id,
                                                        const std::string& key, TimeMs not_before) {
  return StoreCall("get_idempotent", [&]() -> Result<IdempotentResponse> {
    IdempotentResponse out;
    Status s = Single([&](Connection& db) -> Status {
      auto r = Query(db,
                     "SELECT request_hash, status, body, location, created_at FROM "
                     "idempotency_keys WHERE organization_id = $1 AND member_id = $2 AND "
                     "key = $3 AND created_at >= $4",
                     organization_id, member_id, key, not_before);
      if (!r) return r.error();
      if (r->Count() == 0) return Error::NotFound("idempotency key not found");
      out = IdempotentResponse{r->Text(0, 0), static_cast<int>(r->Int(0, 1)), r->Text(0, 2),
                               r->Text(0, 3), r->Int(0, 4)};
      return OkStatus();
    });
    if (!s) return s.error();
    return out;
  });
}

// A record older than `not_before` is one GetIdempotent no longer returns: it is replaced here,
// in the same transaction as the create. Two nodes racing on one key: the second INSERT waits
// for the first's uncommitted key, then fails as a unique violation (kConflict).
Status PostgresStore::CreateConnectionIdempotent(const domain::Connection& c,
                                                 const std::string& member_id,
                                                 const std::string& key,
                                                 const IdempotentResponse& response,
                                                 TimeMs not_before) {
  return StoreCall("create_connection_idempotent", [&] {
    return Transact("create connection (idempotent)", false, [&](Connection& db) -> Status {
      Status s = ExecuteStatus(db,
                               "DELETE FROM idempotency_keys WHERE organization_id = $1 AND "
                               "member_id = $2 AND key = $3 AND created_at < $4",
                               c.organization_id, member_id, key, not_before);
      if (!s) return s;
      s = ExecuteStatus(db,
                        "INSERT INTO idempotency_keys (organization_id, member_id, key, "
                        "request_hash, status, body, location, created_at) "
                        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        c.organization_id, member_id, key, response.request_hash, response.status,
                        response.body, response.location, response.created_at);
      if (!s) {
        if (s.error().code == ErrorCode::kConflict) {
          return Error::Conflict("the Idempotency-Key was already used");
        }
        return s;
      }
      return postgres_internal::InsertConnection(db, c);
    });
  });
}

// ---- store ---------------------------------------------------------------------------------

// SELECT 1 sent asynchronously and waited for at most kPingTimeout: a server that accepts the
// connection but does not answer is reported, and its connection dropped.
Status PostgresStore::Ping() {
  return StoreCall("ping", [&]() -> Status {
    for (int reconnects = 0;; ++reconnects) {
      auto lease = Acquire();
      if (!lease) return lease.error();
      Connection& db = lease->get();
      PGconn* conn = db.raw();
      const auto deadline = std::chrono::steady_clock::now() + postgres_internal::kPingTimeout;
      auto fail = [&](const std::string& why) -> Status {
        db.MarkBroken();
        return Error::Unavailable("postgres: ping failed: " + why);
      };
      Status s = OkStatus();
      if (PQsendQuery(conn, "SELECT 1") == 0) {
        s = fail(postgres_internal::TrimmedMessage(PQerrorMessage(conn)));
      } else {
        for (;;) {
          if (PQconsumeInput(conn) == 0) {
            s = fail(postgres_internal::TrimmedMessage(PQerrorMessage(conn)));
            break;
          }
          if (PQisBusy(conn) == 0) break;
          const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
              deadline - std::chrono::steady_clock::now());
          if (left.count() <= 0) {
            s = fail("no answer within " + std::to_string(postgres_internal::kPingTimeout.count()) +
                     " ms");
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
            Rows r(raw);
            if (PQresultStatus(raw) == PGRES_TUPLES_OK && r.Count() == 1 && r.Text(0, 0) == "1") {
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
  });
}

Result<std::string> PostgresStore::ServerKey(const std::string& purpose) {
  return StoreCall("server_key", [&]() -> Result<std::string> {
    constexpr std::string_view kSelect = "SELECT key FROM server_keys WHERE purpose = $1";
    auto checked = [](std::string key) -> Result<std::string> {
      if (key.size() != postgres_internal::kServerKeyBytes) {
        return Error::Internal("postgres: corrupt server key");
      }
      return key;
    };
    std::optional<std::string> key;
    // Almost every call finds the key: one read.
    Status s = Single([&](Connection& db) -> Status {
      auto r = Query(db, kSelect, purpose);
      if (!r) return r.error();
      if (r->Count() > 0) key = r->Bytes(0, 0);
      return OkStatus();
    });
    if (!s) return s.error();
    if (key) return checked(std::move(*key));
    // First use: whoever inserts first wins (ON CONFLICT DO NOTHING waits for a concurrent
    // insert to commit), and everyone reads the winner's key.
    crypto::EnsureSodium();
    std::string candidate(postgres_internal::kServerKeyBytes, '\0');
    randombytes_buf(candidate.data(), candidate.size());
    s = Transact("create server key", false, [&](Connection& db) -> Status {
      Status inserted = ExecuteStatus(db,
                                      "INSERT INTO server_keys (purpose, key, created_at) "
                                      "VALUES ($1, $2, $3) ON CONFLICT (purpose) DO NOTHING",
                                      purpose, Bytea{candidate}, NowMs());
      if (!inserted) return inserted;
      auto r = Query(db, kSelect, purpose);
      if (!r) return r.error();
      if (r->Count() == 0) return Error::Internal("postgres: server key vanished after insert");
      key = r->Bytes(0, 0);
      return OkStatus();
    });
    sodium_memzero(candidate.data(), candidate.size());
    if (!s) return s.error();
    return checked(std::move(*key));
  });
}

}  // namespace connreg::store
