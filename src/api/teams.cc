// The /v2/teams handlers (contract section 12), shaped as Sigma's; admin only. An archived team
// still answers GET (isArchived: true), leaves the listings, frees its name and grants nothing;
// changing it or its members is a 409.
#include <algorithm>

#include "api/json_body.h"
#include "api/people.h"
#include "crypto/random.h"

namespace connreg::api {
namespace {

constexpr std::size_t kMaxIdChars = 255;

// The route's {teamId}, or a 404 for an id no team can have.
Result<std::string> TeamId(const Context& ctx) {
  const std::string& id = ctx.params.at(0);
  if (id.empty() || id.size() > kMaxIdChars) return Error::NotFound("team not found");
  return id;
}

// A single-team response: the team with its members.
void ReplyTeam(Context& ctx, const std::string& team_id) {
  std::vector<std::string> members;
  auto t = ctx.members.GetTeam(ctx.principal->organization_id, team_id, &members);
  if (!t) return ReplyError(ctx.ex, t.error());
  ReplyJson(ctx.ex, 200, RenderTeam(*t, &members));
}

}  // namespace

void ReplyTeamPage(Context& ctx, store::TeamListQuery q, std::string_view scope) {
  ReplyPage(
      ctx, scope, std::move(q),
      [&](const store::TeamListQuery& query) { return ctx.members.ListTeams(query); },
      [](const domain::Team& t) { return RenderTeam(t); },
      [](const domain::Team& t) {
        return std::pair{domain::FoldName(t.name), t.team_id};
      });
}

void HandleListTeams(Context& ctx) {
  if (!RequireAdminFor(ctx, "listing teams")) return;
  const QueryParams params(ctx);
  store::TeamListQuery q;
  q.organization_id = ctx.principal->organization_id;
  auto name = params.Folded("name");
  if (!name) return ReplyError(ctx.ex, name.error());
  auto description = params.Folded("description");
  if (!description) return ReplyError(ctx.ex, description.error());
  q.name = std::move(*name);
  q.description = std::move(*description);
  if (auto visibility = params.Get("visibility"); visibility && !visibility->empty()) {
    if (!domain::IsTeamVisibility(*visibility)) {
      return ReplyError(ctx.ex, Error::BadRequest("visibility must be public or private"));
    }
    q.visibility = std::move(*visibility);
  }
  const std::string scope = "teams\nn:" + q.name.value_or("") +
                            "\nd:" + q.description.value_or("") +
                            "\nv:" + q.visibility.value_or("");
  ReplyTeamPage(ctx, std::move(q), scope);
}

void HandleCreateTeam(Context& ctx) {
  if (!RequireAdminFor(ctx, "creating teams")) return;
  auto body = ParseJsonBody(ctx.ex.request);
  if (!body) return ReplyError(ctx.ex, body.error());
  auto created = domain::BuildNewTeam(*body, ctx.actor(), NowMs(), crypto::NewUuid4());
  if (!created) return ReplyError(ctx.ex, created.error());
  if (auto s = ctx.members.CreateTeam(created->team, created->member_ids); !s) {
    return ReplyError(ctx.ex, s.error());
  }
  std::vector<std::string> members = created->member_ids;
  std::sort(members.begin(), members.end());
  ReplyJson(ctx.ex, 200, RenderTeam(created->team, &members));
}

void HandleGetTeam(Context& ctx) {
  if (!RequireAdminFor(ctx, "reading teams")) return;
  auto id = TeamId(ctx);
  if (!id) return ReplyError(ctx.ex, id.error());
  ReplyTeam(ctx, *id);
}

void HandlePatchTeam(Context& ctx) {
  if (!RequireAdminFor(ctx, "changing teams")) return;
  auto id = TeamId(ctx);
  if (!id) return ReplyError(ctx.ex, id.error());
  auto body = ParseJsonBody(ctx.ex.request);
  if (!body) return ReplyError(ctx.ex, body.error());
  auto change = domain::ParseTeamChange(*body);
  if (!change) return ReplyError(ctx.ex, change.error());
  auto t = ctx.members.UpdateTeam(ctx.principal->organization_id, *id, *change,
                                  ctx.principal->member_id, NowMs());
  if (!t) return ReplyError(ctx.ex, t.error());
  ReplyTeam(ctx, *id);
}

void HandleArchiveTeam(Context& ctx) {
  if (!RequireAdminFor(ctx, "deleting teams")) return;
  auto id = TeamId(ctx);
  if (!id) return ReplyError(ctx.ex, id.error());
  if (auto s = ctx.members.ArchiveTeam(ctx.principal->organization_id, *id,
                                       ctx.principal->member_id, NowMs());
      !s) {
    return ReplyError(ctx.ex, s.error());
  }
  ReplyJson(ctx.ex, 200, boost::json::object{});
}

void HandleListTeamMembers(Context& ctx) {
  if (!RequireAdminFor(ctx, "listing team members")) return;
  auto id = TeamId(ctx);
  if (!id) return ReplyError(ctx.ex, id.error());
  // ListTeamMembers' paging as a listing query: its keyset position is the last member id.
  struct Query {
    struct Cursor {
      std::string unused_sort_key;
      std::string member_id;
    };
    int limit = 0;
    std::int64_t offset = 0;
    std::optional<Cursor> after;
  };
  ReplyPage(
      ctx, "team-members\n" + *id, Query{},
      [&](const Query& q) {
        return ctx.members.ListTeamMembers(
            ctx.principal->organization_id, *id, q.limit,
            q.after ? std::optional<std::string>(q.after->member_id) : std::nullopt, q.offset);
      },
      [](const store::TeamMembership& m) {
        return boost::json::object{
            {"userId", m.member_id}, {"isTeamAdmin", m.is_team_admin}, {"addedBy", m.added_by}};
      },
      [](const store::TeamMembership& m) {
        return std::pair{std::string(), m.member_id};
      });
}

void HandlePatchTeamMembers(Context& ctx) {
  if (!RequireAdminFor(ctx, "changing team members")) return;
  auto id = TeamId(ctx);
  if (!id) return ReplyError(ctx.ex, id.error());
  auto body = ParseJsonBody(ctx.ex.request);
  if (!body) return ReplyError(ctx.ex, body.error());
  auto change = domain::ParseTeamMembersChange(*body);
  if (!change) return ReplyError(ctx.ex, change.error());
  if (auto s = ctx.members.ChangeTeamMembers(ctx.principal->organization_id, *id, *change,
                                             ctx.principal->member_id);
      !s) {
    return ReplyError(ctx.ex, s.error());
  }
  ReplyJson(ctx.ex, 200, boost::json::object{});
}

}  // namespace connreg::api
