// The HTTP-protocol drivers (snowflake, starburst, databricks, bigQuery) against local protocol
// fakes: small HTTPS servers on 127.0.0.1 (Boost.Beast over Asio SSL, with a self-signed
// certificate made at test time and trusted as the operator's extra CA bundle, --tls-ca-file)
// that answer the requests each service's wire protocol makes. The real services cannot run here.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <list>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>

#include "crypto/encoding.h"
#include "probe/drivers/common/http_client.h"
#include "probe/engine.h"
#include "probe_test_support.h"

namespace connreg::probe {
namespace {

using test_support::Describe;
using test_support::Engine;
using test_support::MakeConnection;
using test_support::Steps;

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// --- keys and certificates ----------------------------------------------------------------------

std::string PemPrivateKey(EVP_PKEY* key, const char* passphrase = nullptr) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (passphrase) {
    PEM_write_bio_PKCS8PrivateKey(bio, key, EVP_aes_256_cbc(), passphrase,
                                  static_cast<int>(strlen(passphrase)), nullptr, nullptr);
  } else {
    PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string out(data, len);
  BIO_free(bio);
  return out;
}

// A self-signed certificate for 127.0.0.1 and its key, made once; the CA file the drivers trust.
struct TestTls {
  std::string cert_pem;
  std::string key_pem;
  std::string ca_file;
};

const TestTls& Tls() {
  static const TestTls* tls = [] {
    auto* t = new TestTls;
    EVP_PKEY* key = EVP_RSA_gen(2048);
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("connreg test"), -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, nullptr, nullptr, 0);
    for (auto [nid, value] : {std::pair{NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost"},
                              std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
      X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
      X509_add_ext(x, ext, -1);
      X509_EXTENSION_free(ext);
    }
    X509_sign(x, key, EVP_sha256());
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(bio, x);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio, &data);
    t->cert_pem.assign(data, len);
    BIO_free(bio);
    t->key_pem = PemPrivateKey(key);
    X509_free(x);
    EVP_PKEY_free(key);
    // Per process: ctest runs test processes in parallel, each with its own certificate.
    t->ca_file =
        ::testing::TempDir() + "connreg-http-drivers-ca-" + std::to_string(::getpid()) + ".pem";
    std::ofstream(t->ca_file) << t->cert_pem;
    return t;
  }();
  return *tls;
}

// --- a small HTTPS server -----------------------------------------------------------------------

struct FakeRequest {
  std::string method;
  std::string target;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

struct FakeResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  bool hang = false;  // never answer (keep the connection open until the server stops)
};

using Handler = std::function<FakeResponse(const FakeRequest&)>;

class FakeServer {
 public:
  // kSilent: accepts TCP connections and never says anything (not even a TLS ServerHello).
  enum class Mode { kHttps, kSilent };

  explicit FakeServer(Handler handler, Mode mode = Mode::kHttps)
      : handler_(std::move(handler)), mode_(mode), ctx_(ssl::context::tls_server) {
    const TestTls& tls = Tls();
    ctx_.use_certificate_chain(asio::buffer(tls.cert_pem));
    ctx_.use_private_key(asio::buffer(tls.key_pem), ssl::context::pem);
    acceptor_.open(tcp::v4());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { AcceptLoop(); });
  }

  ~FakeServer() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    }
    cv_.notify_all();
    {  // wake the blocking accept
      asio::io_context io;
      tcp::socket s(io);
      boost::system::error_code ec;
      s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
    }
    thread_.join();
    for (std::thread& t : connections_) t.join();
  }

  int port() const { return port_; }
  std::string base() const { return "https://127.0.0.1:" + std::to_string(port_); }

  std::vector<FakeRequest> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  void AcceptLoop() {
    for (;;) {
      auto sock = std::make_shared<tcp::socket>(io_);
      boost::system::error_code ec;
      acceptor_.accept(*sock, ec);
      std::lock_guard lock(mu_);
      if (stopping_ || ec) return;
      fds_.push_back(sock->native_handle());
      connections_.emplace_back([this, sock] { Serve(sock); });
    }
  }

  void Hold() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return stopping_; });
  }

  void Serve(std::shared_ptr<tcp::socket> sock) {
    if (mode_ == Mode::kSilent) return Hold();
    ssl::stream<tcp::socket&> stream(*sock, ctx_);
    boost::system::error_code ec;
    stream.handshake(ssl::stream_base::server, ec);
    if (ec) return;
    beast::flat_buffer buf;
    for (;;) {
      http::request<http::string_body> req;
      http::read(stream, buf, req, ec);
      if (ec) return;
      FakeRequest fr;
      fr.method = std::string(req.method_string());
      fr.target = std::string(req.target());
      fr.body = req.body();
      for (const auto& f : req) {
        std::string n(f.name_string());
        for (char& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        fr.headers[n] = std::string(f.value());
      }
      {
        std::lock_guard lock(mu_);
        requests_.push_back(fr);
      }
      FakeResponse out = handler_(fr);
      if (out.hang) return Hold();
      http::response<http::string_body> res{static_cast<http::status>(out.status), 11};
      res.set(http::field::content_type, out.content_type);
      res.keep_alive(req.keep_alive());
      res.body() = out.body;
      res.prepare_payload();
      http::write(stream, res, ec);
      if (ec || !req.keep_alive()) return;
    }
  }

  Handler handler_;
  Mode mode_;
  asio::io_context io_;
  ssl::context ctx_;
  tcp::acceptor acceptor_{io_};
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<int> fds_;
  std::list<std::thread> connections_;
  std::vector<FakeRequest> requests_;
};

FakeResponse Json(const boost::json::value& v, int status = 200) {
  return FakeResponse{status, boost::json::serialize(v), "application/json", false};
}

// --- helpers ------------------------------------------------------------------------------------

// LoopbackOptions() with the fakes' CA trusted as the operator's extra bundle
// (CONNREG_TLS_CA_FILE).
ProbeEngine::Options TrustingOptions() {
  ProbeEngine::Options o = test_support::LoopbackOptions();
  o.drivers.tls_ca_file = Tls().ca_file;
  return o;
}

// Runs a test on an engine that trusts the fakes' CA (Engine() does not).
TestResult RunProbe(const domain::Connection& c,
                    const std::map<std::string, std::string>& secrets) {
  static ProbeEngine* const engine = new ProbeEngine(TrustingOptions(), FindDriver);
  return engine->RunTest(c, secrets);
}

// Every secret's value is absent from the rendered result.
void ExpectNoSecrets(const TestResult& r, const std::map<std::string, std::string>& secrets) {
  std::string text = Describe(r);
  for (const auto& [k, v] : secrets) {
    EXPECT_EQ(text.find(v), std::string::npos) << k << " leaked: " << text;
  }
}

// Verifies an RS256 JWT with `public_key`; its claims, or nullopt when the signature is bad.
std::optional<boost::json::object> VerifyJwt(std::string_view jwt, EVP_PKEY* public_key) {
  auto dot1 = jwt.find('.');
  auto dot2 = jwt.rfind('.');
  if (dot1 == std::string_view::npos || dot1 == dot2) return std::nullopt;
  auto header = crypto::Base64UrlDecode(jwt.substr(0, dot1));
  auto claims = crypto::Base64UrlDecode(jwt.substr(dot1 + 1, dot2 - dot1 - 1));
  auto sig = crypto::Base64UrlDecode(jwt.substr(dot2 + 1));
  if (!header || !claims || !sig) return std::nullopt;
  if (boost::json::parse(*header).as_object().at("alg") != "RS256") return std::nullopt;
  std::string input(jwt.substr(0, dot2));
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok =
      EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, public_key) == 1 &&
      EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig->data()), sig->size(),
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) return std::nullopt;
  return boost::json::parse(*claims).as_object();
}

std::string Base64Der(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key, &der);
  unsigned char digest[32];
  EVP_Digest(der, len, digest, nullptr, EVP_sha256(), nullptr);
  OPENSSL_free(der);
  return crypto::Base64Encode(std::string_view(reinterpret_cast<char*>(digest), 32));
}

// A simulated table store for the write step: CREATE, INSERT (the marker), SELECT, DROP.
struct FakeTables {
  std::mutex mu;
  std::map<std::string, std::string> rows;  // table -> marker
  std::vector<std::string> statements;

  // The first column of the first row of `sql`'s result ("" for none); false if unknown SQL.
  bool Execute(const std::string& sql, std::string& value) {
    std::lock_guard lock(mu);
    statements.push_back(sql);
    static const std::regex create(R"(^CREATE TABLE (\S+) )");
    static const std::regex insert(R"(^INSERT INTO (\S+) .*VALUES \(1, '([0-9a-f]+)'\)$)");
    static const std::regex select(R"(^SELECT marker FROM (\S+) WHERE id = 1$)");
    static const std::regex drop(R"(^DROP TABLE IF EXISTS (\S+)$)");
    std::smatch m;
    value.clear();
    if (sql == "SELECT 1") {
      value = "1";
    } else if (std::regex_search(sql, m, create)) {
      rows[m[1]] = "";
    } else if (std::regex_match(sql, m, insert)) {
      rows[m[1]] = m[2];
    } else if (std::regex_match(sql, m, select)) {
      value = rows[m[1]];
    } else if (std::regex_match(sql, m, drop)) {
      rows.erase(m[1]);
    } else if (sql.rfind("USE ", 0) != 0) {
      return false;
    }
    return true;
  }
};

// --- the seeded catalogs the fakes answer catalog requests from ---------------------------------

// One scope (no table_type) or table of a fake's catalog, its columns with the type as that
// warehouse's catalog prints it.
struct SeedColumn {
  std::string name;
  std::string type;
  bool nullable = true;
  std::string comment;
};
struct SeedObject {
  domain::CatalogPath path;
  std::string table_type;  // "" for a scope; BASE TABLE, VIEW, ...
  std::string comment;
  std::vector<SeedColumn> columns;
};
using Seed = std::vector<SeedObject>;

// The seed's objects with `size` path elements whose names agree with `fixed` where it names one
// ("" names none), in path order.
std::vector<const SeedObject*> SeedAt(const Seed& seed, std::size_t size,
                                      const std::vector<std::string>& fixed) {
  std::vector<const SeedObject*> out;
  for (const SeedObject& o : seed) {
    if (o.path.size() != size) continue;
    bool ok = true;
    for (std::size_t i = 0; i < fixed.size() && i < size; ++i) {
      ok = ok && (fixed[i].empty() || fixed[i] == o.path[i]);
    }
    if (ok) out.push_back(&o);
  }
  std::sort(out.begin(), out.end(),
            [](const SeedObject* a, const SeedObject* b) { return a->path < b->path; });
  return out;
}

// The rows `sql`'s "LIMIT n OFFSET k" selects of `rows` (all of them without one).
template <typename T>
std::vector<T> LimitOffset(const std::string& sql, std::vector<T> rows) {
  std::smatch m;
  static const std::regex paging(R"(LIMIT (\d+) OFFSET (\d+)$)");
  if (!std::regex_search(sql, m, paging)) return rows;
  std::size_t limit = std::stoul(m[1]), offset = std::stoul(m[2]);
  if (offset >= rows.size()) return {};
  rows.erase(rows.begin(), rows.begin() + offset);
  if (rows.size() > limit) rows.resize(limit);
  return rows;
}

