// Issue 18, finding 4: the idempotency record's request_hash was an (effectively unkeyed)
// BLAKE2b of the method, path and raw body, secrets included: a weak password was recoverable
// from the database file alone by a dictionary attack.
#include "api/idempotency.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <memory>
#include <string>

#include <boost/json/parse.hpp>

#include "crypto/hash.h"
#include "crypto/random.h"
#include "crypto/sodium_sealer.h"
#include "probe/drivers/registry.h"

namespace connreg::api {
namespace {

constexpr std::string_view kLine = "POST /v2/connections";

std::shared_ptr<const crypto::MasterKey> MakeKey() {
  crypto::EnsureSodium();
  std::string raw(crypto::MasterKey::kBytes, '\0');
  randombytes_buf(raw.data(), raw.size());
  return std::make_shared<const crypto::MasterKey>(raw);
}

std::string Body(std::string_view password) {
  return R"({"name":"w","details":{"type":"postgres","host":"db","database":"d","password":")" +
         std::string(password) + R"("}})";
}

// The four parts of a v2 fingerprint.
std::vector<std::string> Parts(const std::string& fingerprint) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const auto colon = fingerprint.find(':', start);
    out.push_back(fingerprint.substr(start, colon - start));
    if (colon == std::string::npos) return out;
    start = colon + 1;
  }
}

class ApiIdempotency : public ::testing::Test {
 protected:
  ApiIdempotency() : key_(MakeKey()), sealer_(crypto::Keyring{key_, {}}) {}

  std::string Fingerprint(const std::string& body) {
    return RequestFingerprint(probe::Catalog(), kLine, boost::json::parse(body), sealer_);
  }
  Result<bool> Same(const std::string& stored, const std::string& body) {
    return IsSameRequest(probe::Catalog(), stored, kLine, boost::json::parse(body), sealer_);
  }

  std::shared_ptr<const crypto::MasterKey> key_;
  crypto::SodiumSealer sealer_;
};

TEST_F(ApiIdempotency, Finding4StoredHashAllowsNoDictionaryAttack) {
  const std::string a = Fingerprint(Body("Summer2024!"));
  const std::string b = Fingerprint(Body("Winter2023?"));
  const auto pa = Parts(a), pb = Parts(b);
  ASSERT_EQ(pa.size(), 4u) << a;
  ASSERT_EQ(pb.size(), 4u) << b;
  EXPECT_EQ(pa[0], "v2");
  // Bodies differing only in the password differ only in the MAC: the body hash holds nothing of
  // the password, and the MAC needs the master key.
  EXPECT_EQ(pa[1], pb[1]);
  EXPECT_EQ(pa[2], key_->id());
  EXPECT_EQ(pa[2], pb[2]);
  EXPECT_NE(pa[3], pb[3]);
  EXPECT_EQ(pa[3].size(), 64u);
  // The old scheme, from the file alone plus a guess, no longer matches anything stored.
  const std::string old = crypto::TokenHash(std::string(kLine) + "\n" + Body("Summer2024!"));
  EXPECT_EQ(a.find(old), std::string::npos);
  EXPECT_NE(pa[1], old);
  // The same under another master key is another MAC.
  crypto::SodiumSealer other(crypto::Keyring{MakeKey(), {}});
  EXPECT_NE(Parts(RequestFingerprint(probe::Catalog(), kLine,
                                     boost::json::parse(Body("Summer2024!")), other))[3],
            pa[3]);
}

TEST_F(ApiIdempotency, SameBodyMatchesAndAnotherDoesNot) {
  const std::string stored = Fingerprint(Body("pw-1"));
  EXPECT_TRUE(Same(stored, Body("pw-1")).value());
  EXPECT_TRUE(Same(stored, "  " + Body("pw-1") + "\n").value()) << "whitespace is no difference";
  EXPECT_FALSE(Same(stored, Body("pw-2")).value());
  EXPECT_FALSE(Same(stored, R"({"name":"other","details":{"type":"postgres","host":"db",
                                 "database":"d","password":"pw-1"}})")
                   .value());
  EXPECT_FALSE(Same(stored, R"({"name":"w","details":{"type":"postgres","host":"db",
                                 "database":"d"}})")
                   .value());
  // A body without a secret value has no MAC part, and still compares.
  const std::string plain =
      Fingerprint(R"({"name":"w","details":{"type":"postgres","host":"db","database":"d"}})");
  EXPECT_EQ(plain.substr(plain.size() - 2), "::");
  EXPECT_TRUE(
      Same(plain, R"({"name":"w","details":{"type":"postgres","host":"db","database":"d"}})")
          .value());
  EXPECT_FALSE(Same(plain, Body("pw-1")).value());
  // A plain-object password and a null are told apart from each other and from a string.
  const std::string object = Fingerprint(
      R"({"name":"w","details":{"type":"postgres","host":"db","database":"d",
          "password":{"type":"plain","value":"pw-1"}}})");
  EXPECT_FALSE(Same(object, Body("pw-1")).value());
}

TEST_F(ApiIdempotency, Finding4ReplayAfterKeyRotationIsAConflict) {
  const std::string stored = Fingerprint(Body("pw-1"));
  // During the rotation the old key still opens: the replay is recognised.
  auto next = MakeKey();
  sealer_.SetKeys(crypto::Keyring{next, {key_}});
  EXPECT_TRUE(Same(stored, Body("pw-1")).value());
  // After it, the MAC cannot be checked.
  sealer_.SetKeys(crypto::Keyring{next, {}});
  auto after = Same(stored, Body("pw-1"));
  ASSERT_FALSE(after.ok());
  EXPECT_EQ(after.error().code, ErrorCode::kConflict);
  EXPECT_NE(after.error().message.find("rotation"), std::string::npos);
  // A record without a secret needs no key.
  const std::string plain =
      RequestFingerprint(probe::Catalog(), kLine, boost::json::parse(R"({"name":"w"})"), sealer_);
  sealer_.SetKeys(crypto::Keyring{MakeKey(), {}});
  EXPECT_TRUE(Same(plain, R"({"name":"w"})").value());
}

TEST_F(ApiIdempotency, RecordsOfTheOldFormatAreAConflict) {
  const std::string old = crypto::TokenHash(std::string(kLine) + "\n" + Body("pw"));
  for (const std::string& stored :
       {old, std::string("v2:x"), std::string("v2:a:b:c:d"), std::string("")}) {
    auto r = Same(stored, Body("pw"));
    ASSERT_FALSE(r.ok()) << stored;
    EXPECT_EQ(r.error().code, ErrorCode::kConflict);
  }
}

}  // namespace
}  // namespace connreg::api
