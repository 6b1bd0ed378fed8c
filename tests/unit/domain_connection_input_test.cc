#include "domain/connection_input.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <memory>
#include <string>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "crypto/random.h"
#include "crypto/sodium_sealer.h"
#include "probe/drivers/registry.h"

namespace connreg::domain {
namespace {

boost::json::value J(std::string_view text) { return boost::json::parse(text); }

constexpr TimeMs kCreated = 1655928427899;
constexpr TimeMs kLater = kCreated + 60'000;
const char kId[] = "0b0e2f7a-1111-4222-8333-444455556666";

class DomainConnectionInput : public ::testing::Test {
 protected:
  DomainConnectionInput() : sealer_(crypto::Keyring{MakeKey(), {}}) {}

  static std::shared_ptr<const crypto::MasterKey> MakeKey() {
    crypto::EnsureSodium();
    std::string raw(crypto::MasterKey::kBytes, '\0');
    randombytes_buf(raw.data(), raw.size());
    return std::make_shared<const crypto::MasterKey>(raw);
  }

  Result<Connection> Create(std::string_view body) {
    return BuildNewConnection(probe::Catalog(), J(body), actor_, kCreated, kId, sealer_);
  }

  Connection MustCreate(std::string_view body) {
    auto c = Create(body);
    EXPECT_TRUE(c.ok()) << body << ": " << (c.ok() ? "" : c.error().message);
    return c.ok() ? std::move(c).value() : Connection{};
  }

  std::string CreateError(std::string_view body) { return ErrorOf(Create(body)); }

  static std::string ErrorOf(const Result<Connection>& r) {
    EXPECT_FALSE(r.ok());
    if (r.ok()) return "<ok>";
    EXPECT_EQ(r.error().code, ErrorCode::kBadRequest);
    return r.error().message;
  }

  std::string Open(const Connection& c, const std::string& field) {
    auto it = c.secrets.find(field);
    EXPECT_NE(it, c.secrets.end()) << field;
    if (it == c.secrets.end()) return "<absent>";
    auto plain = sealer_.Open(c.connection_id, field, it->second);
    EXPECT_TRUE(plain.ok());
    return plain.ok() ? *plain : "<unopenable>";
  }

  // A body with a given name fragment, for the name rules.
  Result<Connection> CreateNamed(const std::string& name) {
    boost::json::object body{{"name", name},
                             {"details", J(R"({"type":"alloydb","host":"h","database":"d"})")}};
    return BuildNewConnection(probe::Catalog(), body, actor_, kCreated, kId, sealer_);
  }

  Actor actor_{"org-1", "member-1"};
  Actor editor_{"org-1", "member-2"};
  crypto::SodiumSealer sealer_;
};

const char kPostgres[] =
    R"({"name":"  Warehouse  ","description":{"team":"bi"},"timeoutSecs":120,
        "useFriendlyNames":false,
        "details":{"type":"postgres","host":"db.example.com","database":"app","port":5432,
                   "user":"u","password":"pg-pass-1","writeAccess":{"writeSchema":"w"}}})";

TEST_F(DomainConnectionInput, CreateFillsEveryField) {
  Connection c = MustCreate(kPostgres);
  EXPECT_EQ(c.organization_id, "org-1");
  EXPECT_EQ(c.connection_id, kId);
  EXPECT_EQ(c.name, "Warehouse");
  EXPECT_EQ(c.type, "postgres");
  EXPECT_FALSE(c.is_sample);
  EXPECT_FALSE(c.is_archived);
  EXPECT_FALSE(c.use_oauth);
  EXPECT_TRUE(c.write_access);
  EXPECT_FALSE(c.use_friendly_names);
  EXPECT_EQ(c.timeout_secs, 120);
  EXPECT_EQ(c.created_by, "member-1");
  EXPECT_EQ(c.updated_by, "member-1");
  EXPECT_EQ(c.created_at, kCreated);
  EXPECT_EQ(c.updated_at, kCreated);
  EXPECT_EQ(c.last_active_at, kCreated);
  EXPECT_EQ(c.version, 1);
  ASSERT_TRUE(c.description.has_value());
  EXPECT_EQ(c.description->at("team").as_string(), "bi");
  EXPECT_FALSE(c.details.contains("password"));
  EXPECT_EQ(c.details.at("host").as_string(), "db.example.com");
  EXPECT_EQ(c.details.at("type").as_string(), "postgres");
  EXPECT_FALSE(c.last_test.has_value());

  ASSERT_EQ(c.secrets.size(), 1u);
  const StoredSecret& s = c.secrets.at("password");
  EXPECT_EQ(s.updated_at, kCreated);
  EXPECT_EQ(s.key_id, sealer_.current_key_id());
  EXPECT_EQ(s.sealed.find("pg-pass-1"), std::string::npos);
  EXPECT_EQ(Open(c, "password"), "pg-pass-1");
  // Bound to its connection and field.
  EXPECT_FALSE(sealer_.Open("other-id", "password", s).ok());
  EXPECT_FALSE(sealer_.Open(kId, "token", s).ok());
}

