// Snowflake through the REST protocol its official connectors speak:
//   POST /session/v1/login-request  (password, or key pair: an RS256 JWT signed with privateKey)
//     -> data.token                 = the authenticate step
//   POST /queries/v1/query-request  (Authorization: Snowflake Token="...") running SELECT 1,
//     following data.getResultUrl while the query is still running = the query step
//   POST /session?delete=true       (logout, best effort)
// Snowflake answers most errors with HTTP 200 and {"success": false, "code": "...", "message"}.
#include "probe/drivers/snowflake/snowflake.h"

#include <array>
#include <chrono>
#include <ctime>
#include <thread>
#include <utility>

#include <boost/json/serialize.hpp>

#include "crypto/random.h"
#include "probe/drivers/common/details_fields.h"
#include "probe/drivers/common/http_client.h"
#include "probe/drivers/common/sql_probe.h"

namespace connreg::probe {
namespace {

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// The code of a Snowflake error in a query answer.
std::string_view CodeForSnowflakeQueryError(std::string_view c) {
  if (c == "390112" || c == "390114" || c == "390111") return code::kAuthFailed;  // session gone
  if (c == "002003" || c == "002043") return code::kNotFound;  // object does not exist
  if (c == "003001" || c == "003540") return code::kPermissionDenied;
  if (c == "000604" || c == "000630") return code::kTimeout;  // canceled, statement timeout
  return code::kProtocolError;
}

// The code of a failed login: 3902xx name a warehouse, database, schema or role that does not
// exist (or is not granted); the rest of the 390xxx login errors reject the credentials.
std::string_view CodeForSnowflakeLoginError(std::string_view c) {
  if (c.starts_with("3902")) return code::kNotFound;
  return code::kAuthFailed;
}

// An identifier as Snowflake SQL: plain names unquoted (Snowflake folds them to upper case, as a
// user typing them would), anything else double-quoted.
std::string SnowflakeIdentifier(std::string_view name) {
  bool plain =
      !name.empty() && (std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_');
  for (char ch : name) {
    plain = plain && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '$');
  }
  return plain ? std::string(name) : QuoteDelimited(name, '"');
}

std::optional<SqlOutcome> Failure(std::string_view c, std::string message) {
  SqlOutcome f;
  f.code = c;
  f.message = std::move(message);
  return f;
}

class SnowflakeSession : public SqlSession {
 public:
  SnowflakeSession(ProbeRun& run, HttpSession& http, std::string token)
      : run_(run), http_(http), token_(std::move(token)) {}

  SqlOutcome Execute(std::string_view sql) override {
    if (!usable_) return *Failure(code::kProtocolError, "the session is no longer usable");
    if (sql != "SELECT 1" && !write_context_set_) {
      // The write statements run in writeDatabase (and materializationWarehouse, when set).
      write_context_set_ = true;
      if (std::string wh = WriteAccessString(run_.details, "materializationWarehouse");
          !wh.empty()) {
        SqlOutcome o = Run("USE WAREHOUSE " + SnowflakeIdentifier(wh));
        if (!o.ok) return o;
      }
      if (std::string db = WriteAccessString(run_.details, "writeDatabase"); !db.empty()) {
        SqlOutcome o = Run("USE DATABASE " + SnowflakeIdentifier(db));
        if (!o.ok) return o;
      }
    }
    return Run(sql);
  }

  std::string QuoteIdentifier(std::string_view name) override { return SnowflakeIdentifier(name); }
  bool usable() const override { return usable_; }

  void Logout() {
    HttpRequest req;
    req.method = "POST";
    req.url = http_.BaseUrl(true) + "/session?delete=true&request_id=" + crypto::NewUuid4();
    req.headers = Headers();
    HttpResponse r;
    (void)http_.Perform(req, r);
  }

 private:
  std::vector<std::string> Headers() const {
    return {"Authorization: Snowflake Token=\"" + token_ + "\"", "Accept: application/snowflake",
            "Content-Type: application/json"};
  }

