// Issue 18, finding 2: a stored secret is only ever sent to the endpoint it was stored with. A
// PUT, PATCH or proposed-change test that changes an endpoint field, or weakens TLS, must give
// every secret of the connection again (contract section 4). Also the TLS settings (tlsMode,
// tlsCaCert) and their defaults.
#include <gtest/gtest.h>
#include <sodium.h>

#include <memory>
#include <string>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "crypto/random.h"
#include "crypto/sodium_sealer.h"
#include "domain/connection_input.h"
#include "probe/drivers/registry.h"

namespace connreg::domain {
namespace {

constexpr TimeMs kNow = 1655928427899;
const char kId[] = "0b0e2f7a-1111-4222-8333-444455556666";

class DomainSecretEndpoint : public ::testing::Test {
 protected:
  DomainSecretEndpoint() : sealer_(crypto::Keyring{MakeKey(), {}}) {}

  static std::shared_ptr<const crypto::MasterKey> MakeKey() {
    crypto::EnsureSodium();
    std::string raw(crypto::MasterKey::kBytes, '\0');
    randombytes_buf(raw.data(), raw.size());
    return std::make_shared<const crypto::MasterKey>(raw);
  }

  Connection Create(std::string_view details) {
    auto c = BuildNewConnection(
        probe::Catalog(),
        boost::json::parse(R"({"name":"n","details":)" + std::string(details) + "}"), actor_, kNow,
        kId, sealer_);
    EXPECT_TRUE(c.ok()) << details << ": " << (c.ok() ? "" : c.error().message);
    return c.ok() ? std::move(c).value() : Connection{};
  }

  Result<Connection> Patch(const Connection& stored, std::string_view body) {
    return BuildMerge(probe::Catalog(), stored, boost::json::parse(body), actor_, kNow + 1,
                      sealer_);
  }

  Result<Connection> Put(const Connection& stored, std::string_view details) {
    bool restore = false;
    return BuildReplacement(
        probe::Catalog(), stored,
        boost::json::parse(R"({"name":"n","details":)" + std::string(details) + "}"), actor_,
        kNow + 1, sealer_, &restore);
  }

  static std::string ErrorOf(const Result<Connection>& r) {
    EXPECT_FALSE(r.ok());
    if (r.ok()) return "<ok>";
    EXPECT_EQ(r.error().code, ErrorCode::kBadRequest);
    return r.error().message;
  }

  static std::string Mode(const Result<Connection>& r) {
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    if (!r.ok()) return "<error>";
    const auto* m = r->details.if_contains("tlsMode");
    return m == nullptr ? "<absent>" : std::string(m->as_string());
  }

