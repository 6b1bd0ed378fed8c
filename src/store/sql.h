// The small database interface the query layer (store/sql_store.h) is written against, once for
// every backend: prepare a statement, bind its parameters by name, step through its rows, read
// columns, run a body of statements as one transaction; and the few places where two dialects
// of SQL differ (Dialect). A backend (sqlite_store.cc, postgres_store.cc) implements Database,
// Session and Statement over its driver, and keeps to itself what really differs: its
// connections and their pool, its url, its Dialect, and the mapping of its driver's errors to
// the store's codes (store.h: kNotFound for a missing referenced row, kConflict for a unique or
// other constraint violation, kUnavailable when the database cannot be reached or is busy,
// kInternal otherwise; messages of kNotFound and kConflict never carry the driver's text).
//
// Statements are written once with named parameters (`:name`) and built once per store
// (Query), never per call: a Query holds the dialect's positional form of the text and the
// numbering of its names, and every session keeps its prepared statements by the Query's slot.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "core/result.h"
#include "store/migrations.h"

namespace connreg::store::sql {

// ---- dialects --------------------------------------------------------------------------------

// Everything the query layer writes differently for one database: one constant per backend.
struct Dialect {
  std::string_view name;  // "sqlite" | "postgres": starts the messages of its errors
  char parameter_marker;  // the positional parameter: '?' (SQLite, ?1) or '$' (PostgreSQL, $1)
  // SQLite's INDEXED BY pins a statement to an index (and fails its prepare if the index cannot
  // serve it); PostgreSQL has no hints.
  bool index_hints;
  // Whether a write transaction must lock the rows it reads before deciding (PostgreSQL's
  // SELECT ... FOR UPDATE); SQLite's one writer already excludes every other.
  bool row_locks;
  std::string_view find_substring;  // f(haystack, needle): 1-based position, 0 when absent
  // The connections listing's search index (migration 6), for a term of 3 characters or more:
  // a condition on `connections` that keeps the rows whose name_folded may contain :search
  // (SQLite: the rowids the FTS5 trigram table finds), or "" where the LIKE on name_folded is
  // itself served by the index (PostgreSQL's GIN trigram index).
  std::string_view search_index_candidates;
  // A select of 1 when that index exists, 0 when the search scans (PostgreSQL without pg_trgm).
  std::string_view search_index_present;
  // A subquery yielding the strings of a JSON array given as text; {} stands for the parameter.
  std::string_view json_array_texts;
  std::string_view least;     // the smaller of two values (scalar)
  std::string_view greatest;  // the greater of two values (scalar)
  // Begins a write transaction that waits for, then excludes, every other writer of the schema;
  // used by the migrations.
  std::string_view begin_migration;
  // Run first in a write transaction that must not overlap the same one on another node (the
  // first-start bootstrap); empty when every write transaction already excludes the others.
  std::string_view bootstrap_lock;
  std::string_view Migration::*migration_sql;  // this dialect's text of a migration
  // For a migration that rebuilds tables (Migration::rebuilds_tables): run before its
  // transaction, and after it, to stop and resume enforcing foreign keys (SQLite cannot change a
  // table's constraints in place: the table is copied, dropped and renamed, which would trip the
  // references to it); empty where a table is altered in place (PostgreSQL).
  std::string_view foreign_keys_off;
  std::string_view foreign_keys_on;
  // Counts the foreign key violations (a single count(*)), checked before such a migration
  // commits; "SELECT 0" where foreign keys stay enforced.
  std::string_view foreign_key_violations;

