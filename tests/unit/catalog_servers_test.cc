// The postgres and mysql drivers' catalog listing (Driver::Introspect) against the real servers
// started by scripts/test-databases.sh, whose catalog seed (scripts/catalog-seed/) these tests
// assert on. The suites are named ProbeServer* so that CTest runs them inside the servers'
// fixture (tests/CMakeLists.txt).
#include <libpq-fe.h>
#include <mysql.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <climits>
#include <fstream>
#include <sstream>

#include "domain/catalog.h"
#include "probe_test_support.h"

namespace connreg::probe {
namespace {

using domain::CatalogPath;
using domain::WarehouseObject;
using test_support::Env;

using test_support::kDatabase;
using test_support::kReader;
using test_support::kWriter;

// Keeps what the driver reports; says stop after `stop_after` objects.
class CollectingSink : public CatalogSink {
 public:
  explicit CollectingSink(std::size_t stop_after) : stop_after_(stop_after) {}
  bool Add(WarehouseObject object) override {
    objects.push_back(std::move(object));
    return objects.size() < stop_after_;
  }
  std::vector<WarehouseObject> objects;

 private:
  std::size_t stop_after_;
};

struct Listing {
  std::string steps;  // "connect:SUCCESS authenticate:SUCCESS query:SUCCESS"
  std::vector<WarehouseObject> objects;

