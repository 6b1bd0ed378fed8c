// Regression tests of issue 18, "Credentials go only where they were configured to go: findings
// of an outside attack", probe side. Each test is named after the finding it proves fixed. They
// use only interfaces that existed before the fix (Scrubber::Scrub, ProbeEngine, its options; read
// from the environment by OptionsFromEnv then, given to ParseOptions since), so the file built
// against the code the attack was made on, where every one failed.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <map>
#include <string>
#include <vector>

#include "crypto/encoding.h"
#include "probe/egress.h"
#include "probe/engine.h"
#include "probe/scrub.h"
#include "probe_test_support.h"

namespace connreg::probe {
namespace {

using test_support::BlackHole;
using test_support::ClosedPort;
using test_support::FindStep;
using test_support::LoopbackOptions;
using test_support::MakeConnection;
using test_support::Steps;
using Secrets = std::map<std::string, std::string>;
using Clock = std::chrono::steady_clock;

IpAddress Ip(std::string_view s) {
  auto a = IpAddress::Parse(s);
  EXPECT_TRUE(a.ok()) << s;
  return a.ok() ? *a : IpAddress{};
}

// --- Finding 3: the scrubber misses encoded secrets -------------------------------------------

TEST(ProbeRegression18, ScrubberRedactsBase64OfBasicAuth) {
  // What a starburst test against a header-echoing HTTPS server returned: base64("u:" + secret).
  Scrubber s(Secrets{{"password", "PWMARK_trino_77"}});
  EXPECT_EQ(s.Scrub("Authorization=Basic dTpQV01BUktfdHJpbm9fNzc="),
            "Authorization=Basic [redacted]");
}

TEST(ProbeRegression18, ScrubberRedactsBase64AtEveryAlignment) {
  const std::string secret = "Summer2024!x";
  Scrubber s(Secrets{{"password", secret}});
  for (std::string before : {"", "a", "ab", "abc", "user:", "longer-user:"}) {
    for (std::string after : {"", "z", "zz", "@host"}) {
      for (bool url_safe : {false, true}) {
        std::string plain = before + secret + after;
        std::string encoded =
            url_safe ? crypto::Base64UrlEncode(plain) : crypto::Base64Encode(plain);
        EXPECT_EQ(s.Scrub("got " + encoded + " back"), "got [redacted] back")
            << "before=" << before << " after=" << after << " url_safe=" << url_safe;
      }
    }
  }
}

TEST(ProbeRegression18, ScrubberRedactsHexInEitherCase) {
  const std::string secret = "hex-me-please";
  Scrubber s(Secrets{{"password", secret}});
  std::string hex = crypto::HexEncode(secret);
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(s.Scrub("bytes " + hex + " end"), "bytes [redacted] end");
  EXPECT_EQ(s.Scrub("bytes 0x" + upper + " end"), "bytes [redacted] end");
}

TEST(ProbeRegression18, ScrubberRedactsUpperCaseAndReversedEchoes) {
  Scrubber s(Secrets{{"password", "PwMark-Secret9"}});
  EXPECT_EQ(s.Scrub("role PWMARK-SECRET9 unknown"), "role [redacted] unknown");
  EXPECT_EQ(s.Scrub("role pwmark-secret9 unknown"), "role [redacted] unknown");
  EXPECT_EQ(s.Scrub("echo 9terceS-kraMwP"), "echo [redacted]");
}

TEST(ProbeRegression18, ScrubberCatchesASecretSplitByANewline) {
  Scrubber s(Secrets{{"password", "PWMARK_trino_77"}});
  std::string out = s.Scrub("password PWMARK_t\nrino_77 and PWMARK_tr\r\n  ino_77 rejected");
  EXPECT_EQ(out, "password [redacted] and [redacted] rejected");
  EXPECT_EQ(out.find("PWMARK"), std::string::npos);
  EXPECT_EQ(out.find("ino_77"), std::string::npos);
  // Base64 wrapped at any column, as MIME does.
  std::string b64 = crypto::Base64Encode("u:PWMARK_trino_77");
  EXPECT_EQ(s.Scrub("Basic " + b64.substr(0, 9) + "\n" + b64.substr(9)), "Basic [redacted]");
}

// --- Finding 5: "::" reaches loopback even when an operator denies loopback ------------------
// These build policies as the server does, through ProbeEngine::ParseOptions, from settings named
// by their variables.

EgressPolicy PolicyFromEnv(const std::map<std::string, std::string>& env) {
  ProbeEngine::Settings settings;
  for (const auto& [k, v] : env) {
    if (k == "CONNREG_EGRESS_DENY") settings.egress_deny = v;
    if (k == "CONNREG_EGRESS_ALLOW") settings.egress_allow = v;
    if (k == "CONNREG_EGRESS_ALLOW_LOOPBACK") settings.egress_allow_loopback = v;
  }
  auto options = ProbeEngine::ParseOptions(settings);
  EXPECT_TRUE(options.ok()) << options.error().message;
  return options.ok() ? options->egress : EgressPolicy();
}

TEST(ProbeRegression18, EgressDeniesUnspecifiedIpv6ReachingLoopback) {
  // With loopback denied by the operator, "::" still connected to a listener on ::1.
  for (auto env : {std::map<std::string, std::string>{{"CONNREG_EGRESS_DENY", "127.0.0.0/8,::1"}},
                   std::map<std::string, std::string>{{"CONNREG_EGRESS_ALLOW_LOOPBACK", "true"}}}) {
    EgressPolicy policy = PolicyFromEnv(env);
    for (const char* host : {"::", "[::]", "0:0:0:0:0:0:0:0", "0.0.0.0"}) {
      Resolution r = ResolveAndCheck(host, policy);
      EXPECT_EQ(r.code, "egress_denied") << host << ": " << r.message;
      EXPECT_TRUE(r.addresses.empty()) << host;
    }
  }
}

TEST(ProbeRegression18, OperatorDenyListAddsToTheBuiltInOneAndNeverReplacesIt) {
  EgressPolicy policy = PolicyFromEnv({{"CONNREG_EGRESS_DENY", "10.9.0.0/16"}});
  for (const char* denied :
       {"10.9.1.1", "169.254.169.254", "fd00:ec2::254", "0.0.0.0", "::", "224.0.0.1", "fe80::1"}) {
    EXPECT_FALSE(policy.Check(Ip(denied)).empty()) << denied;
  }
  EgressPolicy empty = PolicyFromEnv({{"CONNREG_EGRESS_DENY", " "}});
  EXPECT_FALSE(empty.Check(Ip("169.254.169.254")).empty()) << "an empty list removes nothing";
}

TEST(ProbeRegression18, EgressDeniesAlibabaAndAzureMetadataAddresses) {
  EgressPolicy policy;
  for (const char* denied : {"100.100.100.200", "168.63.129.16", "::ffff:168.63.129.16"}) {
    EXPECT_FALSE(policy.Check(Ip(denied)).empty()) << denied;
  }
  EXPECT_EQ(policy.Check(Ip("100.100.100.201")), "");
}

TEST(ProbeRegression18, EgressChecksIpv4EmbeddedInNat64SixToFourAndTeredo) {
  EgressPolicy policy = PolicyFromEnv({{"CONNREG_EGRESS_ALLOW_LOOPBACK", "false"}});
  for (const char* denied : {"64:ff9b::169.254.169.254", "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1",
                             "2001:0:4136:e378:8000:63bf:5601:5601",  // Teredo, 169.254.169.254
                             "64:ff9b::127.0.0.1", "2002:7f00:1::", "::127.0.0.1",
                             "::ffff:0:127.0.0.1", "2001:0:4136:e378:8000:63bf:80ff:fffe"}) {
    std::string why = policy.Check(Ip(denied));
    EXPECT_FALSE(why.empty()) << denied;
    EXPECT_NE(why.find("carries the IPv4 address"), std::string::npos) << why;
  }
  EXPECT_EQ(policy.Check(Ip("64:ff9b::10.1.2.3")), "") << "a private warehouse behind NAT64";
  // An allow list is checked against where the packets end up.
  EgressPolicy ten = PolicyFromEnv({{"CONNREG_EGRESS_ALLOW", "10.0.0.0/8"}});
  EXPECT_EQ(ten.Check(Ip("64:ff9b::10.1.2.3")), "");
  EXPECT_FALSE(ten.Check(Ip("64:ff9b::8.8.8.8")).empty());
}

TEST(ProbeRegression18, EgressDeniesLoopbackUnlessAllowedAndNamesTheVariable) {
  EgressPolicy policy;
  for (const char* loopback : {"127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.1"}) {
    std::string why = policy.Check(Ip(loopback));
    EXPECT_NE(why.find("CONNREG_EGRESS_ALLOW_LOOPBACK"), std::string::npos) << loopback << why;
  }
  Resolution local = ResolveAndCheck("localhost", policy);
  EXPECT_EQ(local.code, "egress_denied");
  EXPECT_NE(local.message.find("CONNREG_EGRESS_ALLOW_LOOPBACK"), std::string::npos);

  EgressPolicy allowed = PolicyFromEnv({{"CONNREG_EGRESS_ALLOW_LOOPBACK", "true"}});
  EXPECT_EQ(allowed.Check(Ip("127.0.0.1")), "");
  EXPECT_EQ(allowed.Check(Ip("::1")), "");
  // The allow list is the only space allowed, loopback allowance or not.
  EgressPolicy only_ten = PolicyFromEnv(
      {{"CONNREG_EGRESS_ALLOW_LOOPBACK", "true"}, {"CONNREG_EGRESS_ALLOW", "10.0.0.0/8"}});
  EXPECT_FALSE(only_ten.Check(Ip("127.0.0.1")).empty());
}

// --- Finding 6: one organization can starve every other's tests --------------------------------

domain::Connection OfOrganization(std::string org, int port, int timeout_secs) {
  domain::Connection c = MakeConnection(
      "postgres", {{"host", "127.0.0.1"}, {"port", port}, {"database", "d"}, {"user", "u"}},
      timeout_secs);
  c.organization_id = std::move(org);
  return c;
}

TEST(ProbeRegression18, OneOrganizationCannotStarveAnother) {
  // The attack at a smaller scale: org A fills the pool (and its queue) with tests against a
  // black hole; org B's test must still run at once. The pool has 4 workers, so by default one
  // organization runs at most 2 tests at a time.
  BlackHole hole;
  ProbeEngine::Options options = LoopbackOptions();
  options.concurrency = 4;
  ProbeEngine engine(options, FindDriver);
  constexpr int kHanging = 12;
  std::vector<std::promise<TestResult>> hanging(kHanging);
  for (int i = 0; i < kHanging; ++i) {
    engine.Submit(OfOrganization("org-a", hole.port(), 3), {{"password", "pw-a"}},
                  [&hanging, i](TestResult r) { hanging[i].set_value(std::move(r)); });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // org A's tests are running
  auto start = Clock::now();
  TestResult b = engine.RunTest(OfOrganization("org-b", ClosedPort(), 2), {{"password", "pw-b"}});
  double waited = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_LT(waited, 1.0) << "org B waited behind org A";
  const Step* connect = FindStep(b, "connect");
  ASSERT_NE(connect, nullptr) << Steps(b);
  EXPECT_EQ(connect->code, "connection_refused") << Steps(b) << ": " << connect->message;
  for (auto& p : hanging) p.get_future().wait();
}

}  // namespace
}  // namespace connreg::probe
