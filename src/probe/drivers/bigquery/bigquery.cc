// BigQuery through the REST API v2, authenticated as a service account the way Google's client
// libraries do it:
//   an RS256 JWT {iss: client_email, scope: bigquery, aud: token_uri} signed with the key file's
//   private_key, POSTed to its token_uri as a jwt-bearer grant -> access_token
//                                                       = the authenticate step
//   POST {api}/bigquery/v2/projects/{projectId}/queries running SELECT 1 with the Bearer token,
//   then GET {api}/bigquery/v2/projects/{p}/queries/{jobId} while jobComplete is false
//                                                       = the query step (and each write SQL)
// The API base URL is https://bigquery.googleapis.com, or the operator's CONNREG_BIGQUERY_API_URL
// (DriverSettings) for a private endpoint or a test fake.
// The catalog (Introspect) of the connection's project is read from the same API with the same
// token: datasets.list, tables.list per dataset (both following nextPageToken, a page at a time)
// and tables.get per table for its schema. A REPEATED field prints as ARRAY<type>, a RECORD as
// STRUCT<name type, ...>; a column is nullable unless its mode is REQUIRED or REPEATED (BigQuery
// has no NULL arrays).
#include "probe/drivers/bigquery/bigquery.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <thread>

#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#include "probe/drivers/common/catalog_listing.h"
#include "probe/drivers/common/details_fields.h"
#include "probe/drivers/common/http_client.h"
#include "probe/drivers/common/sql_probe.h"
#include "probe/scrub.h"

