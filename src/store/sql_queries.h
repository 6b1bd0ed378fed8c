// The statements of the query layer (store/sql_store.h), one struct per aggregate. Each is
// built once per store, for its database's dialect, by the constructor in the aggregate's own
// file, where its SQL sits next to the calls that run it. Internal to the store.
#pragma once

#include <array>
#include <cstddef>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/sql.h"
#include "store/sql_rows.h"
#include "store/sql_store.h"
#include "store/store_call.h"

namespace connreg::store {

// The query layer's own vocabulary, for the files that include this internal header.
using sql::Access;
using sql::Column;
using sql::Field;
using sql::kKey;
using sql::Session;
using sql::Stmt;

// sql_identity.cc
struct IdentityQueries {
  explicit IdentityQueries(sql::QueryBook& b);
  sql::Query insert_organization, get_organization, count_organizations;
  sql::Query insert_api_client, get_active_api_client, revoke_api_client;
  sql::Query delete_client_access_tokens, delete_client_refresh_tokens;
  sql::Query lock_token_issuer, insert_access_token, insert_refresh_token, resolve_access_token;
  sql::Query find_refresh_token, use_refresh_token;
  sql::Query delete_family_access_tokens, delete_family_refresh_tokens;
  sql::Query purge_access_tokens, purge_refresh_tokens, purge_idempotency_keys;
};

// The rule of TokenStore::ResolveAccessToken, for every statement that resolves a bearer token
// (resolve_access_token; ConnectionQueries::get_for_token): the token :token_hash, not expired
// at :now, its client not revoked, its member active. Three primary-key lookups. A member
// deactivated since the token was issued fails here, on the very next request, on every node.
inline constexpr std::string_view kValidTokenFrom =
    "access_tokens AS tok JOIN api_clients AS tok_client ON tok_client.client_id = tok.client_id"
    " AND tok_client.revoked_at IS NULL JOIN members AS tok_member"
    " ON tok_member.member_id = tok.member_id AND NOT tok_member.is_archived"
    " AND NOT tok_member.is_inactive";
inline constexpr std::string_view kValidTokenWhere =
    "tok.token_hash = :token_hash AND tok.expires_at > :now";
// The Principal of such a statement, as its columns, read back by ReadPrincipal.
inline constexpr std::string_view kPrincipalSelectList =
    "tok.organization_id, tok.member_id, tok.client_id, tok_member.account_type, tok.expires_at";
inline constexpr int kPrincipalColumnCount = 5;
Principal ReadPrincipal(const sql::Stmt& st, int first);

// sql_members.cc
struct MemberQueries {
  explicit MemberQueries(sql::QueryBook& b);
  sql::Query lock_organization;
  sql::Query insert_member, get_member, get_org_member, update_member;
  sql::Query email_taken, other_active_admin;
  sql::Query delete_member_access_tokens, delete_member_refresh_tokens;
  sql::Query list_members[2];  // [keyset]
  sql::Query count_members;
  sql::Query insert_team, get_team, update_team, team_name_taken, active_team;
  sql::Query member_state, insert_team_member, remove_team_member, team_member_ids;
  sql::Query list_teams[2][2];      // [keyset][of_member]
  sql::Query count_teams[2];        // [of_member]
  sql::Query list_team_members[2];  // [keyset]
  sql::Query count_team_members;
};

// Inserts a member row (CreateMember, and the first-start bootstrap in sql_identity.cc).
Status InsertMember(sql::Session& s, const MemberQueries& q, const Member& member);

// The SQL of the rule that a grant applies only while its member is active and its team is not
// archived (contract section 12), for the statements that test grants (HasGrant, the listing's
// visible_to_member): true when :member_id is an active member ...
inline constexpr std::string_view kMemberIsActive =
    "EXISTS (SELECT 1 FROM members AS am WHERE am.member_id = :member_id"
    " AND NOT am.is_archived AND NOT am.is_inactive)";
// ... and the teams whose grants reach :member_id: its teams that are not archived.
inline constexpr std::string_view kGrantingTeamsOfMember =
    "SELECT tm.team_id FROM team_members AS tm JOIN teams AS gt ON gt.team_id = tm.team_id"
    " WHERE tm.member_id = :member_id AND NOT gt.is_archived";

// GrantStore::HasGrant's test of a grant on :connection_id held by `member` in `organization`
// (SQL expressions: parameters or columns), directly or through a team that is not archived;
// that the member is active is the caller's to test (kMemberIsActive, or a resolved token).
std::string HeldGrantSql(std::string_view member, std::string_view organization);

// sql_connections.cc
struct ConnectionQueries {
  explicit ConnectionQueries(sql::QueryBook& b);
  sql::Query insert, update, get, get_for_token, exists, record_test;
  // The narrow rows of a page (ConnectionPageRow):
  // [keyset][visible_to_member][how the search is served: none, indexed, scanned]
  std::array<std::array<std::array<sql::Query, 3>, 2>, 2> list;
  sql::Query rows_of;  // full rows with their secrets, of a JSON array of ids
  sql::Query counted, add_count, counted_state;  // the kept counts (migration 6)
  sql::Query count_indexed, count_scanned;       // an admin's total with a search
  sql::Query count_visible[2];                   // [searched]: a non-admin's total
  sql::Query search_index_present;
  sql::Query insert_secret, upsert_secret, delete_secrets_except;
  sql::Query secrets_below_key, secrets_above_key, reseal_secret, secret_exists, secret_key_ids;
};

// sql_grants.cc: the statements of one table of grants, all derived from one table of columns:
// the connection grants (`grants`, on connection_id) and the path grants (`path_grants`, on
// inode_id, whose rows also carry their inode's connection_id; CatalogQueries).
struct GrantTableQueries {
  GrantTableQueries(sql::QueryBook& b, std::string_view table, std::string_view target);
  std::string_view target;  // the column (and parameter) a grant is on; a literal
  std::span<const Column<Grant>> columns;
  sql::Query upsert_member_grant, upsert_team_grant, count, first_page, page_after, remove;
};

struct GrantQueries {
  explicit GrantQueries(sql::QueryBook& b);
  sql::Query member_in_organization, team_in_organization;
  GrantTableQueries on_connections;
  sql::Query has_grant;
};

// The calls both kinds of grants share (GrantStore's and CatalogStore's path grants), in the
// caller's transaction. `on` holds what every row of the batch is on (connection_id, and
// inode_id for a path grant); `target_value` is the value of the table's `target` column.
// Each grant is validated just before it is written, so the error names the first bad grantee
// in batch order (kBadRequest: "member X is not a member of this organization"); a grantee that
// already holds a grant keeps it (grant_id, created_*) with the new permission and updated_*.
Status UpsertGrantRows(sql::Session& s, const GrantQueries& q, const GrantTableQueries& t,
                       const std::string& organization_id, const Grant& on,
                       const std::vector<Grant>& grants);
Result<GrantPage> ListGrantRows(sql::Session& s, const GrantTableQueries& t,
                                const std::string& organization_id, const std::string& target_value,
                                int limit, const std::optional<GrantCursor>& after,
                                std::int64_t offset);
// kNotFound when no such grant on that target in that organization.
Status DeleteGrantRow(sql::Session& s, const GrantTableQueries& t,
                      const std::string& organization_id, const std::string& target_value,
                      const std::string& grant_id);

// sql_catalog.cc
struct CatalogQueries {
  explicit CatalogQueries(sql::QueryBook& b);
  sql::Query lock_connection, get_inode, find_inode, insert_inode, update_inode, remove_inode;
  sql::Query add_live_counts, add_connection_count, add_organization_count;
  sql::Query connection_count, organization_count;
  sql::Query columns_of, insert_column, update_column, remove_columns_of;
  sql::Query live_below_desc[2];    // [bounded above]: MarkUnseenRemoved's walk
  sql::Query list_organization[2];  // [keyset]
  sql::Query list_range[2];         // [bounded above]
  sql::Query list_children;
  sql::Query page_columns[2];  // [keyset]
  sql::Query connection_grants_of_member, path_grants_of_member;
  sql::Query set_inode_dbt, set_column_dbt;
  GrantTableQueries on_paths;
  sql::Query save_sync, last_sync, running_syncs;
};

// sql_idempotency.cc
struct IdempotencyQueries {
  explicit IdempotencyQueries(sql::QueryBook& b);
  sql::Query get, remove_older, insert;
};

// sql_store.cc
struct ServerQueries {
  explicit ServerQueries(sql::QueryBook& b);
  sql::Query get_server_key, insert_server_key, take_rate_token;
  sql::Query schema_version, migration_applied, record_migration, foreign_key_violations;
};

struct SqlStore::Queries {
  explicit Queries(sql::QueryBook& b)
      : identity(b), members(b), connections(b), grants(b), catalog(b), idempotency(b), server(b) {}
  IdentityQueries identity;
  MemberQueries members;
  ConnectionQueries connections;
  GrantQueries grants;
  CatalogQueries catalog;
  IdempotencyQueries idempotency;
  ServerQueries server;
};

// `s`, or an error of `code` with `message` in place of the one it failed with, when it failed
// with `code` (a driver's generic kConflict or kNotFound, said in the call's terms).
inline Status Reword(Status s, ErrorCode code, const char* message) {
  if (!s && s.error().code == code) return Error{code, message};
  return s;
}

// Runs `query` bound with `args` to its end; the rows it changed.
inline Result<std::int64_t> Execute(sql::Session& s, const sql::Query& query,
                                    std::initializer_list<sql::Arg> args) {
  auto st = s.Prepare(query);
  if (!st) return std::move(st).error();
  if (Status done = st->Bind(args).Run(); !done) return std::move(done).error();
  return st->Changes();
}

// Runs `query` (an INSERT of `columns`, say) bound with the fields of `row`, then `args`.
template <class Columns>
Status WriteRow(sql::Session& s, const sql::Query& query, const Columns& columns,
                const sql::RowOf<Columns>& row, std::initializer_list<sql::Arg> args = {}) {
  auto st = s.Prepare(query);
  if (!st) return std::move(st).error();
  sql::BindRow(*st, columns, row);
  return st->Bind(args).Run();
}

// `query` bound with `args`, ready to step through its rows.
inline Result<sql::Stmt> Select(sql::Session& s, const sql::Query& query,
                                std::initializer_list<sql::Arg> args) {
  auto st = s.Prepare(query);
  if (st) st->Bind(args);
  return st;
}

// The count(*) that `query` bound with `args` selects.
inline Result<std::int64_t> Count(sql::Session& s, const sql::Query& query,
                                  std::initializer_list<sql::Arg> args) {
  auto st = Select(s, query, args);
  if (!st) return std::move(st).error();
  auto row = st->Step();
  if (!row) return std::move(row).error();
  return st->Int(0);
}

// True when `query` bound with `args` returns a row.
inline Result<bool> Exists(sql::Session& s, const sql::Query& query,
                           std::initializer_list<sql::Arg> args) {
  auto st = Select(s, query, args);
  if (!st) return std::move(st).error();
  return st->Step();
}

// What a compare-and-set that changed nothing means: kNotFound (`gone`) when `exists` (bound
// with `args`) finds no row, else kPreconditionFailed (`changed`).
inline Status LostCompareAndSet(sql::Session& s, const sql::Query& exists,
                                std::initializer_list<sql::Arg> args, const char* gone,
                                const char* changed) {
  auto found = Exists(s, exists, args);
  if (!found) return std::move(found).error();
  if (!*found) return Error::NotFound(gone);
  return Error::PreconditionFailed(changed);
}

// Reads the rows of a page statement (which fetches limit + 1) into `entries`, at most `limit`;
// true when there was one more.
template <class Columns, class Row = sql::RowOf<Columns>>
Result<bool> ReadPage(sql::Stmt& st, const Columns& columns, int limit, std::vector<Row>& entries) {
  for (;;) {
    auto row = st.Step();
    if (!row) return std::move(row).error();
    if (!*row) return false;
    if (entries.size() == static_cast<std::size_t>(limit)) return true;
    if (Status s = sql::ReadRow(st, columns, entries.emplace_back()); !s) {
      return std::move(s).error();
    }
  }
}

// The first row of `st` read as `columns`; kNotFound (`not_found`) when there is none.
template <class Columns, class Row = sql::RowOf<Columns>>
Result<Row> ReadOne(sql::Stmt& st, const Columns& columns, const char* not_found) {
  auto row = st.Step();
  if (!row) return std::move(row).error();
  if (!*row) return Error::NotFound(not_found);
  Row out;
  if (Status s = sql::ReadRow(st, columns, out); !s) return std::move(s).error();
  return out;
}

// ---- the frame of every store call ---------------------------------------------------------

template <class T, class Body>
Result<T> SqlStore::RunBody(const char* operation, sql::Access access, Body&& body) {
  std::optional<T> out;
  Status s = db_->Run(access, operation, [&](sql::Session& session) -> Status {
    Result<T> r = body(session);
    if (!r) return std::move(r).error();
    out = std::move(*r);
    return OkStatus();
  });
  if (!s) return std::move(s).error();
  return std::move(*out);
}

template <class Columns>
Result<sql::RowOf<Columns>> SqlStore::FindOne(const char* operation, const sql::Query& query,
                                              const Columns& columns,
                                              std::initializer_list<sql::Arg> args,
                                              const char* not_found) {
  using Row = sql::RowOf<Columns>;
  return Run<Row>(operation, Access::kPoint, [&](Session& s) -> Result<Row> {
    auto st = s.Prepare(query);
    if (!st) return std::move(st).error();
    st->Bind(args);
    return ReadOne(*st, columns, not_found);
  });
}

template <class T, class Body>
Result<T> SqlStore::Run(const char* operation, sql::Access access, Body&& body) {
  return StoreCall(operation, [&] { return RunBody<T>(operation, access, body); });
}

}  // namespace connreg::store
