// The /v2/connections handlers (contract sections 4 to 6).
#include <boost/beast/http/field.hpp>
#include <boost/json/object.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <random>
#include <thread>

#include "api/api.h"
#include "api/idempotency.h"
#include "api/json_body.h"
#include "api/page_token.h"
#include "api/render.h"
#include "core/log.h"
#include "crypto/random.h"

namespace connreg::api {
namespace {

namespace http_ = boost::beast::http;

constexpr TimeMs kIdempotencyWindowMs = 24LL * 3600 * 1000;
constexpr int kMaxUpdateAttempts = 32;

bool RequireAdmin(Context& ctx) {
  if (ctx.is_admin()) return true;
  ReplyError(ctx.ex, Error::Forbidden("this operation needs an admin account"));
  return false;
}

bool IsLowerUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// Strong or weak entity tags listed in an If-Match / If-None-Match header.
bool EtagListMatches(std::string_view header, const std::string& etag) {
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view item = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (item == "*") return true;
    if (item.size() > 2 && item.substr(0, 2) == "W/") item.remove_prefix(2);
    if (item == etag) return true;
    // Clients that send the bare version number (the `version` field) are understood too.
    if (item.size() + 2 == etag.size() && etag.substr(1, item.size()) == item) return true;
  }
  return false;
}

// 412 when the request carries an If-Match that the stored version does not satisfy.
bool CheckIfMatch(Context& ctx, const domain::Connection& stored) {
  auto h = ctx.ex.request.find(http_::field::if_match);
  if (h == ctx.ex.request.end() || EtagListMatches(h->value(), EtagOf(stored))) return true;
  ReplyError(ctx.ex, Error::PreconditionFailed("If-Match does not match the current version " +
                                               EtagOf(stored)));
  return false;
}

bool HasIfMatch(const Context& ctx) {
  return ctx.ex.request.find(http_::field::if_match) != ctx.ex.request.end();
}

void ReplyConnection(Context& ctx, int status, const domain::Connection& c) {
  ReplyJsonText(ctx.ex, status, RenderConnection(c));
  ctx.ex.response.set(http_::field::etag, EtagOf(c));
}

// Runs a read-modify-write of the route's connection: `change` builds the next state from the
// stored one (or replies and returns nullopt). A concurrent writer makes the compare-and-set fail;
// without If-Match the change is retried on the fresh state, with If-Match it is a 412.
template <class Change>
void UpdateWith(Context& ctx, Change change, bool reply_with_object = true) {
  for (int attempt = 0; attempt < kMaxUpdateAttempts; ++attempt) {
    auto stored = LoadVisible(ctx);
    if (!stored) return ReplyError(ctx.ex, stored.error());
    if (!CheckIfMatch(ctx, *stored)) return;
    std::optional<domain::Connection> next = change(*stored);
    if (!next) return;
    auto s = ctx.connections.UpdateConnection(*next, stored->version);
    if (s) {
      if (reply_with_object) return ReplyConnection(ctx, 200, *next);
      return ReplyJson(ctx.ex, 200, boost::json::object{});
    }
    if (s.error().code != ErrorCode::kPreconditionFailed || HasIfMatch(ctx)) {
      return ReplyError(ctx.ex, s.error());
    }
    // Lost the race: back off a random 0..2^attempt ms (at most 32) so that concurrent writers
    // stop colliding in lockstep. This runs on the blocking pool, never on an I/O thread.
    thread_local std::minstd_rand jitter(std::random_device{}());
    std::this_thread::sleep_for(std::chrono::milliseconds(jitter() % (1u << std::min(attempt, 5))));
  }
  ReplyError(ctx.ex, Error::Conflict("the connection is being changed by others; try again"));
}

bool RejectSample(Context& ctx, const domain::Connection& stored) {
  if (!stored.is_sample) return false;
  ReplyError(ctx.ex, Error::Forbidden("sample connections are read-only"));
  return true;
}

std::optional<std::string> IdempotencyKey(const Context& ctx, Error* error) {
  auto h = ctx.ex.request.find("Idempotency-Key");
  if (h == ctx.ex.request.end()) return std::nullopt;
  std::string_view key = h->value();
  bool ok = !key.empty() && key.size() <= 255;
  for (char c : key) ok = ok && c > 0x20 && c < 0x7f;
  if (!ok) {
    *error = Error::BadRequest("Idempotency-Key must be 1 to 255 visible ASCII characters");
    return std::nullopt;
  }
  return std::string(key);
}

void ReplyStored(Context& ctx, const store::IdempotentResponse& r) {
  ctx.ex.response.result(static_cast<unsigned>(r.status));
  ctx.ex.response.set(http_::field::content_type, "application/json");
  ctx.ex.response.body() = r.body;
  if (!r.location.empty()) ctx.ex.response.set(http_::field::location, r.location);
  ctx.ex.response.set("Idempotent-Replayed", "true");
}

}  // namespace