TEST_F(DomainConnectionInput, CreateDefaults) {
  Connection c =
      MustCreate(R"({"name":"n","details":{"type":"snowflake","account":"a","useOauth":true}})");
  EXPECT_TRUE(c.use_friendly_names);
  EXPECT_FALSE(c.timeout_secs.has_value());
  EXPECT_FALSE(c.description.has_value());
  EXPECT_TRUE(c.use_oauth);
  EXPECT_FALSE(c.write_access);
  EXPECT_TRUE(c.secrets.empty());
}

TEST_F(DomainConnectionInput, CreateEveryTypeSealsItsSecrets) {
  struct Case {
    const char* details;
    const char* secret_field;  // nullptr: none
    const char* secret_value;
  };
  const Case cases[] = {
      {R"({"type":"postgres","host":"h","database":"d","password":"v1"})", "password", "v1"},
      {R"({"type":"redshift","host":"h","database":"d",
           "password":{"type":"plain","value":"v2"}})",
       "password", "v2"},
      {R"({"type":"alloydb","host":"h","database":"d"})", nullptr, nullptr},
      {R"({"type":"mysql","host":"h","port":3306,"user":"u","password":"v4"})", "password", "v4"},
      {R"({"type":"snowflake","account":"a","user":"u","privateKey":"v5"})", "privateKey", "v5"},
      {R"({"type":"bigQuery","projectId":"p","serviceAccount":"{\"type\":\"service_account\"}"})",
       "serviceAccount", R"({"type":"service_account"})"},
      {R"({"type":"databricks","host":"h","endpoint":"/sql/1","token":"v7"})", "token", "v7"},
      {R"({"type":"starburst","host":"h","port":443,"user":"u","password":"v8"})", "password",
       "v8"},
      {R"({"type":"sqlserver","server":"s","port":1433,"user":"u","password":"v9"})", "password",
       "v9"},
      {R"({"type":"azuresql","server":"s","port":1433,"user":"u","password":"v10",
           "database":"d"})",
       "password", "v10"},
  };
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.details);
    boost::json::object body{{"name", "n"}, {"details", J(tc.details)}};
    auto c = BuildNewConnection(probe::Catalog(), body, actor_, kCreated, kId, sealer_);
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_EQ(c->type, J(tc.details).at("type").as_string());
    if (tc.secret_field == nullptr) {
      EXPECT_TRUE(c->secrets.empty());
      continue;
    }
    EXPECT_EQ(c->secrets.size(), 1u);
    EXPECT_FALSE(c->details.contains(tc.secret_field));
    EXPECT_EQ(Open(*c, tc.secret_field), tc.secret_value);
  }
}

TEST_F(DomainConnectionInput, NullSecretOnCreateIsNotSet) {
  Connection c = MustCreate(
      R"({"name":"n","details":{"type":"postgres","host":"h","database":"d","password":null}})");
  EXPECT_TRUE(c.secrets.empty());
  EXPECT_EQ(CreateError(R"({"name":"n","details":{"type":"mysql","host":"h","port":1,"user":"u",
                                                  "password":null}})"),
            "details.password is required");
}

