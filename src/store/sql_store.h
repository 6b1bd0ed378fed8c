// The query layer: every call of the store's interfaces (store.h), written once in SQL over the
// database interface (sql.h) and run on whichever backend the Database is. The statements and
// row mappings of each aggregate sit in one file each: sql_identity.cc (organizations, API
// clients, tokens), sql_members.cc (members, teams, memberships), sql_connections.cc
// (connections, their secrets, key rotation), sql_grants.cc, sql_catalog.cc (the warehouse
// catalog), sql_idempotency.cc; sql_store.cc has the rest (server keys, rate limits,
// migrations). SqliteStore and PostgresStore are this class over their own Database.
#pragma once

#include <initializer_list>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "store/revocation_epoch.h"
#include "store/sql.h"
#include "store/store.h"

namespace connreg::store {

// Thread-safe: every method may be called from any number of threads at once.
class SqlStore : public Store {
 public:
  ~SqlStore() override;
  SqlStore(const SqlStore&) = delete;
  SqlStore& operator=(const SqlStore&) = delete;

  // IdentityStore
  Status CreateOrganization(const Organization& org) override;
  Result<Organization> GetOrganization(const std::string& organization_id) override;
  Result<std::int64_t> CountOrganizations() override;
  Result<bool> BootstrapIfEmpty(const Organization& org, const Member& admin,
                                const ApiClient& client) override;
  Status CreateApiClient(const ApiClient& client) override;
  Status RevokeApiClient(const std::string& client_id, TimeMs now) override;

  // MemberStore
  Status CreateMember(const Member& member, const std::vector<TeamMembership>& teams) override;
  Result<Member> GetMember(const std::string& organization_id,
                           const std::string& member_id) override;
  Result<Member> UpdateMember(const std::string& organization_id, const std::string& member_id,
                              const domain::MemberChange& change,
                              const std::string& actor_member_id, TimeMs now) override;
  Result<MemberPage> ListMembers(const MemberListQuery& q) override;
  Status CreateTeam(const Team& team, const std::vector<std::string>& members) override;
  Result<Team> GetTeam(const std::string& organization_id, const std::string& team_id,
                       std::vector<std::string>* member_ids) override;
  Result<Team> UpdateTeam(const std::string& organization_id, const std::string& team_id,
                          const domain::TeamChange& change, const std::string& actor_member_id,
                          TimeMs now) override;
  Status ArchiveTeam(const std::string& organization_id, const std::string& team_id,
                     const std::string& actor_member_id, TimeMs now) override;
  Status ChangeTeamMembers(const std::string& organization_id, const std::string& team_id,
                           const domain::TeamMembersChange& change,
                           const std::string& actor_member_id) override;
  Result<TeamPage> ListTeams(const TeamListQuery& q) override;
  Result<TeamMemberPage> ListTeamMembers(const std::string& organization_id,
                                         const std::string& team_id, int limit,
                                         const std::optional<std::string>& after,
                                         std::int64_t offset) override;

  // TokenStore
  Result<Member> GetMember(const std::string& member_id) override;
  Result<ApiClient> GetActiveApiClient(const std::string& client_id) override;
  Status SaveAccessToken(const AccessToken& token) override;
  Status SaveTokenPair(const AccessToken& access, const RefreshToken& refresh) override;
  Result<Principal> RotateRefreshToken(const std::string& presented_hash,
                                       const std::string& client_id, TimeMs now,
                                       AccessToken next_access, RefreshToken next_refresh) override;
  Result<Principal> ResolveAccessToken(const std::string& token_hash, TimeMs now) override;
  const RevocationEpoch* revocation_epoch() const override { return epoch_.get(); }
  Result<std::int64_t> PurgeExpired(TimeMs now, TimeMs idempotency_not_before) override;

  // ConnectionStore
  Status CreateConnection(const domain::Connection& c) override;
  Result<domain::Connection> GetConnection(const std::string& organization_id,
                                           const std::string& connection_id) override;
  Result<TokenConnectionRead> GetConnectionForToken(const std::string& token_hash, TimeMs now,
                                                    const std::string& connection_id) override;
  Status UpdateConnection(const domain::Connection& next, std::int64_t expected_version) override;
  Result<ConnectionPage> ListConnections(const ListQuery& q) override;
  Status RecordTest(const std::string& organization_id, const std::string& connection_id,
                    const domain::LastTest& test, bool query_reached) override;

  // SealedSecretStore
  Result<std::vector<SealedSecretRef>> SecretsNotUnderKey(const std::string& key_id,
                                                          int limit) override;
  Status ResealSecret(const std::string& connection_id, const std::string& field,
                      const std::string& expected_sealed,
                      const domain::StoredSecret& next) override;
  Result<std::vector<std::string>> SecretKeyIds() override;

  // GrantStore
  Status UpsertGrants(const std::string& organization_id, const std::string& connection_id,
                      const std::vector<Grant>& grants) override;
  Result<GrantPage> ListGrants(const std::string& organization_id, const std::string& connection_id,
                               int limit, const std::optional<GrantCursor>& after,
                               std::int64_t offset) override;
  Status DeleteGrant(const std::string& organization_id, const std::string& connection_id,
                     const std::string& grant_id) override;
  Result<bool> HasGrant(const std::string& organization_id, const std::string& connection_id,
                        const std::string& member_id) override;