// What makes a fake's catalog answers fail or hang.
struct CatalogSwitches {
  std::atomic<bool> fail{false};  // answer catalog queries with a permission error
  std::atomic<bool> hang{false};  // never answer catalog queries
  std::atomic<int> catalog_requests{0};
};

// A table with `n` columns c0000.., for a listing that takes more than one page.
SeedObject WideTable(domain::CatalogPath path, int n, const std::string& type) {
  SeedObject o{std::move(path), "BASE TABLE", "", {}};
  for (int i = 0; i < n; ++i) {
    char name[24];
    std::snprintf(name, sizeof name, "c%04d", i);
    o.columns.push_back({name, type, true, ""});
  }
  return o;
}

const Seed& SnowflakeSeed() {
  static const Seed seed = {
      {{"EMPTY_DB"}, "", "", {}},
      {{"SALES"}, "", "Sales data", {}},
      {{"SALES", "INFORMATION_SCHEMA"}, "", "", {}},
      {{"SALES", "INFORMATION_SCHEMA", "TABLES"}, "VIEW", "", {{"TABLE_NAME", "TEXT(256)"}}},
      {{"SALES", "PUBLIC"}, "", "default schema", {}},
      {{"SALES", "PUBLIC", "Mixed Case"}, "BASE TABLE", "", {{"lower col", "TEXT(10)"}}},
      {{"SALES", "PUBLIC", "ORDERS"},
       "BASE TABLE",
       "All orders",
       {{"ID", "NUMBER(38,0)", false, "order id"},
        {"NOTE", "TEXT(16777216)"},
        {"CREATED", "TIMESTAMP_NTZ"},
        {"ATTRS", "VARIANT"},
        {"TAGS", "ARRAY"},
        {"PLACE", "GEOGRAPHY"}}},
      {{"SALES", "PUBLIC", "ORDERS_V"}, "VIEW", "open orders", {{"ID", "NUMBER(38,0)"}}},
      {{"SALES", "STAGING"}, "", "", {}},
      WideTable({"SALES", "STAGING", "WIDE"}, 1003, "FLOAT"),
  };
  return seed;
}

// --- Snowflake ----------------------------------------------------------------------------------

constexpr const char* kSfPassword = "sf-Pa55word!";
constexpr const char* kSfToken = "session-token-4711";

// A protocol fake of Snowflake's REST API (login-request, query-request with an asynchronous
// first answer, result polling, logout); the real service cannot run here. It echoes the
// password it was sent in its error message, as a careless server might.
struct SnowflakeFake {
  EVP_PKEY* public_key = nullptr;  // key-pair logins are verified with it
  std::string expected_fingerprint;
  std::optional<boost::json::object> jwt_claims;
  FakeTables tables;
  std::atomic<int> polls{0};
  CatalogSwitches catalog;
  FakeServer server{[this](const FakeRequest& r) { return Handle(r); }};

