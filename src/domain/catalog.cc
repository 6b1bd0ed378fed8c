#include "domain/catalog.h"

#include <algorithm>
#include <array>
#include <cctype>

#include <boost/json/array.hpp>

namespace connreg::domain {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// The base name of a printed type, lower case, without its parameters and modifiers:
// "character varying(20)" -> "character varying", "NUMBER(38,0)" -> "number",
// "timestamp(6) with time zone" -> "timestamp with time zone", "int unsigned" -> "int".
std::string BaseName(std::string_view printed) {
  std::string out;
  int depth = 0;
  for (char c : printed) {
    if (c == '(' || c == '<') ++depth;
    if (depth == 0) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if ((c == ')' || c == '>') && depth > 0) --depth;
  }
  for (std::string_view suffix : {" unsigned", " zerofill", " signed", " not null"}) {
    for (auto at = out.find(suffix); at != std::string::npos; at = out.find(suffix)) {
      out.erase(at, suffix.size());
    }
  }
  std::string squeezed;
  for (char c : out) {
    if (c == ' ' && (squeezed.empty() || squeezed.back() == ' ')) continue;
    squeezed += c;
  }
  while (!squeezed.empty() && squeezed.back() == ' ') squeezed.pop_back();
  return squeezed;
}

// The text between the outermost <...> (or (...) for ClickHouse-style Array(T)), or empty.
std::string_view Inner(std::string_view printed, char open, char close) {
  auto begin = printed.find(open);
  auto end = printed.rfind(close);
  if (begin == std::string_view::npos || end == std::string_view::npos || end <= begin) return {};
  return Trim(printed.substr(begin + 1, end - begin - 1));
}

// Splits "a INT, b STRUCT<c INT, d STRING>" at the top-level commas.
std::vector<std::string_view> SplitTopLevel(std::string_view s) {
  std::vector<std::string_view> parts;
  int depth = 0;
  std::size_t start = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '<' || c == '(') ++depth;
    if ((c == '>' || c == ')') && depth > 0) --depth;
    if (c == ',' && depth == 0) {
      parts.push_back(Trim(s.substr(start, i - start)));
      start = i + 1;
    }
  }
  if (auto last = Trim(s.substr(start)); !last.empty()) parts.push_back(last);
  return parts;
}

constexpr std::array kSystemScopes = {
    "information_schema", "pg_catalog", "pg_toast", "sys",      "mysql",
    "performance_schema", "sysibm",     "system",   "__system",
};

}  // namespace

std::string PathKey(const CatalogPath& path) {
  std::string key;
  for (const std::string& element : path) {
    for (char c : element) {
      key += c;
      if (c == '\0') key += '\xff';
    }
    key += '\0';
    key += '\x01';
  }
  return key;
}

std::string PathKeyEnd(const CatalogPath& path) {
  if (path.empty()) return std::string(1, '\xff') + std::string(1, '\xff');
  std::string key = PathKey(path);
  key.back() = '\x02';  // terminator 0x00 0x01 -> 0x00 0x02: above every continuation
  return key;
}

bool IsPathPrefix(const CatalogPath& prefix, const CatalogPath& path) {
  return prefix.size() <= path.size() && std::equal(prefix.begin(), prefix.end(), path.begin());
}

bool IsSystemScope(std::string_view name) {
  std::string lower = Lower(name);
  if (StartsWith(lower, "pg_temp_") || StartsWith(lower, "pg_toast_temp_")) return true;
  return std::any_of(kSystemScopes.begin(), kSystemScopes.end(),
                     [&](std::string_view s) { return lower == s; });
}

