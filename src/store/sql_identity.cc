// Organizations, API clients, access and refresh tokens: their rows and statements, once for
// every backend. (Members and teams are in sql_members.cc.)
#include <optional>
#include <string>
#include <utility>

#include "store/sql_queries.h"
#include "store/sql_rows.h"
#include "store/sql_store.h"

namespace connreg::store {
namespace {

constexpr Column<Organization> kOrganizationColumns[] = {
    Field<&Organization::organization_id>("organization_id", kKey),
    Field<&Organization::name>("name"),
    Field<&Organization::created_at>("created_at"),
};

constexpr Column<ApiClient> kApiClientColumns[] = {
    Field<&ApiClient::client_id>("client_id", kKey), Field<&ApiClient::member_id>("member_id"),
    Field<&ApiClient::secret_hash>("secret_hash"),   Field<&ApiClient::created_at>("created_at"),
    Field<&ApiClient::revoked_at>("revoked_at"),
};

// An empty family_id is stored as NULL, like the rows written before families existed, so that
// no family-wide deletion can ever match them.
constexpr Column<AccessToken> kAccessTokenColumns[] = {
    Field<&AccessToken::token_hash>("token_hash", kKey),
    Field<&AccessToken::client_id>("client_id"),
    Field<&AccessToken::member_id>("member_id"),
    Field<&AccessToken::organization_id>("organization_id"),
    Field<&AccessToken::expires_at>("expires_at"),
    {"family_id",
     [](sql::Stmt& st, std::string_view param, const AccessToken& t) {
       if (t.family_id.empty()) {
         st.Bind(param, std::nullopt);
       } else {
         st.Bind(param, t.family_id);
       }
     },
     [](const sql::Stmt& st, int col, AccessToken& t) -> Status {
       t.family_id.assign(st.Text(col));  // NULL reads as ""
       return OkStatus();
     }},
};

// used_at is not a field: a new refresh token is unused (NULL).
constexpr Column<RefreshToken> kRefreshTokenColumns[] = {
    Field<&RefreshToken::token_hash>("token_hash", kKey),
    Field<&RefreshToken::family_id>("family_id"),
    Field<&RefreshToken::client_id>("client_id"),
    Field<&RefreshToken::member_id>("member_id"),
    Field<&RefreshToken::organization_id>("organization_id"),
    Field<&RefreshToken::expires_at>("expires_at"),
};

}  // namespace

IdentityQueries::IdentityQueries(sql::QueryBook& b)
    : insert_organization(b, sql::InsertSql("organizations", kOrganizationColumns)),
      get_organization(b, sql::SelectByKey(kOrganizationColumns, "organizations")),
      count_organizations(b, "SELECT count(*) FROM organizations"),
      insert_api_client(b, sql::InsertSql("api_clients", kApiClientColumns)),
      // A client acts as its member: the client of a member that is not active is refused.
      get_active_api_client(b, "SELECT " + sql::SelectList(kApiClientColumns, "c.") +
                                   " FROM api_clients AS c JOIN members AS m"
                                   " ON m.member_id = c.member_id AND NOT m.is_archived"
                                   " AND NOT m.is_inactive"
                                   " WHERE c.client_id = :client_id AND c.revoked_at IS NULL"),
      // A second revocation keeps the first time.
      revoke_api_client(b,
                        "UPDATE api_clients SET revoked_at = coalesce(revoked_at, :now) "
                        "WHERE client_id = :client_id"),
      delete_client_access_tokens(b, "DELETE FROM access_tokens WHERE client_id = :client_id"),
      delete_client_refresh_tokens(b, "DELETE FROM refresh_tokens WHERE client_id = :client_id"),
      // A token is saved only while its client may be issued one, checked in the saving
      // transaction: where rows are locked, the client and member rows are share-locked, so a
      // revocation or a deactivation committing meanwhile either waits for the save (and then
      // deletes the token) or is seen by it (and nothing is saved). A check before the
      // transaction alone would let a token issued during a deactivation revive with the member.
      lock_token_issuer(b,
                        "SELECT 1 FROM api_clients AS c JOIN members AS m"
                        " ON m.member_id = c.member_id AND NOT m.is_archived AND NOT m.is_inactive"
                        " WHERE c.client_id = :client_id AND c.revoked_at IS NULL" +
                            std::string(b.dialect().RowLocks(" FOR SHARE OF c, m"))),
      insert_access_token(b, sql::InsertSql("access_tokens", kAccessTokenColumns)),
      insert_refresh_token(b, sql::InsertSql("refresh_tokens", kRefreshTokenColumns)),
      // On the path of every request (unless the token cache holds it).
      resolve_access_token(b, "SELECT " + std::string(kPrincipalSelectList) + " FROM " +
                                  std::string(kValidTokenFrom) + " WHERE " +
                                  std::string(kValidTokenWhere)),
      // Where rows are locked, the presented token's row is (FOR UPDATE), so two presentations
      // on any nodes are serialised: the second one waits, then sees used_at (reuse) or no row
      // (the family is gone). The client row is share-locked so that a revocation waits for the
      // rotation and deletes what it issued; so is the member row, so that a deactivation
      // (MemberStore::UpdateMember) waits as well and deletes what it issued. (SQLite's one
      // writer serialises them anyway.)
      find_refresh_token(
          b,
          "SELECT r.family_id, r.client_id, r.member_id, r.organization_id, "
          "r.expires_at, r.used_at, c.revoked_at, m.account_type, m.is_archived, m.is_inactive "
          "FROM refresh_tokens AS r "
          "JOIN api_clients AS c ON c.client_id = r.client_id "
          "JOIN members AS m ON m.member_id = r.member_id "
          "WHERE r.token_hash = :token_hash" +
              std::string(b.dialect().RowLocks(" FOR UPDATE OF r FOR SHARE OF c, m"))),
      use_refresh_token(b,
                        "UPDATE refresh_tokens SET used_at = :now WHERE token_hash = :token_hash"),
      delete_family_access_tokens(b, "DELETE FROM access_tokens WHERE family_id = :family_id"),
      delete_family_refresh_tokens(b, "DELETE FROM refresh_tokens WHERE family_id = :family_id"),
      purge_access_tokens(b, "DELETE FROM access_tokens WHERE expires_at <= :now"),
      purge_refresh_tokens(b, "DELETE FROM refresh_tokens WHERE expires_at <= :now"),
      purge_idempotency_keys(b, "DELETE FROM idempotency_keys WHERE created_at < :not_before") {}

Principal ReadPrincipal(const sql::Stmt& st, int first) {
  return Principal{std::string(st.Text(first)), std::string(st.Text(first + 1)),
                   std::string(st.Text(first + 2)), std::string(st.Text(first + 3)),
                   st.Int(first + 4)};
}

void SqlStore::AfterRevokingWrite(bool revoked, const Status& outcome) {
  const bool unknown = !outcome && (outcome.error().code == ErrorCode::kUnavailable ||
                                    outcome.error().code == ErrorCode::kInternal);
  if (epoch_ != nullptr && (revoked || unknown)) epoch_->Bump();
}

namespace {

Status InsertOrganization(Session& s, const IdentityQueries& q, const Organization& org) {
  return Reword(WriteRow(s, q.insert_organization, kOrganizationColumns, org), ErrorCode::kConflict,
                "an organization with this id already exists");
}

Status InsertApiClient(Session& s, const IdentityQueries& q, const ApiClient& client) {
  return Reword(WriteRow(s, q.insert_api_client, kApiClientColumns, client), ErrorCode::kNotFound,
                "member not found");
}

// kNotFound unless `client_id` may be issued a token (see lock_token_issuer).
Status LockTokenIssuer(Session& s, const IdentityQueries& q, const std::string& client_id) {
  auto found = Exists(s, q.lock_token_issuer, {{"client_id", client_id}});
  if (!found) return std::move(found).error();
  if (!*found) return Error::NotFound("client not found, revoked, or its member is not active");
  return OkStatus();
}

Status InsertAccessToken(Session& s, const IdentityQueries& q, const AccessToken& t) {
  return WriteRow(s, q.insert_access_token, kAccessTokenColumns, t);
}

Status InsertRefreshToken(Session& s, const IdentityQueries& q, const RefreshToken& t) {
  return WriteRow(s, q.insert_refresh_token, kRefreshTokenColumns, t);
}

// A duplicate token hash means a broken random source, not a conflict the caller could act on;
// for the refresh grant a kConflict would even read as "token reused".
Status TokenInsertError(Status s) {
  if (!s && s.error().code == ErrorCode::kConflict) {
    return Error::Internal("store: token hash collision");
  }
  return s;
}

}  // namespace

// ---- organizations, clients ----------------------------------------------------------------

Status SqlStore::CreateOrganization(const Organization& org) {
  return Run<Ok>("create_organization", Access::kWrite,
                 [&](Session& s) { return InsertOrganization(s, q_->identity, org); });
}

Result<Organization> SqlStore::GetOrganization(const std::string& organization_id) {
  return FindOne("get_organization", q_->identity.get_organization, kOrganizationColumns,
                 {{"organization_id", organization_id}}, "organization not found");
}

Result<std::int64_t> SqlStore::CountOrganizations() {
  return Run<std::int64_t>("count_organizations", Access::kPoint, [&](Session& s) {
    return Count(s, q_->identity.count_organizations, {});
  });
}

// The write transaction holds the database's write lock (SQLite) or, after bootstrap_lock, a
// transaction advisory lock (PostgreSQL), which other processes wait for too.
Result<bool> SqlStore::BootstrapIfEmpty(const Organization& org, const Member& admin,
                                        const ApiClient& client) {
  return Run<bool>("bootstrap", Access::kWrite, [&](Session& s) -> Result<bool> {
    if (const auto lock = db_->dialect().bootstrap_lock; !lock.empty()) {
      if (Status l = s.Exec(lock); !l) return std::move(l).error();
    }
    auto orgs = Count(s, q_->identity.count_organizations, {});
    if (!orgs) return std::move(orgs).error();
    if (*orgs > 0) return false;
    if (Status step = InsertOrganization(s, q_->identity, org); !step) return step.error();
    if (Status step = InsertMember(s, q_->members, admin); !step) return step.error();
    if (Status step = InsertApiClient(s, q_->identity, client); !step) return step.error();
    return true;
  });
}

Status SqlStore::CreateApiClient(const ApiClient& client) {
  return Run<Ok>("create_api_client", Access::kWrite,
                 [&](Session& s) { return InsertApiClient(s, q_->identity, client); });
}

Result<ApiClient> SqlStore::GetActiveApiClient(const std::string& client_id) {
  return FindOne("get_active_api_client", q_->identity.get_active_api_client, kApiClientColumns,
                 {{"client_id", client_id}}, "client not found");
}

// Where rows are locked, the UPDATE's row lock also waits for a refresh rotation of this client
// in flight (it holds FOR SHARE on the row), so the deletions below see the tokens it issued.
Status SqlStore::RevokeApiClient(const std::string& client_id, TimeMs now) {
  Status revoked = Run<Ok>("revoke_api_client", Access::kWrite, [&](Session& s) -> Status {
    auto n = Execute(s, q_->identity.revoke_api_client, {{"client_id", client_id}, {"now", now}});
    if (!n) return std::move(n).error();
    if (*n == 0) return Error::NotFound("client not found");
    // ResolveAccessToken already refuses them through revoked_at; deleting them as well keeps a
    // revoked client's tokens from outliving it anywhere (and the refresh grant from reviving
    // one).
    n = Execute(s, q_->identity.delete_client_access_tokens, {{"client_id", client_id}});
    if (!n) return std::move(n).error();
    n = Execute(s, q_->identity.delete_client_refresh_tokens, {{"client_id", client_id}});
    if (!n) return std::move(n).error();
    return OkStatus();
  });
  AfterRevokingWrite(revoked.ok(), revoked);
  return revoked;
}

// ---- tokens --------------------------------------------------------------------------------

Status SqlStore::SaveAccessToken(const AccessToken& token) {
  return Run<Ok>("save_access_token", Access::kWrite, [&](Session& s) -> Status {
    if (Status st = LockTokenIssuer(s, q_->identity, token.client_id); !st) return st;
    return InsertAccessToken(s, q_->identity, token);
  });
}

// The pair belongs to the refresh token's family; an access token without a family_id joins it.
Status SqlStore::SaveTokenPair(const AccessToken& access, const RefreshToken& refresh) {
  return StoreCall("save_token_pair", [&]() -> Status {
    if (refresh.family_id.empty()) {
      return Error::Internal("store: a refresh token needs a family_id");
    }
    if (!access.family_id.empty() && access.family_id != refresh.family_id) {
      return Error::Internal("store: a token pair must share its family_id");
    }
    AccessToken a = access;
    a.family_id = refresh.family_id;
    return RunBody<Ok>("save_token_pair", Access::kWrite, [&](Session& s) -> Status {
      if (Status st = LockTokenIssuer(s, q_->identity, a.client_id); !st) return st;
      Status st = TokenInsertError(InsertAccessToken(s, q_->identity, a));
      if (!st) return st;
      return TokenInsertError(InsertRefreshToken(s, q_->identity, refresh));
    });
  });
}

// One write transaction, so two presentations of the same token are serialised (see
// find_refresh_token): the second one sees used_at and is treated as reuse. The family deletion
// of a reuse is committed (the body succeeds) and only then reported as kConflict.
Result<Principal> SqlStore::RotateRefreshToken(const std::string& presented_hash,
                                               const std::string& client_id, TimeMs now,
                                               AccessToken next_access, RefreshToken next_refresh) {
  struct Rotation {
    Principal principal;
    bool reused = false;
  };
  auto rotated =
      Run<Rotation>("rotate_refresh_token", Access::kWrite, [&](Session& s) -> Result<Rotation> {
        Rotation out;
        std::string family_id;
        {
          auto st = Select(s, q_->identity.find_refresh_token, {{"token_hash", presented_hash}});
          if (!st) return std::move(st).error();
          auto row = st->Step();
          if (!row) return std::move(row).error();
          if (!*row) return Error::NotFound("refresh token not found");
          const bool expired = st->Int("expires_at") <= now;
          const bool revoked =
              !st->IsNull("revoked_at") || st->Bool("is_archived") || st->Bool("is_inactive");
          const bool other_client = !client_id.empty() && client_id != st->Text("client_id");
          if (expired || revoked || other_client) {
            return Error::NotFound("refresh token not found");
          }
          family_id = st->Text("family_id");
          out.reused = !st->IsNull("used_at");
          out.principal = Principal{
              std::string(st->Text("organization_id")), std::string(st->Text("member_id")),
              std::string(st->Text("client_id")), std::string(st->Text("account_type")), 0};
        }
        if (out.reused) {
          for (const sql::Query* q : {&q_->identity.delete_family_access_tokens,
                                      &q_->identity.delete_family_refresh_tokens}) {
            auto n = Execute(s, *q, {{"family_id", family_id}});
            if (!n) return std::move(n).error();
          }
          return out;
        }
        auto n = Execute(s, q_->identity.use_refresh_token,
                         {{"token_hash", presented_hash}, {"now", now}});
        if (!n) return std::move(n).error();
        next_access.family_id = next_refresh.family_id = family_id;
        next_access.client_id = next_refresh.client_id = out.principal.client_id;
        next_access.member_id = next_refresh.member_id = out.principal.member_id;
        next_access.organization_id = next_refresh.organization_id = out.principal.organization_id;
        Status saved = TokenInsertError(InsertAccessToken(s, q_->identity, next_access));
        if (!saved) return std::move(saved).error();
        saved = TokenInsertError(InsertRefreshToken(s, q_->identity, next_refresh));
        if (!saved) return std::move(saved).error();
        return out;
      });
  // A reuse deleted the family's access tokens, which a token cache may hold.
  AfterRevokingWrite(rotated && rotated->reused, rotated ? OkStatus() : Status(rotated.error()));
  if (!rotated) return std::move(rotated).error();
  if (rotated->reused) {
    return Error::Conflict("the refresh token was already used; its family is revoked");
  }
  return std::move(rotated->principal);
}

Result<Principal> SqlStore::ResolveAccessToken(const std::string& token_hash, TimeMs now) {
  return Run<Principal>("resolve_access_token", Access::kPoint,
                        [&](Session& s) -> Result<Principal> {
                          auto st = Select(s, q_->identity.resolve_access_token,
                                           {{"token_hash", token_hash}, {"now", now}});
                          if (!st) return std::move(st).error();
                          auto row = st->Step();
                          if (!row) return std::move(row).error();
                          if (!*row) return Error::NotFound("token not found");
                          return ReadPrincipal(*st, 0);
                        });
}

// Used refresh tokens go only when they expire: until then they are what reuse detection checks.
Result<std::int64_t> SqlStore::PurgeExpired(TimeMs now, TimeMs idempotency_not_before) {
  return Run<std::int64_t>(
      "purge_expired", Access::kWrite, [&](Session& s) -> Result<std::int64_t> {
        std::int64_t purged = 0;
        for (const sql::Query* q :
             {&q_->identity.purge_access_tokens, &q_->identity.purge_refresh_tokens}) {
          auto n = Execute(s, *q, {{"now", now}});
          if (!n) return n;
          purged += *n;
        }
        auto n = Execute(s, q_->identity.purge_idempotency_keys,
                         {{"not_before", idempotency_not_before}});
        if (!n) return n;
        return purged + *n;
      });
}

}  // namespace connreg::store
