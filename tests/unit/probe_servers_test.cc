// The postgres and mysql drivers against real servers started by scripts/test-databases.sh.
// The servers' ports and passwords come from CONNREG_TEST_* variables, or from the KEY=VALUE
// file named by CONNREG_TEST_DB_ENV (what the CTest fixture sets). Without them these tests
// fail: they are part of the suite, not optional.
#include <libpq-fe.h>
#include <mysql.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include <boost/json/serialize.hpp>

#include "probe/engine.h"
#include "probe_test_support.h"

namespace connreg::probe {
namespace {

using test_support::Describe;
using test_support::Engine;
using test_support::Env;
using test_support::FindStep;
using test_support::MakeConnection;

constexpr const char* kWriteSchema = "probe_w";
using test_support::kDatabase;
using test_support::kReader;
using test_support::kWriter;

// Every step named in `expected` has that status (and code, after a '/').
void ExpectSteps(const TestResult& r, const std::vector<std::string>& expected) {
  std::vector<std::string> got;
  for (const Step& s : r.steps)
    got.push_back(s.name + ":" + s.status + (s.code.empty() ? "" : "/" + s.code));
  EXPECT_EQ(got, expected) << Describe(r);
}

// Counts tables named connreg_probe_% left behind, through the server's own client library.
int PostgresLeftovers(const std::string& port, const std::string& password) {
  const char* keys[] = {"host", "port", "dbname", "user", "password", nullptr};
  const char* values[] = {"127.0.0.1", port.c_str(), kDatabase, kWriter, password.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, 0);
  int n = -1;
  if (PQstatus(conn) == CONNECTION_OK) {
    PGresult* r =
        PQexec(conn, "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'connreg_probe_%'");
    if (PQresultStatus(r) == PGRES_TUPLES_OK) n = std::atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
  }
  PQfinish(conn);
  return n;
}

int MysqlLeftovers(const std::string& port, const std::string& password) {
  MYSQL* m = mysql_init(nullptr);
  int n = -1;
  if (mysql_real_connect(m, "127.0.0.1", kWriter, password.c_str(), nullptr, std::stoi(port),
                         nullptr, 0) &&
      mysql_query(m,
                  "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE "
                  "'connreg\\_probe\\_%'") == 0) {
    MYSQL_RES* res = mysql_store_result(m);
    MYSQL_ROW row = res ? mysql_fetch_row(res) : nullptr;
    if (row) n = std::atoi(row[0]);
    if (res) mysql_free_result(res);
  }
  mysql_close(m);
  return n;
}

// --- PostgreSQL -------------------------------------------------------------------------------

TEST(ProbeServerPostgres, ReadAndWriteSucceed) {
  REQUIRE_ENV(port, "CONNREG_TEST_PG_PORT");
  REQUIRE_ENV(pw, "CONNREG_TEST_PG_WRITER_PASSWORD");
  TestResult r = Engine().RunTest(
      MakeConnection("postgres", {{"host", "127.0.0.1"},
                                  {"port", std::stoi(port)},
                                  {"database", kDatabase},
                                  {"user", kWriter},
                                  {"writeAccess", {{"writeSchema", kWriteSchema}}}}),
      {{"password", pw}});
  EXPECT_EQ(r.read, "SUCCESS") << Describe(r);
  EXPECT_EQ(r.write, "SUCCESS") << Describe(r);
  EXPECT_TRUE(r.query_reached);
  ExpectSteps(r, {"resolve:SUCCESS", "connect:SUCCESS", "authenticate:SUCCESS", "query:SUCCESS",
                  "write:SUCCESS"});
  EXPECT_EQ(PostgresLeftovers(port, pw), 0) << "the probe table is dropped";
}

TEST(ProbeServerPostgres, HostNameIsResolvedAndReadOnlyTestHasWriteDisabled) {
  REQUIRE_ENV(port, "CONNREG_TEST_PG_PORT");
  REQUIRE_ENV(pw, "CONNREG_TEST_PG_READER_PASSWORD");
  TestResult r = Engine().RunTest(MakeConnection("postgres", {{"host", "localhost"},
                                                              {"port", std::stoi(port)},
                                                              {"database", kDatabase},
                                                              {"user", kReader}}),
                                  {{"password", pw}});
  EXPECT_EQ(r.read, "SUCCESS") << Describe(r);
  EXPECT_EQ(r.write, "DISABLED");
}

TEST(ProbeServerPostgres, ReaderWithoutCreateFailsWriteWithPermissionDenied) {
  REQUIRE_ENV(port, "CONNREG_TEST_PG_PORT");
  REQUIRE_ENV(pw, "CONNREG_TEST_PG_READER_PASSWORD");
  REQUIRE_ENV(writer_pw, "CONNREG_TEST_PG_WRITER_PASSWORD");
  TestResult r = Engine().RunTest(
      MakeConnection("postgres", {{"host", "127.0.0.1"},
                                  {"port", std::stoi(port)},
                                  {"database", kDatabase},
                                  {"user", kReader},
                                  {"writeAccess", {{"writeSchema", kWriteSchema}}}}),
      {{"password", pw}});
  EXPECT_EQ(r.read, "SUCCESS") << Describe(r);
  EXPECT_EQ(r.write, "FAILED");
  const Step* w = FindStep(r, "write");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->code, "permission_denied") << w->message;  // SQLSTATE 42501
  EXPECT_EQ(PostgresLeftovers(port, writer_pw), 0);
}

TEST(ProbeServerPostgres, UnknownWriteSchemaIsNotFound) {
  REQUIRE_ENV(port, "CONNREG_TEST_PG_PORT");
  REQUIRE_ENV(pw, "CONNREG_TEST_PG_WRITER_PASSWORD");
  TestResult r = Engine().RunTest(
      MakeConnection("postgres", {{"host", "127.0.0.1"},
                                  {"port", std::stoi(port)},
                                  {"database", kDatabase},
                                  {"user", kWriter},
                                  {"writeAccess", {{"writeSchema", "no_such_schema"}}}}),
      {{"password", pw}});
  EXPECT_EQ(r.read, "SUCCESS");
  EXPECT_EQ(FindStep(r, "write")->code, "not_found") << Describe(r);  // SQLSTATE 3F000
}

TEST(ProbeServerPostgres, WrongPasswordIsAuthFailedAndNeverEchoed) {
  REQUIRE_ENV(port, "CONNREG_TEST_PG_PORT");
  REQUIRE_ENV(real_pw, "CONNREG_TEST_PG_WRITER_PASSWORD");
  const std::string wrong = "Wr0ng-" + real_pw.substr(0, 6) + "-pw";
  TestResult r = Engine().RunTest(MakeConnection("postgres", {{"host", "127.0.0.1"},
                                                              {"port", std::stoi(port)},
                                                              {"database", kDatabase},
                                                              {"user", kWriter}}),
                                  {{"password", wrong}});
  ExpectSteps(r, {"resolve:SUCCESS", "connect:SUCCESS", "authenticate:FAILED/auth_failed",
                  "query:SKIPPED"});  // SQLSTATE 28P01
  EXPECT_FALSE(r.query_reached);
  std::string body = Describe(r);
  EXPECT_EQ(body.find(wrong), std::string::npos) << body;
  EXPECT_EQ(body.find(real_pw), std::string::npos) << body;
}

TEST(ProbeServerPostgres, UnknownRoleIsAuthFailed) {
  REQUIRE_ENV(port, "CONNREG_TEST_PG_PORT");
  TestResult r = Engine().RunTest(MakeConnection("postgres", {{"host", "127.0.0.1"},
                                                              {"port", std::stoi(port)},
                                                              {"database", kDatabase},
                                                              {"user", "no_such_role"}}),
                                  {{"password", "x-password-x"}});
  EXPECT_EQ(FindStep(r, "authenticate")->code, "auth_failed") << Describe(r);
}

TEST(ProbeServerPostgres, UnknownDatabaseIsNotFound) {
  REQUIRE_ENV(port, "CONNREG_TEST_PG_PORT");
  REQUIRE_ENV(pw, "CONNREG_TEST_PG_WRITER_PASSWORD");
  TestResult r = Engine().RunTest(MakeConnection("postgres", {{"host", "127.0.0.1"},
                                                              {"port", std::stoi(port)},
                                                              {"database", "no_such_db"},
                                                              {"user", kWriter}}),
                                  {{"password", pw}});
  ExpectSteps(r, {"resolve:SUCCESS", "connect:SUCCESS", "authenticate:FAILED/not_found",
                  "query:SKIPPED"});  // SQLSTATE 3D000
}

TEST(ProbeServerPostgres, TlsRequiredButNotOfferedIsTlsFailure) {
  REQUIRE_ENV(port, "CONNREG_TEST_PG_PORT");
  REQUIRE_ENV(pw, "CONNREG_TEST_PG_WRITER_PASSWORD");
  TestResult r = Engine().RunTest(MakeConnection("postgres", {{"host", "127.0.0.1"},
                                                              {"port", std::stoi(port)},
                                                              {"database", kDatabase},
                                                              {"user", kWriter},
                                                              {"useTls", true}}),
                                  {{"password", pw}});
  ExpectSteps(r, {"resolve:SUCCESS", "connect:SUCCESS", "tls:FAILED/tls_failure",
                  "authenticate:SKIPPED", "query:SKIPPED"});
}

// --- MariaDB ----------------------------------------------------------------------------------

TEST(ProbeServerMysql, ReadAndWriteSucceed) {
  REQUIRE_ENV(port, "CONNREG_TEST_MYSQL_PORT");
  REQUIRE_ENV(pw, "CONNREG_TEST_MYSQL_WRITER_PASSWORD");
  TestResult r =
      Engine().RunTest(MakeConnection("mysql", {{"host", "127.0.0.1"},
                                                {"port", std::stoi(port)},
                                                {"database", kDatabase},
                                                {"user", kWriter},
                                                {"writeAccess", {{"writeSchema", kWriteSchema}}}}),
                       {{"password", pw}});
  EXPECT_EQ(r.read, "SUCCESS") << Describe(r);
  EXPECT_EQ(r.write, "SUCCESS") << Describe(r);
  EXPECT_TRUE(r.query_reached);
  ExpectSteps(r, {"resolve:SUCCESS", "connect:SUCCESS", "authenticate:SUCCESS", "query:SUCCESS",
                  "write:SUCCESS"});
  EXPECT_EQ(MysqlLeftovers(port, pw), 0) << "the probe table is dropped";
}

TEST(ProbeServerMysql, ReaderWithoutCreateFailsWriteWithPermissionDenied) {
  REQUIRE_ENV(port, "CONNREG_TEST_MYSQL_PORT");
  REQUIRE_ENV(pw, "CONNREG_TEST_MYSQL_READER_PASSWORD");
  REQUIRE_ENV(writer_pw, "CONNREG_TEST_MYSQL_WRITER_PASSWORD");
  TestResult r =
      Engine().RunTest(MakeConnection("mysql", {{"host", "127.0.0.1"},
                                                {"port", std::stoi(port)},
                                                {"user", kReader},
                                                {"writeAccess", {{"writeSchema", kWriteSchema}}}}),
                       {{"password", pw}});
  EXPECT_EQ(r.read, "SUCCESS") << Describe(r);
  EXPECT_EQ(r.write, "FAILED");
  EXPECT_EQ(FindStep(r, "write")->code, "permission_denied") << Describe(r);  // 1142
  EXPECT_EQ(MysqlLeftovers(port, writer_pw), 0);
}

TEST(ProbeServerMysql, UnknownWriteSchemaIsNotFound) {
  REQUIRE_ENV(port, "CONNREG_TEST_MYSQL_PORT");
  REQUIRE_ENV(pw, "CONNREG_TEST_MYSQL_READER_PASSWORD");
  // The reader has global SELECT, so the server says "unknown database" (1049), not "denied".
  TestResult r = Engine().RunTest(
      MakeConnection("mysql", {{"host", "127.0.0.1"},
                               {"port", std::stoi(port)},
                               {"user", kReader},
                               {"writeAccess", {{"writeSchema", "no_such_schema"}}}}),
      {{"password", pw}});
  EXPECT_EQ(r.read, "SUCCESS") << Describe(r);
  const Step* w = FindStep(r, "write");
  ASSERT_NE(w, nullptr);
  EXPECT_TRUE(w->code == "not_found" || w->code == "permission_denied") << Describe(r);
}

TEST(ProbeServerMysql, WrongPasswordIsAuthFailedAndNeverEchoed) {
  REQUIRE_ENV(port, "CONNREG_TEST_MYSQL_PORT");
  REQUIRE_ENV(real_pw, "CONNREG_TEST_MYSQL_WRITER_PASSWORD");
  const std::string wrong = "Wr0ng-" + real_pw.substr(0, 6) + "-pw";
  TestResult r = Engine().RunTest(
      MakeConnection("mysql",
                     {{"host", "127.0.0.1"}, {"port", std::stoi(port)}, {"user", kWriter}}),
      {{"password", wrong}});
  ExpectSteps(r, {"resolve:SUCCESS", "connect:SUCCESS", "authenticate:FAILED/auth_failed",
                  "query:SKIPPED"});  // 1045
  std::string body = Describe(r);
  EXPECT_EQ(body.find(wrong), std::string::npos) << body;
  EXPECT_EQ(body.find(real_pw), std::string::npos) << body;
}

TEST(ProbeServerMysql, UnknownDatabaseIsNotFound) {
  REQUIRE_ENV(port, "CONNREG_TEST_MYSQL_PORT");
  REQUIRE_ENV(pw, "CONNREG_TEST_MYSQL_READER_PASSWORD");
  TestResult r = Engine().RunTest(MakeConnection("mysql", {{"host", "127.0.0.1"},
                                                           {"port", std::stoi(port)},
                                                           {"database", "no_such_db"},
                                                           {"user", kReader}}),
                                  {{"password", pw}});
  ExpectSteps(r, {"resolve:SUCCESS", "connect:SUCCESS", "authenticate:FAILED/not_found",
                  "query:SKIPPED"});  // 1049
}

TEST(ProbeServerMysql, DatabaseWithoutAccessIsPermissionDenied) {
  REQUIRE_ENV(port, "CONNREG_TEST_MYSQL_PORT");
  REQUIRE_ENV(pw, "CONNREG_TEST_MYSQL_WRITER_PASSWORD");
  // The writer holds privileges on two databases only: any other one is "access denied" (1044).
  TestResult r = Engine().RunTest(MakeConnection("mysql", {{"host", "127.0.0.1"},
                                                           {"port", std::stoi(port)},
                                                           {"database", "mysql"},
                                                           {"user", kWriter}}),
                                  {{"password", pw}});
  ExpectSteps(r, {"resolve:SUCCESS", "connect:SUCCESS", "authenticate:FAILED/permission_denied",
                  "query:SKIPPED"});
}

TEST(ProbeServerMysql, TlsRequiredButNotOfferedIsTlsFailure) {
  REQUIRE_ENV(port, "CONNREG_TEST_MYSQL_PORT");
  REQUIRE_ENV(pw, "CONNREG_TEST_MYSQL_WRITER_PASSWORD");
  TestResult r = Engine().RunTest(
      MakeConnection(
          "mysql",
          {{"host", "127.0.0.1"}, {"port", std::stoi(port)}, {"user", kWriter}, {"useTls", true}}),
      {{"password", pw}});
  ExpectSteps(r, {"resolve:SUCCESS", "connect:SUCCESS", "tls:FAILED/tls_failure",
                  "authenticate:SKIPPED", "query:SKIPPED"});
  EXPECT_NE(FindStep(r, "tls")->message.find("no credentials were sent"), std::string::npos)
      << Describe(r);
}

// A protocol fake of a MySQL server that greets without CLIENT_SSL (as a TLS-stripping
// man-in-the-middle would) and counts the connections it gets and the bytes sent to it.
TEST(ProbeMysqlGreeting, NoTlsInTheGreetingFailsBeforeAnyCredentialIsSent) {
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 8), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::atomic<int> connections{0};
  std::atomic<long> bytes_received{0};
  std::thread server([&] {
    for (;;) {
      pollfd p{listener, POLLIN, 0};
      if (::poll(&p, 1, 3000) <= 0) return;  // no (further) connection
      int fd = ::accept(listener, nullptr, nullptr);
      if (fd < 0) return;
      ++connections;
      std::string payload = std::string(1, '\x0a') + "5.5.5-10.11.6-MariaDB-fake" + '\0' +
                            std::string("\x01\x00\x00\x00", 4) + "abcdefgh" + '\0' +
                            std::string("\xfe\xf7", 2) +  // capabilities: all but CLIENT_SSL
                            std::string("\x21\x02\x00\xff\x81\x15", 6) + std::string(10, '\0') +
                            "ijklmnopqrst" + '\0' + "mysql_native_password" + '\0';
      std::string packet = {static_cast<char>(payload.size()), 0, 0, 0};
      packet += payload;
      (void)!::send(fd, packet.data(), packet.size(), MSG_NOSIGNAL);
      char buf[512];
      for (pollfd c{fd, POLLIN, 0}; ::poll(&c, 1, 1000) > 0;) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        bytes_received += n;
      }
      ::close(fd);
    }
  });
  TestResult r = Engine().RunTest(
      MakeConnection(
          "mysql",
          {{"host", "127.0.0.1"}, {"port", ntohs(addr.sin_port)}, {"user", "u"}, {"useTls", true}}),
      {{"password", "hunter2-secret"}});
  server.join();
  ::close(listener);
  ExpectSteps(r, {"resolve:SUCCESS", "connect:SUCCESS", "tls:FAILED/tls_failure",
                  "authenticate:SKIPPED", "query:SKIPPED"});
  EXPECT_EQ(connections.load(), 1) << "Connector/C must not have been let loose on the server";
  EXPECT_EQ(bytes_received.load(), 0) << "nothing, least of all a handshake response, was sent";
}

