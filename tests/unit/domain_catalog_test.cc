// The catalog's vocabulary (domain/catalog.h): path keys, system scopes and the column type
// families of contract section 13 over the types as each supported warehouse prints them.
#include "domain/catalog.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

#include <boost/json/serialize.hpp>

namespace connreg::domain {
namespace {

using std::string_literals::operator""s;

TEST(DomainCatalogPathKey, OrdersPathsElementByElementInByteOrder) {
  // Sorted as the contract lists paths: element by element, byte order, a path before its
  // descendants.
  const std::vector<CatalogPath> sorted = {
      {},
      {"A"},
      {"A", "z"},
      {"B"},
      {"a"},
      {"a", ""},
      {"a", "b"},
      {"a", "b", "c"},
      {"a", "b\x01"},
      {"a", "bb"},
      {"a b"},  // "a" < "a b": a shorter
                // element first, whatever
                // follows it in the path
      {"ab"},
      {"a\xc3\xa9"},  // UTF-8 bytes above ASCII
  };
  for (std::size_t i = 1; i < sorted.size(); ++i) {
    EXPECT_LT(PathKey(sorted[i - 1]), PathKey(sorted[i])) << i;
  }
  std::vector<CatalogPath> shuffled(sorted.rbegin(), sorted.rend());
  std::sort(shuffled.begin(), shuffled.end(),
            [](const CatalogPath& a, const CatalogPath& b) { return PathKey(a) < PathKey(b); });
  EXPECT_EQ(shuffled, sorted);
}

TEST(DomainCatalogPathKey, AnEmbeddedNulStaysInsideItsElement) {
  // ["a\0b"] is one element: it sorts after ["a"] and all of ["a"]'s descendants, and before
  // ["a\x01"]; ["a", "b"] is not confused with it.
  const CatalogPath nul = {"a\0b"s};
  EXPECT_NE(PathKey(nul), PathKey({"a", "b"}));
  EXPECT_LT(PathKey({"a"}), PathKey(nul));
  EXPECT_LT(PathKey({"a", "\xff\xff"}), PathKey(nul));
  EXPECT_LT(PathKey(nul), PathKey({"a\x01"}));
  EXPECT_LT(PathKey(nul), PathKey({"a\0b"s, "c"}));
  EXPECT_LT(PathKey({"a\0"s}), PathKey(nul));
}

TEST(DomainCatalogPathKey, PathKeyEndBoundsExactlyTheDescendants) {
  const CatalogPath p = {"s", "t"};
  const std::vector<CatalogPath> inside = {
      {"s", "t", ""}, {"s", "t", "x"}, {"s", "t", "\xff"}, {"s", "t", "x", "y"}, {"s", "t", "\0"s}};
  const std::vector<CatalogPath> outside = {{"s"},      {"s", "t"},        {"s", "t\0"s},
                                            {"s", "u"}, {"s", "t\x01"},    {"s", "ta"},
                                            {"t"},      {"s\0"s, "t", "x"}};
  for (const CatalogPath& d : inside) {
    EXPECT_LT(PathKey(p), PathKey(d));
    EXPECT_LT(PathKey(d), PathKeyEnd(p)) << d.back();
  }
  for (const CatalogPath& o : outside) {
    bool within = PathKey(p) < PathKey(o) && PathKey(o) < PathKeyEnd(p);
    EXPECT_FALSE(within) << o.back();
  }
  for (const CatalogPath& any :
       {CatalogPath{"\xf4\x8f\xbf\xbf"} /* U+10FFFF */, CatalogPath{"a", "b", "c"}}) {
    EXPECT_LT(PathKey(any), PathKeyEnd({}));
  }
  EXPECT_TRUE(IsPathPrefix({}, {"a"}));
  EXPECT_TRUE(IsPathPrefix({"a"}, {"a"}));
  EXPECT_TRUE(IsPathPrefix({"a"}, {"a", "b"}));
  EXPECT_FALSE(IsPathPrefix({"a", "b"}, {"a"}));
  EXPECT_FALSE(IsPathPrefix({"a"}, {"ab"}));
}

TEST(DomainCatalogSystemScope, KnowsEachWarehousesBookkeepingAndNothingElse) {
  for (const char* s :
       {"information_schema", "INFORMATION_SCHEMA", "pg_catalog", "pg_toast", "pg_temp_3",
        "pg_toast_temp_3", "mysql", "performance_schema", "sys", "SYS"}) {
    EXPECT_TRUE(IsSystemScope(s)) << s;
  }
  for (const char* s : {"public", "cat_sales", "mysql_app", "pg_catalogue", "system_data",
                        "information", "PUBLIC", ""}) {
    EXPECT_FALSE(IsSystemScope(s)) << s;
  }
}

// Types as each warehouse prints them, and their families (contract section 13).
class DomainCatalogTypeFamily
    : public ::testing::TestWithParam<std::tuple<std::string, std::string_view>> {};

TEST_P(DomainCatalogTypeFamily, MapsToTheContractFamily) {
  const auto& [printed, family] = GetParam();
  EXPECT_EQ(TypeFamily(printed), family) << printed;
  boost::json::object type = ColumnTypeJson(printed, false);
  EXPECT_EQ(type.at("type").as_string(), family);
  EXPECT_EQ(type.at("warehouseType").as_string(), printed);
  EXPECT_EQ(type.at("nullable").as_bool(), false);
}

namespace tf = type_family;
using T = std::tuple<std::string, std::string_view>;

INSTANTIATE_TEST_SUITE_P(
    Postgres, DomainCatalogTypeFamily,
    ::testing::Values(T{"smallint", tf::kNumber}, T{"integer", tf::kNumber},
                      T{"bigint", tf::kNumber}, T{"numeric(12,2)", tf::kNumber},
                      T{"numeric", tf::kNumber}, T{"real", tf::kNumber},
                      T{"double precision", tf::kNumber}, T{"money", tf::kNumber},
                      T{"character varying(40)", tf::kText}, T{"character(3)", tf::kText},
                      T{"text", tf::kText}, T{"uuid", tf::kText}, T{"cat_types.mood", tf::kText},
                      T{"boolean", tf::kLogical}, T{"timestamp without time zone", tf::kDatetime},
                      T{"timestamp(3) with time zone", tf::kDatetime}, T{"date", tf::kDate},
                      T{"time without time zone", tf::kTime},
                      T{"time(6) with time zone", tf::kTime}, T{"bytea", tf::kBinary},
                      T{"json", tf::kVariant}, T{"jsonb", tf::kVariant}, T{"integer[]", tf::kArray},
                      T{"character varying(10)[]", tf::kArray}, T{"point", tf::kGeography},
                      T{"super", tf::kVariant} /* redshift */));

INSTANTIATE_TEST_SUITE_P(
    Mysql, DomainCatalogTypeFamily,
    ::testing::Values(
        T{"tinyint(4)", tf::kNumber}, T{"smallint(6)", tf::kNumber}, T{"int(11)", tf::kNumber},
        T{"int", tf::kNumber}, T{"bigint(20) unsigned", tf::kNumber},
        T{"mediumint(9)", tf::kNumber}, T{"decimal(12,2)", tf::kNumber}, T{"float", tf::kNumber},
        T{"double", tf::kNumber}, T{"varchar(40)", tf::kText}, T{"char(3)", tf::kText},
        T{"longtext", tf::kText}, T{"uuid", tf::kText}, T{"enum('sad','ok','happy')", tf::kText},
        T{"set('a','b')", tf::kText}, T{"tinyint(1)", tf::kLogical}, T{"bit(1)", tf::kLogical},
        T{"datetime", tf::kDatetime}, T{"datetime(6)", tf::kDatetime},
        T{"timestamp", tf::kDatetime}, T{"date", tf::kDate}, T{"time", tf::kTime},
        T{"blob", tf::kBinary}, T{"longblob", tf::kBinary}, T{"varbinary(16)", tf::kBinary},
        T{"binary(16)", tf::kBinary}, T{"json", tf::kVariant}, T{"geometry", tf::kGeography},
        T{"point", tf::kGeography}, T{"polygon", tf::kGeography}));

INSTANTIATE_TEST_SUITE_P(
    Snowflake, DomainCatalogTypeFamily,
    ::testing::Values(T{"NUMBER(38,0)", tf::kNumber}, T{"FLOAT", tf::kNumber},
                      T{"VARCHAR(16777216)", tf::kText}, T{"BOOLEAN", tf::kLogical},
                      T{"TIMESTAMP_NTZ(9)", tf::kDatetime}, T{"TIMESTAMP_TZ(9)", tf::kDatetime},
                      T{"DATE", tf::kDate}, T{"TIME(9)", tf::kTime}, T{"BINARY", tf::kBinary},
                      T{"VARIANT", tf::kVariant}, T{"ARRAY", tf::kArray}, T{"OBJECT", tf::kObject},
                      T{"GEOGRAPHY", tf::kGeography}));

INSTANTIATE_TEST_SUITE_P(BigQuery, DomainCatalogTypeFamily,
                         ::testing::Values(T{"INT64", tf::kNumber}, T{"NUMERIC", tf::kNumber},
                                           T{"BIGNUMERIC", tf::kNumber}, T{"FLOAT64", tf::kNumber},
                                           T{"STRING", tf::kText}, T{"BOOL", tf::kLogical},
                                           T{"TIMESTAMP", tf::kDatetime},
                                           T{"DATETIME", tf::kDatetime}, T{"BYTES", tf::kBinary},
                                           T{"JSON", tf::kVariant}, T{"ARRAY<STRING>", tf::kArray},
                                           T{"STRUCT<a INT64, b STRING>", tf::kObject},
                                           T{"GEOGRAPHY", tf::kGeography}));

INSTANTIATE_TEST_SUITE_P(
    Databricks, DomainCatalogTypeFamily,
    ::testing::Values(T{"bigint", tf::kNumber}, T{"decimal(10,2)", tf::kNumber},
                      T{"string", tf::kText}, T{"boolean", tf::kLogical},
                      T{"timestamp", tf::kDatetime}, T{"timestamp_ntz", tf::kDatetime},
                      T{"binary", tf::kBinary}, T{"array<int>", tf::kArray},
                      T{"struct<a:int,b:string>", tf::kObject}, T{"map<string,int>", tf::kObject}));

INSTANTIATE_TEST_SUITE_P(Trino, DomainCatalogTypeFamily,
                         ::testing::Values(T{"integer", tf::kNumber}, T{"varchar(10)", tf::kText},
                                           T{"varchar", tf::kText},
                                           T{"row(a integer, b varchar)", tf::kObject},
                                           T{"array(integer)", tf::kArray},
                                           T{"timestamp(3) with time zone", tf::kDatetime},
                                           T{"varbinary", tf::kBinary}));

INSTANTIATE_TEST_SUITE_P(
    SqlServer, DomainCatalogTypeFamily,
    ::testing::Values(T{"int", tf::kNumber}, T{"money", tf::kNumber}, T{"nvarchar", tf::kText},
                      T{"nvarchar(max)", tf::kText}, T{"datetime2", tf::kDatetime},
                      T{"datetimeoffset", tf::kDatetime}, T{"smalldatetime", tf::kDatetime},
                      T{"uniqueidentifier", tf::kText}, T{"bit", tf::kLogical},
                      T{"varbinary(max)", tf::kBinary}, T{"rowversion", tf::kBinary},
                      T{"geography", tf::kGeography}, T{"geometry", tf::kGeography}));

TEST(DomainCatalogColumnType, ArraysCarryTheirElementAndStructsTheirFields) {
  auto element = [](std::string_view printed) {
    boost::json::object t = ColumnTypeJson(printed, true);
    return t.contains("elementType")
               ? std::string(t.at("elementType").at("warehouseType").as_string())
               : std::string("(none)");
  };
  EXPECT_EQ(element("integer[]"), "integer");
  EXPECT_EQ(element("character varying(10)[]"), "character varying(10)");
  EXPECT_EQ(element("ARRAY<STRING>"), "STRING");
  EXPECT_EQ(element("array<int>"), "int");
  EXPECT_EQ(element("array(integer)"), "integer");
  EXPECT_EQ(element("ARRAY"), "(none)");

  auto fields = [](std::string_view printed) {
    boost::json::object t = ColumnTypeJson(printed, true);
    std::vector<std::string> out;
    if (!t.contains("fields")) return out;
    for (const auto& f : t.at("fields").as_array()) {
      out.push_back(std::string(f.at("name").as_string()) + ":" +
                    std::string(f.at("type").at("type").as_string()));
    }
    return out;
  };
  EXPECT_EQ(fields("STRUCT<a INT64, b STRING>"), (std::vector<std::string>{"a:number", "b:text"}));
  EXPECT_EQ(fields("struct<a:int,b:string>"), (std::vector<std::string>{"a:number", "b:text"}));
  EXPECT_EQ(fields("row(a integer, b varchar)"), (std::vector<std::string>{"a:number", "b:text"}));
  EXPECT_EQ(fields("STRUCT<a STRUCT<b INT64>, c ARRAY<STRING>>"),
            (std::vector<std::string>{"a:object", "c:array"}));
  EXPECT_TRUE(fields("OBJECT").empty());
}

}  // namespace
}  // namespace connreg::domain