TEST_F(DomainConnectionInput, BodyShape) {
  EXPECT_EQ(CreateError("[]"), "the request body must be a JSON object");
  EXPECT_EQ(CreateError("null"), "the request body must be a JSON object");
  EXPECT_EQ(CreateError(R"({"name":"n"})"), "details is required");
  EXPECT_EQ(CreateError(R"({"name":"n","details":null})"), "details is required");
  EXPECT_EQ(CreateError(R"({"details":{"type":"alloydb","host":"h","database":"d"}})"),
            "name is required");
  EXPECT_EQ(CreateError(R"({"name":"n","details":[]})"), "details must be an object");
  EXPECT_EQ(CreateError(R"({"name":"n","restore":true,
                            "details":{"type":"alloydb","host":"h","database":"d"}})"),
            "restore is not a field of this request");
  EXPECT_EQ(CreateError(R"({"name":"n","nmae":"x",
                            "details":{"type":"alloydb","host":"h","database":"d"}})"),
            "nmae is not a field of this request");
  EXPECT_EQ(CreateError(R"({"name":"n","details":{"type":"postgres","hots":"h"}})"),
            "details.hots is not a field of a postgres connection");
}

TEST_F(DomainConnectionInput, NameRules) {
  auto ok = [&](const std::string& name) {
    auto c = CreateNamed(name);
    EXPECT_TRUE(c.ok()) << name;
    return c.ok() ? c->name : std::string("<error>");
  };
  auto bad = [&](const std::string& name) { return ErrorOf(CreateNamed(name)); };

  EXPECT_EQ(ok("\t  sales dw \r\n"), "sales dw");
  EXPECT_EQ(ok(std::string(255, 'a')), std::string(255, 'a'));
  EXPECT_EQ(ok("  " + std::string(255, 'a') + "  "), std::string(255, 'a'));
  EXPECT_EQ(bad(std::string(256, 'a')),
            "name must be 1 to 255 characters after trimming whitespace");

  // Characters are code points, not bytes.
  std::string e255, e256, emoji255;
  for (int i = 0; i < 255; ++i) e255 += "\xc3\xa9";
  e256 = e255 + "\xc3\xa9";
  for (int i = 0; i < 255; ++i) emoji255 += "\xf0\x9f\x98\x80";
  EXPECT_EQ(ok(e255), e255);
  EXPECT_EQ(ok(emoji255), emoji255);
  EXPECT_EQ(bad(e256), "name must be 1 to 255 characters after trimming whitespace");
  EXPECT_EQ(bad(emoji255 + "x"), "name must be 1 to 255 characters after trimming whitespace");

  EXPECT_EQ(bad(""), "name must be 1 to 255 characters after trimming whitespace");
  EXPECT_EQ(bad(" \t\n "), "name must be 1 to 255 characters after trimming whitespace");
  EXPECT_EQ(bad("a\tb"), "name must not contain control characters");
  EXPECT_EQ(bad(std::string("a\0b", 3)), "name must not contain control characters");
  EXPECT_EQ(bad("a\x7f"), "name must not contain control characters");
  EXPECT_EQ(bad("a\x1b[31m"), "name must not contain control characters");

  EXPECT_EQ(CreateError(R"({"name":5,"details":{"type":"alloydb","host":"h","database":"d"}})"),
            "name must be a string");
  EXPECT_EQ(CreateError(R"({"name":null,"details":{"type":"alloydb","host":"h","database":"d"}})"),
            "name must be a string");
}

TEST_F(DomainConnectionInput, DescriptionRules) {
  auto with_description = [&](boost::json::value description) {
    boost::json::object body{{"name", "n"},
                             {"details", J(R"({"type":"alloydb","host":"h","database":"d"})")},
                             {"description", std::move(description)}};
    return BuildNewConnection(probe::Catalog(), body, actor_, kCreated, kId, sealer_);
  };
  // {"a":"…"} serializes to 8 bytes plus the string.
  boost::json::object at_limit{{"a", std::string(16 * 1024 - 8, 'x')}};
  ASSERT_EQ(boost::json::serialize(at_limit).size(), 16u * 1024u);
  auto ok = with_description(at_limit);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok->description, at_limit);

  boost::json::object over{{"a", std::string(16 * 1024 - 7, 'x')}};
  EXPECT_EQ(ErrorOf(with_description(over)), "description must be at most 16 KiB serialized");
  EXPECT_EQ(ErrorOf(with_description("text")), "description must be a JSON object");
  EXPECT_EQ(ErrorOf(with_description(boost::json::array{1})), "description must be a JSON object");
  auto none = with_description(nullptr);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->description.has_value());
}

