// MariaDB Connector/C connects, negotiates TLS and authenticates in one blocking call, so this
// driver passes the time left to the library's connect, read and write timeouts (whole seconds,
// rounded up) and learns which phase failed from the error number. The engine's watchdog covers
// the rounding and any call the library does not bound.
//
// With useTls, the driver first reads the server's greeting on a connection of its own: without
// certificate verification Connector/C goes on in clear when the server offers no TLS, and would
// answer the authentication challenge (or ask a stripping man-in-the-middle for an RSA key to
// encrypt the password with) before the driver could see that TLS is missing.
//
// tlsMode. `require` encrypts without verifying. For verify-ca and verify-full the driver verifies
// the server itself, on that same connection of its own: it asks for TLS (an SSLRequest packet,
// which carries no user name and no credential), makes the handshake with OpenSSL against the
// trusted CAs and, for verify-full, the configured host name, and notes the SHA-1 fingerprint of
// the certificate. Connector/C 3.3 would check the name against the IP literal it is pinned to,
// so it is then pinned to that certificate instead (MARIADB_OPT_TLS_PEER_FP, which also makes it
// refuse a connection without TLS): a server that shows any other certificate to the second
// connection is refused before the authentication packet is sent.
#include "probe/drivers/mysql/mysql.h"

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>

#include <memory>
#include <mutex>
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

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// Client-side "could not reach / lost the server" errors (errmsg.h).
constexpr unsigned kConnectionError = 2002;     // CR_CONNECTION_ERROR
constexpr unsigned kConnHostError = 2003;       // CR_CONN_HOST_ERROR
constexpr unsigned kUnknownHost = 2005;         // CR_UNKNOWN_HOST
constexpr unsigned kServerGone = 2006;          // CR_SERVER_GONE_ERROR
constexpr unsigned kServerLost = 2013;          // CR_SERVER_LOST
constexpr unsigned kSslConnectionError = 2026;  // CR_SSL_CONNECTION_ERROR
constexpr unsigned kServerLostExtended = 2055;  // CR_SERVER_LOST_EXTENDED

constexpr unsigned kClientSsl = 0x0800;  // CLIENT_SSL in the greeting's capability flags
constexpr std::size_t kMaxGreeting = 64 * 1024;

// The SSLRequest packet (sequence 1, after the greeting): capabilities CLIENT_PROTOCOL_41,
// CLIENT_SSL and CLIENT_SECURE_CONNECTION, a 16 MiB maximum packet, utf8mb4, 23 zero bytes.
std::string SslRequestPacket() {
  constexpr unsigned kCaps = 0x0200 | kClientSsl | 0x8000;
  std::string p = {32, 0, 0, 1};
  for (int i = 0; i < 4; ++i) p.push_back(static_cast<char>((kCaps >> (8 * i)) & 0xff));
  p += std::string("\x00\x00\x00\x01", 4);  // 16 MiB, little-endian
  p.push_back(45);                          // utf8mb4_general_ci
  p += std::string(23, '\0');
  return p;
}

// Whether the server at `conn` (connected) offers TLS, from its greeting (protocol 10:
// version byte, server version NUL-terminated, thread id 4, scramble 8, filler 1, capabilities
// 2). An error packet (the server refuses this client) is left to Connector/C to report: true.
// False with `failure_code` set when the greeting could not be read, and with it empty when the
// server offers no TLS.
bool GreetingOffersTls(RawConnection& conn, std::string& failure_code, std::string& failure) {
  constexpr std::string_view kDuring = "the MySQL greeting (not a MySQL port?)";
  auto fail = [&](std::string_view c, std::string message) {
    failure_code = c;
    failure = std::move(message);
    return false;
  };
  std::string header, payload;
  if (!conn.Receive(header, 4, kDuring)) return fail(conn.code(), conn.message());
  const auto* h = reinterpret_cast<const unsigned char*>(header.data());
  std::size_t length = h[0] | h[1] << 8 | h[2] << 16;
  const std::string not_mysql =
      "the server at " + conn.where() + " does not speak the MySQL protocol";
  if (length == 0 || length > kMaxGreeting) return fail(code::kProtocolError, not_mysql);
  if (!conn.Receive(payload, length, kDuring)) return fail(conn.code(), conn.message());
  if (static_cast<unsigned char>(payload[0]) == 0xFF) return true;
  std::size_t nul = payload.find('\0', 1);
  std::size_t at = nul == std::string::npos ? payload.size() : nul + 1 + 4 + 8 + 1;
  if (payload[0] != 10 || at + 2 > payload.size()) return fail(code::kProtocolError, not_mysql);
  unsigned caps =
      static_cast<unsigned char>(payload[at]) | static_cast<unsigned char>(payload[at + 1]) << 8;
  return (caps & kClientSsl) != 0;
}

