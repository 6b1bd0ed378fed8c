// The PostgreSQL backend (contract section 11: `postgresql://...`): the query layer
// (store/sql_store.h) over libpq. postgres_store.cc holds what is PostgreSQL's own: its url, its
// connection pool, its dialect, and the mapping of SQLSTATEs.
//
// Several connreg nodes may share one database: every write is one transaction whose
// compare-and-set or row lock makes concurrent nodes agree (UpdateConnection's version check,
// SELECT ... FOR UPDATE on a refresh token, ON CONFLICT for server keys and idempotency keys);
// a transaction that meets a serialization failure or a deadlock runs again. Migrations run at
// start under a session advisory lock, so nodes starting together apply each one once.
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
#include <memory>
#include <string>

#include "store/sql_store.h"

namespace connreg::store {

namespace postgres_internal {
class Database;  // the pool of libpq connections
}  // namespace postgres_internal

struct PostgresOptions {
  // 0: from the url's `pool_size`, else 8.
  int pool_size = 0;
  // Zero: from the url's `pool_timeout_ms`, else 2 s.
  std::chrono::milliseconds acquire_timeout{0};
};

// Thread-safe: every method may be called from any number of threads at once.
class PostgresStore final : public SqlStore {
 public:
  // Connects to `url` ("postgresql://user:password@host:port/db?..." or "postgres://..."),
  // applies pending migrations and keeps the connection for the pool. Throws std::runtime_error
  // when the server cannot be reached, a migration fails, or the schema is newer than this
  // binary. The message never contains the url's password.
  explicit PostgresStore(const std::string& url, PostgresOptions options = {});

  int pool_size() const;
  std::chrono::milliseconds acquire_timeout() const;

  // Test hook: holds one pooled connection (waiting like any caller) until the returned object
  // is destroyed; kUnavailable when none became free in time.
  class Hold {
   public:
    virtual ~Hold() = default;
  };
  Result<std::unique_ptr<Hold>> HoldConnectionForTest();

 private:
  explicit PostgresStore(std::unique_ptr<postgres_internal::Database> db);
  postgres_internal::Database& pg_;  // owned by SqlStore
};

}  // namespace connreg::store