  SqlOutcome Run(std::string_view sql) {
    boost::json::object body{
        {"sqlText", sql},
        {"asyncExec", false},
        {"sequenceId", ++sequence_},
        {"querySubmissionTime", std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count()}};
    HttpRequest req;
    req.method = "POST";
    req.url = http_.BaseUrl(true) + "/queries/v1/query-request?requestId=" + crypto::NewUuid4();
    req.headers = Headers();
    req.body = boost::json::serialize(body);
    for (;;) {
      HttpResponse r;
      if (auto err = http_.Perform(req, r)) {
        if (err->code == code::kTimeout) usable_ = false;
        return *Failure(err->code, err->message);
      }
      if (r.status != 200) return *Failure(CodeForHttpStatus(r.status), http_.Describe(r));
      auto json = ParseJson(r.body);
      if (!json || !json->is_object()) {
        return *Failure(code::kProtocolError, "the answer is not a Snowflake query response");
      }
      const auto& o = json->get_object();
      const auto* data = o.if_contains("data");
      const boost::json::object* d = data && data->is_object() ? &data->get_object() : nullptr;
      std::string c = DetailString(o, "code");
      const auto* success = o.if_contains("success");
      if (c == "333333" || c == "333334") {  // still running: poll its result URL
        std::string path = d ? DetailString(*d, "getResultUrl") : "";
        if (path.empty() || path.front() != '/') {
          return *Failure(code::kProtocolError, "a running query came without a result URL");
        }
        if (run_.deadline.remaining() < std::chrono::milliseconds(300)) {
          usable_ = false;
          return *Failure(code::kTimeout, "the query did not finish before the test's deadline");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        req = HttpRequest{};
        req.url = http_.BaseUrl(true) + path;
        req.headers = Headers();
        continue;
      }
      if (!success || !success->is_bool() || !success->get_bool()) {
        std::string message = DetailString(o, "message");
        return *Failure(CodeForSnowflakeQueryError(c),
                        message.empty() && c.empty()
                            ? "query failed"
                            : http_.Quote((c.empty() ? "" : c + ": ") + message));
      }
      SqlOutcome out;
      out.ok = true;
      const auto* rowset = d ? d->if_contains("rowset") : nullptr;
      if (rowset && rowset->is_array() && !rowset->get_array().empty() &&
          rowset->get_array()[0].is_array() && !rowset->get_array()[0].get_array().empty()) {
        const auto& v = rowset->get_array()[0].get_array()[0];
        out.value = v.is_string() ? std::string(v.get_string()) : boost::json::serialize(v);
      }
      return out;
    }
  }

  ProbeRun& run_;
  HttpSession& http_;
  std::string token_;
  std::int64_t sequence_ = 0;
  bool write_context_set_ = false;
  bool usable_ = true;
};

class SnowflakeDriver : public Driver {
 public:
  int PathDepth() const override { return 3; }
  // TODO(catalog): the snowflake family's introspection.
  void Introspect(CatalogRun& run) const override {
    run.probe.steps.Add(step::kQuery, status::kFailed, code::kDriverUnavailable,
                        "this server cannot list a snowflake catalog yet");
  }
  std::optional<Endpoint> Target(const boost::json::object& details, const DriverSettings&,
                                 std::string& why) const override {
    std::string host = DetailString(details, "host");
    if (host.empty()) host = DetailString(details, "server");
    if (host.empty()) {
      std::string account = DetailString(details, "account");
      if (account.empty()) {
        why = "details.account or details.host is missing";
        return std::nullopt;
      }
      host = account + ".snowflakecomputing.com";
    }
    return Endpoint{host, DetailInt(details, "port", 443)};
  }

  bool UsesTls(const boost::json::object&) const override { return true; }

  void Run(ProbeRun& run) const override {
    HttpSession http(run);
    if (!http.Open(true)) return;
    run.steps.Begin(step::kAuthenticate);
    std::string token;
    if (!Login(run, http, token)) return;
    run.steps.Pass();
    SnowflakeSession session(run, http, std::move(token));
    RunSqlSteps(run, session, WriteAccessString(run.details, "writeSchema"));
    if (session.usable() && run.deadline.remaining() > std::chrono::milliseconds(500)) {
      session.Logout();
    }
  }

