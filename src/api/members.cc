// The /v2/members handlers and GET /v2/whoami (contract section 12), shaped as Sigma's. Admins
// manage members; any member may read itself, its teams, and who it is. The rules are the
// domain's (domain/member.h) and the store's invariants (store/store.h, MemberStore): an email
// taken by another active member, or the last active admin, is a 409.
#include "api/json_body.h"
#include "api/people.h"
#include "crypto/random.h"

namespace connreg::api {
namespace {

constexpr std::size_t kMaxIdChars = 255;

// The route's {memberId} as the caller may read it: itself, or any member of its organization
// for an admin (403 otherwise, before any lookup); 404 for ids of other organizations.
Result<domain::Member> LoadReadableMember(Context& ctx) {
  const std::string& id = ctx.params.at(0);
  if (!ctx.is_admin() && id != ctx.principal->member_id) {
    return Error::Forbidden("reading another member needs an admin account");
  }
  if (id.empty() || id.size() > kMaxIdChars) return Error::NotFound("member not found");
  return ctx.members.GetMember(ctx.principal->organization_id, id);
}

void ReplyMember(Context& ctx, const domain::Member& m) { ReplyJson(ctx.ex, 200, RenderMember(m)); }

// PATCH and DELETE: `change` applied in the store, under its rules.
Result<domain::Member> ChangeMember(Context& ctx, const domain::MemberChange& change) {
  const std::string& id = ctx.params.at(0);
  if (id.empty() || id.size() > kMaxIdChars) return Error::NotFound("member not found");
  return ctx.members.UpdateMember(ctx.principal->organization_id, id, change,
                                  ctx.principal->member_id, NowMs());
}

}  // namespace

void HandleWhoami(Context& ctx) {
  auto me = ctx.members.GetMember(ctx.principal->organization_id, ctx.principal->member_id);
  if (!me) return ReplyError(ctx.ex, me.error());
  ReplyJson(ctx.ex, 200,
            {{"userId", me->member_id},
             {"organizationId", me->organization_id},
             {"memberType", me->account_type},
             {"email", me->email}});
}

void HandleListMembers(Context& ctx) {
  if (!RequireAdminFor(ctx, "listing members")) return;
  const QueryParams params(ctx);
  store::MemberListQuery q;
  q.organization_id = ctx.principal->organization_id;
  auto archived = params.Bool("includeArchived");
  if (!archived) return ReplyError(ctx.ex, archived.error());
  auto inactive = params.Bool("includeInactive");
  if (!inactive) return ReplyError(ctx.ex, inactive.error());
  auto email = params.Folded("email");
  if (!email) return ReplyError(ctx.ex, email.error());
  auto search = params.Folded("search");
  if (!search) return ReplyError(ctx.ex, search.error());
  q.include_archived = *archived;
  q.include_inactive = *inactive;
  q.email = std::move(*email);
  q.search = std::move(*search);

  const std::string scope = "members\n" + std::string(q.include_archived ? "1" : "0") +
                            (q.include_inactive ? "1" : "0") + "\ne:" + q.email.value_or("") +
                            "\ns:" + q.search.value_or("");
  ReplyPage(
      ctx, scope, std::move(q),
      [&](const store::MemberListQuery& query) { return ctx.members.ListMembers(query); },
      [](const domain::Member& m) { return RenderMember(m); },
      [](const domain::Member& m) {
        return std::pair{domain::FoldName(m.email), m.member_id};
      });
}

void HandleCreateMember(Context& ctx) {
  if (!RequireAdminFor(ctx, "creating members")) return;
  auto body = ParseJsonBody(ctx.ex.request);
  if (!body) return ReplyError(ctx.ex, body.error());
  // The query's sendInvite means nothing here: nothing is ever sent to the address.
  auto created = domain::BuildNewMember(*body, ctx.actor(), NowMs(), crypto::NewOpaqueId());
  if (!created) return ReplyError(ctx.ex, created.error());
  if (auto s = ctx.members.CreateMember(created->member, created->teams); !s) {
    return ReplyError(ctx.ex, s.error());
  }
  ReplyMember(ctx, created->member);
}

void HandleGetMember(Context& ctx) {
  auto m = LoadReadableMember(ctx);
  if (!m) return ReplyError(ctx.ex, m.error());
  ReplyMember(ctx, *m);
}

void HandlePatchMember(Context& ctx) {
  if (!RequireAdminFor(ctx, "changing members")) return;
  auto body = ParseJsonBody(ctx.ex.request);
  if (!body) return ReplyError(ctx.ex, body.error());
  auto change = domain::ParseMemberChange(*body);
  if (!change) return ReplyError(ctx.ex, change.error());
  auto m = ChangeMember(ctx, *change);
  if (!m) return ReplyError(ctx.ex, m.error());
  ReplyMember(ctx, *m);
}

void HandleDeactivateMember(Context& ctx) {
  if (!RequireAdminFor(ctx, "deactivating members")) return;
  auto m = ChangeMember(ctx, domain::Deactivation());
  if (!m) return ReplyError(ctx.ex, m.error());
  ReplyJson(ctx.ex, 200, boost::json::object{});
}

void HandleListMemberTeams(Context& ctx) {
  auto m = LoadReadableMember(ctx);
  if (!m) return ReplyError(ctx.ex, m.error());
  store::TeamListQuery q;
  q.organization_id = m->organization_id;
  q.member_id = m->member_id;
  ReplyTeamPage(ctx, std::move(q), "member-teams\n" + m->member_id);
}

}  // namespace connreg::api
