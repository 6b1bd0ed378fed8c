#include "api/api.h"

#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#include "api/docs.h"
#include "auth/credentials.h"
#include "auth/token_cache.h"
#include "core/log.h"
#include "crypto/hash.h"
#include "metrics/metrics.h"

namespace connreg::api {
namespace http_ = boost::beast::http;
using http_::verb;

namespace {

std::vector<Route> AllRoutes() {
  // Literal paths before placeholder paths of the same shape (see Router::Find).
  return {
      {verb::get, "/healthz", false, HandleHealthz, Exec::kInline},
      {verb::get, "/readyz", false, HandleReadyz},
      {verb::get, "/metrics", false, HandleMetrics, Exec::kInline},
      {verb::get, "/openapi.json", false, HandleOpenApi, Exec::kInline},
      {verb::get, "/docs", false, HandleDocs, Exec::kInline},
      {verb::get, "/docs/{asset}", false, HandleDocsAsset, Exec::kInline},
      {verb::post, "/v2/auth/token", false, HandleToken},
      {verb::post, "/v2/connections/test", true, HandleTestUnsavedConnection},
      // The warehouse catalog (contract section 13); literal /paths and /tables before
      // /{connectionId}.
      {verb::get, "/v2/connections/paths", true, HandleListPaths},
      {verb::get, "/v2/connections/paths/{inodeId}", true, HandleGetPath},
      {verb::get, "/v2/connections/paths/{connectionPathId}/grants", true, HandleListPathGrants},
      {verb::post, "/v2/connections/paths/{connectionPathId}/grants", true, HandleAddPathGrants},
      {verb::delete_, "/v2/connections/paths/{connectionPathId}/grants/{grantId}", true,
       HandleDeletePathGrant},
      {verb::get, "/v2/connections/tables/{tableId}/columns", true, HandleListColumns},
      {verb::post, "/v2/connections/{connectionId}/sync", true, HandleSync},
      {verb::get, "/v2/connections/{connectionId}/sync", true, HandleGetSync},
      {verb::post, "/v2/connection/{connectionId}/lookup", true, HandleLookup},
      {verb::get, "/v2/connections", true, HandleListConnections},
      {verb::post, "/v2/connections", true, HandleCreateConnection},
      {verb::get, "/v2/connections/{connectionId}", true, HandleGetConnection, Exec::kPointRead,
       /*serves_head=*/true, /*streamed_body_limit=*/0, /*token_in_read=*/true},
      {verb::put, "/v2/connections/{connectionId}", true, HandleReplaceConnection},
      {verb::patch, "/v2/connections/{connectionId}", true, HandlePatchConnection},
      {verb::delete_, "/v2/connections/{connectionId}", true, HandleArchiveConnection},
      // Runs a real test (and records it), so HEAD is not served: a 405.
      {verb::get, "/v2/connections/{connectionId}/test", true, HandleTestSavedConnection,
       Exec::kPool, /*serves_head=*/false},
      {verb::post, "/v2/connections/{connectionId}/test", true, HandleTestProposedChange},
      {verb::get, "/v2/connections/{connectionId}/grants", true, HandleListGrants},
      {verb::post, "/v2/connections/{connectionId}/grants", true, HandleAddGrants},
      {verb::delete_, "/v2/connections/{connectionId}/grants/{grantId}", true, HandleDeleteGrant},
      // The warehouse catalog (contract section 13).
      {verb::post, "/v2/connections/{connectionId}/dbtArtifacts", true, HandleUploadDbtArtifacts,
       Exec::kPool, /*serves_head=*/true, /*streamed_body_limit=*/DbtArtifactsBodyLimit()},
      // Members, teams and who am I (contract section 12).
      {verb::get, "/v2/whoami", true, HandleWhoami},
      {verb::get, "/v2/members", true, HandleListMembers},
      {verb::post, "/v2/members", true, HandleCreateMember},
      {verb::get, "/v2/members/{memberId}", true, HandleGetMember},
      {verb::patch, "/v2/members/{memberId}", true, HandlePatchMember},
      {verb::delete_, "/v2/members/{memberId}", true, HandleDeactivateMember},
      {verb::get, "/v2/members/{memberId}/teams", true, HandleListMemberTeams},
      {verb::get, "/v2/teams", true, HandleListTeams},
      {verb::post, "/v2/teams", true, HandleCreateTeam},
      {verb::get, "/v2/teams/{teamId}", true, HandleGetTeam},
      {verb::patch, "/v2/teams/{teamId}", true, HandlePatchTeam},
      {verb::delete_, "/v2/teams/{teamId}", true, HandleArchiveTeam},
      {verb::get, "/v2/teams/{teamId}/members", true, HandleListTeamMembers},
      {verb::patch, "/v2/teams/{teamId}/members", true, HandlePatchTeamMembers},
  };
}

// The decoded path segments of a request target, or nullopt when it is not origin-form.
std::optional<std::vector<std::string>> PathSegments(std::string_view target) {
  auto url = boost::urls::parse_origin_form(target);
  if (!url) return std::nullopt;
  std::vector<std::string> segments;
  for (auto segment : url->segments()) segments.push_back(segment);
  while (!segments.empty() && segments.back().empty()) segments.pop_back();  // trailing '/'
  return segments;
}

void ReplyUnauthorized(http::Exchange& ex, std::string_view message) {
  ReplyError(ex, Error::Unauthorized(std::string(message)));
  ex.response.set(http_::field::www_authenticate, "Bearer");
}

constexpr std::string_view kInvalidToken = "the access token is invalid, expired or revoked";

// The bearer token of the request; replies 401 and returns nullopt when there is none.
std::optional<std::string_view> BearerToken(http::Exchange& ex) {
  auto header = ex.request.find(http_::field::authorization);
  if (header == ex.request.end()) {
    ReplyUnauthorized(ex, "an access token is required: Authorization: Bearer <token>");
    return std::nullopt;
  }
  auto token = auth::ParseBearer(header->value());
  if (!token) ReplyUnauthorized(ex, "the Authorization header is not a bearer token");
  return token;
}

// Sets the request's principal, or replies (401 for a token that is not valid).
bool Accept(Context& ctx, Result<store::Principal> principal) {
  if (!principal) {
    if (principal.error().code == ErrorCode::kNotFound) {
      ReplyUnauthorized(ctx.ex, kInvalidToken);
    } else {
      ReplyError(ctx.ex, principal.error());
    }
    return false;
  }
  ctx.principal = std::move(*principal);
  ctx.ex.member_id = ctx.principal->member_id;
  return true;
}

}  // namespace

Api::Api(store::Store& store, BlockingPool& pool, const domain::SecretSealer& sealer,
         const domain::TypeCatalog& types, probe::ProbeEngine& engine, catalog::SyncService& syncs,
         ApiOptions options)
    : store_(store),
      shared_limits_(store.SharesRateLimits() ? &store : nullptr),
      point_reads_are_local_(store.PointReadsAreLocal()),
      pool_(pool),
      sealer_(sealer),
      types_(types),
      engine_(engine),
      syncs_(syncs),
      options_(std::move(options)),
      router_(AllRoutes()),
      limiter_(options_.rate_limit),
      token_cache_(store.revocation_epoch()) {}

boost::asio::awaitable<void> Api::Handle(http::Exchange& ex) {
  Router::Match match;
  if (!Route(ex, match)) co_return;
  Continuation then;
  const Exec exec = match.route->exec;
  if (exec == Exec::kInline || (exec == Exec::kPointRead && point_reads_are_local_)) {
    then = Dispatch(ex, match);
  } else {
    co_await pool_.Run([this, &ex, &match, &then] {
      then = Dispatch(ex, match);
      return true;
    });
  }
  if (then) co_await then(*this);
}

boost::asio::awaitable<probe::TestResult> Api::RunProbe(
    domain::Connection c, std::map<std::string, std::string> secrets) {
  co_return co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable),
                                                 void(probe::TestResult)>(
      [&](auto handler) {
        auto ex = boost::asio::get_associated_executor(handler);
        // Done must be copyable; the awaitable's handler is move-only.
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        engine_.Submit(std::move(c), std::move(secrets), [shared, ex](probe::TestResult r) {
          boost::asio::post(
              ex, [shared, r = std::move(r)]() mutable { std::move (*shared)(std::move(r)); });
        });
      },
      boost::asio::use_awaitable);
}