namespace connreg::probe {
namespace {

constexpr std::string_view kDefaultApiUrl = "https://bigquery.googleapis.com";
constexpr std::string_view kDefaultTokenUri = "https://oauth2.googleapis.com/token";
constexpr std::string_view kScope = "https://www.googleapis.com/auth/bigquery";
constexpr std::string_view kJwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer";

// The BigQuery API as configured: where to connect, and the path its REST resources sit under
// ("" or "/prefix", without a trailing slash).
struct ApiUrl {
  Endpoint endpoint;
  std::string path;
};

// The API of DriverSettings::bigquery_api_url (CONNREG_BIGQUERY_API_URL), else the public one; or
// nullopt with `why` set.
std::optional<ApiUrl> ConfiguredApi(const DriverSettings& settings, std::string& why) {
  std::string_view raw = settings.bigquery_api_url.empty()
                             ? kDefaultApiUrl
                             : std::string_view(settings.bigquery_api_url);
  auto u = boost::urls::parse_absolute_uri(raw);
  if (!u || u->scheme_id() != boost::urls::scheme::https || u->has_userinfo() ||
      u->host_address().empty() || u->has_query() || u->has_fragment() ||
      (u->has_port() && u->port_number() == 0)) {
    why = "CONNREG_BIGQUERY_API_URL must be an https URL such as " + std::string(kDefaultApiUrl);
    return std::nullopt;
  }
  ApiUrl api{{u->host_address(), u->has_port() ? u->port_number() : 443},
             std::string(u->encoded_path())};
  while (!api.path.empty() && api.path.back() == '/') api.path.pop_back();
  return api;
}

// What the probe uses of a Google service-account key file.
struct ServiceAccount {
  std::string client_email;
  std::string private_key;     // PEM
  std::string private_key_id;  // the JWT's kid, when the file names it
  std::string token_uri;
};

// The service account in `key_file` (the JSON content of the file), or nullopt with `why` set.
// `why` never quotes the file: the private key is in it.
std::optional<ServiceAccount> ParseServiceAccount(std::string_view key_file, std::string& why) {
  auto json = ParseJson(key_file);
  if (!json || !json->is_object()) {
    why =
        "the service account key is not a JSON object (expected the content of a Google "
        "service-account key file)";
    return std::nullopt;
  }
  const boost::json::object& o = json->get_object();
  if (const auto* type = o.if_contains("type");
      type && !(type->is_string() && type->get_string() == "service_account")) {
    why = "the service account key is not of type service_account";
    return std::nullopt;
  }
  ServiceAccount sa{DetailString(o, "client_email"), DetailString(o, "private_key"),
                    DetailString(o, "private_key_id"), DetailString(o, "token_uri")};
  if (sa.client_email.empty() || sa.private_key.empty()) {
    why = std::string("the service account key has no ") +
          (sa.client_email.empty() ? "client_email" : "private_key");
    return std::nullopt;
  }
  if (sa.token_uri.empty()) sa.token_uri = kDefaultTokenUri;
  auto token_uri = boost::urls::parse_absolute_uri(sa.token_uri);
  if (!token_uri || token_uri->scheme_id() != boost::urls::scheme::https) {
    why = "the service account key's token_uri is not an https URL";
    return std::nullopt;
  }
  return sa;
}

// What authentication yields. Both are credentials: never part of a message.
struct Grant {
  std::string assertion;
  std::string access_token;
};

// The contract code of a Google API error, from its first errors[].reason or else its status.
std::string_view CodeForGoogleError(long status, std::string_view reason) {
  if (reason == "accessDenied") return code::kPermissionDenied;
  if (reason == "notFound") return code::kNotFound;
  if (reason == "authError" || status == 401) return code::kAuthFailed;
  if (reason == "timeout") return code::kTimeout;
  if (reason.empty() && status == 403) return code::kPermissionDenied;
  if (reason.empty() && status == 404) return code::kNotFound;
  return code::kProtocolError;
}

// `name` as a GoogleSQL quoted identifier: in backticks, with the escapes of a string literal.
std::string QuotedIdentifier(std::string_view name) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string q = "`";
  for (char ch : name) {
    auto b = static_cast<unsigned char>(ch);
    if (ch == '`' || ch == '\\') {
      q += '\\';
      q += ch;
    } else if (b < 0x20 || b == 0x7F) {
      q += "\\x";
      q += kHex[b >> 4];
      q += kHex[b & 15];
    } else {
      q += ch;
    }
  }
  return q + "`";
}

// How long BigQuery may hold a query request before answering jobComplete=false: the time left
// less a second for the answer to travel, capped at a minute.
long long WaitMs(const Deadline& deadline) {
  return std::clamp<long long>(deadline.remaining().count() - 1000, 0, 60000);
}

class BigQuerySession : public SqlSession {
 public:
  BigQuerySession(ProbeRun& run, HttpSession& http, std::string api, const Grant& grant)
      : run_(run),
        http_(http),
        api_(std::move(api)),
        project_(DetailString(run.details, "projectId")),
        write_project_(WriteAccessString(run.details, "writeProject")),
        write_dataset_(WriteAccessString(run.details, "writeDataset")),
        token_(grant.access_token),
        scrubber_({{"assertion", grant.assertion}, {"access_token", grant.access_token}}) {}

  // The write location as RunSqlSteps is given it: "writeProject.writeDataset".
  std::string write_location() const { return write_project_ + "." + write_dataset_; }

