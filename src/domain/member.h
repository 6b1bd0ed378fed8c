// Members and teams as the registry keeps them (contract section 12), and the rules that turn a
// request body into their next state: create (POST /v2/members, POST /v2/teams, and the operator
// CLI, which builds the same bodies from its flags), change (PATCH) and team membership. Bodies
// are read as Sigma's request schemas: every field of them is accepted, those without a meaning
// here are type-checked and ignored, any other field is a 400; every error is a 400 naming the
// JSON path of the first bad value. Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <boost/json/value.hpp>

#include "core/result.h"
#include "core/time.h"
#include "domain/connection_input.h"

namespace connreg::domain {

inline constexpr std::size_t kMaxEmailChars = 254;
inline constexpr std::size_t kMaxMemberNameChars = 255;
inline constexpr std::size_t kMaxTeamNameChars = 255;
inline constexpr std::size_t kMaxTeamDescriptionChars = 1024;
// What `createdBy`/`updatedBy`/`addedBy` say of a change made by the operator CLI (which acts
// as no member), as for the sample connections it adds.
inline constexpr std::string_view kOperatorActor = "connreg-cli";

struct Member {
  std::string member_id;
  std::string organization_id;
  std::string email;         // trimmed, as given; compared ASCII case-insensitively (FoldName)
  std::string account_type;  // IsAccountType: Sigma's memberType
  TimeMs created_at = 0;
  std::string first_name;
  std::string last_name;  // may be empty
  std::string created_by;
  std::string updated_by;
  TimeMs updated_at = 0;
  // Sigma's two ways of deactivating a member; either one makes it inactive: its tokens fail,
  // its grants give nothing (contract section 12).
  bool is_archived = false;
  bool is_inactive = false;

  bool IsActive() const { return !is_archived && !is_inactive; }
  bool IsActiveAdmin() const;
  bool operator==(const Member&) const = default;
};

struct Team {
  std::string team_id;
  std::string organization_id;
  std::string name;
  TimeMs created_at = 0;
  std::optional<std::string> description;
  std::string visibility = "private";  // "public" | "private"
  bool is_archived = false;            // an archived team grants nothing
  std::string created_by;
  std::string updated_by;
  TimeMs updated_at = 0;

  bool operator==(const Team&) const = default;
};

// A member's place in a team.
struct TeamMembership {
  std::string team_id;
  std::string member_id;
  bool is_team_admin = false;
  std::string added_by;
};

// ---- members ----------------------------------------------------------------------------------

// POST /v2/members: {email, firstName, lastName, memberType?, userKind?, isGuest?, addToTeams?}.
// memberType defaults to viewer; userKind and isGuest are accepted and ignored. The memberships
// of addToTeams name the new member, added by the actor.
struct NewMember {
  Member member;
  std::vector<TeamMembership> teams;
};
Result<NewMember> BuildNewMember(const boost::json::value& body, const Actor& actor, TimeMs now,
                                 std::string member_id);

// The operator CLI's `member create` and the first-start bootstrap's admin: the body of a
// POST /v2/members built from flags and read by BuildNewMember, acted by kOperatorActor. The
// first name defaults to the email's local part; memberType is read as the API reads it.
Result<NewMember> BuildOperatorMember(const std::string& organization_id, const std::string& email,
                                      const std::optional<std::string>& first_name,
                                      const std::string& last_name, const std::string& account_type,
                                      TimeMs now, std::string member_id);

// PATCH /v2/members/{id}: the fields given (profileImgUrl, userKind, newOwnerId, archiveDocuments
// and archiveScheduledExports are accepted and ignored).
struct MemberChange {
  std::optional<std::string> account_type;
  std::optional<std::string> first_name;
  std::optional<std::string> last_name;
  std::optional<std::string> email;
  std::optional<bool> is_archived;
  std::optional<bool> is_inactive;
};
Result<MemberChange> ParseMemberChange(const boost::json::value& body);

// DELETE /v2/members/{id}: deactivates (archives), never deletes.
MemberChange Deactivation();

// The next state of `stored` under `change`; updated_by/updated_at move only when a field does,
// so an empty change (or a repeated one) yields `stored` itself.
Member ApplyMemberChange(const Member& stored, const MemberChange& change,
                         const std::string& actor_member_id, TimeMs now);

// An email address as the API takes it: a string, trimmed of ASCII whitespace, at most 254
// characters, exactly one '@' with something on each side, no whitespace or control character.
Result<std::string> ParseEmail(const boost::json::value& v, std::string_view field);

// ---- teams ------------------------------------------------------------------------------------

// POST /v2/teams: {name, description?, members?, visibility?, createTeamFolder?} (the last is
// accepted and ignored); visibility defaults to private. `member_ids` are the members to add.
struct NewTeam {
  Team team;
  std::vector<std::string> member_ids;
};
Result<NewTeam> BuildNewTeam(const boost::json::value& body, const Actor& actor, TimeMs now,
                             std::string team_id);

// PATCH /v2/teams/{id}: {name?, description?, visibility?}; a null or empty description clears it.
struct TeamChange {
  std::optional<std::string> name;
  std::optional<std::optional<std::string>> description;
  std::optional<std::string> visibility;
};
Result<TeamChange> ParseTeamChange(const boost::json::value& body);
// As ApplyMemberChange: `stored` itself when nothing changes.
Team ApplyTeamChange(const Team& stored, const TeamChange& change,
                     const std::string& actor_member_id, TimeMs now);

// PATCH /v2/teams/{id}/members: {add?: [memberId...], remove?: [memberId...]}; an id in both
// lists, or twice in one, is a 400.
struct TeamMembersChange {
  std::vector<std::string> add;
  std::vector<std::string> remove;
};
Result<TeamMembersChange> ParseTeamMembersChange(const boost::json::value& body);

// True for "public" and "private".
bool IsTeamVisibility(std::string_view visibility);

}  // namespace connreg::domain
