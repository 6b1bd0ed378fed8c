// The PostgreSQL backend of the Store (contract section 11: `postgresql://...`), over libpq.
//
// Several connreg nodes may share one database: every write is one transaction whose
// compare-and-set or row lock makes concurrent nodes agree (UpdateConnection's version check,
// SELECT ... FOR UPDATE on a refresh token, ON CONFLICT for server keys and idempotency keys).
// Migrations run at start under a session advisory lock, so nodes starting together apply each
// one once.
//
// Connections: a bounded pool (url parameter `pool_size`, default 8). A caller waits at most the
// acquire timeout (url parameter `pool_timeout_ms`, default 2000) for a free connection, then
// gets kUnavailable. Each connection prepares its statements once (PQprepare) and runs them with
// parameters (PQexecPrepared); no value is ever pasted into SQL text. A connection found broken
// (the server restarted, a network failure) is closed, the idle ones with it, and the next call
// opens a fresh one: the store recovers without a restart, and returns kUnavailable quickly
// (connect_timeout 2 s unless the url says otherwise) while the server is unreachable.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "store/store.h"

namespace connreg::store {

namespace postgres_internal {
class Connection;   // one PGconn with its set of prepared statements
struct ConnParams;  // the libpq parameters parsed from the url
}  // namespace postgres_internal

struct PostgresOptions {
  // 0: from the url's `pool_size`, else 8.
  int pool_size = 0;
  // Zero: from the url's `pool_timeout_ms`, else 2 s.
  std::chrono::milliseconds acquire_timeout{0};
};

// Thread-safe: every method may be called from any number of threads at once.
class PostgresStore final : public Store {
 public:
  // Connects to `url` ("postgresql://user:password@host:port/db?..." or "postgres://..."),
  // applies pending migrations and keeps the connection for the pool. Throws std::runtime_error
  // when the server cannot be reached, a migration fails, or the schema is newer than this
  // binary. The message never contains the url's password.
  explicit PostgresStore(const std::string& url, PostgresOptions options = {});
  ~PostgresStore() override;
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

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
  bool SharesRateLimits() const override { return true; }
  Result<int> TakeRateToken(const std::string& client_id, double per_second, TimeMs now) override;
  Status Ping() override;
  Result<std::string> ServerKey(const std::string& purpose) override;

  int pool_size() const { return pool_size_; }
  std::chrono::milliseconds acquire_timeout() const { return acquire_timeout_; }

  // Test hook: holds one pooled connection (waiting like any caller) until the returned object
  // is destroyed; kUnavailable when none became free in time.
  class Hold {
   public:
    ~Hold();
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;

   private:
    friend class PostgresStore;
    Hold(PostgresStore* store, std::unique_ptr<postgres_internal::Connection> conn);
    PostgresStore* store_;
    std::unique_ptr<postgres_internal::Connection> conn_;
  };
  Result<std::unique_ptr<Hold>> HoldConnectionForTest();

 private:
  using Connection = postgres_internal::Connection;
  class Lease;

  // A connection from the pool: an idle one (checked, replaced when broken), or a new one while
  // fewer than pool_size are open; waits up to acquire_timeout_ for one to come back.
  Result<Lease> Acquire();
  void Release(std::unique_ptr<Connection> conn);
  // Closes every idle connection: called when one was found broken, as its siblings most
  // likely are too (a server restart).
  void DropIdle();

  // Runs `body(conn)` inside BEGIN ... COMMIT, retrying on serialization failures and
  // deadlocks, and once more on a fresh connection when the pooled one turned out dead before
  // anything ran. `read_only` runs a REPEATABLE READ READ ONLY transaction (one snapshot).
  template <class Body>
  Status Transact(const char* what, bool read_only, Body&& body);
  // Runs `body(conn)` outside any transaction (single statements), with the same reconnect.
  template <class Body>
  Status Single(Body&& body);

  // For libpq; may hold a password, which no message ever shows.
  std::unique_ptr<postgres_internal::ConnParams> params_;
  int pool_size_ = 8;
  std::chrono::milliseconds acquire_timeout_{2000};

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by mu_
  int open_ = 0;                                   // leased + idle + being opened; mu_
};

}  // namespace connreg::store
