// Egress policy for connection tests (contract section 7): every address a test would connect to
// is resolved first, checked against deny and allow lists of CIDR blocks, and then connected to by
// that exact address, so a DNS answer cannot change between the check and the connect.
//
// The policy, in the order it is applied:
//   1. the built-in deny list (BuiltInDenyList), which no setting removes;
//   2. the operator's deny list (CONNREG_EGRESS_DENY), which adds to it;
//   3. loopback (127.0.0.0/8, ::1), denied unless CONNREG_EGRESS_ALLOW_LOOPBACK=true;
//   4. the operator's allow list (CONNREG_EGRESS_ALLOW): when set, the only space allowed.
// An IPv6 address that carries an IPv4 address (IPv4-compatible, NAT64, 6to4, Teredo) is denied
// when either it or the IPv4 address it carries is denied, and an allow list is checked against
// the IPv4 address, which is where the packets end up.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

struct sockaddr;

namespace connreg::probe {

// An IPv4 or IPv6 address. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are stored as the IPv4
// address they reach, so that a v4 rule cannot be bypassed by writing the address as v6.
struct IpAddress {
  int family = 0;                        // 4 or 6
  std::array<std::uint8_t, 16> bytes{};  // network order; IPv4 uses the first 4

  // Parses an IP literal ("10.0.0.1", "fe80::1"); no brackets, ports or zone ids.
  static Result<IpAddress> Parse(std::string_view text);
  // From a sockaddr_in / sockaddr_in6; fails for other families.
  static Result<IpAddress> FromSockaddr(const sockaddr* sa);

  // The literal a driver connects to ("10.0.0.1", "2001:db8::1").
  std::string ToString() const;
  // The IPv4 address an IPv6 address of a translation or tunnelling scheme carries, with the
  // scheme's name: IPv4-compatible (::a.b.c.d, deprecated; not :: or ::1), IPv4-translated
  // (::ffff:0:a.b.c.d), NAT64 (64:ff9b::a.b.c.d), 6to4 (2002:AABB:CCDD::/48) and Teredo
  // (2001:0::/32, the client address stored inverted in the last 32 bits). nullopt otherwise.
  struct Embedded;
  std::optional<Embedded> EmbeddedV4() const;
  int bits() const { return family == 4 ? 32 : 128; }
  friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

struct IpAddress::Embedded {
  IpAddress v4;
  std::string_view scheme;  // "NAT64", "6to4", ...
};

// A CIDR block such as 10.0.0.0/8 or fd00::/8.
struct Cidr {
  IpAddress base;
  int prefix = 0;

  bool Contains(const IpAddress& a) const;
  std::string ToString() const;
};

// Parses "a.b.c.d/n", "v6addr/n" or a bare address (a /32 or /128 block). Text is untrusted
// configuration: anything else (bad digits, prefix out of range, host bits set below the prefix,
// spaces) is a kBadRequest error whose message quotes the bad entry.
Result<Cidr> ParseCidr(std::string_view text);
// A comma- and/or whitespace-separated list; empty text is an empty list.
Result<std::vector<Cidr>> ParseCidrList(std::string_view text);

// The built-in deny list, applied whatever the configuration: unspecified (0.0.0.0/8, ::/128),
// link-local (169.254.0.0/16, fe80::/10), multicast (224.0.0.0/4, ff00::/8) and the cloud
// metadata addresses (fd00:ec2::254 AWS IPv6, 100.100.100.200 Alibaba, 168.63.129.16 Azure
// WireServer; 169.254.169.254 is link-local). Private ranges are not in it: warehouses live there.
const std::vector<Cidr>& BuiltInDenyList();
// 127.0.0.0/8 and ::1/128.
const std::vector<Cidr>& LoopbackList();

// The variable that allows loopback; the message of a loopback denial names it.
inline constexpr char kAllowLoopbackVariable[] = "CONNREG_EGRESS_ALLOW_LOOPBACK";

// Immutable; thread-safe.
class EgressPolicy {
 public:
  // The built-in denials and loopback denied; everything else allowed.
  EgressPolicy() = default;
  // `deny` adds to the built-in list (it cannot take anything out of it). An empty `allow` list
  // allows everything not denied; a non-empty one is the only space allowed (minus the denials).
  EgressPolicy(std::vector<Cidr> deny, std::vector<Cidr> allow, bool allow_loopback = false)
      : deny_(std::move(deny)), allow_(std::move(allow)), allow_loopback_(allow_loopback) {}

  // Empty when `a` may be connected to, else why not (naming the rule, and for loopback the
  // variable that allows it).
  std::string Check(const IpAddress& a) const;

  const std::vector<Cidr>& deny() const { return deny_; }  // the operator's, without the built-in
  const std::vector<Cidr>& allow() const { return allow_; }
  bool allow_loopback() const { return allow_loopback_; }

 private:
  // Check of one address against the deny lists and loopback only.
  std::string Denied(const IpAddress& a) const;

  std::vector<Cidr> deny_;
  std::vector<Cidr> allow_;
  bool allow_loopback_ = false;
};

// Outcome of resolving a host and checking every address it resolves to.
struct Resolution {
  std::vector<IpAddress> addresses;  // all allowed, in resolver order; empty on failure
  std::string code;                  // empty, dns_failure or egress_denied
  std::string message;
};

// Resolves `host` (a name or an IP literal) and checks every address against `policy`; a single
// denied address fails the whole resolution, so a name cannot smuggle a denied address in beside
// an allowed one. Blocking (getaddrinfo); the caller's watchdog bounds it.
Resolution ResolveAndCheck(std::string_view host, const EgressPolicy& policy);

}  // namespace connreg::probe
