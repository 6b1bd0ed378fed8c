// The HTTP layer against real TCP sockets: a Server on 127.0.0.1 port 0 with a small Handler,
// and raw-byte clients so that malformed and hostile requests can be sent as they are.
#include "http/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace connreg::http {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// --- A raw TCP client --------------------------------------------------------------------------

struct Reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lowercase names
  std::string body;

  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? "" : it->second;
  }
};

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

class Client {
 public:
  explicit Client(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    SetReceiveTimeout(5s);
    timeval send_timeout{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~Client() { ::close(fd_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }

  // Sends everything; false if the peer closed or reset first.
  bool Send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // One complete response (interim 1xx included); nullopt on EOF, reset or timeout first.
  std::optional<Reply> Read(bool expect_body = true) {
    std::size_t end;
    while ((end = pending_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return std::nullopt;
    }
    Reply reply;
    std::istringstream head(pending_.substr(0, end));
    std::string line;
    std::getline(head, line);
    if (line.rfind("HTTP/1.", 0) != 0 || line.size() < 12) return std::nullopt;
    reply.status = std::stoi(line.substr(9, 3));
    while (std::getline(head, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      reply.headers[Lower(line.substr(0, colon))] = value;
    }
    pending_.erase(0, end + 4);
    std::size_t length = 0;
    if (expect_body && reply.status >= 200 && !reply.Header("content-length").empty()) {
      length = std::stoul(reply.Header("content-length"));
    }
    while (pending_.size() < length) {
      if (!Fill()) return std::nullopt;
    }
    reply.body = pending_.substr(0, length);
    pending_.erase(0, length);
    return reply;
  }

  // True when the server closes (EOF or reset) within `wait`; bytes arriving meanwhile are kept.
  bool WaitClosed(std::chrono::milliseconds wait) {
    auto deadline = std::chrono::steady_clock::now() + wait;
    bool closed = false;
    while (!closed) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left <= 0ms) break;
      SetReceiveTimeout(left);
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        pending_.append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno == ECONNRESET) {
        closed = true;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        break;
      } else if (errno != EINTR) {
        closed = true;
      }
    }
    SetReceiveTimeout(5s);
    return closed;
  }

  const std::string& pending() const { return pending_; }

 private:
  bool Fill() {
    char buf[16384];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    pending_.append(buf, static_cast<std::size_t>(n));
    return true;
  }

  void SetReceiveTimeout(std::chrono::milliseconds t) {
    timeval tv{static_cast<time_t>(t.count() / 1000),
               static_cast<suseconds_t>((t.count() % 1000) * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string pending_;
};

boost::json::object ParseObject(const std::string& text) {
  return boost::json::parse(text).as_object();
}

bool LooksLikeRequestId(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

// --- The application under the server ----------------------------------------------------------

// Answers "<method> <target> <body>"; "/slow" first waits 700 ms, "/throw" throws.
class TestHandler : public Handler {
 public:
  asio::awaitable<void> Handle(Exchange& ex) override {
    calls.fetch_add(1);
    {
      std::lock_guard lock(mu);
      seen_request_ids.push_back(ex.request_id);
    }
    ex.route = "/test";
    std::string target(ex.request.target());
    std::string path = target.substr(0, target.find('?'));
    if (path == "/slow") {
      slow_started.fetch_add(1);
      asio::steady_timer timer(co_await asio::this_coro::executor, 700ms);
      co_await timer.async_wait(asio::use_awaitable);
    }
    if (path == "/throw") throw std::runtime_error("boom: internal detail");
    if (path == "/member") ex.member_id = "member-1";
    ex.response.result(200);
    ex.response.set(boost::beast::http::field::content_type, "text/plain");
    ex.response.body() =
        std::string(ex.request.method_string()) + " " + target + " " + ex.request.body();
  }

  std::vector<std::string> SeenRequestIds() {
    std::lock_guard lock(mu);
    return seen_request_ids;
  }

  std::atomic<int> calls{0};
  std::atomic<int> slow_started{0};
  std::mutex mu;
  std::vector<std::string> seen_request_ids;
};

class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(ServerLimits limits = {}) {
    server_ = std::make_unique<Server>(ioc_, handler_, limits);
    port_ = server_->Listen({asio::ip::make_address("127.0.0.1"), 0}).port();
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { ioc_.run(); });
  }

  // Calls Stop() and waits for `done`; returns whether it came within `wait`.
  bool StopServer(std::chrono::milliseconds wait) {
    stopped_ = true;
    auto done = std::make_shared<std::promise<void>>();
    auto future = done->get_future();
    server_->Stop([done] { done->set_value(); });
    return future.wait_for(wait) == std::future_status::ready;
  }

  void TearDown() override {
    if (server_ && !stopped_) StopServer(15s);
    work_.reset();
    ioc_.stop();
    for (auto& t : threads_) t.join();
    server_.reset();
  }

  // Until /slow is inside the handler and the requests before it have left the count.
  void WaitForSlowHandler() {
    auto wait_until = std::chrono::steady_clock::now() + 3s;
    while ((handler_.slow_started.load() == 0 || server_->InFlight() != 1) &&
           std::chrono::steady_clock::now() < wait_until) {
      std::this_thread::sleep_for(2ms);
    }
  }

  static std::string Get(const std::string& target, const std::string& extra_headers = "") {
    return "GET " + target + " HTTP/1.1\r\nHost: test\r\n" + extra_headers + "\r\n";
  }

  // Sends `request` on a fresh connection; expects 400 bad_request and then a closed connection.
  void ExpectRejectedAndClosed(const std::string& request, int status, const std::string& code) {
    SCOPED_TRACE(request.substr(0, 200));
    Client c(port_);
    ASSERT_TRUE(c.connected());
    c.Send(request);
    auto reply = c.Read();
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->status, status);
    EXPECT_EQ(reply->Header("content-type"), "application/json");
    EXPECT_EQ(reply->Header("connection"), "close");
    EXPECT_TRUE(LooksLikeRequestId(reply->Header("x-request-id")));
    auto body = ParseObject(reply->body);
    EXPECT_EQ(body["code"].as_string(), code);
    EXPECT_EQ(body["requestId"].as_string(), reply->Header("x-request-id"));
    EXPECT_TRUE(c.WaitClosed(5s));
  }

  TestHandler handler_;
  asio::io_context ioc_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
      asio::make_work_guard(ioc_)};
  std::unique_ptr<Server> server_;
  std::vector<std::thread> threads_;
  std::uint16_t port_ = 0;
  bool stopped_ = false;
};

// --- Tests -------------------------------------------------------------------------------------

TEST_F(HttpServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  StartServer();
  Client c(port_);
  ASSERT_TRUE(c.connected());
  for (const std::string target : {"/first", "/second"}) {
    ASSERT_TRUE(c.Send(Get(target)));
    auto reply = c.Read();
    ASSERT_TRUE(reply.has_value()) << target;
    EXPECT_EQ(reply->status, 200);
    EXPECT_EQ(reply->body, "GET " + target + " ");
    EXPECT_EQ(reply->Header("server"), "connreg");
    EXPECT_EQ(reply->Header("content-length"), std::to_string(reply->body.size()));
    EXPECT_NE(Lower(reply->Header("connection")), "close");
  }
  EXPECT_EQ(handler_.calls.load(), 2);
  EXPECT_FALSE(c.WaitClosed(200ms));  // still open for a third request
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  StartServer();
  Client c(port_);
  ASSERT_TRUE(c.Send(Get("/slow") + Get("/b") +
                     "POST /c HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\n\r\nxyz"));
  for (const std::string expected : {"GET /slow ", "GET /b ", "POST /c xyz"}) {
    auto reply = c.Read();
    ASSERT_TRUE(reply.has_value()) << expected;
    EXPECT_EQ(reply->status, 200);
    EXPECT_EQ(reply->body, expected);
  }
}

TEST_F(HttpServerTest, SaneRequestIdIsEchoed) {
  StartServer();
  Client c(port_);
  c.Send(Get("/", "X-Request-Id: abc.DEF_123-x\r\n"));
  auto reply = c.Read();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->Header("x-request-id"), "abc.DEF_123-x");
  EXPECT_EQ(handler_.SeenRequestIds(), std::vector<std::string>{"abc.DEF_123-x"});
}

TEST_F(HttpServerTest, MissingRequestIdIsGeneratedAndUnique) {
  StartServer();
  Client c(port_);
  c.Send(Get("/") + Get("/"));
  auto first = c.Read();
  auto second = c.Read();
  ASSERT_TRUE(first.has_value() && second.has_value());
  std::string id1 = first->Header("x-request-id");
  std::string id2 = second->Header("x-request-id");
  EXPECT_TRUE(LooksLikeRequestId(id1)) << id1;
  EXPECT_GE(id1.size(), 14u);
  EXPECT_NE(id1, id2);
  EXPECT_EQ(handler_.SeenRequestIds(), (std::vector<std::string>{id1, id2}));
}

TEST_F(HttpServerTest, InsaneRequestIdIsReplaced) {
  StartServer();
  for (const std::string& bad :
       std::vector<std::string>{"has space", "semi;colon", "quote\"x", std::string(129, 'a')}) {
    Client c(port_);
    c.Send(Get("/", "X-Request-Id: " + bad + "\r\n"));
    auto reply = c.Read();
    ASSERT_TRUE(reply.has_value()) << bad;
    std::string id = reply->Header("x-request-id");
    EXPECT_NE(id, bad);
    EXPECT_TRUE(LooksLikeRequestId(id)) << id;
  }
  // Exactly 128 characters is still sane.
  Client c(port_);
  std::string longest(128, 'z');
  c.Send(Get("/", "X-Request-Id: " + longest + "\r\n"));
  auto reply = c.Read();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->Header("x-request-id"), longest);
}