std::optional<std::string> UuidParam(const Context& ctx, std::size_t i) {
  std::string id = ctx.params.at(i);
  for (char& c : id) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!IsLowerUuid(id)) return std::nullopt;
  return id;
}

Result<domain::Connection> LoadVisible(Context& ctx) {
  constexpr const char* kNotFound = "connection not found";
  constexpr const char* kNoGrant = "you hold no grant on this connection";
  if (ctx.token_read) {  // read with the token check (Route::token_in_read); used once
    store::TokenConnectionRead read = std::move(*ctx.token_read);
    ctx.token_read.reset();
    if (!read.connection) return Error::NotFound(kNotFound);
    if (!read.visible) return Error::Forbidden(kNoGrant);
    return std::move(*read.connection);
  }
  auto param = UuidParam(ctx, 0);
  if (!param) return Error::NotFound(kNotFound);
  const std::string& id = *param;
  auto c = ctx.connections.GetConnection(ctx.principal->organization_id, id);
  if (!c) {
    if (c.error().code == ErrorCode::kNotFound) return Error::NotFound(kNotFound);
    return c;
  }
  if (!ctx.is_admin()) {
    auto granted =
        ctx.grants.HasGrant(ctx.principal->organization_id, id, ctx.principal->member_id);
    if (!granted) return granted.error();
    if (!*granted) return Error::Forbidden(kNoGrant);
  }
  return c;
}

void HandleCreateConnection(Context& ctx) {
  if (!RequireAdmin(ctx)) return;
  Error key_error{ErrorCode::kBadRequest, ""};
  std::optional<std::string> key = IdempotencyKey(ctx, &key_error);
  if (!key && !key_error.message.empty()) return ReplyError(ctx.ex, key_error);
  auto body = ParseJsonBody(ctx.ex.request);
  if (!body) return ReplyError(ctx.ex, body.error());

  const TimeMs now = NowMs();
  static constexpr std::string_view kRequestLine = "POST /v2/connections";
  auto replay = [&]() -> bool {
    auto prior = ctx.idempotency.GetIdempotent(
        ctx.principal->organization_id, ctx.principal->member_id, *key, now - kIdempotencyWindowMs);
    if (!prior) {
      if (prior.error().code != ErrorCode::kNotFound) ReplyError(ctx.ex, prior.error());
      return prior.error().code != ErrorCode::kNotFound;
    }
    auto same = IsSameRequest(ctx.types, prior->request_hash, kRequestLine, *body, ctx.sealer);
    if (!same) {
      ReplyError(ctx.ex, same.error());
    } else if (!*same) {
      ReplyError(ctx.ex, Error::Conflict("Idempotency-Key was already used with another body"));
    } else {
      ReplyStored(ctx, *prior);
    }
    return true;
  };
  if (key && replay()) return;

  auto c = domain::BuildNewConnection(ctx.types, *body, ctx.actor(), now, crypto::NewUuid4(),
                                      ctx.sealer);
  if (!c) return ReplyError(ctx.ex, c.error());
  const std::string location = "/v2/connections/" + c->connection_id;
  Status saved = OkStatus();
  if (key) {
    store::IdempotentResponse response{
        RequestFingerprint(ctx.types, kRequestLine, *body, ctx.sealer), 201, RenderConnection(*c),
        location, now};
    saved = ctx.idempotency.CreateConnectionIdempotent(*c, ctx.principal->member_id, *key, response,
                                                       now - kIdempotencyWindowMs);
    if (!saved && saved.error().code == ErrorCode::kConflict && replay()) return;
  } else {
    saved = ctx.connections.CreateConnection(*c);
  }
  if (!saved) return ReplyError(ctx.ex, saved.error());
  ReplyConnection(ctx, 201, *c);
  ctx.ex.response.set(http_::field::location, location);
}

