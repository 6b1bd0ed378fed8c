// The HTTP/1.1 server: accepts on one address, runs one coroutine per TCP connection on a shared
// io_context, and enforces the protocol rules of contract section 10 before a request reaches the
// Handler: header and body limits, the slow-header timeout, Content-Length/Transfer-Encoding
// checks, request ids, keep-alive and pipelining, one JSON access-log line per request, and a
// graceful drain on Stop(). Thread-safe: the io_context may be run by several threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "http/exchange.h"

namespace connreg::http {

struct ServerLimits {
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_body_bytes = 1024 * 1024;
  std::chrono::seconds header_timeout{30};  // time allowed to send complete headers
  std::chrono::seconds idle_timeout{75};    // keep-alive idle time between requests
  std::chrono::seconds drain_timeout{10};   // Stop(): how long requests in flight may finish
};

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
