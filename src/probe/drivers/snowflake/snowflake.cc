// Snowflake through the REST protocol its official connectors speak:
//   POST /session/v1/login-request  (password, or key pair: an RS256 JWT signed with privateKey)
//     -> data.token                 = the authenticate step
//   POST /queries/v1/query-request  (Authorization: Snowflake Token="...") running SELECT 1,
//     following data.getResultUrl while the query is still running = the query step
//   POST /session?delete=true       (logout, best effort)
// The catalog (Introspect) is read over the same query-request endpoint after the same login:
// SHOW DATABASES (or the connection's database), then per database its INFORMATION_SCHEMA's
// SCHEMATA and TABLES joined with COLUMNS, in pages of kCatalogPageRows rows, the schema and table
// names of the request's prefix bound as parameters. Result chunks (data.chunks, the part of a
// large answer Snowflake leaves on cloud storage) are not downloaded: a page is small enough to
// come inline, and an answer that still comes chunked fails the step rather than being cut.
// Snowflake answers most errors with HTTP 200 and {"success": false, "code": "...", "message"}.
#include "probe/drivers/snowflake/snowflake.h"

#include <array>
#include <chrono>
#include <ctime>
#include <thread>
#include <utility>

#include <boost/json/serialize.hpp>

#include "crypto/random.h"
#include "probe/drivers/common/catalog_listing.h"
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

  // Runs `sql` with `bindings` ({"1": {"type": "TEXT", "value": ...}} for the `?` markers, in
  // order) and fills `page` with its whole answer.
  SqlOutcome Select(std::string_view sql, const boost::json::object& bindings, RowPage& page) {
    if (!usable_) return *Failure(code::kProtocolError, "the session is no longer usable");
    return Run(sql, &bindings, &page);
  }

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

  SqlOutcome Run(std::string_view sql, const boost::json::object* bindings = nullptr,
                 RowPage* page = nullptr) {
    boost::json::object body{
        {"sqlText", sql},
        {"asyncExec", false},
        {"sequenceId", ++sequence_},
        {"querySubmissionTime", std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count()}};
    if (bindings && !bindings->empty()) body["bindings"] = *bindings;
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
      if (page) {
        if (auto f = ReadPage(d, *page)) return *f;
        return out;
      }
      if (rowset && rowset->is_array() && !rowset->get_array().empty() &&
          rowset->get_array()[0].is_array() && !rowset->get_array()[0].get_array().empty()) {
        const auto& v = rowset->get_array()[0].get_array()[0];
        out.value = v.is_string() ? std::string(v.get_string()) : boost::json::serialize(v);
      }
      return out;
    }
  }

  // The answer's rowtype names and rowset into `page`; the failure when it is not all there.
  static std::optional<SqlOutcome> ReadPage(const boost::json::object* d, RowPage& page) {
    const auto* chunks = d ? d->if_contains("chunks") : nullptr;
    if (chunks && chunks->is_array() && !chunks->get_array().empty()) {
      return Failure(code::kProtocolError,
                     "the answer came in result chunks, which this server does not download");
    }
    const auto* rowtype = d ? d->if_contains("rowtype") : nullptr;
    if (rowtype && rowtype->is_array()) {
      for (const auto& c : rowtype->get_array()) {
        page.columns.push_back(c.is_object() ? DetailString(c.get_object(), "name") : "");
      }
    }
    const auto* rowset = d ? d->if_contains("rowset") : nullptr;
    if (!rowset || !rowset->is_array()) return std::nullopt;
    for (const auto& r : rowset->get_array()) {
      if (!r.is_array()) {
        return Failure(code::kProtocolError, "a row of the answer is not an array");
      }
      RowPage::Row row;
      for (const auto& v : r.get_array()) row.push_back(CellText(v));
      page.rows.push_back(std::move(row));
    }
    return std::nullopt;
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
  void Introspect(CatalogRun& run) const override {
    HttpSession http(run.probe);
    std::optional<SnowflakeSession> session = Open(run.probe, http);
    if (!session) return;
    CatalogListing listing(run, PathDepth());
    listing.Begin();
    ListCatalog(run.probe, *session, listing);
    listing.Finish();
    if (session->usable() && run.probe.deadline.remaining() > std::chrono::milliseconds(500)) {
      session->Logout();
    }
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
    std::optional<SnowflakeSession> session = Open(run, http);
    if (!session) return;
    RunSqlSteps(run, *session, WriteAccessString(run.details, "writeSchema"));
    if (session->usable() && run.deadline.remaining() > std::chrono::milliseconds(500)) {
      session->Logout();
    }
  }

 private:
  // The connect, tls and authenticate steps (of a test and of a catalog listing alike): the
  // logged-in session, or nullopt once the failed step is recorded.
  static std::optional<SnowflakeSession> Open(ProbeRun& run, HttpSession& http) {
    if (!http.Open(true)) return std::nullopt;
    run.steps.Begin(step::kAuthenticate);
    std::string token;
    if (!Login(run, http, token)) return std::nullopt;
    run.steps.Pass();
    return std::optional<SnowflakeSession>(std::in_place, run, http, std::move(token));
  }

  // {"1": {"type": "TEXT", "value": v1}, "2": ...}: the bindings of `values`, in order.
  static boost::json::object TextBindings(const std::vector<std::string>& values) {
    boost::json::object b;
    for (std::size_t i = 0; i < values.size(); ++i) {
      b[std::to_string(i + 1)] = boost::json::object{{"type", "TEXT"}, {"value", values[i]}};
    }
    return b;
  }

  // The type as Snowflake prints it: NUMBER(38,0), VARCHAR(16777216), else DATA_TYPE itself.
  static std::string PrintedType(const RowPage& page, const RowPage::Row& row) {
    std::string type = page.Cell(row, "DATA_TYPE");
    std::string precision = page.Cell(row, "NUMERIC_PRECISION");
    std::string length = page.Cell(row, "CHARACTER_MAXIMUM_LENGTH");
    if (type == "NUMBER" && !precision.empty()) {
      std::string scale = page.Cell(row, "NUMERIC_SCALE");
      return type + "(" + precision + "," + (scale.empty() ? "0" : scale) + ")";
    }
    if ((type == "TEXT" || type == "VARCHAR" || type == "BINARY") && !length.empty()) {
      return type + "(" + length + ")";
    }
    return type;
  }

  // The databases: the connection's own when its details name one, else SHOW DATABASES.
  static void ListCatalog(ProbeRun& run, SnowflakeSession& session, CatalogListing& listing) {
    std::vector<std::pair<std::string, std::string>> databases;  // name, comment
    if (std::string db = DetailString(run.details, "database"); !db.empty()) {
      databases.emplace_back(db, "");
    } else {
      RowPage page;
      SqlOutcome o = session.Select("SHOW DATABASES", {}, page);
      if (!o.ok) return listing.Fail(o.code, o.message);
      for (const RowPage::Row& row : page.rows) {
        databases.emplace_back(page.Cell(row, "name"), page.Cell(row, "comment"));
      }
    }
    for (auto& [db, comment] : databases) {
      if (!listing.Reaches({db})) continue;
      if (!listing.Add({{db}, std::string(domain::inode_kind::kScope), comment, {}})) return;
      if (listing.ReachesChildren({db})) ListDatabase(session, listing, db);
      if (listing.stopped()) return;
    }
  }

  // One database's schemas, then its tables with their columns.
  static void ListDatabase(SnowflakeSession& session, CatalogListing& listing,
                           const std::string& db) {
    const std::string schema_views = QuoteDelimited(db, '"') + ".INFORMATION_SCHEMA.";
    std::string where = " WHERE SCHEMA_NAME <> 'INFORMATION_SCHEMA'";
    std::vector<std::string> binds;
    if (const std::string* schema = listing.FixedName(1)) {
      where += " AND SCHEMA_NAME = ?";
      binds.push_back(*schema);
    }
    const std::string schemata = "SELECT SCHEMA_NAME, COMMENT FROM " + schema_views + "SCHEMATA" +
                                 where + " ORDER BY SCHEMA_NAME ";
    auto select = [&](const std::string& sql, RowPage& page) {
      return session.Select(sql, TextBindings(binds), page);
    };
    // A table's path names its schema: the schemas themselves are not listed then.
    bool more =
        listing.FixedName(2) != nullptr ||
        ForEachRowPaged(
            listing,
            [&](const std::string& limit, RowPage& page) { return select(schemata + limit, page); },
            [&](const RowPage& page, const RowPage::Row& row) {
              return listing.Add({{db, page.Cell(row, "SCHEMA_NAME")},
                                  std::string(domain::inode_kind::kScope),
                                  page.Cell(row, "COMMENT"),
                                  {}});
            });
    const std::string* schema = listing.FixedName(1);
    if (!more || !listing.ReachesChildren({db, schema ? *schema : std::string()})) return;

    std::string tables_where = " WHERE t.TABLE_SCHEMA <> 'INFORMATION_SCHEMA'";
    if (schema) tables_where += " AND t.TABLE_SCHEMA = ?";
    if (const std::string* table = listing.FixedName(2)) {
      tables_where += " AND t.TABLE_NAME = ?";
      binds.push_back(*table);
    }
    const std::string tables =
        "SELECT t.TABLE_SCHEMA, t.TABLE_NAME, t.COMMENT AS TABLE_COMMENT, c.COLUMN_NAME, "
        "c.DATA_TYPE, c.CHARACTER_MAXIMUM_LENGTH, c.NUMERIC_PRECISION, c.NUMERIC_SCALE, "
        "c.IS_NULLABLE, c.COMMENT FROM " +
        schema_views + "TABLES t LEFT JOIN " + schema_views +
        "COLUMNS c ON c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME" +
        tables_where + " ORDER BY t.TABLE_SCHEMA, t.TABLE_NAME, c.ORDINAL_POSITION ";
    TableAssembler assembler(listing);
    more = ForEachRowPaged(
        listing,
        [&](const std::string& limit, RowPage& page) { return select(tables + limit, page); },
        [&](const RowPage& page, const RowPage::Row& row) {
          std::optional<domain::WarehouseColumn> column;
          if (std::string name = page.Cell(row, "COLUMN_NAME"); !name.empty()) {
            column = domain::WarehouseColumn{name, PrintedType(page, row),
                                             page.Cell(row, "IS_NULLABLE") != "NO",
                                             page.Cell(row, "COMMENT")};
          }
          return assembler.Row({db, page.Cell(row, "TABLE_SCHEMA"), page.Cell(row, "TABLE_NAME")},
                               page.Cell(row, "TABLE_COMMENT"), std::move(column));
        });
    if (more) assembler.Flush();
  }

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