  SqlOutcome Execute(std::string_view sql) override {
    if (!usable_) return Failure(code::kProtocolError, "the session is no longer usable");
    HttpRequest req;
    req.method = "POST";
    req.url = api_ + "/bigquery/v2/projects/" + UrlEncode(project_) + "/queries";
    req.headers = Headers();
    req.headers.push_back("Content-Type: application/json");
    req.body = boost::json::serialize(boost::json::object{
        {"query", sql}, {"useLegacySql", false}, {"timeoutMs", WaitMs(run_.deadline)}});
    for (;;) {
      HttpResponse r;
      if (auto err = http_.Perform(req, r)) {
        if (err->code == code::kTimeout) usable_ = false;
        return Failure(err->code, err->message);
      }
      if (r.status != 200) return GoogleFailure(r);
      auto json = ParseJson(r.body);
      if (!json || !json->is_object()) {
        return Failure(code::kProtocolError, "the answer is not a BigQuery query response");
      }
      const boost::json::object& o = json->get_object();
      if (const auto* done = o.if_contains("jobComplete");
          done && done->is_bool() && done->get_bool()) {
        return FirstValue(*json);
      }
      // Still running: wait for the job with jobs.getQueryResults.
      const auto* ref = o.if_contains("jobReference");
      const boost::json::object* job = ref && ref->is_object() ? &ref->get_object() : nullptr;
      std::string id = job ? DetailString(*job, "jobId") : "";
      if (id.empty()) {
        return Failure(code::kProtocolError, "an unfinished query came without a job");
      }
      std::string project = DetailString(*job, "projectId");
      std::string location = DetailString(*job, "location");
      if (run_.deadline.remaining() < std::chrono::milliseconds(400)) {
        usable_ = false;
        return Failure(code::kTimeout, "the query did not finish before the test's deadline");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      req = HttpRequest{};
      req.url = api_ + "/bigquery/v2/projects/" + UrlEncode(project.empty() ? project_ : project) +
                "/queries/" + UrlEncode(id) + "?" +
                (location.empty() ? "" : "location=" + UrlEncode(location) + "&") +
                "timeoutMs=" + std::to_string(WaitMs(run_.deadline));
      req.headers = Headers();
    }
  }

  std::string_view TextType() const override { return "STRING(64)"; }

  // GETs `path_and_query` (below /bigquery/v2/projects/{project}/) into `answer`; the failure,
  // if any, as a query's.
  std::optional<SqlOutcome> Get(std::string_view path_and_query, boost::json::value& answer) {
    HttpRequest req;
    req.url =
        api_ + "/bigquery/v2/projects/" + UrlEncode(project_) + "/" + std::string(path_and_query);
    req.headers = Headers();
    HttpResponse r;
    if (auto err = http_.Perform(req, r)) return Failure(err->code, err->message);
    if (r.status != 200) return GoogleFailure(r);
    auto json = ParseJson(r.body);
    if (!json || !json->is_object()) {
      return Failure(code::kProtocolError, "the answer is not a BigQuery API response");
    }
    answer = std::move(*json);
    return std::nullopt;
  }

  const std::string& project() const { return project_; }

  // RunSqlSteps names the write location through QuoteIdentifier(write_location()): that one
  // becomes the two-part path `project`.`dataset`, so the probe table is project.dataset.table.
  std::string QuoteIdentifier(std::string_view name) override {
    if (name == write_location()) {
      return QuotedIdentifier(write_project_) + "." + QuotedIdentifier(write_dataset_);
    }
    return QuotedIdentifier(name);
  }

  bool usable() const override { return usable_; }

 private:
  std::vector<std::string> Headers() const {
    return {"Authorization: Bearer " + token_, "Accept: application/json"};
  }

  // A failure whose message is scrubbed of the credentials derived from the secret.
  SqlOutcome Failure(std::string_view c, std::string_view message) const {
    SqlOutcome f;
    f.code = c;
    f.message = scrubber_.Scrub(message);
    return f;
  }

  // A Google API error answer: {"error": {"code", "message", "errors": [{"reason", ...}]}}.
  SqlOutcome GoogleFailure(const HttpResponse& r) const {
    std::string reason, message;
    if (auto json = ParseJson(r.body); json && json->is_object()) {
      if (const auto* e = json->get_object().if_contains("error"); e && e->is_object()) {
        message = DetailString(e->get_object(), "message");
        boost::system::error_code ec;
        if (const auto* v = e->find_pointer("/errors/0/reason", ec); v && v->is_string()) {
          reason = std::string(v->get_string());
        }
      }
    }
    // Derived credentials are redacted before the cut to an excerpt, which could otherwise leave
    // the start of one behind.
    HttpResponse clean = r;
    clean.body = scrubber_.Scrub(r.body);
    return Failure(CodeForGoogleError(r.status, reason),
                   message.empty()
                       ? http_.Describe(clean)
                       : "HTTP " + std::to_string(r.status) +
                             http_.Quote(scrubber_.Scrub((reason.empty() ? "" : " " + reason) +
                                                         ": " + message)));
  }

  // A finished query's first column of its first row: rows[0].f[0].v.
  static SqlOutcome FirstValue(const boost::json::value& answer) {
    SqlOutcome out;
    out.ok = true;
    boost::system::error_code ec;
    if (const auto* v = answer.find_pointer("/rows/0/f/0/v", ec)) {
      out.value = v->is_string() ? std::string(v->get_string()) : boost::json::serialize(*v);
    }
    return out;
  }

  ProbeRun& run_;
  HttpSession& http_;
  std::string api_;
  std::string project_;
  std::string write_project_;
  std::string write_dataset_;
  std::string token_;
  Scrubber scrubber_;
  bool usable_ = true;
};

class BigQueryDriver : public Driver {
 public:
  int PathDepth() const override { return 3; }
  void Introspect(CatalogRun& run) const override {
    HttpSession http(run.probe);
    std::optional<BigQuerySession> session = Open(run.probe, http);
    if (!session) return;
    CatalogListing listing(run, PathDepth());
    listing.Begin();
    ListProject(*session, listing);
    listing.Finish();
  }
  std::optional<Endpoint> Target(const boost::json::object&, const DriverSettings& settings,
                                 std::string& why) const override {
    std::optional<ApiUrl> api = ConfiguredApi(settings, why);
    if (!api) return std::nullopt;
    return api->endpoint;
  }

