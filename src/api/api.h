// The Connection API: the http::Handler that routes each request, authenticates it, and runs
// its handler where its Route says (router.h): on the blocking pool for anything that may wait
// on the store (one hop per request: auth, validation and the store calls all happen there), or
// inline for bounded lock-free reads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/body_cache.h"
#include "api/rate_limiter.h"
#include "api/router.h"
#include "auth/token_cache.h"
#include "catalog/sync.h"
#include "core/blocking_pool.h"
#include "domain/connection_input.h"
#include "domain/secret_sealer.h"
#include "http/exchange.h"
#include "probe/engine.h"
#include "store/store.h"

namespace connreg::api {

struct ApiOptions {
  std::int64_t access_token_ttl_secs = 3600;
  std::int64_t refresh_token_ttl_secs = 30 * 24 * 3600;
  double rate_limit = 0;                  // requests per second per API client; 0 = off
  std::vector<std::string> cors_origins;  // exact origins, or "*" for any
};

class Api;
// Work a handler leaves for after its blocking part: runs on the request's own executor, so it
// may await (a connection test waits for the probe engine without holding a pool thread).
using Continuation = std::function<boost::asio::awaitable<void>(Api&)>;

// Everything a route handler may use for one request. Of the store, only the interfaces that
// handlers use, each named for what it serves (store/store.h).
struct Context {
  http::Exchange& ex;
  store::TokenStore& tokens;  // the token endpoint; every bearer token
  store::ConnectionStore& connections;
  store::GrantStore& grants;
  store::CatalogStore& catalog;          // the warehouse catalog (contract section 13)
  catalog::SyncService& syncs;           // catalog syncs and lookups
  store::MemberStore& members;           // members and teams (contract section 12)
  store::IdempotencyStore& idempotency;  // Idempotency-Key of a create
  store::ServerKeyStore& server_keys;    // the page-token MAC key
  store::StoreHealth& health;            // /readyz
  const domain::SecretSealer& sealer;
  const domain::TypeCatalog& types;  // the details table of every warehouse type
  const ApiOptions& options;
  BodyCache& bodies;                // rendered connection bodies, at their stamps (the listing)
  std::vector<std::string> params;  // the route's placeholders, in order
  std::optional<store::Principal> principal;  // set for routes that need auth
  // The route's connection, read by the statement that checked the token (Route::token_in_read);
  // LoadVisible takes it.
  std::optional<store::TokenConnectionRead> token_read;
  Continuation then;  // optional, see Continuation

  domain::Actor actor() const { return {principal->organization_id, principal->member_id}; }
  bool is_admin() const { return principal && principal->account_type == "admin"; }
};

class Api : public http::Handler {
 public:
  // Hands each request the narrow interfaces of `store` (Context); keeps for itself where point
  // reads run and where rate limits are kept. `types` is what details are validated against (the
  // driver registry's catalogue, probe/drivers/registry.h).
  Api(store::Store& store, BlockingPool& pool, const domain::SecretSealer& sealer,
      const domain::TypeCatalog& types, probe::ProbeEngine& engine, catalog::SyncService& syncs,
      ApiOptions options);

  boost::asio::awaitable<void> Handle(http::Exchange& ex) override;
  // The route's Route::streamed_body_limit, for the routes that have one.
  std::optional<std::size_t> StreamedBodyLimit(
      const boost::beast::http::request_header<>& header) const override;

  // The routes served, for documentation and tests.
  const Router& router() const { return router_; }

  // Runs a connection test on the probe engine; the awaiting coroutine resumes on its own
  // executor when the engine answers (within the test's deadline + ~1 s).
  boost::asio::awaitable<probe::TestResult> RunProbe(domain::Connection c,
                                                     std::map<std::string, std::string> secrets);
  // Waits until `sync` has ended or `wait` has passed, whichever is first; true when it ended.
  boost::asio::awaitable<bool> WaitForSync(std::shared_ptr<catalog::SyncService::Sync> sync,
                                           std::chrono::seconds wait);
  // Runs an on-demand lookup (SyncService::Lookup) and resumes when the catalog is written.
  boost::asio::awaitable<probe::TestResult> RunLookup(domain::Connection c,
                                                      domain::CatalogPath path, int levels);
  BlockingPool& pool() { return pool_; }
  store::CatalogStore& catalog() { return store_; }
  probe::ProbeEngine& engine() { return engine_; }
  store::ConnectionStore& connections() { return store_; }

