#include "domain/member.h"

#include <algorithm>
#include <set>
#include <string_view>
#include <utility>

#include <boost/json/object.hpp>

#include "domain/names.h"
#include "domain/permissions.h"

namespace connreg::domain {
namespace {

constexpr std::size_t kMaxIdChars = 255;
constexpr std::size_t kMaxIdsPerList = 1000;

Result<const boost::json::object*> BodyObject(const boost::json::value& body) {
  const auto* obj = body.if_object();
  if (obj == nullptr) return Error::BadRequest("the request body must be a JSON object");
  return obj;
}

Error NotAField(std::string_view path, std::string_view what) {
  return Error::BadRequest(std::string(path) + " is not a field of " + std::string(what));
}

Result<bool> Bool(const boost::json::value& v, std::string_view path) {
  if (!v.is_bool()) return Error::BadRequest(std::string(path) + " must be a boolean");
  return v.get_bool();
}

// Fields of Sigma's schemas that mean nothing here: checked for their type, then ignored.
Status IgnoredBool(const boost::json::value& v, std::string_view path) {
  auto b = Bool(v, path);
  if (!b) return std::move(b).error();
  return OkStatus();
}

Status IgnoredString(const boost::json::value& v, std::string_view path, bool nullable) {
  if (v.is_string() || (nullable && v.is_null())) return OkStatus();
  return Error::BadRequest(std::string(path) +
                           (nullable ? " must be a string or null" : " must be a string"));
}

Status IgnoredUserKind(const boost::json::value& v) {
  const auto* s = v.if_string();
  if (s == nullptr || (*s != "internal" && *s != "guest" && *s != "embed")) {
    return Error::BadRequest("userKind must be \"internal\", \"guest\" or \"embed\"");
  }
  return OkStatus();
}

Result<std::string> AccountType(const boost::json::value& v) {
  const auto* s = v.if_string();
  auto type = s == nullptr ? std::nullopt : ParseAccountType(*s);
  if (!type) {
    return Error::BadRequest("memberType must be one of admin, creator, explorer or viewer");
  }
  return std::move(*type);
}

Result<std::string> Id(const boost::json::value& v, std::string_view path) {
  const auto* s = v.if_string();
  if (s == nullptr || s->empty() || s->size() > kMaxIdChars) {
    return Error::BadRequest(std::string(path) + " must be a non-empty string of at most " +
                             std::to_string(kMaxIdChars) + " characters");
  }
  return std::string(*s);
}

// An array of distinct ids; `seen` collects them (shared by lists that must not overlap).
Result<std::vector<std::string>> IdList(const boost::json::value& v, std::string_view path,
                                        std::set<std::string>& seen) {
  const auto* list = v.if_array();
  if (list == nullptr) return Error::BadRequest(std::string(path) + " must be an array of ids");
  if (list->size() > kMaxIdsPerList) {
    return Error::BadRequest(std::string(path) + " holds at most " +
                             std::to_string(kMaxIdsPerList) + " ids");
  }
  std::vector<std::string> out;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const std::string item = std::string(path) + "[" + std::to_string(i) + "]";
    auto id = Id((*list)[i], item);
    if (!id) return std::move(id).error();
    if (!seen.insert(*id).second) {
      return Error::BadRequest(item + " names " + *id + " a second time");
    }
    out.push_back(std::move(*id));
  }
  return out;
}

Result<std::vector<TeamMembership>> TeamsToJoin(const boost::json::value& v) {
  const auto* list = v.if_array();
  if (list == nullptr) return Error::BadRequest("addToTeams must be an array");
  if (list->size() > kMaxIdsPerList) {
    return Error::BadRequest("addToTeams holds at most " + std::to_string(kMaxIdsPerList));
  }
  std::vector<TeamMembership> out;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const std::string path = "addToTeams[" + std::to_string(i) + "]";
    const auto* item = (*list)[i].if_object();
    if (item == nullptr) return Error::BadRequest(path + " must be an object");
    TeamMembership m;
    bool has_team = false;
    for (const auto& kv : *item) {
      const std::string field = path + "." + std::string(kv.key());
      if (kv.key() == "teamId") {
        auto id = Id(kv.value(), field);
        if (!id) return std::move(id).error();
        m.team_id = std::move(*id);
        has_team = true;
      } else if (kv.key() == "isTeamAdmin") {
        auto b = Bool(kv.value(), field);
        if (!b) return std::move(b).error();
        m.is_team_admin = *b;
      } else {
        return NotAField(field, "a team to join");
      }
    }
    if (!has_team) return Error::BadRequest(path + ".teamId is required");
    if (!seen.insert(m.team_id).second) {
      return Error::BadRequest(path + ".teamId names " + m.team_id + " a second time");
    }
    out.push_back(std::move(m));
  }
  return out;
}

Result<std::string> FirstName(const boost::json::value& v) {
  return ParseName(v, "firstName", kMaxMemberNameChars);
}

Result<std::string> LastName(const boost::json::value& v) {
  return ParseName(v, "lastName", kMaxMemberNameChars, /*min_chars=*/0);
}

