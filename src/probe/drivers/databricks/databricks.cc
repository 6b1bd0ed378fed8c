// Databricks SQL warehouses through the SQL Statement Execution API:
//   POST /api/2.0/sql/statements {warehouse_id, statement, wait_timeout, ...} with
//   Authorization: Bearer <token>  = the authenticate step (401/403 reject the token);
//   its answer, or GET /api/2.0/sql/statements/<id> while PENDING/RUNNING = the query step.
// The warehouse id is the last segment of details.endpoint (/sql/1.0/warehouses/<id>).
#include "probe/drivers/databricks/databricks.h"

#include <chrono>
#include <thread>

#include <boost/json/serialize.hpp>

#include "probe/drivers/common/details_fields.h"
#include "probe/drivers/common/http_client.h"
#include "probe/drivers/common/sql_probe.h"

namespace connreg::probe {
namespace {

std::string_view CodeForDatabricksError(std::string_view c) {
  if (c == "PERMISSION_DENIED" || c == "INSUFFICIENT_PERMISSIONS") return code::kPermissionDenied;
  if (c == "UNAUTHENTICATED") return code::kAuthFailed;
  if (c == "NOT_FOUND" || c == "RESOURCE_DOES_NOT_EXIST" || c.ends_with("_NOT_FOUND"))
    return code::kNotFound;
  if (c == "DEADLINE_EXCEEDED") return code::kTimeout;
  return code::kProtocolError;
}

// The warehouse id in an HTTP path such as /sql/1.0/warehouses/abc123 (or .../endpoints/abc123).
std::string WarehouseId(std::string_view path) {
  for (std::string_view marker : {"/warehouses/", "/endpoints/"}) {
    auto at = path.find(marker);
    if (at == std::string_view::npos) continue;
    std::string_view id = path.substr(at + marker.size());
    id = id.substr(0, id.find_first_of("/?"));
    bool ok = !id.empty();
    for (char ch : id)
      ok = ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_');
    return ok ? std::string(id) : "";
  }
  return "";
}

std::optional<SqlOutcome> Failure(std::string_view c, std::string message) {
  SqlOutcome f;
  f.code = c;
  f.message = std::move(message);
  return f;
}

class DatabricksSession : public SqlSession {
 public:
  DatabricksSession(ProbeRun& run, HttpSession& http, std::string warehouse)
      : run_(run), http_(http), warehouse_(std::move(warehouse)) {}

  void set_context(std::string catalog, std::string schema) {
    catalog_ = std::move(catalog);
    schema_ = std::move(schema);
  }

  // Submits `sql`; its first answer is kept for Execute. nullopt on success.
  std::optional<SqlOutcome> Submit(std::string_view sql) {
    // wait_timeout is 0 (answer at once) or 5..50 s: wait as long as the deadline allows.
    long long left = run_.deadline.remaining().count() / 1000 - 1;
    long long wait = left >= 5 ? std::min<long long>(left, 50) : 0;
    boost::json::object body{{"warehouse_id", warehouse_},
                             {"statement", sql},
                             {"wait_timeout", std::to_string(wait) + "s"},
                             {"on_wait_timeout", "CONTINUE"},
                             {"disposition", "INLINE"},
                             {"format", "JSON_ARRAY"}};
    if (!catalog_.empty()) body["catalog"] = catalog_;
    if (!schema_.empty()) body["schema"] = schema_;
    HttpRequest req;
    req.method = "POST";
    req.url = http_.BaseUrl(true) + "/api/2.0/sql/statements";
    req.headers = Headers();
    req.headers.push_back("Content-Type: application/json");
    req.body = boost::json::serialize(body);
    if (auto err = http_.Perform(req, pending_)) {
      if (err->code == code::kTimeout) usable_ = false;
      return Failure(err->code, err->message);
    }
    if (pending_.status != 200) return HttpFailure(pending_);
    has_pending_ = true;
    return std::nullopt;
  }

  SqlOutcome Execute(std::string_view sql) override {
    if (!usable_) return *Failure(code::kProtocolError, "the session is no longer usable");
    if (!has_pending_) {
      if (auto f = Submit(sql)) return *f;
    }
    has_pending_ = false;
    HttpResponse r = std::move(pending_);
    for (;;) {
      auto json = ParseJson(r.body);
      if (!json || !json->is_object()) {
        return *Failure(code::kProtocolError, "the answer is not a statement execution response");
      }
      const auto& o = json->get_object();
      std::string id = DetailString(o, "statement_id");
      const auto* st = o.if_contains("status");
      std::string state =
          st && st->is_object() ? DetailString(st->get_object(), "state") : std::string();
      if (state == "SUCCEEDED") {
        SqlOutcome out;
        out.ok = true;
        const auto* result = o.if_contains("result");
        const auto* rows = result && result->is_object()
                               ? result->get_object().if_contains("data_array")
                               : nullptr;
        if (rows && rows->is_array() && !rows->get_array().empty() &&
            rows->get_array()[0].is_array() && !rows->get_array()[0].get_array().empty()) {
          const auto& v = rows->get_array()[0].get_array()[0];
          out.value = v.is_string() ? std::string(v.get_string()) : boost::json::serialize(v);
        }
        return out;
      }
      if (state == "PENDING" || state == "RUNNING") {
        bool id_ok = !id.empty();
        for (char ch : id)
          id_ok = id_ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '-');
        if (!id_ok) return *Failure(code::kProtocolError, "a running statement came without an id");
        if (run_.deadline.remaining() < std::chrono::milliseconds(400)) {
          usable_ = false;
          return *Failure(code::kTimeout, "the statement did not finish before the deadline");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
        HttpRequest req;
        req.url = http_.BaseUrl(true) + "/api/2.0/sql/statements/" + id;
        req.headers = Headers();
        if (auto err = http_.Perform(req, r)) {
          if (err->code == code::kTimeout) usable_ = false;
          return *Failure(err->code, err->message);
        }
        if (r.status != 200) return *HttpFailure(r);
        continue;
      }
      // FAILED, CANCELED, CLOSED
      const auto* e = st && st->is_object() ? st->get_object().if_contains("error") : nullptr;
      std::string ec, message;
      if (e && e->is_object()) {
        ec = DetailString(e->get_object(), "error_code");
        message = DetailString(e->get_object(), "message");
      }
      std::string said = ec.empty() ? message : message.empty() ? ec : ec + ": " + message;
      return *Failure(CodeForDatabricksError(ec),
                      "statement " + http_.Quote(state.empty() ? std::string("failed") : state) +
                          (said.empty() ? "" : ": " + http_.Quote(said)));
    }
  }