// The step a failed mysql_real_connect is blamed on, and its code.
struct Blame {
  std::string_view step;
  std::string_view code;
};

Blame BlameConnectError(unsigned err, std::string_view message, const Deadline& deadline) {
  switch (err) {
    case ER_ACCESS_DENIED_ERROR:              // 1045: wrong user or password
    case ER_ACCESS_DENIED_NO_PASSWORD_ERROR:  // 1698
    case CR_AUTH_PLUGIN_CANNOT_LOAD:          // 2059
    case CR_AUTH_PLUGIN_ERR:                  // 2061
      return {step::kAuthenticate, code::kAuthFailed};
    case ER_BAD_DB_ERROR:  // 1049: unknown database
      return {step::kAuthenticate, code::kNotFound};
    case ER_DBACCESS_DENIED_ERROR:  // 1044: no access to that database (or it does not exist)
      return {step::kAuthenticate, code::kPermissionDenied};
    case ER_HOST_NOT_PRIVILEGED:  // 1130: this client host may not connect at all
      return {step::kConnect, code::kPermissionDenied};
    case kSslConnectionError: return {step::kTls, code::kTlsFailure};
    case kConnectionError:
    case kConnHostError:
    case kUnknownHost:
      if (Contains(message, "(110)") || Contains(message, "imed out") || deadline.expired()) {
        return {step::kConnect, code::kTimeout};
      }
      return {step::kConnect, code::kConnectionRefused};
    case kServerLost:
    case kServerLostExtended:
    case kServerGone:
      // The TCP connection was made but the handshake did not complete.
      if (deadline.expired() || Contains(message, "(110)") || Contains(message, "imed out") ||
          Contains(message, "waiting for")) {
        return {step::kConnect, code::kTimeout};
      }
      return {step::kConnect, code::kProtocolError};
    default:
      if (Contains(message, "SSL") || Contains(message, "TLS"))
        return {step::kTls, code::kTlsFailure};
      return {step::kAuthenticate, code::kProtocolError};
  }
}

// The code for a statement that failed with `err`.
std::string_view CodeForStatementError(unsigned err, const Deadline& deadline) {
  switch (err) {
    case ER_DBACCESS_DENIED_ERROR:         // 1044
    case ER_TABLEACCESS_DENIED_ERROR:      // 1142: e.g. CREATE command denied
    case ER_COLUMNACCESS_DENIED_ERROR:     // 1143
    case ER_SPECIFIC_ACCESS_DENIED_ERROR:  // 1227
    case ER_OPTION_PREVENTS_STATEMENT:     // 1290: --read-only
      return code::kPermissionDenied;
    case ER_BAD_DB_ERROR:   // 1049: the write schema does not exist
    case ER_NO_SUCH_TABLE:  // 1146
      return code::kNotFound;
    case kServerLost:
    case kServerGone:
    case kServerLostExtended: return deadline.expired() ? code::kTimeout : code::kProtocolError;
    case ER_STATEMENT_TIMEOUT:  // 1969: max_statement_time
      return code::kTimeout;
    default: return code::kProtocolError;
  }
}

