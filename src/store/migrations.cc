#include "store/migrations.h"

#include <array>

namespace connreg::store {
namespace {

// Conventions: ids are TEXT, times are INTEGER milliseconds since the Unix epoch, booleans are
// INTEGER 0/1, JSON is TEXT written by boost::json::serialize. SQLite tables are STRICT so a
// value of the wrong type is rejected instead of silently stored.
constexpr std::string_view kInitialSqlite = R"sql(
CREATE TABLE organizations (
  organization_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE members (
  member_id TEXT PRIMARY KEY,
  organization_id TEXT NOT NULL REFERENCES organizations (organization_id),
  email TEXT NOT NULL,
  account_type TEXT NOT NULL CHECK (account_type IN ('admin', 'creator', 'viewer')),
  created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX members_by_organization ON members (organization_id, email);

-- secret_hash is crypto::TokenHash of the client secret; the secret itself is never stored.
CREATE TABLE api_clients (
  client_id TEXT PRIMARY KEY,
  member_id TEXT NOT NULL REFERENCES members (member_id),
  secret_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
) STRICT;
CREATE INDEX api_clients_by_member ON api_clients (member_id);

-- Resolved on every request by primary key; the expiry index serves the purge.
CREATE TABLE access_tokens (
  token_hash TEXT PRIMARY KEY,
  client_id TEXT NOT NULL REFERENCES api_clients (client_id),
  member_id TEXT NOT NULL REFERENCES members (member_id),
  organization_id TEXT NOT NULL REFERENCES organizations (organization_id),
  expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX access_tokens_by_expiry ON access_tokens (expires_at);
CREATE INDEX access_tokens_by_client ON access_tokens (client_id);

-- name_folded = domain::FoldName(name), the haystack of `search`. created_by and updated_by
-- are member ids but carry no foreign key: sample connections are written by the operator CLI.
CREATE TABLE connections (
  connection_id TEXT PRIMARY KEY,
  organization_id TEXT NOT NULL REFERENCES organizations (organization_id),
  name TEXT NOT NULL,
  name_folded TEXT NOT NULL,
  type TEXT NOT NULL,
  is_sample INTEGER NOT NULL CHECK (is_sample IN (0, 1)),
  is_archived INTEGER NOT NULL CHECK (is_archived IN (0, 1)),
  use_oauth INTEGER NOT NULL CHECK (use_oauth IN (0, 1)),
  write_access INTEGER NOT NULL CHECK (write_access IN (0, 1)),
  use_friendly_names INTEGER NOT NULL CHECK (use_friendly_names IN (0, 1)),
  timeout_secs INTEGER,
  created_by TEXT NOT NULL,
  updated_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  last_active_at INTEGER NOT NULL,
  version INTEGER NOT NULL,
  details TEXT NOT NULL,
  description TEXT,
  last_test_at INTEGER,
  last_test_read TEXT,
  last_test_write TEXT
) STRICT;
-- The listing order (name bytes, created_at, connection_id) within an organization: keyset
-- pages seek into it, so a page costs the same at any depth.
CREATE INDEX connections_by_name
  ON connections (organization_id, name, created_at, connection_id);
-- Covers the filters of a listing, so its `total` is counted from this index alone.
CREATE INDEX connections_by_filter
  ON connections (organization_id, is_archived, type, name_folded);

-- One row per secret field that is set. `sealed` is opaque to the store (ciphertext under the
-- master key named by key_id); the key_id index finds what a key rotation must re-encrypt.
CREATE TABLE connection_secrets (
  connection_id TEXT NOT NULL REFERENCES connections (connection_id) ON DELETE CASCADE,
  field TEXT NOT NULL,
  sealed BLOB NOT NULL,
  key_id TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (connection_id, field)
) STRICT, WITHOUT ROWID;
CREATE INDEX connection_secrets_by_key ON connection_secrets (key_id);

-- The recorded response of a POST carrying an Idempotency-Key, per (organization, member, key).
CREATE TABLE idempotency_keys (
  organization_id TEXT NOT NULL,
  member_id TEXT NOT NULL,
  key TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  status INTEGER NOT NULL,
  body TEXT NOT NULL,
  location TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (organization_id, member_id, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

-- Random keys shared by every node of the store (e.g. the page-token MAC key), by purpose.
CREATE TABLE server_keys (
  purpose TEXT PRIMARY KEY,
  key BLOB NOT NULL CHECK (length(key) = 32),
  created_at INTEGER NOT NULL
) STRICT;
)sql";

// The same schema for PostgreSQL. Times are BIGINT milliseconds, booleans BOOLEAN, JSON TEXT
// (byte-faithful round trips), sealed secrets and server keys BYTEA. Every TEXT column is
// COLLATE "C": orderings and keyset comparisons are in byte order, as in SQLite, whatever the
// database's default collation.
constexpr std::string_view kInitialPostgres = R"sql(
CREATE TABLE organizations (
  organization_id TEXT COLLATE "C" PRIMARY KEY,
  name TEXT COLLATE "C" NOT NULL,
  created_at BIGINT NOT NULL
);

CREATE TABLE members (
  member_id TEXT COLLATE "C" PRIMARY KEY,
  organization_id TEXT COLLATE "C" NOT NULL REFERENCES organizations (organization_id),
  email TEXT COLLATE "C" NOT NULL,
  account_type TEXT COLLATE "C" NOT NULL CHECK (account_type IN ('admin', 'creator', 'viewer')),
  created_at BIGINT NOT NULL
);
CREATE INDEX members_by_organization ON members (organization_id, email);

CREATE TABLE api_clients (
  client_id TEXT COLLATE "C" PRIMARY KEY,
  member_id TEXT COLLATE "C" NOT NULL REFERENCES members (member_id),
  secret_hash TEXT COLLATE "C" NOT NULL,
  created_at BIGINT NOT NULL,
  revoked_at BIGINT
);
CREATE INDEX api_clients_by_member ON api_clients (member_id);

CREATE TABLE access_tokens (
  token_hash TEXT COLLATE "C" PRIMARY KEY,
  client_id TEXT COLLATE "C" NOT NULL REFERENCES api_clients (client_id),
  member_id TEXT COLLATE "C" NOT NULL REFERENCES members (member_id),
  organization_id TEXT COLLATE "C" NOT NULL REFERENCES organizations (organization_id),
  expires_at BIGINT NOT NULL
);
CREATE INDEX access_tokens_by_expiry ON access_tokens (expires_at);
CREATE INDEX access_tokens_by_client ON access_tokens (client_id);

CREATE TABLE connections (
  connection_id TEXT COLLATE "C" PRIMARY KEY,
  organization_id TEXT COLLATE "C" NOT NULL REFERENCES organizations (organization_id),
  name TEXT COLLATE "C" NOT NULL,
  name_folded TEXT COLLATE "C" NOT NULL,
  type TEXT COLLATE "C" NOT NULL,
  is_sample BOOLEAN NOT NULL,
  is_archived BOOLEAN NOT NULL,
  use_oauth BOOLEAN NOT NULL,
  write_access BOOLEAN NOT NULL,
  use_friendly_names BOOLEAN NOT NULL,
  timeout_secs INTEGER,
  created_by TEXT COLLATE "C" NOT NULL,
  updated_by TEXT COLLATE "C" NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  last_active_at BIGINT NOT NULL,
  version BIGINT NOT NULL,
  details TEXT COLLATE "C" NOT NULL,
  description TEXT COLLATE "C",
  last_test_at BIGINT,
  last_test_read TEXT COLLATE "C",
  last_test_write TEXT COLLATE "C"
);
CREATE INDEX connections_by_name
  ON connections (organization_id, name, created_at, connection_id);
CREATE INDEX connections_by_filter
  ON connections (organization_id, is_archived, type, name_folded);

CREATE TABLE connection_secrets (
  connection_id TEXT COLLATE "C" NOT NULL
    REFERENCES connections (connection_id) ON DELETE CASCADE,
  field TEXT COLLATE "C" NOT NULL,
  sealed BYTEA NOT NULL,
  key_id TEXT COLLATE "C" NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (connection_id, field)
);
CREATE INDEX connection_secrets_by_key
  ON connection_secrets (key_id, connection_id, field);

CREATE TABLE idempotency_keys (
  organization_id TEXT COLLATE "C" NOT NULL,
  member_id TEXT COLLATE "C" NOT NULL,
  key TEXT COLLATE "C" NOT NULL,
  request_hash TEXT COLLATE "C" NOT NULL,
  status INTEGER NOT NULL,
  body TEXT COLLATE "C" NOT NULL,
  location TEXT COLLATE "C" NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (organization_id, member_id, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

CREATE TABLE server_keys (
  purpose TEXT COLLATE "C" PRIMARY KEY,
  key BYTEA NOT NULL CHECK (octet_length(key) = 32),
  created_at BIGINT NOT NULL
);
)sql";

// Teams, grants (contract section 8) and rotating refresh tokens (contract section 2).
//
// grants: exactly one grantee column is set. Each UNIQUE index makes "one grant per grantee per
// connection" hold for its kind of grantee; NULLs are distinct in a UNIQUE index, so the team
// rows (member_id NULL) never collide in the member index and vice versa. The indexes also serve
// the visibility checks ("does M, or a team of M, hold a grant on C?") as point lookups, and
// grants_by_page is the listing order (created_at, grant_id) of one connection's grants.
//
// refresh_tokens: good for one use. A used token is kept (used_at set) until it expires, so a
// second presentation is recognised as reuse and revokes its family (family_id, shared with the
// access tokens issued alongside). access_tokens rows written before this migration have no
// family (NULL): they expire within the access token lifetime.
constexpr std::string_view kGrantsAndRefreshSqlite = R"sql(
CREATE TABLE teams (
  team_id TEXT PRIMARY KEY,
  organization_id TEXT NOT NULL REFERENCES organizations (organization_id),
  name TEXT NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX teams_by_organization ON teams (organization_id);

CREATE TABLE team_members (
  team_id TEXT NOT NULL REFERENCES teams (team_id),
  member_id TEXT NOT NULL REFERENCES members (member_id),
  PRIMARY KEY (team_id, member_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX team_members_by_member ON team_members (member_id, team_id);

CREATE TABLE grants (
  grant_id TEXT PRIMARY KEY,
  organization_id TEXT NOT NULL REFERENCES organizations (organization_id),
  connection_id TEXT NOT NULL REFERENCES connections (connection_id),
  member_id TEXT REFERENCES members (member_id),
  team_id TEXT REFERENCES teams (team_id),
  permission TEXT NOT NULL CHECK (permission IN ('usage', 'annotate')),
  created_by TEXT NOT NULL,
  updated_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  CHECK ((member_id IS NULL) <> (team_id IS NULL))
) STRICT;
CREATE UNIQUE INDEX grants_by_member ON grants (connection_id, member_id);
CREATE UNIQUE INDEX grants_by_team ON grants (connection_id, team_id);
CREATE INDEX grants_by_page ON grants (connection_id, created_at, grant_id);

CREATE TABLE refresh_tokens (
  token_hash TEXT PRIMARY KEY,
  family_id TEXT NOT NULL,
  client_id TEXT NOT NULL REFERENCES api_clients (client_id),
  member_id TEXT NOT NULL REFERENCES members (member_id),
  organization_id TEXT NOT NULL REFERENCES organizations (organization_id),
  expires_at INTEGER NOT NULL,
  used_at INTEGER
) STRICT;
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_by_client ON refresh_tokens (client_id);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);

ALTER TABLE access_tokens ADD COLUMN family_id TEXT;
CREATE INDEX access_tokens_by_family ON access_tokens (family_id);
)sql";

// The same schema change for PostgreSQL (times are BIGINT milliseconds there as well; every
// TEXT column is COLLATE "C", as in migration 1, so grants page in byte order of grant_id).
constexpr std::string_view kGrantsAndRefreshPostgres = R"sql(
CREATE TABLE teams (
  team_id TEXT COLLATE "C" PRIMARY KEY,
  organization_id TEXT COLLATE "C" NOT NULL REFERENCES organizations (organization_id),
  name TEXT COLLATE "C" NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX teams_by_organization ON teams (organization_id);

CREATE TABLE team_members (
  team_id TEXT COLLATE "C" NOT NULL REFERENCES teams (team_id),
  member_id TEXT COLLATE "C" NOT NULL REFERENCES members (member_id),
  PRIMARY KEY (team_id, member_id)
);
CREATE INDEX team_members_by_member ON team_members (member_id, team_id);

CREATE TABLE grants (
  grant_id TEXT COLLATE "C" PRIMARY KEY,
  organization_id TEXT COLLATE "C" NOT NULL REFERENCES organizations (organization_id),
  connection_id TEXT COLLATE "C" NOT NULL REFERENCES connections (connection_id),
  member_id TEXT COLLATE "C" REFERENCES members (member_id),
  team_id TEXT COLLATE "C" REFERENCES teams (team_id),
  permission TEXT COLLATE "C" NOT NULL CHECK (permission IN ('usage', 'annotate')),
  created_by TEXT COLLATE "C" NOT NULL,
  updated_by TEXT COLLATE "C" NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  CHECK ((member_id IS NULL) <> (team_id IS NULL))
);
CREATE UNIQUE INDEX grants_by_member ON grants (connection_id, member_id);
CREATE UNIQUE INDEX grants_by_team ON grants (connection_id, team_id);
CREATE INDEX grants_by_page ON grants (connection_id, created_at, grant_id);

CREATE TABLE refresh_tokens (
  token_hash TEXT COLLATE "C" PRIMARY KEY,
  family_id TEXT COLLATE "C" NOT NULL,
  client_id TEXT COLLATE "C" NOT NULL REFERENCES api_clients (client_id),
  member_id TEXT COLLATE "C" NOT NULL REFERENCES members (member_id),
  organization_id TEXT COLLATE "C" NOT NULL REFERENCES organizations (organization_id),
  expires_at BIGINT NOT NULL,
  used_at BIGINT
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_by_client ON refresh_tokens (client_id);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);

ALTER TABLE access_tokens ADD COLUMN family_id TEXT COLLATE "C";
CREATE INDEX access_tokens_by_family ON access_tokens (family_id);
)sql";

// Per-client rate-limit buckets shared by every node (PostgreSQL). The SQLite store limits in
// memory (one node), but keeps the same numbered history.
constexpr std::string_view kRateBucketsSqlite = R"sql(
CREATE TABLE rate_buckets (
  client_id TEXT PRIMARY KEY,
  tokens_milli INTEGER NOT NULL,
  refilled_at INTEGER NOT NULL,
  allowed INTEGER NOT NULL
) STRICT;
)sql";

constexpr std::string_view kRateBucketsPostgres = R"sql(
CREATE TABLE rate_buckets (
  client_id TEXT COLLATE "C" PRIMARY KEY,
  tokens_milli BIGINT NOT NULL,
  refilled_at BIGINT NOT NULL,
  allowed BOOLEAN NOT NULL
);
)sql";

// Members and teams over the API (contract section 12).
//
// members: `explorer` joins the account types, and the row becomes Sigma's member object. SQLite
// cannot change a CHECK in place, so the table is rebuilt as
// https://sqlite.org/lang_altertable.html says (a new table, the rows copied, the old one dropped,
// the new one renamed, its index made again; the runner turns foreign keys off around it and checks
// them before it commits: Migration::rebuilds_tables): the rows referencing members (clients,
// tokens, grants, team memberships) keep pointing at the same member ids. email_folded and
// name_folded (domain::FoldName of the email, and of "first last") are the haystacks of the
// listing's filters and of the email rule (two active members of an organization never share an
// email: checked by the store under the organization's row lock, not by a unique index, since rows
// of before may hold duplicates). Members made before have their email's local part as first name.
// An archived or inactive member authenticates nothing and its grants give nothing.
//
// teams: description, visibility (Sigma's default: private), archived (an archived team grants
// nothing and frees its name: active team names are unique per organization, folded, again
// checked under the row lock), and who changed it when. team_members: Sigma's isTeamAdmin and
// addedBy. Rows of before were made by the operator CLI.
constexpr std::string_view kMembersAndTeamsSqlite = R"sql(
CREATE TABLE members_v4 (
  member_id TEXT PRIMARY KEY,
  organization_id TEXT NOT NULL REFERENCES organizations (organization_id),
  email TEXT NOT NULL,
  email_folded TEXT NOT NULL,
  account_type TEXT NOT NULL
    CHECK (account_type IN ('admin', 'creator', 'explorer', 'viewer')),
  created_at INTEGER NOT NULL,
  first_name TEXT NOT NULL,
  last_name TEXT NOT NULL,
  name_folded TEXT NOT NULL,
  created_by TEXT NOT NULL,
  updated_by TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  is_archived INTEGER NOT NULL CHECK (is_archived IN (0, 1)),
  is_inactive INTEGER NOT NULL CHECK (is_inactive IN (0, 1))
) STRICT;
INSERT INTO members_v4 (member_id, organization_id, email, email_folded, account_type,
                        created_at, first_name, last_name, name_folded, created_by, updated_by,
                        updated_at, is_archived, is_inactive)
  SELECT member_id, organization_id, email, lower(email), account_type, created_at,
         local_part, '', lower(local_part) || ' ', 'connreg-cli', 'connreg-cli', created_at, 0, 0
  FROM (SELECT *, CASE WHEN instr(email, '@') > 1 THEN substr(email, 1, instr(email, '@') - 1)
                       ELSE email END AS local_part
        FROM members);
DROP TABLE members;
ALTER TABLE members_v4 RENAME TO members;
CREATE INDEX members_by_organization ON members (organization_id, email_folded, member_id);

ALTER TABLE teams ADD COLUMN name_folded TEXT NOT NULL DEFAULT '';
ALTER TABLE teams ADD COLUMN description TEXT;
ALTER TABLE teams ADD COLUMN description_folded TEXT;
ALTER TABLE teams ADD COLUMN visibility TEXT NOT NULL DEFAULT 'private'
  CHECK (visibility IN ('public', 'private'));
ALTER TABLE teams ADD COLUMN is_archived INTEGER NOT NULL DEFAULT 0 CHECK (is_archived IN (0, 1));
ALTER TABLE teams ADD COLUMN created_by TEXT NOT NULL DEFAULT 'connreg-cli';
ALTER TABLE teams ADD COLUMN updated_by TEXT NOT NULL DEFAULT 'connreg-cli';
ALTER TABLE teams ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;
UPDATE teams SET name_folded = lower(name), updated_at = created_at;
DROP INDEX teams_by_organization;
CREATE INDEX teams_by_name ON teams (organization_id, name_folded, team_id);

ALTER TABLE team_members ADD COLUMN is_team_admin INTEGER NOT NULL DEFAULT 0
  CHECK (is_team_admin IN (0, 1));
ALTER TABLE team_members ADD COLUMN added_by TEXT NOT NULL DEFAULT 'connreg-cli';
)sql";

// The same change for PostgreSQL, which alters the tables in place (lower() of a COLLATE "C"
// text folds ASCII letters only, as domain::FoldName).
constexpr std::string_view kMembersAndTeamsPostgres = R"sql(
ALTER TABLE members DROP CONSTRAINT members_account_type_check;
ALTER TABLE members ADD CONSTRAINT members_account_type_check
  CHECK (account_type IN ('admin', 'creator', 'explorer', 'viewer'));
ALTER TABLE members
  ADD COLUMN email_folded TEXT COLLATE "C",
  ADD COLUMN first_name TEXT COLLATE "C",
  ADD COLUMN last_name TEXT COLLATE "C" NOT NULL DEFAULT '',
  ADD COLUMN name_folded TEXT COLLATE "C",
  ADD COLUMN created_by TEXT COLLATE "C" NOT NULL DEFAULT 'connreg-cli',
  ADD COLUMN updated_by TEXT COLLATE "C" NOT NULL DEFAULT 'connreg-cli',
  ADD COLUMN updated_at BIGINT,
  ADD COLUMN is_archived BOOLEAN NOT NULL DEFAULT false,
  ADD COLUMN is_inactive BOOLEAN NOT NULL DEFAULT false;
UPDATE members SET email_folded = lower(email),
  first_name = CASE WHEN strpos(email, '@') > 1 THEN substr(email, 1, strpos(email, '@') - 1)
                    ELSE email END,
  updated_at = created_at;
UPDATE members SET name_folded = lower(first_name) || ' ';
ALTER TABLE members
  ALTER COLUMN email_folded SET NOT NULL,
  ALTER COLUMN first_name SET NOT NULL,
  ALTER COLUMN name_folded SET NOT NULL,
  ALTER COLUMN updated_at SET NOT NULL;
DROP INDEX members_by_organization;
CREATE INDEX members_by_organization ON members (organization_id, email_folded, member_id);

ALTER TABLE teams
  ADD COLUMN name_folded TEXT COLLATE "C",
  ADD COLUMN description TEXT COLLATE "C",
  ADD COLUMN description_folded TEXT COLLATE "C",
  ADD COLUMN visibility TEXT COLLATE "C" NOT NULL DEFAULT 'private'
    CHECK (visibility IN ('public', 'private')),
  ADD COLUMN is_archived BOOLEAN NOT NULL DEFAULT false,
  ADD COLUMN created_by TEXT COLLATE "C" NOT NULL DEFAULT 'connreg-cli',
  ADD COLUMN updated_by TEXT COLLATE "C" NOT NULL DEFAULT 'connreg-cli',
  ADD COLUMN updated_at BIGINT;
UPDATE teams SET name_folded = lower(name), updated_at = created_at;
ALTER TABLE teams ALTER COLUMN name_folded SET NOT NULL, ALTER COLUMN updated_at SET NOT NULL;
DROP INDEX teams_by_organization;
CREATE INDEX teams_by_name ON teams (organization_id, name_folded, team_id);

ALTER TABLE team_members
  ADD COLUMN is_team_admin BOOLEAN NOT NULL DEFAULT false,
  ADD COLUMN added_by TEXT COLLATE "C" NOT NULL DEFAULT 'connreg-cli';
)sql";

// The warehouse catalog (contract section 13).
//
// catalog_inodes: one row per scope or object of a connection's catalog, never deleted (an id
// never names anything else; a path that comes back is made live again). path is the JSON array
// of names (as boost::json writes it), path_key its domain::PathKey: the unique index on
// (connection_id, path_key) finds a path, and the partial indexes on the live rows are the
// listing orders: (organization_id, connection_id, path_key) for an organization, a connection
// or a subtree (a key range), (parent_id, path_key) for the children of a scope.
// live_children and live_descendants are kept on every row in the transactions that change
// which rows are live, as are catalog_connection_counts and catalog_organization_counts: the
// listing's totals are read from them, never counted over the matches (store.h, InodePage).
// A live inode's ancestors are live.
//
// catalog_columns: a table's columns by name (a renamed column is one removed and one added);
// a column gone from the table, or of a removed table, stays with is_removed set.
//
// path_grants: as grants (migration 2), on an inode: one grant per grantee per inode, listed by
// (created_at, grant_id). connection_id is the inode's. The grants_of_* and path_grants_of_*
// indexes find a member's (or a team's) grants, for the visibility of the paths.
//
// catalog_syncs: the syncs (store.h, SyncRecord), the newest of a connection by started_at.
constexpr std::string_view kCatalogSqlite = R"sql(
CREATE TABLE catalog_inodes (
  inode_id TEXT PRIMARY KEY,
  organization_id TEXT NOT NULL REFERENCES organizations (organization_id),
  connection_id TEXT NOT NULL REFERENCES connections (connection_id),
  parent_id TEXT REFERENCES catalog_inodes (inode_id),
  kind TEXT NOT NULL CHECK (kind IN ('scope', 'table', 'stored-procedure')),
  name TEXT NOT NULL,
  path TEXT NOT NULL,
  path_key BLOB NOT NULL,
  comment TEXT NOT NULL,
  dbt_description TEXT NOT NULL,
  is_removed INTEGER NOT NULL CHECK (is_removed IN (0, 1)),
  synced_at INTEGER NOT NULL,
  live_children INTEGER NOT NULL,
  live_descendants INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX catalog_inodes_by_path ON catalog_inodes (connection_id, path_key);
CREATE INDEX catalog_inodes_live ON catalog_inodes (organization_id, connection_id, path_key)
  WHERE NOT is_removed;
CREATE INDEX catalog_inodes_live_children ON catalog_inodes (parent_id, path_key)
  WHERE NOT is_removed;

CREATE TABLE catalog_columns (
  table_id TEXT NOT NULL REFERENCES catalog_inodes (inode_id),
  name TEXT NOT NULL,
  ordinal INTEGER NOT NULL,
  warehouse_type TEXT NOT NULL,
  nullable INTEGER NOT NULL CHECK (nullable IN (0, 1)),
  comment TEXT NOT NULL,
  dbt_description TEXT NOT NULL,
  is_removed INTEGER NOT NULL CHECK (is_removed IN (0, 1)),
  PRIMARY KEY (table_id, name)
) STRICT, WITHOUT ROWID;
CREATE INDEX catalog_columns_by_ordinal ON catalog_columns (table_id, ordinal, name);

CREATE TABLE catalog_connection_counts (
  connection_id TEXT PRIMARY KEY REFERENCES connections (connection_id),
  organization_id TEXT NOT NULL REFERENCES organizations (organization_id),
  live_inodes INTEGER NOT NULL
) STRICT;
CREATE TABLE catalog_organization_counts (
  organization_id TEXT PRIMARY KEY REFERENCES organizations (organization_id),
  live_inodes INTEGER NOT NULL
) STRICT;

CREATE TABLE path_grants (
  grant_id TEXT PRIMARY KEY,
  organization_id TEXT NOT NULL REFERENCES organizations (organization_id),
  connection_id TEXT NOT NULL REFERENCES connections (connection_id),
  inode_id TEXT NOT NULL REFERENCES catalog_inodes (inode_id),
  member_id TEXT REFERENCES members (member_id),
  team_id TEXT REFERENCES teams (team_id),
  permission TEXT NOT NULL CHECK (permission IN ('usage', 'annotate')),
  created_by TEXT NOT NULL,
  updated_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  CHECK ((member_id IS NULL) <> (team_id IS NULL))
) STRICT;
CREATE UNIQUE INDEX path_grants_by_member ON path_grants (inode_id, member_id);
CREATE UNIQUE INDEX path_grants_by_team ON path_grants (inode_id, team_id);
CREATE INDEX path_grants_by_page ON path_grants (inode_id, created_at, grant_id);
CREATE INDEX path_grants_of_member ON path_grants (member_id, inode_id);
CREATE INDEX path_grants_of_team ON path_grants (team_id, inode_id);
CREATE INDEX grants_of_member ON grants (member_id, connection_id);
CREATE INDEX grants_of_team ON grants (team_id, connection_id);

CREATE TABLE catalog_syncs (
  sync_id TEXT PRIMARY KEY,
  organization_id TEXT NOT NULL REFERENCES organizations (organization_id),
  connection_id TEXT NOT NULL REFERENCES connections (connection_id),
  path TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('RUNNING', 'SUCCESS', 'FAILED')),
  added INTEGER NOT NULL,
  changed INTEGER NOT NULL,
  removed INTEGER NOT NULL,
  steps TEXT NOT NULL,
  started_by TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  ended_at INTEGER
) STRICT;
CREATE INDEX catalog_syncs_by_connection ON catalog_syncs (connection_id, started_at, sync_id);
CREATE INDEX catalog_syncs_running ON catalog_syncs (status) WHERE status = 'RUNNING';
)sql";

// The same tables for PostgreSQL (TEXT COLLATE "C", BIGINT times, BOOLEAN flags, BYTEA keys).
constexpr std::string_view kCatalogPostgres = R"sql(
CREATE TABLE catalog_inodes (
  inode_id TEXT COLLATE "C" PRIMARY KEY,
  organization_id TEXT COLLATE "C" NOT NULL REFERENCES organizations (organization_id),
  connection_id TEXT COLLATE "C" NOT NULL REFERENCES connections (connection_id),
  parent_id TEXT COLLATE "C" REFERENCES catalog_inodes (inode_id),
  kind TEXT COLLATE "C" NOT NULL CHECK (kind IN ('scope', 'table', 'stored-procedure')),
  name TEXT COLLATE "C" NOT NULL,
  path TEXT COLLATE "C" NOT NULL,
  path_key BYTEA NOT NULL,
  comment TEXT COLLATE "C" NOT NULL,
  dbt_description TEXT COLLATE "C" NOT NULL,
  is_removed BOOLEAN NOT NULL,
  synced_at BIGINT NOT NULL,
  live_children BIGINT NOT NULL,
  live_descendants BIGINT NOT NULL
);
CREATE UNIQUE INDEX catalog_inodes_by_path ON catalog_inodes (connection_id, path_key);
CREATE INDEX catalog_inodes_live ON catalog_inodes (organization_id, connection_id, path_key)
  WHERE NOT is_removed;
CREATE INDEX catalog_inodes_live_children ON catalog_inodes (parent_id, path_key)
  WHERE NOT is_removed;

CREATE TABLE catalog_columns (
  table_id TEXT COLLATE "C" NOT NULL REFERENCES catalog_inodes (inode_id),
  name TEXT COLLATE "C" NOT NULL,
  ordinal INTEGER NOT NULL,
  warehouse_type TEXT COLLATE "C" NOT NULL,
  nullable BOOLEAN NOT NULL,
  comment TEXT COLLATE "C" NOT NULL,
  dbt_description TEXT COLLATE "C" NOT NULL,
  is_removed BOOLEAN NOT NULL,
  PRIMARY KEY (table_id, name)
);
CREATE INDEX catalog_columns_by_ordinal ON catalog_columns (table_id, ordinal, name);

CREATE TABLE catalog_connection_counts (
  connection_id TEXT COLLATE "C" PRIMARY KEY REFERENCES connections (connection_id),
  organization_id TEXT COLLATE "C" NOT NULL REFERENCES organizations (organization_id),
  live_inodes BIGINT NOT NULL
);
CREATE TABLE catalog_organization_counts (
  organization_id TEXT COLLATE "C" PRIMARY KEY REFERENCES organizations (organization_id),
  live_inodes BIGINT NOT NULL
);

CREATE TABLE path_grants (
  grant_id TEXT COLLATE "C" PRIMARY KEY,
  organization_id TEXT COLLATE "C" NOT NULL REFERENCES organizations (organization_id),
  connection_id TEXT COLLATE "C" NOT NULL REFERENCES connections (connection_id),
  inode_id TEXT COLLATE "C" NOT NULL REFERENCES catalog_inodes (inode_id),
  member_id TEXT COLLATE "C" REFERENCES members (member_id),
  team_id TEXT COLLATE "C" REFERENCES teams (team_id),
  permission TEXT COLLATE "C" NOT NULL CHECK (permission IN ('usage', 'annotate')),
  created_by TEXT COLLATE "C" NOT NULL,
  updated_by TEXT COLLATE "C" NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  CHECK ((member_id IS NULL) <> (team_id IS NULL))
);
CREATE UNIQUE INDEX path_grants_by_member ON path_grants (inode_id, member_id);
CREATE UNIQUE INDEX path_grants_by_team ON path_grants (inode_id, team_id);
CREATE INDEX path_grants_by_page ON path_grants (inode_id, created_at, grant_id);
CREATE INDEX path_grants_of_member ON path_grants (member_id, inode_id);
CREATE INDEX path_grants_of_team ON path_grants (team_id, inode_id);
CREATE INDEX grants_of_member ON grants (member_id, connection_id);
CREATE INDEX grants_of_team ON grants (team_id, connection_id);

CREATE TABLE catalog_syncs (
  sync_id TEXT COLLATE "C" PRIMARY KEY,
  organization_id TEXT COLLATE "C" NOT NULL REFERENCES organizations (organization_id),
  connection_id TEXT COLLATE "C" NOT NULL REFERENCES connections (connection_id),
  path TEXT COLLATE "C" NOT NULL,
  status TEXT COLLATE "C" NOT NULL CHECK (status IN ('RUNNING', 'SUCCESS', 'FAILED')),
  added BIGINT NOT NULL,
  changed BIGINT NOT NULL,
  removed BIGINT NOT NULL,
  steps TEXT COLLATE "C" NOT NULL,
  started_by TEXT COLLATE "C" NOT NULL,
  started_at BIGINT NOT NULL,
  ended_at BIGINT
);
CREATE INDEX catalog_syncs_by_connection ON catalog_syncs (connection_id, started_at, sync_id);
CREATE INDEX catalog_syncs_running ON catalog_syncs (status) WHERE status = 'RUNNING';
)sql";

// The listing's kept counts and search index (issue 17).
//
// connection_counts: how many connections each (organization, type, is_archived) holds, spread
// over a few shards so that concurrent creates on PostgreSQL do not all queue on one row's lock
// (the shard is a hash of the connection id; only the sum over the shards means anything). Kept
// in the transaction of every write that adds a connection or changes its type or archived
// flag (sql_connections.cc); an unfiltered listing's `total` is a sum over these few rows.
//
// The search index over name_folded, the one folded column both backends search:
// - SQLite: connections_search, an FTS5 table with the trigram tokenizer, case-sensitive
//   because name_folded is already folded (domain::FoldName: ASCII letters only; FTS5's own
//   folding would fold more than PostgreSQL's search does, and results would differ). It is
//   external-content (it stores no copy of the names; its rows are connections' rowids) and
//   kept by triggers, so it is maintained like an index, by the database itself, in the
//   transaction of every write, whatever the statement (an update re-indexes only a changed
//   name: every UPDATE of the row sets name_folded). It costs a write about 60 us of CPU (FTS5
//   writes its pending terms out at each transaction's end). connections has no INTEGER PRIMARY
//   KEY, so a VACUUM may renumber its rowids: the store never runs one, and anything that does
//   (or that rebuilds the table) must then run
//   INSERT INTO connections_search (connections_search) VALUES ('rebuild').
// - PostgreSQL: a GIN index with pg_trgm's gin_trgm_ops. A managed server may refuse
//   CREATE EXTENSION; the migration then goes on without the index (the DO block's handler is a
//   savepoint), the store says so once at start, and the same statements scan instead
//   (sql::Dialect::search_index_present).
constexpr std::string_view kListingCountsAndSearchSqlite = R"sql(
CREATE TABLE connection_counts (
  organization_id TEXT NOT NULL REFERENCES organizations (organization_id),
  type TEXT NOT NULL,
  is_archived INTEGER NOT NULL CHECK (is_archived IN (0, 1)),
  shard INTEGER NOT NULL,
  connections INTEGER NOT NULL,
  PRIMARY KEY (organization_id, type, is_archived, shard)
) STRICT, WITHOUT ROWID;
INSERT INTO connection_counts (organization_id, type, is_archived, shard, connections)
  SELECT organization_id, type, is_archived, 0, count(*) FROM connections
  GROUP BY organization_id, type, is_archived;

CREATE VIRTUAL TABLE connections_search USING fts5 (
  name_folded, content = 'connections', content_rowid = 'rowid',
  tokenize = 'trigram case_sensitive 1');
CREATE TRIGGER connections_search_insert AFTER INSERT ON connections BEGIN
  INSERT INTO connections_search (rowid, name_folded) VALUES (new.rowid, new.name_folded);
END;
CREATE TRIGGER connections_search_delete AFTER DELETE ON connections BEGIN
  INSERT INTO connections_search (connections_search, rowid, name_folded)
    VALUES ('delete', old.rowid, old.name_folded);
END;
CREATE TRIGGER connections_search_update AFTER UPDATE OF name_folded ON connections
WHEN old.name_folded IS NOT new.name_folded BEGIN
  INSERT INTO connections_search (connections_search, rowid, name_folded)
    VALUES ('delete', old.rowid, old.name_folded);
  INSERT INTO connections_search (rowid, name_folded) VALUES (new.rowid, new.name_folded);
END;
INSERT INTO connections_search (connections_search) VALUES ('rebuild');
)sql";

constexpr std::string_view kListingCountsAndSearchPostgres = R"sql(
CREATE TABLE connection_counts (
  organization_id TEXT COLLATE "C" NOT NULL REFERENCES organizations (organization_id),
  type TEXT COLLATE "C" NOT NULL,
  is_archived BOOLEAN NOT NULL,
  shard INTEGER NOT NULL,
  connections BIGINT NOT NULL,
  PRIMARY KEY (organization_id, type, is_archived, shard)
);
INSERT INTO connection_counts (organization_id, type, is_archived, shard, connections)
  SELECT organization_id, type, is_archived, 0, count(*) FROM connections
  GROUP BY organization_id, type, is_archived;

DO $$
BEGIN
  CREATE EXTENSION IF NOT EXISTS pg_trgm;
  CREATE INDEX connections_by_trigram ON connections USING gin (name_folded gin_trgm_ops);
EXCEPTION WHEN insufficient_privilege OR feature_not_supported OR undefined_file
               OR undefined_object THEN
  RAISE NOTICE 'connreg: no trigram index, search scans: %', SQLERRM;
END
$$;
)sql";

