#include "probe/scrub.h"

#include <gtest/gtest.h>

#include "crypto/encoding.h"

namespace connreg::probe {
namespace {

using Secrets = std::map<std::string, std::string>;

TEST(ProbeScrub, RedactsRawAndEncodedForms) {
  const std::string pw = "s3cr3t/p@ss+word?";
  Scrubber s(Secrets{{"password", pw}});
  auto check = [&](const std::string& text) {
    std::string out = s.Scrub(text);
    EXPECT_EQ(out.find(pw), std::string::npos) << out;
    EXPECT_NE(out.find("[redacted]"), std::string::npos) << out;
    return out;
  };
  EXPECT_EQ(check("password=" + pw + " failed"), "password=[redacted] failed");
  check("basic " + crypto::Base64Encode(pw));
  check("token " + crypto::Base64UrlEncode(pw));
  check("url postgres://u:s3cr3t%2Fp%40ss%2Bword%3F@h/db");
  check("url postgres://u:s3cr3t%2fp%40ss%2bword%3f@h/db");
  Scrubber quote(Secrets{{"password", "it's"}});
  EXPECT_EQ(quote.Scrub("PASSWORD 'it''s'"), "PASSWORD '[redacted]'");
}

TEST(ProbeScrub, RedactsEverySecretAndPrefersTheLongestForm) {
  Scrubber s(Secrets{{"password", "abc"}, {"token", "abcdef"}, {"empty", ""}});
  EXPECT_EQ(s.Scrub("x abcdef y abc z"), "x [redacted] y [redacted] z");
  EXPECT_EQ(s.Scrub("nothing here"), "nothing here") << "an empty secret redacts nothing";
}

TEST(ProbeScrub, ASecretInsideTheMarkerDoesNotLoop) {
  Scrubber s(Secrets{{"password", "dact"}});
  EXPECT_EQ(s.Scrub("dactdact redact"), "[redacted][redacted] re[redacted]");
}

TEST(ProbeScrub, AShortSecretIsRedactedOnlyAsAWordOfItsOwn) {
  // A one-letter password must not mangle libpq's "port 1 failed ... accepting TCP/IP".
  Scrubber s(Secrets{{"password", "p"}, {"token", "x9"}});
  EXPECT_EQ(s.Scrub("server at \"h\", port 1 failed: is it accepting TCP/IP connections?"),
            "server at \"h\", port 1 failed: is it accepting TCP/IP connections?");
  EXPECT_EQ(
      s.Scrub("password \"p\" rejected; p; (p) x9=x9 ax9 x9b"),
      "password \"[redacted]\" rejected; [redacted]; ([redacted]) [redacted]=[redacted] ax9 x9b");
}

TEST(ProbeScrub, CapsLengthAfterRedactingOnACharacterBoundary) {
  Scrubber s(Secrets{{"password", "hunter2hunter2"}}, 40);
  std::string text = std::string(30, 'x') + "hunter2hunter2" + std::string(30, 'y');
  std::string out = s.Scrub(text);
  EXPECT_LE(out.size(), 40u);
  EXPECT_EQ(out.find("hunter"), std::string::npos) << out;
  EXPECT_EQ(out.substr(out.size() - 3), "...");

  Scrubber utf8(Secrets{}, 20);
  std::string accents;
  for (int i = 0; i < 20; ++i) accents += "\xC3\xA9";  // é
  out = utf8.Scrub(accents);
  EXPECT_LE(out.size(), 20u);
  EXPECT_EQ(out.substr(out.size() - 3), "...");
  EXPECT_EQ((out.size() - 3) % 2, 0u) << "never cuts inside a character";
}

TEST(ProbeScrub, ReplacesControlCharactersAndInvalidUtf8) {
  Scrubber s(Secrets{});
  EXPECT_EQ(s.Scrub("line one\nline\ttwo\r\n"), "line one line two");
  EXPECT_EQ(s.Scrub("bad \xff byte"), "bad ? byte");
  EXPECT_EQ(s.Scrub("caf\xC3\xA9"), "caf\xC3\xA9");
}

}  // namespace
}  // namespace connreg::probe