void InitLibraryOnce() {
  static std::once_flag once;
  std::call_once(once, [] { mysql_library_init(0, nullptr, nullptr); });
}

class MysqlSession : public SqlSession {
 public:
  MysqlSession(MYSQL* mysql, const Deadline& deadline) : mysql_(mysql), deadline_(deadline) {}

  SqlOutcome Execute(std::string_view sql) override {
    SqlOutcome out;
    if (!usable_) {
      out.code = code::kProtocolError;
      out.message = "the connection is no longer usable";
      return out;
    }
    if (mysql_real_query(mysql_, sql.data(), sql.size()) != 0) return Failure();
    MYSQL_RES* res = mysql_store_result(mysql_);
    if (!res && mysql_field_count(mysql_) != 0) return Failure();
    if (res) {
      MYSQL_ROW row = mysql_fetch_row(res);
      if (row && mysql_num_fields(res) > 0 && row[0]) {
        unsigned long* lengths = mysql_fetch_lengths(res);
        out.value.assign(row[0], lengths ? lengths[0] : std::strlen(row[0]));
      }
      mysql_free_result(res);
    }
    out.ok = true;
    return out;
  }

  std::string QuoteIdentifier(std::string_view name) override { return QuoteDelimited(name, '`'); }

  bool usable() const override { return usable_; }

 private:
  SqlOutcome Failure() {
    SqlOutcome out;
    unsigned err = mysql_errno(mysql_);
    out.code = CodeForStatementError(err, deadline_);
    out.message = mysql_error(mysql_);
    if (err == kServerLost || err == kServerGone || err == kServerLostExtended) usable_ = false;
    return out;
  }

  MYSQL* mysql_;
  const Deadline& deadline_;
  bool usable_ = true;
};

using MysqlConn = std::unique_ptr<MYSQL, decltype(&mysql_close)>;

// ---- the catalog (contract section 13) -------------------------------------------------------

// `value` as a string literal of the connection's character set.
std::string Literal(MYSQL* m, const std::string& value) {
  std::string out(2 * value.size() + 1, '\0');
  // Escapes as the server's sql_mode requires (NO_BACKSLASH_ESCAPES doubles quotes instead).
  out.resize(mysql_real_escape_string(m, out.data(), value.data(), value.size()));
  return "'" + out + "'";
}

