// The persistence interfaces, one per aggregate and each as narrow as its users need: a request
// handler gets the few it uses (api/api.h, Context), the operator CLI the ones it administers.
// Store gathers them all for whoever opens the database. Every call is blocking and thread-safe:
// the API layer runs them on the blocking pool (core/blocking_pool.h), never on an I/O thread.
// One implementation, SqlStore (store/sql_store.h), written once in SQL over two backends:
// SQLite (store/sqlite_store.h, the embedded default) and PostgreSQL (store/postgres_store.h).
// Expected failures are values: kNotFound, kConflict, kPreconditionFailed; kUnavailable when the
// database cannot be reached; kInternal for anything else (the message is logged, not shown).
// The stores check the integrity of what they keep (references, uniqueness, versions), not
// business rules: those are the domain's (e.g. domain/permissions.h), checked before a call.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/result.h"
#include "domain/catalog.h"
#include "domain/connection.h"
#include "domain/member.h"

namespace connreg::store {

class RevocationEpoch;  // store/revocation_epoch.h

// ---- identities --------------------------------------------------------------------------

struct Organization {
  std::string organization_id;
  std::string name;
  TimeMs created_at = 0;
};

using Member = domain::Member;
using Team = domain::Team;
using TeamMembership = domain::TeamMembership;

struct ApiClient {
  std::string client_id;
  std::string member_id;
  std::string secret_hash;  // crypto::TokenHash of the secret; the secret itself is never stored
  TimeMs created_at = 0;
  std::optional<TimeMs> revoked_at;
};

// An issued access token, stored by hash only. Tokens issued together from one client
// credentials grant, and every pair rotated from it, share a `family_id`.
struct AccessToken {
  std::string token_hash;
  std::string client_id;
  std::string member_id;
  std::string organization_id;
  TimeMs expires_at = 0;
  std::string family_id;
};

// A refresh token, stored by hash only; good for one use (contract section 2).
struct RefreshToken {
  std::string token_hash;
  std::string family_id;
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
  TimeMs expires_at = 0;  // the token's expiry (when resolved from an access token)
};

// What authenticating a request and issuing tokens needs (the token endpoint, every request's
// bearer token): API clients, the account type of their members, access and refresh tokens.
// A member that is not active (archived or inactive, domain::Member::IsActive) authenticates
// nothing: its clients, refresh tokens and access tokens are all refused, on the next request.
class TokenStore {
 public:
  virtual ~TokenStore() = default;
  // The member by id, in whichever organization (kNotFound when unknown).
  virtual Result<Member> GetMember(const std::string& member_id) = 0;
  // kNotFound for unknown or revoked clients, and clients of members that are not active.
  virtual Result<ApiClient> GetActiveApiClient(const std::string& client_id) = 0;
  // Both save only while the token's client may be issued one, checked in the same transaction:
  // kNotFound when it is revoked, or its member is not active, by then.
  virtual Status SaveAccessToken(const AccessToken& token) = 0;
  // Saves a fresh access/refresh pair atomically (client credentials grant).
  virtual Status SaveTokenPair(const AccessToken& access, const RefreshToken& refresh) = 0;
  // The refresh grant, atomically: consumes the refresh token `presented_hash` (unused, not
  // expired, its client active, and issued to `client_id` when that is not empty) and saves
  // `next_access`/`next_refresh` in the same family (their client/member/organization/family
  // fields are filled in by the store from the consumed token). Returns the principal.
  // kNotFound: unknown, expired, revoked, another client's token, or a token of a member that is
  // not active (nothing changes).
  // kConflict: the token was already used: every access and refresh token of its family is
  // deleted (reuse detection), in the same transaction, and nothing is issued.
  virtual Result<Principal> RotateRefreshToken(const std::string& presented_hash,
                                               const std::string& client_id, TimeMs now,
                                               AccessToken next_access,
                                               RefreshToken next_refresh) = 0;
  // Resolves a token hash valid at `now` (not expired, its client not revoked, its member
  // active); kNotFound otherwise.
  virtual Result<Principal> ResolveAccessToken(const std::string& token_hash, TimeMs now) = 0;
  // The counter that every write which can make a resolved token fail or change its principal
  // (a client revoked, a member deactivated or its account type changed, a refresh token's
  // reuse) increments after its commit and before it returns, in whichever process made it; a
  // process may keep resolved tokens in memory while it is unchanged (auth/token_cache.h).
  // nullptr when the store has none (PostgreSQL, or the file could not be made): resolve every
  // request's token in the store.
  virtual const RevocationEpoch* revocation_epoch() const = 0;
  // Removes expired access and refresh tokens, and idempotency keys created before
  // `idempotency_not_before`; returns how many rows went.
  virtual Result<std::int64_t> PurgeExpired(TimeMs now, TimeMs idempotency_not_before) = 0;
};

// What the operator administers (the CLI and the first-start bootstrap): organizations and API
// clients. Members and teams are the MemberStore's.
class IdentityStore {
 public:
  virtual ~IdentityStore() = default;
  virtual Status CreateOrganization(const Organization& org) = 0;
  virtual Result<Organization> GetOrganization(const std::string& organization_id) = 0;
  virtual Result<std::int64_t> CountOrganizations() = 0;
  // The first-start bootstrap (contract section 11) in one transaction under the store's write
  // lock: creates `org`, `admin` and `client` only if the store holds no organization yet, so
  // that nodes starting together on one empty store bootstrap it once. False: it was not empty,
  // nothing was written.
  virtual Result<bool> BootstrapIfEmpty(const Organization& org, const Member& admin,
                                        const ApiClient& client) = 0;
  // kNotFound when the member does not exist.
  virtual Status CreateApiClient(const ApiClient& client) = 0;
  // Revokes the client (revoked_at = now) and deletes its access and refresh tokens, in one
  // transaction: every request that starts after this returns is refused. kNotFound if unknown.
  virtual Status RevokeApiClient(const std::string& client_id, TimeMs now) = 0;
};

// ---- members and teams (contract section 12) ----------------------------------------------

// Keyset positions of the listings: the sort key of the last entry of the previous page.
struct MemberCursor {
  std::string email_folded;  // domain::FoldName(email)
  std::string member_id;
};

struct MemberListQuery {
  std::string organization_id;
  int limit = 50;  // 1..1000
  bool include_archived = false;
  bool include_inactive = false;
  std::optional<std::string> email;   // exact, already folded with domain::FoldName
  std::optional<std::string> search;  // substring of email, first or last name; folded
  std::optional<MemberCursor> after;
  std::int64_t offset = 0;  // numeric page form; used only when `after` is empty
};

struct MemberPage {
  std::vector<Member> entries;  // ordered by (folded email, member_id)
  bool has_more = false;
  std::int64_t total = 0;
};

struct TeamCursor {
  std::string name_folded;  // domain::FoldName(name)
  std::string team_id;
};

struct TeamListQuery {
  std::string organization_id;
  int limit = 50;                          // 1..1000
  std::optional<std::string> name;         // exact, folded
  std::optional<std::string> description;  // exact, folded
  std::optional<std::string> visibility;
  // When set, only the teams this member belongs to (GET /v2/members/{id}/teams).
  std::optional<std::string> member_id;
  std::optional<TeamCursor> after;
  std::int64_t offset = 0;
};

struct TeamPage {
  std::vector<Team> entries;  // active teams only, ordered by (folded name, team_id)
  bool has_more = false;
  std::int64_t total = 0;
};

struct TeamMemberPage {
  std::vector<TeamMembership> entries;  // ordered by member_id
  bool has_more = false;
  std::int64_t total = 0;
};

// The members and teams of organizations, and who belongs to which team. Every write of one
// organization's members or teams is serialised with the others of that organization (its row
// is locked where rows are locked; SQLite's one writer excludes the others anyway), so the
// invariants below hold however many nodes write at once:
// - two active members of an organization never share an email (compared folded): kConflict;
// - two active teams of an organization never share a name (folded): kConflict;
// - an organization that has an active admin keeps one: a change that would demote, archive or
//   deactivate its last one is refused with kConflict.
// Ids of another organization are kNotFound, as if they did not exist.
class MemberStore {
 public:
  virtual ~MemberStore() = default;