boost::asio::awaitable<bool> Api::WaitForSync(std::shared_ptr<catalog::SyncService::Sync> sync,
                                              std::chrono::seconds wait) {
  auto timer =
      std::make_shared<boost::asio::steady_timer>(co_await boost::asio::this_coro::executor, wait);
  // The sync's end cancels the timer, on the timer's own executor.
  sync->OnFinished(
      [timer, ex = timer->get_executor()] { boost::asio::post(ex, [timer] { timer->cancel(); }); });
  boost::system::error_code ec;
  co_await timer->async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
  co_return sync->finished();
}

boost::asio::awaitable<probe::TestResult> Api::RunLookup(domain::Connection c,
                                                         domain::CatalogPath path, int levels) {
  const int secs = engine_.DeadlineSecs(c);
  co_return co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable),
                                                 void(probe::TestResult)>(
      [&](auto handler) {
        auto ex = boost::asio::get_associated_executor(handler);
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        syncs_.Lookup(c, std::move(path), levels, secs, [shared, ex](probe::TestResult r) {
          boost::asio::post(
              ex, [shared, r = std::move(r)]() mutable { std::move (*shared)(std::move(r)); });
        });
      },
      boost::asio::use_awaitable);
}

std::optional<std::size_t> Api::StreamedBodyLimit(
    const boost::beast::http::request_header<>& header) const {
  auto segments = PathSegments(header.target());
  if (!segments) return std::nullopt;
  const api::Route* route = router_.Find(header.method(), *segments).route;
  if (route == nullptr || route->streamed_body_limit == 0) return std::nullopt;
  return route->streamed_body_limit;
}