 private:
  // Routes the request: false when it was answered already (bad target, 404, 405, preflight).
  bool Route(http::Exchange& ex, Router::Match& match) const;
  // Authenticates, rate-limits and runs the matched handler; returns its continuation, if any.
  Continuation Dispatch(http::Exchange& ex, Router::Match& match);
  // Resolves the request's bearer token (and, for a Route::token_in_read route without a token
  // cache, reads its connection in the same statement); replies 401 and returns false when it is
  // not valid.
  bool Authenticate(Context& ctx, const api::Route& route);
  // CORS (contract section 10): answers a preflight, or adds the headers of an allowed origin.
  bool HandlePreflight(http::Exchange& ex, const Router::Match& match) const;
  void AddCorsHeaders(http::Exchange& ex) const;
  bool OriginAllowed(std::string_view origin) const;

  store::Store& store_;  // only ever handed out as its narrow interfaces
  // The database's buckets when the store is shared by several nodes; else nullptr, and
  // limiter_ keeps them in memory.
  store::RateLimitStore* shared_limits_;
  const bool point_reads_are_local_;
  BlockingPool& pool_;
  const domain::SecretSealer& sealer_;
  const domain::TypeCatalog& types_;
  probe::ProbeEngine& engine_;
  catalog::SyncService& syncs_;
  ApiOptions options_;
  Router router_;
  RateLimiter limiter_;
  auth::TokenCache token_cache_;  // of the store's revocation epoch; off without one
  BodyCache bodies_;
};

// ---- response helpers shared by the handlers ---------------------------------------------

void ReplyJson(http::Exchange& ex, int status, const boost::json::value& body);
// The same for a body already written as JSON text (core/json_write.h): moved into the
// response, never copied.
void ReplyJsonText(http::Exchange& ex, int status, std::string body);
// Maps an Error to its status and contract body; a kInternal message is logged, not shown.
void ReplyError(http::Exchange& ex, const Error& error);

// Loads the connection named by the route's {connectionId} as the caller may see it: 404 for
// unknown ids and other organizations' ids, 403 for a same-organization connection the caller
// holds no grant on.
Result<domain::Connection> LoadVisible(Context& ctx);
// The route's placeholder `i` as a lowercase UUID (ids are matched case-insensitively), or
// nullopt when it is not one (such an id names nothing: a 404).
std::optional<std::string> UuidParam(const Context& ctx, std::size_t i);

// The paging parameters shared by every list endpoint (contract section 6): `limit` 1..1000
// (default 50, larger served as 1000; 0, negative or non-integer is a 400) and `page`, either a
// page token or a plain decimal page number counting from 1.
struct Paging {
  int limit = 50;
  std::optional<std::string> token;
  std::optional<std::int64_t> page_number;
};
Result<Paging> ParsePaging(const Context& ctx);

// ---- handlers (one file per resource) ------------------------------------------------------

void HandleHealthz(Context& ctx);
void HandleReadyz(Context& ctx);
void HandleMetrics(Context& ctx);
void HandleToken(Context& ctx);
void HandleCreateConnection(Context& ctx);
void HandleListConnections(Context& ctx);
void HandleGetConnection(Context& ctx);
void HandleReplaceConnection(Context& ctx);
void HandlePatchConnection(Context& ctx);
void HandleArchiveConnection(Context& ctx);
void HandleTestSavedConnection(Context& ctx);
void HandleTestProposedChange(Context& ctx);
void HandleTestUnsavedConnection(Context& ctx);
void HandleListGrants(Context& ctx);
void HandleAddGrants(Context& ctx);
void HandleDeleteGrant(Context& ctx);
// The warehouse catalog (contract section 13), api/catalog.cc; path grants in api/grants.cc.
void HandleSync(Context& ctx);
void HandleGetSync(Context& ctx);
void HandleLookup(Context& ctx);
void HandleListPaths(Context& ctx);
void HandleGetPath(Context& ctx);
void HandleListColumns(Context& ctx);
void HandleListPathGrants(Context& ctx);
void HandleAddPathGrants(Context& ctx);
void HandleDeletePathGrant(Context& ctx);
// members.cc, teams.cc (contract section 12)
void HandleWhoami(Context& ctx);
void HandleListMembers(Context& ctx);
void HandleCreateMember(Context& ctx);
void HandleGetMember(Context& ctx);
void HandlePatchMember(Context& ctx);
void HandleDeactivateMember(Context& ctx);
void HandleListMemberTeams(Context& ctx);
void HandleListTeams(Context& ctx);
void HandleCreateTeam(Context& ctx);
void HandleGetTeam(Context& ctx);
void HandlePatchTeam(Context& ctx);
void HandleArchiveTeam(Context& ctx);
void HandleListTeamMembers(Context& ctx);
void HandlePatchTeamMembers(Context& ctx);
// dbt_artifacts.cc (contract section 13); its body is streamed, up to this limit: the archive's
// own plus room for the multipart framing.
void HandleUploadDbtArtifacts(Context& ctx);
std::size_t DbtArtifactsBodyLimit();

}  // namespace connreg::api
