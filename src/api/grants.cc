// The grant endpoints (contract section 8), shaped as Sigma's: list (paged like connections),
// add a batch (all or nothing; a repeat grantee changes the permission), delete one. Admin only.
#include <boost/url/parse.hpp>

#include "api/api.h"
#include "api/json_body.h"
#include "api/page_token.h"
#include "crypto/random.h"
#include "domain/permissions.h"

namespace connreg::api {
namespace {

constexpr std::size_t kMaxGrantsPerBatch = 1000;

boost::json::object RenderGrant(const store::Grant& g) {
  auto opt = [](const std::optional<std::string>& v) -> boost::json::value {
    return v ? boost::json::value(*v) : boost::json::value(nullptr);
  };
  return {{"grantId", g.grant_id},
          {"inodeId", g.connection_id},
          {"organizationId", g.organization_id},
          {"memberId", opt(g.member_id)},
          {"teamId", opt(g.team_id)},
          {"permission", g.permission},
          {"createdBy", g.created_by},
          {"updatedBy", g.updated_by},
          {"createdAt", FormatRfc3339(g.created_at)},
          {"updatedAt", FormatRfc3339(g.updated_at)}};
}

// The route's connection, for an admin: 403 for others, 404 when it is not in the organization.
Result<domain::Connection> LoadForGrants(Context& ctx) {
  if (!ctx.is_admin()) return Error::Forbidden("managing grants needs an admin account");
  return LoadVisible(ctx);
}

const boost::json::string* StringField(const boost::json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it == o.end() ? nullptr : it->value().if_string();
}

Result<std::vector<store::Grant>> ParseGrants(const boost::json::value& body, const Context& ctx,
                                              const domain::Connection& c) {
  const auto* root = body.if_object();
  if (root == nullptr) return Error::BadRequest("the body must be a JSON object");
  for (const auto& kv : *root) {
    if (kv.key() != "grants") {
      return Error::BadRequest(std::string(kv.key()) + " is not a field of this request");
    }
  }
  auto it = root->find("grants");
  const auto* list = it == root->end() ? nullptr : it->value().if_array();
  if (list == nullptr) return Error::BadRequest("grants is required and must be an array");
  if (list->empty()) return Error::BadRequest("grants must hold at least one grant");
  if (list->size() > kMaxGrantsPerBatch) {
    return Error::BadRequest("grants holds at most " + std::to_string(kMaxGrantsPerBatch));
  }
  const TimeMs now = NowMs();
  std::vector<store::Grant> out;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const std::string path = "grants[" + std::to_string(i) + "]";
    const auto* g = (*list)[i].if_object();
    if (g == nullptr) return Error::BadRequest(path + " must be an object");
    for (const auto& kv : *g) {
      if (kv.key() != "grantee" && kv.key() != "permission") {
        return Error::BadRequest(path + "." + std::string(kv.key()) + " is not a field of a grant");
      }
    }
    const auto* permission = StringField(*g, "permission");
    if (permission == nullptr || !domain::IsGrantPermission(*permission)) {
      return Error::BadRequest(path + ".permission must be \"usage\" or \"annotate\"");
    }
    auto grantee_it = g->find("grantee");
    const auto* grantee = grantee_it == g->end() ? nullptr : grantee_it->value().if_object();
    if (grantee == nullptr || grantee->size() != 1) {
      return Error::BadRequest(path + ".grantee must be {\"memberId\": …} or {\"teamId\": …}");
    }
    store::Grant grant;
    grant.grant_id = crypto::NewUuid4();
    grant.organization_id = c.organization_id;
    grant.connection_id = c.connection_id;
    grant.permission = std::string(*permission);
    grant.created_by = grant.updated_by = ctx.principal->member_id;
    grant.created_at = grant.updated_at = now;
    const auto& [key, value] = *grantee->begin();
    const auto* id = value.if_string();
    if (id == nullptr || id->empty() || id->size() > 255) {
      return Error::BadRequest(path + ".grantee." + std::string(key) +
                               " must be a non-empty string");
    }
    if (key == "memberId") {
      grant.member_id = std::string(*id);
    } else if (key == "teamId") {
      grant.team_id = std::string(*id);
    } else {
      return Error::BadRequest(path + ".grantee." + std::string(key) +
                               " is not a field of a grantee");
    }
    out.push_back(std::move(grant));
  }
  return out;
}

}  // namespace

void HandleListGrants(Context& ctx) {
  auto c = LoadForGrants(ctx);
  if (!c) return ReplyError(ctx.ex, c.error());
  auto paging = ParsePaging(ctx);
  if (!paging) return ReplyError(ctx.ex, paging.error());
  auto key = ctx.server_keys.ServerKey("page-token");
  if (!key) return ReplyError(ctx.ex, key.error());
  const std::string fingerprint = QueryFingerprint("grants:" + c->connection_id, {});
  std::optional<store::GrantCursor> after;
  std::int64_t offset = 0;
  if (paging->page_number) {
    offset = (*paging->page_number - 1) * paging->limit;
  } else if (paging->token) {
    auto token = DecodePageToken(*paging->token, *key);
    if (!token) return ReplyError(ctx.ex, token.error());
    if (token->organization_id != c->organization_id || token->filter != fingerprint) {
      return ReplyError(ctx.ex,
                        Error::BadRequest("page is not a valid page token for this listing"));
    }
    after = store::GrantCursor{token->cursor.created_at, token->cursor.connection_id};
  }
  auto page =
      ctx.grants.ListGrants(c->organization_id, c->connection_id, paging->limit, after, offset);
  if (!page) return ReplyError(ctx.ex, page.error());
  boost::json::array entries;
  for (const auto& g : page->entries) entries.push_back(RenderGrant(g));
  boost::json::value next = nullptr;
  if (page->has_more && !page->entries.empty()) {
    const auto& last = page->entries.back();
    next = EncodePageToken({c->organization_id, fingerprint, {"", last.created_at, last.grant_id}},
                           *key);
  }
  ReplyJson(ctx.ex, 200,
            {{"entries", std::move(entries)},
             {"nextPage", std::move(next)},
             {"hasMore", page->has_more},
             {"total", page->total}});
}

void HandleAddGrants(Context& ctx) {
  // Permission first: a caller who may not manage grants learns nothing from its body.
  auto c = LoadForGrants(ctx);
  if (!c) return ReplyError(ctx.ex, c.error());
  auto body = ParseJsonBody(ctx.ex.request);
  if (!body) return ReplyError(ctx.ex, body.error());
  auto grants = ParseGrants(*body, ctx, *c);
  if (!grants) return ReplyError(ctx.ex, grants.error());
  if (auto s = ctx.grants.UpsertGrants(c->organization_id, c->connection_id, *grants); !s) {
    return ReplyError(ctx.ex, s.error());
  }
  ReplyJson(ctx.ex, 200, boost::json::object{});
}

void HandleDeleteGrant(Context& ctx) {
  auto c = LoadForGrants(ctx);
  if (!c) return ReplyError(ctx.ex, c.error());
  auto s = ctx.grants.DeleteGrant(c->organization_id, c->connection_id, ctx.params.at(1));
  if (!s) {
    if (s.error().code == ErrorCode::kNotFound) {
      return ReplyError(ctx.ex, Error::NotFound("grant not found"));
    }
    return ReplyError(ctx.ex, s.error());
  }
  ReplyJson(ctx.ex, 200, boost::json::object{});
}

}  // namespace connreg::api
