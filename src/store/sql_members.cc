// Members, teams and team memberships (contract section 12): their rows and statements, once for
// every backend. Every write of an organization's members or teams starts by locking that
// organization's row (lock_organization), which serialises it with every other such write of
// the organization on any node: the checks that follow (an email or a team name taken, the last
// active admin) then read what the writers before committed, and no two writers can both pass a
// check that only one of them may (PostgreSQL runs write transactions at READ COMMITTED, where a
// check-then-write alone would let two admins demote each other). FOR NO KEY UPDATE leaves the
// row's key share, which inserts referencing the organization take, free: tokens and connections
// of the organization are written meanwhile without waiting. SQLite's one writer serialises every
// write transaction anyway.
#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "domain/connection.h"
#include "store/sql_queries.h"
#include "store/sql_rows.h"
#include "store/sql_store.h"

namespace connreg::store {
namespace {

constexpr int kMaxPageSize = 1000;

// A column written from a folded field and never read back: the haystack of a filter.
template <class Row, std::string (*Fold)(const Row&)>
constexpr Column<Row> Folded(std::string_view name) {
  return {name, [](Stmt& st, std::string_view p, const Row& row) { st.Bind(p, Fold(row)); },
          nullptr};
}

std::string FoldedEmail(const Member& m) { return domain::FoldName(m.email); }
// The haystack of `search` beside the email: "first last", folded.
std::string FoldedFullName(const Member& m) {
  return domain::FoldName(m.first_name + " " + m.last_name);
}
std::string FoldedTeamName(const Team& t) { return domain::FoldName(t.name); }

constexpr Column<Member> kMemberColumns[] = {
    Field<&Member::member_id>("member_id", kKey),
    Field<&Member::organization_id>("organization_id"),
    Field<&Member::email>("email"),
    Folded<Member, FoldedEmail>("email_folded"),
    Field<&Member::account_type>("account_type"),
    Field<&Member::created_at>("created_at"),
    Field<&Member::first_name>("first_name"),
    Field<&Member::last_name>("last_name"),
    Folded<Member, FoldedFullName>("name_folded"),
    Field<&Member::created_by>("created_by"),
    Field<&Member::updated_by>("updated_by"),
    Field<&Member::updated_at>("updated_at"),
    Field<&Member::is_archived>("is_archived"),
    Field<&Member::is_inactive>("is_inactive"),
};

constexpr Column<Team> kTeamColumns[] = {
    Field<&Team::team_id>("team_id", kKey),
    Field<&Team::organization_id>("organization_id"),
    Field<&Team::name>("name"),
    Folded<Team, FoldedTeamName>("name_folded"),
    Field<&Team::created_at>("created_at"),
    Field<&Team::description>("description"),
    {"description_folded",
     [](Stmt& st, std::string_view p, const Team& t) {
       if (t.description) {
         st.Bind(p, domain::FoldName(*t.description));
       } else {
         st.Bind(p, std::nullopt);
       }
     },
     nullptr},
    Field<&Team::visibility>("visibility"),
    Field<&Team::is_archived>("is_archived"),
    Field<&Team::created_by>("created_by"),
    Field<&Team::updated_by>("updated_by"),
    Field<&Team::updated_at>("updated_at"),
};

constexpr Column<TeamMembership> kTeamMembershipColumns[] = {
    Field<&TeamMembership::team_id>("team_id", kKey),
    Field<&TeamMembership::member_id>("member_id", kKey),
    Field<&TeamMembership::is_team_admin>("is_team_admin"),
    Field<&TeamMembership::added_by>("added_by"),
};

std::string UpdateSql(std::string_view table, const auto& columns) {
  return "UPDATE " + std::string(table) + " SET " + sql::UpdateSetList(columns) + " WHERE " +
         sql::KeyMatch(columns);
}

// The member listing's filters, shared by its page and count statements.
std::string MemberFilter(const sql::Dialect& d) {
  return " WHERE organization_id = :organization_id"
         " AND (CAST(:include_archived AS BOOLEAN) OR NOT is_archived)"
         " AND (CAST(:include_inactive AS BOOLEAN) OR NOT is_inactive)"
         " AND (CAST(:email AS TEXT) IS NULL OR email_folded = :email)"
         " AND (CAST(:search AS TEXT) IS NULL OR " +
         d.Contains("email_folded", ":search") + " OR " + d.Contains("name_folded", ":search") +
         ")";
}

// Order (folded email, member_id) within an organization: the index members_by_organization.
std::string MemberPageSql(const sql::Dialect& d, bool keyset) {
  return "SELECT " + sql::SelectList(kMemberColumns) + " FROM members" +
         d.IndexedBy("members_by_organization") + MemberFilter(d) +
         (keyset ? " AND (email_folded, member_id) > (:after_email, :after_member_id)"
                   " ORDER BY email_folded, member_id LIMIT :limit"
                 : " ORDER BY email_folded, member_id LIMIT :limit OFFSET :offset");
}

// Active teams only (an archived team leaves the listing); `of_member`: the member's teams.
std::string TeamFilter(bool of_member) {
  std::string sql =
      " WHERE organization_id = :organization_id AND NOT is_archived"
      " AND (CAST(:name AS TEXT) IS NULL OR name_folded = :name)"
      " AND (CAST(:description AS TEXT) IS NULL OR description_folded = :description)"
      " AND (CAST(:visibility AS TEXT) IS NULL OR visibility = :visibility)";
  if (of_member) {
    sql += " AND team_id IN (SELECT team_id FROM team_members WHERE member_id = :member_id)";
  }
  return sql;
}

// Order (folded name, team_id) within an organization: the index teams_by_name.
std::string TeamPageSql(bool keyset, bool of_member) {
  return "SELECT " + sql::SelectList(kTeamColumns) + " FROM teams" + TeamFilter(of_member) +
         (keyset ? " AND (name_folded, team_id) > (:after_name, :after_team_id)"
                   " ORDER BY name_folded, team_id LIMIT :limit"
                 : " ORDER BY name_folded, team_id LIMIT :limit OFFSET :offset");
}

std::string TeamMemberPageSql(bool keyset) {
  return "SELECT " + sql::SelectList(kTeamMembershipColumns) +
         " FROM team_members WHERE team_id = :team_id" +
         (keyset ? " AND member_id > :after_member_id ORDER BY member_id LIMIT :limit"
                 : " ORDER BY member_id LIMIT :limit OFFSET :offset");
}

}  // namespace

MemberQueries::MemberQueries(sql::QueryBook& b)
    : lock_organization(b,
                        "SELECT organization_id FROM organizations"
                        " WHERE organization_id = :organization_id" +
                            std::string(b.dialect().RowLocks(" FOR NO KEY UPDATE"))),
      insert_member(b, sql::InsertSql("members", kMemberColumns)),
      get_member(b, sql::SelectByKey(kMemberColumns, "members")),
      get_org_member(b, sql::SelectByKey(kMemberColumns, "members") +
                            " AND organization_id = :organization_id"),
      update_member(b, UpdateSql("members", kMemberColumns)),
      email_taken(b,
                  "SELECT 1 FROM members WHERE organization_id = :organization_id"
                  " AND email_folded = :email_folded AND member_id <> :member_id"
                  " AND NOT is_archived AND NOT is_inactive"),
      other_active_admin(b,
                         "SELECT 1 FROM members WHERE organization_id = :organization_id"
                         " AND account_type = 'admin' AND member_id <> :member_id"
                         " AND NOT is_archived AND NOT is_inactive LIMIT 1"),
      delete_member_access_tokens(b,
                                  "DELETE FROM access_tokens WHERE client_id IN"
                                  " (SELECT client_id FROM api_clients WHERE member_id = "
                                  ":member_id)"),
      delete_member_refresh_tokens(b,
                                   "DELETE FROM refresh_tokens WHERE client_id IN"
                                   " (SELECT client_id FROM api_clients WHERE member_id = "
                                   ":member_id)"),
      list_members{{b, MemberPageSql(b.dialect(), false)}, {b, MemberPageSql(b.dialect(), true)}},
      count_members(b, "SELECT count(*) FROM members" + MemberFilter(b.dialect())),
      insert_team(b, sql::InsertSql("teams", kTeamColumns)),
      get_team(b,
               sql::SelectByKey(kTeamColumns, "teams") + " AND organization_id = :organization_id"),
      update_team(b, UpdateSql("teams", kTeamColumns)),
      team_name_taken(b,
                      "SELECT 1 FROM teams WHERE organization_id = :organization_id"
                      " AND name_folded = :name_folded AND team_id <> :team_id"
                      " AND NOT is_archived"),
      active_team(b,
                  "SELECT 1 FROM teams WHERE team_id = :team_id"
                  " AND organization_id = :organization_id AND NOT is_archived"),
      member_state(b,
                   "SELECT is_archived, is_inactive FROM members WHERE member_id = :member_id"
                   " AND organization_id = :organization_id"),
      insert_team_member(
          b, sql::InsertSql("team_members", kTeamMembershipColumns) + " ON CONFLICT DO NOTHING"),
      remove_team_member(b,
                         "DELETE FROM team_members WHERE team_id = :team_id"
                         " AND member_id = :member_id"),
      team_member_ids(b,
                      "SELECT member_id FROM team_members WHERE team_id = :team_id"
                      " ORDER BY member_id"),
      list_teams{{{b, TeamPageSql(false, false)}, {b, TeamPageSql(false, true)}},
                 {{b, TeamPageSql(true, false)}, {b, TeamPageSql(true, true)}}},
      count_teams{{b, "SELECT count(*) FROM teams" + TeamFilter(false)},
                  {b, "SELECT count(*) FROM teams" + TeamFilter(true)}},
      list_team_members{{b, TeamMemberPageSql(false)}, {b, TeamMemberPageSql(true)}},
      count_team_members(b, "SELECT count(*) FROM team_members WHERE team_id = :team_id") {}

Status InsertMember(Session& s, const MemberQueries& q, const Member& member) {
  return Reword(Reword(WriteRow(s, q.insert_member, kMemberColumns, member), ErrorCode::kNotFound,
                       "organization not found"),
                ErrorCode::kConflict, "a member with this id already exists");
}

namespace {

// Locks the organization's row for the rest of the transaction (see the top of this file);
// kNotFound when there is no such organization.
Status LockOrganization(Session& s, const MemberQueries& q, const std::string& organization_id) {
  auto found = Exists(s, q.lock_organization, {{"organization_id", organization_id}});
  if (!found) return std::move(found).error();
  if (!*found) return Error::NotFound("organization not found");
  return OkStatus();
}

// kConflict when another active member of the organization has `member`'s email.
Status CheckEmailFree(Session& s, const MemberQueries& q, const Member& member) {
  auto taken = Exists(s, q.email_taken,
                      {{"organization_id", member.organization_id},
                       {"email_folded", domain::FoldName(member.email)},
                       {"member_id", member.member_id}});
  if (!taken) return std::move(taken).error();
  if (*taken) {
    return Error::Conflict("another active member of the organization has the email " +
                           member.email);
  }
  return OkStatus();
}

Status CheckTeamNameFree(Session& s, const MemberQueries& q, const Team& team) {
  auto taken = Exists(s, q.team_name_taken,
                      {{"organization_id", team.organization_id},
                       {"name_folded", domain::FoldName(team.name)},
                       {"team_id", team.team_id}});
  if (!taken) return std::move(taken).error();
  if (*taken) {
    return Error::Conflict("another team of the organization is named " + team.name);
  }
  return OkStatus();
}

Result<Member> LoadMember(Session& s, const MemberQueries& q, const std::string& organization_id,
                          const std::string& member_id) {
  auto st =
      Select(s, q.get_org_member, {{"member_id", member_id}, {"organization_id", organization_id}});
  if (!st) return std::move(st).error();
  return ReadOne(*st, kMemberColumns, "member not found");
}

Result<Team> LoadTeam(Session& s, const MemberQueries& q, const std::string& organization_id,
                      const std::string& team_id) {
  auto st = Select(s, q.get_team, {{"team_id", team_id}, {"organization_id", organization_id}});
  if (!st) return std::move(st).error();
  return ReadOne(*st, kTeamColumns, "team not found");
}

// kBadRequest unless `member_id` is a member of the organization, and with `must_be_active` an
// active one: who may join a team. Anyone of the organization may be removed from one (taking
// access away is never refused, even from a deactivated member).
Status CheckMember(Session& s, const MemberQueries& q, const std::string& organization_id,
                   const std::string& member_id, bool must_be_active) {
  auto st =
      Select(s, q.member_state, {{"member_id", member_id}, {"organization_id", organization_id}});
  if (!st) return std::move(st).error();
  auto row = st->Step();
  if (!row) return std::move(row).error();
  if (!*row) {
    return Error::BadRequest("member " + member_id + " is not a member of this organization");
  }
  if (must_be_active && (st->Bool("is_archived") || st->Bool("is_inactive"))) {
    return Error::BadRequest("member " + member_id +
                             " is not active: inactive members cannot join a team");
  }
  return OkStatus();
}

Status CheckActiveTeam(Session& s, const MemberQueries& q, const std::string& organization_id,
                       const std::string& team_id) {
  auto found =
      Exists(s, q.active_team, {{"team_id", team_id}, {"organization_id", organization_id}});
  if (!found) return std::move(found).error();
  if (!*found) {
    return Error::BadRequest("team " + team_id + " is not an active team of this organization");
  }
  return OkStatus();
}

Status AddMembership(Session& s, const MemberQueries& q, const TeamMembership& m) {
  return WriteRow(s, q.insert_team_member, kTeamMembershipColumns, m);
}

}  // namespace

// ---- members -------------------------------------------------------------------------------

Status SqlStore::CreateMember(const Member& member, const std::vector<TeamMembership>& teams) {
  return Run<Ok>("create_member", Access::kWrite, [&](Session& s) -> Status {
    const MemberQueries& q = q_->members;
    if (Status st = LockOrganization(s, q, member.organization_id); !st) return st;
    if (member.IsActive()) {
      if (Status st = CheckEmailFree(s, q, member); !st) return st;
    }
    if (Status st = InsertMember(s, q, member); !st) return st;
    for (const TeamMembership& t : teams) {
      if (Status st = CheckActiveTeam(s, q, member.organization_id, t.team_id); !st) return st;
      TeamMembership row = t;
      row.member_id = member.member_id;
      if (Status st = AddMembership(s, q, row); !st) return st;
    }
    return OkStatus();
  });
}

Result<Member> SqlStore::GetMember(const std::string& member_id) {
  return FindOne("get_member", q_->members.get_member, kMemberColumns, {{"member_id", member_id}},
                 "member not found");
}

Result<Member> SqlStore::GetMember(const std::string& organization_id,
                                   const std::string& member_id) {
  return FindOne("get_org_member", q_->members.get_org_member, kMemberColumns,
                 {{"member_id", member_id}, {"organization_id", organization_id}},
                 "member not found");
}

Result<Member> SqlStore::UpdateMember(const std::string& organization_id,
                                      const std::string& member_id,
                                      const domain::MemberChange& change,
                                      const std::string& actor_member_id, TimeMs now) {
  // Whether the principal of the member's tokens changes (TokenStore::revocation_epoch): it
  // stops (or starts) being active, or its account type changes.
  bool revokes = false;
  auto updated = Run<Member>("update_member", Access::kWrite, [&](Session& s) -> Result<Member> {
    revokes = false;  // the body may run more than once
    const MemberQueries& q = q_->members;
    if (Status st = LockOrganization(s, q, organization_id); !st) return std::move(st).error();
    auto stored = LoadMember(s, q, organization_id, member_id);
    if (!stored) return stored;
    Member next = domain::ApplyMemberChange(*stored, change, actor_member_id, now);
    if (next == *stored) return next;  // nothing changes
    revokes = next.IsActive() != stored->IsActive() || next.account_type != stored->account_type;
    const bool email_changes = domain::FoldName(next.email) != domain::FoldName(stored->email);
    if (next.IsActive() && (email_changes || !stored->IsActive())) {
      if (Status st = CheckEmailFree(s, q, next); !st) return std::move(st).error();
    }
    if (stored->IsActiveAdmin() && !next.IsActiveAdmin()) {
      auto other = Exists(s, q.other_active_admin,
                          {{"organization_id", organization_id}, {"member_id", member_id}});
      if (!other) return std::move(other).error();
      if (!*other) {
        return Error::Conflict(
            "this member is the organization's last active admin: it cannot be demoted, "
            "archived or deactivated");
      }
    }
    if (Status st = WriteRow(s, q.update_member, kMemberColumns, next); !st) {
      return std::move(st).error();
    }
    if (stored->IsActive() && !next.IsActive()) {
      // As a client revocation: nothing the member's clients were issued outlives this.
      for (const sql::Query* del :
           {&q.delete_member_access_tokens, &q.delete_member_refresh_tokens}) {
        auto n = Execute(s, *del, {{"member_id", member_id}});
        if (!n) return std::move(n).error();
      }
    }
    return next;
  });
  AfterRevokingWrite(updated && revokes, updated ? OkStatus() : Status(updated.error()));
  return updated;
}

Result<MemberPage> SqlStore::ListMembers(const MemberListQuery& query) {
  const int limit = std::clamp(query.limit, 1, kMaxPageSize);
  return Run<MemberPage>("list_members", Access::kSnapshot, [&](Session& s) -> Result<MemberPage> {
    const MemberQueries& q = q_->members;
    auto bind_filter = [&](Stmt& st) {
      st.Bind({{"organization_id", query.organization_id},
               {"include_archived", query.include_archived},
               {"include_inactive", query.include_inactive},
               {"email", query.email},
               {"search", query.search}});
    };
    MemberPage page;
    {
      auto st = s.Prepare(q.count_members);
      if (!st) return std::move(st).error();
      bind_filter(*st);
      auto row = st->Step();
      if (!row) return std::move(row).error();
      page.total = st->Int(0);
    }
    auto st = s.Prepare(q.list_members[query.after ? 1 : 0]);
    if (!st) return std::move(st).error();
    bind_filter(*st);
    st->Bind("limit", limit + 1);
    if (query.after) {
      st->Bind({{"after_email", query.after->email_folded},
                {"after_member_id", query.after->member_id}});
    } else {
      st->Bind("offset", std::max<std::int64_t>(query.offset, 0));
    }
    auto more = ReadPage(*st, kMemberColumns, limit, page.entries);
    if (!more) return std::move(more).error();
    page.has_more = *more;
    return page;
  });
}

// ---- teams ---------------------------------------------------------------------------------

Status SqlStore::CreateTeam(const Team& team, const std::vector<std::string>& members) {
  return Run<Ok>("create_team", Access::kWrite, [&](Session& s) -> Status {
    const MemberQueries& q = q_->members;
    if (Status st = LockOrganization(s, q, team.organization_id); !st) return st;
    if (!team.is_archived) {
      if (Status st = CheckTeamNameFree(s, q, team); !st) return st;
    }
    Status inserted = WriteRow(s, q.insert_team, kTeamColumns, team);
    inserted =
        Reword(std::move(inserted), ErrorCode::kConflict, "a team with this id already exists");
    if (!inserted) return inserted;
    for (const std::string& member_id : members) {
      if (Status st = CheckMember(s, q, team.organization_id, member_id, /*must_be_active=*/true);
          !st) {
        return st;
      }
      TeamMembership m{team.team_id, member_id, false, team.created_by};
      if (Status st = AddMembership(s, q, m); !st) return st;
    }
    return OkStatus();
  });
}

Result<Team> SqlStore::GetTeam(const std::string& organization_id, const std::string& team_id,
                               std::vector<std::string>* member_ids) {
  const Access access = member_ids != nullptr ? Access::kSnapshot : Access::kPoint;
  return Run<Team>("get_team", access, [&](Session& s) -> Result<Team> {
    auto team = LoadTeam(s, q_->members, organization_id, team_id);
    if (!team || member_ids == nullptr) return team;
    member_ids->clear();
    auto st = Select(s, q_->members.team_member_ids, {{"team_id", team_id}});
    if (!st) return std::move(st).error();
    for (;;) {
      auto row = st->Step();
      if (!row) return std::move(row).error();
      if (!*row) return team;
      member_ids->emplace_back(st->Text(0));
    }
  });
}

Result<Team> SqlStore::UpdateTeam(const std::string& organization_id, const std::string& team_id,
                                  const domain::TeamChange& change,
                                  const std::string& actor_member_id, TimeMs now) {
  return Run<Team>("update_team", Access::kWrite, [&](Session& s) -> Result<Team> {
    const MemberQueries& q = q_->members;
    if (Status st = LockOrganization(s, q, organization_id); !st) return std::move(st).error();
    auto stored = LoadTeam(s, q, organization_id, team_id);
    if (!stored) return stored;
    if (stored->is_archived) return Error::Conflict("the team is archived");
    Team next = domain::ApplyTeamChange(*stored, change, actor_member_id, now);
    if (next == *stored) return next;  // nothing changes
    if (domain::FoldName(next.name) != domain::FoldName(stored->name)) {
      if (Status st = CheckTeamNameFree(s, q, next); !st) return std::move(st).error();
    }
    if (Status st = WriteRow(s, q.update_team, kTeamColumns, next); !st) {
      return std::move(st).error();
    }
    return next;
  });
}

Status SqlStore::ArchiveTeam(const std::string& organization_id, const std::string& team_id,
                             const std::string& actor_member_id, TimeMs now) {
  return Run<Ok>("archive_team", Access::kWrite, [&](Session& s) -> Status {
    const MemberQueries& q = q_->members;
    if (Status st = LockOrganization(s, q, organization_id); !st) return st;
    auto stored = LoadTeam(s, q, organization_id, team_id);
    if (!stored) return std::move(stored).error();
    if (stored->is_archived) return OkStatus();
    Team next = *stored;
    next.is_archived = true;
    next.updated_by = actor_member_id;
    next.updated_at = now;
    return WriteRow(s, q.update_team, kTeamColumns, next);
  });
}

Status SqlStore::ChangeTeamMembers(const std::string& organization_id, const std::string& team_id,
                                   const domain::TeamMembersChange& change,
                                   const std::string& actor_member_id) {
  return Run<Ok>("change_team_members", Access::kWrite, [&](Session& s) -> Status {
    const MemberQueries& q = q_->members;
    if (Status st = LockOrganization(s, q, organization_id); !st) return st;
    auto team = LoadTeam(s, q, organization_id, team_id);
    if (!team) return std::move(team).error();
    if (team->is_archived) return Error::Conflict("the team is archived");
    for (const std::string& member_id : change.add) {
      if (Status st = CheckMember(s, q, organization_id, member_id, /*must_be_active=*/true); !st) {
        return st;
      }
      if (Status st = AddMembership(s, q, {team_id, member_id, false, actor_member_id}); !st) {
        return st;
      }
    }
    for (const std::string& member_id : change.remove) {
      if (Status st = CheckMember(s, q, organization_id, member_id, /*must_be_active=*/false);
          !st) {
        return st;
      }
      auto n = Execute(s, q.remove_team_member, {{"team_id", team_id}, {"member_id", member_id}});
      if (!n) return std::move(n).error();
    }
    return OkStatus();
  });
}

Result<TeamPage> SqlStore::ListTeams(const TeamListQuery& query) {
  const int limit = std::clamp(query.limit, 1, kMaxPageSize);
  const int of_member = query.member_id ? 1 : 0;
  return Run<TeamPage>("list_teams", Access::kSnapshot, [&](Session& s) -> Result<TeamPage> {
    const MemberQueries& q = q_->members;
    auto bind_filter = [&](Stmt& st) {
      st.Bind({{"organization_id", query.organization_id},
               {"name", query.name},
               {"description", query.description},
               {"visibility", query.visibility}});
      if (query.member_id) st.Bind("member_id", *query.member_id);
    };
    TeamPage page;
    {
      auto st = s.Prepare(q.count_teams[of_member]);
      if (!st) return std::move(st).error();
      bind_filter(*st);
      auto row = st->Step();
      if (!row) return std::move(row).error();
      page.total = st->Int(0);
    }
    auto st = s.Prepare(q.list_teams[query.after ? 1 : 0][of_member]);
    if (!st) return std::move(st).error();
    bind_filter(*st);
    st->Bind("limit", limit + 1);
    if (query.after) {
      st->Bind({{"after_name", query.after->name_folded}, {"after_team_id", query.after->team_id}});
    } else {
      st->Bind("offset", std::max<std::int64_t>(query.offset, 0));
    }
    auto more = ReadPage(*st, kTeamColumns, limit, page.entries);
    if (!more) return std::move(more).error();
    page.has_more = *more;
    return page;
  });
}

Result<TeamMemberPage> SqlStore::ListTeamMembers(const std::string& organization_id,
                                                 const std::string& team_id, int limit,
                                                 const std::optional<std::string>& after,
                                                 std::int64_t offset) {
  limit = std::clamp(limit, 1, kMaxPageSize);
  return Run<TeamMemberPage>(
      "list_team_members", Access::kSnapshot, [&](Session& s) -> Result<TeamMemberPage> {
        const MemberQueries& q = q_->members;
        auto team = LoadTeam(s, q, organization_id, team_id);
        if (!team) return std::move(team).error();
        TeamMemberPage page;
        auto total = Count(s, q.count_team_members, {{"team_id", team_id}});
        if (!total) return std::move(total).error();
        page.total = *total;
        auto st = Select(s, q.list_team_members[after ? 1 : 0],
                         {{"team_id", team_id}, {"limit", limit + 1}});
        if (!st) return std::move(st).error();
        if (after) {
          st->Bind("after_member_id", *after);
        } else {
          st->Bind("offset", std::max<std::int64_t>(offset, 0));
        }
        auto more = ReadPage(*st, kTeamMembershipColumns, limit, page.entries);
        if (!more) return std::move(more).error();
        page.has_more = *more;
        return page;
      });
}

}  // namespace connreg::store