void HandleGetConnection(Context& ctx) {
  auto c = LoadVisible(ctx);
  if (!c) return ReplyError(ctx.ex, c.error());
  if (auto h = ctx.ex.request.find(http_::field::if_none_match);
      h != ctx.ex.request.end() && EtagListMatches(h->value(), EtagOf(*c))) {
    ctx.ex.response.result(http_::status::not_modified);
    ctx.ex.response.set(http_::field::etag, EtagOf(*c));
    return;
  }
  ReplyConnection(ctx, 200, *c);
}

void HandleReplaceConnection(Context& ctx) {
  if (!RequireAdmin(ctx)) return;
  auto body = ParseJsonBody(ctx.ex.request);
  if (!body) return ReplyError(ctx.ex, body.error());
  UpdateWith(ctx, [&](const domain::Connection& stored) -> std::optional<domain::Connection> {
    if (RejectSample(ctx, stored)) return std::nullopt;
    bool restore = false;
    auto next = domain::BuildReplacement(ctx.types, stored, *body, ctx.actor(), NowMs(), ctx.sealer,
                                         &restore);
    if (!next) {
      ReplyError(ctx.ex, next.error());
      return std::nullopt;
    }
    if (stored.is_archived && !restore) {
      ReplyError(ctx.ex, Error::Conflict("the connection is archived; send \"restore\": true to "
                                         "restore and update it"));
      return std::nullopt;
    }
    next->is_archived = false;
    return std::move(*next);
  });
}

void HandlePatchConnection(Context& ctx) {
  if (!RequireAdmin(ctx)) return;
  auto body = ParseJsonBody(ctx.ex.request);
  if (!body) return ReplyError(ctx.ex, body.error());
  UpdateWith(ctx, [&](const domain::Connection& stored) -> std::optional<domain::Connection> {
    if (RejectSample(ctx, stored)) return std::nullopt;
    if (stored.is_archived) {
      ReplyError(ctx.ex, Error::Conflict("the connection is archived; restore it with PUT"));
      return std::nullopt;
    }
    auto next = domain::BuildMerge(ctx.types, stored, *body, ctx.actor(), NowMs(), ctx.sealer);
    if (!next) {
      ReplyError(ctx.ex, next.error());
      return std::nullopt;
    }
    return std::move(*next);
  });
  if (ctx.ex.response.result_int() == 200) {
    ctx.ex.response.set("Deprecation", "true");
    ctx.ex.response.set(http_::field::link,
                        "</v2/connections/" + ctx.params.at(0) + ">; rel=\"successor-version\"");
  }
}

void HandleArchiveConnection(Context& ctx) {
  if (!RequireAdmin(ctx)) return;
  UpdateWith(
      ctx,
      [&](const domain::Connection& stored) -> std::optional<domain::Connection> {
        if (RejectSample(ctx, stored)) return std::nullopt;
        if (stored.is_archived) {
          ReplyJson(ctx.ex, 200, boost::json::object{});
          return std::nullopt;
        }
        domain::Connection next = stored;
        next.is_archived = true;
        next.updated_by = ctx.principal->member_id;
        next.updated_at = NowMs();
        next.version = stored.version + 1;
        return next;
      },
      /*reply_with_object=*/false);
}

// ---- listing ---------------------------------------------------------------------------------

namespace {

Result<int> ParseLimit(std::string_view v) {
  long long n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec == std::errc::result_out_of_range) {
    if (ec == std::errc::result_out_of_range && !v.empty() && v.front() != '-') return 1000;
    return Error::BadRequest("limit must be an integer from 1 to 1000");
  }
  if (ec != std::errc() || end != v.data() + v.size() || n < 1) {
    return Error::BadRequest("limit must be an integer from 1 to 1000");
  }
  return static_cast<int>(std::min<long long>(n, 1000));
}

Result<bool> ParseBool(std::string_view name, std::string_view v) {
  if (v == "true" || v == "1") return true;
  if (v == "false" || v == "0") return false;
  return Error::BadRequest(std::string(name) + " must be true or false");
}