// --- TLS modes, against the TLS servers (certificate for `localhost`, made at start) -----------

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

struct TlsServer {
  std::string type;  // "postgres" or "mysql"
  int port = 0;
  std::string password;
  std::string ca;        // PEM of the CA that signed the server's certificate
  std::string wrong_ca;  // PEM of another CA
};

// The TLS server of `type`, with the writer's password; fails the test without the fixture.
std::optional<TlsServer> TlsServerOf(const std::string& type) {
  const bool pg = type == "postgres";
  TlsServer s{type, 0,
              Env(pg ? "CONNREG_TEST_PG_WRITER_PASSWORD" : "CONNREG_TEST_MYSQL_WRITER_PASSWORD"),
              "", ""};
  std::string port = Env(pg ? "CONNREG_TEST_PG_TLS_PORT" : "CONNREG_TEST_MYSQL_TLS_PORT");
  std::string dir = Env("CONNREG_TEST_TLS_DIR");
  EXPECT_FALSE(port.empty() || dir.empty() || s.password.empty())
      << "the TLS servers are not running: run through ctest (scripts/test-databases.sh)";
  if (port.empty() || dir.empty()) return std::nullopt;
  s.port = std::stoi(port);
  s.ca = ReadAll(dir + "/ca.pem");
  s.wrong_ca = ReadAll(dir + "/wrong-ca.pem");
  return s;
}