TEST_F(HttpServerTest, OversizedHeaderGets431) {
  StartServer();
  ExpectRejectedAndClosed(
      Get("/", "X-Request-Id: big-one\r\nX-Big: " + std::string(64 * 1024, 'a') + "\r\n"), 431,
      "request_header_fields_too_large");
  EXPECT_EQ(handler_.calls.load(), 0);
}

TEST_F(HttpServerTest, OversizedBodyGets413) {
  StartServer();
  const std::string body(2 * 1024 * 1024, 'b');
  ExpectRejectedAndClosed(
      "POST /big HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
      "Content-Length: " +
          std::to_string(body.size()) + "\r\n\r\n" + body,
      413, "payload_too_large");
  EXPECT_EQ(handler_.calls.load(), 0);
}

TEST_F(HttpServerTest, OversizedChunkedBodyGets413) {
  ServerLimits limits;
  limits.max_body_bytes = 1024;
  StartServer(limits);
  ExpectRejectedAndClosed(
      "POST /big HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
      "800\r\n" +
          std::string(0x800, 'c') + "\r\n0\r\n\r\n",
      413, "payload_too_large");
  EXPECT_EQ(handler_.calls.load(), 0);
}

TEST_F(HttpServerTest, ChunkedBodyWithinLimitIsDelivered) {
  StartServer();
  Client c(port_);
  c.Send(
      "POST /c HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  auto reply = c.Read();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->body, "POST /c abcde");
}

// Beast rejects these itself when chunked is involved; with a non-chunked coding followed by
// Content-Length it does not, and the server must.
TEST_F(HttpServerTest, ContentLengthWithTransferEncodingGets400AndCloses) {
  StartServer();
  const std::string smuggled = Get("/smuggled");
  for (const std::string& framing : std::vector<std::string>{
           "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
           "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
           "Transfer-Encoding: gzip\r\nContent-Length: 5\r\n",
           "Content-Length: 5\r\nTransfer-Encoding: gzip\r\n",
           "Transfer-Encoding: gzip\r\nContent-Length: " + std::to_string(smuggled.size()) +
               "\r\n"}) {
    ExpectRejectedAndClosed("POST /x HTTP/1.1\r\nHost: test\r\n" + framing + "\r\n" + smuggled, 400,
                            "bad_request");
  }
  EXPECT_EQ(handler_.calls.load(), 0);
}

TEST_F(HttpServerTest, TransferEncodingNotEndingInChunkedGets400) {
  StartServer();
  for (const std::string coding : {"gzip", "chunked, gzip", "chunked, chunked", "identity"}) {
    ExpectRejectedAndClosed(
        "POST /x HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: " + coding + "\r\n\r\n" + Get("/"),
        400, "bad_request");
  }
  EXPECT_EQ(handler_.calls.load(), 0);
}

// Issue 18, finding 7: a coding before chunked ("gzip, chunked") was accepted and the coded
// bytes handed on as the body. Only chunked alone is a transfer coding the server reads.
TEST_F(HttpServerTest, Finding7TransferCodingsOtherThanChunkedAloneGet400) {
  StartServer();
  for (const std::string framing :
       {"Transfer-Encoding: gzip, chunked\r\n", "Transfer-Encoding: deflate,chunked\r\n",
        "Transfer-Encoding: identity, chunked\r\n",
        "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"}) {
    ExpectRejectedAndClosed(
        "POST /x HTTP/1.1\r\nHost: test\r\n" + framing + "\r\n5\r\nhello\r\n0\r\n\r\n", 400,
        "bad_request");
  }
  EXPECT_EQ(handler_.calls.load(), 0);
  Client c(port_);
  c.Send(
      "POST /c HTTP/1.1\r\nHost: test\r\nTransfer-Encoding:  Chunked \r\n\r\n"
      "5\r\nhello\r\n0\r\n\r\n");
  auto reply = c.Read();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->body, "POST /c hello");
}