  const WarehouseObject* Find(const CatalogPath& path) const {
    for (const WarehouseObject& o : objects) {
      if (o.path == path) return &o;
    }
    return nullptr;
  }
  std::vector<std::string> Scopes() const {
    std::vector<std::string> out;
    for (const WarehouseObject& o : objects) {
      if (o.kind == domain::inode_kind::kScope) out.push_back(o.path.front());
    }
    return out;
  }
  std::vector<std::string> ColumnNames(const CatalogPath& path) const {
    std::vector<std::string> out;
    if (const WarehouseObject* o = Find(path)) {
      for (const auto& c : o->columns) out.push_back(c.name);
    }
    return out;
  }
};

Listing Introspect(const std::string& type, boost::json::object details,
                   const std::string& password, CatalogRequest request = {},
                   std::size_t stop_after = SIZE_MAX) {
  CollectingSink sink(stop_after);
  Listing out;
  for (const Step& s : test_support::RunIntrospect(type, std::move(details),
                                                   {{"password", password}}, request, sink)) {
    if (!out.steps.empty()) out.steps += " ";
    out.steps += s.name + ":" + s.status + (s.code.empty() ? "" : "/" + s.code);
    if (s.status == status::kFailed) std::cerr << s.name << " failed: " << s.message << "\n";
  }
  out.objects = std::move(sink.objects);
  return out;
}

// One family's server and what its seed holds that differs between the families.
struct Family {
  std::string type;    // "postgres" or "mysql"
  std::string prefix;  // of its CONNREG_TEST_ variables: "PG" or "MYSQL"
  // cat_types.all_types: column -> the type as the server prints it, and its contract family.
  std::vector<std::tuple<std::string, std::string, std::string_view>> all_types;
  std::vector<std::string> customers_types;
  std::string procedure_comment;
  std::string scratch_scope;  // where the writer may create a table
};

namespace tf = domain::type_family;

const Family& Postgres() {
  static const Family f{"postgres",
                        "PG",
                        {{"c_smallint", "smallint", tf::kNumber},
                         {"c_integer", "integer", tf::kNumber},
                         {"c_bigint", "bigint", tf::kNumber},
                         {"c_numeric", "numeric(12,2)", tf::kNumber},
                         {"c_real", "real", tf::kNumber},
                         {"c_double", "double precision", tf::kNumber},
                         {"c_varchar", "character varying(40)", tf::kText},
                         {"c_char", "character(3)", tf::kText},
                         {"c_text", "text", tf::kText},
                         {"c_uuid", "uuid", tf::kText},
                         {"c_enum", "cat_types.mood", tf::kText},
                         {"c_boolean", "boolean", tf::kLogical},
                         {"c_timestamp", "timestamp without time zone", tf::kDatetime},
                         {"c_timestamptz", "timestamp with time zone", tf::kDatetime},
                         {"c_date", "date", tf::kDate},
                         {"c_time", "time without time zone", tf::kTime},
                         {"c_bytea", "bytea", tf::kBinary},
                         {"c_json", "json", tf::kVariant},
                         {"c_jsonb", "jsonb", tf::kVariant},
                         {"c_int_array", "integer[]", tf::kArray},
                         {"c_text_array", "text[]", tf::kArray},
                         {"c_point", "point", tf::kGeography}},
                        {"bigint", "character varying(80)", "text", "timestamp with time zone"},
                        "Refreshes daily_orders",
                        "cat_sales"};
  return f;
}

const Family& Mysql() {
  static const Family f{
      "mysql",
      "MYSQL",
      {{"c_tinyint", "tinyint(4)", tf::kNumber},
       {"c_smallint", "smallint(6)", tf::kNumber},
       {"c_int", "int(11)", tf::kNumber},
       {"c_bigint", "bigint(20) unsigned", tf::kNumber},
       {"c_decimal", "decimal(12,2)", tf::kNumber},
       {"c_float", "float", tf::kNumber},
       {"c_double", "double", tf::kNumber},
       {"c_varchar", "varchar(40)", tf::kText},
       {"c_char", "char(3)", tf::kText},
       {"c_text", "text", tf::kText},
       {"c_uuid", "uuid", tf::kText},
       {"c_enum", "enum('sad','ok','happy')", tf::kText},
       {"c_boolean", "tinyint(1)", tf::kLogical},
       {"c_datetime", "datetime", tf::kDatetime},
       {"c_timestamp", "timestamp", tf::kDatetime},
       {"c_date", "date", tf::kDate},
       {"c_time", "time", tf::kTime},
       {"c_blob", "blob", tf::kBinary},
       {"c_varbinary", "varbinary(16)", tf::kBinary},
       {"c_json", "longtext", tf::kText},  // MariaDB's json is longtext with a CHECK
       {"c_geometry", "geometry", tf::kGeography},
       {"c_point", "point", tf::kGeography}},
      {"bigint(20)", "varchar(80)", "text", "timestamp"},
      "Recomputes totals",
      "connreg_probe"};
  return f;
}

boost::json::object Details(const Family& f, const std::string& user) {
  return {{"host", "127.0.0.1"},
          {"port", std::stoi(Env("CONNREG_TEST_" + f.prefix + "_PORT"))},
          {"database", kDatabase},
          {"user", user}};
}

std::string Password(const Family& f, const std::string& user) {
  return Env("CONNREG_TEST_" + f.prefix + (user == kWriter ? "_WRITER" : "_READER") + "_PASSWORD");
}

class ProbeServerCatalog : public ::testing::TestWithParam<const Family*> {
 protected:
  void SetUp() override {
    ASSERT_FALSE(Env("CONNREG_TEST_" + GetParam()->prefix + "_PORT").empty())
        << "the test servers are not running: run `eval \"$(scripts/test-databases.sh start "
           "DIR)\"` first, or run through ctest";
  }
  const Family& family() const { return *GetParam(); }
  Listing ListAs(const std::string& user, CatalogRequest request = {},
                 std::size_t stop_after = SIZE_MAX) const {
    return Introspect(family().type, Details(family(), user), Password(family(), user),
                      std::move(request), stop_after);
  }
};

constexpr const char* kPassed = "connect:SUCCESS authenticate:SUCCESS query:SUCCESS";

TEST_P(ProbeServerCatalog, FullListingFindsTheSeededScopesTablesViewsAndProcedures) {
  Listing l = ListAs(kReader);
  ASSERT_EQ(l.steps, kPassed);
  for (const char* scope : {"cat_sales", "cat_types", "cat_empty", "Cat Mixed"}) {
    const WarehouseObject* s = l.Find({scope});
    ASSERT_NE(s, nullptr) << scope;
    EXPECT_EQ(s->kind, domain::inode_kind::kScope);
    EXPECT_TRUE(s->columns.empty());
  }
  EXPECT_EQ(l.Find({"cat_sales"})->comment, family().type == "postgres" ? "Sales data" : "");

  const WarehouseObject* customers = l.Find({"cat_sales", "customers"});
  ASSERT_NE(customers, nullptr);
  EXPECT_EQ(customers->kind, domain::inode_kind::kTable);
  EXPECT_EQ(customers->comment, "People who buy");
  ASSERT_EQ(l.ColumnNames(customers->path),
            (std::vector<std::string>{"id", "name", "email", "created_at"}));
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(customers->columns[i].warehouse_type, family().customers_types[i]) << i;
  }
  EXPECT_FALSE(customers->columns[0].nullable);
  EXPECT_FALSE(customers->columns[1].nullable);
  EXPECT_TRUE(customers->columns[2].nullable);
  EXPECT_EQ(customers->columns[2].comment, "Where receipts go");
  EXPECT_EQ(customers->columns[0].comment, "");

