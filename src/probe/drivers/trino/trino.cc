// Starburst (Trino) through the Trino client REST protocol: POST /v1/statement with the SQL text,
// then GET each nextUri until the answer has none. The first POST is the authenticate step (the
// coordinator answers 401 to a bad user or password); following it is the query step.
#include "probe/drivers/trino/trino.h"

#include <chrono>
#include <thread>

#include <boost/json/serialize.hpp>

#include "crypto/encoding.h"
#include "probe/drivers/common/details_fields.h"
#include "probe/drivers/common/http_client.h"
#include "probe/drivers/common/sql_probe.h"

namespace connreg::probe {
namespace {

std::string_view CodeForTrinoError(std::string_view name, std::string_view type) {
  if (name == "PERMISSION_DENIED") return code::kPermissionDenied;
  if (name.ends_with("_NOT_FOUND") || name == "MISSING_CATALOG_NAME" ||
      name == "MISSING_SCHEMA_NAME")
    return code::kNotFound;
  if (name == "EXCEEDED_TIME_LIMIT") return code::kTimeout;
  (void)type;
  return code::kProtocolError;
}

class TrinoSession : public SqlSession {
 public:
  TrinoSession(ProbeRun& run, HttpSession& http, bool tls) : run_(run), http_(http), tls_(tls) {}

  void set_catalog(std::string c) { catalog_ = std::move(c); }

  // Submits `sql`; the first answer is kept for Execute. nullopt on success, else the failure
  // of the submission (auth_failed for 401/403).
  std::optional<SqlOutcome> Submit(std::string_view sql) {
    HttpRequest req;
    req.method = "POST";
    req.url = http_.BaseUrl(tls_) + "/v1/statement";
    req.headers = Headers();
    req.headers.push_back("Content-Type: text/plain; charset=utf-8");
    req.body = std::string(sql);
    for (;;) {
      if (auto err = http_.Perform(req, pending_)) return Fail(err->code, err->message);
      if (pending_.status == 502 || pending_.status == 503 || pending_.status == 504) {
        if (!Backoff()) return Fail(code::kTimeout, "the coordinator stayed unavailable");
        continue;
      }
      break;
    }
    if (pending_.status == 401 || pending_.status == 403) {
      return Fail(code::kAuthFailed, "the server rejected the user or password (HTTP " +
                                         std::to_string(pending_.status) + ")");
    }
    if (pending_.status != 200) return Fail(code::kProtocolError, http_.Describe(pending_));
    has_pending_ = true;
    return std::nullopt;
  }

  SqlOutcome Execute(std::string_view sql) override {
    if (!usable_) return *Fail(code::kProtocolError, "the session is no longer usable");
    if (!has_pending_) {
      if (auto f = Submit(sql)) return *f;
    }
    has_pending_ = false;
    HttpResponse r = std::move(pending_);
    SqlOutcome out;
    bool have_value = false;
    for (;;) {
      auto json = ParseJson(r.body);
      if (!json || !json->is_object()) {
        return *Fail(code::kProtocolError, "the server's answer is not a Trino query result");
      }
      const auto& o = json->get_object();
      if (const auto* e = o.if_contains("error"); e && e->is_object()) {
        const auto& eo = e->get_object();
        std::string name = DetailString(eo, "errorName");
        SqlOutcome f;
        f.code = CodeForTrinoError(name, DetailString(eo, "errorType"));
        std::string message = DetailString(eo, "message");
        f.message = http_.Quote(name.empty() ? message : name + ": " + message);
        return f;
      }
      if (const auto* d = o.if_contains("data"); d && d->is_array() && !have_value) {
        const auto& rows = d->get_array();
        if (!rows.empty() && rows[0].is_array() && !rows[0].get_array().empty()) {
          const auto& v = rows[0].get_array()[0];
          out.value = v.is_string() ? std::string(v.get_string()) : boost::json::serialize(v);
          have_value = true;
        }
      }
      std::string next = DetailString(o, "nextUri");
      if (next.empty()) break;
      HttpRequest req;
      req.url = next;
      req.headers = Headers();
      for (;;) {
        if (auto err = http_.Perform(req, r)) {
          usable_ = err->code != code::kTimeout;
          return *Fail(err->code, err->message);
        }
        if (r.status == 502 || r.status == 503 || r.status == 504) {
          if (!Backoff()) return *Fail(code::kTimeout, "the coordinator stayed unavailable");
          continue;
        }
        break;
      }
      if (r.status != 200) return *Fail(CodeForHttpStatus(r.status), http_.Describe(r));
    }
    out.ok = true;
    return out;
  }