TEST_F(DomainConnectionInput, TimeoutSecsRules) {
  auto with_timeout = [&](std::string_view t) {
    return Create(std::string(R"({"name":"n","details":{"type":"alloydb","host":"h",
                                  "database":"d"},"timeoutSecs":)") +
                  std::string(t) + "}");
  };
  const std::string want = "timeoutSecs must be an integer from 1 to 86400";
  for (const char* bad :
       {"0", "86401", "-1", "\"30\"", "30.0", "30.5", "true", "18446744073709551615", "{}"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(ErrorOf(with_timeout(bad)), want);
  }
  auto one = with_timeout("1");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->timeout_secs, 1);
  auto max = with_timeout("86400");
  ASSERT_TRUE(max.ok());
  EXPECT_EQ(max->timeout_secs, 86400);
}

TEST_F(DomainConnectionInput, UseFriendlyNamesMustBeBoolean) {
  EXPECT_EQ(CreateError(R"({"name":"n","useFriendlyNames":"false",
                            "details":{"type":"alloydb","host":"h","database":"d"}})"),
            "useFriendlyNames must be a boolean");
  EXPECT_EQ(CreateError(R"({"name":"n","useFriendlyNames":0,
                            "details":{"type":"alloydb","host":"h","database":"d"}})"),
            "useFriendlyNames must be a boolean");
}

TEST_F(DomainConnectionInput, ErrorsNeverContainTheSecret) {
  const std::string secret = "s3cr3t-Value-That-Must-Not-Leak";
  const std::vector<std::string> bodies = {
      R"({"name":"","details":{"type":"postgres","host":"h","database":"d","password":")" + secret +
          R"("}})",
      R"({"name":"n","bogus":1,"details":{"type":"postgres","host":"h","database":"d",
          "password":")" +
          secret + R"("}})",
      R"({"name":"n","details":{"type":"mysql","host":"h","port":"3306","user":"u",
          "password":")" +
          secret + R"("}})",
      R"({"name":"n","details":{"type":"snowflake","account":"a","user":"u","password":")" +
          secret + R"(","privateKey":")" + secret + R"("}})",
      R"({"name":"n","details":{"type":"bigQuery","projectId":"p","serviceAccount":")" + secret +
          R"("}})",
      R"({"name":"n","details":{"type":"databricks","host":"h","endpoint":"e","token":")" + secret +
          R"(","useOauth":true}})",
      R"({"name":"n","details":{"type":"starburst","host":"h","port":70000,"user":"u",
          "password":")" +
          secret + R"("}})",
      R"({"name":"n","details":{"type":"sqlserver","server":"s","port":1,"user":"u",
          "password":{"type":"cipher","value":")" +
          secret + R"("}}})",
  };
  for (const auto& body : bodies) {
    SCOPED_TRACE(body);
    std::string message = CreateError(body);
    EXPECT_NE(message, "<ok>");
    EXPECT_EQ(message.find(secret), std::string::npos) << message;
  }
}

// --- PUT ---------------------------------------------------------------------------------------

class DomainConnectionReplace : public DomainConnectionInput {
 protected:
  void SetUp() override {
    stored_ = MustCreate(
        R"({"name":"orig","description":{"k":"v"},"timeoutSecs":60,"useFriendlyNames":false,
            "details":{"type":"snowflake","account":"acme","user":"dev","privateKey":"pk-1",
                       "privateKeyPassphrase":"pp-1","warehouse":"WH"}})");
    stored_.version = 4;
    stored_.created_by = "creator";
    stored_.last_active_at = kCreated + 5;
    stored_.last_test = LastTest{kCreated + 5, "SUCCESS", "DISABLED"};
    stored_.is_archived = true;
  }

  Result<Connection> Put(std::string_view body, bool* restore = nullptr) {
    bool ignored = true;
    return BuildReplacement(probe::Catalog(), stored_, J(body), editor_, kLater, sealer_,
                            restore != nullptr ? restore : &ignored);
  }

  Connection stored_;
};