bool Api::Route(http::Exchange& ex, Router::Match& match) const {
  auto segments = PathSegments(ex.request.target());
  if (!segments) {
    ReplyError(ex, Error::BadRequest("the request target is not a valid origin-form URL"));
    return false;
  }
  match = router_.Find(ex.request.method(), *segments);
  AddCorsHeaders(ex);
  if (ex.request.method() == verb::options && HandlePreflight(ex, match)) return false;
  if (match.route == nullptr) {
    if (match.allow.empty()) {
      ReplyError(ex, Error::NotFound("no such route"));
    } else {
      ReplyError(ex, Error{ErrorCode::kMethodNotAllowed,
                           std::string(ex.request.method_string()) + " is not allowed here"});
      ex.response.set(http_::field::allow, match.allow);
    }
    return false;
  }
  ex.route = std::string(match.route->pattern);
  return true;
}

Continuation Api::Dispatch(http::Exchange& ex, Router::Match& match) {
  Context ctx{.ex = ex,
              .tokens = store_,
              .connections = store_,
              .grants = store_,
              .catalog = store_,
              .syncs = syncs_,
              .members = store_,
              .idempotency = store_,
              .server_keys = store_,
              .health = store_,
              .sealer = sealer_,
              .types = types_,
              .options = options_,
              .bodies = bodies_,
              .params = std::move(match.params),
              .principal = std::nullopt,
              .token_read = std::nullopt,
              .then = nullptr};
  if (match.route->needs_auth) {
    if (!Authenticate(ctx, *match.route)) return nullptr;
    int retry_after = 0;
    if (options_.rate_limit > 0 && shared_limits_ != nullptr) {
      auto taken =
          shared_limits_->TakeRateToken(ctx.principal->client_id, options_.rate_limit, NowMs());
      if (!taken) {
        ReplyError(ex, taken.error());
        return nullptr;
      }
      retry_after = *taken;
    } else {
      retry_after = limiter_.Acquire(ctx.principal->client_id);
    }
    if (retry_after > 0) {
      ReplyError(ex, Error{ErrorCode::kTooManyRequests, "rate limit exceeded: at most " +
                                                            std::to_string(options_.rate_limit) +
                                                            " requests per second per client"});
      ex.response.set(http_::field::retry_after, std::to_string(retry_after));
      return nullptr;
    }
  }
  match.route->handle(ctx);
  return std::move(ctx.then);
}

