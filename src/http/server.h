// The HTTP/1.1 server: accepts on one address, runs one coroutine per TCP connection on a shared
// io_context, and enforces the protocol rules of contract section 10 before a request reaches the
// Handler: header and body limits, the slow-header timeout, Content-Length/Transfer-Encoding
// checks, request ids, keep-alive and pipelining, one JSON access-log line per request, and a
// graceful drain on Stop(). Thread-safe: the io_context may be run by several threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "http/exchange.h"

namespace connreg::http {

struct ServerLimits {
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_body_bytes = 1024 * 1024;
  // Time allowed for a complete header: from accept for the first request, from the first byte
  // for later ones. A client still sending its header when it expires is disconnected.
  std::chrono::seconds header_timeout{30};
  std::chrono::seconds idle_timeout{75};   // keep-alive idle time between requests
  std::chrono::seconds body_timeout{60};   // time allowed to send the whole body
  std::chrono::seconds write_timeout{30};  // time allowed for the client to take a response
  std::chrono::seconds drain_timeout{10};  // Stop(): how long requests in flight may finish
  // Open connections at most; one more is answered 503 and closed at once, so that idle sockets
  // cannot use up the process's file descriptors.
  std::size_t max_connections = 1024;
};

// Destroy a Server only after Stop()'s `done` has run or the io_context has stopped; the
// Handler must outlive the io_context's last run.
class Server {
 public:
  Server(boost::asio::io_context& ioc, Handler& handler, ServerLimits limits);
  ~Server();

  // Binds and starts accepting. Returns the bound endpoint (port 0 picks a free port).
  // Throws boost::system::system_error if the address cannot be bound (start-up only).
  boost::asio::ip::tcp::endpoint Listen(const boost::asio::ip::tcp::endpoint& endpoint);

  // Stops accepting, lets requests in flight finish (up to drain_timeout), closes idle
  // connections, then calls `done`. Safe to call from any thread, once.
  void Stop(std::function<void()> done);

  std::size_t InFlight() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace connreg::http