// The catalog query of `plan`, over information_schema. One row per database, per column of a
// table or view and per procedure:
//   kind ('s' database, 't' table, 'p' procedure: CatalogRows::Add), database, name, comment,
//   column, type, nullable (YES/NO), column comment
// ordered by database and name in byte order (a database's row first), then column ordinal.
// information_schema compares names case-insensitively: CatalogRows keeps exact matches only.
std::string CatalogQuery(MYSQL* m, const TwoLevelListing& plan) {
  auto narrowed = [&](std::string_view schema_column, std::string_view name_column) {
    std::string where;
    if (plan.scope) where += " AND " + std::string(schema_column) + " = " + Literal(m, *plan.scope);
    if (plan.object) where += " AND " + std::string(name_column) + " = " + Literal(m, *plan.object);
    return where;
  };
  // The first part names the columns: each part names them, as any of them may be the first.
  std::vector<std::string> parts;
  if (plan.scopes) {
    parts.push_back(
        "SELECT 's' AS kind, s.SCHEMA_NAME AS db, NULL AS object_name, '' AS comment,"
        " NULL AS position, NULL AS column_name, NULL AS column_type, NULL AS nullable,"
        " NULL AS column_comment FROM information_schema.SCHEMATA s WHERE 1 = 1" +
        (plan.scope ? " AND s.SCHEMA_NAME = " + Literal(m, *plan.scope) : std::string()));
  }
  if (plan.objects) {
    // A view's TABLE_COMMENT is the word VIEW (or why the view is invalid), not a comment.
    parts.push_back(
        "SELECT 't' AS kind, t.TABLE_SCHEMA AS db, t.TABLE_NAME AS object_name,"
        " CASE WHEN t.TABLE_TYPE = 'VIEW' THEN '' ELSE t.TABLE_COMMENT END AS comment,"
        " c.ORDINAL_POSITION AS position, c.COLUMN_NAME AS column_name,"
        " c.COLUMN_TYPE AS column_type, c.IS_NULLABLE AS nullable,"
        " c.COLUMN_COMMENT AS column_comment"
        " FROM information_schema.TABLES t LEFT JOIN information_schema.COLUMNS c"
        " ON c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME" +
        narrowed("c.TABLE_SCHEMA", "c.TABLE_NAME") +
        " WHERE t.TABLE_TYPE IN ('BASE TABLE', 'VIEW', 'SYSTEM VERSIONED')" +
        narrowed("t.TABLE_SCHEMA", "t.TABLE_NAME"));
    parts.push_back(
        "SELECT 'p', r.ROUTINE_SCHEMA, r.ROUTINE_NAME, r.ROUTINE_COMMENT, NULL, NULL, NULL, NULL,"
        " NULL FROM information_schema.ROUTINES r WHERE r.ROUTINE_TYPE = 'PROCEDURE'" +
        narrowed("r.ROUTINE_SCHEMA", "r.ROUTINE_NAME"));
  }
  std::string sql;
  for (std::size_t i = 0; i < parts.size(); ++i) sql += (i ? " UNION ALL " : "") + parts[i];
  // NULLs sort first: a database's row before its objects. kind DESC: a table before a
  // procedure of the same name, which CatalogRows then leaves out.
  return sql + " ORDER BY BINARY db, BINARY object_name, kind DESC, position";
}

// Records the query step: streams the listing of `run` into the sink, row by row
// (mysql_use_result: memory does not grow with the catalog), until it ends, the sink says stop
// (SUCCESS) or the deadline passes (timeout; the read timeout set at connect bounds each read).
void ListCatalog(CatalogRun& run, MYSQL* m) {
  StepLog& steps = run.probe.steps;
  const Deadline& deadline = run.probe.deadline;
  steps.Begin(step::kQuery);
  const TwoLevelListing plan = PlanTwoLevel(run.request);
  if (!plan.scopes && !plan.objects) return steps.Pass();
  auto failed = [&] {
    unsigned err = mysql_errno(m);
    steps.Fail(step::kQuery, CodeForStatementError(err, deadline),
               steps.scrubber().Excerpt(mysql_error(m), Scrubber::kMessageExcerptChars));
  };
  const std::string sql = CatalogQuery(m, plan);
  if (mysql_real_query(m, sql.data(), sql.size()) != 0) return failed();
  MYSQL_RES* res = mysql_use_result(m);
  if (!res) return failed();
  // Freeing an unbuffered result reads the rest of it: when the listing stops early, the
  // connection is aborted first (mariadb_cancel), so that nothing more is read.
  auto finish = [&](bool early) {
    if (early) mariadb_cancel(m);
    mysql_free_result(res);
  };
  CatalogRows rows(run);
  while (MYSQL_ROW row = mysql_fetch_row(res)) {
    if (deadline.expired()) {
      finish(true);
      return steps.Fail(step::kQuery, code::kTimeout,
                        "no answer from the server before the test's deadline");
    }
    const unsigned long* lengths = mysql_fetch_lengths(res);
    auto text = [&](int field) {
      return row[field] ? std::string_view(row[field], lengths[field]) : std::string_view();
    };
    std::optional<domain::WarehouseColumn> column;
    if (row[5]) {
      column.emplace(domain::WarehouseColumn{std::string(text(5)), std::string(text(6)),
                                             text(7) == "YES", std::string(text(8))});
    }
    if (!rows.Add(text(0), text(1), text(2), text(3), column ? &*column : nullptr)) {
      finish(true);
      return steps.Pass();  // the sink said stop
    }
  }
  if (mysql_errno(m) != 0) {
    failed();
    return finish(true);
  }
  finish(false);
  rows.Finish();
  steps.Pass();
}

