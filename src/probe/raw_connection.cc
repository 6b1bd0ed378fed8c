#include "probe/raw_connection.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <vector>

#include "probe/test_result.h"

namespace connreg::probe {
namespace {

constexpr std::string_view kSilent = "no answer from the server before the test's deadline";

std::string_view CodeForConnectErrno(int err) {
  return err == ETIMEDOUT ? code::kTimeout : code::kConnectionRefused;
}

// `address`:`port` as a sockaddr for connect(2); returns its length.
socklen_t ToSockaddr(const IpAddress& address, int port, sockaddr_storage& ss) {
  ss = {};
  if (address.family == 4) {
    auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(static_cast<std::uint16_t>(port));
    std::memcpy(&sa->sin_addr, address.bytes.data(), 4);
    return sizeof(sockaddr_in);
  }
  auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
  sa->sin6_family = AF_INET6;
  sa->sin6_port = htons(static_cast<std::uint16_t>(port));
  std::memcpy(&sa->sin6_addr, address.bytes.data(), 16);
  return sizeof(sockaddr_in6);
}

// A non-blocking socket whose connect to `address`:`port` has started (or finished); -1 when it
// failed at once.
int StartConnect(const IpAddress& address, int port) {
  sockaddr_storage ss;
  socklen_t len = ToSockaddr(address, port, ss);
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0 || errno == EINPROGRESS) return fd;
  ::close(fd);
  return -1;
}

}  // namespace

void PreferReachable(std::vector<IpAddress>& addresses, int port, const Deadline& deadline) {
  if (addresses.size() < 2) return;
  std::vector<pollfd> fds;
  for (const IpAddress& a : addresses) {
    fds.push_back({StartConnect(a, port), POLLOUT, 0});  // fd -1: poll ignores the entry
  }
  std::size_t winner = fds.size();
  std::size_t pending = static_cast<std::size_t>(
      std::count_if(fds.begin(), fds.end(), [](const pollfd& p) { return p.fd >= 0; }));
  while (winner == fds.size() && pending > 0) {
    long long ms = deadline.remaining().count();
    if (ms <= 0) break;
    int rc = ::poll(fds.data(), fds.size(), static_cast<int>(std::min<long long>(ms, INT_MAX)));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) break;
    for (std::size_t i = 0; i < fds.size() && winner == fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      int err = 0;
      socklen_t len = sizeof err;
      if (::getsockopt(fds[i].fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
        winner = i;
      } else {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --pending;
      }
    }
  }
  for (const pollfd& p : fds) {
    if (p.fd >= 0) ::close(p.fd);
  }
  if (winner < addresses.size()) {
    std::rotate(addresses.begin(), addresses.begin() + static_cast<std::ptrdiff_t>(winner),
                addresses.begin() + static_cast<std::ptrdiff_t>(winner) + 1);
  }
}

RawConnection::RawConnection(const IpAddress& address, int port, const Deadline& deadline)
    : address_(address),
      port_(port),
      deadline_(deadline),
      where_(address.ToString() + " port " + std::to_string(port)) {}

RawConnection::~RawConnection() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawConnection::Fail(std::string_view code, std::string message) {
  code_ = code;
  message_ = std::move(message);
  return false;
}

int WaitFd(int fd, bool for_write, const Deadline& deadline) {
  if (fd < 0) return -1;
  for (;;) {
    long long ms = deadline.remaining().count();
    if (ms <= 0) return 0;
    pollfd p{fd, static_cast<short>(for_write ? POLLOUT : POLLIN), 0};
    int rc = ::poll(&p, 1, static_cast<int>(std::min<long long>(ms, INT_MAX)));
    if (rc < 0 && errno == EINTR) continue;
    return rc < 0 ? -1 : (rc > 0 ? 1 : 0);
  }
}

bool RawConnection::Connect() {
  sockaddr_storage ss;
  socklen_t ss_len = ToSockaddr(address_, port_, ss);
  fd_ = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return Fail(code::kProtocolError, "socket: " + std::string(std::strerror(errno)));
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&ss), ss_len) == 0) return true;
  if (errno != EINPROGRESS) {
    int err = errno;
    return Fail(CodeForConnectErrno(err),
                "could not connect to " + where_ + ": " + std::strerror(err));
  }
  int w = Wait(/*for_write=*/true);
  if (w == 0)
    return Fail(code::kTimeout, "could not connect to " + where_ + ": " + std::string(kSilent));
  int err = 0;
  socklen_t len = sizeof err;
  if (w < 0 || ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) {
    return Fail(CodeForConnectErrno(err),
                "could not connect to " + where_ + ": " + std::strerror(err));
  }
  return true;
}

bool RawConnection::Send(std::string_view bytes, std::string_view during) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      int w = Wait(/*for_write=*/true);
      if (w == 0) return Fail(code::kTimeout, std::string(kSilent));
      if (w > 0) continue;
    }
    return Fail(code::kProtocolError,
                "the server at " + where_ + " closed the connection during " + std::string(during));
  }
  return true;
}

bool RawConnection::Receive(std::string& out, std::size_t n, std::string_view during) {
  std::size_t want = out.size() + n;
  while (out.size() < want) {
    char buf[4096];
    ssize_t got = ::recv(fd_, buf, std::min(sizeof buf, want - out.size()), 0);
    if (got > 0) {
      out.append(buf, static_cast<std::size_t>(got));
      continue;
    }
    if (got < 0 && (errno == EAGAIN || errno == EINTR)) {
      int w = Wait(/*for_write=*/false);
      if (w == 0) return Fail(code::kTimeout, std::string(kSilent));
      if (w > 0) continue;
    }
    return Fail(code::kProtocolError,
                "the server at " + where_ + " closed the connection during " + std::string(during));
  }
  return true;
}

}  // namespace connreg::probe
