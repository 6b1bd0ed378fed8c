// Starburst (Trino) through the Trino client REST protocol: POST /v1/statement with the SQL text,
// then GET each nextUri until the answer has none. The first POST is the authenticate step (the
// coordinator answers 401 to a bad user or password); following it is the query step.
// The catalog (Introspect) is read the same way after the same authenticate step, whose statement
// is SHOW CATALOGS: then per catalog its information_schema's schemata, and its tables joined with
// columns, ordered by table and ordinal position and taken a page (one nextUri answer) at a
// time. Comments are left empty: Trino keeps table comments in system.metadata.table_comments,
// which asks every table's connector for its metadata, and information_schema.columns has none.
#include "probe/drivers/trino/trino.h"

#include <chrono>
#include <thread>

#include <boost/json/serialize.hpp>

#include "crypto/encoding.h"
#include "probe/drivers/common/catalog_listing.h"
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
    std::string value;
    bool have_value = false;
    SqlOutcome out = Stream(sql, [&](const RowPage& page) {
      if (!have_value && !page.rows.empty() && !page.rows[0].empty()) {
        value = page.rows[0][0].value_or("null");
        have_value = true;
      }
      return true;
    });
    if (out.ok) out.value = std::move(value);
    return out;
  }

  // Runs `sql` (or takes the answers of the one Submit sent) and hands each answer's rows to
  // `on_page`, following nextUri; false from it stops reading and cancels the query.
  SqlOutcome Stream(std::string_view sql, const std::function<bool(const RowPage&)>& on_page) {
    if (!usable_) return *Fail(code::kProtocolError, "the session is no longer usable");
    if (!has_pending_) {
      if (auto f = Submit(sql)) return *f;
    }
    has_pending_ = false;
    HttpResponse r = std::move(pending_);
    SqlOutcome out;
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
      std::string next = DetailString(o, "nextUri");
      if (const auto* d = o.if_contains("data"); d && d->is_array()) {
        RowPage page;
        for (const auto& row : d->get_array()) {
          if (!row.is_array()) continue;
          RowPage::Row& cells = page.rows.emplace_back();
          for (const auto& v : row.get_array()) cells.push_back(CellText(v));
        }
        if (!on_page(page)) {
          if (!next.empty()) Cancel(next);
          break;
        }
      }
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

  // Best effort: DELETE on a query's nextUri cancels it.
  void Cancel(const std::string& next) {
    HttpRequest req;
    req.method = "DELETE";
    req.url = next;
    req.headers = Headers();
    HttpResponse r;
    (void)http_.Perform(req, r);
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
  void Introspect(CatalogRun& run) const override {
    HttpSession http(run.probe, TlsSettingsOf(run.probe));
    std::optional<TrinoSession> session = Open(run.probe, http, "SHOW CATALOGS");
    if (!session) return;
    CatalogListing listing(run, PathDepth());
    listing.Begin();
    ListCatalogs(*session, listing);
    listing.Finish();
  }
  std::optional<Endpoint> Target(const boost::json::object& details, const DriverSettings&,
                                 std::string& why) const override {
    return HostEndpoint(details, 443, why);
  }

  bool UsesTls(const boost::json::object& details) const override {
    return DetailBool(details, "useTls", true);
  }

  void Run(ProbeRun& run) const override {
    HttpSession http(run, TlsSettingsOf(run));
    std::optional<TrinoSession> session = Open(run, http, "SELECT 1");
    if (!session) return;
    if (run.write_access) {
      // The SELECT 1 already submitted is unaffected; the write statements run in writeCatalog.
      session->set_catalog(WriteAccessString(run.details, "writeCatalog"));
    }
    RunSqlSteps(run, *session, WriteAccessString(run.details, "writeSchema"));
  }

 private:
  // The connect, tls and authenticate steps (of a test and of a catalog listing alike), the
  // latter submitting `first_sql`, whose answers the session's next Execute or Stream reads. The
  // session, or nullopt once the failed step is recorded.
  std::optional<TrinoSession> Open(ProbeRun& run, HttpSession& http,
                                   std::string_view first_sql) const {
    const bool tls = UsesTls(run.details);
    auto pw = run.secrets.find("password");
    const bool has_password = pw != run.secrets.end() && !pw->second.empty();
    if (!http.Open(tls)) return std::nullopt;
    run.steps.Begin(step::kAuthenticate);
    if (has_password && !tls) {
      // As the official Trino clients: a password is never sent over plain HTTP.
      run.steps.Fail(step::kAuthenticate, code::kProtocolError,
                     "password authentication requires TLS, and useTls is false");
      return std::nullopt;
    }
    std::optional<TrinoSession> session(std::in_place, run, http, tls);
    session->set_catalog(DetailString(run.details, "catalog"));
    if (auto f = session->Submit(first_sql)) {
      run.steps.Fail(step::kAuthenticate, f->code, f->message);
      return std::nullopt;
    }
    run.steps.Pass();
    return session;
  }

  // Reads `sql`'s rows into `row`; false when the listing ends (a failure is recorded).
  static bool ForEachRow(TrinoSession& session, CatalogListing& listing, std::string_view sql,
                         const std::function<bool(const RowPage::Row&)>& row) {
    SqlOutcome o = session.Stream(sql, [&](const RowPage& page) {
      for (const RowPage::Row& r : page.rows) {
        if (!row(r)) return false;
      }
      return true;
    });
    if (!o.ok) listing.Fail(o.code, o.message);
    return !listing.stopped();
  }

  static std::string Cell(const RowPage::Row& row, std::size_t i) {
    return i < row.size() && row[i] ? *row[i] : std::string();
  }

  // SHOW CATALOGS (submitted by Open), then each catalog the request reaches.
  static void ListCatalogs(TrinoSession& session, CatalogListing& listing) {
    std::vector<std::string> catalogs;
    if (!ForEachRow(session, listing, "SHOW CATALOGS", [&](const RowPage::Row& row) {
          catalogs.push_back(Cell(row, 0));
          return true;
        })) {
      return;
    }
    for (const std::string& catalog : catalogs) {
      if (!listing.Reaches({catalog})) continue;
      if (!listing.Add({{catalog}, std::string(domain::inode_kind::kScope), "", {}})) return;
      if (listing.ReachesChildren({catalog}) && !ListCatalog(session, listing, catalog)) return;
    }
  }

  // One catalog's schemas, then its tables with their columns. False when the listing ends.
  static bool ListCatalog(TrinoSession& session, CatalogListing& listing,
                          const std::string& catalog) {
    // Trino's string literals know no backslash escapes: doubling the quote makes any name one.
    auto literal = [](const std::string& s) { return QuoteDelimited(s, '\''); };
    const std::string views = QuoteDelimited(catalog, '"') + ".information_schema.";
    const std::string* schema = listing.FixedName(1);
    const std::string* table = listing.FixedName(2);
    if (!table) {
      std::string sql = "SELECT schema_name FROM " + views +
                        "schemata WHERE schema_name <> 'information_schema'" +
                        (schema ? " AND schema_name = " + literal(*schema) : "") +
                        " ORDER BY schema_name";
      if (!ForEachRow(session, listing, sql, [&](const RowPage::Row& row) {
            return listing.Add(
                {{catalog, Cell(row, 0)}, std::string(domain::inode_kind::kScope), "", {}});
          })) {
        return false;
      }
    }
    if (!listing.ReachesChildren({catalog, schema ? *schema : std::string()})) return true;
    std::string sql =
        "SELECT t.table_schema, t.table_name, c.column_name, c.data_type, c.is_nullable FROM " +
        views + "tables t LEFT JOIN " + views +
        "columns c ON c.table_schema = t.table_schema AND c.table_name = t.table_name "
        "WHERE t.table_schema <> 'information_schema'" +
        (schema ? " AND t.table_schema = " + literal(*schema) : "") +
        (table ? " AND t.table_name = " + literal(*table) : "") +
        " ORDER BY t.table_schema, t.table_name, c.ordinal_position";
    TableAssembler assembler(listing);
    if (!ForEachRow(session, listing, sql, [&](const RowPage::Row& row) {
          std::optional<domain::WarehouseColumn> column;
          if (row.size() > 2 && row[2]) {
            column = domain::WarehouseColumn{*row[2], Cell(row, 3), Cell(row, 4) != "NO", ""};
          }
          return assembler.Row({catalog, Cell(row, 0), Cell(row, 1)}, "", std::move(column));
        })) {
      return false;
    }
    return assembler.Flush();
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
