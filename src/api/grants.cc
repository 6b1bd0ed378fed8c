// The grant endpoints (contract section 8), shaped as Sigma's: list (paged like connections),
// add a batch (all or nothing; a repeat grantee changes the permission), delete one. Admin only.
// The same, on a path of the catalog (contract section 13): the grant is on an inode.
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
          {"inodeId", g.inode_id.empty() ? g.connection_id : g.inode_id},
          {"organizationId", g.organization_id},
          {"memberId", opt(g.member_id)},
          {"teamId", opt(g.team_id)},
          {"permission", g.permission},
          {"createdBy", g.created_by},
          {"updatedBy", g.updated_by},
          {"createdAt", FormatRfc3339(g.created_at)},
          {"updatedAt", FormatRfc3339(g.updated_at)}};
}

// What grants are on: a connection, or a path of one (inode_id set).
struct GrantTarget {
  std::string organization_id;
  std::string connection_id;
  std::string inode_id;
};

// The route's connection, for an admin: 403 for others, 404 when it is not in the organization.
Result<GrantTarget> LoadForGrants(Context& ctx) {
  if (!ctx.is_admin()) return Error::Forbidden("managing grants needs an admin account");
  auto c = LoadVisible(ctx);
  if (!c) return c.error();
  return GrantTarget{c->organization_id, c->connection_id, ""};
}

// The route's path, for an admin: 403 for others, 404 when it is not in the organization.
Result<GrantTarget> LoadPathForGrants(Context& ctx) {
  if (!ctx.is_admin()) return Error::Forbidden("managing grants needs an admin account");
  auto id = UuidParam(ctx, 0);
  if (!id) return Error::NotFound("path not found");
  auto inode = ctx.catalog.GetInode(ctx.principal->organization_id, *id);
  if (!inode) {
    if (inode.error().code == ErrorCode::kNotFound) return Error::NotFound("path not found");
    return inode.error();
  }
  return GrantTarget{inode->organization_id, inode->connection_id, inode->inode_id};
}

const boost::json::string* StringField(const boost::json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it == o.end() ? nullptr : it->value().if_string();
}

Result<std::vector<store::Grant>> ParseGrants(const boost::json::value& body, const Context& ctx,
                                              const GrantTarget& target) {
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
    grant.organization_id = target.organization_id;
    grant.connection_id = target.connection_id;
    grant.inode_id = target.inode_id;
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

// The grants of `t` (a connection's, or a path's), paged.
void ListGrantsOf(Context& ctx, const GrantTarget& t) {
  auto paging = ParsePaging(ctx);
  if (!paging) return ReplyError(ctx.ex, paging.error());
  auto key = ctx.server_keys.ServerKey("page-token");
  if (!key) return ReplyError(ctx.ex, key.error());
  const std::string fingerprint =
      QueryFingerprint("grants:" + t.connection_id + ":" + t.inode_id, {});
  std::optional<store::GrantCursor> after;
  std::int64_t offset = 0;
  if (paging->page_number) {
    offset = (*paging->page_number - 1) * paging->limit;
  } else if (paging->token) {
    auto token = DecodePageToken(*paging->token, *key);
    if (!token) return ReplyError(ctx.ex, token.error());
    if (token->organization_id != t.organization_id || token->filter != fingerprint) {
      return ReplyError(ctx.ex,
                        Error::BadRequest("page is not a valid page token for this listing"));
    }
    after = store::GrantCursor{token->cursor.created_at, token->cursor.connection_id};
  }
  auto page =
      t.inode_id.empty()
          ? ctx.grants.ListGrants(t.organization_id, t.connection_id, paging->limit, after, offset)
          : ctx.catalog.ListPathGrants(t.organization_id, t.inode_id, paging->limit, after, offset);
  if (!page) return ReplyError(ctx.ex, page.error());
  boost::json::array entries;
  for (const auto& g : page->entries) entries.push_back(RenderGrant(g));
  boost::json::value next = nullptr;
  if (page->has_more && !page->entries.empty()) {
    const auto& last = page->entries.back();
    next = EncodePageToken({t.organization_id, fingerprint, {"", last.created_at, last.grant_id}},
                           *key);
  }
  ReplyJson(ctx.ex, 200,
            {{"entries", std::move(entries)},
             {"nextPage", std::move(next)},
             {"hasMore", page->has_more},
             {"total", page->total}});
}

void AddGrantsTo(Context& ctx, const GrantTarget& t) {
  auto body = ParseJsonBody(ctx.ex.request);
  if (!body) return ReplyError(ctx.ex, body.error());
  auto grants = ParseGrants(*body, ctx, t);
  if (!grants) return ReplyError(ctx.ex, grants.error());
  Status s = t.inode_id.empty()
                 ? ctx.grants.UpsertGrants(t.organization_id, t.connection_id, *grants)
                 : ctx.catalog.UpsertPathGrants(t.organization_id, t.inode_id, *grants);
  if (!s) return ReplyError(ctx.ex, s.error());
  ReplyJson(ctx.ex, 200, boost::json::object{});
}

void DeleteGrantOf(Context& ctx, const GrantTarget& t, const std::string& grant_id) {
  Status s = t.inode_id.empty()
                 ? ctx.grants.DeleteGrant(t.organization_id, t.connection_id, grant_id)
                 : ctx.catalog.DeletePathGrant(t.organization_id, t.inode_id, grant_id);
  if (!s) {
    if (s.error().code == ErrorCode::kNotFound) {
      return ReplyError(ctx.ex, Error::NotFound("grant not found"));
    }
    return ReplyError(ctx.ex, s.error());
  }
  ReplyJson(ctx.ex, 200, boost::json::object{});
}

// Runs `then` on the route's grant target (`load`), or replies with why there is none.
template <class Load, class Then>
void WithTarget(Context& ctx, Load load, Then then) {
  // Permission first: a caller who may not manage grants learns nothing from its body.
  auto t = load(ctx);
  if (!t) return ReplyError(ctx.ex, t.error());
  then(*t);
}

}  // namespace

void HandleListGrants(Context& ctx) {
  WithTarget(ctx, LoadForGrants, [&](const GrantTarget& t) { ListGrantsOf(ctx, t); });
}
void HandleAddGrants(Context& ctx) {
  WithTarget(ctx, LoadForGrants, [&](const GrantTarget& t) { AddGrantsTo(ctx, t); });
}
void HandleDeleteGrant(Context& ctx) {
  WithTarget(ctx, LoadForGrants,
             [&](const GrantTarget& t) { DeleteGrantOf(ctx, t, ctx.params.at(1)); });
}
void HandleListPathGrants(Context& ctx) {
  WithTarget(ctx, LoadPathForGrants, [&](const GrantTarget& t) { ListGrantsOf(ctx, t); });
}
void HandleAddPathGrants(Context& ctx) {
  WithTarget(ctx, LoadPathForGrants, [&](const GrantTarget& t) { AddGrantsTo(ctx, t); });
}
void HandleDeletePathGrant(Context& ctx) {
  WithTarget(ctx, LoadPathForGrants,
             [&](const GrantTarget& t) { DeleteGrantOf(ctx, t, ctx.params.at(1)); });
}

}  // namespace connreg::api