std::string_view TypeFamily(std::string_view warehouse_type) {
  std::string printed = Lower(Trim(warehouse_type));
  std::string base = BaseName(printed);
  // Arrays: ARRAY<T>, T[], ARRAY, postgres internal _int4.
  if (StartsWith(base, "array") || printed.ends_with("[]") || StartsWith(base, "_")) {
    return type_family::kArray;
  }
  if (StartsWith(base, "struct") || base == "record" || base == "object" || base == "row" ||
      StartsWith(base, "map")) {
    return type_family::kObject;
  }
  if (base == "json" || base == "jsonb" || base == "variant" || base == "super") {
    return type_family::kVariant;
  }
  if (base == "geography" || base == "geometry" || base == "point" || base == "polygon" ||
      base == "linestring" || base == "multipoint" || base == "multipolygon" ||
      base == "multilinestring" || base == "geometrycollection") {
    return type_family::kGeography;
  }
  // MySQL prints BOOLEAN as tinyint(1); a display width of 1 is used for nothing else.
  if (base == "boolean" || base == "bool" || base == "bit" || printed == "tinyint(1)") {
    return type_family::kLogical;
  }
  if (base == "date") return type_family::kDate;
  if (StartsWith(base, "timestamp") || StartsWith(base, "datetime") || base == "smalldatetime" ||
      base == "datetimeoffset") {
    return type_family::kDatetime;
  }
  if (StartsWith(base, "time")) return type_family::kTime;
  static constexpr std::array kNumbers = {
      "smallint",    "integer",
      "int",         "bigint",
      "tinyint",     "mediumint",
      "int2",        "int4",
      "int8",        "int64",
      "serial",      "bigserial",
      "decimal",     "numeric",
      "number",      "real",
      "float",       "float4",
      "float8",      "float64",
      "double",      "double precision",
      "money",       "smallmoney",
      "byteint",     "bignumeric",
      "smallserial", "dec",
      "fixed",       "bigdecimal",
      "long",        "short",
      "byte",
  };
  if (std::any_of(kNumbers.begin(), kNumbers.end(),
                  [&](std::string_view n) { return base == n; })) {
    return type_family::kNumber;
  }
  static constexpr std::array kBinaries = {
      "bytea",      "binary",   "varbinary", "blob",  "tinyblob",
      "mediumblob", "longblob", "bytes",     "image", "rowversion",
  };
  if (std::any_of(kBinaries.begin(), kBinaries.end(),
                  [&](std::string_view n) { return base == n; })) {
    return type_family::kBinary;
  }
  return type_family::kText;
}

boost::json::object ColumnTypeJson(std::string_view warehouse_type, bool nullable) {
  std::string_view printed = Trim(warehouse_type);
  std::string_view family = TypeFamily(printed);
  boost::json::object out;
  out["type"] = family;
  out["warehouseType"] = printed;
  out["nullable"] = nullable;
  if (family == type_family::kArray) {
    std::string_view element;
    if (printed.ends_with("[]")) {  // postgres: integer[], character varying(10)[]
      element = Trim(printed.substr(0, printed.size() - 2));
    } else if (Lower(printed).starts_with("array(")) {  // trino: array(integer)
      element = Inner(printed, '(', ')');
    } else {
      element = Inner(printed, '<', '>');  // ARRAY<STRING>, array<int>
    }
    if (!element.empty()) out["elementType"] = ColumnTypeJson(element, true);
  } else if (family == type_family::kObject &&
             (Lower(printed).starts_with("struct") || Lower(printed).starts_with("row("))) {
    // STRUCT<a INT64>, struct<a:int>, trino's row(a integer)
    std::string_view inner =
        Lower(printed).starts_with("row(") ? Inner(printed, '(', ')') : Inner(printed, '<', '>');
    boost::json::array fields;
    for (std::string_view part : SplitTopLevel(inner)) {
      // "name TYPE" or "name: TYPE"
      auto space = part.find_first_of(" :");
      if (space == std::string_view::npos) continue;
      std::string_view name = Trim(part.substr(0, space));
      std::string_view type = Trim(part.substr(space + 1));
      if (!type.empty() && type.front() == ':') type = Trim(type.substr(1));
      if (name.empty() || type.empty()) continue;
      fields.push_back(boost::json::object{{"name", name}, {"type", ColumnTypeJson(type, true)}});
    }
    if (!fields.empty()) out["fields"] = std::move(fields);
  }
  return out;
}

}  // namespace connreg::domain
