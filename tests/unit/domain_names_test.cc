#include "domain/names.h"

#include <gtest/gtest.h>

#include <boost/json/value.hpp>

namespace connreg::domain {
namespace {

Result<std::string> Name(std::string text) {
  return ParseName(boost::json::value(text), "name", 255);
}

std::string ErrorOf(const Result<std::string>& r) {
  EXPECT_FALSE(r.ok());
  if (r.ok()) return "<ok: " + *r + ">";
  EXPECT_EQ(r.error().code, ErrorCode::kBadRequest);
  return r.error().message;
}

TEST(DomainNames, TrimsAndCountsCodePoints) {
  EXPECT_EQ(Name("  Warehouse \t").value(), "Warehouse");
  EXPECT_EQ(Name(std::string(255, 'x')).value().size(), 255u);
  std::string e_acute_255;
  for (int i = 0; i < 255; ++i) e_acute_255 += "\xC3\xA9";
  EXPECT_TRUE(Name(e_acute_255).ok()) << "255 characters of two bytes each";
  EXPECT_EQ(ErrorOf(Name(e_acute_255 + "x")),
            "name must be 1 to 255 characters after trimming whitespace");
  EXPECT_EQ(ErrorOf(Name("   ")), "name must be 1 to 255 characters after trimming whitespace");
  EXPECT_EQ(ErrorOf(ParseName(boost::json::value(3), "name", 255)), "name must be a string");
}

// Issue 18, finding 7: names accepted C1 controls and the bidirectional overrides and isolates
// (Trojan Source spoofing in any UI that shows them).
TEST(DomainNames, Finding7C1ControlsAndBidiOverridesAreRefused) {
  for (const char* c1 : {"\xC2\x80", "\xC2\x85", "\xC2\x9B", "\xC2\x9F"}) {
    EXPECT_EQ(ErrorOf(Name(std::string("a") + c1 + "b")),
              "name must not contain control characters");
  }
  for (const char* c0 : {"\x01", "\x1B", "\x7F", "\n"}) {
    EXPECT_EQ(ErrorOf(Name(std::string("a") + c0 + "b")),
              "name must not contain control characters");
  }
  // U+202A..U+202E (LRE, RLE, PDF, LRO, RLO) and U+2066..U+2069 (LRI, RLI, FSI, PDI).
  for (const char* bidi :
       {"\xE2\x80\xAA", "\xE2\x80\xAB", "\xE2\x80\xAC", "\xE2\x80\xAD", "\xE2\x80\xAE",
        "\xE2\x81\xA6", "\xE2\x81\xA7", "\xE2\x81\xA8", "\xE2\x81\xA9"}) {
    EXPECT_EQ(ErrorOf(Name(std::string("invoice") + bidi + "fdp.exe")),
              "name must not contain bidirectional override or isolate characters");
  }
  // Their neighbours are ordinary text: U+00A0 (no-break space), U+00A1, U+2029, U+202F, U+206A.
  for (const char* ok : {"\xC2\xA0", "\xC2\xA1", "\xE2\x80\xA9", "\xE2\x80\xAF", "\xE2\x81\xAA",
                         "\xF0\x9F\x98\x80"}) {
    EXPECT_TRUE(Name(std::string("a") + ok + "b").ok()) << ok;
  }
}

}  // namespace
}  // namespace connreg::domain
