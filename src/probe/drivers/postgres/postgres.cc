// libpq is driven asynchronously (PQconnectStartParams / PQconnectPoll, PQsendQuery) with our own
// poll(2) on its socket, so every wait ends at the test's deadline and each phase of the
// connection (TCP connect, TLS, authentication) is timed and blamed as its own step.
//
// TLS. With useTls the sslmode is the connection's tlsMode (require, verify-ca, verify-full; never
// prefer or allow): libpq verifies the server before it answers any authentication request, and
// never falls back to a plain connection. verify-full checks the certificate against `host`, the
// configured name, while `hostaddr` pins the connection to the checked address. The trusted CAs
// (TrustedCasPem) reach libpq 15, which takes only a path, as a private temporary file. Without
// useTls the sslmode is disable: the operator chose plain text to the stored endpoint.
// channel_binding stays at libpq's default (prefer: used whenever the server offers
// SCRAM-SHA-256-PLUS). Requiring it would refuse every server that authenticates by md5 or
// password (Redshift supports no SCRAM at all) and every connection stored before this release,
// and the verified sslmode is what keeps a password from an impostor.
#include "probe/drivers/postgres/postgres.h"

#include <libpq-fe.h>
#include <poll.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "probe/drivers/common/catalog_rows.h"
#include "probe/drivers/common/details_fields.h"
#include "probe/drivers/common/sql_probe.h"
#include "probe/drivers/common/tls.h"
#include "probe/raw_connection.h"

