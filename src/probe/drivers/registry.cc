#include "probe/drivers/registry.h"

#include "probe/drivers/bigquery/bigquery.h"
#include "probe/drivers/databricks/databricks.h"
#include "probe/drivers/mysql/mysql.h"
#include "probe/drivers/postgres/postgres.h"
#include "probe/drivers/snowflake/snowflake.h"
#include "probe/drivers/sqlserver/sqlserver.h"
#include "probe/drivers/trino/trino.h"

namespace connreg::probe {

const std::vector<WarehouseType>& Registry() {
  // A new family adds its #include above and one line here.
  static const std::vector<WarehouseType>* const all = [] {
    auto* types = new std::vector<WarehouseType>;
    for (auto family : {PostgresTypes, MysqlTypes, SnowflakeTypes, BigQueryTypes, DatabricksTypes,
                        TrinoTypes, SqlServerTypes}) {
      for (auto& type : family()) types->push_back(std::move(type));
    }
    return types;
  }();
  return *all;
}

const domain::TypeCatalog& Catalog() {
  static const domain::TypeCatalog* const catalog = [] {
    std::vector<domain::TypeSpec> specs;
    for (const auto& type : Registry()) specs.push_back(type.spec);
    return new domain::TypeCatalog(std::move(specs));
  }();
  return *catalog;
}

const Driver* FindDriver(std::string_view type) {
  for (const auto& t : Registry()) {
    if (t.spec.type == type) return t.driver;
  }
  return nullptr;
}

}  // namespace connreg::probe
