// The postgres and mysql drivers against real servers started by scripts/test-databases.sh.
// The servers' ports and passwords come from CONNREG_TEST_* variables, or from the KEY=VALUE
// file named by CONNREG_TEST_DB_ENV (what the CTest fixture sets). Without them these tests
// fail: they are part of the suite, not optional.
#include <libpq-fe.h>
#include <mysql.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <thread>

#include <boost/json/serialize.hpp>

#include "probe/engine.h"
#include "probe/probe.h"
#include "probe_test_support.h"

namespace connreg::probe {
namespace {

using test_support::Describe;
using test_support::Engine;
using test_support::FindStep;
using test_support::MakeConnection;

std::string Env(const std::string& name) {
  if (const char* v = std::getenv(name.c_str()); v && *v) return v;
  static const std::map<std::string, std::string> file = [] {
    std::map<std::string, std::string> out;
    const char* path = std::getenv("CONNREG_TEST_DB_ENV");
    if (!path) return out;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("export ", 0) == 0) line = line.substr(7);
      auto eq = line.find('=');
      if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return out;
  }();
  auto it = file.find(name);
  return it == file.end() ? "" : it->second;
}

#define REQUIRE_ENV(var, name)                                                         \
  const std::string var = Env(name);                                                   \
  ASSERT_FALSE(var.empty())                                                            \
      << name << " is not set: run `eval \"$(scripts/test-databases.sh start DIR)\"` " \
      << "first (and `scripts/test-databases.sh stop DIR` after), or run through ctest"

constexpr const char* kDatabase = "connreg_probe";
constexpr const char* kWriteSchema = "probe_w";
constexpr const char* kWriter = "connreg_writer";
constexpr const char* kReader = "connreg_reader";

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

}  // namespace
}  // namespace connreg::probe