// A test of the TLS server as `host`, with `mode` (none: absent) and `ca` (none: absent).
TestResult TestTls(const TlsServer& s, const std::string& host, const char* mode,
                   const std::string* ca) {
  boost::json::object details{{"host", host},
                              {"port", s.port},
                              {"database", kDatabase},
                              {"user", kWriter},
                              {"useTls", true}};
  if (mode) details["tlsMode"] = mode;
  if (ca) details["tlsCaCert"] = *ca;
  return Engine().RunTest(MakeConnection(s.type, details), {{"password", s.password}});
}

class ProbeServerTls : public ::testing::TestWithParam<std::string> {};

TEST_P(ProbeServerTls, VerifyFullWithTheRightCaAndNamePasses) {
  auto s = TlsServerOf(GetParam());
  ASSERT_TRUE(s);
  TestResult r = TestTls(*s, "localhost", "verify-full", &s->ca);
  ExpectSteps(r, {"resolve:SUCCESS", "connect:SUCCESS", "tls:SUCCESS", "authenticate:SUCCESS",
                  "query:SUCCESS"});
}

TEST_P(ProbeServerTls, VerifyFullWithAWrongCaFailsTheTlsStep) {
  auto s = TlsServerOf(GetParam());
  ASSERT_TRUE(s);
  TestResult r = TestTls(*s, "localhost", "verify-full", &s->wrong_ca);
  ExpectSteps(r, {"resolve:SUCCESS", "connect:SUCCESS", "tls:FAILED/tls_failure",
                  "authenticate:SKIPPED", "query:SKIPPED"});
}