  // SHOW DATABASES and the INFORMATION_SCHEMA queries, answered from SnowflakeSeed() with the
  // bound names applied; nullopt for other SQL.
  std::optional<FakeResponse> Catalog(const std::string& sql, const boost::json::object& request) {
    static const std::regex views(R"re(FROM "([^"]+)"\.INFORMATION_SCHEMA\.(SCHEMATA|TABLES))re");
    std::smatch m;
    const bool show = sql == "SHOW DATABASES";
    if (!show && !std::regex_search(sql, m, views)) return std::nullopt;
    ++catalog.catalog_requests;
    if (catalog.hang) return FakeResponse{200, "", "", true};
    if (catalog.fail) {
      return Json({{"success", false},
                   {"code", "003001"},
                   {"message", "SQL access control error: Insufficient privileges"}});
    }
    std::vector<std::string> binds;
    if (const auto* b = request.if_contains("bindings")) {
      for (int i = 1; b->as_object().contains(std::to_string(i)); ++i) {
        binds.emplace_back(b->as_object().at(std::to_string(i)).at("value").as_string());
      }
    }
    auto text = [](const std::string& v) {
      return v.empty() ? boost::json::value() : boost::json::value(v);
    };
    boost::json::array rowtype, rows;
    auto columns = [&](std::initializer_list<const char*> names) {
      for (const char* n : names) rowtype.push_back({{"name", n}, {"type", "text"}});
    };
    if (show) {
      columns({"created_on", "name", "is_default", "owner", "comment"});
      for (const SeedObject* o : SeedAt(SnowflakeSeed(), 1, {})) {
        rows.push_back({"2024-01-01", o->path[0], "N", "SYSADMIN", o->comment});
      }
    } else if (m[2] == "SCHEMATA") {
      columns({"SCHEMA_NAME", "COMMENT"});
      std::vector<std::string> fixed{m[1].str(), binds.empty() ? "" : binds[0]};
      for (const SeedObject* o : LimitOffset(sql, SeedAt(SnowflakeSeed(), 2, fixed))) {
        rows.push_back({o->path[1], text(o->comment)});
      }
    } else {
      columns({"TABLE_SCHEMA", "TABLE_NAME", "TABLE_COMMENT", "COLUMN_NAME", "DATA_TYPE",
               "CHARACTER_MAXIMUM_LENGTH", "NUMERIC_PRECISION", "NUMERIC_SCALE", "IS_NULLABLE",
               "COMMENT"});
      std::vector<std::string> fixed{m[1].str(), "", ""};
      std::size_t next = 0;
      if (sql.find("t.TABLE_SCHEMA = ?") != std::string::npos) fixed[1] = binds.at(next++);
      if (sql.find("t.TABLE_NAME = ?") != std::string::npos) fixed[2] = binds.at(next++);
      std::vector<boost::json::array> all;
      for (const SeedObject* o : SeedAt(SnowflakeSeed(), 3, fixed)) {
        for (const SeedColumn& c : o->columns) {
          // NUMBER(38,0) is DATA_TYPE NUMBER with its precision and scale; TEXT(10) TEXT with
          // its length.
          static const std::regex parts(R"(^(\w+)\((\d+)(?:,(\d+))?\)$)");
          std::smatch t;
          std::string type = c.type, length, precision, scale;
          if (std::regex_match(c.type, t, parts)) {
            type = t[1];
            (type == "NUMBER" ? precision : length) = t[2];
            scale = t[3];
          }
          all.push_back({o->path[1], o->path[2], text(o->comment), c.name, type, text(length),
                         text(precision), text(scale), c.nullable ? "YES" : "NO", text(c.comment)});
        }
      }
      for (auto& row : LimitOffset(sql, std::move(all))) rows.push_back(std::move(row));
    }
    return Json({{"data", {{"rowtype", rowtype}, {"rowset", rows}}}, {"success", true}});
  }

  FakeResponse Handle(const FakeRequest& r) {
    if (r.method == "POST" && r.target.rfind("/session/v1/login-request?", 0) == 0) {
      auto data = boost::json::parse(r.body).as_object().at("data").as_object();
      bool ok = false;
      if (data.contains("TOKEN")) {
        jwt_claims =
            public_key ? VerifyJwt(data.at("TOKEN").as_string(), public_key) : std::nullopt;
        ok = jwt_claims && data.at("AUTHENTICATOR") == "SNOWFLAKE_JWT";
      } else {
        ok = data.at("LOGIN_NAME") == "alice" && data.at("PASSWORD") == kSfPassword;
      }
      if (!ok) {
        std::string sent =
            data.contains("PASSWORD") ? std::string(data.at("PASSWORD").as_string()) : "";
        return Json({{"data", nullptr},
                     {"code", "390100"},
                     {"message", "Incorrect username or password was specified: " + sent},
                     {"success", false}});
      }
      return Json({{"data", {{"token", kSfToken}, {"masterToken", "master"}}},
                   {"code", nullptr},
                   {"success", true}});
    }
    if (r.headers.count("authorization") == 0 ||
        r.headers.at("authorization") != std::string("Snowflake Token=\"") + kSfToken + "\"") {
      return Json({{"success", false}, {"code", "390112"}, {"message", "session expired"}}, 401);
    }
    if (r.method == "POST" && r.target.rfind("/queries/v1/query-request?", 0) == 0) {
      auto request = boost::json::parse(r.body).as_object();
      std::string sql(request.at("sqlText").as_string());
      if (auto answer = Catalog(sql, request)) return *answer;
      if (sql == "SELECT 1") {  // first answer: still running
        return Json({{"data", {{"getResultUrl", "/queries/q-1/result"}}},
                     {"code", "333334"},
                     {"success", true}});
      }
      std::string value;
      if (!tables.Execute(sql, value)) {
        return Json({{"success", false}, {"code", "001003"}, {"message", "syntax error"}});
      }
      return Json({{"data", {{"rowset", {{value}}}}}, {"success", true}});
    }
    if (r.method == "GET" && r.target == "/queries/q-1/result") {
      ++polls;
      return Json(
          {{"data", {{"rowtype", {{{"name", "1"}}}}, {"rowset", {{"1"}}}}}, {"success", true}});
    }
    if (r.method == "POST" && r.target == "/session?delete=true") return Json({{"success", true}});
    if (r.target.rfind("/session?delete=true&", 0) == 0) return Json({{"success", true}});
    return Json({{"success", false}, {"message", "unknown request"}}, 404);
  }
};

boost::json::object SnowflakeDetails(int port) {
  return {{"account", "testacct"}, {"host", "127.0.0.1"}, {"port", port},
          {"user", "alice"},       {"warehouse", "WH"},   {"role", "PROBER"}};
}

TEST(ProbeHttpSnowflake, PasswordLoginAndQuerySucceed) {
  SnowflakeFake fake;
  std::map<std::string, std::string> secrets{{"password", kSfPassword}};
  TestResult r =
      RunProbe(MakeConnection("snowflake", SnowflakeDetails(fake.server.port())), secrets);
  EXPECT_EQ(r.read, "SUCCESS") << Describe(r);
  EXPECT_EQ(Steps(r),
            "resolve:SUCCESS connect:SUCCESS tls:SUCCESS authenticate:SUCCESS query:SUCCESS");
  EXPECT_EQ(fake.polls.load(), 1);
  auto reqs = fake.server.requests();
  ASSERT_FALSE(reqs.empty());
  EXPECT_NE(reqs[0].target.find("warehouse=WH"), std::string::npos) << reqs[0].target;
  EXPECT_NE(reqs[0].target.find("roleName=PROBER"), std::string::npos) << reqs[0].target;
}

TEST(ProbeHttpSnowflake, BadPasswordIsAuthFailedAndNeverEchoed) {
  SnowflakeFake fake;
  std::map<std::string, std::string> secrets{{"password", "wrong-Secret-123"}};
  TestResult r =
      RunProbe(MakeConnection("snowflake", SnowflakeDetails(fake.server.port())), secrets);
  EXPECT_EQ(r.read, "FAILED");
  EXPECT_EQ(Steps(r),
            "resolve:SUCCESS connect:SUCCESS tls:SUCCESS authenticate:FAILED/auth_failed "
            "query:SKIPPED")
      << Describe(r);
  EXPECT_NE(Describe(r).find("390100"), std::string::npos) << Describe(r);
  ExpectNoSecrets(r, secrets);
}

TEST(ProbeHttpSnowflake, KeyPairJwtIsSignedWithThePrivateKey) {
  EVP_PKEY* key = EVP_RSA_gen(2048);
  SnowflakeFake fake;
  fake.public_key = key;
  std::map<std::string, std::string> secrets{{"privateKey", PemPrivateKey(key, "key-Passphrase-9")},
                                             {"privateKeyPassphrase", "key-Passphrase-9"}};
  TestResult r =
      RunProbe(MakeConnection("snowflake", SnowflakeDetails(fake.server.port())), secrets);
  EXPECT_EQ(r.read, "SUCCESS") << Describe(r);
  ASSERT_TRUE(fake.jwt_claims) << "the JWT's signature did not verify";
  EXPECT_EQ(fake.jwt_claims->at("sub"), "TESTACCT.ALICE");
  EXPECT_EQ(fake.jwt_claims->at("iss").as_string(), "TESTACCT.ALICE.SHA256:" + Base64Der(key));
  EXPECT_GT(fake.jwt_claims->at("exp").as_int64(), fake.jwt_claims->at("iat").as_int64());

  // A wrong passphrase fails authentication without quoting the key or the passphrase.
  secrets["privateKeyPassphrase"] = "not-the-Passphrase";
  r = RunProbe(MakeConnection("snowflake", SnowflakeDetails(fake.server.port())), secrets);
  EXPECT_EQ(r.read, "FAILED");
  EXPECT_NE(Steps(r).find("authenticate:FAILED/auth_failed"), std::string::npos) << Describe(r);
  ExpectNoSecrets(r, secrets);
  EVP_PKEY_free(key);
}

TEST(ProbeHttpSnowflake, WriteCreatesInsertsReadsAndDrops) {
  SnowflakeFake fake;
  auto details = SnowflakeDetails(fake.server.port());
  details["writeAccess"] = {{"writeDatabase", "PROBE_DB"}, {"writeSchema", "PUBLIC"}};
  TestResult r = RunProbe(MakeConnection("snowflake", details), {{"password", kSfPassword}});
  EXPECT_EQ(r.read, "SUCCESS") << Describe(r);
  EXPECT_EQ(r.write, "SUCCESS") << Describe(r);
  std::lock_guard lock(fake.tables.mu);
  EXPECT_TRUE(fake.tables.rows.empty());
  ASSERT_GE(fake.tables.statements.size(), 5u);
  EXPECT_EQ(fake.tables.statements[0], "USE DATABASE PROBE_DB");
}

TEST(ProbeHttpSnowflake, SilentServerTimesOutWithinTheDeadline) {
  FakeServer silent([](const FakeRequest&) { return FakeResponse{}; }, FakeServer::Mode::kSilent);
  auto start = Clock::now();
  TestResult r = RunProbe(MakeConnection("snowflake", SnowflakeDetails(silent.port()), 2),
                          {{"password", kSfPassword}});
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_LT(secs, 2 + test_support::kAnswerSlack.count());
  EXPECT_EQ(r.read, "FAILED");
  EXPECT_NE(Steps(r).find("FAILED/timeout"), std::string::npos) << Describe(r);
}

TEST(ProbeHttpSnowflake, LoginThatNeverAnswersTimesOutInAuthenticate) {
  FakeServer hanging([](const FakeRequest&) { return FakeResponse{200, "", "", true}; });
  auto start = Clock::now();
  TestResult r = RunProbe(MakeConnection("snowflake", SnowflakeDetails(hanging.port()), 2),
                          {{"password", kSfPassword}});
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_LT(secs, 2 + test_support::kAnswerSlack.count());
  EXPECT_NE(Steps(r).find("authenticate:FAILED/timeout"), std::string::npos) << Describe(r);
}

TEST(ProbeHttpSnowflake, UntrustedCertificateIsTlsFailure) {
  // The CA file is not trusted by a session without it: the system store alone must refuse it.
  SnowflakeFake fake;
  TestResult r = Engine().RunTest(MakeConnection("snowflake", SnowflakeDetails(fake.server.port())),
                                  {{"password", kSfPassword}});
  EXPECT_EQ(Steps(r),
            "resolve:SUCCESS connect:SUCCESS tls:FAILED/tls_failure authenticate:SKIPPED "
            "query:SKIPPED")
      << Describe(r);
}

// --- Starburst (Trino) --------------------------------------------------------------------------

constexpr const char* kTrinoPassword = "trino-Pw-777";

// A protocol fake of a Trino coordinator (POST /v1/statement with Basic auth, a queued first
// answer, then the rows at nextUri); the real service cannot run here.
const Seed& TrinoSeed() {
  static const Seed seed = {
      {{"hive"}, "", "", {}},
      {{"hive", "empty"}, "", "", {}},
      {{"hive", "information_schema"}, "", "", {}},
      {{"hive", "information_schema", "tables"}, "BASE TABLE", "", {{"table_name", "varchar"}}},
      {{"hive", "web"}, "", "", {}},
      {{"hive", "web", "page_views"},
       "BASE TABLE",
       "",
       {{"user_id", "bigint", false},
        {"url", "varchar(2048)"},
        {"tags", "array(varchar)"},
        {"ctx", "row(a integer, b varchar)"},
        {"at", "timestamp(3) with time zone"},
        {"amount", "decimal(10,2)"}}},
      {{"hive", "web", "recent_views"}, "VIEW", "", {{"user_id", "bigint"}}},
      {{"system"}, "", "", {}},
      {{"system", "runtime"}, "", "", {}},
      {{"system", "runtime", "nodes"}, "BASE TABLE", "", {{"node_id", "varchar"}}},
      {{"tpch"}, "", "", {}},
      {{"tpch", "tiny"}, "", "", {}},
      {{"tpch", "tiny", "nation"},
       "BASE TABLE",
       "",
       {{"nationkey", "bigint", false}, {"name", "varchar(25)", false}}},
  };
  return seed;
}

struct TrinoFake {
  FakeTables tables;
  std::mutex mu;
  std::map<std::string, std::string> pending;         // query id -> SQL
  std::map<std::string, boost::json::array> results;  // query id -> the catalog rows to serve
  int next_id = 0;
  CatalogSwitches catalog;
  FakeServer server{[this](const FakeRequest& r) { return Handle(r); }};

  // The rows of SHOW CATALOGS and of the information_schema queries, from TrinoSeed() with the
  // names of the WHERE clause applied; nullopt for other SQL.
  static std::optional<boost::json::array> CatalogRows(const std::string& sql) {
    static const std::regex views(R"re(FROM "([^"]+)"\.information_schema\.(schemata|tables))re");
    auto named = [&](const char* column) {
      std::smatch m;
      std::regex eq(std::string(column) + R"( = '((?:[^']|'')*)')");
      if (!std::regex_search(sql, m, eq)) return std::string();
      return std::regex_replace(std::string(m[1]), std::regex("''"), "'");
    };
    boost::json::array rows;
    std::smatch m;
    if (sql == "SHOW CATALOGS") {
      for (const SeedObject* o : SeedAt(TrinoSeed(), 1, {})) rows.push_back({o->path[0]});
    } else if (std::regex_search(sql, m, views) && m[2] == "schemata") {
      for (const SeedObject* o : SeedAt(TrinoSeed(), 2, {m[1].str(), named("schema_name")})) {
        rows.push_back({o->path[1]});
      }
    } else if (std::regex_search(sql, m, views)) {
      for (const SeedObject* o :
           SeedAt(TrinoSeed(), 3, {m[1].str(), named("t.table_schema"), named("t.table_name")})) {
        for (const SeedColumn& c : o->columns) {
          rows.push_back({o->path[1], o->path[2], c.name, c.type, c.nullable ? "YES" : "NO"});
        }
      }
    } else {
      return std::nullopt;
    }
    return rows;
  }

  // Page `n` (from 1) of a catalog query's rows, two rows a page, with a nextUri to the next.
  FakeResponse CatalogPage(const std::string& id, int n) {
    std::lock_guard lock(mu);
    const boost::json::array& rows = results[id];
    boost::json::array page;
    for (std::size_t i = (n - 1) * 2; i < rows.size() && i < std::size_t(n) * 2; ++i) {
      page.push_back(rows[i]);
    }
    boost::json::object o{{"id", id}, {"stats", {{"state", "RUNNING"}}}, {"data", page}};
    if (std::size_t(n) * 2 < rows.size()) {
      o["nextUri"] = server.base() + "/v1/statement/executing/" + id + "/" + std::to_string(n + 1);
    } else {
      o["stats"] = {{"state", "FINISHED"}};
    }
    return Json(o);
  }

  FakeResponse Handle(const FakeRequest& r) {
    auto auth = r.headers.find("authorization");
    if (auth == r.headers.end() ||
        auth->second != "Basic " + crypto::Base64Encode(std::string("alice:") + kTrinoPassword) ||
        r.headers.count("x-trino-user") == 0 || r.headers.at("x-trino-user") != "alice") {
      return FakeResponse{401, "Unauthorized", "text/plain", false};
    }
    if (r.method == "DELETE") return FakeResponse{204, "", "text/plain", false};
    if (r.method == "GET" && r.target.rfind("/v1/statement/executing/", 0) == 0) {
      std::string rest = r.target.substr(24);
      return CatalogPage(rest.substr(0, rest.find('/')),
                         std::stoi(rest.substr(rest.find('/') + 1)));
    }
    if (r.method == "POST" && r.target == "/v1/statement") {
      std::lock_guard lock(mu);
      std::string id = "q" + std::to_string(++next_id);
      if (auto rows = CatalogRows(r.body)) {
        ++catalog.catalog_requests;
        if (catalog.hang && r.body != "SHOW CATALOGS") return FakeResponse{200, "", "", true};
        results[id] = std::move(*rows);
      }
      pending[id] = r.body;
      return Json({{"id", id},
                   {"nextUri", server.base() + "/v1/statement/queued/" + id + "/1"},
                   {"stats", {{"state", "QUEUED"}}}});
    }
    if (r.method == "GET" && r.target.rfind("/v1/statement/queued/", 0) == 0) {
      std::string id = r.target.substr(21, r.target.find('/', 21) - 21);
      std::string sql;
      {
        std::lock_guard lock(mu);
        sql = pending[id];
      }
      if (CatalogRows(sql)) {
        if (catalog.fail && sql != "SHOW CATALOGS") {
          return Json({{"id", id},
                       {"stats", {{"state", "FAILED"}}},
                       {"error",
                        {{"message", "Access Denied: Cannot select from columns"},
                         {"errorName", "PERMISSION_DENIED"},
                         {"errorType", "USER_ERROR"}}}});
        }
        return CatalogPage(id, 1);
      }
      std::string value;
      if (!tables.Execute(sql, value)) {
        return Json({{"id", id},
                     {"stats", {{"state", "FAILED"}}},
                     {"error",
                      {{"message", "Access Denied: Cannot create table"},
                       {"errorName", "PERMISSION_DENIED"},
                       {"errorType", "USER_ERROR"}}}});
      }
      boost::json::object o{{"id", id}, {"stats", {{"state", "FINISHED"}}}};
      if (!value.empty()) {
        o["columns"] = {{{"name", "_col0"}}};
        o["data"] = {{sql == "SELECT 1" ? boost::json::value(1) : boost::json::value(value)}};
      }
      return Json(o);
    }
    return FakeResponse{404, "not found", "text/plain", false};
  }
};

boost::json::object TrinoDetails(int port) {
  return {{"host", "127.0.0.1"}, {"port", port}, {"user", "alice"}, {"catalog", "tpch"}};
}

TEST(ProbeHttpTrino, ReadSucceedsFollowingNextUri) {
  TrinoFake fake;
  TestResult r = RunProbe(MakeConnection("starburst", TrinoDetails(fake.server.port())),
                          {{"password", kTrinoPassword}});
  EXPECT_EQ(r.read, "SUCCESS") << Describe(r);
  EXPECT_EQ(Steps(r),
            "resolve:SUCCESS connect:SUCCESS tls:SUCCESS authenticate:SUCCESS query:SUCCESS");
  auto reqs = fake.server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].headers["x-trino-catalog"], "tpch");
}

TEST(ProbeHttpTrino, TlsModeDecidesWhatIsVerified) {
  // The fake's certificate is not trusted by Engine() (no CONNREG_TLS_CA_FILE): `require`
  // encrypts without verifying, the verifying modes need it as tlsCaCert.
  TrinoFake fake;
  auto run = [&](const char* mode, const std::string* ca) {
    auto details = TrinoDetails(fake.server.port());
    details["tlsMode"] = mode;
    if (ca) details["tlsCaCert"] = *ca;
    return Engine().RunTest(MakeConnection("starburst", details), {{"password", kTrinoPassword}});
  };
  TestResult require = run("require", nullptr);
  TestResult untrusted = run("verify-ca", nullptr);
  TestResult trusted_ca = run("verify-ca", &Tls().cert_pem);
  TestResult trusted_full = run("verify-full", &Tls().cert_pem);
  EXPECT_EQ(require.read, "SUCCESS") << Describe(require);
  EXPECT_EQ(Steps(untrusted),
            "resolve:SUCCESS connect:SUCCESS tls:FAILED/tls_failure authenticate:SKIPPED "
            "query:SKIPPED")
      << Describe(untrusted);
  EXPECT_EQ(trusted_ca.read, "SUCCESS") << Describe(trusted_ca);
  EXPECT_EQ(trusted_full.read, "SUCCESS") << Describe(trusted_full);
}

TEST(ProbeHttpTrino, BadPasswordIsAuthFailed) {
  TrinoFake fake;
  std::map<std::string, std::string> secrets{{"password", "bad-Trino-Secret"}};
  TestResult r = RunProbe(MakeConnection("starburst", TrinoDetails(fake.server.port())), secrets);
  EXPECT_EQ(Steps(r),
            "resolve:SUCCESS connect:SUCCESS tls:SUCCESS authenticate:FAILED/auth_failed "
            "query:SKIPPED")
      << Describe(r);
  ExpectNoSecrets(r, secrets);
}

TEST(ProbeHttpTrino, WriteRunsInTheWriteCatalog) {
  TrinoFake fake;
  auto details = TrinoDetails(fake.server.port());
  details["writeAccess"] = {{"writeCatalog", "lake"}, {"writeSchema", "scratch"}};
  TestResult r = RunProbe(MakeConnection("starburst", details), {{"password", kTrinoPassword}});
  EXPECT_EQ(r.write, "SUCCESS") << Describe(r);
  auto reqs = fake.server.requests();
  EXPECT_EQ(reqs.back().method, "GET");
  bool saw_lake = false;
  for (auto& q : reqs) saw_lake = saw_lake || q.headers["x-trino-catalog"] == "lake";
  EXPECT_TRUE(saw_lake);
  std::lock_guard lock(fake.tables.mu);
  EXPECT_TRUE(fake.tables.rows.empty());
}

TEST(ProbeHttpTrino, PasswordIsNeverSentOverPlainHttp) {
  TrinoFake fake;
  auto details = TrinoDetails(fake.server.port());
  details["useTls"] = false;
  TestResult r = RunProbe(MakeConnection("starburst", details), {{"password", kTrinoPassword}});
  EXPECT_EQ(r.read, "FAILED");
  EXPECT_TRUE(fake.server.requests().empty());
}

TEST(ProbeHttpTrino, SilentServerTimesOutWithinTheDeadline) {
  FakeServer silent([](const FakeRequest&) { return FakeResponse{}; }, FakeServer::Mode::kSilent);
  auto start = Clock::now();
  TestResult r = RunProbe(MakeConnection("starburst", TrinoDetails(silent.port()), 1),
                          {{"password", kTrinoPassword}});
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_LT(secs, 1 + test_support::kAnswerSlack.count());
  EXPECT_NE(Steps(r).find("FAILED/timeout"), std::string::npos) << Describe(r);
}

TEST(ProbeHttpTrino, RefusedPortIsConnectionRefused) {
  int port;
  {
    FakeServer s([](const FakeRequest&) { return FakeResponse{}; });
    port = s.port();
  }
  TestResult r =
      RunProbe(MakeConnection("starburst", TrinoDetails(port)), {{"password", kTrinoPassword}});
  EXPECT_NE(Steps(r).find("connect:FAILED/connection_refused"), std::string::npos) << Describe(r);
}

// --- Databricks ---------------------------------------------------------------------------------

constexpr const char* kDbxToken = "dapi-secret-token-0123";

// A protocol fake of the Databricks SQL Statement Execution API (POST /api/2.0/sql/statements
// answering PENDING, then GET /api/2.0/sql/statements/<id>); the real service cannot run here.
const Seed& DatabricksSeed() {
  static const Seed seed = {
      {{"main"}, "", "Main catalog", {}},
      {{"main", "empty"}, "", "", {}},
      {{"main", "information_schema"}, "", "", {}},
      {{"main", "information_schema", "tables"}, "VIEW", "", {{"table_name", "string"}}},
      {{"main", "sales"}, "", "Sales", {}},
      {{"main", "sales", "orders"},
       "MANAGED",
       "Orders",
       {{"id", "bigint", false, "order id"},
        {"amount", "decimal(10,2)"},
        {"items", "array<string>"},
        {"buyer", "struct<name:string,age:int>"},
        {"ts", "timestamp"},
        {"raw", "binary"}}},
      {{"main", "sales", "orders_v"}, "VIEW", "", {{"id", "bigint"}}},
      {{"samples"}, "", "", {}},
      {{"samples", "tpch"}, "", "", {}},
      WideTable({"samples", "tpch", "wide"}, 1002, "double"),
      {{"system"}, "", "", {}},
      {{"system", "access"}, "", "", {}},
      {{"system", "access", "audit"}, "MANAGED", "", {{"event_time", "timestamp"}}},
  };
  return seed;
}

struct DatabricksFake {
  FakeTables tables;
  std::mutex mu;
  std::map<std::string, std::string> pending;         // statement id -> SQL
  std::map<std::string, boost::json::object> bodies;  // statement id -> the request
  std::vector<boost::json::object> submitted;
  int next_id = 0;
  CatalogSwitches catalog;
  FakeServer server{[this](const FakeRequest& r) { return Handle(r); }};

  // The answer to a query on system.information_schema, from DatabricksSeed() with the named
  // parameters applied; nullopt for other SQL.
  static std::optional<boost::json::object> CatalogAnswer(const boost::json::object& body) {
    const std::string sql(body.at("statement").as_string());
    static const std::regex views(R"(FROM system\.information_schema\.(catalogs|schemata|tables))");
    std::smatch m;
    if (!std::regex_search(sql, m, views)) return std::nullopt;
    std::vector<std::string> fixed(3);
    if (const auto* params = body.if_contains("parameters")) {
      for (const auto& p : params->as_array()) {
        const auto& name = p.at("name").as_string();
        std::size_t level = name == "catalog" ? 0 : name == "schema" ? 1 : 2;
        fixed[level] = std::string(p.at("value").as_string());
      }
    }
    auto text = [](const std::string& v) {
      return v.empty() ? boost::json::value() : boost::json::value(v);
    };
    boost::json::array columns, rows;
    auto named = [&](std::initializer_list<const char*> names) {
      for (const char* n : names) columns.push_back(boost::json::object{{"name", n}});
    };
    if (m[1] == "catalogs") {
      named({"catalog_name", "comment"});
      for (const SeedObject* o : LimitOffset(sql, SeedAt(DatabricksSeed(), 1, fixed))) {
        rows.push_back({o->path[0], text(o->comment)});
      }
    } else if (m[1] == "schemata") {
      named({"catalog_name", "schema_name", "comment"});
      for (const SeedObject* o : LimitOffset(sql, SeedAt(DatabricksSeed(), 2, fixed))) {
        rows.push_back({o->path[0], o->path[1], text(o->comment)});
      }
    } else {
      named({"table_catalog", "table_schema", "table_name", "table_comment", "column_name",
             "full_data_type", "is_nullable", "comment"});
      std::vector<boost::json::array> all;
      for (const SeedObject* o : SeedAt(DatabricksSeed(), 3, fixed)) {
        for (const SeedColumn& c : o->columns) {
          all.push_back({o->path[0], o->path[1], o->path[2], text(o->comment), c.name, c.type,
                         c.nullable ? "YES" : "NO", text(c.comment)});
        }
      }
      for (auto& row : LimitOffset(sql, std::move(all))) rows.push_back(std::move(row));
    }
    return boost::json::object{{"status", {{"state", "SUCCEEDED"}}},
                               {"manifest", {{"schema", {{"columns", columns}}}}},
                               {"result", {{"data_array", rows}}}};
  }

  FakeResponse Handle(const FakeRequest& r) {
    auto auth = r.headers.find("authorization");
    if (auth == r.headers.end() || auth->second != std::string("Bearer ") + kDbxToken) {
      return Json({{"error_code", "403"}, {"message", "Invalid access token."}}, 403);
    }
    if (r.method == "POST" && r.target == "/api/2.0/sql/statements") {
      auto body = boost::json::parse(r.body).as_object();
      std::lock_guard lock(mu);
      submitted.push_back(body);
      if (body.at("warehouse_id") != "wh123") {
        return Json({{"error_code", "RESOURCE_DOES_NOT_EXIST"}, {"message", "no warehouse"}}, 404);
      }
      std::string id = "01ef-" + std::to_string(++next_id);
      if (CatalogAnswer(body)) {
        ++catalog.catalog_requests;
        if (catalog.hang) return FakeResponse{200, "", "", true};
      }
      pending[id] = std::string(body.at("statement").as_string());
      bodies[id] = body;
      return Json({{"statement_id", id}, {"status", {{"state", "PENDING"}}}});
    }
    if (r.method == "GET" && r.target.rfind("/api/2.0/sql/statements/", 0) == 0) {
      std::string id = r.target.substr(24);
      std::string sql;
      boost::json::object body;
      {
        std::lock_guard lock(mu);
        sql = pending[id];
        body = bodies[id];
      }
      if (auto answer = CatalogAnswer(body)) {
        if (catalog.fail) {
          return Json({{"statement_id", id},
                       {"status",
                        {{"state", "FAILED"},
                         {"error",
                          {{"error_code", "PERMISSION_DENIED"},
                           {"message", "User does not have USE CATALOG on Catalog 'main'"}}}}}});
        }
        (*answer)["statement_id"] = id;
        return Json(*answer);
      }
      std::string value;
      if (!tables.Execute(sql, value)) {
        return Json({{"statement_id", id},
                     {"status",
                      {{"state", "FAILED"},
                       {"error", {{"error_code", "PERMISSION_DENIED"}, {"message", "nope"}}}}}});
      }
      boost::json::object o{{"statement_id", id}, {"status", {{"state", "SUCCEEDED"}}}};
      if (!value.empty()) o["result"] = {{"data_array", {{value}}}};
      return Json(o);
    }
    return Json({{"error_code", "NOT_FOUND"}}, 404);
  }
};

boost::json::object DatabricksDetails(int port) {
  return {{"host", "127.0.0.1"},
          {"port", port},
          {"endpoint", "/sql/1.0/warehouses/wh123"},
          {"catalog", "main"}};
}

TEST(ProbeHttpDatabricks, ReadSucceedsPollingTheStatement) {
  DatabricksFake fake;
  TestResult r = RunProbe(MakeConnection("databricks", DatabricksDetails(fake.server.port())),
                          {{"token", kDbxToken}});
  EXPECT_EQ(r.read, "SUCCESS") << Describe(r);
  EXPECT_EQ(Steps(r),
            "resolve:SUCCESS connect:SUCCESS tls:SUCCESS authenticate:SUCCESS query:SUCCESS");
  std::lock_guard lock(fake.mu);
  ASSERT_EQ(fake.submitted.size(), 1u);
  EXPECT_EQ(fake.submitted[0].at("catalog"), "main");
  EXPECT_EQ(fake.submitted[0].at("statement"), "SELECT 1");
}

TEST(ProbeHttpDatabricks, BadTokenIsAuthFailed) {
  DatabricksFake fake;
  std::map<std::string, std::string> secrets{{"token", "dapi-wrong-Token-999"}};
  TestResult r =
      RunProbe(MakeConnection("databricks", DatabricksDetails(fake.server.port())), secrets);
  EXPECT_EQ(Steps(r),
            "resolve:SUCCESS connect:SUCCESS tls:SUCCESS authenticate:FAILED/auth_failed "
            "query:SKIPPED")
      << Describe(r);
  ExpectNoSecrets(r, secrets);
}

TEST(ProbeHttpDatabricks, UnknownWarehouseIsNotFound) {
  DatabricksFake fake;
  auto details = DatabricksDetails(fake.server.port());
  details["endpoint"] = "/sql/1.0/warehouses/other";
  TestResult r = RunProbe(MakeConnection("databricks", details), {{"token", kDbxToken}});
  EXPECT_NE(Steps(r).find("authenticate:FAILED/not_found"), std::string::npos) << Describe(r);
}

TEST(ProbeHttpDatabricks, WriteSucceedsInTheWriteCatalog) {
  DatabricksFake fake;
  auto details = DatabricksDetails(fake.server.port());
  details["writeAccess"] = {{"writeCatalog", "scratch_cat"}, {"writeSchema", "probe"}};
  TestResult r = RunProbe(MakeConnection("databricks", details), {{"token", kDbxToken}});
  EXPECT_EQ(r.write, "SUCCESS") << Describe(r);
  std::lock_guard lock(fake.mu);
  EXPECT_EQ(fake.submitted.back().at("catalog"), "scratch_cat");
}

TEST(ProbeHttpDatabricks, StatementThatNeverAnswersTimesOut) {
  FakeServer hanging([](const FakeRequest&) { return FakeResponse{200, "", "", true}; });
  auto start = Clock::now();
  TestResult r = RunProbe(MakeConnection("databricks", DatabricksDetails(hanging.port()), 2),
                          {{"token", kDbxToken}});
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_LT(secs, 2 + test_support::kAnswerSlack.count());
  EXPECT_NE(Steps(r).find("authenticate:FAILED/timeout"), std::string::npos) << Describe(r);
}

// --- shared client ------------------------------------------------------------------------------

TEST(ProbeHttpClient, EgressDeniedAddressIsNeverRequested) {
  // The engine's resolve step refuses a denied endpoint before the driver runs.
  ProbeEngine::Options options;
  options.egress = EgressPolicy({*ParseCidr("127.0.0.0/8")}, {}, /*allow_loopback=*/true);
  ProbeEngine engine(options, FindDriver);
  TrinoFake fake;
  TestResult r = engine.RunTest(MakeConnection("starburst", TrinoDetails(fake.server.port())),
                                {{"password", kTrinoPassword}});
  EXPECT_NE(Steps(r).find("resolve:FAILED/egress_denied"), std::string::npos) << Describe(r);
  EXPECT_TRUE(fake.server.requests().empty());
}

// --- BigQuery -----------------------------------------------------------------------------------

constexpr const char* kBqToken = "ya29.bq-access-Token-31337";
constexpr const char* kBqEmail = "prober@proj-1.iam.gserviceaccount.com";
constexpr const char* kBqKeyId = "kid-7f3a";
constexpr const char* kBqScope = "https://www.googleapis.com/auth/bigquery";

// The service account's key pair, made once.
EVP_PKEY* BigQueryKey() {
  static EVP_PKEY* key = EVP_RSA_gen(2048);
  return key;
}

// The content of a Google service-account key file holding `key`.
boost::json::object ServiceAccountKeyFile(EVP_PKEY* key, const std::string& token_uri) {
  return {{"type", "service_account"},
          {"project_id", "proj-1"},
          {"private_key_id", kBqKeyId},
          {"private_key", PemPrivateKey(key)},
          {"client_email", kBqEmail},
          {"client_id", "107421"},
          {"auth_uri", "https://accounts.google.com/o/oauth2/auth"},
          {"token_uri", token_uri}};
}

// A query answer's rows: [{"f": [{"v": value}]}].
boost::json::array BigQueryRows(const std::string& value) {
  return {boost::json::object{{"f", boost::json::array{boost::json::object{{"v", value}}}}}};
}

FakeResponse GoogleError(int status, const char* reason, const std::string& message) {
  boost::json::object error{
      {"code", status},
      {"message", message},
      {"errors", boost::json::array{boost::json::object{
                     {"message", message}, {"domain", "global"}, {"reason", reason}}}}};
  return Json(boost::json::object{{"error", error}}, status);
}

// A protocol fake of Google's OAuth 2.0 token endpoint (the jwt-bearer grant a service account
// makes) and of the BigQuery REST API v2 (jobs.query, answering jobComplete=false for SELECT 1,
// then jobs.getQueryResults; DDL and DML run against FakeTables); the real services cannot run
// here. The token endpoint is a server of its own, as in production, and accepts an assertion only
// when its RS256 signature verifies with the service account's public key and its claims are
// right. Refusing one, it echoes it, as a careless server might.
// The BigQuery catalog of project proj-1: each table with its schema fields as tables.get gives
// them.
struct BigQuerySeedTable {
  std::string dataset, table, type, description;
  boost::json::array fields;
};

const std::vector<BigQuerySeedTable>& BigQuerySeed() {
  static const std::vector<BigQuerySeedTable> seed = [] {
    std::vector<BigQuerySeedTable> s;
    s.push_back({"analytics", "events", "TABLE", "Raw events",
                 boost::json::parse(R"([
        {"name": "id", "type": "INTEGER", "mode": "REQUIRED", "description": "event id"},
        {"name": "name", "type": "STRING", "maxLength": "100"},
        {"name": "tags", "type": "STRING", "mode": "REPEATED"},
        {"name": "payload", "type": "RECORD", "mode": "NULLABLE", "fields": [
          {"name": "a", "type": "INT64"},
          {"name": "b", "type": "RECORD", "fields": [{"name": "c", "type": "BOOL"}]}]},
        {"name": "amount", "type": "NUMERIC", "precision": "10", "scale": "2"},
        {"name": "at", "type": "TIMESTAMP"},
        {"name": "place", "type": "GEOGRAPHY"},
        {"name": "doc", "type": "JSON"}])")
                     .as_array()});
    s.push_back({"analytics", "events_v", "VIEW", "",
                 boost::json::parse(R"([{"name": "id", "type": "INTEGER"}])").as_array()});
    for (const char* t : {"t3", "t4", "t5"}) {
      s.push_back({"analytics", t, "TABLE", "",
                   boost::json::parse(R"([{"name": "x", "type": "BYTES"}])").as_array()});
    }
    return s;
  }();
  return seed;
}

struct BigQueryFake {
  enum class Query { kAnswer, kAccessDenied, kHang };
  CatalogSwitches catalog;

