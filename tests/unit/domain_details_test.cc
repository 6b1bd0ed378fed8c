#include "domain/details.h"
#include "probe/drivers/registry.h"

#include <gtest/gtest.h>

#include <string>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace connreg::domain {
namespace {

boost::json::value J(std::string_view text) { return boost::json::parse(text); }

// The message of the 400 that `details` must produce; fails the test when it parses.
std::string BadValue(const boost::json::value& details, const std::set<std::string>& kept = {}) {
  auto r = ParseDetails(probe::Catalog(), details, kept);
  EXPECT_FALSE(r.ok()) << boost::json::serialize(details);
  if (r.ok()) return "<parsed>";
  EXPECT_EQ(r.error().code, ErrorCode::kBadRequest);
  return r.error().message;
}

std::string BadRequest(std::string_view text, const std::set<std::string>& kept = {}) {
  return BadValue(J(text), kept);
}

ParsedDetails Parsed(std::string_view text, const std::set<std::string>& kept = {}) {
  auto r = ParseDetails(probe::Catalog(), J(text), kept);
  EXPECT_TRUE(r.ok()) << text << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r).value() : ParsedDetails{};
}

// One valid `details` per warehouse type, with every secret it takes set to a value that an
// error message must never contain.
struct ValidCase {
  const char* type;
  const char* json;
  std::vector<std::string> secrets;
};

const std::vector<ValidCase>& ValidCases() {
  static const auto* cases = new std::vector<ValidCase>{
      {"postgres",
       R"({"type":"postgres","host":"db.example.com","database":"app","port":5432,"user":"u",
           "password":"pg-secret-1","useTls":true,"writeAccess":{"writeSchema":"w"}})",
       {"password"}},
      {"redshift",
       R"({"type":"redshift","host":"10.0.0.7","database":"dev","port":5439,"user":"u",
           "password":{"type":"plain","value":"rs-secret-2"}})",
       {"password"}},
      {"alloydb", R"({"type":"alloydb","host":"[::1]","database":"d"})", {}},
      {"mysql",
       R"({"type":"mysql","host":"mysql.internal","port":3306,"user":"root",
           "password":"my-secret-3","database":"shop","useTls":false,
           "writeAccess":{"writeSchema":"scratch"}})",
       {"password"}},
      {"snowflake",
       R"({"type":"snowflake","account":"tester","host":"testing.snowtest.com",
           "password":"","role":"A_ROLE","user":"THE_DEV","warehouse":"TEST_WAREHOUSE",
           "writeAccess":{"writeDatabase":"PUBLIC_API","writeSchema":"PUBLIC",
                          "materializationWarehouse":""},
           "userAttributes":{"role":"r","warehouse":"w"}})",
       {"password"}},
      {"bigQuery",
       R"({"type":"bigQuery","projectId":"p1","additionalProjectIds":["p2","p3"],
           "serviceAccount":"{\"type\":\"service_account\",\"private_key\":\"bq-secret-4\"}",
           "useOauth":false,"writeAccess":{"writeProject":"p1","writeDataset":"ds"}})",
       {"serviceAccount"}},
      {"databricks",
       R"({"type":"databricks","host":"dbc-1.cloud.databricks.com",
           "endpoint":"/sql/1.0/warehouses/abc","token":"dapi-secret-5",
           "workspaceUrl":"https://dbc-1.cloud.databricks.com/","catalog":"main",
           "writeAccess":{"writeCatalog":"main","writeSchema":"w"}})",
       {"token"}},
      {"starburst",
       R"({"type":"starburst","host":"sb.example.com","port":443,"user":"u",
           "password":"sb-secret-6","catalog":"hive","useTls":true,
           "writeAccess":{"writeCatalog":"hive","writeSchema":"w"}})",
       {"password"}},
      {"sqlserver",
       R"({"type":"sqlserver","server":"sql\\EXPRESS","port":1433,"user":"sa",
           "password":"ss-secret-7","useReadUncommittedIsolation":true,
           "writeAccess":{"writeDatabase":"d","writeSchema":"dbo"}})",
       {"password"}},
      {"azuresql",
       R"({"type":"azuresql","server":"x.database.windows.net","port":1433,"user":"sa",
           "password":"az-secret-8","database":"prod"})",
       {"password"}},
  };
  return *cases;
}