// Issue 18, finding 7 (RFC 9112 section 3.2): HTTP/1.1 needs exactly one Host.
TEST_F(HttpServerTest, Finding7Http11WithoutHostGets400) {
  StartServer();
  ExpectRejectedAndClosed("GET /x HTTP/1.1\r\n\r\n", 400, "bad_request");
  ExpectRejectedAndClosed("GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "bad_request");
  EXPECT_EQ(handler_.calls.load(), 0);
  Client c(port_);
  c.Send("GET /old HTTP/1.0\r\n\r\n");  // HTTP/1.0 has no Host requirement
  auto reply = c.Read();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200);
}

// Issue 18, finding 7 (RFC 9112 section 5.2): obsolete line folding is a 400; Beast unfolds it.
TEST_F(HttpServerTest, Finding7ObsFoldGets400) {
  StartServer();
  ExpectRejectedAndClosed("GET /x HTTP/1.1\r\nHost: test\r\nX-Long: a\r\n b\r\n\r\n", 400,
                          "bad_request");
  ExpectRejectedAndClosed("GET /x HTTP/1.1\r\nHost: test\r\nX-Long: a\r\n\tb\r\n\r\n", 400,
                          "bad_request");
  ExpectRejectedAndClosed("GET /x HTTP/1.1\r\n Host: test\r\n\r\n", 400, "bad_request");
  // Arriving a byte at a time changes nothing.
  Client slow(port_);
  for (char ch : std::string("GET /x HTTP/1.1\r\nHost: test\r\nX-A: 1\r\n 2\r\n\r\n")) {
    slow.Send(std::string(1, ch));
  }
  auto reply = slow.Read();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 400);
  EXPECT_EQ(handler_.calls.load(), 0);
  // Spaces and tabs inside a value are no fold.
  Client c(port_);
  c.Send(Get("/ok", "X-A: a b\tc\r\n"));
  auto ok = c.Read();
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->status, 200);
}

