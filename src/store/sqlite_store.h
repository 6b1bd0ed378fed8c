// The embedded SQLite backend (contract section 11: `sqlite:PATH`): the query layer
// (store/sql_store.h) over one database file. sqlite_store.cc holds what is SQLite's own: its
// connections, its dialect and the mapping of its result codes.
//
// Durability: WAL journal with synchronous=FULL, so a write is on disk before its method returns
// and survives kill -9. Concurrency: one writer connection behind a mutex (every write is one
// BEGIN IMMEDIATE transaction, which also serialises writers of other processes through the
// file lock) and a pool of reader connections, so reads run in parallel with each other and
// with the writer and see the last committed state. Several processes may open the same file.
#pragma once

#include <string>

#include "store/sql_store.h"

namespace connreg::store {

// Thread-safe: every method may be called from any number of threads at once.
class SqliteStore final : public SqlStore {
 public:
  // Opens (creating if needed) the database file at `path`, whose directory must exist, and
  // applies pending migrations. Throws std::runtime_error when the file cannot be opened or
  // migrated, or when its schema is newer than this binary.
  explicit SqliteStore(const std::string& path);
};

}  // namespace connreg::store
