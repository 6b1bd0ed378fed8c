#include "probe/egress.h"

#include <gtest/gtest.h>

namespace connreg::probe {
namespace {

IpAddress Ip(std::string_view s) {
  auto a = IpAddress::Parse(s);
  EXPECT_TRUE(a.ok()) << s;
  return a.ok() ? *a : IpAddress{};
}

Cidr Block(std::string_view s) {
  auto c = ParseCidr(s);
  EXPECT_TRUE(c.ok()) << s << ": " << (c.ok() ? "" : c.error().message);
  return c.ok() ? *c : Cidr{};
}

TEST(ProbeEgressCidr, ParsesV4AndV6Blocks) {
  EXPECT_EQ(Block("10.0.0.0/8").ToString(), "10.0.0.0/8");
  EXPECT_EQ(Block("0.0.0.0/0").ToString(), "0.0.0.0/0");
  EXPECT_EQ(Block("1.2.3.4/32").ToString(), "1.2.3.4/32");
  EXPECT_EQ(Block("1.2.3.4").ToString(), "1.2.3.4/32") << "a bare address is a host block";
  EXPECT_EQ(Block("::/0").ToString(), "::/0");
  EXPECT_EQ(Block("2001:db8::/32").ToString(), "2001:db8::/32");
  EXPECT_EQ(Block("fd00:ec2::254/128").ToString(), "fd00:ec2::254/128");
  EXPECT_EQ(Block("fd00:ec2::254").ToString(), "fd00:ec2::254/128");
  EXPECT_EQ(Block("fe80::/10").ToString(), "fe80::/10");
  // An IPv4-mapped block is the IPv4 block it reaches.
  EXPECT_EQ(Block("::ffff:10.0.0.0/104").ToString(), "10.0.0.0/8");
}

TEST(ProbeEgressCidr, RejectsGarbageWithTheBadEntryInTheMessage) {
  for (const char* bad : {"",
                          "/8",
                          "10.0.0.0/",
                          "10.0.0.0/33",
                          "::/129",
                          "10.0.0.0/8/9",
                          "10.0.0/8",
                          "10.0.0.256/32",
                          "abc",
                          "10.0.0.0/-1",
                          "10.0.0.0/+8",
                          "10.0.0.0/1e1",
                          " 10.0.0.0/8",
                          "10.0.0.0/8 ",
                          "10.0.0.0 /8",
                          "10.0.0.0/0008",
                          "fe80::1%eth0/128",
                          "[::1]/128",
                          "::ffff:10.0.0.0/8",
                          "10.0.0.0/8\n",
                          "example.com/24"}) {
    auto c = ParseCidr(bad);
    ASSERT_FALSE(c.ok()) << "accepted \"" << bad << "\"";
    EXPECT_EQ(c.error().code, ErrorCode::kBadRequest);
    EXPECT_NE(c.error().message.find("not a CIDR block"), std::string::npos) << c.error().message;
  }
  auto c = ParseCidr("300.1.1.1/8");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("\"300.1.1.1/8\""), std::string::npos) << c.error().message;
}

TEST(ProbeEgressCidr, RejectsHostBitsBeyondThePrefix) {
  EXPECT_FALSE(ParseCidr("10.0.0.1/8").ok());
  EXPECT_FALSE(ParseCidr("172.17.0.0/12").ok());
  EXPECT_FALSE(ParseCidr("fe80::1/10").ok());
  EXPECT_FALSE(ParseCidr("0.0.0.1/0").ok());
  EXPECT_TRUE(ParseCidr("172.16.0.0/12").ok());
}

TEST(ProbeEgressCidr, MatchesAtEveryPrefixEdge) {
  EXPECT_TRUE(Block("10.0.0.0/8").Contains(Ip("10.255.255.255")));
  EXPECT_FALSE(Block("10.0.0.0/8").Contains(Ip("11.0.0.0")));
  EXPECT_FALSE(Block("10.0.0.0/8").Contains(Ip("9.255.255.255")));
  EXPECT_TRUE(Block("172.16.0.0/12").Contains(Ip("172.31.255.255")));
  EXPECT_FALSE(Block("172.16.0.0/12").Contains(Ip("172.32.0.0")));
  EXPECT_TRUE(Block("0.0.0.0/0").Contains(Ip("255.255.255.255")));
  EXPECT_FALSE(Block("0.0.0.0/0").Contains(Ip("::1"))) << "families never match each other";
  EXPECT_TRUE(Block("::/0").Contains(Ip("2001:db8::1")));
  EXPECT_FALSE(Block("::/0").Contains(Ip("1.2.3.4")));
  EXPECT_TRUE(Block("1.2.3.4/32").Contains(Ip("1.2.3.4")));
  EXPECT_FALSE(Block("1.2.3.4/32").Contains(Ip("1.2.3.5")));
  EXPECT_TRUE(Block("fd00:ec2::254/128").Contains(Ip("fd00:ec2::254")));
  EXPECT_FALSE(Block("fd00:ec2::254/128").Contains(Ip("fd00:ec2::255")));
  EXPECT_TRUE(Block("fe80::/10").Contains(Ip("febf:ffff::1")));
  EXPECT_FALSE(Block("fe80::/10").Contains(Ip("fec0::1")));
  EXPECT_TRUE(Block("10.0.0.0/8").Contains(Ip("::ffff:10.1.2.3"))) << "v4-mapped is v4";
}

TEST(ProbeEgressPolicy, DefaultDeniesMetadataLinkLocalMulticastZeroAndLoopback) {
  EgressPolicy policy;
  for (const char* denied :
       {"169.254.169.254", "::ffff:169.254.169.254", "0.0.0.0", "0.1.2.3", "224.0.0.1",
        "239.255.255.250", "ff02::1", "fe80::1", "fd00:ec2::254", "127.0.0.1", "::1"}) {
    EXPECT_FALSE(policy.Check(Ip(denied)).empty()) << denied;
  }
  for (const char* allowed :
       {"10.1.2.3", "192.168.1.1", "8.8.8.8", "2001:db8::1", "fd00:ec2::253", "100.64.0.1"}) {
    EXPECT_EQ(policy.Check(Ip(allowed)), "") << allowed;
  }
  EXPECT_NE(policy.Check(Ip("169.254.169.254")).find("169.254.0.0/16"), std::string::npos);
}

TEST(ProbeEgressPolicy, AllowListRequiresMembershipAndDenyWins) {
  auto deny = ParseCidrList("10.9.0.0/16");
  auto allow = ParseCidrList("10.0.0.0/8, 2001:db8::/32");
  ASSERT_TRUE(deny.ok() && allow.ok());
  EgressPolicy policy(*deny, *allow);
  EXPECT_EQ(policy.Check(Ip("10.1.1.1")), "");
  EXPECT_EQ(policy.Check(Ip("2001:db8::5")), "");
  EXPECT_NE(policy.Check(Ip("8.8.8.8")).find("not in any allowed range"), std::string::npos);
  EXPECT_NE(policy.Check(Ip("10.9.1.1")).find("denied range 10.9.0.0/16"), std::string::npos);
  EXPECT_FALSE(policy.Check(Ip("127.0.0.1")).empty());
}

TEST(ProbeEgressPolicy, ParsesListsAndRejectsAnyBadEntry) {
  auto list = ParseCidrList(" 10.0.0.0/8,192.168.0.0/16\n::1\t, fd00::/8 ");
  ASSERT_TRUE(list.ok()) << list.error().message;
  EXPECT_EQ(list->size(), 4u);
  auto empty = ParseCidrList("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  auto bad = ParseCidrList("10.0.0.0/8,,garbage");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("\"garbage\""), std::string::npos) << bad.error().message;
}

