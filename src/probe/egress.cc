#include "probe/egress.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <memory>

namespace connreg::probe {
namespace {

constexpr std::array<std::uint8_t, 12> kV4MappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

IpAddress FromV6Bytes(const std::uint8_t* b) {
  IpAddress a;
  if (std::memcmp(b, kV4MappedPrefix.data(), kV4MappedPrefix.size()) == 0) {
    a.family = 4;
    std::memcpy(a.bytes.data(), b + 12, 4);
  } else {
    a.family = 6;
    std::memcpy(a.bytes.data(), b, 16);
  }
  return a;
}

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return false;
  }
  return true;
}

// True when `a` has only zero bits after the first `prefix` bits.
bool HostBitsZero(const IpAddress& a, int prefix) {
  for (int bit = prefix; bit < a.bits(); ++bit) {
    if (a.bytes[bit / 8] & (0x80 >> (bit % 8))) return false;
  }
  return true;
}

std::string Quote(std::string_view s) {
  std::string shown(s.substr(0, 64));
  for (char& ch : shown) {
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = '?';
  }
  return "\"" + shown + (s.size() > 64 ? "...\"" : "\"");
}

}  // namespace

Result<IpAddress> IpAddress::Parse(std::string_view text) {
  if (text.empty() || text.size() > INET6_ADDRSTRLEN) {
    return Error::BadRequest("not an IP address: " + Quote(text));
  }
  std::string s(text);
  IpAddress a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) {
    a.family = 4;
    return a;
  }
  std::array<std::uint8_t, 16> v6{};
  if (inet_pton(AF_INET6, s.c_str(), v6.data()) == 1) return FromV6Bytes(v6.data());
  return Error::BadRequest("not an IP address: " + Quote(text));
}

Result<IpAddress> IpAddress::FromSockaddr(const sockaddr* sa) {
  if (sa && sa->sa_family == AF_INET) {
    IpAddress a;
    a.family = 4;
    std::memcpy(a.bytes.data(), &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, 4);
    return a;
  }
  if (sa && sa->sa_family == AF_INET6) {
    return FromV6Bytes(reinterpret_cast<const std::uint8_t*>(
        &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr));
  }
  return Error::BadRequest("not an IPv4 or IPv6 socket address");
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family == 4 ? AF_INET : AF_INET6, bytes.data(), buf, sizeof buf);
  return buf;
}

bool Cidr::Contains(const IpAddress& a) const {
  if (a.family != base.family) return false;
  int full = prefix / 8;
  if (std::memcmp(a.bytes.data(), base.bytes.data(), full) != 0) return false;
  int rest = prefix % 8;
  if (rest == 0) return true;
  std::uint8_t mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a.bytes[full] & mask) == (base.bytes[full] & mask);
}

std::string Cidr::ToString() const { return base.ToString() + "/" + std::to_string(prefix); }

Result<Cidr> ParseCidr(std::string_view text) {
  auto slash = text.find('/');
  std::string_view addr_text = text.substr(0, slash);
  auto addr = IpAddress::Parse(addr_text);
  if (!addr) return Error::BadRequest("not a CIDR block: " + Quote(text));
  Cidr c{*addr, addr->bits()};
  // "::ffff:10.0.0.0/104" is the v4 block 10.0.0.0/8 written as v6.
  bool mapped = addr->family == 4 && addr_text.find(':') != std::string_view::npos;
  if (slash != std::string_view::npos) {
    std::string_view p = text.substr(slash + 1);
    if (!AllDigits(p) || p.size() > 3) {
      return Error::BadRequest("not a CIDR block (bad prefix length): " + Quote(text));
    }
    int prefix = std::stoi(std::string(p));
    if (mapped) {
      if (prefix < 96) {
        return Error::BadRequest("not a CIDR block (an IPv4-mapped prefix must be 96 to 128): " +
                                 Quote(text));
      }
      prefix -= 96;
    }
    if (prefix > addr->bits()) {
      return Error::BadRequest("not a CIDR block (prefix length above " +
                               std::to_string(addr->bits()) + "): " + Quote(text));
    }
    c.prefix = prefix;
  }
  if (!HostBitsZero(c.base, c.prefix)) {
    return Error::BadRequest("not a CIDR block (address bits set beyond the prefix length): " +
                             Quote(text));
  }
  return c;
}

Result<std::vector<Cidr>> ParseCidrList(std::string_view text) {
  std::vector<Cidr> out;
  std::size_t i = 0;
  auto is_sep = [](char ch) {
    return ch == ',' || ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
  };
  while (i < text.size()) {
    while (i < text.size() && is_sep(text[i])) ++i;
    std::size_t start = i;
    while (i < text.size() && !is_sep(text[i])) ++i;
    if (start == i) break;
    auto c = ParseCidr(text.substr(start, i - start));
    if (!c) return c.error();
    out.push_back(*c);
  }
  return out;
}