  // " INDEXED BY index", or "" where there are no hints.
  std::string IndexedBy(std::string_view index) const;
  // " NOT INDEXED" (no index but the rowid serves the table), or "" where there are no hints.
  std::string_view NotIndexed() const { return index_hints ? " NOT INDEXED" : ""; }
  // `clause` (" FOR UPDATE ..."), or "" where rows need no locks.
  std::string_view RowLocks(std::string_view clause) const { return row_locks ? clause : ""; }
  // "find_substring(haystack, needle) > 0".
  std::string Contains(std::string_view haystack, std::string_view needle) const;
  // json_array_texts with `param` (":ids") in place of {}.
  std::string JsonArrayTexts(std::string_view param) const;
};

// ---- statements ------------------------------------------------------------------------------

class Query;

// Hands out the slots of one store's queries: every Query run on a database comes from the one
// book of its store, so a slot names the same statement on every session. Not thread-safe: a
// store fills its book while it is constructed.
class QueryBook {
 public:
  explicit QueryBook(const Dialect& dialect) : dialect_(dialect) {}
  QueryBook(const QueryBook&) = delete;
  QueryBook& operator=(const QueryBook&) = delete;
  const Dialect& dialect() const { return dialect_; }

 private:
  friend class Query;
  const Dialect& dialect_;
  std::size_t next_slot_ = 0;
};

// One statement of the query layer. `text` names its parameters `:name` (letters, digits and
// '_'; a name may appear several times and is one parameter); outside string literals, every
// other ':' is kept as it is. Immutable once built; shared by every thread.
class Query {
 public:
  Query(QueryBook& book, std::string_view text);

  // The text in the dialect's positional form (":name" became "?1" or "$1").
  const std::string& sql() const { return sql_; }
  std::size_t slot() const { return slot_; }
  int param_count() const { return static_cast<int>(params_.size()); }
  // The position (1-based) of parameter `name`, 0 when the statement has none of that name;
  // `hint` is where to look first (names are usually bound in order).
  int ParamIndex(std::string_view name, int hint) const;

 private:
  std::string sql_;
  std::vector<std::string> params_;  // by position - 1
  std::size_t slot_;
};

// A prepared statement of one session, as a backend implements it. Parameters are positions
// from Query::ParamIndex; a binding error is reported by the next Step. Columns are positions
// in the select list, valid while a row is current. Not thread-safe (neither is its session).
class Statement {
 public:
  virtual ~Statement() = default;
  virtual void BindNull(int param) = 0;
  virtual void BindInt(int param, std::int64_t v) = 0;
  virtual void BindBool(int param, bool v) = 0;
  virtual void BindText(int param, std::string_view v) = 0;
  virtual void BindBytes(int param, std::string_view v) = 0;
  // Runs the statement (first call) or moves to its next row: true when a row is current.
  virtual Result<bool> Step() = 0;
  // Rows changed by the statement once it ran (INSERT, UPDATE, DELETE).
  virtual std::int64_t Changes() const = 0;
  virtual bool IsNull(int col) const = 0;
  virtual std::int64_t Int(int col) const = 0;
  virtual bool Bool(int col) const = 0;
  // Valid until the next Step or Reset.
  virtual std::string_view Text(int col) const = 0;
  virtual std::string Bytes(int col) const = 0;
  // The position of the result column `name` (the select list's name or alias), -1 if none.
  // Valid once the statement ran.
  virtual int ColumnIndex(std::string_view name) const = 0;
  // Forgets bindings and results: ready for the next execution.
  virtual void Reset() = 0;
};

// A byte string bound as BLOB / BYTEA rather than text.
struct Bytes {
  std::string_view bytes;
};

// Stops the process on a programming error of the query layer (a parameter or column name that
// its statement does not have): fixed SQL, so the first test that runs the statement finds it.
[[noreturn]] inline void NameError(const char* what, std::string_view name) {
  std::fprintf(stderr, "connreg: store: %s %.*s\n", what, static_cast<int>(name.size()),
               name.data());
  std::abort();
}

class Arg;

// One execution of a session's prepared statement, for the query layer: binds parameters by
// name, steps, reads columns by position or by name. Resets the statement when destroyed, so the
// session's cached statement is ready for its next use.
class Stmt {
 public:
  Stmt(Statement& statement, const Query& query) : st_(&statement), query_(&query) {}
  Stmt(Stmt&& other) noexcept
      : st_(std::exchange(other.st_, nullptr)), query_(other.query_), hint_(other.hint_) {}
  Stmt& operator=(Stmt&&) = delete;
  ~Stmt() {
    if (st_ != nullptr) st_->Reset();
  }

