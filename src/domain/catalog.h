// The warehouse catalog's vocabulary (contract section 13): paths, inode kinds, what a driver
// reports of a warehouse, the order-preserving key of a path, and the column type families. Pure;
// thread-safe. Drivers (probe/drivers/<family>/) produce WarehouseObjects, the store
// (store/store.h, CatalogStore) keeps them as inodes, the API renders them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

namespace connreg::domain {

// A path: names, outermost first, exactly as the warehouse spells them (postgres [schema,
// table], snowflake [DATABASE, SCHEMA, TABLE], ...).
using CatalogPath = std::vector<std::string>;

namespace inode_kind {
inline constexpr std::string_view kScope = "scope";  // every level above an object
inline constexpr std::string_view kTable = "table";  // tables and views
inline constexpr std::string_view kStoredProcedure = "stored-procedure";
}  // namespace inode_kind

// One column of a table, as the warehouse describes it.
struct WarehouseColumn {
  std::string name;
  // The type as the warehouse prints it ("character varying(20)", "ARRAY<STRING>", "NUMBER(38,0)").
  std::string warehouse_type;
  bool nullable = true;
  std::string comment;  // the warehouse's own comment; empty when none

  bool operator==(const WarehouseColumn&) const = default;
};

// One scope or object of a warehouse, as a driver reports it.
struct WarehouseObject {
  CatalogPath path;
  std::string kind;     // inode_kind
  std::string comment;  // the warehouse's own comment on the object; empty when none
  std::vector<WarehouseColumn> columns;  // tables: in the warehouse's ordinal order

  bool operator==(const WarehouseObject&) const = default;
};

// The byte string that orders paths as the contract lists them (element by element, byte order,
// a path before its descendants), so that a store's index on it is the listing order: each
// element with its 0x00 bytes written 0x00 0xFF, then the terminator 0x00 0x01.
std::string PathKey(const CatalogPath& path);
// The exclusive upper bound of the keys of `path`'s strict descendants: they are the keys k with
// PathKey(path) < k < PathKeyEnd(path). For the empty path: a key above every path's.
std::string PathKeyEnd(const CatalogPath& path);
// True when `prefix` is `path` or one of its ancestors.
bool IsPathPrefix(const CatalogPath& prefix, const CatalogPath& path);

// True for the schemas and databases that hold the warehouse's own bookkeeping
// (information_schema, pg_catalog, pg_toast, sys, mysql, performance_schema, ...): a sync leaves
// them out. Compared case-insensitively.
bool IsSystemScope(std::string_view name);

// The column type families of contract section 13.
namespace type_family {
inline constexpr std::string_view kNumber = "number";
inline constexpr std::string_view kText = "text";
inline constexpr std::string_view kLogical = "logical";
inline constexpr std::string_view kDatetime = "datetime";
inline constexpr std::string_view kDate = "date";
inline constexpr std::string_view kTime = "time";
inline constexpr std::string_view kBinary = "binary";
inline constexpr std::string_view kVariant = "variant";
inline constexpr std::string_view kArray = "array";
inline constexpr std::string_view kObject = "object";
inline constexpr std::string_view kGeography = "geography";
}  // namespace type_family

// The family of a warehouse type as any of the supported warehouses prints it; text for a type
// it does not know.
std::string_view TypeFamily(std::string_view warehouse_type);

// A column's `type` object: {"type": family, "warehouseType": as printed, "nullable"}, with
// "elementType" for arrays (ARRAY<T>, T[], _int4) and "fields" [{"name","type"}] for structs
// (STRUCT<a INT, b STRING>, RECORD<...>) nested the same way, where the printed type names them.
boost::json::object ColumnTypeJson(std::string_view warehouse_type, bool nullable);

}  // namespace connreg::domain