  // datasets.list (one dataset a page), tables.list (two tables a page) and tables.get, from
  // BigQuerySeed(); nullopt for other requests.
  std::optional<FakeResponse> Catalog(const FakeRequest& r) {
    static const std::regex route(
        R"(^/bigquery/v2/projects/proj-1/datasets(?:/([^/?]+)/tables(?:/([^/?]+))?)?(?:\?(.*))?$)");
    std::smatch m;
    if (r.method != "GET" || !std::regex_match(r.target, m, route)) return std::nullopt;
    ++catalog.catalog_requests;
    if (catalog.hang) return FakeResponse{200, "", "", true};
    if (catalog.fail) {
      return GoogleError(403, "accessDenied",
                         "Access Denied: Dataset proj-1:analytics: Permission "
                         "bigquery.tables.list denied");
    }
    std::smatch token;
    static const std::regex page_token(R"((?:^|&)pageToken=(\d+))");
    const std::string query = m[3];
    std::size_t start = std::regex_search(query, token, page_token) ? std::stoul(token[1]) : 0;
    auto page = [&](boost::json::array all, std::size_t per_page, const char* key) {
      boost::json::object o{{"kind", "bigquery#list"}};
      boost::json::array items;
      for (std::size_t i = start; i < all.size() && i < start + per_page; ++i) {
        items.push_back(all[i]);
      }
      o[key] = items;
      if (start + per_page < all.size()) o["nextPageToken"] = std::to_string(start + per_page);
      return Json(o);
    };
    if (!m[1].matched) {
      boost::json::array datasets;
      for (const char* d : {"analytics", "empty_ds"}) {
        datasets.push_back({{"datasetReference", {{"projectId", "proj-1"}, {"datasetId", d}}},
                            {"location", "EU"}});
      }
      return page(datasets, 1, "datasets");
    }
    boost::json::array tables;
    for (const BigQuerySeedTable& t : BigQuerySeed()) {
      if (t.dataset != m[1]) continue;
      if (m[2].matched && t.table == m[2]) {
        return Json({{"tableReference",
                      {{"projectId", "proj-1"}, {"datasetId", t.dataset}, {"tableId", t.table}}},
                     {"type", t.type},
                     {"description", t.description},
                     {"schema", {{"fields", t.fields}}}});
      }
      tables.push_back({{"tableReference",
                         {{"projectId", "proj-1"}, {"datasetId", t.dataset}, {"tableId", t.table}}},
                        {"type", t.type}});
    }
    if (m[2].matched) return GoogleError(404, "notFound", "Not found: Table " + std::string(m[2]));
    return page(tables, 2, "tables");
  }

