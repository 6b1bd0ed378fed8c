// Egress policy for connection tests (contract section 7): every address a test would connect to
// is resolved first, checked against deny and allow lists of CIDR blocks, and then connected to by
// that exact address, so a DNS answer cannot change between the check and the connect.
#pragma once

#include <array>
#include <cstdint>
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
  int bits() const { return family == 4 ? 32 : 128; }
  friend bool operator==(const IpAddress&, const IpAddress&) = default;
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

// The default deny list: 0.0.0.0/8, 169.254.0.0/16 (link-local, cloud metadata), fe80::/10,
// 224.0.0.0/4 and ff00::/8 (multicast), fd00:ec2::254/128 (the AWS IPv6 metadata endpoint).
// Loopback and private ranges are allowed: operators who need them closed set their own list.
const std::vector<Cidr>& DefaultDenyList();

// Immutable; thread-safe.
class EgressPolicy {
 public:
  EgressPolicy() : EgressPolicy(DefaultDenyList(), {}) {}
  // An empty `allow` list allows everything the deny list does not deny.
  EgressPolicy(std::vector<Cidr> deny, std::vector<Cidr> allow)
      : deny_(std::move(deny)), allow_(std::move(allow)) {}

  // Empty when `a` may be connected to, else why not (naming the rule).
  std::string Check(const IpAddress& a) const;

  const std::vector<Cidr>& deny() const { return deny_; }
  const std::vector<Cidr>& allow() const { return allow_; }

 private:
  std::vector<Cidr> deny_;
  std::vector<Cidr> allow_;
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