  // CatalogStore (sql_catalog.cc)
  Result<CatalogBatchResult> ApplyCatalogBatch(const std::string& organization_id,
                                               const std::string& connection_id,
                                               const std::vector<domain::WarehouseObject>& objects,
                                               TimeMs now,
                                               const std::function<std::string()>& new_id) override;
  Result<std::int64_t> MarkUnseenRemoved(const std::string& organization_id,
                                         const std::string& connection_id,
                                         const domain::CatalogPath& prefix,
                                         const std::unordered_set<std::string>& seen,
                                         TimeMs now) override;
  Result<Inode> GetInode(const std::string& organization_id, const std::string& inode_id) override;
  Result<Inode> FindInode(const std::string& organization_id, const std::string& connection_id,
                          const domain::CatalogPath& path) override;
  Result<InodePage> ListInodes(const InodeListQuery& q) override;
  Result<ColumnPage> ListColumns(const std::string& organization_id, const std::string& table_id,
                                 int limit, const std::optional<ColumnCursor>& after) override;
  Result<bool> CanSeeInode(const std::string& organization_id, const std::string& inode_id,
                           const std::string& member_id) override;
  Result<std::int64_t> ApplyDbtDescriptions(
      const std::string& organization_id, const std::string& connection_id,
      const std::vector<DbtDescription>& descriptions) override;
  Status UpsertPathGrants(const std::string& organization_id, const std::string& inode_id,
                          const std::vector<Grant>& grants) override;
  Result<GrantPage> ListPathGrants(const std::string& organization_id, const std::string& inode_id,
                                   int limit, const std::optional<GrantCursor>& after,
                                   std::int64_t offset) override;
  Status DeletePathGrant(const std::string& organization_id, const std::string& inode_id,
                         const std::string& grant_id) override;
  Status SaveSync(const SyncRecord& sync) override;
  Result<SyncRecord> LastSync(const std::string& organization_id,
                              const std::string& connection_id) override;
  Result<std::vector<SyncRecord>> RunningSyncs() override;

  // IdempotencyStore
  Result<IdempotentResponse> GetIdempotent(const std::string& organization_id,
                                           const std::string& member_id, const std::string& key,
                                           TimeMs not_before) override;
  Status CreateConnectionIdempotent(const domain::Connection& c, const std::string& member_id,
                                    const std::string& key, const IdempotentResponse& response,
                                    TimeMs not_before) override;

  // ServerKeyStore, RateLimitStore, StoreHealth, Store
  Result<std::string> ServerKey(const std::string& purpose) override;
  Result<int> TakeRateToken(const std::string& client_id, double per_second, TimeMs now) override;
  Status Ping() override;
  bool PointReadsAreLocal() const override;
  bool SharesRateLimits() const override;

 protected:
  // Applies the pending migrations on `db` and keeps it. Throws std::runtime_error when one
  // fails or the database's schema is newer than this binary.
  explicit SqlStore(std::unique_ptr<sql::Database> db);
  sql::Database& database() const { return *db_; }
  // The backend's revocation epoch (SQLite: the file beside the database); set once, before the
  // store serves any call.
  void UseRevocationEpoch(std::unique_ptr<RevocationEpoch> epoch) { epoch_ = std::move(epoch); }

 private:
  struct Queries;  // every statement, built once for the database's dialect (sql_queries.h)

  // Database::Run for a body that returns the call's result (afresh on each run), inside
  // StoreCall (metrics, no escaping exception); RunBody without StoreCall. Both are defined in
  // sql_queries.h.
  template <class T, class Body>
  Result<T> Run(const char* operation, sql::Access access, Body&& body);
  template <class T, class Body>
  Result<T> RunBody(const char* operation, sql::Access access, Body&& body);
  // A point read of one row of `columns` (kNotFound with `not_found` when there is none).
  template <class Columns>
  Result<typename std::remove_cvref_t<decltype(*std::begin(std::declval<Columns&>()))>::RowType>
  FindOne(const char* operation, const sql::Query& query, const Columns& columns,
          std::initializer_list<sql::Arg> args, const char* not_found);
  // Bumps the revocation epoch, if any, after a write that can revoke a token (`revoked`), or
  // that failed in a way that leaves unknown whether it committed (kUnavailable, kInternal).
  // Called after the write's transaction ended, before the call returns.
  void AfterRevokingWrite(bool revoked, const Status& outcome);
  // The connection row and its secrets (CreateConnection, CreateConnectionIdempotent).
  Status InsertConnection(sql::Session& s, const domain::Connection& c);
  // At start: logs a warning when the listing's search has no index (sql_connections.cc).
  void WarnIfSearchScans();

  std::unique_ptr<sql::Database> db_;
  sql::QueryBook book_;
  std::unique_ptr<const Queries> q_;
  std::unique_ptr<RevocationEpoch> epoch_;
};

}  // namespace connreg::store
