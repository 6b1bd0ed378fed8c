// What the SQL families with two-level paths (postgres [schema, table], mysql [database, table])
// share when they list a catalog: which parts of the hierarchy a request needs, and the
// assembly of a catalog query's rows (one row per column, ordered by path) into the sink's
// objects, with system scopes and whatever lies outside the request left out.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "domain/catalog.h"
#include "probe/driver.h"

namespace connreg::probe {

// The parts of a [scope, object] hierarchy a CatalogRequest covers.
struct TwoLevelListing {
  bool scopes = false;                // list scopes (paths of one element)
  bool objects = false;               // list objects with their columns (paths of two elements)
  std::optional<std::string> scope;   // only this scope (the request's prefix names it)
  std::optional<std::string> object;  // only this object of `scope`
};
TwoLevelListing PlanTwoLevel(const CatalogRequest& request);

// Turns rows into objects for run.sink. Rows of one path come together (the query orders them by
// path, then by column ordinal): they are one object with the columns in that order. Not
// thread-safe; used by one listing.
class CatalogRows {
 public:
  explicit CatalogRows(CatalogRun& run) : run_(run) {}

  // One row of a query that follows this file's convention: `kind` 's' for the scope `scope`
  // (`object` ignored), 't' for the table or view `object` of `scope` and 'p' for the procedure;
  // `comment` on the scope or object, and one of its columns when `column` is set. An object
  // whose path was already reported under another kind (a procedure named like a table) is left
  // out. False: the sink said stop.
  bool Add(std::string_view kind, std::string_view scope, std::string_view object,
           std::string_view comment, const domain::WarehouseColumn* column);
  // Reports the object in progress. False: the sink said stop.
  bool Finish();

 private:
  bool Wanted(const domain::CatalogPath& path) const;

  CatalogRun& run_;
  std::optional<domain::WarehouseObject> current_;
  domain::CatalogPath last_reported_;
};

}  // namespace connreg::probe
