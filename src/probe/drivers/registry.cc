// The drivers built into this server, by details.type. A new warehouse adds one line here.
#include "probe/drivers/bigquery.h"
#include "probe/drivers/databricks.h"
#include "probe/drivers/driver.h"
#include "probe/drivers/mysql.h"
#include "probe/drivers/postgres.h"
#include "probe/drivers/snowflake.h"
#include "probe/drivers/sqlserver.h"
#include "probe/drivers/trino.h"

namespace connreg::probe {

const Driver* FindDriver(std::string_view type) {
  if (type == "postgres" || type == "alloydb") return &PostgresDriver(5432);
  if (type == "redshift") return &PostgresDriver(5439);
  if (type == "mysql") return &MysqlDriver();
  if (type == "snowflake") return &SnowflakeProbeDriver();
  if (type == "starburst") return &TrinoProbeDriver();
  if (type == "databricks") return &DatabricksProbeDriver();
  if (type == "bigQuery") return BigQueryProbeDriver();
  if (type == "sqlserver" || type == "azuresql") return SqlServerProbeDriver();
  return nullptr;
}

std::string DetailString(const boost::json::object& details, std::string_view field) {
  const auto* v = details.if_contains(field);
  if (!v || !v->is_string()) return "";
  return std::string(v->get_string());
}

int DetailInt(const boost::json::object& details, std::string_view field, int fallback) {
  const auto* v = details.if_contains(field);
  if (!v) return fallback;
  if (v->is_int64()) return static_cast<int>(v->get_int64());
  if (v->is_uint64() && v->get_uint64() < 1u << 30) return static_cast<int>(v->get_uint64());
  return fallback;
}

bool DetailBool(const boost::json::object& details, std::string_view field, bool fallback) {
  const auto* v = details.if_contains(field);
  return v && v->is_bool() ? v->get_bool() : fallback;
}

std::string WriteAccessString(const boost::json::object& details, std::string_view field) {
  const auto* wa = details.if_contains("writeAccess");
  if (!wa || !wa->is_object()) return "";
  return DetailString(wa->get_object(), field);
}

}  // namespace connreg::probe