  std::atomic<Query> query{Query::kAnswer};
  FakeTables tables;
  std::atomic<int> polls{0};
  std::mutex mu;
  std::optional<boost::json::object> jwt_header;  // of the last assertion accepted
  std::optional<boost::json::object> jwt_claims;
  std::vector<boost::json::object> submitted;  // jobs.query bodies
  FakeServer oauth{[this](const FakeRequest& r) { return Token(r); }};
  FakeServer api{[this](const FakeRequest& r) { return Api(r); }};

  std::string token_uri() const { return oauth.base() + "/token"; }

  FakeResponse Token(const FakeRequest& r) {
    std::map<std::string, std::string> form;
    for (std::size_t at = 0; at <= r.body.size();) {
      std::size_t end = std::min(r.body.find('&', at), r.body.size());
      std::string pair = r.body.substr(at, end - at);
      std::size_t eq = pair.find('=');
      if (eq != std::string::npos) form[pair.substr(0, eq)] = pair.substr(eq + 1);
      at = end + 1;
    }
    const std::string assertion = form["assertion"];
    auto claims = VerifyJwt(assertion, BigQueryKey());
    auto number = [&](const char* name) {
      const auto* v = claims ? claims->if_contains(name) : nullptr;
      return v && v->is_int64() ? v->as_int64() : 0;
    };
    bool ok = r.method == "POST" && r.target == "/token" && r.headers.count("content-type") &&
              r.headers.at("content-type") == "application/x-www-form-urlencoded" &&
              form["grant_type"] == "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer" &&
              claims && claims->at("iss") == kBqEmail && claims->at("scope") == kBqScope &&
              claims->at("aud") == boost::json::value(token_uri()) &&
              number("exp") - number("iat") == 3600;
    if (!ok) {
      return Json({{"error", "invalid_grant"},
                   {"error_description", "Invalid JWT Signature. assertion=" + assertion}},
                  400);
    }
    std::lock_guard lock(mu);
    jwt_claims = claims;
    jwt_header =
        boost::json::parse(*crypto::Base64UrlDecode(assertion.substr(0, assertion.find('.'))))
            .as_object();
    return Json({{"access_token", kBqToken}, {"expires_in", 3599}, {"token_type", "Bearer"}});
  }