TEST_P(ProbeServerTls, VerifyFullWithAWrongNameFailsTheTlsStep) {
  auto s = TlsServerOf(GetParam());
  ASSERT_TRUE(s);
  // The certificate names localhost, not 127.0.0.1.
  TestResult r = TestTls(*s, "127.0.0.1", "verify-full", &s->ca);
  ExpectSteps(r, {"resolve:SUCCESS", "connect:SUCCESS", "tls:FAILED/tls_failure",
                  "authenticate:SKIPPED", "query:SKIPPED"});
}

TEST_P(ProbeServerTls, VerifyCaChecksTheChainAndNotTheName) {
  auto s = TlsServerOf(GetParam());
  ASSERT_TRUE(s);
  EXPECT_EQ(TestTls(*s, "127.0.0.1", "verify-ca", &s->ca).read, "SUCCESS");
  TestResult wrong = TestTls(*s, "127.0.0.1", "verify-ca", &s->wrong_ca);
  EXPECT_EQ(FindStep(wrong, "tls")->code, "tls_failure") << Describe(wrong);
}

TEST_P(ProbeServerTls, VerifyFullWithoutACaTrustsOnlyTheSystemCas) {
  auto s = TlsServerOf(GetParam());
  ASSERT_TRUE(s);
  TestResult r = TestTls(*s, "localhost", "verify-full", nullptr);
  EXPECT_EQ(FindStep(r, "tls")->code, "tls_failure") << Describe(r);
}