  const WarehouseObject* orders = l.Find({"cat_sales", "orders"});
  ASSERT_NE(orders, nullptr);
  EXPECT_EQ(orders->comment, "One row per order");
  // The column dropped from the postgres table is not there.
  EXPECT_EQ(l.ColumnNames(orders->path),
            (std::vector<std::string>{"id", "customer_id", "amount", "placed_on"}));
  EXPECT_EQ(orders->columns[2].comment, "In euros");

  const WarehouseObject* view = l.Find({"cat_sales", "order_totals"});
  ASSERT_NE(view, nullptr);
  EXPECT_EQ(view->kind, domain::inode_kind::kTable);
  EXPECT_EQ(l.ColumnNames(view->path), (std::vector<std::string>{"customer_id", "total"}));
  EXPECT_EQ(view->comment, family().type == "postgres" ? "Spend per customer" : "");

  const WarehouseObject* procedure = l.Find({"cat_sales", "refresh_totals"});
  ASSERT_NE(procedure, nullptr);
  EXPECT_EQ(procedure->kind, domain::inode_kind::kStoredProcedure);
  EXPECT_EQ(procedure->comment, family().procedure_comment);
  EXPECT_EQ(l.Find({"cat_sales", "order_count"}), nullptr) << "functions are not listed";

  ASSERT_NE(l.Find({"Cat Mixed", "Order Lines"}), nullptr);
  EXPECT_EQ(l.ColumnNames({"Cat Mixed", "Order Lines"}),
            (std::vector<std::string>{"Line No", "SKU"}));
  int in_empty = 0;
  for (const WarehouseObject& o : l.objects) in_empty += o.path.front() == "cat_empty";
  EXPECT_EQ(in_empty, 1) << "cat_empty holds nothing but itself";
}

TEST_P(ProbeServerCatalog, TypesAreAsTheServerPrintsThemAndMapToTheContractFamilies) {
  Listing l = ListAs(kReader);
  ASSERT_EQ(l.steps, kPassed);
  const WarehouseObject* t = l.Find({"cat_types", "all_types"});
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->columns.size(), family().all_types.size());
  for (std::size_t i = 0; i < t->columns.size(); ++i) {
    const auto& [name, printed, type_family] = family().all_types[i];
    EXPECT_EQ(t->columns[i].name, name);
    EXPECT_EQ(t->columns[i].warehouse_type, printed) << name;
    EXPECT_EQ(domain::TypeFamily(t->columns[i].warehouse_type), type_family) << printed;
  }
  EXPECT_EQ(t->columns[family().type == "postgres" ? 1 : 2].nullable, false);
  EXPECT_EQ(t->columns[0].nullable, true);
  const auto& comment_column = family().type == "postgres" ? t->columns[18] : t->columns[19];
  EXPECT_EQ(comment_column.comment, "Anything at all");
}

TEST_P(ProbeServerCatalog, SystemScopesAreLeftOutAndTheListingIsInPathKeyOrder) {
  Listing l = ListAs(kReader);
  ASSERT_EQ(l.steps, kPassed);
  ASSERT_GT(l.objects.size(), 10u);
  for (const WarehouseObject& o : l.objects) {
    EXPECT_FALSE(domain::IsSystemScope(o.path.front())) << o.path.front();
  }
  for (std::size_t i = 1; i < l.objects.size(); ++i) {
    EXPECT_LT(domain::PathKey(l.objects[i - 1].path), domain::PathKey(l.objects[i].path))
        << "object " << i << " (" << l.objects[i].path.back() << ")";
  }
  auto scopes = l.Scopes();
  // Byte order: upper case before lower case.
  ASSERT_GE(scopes.size(), 4u);
  EXPECT_EQ(scopes.front(), "Cat Mixed");
}