TEST(DomainDetails, TypeNamesAreExact) {
  // The list itself is the registry's (probe/drivers/registry.h), checked against
  // docs/openapi.json by probe_registry_test.cc.
  EXPECT_NE(probe::Catalog().Find("bigQuery"), nullptr);
  EXPECT_EQ(probe::Catalog().Find("bigquery"), nullptr);
  EXPECT_EQ(probe::Catalog().Find(""), nullptr);
}

TEST(DomainDetails, UnknownTypeListsEveryTypeOfTheCatalogue) {
  std::string expected = "details.type must be one of ";
  for (auto type : probe::Catalog().types()) {
    expected += std::string(type) + (type == probe::Catalog().types().back() ? "" : ", ");
  }
  EXPECT_EQ(BadRequest(R"({"type":"nope"})"), expected);
}

TEST(DomainDetails, SecretFieldsPerType) {
  EXPECT_TRUE(probe::Catalog().IsSecretField("postgres", "password"));
  EXPECT_TRUE(probe::Catalog().IsSecretField("snowflake", "privateKey"));
  EXPECT_TRUE(probe::Catalog().IsSecretField("snowflake", "privateKeyPassphrase"));
  EXPECT_TRUE(probe::Catalog().IsSecretField("bigQuery", "serviceAccount"));
  EXPECT_TRUE(probe::Catalog().IsSecretField("databricks", "token"));
  EXPECT_FALSE(probe::Catalog().IsSecretField("databricks", "password"));
  EXPECT_FALSE(probe::Catalog().IsSecretField("postgres", "user"));
  EXPECT_FALSE(probe::Catalog().IsSecretField("postgres", "token"));
  EXPECT_FALSE(probe::Catalog().IsSecretField("nope", "password"));
}

TEST(DomainDetails, EveryTypeAcceptsAValidBodyAndSeparatesSecrets) {
  for (const auto& c : ValidCases()) {
    SCOPED_TRACE(c.type);
    ParsedDetails p = Parsed(c.json);
    EXPECT_EQ(p.type, c.type);
    EXPECT_EQ(p.visible.at("type").as_string(), c.type);
    EXPECT_EQ(p.secret_changes.size(), c.secrets.size());
    for (const auto& s : c.secrets) {
      EXPECT_FALSE(p.visible.contains(s)) << s;
      ASSERT_TRUE(p.secret_changes.count(s)) << s;
      EXPECT_TRUE(p.secret_changes.at(s).has_value());
    }
    // Every non-secret field of the body is kept as given.
    const boost::json::value body = J(c.json);
    const auto& in = body.as_object();
    for (const auto& m : in) {
      if (probe::Catalog().IsSecretField(c.type, m.key())) continue;
      ASSERT_TRUE(p.visible.contains(m.key())) << m.key();
      EXPECT_EQ(p.visible.at(m.key()), m.value()) << m.key();
    }
    EXPECT_EQ(p.write_access, in.contains("writeAccess"));
  }
}

TEST(DomainDetails, PlainPasswordObjectBecomesItsValue) {
  auto p = Parsed(R"({"type":"redshift","host":"h","database":"d",
                      "password":{"type":"plain","value":"xyz"}})");
  EXPECT_EQ(p.secret_changes.at("password"), std::optional<std::string>("xyz"));
  EXPECT_FALSE(p.visible.contains("password"));
  auto empty = Parsed(R"({"type":"postgres","host":"h","database":"d","password":""})");
  EXPECT_EQ(empty.secret_changes.at("password"), std::optional<std::string>(""));
}

TEST(DomainDetails, NullSecretIsAClear) {
  auto p = Parsed(R"({"type":"postgres","host":"h","database":"d","password":null})");
  ASSERT_TRUE(p.secret_changes.count("password"));
  EXPECT_FALSE(p.secret_changes.at("password").has_value());
}