TEST_P(ProbeServerTls, RequireAndConnectionsStoredBeforeTlsModeEncryptWithoutACa) {
  auto s = TlsServerOf(GetParam());
  ASSERT_TRUE(s);
  for (const char* mode : {"require", static_cast<const char*>(nullptr)}) {
    TestResult r = TestTls(*s, "127.0.0.1", mode, nullptr);
    ExpectSteps(r, {"resolve:SUCCESS", "connect:SUCCESS", "tls:SUCCESS", "authenticate:SUCCESS",
                    "query:SUCCESS"});
  }
}

TEST_P(ProbeServerTls, VerifyFullAgainstAServerWithoutTlsFailsBeforeCredentials) {
  const char* plain_port =
      GetParam() == "postgres" ? "CONNREG_TEST_PG_PORT" : "CONNREG_TEST_MYSQL_PORT";
  REQUIRE_ENV(port, plain_port);
  auto s = TlsServerOf(GetParam());
  ASSERT_TRUE(s);
  TlsServer plain = *s;
  plain.port = std::stoi(port);  // the servers without TLS
  TestResult r = TestTls(plain, "localhost", "verify-full", &s->ca);
  ExpectSteps(r, {"resolve:SUCCESS", "connect:SUCCESS", "tls:FAILED/tls_failure",
                  "authenticate:SKIPPED", "query:SKIPPED"});
}