TEST(ProbeEgressResolve, ChecksEveryResolvedAddress) {
  EgressPolicy policy({}, {}, /*allow_loopback=*/true);
  Resolution ok = ResolveAndCheck("127.0.0.1", policy);
  EXPECT_EQ(ok.code, "");
  ASSERT_EQ(ok.addresses.size(), 1u);
  EXPECT_EQ(ok.addresses[0].ToString(), "127.0.0.1");

  Resolution local = ResolveAndCheck("localhost", policy);
  EXPECT_EQ(local.code, "") << local.message;

  Resolution metadata = ResolveAndCheck("169.254.169.254", policy);
  EXPECT_EQ(metadata.code, "egress_denied");
  EXPECT_TRUE(metadata.addresses.empty());

  Resolution mapped = ResolveAndCheck("::ffff:169.254.169.254", policy);
  EXPECT_EQ(mapped.code, "egress_denied") << mapped.message;

  Resolution none = ResolveAndCheck("no-such-host.invalid", policy);
  EXPECT_EQ(none.code, "dns_failure");

  EgressPolicy deny_loopback({*ParseCidr("127.0.0.0/8"), *ParseCidr("::1")}, {}, true);
  EXPECT_EQ(ResolveAndCheck("localhost", deny_loopback).code, "egress_denied")
      << "a name is denied when any of its addresses is";
}

TEST(ProbeEgressAddress, DecodesTheIpv4AddressEveryTranslationSchemeCarries) {
  auto carried = [](std::string_view v6) {
    auto inner = Ip(v6).EmbeddedV4();
    return inner ? inner->v4.ToString() + " " + std::string(inner->scheme) : "none";
  };
  EXPECT_EQ(carried("::127.0.0.1"), "127.0.0.1 IPv4-compatible");
  EXPECT_EQ(carried("::ffff:0:10.1.2.3"), "10.1.2.3 IPv4-translated");
  EXPECT_EQ(carried("64:ff9b::169.254.169.254"), "169.254.169.254 NAT64");
  EXPECT_EQ(carried("2002:a9fe:a9fe::1"), "169.254.169.254 6to4");
  // RFC 4380's example: the client 192.0.2.45 is stored inverted as 3fff:fdd2.
  EXPECT_EQ(carried("2001:0:4136:e378:8000:63bf:3fff:fdd2"), "192.0.2.45 Teredo");
  EXPECT_EQ(carried("::"), "none") << ":: is unspecified, not 0.0.0.0";
  EXPECT_EQ(carried("::1"), "none") << "::1 is loopback, not 0.0.0.1";
  EXPECT_EQ(carried("2001:db8::1"), "none");
  EXPECT_EQ(carried("10.0.0.1"), "none");
}

}  // namespace
}  // namespace connreg::probe
