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

const std::vector<Cidr>& DefaultDenyList() {
  static const std::vector<Cidr>* const list = [] {
    auto* v = new std::vector<Cidr>;
    for (const char* s : {"0.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "fe80::/10", "ff00::/8",
                          "fd00:ec2::254/128"}) {
      v->push_back(*ParseCidr(s));
    }
    return v;
  }();
  return *list;
}

std::string EgressPolicy::Check(const IpAddress& a) const {
  for (const Cidr& c : deny_) {
    if (c.Contains(a)) return a.ToString() + " is in the denied range " + c.ToString();
  }
  if (allow_.empty()) return "";
  for (const Cidr& c : allow_) {
    if (c.Contains(a)) return "";
  }
  return a.ToString() + " is not in any allowed range";
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
