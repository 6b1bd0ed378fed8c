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

class PostgresSession : public SqlSession {
 public:
  PostgresSession(PGconn* conn, const Deadline& deadline) : conn_(conn), deadline_(deadline) {}

  SqlOutcome Execute(std::string_view sql) override {
    SqlOutcome out;
    if (!usable_) return Failure(code::kProtocolError, "the connection is no longer usable");
    std::string text(sql);
    if (!PQsendQuery(conn_, text.c_str())) return Lost();
    for (;;) {  // flush what could not be sent at once
      int f = PQflush(conn_);
      if (f == 0) break;
      if (f < 0) return Lost();
      int w = WaitFd(PQsocket(conn_), /*for_write=*/true, deadline_);
      if (w == 0) return TimedOut();
      if (w < 0 || !PQconsumeInput(conn_)) return Lost();
    }
    out.ok = true;
    for (;;) {
      while (PQisBusy(conn_)) {
        int w = WaitFd(PQsocket(conn_), /*for_write=*/false, deadline_);
        if (w == 0) return TimedOut();
        if (w < 0 || !PQconsumeInput(conn_)) return Lost();
      }
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
  SqlOutcome TimedOut() {
    usable_ = false;  // a statement is still in flight: nothing more can be sent
    return Failure(code::kTimeout, "no answer from the server before the test's deadline");
  }
  SqlOutcome Lost() {
    usable_ = false;
    return Failure(code::kProtocolError, PQerrorMessage(conn_));
  }

  PGconn* conn_;
  const Deadline& deadline_;
  bool usable_ = true;
};

class PostgresDriverImpl : public Driver {
 public:
  int PathDepth() const override { return 2; }
  // TODO(catalog): the postgres family's introspection.
  void Introspect(CatalogRun& run) const override {
    run.probe.steps.Add(step::kQuery, status::kFailed, code::kDriverUnavailable,
                        "this server cannot list a postgres catalog yet");
  }
  explicit PostgresDriverImpl(int default_port) : default_port_(default_port) {}

  std::optional<Endpoint> Target(const boost::json::object& details, const DriverSettings&,
                                 std::string& why) const override {
    return HostEndpoint(details, default_port_, why);
  }

  bool UsesTls(const boost::json::object& details) const override {
    return DetailBool(details, "useTls", false);
  }

  void Run(ProbeRun& run) const override {
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
        return run.steps.Add(step::kConnect, status::kFailed, code::kTlsFailure,
                             "cannot verify the server's certificate: " + why);
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

    std::unique_ptr<PGconn, decltype(&PQfinish)> conn(
        PQconnectStartParams(keys.data(), values.data(), 0), &PQfinish);
    if (!conn) {
      return run.steps.Fail(step::kConnect, code::kProtocolError, "libpq is out of memory");
    }
    PQsetErrorVerbosity(conn.get(), PQERRORS_VERBOSE);
    PQsetNoticeProcessor(
        conn.get(), [](void*, const char*) {}, nullptr);

    if (!Connect(run, conn.get(), tls)) return;
    PostgresSession session(conn.get(), run.deadline);
    RunSqlSteps(run, session, WriteAccessString(run.details, "writeSchema"));
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