// The prefix keeps the names under ProbeServer*, the tests the CTest fixture runs with its servers.
INSTANTIATE_TEST_SUITE_P(ProbeServer, ProbeServerTls,
                         ::testing::Values(std::string("postgres"), std::string("mysql")));

// A PostgreSQL impostor: it accepts TLS with the test servers' certificate (made for localhost,
// signed by the test CA), or plain text, then asks for the password in clear
// (AuthenticationCleartextPassword) and keeps what it is sent. Speaks the v3 protocol as far as
// that.
class CleartextAskingPostgres {
 public:
  CleartextAskingPostgres() {
    std::string dir = Env("CONNREG_TEST_TLS_DIR");
    ctx_ = SSL_CTX_new(TLS_server_method());
    ok_ = !dir.empty() && ctx_ &&
          SSL_CTX_use_certificate_chain_file(ctx_, (dir + "/server.pem").c_str()) == 1 &&
          SSL_CTX_use_PrivateKey_file(ctx_, (dir + "/server.key").c_str(), SSL_FILETYPE_PEM) == 1;
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(listener_, 8);
    socklen_t len = sizeof a;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~CleartextAskingPostgres() {
    stop_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    thread_.join();
    ::close(listener_);
    SSL_CTX_free(ctx_);
  }
  bool ok() const { return ok_; }
  int port() const { return port_; }
  std::vector<std::string> passwords() {
    std::lock_guard lock(mu_);
    return passwords_;
  }
  int tls_handshakes() const { return tls_handshakes_; }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{listener_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) continue;
      timeval tv{3, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      Session(fd);
      ::close(fd);
    }
  }