TEST_P(ProbeServerCatalog, APrefixNarrowsTheListingAndLevelsZeroGivesOneTable) {
  Listing scope = ListAs(kReader, {{"cat_sales"}, -1});
  ASSERT_EQ(scope.steps, kPassed);
  ASSERT_FALSE(scope.objects.empty());
  EXPECT_EQ(scope.objects.front().path, CatalogPath{"cat_sales"});
  for (const WarehouseObject& o : scope.objects) EXPECT_EQ(o.path.front(), "cat_sales");
  EXPECT_NE(scope.Find({"cat_sales", "customers"}), nullptr);

  Listing scopes_only = ListAs(kReader, {{}, 1});
  ASSERT_EQ(scopes_only.steps, kPassed);
  for (const WarehouseObject& o : scopes_only.objects) EXPECT_EQ(o.path.size(), 1u);
  EXPECT_NE(scopes_only.Find({"cat_empty"}), nullptr);

  Listing table = ListAs(kReader, {{"cat_sales", "customers"}, 0});
  ASSERT_EQ(table.steps, kPassed);
  ASSERT_EQ(table.objects.size(), 1u);
  EXPECT_EQ(table.objects[0].path, (CatalogPath{"cat_sales", "customers"}));
  EXPECT_EQ(table.objects[0].columns.size(), 4u);

  Listing scope_alone = ListAs(kReader, {{"cat_sales"}, 0});
  ASSERT_EQ(scope_alone.objects.size(), 1u);
  EXPECT_EQ(scope_alone.objects[0].kind, domain::inode_kind::kScope);

  // Names match exactly, also where the server's catalog compares without case (MySQL).
  Listing other_case = ListAs(kReader, {{"CAT_SALES", "Customers"}, 0});
  ASSERT_EQ(other_case.steps, kPassed);
  EXPECT_TRUE(other_case.objects.empty());
  Listing missing = ListAs(kReader, {{"cat_sales", "no_such_table"}, 0});
  ASSERT_EQ(missing.steps, kPassed);
  EXPECT_TRUE(missing.objects.empty());
}

// Runs `sql` as the writer through the server's own client library; true when it succeeded.
bool RunAsWriter(const Family& f, const std::string& sql) {
  const std::string port = Env("CONNREG_TEST_" + f.prefix + "_PORT");
  const std::string password = Password(f, kWriter);
  if (f.type == "postgres") {
    const char* keys[] = {"host", "port", "dbname", "user", "password", nullptr};
    const char* values[] = {"127.0.0.1", port.c_str(),     kDatabase,
                            kWriter,     password.c_str(), nullptr};
    PGconn* conn = PQconnectdbParams(keys, values, 0);
    PGresult* r = PQexec(conn, sql.c_str());
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    PQfinish(conn);
    return ok;
  }
  MYSQL* m = mysql_init(nullptr);
  bool ok = mysql_real_connect(m, "127.0.0.1", kWriter, password.c_str(), kDatabase,
                               std::stoi(port), nullptr, 0) &&
            mysql_query(m, sql.c_str()) == 0;
  mysql_close(m);
  return ok;
}

TEST_P(ProbeServerCatalog, ATableCreatedJustBeforeTheCallIsFound) {
  const std::string name = "fresh_" + std::to_string(::getpid());
  const std::string scope = family().scratch_scope;
  ASSERT_TRUE(RunAsWriter(family(), "CREATE TABLE " + scope + "." + name +
                                        " (id integer NOT NULL, label varchar(10))"));
  Listing l = ListAs(kReader, {{scope, name}, 0});
  Listing whole = ListAs(kReader);
  EXPECT_TRUE(RunAsWriter(family(), "DROP TABLE " + scope + "." + name));
  ASSERT_EQ(l.steps, kPassed);
  ASSERT_EQ(l.objects.size(), 1u);
  EXPECT_EQ(l.ColumnNames({scope, name}), (std::vector<std::string>{"id", "label"}));
  EXPECT_FALSE(l.objects[0].columns[0].nullable);
  EXPECT_NE(whole.Find({scope, name}), nullptr);
}