TEST(DomainDetails, BadPasswordShapes) {
  const std::string want =
      "details.password must be a string or {\"type\": \"plain\", \"value\": string}";
  for (const char* pw :
       {R"({"type":"hashed","value":"v"})", R"({"type":"plain"})", R"({"type":"plain","value":5})",
        R"({"type":"plain","value":"v","x":1})", "5", "true", "[\"a\"]"}) {
    SCOPED_TRACE(pw);
    std::string body =
        std::string(R"({"type":"postgres","host":"h","database":"d","password":)") + pw + "}";
    EXPECT_EQ(BadRequest(body), want);
  }
}

TEST(DomainDetails, DetailsAndTypeMustBeValid) {
  EXPECT_EQ(BadRequest("[]"), "details must be an object");
  EXPECT_EQ(BadRequest(R"("postgres")"), "details must be an object");
  EXPECT_EQ(BadRequest(R"({"host":"h"})"), "details.type is required");
  EXPECT_EQ(BadRequest(R"({"type":null})"), "details.type is required");
  EXPECT_EQ(BadRequest(R"({"type":"oracle"})").rfind("details.type must be one of postgres,", 0),
            0u);
  EXPECT_EQ(BadRequest(R"({"type":5})").rfind("details.type must be one of", 0), 0u);
}

TEST(DomainDetails, UnknownFieldIsNamedWithItsPath) {
  EXPECT_EQ(BadRequest(R"({"type":"postgres","hots":"h","host":"h","database":"d"})"),
            "details.hots is not a field of a postgres connection");
  // A field of another type is still unknown here.
  EXPECT_EQ(BadRequest(R"({"type":"postgres","host":"h","database":"d","token":"t"})"),
            "details.token is not a field of a postgres connection");
  EXPECT_EQ(BadRequest(R"({"type":"mysql","host":"h","port":1,"user":"u","password":"p",
                           "useOauth":true})"),
            "details.useOauth is not a field of a mysql connection");
  EXPECT_EQ(BadRequest(R"({"type":"postgres","host":"h","database":"d",
                           "writeAccess":{"writeSchema":"s","writeDatabase":"x"}})"),
            "details.writeAccess.writeDatabase is not a field of a postgres connection");
  EXPECT_EQ(BadRequest(R"({"type":"snowflake","account":"a","useOauth":true,
                           "userAttributes":{"rol":"r"}})"),
            "details.userAttributes.rol is not a field of a snowflake connection");
}

TEST(DomainDetails, FirstBadValueIsTheOneReported) {
  EXPECT_EQ(BadRequest(R"({"type":"postgres","port":0,"hots":"h"})"),
            "details.port must be an integer from 1 to 65535");
  EXPECT_EQ(BadRequest(R"({"type":"postgres","hots":"h","port":0})"),
            "details.hots is not a field of a postgres connection");
}

TEST(DomainDetails, RequiredFieldsPerType) {
  EXPECT_EQ(BadRequest(R"({"type":"postgres","host":"h"})"), "details.database is required");
  EXPECT_EQ(BadRequest(R"({"type":"redshift","database":"d"})"), "details.host is required");
  // mysql has no default port.
  EXPECT_EQ(BadRequest(R"({"type":"mysql","host":"h","user":"u","password":"p"})"),
            "details.port is required");
  EXPECT_EQ(BadRequest(R"({"type":"mysql","host":"h","port":3306,"user":"u"})"),
            "details.password is required");
  EXPECT_EQ(BadRequest(R"({"type":"mysql","host":"h","port":3306,"user":"u","password":null})"),
            "details.password is required");
  EXPECT_EQ(BadRequest(R"({"type":"bigQuery"})"), "details.projectId is required");
  EXPECT_EQ(BadRequest(R"({"type":"databricks","host":"h","token":"t"})"),
            "details.endpoint is required");
  EXPECT_EQ(BadRequest(R"({"type":"starburst","host":"h","port":8080,"password":"p"})"),
            "details.user is required");
  EXPECT_EQ(BadRequest(R"({"type":"sqlserver","port":1433,"user":"u","password":"p"})"),
            "details.server is required");
  // database is optional for sqlserver but required for azuresql.
  Parsed(R"({"type":"sqlserver","server":"s","port":1433,"user":"u","password":"p"})");
  EXPECT_EQ(BadRequest(R"({"type":"azuresql","server":"s","port":1433,"user":"u",
                           "password":"p"})"),
            "details.database is required");
  // A null required field is missing.
  EXPECT_EQ(BadRequest(R"({"type":"postgres","host":"h","database":null})"),
            "details.database is required");
}