  Actor actor_{"org-1", "member-1"};
  crypto::SodiumSealer sealer_;
};

const char kPg[] =
    R"({"type":"postgres","host":"db.example.com","database":"app","user":"u","password":"pw"})";

// The reproduction of the finding: a proposed-change test body that points the stored password
// at another listener (HandleTestProposedChange builds it with BuildMerge).
TEST_F(DomainSecretEndpoint, Finding2TestBodyToAnotherHostNeedsThePasswordAgain) {
  const Connection stored = Create(kPg);
  EXPECT_EQ(ErrorOf(Patch(stored, R"({"details":{"host":"127.0.0.1","port":15432}})")),
            "details.password must be given again when details.host changes");
  EXPECT_EQ(ErrorOf(Patch(stored, R"({"details":{"port":15432}})")),
            "details.password must be given again when details.port changes");
  auto given = Patch(stored, R"({"details":{"host":"127.0.0.1","port":15432,"password":"x"}})");
  ASSERT_TRUE(given.ok()) << given.error().message;
  EXPECT_EQ(given->details.at("host").as_string(), "127.0.0.1");
  // Clearing the secret is giving it again too: nothing stored goes to the new host.
  auto cleared = Patch(stored, R"({"details":{"host":"127.0.0.1","password":null}})");
  ASSERT_TRUE(cleared.ok()) << cleared.error().message;
  EXPECT_TRUE(cleared->secrets.empty());
}

TEST_F(DomainSecretEndpoint, Finding2PutWithANewHostAndNoPasswordIs400) {
  const Connection stored = Create(kPg);
  EXPECT_EQ(ErrorOf(Put(stored, R"({"type":"postgres","host":"evil.example","database":"app"})")),
            "details.password must be given again when details.host changes");
  auto same_host = Put(stored, R"({"type":"postgres","host":"db.example.com","database":"x"})");
  ASSERT_TRUE(same_host.ok()) << same_host.error().message;
  EXPECT_EQ(same_host->secrets.count("password"), 1u);
  auto given = Put(stored, R"({"type":"postgres","host":"evil.example","database":"app",
                               "password":"new"})");
  ASSERT_TRUE(given.ok()) << given.error().message;
}

TEST_F(DomainSecretEndpoint, DefaultPortsAndHostCaseAreNoChange) {
  const Connection pg = Create(kPg);  // no port: 5432
  EXPECT_TRUE(Patch(pg, R"({"details":{"port":5432}})").ok());
  EXPECT_TRUE(Patch(pg, R"({"details":{"host":"DB.Example.COM"}})").ok());
  const Connection rs = Create(
      R"({"type":"redshift","host":"rs.example.com","database":"d","port":5439,"password":"p"})");
  EXPECT_TRUE(Patch(rs, R"({"details":{"port":null}})").ok()) << "null: back to 5439";
  EXPECT_EQ(ErrorOf(Patch(rs, R"({"details":{"port":5432}})")),
            "details.password must be given again when details.port changes");
  // A connection without a stored secret has nothing to give again.
  const Connection bare = Create(R"({"type":"postgres","host":"h","database":"d"})");
  EXPECT_TRUE(Patch(bare, R"({"details":{"host":"elsewhere"}})").ok());
}

struct EndpointCase {
  const char* details;  // stored, with every secret of the case
  const char* change;   // a PATCH of `details` moving one endpoint field
  const char* message;
  const char* secrets;  // the change's secrets, given again
};

TEST_F(DomainSecretEndpoint, EveryEndpointFieldOfEveryTypeNeedsEverySecret) {
  const EndpointCase cases[] = {
      {R"({"type":"mysql","host":"m","port":3306,"user":"u","password":"p"})", R"("port":3307)",
       "details.password must be given again when details.port changes", R"("password":"p")"},
      {R"({"type":"snowflake","account":"acme","user":"u","privateKey":"k",
           "privateKeyPassphrase":"pp"})",
       R"("account":"evil")", "details.privateKey must be given again when details.account changes",
       R"("privateKey":"k","privateKeyPassphrase":"pp")"},
      {R"({"type":"snowflake","host":"acme.snowflakecomputing.com","user":"u","password":"p"})",
       R"("host":"evil.example")", "details.password must be given again when details.host changes",
       R"("password":"p")"},
      {R"({"type":"snowflake","account":"acme","user":"u","password":"p"})",
       R"("server":"evil.example")",
       "details.password must be given again when details.server changes", R"("password":"p")"},
      {R"({"type":"databricks","host":"dbc","endpoint":"/sql/1.0/warehouses/a","token":"t"})",
       R"("endpoint":"/sql/1.0/warehouses/b")",
       "details.token must be given again when details.endpoint changes", R"("token":"t")"},
      {R"({"type":"databricks","host":"dbc","endpoint":"/e","token":"t"})",
       R"("workspaceUrl":"https://evil.example")",
       "details.token must be given again when details.workspaceUrl changes", R"("token":"t")"},
      {R"({"type":"starburst","host":"sb","port":443,"user":"u","password":"p"})",
       R"("host":"evil")", "details.password must be given again when details.host changes",
       R"("password":"p")"},
      {R"({"type":"sqlserver","server":"s","port":1433,"user":"u","password":"p"})",
       R"("server":"evil")", "details.password must be given again when details.server changes",
       R"("password":"p")"},
      {R"({"type":"azuresql","server":"s","port":1433,"user":"u","password":"p","database":"d"})",
       R"("port":1434)", "details.password must be given again when details.port changes",
       R"("password":"p")"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.details);
    const Connection stored = Create(c.details);
    EXPECT_EQ(ErrorOf(Patch(stored, std::string(R"({"details":{)") + c.change + "}}")), c.message);
    auto given = Patch(stored, std::string(R"({"details":{)") + c.change + "," + c.secrets + "}}");
    EXPECT_TRUE(given.ok()) << (given.ok() ? "" : given.error().message);
  }
  // Only part of the secrets is not enough.
  const Connection sf = Create(R"({"type":"snowflake","account":"acme","user":"u",
                                   "privateKey":"k","privateKeyPassphrase":"pp"})");
  EXPECT_EQ(ErrorOf(Patch(sf, R"({"details":{"account":"evil","privateKey":"k"}})")),
            "details.privateKeyPassphrase must be given again when details.account changes");
}