Result<std::optional<std::string>> Description(const boost::json::value& v) {
  if (v.is_null()) return std::optional<std::string>();
  auto d = ParseName(v, "description", kMaxTeamDescriptionChars, /*min_chars=*/0);
  if (!d) return std::move(d).error();
  if (d->empty()) return std::optional<std::string>();
  return std::optional<std::string>(std::move(*d));
}

Result<std::string> Visibility(const boost::json::value& v) {
  const auto* s = v.if_string();
  if (s == nullptr || !IsTeamVisibility(*s)) {
    return Error::BadRequest("visibility must be \"public\" or \"private\"");
  }
  return std::string(*s);
}

// `out` = the value of `parsed`, or its error.
template <class T, class U>
Status Assign(T& out, Result<U> parsed) {
  if (!parsed) return std::move(parsed).error();
  out = std::move(*parsed);
  return OkStatus();
}

}  // namespace

bool Member::IsActiveAdmin() const { return IsActive() && account_type == kAdmin; }

bool IsTeamVisibility(std::string_view visibility) {
  return visibility == "public" || visibility == "private";
}

Result<std::string> ParseEmail(const boost::json::value& v, std::string_view field) {
  auto email = ParseName(v, field, kMaxEmailChars);
  if (!email) return email;
  const auto at = email->find('@');
  const bool one_at = at != std::string::npos && email->find('@', at + 1) == std::string::npos;
  const bool spaces = std::ranges::any_of(*email, [](char c) { return c == ' ' || c == '\t'; });
  if (!one_at || at == 0 || at + 1 == email->size() || spaces) {
    return Error::BadRequest(std::string(field) +
                             " must be an email address: one '@' with something on each side, "
                             "no spaces");
  }
  return email;
}

Result<NewMember> BuildNewMember(const boost::json::value& body, const Actor& actor, TimeMs now,
                                 std::string member_id) {
  const boost::json::object* obj = nullptr;
  if (Status st = Assign(obj, BodyObject(body)); !st) return std::move(st).error();
  NewMember out;
  Member& m = out.member;
  m.member_id = std::move(member_id);
  m.organization_id = actor.organization_id;
  m.account_type = "viewer";
  m.created_by = m.updated_by = actor.member_id;
  m.created_at = m.updated_at = now;
  bool has_email = false, has_first = false, has_last = false;
  for (const auto& kv : *obj) {
    const std::string_view key = kv.key();
    const boost::json::value& v = kv.value();
    Status s = OkStatus();
    if (key == "email") {
      s = Assign(m.email, ParseEmail(v, "email"));
      has_email = true;
    } else if (key == "firstName") {
      s = Assign(m.first_name, FirstName(v));
      has_first = true;
    } else if (key == "lastName") {
      s = Assign(m.last_name, LastName(v));
      has_last = true;
    } else if (key == "memberType") {
      s = Assign(m.account_type, AccountType(v));
    } else if (key == "addToTeams") {
      s = Assign(out.teams, TeamsToJoin(v));
    } else if (key == "isGuest") {
      s = IgnoredBool(v, "isGuest");
    } else if (key == "userKind") {
      s = IgnoredUserKind(v);
    } else {
      return NotAField(key, "this request");
    }
    if (!s) return std::move(s).error();
  }
  if (!has_email) return Error::BadRequest("email is required");
  if (!has_first) return Error::BadRequest("firstName is required");
  if (!has_last) return Error::BadRequest("lastName is required");
  for (TeamMembership& t : out.teams) {
    t.member_id = m.member_id;
    t.added_by = actor.member_id;
  }
  return out;
}

Result<NewMember> BuildOperatorMember(const std::string& organization_id, const std::string& email,
                                      const std::optional<std::string>& first_name,
                                      const std::string& last_name, const std::string& account_type,
                                      TimeMs now, std::string member_id) {
  std::string_view trimmed = email;
  while (!trimmed.empty() && trimmed.front() == ' ') trimmed.remove_prefix(1);
  const boost::json::object body{
      {"email", email},
      {"firstName", first_name ? *first_name : std::string(trimmed.substr(0, trimmed.find('@')))},
      {"lastName", last_name},
      {"memberType", account_type}};
  return BuildNewMember(body, Actor{organization_id, std::string(kOperatorActor)}, now,
                        std::move(member_id));
}

Result<MemberChange> ParseMemberChange(const boost::json::value& body) {
  const boost::json::object* obj = nullptr;
  if (Status st = Assign(obj, BodyObject(body)); !st) return std::move(st).error();
  MemberChange out;
  for (const auto& kv : *obj) {
    const std::string_view key = kv.key();
    const boost::json::value& v = kv.value();
    Status s = OkStatus();
    if (key == "memberType") {
      s = Assign(out.account_type, AccountType(v));
    } else if (key == "firstName") {
      s = Assign(out.first_name, FirstName(v));
    } else if (key == "lastName") {
      s = Assign(out.last_name, LastName(v));
    } else if (key == "email") {
      s = Assign(out.email, ParseEmail(v, "email"));
    } else if (key == "isArchived") {
      s = Assign(out.is_archived, Bool(v, "isArchived"));
    } else if (key == "isInactive") {
      s = Assign(out.is_inactive, Bool(v, "isInactive"));
    } else if (key == "profileImgUrl") {
      s = IgnoredString(v, "profileImgUrl", /*nullable=*/true);
    } else if (key == "userKind") {
      s = IgnoredUserKind(v);
    } else if (key == "newOwnerId") {
      s = IgnoredString(v, "newOwnerId", /*nullable=*/false);
    } else if (key == "archiveDocuments" || key == "archiveScheduledExports") {
      s = IgnoredBool(v, key);
    } else {
      return NotAField(key, "this request");
    }
    if (!s) return std::move(s).error();
  }
  return out;
}