namespace connreg::probe {
namespace {

// Paths that do not exist: libpq must not read the server process's own ~/.pgpass or present
// its ~/.postgresql client certificate to whatever host a test points at.
constexpr const char* kNoFile = "/nonexistent/connreg-probe";

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// The contract code for a SQLSTATE.
std::string_view CodeForSqlState(std::string_view state) {
  if (state == "28P01" || state == "28000") return code::kAuthFailed;
  if (state == "3D000" || state == "3F000" || state == "42P01") return code::kNotFound;
  if (state == "42501") return code::kPermissionDenied;
  if (state == "57014") return code::kTimeout;  // statement canceled (statement_timeout)
  return code::kProtocolError;
}

// A connection-time error message from libpq, made verbose (PQERRORS_VERBOSE) so that a server
// error carries its SQLSTATE: "...failed: FATAL:  28P01: password authentication failed...".
// Returns the SQLSTATE (or "") and rewrites `message` without the code and LOCATION line.
std::string TakeSqlState(std::string& message) {
  static constexpr std::string_view kSeverities[] = {"FATAL:  ", "ERROR:  ", "PANIC:  "};
  std::string state;
  for (std::string_view sev : kSeverities) {
    auto at = message.find(sev);
    if (at == std::string::npos) continue;
    std::size_t c = at + sev.size();
    if (message.size() >= c + 7 && message.compare(c + 5, 2, ": ") == 0) {
      state = message.substr(c, 5);
      bool plausible = true;
      for (char ch : state)
        plausible = plausible && ((ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z'));
      if (!plausible) {
        state.clear();
        continue;
      }
      message.erase(c, 7);
    }
    break;
  }
  if (auto loc = message.find("LOCATION:"); loc != std::string::npos) message.resize(loc);
  return state;
}

enum Phase { kConnectPhase = 0, kTlsPhase = 1, kAuthPhase = 2 };

std::string_view PhaseStep(int phase) {
  return phase == kConnectPhase ? step::kConnect
         : phase == kTlsPhase   ? step::kTls
                                : step::kAuthenticate;
}

// Which phase libpq is in. With TLS on, negotiation is the tls step; without it (sslmode disable)
// the startup exchange counts as part of authentication.
int PhaseOf(ConnStatusType st, bool tls_required) {
  switch (st) {
    case CONNECTION_STARTED:
    case CONNECTION_NEEDED: return kConnectPhase;
    case CONNECTION_MADE:
    case CONNECTION_SSL_STARTUP:
    case CONNECTION_GSS_STARTUP: return tls_required ? kTlsPhase : kAuthPhase;
    default: return kAuthPhase;
  }
}

// The code for a failed connection attempt in `phase`, from its SQLSTATE or libpq's words.
std::string_view ConnectFailureCode(int phase, std::string_view state, std::string_view message) {
  if (!state.empty()) return CodeForSqlState(state);
  if (Contains(message, "timed out") || Contains(message, "timeout expired")) return code::kTimeout;
  if (phase == kConnectPhase) return code::kConnectionRefused;  // refused, unreachable, reset
  if (phase == kTlsPhase || Contains(message, "SSL")) return code::kTlsFailure;
  if (Contains(message, "password")) return code::kAuthFailed;  // "no password supplied"
  return code::kProtocolError;
}

// How a wait for libpq ended.
enum class Wait { kReady, kTimedOut, kLost };

// Sends what PQsendQuery* left in libpq's buffer, by the deadline.
Wait FlushQuery(PGconn* conn, const Deadline& deadline) {
  for (;;) {
    int f = PQflush(conn);
    if (f == 0) return Wait::kReady;
    if (f < 0) return Wait::kLost;
    int w = WaitFd(PQsocket(conn), /*for_write=*/true, deadline);
    if (w == 0) return Wait::kTimedOut;
    if (w < 0 || !PQconsumeInput(conn)) return Wait::kLost;
  }
}

// Reads from the server until PQgetResult would not block, by the deadline.
Wait AwaitResult(PGconn* conn, const Deadline& deadline) {
  while (PQisBusy(conn)) {
    int w = WaitFd(PQsocket(conn), /*for_write=*/false, deadline);
    if (w == 0) return Wait::kTimedOut;
    if (w < 0 || !PQconsumeInput(conn)) return Wait::kLost;
  }
  return Wait::kReady;
}

constexpr std::string_view kNoAnswer = "no answer from the server before the test's deadline";

class PostgresSession : public SqlSession {
 public:
  PostgresSession(PGconn* conn, const Deadline& deadline) : conn_(conn), deadline_(deadline) {}

  SqlOutcome Execute(std::string_view sql) override {
    SqlOutcome out;
    if (!usable_) return Failure(code::kProtocolError, "the connection is no longer usable");
    std::string text(sql);
    if (!PQsendQuery(conn_, text.c_str())) return Lost();
    if (Wait w = FlushQuery(conn_, deadline_); w != Wait::kReady) return Lost(w);
    out.ok = true;
    for (;;) {
      if (Wait w = AwaitResult(conn_, deadline_); w != Wait::kReady) return Lost(w);
      PGresult* r = PQgetResult(conn_);
      if (!r) break;
      ExecStatusType st = PQresultStatus(r);
      if (st == PGRES_TUPLES_OK) {
        if (out.ok && out.value.empty() && PQntuples(r) > 0 && PQnfields(r) > 0) {
          out.value = PQgetvalue(r, 0, 0);
        }
      } else if (st != PGRES_COMMAND_OK && st != PGRES_EMPTY_QUERY && out.ok) {
        const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        const char* primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        out.ok = false;
        out.code = CodeForSqlState(state ? state : "");
        out.message = primary ? primary : PQresultErrorMessage(r);
      }
      PQclear(r);
    }
    if (PQstatus(conn_) == CONNECTION_BAD) usable_ = false;
    return out;
  }

  std::string QuoteIdentifier(std::string_view name) override { return QuoteDelimited(name, '"'); }

  bool usable() const override { return usable_; }

 private:
  SqlOutcome Failure(std::string_view c, std::string message) {
    SqlOutcome out;
    out.code = c;
    out.message = std::move(message);
    return out;
  }
  // The connection cannot be used again: timed out (a statement is still in flight, nothing
  // more can be sent) or lost.
  SqlOutcome Lost(Wait why = Wait::kLost) {
    usable_ = false;
    if (why == Wait::kTimedOut) return Failure(code::kTimeout, std::string(kNoAnswer));
    return Failure(code::kProtocolError, PQerrorMessage(conn_));
  }

  PGconn* conn_;
  const Deadline& deadline_;
  bool usable_ = true;
};

using PgConn = std::unique_ptr<PGconn, decltype(&PQfinish)>;

// ---- the catalog (contract section 13) -------------------------------------------------------

// A LEFT JOIN of pg_description as `alias`: the comment on `oid` (sub-object `sub`, a column
// number or 0) of the catalog `catalog`.
std::string JoinDescription(std::string_view alias, std::string_view catalog, std::string_view oid,
                            std::string_view sub) {
  const std::string a(alias);
  return " LEFT JOIN pg_catalog.pg_description " + a + " ON " + a +
         ".objoid = " + std::string(oid) + " AND " + a + ".classoid = 'pg_catalog." +
         std::string(catalog) + "'::pg_catalog.regclass AND " + a +
         ".objsubid = " + std::string(sub);
}

// The catalog query of `plan`, for a server of `version` (PQserverVersion), with its parameters
// ($1 the scope, $2 the object) appended to `params`. pg_catalog rather than information_schema:
// its views scale badly at 10,000+ tables. One row per scope, per column of a table or view
// (one row with NULL columns for a table without any) and per procedure:
//   kind ('s' scope, 't' table, 'p' procedure: CatalogRows::Add), schema, name, comment,
//   column, type, not null, column comment
// ordered by schema and name in byte order (a scope's row first), then column ordinal. Features
// are gated by version, which keeps the query valid on Redshift (8.0.2): relispartition from 10,
// procedures (prokind) from 11, COLLATE from 9.1.
std::string CatalogQuery(const TwoLevelListing& plan, int version,
                         std::vector<const char*>& params) {
  const bool collate = version >= 90100;
  std::string scope_filter;
  if (plan.scope) {
    params.push_back(plan.scope->c_str());
    scope_filter = " AND n.nspname = $1";
  }
  if (plan.object) params.push_back(plan.object->c_str());
  // Schemas the user may not use hold nothing it can read; system schemas are left out by the
  // caller (domain::IsSystemScope, one list for every family).
  const std::string usable =
      " WHERE pg_catalog.has_schema_privilege(n.nspname, 'USAGE')" + scope_filter;
  // The first part names the columns: each part names them, as any of them may be the first.
  std::vector<std::string> parts;
  if (plan.scopes) {
    parts.push_back(
        "SELECT 's' AS kind, n.nspname AS schema_name, NULL::name AS object_name,"
        " d.description AS comment, NULL::int2 AS attnum, NULL::name AS column_name,"
        " NULL::text AS column_type, NULL::bool AS not_null, NULL::text AS column_comment"
        " FROM pg_catalog.pg_namespace n" +
        JoinDescription("d", "pg_namespace", "n.oid", "0") + usable);
  }
  if (plan.objects) {
    parts.push_back(
        "SELECT 't' AS kind, n.nspname AS schema_name, c.relname AS object_name,"
        " d.description AS comment, a.attnum, a.attname AS column_name,"
        " pg_catalog.format_type(a.atttypid, a.atttypmod) AS column_type,"
        " a.attnotnull AS not_null, cd.description AS column_comment"
        " FROM pg_catalog.pg_namespace n"
        " JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid"
        " AND c.relkind IN ('r', 'p', 'v', 'm', 'f')" +
        std::string(version >= 100000 ? " AND NOT c.relispartition" : "") +
        (plan.object ? " AND c.relname = $2" : "") +
        " LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0"
        " AND NOT a.attisdropped" +
        JoinDescription("d", "pg_class", "c.oid", "0") +
        JoinDescription("cd", "pg_class", "c.oid", "a.attnum") + usable);
    if (version >= 110000) {
      parts.push_back(
          "SELECT 'p', n.nspname, p.proname, d.description, NULL, NULL, NULL, NULL, NULL"
          " FROM pg_catalog.pg_namespace n"
          " JOIN pg_catalog.pg_proc p ON p.pronamespace = n.oid AND p.prokind = 'p'" +
          std::string(plan.object ? " AND p.proname = $2" : "") +
          JoinDescription("d", "pg_proc", "p.oid", "0") + usable);
    }
  }
  std::string sql = "SELECT * FROM (";
  for (std::size_t i = 0; i < parts.size(); ++i) sql += (i ? " UNION ALL " : "") + parts[i];
  const std::string c = collate ? " COLLATE \"C\"" : "";
  // kind DESC: a table before a procedure of the same name, which CatalogRows then leaves out.
  sql += ") AS listing ORDER BY schema_name" + c + ", object_name" + c +
         " NULLS FIRST, kind DESC, attnum";
  return sql;
}

// Records the query step: streams the listing of `run` from `conn` into the sink, row by row
// (single-row mode: memory does not grow with the catalog), until it ends, the sink says stop
// (SUCCESS) or the deadline passes (timeout).
void ListCatalog(CatalogRun& run, PGconn* conn) {
  StepLog& steps = run.probe.steps;
  const Deadline& deadline = run.probe.deadline;
  steps.Begin(step::kQuery);
  const TwoLevelListing plan = PlanTwoLevel(run.request);
  if (!plan.scopes && !plan.objects) return steps.Pass();
  std::vector<const char*> params;
  const std::string sql = CatalogQuery(plan, PQserverVersion(conn), params);
  auto lost = [&](Wait why) {
    if (why == Wait::kTimedOut) return steps.Fail(step::kQuery, code::kTimeout, kNoAnswer);
    steps.Fail(step::kQuery, code::kProtocolError,
               steps.scrubber().Excerpt(PQerrorMessage(conn), Scrubber::kMessageExcerptChars));
  };
  if (!PQsendQueryParams(conn, sql.c_str(), static_cast<int>(params.size()), nullptr, params.data(),
                         nullptr, nullptr, 0) ||
      !PQsetSingleRowMode(conn)) {
    return lost(Wait::kLost);
  }
  if (Wait w = FlushQuery(conn, deadline); w != Wait::kReady) return lost(w);

  CatalogRows rows(run);
  std::string failed_code, failed_message;
  for (;;) {
    if (Wait w = AwaitResult(conn, deadline); w != Wait::kReady) return lost(w);
    std::unique_ptr<PGresult, decltype(&PQclear)> r(PQgetResult(conn), &PQclear);
    if (!r) break;
    ExecStatusType st = PQresultStatus(r.get());
    if (st == PGRES_SINGLE_TUPLE) {
      if (!failed_code.empty()) continue;
      if (deadline.expired()) return lost(Wait::kTimedOut);
      PGresult* row = r.get();
      auto text = [&](int field) { return std::string_view(PQgetvalue(row, 0, field)); };
      std::optional<domain::WarehouseColumn> column;
      if (!PQgetisnull(row, 0, 5)) {
        column.emplace(domain::WarehouseColumn{std::string(text(5)), std::string(text(6)),
                                               text(7) != "t", std::string(text(8))});
      }
      if (!rows.Add(text(0), text(1), text(2), text(3), column ? &*column : nullptr)) {
        return steps.Pass();  // the sink said stop
      }
    } else if (st != PGRES_TUPLES_OK && failed_code.empty()) {
      const char* state = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
      const char* primary = PQresultErrorField(r.get(), PG_DIAG_MESSAGE_PRIMARY);
      failed_code = CodeForSqlState(state ? state : "");
      failed_message = primary ? primary : PQresultErrorMessage(r.get());
    }
  }
  if (!failed_code.empty()) {
    return steps.Fail(step::kQuery, failed_code,
                      steps.scrubber().Excerpt(failed_message, Scrubber::kMessageExcerptChars));
  }
  rows.Finish();
  steps.Pass();
}

class PostgresDriverImpl : public Driver {
 public:
  explicit PostgresDriverImpl(int default_port) : default_port_(default_port) {}

  std::optional<Endpoint> Target(const boost::json::object& details, const DriverSettings&,
                                 std::string& why) const override {
    return HostEndpoint(details, default_port_, why);
  }

  bool UsesTls(const boost::json::object& details) const override {
    return DetailBool(details, "useTls", false);
  }

  void Run(ProbeRun& run) const override {
    PgConn conn = Open(run);
    if (!conn) return;
    PostgresSession session(conn.get(), run.deadline);
    RunSqlSteps(run, session, WriteAccessString(run.details, "writeSchema"));
  }

  int PathDepth() const override { return 2; }

  void Introspect(CatalogRun& run) const override {
    PgConn conn = Open(run.probe);
    if (!conn) return;
    ListCatalog(run, conn.get());
    // Closing the connection also ends a listing the sink stopped: the server's query fails at
    // its next send. (libpq 15's PQcancel would block on a connect without a timeout.)
  }

 private:
  // Connects as `run` says, recording connect, tls and authenticate: the connection, or null
  // after recording the step that failed. Run and Introspect both start here.
  PgConn Open(ProbeRun& run) const {
    const bool tls = UsesTls(run.details);
    std::string host = run.endpoint.host;
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    // Keyword/value pairs, never a conninfo string: nothing from the details can add a keyword.
    // `hostaddr` is the egress-checked address; `host` only names the server (TLS, messages).
    std::list<std::string> storage;
    std::vector<const char*> keys;
    std::vector<const char*> values;
    auto set = [&](const char* key, std::string value) {
      storage.push_back(std::move(value));
      keys.push_back(key);
      values.push_back(storage.back().c_str());
    };
    set("host", host);
    set("hostaddr", run.addresses.front().ToString());
    set("port", std::to_string(run.endpoint.port));
    set("dbname", DetailString(run.details, "database"));
    if (std::string user = DetailString(run.details, "user"); !user.empty()) set("user", user);
    if (auto pw = run.secrets.find("password"); pw != run.secrets.end())
      set("password", pw->second);
    // A root certificate file turns libpq's `require` into verify-ca: it is given only to modes
    // that verify.
    const TlsSettings settings = TlsSettingsOf(run);
    std::optional<PrivateFile> trusted;
    if (tls && settings.mode != TlsMode::kRequire) {
      std::string why;
      std::string pem = TrustedCasPem(settings, why);
      if (!pem.empty()) trusted.emplace("root.crt", pem, why);
      if (!trusted || trusted->path().empty()) {
        run.steps.Add(step::kConnect, status::kFailed, code::kTlsFailure,
                      "cannot verify the server's certificate: " + why);
        return {nullptr, &PQfinish};
      }
    }
    set("sslmode", tls ? std::string(TlsModeName(settings.mode)) : "disable");
    set("gssencmode", "disable");
    set("passfile", kNoFile);
    set("sslcert", kNoFile);
    set("sslkey", kNoFile);
    set("sslrootcert", trusted ? trusted->path() : kNoFile);
    set("sslcrl", kNoFile);
    set("application_name", "connreg-probe");
    set("client_encoding", "UTF8");
    set("connect_timeout", std::to_string(run.deadline.remaining_seconds_ceil()));
    keys.push_back(nullptr);
    values.push_back(nullptr);

    PgConn conn(PQconnectStartParams(keys.data(), values.data(), 0), &PQfinish);
    if (!conn) {
      run.steps.Fail(step::kConnect, code::kProtocolError, "libpq is out of memory");
      return conn;
    }
    PQsetErrorVerbosity(conn.get(), PQERRORS_VERBOSE);
    PQsetNoticeProcessor(
        conn.get(), [](void*, const char*) {}, nullptr);

    if (!Connect(run, conn.get(), tls)) conn.reset();
    return conn;  // the root certificate file is no longer needed: TLS is established
  }

 private:
  // Drives PQconnectPoll to the end, recording connect, tls and authenticate. True on success.
  static bool Connect(ProbeRun& run, PGconn* conn, bool tls) {
    int phase = kConnectPhase;
    run.steps.Begin(step::kConnect);
    auto advance = [&](int to) {
      while (phase < to) {
        ++phase;
        if (phase == kTlsPhase && !tls) continue;
        run.steps.Begin(PhaseStep(phase));  // passes the previous one
      }
    };
    auto fail = [&](std::string_view c, const std::string& message) {
      run.steps.Fail(PhaseStep(phase), c, message);
      return false;
    };

    PostgresPollingStatusType ps =
        PQstatus(conn) == CONNECTION_BAD ? PGRES_POLLING_FAILED : PGRES_POLLING_WRITING;
    for (;;) {
      if (ps == PGRES_POLLING_FAILED) {
        std::string message = PQerrorMessage(conn);
        std::string state = TakeSqlState(message);
        return fail(ConnectFailureCode(phase, state, message),
                    run.steps.scrubber().Excerpt(message, Scrubber::kMessageExcerptChars));
      }
      if (ps == PGRES_POLLING_OK) {
        advance(kAuthPhase);
        if (tls && !PQsslInUse(conn)) {
          return fail(code::kTlsFailure, "the server did not negotiate TLS");
        }
        run.steps.Pass();
        return true;
      }
      advance(PhaseOf(PQstatus(conn), tls));
      int w = WaitFd(PQsocket(conn), ps == PGRES_POLLING_WRITING, run.deadline);
      if (w == 0)
        return fail(code::kTimeout, "no answer from the server before the test's deadline");
      if (w < 0) return fail(code::kProtocolError, std::string("poll: ") + std::strerror(errno));
      ps = PQconnectPoll(conn);
    }
  }

  int default_port_;
};

}  // namespace

std::vector<WarehouseType> PostgresTypes() {
  using domain::Kind, domain::Req, domain::Opt, domain::Nested;
  // The same table for each type, but for the port a connection without one connects to.
  auto fields = [](int default_port) {
    return domain::WithTlsFields(
        {Req("host", Kind::kHost).Endpoint(), Req("database", Kind::kString),
         Opt("port", Kind::kPort).Endpoint().Default(default_port), Opt("user", Kind::kString),
         Opt("password", Kind::kPassword), Opt("useTls", Kind::kBool).Default(false),
         Nested("writeAccess", {Req("writeSchema", Kind::kString)})});
  };
  static const PostgresDriverImpl* const postgres = new PostgresDriverImpl(5432);
  static const PostgresDriverImpl* const redshift = new PostgresDriverImpl(5439);
  constexpr auto kUseTls = domain::TlsSwitch::kUseTls;
  return {
      {{"postgres", fields(5432), kUseTls}, postgres},
      {{"redshift", fields(5439), kUseTls}, redshift},
      {{"alloydb", fields(5432), kUseTls}, postgres},
  };
}

}  // namespace connreg::probe