  bool UsesTls(const boost::json::object&) const override { return true; }

  void Run(ProbeRun& run) const override {
    HttpSession http(run);
    std::optional<BigQuerySession> session = Open(run, http);
    if (!session) return;
    RunSqlSteps(run, *session, session->write_location());
  }

 private:
  // The connect, tls and authenticate steps (of a test and of a catalog listing alike): the
  // session with its access token, or nullopt once the failed step is recorded.
  static std::optional<BigQuerySession> Open(ProbeRun& run, HttpSession& http) {
    std::string why;
    std::optional<ApiUrl> api = ConfiguredApi(run.settings, why);
    if (!api) {
      run.steps.Add(step::kConnect, status::kFailed, code::kProtocolError, why);
      return std::nullopt;
    }
    if (!http.Open(true)) return std::nullopt;
    run.steps.Begin(step::kAuthenticate);
    std::optional<Grant> grant = Authenticate(run, http);
    if (!grant) return std::nullopt;
    run.steps.Pass();
    return std::optional<BigQuerySession>(std::in_place, run, http, http.BaseUrl(true) + api->path,
                                          *grant);
  }

  // A field's type as this driver prints it: ARRAY<...> for REPEATED, STRUCT<a T, ...> for a
  // RECORD (nested the same way), STRING(n) and NUMERIC(p, s) with their parameters.
  static std::string PrintedType(const boost::json::object& field) {
    std::string type = DetailString(field, "type");
    if (type == "RECORD" || type == "STRUCT") {
      std::string inner;
      if (const auto* fields = field.if_contains("fields"); fields && fields->is_array()) {
        for (const auto& f : fields->get_array()) {
          if (!f.is_object()) continue;
          if (!inner.empty()) inner += ", ";
          inner += DetailString(f.get_object(), "name") + " " + PrintedType(f.get_object());
        }
      }
      type = "STRUCT<" + inner + ">";
    } else if (std::string length = DetailString(field, "maxLength"); !length.empty()) {
      type += "(" + length + ")";
    } else if (std::string precision = DetailString(field, "precision"); !precision.empty()) {
      std::string scale = DetailString(field, "scale");
      type += "(" + precision + (scale.empty() ? "" : ", " + scale) + ")";
    }
    return DetailString(field, "mode") == "REPEATED" ? "ARRAY<" + type + ">" : type;
  }