// Issue 18, finding 7: with no cap, idle sockets used up every file descriptor and /healthz timed
// out. Over max_connections a connection is answered 503 and closed at once, and a closed idle
// connection frees its place.
TEST_F(HttpServerTest, Finding7ConnectionsOverTheCapAreRefusedAtOnce) {
  ServerLimits limits;
  limits.max_connections = 4;
  StartServer(limits);
  std::vector<std::unique_ptr<Client>> idle;
  for (int i = 0; i < 4; ++i) {
    idle.push_back(std::make_unique<Client>(port_));
    ASSERT_TRUE(idle.back()->connected());
  }
  // The server counts a connection once it has accepted it: wait until all four are in.
  auto refused_once = [&]() -> std::optional<Reply> {
    Client extra(port_);
    auto start = std::chrono::steady_clock::now();
    auto reply = extra.Read();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s) << "refused at once, not left waiting";
    EXPECT_TRUE(extra.WaitClosed(2s));
    return reply;
  };
  std::optional<Reply> reply;
  for (int attempt = 0; attempt < 50 && !(reply && reply->status == 503); ++attempt) {
    reply = refused_once();
    if (!(reply && reply->status == 503)) std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 503);
  EXPECT_EQ(reply->Header("retry-after"), "1");
  EXPECT_EQ(ParseObject(reply->body)["code"].as_string(), "unavailable");
  // The idle ones are still served.
  ASSERT_TRUE(idle[0]->Send(Get("/still")));
  auto still = idle[0]->Read();
  ASSERT_TRUE(still.has_value());
  EXPECT_EQ(still->status, 200);
  // One closes: a new client gets in.
  idle.pop_back();
  std::optional<Reply> in;
  for (int attempt = 0; attempt < 50 && !(in && in->status == 200); ++attempt) {
    Client next(port_);
    next.Send(Get("/in"));
    in = next.Read();
    if (!(in && in->status == 200)) std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->status, 200);
}