class MysqlDriverImpl : public Driver {
 public:
  std::optional<Endpoint> Target(const boost::json::object& details, const DriverSettings&,
                                 std::string& why) const override {
    Endpoint e{DetailString(details, "host"), DetailInt(details, "port", 0)};
    if (e.host.empty()) why = "details.host is missing";
    if (e.port <= 0) why = "details.port is missing";
    if (!why.empty()) return std::nullopt;
    return e;
  }

  bool UsesTls(const boost::json::object& details) const override {
    return DetailBool(details, "useTls", false);
  }

  void Run(ProbeRun& run) const override {
    MysqlConn mysql = Open(run);
    if (!mysql) return;
    MysqlSession session(mysql.get(), run.deadline);
    RunSqlSteps(run, session, WriteAccessString(run.details, "writeSchema"));
  }

  int PathDepth() const override { return 2; }

  void Introspect(CatalogRun& run) const override {
    MysqlConn mysql = Open(run.probe);
    if (mysql) ListCatalog(run, mysql.get());
  }

 private:
  static bool Failed(StepLog& steps, std::string_view name, std::string_view c,
                     std::string_view message) {
    steps.Fail(name, c, message);
    return false;
  }

  // Connects as `run` says, recording connect, tls and authenticate: the connection, or null
  // after recording the step that failed. Run and Introspect both start here.
  MysqlConn Open(ProbeRun& run) const {
    InitLibraryOnce();
    MysqlConn mysql(mysql_init(nullptr), &mysql_close);
    if (!mysql) {
      run.steps.Fail(step::kConnect, code::kProtocolError, "libmariadb is out of memory");
      return mysql;
    }
    if (!Connect(run, mysql.get())) mysql.reset();
    return mysql;
  }