  // Creates `member` and its memberships of `teams`, all or nothing. kNotFound: no such
  // organization; kConflict: the id exists, or the email is taken; kBadRequest naming the first
  // team that is not an active team of the organization.
  virtual Status CreateMember(const Member& member, const std::vector<TeamMembership>& teams) = 0;
  virtual Result<Member> GetMember(const std::string& organization_id,
                                   const std::string& member_id) = 0;
  // Applies `change` (domain::ApplyMemberChange) to the stored member and returns the result.
  // kConflict when the email is taken (by a change of email, or by reactivating a member whose
  // email another active member now has), or for the last active admin. A member that stops
  // being active loses every access and refresh token of its clients in the same transaction.
  virtual Result<Member> UpdateMember(const std::string& organization_id,
                                      const std::string& member_id,
                                      const domain::MemberChange& change,
                                      const std::string& actor_member_id, TimeMs now) = 0;
  virtual Result<MemberPage> ListMembers(const MemberListQuery& q) = 0;

  // Creates `team` with `members` (added by its creator), all or nothing. kNotFound: no such
  // organization; kConflict: the id exists, or the name is taken; kBadRequest naming the first
  // member that is not an active member of the organization.
  virtual Status CreateTeam(const Team& team, const std::vector<std::string>& members) = 0;
  // Archived teams too; with `member_ids`, also the ids of its members (ordered), read in the
  // same snapshot.
  virtual Result<Team> GetTeam(const std::string& organization_id, const std::string& team_id,
                               std::vector<std::string>* member_ids) = 0;
  // kConflict for an archived team, or a name taken by another active team.
  virtual Result<Team> UpdateTeam(const std::string& organization_id, const std::string& team_id,
                                  const domain::TeamChange& change,
                                  const std::string& actor_member_id, TimeMs now) = 0;
  // Archives the team (its grants stop applying, its name is free again); again is no change.
  virtual Status ArchiveTeam(const std::string& organization_id, const std::string& team_id,
                             const std::string& actor_member_id, TimeMs now) = 0;
  // Adds and removes members of a team, all or nothing; adding a member twice, or removing one
  // that is not in the team, changes nothing. kConflict for an archived team; kBadRequest naming
  // the first id that is not a member of the organization, or an added member that is not active
  // (an inactive member may be removed: taking access away is never refused).
  virtual Status ChangeTeamMembers(const std::string& organization_id, const std::string& team_id,
                                   const domain::TeamMembersChange& change,
                                   const std::string& actor_member_id) = 0;
  virtual Result<TeamPage> ListTeams(const TeamListQuery& q) = 0;
  // The team's members by member_id, paged by it (`after`: the last member_id of the previous
  // page); kNotFound when the team is not in the organization.
  virtual Result<TeamMemberPage> ListTeamMembers(const std::string& organization_id,
                                                 const std::string& team_id, int limit,
                                                 const std::optional<std::string>& after,
                                                 std::int64_t offset) = 0;
};

// ---- connections -------------------------------------------------------------------------

// Keyset position: the sort key of the last entry of the previous page.
struct ListCursor {
  std::string name;
  TimeMs created_at = 0;
  std::string connection_id;
};

// What a connection's rendered body (api::RenderConnection) depends on beyond what bumps its
// version: the stored columns a write may change without a new version. Today those are
// RecordTest's (last_test_*, last_active_at); a key rotation's ResealSecret changes only sealed
// bytes and key_id, which no body shows. Two reads of a connection with equal stamps render equal
// bodies. The listing reads it (kPageRowColumns in sql_connections.cc, beside the rule's own
// statement), and StoreStampTest.EveryWritePathChangesTheStampWhenItChangesTheBody checks it.
struct ConnectionStamp {
  std::int64_t version = 0;
  TimeMs last_active_at = 0;
  std::optional<TimeMs> last_test_at;
  std::string last_test_read;
  std::string last_test_write;
  bool operator==(const ConnectionStamp&) const = default;
};

// One row of a listing's page as its narrow read has it: the id, the sort key (the page token's
// cursor) and the stamp.
struct ConnectionPageRow {
  std::string connection_id;
  std::string name;
  TimeMs created_at = 0;
  ConnectionStamp stamp;
};

struct ListQuery {
  std::string organization_id;
  int limit = 50;  // 1..1000
  bool include_archived = false;
  std::optional<std::string> search;  // already folded with domain::FoldName
  std::optional<std::string> type;
  std::optional<ListCursor> after;  // keyset paging
  std::int64_t offset = 0;          // numeric page form; used only when `after` is empty
  // When set, only connections this member holds a grant on that applies, as GrantStore::HasGrant
  // says (a non-admin's view). `total` counts the same set.
  std::optional<std::string> visible_to_member;
  // When set, called for each row of the page with its index in the page, in page order, after
  // the page's narrow read and in its snapshot (again from 0 if the store retries the
  // transaction): a row it returns true for (the caller holds that row's body at that stamp) is
  // not read in full.
  std::function<bool(std::size_t index, const ConnectionPageRow&)> have_body;
};

struct ConnectionPage {
  std::vector<ConnectionPageRow> rows;  // every row of the page, in page order
  // The full rows (with their secrets) of the page's rows that have_body did not claim, in page
  // order: all of them without have_body.
  std::vector<domain::Connection> entries;
  bool has_more = false;
  std::int64_t total = 0;  // every match of the query, ignoring paging
};

// GET one's read with its token check (ConnectionStore::GetConnectionForToken).
struct TokenConnectionRead {
  Principal principal;
  std::optional<domain::Connection> connection;  // none: not in the principal's organization
  bool visible = false;  // the principal may read it: an admin, or GrantStore::HasGrant
};

class ConnectionStore {
 public:
  virtual ~ConnectionStore() = default;
  // Inserts a new connection with its secrets. kConflict if the id exists.
  virtual Status CreateConnection(const domain::Connection& c) = 0;
  // kNotFound when absent or in another organization.
  virtual Result<domain::Connection> GetConnection(const std::string& organization_id,
                                                   const std::string& connection_id) = 0;
  // In one statement (one round trip where the store is remote): resolves the access token
  // `token_hash` as TokenStore::ResolveAccessToken does, and reads the connection in its
  // principal's organization, with its secrets and whether the principal may see it. A
  // revocation is exact by construction. kNotFound: the token is not valid.
  virtual Result<TokenConnectionRead> GetConnectionForToken(const std::string& token_hash,
                                                            TimeMs now,
                                                            const std::string& connection_id) = 0;
  // Writes `next` (whole object, secrets included) if the stored version is still
  // `expected_version`: kPreconditionFailed otherwise, kNotFound if it vanished.
  virtual Status UpdateConnection(const domain::Connection& next,
                                  std::int64_t expected_version) = 0;
  // Entries ordered by (name bytes, created_at, connection_id); fetches limit+1 to set has_more.
  virtual Result<ConnectionPage> ListConnections(const ListQuery& q) = 0;
  // Records a test result without counting as a change (version and updated_at stay): sets the
  // last_test columns, and last_active_at = test.at when `query_reached`. kNotFound if absent.
  virtual Status RecordTest(const std::string& organization_id, const std::string& connection_id,
                            const domain::LastTest& test, bool query_reached) = 0;
};

// The sealed secrets as a master-key rotation walks them (cli/key_rotate.cc), and the start-up
// check that the loaded keys open every stored secret (cli/serve.cc).
class SealedSecretStore {
 public:
  struct SealedSecretRef {
    std::string connection_id;
    std::string field;
    domain::StoredSecret secret;
  };
  virtual ~SealedSecretStore() = default;
  // Up to `limit` secrets whose key_id is not `key_id`, in a stable order.
  virtual Result<std::vector<SealedSecretRef>> SecretsNotUnderKey(const std::string& key_id,
                                                                  int limit) = 0;
  // Replaces one sealed value if it is still exactly `expected_sealed`: kPreconditionFailed
  // when it changed meanwhile (a concurrent update; the caller re-reads), kNotFound if gone.
  // Does not touch the connection's version.
  virtual Status ResealSecret(const std::string& connection_id, const std::string& field,
                              const std::string& expected_sealed,
                              const domain::StoredSecret& next) = 0;
  // The distinct key ids that seal at least one stored secret.
  virtual Result<std::vector<std::string>> SecretKeyIds() = 0;
};

// ---- grants (contract section 8) ----------------------------------------------------------

struct Grant {
  std::string grant_id;
  std::string organization_id;
  std::string connection_id;
  std::string inode_id;                  // a path grant's inode (CatalogStore); else empty
  std::optional<std::string> member_id;  // exactly one of member_id and team_id is set
  std::optional<std::string> team_id;
  std::string permission;  // domain::IsGrantPermission
  std::string created_by;
  std::string updated_by;
  TimeMs created_at = 0;
  TimeMs updated_at = 0;
};

struct GrantCursor {
  TimeMs created_at = 0;
  std::string grant_id;
};

struct GrantPage {
  std::vector<Grant> entries;  // ordered by (created_at, grant_id)
  bool has_more = false;
  std::int64_t total = 0;
};

class GrantStore {
 public:
  virtual ~GrantStore() = default;
  // All or nothing, in one transaction: each grant of the batch is inserted, or, when its
  // grantee already holds a grant on the connection, that grant's permission, updated_by and
  // updated_at change (its grant_id and created_* stay). kNotFound when the connection is not in
  // the organization; kBadRequest naming the first grantee that is not a member or team of the
  // organization ("member X is not a member of this organization").
  virtual Status UpsertGrants(const std::string& organization_id, const std::string& connection_id,
                              const std::vector<Grant>& grants) = 0;
  virtual Result<GrantPage> ListGrants(const std::string& organization_id,
                                       const std::string& connection_id, int limit,
                                       const std::optional<GrantCursor>& after,
                                       std::int64_t offset) = 0;
  // kNotFound when no such grant on that connection in that organization.
  virtual Status DeleteGrant(const std::string& organization_id, const std::string& connection_id,
                             const std::string& grant_id) = 0;
  // True when the member holds a grant on the connection, directly or through a team, and the
  // grant applies: the member is active, the team is not archived.
  virtual Result<bool> HasGrant(const std::string& organization_id,
                                const std::string& connection_id, const std::string& member_id) = 0;
};

// ---- the warehouse catalog (contract section 13) ------------------------------------------

// One scope or object of a connection's catalog. Its id never names anything else: a path that
// goes and comes back keeps it (and its path grants).
struct Inode {
  std::string inode_id;
  std::string organization_id;
  std::string connection_id;
  std::optional<std::string> parent_id;  // none for a top-level scope
  std::string kind;                      // domain::inode_kind
  domain::CatalogPath path;
  std::string comment;          // the warehouse's comment
  std::string dbt_description;  // from uploaded dbt artifacts; empty when none
  bool removed = false;         // gone from the warehouse at the last sync that covered it
  TimeMs synced_at = 0;         // when a sync or lookup last saw it
};

// One column of a table inode.
struct CatalogColumn {
  int ordinal = 0;  // 1-based, the warehouse's order
  std::string name;
  std::string warehouse_type;
  bool nullable = true;
  std::string comment;
  std::string dbt_description;
  bool removed = false;  // gone from the table, or the table is removed
};

// Keyset position of the paths listing: the sort key of the last entry of the previous page.
struct InodeCursor {
  std::string connection_id;
  std::string path_key;  // domain::PathKey
};

struct InodeListQuery {
  std::string organization_id;
  int limit = 50;  // 1..1000
  std::optional<std::string> connection_id;
  std::optional<std::string> parent_id;  // only the children of this scope
  std::optional<InodeCursor> after;
  std::int64_t offset = 0;  // numeric page form; used only when `after` is empty
  // When set, only what this member may see (contract section 13): every inode of a connection
  // it holds an applying grant on (GrantStore::HasGrant), and for each applying path grant the
  // path, its ancestors and its subtree. `total` counts the same set.
  std::optional<std::string> visible_to_member;
};

struct InodePage {
  std::vector<Inode> entries;  // live inodes only, ordered by (connection_id, path key)
  bool has_more = false;
  // Every match ignoring paging, exact, and read from counts the store keeps (never a scan of
  // the matches): it costs the same at 100 tables and at 100,000.
  std::int64_t total = 0;
};

struct ColumnCursor {
  int ordinal = 0;
  std::string name;
};

struct ColumnPage {
  std::vector<CatalogColumn> entries;  // ordered by (ordinal, name)
  bool has_more = false;
};

// A sync of a connection's catalog, as the API reports it (GET .../sync).
struct SyncRecord {
  std::string sync_id;
  std::string organization_id;
  std::string connection_id;
  domain::CatalogPath path;
  std::string status;  // RUNNING | SUCCESS | FAILED
  std::int64_t added = 0;
  std::int64_t changed = 0;
  std::int64_t removed = 0;
  std::string steps_json;  // the steps as rendered (a JSON array); "[]" while none
  std::string started_by;  // member id
  TimeMs started_at = 0;
  std::optional<TimeMs> ended_at;
};

struct CatalogBatchResult {
  std::int64_t added = 0;    // paths new to the catalog, or back after being removed
  std::int64_t changed = 0;  // known paths whose kind, comment or columns changed
};

// A description from dbt artifacts, for a table (column empty) or one of its columns.
struct DbtDescription {
  domain::CatalogPath table_path;
  std::string column;
  std::string description;
};

// The catalogs of the connections. Every call names the organization: ids of another one are
// kNotFound, as if they did not exist. Writes of one connection's catalog come from its one
// running sync (catalog/sync.h), or a lookup; each call is one bounded transaction.
class CatalogStore {
 public:
  virtual ~CatalogStore() = default;