TEST_F(HttpServerTest, MalformedRequestLineGets400AndServerKeepsServing) {
  StartServer();
  ExpectRejectedAndClosed("GARBAGE\r\n\r\n", 400, "bad_request");
  ExpectRejectedAndClosed("GET /\r\nHost: test\r\n\r\n", 400, "bad_request");
  ExpectRejectedAndClosed("GET / HTTP/1.1\r\nBad Header Name: x\r\n\r\n", 400, "bad_request");
  Client c(port_);
  c.Send(Get("/after"));
  auto reply = c.Read();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(handler_.calls.load(), 1);
}

TEST_F(HttpServerTest, HalfHeaderIsDisconnectedAfterHeaderTimeout) {
  ServerLimits limits;
  limits.header_timeout = 1s;
  StartServer(limits);
  Client slow(port_);
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(slow.Send("GET /never HTTP/1.1\r\nHost: te"));

  // Meanwhile other clients are served at once.
  Client other(port_);
  other.Send(Get("/other"));
  auto reply = other.Read();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 900ms);

  EXPECT_TRUE(slow.WaitClosed(5s));
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, 900ms);
  EXPECT_LT(elapsed, 3s);
  EXPECT_TRUE(slow.pending().empty());  // disconnected without an answer
  EXPECT_EQ(handler_.calls.load(), 1);
}

// The timer covers the whole header, not each read: trickling a byte at a time does not help.
TEST_F(HttpServerTest, TricklingHeaderIsDisconnectedAfterHeaderTimeout) {
  ServerLimits limits;
  limits.header_timeout = 1s;
  StartServer(limits);
  Client slow(port_);
  auto start = std::chrono::steady_clock::now();
  std::atomic<bool> quit{false};
  std::thread trickler([&] {
    const std::string header = "GET / HTTP/1.1\r\nX-Trickle: " + std::string(40, 'a');
    for (char ch : header) {
      if (quit.load() || !slow.Send(std::string_view(&ch, 1))) return;
      std::this_thread::sleep_for(150ms);
    }
  });
  bool closed = slow.WaitClosed(4s);
  auto elapsed = std::chrono::steady_clock::now() - start;
  quit.store(true);
  trickler.join();
  EXPECT_TRUE(closed);
  EXPECT_LT(elapsed, 3s);
  EXPECT_EQ(handler_.calls.load(), 0);
}