TEST(DomainDetails, NullOptionalFieldIsAbsent) {
  auto p = Parsed(R"({"type":"postgres","host":"h","database":"d","port":null,
                      "writeAccess":null})");
  EXPECT_FALSE(p.visible.contains("port"));
  EXPECT_FALSE(p.visible.contains("writeAccess"));
  EXPECT_FALSE(p.write_access);
}

TEST(DomainDetails, WriteAccessFieldsAreRequiredWhenGiven) {
  EXPECT_EQ(BadRequest(R"({"type":"postgres","host":"h","database":"d","writeAccess":{}})"),
            "details.writeAccess.writeSchema is required");
  EXPECT_EQ(BadRequest(R"({"type":"bigQuery","projectId":"p",
                           "writeAccess":{"writeProject":"p"}})"),
            "details.writeAccess.writeDataset is required");
  EXPECT_EQ(BadRequest(R"({"type":"databricks","host":"h","endpoint":"e","token":"t",
                           "writeAccess":{"writeSchema":"s"}})"),
            "details.writeAccess.writeCatalog is required");
  EXPECT_EQ(BadRequest(R"({"type":"sqlserver","server":"s","port":1,"user":"u","password":"p",
                           "writeAccess":{"writeDatabase":"d"}})"),
            "details.writeAccess.writeSchema is required");
  EXPECT_EQ(BadRequest(R"({"type":"postgres","host":"h","database":"d","writeAccess":"s"})"),
            "details.writeAccess must be an object");
  EXPECT_EQ(BadRequest(R"({"type":"postgres","host":"h","database":"d",
                           "writeAccess":{"writeSchema":7}})"),
            "details.writeAccess.writeSchema must be a string");
}

TEST(DomainDetails, SnowflakeWriteAccessShapes) {
  const std::string base = R"({"type":"snowflake","account":"a","useOauth":true,"writeAccess":)";
  auto full = Parsed(base + R"({"writeDatabase":"d","writeSchema":"s"}})");
  EXPECT_TRUE(full.write_access);
  auto mat = Parsed(base + R"({"materializationWarehouse":"m"}})");
  EXPECT_TRUE(mat.write_access);
  EXPECT_EQ(mat.visible.at("writeAccess").at("materializationWarehouse").as_string(), "m");
  EXPECT_EQ(BadRequest(base + R"({"writeDatabase":"d","materializationWarehouse":"m"}})"),
            "details.writeAccess.writeSchema is required");
  EXPECT_EQ(BadRequest(base + R"({"writeSchema":"s"}})"),
            "details.writeAccess.writeDatabase is required");
  EXPECT_EQ(BadRequest(base + "{}}"), "details.writeAccess.writeDatabase is required");
}

TEST(DomainDetails, WrongJsonTypes) {
  EXPECT_EQ(BadRequest(R"({"type":"postgres","host":"h","database":5})"),
            "details.database must be a string");
  EXPECT_EQ(BadRequest(R"({"type":"postgres","host":"h","database":"d","useTls":"true"})"),
            "details.useTls must be a boolean");
  EXPECT_EQ(BadRequest(R"({"type":"bigQuery","projectId":"p","additionalProjectIds":"p2"})"),
            "details.additionalProjectIds must be an array of strings");
  EXPECT_EQ(BadRequest(R"({"type":"bigQuery","projectId":"p","additionalProjectIds":["a",2]})"),
            "details.additionalProjectIds[1] must be a string");
  EXPECT_EQ(BadRequest(R"({"type":"databricks","host":"h","endpoint":"e","token":42})"),
            "details.token must be a string or null");
  EXPECT_EQ(BadRequest(R"({"type":"bigQuery","projectId":"p","useOauth":"yes"})"),
            "details.useOauth must be a boolean");
}

