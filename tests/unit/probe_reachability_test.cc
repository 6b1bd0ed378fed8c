// PreferReachable (probe/drivers/raw_connection.h): a host name with several addresses, one of
// them down, is tested on the one that answers. Found on a clean Debian 12 root, whose /etc/hosts
// maps `localhost` to ::1 as well as 127.0.0.1: the drivers connected to ::1, where the test
// server did not listen, and reported connection_refused.
#include <gtest/gtest.h>

#include <chrono>

#include "probe/raw_connection.h"
#include "probe_test_support.h"

namespace connreg::probe {
namespace {

using test_support::BlackHole;
using test_support::ClosedPort;

IpAddress Ip(const char* text) { return *IpAddress::Parse(text); }

TEST(ProbeReachability, HostWithADownIpv6AddressIsTestedOnItsIpv4Address) {
  BlackHole listener;  // 127.0.0.1 only: ::1 on the same port refuses
  std::vector<IpAddress> addresses{Ip("::1"), Ip("127.0.0.1")};
  PreferReachable(addresses, listener.port(), Deadline::In(std::chrono::seconds(5)));
  ASSERT_EQ(addresses.size(), 2u);
  EXPECT_EQ(addresses.front().ToString(), "127.0.0.1");
  EXPECT_EQ(addresses.back().ToString(), "::1");
}

TEST(ProbeReachability, OrderStaysWhenTheFirstAnswersOrNoneDoes) {
  BlackHole listener;
  std::vector<IpAddress> up_first{Ip("127.0.0.1"), Ip("::1")};
  PreferReachable(up_first, listener.port(), Deadline::In(std::chrono::seconds(5)));
  EXPECT_EQ(up_first.front().ToString(), "127.0.0.1");

  std::vector<IpAddress> none{Ip("::1"), Ip("127.0.0.1")};
  PreferReachable(none, ClosedPort(), Deadline::In(std::chrono::seconds(5)));
  EXPECT_EQ(none.front().ToString(), "::1");  // the driver's connect then says why
}

}  // namespace
}  // namespace connreg::probe