TEST_F(DomainConnectionReplace, AbsentSecretsAreKeptUnchanged) {
  bool restore = true;
  auto next = Put(R"({"name":"renamed","details":{"type":"snowflake","account":"acme",
                       "user":"dev2","authType":"key-pair"}})",
                  &restore);
  ASSERT_TRUE(next.ok()) << next.error().message;
  EXPECT_FALSE(restore);
  ASSERT_EQ(next->secrets.size(), 2u);
  for (const char* f : {"privateKey", "privateKeyPassphrase"}) {
    EXPECT_EQ(next->secrets.at(f).sealed, stored_.secrets.at(f).sealed) << f;
    EXPECT_EQ(next->secrets.at(f).updated_at, kCreated) << f;
  }
  EXPECT_EQ(Open(*next, "privateKey"), "pk-1");
  EXPECT_EQ(next->details.at("user").as_string(), "dev2");
  // PUT replaces: fields the body leaves out are gone or back to their defaults.
  EXPECT_FALSE(next->details.contains("warehouse"));
  EXPECT_FALSE(next->description.has_value());
  EXPECT_FALSE(next->timeout_secs.has_value());
  EXPECT_TRUE(next->use_friendly_names);
  EXPECT_EQ(next->name, "renamed");
}

TEST_F(DomainConnectionReplace, Bookkeeping) {
  bool restore = false;
  auto next = Put(R"({"name":"n","restore":true,"details":{"type":"snowflake","account":"acme",
                       "useOauth":true,"privateKey":null,"privateKeyPassphrase":null}})",
                  &restore);
  ASSERT_TRUE(next.ok()) << next.error().message;
  EXPECT_TRUE(restore);
  EXPECT_EQ(next->organization_id, stored_.organization_id);
  EXPECT_EQ(next->connection_id, stored_.connection_id);
  EXPECT_EQ(next->created_by, "creator");
  EXPECT_EQ(next->created_at, kCreated);
  EXPECT_EQ(next->last_active_at, kCreated + 5);
  EXPECT_TRUE(next->is_archived);  // the caller restores
  EXPECT_FALSE(next->is_sample);
  ASSERT_TRUE(next->last_test.has_value());
  EXPECT_EQ(next->last_test->read, "SUCCESS");
  EXPECT_EQ(next->updated_by, "member-2");
  EXPECT_EQ(next->updated_at, kLater);
  EXPECT_EQ(next->version, 5);
  EXPECT_TRUE(next->use_oauth);
  EXPECT_TRUE(next->secrets.empty());
}

TEST_F(DomainConnectionReplace, NullClearsAndValueReplaces) {
  auto next = Put(R"({"name":"n","details":{"type":"snowflake","account":"acme","user":"dev",
                       "privateKey":"pk-2","privateKeyPassphrase":null}})");
  ASSERT_TRUE(next.ok()) << next.error().message;
  EXPECT_EQ(next->secrets.count("privateKeyPassphrase"), 0u);
  EXPECT_EQ(Open(*next, "privateKey"), "pk-2");
  EXPECT_EQ(next->secrets.at("privateKey").updated_at, kLater);
}

TEST_F(DomainConnectionReplace, EmptyStringIsAValue) {
  auto next = Put(R"({"name":"n","details":{"type":"snowflake","account":"acme","user":"dev",
                       "privateKey":"","privateKeyPassphrase":""}})");
  ASSERT_TRUE(next.ok()) << next.error().message;
  EXPECT_EQ(Open(*next, "privateKey"), "");
  EXPECT_EQ(Open(*next, "privateKeyPassphrase"), "");
}

TEST_F(DomainConnectionReplace, SwitchingLoginNeedsTheOldSecretCleared) {
  std::string m = ErrorOf(Put(R"({"name":"n","details":{"type":"snowflake","account":"acme",
                                   "user":"dev","password":"new-pw"}})"));
  EXPECT_EQ(m,
            "details.privateKey conflicts with details.password (a snowflake connection has one "
            "login); send \"privateKey\": null to drop it");
  EXPECT_EQ(m.find("new-pw"), std::string::npos);
  auto next = Put(R"({"name":"n","details":{"type":"snowflake","account":"acme","user":"dev",
                       "password":"new-pw","privateKey":null,"privateKeyPassphrase":null}})");
  ASSERT_TRUE(next.ok()) << next.error().message;
  EXPECT_EQ(next->secrets.size(), 1u);
  EXPECT_EQ(Open(*next, "password"), "new-pw");
}

