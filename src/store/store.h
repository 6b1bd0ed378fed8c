// The persistence interfaces. Every call is blocking and thread-safe: the API layer runs them on
// the blocking pool (core/blocking_pool.h), never on an I/O thread. Implementations: SQLite
// (store/sqlite_store.h, the embedded default) and, later, PostgreSQL behind the same interfaces.
// Expected failures are values: kNotFound, kConflict, kPreconditionFailed; kUnavailable when the
// database cannot be reached; kInternal for anything else (the message is logged, not shown).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "domain/connection.h"

namespace connreg::store {

// ---- identities --------------------------------------------------------------------------

struct Organization {
  std::string organization_id;
  std::string name;
  TimeMs created_at = 0;
};

struct Member {
  std::string member_id;
  std::string organization_id;
  std::string email;
  std::string account_type;  // "admin" | "creator" | "viewer"
  TimeMs created_at = 0;
};

struct ApiClient {
  std::string client_id;
  std::string member_id;
  std::string secret_hash;  // crypto::TokenHash of the secret; the secret itself is never stored
  TimeMs created_at = 0;
  std::optional<TimeMs> revoked_at;
};

// An issued access token, stored by hash only.
struct AccessToken {
  std::string token_hash;
  std::string client_id;
  std::string member_id;
  std::string organization_id;
  TimeMs expires_at = 0;
};

// What a valid bearer token resolves to.
struct Principal {
  std::string organization_id;
  std::string member_id;
  std::string client_id;
  std::string account_type;
};

class IdentityStore {
 public:
  virtual ~IdentityStore() = default;
  virtual Status CreateOrganization(const Organization& org) = 0;
  virtual Result<Organization> GetOrganization(const std::string& organization_id) = 0;
  virtual Result<std::int64_t> CountOrganizations() = 0;
  // kNotFound when the organization does not exist.
  virtual Status CreateMember(const Member& member) = 0;
  virtual Result<Member> GetMember(const std::string& member_id) = 0;
  // kNotFound when the member does not exist.
  virtual Status CreateApiClient(const ApiClient& client) = 0;
  // kNotFound for unknown or revoked clients.
  virtual Result<ApiClient> GetActiveApiClient(const std::string& client_id) = 0;
  virtual Status SaveAccessToken(const AccessToken& token) = 0;
  // Resolves a token hash valid at `now` (not expired, its client not revoked); kNotFound
  // otherwise.
  virtual Result<Principal> ResolveAccessToken(const std::string& token_hash, TimeMs now) = 0;
  // Removes expired tokens; returns how many.
  virtual Result<std::int64_t> PurgeExpiredTokens(TimeMs now) = 0;
};

// ---- connections -------------------------------------------------------------------------

// Keyset position: the sort key of the last entry of the previous page.
struct ListCursor {
  std::string name;
  TimeMs created_at = 0;
  std::string connection_id;
};

struct ListQuery {
  std::string organization_id;
  int limit = 50;                     // 1..1000
  bool include_archived = false;
  std::optional<std::string> search;  // already folded with domain::FoldName
  std::optional<std::string> type;
  std::optional<ListCursor> after;    // keyset paging
  std::int64_t offset = 0;            // numeric page form; used only when `after` is empty
};

struct ConnectionPage {
  std::vector<domain::Connection> entries;
  bool has_more = false;
  std::int64_t total = 0;  // every match of the query, ignoring paging
};

class ConnectionStore {
 public:
  virtual ~ConnectionStore() = default;
  // Inserts a new connection with its secrets. kConflict if the id exists.
  virtual Status CreateConnection(const domain::Connection& c) = 0;
  // kNotFound when absent or in another organization.
  virtual Result<domain::Connection> GetConnection(const std::string& organization_id,
                                                   const std::string& connection_id) = 0;
  // Writes `next` (whole object, secrets included) if the stored version is still
  // `expected_version`: kPreconditionFailed otherwise, kNotFound if it vanished.
  virtual Status UpdateConnection(const domain::Connection& next,
                                  std::int64_t expected_version) = 0;
  // Entries ordered by (name bytes, created_at, connection_id); fetches limit+1 to set has_more.
  virtual Result<ConnectionPage> ListConnections(const ListQuery& q) = 0;
};

// ---- idempotency keys (POST /v2/connections) ---------------------------------------------

struct IdempotentResponse {
  std::string request_hash;  // hash of method, path and body
  int status = 0;
  std::string body;
  std::string location;
  TimeMs created_at = 0;
};

class IdempotencyStore {
 public:
  virtual ~IdempotencyStore() = default;
  // The stored response for (organization, member, key) newer than `not_before`; kNotFound else.
  virtual Result<IdempotentResponse> GetIdempotent(const std::string& organization_id,
                                                   const std::string& member_id,
                                                   const std::string& key, TimeMs not_before) = 0;
  // Atomically creates the connection and records the response under the key. kConflict when
  // the key was recorded meanwhile (the caller then re-reads it).
  virtual Status CreateConnectionIdempotent(const domain::Connection& c,
                                            const std::string& member_id, const std::string& key,
                                            const IdempotentResponse& response) = 0;
};

// ---- the whole store ---------------------------------------------------------------------

class Store : public IdentityStore, public ConnectionStore, public IdempotencyStore {
 public:
  // Cheap round trip to the database, for /readyz.
  virtual Status Ping() = 0;
  // A 32-byte key shared by every node of this store, created on first use: it signs page
  // tokens so a token minted by one node is honoured by every other.
  virtual Result<std::string> ServerKey(const std::string& purpose) = 0;
};

// Opens the store named by a CONNREG_DATABASE url ("sqlite:PATH"; "postgresql://..." later)
// and applies pending migrations. Throws std::runtime_error on failure (start-up only).
std::unique_ptr<Store> OpenStore(const std::string& url);

}  // namespace connreg::store