// A service-account key carries its endpoint (token_uri) inside the secret: it changes only
// with the secret, which is then given again by definition; the rest of the details may change.
TEST_F(DomainSecretEndpoint, BigQueryTokenUriTravelsWithItsServiceAccount) {
  const Connection bq = Create(
      R"({"type":"bigQuery","projectId":"p",
          "serviceAccount":"{\"type\":\"service_account\",\"token_uri\":\"https://oauth2.googleapis.com/token\"}"})");
  auto other_project = Patch(bq, R"({"details":{"projectId":"q"}})");
  ASSERT_TRUE(other_project.ok()) << other_project.error().message;
  EXPECT_EQ(other_project->secrets.at("serviceAccount").sealed,
            bq.secrets.at("serviceAccount").sealed);
  auto new_key =
      Patch(bq, R"({"details":{"serviceAccount":"{\"token_uri\":\"https://evil.example/t\"}"}})");
  ASSERT_TRUE(new_key.ok()) << new_key.error().message;
  EXPECT_NE(new_key->secrets.at("serviceAccount").sealed, bq.secrets.at("serviceAccount").sealed);
}

TEST_F(DomainSecretEndpoint, TypeChangeKeepsNoSecretSoNeedsNoneAgain) {
  const Connection stored = Create(kPg);
  auto next = Put(stored, R"({"type":"redshift","host":"elsewhere","database":"d"})");
  ASSERT_TRUE(next.ok()) << next.error().message;
  EXPECT_TRUE(next->secrets.empty());
}

// --- TLS -----------------------------------------------------------------------------------------

TEST_F(DomainSecretEndpoint, NewConnectionsVerifyFullWhenTlsIsOn) {
  auto on = Create(R"({"type":"postgres","host":"h","database":"d","useTls":true})");
  EXPECT_EQ(on.details.at("tlsMode").as_string(), "verify-full");
  EXPECT_FALSE(
      Create(R"({"type":"postgres","host":"h","database":"d"})").details.contains("tlsMode"));
  EXPECT_FALSE(Create(R"({"type":"mysql","host":"h","port":1,"user":"u","password":"p",
                          "useTls":false})")
                   .details.contains("tlsMode"));
  // starburst's useTls defaults to true; azuresql always encrypts.
  EXPECT_EQ(Create(R"({"type":"starburst","host":"h","port":443,"user":"u","password":"p"})")
                .details.at("tlsMode")
                .as_string(),
            "verify-full");
  EXPECT_EQ(Create(R"({"type":"azuresql","server":"s","port":1433,"user":"u","password":"p",
                       "database":"d"})")
                .details.at("tlsMode")
                .as_string(),
            "verify-full");
  // sqlserver turns TLS on by giving a mode; without one its driver encrypts when offered.
  EXPECT_FALSE(Create(R"({"type":"sqlserver","server":"s","port":1433,"user":"u","password":"p"})")
                   .details.contains("tlsMode"));
  EXPECT_EQ(Create(R"({"type":"sqlserver","server":"s","port":1433,"user":"u","password":"p",
                       "tlsMode":"verify-ca"})")
                .details.at("tlsMode")
                .as_string(),
            "verify-ca");
  auto chosen = Create(R"({"type":"alloydb","host":"h","database":"d","useTls":true,
                           "tlsMode":"require"})");
  EXPECT_EQ(chosen.details.at("tlsMode").as_string(), "require");
}