bool IsDecimal(std::string_view v) {
  if (v.empty() || v.size() > 12) return false;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

Result<Paging> ParsePaging(const Context& ctx) {
  auto url = boost::urls::parse_origin_form(ctx.ex.request.target());
  Paging paging;
  if (!url) return paging;
  for (auto param : url->params()) {
    if (param.key == "limit") {
      auto limit = ParseLimit(param.value);
      if (!limit) return limit.error();
      paging.limit = *limit;
    } else if (param.key == "page" && !param.value.empty()) {
      if (IsDecimal(param.value)) {
        long long n = std::stoll(param.value);
        if (n < 1) return Error::BadRequest("a numeric page counts from 1");
        paging.page_number = n;
      } else {
        paging.token = param.value;
      }
    }
  }
  return paging;
}

void HandleListConnections(Context& ctx) {
  auto paging = ParsePaging(ctx);
  if (!paging) return ReplyError(ctx.ex, paging.error());
  store::ListQuery q;
  q.organization_id = ctx.principal->organization_id;
  q.limit = paging->limit;
  auto url = boost::urls::parse_origin_form(ctx.ex.request.target());
  for (auto param : url->params()) {
    const std::string& k = param.key;
    const std::string& v = param.value;
    if (k == "includeArchived") {
      auto b = ParseBool("includeArchived", v);
      if (!b) return ReplyError(ctx.ex, b.error());
      q.include_archived = *b;
    } else if (k == "search") {
      if (v.size() > 1024) return ReplyError(ctx.ex, Error::BadRequest("search is too long"));
      if (!v.empty()) q.search = domain::FoldName(v);
    } else if (k == "type") {
      if (ctx.types.Find(v) == nullptr) {
        return ReplyError(ctx.ex, Error::BadRequest("type is not a warehouse type: " +
                                                    std::string(v.substr(0, 64))));
      }
      q.type = v;
    }
    // Other parameters are ignored, as Sigma does.
  }
  if (!ctx.is_admin()) q.visible_to_member = ctx.principal->member_id;

  auto key = ctx.server_keys.ServerKey("page-token");
  if (!key) return ReplyError(ctx.ex, key.error());
  const std::string fingerprint =
      QueryFingerprint("connections:" + q.visible_to_member.value_or("*"), q);
  if (paging->page_number) {
    q.offset = (*paging->page_number - 1) * q.limit;
  } else if (paging->token) {
    auto token = DecodePageToken(*paging->token, *key);
    if (!token) return ReplyError(ctx.ex, token.error());
    if (token->organization_id != q.organization_id || token->filter != fingerprint) {
      return ReplyError(ctx.ex,
                        Error::BadRequest("page is not a valid page token for this listing"));
    }
    q.after = std::move(token->cursor);
  }

  // The bodies held at the stamps the page's snapshot read; the others are read in full,
  // rendered, and held.
  std::vector<BodyCache::Body> bodies;
  q.have_body = [&](std::size_t i, const store::ConnectionPageRow& row) {
    if (bodies.size() <= i) bodies.resize(i + 1);
    bodies[i] = ctx.bodies.Find(row.connection_id, row.stamp);
    return bodies[i] != nullptr;
  };
  auto result = ctx.connections.ListConnections(q);
  if (!result) return ReplyError(ctx.ex, result.error());
  bodies.resize(result->rows.size());
  auto entry = result->entries.begin();
  for (std::size_t i = 0; i < bodies.size(); ++i) {
    if (bodies[i]) continue;
    if (entry == result->entries.end()) {
      return ReplyError(ctx.ex, Error::Internal("listing: a page row without its entry"));
    }
    const store::ConnectionPageRow& row = result->rows[i];
    bodies[i] = std::make_shared<const std::string>(RenderConnection(*entry++));
    ctx.bodies.Put(row.connection_id, row.stamp, bodies[i]);
  }
  std::string next;
  if (result->has_more && !result->rows.empty()) {
    const auto& last = result->rows.back();
    next = EncodePageToken(
        {q.organization_id, fingerprint, {last.name, last.created_at, last.connection_id}}, *key);
  }
  ReplyJsonText(ctx.ex, 200,
                RenderConnectionPageOfBodies(bodies, next, result->has_more, result->total));
}

}  // namespace connreg::api
