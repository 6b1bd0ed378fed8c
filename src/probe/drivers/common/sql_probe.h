// The query and write steps shared by SQL warehouses: `SELECT 1`, then, with write access, a
// uniquely named table created in the write schema, one row inserted and read back, and the
// table dropped. A driver connects and authenticates, then hands an SqlSession to RunSqlSteps.
#pragma once

#include <string>
#include <string_view>

#include "probe/driver.h"

namespace connreg::probe {

// The outcome of one statement.
struct SqlOutcome {
  bool ok = false;
  std::string code;     // on failure: a contract code (permission_denied, timeout, ...)
  std::string message;  // on failure: the warehouse's words (scrubbed later by the step log)
  std::string value;    // on success: the first column of the first row, if any
};

// One authenticated connection. Not thread-safe; used by one test.
class SqlSession {
 public:
  virtual ~SqlSession() = default;
  // Runs `sql` (one statement, no parameters) before the run's deadline.
  virtual SqlOutcome Execute(std::string_view sql) = 0;
  // `name` as a quoted identifier of this dialect.
  virtual std::string QuoteIdentifier(std::string_view name) = 0;
  // The dialect's type for the probe table's 64-character text column.
  virtual std::string_view TextType() const { return "VARCHAR(64)"; }
  // False once the session can no longer run statements (after a timeout, a lost connection).
  virtual bool usable() const = 0;
};

// `name` as a delimited identifier: between two `quote`s, each `quote` inside doubled (SQL's
// double quote; MySQL and Spark SQL use the backquote).
std::string QuoteDelimited(std::string_view name, char quote);

// Records the query step and, when run.write_access, the write step. The DROP runs whenever the
// session is still usable, even after an earlier write statement failed.
void RunSqlSteps(ProbeRun& run, SqlSession& session, std::string_view write_schema);

}  // namespace connreg::probe