TEST_F(DomainSecretEndpoint, TlsFieldsAreValidated) {
  auto err = [&](std::string_view details) {
    return ErrorOf(BuildNewConnection(
        probe::Catalog(),
        boost::json::parse(R"({"name":"n","details":)" + std::string(details) + "}"), actor_, kNow,
        kId, sealer_));
  };
  EXPECT_EQ(err(R"({"type":"postgres","host":"h","database":"d","tlsMode":"verify"})"),
            "details.tlsMode must be one of require, verify-ca, verify-full");
  EXPECT_EQ(err(R"({"type":"postgres","host":"h","database":"d","tlsMode":true})"),
            "details.tlsMode must be one of require, verify-ca, verify-full");
  EXPECT_EQ(err(R"({"type":"postgres","host":"h","database":"d","tlsCaCert":"not pem"})"),
            "details.tlsCaCert must be PEM certificates (-----BEGIN CERTIFICATE-----)");
  const std::string pem = R"(-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n)";
  std::string big = pem + std::string(64 * 1024, 'A');
  EXPECT_EQ(err(R"({"type":"mysql","host":"h","port":1,"user":"u","password":"p","tlsCaCert":")" +
                big + "\"}"),
            "details.tlsCaCert must be at most 64 KiB");
  EXPECT_EQ(err(R"({"type":"snowflake","account":"a","useOauth":true,"tlsMode":"require"})"),
            "details.tlsMode is not a field of a snowflake connection");
  auto ok =
      Create(R"({"type":"postgres","host":"h","database":"d","useTls":true,"tlsCaCert":")" +
             std::string("-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----") + "\"}");
  EXPECT_TRUE(ok.details.contains("tlsCaCert")) << "tlsCaCert is not a secret: it is shown";
}

// A row stored before tlsMode existed (TLS on, no tlsMode) keeps `require` until changed.
TEST_F(DomainSecretEndpoint, LegacyRowsKeepRequireUntilChanged) {
  Connection legacy = Create(R"({"type":"postgres","host":"h","database":"d","useTls":true,
                                  "password":"p"})");
  legacy.details.erase("tlsMode");
  EXPECT_EQ(Mode(Patch(legacy, R"({"name":"renamed"})")), "<absent>");
  EXPECT_EQ(Mode(Patch(legacy, R"({"details":{"user":"v"}})")), "<absent>");
  EXPECT_EQ(Mode(Put(legacy, R"({"type":"postgres","host":"h","database":"d","useTls":true})")),
            "<absent>")
      << "a PUT from a client that does not know tlsMode keeps what the row had";
  // Changing it: null is the default for TLS on, a value is that value; both are stricter.
  EXPECT_EQ(Mode(Patch(legacy, R"({"details":{"tlsMode":null}})")), "verify-full");
  EXPECT_EQ(Mode(Patch(legacy, R"({"details":{"tlsMode":"verify-ca"}})")), "verify-ca");
  // Turning TLS on a plain legacy row gives it the new default.
  Connection plain = Create(R"({"type":"postgres","host":"h","database":"d","password":"p"})");
  EXPECT_EQ(Mode(Patch(plain, R"({"details":{"useTls":true}})")), "verify-full");
}

