// The embedded SQLite backend of the Store (contract section 11: `sqlite:PATH`).
//
// Durability: WAL journal with synchronous=FULL, so a write is on disk before its method returns
// and survives kill -9. Concurrency: one writer connection behind a mutex (every write is one
// BEGIN IMMEDIATE transaction, which also serialises writers of other processes through the
// file lock) and a pool of reader connections, so reads run in parallel with each other and
// with the writer and see the last committed state. Several processes may open the same file.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "store/store.h"

namespace connreg::store {

namespace sqlite_internal {
class Connection;  // one sqlite3 handle with its cache of prepared statements
}  // namespace sqlite_internal

// Thread-safe: every method may be called from any number of threads at once.
class SqliteStore final : public Store {
 public:
  // Opens (creating if needed) the database file at `path`, whose directory must exist, and
  // applies pending migrations. Throws std::runtime_error when the file cannot be opened or
  // migrated, or when its schema is newer than this binary.
  explicit SqliteStore(const std::string& path);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  // IdentityStore
  Status CreateOrganization(const Organization& org) override;
  Result<Organization> GetOrganization(const std::string& organization_id) override;
  Result<std::int64_t> CountOrganizations() override;
  Result<bool> BootstrapIfEmpty(const Organization& org, const Member& admin,
                                const ApiClient& client) override;
  Status CreateMember(const Member& member) override;
  Result<Member> GetMember(const std::string& member_id) override;
  Status CreateApiClient(const ApiClient& client) override;
  Result<ApiClient> GetActiveApiClient(const std::string& client_id) override;
  Status RevokeApiClient(const std::string& client_id, TimeMs now) override;
  Status SaveAccessToken(const AccessToken& token) override;
  Status SaveTokenPair(const AccessToken& access, const RefreshToken& refresh) override;
  Result<Principal> RotateRefreshToken(const std::string& presented_hash,
                                       const std::string& client_id, TimeMs now,
                                       AccessToken next_access, RefreshToken next_refresh) override;
  Result<Principal> ResolveAccessToken(const std::string& token_hash, TimeMs now) override;
  Result<std::int64_t> PurgeExpired(TimeMs now, TimeMs idempotency_not_before) override;
  Status CreateTeam(const Team& team) override;
  Result<Team> GetTeam(const std::string& team_id) override;
  Status AddTeamMember(const std::string& team_id, const std::string& member_id) override;

  // ConnectionStore
  Status CreateConnection(const domain::Connection& c) override;
  Result<domain::Connection> GetConnection(const std::string& organization_id,
                                           const std::string& connection_id) override;
  Status UpdateConnection(const domain::Connection& next, std::int64_t expected_version) override;
  Result<ConnectionPage> ListConnections(const ListQuery& q) override;
  Status RecordTest(const std::string& organization_id, const std::string& connection_id,
                    const domain::LastTest& test, bool query_reached) override;
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

  // IdempotencyStore
  Result<IdempotentResponse> GetIdempotent(const std::string& organization_id,
                                           const std::string& member_id, const std::string& key,
                                           TimeMs not_before) override;
  Status CreateConnectionIdempotent(const domain::Connection& c, const std::string& member_id,
                                    const std::string& key, const IdempotentResponse& response,
                                    TimeMs not_before) override;

  // Store
  bool PointReadsAreLocal() const override { return true; }
  Status Ping() override;
  Result<std::string> ServerKey(const std::string& purpose) override;

 private:
  using Connection = sqlite_internal::Connection;
  class ReaderLease;

  // A reader from the idle list, or a new one; returned to the list when the lease ends.
  Result<ReaderLease> AcquireReader();
  void ReleaseReader(std::unique_ptr<Connection> reader);
  // Runs `body(writer)` inside BEGIN IMMEDIATE ... COMMIT; rolls back when it fails.
  template <class Body>
  Status Write(const char* what, Body&& body);

  const std::string path_;
  std::mutex writer_mu_;
  std::unique_ptr<Connection> writer_;  // guarded by writer_mu_
  std::mutex readers_mu_;
  std::vector<std::unique_ptr<Connection>> idle_readers_;  // guarded by readers_mu_
};

}  // namespace connreg::store
