// libFuzzer target: probe::ParseCidrList, ParseCidr and IpAddress::Parse on arbitrary text (the
// CONNREG_EGRESS_DENY / CONNREG_EGRESS_ALLOW configuration and the IP literals of hosts).
// Properties: a parsed address prints as a literal that parses back to the same address; a parsed
// block contains its own base and prints as a block that parses back to itself.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "probe/egress.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace connreg::probe;
  std::string_view text(reinterpret_cast<const char*>(data), size);

  if (auto a = IpAddress::Parse(text); a.ok()) {
    if (a->family != 4 && a->family != 6) std::abort();
    auto back = IpAddress::Parse(a->ToString());
    if (!back.ok() || !(*back == *a)) std::abort();
    EgressPolicy policy;
    (void)policy.Check(*a);
  }
  if (auto list = ParseCidrList(text); list.ok()) {
    for (const Cidr& c : *list) {
      if (c.prefix < 0 || c.prefix > c.base.bits()) std::abort();
      if (!c.Contains(c.base)) std::abort();
      auto back = ParseCidr(c.ToString());
      if (!back.ok() || !(back->base == c.base) || back->prefix != c.prefix) std::abort();
    }
    if (!list->empty()) {
      EgressPolicy policy(*list, *list);
      (void)policy.Check((*list)[0].base);
    }
  }
  return 0;
}