TEST_F(DomainSecretEndpoint, PutKeepsTlsSettingsItLeavesOut) {
  const std::string pem = R"(-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----)";
  const Connection stored = Create(R"({"type":"mysql","host":"h","port":3306,"user":"u",
                                       "password":"p","useTls":true,"tlsMode":"verify-ca",
                                       "tlsCaCert":")" +
                                   pem + "\"}");
  auto put = Put(stored, R"({"type":"mysql","host":"h","port":3306,"user":"u","useTls":true})");
  EXPECT_EQ(Mode(put), "verify-ca");
  ASSERT_TRUE(put.ok());
  EXPECT_EQ(put->details.at("tlsCaCert"), stored.details.at("tlsCaCert"));
  // null clears: the mode returns to the default, the CA to none (a CA change while verifying,
  // so the password must come along).
  auto cleared = Put(stored, R"({"type":"mysql","host":"h","port":3306,"user":"u","useTls":true,
                                 "tlsMode":null,"tlsCaCert":null,"password":"p"})");
  EXPECT_EQ(Mode(cleared), "verify-full");
  ASSERT_TRUE(cleared.ok());
  EXPECT_FALSE(cleared->details.contains("tlsCaCert"));
}

TEST_F(DomainSecretEndpoint, WeakerTlsNeedsTheSecretsAgain) {
  const std::string pem = R"(-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----)";
  const std::string other = R"(-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----)";
  const Connection full =
      Create(R"({"type":"postgres","host":"h","database":"d","useTls":true,"password":"p"})");
  EXPECT_EQ(ErrorOf(Patch(full, R"({"details":{"useTls":false}})")),
            "details.password must be given again when details.useTls changes");
  EXPECT_EQ(ErrorOf(Patch(full, R"({"details":{"tlsMode":"verify-ca"}})")),
            "details.password must be given again when details.tlsMode changes");
  EXPECT_EQ(ErrorOf(Patch(full, R"({"details":{"tlsCaCert":")" + other + "\"}}")),
            "details.password must be given again when details.tlsCaCert changes");
  EXPECT_TRUE(Patch(full, R"({"details":{"useTls":false,"password":"p"}})").ok());
  EXPECT_TRUE(Patch(full, R"({"details":{"tlsCaCert":")" + other + R"(","password":"p"}})").ok());

  // Stricter is no change: require to verify-full, a CA on a connection that verified nothing.
  Connection require = Create(R"({"type":"postgres","host":"h","database":"d","useTls":true,
                                   "tlsMode":"require","password":"p"})");
  EXPECT_TRUE(
      Patch(require, R"({"details":{"tlsMode":"verify-full","tlsCaCert":")" + pem + "\"}}").ok());
  Connection verify_ca = Create(R"({"type":"postgres","host":"h","database":"d","useTls":true,
                                     "tlsMode":"verify-ca","tlsCaCert":")" +
                                pem + R"(","password":"p"})");
  EXPECT_TRUE(Patch(verify_ca, R"({"details":{"tlsMode":"verify-full"}})").ok());
  EXPECT_EQ(ErrorOf(Patch(verify_ca, R"({"details":{"tlsCaCert":null}})")),
            "details.password must be given again when details.tlsCaCert changes");
  Connection plain = Create(R"({"type":"postgres","host":"h","database":"d","password":"p"})");
  EXPECT_TRUE(Patch(plain, R"({"details":{"useTls":true,"tlsCaCert":")" + pem + "\"}}").ok());

  // starburst: useTls absent is on; sqlserver: dropping the mode turns TLS off.
  const Connection sb = Create(R"({"type":"starburst","host":"h","port":443,"user":"u",
                                   "password":"p"})");
  EXPECT_EQ(ErrorOf(Patch(sb, R"({"details":{"useTls":false}})")),
            "details.password must be given again when details.useTls changes");
  EXPECT_TRUE(Patch(sb, R"({"details":{"useTls":true}})").ok());
  const Connection ss = Create(R"({"type":"sqlserver","server":"s","port":1433,"user":"u",
                                   "password":"p","tlsMode":"verify-full"})");
  EXPECT_EQ(ErrorOf(Patch(ss, R"({"details":{"tlsMode":null}})")),
            "details.password must be given again when details.tlsMode changes");
  const Connection az = Create(R"({"type":"azuresql","server":"s","port":1433,"user":"u",
                                   "password":"p","database":"d"})");
  EXPECT_EQ(ErrorOf(Patch(az, R"({"details":{"tlsMode":"require"}})")),
            "details.password must be given again when details.tlsMode changes");
}

}  // namespace
}  // namespace connreg::domain