  Stmt& Bind(std::string_view name, std::string_view v) {
    st_->BindText(Param(name), v);
    return *this;
  }
  Stmt& Bind(std::string_view name, const std::string& v) {
    return Bind(name, std::string_view(v));
  }
  Stmt& Bind(std::string_view name, const char* v) { return Bind(name, std::string_view(v)); }
  Stmt& Bind(std::string_view name, Bytes v) {
    st_->BindBytes(Param(name), v.bytes);
    return *this;
  }
  Stmt& Bind(std::string_view name, std::int64_t v) {
    st_->BindInt(Param(name), v);
    return *this;
  }
  Stmt& Bind(std::string_view name, int v) { return Bind(name, static_cast<std::int64_t>(v)); }
  Stmt& Bind(std::string_view name, bool v) {
    st_->BindBool(Param(name), v);
    return *this;
  }
  Stmt& Bind(std::string_view name, std::nullopt_t) {
    st_->BindNull(Param(name));
    return *this;
  }
  template <class T>
  Stmt& Bind(std::string_view name, const std::optional<T>& v) {
    if (v) return Bind(name, *v);
    return Bind(name, std::nullopt);
  }
  // Binds every parameter of the list (see Arg).
  Stmt& Bind(std::initializer_list<Arg> args);

  // True when a row is current, false when the statement has finished.
  Result<bool> Step() { return st_->Step(); }
  // Runs a statement to its end (its rows, if any, do not matter).
  Status Run() {
    for (;;) {
      auto row = Step();
      if (!row) return std::move(row).error();
      if (!*row) return OkStatus();
    }
  }
  std::int64_t Changes() const { return st_->Changes(); }

  // The current row's columns by position.
  bool IsNull(int col) const { return st_->IsNull(col); }
  std::int64_t Int(int col) const { return st_->Int(col); }
  bool Bool(int col) const { return st_->Bool(col); }
  std::string_view Text(int col) const { return st_->Text(col); }
  std::string BytesAt(int col) const { return st_->Bytes(col); }
  void Get(int col, std::string& out) const { out.assign(Text(col)); }
  void Get(int col, std::int64_t& out) const { out = Int(col); }
  void Get(int col, int& out) const { out = static_cast<int>(Int(col)); }
  void Get(int col, bool& out) const { out = Bool(col); }
  template <class T>
  void Get(int col, std::optional<T>& out) const {
    if (IsNull(col)) {
      out.reset();
    } else {
      Get(col, out.emplace());
    }
  }
  // The position of the result column `name`, for selects written by hand.
  int Column(std::string_view name) const {
    const int col = st_->ColumnIndex(name);
    if (col < 0) NameError("no result column", name);
    return col;
  }
  // The current row's columns by name, for selects written by hand.
  bool IsNull(std::string_view name) const { return IsNull(Column(name)); }
  std::int64_t Int(std::string_view name) const { return Int(Column(name)); }
  bool Bool(std::string_view name) const { return Bool(Column(name)); }
  std::string_view Text(std::string_view name) const { return Text(Column(name)); }

 private:
  int Param(std::string_view name) {
    const int i = query_->ParamIndex(name, hint_);
    if (i == 0) NameError("no parameter", name);
    hint_ = i + 1;
    return i;
  }

