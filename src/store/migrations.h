// The schema, as an ordered list of numbered migrations embedded in the binary. Each backend
// applies the pending entries at start, one transaction per entry, and records every applied
// version in `schema_migrations` (version, name, applied_at); a migration is never applied twice
// even when several processes start at once (each backend serialises them under a write lock
// and re-checks the version inside its transaction).
//
// Rules for adding one: append with the next version, never edit or reorder a released entry,
// and keep the SQL of every backend equivalent in effect.
#pragma once

#include <span>
#include <string_view>

namespace connreg::store {

struct Migration {
  int version;            // 1, 2, 3, ... strictly increasing, no gaps
  std::string_view name;  // short, recorded in schema_migrations
  // The statements for each backend; may hold several statements separated by ';'.
  std::string_view sqlite;
  std::string_view postgres;  // empty until the PostgreSQL backend exists
};

// Every migration, in the order they must be applied.
std::span<const Migration> Migrations();

}  // namespace connreg::store