TEST(DomainDetails, Ports) {
  const std::string want = "details.port must be an integer from 1 to 65535";
  for (const char* port :
       {"0", "65536", "-1", "\"5432\"", "5432.0", "5432.5", "true", "18446744073709551615"}) {
    SCOPED_TRACE(port);
    EXPECT_EQ(BadRequest(std::string(R"({"type":"postgres","host":"h","database":"d","port":)") +
                         port + "}"),
              want);
  }
  for (const char* port : {"1", "65535"}) {
    auto p = Parsed(std::string(R"({"type":"mysql","host":"h","user":"u","password":"p","port":)") +
                    port + "}");
    EXPECT_EQ(boost::json::serialize(p.visible.at("port")), port);
  }
}

TEST(DomainDetails, Hosts) {
  for (const char* host :
       {"db.example.com", "10.1.2.3", "::1", "[fe80::1]", "my-host_1", "host.example.com:5432"}) {
    SCOPED_TRACE(host);
    boost::json::value d = J(R"({"type":"postgres","database":"d"})");
    d.as_object()["host"] = host;
    EXPECT_TRUE(ParseDetails(probe::Catalog(), d).ok());
  }
  for (const char* host : {"", "db example.com", "db/x", "db?x=1", "a=b", "user@db", "db#x",
                           "db\nx", "db\x7fx", "d\xc3\xa9.example.com", "db\tx"}) {
    SCOPED_TRACE(host);
    boost::json::value d = J(R"({"type":"postgres","database":"d"})");
    d.as_object()["host"] = host;
    EXPECT_EQ(BadValue(d), "details.host must be a host name or IP address");
  }
  EXPECT_EQ(BadRequest(R"({"type":"sqlserver","server":"a b","port":1,"user":"u",
                           "password":"p"})"),
            "details.server must be a host name or IP address");
  EXPECT_EQ(BadRequest(R"({"type":"snowflake","account":"a","useOauth":true,"server":"x/y"})"),
            "details.server must be a host name or IP address");
  EXPECT_EQ(BadRequest(R"({"type":"postgres","host":5,"database":"d"})"),
            "details.host must be a host name or IP address");
}

// Issue 18, finding 7: the snowflake account is pasted into <account>.snowflakecomputing.com, so
// it holds only what a host name label sequence may.
TEST(DomainDetails, Finding7SnowflakeAccountIsValidatedLikeAHost) {
  for (const std::string account :
       {"acme/x", "a?b=c", "user@acme", "a b", "a\nb", "a#b", "a:443", "", "acme\u00e9"}) {
    SCOPED_TRACE(account);
    boost::json::value d = J(R"({"type":"snowflake","useOauth":true})");
    d.as_object()["account"] = account;
    EXPECT_EQ(BadValue(d),
              "details.account must be a Snowflake account identifier (letters, digits, '-', '_' "
              "and '.')");
  }
  for (const char* account : {"acme-xy12345", "xy12345.us-east-1.aws", "org_acct-1", "ACME"}) {
    boost::json::value d = J(R"({"type":"snowflake","useOauth":true})");
    d.as_object()["account"] = account;
    EXPECT_TRUE(ParseDetails(probe::Catalog(), d).ok()) << account;
  }
}