  std::string QuoteIdentifier(std::string_view name) override { return QuoteDelimited(name, '"'); }

  bool usable() const override { return usable_; }

 private:
  std::vector<std::string> Headers() const {
    std::vector<std::string> h;
    std::string user = DetailString(run_.details, "user");
    h.push_back("X-Trino-User: " + user);
    h.push_back("X-Trino-Source: connreg-probe");
    if (!catalog_.empty()) h.push_back("X-Trino-Catalog: " + catalog_);
    auto pw = run_.secrets.find("password");
    if (pw != run_.secrets.end() && !pw->second.empty()) {
      h.push_back("Authorization: Basic " + crypto::Base64Encode(user + ":" + pw->second));
    }
    return h;
  }

  bool Backoff() {
    if (run_.deadline.remaining() < std::chrono::milliseconds(200)) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return true;
  }

  static std::optional<SqlOutcome> Fail(std::string_view c, std::string message) {
    SqlOutcome f;
    f.code = c;
    f.message = std::move(message);
    return f;
  }

  ProbeRun& run_;
  HttpSession& http_;
  bool tls_;
  std::string catalog_;
  HttpResponse pending_;
  bool has_pending_ = false;
  bool usable_ = true;
};

class TrinoDriver : public Driver {
 public:
  int PathDepth() const override { return 3; }
  // TODO(catalog): the trino family's introspection.
  void Introspect(CatalogRun& run) const override {
    run.probe.steps.Add(step::kQuery, status::kFailed, code::kDriverUnavailable,
                        "this server cannot list a trino catalog yet");
  }
  std::optional<Endpoint> Target(const boost::json::object& details, const DriverSettings&,
                                 std::string& why) const override {
    return HostEndpoint(details, 443, why);
  }

  bool UsesTls(const boost::json::object& details) const override {
    return DetailBool(details, "useTls", true);
  }

  void Run(ProbeRun& run) const override {
    const bool tls = UsesTls(run.details);
    auto pw = run.secrets.find("password");
    const bool has_password = pw != run.secrets.end() && !pw->second.empty();
    HttpSession http(run, TlsSettingsOf(run));
    if (!http.Open(tls)) return;
    run.steps.Begin(step::kAuthenticate);
    if (has_password && !tls) {
      // As the official Trino clients: a password is never sent over plain HTTP.
      return run.steps.Fail(step::kAuthenticate, code::kProtocolError,
                            "password authentication requires TLS, and useTls is false");
    }
    TrinoSession session(run, http, tls);
    session.set_catalog(DetailString(run.details, "catalog"));
    if (auto f = session.Submit("SELECT 1")) {
      return run.steps.Fail(step::kAuthenticate, f->code, f->message);
    }
    run.steps.Pass();
    if (run.write_access) {
      // The SELECT 1 already submitted is unaffected; the write statements run in writeCatalog.
      session.set_catalog(WriteAccessString(run.details, "writeCatalog"));
    }
    RunSqlSteps(run, session, WriteAccessString(run.details, "writeSchema"));
  }
};

}  // namespace

std::vector<WarehouseType> TrinoTypes() {
  using domain::Kind, domain::Req, domain::Opt, domain::Nested;
  static const TrinoDriver* const driver = new TrinoDriver;
  return {{{"starburst",
            domain::WithTlsFields(
                {Req("host", Kind::kHost).Endpoint(), Req("port", Kind::kPort).Endpoint(),
                 Req("user", Kind::kString), Req("password", Kind::kPassword),
                 Opt("catalog", Kind::kString), Opt("useTls", Kind::kBool).Default(true),
                 Nested("writeAccess",
                        {Req("writeCatalog", Kind::kString), Req("writeSchema", Kind::kString)})}),
            domain::TlsSwitch::kUseTls},
           driver}};
}

}  // namespace connreg::probe