  // o.<reference>.<field> as a string, or "".
  static std::string ReferenceId(const boost::json::object& o, std::string_view reference,
                                 std::string_view field) {
    const auto* ref = o.if_contains(reference);
    return ref && ref->is_object() ? DetailString(ref->get_object(), field) : std::string();
  }

  // GETs `list` page by page (pageToken) and hands each element of its `items` array to `item`.
  // False when the listing ends (a failure is recorded, or `item` said stop).
  static bool ForEachListed(BigQuerySession& session, CatalogListing& listing,
                            const std::string& list, std::string_view items,
                            const std::function<bool(const boost::json::object&)>& item) {
    std::string token;
    do {
      boost::json::value page;
      std::string url = list + "?maxResults=1000";
      if (!token.empty()) url += "&pageToken=" + UrlEncode(token);
      if (auto f = session.Get(url, page)) {
        listing.Fail(f->code, f->message);
        return false;
      }
      const boost::json::object& o = page.get_object();
      if (const auto* a = o.if_contains(items); a && a->is_array()) {
        for (const auto& v : a->get_array()) {
          if (v.is_object() && !item(v.get_object())) return false;
        }
      }
      token = DetailString(o, "nextPageToken");
    } while (!token.empty());
    return true;
  }

  // The project's scope, its datasets, their tables, and each table's schema.
  static void ListProject(BigQuerySession& session, CatalogListing& listing) {
    const std::string& project = session.project();
    const std::string kScope(domain::inode_kind::kScope);
    if (!listing.Reaches({project}) || !listing.Add({{project}, kScope, "", {}}) ||
        !listing.ReachesChildren({project})) {
      return;
    }
    boost::system::error_code ec;
    auto list_dataset = [&](const std::string& dataset) {
      if (!listing.Add({{project, dataset}, kScope, "", {}})) return false;
      if (!listing.ReachesChildren({project, dataset})) return true;
      const std::string base = "datasets/" + UrlEncode(dataset) + "/tables";
      return ForEachListed(session, listing, base, "tables", [&](const boost::json::object& t) {
        const std::string table = ReferenceId(t, "tableReference", "tableId");
        if (table.empty()) return true;
        if (!listing.Reaches({project, dataset, table})) return true;
        boost::json::value got;
        if (auto f = session.Get(base + "/" + UrlEncode(table), got)) {
          listing.Fail(f->code, f->message);
          return false;
        }
        domain::WarehouseObject object{{project, dataset, table},
                                       std::string(domain::inode_kind::kTable),
                                       DetailString(got.get_object(), "description"),
                                       {}};
        if (const auto* fields = got.find_pointer("/schema/fields", ec);
            fields && fields->is_array()) {
          for (const auto& f : fields->get_array()) {
            if (!f.is_object()) continue;
            const auto& fo = f.get_object();
            std::string mode = DetailString(fo, "mode");
            object.columns.push_back({DetailString(fo, "name"), PrintedType(fo),
                                      mode != "REQUIRED" && mode != "REPEATED",
                                      DetailString(fo, "description")});
          }
        }
        return listing.Add(std::move(object));
      });
    };
    ForEachListed(session, listing, "datasets", "datasets", [&](const boost::json::object& d) {
      const std::string dataset = ReferenceId(d, "datasetReference", "datasetId");
      if (dataset.empty()) return true;
      return !listing.Reaches({project, dataset}) || list_dataset(dataset);
    });
  }

