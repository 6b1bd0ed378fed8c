// A driver's own TCP connection to one egress-checked address, for the handshake checks a client
// library does not make before it sends credentials: SQL Server's PRELOGIN (does the server offer
// encryption?) and MySQL's greeting (does it offer TLS?). Every call ends by the run's deadline.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "probe/deadline.h"
#include "probe/egress.h"

namespace connreg::probe {

// Waits until `fd` is readable (or writable) or `deadline` passes: 1 ready, 0 deadline, -1 error
// (also for fd < 0). POLLERR and POLLHUP count as ready: the next read or write says what is
// wrong.
int WaitFd(int fd, bool for_write, const Deadline& deadline);

// Several egress-checked addresses of one host name (a name with both an IPv6 and an IPv4
// address, such as `localhost` in Debian's /etc/hosts): connects to all of them at once and moves
// the first that accepts a TCP connection on `port` to the front, so that a driver, which
// connects to the first address, does not fail on one that is down while another is up. The
// order stays as it is when none answers by `deadline` (the driver's connect then reports why).
// The probing connections are closed without sending a byte.
void PreferReachable(std::vector<IpAddress>& addresses, int port, const Deadline& deadline);

// Not thread-safe; used by one driver run.
class RawConnection {
 public:
  RawConnection(const IpAddress& address, int port, const Deadline& deadline);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // Each returns false after setting code() (connection_refused, timeout or protocol_error) and
  // message(). Receive appends exactly `n` bytes to `out`; a connection closed before that is a
  // protocol_error whose message names `during` ("the TDS pre-login handshake").
  bool Connect();
  bool Send(std::string_view bytes, std::string_view during);
  bool Receive(std::string& out, std::size_t n, std::string_view during);

  std::string_view code() const { return code_; }
  const std::string& message() const { return message_; }
  // "203.0.113.7 port 1433", for messages.
  const std::string& where() const { return where_; }
  // The connected, non-blocking socket (-1 before Connect), for a TLS handshake over it.
  int fd() const { return fd_; }

 private:
  bool Fail(std::string_view code, std::string message);
  int Wait(bool for_write) const { return WaitFd(fd_, for_write, deadline_); }

  IpAddress address_;
  int port_;
  const Deadline& deadline_;
  int fd_ = -1;
  std::string where_;
  std::string_view code_;
  std::string message_;
};

}  // namespace connreg::probe