  FakeResponse Api(const FakeRequest& r) {
    auto auth = r.headers.find("authorization");
    if (auth == r.headers.end() || auth->second != std::string("Bearer ") + kBqToken) {
      return GoogleError(401, "authError", "Request had invalid authentication credentials.");
    }
    if (auto answer = Catalog(r)) return *answer;
    const std::string jobs = "/bigquery/v2/projects/proj-1/queries";
    const boost::json::object job{{"projectId", "proj-1"}, {"jobId", "job_q1"}, {"location", "EU"}};
    if (r.method == "POST" && r.target == jobs) {
      auto body = boost::json::parse(r.body).as_object();
      std::string sql(body.at("query").as_string());
      {
        std::lock_guard lock(mu);
        submitted.push_back(body);
      }
      if (query == Query::kHang) return FakeResponse{200, "", "", true};
      if (query == Query::kAccessDenied) {
        return GoogleError(403, "accessDenied",
                           "Access Denied: Project proj-1: User does not have "
                           "bigquery.jobs.create permission in project proj-1.");
      }
      if (sql == "SELECT 1") return Json({{"jobReference", job}, {"jobComplete", false}});
      std::string value;
      // GoogleSQL has no VARCHAR: a CREATE TABLE using it fails as on the real service.
      if (sql.find("VARCHAR") != std::string::npos || !tables.Execute(sql, value)) {
        return GoogleError(400, "invalidQuery", "Syntax error in: " + sql);
      }
      boost::json::object answer{{"jobReference", job}, {"jobComplete", true}};
      if (!value.empty()) answer["rows"] = BigQueryRows(value);
      return Json(answer);
    }
    if (r.method == "GET" && r.target.rfind(jobs + "/job_q1?location=EU&timeoutMs=", 0) == 0) {
      ++polls;
      return Json({{"jobReference", job}, {"jobComplete", true}, {"rows", BigQueryRows("1")}});
    }
    return GoogleError(404, "notFound", "Not found: " + r.target);
  }
};

// Runs a bigQuery test against the API fake listening on `api_port`.
TestResult RunBigQuery(int api_port, const boost::json::object& details,
                       const std::map<std::string, std::string>& secrets, int timeout_secs = 10) {
  ProbeEngine::Options options = TrustingOptions();
  options.drivers.bigquery_api_url = "https://127.0.0.1:" + std::to_string(api_port);
  ProbeEngine engine(options, FindDriver);
  return engine.RunTest(MakeConnection("bigQuery", details, timeout_secs), secrets);
}

std::map<std::string, std::string> BigQuerySecrets(const boost::json::object& key_file) {
  return {{"serviceAccount", boost::json::serialize(key_file)}};
}

// No credential is in the result: not the key file, nor a line of its private key, nor an
// assertion (every JWT starts with "eyJ", base64url of '{"'), nor the access token.
void ExpectNoBigQueryCredentials(const TestResult& r,
                                 const std::map<std::string, std::string>& secrets) {
  ExpectNoSecrets(r, secrets);
  std::string text = Describe(r);
  EXPECT_EQ(text.find("eyJ"), std::string::npos) << text;
  EXPECT_EQ(text.find(kBqToken), std::string::npos) << text;
  auto key_file = ParseJson(secrets.at("serviceAccount"));
  if (const auto* pem = key_file && key_file->is_object()
                            ? key_file->as_object().if_contains("private_key")
                            : nullptr;
      pem && pem->is_string()) {
    std::string key(pem->as_string());
    std::string line = key.substr(key.find('\n') + 1, 40);
    EXPECT_EQ(text.find(line), std::string::npos) << text;
  }
}

boost::json::object BigQueryDetails() { return {{"projectId", "proj-1"}}; }

TEST(ProbeHttpBigQuery, ReadSucceedsAfterPollingAnUnfinishedQuery) {
  BigQueryFake fake;
  TestResult r =
      RunBigQuery(fake.api.port(), BigQueryDetails(),
                  BigQuerySecrets(ServiceAccountKeyFile(BigQueryKey(), fake.token_uri())));
  EXPECT_EQ(r.read, "SUCCESS") << Describe(r);
  EXPECT_EQ(r.write, "DISABLED");
  EXPECT_EQ(Steps(r),
            "resolve:SUCCESS connect:SUCCESS tls:SUCCESS authenticate:SUCCESS query:SUCCESS");
  EXPECT_EQ(fake.polls.load(), 1);

  std::lock_guard lock(fake.mu);
  ASSERT_TRUE(fake.jwt_claims) << "no assertion was accepted";
  EXPECT_EQ(fake.jwt_header->at("kid"), kBqKeyId);
  EXPECT_EQ(fake.jwt_claims->at("iss"), kBqEmail);
  EXPECT_EQ(fake.jwt_claims->at("scope"), kBqScope);
  EXPECT_EQ(fake.jwt_claims->at("aud"), boost::json::value(fake.token_uri()));
  EXPECT_NEAR(static_cast<double>(fake.jwt_claims->at("iat").as_int64()),
              static_cast<double>(std::time(nullptr)), 60);
  ASSERT_EQ(fake.submitted.size(), 1u);
  EXPECT_EQ(fake.submitted[0].at("query"), "SELECT 1");
  EXPECT_EQ(fake.submitted[0].at("useLegacySql"), false);
  std::int64_t wait = fake.submitted[0].at("timeoutMs").as_int64();
  EXPECT_GT(wait, 0);
  EXPECT_LE(wait, 10000);
}

TEST(ProbeHttpBigQuery, WriteCreatesTheTableInTheWriteDatasetAndDropsIt) {
  BigQueryFake fake;
  auto details = BigQueryDetails();
  details["writeAccess"] = {{"writeProject", "warehouse-w"}, {"writeDataset", "scratch"}};
  TestResult r =
      RunBigQuery(fake.api.port(), details,
                  BigQuerySecrets(ServiceAccountKeyFile(BigQueryKey(), fake.token_uri())));
  EXPECT_EQ(r.read, "SUCCESS") << Describe(r);
  EXPECT_EQ(r.write, "SUCCESS") << Describe(r);

  std::lock_guard lock(fake.tables.mu);
  EXPECT_TRUE(fake.tables.rows.empty());
  ASSERT_EQ(fake.tables.statements.size(), 4u) << Describe(r);
  std::smatch m;
  ASSERT_TRUE(std::regex_match(
      fake.tables.statements[0], m,
      std::regex(R"(CREATE TABLE (`warehouse-w`\.`scratch`\.`connreg_probe_[0-9a-f]{16}`) )"
                 R"(\(id INTEGER NOT NULL, marker STRING\(64\) NOT NULL\))")))
      << fake.tables.statements[0];
  const std::string table = m[1];
  EXPECT_EQ(fake.tables.statements[1].rfind("INSERT INTO " + table + " (id, marker) VALUES", 0),
            0u);
  EXPECT_EQ(fake.tables.statements[2], "SELECT marker FROM " + table + " WHERE id = 1");
  EXPECT_EQ(fake.tables.statements[3], "DROP TABLE IF EXISTS " + table);
}

TEST(ProbeHttpBigQuery, AssertionSignedWithAnotherKeyIsAuthFailed) {
  BigQueryFake fake;
  EVP_PKEY* other = EVP_RSA_gen(2048);
  auto secrets = BigQuerySecrets(ServiceAccountKeyFile(other, fake.token_uri()));
  TestResult r = RunBigQuery(fake.api.port(), BigQueryDetails(), secrets);
  EVP_PKEY_free(other);
  EXPECT_EQ(r.read, "FAILED");
  EXPECT_EQ(Steps(r),
            "resolve:SUCCESS connect:SUCCESS tls:SUCCESS authenticate:FAILED/auth_failed "
            "query:SKIPPED")
      << Describe(r);
  EXPECT_NE(Describe(r).find("invalid_grant"), std::string::npos) << Describe(r);
  ExpectNoBigQueryCredentials(r, secrets);  // the fake echoed the assertion
  std::lock_guard lock(fake.mu);
  EXPECT_TRUE(fake.submitted.empty());
}

TEST(ProbeHttpBigQuery, MalformedServiceAccountIsAuthFailed) {
  BigQueryFake fake;
  const auto good = ServiceAccountKeyFile(BigQueryKey(), fake.token_uri());
  auto without = [&](const char* field) {
    auto o = good;
    o.erase(field);
    return boost::json::serialize(o);
  };
  auto with = [&](const char* field, const char* value) {
    auto o = good;
    o[field] = value;
    return boost::json::serialize(o);
  };
  const std::pair<std::string, std::string> cases[] = {
      {"{\"private_key\": \"-----BEGIN PRIVATE KEY-----\\nsecretKeyMaterial", "not a JSON object"},
      {without("private_key"), "has no private_key"},
      {without("client_email"), "has no client_email"},
      {with("private_key",
            "-----BEGIN PRIVATE KEY-----\nsecretKeyMaterial\n-----END PRIVATE "
            "KEY-----\n"),
       "private_key"},
      {with("type", "authorized_user"), "not of type service_account"},
      {with("token_uri", "http://127.0.0.1:1/token"), "token_uri is not an https URL"},
  };
  for (const auto& [key_file, why] : cases) {
    std::map<std::string, std::string> secrets{{"serviceAccount", key_file}};
    TestResult r = RunBigQuery(fake.api.port(), BigQueryDetails(), secrets);
    EXPECT_EQ(Steps(r),
              "resolve:SUCCESS connect:SUCCESS tls:SUCCESS authenticate:FAILED/auth_failed "
              "query:SKIPPED")
        << Describe(r);
    EXPECT_NE(Describe(r).find(why), std::string::npos) << why << ": " << Describe(r);
    EXPECT_EQ(Describe(r).find("secretKeyMaterial"), std::string::npos) << Describe(r);
    ExpectNoBigQueryCredentials(r, secrets);
  }
  EXPECT_TRUE(fake.oauth.requests().empty());
  EXPECT_TRUE(fake.api.requests().empty());
}

TEST(ProbeHttpBigQuery, AccessDeniedOnQueryIsPermissionDenied) {
  BigQueryFake fake;
  fake.query = BigQueryFake::Query::kAccessDenied;
  auto secrets = BigQuerySecrets(ServiceAccountKeyFile(BigQueryKey(), fake.token_uri()));
  TestResult r = RunBigQuery(fake.api.port(), BigQueryDetails(), secrets);
  EXPECT_EQ(r.read, "FAILED");
  EXPECT_EQ(Steps(r),
            "resolve:SUCCESS connect:SUCCESS tls:SUCCESS authenticate:SUCCESS "
            "query:FAILED/permission_denied")
      << Describe(r);
  EXPECT_NE(Describe(r).find("bigquery.jobs.create"), std::string::npos) << Describe(r);
  ExpectNoBigQueryCredentials(r, secrets);
}

TEST(ProbeHttpBigQuery, SilentServerTimesOutWithinTheDeadline) {
  FakeServer silent([](const FakeRequest&) { return FakeResponse{}; }, FakeServer::Mode::kSilent);
  auto start = Clock::now();
  TestResult r = RunBigQuery(
      silent.port(), BigQueryDetails(),
      BigQuerySecrets(ServiceAccountKeyFile(BigQueryKey(), silent.base() + "/token")), 2);
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_LT(secs, 2 + test_support::kAnswerSlack.count());
  EXPECT_EQ(r.read, "FAILED");
  EXPECT_NE(Steps(r).find("FAILED/timeout"), std::string::npos) << Describe(r);
}

TEST(ProbeHttpBigQuery, QueryThatNeverAnswersTimesOut) {
  BigQueryFake fake;
  fake.query = BigQueryFake::Query::kHang;
  auto start = Clock::now();
  TestResult r =
      RunBigQuery(fake.api.port(), BigQueryDetails(),
                  BigQuerySecrets(ServiceAccountKeyFile(BigQueryKey(), fake.token_uri())), 2);
  double secs = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_LT(secs, 2 + test_support::kAnswerSlack.count());
  EXPECT_EQ(Steps(r),
            "resolve:SUCCESS connect:SUCCESS tls:SUCCESS authenticate:SUCCESS query:FAILED/timeout")
      << Describe(r);
}

// --- catalog listings (Driver::Introspect), each against its family's protocol fake -------------

// Collects what a driver reports; says stop after `stop_after` objects (-1: never).
class CollectingSink : public CatalogSink {
 public:
  explicit CollectingSink(int stop_after) : stop_after_(stop_after) {}
  bool Add(domain::WarehouseObject object) override {
    objects.push_back(std::move(object));
    return stop_after_ < 0 || static_cast<int>(objects.size()) < stop_after_;
  }
  std::vector<domain::WarehouseObject> objects;