TEST_F(HttpServerTest, KeepAliveConnectionIsClosedAfterIdleTimeout) {
  ServerLimits limits;
  limits.idle_timeout = 1s;
  StartServer(limits);
  Client c(port_);
  c.Send(Get("/"));
  ASSERT_TRUE(c.Read().has_value());
  EXPECT_FALSE(c.WaitClosed(500ms));
  EXPECT_TRUE(c.WaitClosed(3s));
}

TEST_F(HttpServerTest, StopLetsRequestInFlightFinishThenCallsDone) {
  StartServer();
  Client idle(port_);
  idle.Send(Get("/warm-up"));
  ASSERT_TRUE(idle.Read().has_value());

  Client busy(port_);
  busy.Send(Get("/slow"));
  WaitForSlowHandler();
  ASSERT_EQ(server_->InFlight(), 1u);

  stopped_ = true;
  auto done = std::make_shared<std::promise<void>>();
  auto done_future = done->get_future();
  auto stop_at = std::chrono::steady_clock::now();
  server_->Stop([done] { done->set_value(); });

  // The idle connection closes at once, long before the slow request finishes.
  EXPECT_TRUE(idle.WaitClosed(400ms));
  EXPECT_LT(std::chrono::steady_clock::now() - stop_at, 400ms);
  EXPECT_NE(done_future.wait_for(0ms), std::future_status::ready);

  auto reply = busy.Read();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->body, "GET /slow ");
  EXPECT_EQ(Lower(reply->Header("connection")), "close");
  EXPECT_TRUE(busy.WaitClosed(2s));
  EXPECT_EQ(done_future.wait_for(3s), std::future_status::ready);
  EXPECT_EQ(server_->InFlight(), 0u);

  Client late(port_);
  EXPECT_FALSE(late.connected());
}

TEST_F(HttpServerTest, StopGivesUpOnRequestsAfterDrainTimeout) {
  ServerLimits limits;
  limits.drain_timeout = 0s;  // nothing may finish
  StartServer(limits);
  Client busy(port_);
  busy.Send(Get("/slow"));
  WaitForSlowHandler();
  ASSERT_EQ(server_->InFlight(), 1u);
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(StopServer(2s));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 500ms);  // did not wait for /slow
  EXPECT_TRUE(busy.WaitClosed(2s));
}

TEST_F(HttpServerTest, StopWithoutConnectionsCallsDoneAtOnce) {
  StartServer();
  EXPECT_TRUE(StopServer(1s));
}

TEST_F(HttpServerTest, ThrowingHandlerGets500AndConnectionSurvives) {
  StartServer();
  Client c(port_);
  c.Send(Get("/throw", "X-Request-Id: req-500\r\n"));
  auto reply = c.Read();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 500);
  EXPECT_EQ(reply->Header("content-type"), "application/json");
  EXPECT_EQ(reply->body.find("boom"), std::string::npos);
  auto body = ParseObject(reply->body);
  EXPECT_EQ(body["code"].as_string(), "internal");
  EXPECT_EQ(body["message"].as_string(), "internal error");
  EXPECT_EQ(body["requestId"].as_string(), "req-500");

  c.Send(Get("/next"));
  auto next = c.Read();
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->status, 200);
}

TEST_F(HttpServerTest, Expect100ContinueGetsInterimResponse) {
  StartServer();
  Client c(port_);
  c.Send("POST /e HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
  auto interim = c.Read();
  ASSERT_TRUE(interim.has_value());
  EXPECT_EQ(interim->status, 100);
  c.Send("hello");
  auto reply = c.Read();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->body, "POST /e hello");
}