  // Open's options, TLS check and mysql_real_connect on `m`. False after recording the failed
  // step.
  bool Connect(ProbeRun& run, MYSQL* m) const {
    const bool tls = UsesTls(run.details);
    unsigned timeout = run.deadline.remaining_seconds_ceil();
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &timeout);
    mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &timeout);
    unsigned protocol = MYSQL_PROTOCOL_TCP;
    mysql_options(m, MYSQL_OPT_PROTOCOL, &protocol);
    // A hostile server may ask the client for local files (LOAD DATA LOCAL); refuse always.
    unsigned local_infile = 0;
    mysql_options(m, MYSQL_OPT_LOCAL_INFILE, &local_infile);
    mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    // Only challenge-response plugins (and ones that send the password only over TLS): a server
    // must not be able to switch the client to mysql_clear_password or dialog and read the
    // password, which matters most when TLS was asked for and the server does not offer it.
    mysql_options(m, MARIADB_OPT_RESTRICTED_AUTH,
                  "mysql_native_password,client_ed25519,caching_sha2_password,sha256_password");
    if (tls) {
      my_bool on = 1;
      my_bool off = 0;
      mysql_options(m, MYSQL_OPT_SSL_ENFORCE, &on);
      // Encryption without certificate verification, as sslmode=require for PostgreSQL: the
      // registry has no CA configuration per connection yet, and the connection goes to an IP
      // literal, which Connector/C would have to match against the certificate. Without
      // verification Connector/C 3.3 does not refuse a server that offers no TLS (ENFORCE alone
      // does not), so the cipher is checked after connecting: such a server is a tls_failure.
      mysql_options(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &off);
    }

    std::string address = run.addresses.front().ToString();
    std::string user = DetailString(run.details, "user");
    std::string database = DetailString(run.details, "database");
    auto pw = run.secrets.find("password");

    run.steps.Begin(step::kConnect);
    std::string fingerprint;  // of the certificate verified, to pin Connector/C to
    if (tls) {
      RawConnection conn(run.addresses.front(), run.endpoint.port, run.deadline);
      if (!conn.Connect()) return Failed(run.steps, step::kConnect, conn.code(), conn.message());
      std::string failure_code, failure;
      if (!GreetingOffersTls(conn, failure_code, failure)) {
        if (!failure_code.empty()) return Failed(run.steps, step::kConnect, failure_code, failure);
        run.steps.Pass();
        return Failed(run.steps, step::kTls, code::kTlsFailure,
                      "the server does not offer TLS, which useTls requires; no "
                      "credentials were sent");
      }
      const TlsSettings settings = TlsSettingsOf(run);
      if (settings.mode != TlsMode::kRequire) {
        run.steps.Begin(step::kTls);  // passes connect
        if (!conn.Send(SslRequestPacket(), "the TLS request")) {
          return Failed(run.steps, step::kTls, conn.code(), conn.message());
        }
        ServerCertificate cert = VerifyServer(conn.fd(), run.endpoint.host, settings, run.deadline);
        if (!cert.ok) {
          return Failed(run.steps, step::kTls, cert.code,
                        cert.message + "; no credentials were sent");
        }
        fingerprint = cert.sha1_hex;
        mysql_options(m, MARIADB_OPT_TLS_PEER_FP, fingerprint.c_str());
      }
    }
    MYSQL* ok = mysql_real_connect(m, address.c_str(), user.c_str(),
                                   pw == run.secrets.end() ? nullptr : pw->second.c_str(),
                                   database.empty() ? nullptr : database.c_str(),
                                   static_cast<unsigned>(run.endpoint.port), nullptr, 0);
    if (!ok) {
      unsigned err = mysql_errno(m);
      std::string message =
          run.steps.scrubber().Excerpt(mysql_error(m), Scrubber::kMessageExcerptChars);
      Blame blame = BlameConnectError(err, message, run.deadline);
      if (!fingerprint.empty()) {
        // The tls step is open: the server was verified, and the library's own connection to it
        // is part of that step until the authentication.
        if (blame.step != step::kAuthenticate)
          return Failed(run.steps, step::kTls, blame.code, message);
        run.steps.Pass();
        return Failed(run.steps, step::kAuthenticate, blame.code, message);
      }
      // Steps before the blamed one passed: the library got that far.
      if (blame.step != step::kConnect) {
        run.steps.Pass();
        if (tls && blame.step == step::kAuthenticate) run.steps.Add(step::kTls, status::kSuccess);
      }
      if (blame.step == step::kTls && !tls) blame.step = step::kAuthenticate;
      return Failed(run.steps, blame.step, blame.code, message);
    }
    // The one call above did connect, TLS and authentication; its time shows under connect (or
    // under tls, when the driver verified the server first).
    if (tls && !mysql_get_ssl_cipher(m)) {
      if (fingerprint.empty()) run.steps.Pass();  // connect
      return Failed(run.steps, step::kTls, code::kTlsFailure, "the server did not negotiate TLS");
    }
    run.steps.Pass();
    if (tls && fingerprint.empty()) run.steps.Add(step::kTls, status::kSuccess);
    run.steps.Add(step::kAuthenticate, status::kSuccess);
    return true;
  }
};

}  // namespace

std::vector<WarehouseType> MysqlTypes() {
  using domain::Kind, domain::Req, domain::Opt, domain::Nested;
  static const MysqlDriverImpl* const driver = new MysqlDriverImpl;
  return {{{"mysql",
            domain::WithTlsFields({Req("host", Kind::kHost).Endpoint(),
                                   Req("port", Kind::kPort).Endpoint(), Req("user", Kind::kString),
                                   Req("password", Kind::kPassword), Opt("database", Kind::kString),
                                   Opt("useTls", Kind::kBool).Default(false),
                                   Nested("writeAccess", {Req("writeSchema", Kind::kString)})}),
            domain::TlsSwitch::kUseTls},
           driver}};
}

}  // namespace connreg::probe