  // Records what a sync or a lookup saw, as a diff, in one transaction: each object is matched by
  // (connection, path). A new path gets the inode id `new_id()` returns; a known one (removed or
  // not) keeps its id and is live again; its kind, comment and columns are written only when
  // they changed (a column gone from the table stays, removed). Missing ancestors are created as
  // scopes. The counts behind InodePage::total change in the same transaction.
  // kNotFound when the connection is not in the organization.
  virtual Result<CatalogBatchResult> ApplyCatalogBatch(
      const std::string& organization_id, const std::string& connection_id,
      const std::vector<domain::WarehouseObject>& objects, TimeMs now,
      const std::function<std::string()>& new_id) = 0;
  // After a complete listing of `prefix`: marks removed every live inode of the connection in
  // the subtree of `prefix` (itself included when not empty) whose domain::PathKey is not in
  // `seen`, with its columns. Works in bounded batches, each its own transaction. Returns how
  // many inodes it marked.
  virtual Result<std::int64_t> MarkUnseenRemoved(const std::string& organization_id,
                                                 const std::string& connection_id,
                                                 const domain::CatalogPath& prefix,
                                                 const std::unordered_set<std::string>& seen,
                                                 TimeMs now) = 0;
  // Removed inodes too.
  virtual Result<Inode> GetInode(const std::string& organization_id,
                                 const std::string& inode_id) = 0;
  virtual Result<Inode> FindInode(const std::string& organization_id,
                                  const std::string& connection_id,
                                  const domain::CatalogPath& path) = 0;
  virtual Result<InodePage> ListInodes(const InodeListQuery& q) = 0;
  // A table's columns; a removed table's are all removed. kNotFound when no such table inode.
  virtual Result<ColumnPage> ListColumns(const std::string& organization_id,
                                         const std::string& table_id, int limit,
                                         const std::optional<ColumnCursor>& after) = 0;
  // True when the member may see the inode (as InodeListQuery::visible_to_member says).
  virtual Result<bool> CanSeeInode(const std::string& organization_id, const std::string& inode_id,
                                   const std::string& member_id) = 0;
  // Sets the dbt descriptions of the tables and columns that exist in the connection's catalog,
  // in bounded transactions; the others are ignored. Returns how many matched.
  virtual Result<std::int64_t> ApplyDbtDescriptions(
      const std::string& organization_id, const std::string& connection_id,
      const std::vector<DbtDescription>& descriptions) = 0;