TEST(DomainDetails, StringLengthLimits) {
  boost::json::value d = J(R"({"type":"postgres","host":"h"})");
  d.as_object()["database"] = std::string(4096, 'd');
  EXPECT_TRUE(ParseDetails(probe::Catalog(), d).ok());
  // Characters, not bytes: 4096 two-byte characters are fine.
  std::string wide;
  for (int i = 0; i < 4096; ++i) wide += "\xc3\xa9";
  d.as_object()["database"] = wide;
  EXPECT_TRUE(ParseDetails(probe::Catalog(), d).ok());
  d.as_object()["database"] = std::string(4097, 'd');
  EXPECT_EQ(BadValue(d), "details.database must be at most 4096 characters");

  d.as_object()["database"] = "d";
  d.as_object()["password"] = std::string(4097, 'p');
  std::string message = BadValue(d);
  EXPECT_EQ(message, "details.password must be at most 4096 characters");
  EXPECT_EQ(message.find("pppp"), std::string::npos);

  // privateKey and serviceAccount may be up to 64 KiB.
  boost::json::value sf = J(R"({"type":"snowflake","account":"a","user":"u"})");
  sf.as_object()["privateKey"] = std::string(64 * 1024, 'k');
  EXPECT_TRUE(ParseDetails(probe::Catalog(), sf).ok());
  sf.as_object()["privateKey"] = std::string(64 * 1024 + 1, 'k');
  EXPECT_EQ(BadValue(sf), "details.privateKey must be at most 64 KiB");

  boost::json::value bq = J(R"({"type":"bigQuery","projectId":"p"})");
  std::string key = R"({"k":")" + std::string(5000, 'x') + R"("})";
  bq.as_object()["serviceAccount"] = key;
  EXPECT_TRUE(ParseDetails(probe::Catalog(), bq).ok());
  bq.as_object()["serviceAccount"] = R"({"k":")" + std::string(64 * 1024, 'x') + R"("})";
  EXPECT_EQ(BadValue(bq), "details.serviceAccount must be a service-account key as a JSON string");
}

TEST(DomainDetails, ServiceAccountMustBeAJsonObjectInAString) {
  const std::string want = "details.serviceAccount must be a service-account key as a JSON string";
  for (const char* sa : {R"("not json at all")", R"("[1,2]")", R"("\"str\"")", R"({"a":1})", "7"}) {
    SCOPED_TRACE(sa);
    std::string message = BadRequest(
        std::string(R"({"type":"bigQuery","projectId":"p","serviceAccount":)") + sa + "}");
    EXPECT_EQ(message, want);
    EXPECT_EQ(message.find("not json"), std::string::npos);
  }
  auto cleared = Parsed(R"({"type":"bigQuery","projectId":"p","serviceAccount":null})");
  EXPECT_FALSE(cleared.secret_changes.at("serviceAccount").has_value());
  auto oauth = Parsed(R"({"type":"bigQuery","projectId":"p","useOauth":true})");
  EXPECT_TRUE(oauth.use_oauth);
}

TEST(DomainDetails, SnowflakeNeedsAccountOrHost) {
  EXPECT_EQ(BadRequest(R"({"type":"snowflake","user":"u","password":"p"})"),
            "details.account or details.host is required");
  Parsed(R"({"type":"snowflake","host":"x.snowflakecomputing.com","user":"u","password":"p"})");
  Parsed(R"({"type":"snowflake","account":"x","user":"u","password":"p"})");
}

TEST(DomainDetails, SnowflakeLogins) {
  auto basic = Parsed(R"({"type":"snowflake","account":"a","user":"u","password":"p",
                          "authType":"basic-auth"})");
  EXPECT_FALSE(basic.use_oauth);
  auto key = Parsed(R"({"type":"snowflake","account":"a","user":"u","privateKey":"k",
                        "privateKeyPassphrase":"pp","authType":"key-pair"})");
  EXPECT_EQ(key.secret_changes.size(), 2u);
  auto oauth = Parsed(R"({"type":"snowflake","account":"a","useOauth":true,"authType":"oauth"})");
  EXPECT_TRUE(oauth.use_oauth);
  EXPECT_EQ(oauth.visible.at("useOauth"), true);

  EXPECT_EQ(BadRequest(R"({"type":"snowflake","account":"a","user":"u"})")
                .rfind("details.password is required", 0),
            0u);
  EXPECT_EQ(BadRequest(R"({"type":"snowflake","account":"a","useOauth":false,"user":"u"})")
                .rfind("details.password is required", 0),
            0u);
  EXPECT_EQ(BadRequest(R"({"type":"snowflake","account":"a","password":"p"})"),
            "details.user is required");
  EXPECT_EQ(BadRequest(R"({"type":"snowflake","account":"a","privateKey":"k"})"),
            "details.user is required");
  EXPECT_EQ(BadRequest(R"({"type":"snowflake","account":"a","user":"u","authType":"key-pair"})"),
            "details.privateKey is required");
  EXPECT_EQ(BadRequest(R"({"type":"snowflake","account":"a","user":"u","password":"p",
                           "privateKeyPassphrase":"pp"})"),
            "details.privateKeyPassphrase needs details.privateKey; send "
            "\"privateKeyPassphrase\": null to drop it");
}

