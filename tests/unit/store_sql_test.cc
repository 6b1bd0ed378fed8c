// The query layer's statements (store/sql.h, store/sql_rows.h) without a database: how a
// statement written once with named parameters becomes each dialect's positional text, and the
// statements a row table derives. What they do on a real database is the store contract
// (store_contract_test.cc, on both backends).
#include "store/sql.h"

#include <gtest/gtest.h>

#include <string>

#include "store/sql_rows.h"

namespace connreg::store::sql {
namespace {

Dialect WithMarker(char marker) {
  Dialect d{};
  d.name = "test";
  d.parameter_marker = marker;
  d.find_substring = "instr";
  d.json_array_texts = "SELECT value FROM json_each({})";
  return d;
}

TEST(StoreSqlQuery, NamedParametersBecomePositionalInOrderOfFirstUse) {
  const Dialect sqlite = WithMarker('?');
  const Dialect postgres = WithMarker('$');
  QueryBook a(sqlite);
  QueryBook b(postgres);
  const std::string text =
      "SELECT 1 FROM grants WHERE connection_id = :connection_id AND member_id = :member_id"
      " OR (connection_id = :connection_id AND team_id IN (SELECT t FROM m WHERE x = :member_id))";
  Query qa(a, text);
  Query qb(b, text);
  EXPECT_EQ(qa.sql(),
            "SELECT 1 FROM grants WHERE connection_id = ?1 AND member_id = ?2"
            " OR (connection_id = ?1 AND team_id IN (SELECT t FROM m WHERE x = ?2))");
  EXPECT_EQ(qb.sql(),
            "SELECT 1 FROM grants WHERE connection_id = $1 AND member_id = $2"
            " OR (connection_id = $1 AND team_id IN (SELECT t FROM m WHERE x = $2))");
  EXPECT_EQ(qa.param_count(), 2);
  EXPECT_EQ(qa.ParamIndex("connection_id", 1), 1);
  EXPECT_EQ(qa.ParamIndex("member_id", 1), 2);  // a wrong hint still finds it
  EXPECT_EQ(qa.ParamIndex("member_id", 2), 2);
  EXPECT_EQ(qa.ParamIndex("member", 1), 0);
  EXPECT_EQ(qa.ParamIndex("connection_id", 99), 1);
}

TEST(StoreSqlQuery, LiteralsCastsAndIdentifiersAreNotParameters) {
  const Dialect d = WithMarker('$');
  QueryBook book(d);
  Query q(book,
          "SELECT ':not_a_param', \"odd:name\", x::text, 'it''s :x' FROM t WHERE a = :a_1"
          " AND b = ':' || :b");
  EXPECT_EQ(q.sql(),
            "SELECT ':not_a_param', \"odd:name\", x::text, 'it''s :x' FROM t WHERE a = $1"
            " AND b = ':' || $2");
  EXPECT_EQ(q.ParamIndex("a_1", 1), 1);
  EXPECT_EQ(q.ParamIndex("b", 1), 2);
  EXPECT_EQ(q.ParamIndex("x", 1), 0);
}

TEST(StoreSqlQuery, EveryQueryOfABookHasASlotOfItsOwn) {
  const Dialect d = WithMarker('?');
  QueryBook book(d);
  Query first(book, "SELECT 1");
  Query second(book, "SELECT 1");
  Query third(book, "SELECT 2");
  EXPECT_EQ(first.slot(), 0u);
  EXPECT_EQ(second.slot(), 1u);
  EXPECT_EQ(third.slot(), 2u);
}

TEST(StoreSqlDialect, FragmentsFollowTheDialect) {
  Dialect d = WithMarker('?');
  d.index_hints = true;
  EXPECT_EQ(d.IndexedBy("by_name"), " INDEXED BY by_name");
  EXPECT_EQ(d.Contains("name_folded", ":search"), "instr(name_folded, :search) > 0");
  EXPECT_EQ(d.JsonArrayTexts(":ids"), "SELECT value FROM json_each(:ids)");
  EXPECT_EQ(d.RowLocks(" FOR UPDATE"), "");
  d.index_hints = false;
  d.row_locks = true;
  EXPECT_EQ(d.IndexedBy("by_name"), "");
  EXPECT_EQ(d.RowLocks(" FOR UPDATE"), " FOR UPDATE");
}

struct Thing {
  std::string id;
  std::string name;
  std::int64_t size = 0;
  std::string derived;
};

constexpr Column<Thing> kThingColumns[] = {
    Field<&Thing::id>("id", kKey),
    Field<&Thing::name>("name"),
    Field<&Thing::size>("size"),
    {"derived", [](Stmt& st, std::string_view p, const Thing& t) { st.Bind(p, t.name); }, nullptr},
};

TEST(StoreSqlRows, StatementsDeriveFromTheRowTable) {
  EXPECT_EQ(ReadableCount(kThingColumns), 3);
  EXPECT_EQ(SelectList(kThingColumns), "id, name, size");
  EXPECT_EQ(SelectList(kThingColumns, "t."), "t.id, t.name, t.size");
  EXPECT_EQ(InsertSql("things", kThingColumns),
            "INSERT INTO things (id, name, size, derived) VALUES (:id, :name, :size, :derived)");
  EXPECT_EQ(InsertSql("things", kThingColumns, {"owner"}),
            "INSERT INTO things (owner, id, name, size, derived) VALUES (:owner, :id, :name, "
            ":size, :derived)");
  EXPECT_EQ(UpdateSetList(kThingColumns), "name = :name, size = :size, derived = :derived");
  EXPECT_EQ(KeyMatch(kThingColumns), "id = :id");
}

}  // namespace
}  // namespace connreg::store::sql