  // Path grants (contract section 13): as GrantStore's, on an inode (Grant::inode_id set).
  // kNotFound when the inode is not in the organization.
  virtual Status UpsertPathGrants(const std::string& organization_id, const std::string& inode_id,
                                  const std::vector<Grant>& grants) = 0;
  virtual Result<GrantPage> ListPathGrants(const std::string& organization_id,
                                           const std::string& inode_id, int limit,
                                           const std::optional<GrantCursor>& after,
                                           std::int64_t offset) = 0;
  virtual Status DeletePathGrant(const std::string& organization_id, const std::string& inode_id,
                                 const std::string& grant_id) = 0;

  // The sync records: SaveSync inserts or replaces by sync_id.
  virtual Status SaveSync(const SyncRecord& sync) = 0;
  // The newest sync of the connection by started_at; kNotFound when none.
  virtual Result<SyncRecord> LastSync(const std::string& organization_id,
                                      const std::string& connection_id) = 0;
  // Every sync still RUNNING (of any organization): what a start resumes.
  virtual Result<std::vector<SyncRecord>> RunningSyncs() = 0;
};

// ---- idempotency keys (POST /v2/connections) ---------------------------------------------

struct IdempotentResponse {
  // What identifies the request without revealing its secrets: api/connections.cc's
  // "v2:<body hash without secret values>:<key id>:<MAC of the secret values>".
  std::string request_hash;
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
  // Atomically creates the connection and records the response under the key; a record of the
  // same key older than `not_before` is replaced. kConflict when a record newer than that
  // exists (the caller then re-reads it).
  virtual Status CreateConnectionIdempotent(const domain::Connection& c,
                                            const std::string& member_id, const std::string& key,
                                            const IdempotentResponse& response,
                                            TimeMs not_before) = 0;
};

// ---- what the server itself keeps --------------------------------------------------------

class ServerKeyStore {
 public:
  virtual ~ServerKeyStore() = default;
  // A 32-byte key shared by every node of this store, created on first use: it signs page
  // tokens so a token minted by one node is honoured by every other.
  virtual Result<std::string> ServerKey(const std::string& purpose) = 0;
};

// Per-client rate limits kept in the database, for stores that several nodes share
// (Store::SharesRateLimits); a single node keeps them in memory (api/rate_limiter.h).
class RateLimitStore {
 public:
  virtual ~RateLimitStore() = default;
  // Takes one request from the client's bucket (capacity: one second's worth, at least 1;
  // refilled continuously at `per_second`). Returns 0 when the request may go ahead, else the
  // whole seconds (>= 1) after which it may be retried.
  virtual Result<int> TakeRateToken(const std::string& client_id, double per_second,
                                    TimeMs now) = 0;
};

class StoreHealth {
 public:
  virtual ~StoreHealth() = default;
  // Cheap round trip to the database, for /readyz.
  virtual Status Ping() = 0;
};

// ---- the whole store ---------------------------------------------------------------------

class Store : public TokenStore,
              public IdentityStore,
              public MemberStore,
              public ConnectionStore,
              public SealedSecretStore,
              public GrantStore,
              public CatalogStore,
              public IdempotencyStore,
              public ServerKeyStore,
              public RateLimitStore,
              public StoreHealth {
 public:
  // One name, two calls: any organization's member (TokenStore) or one organization's.
  using MemberStore::GetMember;
  using TokenStore::GetMember;
  // True when a primary-key read is served from local files without waiting on a lock or a
  // network (SQLite in WAL mode), so it may run on an I/O thread (api/router.h, Exec).
  virtual bool PointReadsAreLocal() const = 0;
  // True when several nodes share this store, so per-client rate limits must be kept in it
  // (RateLimitStore) rather than in each node's memory.
  virtual bool SharesRateLimits() const = 0;
};

// Opens the store named by a CONNREG_DATABASE url ("sqlite:PATH", "postgresql://..." or
// "postgres://...") and applies pending migrations. Throws std::runtime_error on failure
// (start-up only).
std::unique_ptr<Store> OpenStore(const std::string& url);

}  // namespace connreg::store