 private:
  int stop_after_;
};

struct Listing {
  std::string steps;  // "connect:SUCCESS ... query:SUCCESS"
  std::string messages;
  std::vector<domain::WarehouseObject> objects;
  double seconds = 0;

  // "A/B/C" of every object, in the order reported.
  std::vector<std::string> Paths() const {
    std::vector<std::string> out;
    for (const auto& o : objects) {
      std::string p;
      for (const auto& e : o.path) p += (p.empty() ? "" : "/") + e;
      out.push_back(p + (o.kind == domain::inode_kind::kTable ? " (table)" : ""));
    }
    return out;
  }
  const domain::WarehouseObject* Find(const domain::CatalogPath& path) const {
    for (const auto& o : objects) {
      if (o.path == path) return &o;
    }
    return nullptr;
  }
};

// Runs `connection`'s Introspect as the engine runs a test's Run: the endpoint resolved and
// checked, the secrets' scrubber on the step log, the deadline `timeout_secs` away.
Listing ListCatalog(const domain::Connection& connection,
                    const std::map<std::string, std::string>& secrets, CatalogRequest request,
                    const DriverSettings& settings, int timeout_secs = 10, int stop_after = -1) {
  Listing out;
  const Driver* driver = FindDriver(connection.type);
  std::string why;
  std::optional<Endpoint> endpoint = driver->Target(connection.details, settings, why);
  if (!endpoint) {
    out.steps = "target:FAILED " + why;
    return out;
  }
  const EgressPolicy egress({}, {}, /*allow_loopback=*/true);
  Resolution resolved = ResolveAndCheck(endpoint->host, egress);
  Scrubber scrubber(secrets);
  StepLog steps(scrubber);
  auto start = Clock::now();
  ProbeRun run{connection.details,
               secrets,
               false,
               *endpoint,
               resolved.addresses,
               Deadline::In(std::chrono::seconds(timeout_secs)),
               steps,
               egress,
               settings};
  CollectingSink sink(stop_after);
  CatalogRun catalog{run, request, sink};
  driver->Introspect(catalog);
  out.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (const Step& st : steps.Close(code::kProtocolError, "the driver stopped in this step")) {
    out.steps += (out.steps.empty() ? "" : " ") + st.name + ":" + st.status +
                 (st.code.empty() ? "" : "/" + st.code);
    out.messages += st.message + "\n";
  }
  out.objects = std::move(sink.objects);
  return out;
}

constexpr const char* kListed = "connect:SUCCESS tls:SUCCESS authenticate:SUCCESS query:SUCCESS";

// One family's fake, connection and expectations for the shared catalog tests.
struct CatalogFamily {
  std::string name;
  // Starts the fake; the connection to it, its secrets, and the switches of its catalog.
  std::function<std::shared_ptr<void>(domain::Connection&, std::map<std::string, std::string>&,
                                      DriverSettings&, CatalogSwitches*&)>
      start;
  std::string secret_field;       // replaced by a wrong value for the auth failure
  std::vector<std::string> full;  // Paths() of the full listing, in the order reported
  domain::CatalogPath table;      // a table, for prefix and levels 0
  std::vector<SeedColumn> table_columns;
  std::string table_comment;
  domain::CatalogPath wide;  // a table whose listing takes more than one page (empty: none)
  std::size_t wide_columns = 0;
  std::string denied_code;  // of an error answer to the catalog queries
};

DriverSettings TrustingSettings() { return TrustingOptions().drivers; }

std::vector<CatalogFamily> CatalogFamilies() {
  std::vector<CatalogFamily> f;
  f.push_back({"snowflake",
               [](domain::Connection& c, std::map<std::string, std::string>& secrets,
                  DriverSettings& settings, CatalogSwitches*& switches) {
                 auto fake = std::make_shared<SnowflakeFake>();
                 c = MakeConnection("snowflake", SnowflakeDetails(fake->server.port()));
                 secrets = {{"password", kSfPassword}};
                 settings = TrustingSettings();
                 switches = &fake->catalog;
                 return std::shared_ptr<void>(fake);
               },
               "password",
               {"EMPTY_DB", "SALES", "SALES/PUBLIC", "SALES/STAGING",
                "SALES/PUBLIC/Mixed Case (table)", "SALES/PUBLIC/ORDERS (table)",
                "SALES/PUBLIC/ORDERS_V (table)", "SALES/STAGING/WIDE (table)"},
               {"SALES", "PUBLIC", "ORDERS"},
               {{"ID", "NUMBER(38,0)", false, "order id"},
                {"NOTE", "TEXT(16777216)"},
                {"CREATED", "TIMESTAMP_NTZ"},
                {"ATTRS", "VARIANT"},
                {"TAGS", "ARRAY"},
                {"PLACE", "GEOGRAPHY"}},
               "All orders",
               {"SALES", "STAGING", "WIDE"},
               1003,
               "permission_denied"});
  f.push_back({"starburst",
               [](domain::Connection& c, std::map<std::string, std::string>& secrets,
                  DriverSettings& settings, CatalogSwitches*& switches) {
                 auto fake = std::make_shared<TrinoFake>();
                 c = MakeConnection("starburst", TrinoDetails(fake->server.port()));
                 secrets = {{"password", kTrinoPassword}};
                 settings = TrustingSettings();
                 switches = &fake->catalog;
                 return std::shared_ptr<void>(fake);
               },
               "password",
               {"hive", "hive/empty", "hive/web", "hive/web/page_views (table)",
                "hive/web/recent_views (table)", "tpch", "tpch/tiny", "tpch/tiny/nation (table)"},
               {"hive", "web", "page_views"},
               {{"user_id", "bigint", false},
                {"url", "varchar(2048)"},
                {"tags", "array(varchar)"},
                {"ctx", "row(a integer, b varchar)"},
                {"at", "timestamp(3) with time zone"},
                {"amount", "decimal(10,2)"}},
               "",
               {},
               0,
               "permission_denied"});
  f.push_back(
      {"databricks",
       [](domain::Connection& c, std::map<std::string, std::string>& secrets,
          DriverSettings& settings, CatalogSwitches*& switches) {
         auto fake = std::make_shared<DatabricksFake>();
         c = MakeConnection("databricks", DatabricksDetails(fake->server.port()));
         secrets = {{"token", kDbxToken}};
         settings = TrustingSettings();
         switches = &fake->catalog;
         return std::shared_ptr<void>(fake);
       },
       "token",
       {"main", "samples", "main/empty", "main/sales", "samples/tpch", "main/sales/orders (table)",
        "main/sales/orders_v (table)", "samples/tpch/wide (table)"},
       {"main", "sales", "orders"},
       {{"id", "bigint", false, "order id"},
        {"amount", "decimal(10,2)"},
        {"items", "array<string>"},
        {"buyer", "struct<name:string,age:int>"},
        {"ts", "timestamp"},
        {"raw", "binary"}},
       "Orders",
       {"samples", "tpch", "wide"},
       1002,
       "permission_denied"});
  f.push_back({"bigQuery",
               [](domain::Connection& c, std::map<std::string, std::string>& secrets,
                  DriverSettings& settings, CatalogSwitches*& switches) {
                 auto fake = std::make_shared<BigQueryFake>();
                 c = MakeConnection("bigQuery", BigQueryDetails());
                 secrets = BigQuerySecrets(ServiceAccountKeyFile(BigQueryKey(), fake->token_uri()));
                 settings = TrustingSettings();
                 settings.bigquery_api_url = fake->api.base();
                 switches = &fake->catalog;
                 return std::shared_ptr<void>(fake);
               },
               "serviceAccount",
               {"proj-1", "proj-1/analytics", "proj-1/analytics/events (table)",
                "proj-1/analytics/events_v (table)", "proj-1/analytics/t3 (table)",
                "proj-1/analytics/t4 (table)", "proj-1/analytics/t5 (table)", "proj-1/empty_ds"},
               {"proj-1", "analytics", "events"},
               {{"id", "INTEGER", false, "event id"},
                {"name", "STRING(100)"},
                {"tags", "ARRAY<STRING>", false},
                {"payload", "STRUCT<a INT64, b STRUCT<c BOOL>>"},
                {"amount", "NUMERIC(10, 2)"},
                {"at", "TIMESTAMP"},
                {"place", "GEOGRAPHY"},
                {"doc", "JSON"}},
               "Raw events",
               {},
               0,
               "permission_denied"});
  return f;
}

class CatalogHttpDrivers : public ::testing::TestWithParam<CatalogFamily> {
 protected:
  void SetUp() override { fake_ = GetParam().start(connection_, secrets_, settings_, switches_); }
  Listing List(CatalogRequest request, int timeout_secs = 10, int stop_after = -1) {
    return ListCatalog(connection_, secrets_, std::move(request), settings_, timeout_secs,
                       stop_after);
  }