MemberChange Deactivation() {
  MemberChange change;
  change.is_archived = true;
  return change;
}

Member ApplyMemberChange(const Member& stored, const MemberChange& change,
                         const std::string& actor_member_id, TimeMs now) {
  Member next = stored;
  auto set = [](auto& field, const auto& value) {
    if (value) field = *value;
  };
  set(next.account_type, change.account_type);
  set(next.first_name, change.first_name);
  set(next.last_name, change.last_name);
  set(next.email, change.email);
  set(next.is_archived, change.is_archived);
  set(next.is_inactive, change.is_inactive);
  const bool changed = next.account_type != stored.account_type ||
                       next.first_name != stored.first_name || next.last_name != stored.last_name ||
                       next.email != stored.email || next.is_archived != stored.is_archived ||
                       next.is_inactive != stored.is_inactive;
  if (changed) {
    next.updated_by = actor_member_id;
    next.updated_at = now;
  }
  return next;
}

Result<NewTeam> BuildNewTeam(const boost::json::value& body, const Actor& actor, TimeMs now,
                             std::string team_id) {
  const boost::json::object* obj = nullptr;
  if (Status st = Assign(obj, BodyObject(body)); !st) return std::move(st).error();
  NewTeam out;
  Team& t = out.team;
  t.team_id = std::move(team_id);
  t.organization_id = actor.organization_id;
  t.created_by = t.updated_by = actor.member_id;
  t.created_at = t.updated_at = now;
  bool has_name = false;
  for (const auto& kv : *obj) {
    const std::string_view key = kv.key();
    const boost::json::value& v = kv.value();
    Status s = OkStatus();
    if (key == "name") {
      s = Assign(t.name, ParseName(v, "name", kMaxTeamNameChars));
      has_name = true;
    } else if (key == "description") {
      s = Assign(t.description, Description(v));
    } else if (key == "visibility") {
      s = Assign(t.visibility, Visibility(v));
    } else if (key == "members") {
      std::set<std::string> seen;
      s = Assign(out.member_ids, IdList(v, "members", seen));
    } else if (key == "createTeamFolder") {
      s = IgnoredBool(v, "createTeamFolder");
    } else {
      return NotAField(key, "this request");
    }
    if (!s) return std::move(s).error();
  }
  if (!has_name) return Error::BadRequest("name is required");
  return out;
}

Result<TeamChange> ParseTeamChange(const boost::json::value& body) {
  const boost::json::object* obj = nullptr;
  if (Status st = Assign(obj, BodyObject(body)); !st) return std::move(st).error();
  TeamChange out;
  for (const auto& kv : *obj) {
    const std::string_view key = kv.key();
    const boost::json::value& v = kv.value();
    Status s = OkStatus();
    if (key == "name") {
      s = Assign(out.name, ParseName(v, "name", kMaxTeamNameChars));
    } else if (key == "description") {
      s = Assign(out.description, Description(v));
    } else if (key == "visibility") {
      s = Assign(out.visibility, Visibility(v));
    } else {
      return NotAField(key, "this request");
    }
    if (!s) return std::move(s).error();
  }
  return out;
}

Team ApplyTeamChange(const Team& stored, const TeamChange& change,
                     const std::string& actor_member_id, TimeMs now) {
  Team next = stored;
  if (change.name) next.name = *change.name;
  if (change.description) next.description = *change.description;
  if (change.visibility) next.visibility = *change.visibility;
  if (next.name != stored.name || next.description != stored.description ||
      next.visibility != stored.visibility) {
    next.updated_by = actor_member_id;
    next.updated_at = now;
  }
  return next;
}

Result<TeamMembersChange> ParseTeamMembersChange(const boost::json::value& body) {
  const boost::json::object* obj = nullptr;
  if (Status st = Assign(obj, BodyObject(body)); !st) return std::move(st).error();
  TeamMembersChange out;
  std::set<std::string> seen;  // an id may not be both added and removed
  for (const auto& kv : *obj) {
    const std::string_view key = kv.key();
    Status s = OkStatus();
    if (key == "add") {
      s = Assign(out.add, IdList(kv.value(), "add", seen));
    } else if (key == "remove") {
      s = Assign(out.remove, IdList(kv.value(), "remove", seen));
    } else {
      return NotAField(key, "this request");
    }
    if (!s) return std::move(s).error();
  }
  return out;
}

}  // namespace connreg::domain
