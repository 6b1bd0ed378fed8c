// The sqlserver and azuresql driver (FreeTDS db-lib) against a protocol fake: a small TDS 7.4
// server on 127.0.0.1 that speaks just enough of the protocol for FreeTDS (PRELOGIN without
// encryption, LOGIN7, SQL batches, attention). Real SQL Server cannot run on this machine.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstring>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <boost/json/serialize.hpp>

#include "domain/catalog.h"
#include "probe/engine.h"
#include "probe/scrub.h"
#include "probe/step_log.h"
#include "probe_test_support.h"

namespace connreg::probe {
namespace {

using test_support::ClosedPort;
using test_support::Describe;
using test_support::Engine;
using test_support::FindStep;
using test_support::LoopbackOptions;
using test_support::MakeConnection;
using test_support::Steps;

using Clock = std::chrono::steady_clock;

constexpr const char* kUser = "alice";
constexpr const char* kPassword = "S3cret-pw!42";

// --- TDS encoding -------------------------------------------------------------------------------

void PutU8(std::string& out, unsigned v) { out += static_cast<char>(v & 0xff); }
void PutU16(std::string& out, unsigned v) {
  PutU8(out, v);
  PutU8(out, v >> 8);
}
void PutU32(std::string& out, std::uint32_t v) {
  PutU16(out, v & 0xffff);
  PutU16(out, v >> 16);
}
void PutU64(std::string& out, std::uint64_t v) {
  PutU32(out, static_cast<std::uint32_t>(v));
  PutU32(out, static_cast<std::uint32_t>(v >> 32));
}
std::uint16_t GetU16(const std::string& s, std::size_t at) {
  return static_cast<std::uint16_t>(static_cast<unsigned char>(s[at]) |
                                    static_cast<unsigned char>(s[at + 1]) << 8);
}
std::uint32_t GetU32(const std::string& s, std::size_t at) {
  return GetU16(s, at) | static_cast<std::uint32_t>(GetU16(s, at + 2)) << 16;
}

// UTF-8 (of the Basic Multilingual Plane: the tests use nothing else) as UTF-16LE; back for
// ASCII only (what the driver sends is ASCII in these tests).
std::string Utf16(std::string_view utf8) {
  std::string out;
  for (std::size_t i = 0; i < utf8.size();) {
    auto b = static_cast<unsigned char>(utf8[i]);
    unsigned code = b;
    std::size_t n = b < 0x80 ? 1 : b < 0xE0 ? 2 : 3;
    if (n == 2) code = (b & 0x1Fu) << 6 | (static_cast<unsigned char>(utf8[i + 1]) & 0x3Fu);
    if (n == 3) {
      code = (b & 0x0Fu) << 12 | (static_cast<unsigned char>(utf8[i + 1]) & 0x3Fu) << 6 |
             (static_cast<unsigned char>(utf8[i + 2]) & 0x3Fu);
    }
    PutU16(out, code);
    i += n;
  }
  return out;
}
std::string FromUtf16(const std::string& s, std::size_t at, std::size_t chars) {
  std::string out;
  for (std::size_t i = 0; i < chars && at + 2 * i + 1 < s.size(); ++i) out += s[at + 2 * i];
  return out;
}
std::string BVarchar(std::string_view s) {
  std::string text = Utf16(s);
  std::string out;
  PutU8(out, static_cast<unsigned>(text.size() / 2));
  return out + text;
}
std::string UsVarchar(std::string_view s) {
  std::string text = Utf16(s);
  std::string out;
  PutU16(out, static_cast<unsigned>(text.size() / 2));
  return out + text;
}

// Tokens of a tabular result (MS-TDS 2.2.7).
constexpr unsigned kDoneError = 0x0002;
constexpr unsigned kDoneCount = 0x0010;
constexpr unsigned kDoneAttention = 0x0020;

std::string Done(unsigned status, unsigned command = 0, std::uint64_t rows = 0) {
  std::string out;
  PutU8(out, 0xFD);
  PutU16(out, status);
  PutU16(out, command);
  PutU64(out, rows);
  return out;
}
std::string Message(unsigned token, std::uint32_t number, unsigned severity,
                    std::string_view text) {
  std::string body;
  PutU32(body, number);
  PutU8(body, 1);  // state
  PutU8(body, severity);
  body += UsVarchar(text) + BVarchar("tdsfake") + BVarchar("");
  PutU32(body, 1);  // line
  std::string out;
  PutU8(out, token);
  PutU16(out, static_cast<unsigned>(body.size()));
  return out + body;
}
std::string Error(std::uint32_t number, unsigned severity, std::string_view text) {
  return Message(0xAA, number, severity, text);
}
std::string Info(std::uint32_t number, std::string_view text) {
  return Message(0xAB, number, 0, text);
}
std::string EnvChange(unsigned type, std::string_view now, std::string_view before) {
  std::string body;
  PutU8(body, type);
  body += BVarchar(now) + BVarchar(before);
  std::string out;
  PutU8(out, 0xE3);
  PutU16(out, static_cast<unsigned>(body.size()));
  return out + body;
}
std::string LoginAck() {
  std::string body;
  PutU8(body, 1);                              // interface: SQL_TSQL
  body += std::string("\x74\x00\x00\x04", 4);  // TDS 7.4
  body += BVarchar("Microsoft SQL Server");
  body += std::string("\x10\x00\x07\xd0", 4);  // version 16.0.2000
  std::string out;
  PutU8(out, 0xAD);
  PutU16(out, static_cast<unsigned>(body.size()));
  return out + body;
}
// One INT column and one row.
std::string IntResult(std::int32_t v) {
  std::string out;
  PutU8(out, 0x81);  // COLMETADATA
  PutU16(out, 1);
  PutU32(out, 0);    // user type
  PutU16(out, 0);    // flags
  PutU8(out, 0x38);  // INT4
  out += BVarchar("");
  PutU8(out, 0xD1);  // ROW
  PutU32(out, static_cast<std::uint32_t>(v));
  return out + Done(kDoneCount, 0xC1, 1);
}
// One NVARCHAR(64) column and one row.
std::string TextResult(std::string_view column, std::string_view v) {
  std::string out;
  PutU8(out, 0x81);
  PutU16(out, 1);
  PutU32(out, 0);
  PutU16(out, 0x0001);  // nullable
  PutU8(out, 0xE7);     // NVARCHAR
  PutU16(out, 128);
  out += std::string("\x09\x04\xd0\x00\x34", 5);  // collation Latin1_General_CI_AS
  out += BVarchar(column);
  PutU8(out, 0xD1);
  PutU16(out, static_cast<unsigned>(v.size() * 2));
  out += Utf16(v);
  return out + Done(kDoneCount, 0xC1, 1);
}

// A result of NVARCHAR(4000) and INT columns, as SQL Server sends one: COLMETADATA, a ROW per
// row (NULL as nullopt), DONE with the count.
struct FakeResultColumn {
  std::string name;
  bool integer = false;
};
using FakeCell = std::optional<std::string>;  // an INT column's cell holds its decimal digits
std::string RowsResult(const std::vector<FakeResultColumn>& columns,
                       const std::vector<std::vector<FakeCell>>& rows) {
  std::string out;
  PutU8(out, 0x81);
  PutU16(out, static_cast<unsigned>(columns.size()));
  for (const FakeResultColumn& c : columns) {
    PutU32(out, 0);
    PutU16(out, 0x0001);  // nullable
    if (c.integer) {
      PutU8(out, 0x26);  // INTN
      PutU8(out, 4);
    } else {
      PutU8(out, 0xE7);  // NVARCHAR(4000)
      PutU16(out, 8000);
      out += std::string("\x09\x04\xd0\x00\x34", 5);
    }
    out += BVarchar(c.name);
  }
  for (const std::vector<FakeCell>& row : rows) {
    PutU8(out, 0xD1);
    for (std::size_t i = 0; i < columns.size(); ++i) {
      const FakeCell& cell = row[i];
      if (columns[i].integer) {
        PutU8(out, cell ? 4 : 0);
        if (cell) PutU32(out, static_cast<std::uint32_t>(std::stoi(*cell)));
      } else if (!cell) {
        PutU16(out, 0xFFFF);
      } else {
        std::string text = Utf16(*cell);
        PutU16(out, static_cast<unsigned>(text.size()));
        out += text;
      }
    }
  }
  return out + Done(kDoneCount, 0xC1, rows.size());
}

// --- the fake's catalog -------------------------------------------------------------------------

// What the fake's INFORMATION_SCHEMA.COLUMNS and MS_Description properties hold of a column.
struct FakeColumn {
  std::string name;
  std::string data_type;
  FakeCell length;     // CHARACTER_MAXIMUM_LENGTH
  FakeCell precision;  // NUMERIC_PRECISION
  FakeCell scale;      // NUMERIC_SCALE
  FakeCell fraction;   // DATETIME_PRECISION
  bool nullable = true;
  FakeCell comment;
};
struct FakeTable {
  std::string schema;
  std::string name;
  std::string type;  // TABLE_TYPE
  FakeCell comment;
  std::vector<FakeColumn> columns;  // in ordinal order
};
struct FakeDatabase {
  std::string name;
  bool access = true;  // HAS_DBACCESS(name)
  std::vector<std::string> schemas;
  std::vector<FakeTable> tables;
};

// The columns as INFORMATION_SCHEMA describes each type.
FakeColumn Col(std::string name, std::string type, bool nullable, FakeCell comment = {}) {
  FakeColumn c{std::move(name), std::move(type)};
  c.nullable = nullable;
  c.comment = std::move(comment);
  return c;
}
FakeColumn Text(std::string name, std::string type, std::string length, bool nullable,
                FakeCell comment = {}) {
  FakeColumn c = Col(std::move(name), std::move(type), nullable, std::move(comment));
  c.length = std::move(length);
  return c;
}
FakeColumn Exact(std::string name, std::string type, std::string precision, std::string scale,
                 bool nullable) {
  FakeColumn c = Col(std::move(name), std::move(type), nullable);
  c.precision = std::move(precision);
  c.scale = std::move(scale);
  return c;
}
FakeColumn Temporal(std::string name, std::string type, std::string fraction, bool nullable) {
  FakeColumn c = Col(std::move(name), std::move(type), nullable);
  c.fraction = std::move(fraction);
  return c;
}

const std::string kLongComment = std::string(600, 'c') + " end";

// sys.databases and each database's catalog, in an order that is not the listing's (the driver
// must ask for the order). The system databases, the schemas every database has and a database
// the login may not access are there for the driver to leave out.
std::vector<FakeDatabase> SeededCatalog() {
  FakeTable orders{"sales", "orders", "BASE TABLE", "Customer orders", {}};
  orders.columns = {
      Exact("id", "int", "10", "0", false),
      Text("customer", "nvarchar", "50", true, "Who ordered"),
      Exact("amount", "decimal", "10", "2", false),
      Temporal("placed_at", "datetime2", "7", false),
      Temporal("placed_local", "datetimeoffset", "7", true),
      Temporal("settled_at", "datetime2", "3", true),
      Col("ref", "uniqueidentifier", false),
      Col("paid", "bit", false),
      Text("note", "nvarchar", "-1", true, kLongComment),
      Text("receipt", "varbinary", "-1", true),
      Text("ship_to", "geography", "-1", true),  // CLR types report -1 too
      Exact("fee", "money", "19", "4", true),
  };
  FakeTable totals{"sales", "Order_totals", "VIEW", {}, {}};
  totals.columns = {Text("customer", "nvarchar", "50", true),
                    Exact("total", "decimal", "38", "2", true)};
  FakeTable customers{"dbo", "customers", "BASE TABLE", {}, {}};
  customers.columns = {Exact("id", "int", "10", "0", false),
                       Text("Straße", "nvarchar", "100", false, "Wohnort")};
  FakeTable facts{"dbo", "facts", "BASE TABLE", {}, {}};
  facts.columns = {Exact("id", "bigint", "19", "0", false), Text("payload", "xml", "-1", true)};
  FakeTable quoted{"dbo", "it's", "BASE TABLE", {}, {}};
  quoted.columns = {Text("code", "char", "3", false)};
  FakeTable spt{"dbo", "spt_monitor", "BASE TABLE", {}, {}};
  spt.columns = {Exact("cpu_busy", "int", "10", "0", false)};
  FakeTable secret{"dbo", "secret_table", "BASE TABLE", {}, {}};
  secret.columns = {Exact("id", "int", "10", "0", false)};
  return {
      {"master", true, {"dbo", "sys"}, {spt}},
      {"tempdb", true, {"dbo"}, {}},
      {"model", true, {"dbo"}, {}},
      {"msdb", true, {"dbo"}, {}},
      {"warehouse", true, {"stage", "dbo", "sys", "INFORMATION_SCHEMA"}, {facts}},
      {"appdb",
       true,
       {"sales", "dbo", "empty_schema", "sys", "INFORMATION_SCHEMA", "guest", "db_owner",
        "db_datareader"},
       {orders, totals, customers}},
      {"noaccess", false, {"dbo"}, {secret}},
      {"system", true, {"dbo"}, {secret}},
      {"Lab]2", true, {"dbo"}, {quoted}},
  };
}

bool SameNameCi(std::string_view a, std::string_view b) {  // the default collation, _CI_
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// The text of N'...' (its '' undoubled).
std::string Unquote(std::string quoted, char quote) {
  std::string out;
  for (std::size_t i = 0; i < quoted.size(); ++i) {
    out += quoted[i];
    if (quoted[i] == quote && i + 1 < quoted.size() && quoted[i + 1] == quote) ++i;
  }
  return out;
}

// Splits a select list at its top-level commas.
std::vector<std::string> SelectList(const std::string& list) {
  std::vector<std::string> out;
  int depth = 0;
  std::string item;
  for (char c : list) {
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == ',' && depth == 0) {
      out.push_back(item);
      item.clear();
      continue;
    }
    if (!(c == ' ' && item.empty())) item += c;
  }
  out.push_back(item);
  return out;
}

// --- the fake server ----------------------------------------------------------------------------

struct FakeLogin {
  std::string user;
  std::string password;  // decoded from LOGIN7's obfuscation
  std::string database;
  std::string server_name;
  std::string app_name;
};

struct FakeStatement {
  std::string database;  // the connection's database when the statement arrived
  std::string sql;
};

enum class FakeMode {
  kServe,
  kSilent,            // accepts TCP connections and never says anything
  kSilentOnLogin,     // answers PRELOGIN, never LOGIN7
  kSilentAfterLogin,  // logs in, then never answers a SQL batch
  kNotTds,            // answers like an HTTP server
};

struct FakeConfig {
  FakeMode mode = FakeMode::kServe;
  std::vector<std::string> databases = {"appdb", "warehouse"};
  bool refuse_create = false;  // CREATE TABLE fails with error 262
  std::string address = "127.0.0.1";
  // When set, a successful login is redirected there (ENVCHANGE routing, as Azure SQL does).
  std::string redirect_host;
  int redirect_port = 0;
  // A database whose catalog queries answer error 916 (no access under this security context).
  std::string deny_catalog;
  // How long each database's catalog query takes to answer.
  std::chrono::milliseconds catalog_delay{0};
};

// A protocol fake of SQL Server (see the top of the file). Thread-safe.
class TdsFake {
 public:
  using Mode = FakeMode;
  using Config = FakeConfig;