constexpr std::array kMigrations = {
    Migration{
        .version = 1, .name = "initial", .sqlite = kInitialSqlite, .postgres = kInitialPostgres},
    Migration{.version = 2,
              .name = "teams grants refresh tokens",
              .sqlite = kGrantsAndRefreshSqlite,
              .postgres = kGrantsAndRefreshPostgres},
    Migration{.version = 3,
              .name = "shared rate limits",
              .sqlite = kRateBucketsSqlite,
              .postgres = kRateBucketsPostgres},
    Migration{.version = 4,
              .name = "members and teams",
              .sqlite = kMembersAndTeamsSqlite,
              .postgres = kMembersAndTeamsPostgres,
              .rebuilds_tables = true},
    Migration{
        .version = 5, .name = "catalog", .sqlite = kCatalogSqlite, .postgres = kCatalogPostgres},
    Migration{.version = 6,
              .name = "listing counts and search index",
              .sqlite = kListingCountsAndSearchSqlite,
              .postgres = kListingCountsAndSearchPostgres},
};

// The list is the schema's history: catch a mis-numbered entry at compile time.
constexpr bool VersionsAreConsecutive() {
  for (std::size_t i = 0; i < kMigrations.size(); ++i) {
    if (kMigrations[i].version != static_cast<int>(i) + 1) return false;
  }
  return true;
}
static_assert(VersionsAreConsecutive(), "migration versions must be 1, 2, 3, ... in order");

constexpr Migration kMigrationsTable{
    .version = 0,
    .name = "schema_migrations",
    .sqlite =
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
        "name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT",
    .postgres =
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
        "name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
};

}  // namespace

std::span<const Migration> Migrations() { return kMigrations; }

const Migration& MigrationsTable() { return kMigrationsTable; }

}  // namespace connreg::store