TEST_F(HttpServerTest, Http10AndConnectionCloseCloseAfterResponse) {
  StartServer();
  for (const std::string& request : std::vector<std::string>{
           "GET /old HTTP/1.0\r\n\r\n", Get("/bye", "Connection: close\r\n")}) {
    Client c(port_);
    c.Send(request);
    auto reply = c.Read();
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->status, 200);
    EXPECT_FALSE(reply->Header("content-length").empty());
    EXPECT_TRUE(c.WaitClosed(2s));
  }
  // HTTP/1.0 with keep-alive stays open.
  Client c(port_);
  c.Send("GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  auto reply = c.Read();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(Lower(reply->Header("connection")), "keep-alive");
  EXPECT_FALSE(c.WaitClosed(200ms));
}

TEST_F(HttpServerTest, HeadResponseHasLengthButNoBody) {
  StartServer();
  Client c(port_);
  c.Send("HEAD /h HTTP/1.1\r\nHost: test\r\n\r\n" + Get("/after"));
  auto head = c.Read(/*expect_body=*/false);
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->Header("content-length"), std::to_string(std::string("HEAD /h ").size()));
  auto next = c.Read();  // would read the stray body bytes as a status line if any were sent
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->body, "GET /after ");
}

TEST_F(HttpServerTest, AccessLogHasOneJsonLinePerRequestWithoutSecrets) {
  auto sink_stream = std::make_shared<std::ostringstream>();
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(*sink_stream);
  spdlog::drop("access");
  auto logger = std::make_shared<spdlog::logger>("access", sink);
  spdlog::register_logger(logger);

  StartServer();
  {
    Client c(port_);
    c.Send(Get("/member?token=query-secret",
               "Authorization: Bearer header-secret\r\nX-Request-Id: log-1\r\n"));
    ASSERT_TRUE(c.Read().has_value());
    c.Send("POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nbody-secret");
    ASSERT_TRUE(c.Read().has_value());
  }
  ExpectRejectedAndClosed("NOT HTTP\r\n\r\n", 400, "bad_request");
  ASSERT_TRUE(StopServer(5s));
  spdlog::drop("access");

  std::string text = sink_stream->str();
  EXPECT_EQ(text.find("secret"), std::string::npos) << text;
  std::vector<boost::json::object> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(ParseObject(line));
  ASSERT_EQ(lines.size(), 3u) << text;

  auto& first = lines[0];
  EXPECT_EQ(first["requestId"].as_string(), "log-1");
  EXPECT_EQ(first["method"].as_string(), "GET");
  EXPECT_EQ(first["route"].as_string(), "/test");
  EXPECT_EQ(first["status"].as_int64(), 200);
  EXPECT_TRUE(first["durationMs"].is_number());  // the number rule: "0.42", or "0", "3"
  EXPECT_EQ(first["memberId"].as_string(), "member-1");
  EXPECT_EQ(first["remote"].as_string(), "127.0.0.1");
  std::string time(first["time"].as_string());
  EXPECT_EQ(time.size(), 24u) << time;  // 2022-06-22T20:47:07.899Z
  EXPECT_EQ(time.back(), 'Z');

  // A session writes its line after its response, so the rejected request on the second
  // connection may be logged before the POST of the first: find each line by what it is.
  auto find = [&](std::string_view method) -> boost::json::object* {
    for (auto& line : lines) {
      if (line["method"].as_string() == method) return &line;
    }
    return nullptr;
  };
  auto* post = find("POST");
  ASSERT_NE(post, nullptr) << text;
  EXPECT_TRUE((*post)["memberId"].is_null());
  EXPECT_EQ((*post)["status"].as_int64(), 200);
  auto* rejected = find("NOT");
  if (rejected == nullptr) rejected = find("-");
  ASSERT_NE(rejected, nullptr) << text;
  EXPECT_EQ((*rejected)["route"].as_string(), "-");
  EXPECT_EQ((*rejected)["status"].as_int64(), 400);
}

}  // namespace
}  // namespace connreg::http