TEST_F(DomainConnectionReplace, TypeChangeDropsStoredSecrets) {
  // Without the old secrets, a mysql row must bring its own password.
  EXPECT_EQ(ErrorOf(Put(R"({"name":"n","details":{"type":"mysql","host":"h","port":3306,
                             "user":"u"}})")),
            "details.password is required");
  auto next = Put(R"({"name":"n","details":{"type":"databricks","host":"h","endpoint":"e",
                       "useOauth":true}})");
  ASSERT_TRUE(next.ok()) << next.error().message;
  EXPECT_EQ(next->type, "databricks");
  EXPECT_TRUE(next->secrets.empty());
}

TEST_F(DomainConnectionReplace, BodyRules) {
  EXPECT_EQ(ErrorOf(Put(R"({"details":{"type":"snowflake","account":"a","useOauth":true}})")),
            "name is required");
  EXPECT_EQ(ErrorOf(Put(R"({"name":"n"})")), "details is required");
  EXPECT_EQ(ErrorOf(Put(R"({"name":"n","restore":"yes",
                             "details":{"type":"snowflake","account":"a","useOauth":true}})")),
            "restore must be a boolean");
  EXPECT_EQ(ErrorOf(Put(R"({"name":"n","version":3,
                             "details":{"type":"snowflake","account":"a","useOauth":true}})")),
            "version is not a field of this request");
  EXPECT_EQ(ErrorOf(Put(R"({"name":"n","timeoutSecs":"30",
                             "details":{"type":"snowflake","account":"a","useOauth":true}})")),
            "timeoutSecs must be an integer from 1 to 86400");
}

// --- PATCH -------------------------------------------------------------------------------------

class DomainConnectionMerge : public DomainConnectionInput {
 protected:
  void SetUp() override {
    stored_ = MustCreate(
        R"({"name":"orig","description":{"k":"v"},"timeoutSecs":60,"useFriendlyNames":false,
            "details":{"type":"postgres","host":"h","database":"d","port":5432,"user":"u",
                       "password":"pw-1","useTls":true,"writeAccess":{"writeSchema":"w"}}})");
    stored_.version = 2;
  }

  Result<Connection> Patch(std::string_view body) {
    return BuildMerge(probe::Catalog(), stored_, J(body), editor_, kLater, sealer_);
  }

  Connection stored_;
};

TEST_F(DomainConnectionMerge, TopLevelFieldsReplaceAndOthersStay) {
  auto next = Patch(R"({"name":" renamed ","timeoutSecs":30})");
  ASSERT_TRUE(next.ok()) << next.error().message;
  EXPECT_EQ(next->name, "renamed");
  EXPECT_EQ(next->timeout_secs, 30);
  EXPECT_EQ(next->description, stored_.description);
  EXPECT_FALSE(next->use_friendly_names);
  EXPECT_EQ(next->details, stored_.details);
  EXPECT_EQ(next->secrets.at("password").sealed, stored_.secrets.at("password").sealed);
  EXPECT_EQ(next->version, 3);
  EXPECT_EQ(next->updated_by, "member-2");
  EXPECT_EQ(next->updated_at, kLater);
  EXPECT_EQ(next->created_at, kCreated);
  EXPECT_TRUE(next->write_access);
}

TEST_F(DomainConnectionMerge, EmptyPatchOnlyBumpsVersion) {
  auto next = Patch("{}");
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->version, 3);
  EXPECT_EQ(next->name, "orig");
  EXPECT_EQ(next->timeout_secs, 60);
}

TEST_F(DomainConnectionMerge, NullTopLevelFieldsReturnToDefaults) {
  auto next = Patch(R"({"description":null,"timeoutSecs":null,"useFriendlyNames":null})");
  ASSERT_TRUE(next.ok()) << next.error().message;
  EXPECT_FALSE(next->description.has_value());
  EXPECT_FALSE(next->timeout_secs.has_value());
  EXPECT_TRUE(next->use_friendly_names);
}

TEST_F(DomainConnectionMerge, DetailsMergeFieldByField) {
  // (Fields of the endpoint, port and useTls among them, need the password again: see
  // domain_secret_endpoint_test.cc.)
  auto next = Patch(R"({"details":{"database":"d2","user":null,"writeAccess":null}})");
  ASSERT_TRUE(next.ok()) << next.error().message;
  EXPECT_EQ(next->details.at("database").as_string(), "d2");
  EXPECT_EQ(next->details.at("host").as_string(), "h");
  EXPECT_EQ(next->details.at("port").as_int64(), 5432);
  EXPECT_FALSE(next->details.contains("user"));
  EXPECT_FALSE(next->write_access);
  EXPECT_EQ(next->type, "postgres");
  EXPECT_EQ(Open(*next, "password"), "pw-1");
  EXPECT_EQ(next->secrets.at("password").updated_at, kCreated);
}