 private:
  // The account name the login names: details.account, else the first label of the host; its
  // part before the first '.' (a region or cloud suffix is not part of the name).
  static std::string AccountName(const ProbeRun& run) {
    std::string account = DetailString(run.details, "account");
    if (account.empty()) account = run.endpoint.host;
    return account.substr(0, account.find('.'));
  }

  static bool Login(ProbeRun& run, HttpSession& http, std::string& token) {
    auto secret = [&](const char* name) {
      auto it = run.secrets.find(name);
      return it == run.secrets.end() ? std::string() : it->second;
    };
    const std::string user = DetailString(run.details, "user");
    const std::string account = AccountName(run);
    boost::json::object data{
        {"CLIENT_APP_ID", "connreg"},
        {"CLIENT_APP_VERSION", CONNREG_VERSION},
        {"ACCOUNT_NAME", Upper(account)},
        {"LOGIN_NAME", user},
        {"CLIENT_ENVIRONMENT", boost::json::object{{"APPLICATION", "connreg"}}}};
    if (std::string pem = secret("privateKey"); !pem.empty()) {
      std::string error;
      SigningKeyPtr key = LoadRsaPrivateKey(pem, secret("privateKeyPassphrase"), error);
      if (!key) {
        run.steps.Fail(step::kAuthenticate, code::kAuthFailed, error);
        return false;
      }
      const std::string subject = Upper(account) + "." + Upper(user);
      const std::int64_t now = std::time(nullptr);
      boost::json::object claims{{"iss", subject + "." + PublicKeyFingerprint(*key)},
                                 {"sub", subject},
                                 {"iat", now},
                                 {"exp", now + 60}};
      std::string jwt =
          SignJwtRs256(*key, boost::json::object{{"alg", "RS256"}, {"typ", "JWT"}}, claims, error);
      if (jwt.empty()) {
        run.steps.Fail(step::kAuthenticate, code::kAuthFailed, error);
        return false;
      }
      data["AUTHENTICATOR"] = "SNOWFLAKE_JWT";
      data["TOKEN"] = jwt;
    } else {
      data["PASSWORD"] = secret("password");
    }

    std::string query = "?request_id=" + crypto::NewUuid4();
    auto param = [&](const char* name, const std::string& value) {
      if (!value.empty()) query += std::string("&") + name + "=" + UrlEncode(value);
    };
    param("warehouse", DetailString(run.details, "warehouse"));
    param("roleName", DetailString(run.details, "role"));
    param("databaseName", DetailString(run.details, "database"));
    param("schemaName", DetailString(run.details, "schema"));

    HttpRequest req;
    req.method = "POST";
    req.url = http.BaseUrl(true) + "/session/v1/login-request" + query;
    req.headers = {"Content-Type: application/json", "Accept: application/json"};
    req.body = boost::json::serialize(boost::json::object{{"data", std::move(data)}});
    HttpResponse r;
    if (auto err = http.Perform(req, r)) {
      run.steps.Fail(step::kAuthenticate, err->code, err->message);
      return false;
    }
    if (r.status != 200) {
      run.steps.Fail(step::kAuthenticate, CodeForHttpStatus(r.status), http.Describe(r));
      return false;
    }
    auto json = ParseJson(r.body);
    if (!json || !json->is_object()) {
      run.steps.Fail(step::kAuthenticate, code::kProtocolError,
                     "the answer is not a Snowflake login response");
      return false;
    }
    const auto& o = json->get_object();
    const auto* success = o.if_contains("success");
    if (!success || !success->is_bool() || !success->get_bool()) {
      std::string c = DetailString(o, "code");
      std::string message = DetailString(o, "message");
      run.steps.Fail(step::kAuthenticate, CodeForSnowflakeLoginError(c),
                     message.empty() && c.empty()
                         ? "login failed"
                         : http.Quote((c.empty() ? "" : c + ": ") + message));
      return false;
    }
    const auto* d = o.if_contains("data");
    if (d && d->is_object()) token = DetailString(d->get_object(), "token");
    if (token.empty()) {
      run.steps.Fail(step::kAuthenticate, code::kProtocolError, "the login answer has no token");
      return false;
    }
    return true;
  }
};

}  // namespace

namespace {

// What the table cannot say: "account or host", exactly one login (user and password, user and
// privateKey, or useOauth: true) agreeing with authType, and writeAccess in one of two shapes.
Status CheckSnowflake(const domain::DetailsView& d) {
  if (!d.Has("account") && !d.Has("host")) {
    return Error::BadRequest("details.account or details.host is required");
  }
  const std::string_view auth_type = d.String("authType");

  std::vector<std::string_view> logins;
  if (d.SecretSet("password")) logins.push_back("password");
  if (d.SecretSet("privateKey")) logins.push_back("privateKey");
  if (d.OauthOn()) logins.push_back("useOauth");
  if (logins.empty()) {
    if (auth_type == "basic-auth") return Error::BadRequest("details.password is required");
    if (auth_type == "key-pair") return Error::BadRequest("details.privateKey is required");
    if (auth_type == "oauth") {
      return Error::BadRequest("details.useOauth must be true when details.authType is oauth");
    }
    return Error::BadRequest("details.password is required: a " + std::string(d.type()) +
                             " connection needs one login, user and password, user and "
                             "privateKey, or useOauth: true");
  }
  std::string_view preferred = auth_type == "basic-auth" ? "password"
                               : auth_type == "key-pair" ? "privateKey"
                               : auth_type == "oauth"    ? "useOauth"
                                                         : "";
  if (auto s = d.OneLogin(logins, preferred); !s) return s;

  const std::string_view login = logins.front();
  if (!auth_type.empty() && login != preferred) {
    static constexpr std::array<std::pair<std::string_view, std::string_view>, 3> kDescribe{{
        {"password", "user and password"},
        {"privateKey", "user and privateKey"},
        {"useOauth", "useOauth: true"},
    }};
    std::string_view described;
    for (const auto& [l, text] : kDescribe) {
      if (l == login) described = text;
    }
    return Error::BadRequest("details.authType is " + std::string(auth_type) +
                             " but the login is " + std::string(described));
  }
  if (login != "useOauth" && !d.Has("user")) return Error::BadRequest("details.user is required");
  if (d.SecretSet("privateKeyPassphrase") && !d.SecretSet("privateKey")) {
    return Error::BadRequest(
        "details.privateKeyPassphrase needs details.privateKey; send \"privateKeyPassphrase\": "
        "null to drop it");
  }
  if (const auto* wa = d.visible().if_contains("writeAccess")) {
    const auto& w = wa->get_object();
    const bool location = w.contains("writeDatabase") || w.contains("writeSchema");
    if (location || !w.contains("materializationWarehouse")) {
      for (std::string_view f : {"writeDatabase", "writeSchema"}) {
        if (!w.contains(f)) {
          return Error::BadRequest("details.writeAccess." + std::string(f) + " is required");
        }
      }
    }
  }
  return OkStatus();
}

}  // namespace

std::vector<WarehouseType> SnowflakeTypes() {
  using domain::Kind, domain::Opt, domain::Nested;
  static const SnowflakeDriver* const driver = new SnowflakeDriver;
  return {
      {{"snowflake",
        {Opt("account", Kind::kAccount).Endpoint(), Opt("host", Kind::kHost).Endpoint(),
         Opt("server", Kind::kHost).Endpoint(), Opt("user", Kind::kString),
         Opt("password", Kind::kPassword), Opt("privateKey", Kind::kKeySecret),
         Opt("privateKeyPassphrase", Kind::kSecret), Opt("useOauth", Kind::kBool),
         Opt("warehouse", Kind::kString), Opt("role", Kind::kString),
         Opt("database", Kind::kString), Opt("schema", Kind::kString),
         domain::Choice("authType", {"basic-auth", "key-pair", "oauth"}),
         // Two accepted shapes; CheckSnowflake decides which fields are required.
         Nested("writeAccess",
                {Opt("writeDatabase", Kind::kString), Opt("writeSchema", Kind::kString),
                 Opt("materializationWarehouse", Kind::kString)}),
         Nested("userAttributes", {Opt("role", Kind::kString), Opt("warehouse", Kind::kString)})},
        domain::TlsSwitch::kNone,
        CheckSnowflake},
       driver}};
}

}  // namespace connreg::probe
