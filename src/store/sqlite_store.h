// The embedded SQLite backend (contract section 11: `sqlite:PATH`): the query layer
// (store/sql_store.h) over one database file. sqlite_store.cc holds what is SQLite's own: its
// connections, its dialect and the mapping of its result codes.
//
// Durability: WAL journal with synchronous=FULL, so a write is on disk before its method returns
// and survives kill -9. Concurrency: one writer connection behind a mutex, with group commit:
// writes that arrive while another runs join its BEGIN IMMEDIATE transaction (which also
// serialises writers of other processes through the file lock), each in a savepoint of its own,
// and share its one durable COMMIT; and a pool of reader connections, so reads run in parallel
// with each other and with the writer and see the last committed state. Several processes may
// open the same file.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "store/sql_store.h"

namespace connreg::store {

// The SQLite database under the query layer, without its schema (no migrations run): what
// SqliteStore runs on, and what the writer's tests drive with bodies of their own.
class SqliteDatabase : public sql::Database {
 public:
  // Writes that have called Run(kWrite) and not yet started their body; the next of them joins
  // the open group commit. For tests that need a batch of a known make-up.
  virtual int WritesWaiting() const = 0;
};

// When a group commit stops waiting for more writes and commits: once it holds `max_writes`, or
// once its first write has waited `max_wait` for the commit, so a stream of writers cannot keep a
// write waiting without end. (Otherwise it commits when no other write is waiting.)
struct GroupCommitBounds {
  std::size_t max_writes = 64;
  std::chrono::microseconds max_wait = std::chrono::milliseconds(5);
};

// Opens (creating if needed) the file at `path` in WAL mode. Throws std::runtime_error when it
// cannot.
std::unique_ptr<SqliteDatabase> OpenSqliteDatabase(const std::string& path,
                                                   GroupCommitBounds bounds = {});

// Thread-safe: every method may be called from any number of threads at once.
class SqliteStore final : public SqlStore {
 public:
  // Opens (creating if needed) the database file at `path`, whose directory must exist, and
  // applies pending migrations. Throws std::runtime_error when the file cannot be opened or
  // migrated, or when its schema is newer than this binary.
  // `bounds`: of its writer's group commits (max_writes = 1 commits every write alone).
  explicit SqliteStore(const std::string& path, GroupCommitBounds bounds = {});
};

}  // namespace connreg::store