  Statement* st_;
  const Query* query_;
  int hint_ = 1;
};

// One named parameter and its value, for binding a statement in one call:
// `st.Bind({{"client_id", id}, {"now", now}})`. Holds views: the values must outlive the call.
class Arg {
 public:
  Arg(std::string_view name, std::string_view v) : name_(name), value_(v) {}
  Arg(std::string_view name, const std::string& v) : name_(name), value_(std::string_view(v)) {}
  Arg(std::string_view name, const char* v) : name_(name), value_(std::string_view(v)) {}
  Arg(std::string_view name, Bytes v) : name_(name), value_(v) {}
  Arg(std::string_view name, std::int64_t v) : name_(name), value_(v) {}
  Arg(std::string_view name, int v) : name_(name), value_(static_cast<std::int64_t>(v)) {}
  Arg(std::string_view name, bool v) : name_(name), value_(v) {}
  Arg(std::string_view name, std::nullopt_t) : name_(name), value_(std::nullopt) {}
  template <class T>
  Arg(std::string_view name, const std::optional<T>& v) : Arg(name, std::nullopt) {
    if (v) *this = Arg(name, *v);
  }

  void BindTo(Stmt& st) const {
    std::visit([&](const auto& v) { st.Bind(name_, v); }, value_);
  }

 private:
  std::string_view name_;
  std::variant<std::nullopt_t, std::int64_t, bool, std::string_view, Bytes> value_;
};

inline Stmt& Stmt::Bind(std::initializer_list<Arg> args) {
  for (const Arg& a : args) a.BindTo(*this);
  return *this;
}

// A connection of a backend in use by one thread: the unit a transaction runs on.
class Session {
 public:
  virtual ~Session() = default;
  // The statement of `query` on this session, prepared at its first use here and kept for the
  // next ones.
  virtual Result<Stmt> Prepare(const Query& query) = 0;
  // Runs SQL without parameters, possibly several statements (migrations, locks).
  virtual Status Exec(std::string_view sql) = 0;
};

// ---- databases -------------------------------------------------------------------------------

// A reference to a callable, for bodies passed down a virtual call without allocating; the
// callable must outlive the call it is passed to.
template <class Signature>
class FunctionRef;
template <class R, class... Args>
class FunctionRef<R(Args...)> {
 public:
  template <class F>
  requires(!std::is_same_v<std::remove_cvref_t<F>, FunctionRef>)
      FunctionRef(F&& f)  // NOLINT: implicit by design
      : object_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* object, Args... args) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(object))(std::forward<Args>(args)...);
        }) {}
  R operator()(Args... args) const { return call_(object_, std::forward<Args>(args)...); }

 private:
  void* object_;
  R (*call_)(void*, Args...);
};

enum class Access {
  kPoint,     // statements that each read committed state on their own: no transaction
  kSnapshot,  // several reads of one snapshot (a read-only transaction)
  kWrite,     // one transaction: all of it or nothing, isolated from concurrent writers
};

// A database of one backend. Thread-safe: every method may be called from any thread at once.
class Database {
 public:
  virtual ~Database() = default;
  virtual const Dialect& dialect() const = 0;
  // Runs `body` on a session of its own, as `access` says; a failed body rolls its transaction
  // back. The body may run more than once (PostgreSQL runs a transaction again after a
  // serialization failure or a deadlock, and a body on a connection found dead before anything
  // was committed), so it produces its results afresh each time. `operation` (the store call's
  // name) prefixes the messages of errors the database adds. A body touches the database only
  // through its session and never begins or ends a transaction itself, so a backend may also run
  // several writers' bodies in one transaction, each in a savepoint of its own (group commit:
  // SQLite), with no change above this interface.
  virtual Status Run(Access access, const char* operation, FunctionRef<Status(Session&)> body) = 0;
  // Runs `body` once, at start, on a session that holds the migration lock: concurrent starters
  // (other processes, other nodes) wait for each other. The body runs its own transactions.
  virtual Status Migrate(FunctionRef<Status(Session&)> body) = 0;
  // A cheap round trip, for /readyz.
  virtual Status Ping() = 0;
  // True when a point read is served from local files without waiting on a lock or a network.
  virtual bool PointReadsAreLocal() const = 0;
  // True when several nodes may share this database at once.
  virtual bool Shared() const = 0;
};

}  // namespace connreg::store::sql
