// Databricks SQL warehouses through the SQL Statement Execution API:
//   POST /api/2.0/sql/statements {warehouse_id, statement, wait_timeout, ...} with
//   Authorization: Bearer <token>  = the authenticate step (401/403 reject the token);
//   its answer, or GET /api/2.0/sql/statements/<id> while PENDING/RUNNING = the query step.
// The warehouse id is the last segment of details.endpoint (/sql/1.0/warehouses/<id>).
// The catalog (Introspect) is read through the same API on the same warehouse, after the same
// authenticate step: Unity Catalog's system.information_schema (catalogs, schemata, and tables
// joined with columns, which carry full_data_type such as decimal(10,2) or struct<a:int>), in
// pages of kCatalogPageRows rows, the prefix's names passed as named parameters. Chosen over the
// Unity Catalog REST API because it is the protocol, the warehouse and the token this driver
// already tests, and it lists every catalog in three ordered queries instead of one request per
// schema; the hive_metastore catalog, which system.information_schema does not cover, is not
// listed.
#include "probe/drivers/databricks/databricks.h"

#include <chrono>
#include <thread>

#include <boost/json/serialize.hpp>

#include "probe/drivers/common/catalog_listing.h"
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

  // Submits `sql` with its named `parameters` ([{"name", "value", "type"}] for the :name
  // markers); its first answer is kept for Execute. nullopt on success.
  std::optional<SqlOutcome> Submit(std::string_view sql,
                                   const boost::json::array& parameters = {}) {
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
    if (!parameters.empty()) body["parameters"] = parameters;
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

  SqlOutcome Execute(std::string_view sql) override { return Run(sql, {}, nullptr); }

  // Runs `sql` with `parameters` (as Submit) and fills `page` with its whole answer.
  SqlOutcome Select(std::string_view sql, const boost::json::array& parameters, RowPage& page) {
    return Run(sql, parameters, &page);
  }

  std::string QuoteIdentifier(std::string_view name) override { return QuoteDelimited(name, '`'); }

  bool usable() const override { return usable_; }

 private:
  SqlOutcome Run(std::string_view sql, const boost::json::array& parameters, RowPage* page) {
    if (!usable_) return *Failure(code::kProtocolError, "the session is no longer usable");
    if (!has_pending_) {
      if (auto f = Submit(sql, parameters)) return *f;
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
        if (page) {
          if (auto f = ReadPage(o, rows, *page)) return *f;
          return out;
        }
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

  // A finished answer's column names (manifest.schema.columns) and rows into `page`; the failure
  // when it is not all there (more chunks than the inline first one).
  static std::optional<SqlOutcome> ReadPage(const boost::json::object& answer,
                                            const boost::json::value* rows, RowPage& page) {
    auto member = [](const boost::json::object& o, std::string_view a, std::string_view b) {
      const auto* outer = o.if_contains(a);
      return outer && outer->is_object() ? outer->get_object().if_contains(b) : nullptr;
    };
    if (const auto* more = member(answer, "result", "next_chunk_internal_link");
        more && !more->is_null()) {
      return Failure(code::kProtocolError,
                     "the answer came in several chunks, which this server does not read");
    }
    const auto* schema = member(answer, "manifest", "schema");
    if (const auto* cols =
            schema && schema->is_object() ? schema->get_object().if_contains("columns") : nullptr;
        cols && cols->is_array()) {
      for (const auto& c : cols->get_array()) {
        page.columns.push_back(c.is_object() ? DetailString(c.get_object(), "name") : "");
      }
    }
    if (!rows || !rows->is_array()) return std::nullopt;
    for (const auto& r : rows->get_array()) {
      if (!r.is_array())
        return Failure(code::kProtocolError, "a row of the answer is not an array");
      RowPage::Row& cells = page.rows.emplace_back();
      for (const auto& v : r.get_array()) cells.push_back(CellText(v));
    }
    return std::nullopt;
  }

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
  void Introspect(CatalogRun& run) const override {
    HttpSession http(run.probe);
    std::optional<DatabricksSession> session = Open(run.probe, http);
    if (!session) return;
    CatalogListing listing(run, PathDepth());
    listing.Begin();
    // The authenticate step's SELECT 1 is still to be read.
    if (SqlOutcome o = session->Execute("SELECT 1"); !o.ok) {
      listing.Fail(o.code, o.message);
    } else {
      ListCatalog(*session, listing);
    }
    listing.Finish();
  }
  std::optional<Endpoint> Target(const boost::json::object& details, const DriverSettings&,
                                 std::string& why) const override {
    return HostEndpoint(details, 443, why);
  }

  bool UsesTls(const boost::json::object&) const override { return true; }

  void Run(ProbeRun& run) const override {
    HttpSession http(run);
    std::optional<DatabricksSession> session = Open(run, http);
    if (!session) return;
    if (run.write_access) session->set_context(WriteAccessString(run.details, "writeCatalog"), "");
    RunSqlSteps(run, *session, WriteAccessString(run.details, "writeSchema"));
  }

 private:
  // The connect, tls and authenticate steps (of a test and of a catalog listing alike), the
  // latter submitting SELECT 1, whose answer the session's next Execute reads. The session, or
  // nullopt once the failed step is recorded.
  static std::optional<DatabricksSession> Open(ProbeRun& run, HttpSession& http) {
    std::string warehouse = WarehouseId(DetailString(run.details, "endpoint"));
    if (!http.Open(true)) return std::nullopt;
    run.steps.Begin(step::kAuthenticate);
    if (warehouse.empty()) {
      run.steps.Fail(step::kAuthenticate, code::kNotFound,
                     "details.endpoint names no SQL warehouse (expected "
                     "/sql/1.0/warehouses/<id>)");
      return std::nullopt;
    }
    std::optional<DatabricksSession> session(std::in_place, run, http, warehouse);
    session->set_context(DetailString(run.details, "catalog"), "");
    if (auto f = session->Submit("SELECT 1")) {
      run.steps.Fail(step::kAuthenticate, f->code, f->message);
      return std::nullopt;
    }
    run.steps.Pass();
    return session;
  }

  // Catalogs, schemas, then tables with their columns, each of the whole metastore in one
  // ordered, paged query narrowed by the request's prefix.
  static void ListCatalog(DatabricksSession& session, CatalogListing& listing) {
    static constexpr std::string_view kMarkers[] = {":catalog", ":schema", ":table"};
    const std::string* fixed[] = {listing.FixedName(0), listing.FixedName(1), listing.FixedName(2)};
    // " AND <column> = :marker" for each fixed level, and the parameters they take.
    boost::json::array parameters;
    for (std::size_t i = 0; i < 3; ++i) {
      if (fixed[i]) {
        parameters.push_back(boost::json::object{
            {"name", kMarkers[i].substr(1)}, {"value", *fixed[i]}, {"type", "STRING"}});
      }
    }
    auto where = [&](std::initializer_list<std::string_view> columns) {
      std::string w;
      std::size_t i = 0;
      for (std::string_view column : columns) {
        if (fixed[i]) w += " AND " + std::string(column) + " = " + std::string(kMarkers[i]);
        ++i;
      }
      return w;
    };
    auto select = [&](std::string sql) {
      return
          [&session, &parameters, sql = std::move(sql)](const std::string& limit, RowPage& page) {
            return session.Select(sql + limit, parameters, page);
          };
    };
    auto name_or_any = [&](std::size_t i) { return fixed[i] ? *fixed[i] : std::string(); };
    const std::string kScope(domain::inode_kind::kScope);

    if (!fixed[1] && listing.Reaches({name_or_any(0)}) &&
        !ForEachRowPaged(
            listing,
            select("SELECT catalog_name, comment FROM "
                   "system.information_schema.catalogs WHERE catalog_name <> "
                   "'system'" +
                   where({"catalog_name"}) + " ORDER BY catalog_name "),
            [&](const RowPage& page, const RowPage::Row& row) {
              return listing.Add(
                  {{page.Cell(row, "catalog_name")}, kScope, page.Cell(row, "comment"), {}});
            })) {
      return;
    }
    if (!fixed[2] && listing.ReachesChildren({name_or_any(0)}) &&
        !ForEachRowPaged(
            listing,
            select("SELECT catalog_name, schema_name, comment FROM "
                   "system.information_schema.schemata WHERE catalog_name <> 'system' AND "
                   "schema_name <> 'information_schema'" +
                   where({"catalog_name", "schema_name"}) + " ORDER BY catalog_name, schema_name "),
            [&](const RowPage& page, const RowPage::Row& row) {
              return listing.Add({{page.Cell(row, "catalog_name"), page.Cell(row, "schema_name")},
                                  kScope,
                                  page.Cell(row, "comment"),
                                  {}});
            })) {
      return;
    }
    if (!listing.ReachesChildren({name_or_any(0), name_or_any(1)})) return;
    TableAssembler assembler(listing);
    if (ForEachRowPaged(
            listing,
            select("SELECT t.table_catalog, t.table_schema, t.table_name, t.comment AS "
                   "table_comment, c.column_name, c.full_data_type, c.is_nullable, c.comment "
                   "FROM system.information_schema.tables t LEFT JOIN "
                   "system.information_schema.columns c ON c.table_catalog = t.table_catalog "
                   "AND c.table_schema = t.table_schema AND c.table_name = t.table_name WHERE "
                   "t.table_catalog <> 'system' AND t.table_schema <> 'information_schema'" +
                   where({"t.table_catalog", "t.table_schema", "t.table_name"}) +
                   " ORDER BY t.table_catalog, t.table_schema, t.table_name, "
                   "c.ordinal_position "),
            [&](const RowPage& page, const RowPage::Row& row) {
              std::optional<domain::WarehouseColumn> column;
              if (std::string name = page.Cell(row, "column_name"); !name.empty()) {
                column = domain::WarehouseColumn{name, page.Cell(row, "full_data_type"),
                                                 page.Cell(row, "is_nullable") != "NO",
                                                 page.Cell(row, "comment")};
              }
              return assembler.Row({page.Cell(row, "table_catalog"), page.Cell(row, "table_schema"),
                                    page.Cell(row, "table_name")},
                                   page.Cell(row, "table_comment"), std::move(column));
            })) {
      assembler.Flush();
    }
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