TEST(DomainDetails, SnowflakeTwoLoginsAskToDropTheOther) {
  std::string m = BadRequest(R"({"type":"snowflake","account":"a","user":"u",
                                 "password":"pw-value-1","privateKey":"key-value-2"})");
  EXPECT_NE(m.find("one login"), std::string::npos) << m;
  EXPECT_NE(m.find(": null to drop it"), std::string::npos) << m;
  EXPECT_EQ(m.find("pw-value-1"), std::string::npos);
  EXPECT_EQ(m.find("key-value-2"), std::string::npos);

  // authType names the login to keep.
  EXPECT_EQ(BadRequest(R"({"type":"snowflake","account":"a","user":"u","password":"p",
                           "privateKey":"k","authType":"key-pair"})"),
            "details.password conflicts with details.privateKey (a snowflake connection has one "
            "login); send \"password\": null to drop it");
  // A stored password the request leaves untouched still counts: switching to key-pair without
  // clearing it is two logins.
  EXPECT_EQ(
      BadRequest(R"({"type":"snowflake","account":"a","user":"u","privateKey":"k"})", {"password"}),
      "details.password conflicts with details.privateKey (a snowflake connection has one "
      "login); send \"password\": null to drop it");
  // Sending it as null resolves it.
  auto switched = Parsed(R"({"type":"snowflake","account":"a","user":"u","privateKey":"k",
                             "password":null})");
  EXPECT_FALSE(switched.secret_changes.at("password").has_value());
  EXPECT_EQ(BadRequest(R"({"type":"snowflake","account":"a","useOauth":true})", {"password"}),
            "details.password conflicts with details.useOauth (a snowflake connection has one "
            "login); send \"password\": null to drop it");
  EXPECT_EQ(BadRequest(R"({"type":"snowflake","account":"a","user":"u","password":"p",
                           "useOauth":true,"authType":"basic-auth"})"),
            "details.useOauth conflicts with details.password (a snowflake connection has one "
            "login); remove \"useOauth\" or set it to false");
}

TEST(DomainDetails, SnowflakeKeptSecretCountsAsSet) {
  auto p = Parsed(R"({"type":"snowflake","account":"a","user":"u"})", {"password"});
  EXPECT_TRUE(p.secret_changes.empty());
  auto k = Parsed(R"({"type":"snowflake","account":"a","user":"u","authType":"key-pair"})",
                  {"privateKey", "privateKeyPassphrase"});
  EXPECT_TRUE(k.secret_changes.empty());
}

TEST(DomainDetails, SnowflakeAuthTypeMustAgree) {
  EXPECT_EQ(BadRequest(R"({"type":"snowflake","account":"a","user":"u","password":"p",
                           "authType":"key-pair"})"),
            "details.authType is key-pair but the login is user and password");
  EXPECT_EQ(BadRequest(R"({"type":"snowflake","account":"a","useOauth":true,
                           "authType":"basic-auth"})"),
            "details.authType is basic-auth but the login is useOauth: true");
  EXPECT_EQ(BadRequest(R"({"type":"snowflake","account":"a","user":"u","privateKey":"k",
                           "authType":"oauth"})"),
            "details.authType is oauth but the login is user and privateKey");
  EXPECT_EQ(BadRequest(R"({"type":"snowflake","account":"a","user":"u","password":"p",
                           "authType":"password"})"),
            "details.authType must be one of basic-auth, key-pair, oauth");
  EXPECT_EQ(BadRequest(R"({"type":"snowflake","account":"a","user":"u","authType":"oauth"})"),
            "details.useOauth must be true when details.authType is oauth");
}