  TdsFake() : TdsFake(Config{}) {}
  explicit TdsFake(Config config) : config_(std::move(config)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    inet_pton(AF_INET, config_.address.c_str(), &a.sin_addr);
    bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(listener_, 64);
    socklen_t len = sizeof a;
    getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }

  ~TdsFake() {
    stopping_ = true;
    accept_thread_.join();
    for (std::thread& t : connections_) t.join();
    ::close(listener_);
  }

  int port() const { return port_; }
  int prelogins() const { return prelogins_; }
  std::vector<FakeLogin> logins() const {
    std::lock_guard lock(mu_);
    return logins_;
  }
  std::vector<FakeStatement> statements() const {
    std::lock_guard lock(mu_);
    return statements_;
  }
  std::map<std::string, std::string> tables() const {
    std::lock_guard lock(mu_);
    return tables_;
  }

 private:
  void AcceptLoop() {
    while (!stopping_) {
      pollfd p{listener_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      connections_.emplace_back([this, fd] {
        Serve(fd);
        ::close(fd);
      });
    }
  }

  // Reads one message (packets up to end-of-message); false on EOF or when stopping.
  bool ReadMessage(int fd, unsigned& type, std::string& payload) {
    payload.clear();
    for (;;) {
      std::string header;
      if (!ReadExactly(fd, 8, header)) return false;
      type = static_cast<unsigned char>(header[0]);
      std::size_t length =
          static_cast<unsigned char>(header[2]) << 8 | static_cast<unsigned char>(header[3]);
      std::string body;
      if (length < 8 || !ReadExactly(fd, length - 8, body)) return false;
      payload += body;
      if (static_cast<unsigned char>(header[1]) & 0x01) return true;
    }
  }

  bool ReadExactly(int fd, std::size_t n, std::string& out) {
    while (out.size() < n) {
      pollfd p{fd, POLLIN, 0};
      int rc = poll(&p, 1, 50);
      if (stopping_) return false;
      if (rc <= 0) continue;
      char buf[4096];
      ssize_t got = ::recv(fd, buf, std::min(sizeof buf, n - out.size()), 0);
      if (got <= 0) return false;
      out.append(buf, static_cast<std::size_t>(got));
    }
    return true;
  }

  void Send(int fd, const std::string& payload) {
    std::size_t at = 0;
    unsigned id = 1;
    do {
      std::size_t chunk = std::min<std::size_t>(payload.size() - at, 4096 - 8);
      bool last = at + chunk == payload.size();
      std::string packet;
      PutU8(packet, 0x04);
      PutU8(packet, last ? 0x01 : 0x00);
      packet += static_cast<char>((chunk + 8) >> 8);
      packet += static_cast<char>((chunk + 8) & 0xff);
      PutU16(packet, 0);
      PutU8(packet, id++);
      PutU8(packet, 0);
      packet.append(payload, at, chunk);
      ::send(fd, packet.data(), packet.size(), MSG_NOSIGNAL);
      at += chunk;
    } while (at < payload.size());
  }

  void Hold() {
    while (!stopping_) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  void Serve(int fd) {
    if (config_.mode == Mode::kSilent) return Hold();
    if (config_.mode == Mode::kNotTds) {
      std::string request;
      ReadExactly(fd, 8, request);
      const std::string answer = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
      ::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
      return;
    }
    std::string database;
    unsigned type = 0;
    std::string payload;
    while (ReadMessage(fd, type, payload)) {
      switch (type) {
        case 0x12:  // PRELOGIN: VERSION, ENCRYPTION = ENCRYPT_NOT_SUP
          ++prelogins_;
          Send(fd, std::string("\x00\x00\x0b\x00\x06\x01\x00\x11\x00\x01\xff"
                               "\x10\x00\x07\xd0\x00\x00\x02",
                               18));
          break;
        case 0x10:  // LOGIN7
          if (config_.mode == Mode::kSilentOnLogin) return Hold();
          if (!Login(fd, payload, database)) return;
          break;
        case 0x01:  // SQL batch
          if (config_.mode == Mode::kSilentAfterLogin) return Hold();
          Batch(fd, payload, database);
          break;
        case 0x06:  // attention
          Send(fd, Done(kDoneAttention));
          break;
        default: return;
      }
    }
  }

  static std::string LoginString(const std::string& p, std::size_t field) {
    return FromUtf16(p, GetU16(p, field), GetU16(p, field + 2));
  }

  // True when the client may go on (a successful login).
  bool Login(int fd, const std::string& p, std::string& database) {
    FakeLogin l;
    l.user = LoginString(p, 40);
    std::string obfuscated = p.substr(GetU16(p, 44), GetU16(p, 46) * 2);
    for (char& c : obfuscated) {
      auto b = static_cast<unsigned char>(c) ^ 0xA5;
      c = static_cast<char>((b << 4 | b >> 4) & 0xff);
    }
    l.password = FromUtf16(obfuscated, 0, obfuscated.size() / 2);
    l.app_name = LoginString(p, 48);
    l.server_name = LoginString(p, 52);
    l.database = LoginString(p, 68);
    {
      std::lock_guard lock(mu_);
      logins_.push_back(l);
    }
    std::string want = l.database.empty() ? "appdb" : l.database;
    bool known = std::find(config_.databases.begin(), config_.databases.end(), want) !=
                 config_.databases.end();
    if (l.user != kUser || l.password != kPassword) {
      // A careless server that echoes what it was sent: the driver's scrubbing must catch it.
      Send(fd, Error(18456, 14,
                     "Login failed for user '" + l.user + "' with password '" + l.password + "'.") +
                   Done(kDoneError));
      return false;
    }
    if (!known) {
      Send(fd, Error(4060, 11,
                     "Cannot open database \"" + want +
                         "\" requested by the login. The login failed.") +
                   Error(18456, 14, "Login failed for user '" + l.user + "'.") + Done(kDoneError));
      return false;
    }
    database = want;
    std::string routing;
    if (!config_.redirect_host.empty()) {
      std::string value;
      PutU8(value, 0);  // TCP
      PutU16(value, static_cast<unsigned>(config_.redirect_port));
      value += UsVarchar(config_.redirect_host);
      std::string body;
      PutU8(body, 20);  // ROUTING
      PutU16(body, static_cast<unsigned>(value.size()));
      body += value;
      PutU16(body, 0);  // no old value
      PutU8(routing, 0xE3);
      PutU16(routing, static_cast<unsigned>(body.size()));
      routing += body;
    }
    Send(fd, EnvChange(1, want, "master") +
                 Info(5701, "Changed database context to '" + want + "'.") +
                 EnvChange(4, "4096", "4096") + LoginAck() + routing + Done(0));
    return true;
  }

  void Batch(int fd, const std::string& p, std::string& database) {
    std::uint32_t headers = GetU32(p, 0);
    std::string sql = FromUtf16(p, headers, (p.size() - headers) / 2);
    std::string current = database;
    {
      std::lock_guard lock(mu_);
      statements_.push_back({current, sql});
    }
    static const std::regex use(R"(^USE \[([^\]]+)\]$)");
    static const std::regex create(R"(^CREATE TABLE (\S+) )");
    static const std::regex insert(R"(^INSERT INTO (\S+) .*VALUES \(1, '([0-9a-f]+)'\)$)");
    static const std::regex select(R"(^SELECT marker FROM (\S+) WHERE id = 1$)");
    static const std::regex drop(R"(^DROP TABLE IF EXISTS (\S+)$)");
    static const std::regex databases(
        R"(^SELECT name FROM sys\.databases WHERE HAS_DBACCESS\(name\) = 1(?: AND name = N'((?:[^']|'')*)')?$)");
    static const std::regex schemata(
        R"(^SELECT (.+?) FROM \[((?:[^\]]|\]\])+)\]\.INFORMATION_SCHEMA\.SCHEMATA AS s(.*)$)");
    std::smatch m;
    if (std::regex_match(sql, m, schemata)) {
      for (auto until = Clock::now() + config_.catalog_delay; Clock::now() < until && !stopping_;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      return Send(fd, CatalogAnswer(m[1], Unquote(m[2], ']'), m[3]));
    }
    std::lock_guard lock(mu_);
    if (sql == "SELECT DB_NAME()") {
      Send(fd, TextResult("", current));
    } else if (std::regex_match(sql, m, databases)) {
      std::vector<std::vector<FakeCell>> rows;
      for (const FakeDatabase& d : catalog_) {
        if (d.access && (!m[1].matched || SameNameCi(d.name, Unquote(m[1], '\'')))) {
          rows.push_back({d.name});
        }
      }
      Send(fd, RowsResult({{"name"}}, rows));
    } else if (sql == "SELECT 1") {
      Send(fd, IntResult(1));
    } else if (std::regex_match(sql, m, use)) {
      std::string to = m[1];
      if (std::find(config_.databases.begin(), config_.databases.end(), to) ==
          config_.databases.end()) {
        Send(fd, Error(911, 16, "Database '" + to + "' does not exist.") + Done(kDoneError));
      } else {
        database = to;
        Send(fd, EnvChange(1, to, current) +
                     Info(5701, "Changed database context to '" + to + "'.") + Done(0));
      }
    } else if (std::regex_search(sql, m, create)) {
      if (config_.refuse_create) {
        Send(fd, Error(262, 14, "CREATE TABLE permission denied in database '" + current + "'.") +
                     Done(kDoneError));
      } else {
        tables_[current + "." + std::string(m[1])] = "";
        Send(fd, Done(0));
      }
    } else if (std::regex_match(sql, m, insert)) {
      tables_[current + "." + std::string(m[1])] = m[2];
      Send(fd, Done(kDoneCount, 0xC3, 1));
    } else if (std::regex_match(sql, m, select)) {
      Send(fd, TextResult("marker", tables_[current + "." + std::string(m[1])]));
    } else if (std::regex_match(sql, m, drop)) {
      tables_.erase(current + "." + std::string(m[1]));
      Send(fd, Done(0));
    } else if (sql.rfind("SET ", 0) == 0) {
      Send(fd, Done(0));
    } else {
      Send(fd,
           Error(102, 15, "Incorrect syntax near '" + sql.substr(0, 20) + "'.") + Done(kDoneError));
    }
  }

  // The answer to one database's catalog query: SCHEMATA, LEFT JOINed to TABLES and COLUMNS and
  // the MS_Description properties when the query joins them, filtered by its WHERE and sorted
  // by its ORDER BY as SQL Server would; the columns are those of the select list.
  std::string CatalogAnswer(const std::string& select, const std::string& database,
                            const std::string& rest) const {
    auto d = std::find_if(catalog_.begin(), catalog_.end(),
                          [&](const FakeDatabase& x) { return SameNameCi(x.name, database); });
    if (d == catalog_.end()) {
      return Error(208, 16, "Invalid object name '" + database + ".INFORMATION_SCHEMA.SCHEMATA'.") +
             Done(kDoneError);
    }
    if (SameNameCi(database, config_.deny_catalog)) {
      return Error(916, 14,
                   "The server principal \"alice\" is not able to access the database \"" +
                       database + "\" under the current security context.") +
             Done(kDoneError);
    }
    auto has = [&](std::string_view text) { return rest.find(text) != std::string::npos; };
    const bool tables = has(".INFORMATION_SCHEMA.TABLES AS t ON t.TABLE_SCHEMA = s.SCHEMA_NAME");
    const bool columns = tables && has(".INFORMATION_SCHEMA.COLUMNS AS c ON c.TABLE_SCHEMA = "
                                       "t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME");
    const bool comments = columns && has(".sys.extended_properties AS tp") &&
                          has(".sys.extended_properties AS cp") && has("N'MS_Description'");
    std::smatch m;
    static const std::regex schema_is(R"( s\.SCHEMA_NAME = N'((?:[^']|'')*)')");
    static const std::regex table_is(R"( t\.TABLE_NAME = N'((?:[^']|'')*)')");
    std::optional<std::string> schema_filter, table_filter;
    if (std::regex_search(rest, m, schema_is)) schema_filter = Unquote(m[1], '\'');
    if (std::regex_search(rest, m, table_is)) table_filter = Unquote(m[1], '\'');
    const bool ordered =
        has(" ORDER BY s.SCHEMA_NAME COLLATE Latin1_General_BIN2") &&
        (!tables || has(", t.TABLE_NAME COLLATE Latin1_General_BIN2, c.ORDINAL_POSITION"));

    // The select list's columns, each a function of one joined row.
    using Cell = std::function<FakeCell(const std::string&, const FakeTable*, const FakeColumn*)>;
    std::vector<FakeResultColumn> result;
    std::vector<Cell> cells;
    for (const std::string& item : SelectList(select)) {
      auto text = [&](Cell f) {
        result.push_back({""});
        cells.push_back(std::move(f));
      };
      auto integer = [&](Cell f) {
        result.push_back({"", true});
        cells.push_back(std::move(f));
      };
      auto col = [](auto field) {
        return [field](const std::string&, const FakeTable*, const FakeColumn* c) -> FakeCell {
          return c ? field(*c) : FakeCell{};
        };
      };
      if (item == "s.SCHEMA_NAME") {
        text([](const std::string& s, const FakeTable*, const FakeColumn*) { return s; });
      } else if (item == "t.TABLE_NAME" && tables) {
        text([](const std::string&, const FakeTable* t, const FakeColumn*) {
          return t ? FakeCell(t->name) : FakeCell{};
        });
      } else if (item == "CAST(tp.value AS nvarchar(4000))" && comments) {
        text([](const std::string&, const FakeTable* t, const FakeColumn*) {
          return t ? t->comment : FakeCell{};
        });
      } else if (item == "c.COLUMN_NAME" && columns) {
        text(col([](const FakeColumn& c) { return FakeCell(c.name); }));
      } else if (item == "c.DATA_TYPE" && columns) {
        text(col([](const FakeColumn& c) { return FakeCell(c.data_type); }));
      } else if (item == "c.CHARACTER_MAXIMUM_LENGTH" && columns) {
        integer(col([](const FakeColumn& c) { return c.length; }));
      } else if (item == "c.NUMERIC_PRECISION" && columns) {
        integer(col([](const FakeColumn& c) { return c.precision; }));
      } else if (item == "c.NUMERIC_SCALE" && columns) {
        integer(col([](const FakeColumn& c) { return c.scale; }));
      } else if (item == "c.DATETIME_PRECISION" && columns) {
        integer(col([](const FakeColumn& c) { return c.fraction; }));
      } else if (item == "c.IS_NULLABLE" && columns) {
        text(col([](const FakeColumn& c) { return FakeCell(c.nullable ? "YES" : "NO"); }));
      } else if (item == "CAST(cp.value AS nvarchar(4000))" && comments) {
        text(col([](const FakeColumn& c) { return c.comment; }));
      } else {
        return Error(207, 16, "Invalid column name '" + item + "'.") + Done(kDoneError);
      }
    }

    std::vector<std::string> schemas = d->schemas;
    std::vector<const FakeTable*> in_order;
    for (const FakeTable& t : d->tables) in_order.push_back(&t);
    if (ordered) {  // Latin1_General_BIN2: code point order, which for these names is byte order
      std::sort(schemas.begin(), schemas.end());
      std::sort(in_order.begin(), in_order.end(),
                [](const FakeTable* a, const FakeTable* b) { return a->name < b->name; });
    }
    std::vector<std::vector<FakeCell>> rows;
    auto add = [&](const std::string& schema, const FakeTable* t, const FakeColumn* c) {
      std::vector<FakeCell> row;
      for (const Cell& cell : cells) row.push_back(cell(schema, t, c));
      rows.push_back(std::move(row));
    };
    for (const std::string& schema : schemas) {
      if (schema_filter && !SameNameCi(schema, *schema_filter)) continue;
      if (!tables) {
        add(schema, nullptr, nullptr);
        continue;
      }
      bool any = false;
      for (const FakeTable* t : in_order) {
        if (t->schema != schema || (table_filter && !SameNameCi(t->name, *table_filter))) continue;
        any = true;
        if (!columns) add(schema, t, nullptr);
        if (columns) {
          for (const FakeColumn& c : t->columns) add(schema, t, &c);
        }
      }
      // The LEFT JOIN's row for a schema without tables, unless the WHERE names a table.
      if (!any && !table_filter) add(schema, nullptr, nullptr);
    }
    return RowsResult(result, rows);
  }

  Config config_;
  const std::vector<FakeDatabase> catalog_ = SeededCatalog();
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
  std::list<std::thread> connections_;  // touched by the accept thread only, then joined
  std::atomic<int> prelogins_{0};
  mutable std::mutex mu_;
  std::vector<FakeLogin> logins_;
  std::vector<FakeStatement> statements_;
  std::map<std::string, std::string> tables_;  // "database.[schema].[table]" -> marker
};

// --- helpers ------------------------------------------------------------------------------------

boost::json::object Details(int port, std::string database = "appdb") {
  boost::json::object d{{"server", "127.0.0.1"}, {"port", port}, {"user", kUser}};
  if (!database.empty()) d["database"] = database;
  return d;
}

// Waits up to `limit` for the engine's drivers to return; true when they did.
bool DriversReturnWithin(std::chrono::milliseconds limit) {
  auto until = Clock::now() + limit;
  while (Clock::now() < until) {
    if (Engine().stats().running == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return Engine().stats().running == 0;
}

// --- tests --------------------------------------------------------------------------------------

TEST(ProbeSqlServer, ReadSucceedsAgainstTheFake) {
  TdsFake fake;
  TestResult r = Engine().RunTest(MakeConnection("sqlserver", Details(fake.port())),
                                  {{"password", kPassword}});
  EXPECT_EQ(r.read, "SUCCESS") << Describe(r);
  EXPECT_EQ(r.write, "DISABLED");
  EXPECT_TRUE(r.query_reached);
  EXPECT_EQ(Steps(r), "resolve:SUCCESS connect:SUCCESS authenticate:SUCCESS query:SUCCESS");
  ASSERT_EQ(fake.logins().size(), 1u);
  FakeLogin l = fake.logins()[0];
  EXPECT_EQ(l.user, kUser);
  EXPECT_EQ(l.password, kPassword);
  EXPECT_EQ(l.database, "appdb");
  EXPECT_EQ(l.app_name, "connreg-probe");
  EXPECT_EQ(l.server_name, "127.0.0.1") << "LOGIN7 names the server as configured";
  EXPECT_GE(fake.prelogins(), 2) << "the driver's own pre-login, then FreeTDS's";
  std::vector<FakeStatement> statements = fake.statements();
  ASSERT_FALSE(statements.empty());
  EXPECT_EQ(statements.back().sql, "SELECT 1");
  EXPECT_EQ(statements.back().database, "appdb");
}

TEST(ProbeSqlServer, WrongPasswordIsAuthFailedAndNeverEchoed) {
  TdsFake fake;
  const std::string wrong = "Wr0ng-pw-" + std::string(kPassword).substr(0, 4);
  TestResult r =
      Engine().RunTest(MakeConnection("sqlserver", Details(fake.port())), {{"password", wrong}});
  EXPECT_EQ(Steps(r),
            "resolve:SUCCESS connect:SUCCESS authenticate:FAILED/auth_failed query:SKIPPED");
  EXPECT_FALSE(r.query_reached);
  ASSERT_EQ(fake.logins().size(), 1u);
  EXPECT_EQ(fake.logins()[0].password, wrong) << "the fake decodes what was sent";
  const Step* auth = FindStep(r, "authenticate");
  ASSERT_NE(auth, nullptr);
  EXPECT_NE(auth->message.find("Login failed for user 'alice'"), std::string::npos)
      << auth->message;
  std::string body = Describe(r);
  EXPECT_EQ(body.find(wrong), std::string::npos) << body;
  for (const Step& s : r.steps) EXPECT_EQ(s.message.find(wrong), std::string::npos) << s.message;
}

TEST(ProbeSqlServer, UnknownDatabaseIsNotFound) {
  TdsFake fake;
  TestResult r = Engine().RunTest(MakeConnection("sqlserver", Details(fake.port(), "nosuchdb")),
                                  {{"password", kPassword}});
  EXPECT_EQ(Steps(r),
            "resolve:SUCCESS connect:SUCCESS authenticate:FAILED/not_found query:SKIPPED");
}

TEST(ProbeSqlServer, WriteCreatesInsertsReadsAndDropsInTheWriteDatabase) {
  TdsFake fake;
  boost::json::object d = Details(fake.port());
  d["writeAccess"] = {{"writeDatabase", "warehouse"}, {"writeSchema", "probe_w"}};
  d["useReadUncommittedIsolation"] = true;
  TestResult r = Engine().RunTest(MakeConnection("sqlserver", d), {{"password", kPassword}});
  EXPECT_EQ(r.read, "SUCCESS") << Describe(r);
  EXPECT_EQ(r.write, "SUCCESS") << Describe(r);
  EXPECT_EQ(Steps(r),
            "resolve:SUCCESS connect:SUCCESS authenticate:SUCCESS query:SUCCESS write:SUCCESS");

  std::vector<FakeStatement> s = fake.statements();
  auto find = [&](std::string_view prefix) -> const FakeStatement* {
    for (const FakeStatement& st : s) {
      if (st.sql.rfind(prefix, 0) == 0) return &st;
    }
    return nullptr;
  };
  ASSERT_NE(find("SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED"), nullptr);
  ASSERT_NE(find("SELECT 1"), nullptr);
  EXPECT_EQ(find("SELECT 1")->database, "appdb") << "the read query runs in details.database";
  ASSERT_NE(find("USE [warehouse]"), nullptr);
  for (std::string_view p :
       {"CREATE TABLE [probe_w].[connreg_probe_", "INSERT INTO [probe_w].[",
        "SELECT marker FROM [probe_w].[", "DROP TABLE IF EXISTS [probe_w].["}) {
    const FakeStatement* st = find(p);
    ASSERT_NE(st, nullptr) << p;
    EXPECT_EQ(st->database, "warehouse") << st->sql;
  }
  EXPECT_TRUE(fake.tables().empty()) << "the probe table is dropped";
}

TEST(ProbeSqlServer, RefusedCreateFailsWriteWithPermissionDeniedAndReadSucceeds) {
  TdsFake::Config config;
  config.refuse_create = true;
  TdsFake fake(config);
  boost::json::object d = Details(fake.port());
  d["writeAccess"] = {{"writeDatabase", "appdb"}, {"writeSchema", "dbo"}};
  TestResult r = Engine().RunTest(MakeConnection("sqlserver", d), {{"password", kPassword}});
  EXPECT_EQ(r.read, "SUCCESS") << Describe(r);
  EXPECT_EQ(r.write, "FAILED");
  const Step* w = FindStep(r, "write");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->code, "permission_denied") << w->message;
  EXPECT_NE(w->message.find("CREATE TABLE permission denied"), std::string::npos) << w->message;
  bool dropped = false;
  for (const FakeStatement& st : fake.statements()) {
    dropped = dropped || st.sql.rfind("DROP TABLE IF EXISTS [dbo].", 0) == 0;
  }
  EXPECT_TRUE(dropped) << "the DROP runs even after the CREATE failed";
}

TEST(ProbeSqlServer, ClosedPortIsConnectionRefused) {
  TestResult r = Engine().RunTest(MakeConnection("sqlserver", Details(ClosedPort())),
                                  {{"password", kPassword}});
  EXPECT_EQ(Steps(r),
            "resolve:SUCCESS connect:FAILED/connection_refused authenticate:SKIPPED "
            "query:SKIPPED");
}

TEST(ProbeSqlServer, SilentListenerTimesOutWithinTheDeadline) {
  TdsFake::Config config;
  config.mode = TdsFake::Mode::kSilent;
  TdsFake fake(config);
  auto start = Clock::now();
  TestResult r = Engine().RunTest(MakeConnection("sqlserver", Details(fake.port()), 2),
                                  {{"password", kPassword}});
  auto elapsed = Clock::now() - start;
  EXPECT_EQ(r.read, "FAILED");
  const Step* c = FindStep(r, "connect");
  ASSERT_NE(c, nullptr) << Describe(r);
  EXPECT_EQ(c->code, "timeout") << Describe(r);
  EXPECT_LT(elapsed, std::chrono::seconds(2) + test_support::kAnswerSlack);
  EXPECT_TRUE(DriversReturnWithin(std::chrono::seconds(1))) << "the driver ends its own calls";
}

TEST(ProbeSqlServer, SilentQueryTimesOutAndTheDriverReturns) {
  TdsFake::Config config;
  config.mode = TdsFake::Mode::kSilentAfterLogin;
  TdsFake fake(config);
  auto start = Clock::now();
  TestResult r = Engine().RunTest(MakeConnection("sqlserver", Details(fake.port()), 2),
                                  {{"password", kPassword}});
  auto elapsed = Clock::now() - start;
  EXPECT_EQ(Steps(r), "resolve:SUCCESS connect:SUCCESS authenticate:SUCCESS query:FAILED/timeout");
  EXPECT_LT(elapsed, std::chrono::seconds(2) + test_support::kAnswerSlack);
  EXPECT_TRUE(DriversReturnWithin(std::chrono::milliseconds(1500)))
      << "FreeTDS's wait is cancelled soon after the deadline";
}

TEST(ProbeSqlServer, ServerThatStallsTheLoginTimesOutAndTheDriverReturns) {
  TdsFake::Config config;
  config.mode = TdsFake::Mode::kSilentOnLogin;
  TdsFake fake(config);
  auto start = Clock::now();
  TestResult r = Engine().RunTest(MakeConnection("sqlserver", Details(fake.port()), 2),
                                  {{"password", kPassword}});
  auto elapsed = Clock::now() - start;
  EXPECT_EQ(Steps(r), "resolve:SUCCESS connect:SUCCESS authenticate:FAILED/timeout query:SKIPPED");
  EXPECT_LT(elapsed, std::chrono::seconds(2) + test_support::kAnswerSlack);
  EXPECT_TRUE(DriversReturnWithin(std::chrono::milliseconds(2500)))
      << "dbopen gives up soon after the deadline";
}

TEST(ProbeSqlServer, PortThatDoesNotSpeakTdsIsProtocolError) {
  TdsFake::Config config;
  config.mode = TdsFake::Mode::kNotTds;
  TdsFake fake(config);
  TestResult r = Engine().RunTest(MakeConnection("sqlserver", Details(fake.port())),
                                  {{"password", kPassword}});
  EXPECT_EQ(Steps(r),
            "resolve:SUCCESS connect:FAILED/protocol_error authenticate:SKIPPED "
            "query:SKIPPED");
}

// The known gap of issue 18: FreeTDS followed a redirection before the driver could check where
// it led, so the login (with the password) reached a denied address.
TEST(ProbeSqlServer, FreeTdsRedirectionToADeniedAddressIsNeverConnected) {
  TdsFake::Config target_config;
  target_config.address = "127.0.0.2";
  TdsFake target(target_config);
  TdsFake::Config config;
  config.redirect_host = "127.0.0.2";
  config.redirect_port = target.port();
  TdsFake fake(config);

  ProbeEngine::Options options = LoopbackOptions();
  options.egress = EgressPolicy({*ParseCidr("127.0.0.2/32")}, {}, /*allow_loopback=*/true);
  ProbeEngine engine(options, FindDriver);
  TestResult r =
      engine.RunTest(MakeConnection("sqlserver", Details(fake.port())), {{"password", kPassword}});
  EXPECT_EQ(Steps(r),
            "resolve:SUCCESS connect:SUCCESS authenticate:FAILED/egress_denied query:SKIPPED")
      << Describe(r);
  EXPECT_NE(FindStep(r, "authenticate")->message.find("127.0.0.2"), std::string::npos);
  EXPECT_EQ(target.prelogins(), 0) << "FreeTDS connected to the redirection's target";
  EXPECT_TRUE(target.logins().empty()) << "the password reached a denied address";
}

TEST(ProbeSqlServer, SqlServerRefusesEveryRedirection) {
  // Only Azure SQL redirects; a SQL Server login goes to the checked address alone, even when the
  // redirection's target is allowed.
  TdsFake target;
  TdsFake::Config config;
  config.redirect_host = "127.0.0.1";
  config.redirect_port = target.port();
  TdsFake fake(config);
  TestResult r = Engine().RunTest(MakeConnection("sqlserver", Details(fake.port())),
                                  {{"password", kPassword}});
  EXPECT_NE(Steps(r).find("authenticate:FAILED/egress_denied"), std::string::npos) << Describe(r);
  EXPECT_EQ(target.prelogins(), 0);
}

TEST(ProbeSqlServer, FreeTdsEnvironmentThatOverridesThePinningIsRefused) {
  TdsFake fake;
  for (const char* variable : {"TDSHOST", "TDSPORT", "TDSVER", "TDSDUMP"}) {
    ::setenv(variable, "1", 1);
    TestResult r = Engine().RunTest(MakeConnection("sqlserver", Details(fake.port())),
                                    {{"password", kPassword}});
    ::unsetenv(variable);
    const Step* connect = FindStep(r, "connect");
    ASSERT_NE(connect, nullptr) << Describe(r);
    EXPECT_EQ(connect->code, "driver_unavailable") << variable;
    EXPECT_NE(connect->message.find(variable), std::string::npos) << connect->message;
  }
  EXPECT_EQ(fake.prelogins(), 0) << "nothing was sent while FreeTDS could be misdirected";
  EXPECT_EQ(
      Engine()
          .RunTest(MakeConnection("sqlserver", Details(fake.port())), {{"password", kPassword}})
          .read,
      "SUCCESS");
}

TEST(ProbeSqlServer, TlsModeTurnsTlsOnAndVerifyFullIsRefusedBeforeAnyCredential) {
  TdsFake fake;  // answers ENCRYPT_NOT_SUP
  boost::json::object details = Details(fake.port());
  details["tlsMode"] = "verify-full";
  TestResult full =
      Engine().RunTest(MakeConnection("sqlserver", details), {{"password", kPassword}});
  EXPECT_EQ(Steps(full),
            "resolve:SUCCESS connect:SUCCESS tls:FAILED/tls_failure authenticate:SKIPPED "
            "query:SKIPPED");
  const Step* refused = FindStep(full, "tls");
  ASSERT_NE(refused, nullptr) << Describe(full);
  EXPECT_NE(refused->message.find("verify-ca"), std::string::npos) << refused->message;
  details["tlsMode"] = "verify-ca";
  TestResult ca = Engine().RunTest(MakeConnection("sqlserver", details), {{"password", kPassword}});
  EXPECT_EQ(Steps(ca),
            "resolve:SUCCESS connect:SUCCESS tls:FAILED/tls_failure authenticate:SKIPPED "
            "query:SKIPPED")
      << "a server without encryption fails a connection with a tlsMode";
  EXPECT_TRUE(fake.logins().empty()) << "no LOGIN7 (and so no password) was sent";
}

TEST(ProbeSqlServer, AzureSqlWithoutEncryptionIsTlsFailureBeforeAnyCredential) {
  TdsFake fake;  // answers ENCRYPT_NOT_SUP
  TestResult r =
      Engine().RunTest(MakeConnection("azuresql", Details(fake.port())), {{"password", kPassword}});
  EXPECT_EQ(Steps(r),
            "resolve:SUCCESS connect:SUCCESS tls:FAILED/tls_failure "
            "authenticate:SKIPPED query:SKIPPED");
  EXPECT_TRUE(fake.logins().empty()) << "no LOGIN7 (and so no password) was sent";
}

TEST(ProbeSqlServer, ConcurrentTestsKeepTheirOwnMessages) {
  // db-lib's message handlers are process-wide: each test must see only its own server's words.
  TdsFake fake;
  constexpr int kTests = 8;
  std::vector<TestResult> results(kTests);
  std::vector<std::thread> threads;
  auto password = [](int i) {
    return i % 2 == 0 ? std::string(kPassword) : "bad-" + std::to_string(i);
  };
  for (int i = 0; i < kTests; ++i) {
    threads.emplace_back([&, i] {
      std::string database = i % 4 == 2 ? "nosuchdb" : "appdb";
      results[i] = Engine().RunTest(MakeConnection("sqlserver", Details(fake.port(), database)),
                                    {{"password", password(i)}});
    });
  }
  for (std::thread& t : threads) t.join();
  for (const FakeLogin& l : fake.logins()) EXPECT_EQ(l.server_name, "127.0.0.1");
  for (int i = 0; i < kTests; ++i) {
    const TestResult& r = results[i];
    const std::string body = Describe(r);
    if (i % 4 == 0) {
      EXPECT_EQ(r.read, "SUCCESS") << i << " " << body;
      continue;
    }
    const Step* a = FindStep(r, "authenticate");
    ASSERT_NE(a, nullptr) << i << " " << body;
    EXPECT_EQ(a->code, i % 2 == 1 ? "auth_failed" : "not_found") << i << " " << body;
    for (int j = 0; j < kTests; ++j) {
      EXPECT_EQ(body.find(password(j)), std::string::npos)
          << "test " << i << " shows test " << j << "'s password: " << body;
    }
  }
}

// --- the catalog (contract section 13) ----------------------------------------------------------

// How a test runs Introspect.
struct ListingRequest {
  domain::CatalogPath prefix;
  int levels = -1;
  std::chrono::milliseconds deadline = std::chrono::seconds(10);
  int stop_after = -1;                     // the sink says stop after this many objects (-1: never)
  std::chrono::milliseconds first_add{0};  // how long the sink takes over its first object
};

// A sink that keeps what it is given, as ListingRequest says.
class CollectingSink : public CatalogSink {
 public:
  explicit CollectingSink(const ListingRequest& r) : request_(r) {}
  bool Add(domain::WarehouseObject object) override {
    if (objects.empty()) std::this_thread::sleep_for(request_.first_add);
    objects.push_back(std::move(object));
    return request_.stop_after < 0 || static_cast<int>(objects.size()) < request_.stop_after;
  }
  std::vector<domain::WarehouseObject> objects;

 private:
  const ListingRequest& request_;
};

// What one Introspect reported.
struct Listing {
  std::vector<Step> steps;
  std::vector<domain::WarehouseObject> objects;
  std::chrono::milliseconds took{0};

  // "connect:SUCCESS authenticate:SUCCESS query:SUCCESS".
  std::string StepText() const {
    TestResult r;
    r.steps = steps;
    return test_support::Steps(r);
  }
  const Step* FindStep(std::string_view name) const {
    for (const Step& s : steps) {
      if (s.name == name) return &s;
    }
    return nullptr;
  }
  // Each path joined with '.', in the order reported.
  std::vector<std::string> Paths() const {
    std::vector<std::string> out;
    for (const domain::WarehouseObject& o : objects) {
      std::string p;
      for (const std::string& name : o.path) p += (p.empty() ? "" : ".") + name;
      out.push_back(p);
    }
    return out;
  }
  const domain::WarehouseObject* Find(const domain::CatalogPath& path) const {
    for (const domain::WarehouseObject& o : objects) {
      if (o.path == path) return &o;
    }
    return nullptr;
  }
};

// Runs the driver's Introspect as the engine hands it a run: the details' endpoint, its checked
// address 127.0.0.1, loopback allowed, the password as the secret, a deadline `deadline` away.
Listing Introspect(boost::json::object details, const std::string& password,
                   const ListingRequest& asked = {}) {
  if (!details.contains("type")) details["type"] = "sqlserver";
  const Driver* driver = FindDriver(details.at("type").as_string());
  std::map<std::string, std::string> secrets{{"password", password}};
  Scrubber scrubber(secrets);
  StepLog log(scrubber);
  const EgressPolicy egress = LoopbackOptions().egress;
  const DriverSettings settings;
  std::string why;
  std::optional<Endpoint> endpoint = driver->Target(details, settings, why);
  EXPECT_TRUE(endpoint) << why;
  ProbeRun probe{details,
                 secrets,
                 /*write_access=*/false,
                 *endpoint,
                 {*IpAddress::Parse("127.0.0.1")},
                 Deadline::In(asked.deadline),
                 log,
                 egress,
                 settings};
  CatalogRequest request{asked.prefix, asked.levels};
  CollectingSink sink(asked);
  CatalogRun run{probe, request, sink};
  auto start = Clock::now();
  driver->Introspect(run);
  Listing out;
  out.took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  out.steps = log.Close(code::kTimeout, "the deadline passed");
  out.objects = std::move(sink.objects);
  return out;
}

// The catalog queries the fake answered, each as "database-it-named: sql".
std::vector<std::string> CatalogQueries(const TdsFake& fake) {
  std::vector<std::string> out;
  for (const FakeStatement& s : fake.statements()) {
    if (s.sql.find("INFORMATION_SCHEMA.SCHEMATA") != std::string::npos) out.push_back(s.sql);
  }
  return out;
}

bool AnyQueryNames(const TdsFake& fake, std::string_view text) {
  for (const FakeStatement& s : fake.statements()) {
    if (s.sql.find(text) != std::string::npos) return true;
  }
  return false;
}

// The seeded catalog as the driver must list it for a login that names no database: every
// database the login may access but the system's, their schemas but the system's (an empty one
// included), tables and views, in byte order ("Lab]2" < "appdb", "Order_totals" < "orders").
const std::vector<std::string> kFullListing = {
    "Lab]2",
    "Lab]2.dbo",
    "Lab]2.dbo.it's",
    "appdb",
    "appdb.dbo",
    "appdb.dbo.customers",
    "appdb.empty_schema",
    "appdb.sales",
    "appdb.sales.Order_totals",
    "appdb.sales.orders",
    "warehouse",
    "warehouse.dbo",
    "warehouse.dbo.facts",
    "warehouse.stage",
};

// Against the TDS protocol fake (real SQL Server cannot run here).
TEST(ProbeSqlServerCatalog, ListsDatabasesSchemasTablesViewsAndColumnsAgainstTheFake) {
  TdsFake fake;
  Listing l = Introspect(Details(fake.port(), ""), kPassword);
  EXPECT_EQ(l.StepText(), "connect:SUCCESS authenticate:SUCCESS query:SUCCESS");
  EXPECT_EQ(l.Paths(), kFullListing);
  for (std::size_t i = 1; i < l.objects.size(); ++i) {
    EXPECT_LT(domain::PathKey(l.objects[i - 1].path), domain::PathKey(l.objects[i].path))
        << "listed in the contract's order";
  }
  for (const domain::WarehouseObject& o : l.objects) {
    EXPECT_EQ(o.kind, o.path.size() == 3 ? "table" : "scope") << o.path.back();
    if (o.kind == "scope") {
      EXPECT_TRUE(o.columns.empty());
    }
  }

  const domain::WarehouseObject* orders = l.Find({"appdb", "sales", "orders"});
  ASSERT_NE(orders, nullptr);
  EXPECT_EQ(orders->comment, "Customer orders");
  using C = domain::WarehouseColumn;
  std::vector<C> expected = {
      {"id", "int", false, ""},
      {"customer", "nvarchar(50)", true, "Who ordered"},
      {"amount", "decimal(10,2)", false, ""},
      {"placed_at", "datetime2", false, ""},
      {"placed_local", "datetimeoffset", true, ""},
      {"settled_at", "datetime2(3)", true, ""},
      {"ref", "uniqueidentifier", false, ""},
      {"paid", "bit", false, ""},
      {"note", "nvarchar(max)", true, kLongComment},
      {"receipt", "varbinary(max)", true, ""},
      {"ship_to", "geography", true, ""},
      {"fee", "money", true, ""},
  };
  EXPECT_EQ(orders->columns, expected) << "ordinal order, printed types, nullability, comments";

  const domain::WarehouseObject* view = l.Find({"appdb", "sales", "Order_totals"});
  ASSERT_NE(view, nullptr);
  EXPECT_EQ(view->kind, "table") << "a view is a table";
  EXPECT_EQ(view->columns, (std::vector<C>{{"customer", "nvarchar(50)", true, ""},
                                           {"total", "decimal(38,2)", true, ""}}));
  const domain::WarehouseObject* customers = l.Find({"appdb", "dbo", "customers"});
  ASSERT_NE(customers, nullptr);
  EXPECT_EQ(customers->columns, (std::vector<C>{{"id", "int", false, ""},
                                                {"Straße", "nvarchar(100)", false, "Wohnort"}}))
      << "names and comments as the server spells them, in UTF-8";
  const domain::WarehouseObject* facts = l.Find({"warehouse", "dbo", "facts"});
  ASSERT_NE(facts, nullptr);
  EXPECT_EQ(facts->columns,
            (std::vector<C>{{"id", "bigint", false, ""}, {"payload", "xml", true, ""}}));
  EXPECT_EQ(CatalogQueries(fake).size(), 3u) << "one catalog query per database";
}

// Against the TDS protocol fake: the fake's sys.databases has master, tempdb, model, msdb, a
// database named "system", and one the login may not access; each database has sys,
// INFORMATION_SCHEMA, guest and fixed-role schemas.
TEST(ProbeSqlServerCatalog, SystemDatabasesAndSchemasAreLeftOutAgainstTheFake) {
  TdsFake fake;
  Listing l = Introspect(Details(fake.port(), ""), kPassword);
  ASSERT_EQ(l.StepText(), "connect:SUCCESS authenticate:SUCCESS query:SUCCESS");
  for (const domain::WarehouseObject& o : l.objects) {
    for (std::string_view system : {"master", "tempdb", "model", "msdb", "system", "noaccess"}) {
      EXPECT_NE(o.path[0], system);
    }
    if (o.path.size() < 2) continue;
    for (std::string_view system :
         {"sys", "INFORMATION_SCHEMA", "guest", "db_owner", "db_datareader"}) {
      EXPECT_NE(o.path[1], system) << o.path[0];
    }
  }
  for (std::string_view db : {"[master]", "[tempdb]", "[model]", "[msdb]", "[noaccess]"}) {
    EXPECT_FALSE(AnyQueryNames(fake, db)) << "a catalog query went to " << db;
  }
  EXPECT_TRUE(AnyQueryNames(fake, "HAS_DBACCESS(name) = 1"));
}

// Against the TDS protocol fake.
TEST(ProbeSqlServerCatalog, TheConnectionsDatabaseIsTheOnlyOneListedAgainstTheFake) {
  TdsFake fake;
  Listing l = Introspect(Details(fake.port(), "warehouse"), kPassword);
  EXPECT_EQ(l.StepText(), "connect:SUCCESS authenticate:SUCCESS query:SUCCESS");
  EXPECT_EQ(l.Paths(), (std::vector<std::string>{"warehouse", "warehouse.dbo",
                                                 "warehouse.dbo.facts", "warehouse.stage"}));
  EXPECT_FALSE(AnyQueryNames(fake, "sys.databases"));
  // A prefix naming another database finds nothing (and asks nothing more).
  Listing other = Introspect(Details(fake.port(), "warehouse"), kPassword, {.prefix = {"appdb"}});
  EXPECT_EQ(other.StepText(), "connect:SUCCESS authenticate:SUCCESS query:SUCCESS");
  EXPECT_TRUE(other.objects.empty());
  EXPECT_FALSE(AnyQueryNames(fake, "[appdb]"));
}

// Against the TDS protocol fake.
TEST(ProbeSqlServerCatalog, PrefixAndLevelsNarrowTheListingAgainstTheFake) {
  TdsFake fake;
  Listing schema = Introspect(Details(fake.port(), ""), kPassword, {.prefix = {"appdb", "sales"}});
  EXPECT_EQ(schema.StepText(), "connect:SUCCESS authenticate:SUCCESS query:SUCCESS");
  EXPECT_EQ(schema.Paths(), (std::vector<std::string>{"appdb.sales", "appdb.sales.Order_totals",
                                                      "appdb.sales.orders"}));
  std::vector<std::string> queries = CatalogQueries(fake);
  ASSERT_EQ(queries.size(), 1u) << "only appdb's catalog is read";
  EXPECT_NE(queries[0].find("s.SCHEMA_NAME = N'sales'"), std::string::npos) << queries[0];
  EXPECT_TRUE(AnyQueryNames(fake, "AND name = N'appdb'"));

  // One level below a database: its scope and schemas, without reading tables or columns.
  Listing one = Introspect(Details(fake.port(), ""), kPassword, {.prefix = {"appdb"}, .levels = 1});
  EXPECT_EQ(one.Paths(),
            (std::vector<std::string>{"appdb", "appdb.dbo", "appdb.empty_schema", "appdb.sales"}));
  queries = CatalogQueries(fake);
  ASSERT_EQ(queries.size(), 2u);
  EXPECT_EQ(queries[1].find("INFORMATION_SCHEMA.COLUMNS"), std::string::npos) << queries[1];

  // The databases alone.
  Listing top = Introspect(Details(fake.port(), ""), kPassword, {.levels = 1});
  EXPECT_EQ(top.Paths(), (std::vector<std::string>{"Lab]2", "appdb", "warehouse"}));
  EXPECT_EQ(CatalogQueries(fake).size(), 2u) << "no catalog query for the databases alone";

  // A schema that is not there, and a path deeper than a table: nothing, successfully.
  EXPECT_TRUE(Introspect(Details(fake.port(), ""), kPassword, {.prefix = {"appdb", "nosuch"}})
                  .objects.empty());
  Listing deep = Introspect(Details(fake.port(), ""), kPassword,
                            {.prefix = {"appdb", "sales", "orders", "x"}});
  EXPECT_EQ(deep.StepText(), "connect:SUCCESS authenticate:SUCCESS query:SUCCESS");
  EXPECT_TRUE(deep.objects.empty());
}

// Against the TDS protocol fake.
TEST(ProbeSqlServerCatalog, LevelsZeroOnATablePathIsThatTableWithItsColumnsAgainstTheFake) {
  TdsFake fake;
  Listing l = Introspect(Details(fake.port(), ""), kPassword,
                         {.prefix = {"appdb", "sales", "orders"}, .levels = 0});
  EXPECT_EQ(l.StepText(), "connect:SUCCESS authenticate:SUCCESS query:SUCCESS");
  ASSERT_EQ(l.Paths(), (std::vector<std::string>{"appdb.sales.orders"}));
  EXPECT_EQ(l.objects[0].columns.size(), 12u);
  std::vector<std::string> queries = CatalogQueries(fake);
  ASSERT_EQ(queries.size(), 1u);
  EXPECT_NE(queries[0].find("t.TABLE_NAME = N'orders'"), std::string::npos) << queries[0];

  // Names with a quote and a bracket are quoted, not spliced: [Lab]]2] and N'it''s'.
  Listing quoted = Introspect(Details(fake.port(), ""), kPassword,
                              {.prefix = {"Lab]2", "dbo", "it's"}, .levels = 0});
  EXPECT_EQ(quoted.StepText(), "connect:SUCCESS authenticate:SUCCESS query:SUCCESS");
  ASSERT_EQ(quoted.Paths(), (std::vector<std::string>{"Lab]2.dbo.it's"}));
  EXPECT_EQ(quoted.objects[0].columns,
            (std::vector<domain::WarehouseColumn>{{"code", "char(3)", false, ""}}));
  EXPECT_TRUE(AnyQueryNames(fake, "FROM [Lab]]2].INFORMATION_SCHEMA.SCHEMATA"));
  EXPECT_TRUE(AnyQueryNames(fake, "t.TABLE_NAME = N'it''s'"));
  EXPECT_TRUE(AnyQueryNames(fake, "AND name = N'Lab]2'"));
}

// Against the TDS protocol fake: its catalog query for "warehouse" answers error 916.
TEST(ProbeSqlServerCatalog, AnErrorAnswerFailsTheQueryStepWithItsCodeAgainstTheFake) {
  TdsFake::Config config;
  config.deny_catalog = "warehouse";
  TdsFake fake(config);
  Listing l = Introspect(Details(fake.port(), ""), kPassword);
  EXPECT_EQ(l.StepText(), "connect:SUCCESS authenticate:SUCCESS query:FAILED/permission_denied");
  const Step* q = l.FindStep("query");
  ASSERT_NE(q, nullptr);
  EXPECT_NE(q->message.find("database warehouse"), std::string::npos) << q->message;
  EXPECT_NE(q->message.find("not able to access the database"), std::string::npos) << q->message;
  EXPECT_NE(l.Find({"appdb", "sales", "orders"}), nullptr) << "what came before was reported";
  EXPECT_EQ(l.Find({"warehouse", "dbo"}), nullptr);
}

// Against the TDS protocol fake.
TEST(ProbeSqlServerCatalog, WrongPasswordIsAuthFailedAndListsNothingAgainstTheFake) {
  TdsFake fake;
  const std::string wrong = "Wr0ng-pw-" + std::string(kPassword).substr(0, 4);
  Listing l = Introspect(Details(fake.port(), ""), wrong);
  EXPECT_EQ(l.StepText(), "connect:SUCCESS authenticate:FAILED/auth_failed");
  EXPECT_TRUE(l.objects.empty());
  EXPECT_TRUE(fake.statements().empty());
  for (const Step& s : l.steps) EXPECT_EQ(s.message.find(wrong), std::string::npos) << s.message;
}

// Against the TDS protocol fake.
TEST(ProbeSqlServerCatalog, ASinkThatSaysStopEndsTheListingAgainstTheFake) {
  TdsFake fake;
  Listing l = Introspect(Details(fake.port(), ""), kPassword, {.stop_after = 5});
  EXPECT_EQ(l.StepText(), "connect:SUCCESS authenticate:SUCCESS query:SUCCESS");
  EXPECT_EQ(l.Paths(), (std::vector<std::string>(kFullListing.begin(), kFullListing.begin() + 5)))
      << "nothing after the sink said stop";
  EXPECT_FALSE(AnyQueryNames(fake, "[warehouse]")) << "no database is read after the stop";
  // The cancelled batch ended cleanly: the fake is not left waiting, and serves the next listing.
  EXPECT_EQ(Introspect(Details(fake.port(), ""), kPassword).Paths(), kFullListing);
}

// Against the TDS protocol fake: each catalog query takes 1.5 s to answer, the deadline is 2 s.
TEST(ProbeSqlServerCatalog, TheDeadlineEndsTheListingWithTimeoutAgainstTheFake) {
  TdsFake::Config config;
  config.catalog_delay = std::chrono::milliseconds(1500);
  TdsFake fake(config);
  Listing l =
      Introspect(Details(fake.port(), ""), kPassword, {.deadline = std::chrono::seconds(2)});
  EXPECT_EQ(l.StepText(), "connect:SUCCESS authenticate:SUCCESS query:FAILED/timeout");
  EXPECT_LT(l.took, std::chrono::seconds(2) + test_support::kAnswerSlack);
  EXPECT_NE(l.Find({"Lab]2", "dbo", "it's"}), nullptr)
      << "the first database's rows were handed on as they arrived";
  EXPECT_EQ(l.Find({"warehouse"}), nullptr);
}

// Against the TDS protocol fake: the deadline passes while the rows are being handed on (the sink
// is slow), not while the driver waits for the server.
TEST(ProbeSqlServerCatalog, TheDeadlineStopsRowsThatAlreadyArrivedAgainstTheFake) {
  TdsFake fake;
  Listing l = Introspect(
      Details(fake.port(), ""), kPassword,
      {.deadline = std::chrono::milliseconds(1500), .first_add = std::chrono::milliseconds(1600)});
  EXPECT_EQ(l.StepText(), "connect:SUCCESS authenticate:SUCCESS query:FAILED/timeout");
  EXPECT_EQ(l.Paths(), (std::vector<std::string>{"Lab]2"})) << "nothing handed on after it";
}

// Against the TDS protocol fake: Introspect takes Run's connection setup, so an Azure SQL server
// without encryption fails at tls before any credential is sent.
TEST(ProbeSqlServerCatalog, AzureSqlWithoutEncryptionFailsTlsBeforeAnyCredentialAgainstTheFake) {
  TdsFake fake;
  boost::json::object d = Details(fake.port());
  d["type"] = "azuresql";
  Listing l = Introspect(d, kPassword);
  EXPECT_EQ(l.StepText(), "connect:SUCCESS tls:FAILED/tls_failure");
  EXPECT_TRUE(fake.logins().empty());
  EXPECT_TRUE(l.objects.empty());
}

// Against the TDS protocol fake: the types as the driver prints them fall in the contract's
// families (domain::TypeFamily).
TEST(ProbeSqlServerCatalog, PrintedTypesMapToTheContractsFamiliesAgainstTheFake) {
  TdsFake fake;
  Listing l = Introspect(Details(fake.port(), ""), kPassword,
                         {.prefix = {"appdb", "sales", "orders"}, .levels = 0});
  ASSERT_EQ(l.objects.size(), 1u) << l.StepText();
  std::map<std::string, std::string> families;
  for (const domain::WarehouseColumn& c : l.objects[0].columns) {
    families[c.warehouse_type] = std::string(domain::TypeFamily(c.warehouse_type));
  }
  const std::map<std::string, std::string> expected = {
      {"int", "number"},
      {"nvarchar(50)", "text"},
      {"decimal(10,2)", "number"},
      {"datetime2", "datetime"},
      {"datetimeoffset", "datetime"},
      {"datetime2(3)", "datetime"},
      {"uniqueidentifier", "text"},
      {"bit", "logical"},
      {"nvarchar(max)", "text"},
      {"varbinary(max)", "binary"},
      {"geography", "geography"},
      {"money", "number"},
  };
  EXPECT_EQ(families, expected);
}

}  // namespace
}  // namespace connreg::probe
