#include "api/people.h"

#include <utility>

#include <boost/url/parse.hpp>

#include "api/page_token.h"
#include "core/time.h"
#include "crypto/hash.h"
#include "domain/connection.h"

namespace connreg::api {
namespace {

constexpr std::size_t kMaxFilterBytes = 1024;

boost::json::value OrNull(const std::optional<std::string>& v) {
  return v ? boost::json::value(*v) : boost::json::value(nullptr);
}

// Stable, opaque, and the same on every node: derived from the member id.
std::string HomeFolderId(const std::string& member_id) {
  return crypto::TokenHash("home-folder:" + member_id).substr(0, 32);
}

}  // namespace

boost::json::object RenderMember(const domain::Member& m) {
  return {{"organizationId", m.organization_id},
          {"memberId", m.member_id},
          {"memberType", m.account_type},
          {"firstName", m.first_name},
          {"lastName", m.last_name},
          {"email", m.email},
          {"profileImgUrl", nullptr},
          {"createdBy", m.created_by},
          {"updatedBy", m.updated_by},
          {"createdAt", FormatRfc3339(m.created_at)},
          {"updatedAt", FormatRfc3339(m.updated_at)},
          {"homeFolderId", HomeFolderId(m.member_id)},
          {"userKind", "internal"},
          {"isArchived", m.is_archived},
          {"isInactive", m.is_inactive}};
}

boost::json::object RenderTeam(const domain::Team& t, const std::vector<std::string>* member_ids) {
  boost::json::object o{{"teamId", t.team_id},
                        {"name", t.name},
                        {"description", OrNull(t.description)},
                        {"visibility", t.visibility},
                        {"isArchived", t.is_archived},
                        {"workspaceId", nullptr},
                        {"createdBy", t.created_by},
                        {"updatedBy", t.updated_by},
                        {"createdAt", FormatRfc3339(t.created_at)},
                        {"updatedAt", FormatRfc3339(t.updated_at)}};
  if (member_ids != nullptr) {
    boost::json::array members;
    for (const auto& id : *member_ids) members.emplace_back(id);
    o["members"] = std::move(members);
  }
  return o;
}

QueryParams::QueryParams(const Context& ctx) {
  auto url = boost::urls::parse_origin_form(ctx.ex.request.target());
  if (!url) return;  // the router refused such targets already
  for (auto param : url->params()) params_.emplace_back(param.key, param.value);
}

std::optional<std::string> QueryParams::Get(std::string_view name) const {
  for (auto it = params_.rbegin(); it != params_.rend(); ++it) {
    if (it->first == name) return it->second;
  }
  return std::nullopt;
}

Result<bool> QueryParams::Bool(std::string_view name) const {
  auto v = Get(name);
  if (!v || *v == "false" || *v == "0") return false;
  if (*v == "true" || *v == "1") return true;
  return Error::BadRequest(std::string(name) + " must be true or false");
}

Result<std::optional<std::string>> QueryParams::Folded(std::string_view name) const {
  auto v = Get(name);
  if (!v || v->empty()) return std::optional<std::string>();
  if (v->size() > kMaxFilterBytes) return Error::BadRequest(std::string(name) + " is too long");
  return std::optional<std::string>(domain::FoldName(*v));
}

Result<Listing> Listing::Open(Context& ctx, std::string_view scope) {
  Listing listing;
  auto paging = ParsePaging(ctx);
  if (!paging) return std::move(paging).error();
  listing.paging_ = std::move(*paging);
  auto key = ctx.server_keys.ServerKey("page-token");
  if (!key) return std::move(key).error();
  listing.key_ = std::move(*key);
  listing.organization_id_ = ctx.principal->organization_id;
  listing.fingerprint_ = QueryFingerprint(scope, {});
  if (listing.paging_.page_number) {
    listing.start_.offset = (*listing.paging_.page_number - 1) * listing.paging_.limit;
  } else if (listing.paging_.token) {
    auto token = DecodePageToken(*listing.paging_.token, listing.key_);
    if (!token) return std::move(token).error();
    if (token->organization_id != listing.organization_id_ ||
        token->filter != listing.fingerprint_) {
      return Error::BadRequest("page is not a valid page token for this listing");
    }
    listing.start_.after = std::move(token->cursor);
  }
  return listing;
}

boost::json::object Listing::Page(boost::json::array entries, bool has_more, std::int64_t total,
                                  const std::optional<store::ListCursor>& last) const {
  boost::json::value next = nullptr;
  if (has_more && last) {
    next = EncodePageToken({organization_id_, fingerprint_, *last}, key_);
  }
  return {{"entries", std::move(entries)},
          {"nextPage", std::move(next)},
          {"hasMore", has_more},
          {"total", total}};
}

bool RequireAdminFor(Context& ctx, std::string_view what) {
  if (ctx.is_admin()) return true;
  ReplyError(ctx.ex, Error::Forbidden(std::string(what) + " needs an admin account"));
  return false;
}

}  // namespace connreg::api