TEST(DomainDetails, DatabricksTokenOrOauth) {
  auto t = Parsed(R"({"type":"databricks","host":"h","endpoint":"e","token":"t"})");
  EXPECT_FALSE(t.use_oauth);
  EXPECT_EQ(t.secret_changes.at("token"), std::optional<std::string>("t"));
  auto o = Parsed(R"({"type":"databricks","host":"h","endpoint":"e","useOauth":true})");
  EXPECT_TRUE(o.use_oauth);
  EXPECT_TRUE(o.secret_changes.empty());
  EXPECT_EQ(BadRequest(R"({"type":"databricks","host":"h","endpoint":"e"})")
                .rfind("details.token is required", 0),
            0u);
  EXPECT_EQ(BadRequest(R"({"type":"databricks","host":"h","endpoint":"e","useOauth":false})")
                .rfind("details.token is required", 0),
            0u);
  std::string both = BadRequest(
      R"({"type":"databricks","host":"h","endpoint":"e","token":"dapi-zzz","useOauth":true})");
  EXPECT_EQ(both,
            "details.useOauth conflicts with details.token (a databricks connection has one "
            "login); remove \"useOauth\" or set it to false");
  EXPECT_EQ(
      BadRequest(R"({"type":"databricks","host":"h","endpoint":"e","useOauth":true})", {"token"}),
      "details.token conflicts with details.useOauth (a databricks connection has one "
      "login); send \"token\": null to drop it");
  // Kept token satisfies the login.
  Parsed(R"({"type":"databricks","host":"h","endpoint":"e"})", {"token"});
}

TEST(DomainDetails, StarburstDefaultsAreNotAdded) {
  auto p = Parsed(R"({"type":"starburst","host":"h","port":8443,"user":"u","password":"p"})");
  EXPECT_FALSE(p.visible.contains("useTls"));
  auto pg = Parsed(R"({"type":"redshift","host":"h","database":"d"})");
  EXPECT_FALSE(pg.visible.contains("port"));
}

TEST(DomainDetails, NoErrorMessageContainsASecretValue) {
  const std::string secret = "TOP-SECRET-VALUE-9f2c";
  // Each body is invalid somewhere while carrying the secret.
  const std::vector<std::string> bodies = {
      R"({"type":"postgres","host":"h","database":"d","password":")" + secret + R"(","x":1})",
      R"({"type":"postgres","host":"h","database":"d","password":{"type":"bogus","value":")" +
          secret + R"("}})",
      R"({"type":"postgres","host":"h","database":"d","password":{"type":"plain","value":")" +
          secret + R"(","extra":")" + secret + R"("}})",
      R"({"type":"mysql","host":"h","user":"u","password":")" + secret + R"("})",
      R"({"type":"snowflake","account":"a","user":"u","password":")" + secret +
          R"(","privateKey":")" + secret + R"("})",
      R"({"type":"snowflake","account":"a","user":"u","privateKey":")" + secret +
          R"(","authType":"basic-auth"})",
      R"({"type":"snowflake","account":"a","privateKeyPassphrase":")" + secret + R"("})",
      R"({"type":"bigQuery","projectId":"p","serviceAccount":")" + secret + R"("})",
      R"({"type":"databricks","host":"h","endpoint":"e","token":")" + secret +
          R"(","useOauth":true})",
      R"({"type":"starburst","host":"h b","port":1,"user":"u","password":")" + secret + R"("})",
      R"({"type":"azuresql","server":"s","port":1,"user":"u","password":")" + secret + R"("})",
  };
  for (const auto& body : bodies) {
    SCOPED_TRACE(body);
    std::string message = BadRequest(body);
    EXPECT_NE(message, "<parsed>");
    EXPECT_EQ(message.find(secret), std::string::npos) << message;
    EXPECT_EQ(message.find("SECRET"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace connreg::domain
