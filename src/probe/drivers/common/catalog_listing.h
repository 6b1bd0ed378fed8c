// What the drivers' introspection (Driver::Introspect) shares: which paths a CatalogRequest
// reaches, the sink with the system scopes left out and the deadline honoured, the `query` step's
// outcome, and the assembly of a table from catalog rows ordered by table, then ordinal position
// (so that at most one table's columns are held at a time).
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "probe/driver.h"
#include "probe/drivers/common/sql_probe.h"

namespace connreg::probe {

// One listing, for a family whose paths have `depth` levels. Records nothing before Begin.
class CatalogListing {
 public:
  CatalogListing(CatalogRun& run, int depth) : run_(run), depth_(depth) {}

  // The name the request's prefix fixes at `level` (0: outermost), or nullptr when any name of
  // that level is wanted: a driver narrows its catalog query by it.
  const std::string* FixedName(std::size_t level) const;
  // True when `scope` or something below it may be wanted: it agrees with the prefix where both
  // have names, it is not (inside) a system scope, and it is no deeper than the request reaches.
  bool Reaches(const domain::CatalogPath& scope) const;
  // True when the children of `scope` may be wanted (Reaches one level further down).
  bool ReachesChildren(const domain::CatalogPath& scope) const;

  // Starts the `query` step.
  void Begin();
  // Reports `object` when the request wants it (the engine drops the rest anyway). False: stop
  // listing, because the sink said so or the deadline passed (the step then fails `timeout`).
  bool Add(domain::WarehouseObject object);
  // True once Add said stop or Fail was called: the listing ends.
  bool stopped() const { return stopped_; }
  // Ends the step FAILED with a contract code and the warehouse's words (cut to an excerpt).
  void Fail(std::string_view code, std::string_view message);
  // Ends the step, unless Fail did: passed, or FAILED `timeout` when the deadline stopped it.
  void Finish();

 private:
  CatalogRun& run_;
  int depth_;
  bool stopped_ = false;
  bool timed_out_ = false;
  bool failed_ = false;
};

// Builds tables from rows ordered by table, then column ordinal, and reports each when the next
// table begins (Flush reports the last one).
class TableAssembler {
 public:
  explicit TableAssembler(CatalogListing& listing) : listing_(listing) {}

  // A row of the table at `path` (whose comment is `comment`), carrying one of its columns or,
  // for a table without any, none. False: stop listing.
  bool Row(domain::CatalogPath path, std::string_view comment,
           std::optional<domain::WarehouseColumn> column);
  // Reports the table in progress, if any. False: stop listing.
  bool Flush();

 private:
  CatalogListing& listing_;
  std::optional<domain::WarehouseObject> table_;
};

// One catalog query's answer, or one page of it: its column names and rows, each cell as text
// (CellText).
struct RowPage {
  using Row = std::vector<std::optional<std::string>>;
  std::vector<std::string> columns;
  std::vector<Row> rows;

  // The index of column `name` (compared case-insensitively), or -1.
  int Column(std::string_view name) const;
  // Row `row`'s cell in column `name`, or "" when it is null or there is no such column.
  std::string Cell(const Row& row, std::string_view name) const;
};

// The rows one catalog query returns at most per statement: catalog queries are read in pages
// of this many rows (LIMIT .. OFFSET ..), so that no answer holds more than a page.
inline constexpr long kCatalogPageRows = 1000;

// Runs `select` for successive pages ("LIMIT n OFFSET k", to append to an ordered query) until a
// page is short, and hands each row to `row`. A failed page fails the step; false when the
// listing must end there (a failure, or `row` said stop).
bool ForEachRowPaged(CatalogListing& listing,
                     const std::function<SqlOutcome(const std::string& limit, RowPage&)>& select,
                     const std::function<bool(const RowPage&, const RowPage::Row&)>& row);

// A catalog row's cell as text: strings as they are, numbers and booleans as JSON prints them,
// null as nullopt.
std::optional<std::string> CellText(const boost::json::value& v);

}  // namespace connreg::probe