bool Api::Authenticate(Context& ctx, const api::Route& route) {
  auto token = BearerToken(ctx.ex);
  if (!token) return false;
  const TimeMs now = NowMs();
  std::optional<std::string> connection_id;
  if (route.token_in_read && !token_cache_.enabled()) connection_id = UuidParam(ctx, 0);
  if (!connection_id) return Accept(ctx, token_cache_.Resolve(ctx.tokens, *token, now));
  auto read = ctx.connections.GetConnectionForToken(crypto::TokenHash(*token), now, *connection_id);
  if (!read) return Accept(ctx, std::move(read).error());
  if (!Accept(ctx, std::move(read->principal))) return false;
  ctx.token_read = std::move(*read);
  return true;
}

bool Api::OriginAllowed(std::string_view origin) const {
  for (const auto& allowed : options_.cors_origins) {
    if (allowed == "*" || allowed == origin) return true;
  }
  return false;
}

void Api::AddCorsHeaders(http::Exchange& ex) const {
  auto origin = ex.request.find(http_::field::origin);
  if (origin == ex.request.end() || !OriginAllowed(origin->value())) return;
  ex.response.set(http_::field::access_control_allow_origin, origin->value());
  ex.response.set(http_::field::vary, "Origin");
  ex.response.set(http_::field::access_control_expose_headers,
                  "ETag, Location, X-Request-Id, Retry-After, Deprecation, Link, WWW-Authenticate");
}

bool Api::HandlePreflight(http::Exchange& ex, const Router::Match& match) const {
  auto origin = ex.request.find(http_::field::origin);
  auto method = ex.request.find(http_::field::access_control_request_method);
  if (origin == ex.request.end() || method == ex.request.end()) return false;  // plain OPTIONS
  ex.route = "OPTIONS";
  if (match.allow.empty()) {
    ReplyError(ex, Error::NotFound("no such route"));
    return true;
  }
  ex.response.result(http_::status::no_content);
  if (!OriginAllowed(origin->value())) return true;  // no CORS headers: the browser refuses
  ex.response.set(http_::field::access_control_allow_methods, match.allow);
  ex.response.set(http_::field::access_control_allow_headers,
                  "Authorization, Content-Type, If-Match, If-None-Match, Idempotency-Key, "
                  "X-Request-Id");
  ex.response.set(http_::field::access_control_max_age, "600");
  return true;
}

void ReplyJson(http::Exchange& ex, int status, const boost::json::value& body) {
  ReplyJsonText(ex, status, boost::json::serialize(body));
}

void ReplyJsonText(http::Exchange& ex, int status, std::string body) {
  ex.response.result(static_cast<unsigned>(status));
  ex.response.set(http_::field::content_type, "application/json");
  ex.response.body() = std::move(body);
}

void ReplyError(http::Exchange& ex, const Error& error) {
  int status = HttpStatus(error.code);
  if (error.code == ErrorCode::kInternal || error.code == ErrorCode::kUnavailable) {
    log::Event(error.code == ErrorCode::kInternal ? log::Level::kError : log::Level::kWarn,
               "request_failed",
               {{"requestId", ex.request_id}, {"route", ex.route}, {"detail", error.message}});
  }
  std::string_view message = error.code == ErrorCode::kInternal ? std::string_view("internal error")
                                                                : std::string_view(error.message);
  http::SetErrorResponse(ex.response, status, CodeName(error.code), message, ex.request_id);
}

void HandleHealthz(Context& ctx) { ReplyJson(ctx.ex, 200, {{"status", "ok"}}); }

void HandleMetrics(Context& ctx) {
  ctx.ex.response.result(200);
  ctx.ex.response.set(http_::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  ctx.ex.response.set(http_::field::cache_control, "no-store");
  ctx.ex.response.body() = metrics::Render();
}

void HandleReadyz(Context& ctx) {
  if (auto s = ctx.health.Ping(); !s) {
    log::Event(log::Level::kWarn, "store_unreachable", {{"detail", s.error().message}});
    ReplyError(ctx.ex, Error::Unavailable("the store is unreachable"));
    return;
  }
  ReplyJson(ctx.ex, 200, {{"status", "ready"}});
}

}  // namespace connreg::api