std::optional<IpAddress::Embedded> IpAddress::EmbeddedV4() const {
  if (family != 6) return std::nullopt;
  const std::uint8_t* b = bytes.data();
  auto zero = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      if (b[i] != 0) return false;
    }
    return true;
  };
  auto v4_at = [&](int at, std::uint8_t flip) {
    IpAddress v4;
    v4.family = 4;
    for (int i = 0; i < 4; ++i) v4.bytes[i] = b[at + i] ^ flip;
    return v4;
  };
  if (zero(0, 12)) {
    // :: and ::1 are themselves (unspecified, loopback), not 0.0.0.0 and 0.0.0.1.
    if (zero(12, 15) && b[15] <= 1) return std::nullopt;
    return Embedded{v4_at(12, 0), "IPv4-compatible"};
  }
  if (zero(0, 8) && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0) {
    return Embedded{v4_at(12, 0), "IPv4-translated"};
  }
  if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && zero(4, 12)) {
    return Embedded{v4_at(12, 0), "NAT64"};
  }
  if (b[0] == 0x20 && b[1] == 0x02) return Embedded{v4_at(2, 0), "6to4"};
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0) {
    return Embedded{v4_at(12, 0xff), "Teredo"};
  }
  return std::nullopt;
}

namespace {

const std::vector<Cidr>* ParsedList(std::initializer_list<const char*> blocks) {
  auto* v = new std::vector<Cidr>;
  for (const char* s : blocks) v->push_back(*ParseCidr(s));
  return v;
}

}  // namespace

const std::vector<Cidr>& BuiltInDenyList() {
  static const std::vector<Cidr>* const list =
      ParsedList({"0.0.0.0/8", "::/128", "169.254.0.0/16", "fe80::/10", "224.0.0.0/4", "ff00::/8",
                  "fd00:ec2::254/128", "100.100.100.200/32", "168.63.129.16/32"});
  return *list;
}

const std::vector<Cidr>& LoopbackList() {
  static const std::vector<Cidr>* const list = ParsedList({"127.0.0.0/8", "::1/128"});
  return *list;
}

std::string EgressPolicy::Denied(const IpAddress& a) const {
  for (const Cidr& c : BuiltInDenyList()) {
    if (c.Contains(a)) return a.ToString() + " is in the denied range " + c.ToString();
  }
  for (const Cidr& c : deny_) {
    if (c.Contains(a)) {
      return a.ToString() + " is in the denied range " + c.ToString() + " (CONNREG_EGRESS_DENY)";
    }
  }
  if (!allow_loopback_) {
    for (const Cidr& c : LoopbackList()) {
      if (c.Contains(a)) {
        return a.ToString() + " is a loopback address, denied unless " +
               std::string(kAllowLoopbackVariable) + "=true";
      }
    }
  }
  return "";
}

std::string EgressPolicy::Check(const IpAddress& a) const {
  if (std::string why = Denied(a); !why.empty()) return why;
  std::optional<IpAddress::Embedded> inner = a.EmbeddedV4();
  if (inner) {
    if (std::string why = Denied(inner->v4); !why.empty()) {
      return a.ToString() + " carries the IPv4 address " + inner->v4.ToString() + " (" +
             std::string(inner->scheme) + "), and " + why;
    }
  }
  if (allow_.empty()) return "";
  // Packets to an address that carries an IPv4 address end up there: that is what must be allowed.
  const IpAddress& destination = inner ? inner->v4 : a;
  for (const Cidr& c : allow_) {
    if (c.Contains(destination)) return "";
  }
  return destination.ToString() + " is not in any allowed range (CONNREG_EGRESS_ALLOW)";
}

Resolution ResolveAndCheck(std::string_view host, const EgressPolicy& policy) {
  Resolution r;
  std::string name(host);
  // Bracketed IPv6 literals ("[::1]") are accepted as the bare literal.
  if (name.size() > 2 && name.front() == '[' && name.back() == ']') {
    name = name.substr(1, name.size() - 2);
  }
  if (name.empty() || name.find('\0') != std::string::npos) {
    r.code = "dns_failure";
    r.message = "the host is empty";
    return r;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* raw = nullptr;
  int rc = getaddrinfo(name.c_str(), nullptr, &hints, &raw);
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> list(raw, &freeaddrinfo);
  if (rc != 0) {
    r.code = "dns_failure";
    r.message = "could not resolve " + name + ": " + gai_strerror(rc);
    return r;
  }
  std::vector<IpAddress> seen;
  for (addrinfo* ai = list.get(); ai; ai = ai->ai_next) {
    auto a = IpAddress::FromSockaddr(ai->ai_addr);
    if (!a) continue;
    if (std::string why = policy.Check(*a); !why.empty()) {
      r.code = "egress_denied";
      r.message = "connections to " + name + " are not allowed: " + why;
      return r;
    }
    bool dup = false;
    for (const IpAddress& s : seen) dup = dup || s == *a;
    if (!dup) seen.push_back(*a);
  }
  if (seen.empty()) {
    r.code = "dns_failure";
    r.message = "no IPv4 or IPv6 address for " + name;
    return r;
  }
  r.addresses = std::move(seen);
  return r;
}

}  // namespace connreg::probe