TEST_P(ProbeServerCatalog, WrongPasswordFailsAuthenticateWithAuthFailed) {
  const std::string real = Password(family(), kReader);
  const std::string wrong = "Wr0ng-" + real.substr(0, 6) + "-pw";
  Listing l =
      Introspect(family().type, Details(family(), kReader), wrong, CatalogRequest{}, SIZE_MAX);
  EXPECT_EQ(l.steps, "connect:SUCCESS authenticate:FAILED/auth_failed");
  EXPECT_TRUE(l.objects.empty());
}

TEST_P(ProbeServerCatalog, TheSinkSayingStopEndsTheListingEarly) {
  Listing l = ListAs(kReader, {}, /*stop_after=*/3);
  EXPECT_EQ(l.steps, kPassed);
  EXPECT_EQ(l.objects.size(), 3u);
  // The connection is not drained: a second listing right after works as usual.
  EXPECT_EQ(ListAs(kReader, {{"cat_empty"}, -1}).objects.size(), 1u);
}

TEST_P(ProbeServerCatalog, TheTlsServerIsListedOverVerifiedTls) {
  const std::string port = Env("CONNREG_TEST_" + family().prefix + "_TLS_PORT");
  const std::string dir = Env("CONNREG_TEST_TLS_DIR");
  ASSERT_FALSE(port.empty() || dir.empty()) << "the TLS servers are not running";
  std::ifstream in(dir + "/ca.pem");
  std::ostringstream ca;
  ca << in.rdbuf();
  boost::json::object details = Details(family(), kReader);
  details["host"] = "localhost";  // the name the certificate is made for
  details["port"] = std::stoi(port);
  details["useTls"] = true;
  details["tlsMode"] = "verify-full";
  details["tlsCaCert"] = ca.str();
  Listing l = Introspect(family().type, details, Password(family(), kReader),
                         {{"cat_sales", "customers"}, 0});
  EXPECT_EQ(l.steps, "connect:SUCCESS tls:SUCCESS authenticate:SUCCESS query:SUCCESS");
  ASSERT_EQ(l.objects.size(), 1u);
  EXPECT_EQ(l.objects[0].columns.size(), 4u);
}

INSTANTIATE_TEST_SUITE_P(ProbeServer, ProbeServerCatalog, ::testing::Values(&Postgres(), &Mysql()),
                         [](const auto& info) { return info.param->type; });

// Postgres only: what the reader may not use is left out, for the writer it is there.
TEST(ProbeServerCatalogPostgres, SchemasTheUserCannotUseAreLeftOutAndPartitionsAreNotListed) {
  REQUIRE_ENV(port, "CONNREG_TEST_PG_PORT");
  Listing reader =
      Introspect("postgres", Details(Postgres(), kReader), Password(Postgres(), kReader));
  Listing writer =
      Introspect("postgres", Details(Postgres(), kWriter), Password(Postgres(), kWriter));
  ASSERT_EQ(reader.steps, kPassed);
  ASSERT_EQ(writer.steps, kPassed);
  EXPECT_EQ(reader.Find({"cat_hidden"}), nullptr);
  EXPECT_EQ(reader.Find({"cat_hidden", "secret_plans"}), nullptr);
  EXPECT_NE(writer.Find({"cat_hidden", "secret_plans"}), nullptr);
  for (const Listing* l : {&reader, &writer}) {
    EXPECT_NE(l->Find({"cat_sales", "events"}), nullptr) << "the partitioned table";
    EXPECT_EQ(l->Find({"cat_sales", "events_2024"}), nullptr) << "its partition";
    EXPECT_NE(l->Find({"cat_sales", "daily_orders"}), nullptr) << "the materialized view";
    EXPECT_EQ(l->Find({"cat_sales", "invoice_numbers"}), nullptr) << "a sequence";
    EXPECT_EQ(l->Find({"cat_sales", "customers_pkey"}), nullptr) << "an index";
  }
}

}  // namespace
}  // namespace connreg::probe
