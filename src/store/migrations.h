// The schema, as an ordered list of numbered migrations embedded in the binary. The store
// (sql_store.cc) applies the pending entries at start, one transaction per entry, and records
// every applied version in `schema_migrations` (version, name, applied_at); a migration is never
// applied twice even when several processes start at once (the backend serialises them under
// its migration lock, and the version is re-checked inside each transaction).
//
// Rules for adding one: append with the next version, never edit or reorder a released entry,
// and keep the SQL of every backend equivalent in effect. Where the two dialects agree (an
// ALTER TABLE ... ADD COLUMN of a TEXT column, an index), write the text once and give it to
// both fields.
#pragma once

#include <span>
#include <string_view>

namespace connreg::store {

struct Migration {
  int version;            // 1, 2, 3, ... strictly increasing, no gaps
  std::string_view name;  // short, recorded in schema_migrations
  // The statements for each backend (sql::Dialect::migration_sql picks one); may hold several
  // statements separated by ';'.
  std::string_view sqlite;
  std::string_view postgres;
  // The SQLite text rebuilds a table (copy, drop, rename: the only way SQLite changes a CHECK):
  // it runs with foreign keys off, and is checked for violations before it commits
  // (sql::Dialect::foreign_keys_off).
  bool rebuilds_tables = false;
};

// Every migration, in the order they must be applied.
std::span<const Migration> Migrations();
// The table that records the applied versions (CREATE TABLE IF NOT EXISTS), made before any
// version is read.
const Migration& MigrationsTable();

}  // namespace connreg::store