  std::shared_ptr<void> fake_;
  domain::Connection connection_;
  std::map<std::string, std::string> secrets_;
  DriverSettings settings_;
  CatalogSwitches* switches_ = nullptr;
};

std::vector<domain::WarehouseColumn> Columns(const std::vector<SeedColumn>& seed) {
  std::vector<domain::WarehouseColumn> out;
  for (const SeedColumn& c : seed) out.push_back({c.name, c.type, c.nullable, c.comment});
  return out;
}

// Against the family's protocol fake: everything the connection sees, scopes (also empty ones)
// and tables and views, system scopes left out, names as the warehouse spells them, each table
// once with its columns in ordinal order, types as the warehouse prints them, and comments.
TEST_P(CatalogHttpDrivers, FullListingReportsScopesTablesAndColumns) {
  const CatalogFamily& family = GetParam();
  Listing l = List({});
  ASSERT_EQ(l.steps, kListed) << l.messages;
  EXPECT_EQ(l.Paths(), family.full);
  const domain::WarehouseObject* table = l.Find(family.table);
  ASSERT_NE(table, nullptr);
  EXPECT_EQ(table->kind, domain::inode_kind::kTable);
  EXPECT_EQ(table->comment, family.table_comment);
  EXPECT_EQ(table->columns, Columns(family.table_columns));
  // No scope of a path is a system scope (the fakes' catalogs hold some).
  for (const auto& o : l.objects) {
    std::size_t scopes = o.kind == domain::inode_kind::kTable ? o.path.size() - 1 : o.path.size();
    for (std::size_t i = 0; i < scopes; ++i) {
      EXPECT_FALSE(domain::IsSystemScope(o.path[i])) << o.path[i];
    }
  }
}

// Against the family's protocol fake: a listing that takes more than one page (LIMIT/OFFSET
// pages, nextUri answers or pageToken pages) is followed to its end.
TEST_P(CatalogHttpDrivers, PaginationIsFollowed) {
  const CatalogFamily& family = GetParam();
  Listing l = List({});
  ASSERT_EQ(l.steps, kListed) << l.messages;
  if (!family.wide.empty()) {
    const domain::WarehouseObject* wide = l.Find(family.wide);
    ASSERT_NE(wide, nullptr);
    ASSERT_EQ(wide->columns.size(), family.wide_columns);
    EXPECT_EQ(wide->columns.back().name, "c" + std::to_string(family.wide_columns - 1));
    for (std::size_t i = 0; i < wide->columns.size(); ++i) {
      char name[24];
      std::snprintf(name, sizeof name, "c%04zu", i);
      ASSERT_EQ(wide->columns[i].name, name);
    }
  }
  // Every object once, in spite of the page boundaries.
  std::set<std::vector<std::string>> seen;
  for (const auto& o : l.objects) EXPECT_TRUE(seen.insert(o.path).second) << o.path.back();
}

// Against the family's protocol fake: a table path with levels 0 reports that table alone, with
// its columns; a scope prefix narrows the listing to that subtree.
TEST_P(CatalogHttpDrivers, PrefixAndLevelsNarrowTheListing) {
  const CatalogFamily& family = GetParam();
  Listing one = List({family.table, 0});
  ASSERT_EQ(one.steps, kListed) << one.messages;
  ASSERT_EQ(one.objects.size(), 1u) << ::testing::PrintToString(one.Paths());
  EXPECT_EQ(one.objects[0].path, family.table);
  EXPECT_EQ(one.objects[0].columns, Columns(family.table_columns));

  domain::CatalogPath scope(family.table.begin(), family.table.end() - 1);
  Listing sub = List({scope, -1});
  ASSERT_EQ(sub.steps, kListed) << sub.messages;
  std::vector<std::string> expected;
  std::string key = scope[0] + "/" + scope[1];
  for (const std::string& p : family.full) {
    if (p == key || p.rfind(key + "/", 0) == 0) expected.push_back(p);
  }
  EXPECT_EQ(sub.Paths(), expected);

  // The top level alone.
  Listing top = List({{}, 1});
  ASSERT_EQ(top.steps, kListed) << top.messages;
  for (const auto& o : top.objects) EXPECT_EQ(o.path.size(), 1u) << o.path[0];
  EXPECT_FALSE(top.objects.empty());

  // A name the warehouse does not have: nothing, and no failure.
  Listing none = List({{scope[0], "no such scope"}, -1});
  EXPECT_EQ(none.steps, kListed) << none.messages;
  EXPECT_TRUE(none.objects.empty()) << ::testing::PrintToString(none.Paths());
}

// Against the family's protocol fake: a catalog query the warehouse refuses fails the query step
// with the contract's code.
TEST_P(CatalogHttpDrivers, ErrorAnswerFailsTheQueryStep) {
  switches_->fail = true;
  Listing l = List({});
  EXPECT_EQ(l.steps, "connect:SUCCESS tls:SUCCESS authenticate:SUCCESS query:FAILED/" +
                         GetParam().denied_code)
      << l.messages;
  EXPECT_GT(switches_->catalog_requests.load(), 0);
}

// Against the family's protocol fake: a wrong credential fails authenticate, no catalog query
// is sent, and the credential is in no message.
TEST_P(CatalogHttpDrivers, AuthFailureStopsBeforeTheListing) {
  const CatalogFamily& family = GetParam();
  std::string wrong = "wrong-Credential-4242";
  if (family.name == "bigQuery") {
    EVP_PKEY* other = EVP_RSA_gen(2048);
    const std::string token_uri(
        boost::json::parse(secrets_.at("serviceAccount")).at("token_uri").as_string());
    wrong = boost::json::serialize(ServiceAccountKeyFile(other, token_uri));
    EVP_PKEY_free(other);
  }
  secrets_[family.secret_field] = wrong;
  Listing l = List({});
  EXPECT_EQ(l.steps, "connect:SUCCESS tls:SUCCESS authenticate:FAILED/auth_failed") << l.messages;
  EXPECT_TRUE(l.objects.empty());
  EXPECT_EQ(switches_->catalog_requests.load(), 0);
  EXPECT_EQ(l.messages.find(wrong), std::string::npos) << l.messages;
}

// Against the family's protocol fake: a sink that says stop ends the listing at once, SUCCESS.
TEST_P(CatalogHttpDrivers, SinkStoppingEndsTheListing) {
  Listing l = List({}, 10, /*stop_after=*/2);
  EXPECT_EQ(l.steps, kListed) << l.messages;
  EXPECT_EQ(l.objects.size(), 2u);
}

// Against the family's protocol fake: a catalog query that never answers ends by the deadline
// with a `timeout` step.
TEST_P(CatalogHttpDrivers, DeadlineEndsAHangingListing) {
  switches_->hang = true;
  Listing l = List({}, 2);
  EXPECT_LT(l.seconds, 2 + test_support::kAnswerSlack.count());
  EXPECT_EQ(l.steps, "connect:SUCCESS tls:SUCCESS authenticate:SUCCESS query:FAILED/timeout")
      << l.messages;
}

INSTANTIATE_TEST_SUITE_P(ProtocolFakes, CatalogHttpDrivers, ::testing::ValuesIn(CatalogFamilies()),
                         [](const auto& info) { return info.param.name; });

// The printed types of these families fall in the contract's type families.
TEST(CatalogHttpDriverTypes, PrintedTypesMapToTheirFamilies) {
  const std::pair<const char*, std::string_view> cases[] = {
      {"NUMBER(38,0)", domain::type_family::kNumber},
      {"TEXT(16777216)", domain::type_family::kText},
      {"TIMESTAMP_NTZ", domain::type_family::kDatetime},
      {"VARIANT", domain::type_family::kVariant},
      {"ARRAY", domain::type_family::kArray},
      {"GEOGRAPHY", domain::type_family::kGeography},
      {"FLOAT", domain::type_family::kNumber},
      {"bigint", domain::type_family::kNumber},
      {"varchar(2048)", domain::type_family::kText},
      {"array(varchar)", domain::type_family::kArray},
      {"row(a integer, b varchar)", domain::type_family::kObject},
      {"timestamp(3) with time zone", domain::type_family::kDatetime},
      {"decimal(10,2)", domain::type_family::kNumber},
      {"array<string>", domain::type_family::kArray},
      {"struct<name:string,age:int>", domain::type_family::kObject},
      {"binary", domain::type_family::kBinary},
      {"double", domain::type_family::kNumber},
      {"INTEGER", domain::type_family::kNumber},
      {"STRING(100)", domain::type_family::kText},
      {"ARRAY<STRING>", domain::type_family::kArray},
      {"STRUCT<a INT64, b STRUCT<c BOOL>>", domain::type_family::kObject},
      {"NUMERIC(10, 2)", domain::type_family::kNumber},
      {"TIMESTAMP", domain::type_family::kDatetime},
      {"JSON", domain::type_family::kVariant},
      {"BYTES", domain::type_family::kBinary},
  };
  for (const auto& [printed, family] : cases) {
    EXPECT_EQ(domain::TypeFamily(printed), family) << printed;
  }
  // Nested types nest in the type object.
  auto t = domain::ColumnTypeJson("STRUCT<a INT64, b STRUCT<c BOOL>>", true);
  EXPECT_EQ(boost::json::serialize(t.at("fields").at(1).at("type").at("fields").at(0)),
            R"({"name":"c","type":{"type":"logical","warehouseType":"BOOL","nullable":true}})");
  EXPECT_EQ(domain::ColumnTypeJson("ARRAY<STRING>", false).at("elementType").at("type"), "text");
  EXPECT_EQ(
      domain::ColumnTypeJson("struct<name:string,age:int>", true).at("fields").at(1).at("name"),
      "age");
}

}  // namespace
}  // namespace connreg::probe