  // Exchanges a JWT signed with the service account's key for an access token (the RFC 7523
  // jwt-bearer grant). nullopt once the failed authenticate step is recorded.
  static std::optional<Grant> Authenticate(ProbeRun& run, HttpSession& http) {
    auto fail = [&](std::string_view c, std::string_view message) -> std::optional<Grant> {
      run.steps.Fail(step::kAuthenticate, c, message);
      return std::nullopt;
    };
    auto secret = run.secrets.find("serviceAccount");
    if (secret == run.secrets.end() || secret->second.empty()) {
      return fail(code::kAuthFailed, "no service account key is stored for this connection");
    }
    std::string why;
    std::optional<ServiceAccount> sa = ParseServiceAccount(secret->second, why);
    if (!sa) return fail(code::kAuthFailed, why);
    SigningKeyPtr key = LoadRsaPrivateKey(sa->private_key, "", why);
    if (!key) return fail(code::kAuthFailed, "the service account key's private_key: " + why);

    boost::json::object header{{"alg", "RS256"}, {"typ", "JWT"}};
    if (!sa->private_key_id.empty()) header["kid"] = sa->private_key_id;
    const std::int64_t now = std::time(nullptr);
    Grant grant;
    const boost::json::object claims{{"iss", sa->client_email},
                                     {"scope", kScope},
                                     {"aud", sa->token_uri},
                                     {"iat", now},
                                     {"exp", now + 3600}};
    grant.assertion = SignJwtRs256(*key, header, claims, why);
    if (grant.assertion.empty()) return fail(code::kAuthFailed, why);
    // The token endpoint's words may echo the assertion: they are scrubbed of it.
    const Scrubber scrubber({{"assertion", grant.assertion}});

    HttpRequest req;
    req.method = "POST";
    req.url = sa->token_uri;
    req.headers = {"Content-Type: application/x-www-form-urlencoded", "Accept: application/json"};
    req.body =
        "grant_type=" + UrlEncode(kJwtBearerGrant) + "&assertion=" + UrlEncode(grant.assertion);
    HttpResponse r;
    if (auto err = http.Perform(req, r)) {
      return fail(err->code, "the token endpoint: " + scrubber.Scrub(err->message));
    }
    auto json = ParseJson(r.body);
    const boost::json::object* o = json && json->is_object() ? &json->get_object() : nullptr;
    if (r.status != 200) {
      // {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
      std::string error = o ? DetailString(*o, "error") : "";
      std::string description = o ? DetailString(*o, "error_description") : "";
      std::string_view c = r.status == 400 ? code::kAuthFailed : CodeForHttpStatus(r.status);
      // The assertion is redacted before the cut to an excerpt (see GoogleFailure).
      HttpResponse clean = r;
      clean.body = scrubber.Scrub(r.body);
      std::string message =
          error.empty() ? "the token endpoint answered " + http.Describe(clean)
                        : "the token endpoint refused the service account (HTTP " +
                              std::to_string(r.status) + "): " +
                              http.Quote(scrubber.Scrub(
                                  description.empty() ? error : error + ": " + description));
      return fail(c, scrubber.Scrub(message));
    }
    grant.access_token = o ? DetailString(*o, "access_token") : "";
    if (grant.access_token.empty()) {
      return fail(code::kProtocolError, "the token endpoint's answer has no access_token");
    }
    return grant;
  }
};

}  // namespace

std::vector<WarehouseType> BigQueryTypes() {
  using domain::Kind, domain::Req, domain::Opt, domain::Nested;
  static const BigQueryDriver* const driver = new BigQueryDriver;
  // The endpoint of a service-account key, its token_uri, is inside the secret itself: it cannot
  // change without the secret being given again, and bigQuery has no other secret.
  return {{{"bigQuery",
            {Req("projectId", Kind::kString), Opt("additionalProjectIds", Kind::kStringList),
             Opt("serviceAccount", Kind::kServiceAccount), Opt("useOauth", Kind::kBool),
             Nested("writeAccess",
                    {Req("writeProject", Kind::kString), Req("writeDataset", Kind::kString)})}},
           driver}};
}

}  // namespace connreg::probe