TEST_F(DomainConnectionMerge, SecretsSetAndClear) {
  auto set = Patch(R"({"details":{"password":{"type":"plain","value":"pw-2"}}})");
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_EQ(Open(*set, "password"), "pw-2");
  EXPECT_EQ(set->secrets.at("password").updated_at, kLater);

  auto cleared = Patch(R"({"details":{"password":null}})");
  ASSERT_TRUE(cleared.ok()) << cleared.error().message;
  EXPECT_TRUE(cleared->secrets.empty());
  EXPECT_FALSE(cleared->details.contains("password"));
}

TEST_F(DomainConnectionMerge, MergedDetailsAreValidated) {
  EXPECT_EQ(ErrorOf(Patch(R"({"details":{"host":null}})")), "details.host is required");
  EXPECT_EQ(ErrorOf(Patch(R"({"details":{"port":0}})")),
            "details.port must be an integer from 1 to 65535");
  EXPECT_EQ(ErrorOf(Patch(R"({"details":{"hots":"x"}})")),
            "details.hots is not a field of a postgres connection");
  EXPECT_EQ(ErrorOf(Patch(R"({"details":{"writeAccess":{}}})")),
            "details.writeAccess.writeSchema is required");
  EXPECT_EQ(ErrorOf(Patch(R"({"details":"x"})")), "details must be an object");
  EXPECT_EQ(ErrorOf(Patch(R"({"details":null})")), "details must be an object");
  EXPECT_EQ(ErrorOf(Patch(R"({"details":{"type":"oracle"}})")).rfind("details.type must be", 0),
            0u);
}

TEST_F(DomainConnectionMerge, BodyRules) {
  EXPECT_EQ(ErrorOf(Patch(R"({"restore":true})")), "restore is not a field of this request");
  EXPECT_EQ(ErrorOf(Patch(R"({"name":""})")),
            "name must be 1 to 255 characters after trimming whitespace");
  EXPECT_EQ(ErrorOf(Patch(R"({"timeoutSecs":"30"})")),
            "timeoutSecs must be an integer from 1 to 86400");
  EXPECT_EQ(ErrorOf(Patch("[]")), "the request body must be a JSON object");
}

TEST_F(DomainConnectionMerge, TypeChangeDropsSecretsAndKeepsCommonFields) {
  // host, database, port, user, useTls and writeAccess are all mysql fields too.
  EXPECT_EQ(ErrorOf(Patch(R"({"details":{"type":"mysql"}})")), "details.password is required");
  auto next = Patch(R"({"details":{"type":"mysql","password":"my-pw"}})");
  ASSERT_TRUE(next.ok()) << next.error().message;
  EXPECT_EQ(next->type, "mysql");
  EXPECT_EQ(next->details.at("database").as_string(), "d");
  EXPECT_EQ(Open(*next, "password"), "my-pw");
  EXPECT_EQ(next->secrets.at("password").updated_at, kLater);
}

TEST_F(DomainConnectionMerge, SnowflakeSwitchToOauth) {
  Connection sf = MustCreate(
      R"({"name":"sf","details":{"type":"snowflake","account":"a","user":"u","password":"pw"}})");
  auto both = BuildMerge(probe::Catalog(), sf, J(R"({"details":{"useOauth":true}})"), editor_,
                         kLater, sealer_);
  EXPECT_EQ(ErrorOf(both),
            "details.password conflicts with details.useOauth (a snowflake connection has one "
            "login); send \"password\": null to drop it");
  auto next =
      BuildMerge(probe::Catalog(), sf, J(R"({"details":{"useOauth":true,"password":null}})"),
                 editor_, kLater, sealer_);
  ASSERT_TRUE(next.ok()) << next.error().message;
  EXPECT_TRUE(next->use_oauth);
  EXPECT_TRUE(next->secrets.empty());
}

}  // namespace
}  // namespace connreg::domain
