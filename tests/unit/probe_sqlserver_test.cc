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
#include <chrono>
#include <cstring>
#include <list>
#include <map>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <boost/json/serialize.hpp>

#include "probe/engine.h"
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

// ASCII (the tests use nothing else) as UTF-16LE, and back.
std::string Utf16(std::string_view ascii) {
  std::string out;
  for (char c : ascii) {
    out += c;
    out += '\0';
  }
  return out;
}
std::string FromUtf16(const std::string& s, std::size_t at, std::size_t chars) {
  std::string out;
  for (std::size_t i = 0; i < chars && at + 2 * i + 1 < s.size(); ++i) out += s[at + 2 * i];
  return out;
}
std::string BVarchar(std::string_view s) {
  std::string out;
  PutU8(out, static_cast<unsigned>(s.size()));
  return out + Utf16(s);
}
std::string UsVarchar(std::string_view s) {
  std::string out;
  PutU16(out, static_cast<unsigned>(s.size()));
  return out + Utf16(s);
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
    std::smatch m;
    std::lock_guard lock(mu_);
    if (sql == "SELECT 1") {
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

  Config config_;
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

}  // namespace
}  // namespace connreg::probe