  void Session(int fd) {
    SSL* ssl = nullptr;
    auto read = [&](void* buf, int n) {
      int got = 0;
      while (got < n) {
        int r = ssl ? SSL_read(ssl, static_cast<char*>(buf) + got, n - got)
                    : static_cast<int>(::recv(fd, static_cast<char*>(buf) + got, n - got, 0));
        if (r <= 0) return false;
        got += r;
      }
      return true;
    };
    auto write = [&](const std::string& bytes) {
      if (ssl) return SSL_write(ssl, bytes.data(), static_cast<int>(bytes.size())) > 0;
      return ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) > 0;
    };
    auto be32 = [](const unsigned char* b) {
      return static_cast<std::uint32_t>(b[0]) << 24 | b[1] << 16 | b[2] << 8 | b[3];
    };
    for (;;) {  // SSLRequest / GSSENCRequest, then the StartupMessage
      unsigned char head[8];
      if (!read(head, 8)) break;
      std::uint32_t length = be32(head), code = be32(head + 4);
      if (code == 80877103 && !ssl) {  // SSLRequest
        if (!write("S")) break;
        ssl = SSL_new(ctx_);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) != 1) break;  // the client refused the certificate
        ++tls_handshakes_;
        continue;
      }
      if (code == 80877104) {  // GSSENCRequest
        if (!write("N")) break;
        continue;
      }
      std::string rest(length - 8, '\0');
      if (length < 8 || length > 10000 || !read(rest.data(), static_cast<int>(rest.size()))) break;
      if (!write(std::string("R\0\0\0\x08\0\0\0\x03", 9))) break;  // cleartext password, please
      unsigned char kind[5];
      if (!read(kind, 5) || kind[0] != 'p') break;
      std::string password(be32(kind + 1) - 4, '\0');
      if (!read(password.data(), static_cast<int>(password.size()))) break;
      while (!password.empty() && password.back() == '\0') password.pop_back();
      {
        std::lock_guard lock(mu_);
        passwords_.push_back(password);
      }
      write(std::string("E\0\0\0\x17SFATAL\0C28P01\0Mno\0\0", 24));
      break;
    }
    if (ssl) SSL_free(ssl);
  }

  SSL_CTX* ctx_ = nullptr;
  bool ok_ = false;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> tls_handshakes_{0};
  std::mutex mu_;
  std::vector<std::string> passwords_;
  std::thread thread_;
};

