// Grants (contract section 8): their rows and statements, once for every backend.
#include <algorithm>
#include <array>
#include <cctype>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "store/sql_queries.h"
#include "store/sql_rows.h"
#include "store/sql_store.h"

namespace connreg::store {
namespace {

constexpr int kMaxPageSize = 1000;

constexpr Column<Grant> kGrantColumns[] = {
    Field<&Grant::grant_id>("grant_id", kKey),
    Field<&Grant::organization_id>("organization_id"),
    Field<&Grant::connection_id>("connection_id"),
    Field<&Grant::member_id>("member_id"),
    Field<&Grant::team_id>("team_id"),
    Field<&Grant::permission>("permission"),
    Field<&Grant::created_by>("created_by"),
    Field<&Grant::updated_by>("updated_by"),
    Field<&Grant::created_at>("created_at"),
    Field<&Grant::updated_at>("updated_at"),
};

// A path grant's row: a connection grant's columns and its inode.
constexpr auto kPathGrantColumns = [] {
  std::array<Column<Grant>, std::size(kGrantColumns) + 1> out{};
  std::copy(std::begin(kGrantColumns), std::end(kGrantColumns), out.begin());
  out.back() = Field<&Grant::inode_id>("inode_id");
  return out;
}();

std::span<const Column<Grant>> ColumnsOf(std::string_view table) {
  if (table == "path_grants") return kPathGrantColumns;
  return kGrantColumns;
}

// A grantee that already holds a grant on the target keeps that grant (its grant_id and
// created_*); its permission and updated_* change.
std::string UpsertSql(std::string_view table, std::string_view target, std::string_view grantee) {
  return sql::InsertSql(table, ColumnsOf(table)) + " ON CONFLICT (" + std::string(target) + ", " +
         std::string(grantee) +
         ") DO UPDATE SET permission = excluded.permission, updated_by = excluded.updated_by,"
         " updated_at = excluded.updated_at";
}

std::string TargetMatch(std::string_view target) {
  return " WHERE " + std::string(target) + " = :" + std::string(target) +
         " AND organization_id = :organization_id";
}

std::string PageSql(const sql::Dialect& d, std::string_view table, std::string_view target,
                    bool keyset) {
  return "SELECT " + sql::SelectList(ColumnsOf(table)) + " FROM " + std::string(table) +
         d.IndexedBy(std::string(table) + "_by_page") + TargetMatch(target) +
         (keyset ? " AND (created_at, grant_id) > (:after_created_at, :after_grant_id)"
                   " ORDER BY created_at, grant_id LIMIT :limit"
                 : " ORDER BY created_at, grant_id LIMIT :limit OFFSET :offset");
}

}  // namespace

GrantTableQueries::GrantTableQueries(sql::QueryBook& b, std::string_view table,
                                     std::string_view target_column)
    : target(target_column),
      columns(ColumnsOf(table)),
      upsert_member_grant(b, UpsertSql(table, target, "member_id")),
      upsert_team_grant(b, UpsertSql(table, target, "team_id")),
      count(b, "SELECT count(*) FROM " + std::string(table) + TargetMatch(target)),
      first_page(b, PageSql(b.dialect(), table, target, false)),
      page_after(b, PageSql(b.dialect(), table, target, true)),
      remove(b, "DELETE FROM " + std::string(table) + TargetMatch(target) +
                    " AND grant_id = :grant_id") {}

namespace {

// `sql` with every parameter `:name` replaced by the expression `expr`.
std::string ReplaceParameter(std::string_view sql, std::string_view name, std::string_view expr) {
  const std::string marker = ":" + std::string(name);
  std::string out;
  std::size_t from = 0;
  for (std::size_t at = sql.find(marker); at != std::string_view::npos;
       at = sql.find(marker, at + 1)) {
    const std::size_t end = at + marker.size();
    if (end < sql.size() &&
        (std::isalnum(static_cast<unsigned char>(sql[end])) != 0 || sql[end] == '_')) {
      continue;  // a longer name
    }
    out.append(sql.substr(from, at - from)).append(expr);
    from = end;
  }
  return out.append(sql.substr(from));
}

}  // namespace

// Point lookups, as in the visibility filter of the connection listing.
std::string HeldGrantSql(std::string_view member, std::string_view organization) {
  const std::string m(member);
  const std::string o(organization);
  return "(EXISTS (SELECT 1 FROM grants WHERE connection_id = :connection_id AND member_id = " + m +
         " AND organization_id = " + o +
         ") OR EXISTS (SELECT 1 FROM grants WHERE connection_id = :connection_id"
         " AND organization_id = " +
         o + " AND team_id IN (" + ReplaceParameter(kGrantingTeamsOfMember, "member_id", m) + ")))";
}

GrantQueries::GrantQueries(sql::QueryBook& b)
    : member_in_organization(b,
                             "SELECT 1 FROM members WHERE member_id = :member_id"
                             " AND organization_id = :organization_id"),
      team_in_organization(b,
                           "SELECT 1 FROM teams WHERE team_id = :team_id"
                           " AND organization_id = :organization_id"),
      on_connections(b, "grants", "connection_id"),
      // Point lookups, as in the visibility filter of the connection listing: the member is
      // active, and holds a grant directly or through a team that is not archived.
      has_grant(b, "SELECT " + std::string(kMemberIsActive) + " AND " +
                       HeldGrantSql(":member_id", ":organization_id")) {}

namespace {

// kNotFound unless the connection exists in the organization.
Status CheckConnectionInOrganization(Session& s, const sql::Query& exists,
                                     const std::string& organization_id,
                                     const std::string& connection_id) {
  auto found =
      Exists(s, exists, {{"connection_id", connection_id}, {"organization_id", organization_id}});
  if (!found) return std::move(found).error();
  if (!*found) return Error::NotFound("connection not found");
  return OkStatus();
}

}  // namespace

// Any error rolls the whole batch back. A grantee repeated within the batch is upserted twice:
// the last permission wins and the first grant_id stays. The permission is the caller's to
// check (domain::IsGrantPermission).
Status UpsertGrantRows(Session& s, const GrantQueries& q, const GrantTableQueries& t,
                       const std::string& organization_id, const Grant& on,
                       const std::vector<Grant>& grants) {
  for (const Grant& g : grants) {
    if (g.member_id.has_value() == g.team_id.has_value()) {
      return Error::BadRequest("a grantee is either a memberId or a teamId");
    }
    if (g.member_id) {
      auto found = Exists(s, q.member_in_organization,
                          {{"member_id", *g.member_id}, {"organization_id", organization_id}});
      if (!found) return std::move(found).error();
      if (!*found) {
        return Error::BadRequest("member " + *g.member_id +
                                 " is not a member of this organization");
      }
    } else {
      auto found = Exists(s, q.team_in_organization,
                          {{"team_id", *g.team_id}, {"organization_id", organization_id}});
      if (!found) return std::move(found).error();
      if (!*found) {
        return Error::BadRequest("team " + *g.team_id + " is not a team of this organization");
      }
    }
    Grant row = g;
    row.organization_id = organization_id;
    row.connection_id = on.connection_id;
    row.inode_id = on.inode_id;
    Status upserted =
        WriteRow(s, g.member_id ? t.upsert_member_grant : t.upsert_team_grant, t.columns, row);
    upserted =
        Reword(std::move(upserted), ErrorCode::kConflict, "a grant with this id already exists");
    if (!upserted) return upserted;
  }
  return OkStatus();
}

Result<GrantPage> ListGrantRows(Session& s, const GrantTableQueries& t,
                                const std::string& organization_id, const std::string& target_value,
                                int limit, const std::optional<GrantCursor>& after,
                                std::int64_t offset) {
  limit = std::clamp(limit, 1, kMaxPageSize);
  GrantPage page;
  auto total = Count(s, t.count, {{t.target, target_value}, {"organization_id", organization_id}});
  if (!total) return std::move(total).error();
  page.total = *total;
  auto st = Select(
      s, after ? t.page_after : t.first_page,
      {{t.target, target_value}, {"organization_id", organization_id}, {"limit", limit + 1}});
  if (!st) return std::move(st).error();
  if (after) {
    st->Bind({{"after_created_at", after->created_at}, {"after_grant_id", after->grant_id}});
  } else {
    st->Bind("offset", std::max<std::int64_t>(offset, 0));
  }
  auto more = ReadPage(*st, t.columns, limit, page.entries);
  if (!more) return std::move(more).error();
  page.has_more = *more;
  return page;
}

Status DeleteGrantRow(Session& s, const GrantTableQueries& t, const std::string& organization_id,
                      const std::string& target_value, const std::string& grant_id) {
  auto n = Execute(
      s, t.remove,
      {{"grant_id", grant_id}, {t.target, target_value}, {"organization_id", organization_id}});
  if (!n) return std::move(n).error();
  if (*n == 0) return Error::NotFound("grant not found");
  return OkStatus();
}

Status SqlStore::UpsertGrants(const std::string& organization_id, const std::string& connection_id,
                              const std::vector<Grant>& grants) {
  return Run<Ok>("upsert_grants", Access::kWrite, [&](Session& s) -> Status {
    Status checked =
        CheckConnectionInOrganization(s, q_->connections.exists, organization_id, connection_id);
    if (!checked) return checked;
    Grant on;
    on.connection_id = connection_id;
    return UpsertGrantRows(s, q_->grants, q_->grants.on_connections, organization_id, on, grants);
  });
}

Result<GrantPage> SqlStore::ListGrants(const std::string& organization_id,
                                       const std::string& connection_id, int limit,
                                       const std::optional<GrantCursor>& after,
                                       std::int64_t offset) {
  // Total and entries from one snapshot.
  return Run<GrantPage>("list_grants", Access::kSnapshot, [&](Session& s) -> Result<GrantPage> {
    Status checked =
        CheckConnectionInOrganization(s, q_->connections.exists, organization_id, connection_id);
    if (!checked) return std::move(checked).error();
    return ListGrantRows(s, q_->grants.on_connections, organization_id, connection_id, limit, after,
                         offset);
  });
}

Status SqlStore::DeleteGrant(const std::string& organization_id, const std::string& connection_id,
                             const std::string& grant_id) {
  return Run<Ok>("delete_grant", Access::kWrite, [&](Session& s) -> Status {
    return DeleteGrantRow(s, q_->grants.on_connections, organization_id, connection_id, grant_id);
  });
}

Result<bool> SqlStore::HasGrant(const std::string& organization_id,
                                const std::string& connection_id, const std::string& member_id) {
  return Run<bool>("has_grant", Access::kPoint, [&](Session& s) -> Result<bool> {
    auto st = Select(s, q_->grants.has_grant,
                     {{"connection_id", connection_id},
                      {"member_id", member_id},
                      {"organization_id", organization_id}});
    if (!st) return std::move(st).error();
    auto row = st->Step();
    if (!row) return std::move(row).error();
    return st->Bool(0);
  });
}

}  // namespace connreg::store
