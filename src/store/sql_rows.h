// Row mapping for the query layer: a row type is described once, as a table of its columns
// (name, how to bind the field as the parameter of that name, how to read it back), and the
// select list, the INSERT, the UPDATE's SET list, the binding and the reading of that row are
// all derived from the table. A new field is one line of its table (and a migration).
#pragma once

#include <initializer_list>
#include <iterator>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "store/sql.h"

namespace connreg::store::sql {

template <class Row>
struct Column {
  using RowType = Row;
  std::string_view name;
  // Binds the field as the parameter `param` (`:name` in the generated statements).
  void (*bind)(Stmt& st, std::string_view param, const Row& row);
  // Reads the field from result column `col`; nullptr for a column that is written, never
  // read back (a value derived from other fields).
  Status (*read)(const Stmt& st, int col, Row& row);
  // Part of the row's key: in the WHERE of the generated UPDATE, not in its SET.
  bool key = false;
};

inline constexpr bool kKey = true;

template <auto Member>
struct MemberOf;
template <class Row, class Value, Value Row::*Member>
struct MemberOf<Member> {
  using RowType = Row;
};

// The column of a plain field (text, integer, boolean, or an optional of one).
template <auto Member>
constexpr Column<typename MemberOf<Member>::RowType> Field(std::string_view name,
                                                           bool key = false) {
  using Row = typename MemberOf<Member>::RowType;
  return {name,
          [](Stmt& st, std::string_view param, const Row& row) { st.Bind(param, row.*Member); },
          [](const Stmt& st, int col, Row& row) -> Status {
            st.Get(col, row.*Member);
            return OkStatus();
          },
          key};
}

// A row type's table of columns: a C array (or any range) of Column<Row>.
template <class Columns>
using RowOf =
    typename std::remove_cvref_t<decltype(*std::begin(std::declval<Columns&>()))>::RowType;

// The columns that come back in a select, in table order. Not constexpr: under
// -fsanitize=undefined GCC 12 does not take a lambda's function pointer compared with nullptr as
// a constant expression.
template <class Columns>
int ReadableCount(const Columns& columns) {
  int n = 0;
  for (const auto& c : columns) n += c.read != nullptr ? 1 : 0;
  return n;
}

// "a, b, c" (the readable columns), each name after `prefix` ("c." for a join).
template <class Columns>
std::string SelectList(const Columns& columns, std::string_view prefix = "") {
  std::string out;
  for (const auto& c : columns) {
    if (c.read == nullptr) continue;
    if (!out.empty()) out += ", ";
    out += prefix;
    out += c.name;
  }
  return out;
}

// "INSERT INTO table (k, a, b) VALUES (:k, :a, :b)" over the `leading` columns (bound apart
// from the row: a row type that does not hold its whole key), then every column of the table.
template <class Columns>
std::string InsertSql(std::string_view table, const Columns& columns,
                      std::initializer_list<std::string_view> leading = {}) {
  std::string names;
  std::string params;
  auto add = [&](std::string_view name) {
    if (!names.empty()) {
      names += ", ";
      params += ", ";
    }
    names += name;
    params += ':';
    params += name;
  };
  for (std::string_view name : leading) add(name);
  for (const auto& c : columns) add(c.name);
  return "INSERT INTO " + std::string(table) + " (" + names + ") VALUES (" + params + ")";
}

// "a = :a<separator>b = :b" over the key columns (`keys`) or the others.
template <class Columns>
std::string Assignments(const Columns& columns, bool keys, std::string_view separator) {
  std::string out;
  for (const auto& c : columns) {
    if (c.key != keys) continue;
    if (!out.empty()) out += separator;
    out += c.name;
    out += " = :";
    out += c.name;
  }
  return out;
}

// "a = :a, b = :b" over the columns that are not keys: an UPDATE's SET list.
template <class Columns>
std::string UpdateSetList(const Columns& columns) {
  return Assignments(columns, false, ", ");
}

// "k = :k AND l = :l" over the key columns.
template <class Columns>
std::string KeyMatch(const Columns& columns) {
  return Assignments(columns, true, " AND ");
}

// "SELECT a, b FROM table WHERE k = :k": one row by its key.
template <class Columns>
std::string SelectByKey(const Columns& columns, std::string_view table) {
  return "SELECT " + SelectList(columns) + " FROM " + std::string(table) + " WHERE " +
         KeyMatch(columns);
}

// Binds every column of `row` as the parameter of its name.
template <class Columns>
void BindRow(Stmt& st, const Columns& columns, const RowOf<Columns>& row) {
  for (const auto& c : columns) c.bind(st, c.name, row);
}

// Reads the readable columns of the current row into `row`, from result column `first` on.
template <class Columns>
Status ReadRow(const Stmt& st, const Columns& columns, RowOf<Columns>& row, int first = 0) {
  int col = first;
  for (const auto& c : columns) {
    if (c.read == nullptr) continue;
    if (Status s = c.read(st, col++, row); !s) return s;
  }
  return OkStatus();
}

}  // namespace connreg::store::sql