// Finding 2 of issue 18: a test sent the stored password to a listener that asked for it in clear.
// With TLS on, the password is sent only after the server was verified as tlsMode says.
TEST(ProbeServerTlsRegression, TlsOnNeverSendsThePasswordToACleartextAskingImpostor) {
  CleartextAskingPostgres impostor;
  ASSERT_TRUE(impostor.ok()) << "the impostor has no certificate (CONNREG_TEST_TLS_DIR)";
  auto s = TlsServerOf("postgres");
  ASSERT_TRUE(s);
  const std::string password = "Impostor-Bait-" + std::to_string(impostor.port());
  auto test = [&](const std::string& host, const std::string& mode, const std::string& ca) {
    return Engine().RunTest(MakeConnection("postgres", {{"host", host},
                                                        {"port", impostor.port()},
                                                        {"database", kDatabase},
                                                        {"user", kWriter},
                                                        {"useTls", true},
                                                        {"tlsMode", mode},
                                                        {"tlsCaCert", ca}}),
                            {{"password", password}});
  };
  // Its certificate is not signed by the CA the connection trusts, or does not name the host.
  TestResult wrong_ca = test("localhost", "verify-full", s->wrong_ca);
  TestResult wrong_name = test("127.0.0.1", "verify-full", s->ca);
  TestResult wrong_chain = test("127.0.0.1", "verify-ca", s->wrong_ca);
  for (const TestResult* r : {&wrong_ca, &wrong_name, &wrong_chain}) {
    ExpectSteps(*r, {"resolve:SUCCESS", "connect:SUCCESS", "tls:FAILED/tls_failure",
                     "authenticate:SKIPPED", "query:SKIPPED"});
  }
  EXPECT_TRUE(impostor.passwords().empty()) << "the impostor received the password";

  // The control: `require` encrypts without verifying, so the impostor gets the password (over
  // TLS). That is what require means; the domain keeps it bound to the stored endpoint.
  TestResult require = test("127.0.0.1", "require", "");
  EXPECT_EQ(impostor.passwords(), std::vector<std::string>{password}) << Describe(require);
}

// What TLS off means: plain text to the stored endpoint (sslmode disable), the operator's choice.
// The endpoint itself is bound to the secret by the domain (a changed host needs the password
// again), so this is where the password was configured to go.
TEST(ProbeServerTlsRegression, TlsOffSendsThePasswordInClearToTheConfiguredEndpointOnly) {
  CleartextAskingPostgres endpoint;
  TestResult r = Engine().RunTest(MakeConnection("postgres", {{"host", "127.0.0.1"},
                                                              {"port", endpoint.port()},
                                                              {"database", kDatabase},
                                                              {"user", kWriter}}),
                                  {{"password", "plain-by-choice"}});
  EXPECT_EQ(endpoint.passwords(), std::vector<std::string>{"plain-by-choice"}) << Describe(r);
  EXPECT_EQ(endpoint.tls_handshakes(), 0) << "no TLS was attempted (sslmode disable)";
}

}  // namespace
}  // namespace connreg::probe