  std::string QuoteIdentifier(std::string_view name) override { return QuoteDelimited(name, '`'); }

  bool usable() const override { return usable_; }

 private:
  std::vector<std::string> Headers() const {
    auto t = run_.secrets.find("token");
    return {"Authorization: Bearer " + (t == run_.secrets.end() ? std::string() : t->second),
            "Accept: application/json"};
  }

  std::optional<SqlOutcome> HttpFailure(const HttpResponse& r) const {
    std::string ec, message;
    if (auto json = ParseJson(r.body); json && json->is_object()) {
      ec = DetailString(json->get_object(), "error_code");
      message = DetailString(json->get_object(), "message");
    }
    std::string_view c = r.status == 401 || r.status == 403 ? code::kAuthFailed
                         : !ec.empty()                      ? CodeForDatabricksError(ec)
                                                            : CodeForHttpStatus(r.status);
    if (r.status == 403 && c == code::kAuthFailed && ec == "PERMISSION_DENIED") {
      c = code::kPermissionDenied;
    }
    return Failure(c, message.empty() ? http_.Describe(r)
                                      : "HTTP " + std::to_string(r.status) + ": " +
                                            http_.Quote((ec.empty() ? "" : ec + ": ") + message));
  }

  ProbeRun& run_;
  HttpSession& http_;
  std::string warehouse_;
  std::string catalog_;
  std::string schema_;
  HttpResponse pending_;
  bool has_pending_ = false;
  bool usable_ = true;
};

class DatabricksDriver : public Driver {
 public:
  int PathDepth() const override { return 3; }
  // TODO(catalog): the databricks family's introspection.
  void Introspect(CatalogRun& run) const override {
    run.probe.steps.Add(step::kQuery, status::kFailed, code::kDriverUnavailable,
                        "this server cannot list a databricks catalog yet");
  }
  std::optional<Endpoint> Target(const boost::json::object& details, const DriverSettings&,
                                 std::string& why) const override {
    return HostEndpoint(details, 443, why);
  }

  bool UsesTls(const boost::json::object&) const override { return true; }

  void Run(ProbeRun& run) const override {
    std::string warehouse = WarehouseId(DetailString(run.details, "endpoint"));
    HttpSession http(run);
    if (!http.Open(true)) return;
    run.steps.Begin(step::kAuthenticate);
    if (warehouse.empty()) {
      return run.steps.Fail(step::kAuthenticate, code::kNotFound,
                            "details.endpoint names no SQL warehouse (expected "
                            "/sql/1.0/warehouses/<id>)");
    }
    DatabricksSession session(run, http, warehouse);
    session.set_context(DetailString(run.details, "catalog"), "");
    if (auto f = session.Submit("SELECT 1")) {
      return run.steps.Fail(step::kAuthenticate, f->code, f->message);
    }
    run.steps.Pass();
    if (run.write_access) session.set_context(WriteAccessString(run.details, "writeCatalog"), "");
    RunSqlSteps(run, session, WriteAccessString(run.details, "writeSchema"));
  }
};

}  // namespace

namespace {

// One login: a token or useOauth: true.
Status CheckLogin(const domain::DetailsView& d) {
  std::vector<std::string_view> logins;
  if (d.SecretSet("token")) logins.push_back("token");
  if (d.OauthOn()) logins.push_back("useOauth");
  if (logins.empty()) {
    return Error::BadRequest("details.token is required: a " + std::string(d.type()) +
                             " connection needs a token or useOauth: true");
  }
  return d.OneLogin(logins, "");
}

}  // namespace

std::vector<WarehouseType> DatabricksTypes() {
  using domain::Kind, domain::Req, domain::Opt, domain::Nested;
  static const DatabricksDriver* const driver = new DatabricksDriver;
  return {{{"databricks",
            {Req("host", Kind::kHost).Endpoint(), Req("endpoint", Kind::kString).Endpoint(),
             Opt("token", Kind::kSecret), Opt("useOauth", Kind::kBool),
             Opt("workspaceUrl", Kind::kString).Endpoint(), Opt("catalog", Kind::kString),
             Nested("writeAccess",
                    {Req("writeCatalog", Kind::kString), Req("writeSchema", Kind::kString)})},
            domain::TlsSwitch::kNone,
            CheckLogin},
           driver}};
}

}  // namespace connreg::probe
