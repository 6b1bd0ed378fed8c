#include "http/server.h"

#include "metrics/metrics.h"

#include <cxxabi.h>

#include <array>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <sstream>
#include <string_view>
#include <typeinfo>
#include <unordered_set>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/system/system_error.hpp>

#include "core/error.h"
#include "core/log.h"
#include "crypto/random.h"
#include "http/access_log.h"

namespace connreg::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// Expected failures (EOF, timeouts, resets) come back as error codes, not exceptions: a closed
// keep-alive connection is the normal end of every session and must not cost a throw.
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

constexpr std::size_t kReadSize = 16 * 1024;
// A buffer that grew for a large body is released once the connection is idle again.
constexpr std::size_t kKeepBufferCapacity = 64 * 1024;
// Lingering close after an error answer: keep reading (and discarding) what the client is still
// sending so that closing with unread data does not reset the connection before the client has
// read the answer.
constexpr std::chrono::seconds kLingerTime{2};
constexpr std::size_t kLingerMaxBytes = 16 * 1024 * 1024;
constexpr std::string_view kServerName = "connreg";
constexpr std::string_view kRequestIdHeader = "X-Request-Id";
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

bool IsSaneRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// Request ids need to be unique, not secret: a random per-process prefix (distinct across nodes
// and restarts) plus a counter costs no system call per request, unlike a CSPRNG read.
const std::string& RequestIdPrefix() {
  static const std::string prefix = crypto::RandomToken(9);  // 12 base64url characters
  return prefix;
}

void GenerateRequestId(std::string& out) {
  static std::atomic<std::uint64_t> counter{0};
  std::uint64_t n = counter.fetch_add(1, std::memory_order_relaxed);
  std::array<char, 16> digits;
  std::size_t len = 0;
  do {
    digits[len++] = "0123456789abcdef"[n & 0xf];
    n >>= 4;
  } while (n != 0);
  out.assign(RequestIdPrefix());
  out.push_back('-');
  while (len > 0) out.push_back(digits[--len]);
}

template <class Fields>
void AssignRequestId(const Fields& fields, std::string& out) {
  auto it = fields.find(kRequestIdHeader);
  if (it != fields.end() && IsSaneRequestId(it->value())) {
    out.assign(it->value());
  } else {
    GenerateRequestId(out);
  }
}

bool IsHttpParseError(const beast::error_code& ec) {
  static const std::error_category& category =
      bhttp::make_error_code(bhttp::error::bad_method).category();
  return ec.category() == category;
}

double MillisSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

std::string DescribeCurrentException() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    // Not derived from std::exception: the type name is all there is to say.
    const std::type_info* type = abi::__cxa_current_exception_type();
    return std::string("exception of type ") + (type != nullptr ? type->name() : "unknown");
  }
}

// Headers every response gets, and the framing: Content-Length always (except where HTTP
// forbids a body), no body bytes for HEAD.
void FinishResponse(Response& res, const Request& req, const std::string& request_id,
                    bool keep_alive) {
  res.version(req.version() == 10 ? 10 : 11);
  res.set(bhttp::field::server, kServerName);
  res.set(kRequestIdHeader, request_id);
  res.keep_alive(keep_alive);
  unsigned status = res.result_int();
  if (status / 100 == 1 || status == 204 || status == 304) {
    res.body().clear();
    res.erase(bhttp::field::transfer_encoding);
    if (status != 304) res.erase(bhttp::field::content_length);
    return;
  }
  res.prepare_payload();
  if (req.method() == bhttp::verb::head) res.body().clear();
}

// What is wrong with the framing of a request whose header Beast accepted, or nullopt; each is a
// 400 and the connection is closed.
// - RFC 9112 section 3.2: an HTTP/1.1 request needs exactly one Host.
// - Request smuggling guards (RFC 9112 section 6.1). Beast rejects Transfer-Encoding: chunked next
//   to Content-Length, but accepts a Transfer-Encoding whose final coding is not chunked (it then
//   reads no body at all), such a Transfer-Encoding followed by Content-Length, and codings
//   before chunked ("gzip, chunked") that it does not decode: the handler would see the coded
//   bytes as the body. The only transfer coding served is chunked alone.
std::optional<std::string_view> FramingError(const bhttp::request_header<>& header) {
  const std::size_t hosts = header.count(bhttp::field::host);
  if (hosts > 1) return "a request has at most one Host header";
  if (hosts == 0 && header.version() >= 11) return "an HTTP/1.1 request needs a Host header";
  const std::size_t codings = header.count(bhttp::field::transfer_encoding);
  if (codings == 0) return std::nullopt;
  if (header.count(bhttp::field::content_length) != 0) {
    return "Content-Length and Transfer-Encoding must not both be present";
  }
  std::string_view te = header[bhttp::field::transfer_encoding];
  while (!te.empty() && (te.front() == ' ' || te.front() == '\t')) te.remove_prefix(1);
  while (!te.empty() && (te.back() == ' ' || te.back() == '\t')) te.remove_suffix(1);
  if (codings != 1 || !beast::iequals(te, "chunked")) {
    return "Transfer-Encoding must be chunked (no other transfer coding is supported)";
  }
  return std::nullopt;
}

// RFC 9112 section 5.2: obsolete line folding (a header line that starts with a space or a tab)
// is a 400. `piece` is a run of header bytes; `after_crlf` says whether the run before it ended a
// line.
bool HasObsFold(std::string_view piece, bool after_crlf) {
  if (piece.empty()) return false;
  if (after_crlf && (piece.front() == ' ' || piece.front() == '\t')) return true;
  for (std::size_t at = piece.find("\r\n"); at != std::string_view::npos;
       at = piece.find("\r\n", at + 2)) {
    if (at + 2 < piece.size() && (piece[at + 2] == ' ' || piece[at + 2] == '\t')) return true;
  }
  return false;
}

// A connection over the cap (ServerLimits::max_connections) is refused at once: a 503 written
// without waiting (it fits in a fresh socket's send buffer), then closed. A client that had
// already sent its request may see the close as a reset instead of reading the 503.
void RefuseConnection(tcp::socket& socket) {
  std::string request_id;
  GenerateRequestId(request_id);
  Response res;
  SetErrorResponse(res, HttpStatus(ErrorCode::kUnavailable), CodeName(ErrorCode::kUnavailable),
                   "too many open connections; try again", request_id);
  res.version(11);
  res.set(bhttp::field::server, kServerName);
  res.set(kRequestIdHeader, request_id);
  res.set(bhttp::field::retry_after, "1");
  res.keep_alive(false);
  res.prepare_payload();
  std::ostringstream text;
  text << res;
  const std::string bytes = std::move(text).str();
  beast::error_code ec;
  socket.non_blocking(true, ec);
  if (!ec) socket.write_some(asio::buffer(bytes), ec);
  socket.shutdown(tcp::socket::shutdown_both, ec);
  socket.close(ec);
}

// A streamed request body (Handler::StreamedBodyLimit) on its way from the session, which reads
// it from the socket on its strand, to the handler, which reads it on a blocking-pool thread.
// Bounded: at most kPipeCapacity bytes wait in it; when it is full the session stops reading the
// socket until the handler takes a piece (TCP flow control then slows the client down), so the
// memory a body takes does not grow with its size.
class BodyPipe : public BodyStream, public std::enable_shared_from_this<BodyPipe> {
 public:
  static constexpr std::size_t kPipeCapacity = 256 * 1024;

  explicit BodyPipe(const asio::any_io_executor& strand) : space_(strand) {}

  Result<std::string_view> Read() override {
    std::unique_lock lock(mu_);
    readable_.wait(lock, [&] { return !pieces_.empty() || ended_; });
    if (pieces_.empty()) {
      if (failure_) return *failure_;
      return std::string_view{};
    }
    current_ = std::move(pieces_.front());
    pieces_.pop_front();
    buffered_ -= current_.size();
    if (producer_waiting_) {
      producer_waiting_ = false;
      // The producer waits on the strand; wake it there (it cannot miss this: it marked itself
      // waiting and started its wait in one strand turn, and this runs in a later one).
      asio::post(space_.get_executor(), [self = shared_from_this()] { self->space_.cancel(); });
    }
    return std::string_view(current_);
  }

  // On the session's strand. False when the reader is gone (the handler has answered).
  asio::awaitable<bool> Push(std::string piece) {
    for (;;) {
      {
        std::lock_guard lock(mu_);
        if (reader_closed_) co_return false;
        if (buffered_ < kPipeCapacity) {
          buffered_ += piece.size();
          pieces_.push_back(std::move(piece));
          readable_.notify_one();
          co_return true;
        }
        producer_waiting_ = true;
      }
      space_.expires_at(asio::steady_timer::time_point::max());
      co_await space_.async_wait(kNoThrow);
    }
  }

  // On the session's strand: the body is complete (no failure), or cannot be read whole.
  void End(std::optional<Error> failure) {
    std::lock_guard lock(mu_);
    ended_ = true;
    failure_ = std::move(failure);
    readable_.notify_all();
  }

  // On the session's strand, after the handler returned: a producer waiting for space stops.
  void CloseReader() {
    std::lock_guard lock(mu_);
    reader_closed_ = true;
    pieces_.clear();
    buffered_ = 0;
    producer_waiting_ = false;
    space_.cancel();
  }

 private:
  std::mutex mu_;
  std::condition_variable readable_;
  std::deque<std::string> pieces_;
  std::size_t buffered_ = 0;
  bool ended_ = false;
  std::optional<Error> failure_;
  bool reader_closed_ = false;
  bool producer_waiting_ = false;
  std::string current_;       // the piece the reader holds (only the reader touches it)
  asio::steady_timer space_;  // the producer's wait for space; only touched on the strand
};

// Completion of every coroutine this file spawns. The coroutines catch at their boundary; this
// is the last line of defence and must not be silent.
void LogEscapedException(const std::exception_ptr& e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (...) {
    log::Event(log::Level::kError, "http_coroutine_exception",
               {{"error", DescribeCurrentException()}});
  }
}

}  // namespace

struct Server::State : std::enable_shared_from_this<Server::State> {
  // One TCP connection. Everything in it is touched only on its stream's strand.
  struct Session {
    explicit Session(tcp::socket socket) : stream(std::move(socket)) {}

    beast::tcp_stream stream;
    beast::flat_buffer buffer;  // reused across requests; holds pipelined bytes
    std::optional<bhttp::request_parser<bhttp::string_body>> parser;
    Exchange ex;  // reused across requests to keep string capacity
    // True while the current request's body is streamed to the handler: its header is then in
    // ex.request, not in parser (moved into the streaming parser).
    bool streamed = false;
    // True while waiting for the first byte of a request (or lingering after the last answer):
    // Stop() may close the connection at once.
    bool idle = false;
  };

  // Counts a request as in flight from its complete header until its response is written.
  class InFlightGuard {
   public:
    explicit InFlightGuard(std::atomic<std::size_t>& n) : n_(n) {
      n_.fetch_add(1);
      metrics::AddInFlight(1);
    }
    ~InFlightGuard() {
      n_.fetch_sub(1);
      metrics::AddInFlight(-1);
    }
    InFlightGuard(const InFlightGuard&) = delete;
    InFlightGuard& operator=(const InFlightGuard&) = delete;

   private:
    std::atomic<std::size_t>& n_;
  };

  State(asio::io_context& io, Handler& h, ServerLimits l)
      : ioc(io),
        handler(h),
        limits(l),
        access_log(AccessLogger()),
        strand(asio::make_strand(io)),
        acceptor(strand),
        drain_timer(strand) {
    RequestIdPrefix();  // reads the CSPRNG now rather than on the first request
  }

  asio::awaitable<void> AcceptLoop(std::shared_ptr<State> keep_alive);
  asio::awaitable<void> RunSession(std::shared_ptr<Session> s, std::shared_ptr<State> keep_alive);
  asio::awaitable<void> Serve(Session& s);
  // Whatever of the current request's header was parsed.
  static const bhttp::request_header<>& RequestHeader(const Session& s) {
    return s.streamed ? s.ex.request.base() : s.parser->get().base();
  }
  // Reads the request's header into s.parser, as beast::http::async_read_header does, and sets
  // `*folded` when the raw bytes hold obsolete line folding (which Beast would unfold silently).
  asio::awaitable<beast::error_code> ReadHeader(Session& s, bool* folded);
  asio::awaitable<void> CallHandler(Exchange& ex);
  // Runs the handler while the body streams into ex.body; `body_error` is why the body could not
  // be read whole (a 413 or 400 to answer, a timeout or a client gone), not set when it was read
  // whole or the handler answered before needing the rest. Returns whether the body was read
  // whole (if not, the connection closes after the answer).
  asio::awaitable<bool> CallStreamingHandler(Session& s, std::size_t body_limit,
                                             beast::error_code& body_error);
  asio::awaitable<void> PumpBody(Session& s, bhttp::request_parser<bhttp::buffer_body>& parser,
                                 BodyPipe& pipe, beast::error_code& body_error);
  // Answers (or just logs) a request that failed before the handler; `has_request_id` says
  // whether ex.request_id already belongs to this request.
  asio::awaitable<void> RejectBeforeHandler(Session& s, const beast::error_code& ec,
                                            bool has_request_id, Clock::time_point start);
  asio::awaitable<void> Reject(Session& s, ErrorCode code, std::string_view message,
                               Clock::time_point start);
  asio::awaitable<void> LingeringClose(Session& s);
  void LogAccess(const Exchange& ex, std::string_view method, std::string_view route, int status,
                 Clock::time_point start);
  void BeginStop(std::function<void()> done_fn);
  void MaybeFinish();
  void Finish();

  asio::io_context& ioc;
  Handler& handler;
  const ServerLimits limits;
  std::shared_ptr<spdlog::logger> access_log;

  // The acceptor, the session registry, the drain timer and `done` belong to this strand.
  asio::strand<asio::io_context::executor_type> strand;
  tcp::acceptor acceptor;
  asio::steady_timer drain_timer;
  std::unordered_set<std::shared_ptr<Session>> sessions;
  std::function<void()> done;
  bool stop_begun = false;
  bool finished = false;
  bool refusing = false;  // the last connection accepted was over the cap (logged once per spell)

  std::atomic<bool> stopping{false};  // set first by Stop(), read by sessions on any thread
  std::atomic<std::size_t> in_flight{0};
};

asio::awaitable<void> Server::State::AcceptLoop(std::shared_ptr<State> /*keep_alive*/) {
  for (;;) {
    // Each connection gets its own strand: its coroutine never runs on two threads at once.
    tcp::socket socket(asio::make_strand(ioc));
    auto [ec] = co_await acceptor.async_accept(socket, kNoThrow);
    if (stopping.load() || !acceptor.is_open()) co_return;
    if (ec) {
      log::Event(log::Level::kWarn, "accept_failed", {{"error", ec.message()}});
      // Out of descriptors, typically: back off instead of spinning on the same error.
      asio::steady_timer backoff(strand, std::chrono::milliseconds(50));
      co_await backoff.async_wait(kNoThrow);
      continue;
    }
    if (sessions.size() >= limits.max_connections) {
      if (!refusing) {
        log::Event(log::Level::kWarn, "connection_limit_reached",
                   {{"maxConnections", limits.max_connections}});
      }
      refusing = true;
      RefuseConnection(socket);
      continue;
    }
    refusing = false;
    socket.set_option(tcp::no_delay(true), ec);  // answers are single writes; never delay them
    auto session = std::make_shared<Session>(std::move(socket));
    sessions.insert(session);
    asio::co_spawn(session->stream.get_executor(), RunSession(session, shared_from_this()),
                   LogEscapedException);
  }
}

asio::awaitable<void> Server::State::RunSession(std::shared_ptr<Session> s,
                                                std::shared_ptr<State> /*keep_alive*/) {
  // The session boundary: nothing escapes into the io_context.
  try {
    beast::error_code ec;
    auto peer = s->stream.socket().remote_endpoint(ec);
    s->ex.remote_address = ec ? "-" : peer.address().to_string();
    co_await Serve(*s);
  } catch (const boost::system::system_error& e) {
    log::Event(log::Level::kDebug, "http_session_error",
               {{"remote", s->ex.remote_address}, {"error", e.what()}});
  } catch (...) {
    log::Event(log::Level::kError, "http_session_exception",
               {{"remote", s->ex.remote_address}, {"error", DescribeCurrentException()}});
  }
  s->stream.close();
  asio::post(strand, [self = shared_from_this(), s] {
    self->sessions.erase(s);
    self->MaybeFinish();
  });
}

asio::awaitable<void> Server::State::Serve(Session& s) {
  beast::tcp_stream& stream = s.stream;
  beast::flat_buffer& buffer = s.buffer;
  Exchange& ex = s.ex;
  // The first request's header timer runs from accept; later ones get the idle timeout until
  // their first byte, then the header timeout.
  stream.expires_after(limits.header_timeout);
  bool first = true;
  for (;;) {
    if (buffer.size() == 0) {
      // Checked in the same strand turn that marks the session idle, so a Stop() either sees
      // it idle (and closes it) or this check sees the stop.
      if (stopping.load()) co_return;
      if (buffer.capacity() > kKeepBufferCapacity) buffer.shrink_to_fit();
      if (!first) stream.expires_after(limits.idle_timeout);
      s.idle = true;
      auto [ec, n] = co_await stream.async_read_some(buffer.prepare(kReadSize), kNoThrow);
      s.idle = false;
      if (ec) {
        if (ec != asio::error::eof && ec != asio::error::operation_aborted &&
            ec != beast::error::timeout) {
          log::Event(log::Level::kDebug, "http_read_failed",
                     {{"remote", ex.remote_address}, {"error", ec.message()}});
        }
        co_return;
      }
      buffer.commit(n);
      if (!first) stream.expires_after(limits.header_timeout);
    } else if (!first) {
      stream.expires_after(limits.header_timeout);  // pipelined request already buffered
    }
    first = false;
    const Clock::time_point start = Clock::now();

    auto& parser = s.parser.emplace();
    s.streamed = false;
    parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    // The body's limit depends on the route (Handler::StreamedBodyLimit), known once the header
    // is: set below.
    parser.body_limit(boost::none);
    {
      bool folded = false;
      auto ec = co_await ReadHeader(s, &folded);
      if (ec) {
        co_await RejectBeforeHandler(s, ec, /*has_request_id=*/false, start);
        co_return;
      }
      if (folded) {
        AssignRequestId(parser.get(), ex.request_id);
        co_await Reject(s, ErrorCode::kBadRequest,
                        "obsolete line folding (a header line that starts with a space or a tab) "
                        "is not allowed",
                        start);
        co_return;
      }
    }
    const auto& header = parser.get();
    AssignRequestId(header, ex.request_id);

    if (auto framing = FramingError(header)) {
      co_await Reject(s, ErrorCode::kBadRequest, *framing, start);
      co_return;
    }

    const std::optional<std::size_t> streamed_limit =
        parser.is_done() ? std::nullopt : handler.StreamedBodyLimit(header);
    const std::size_t body_limit = streamed_limit.value_or(limits.max_body_bytes);
    // A declared length is checked here; a chunked body counts against the parser's limit as
    // its chunks arrive.
    if (auto length = parser.content_length(); length && *length > body_limit) {
      co_await Reject(s, ErrorCode::kPayloadTooLarge, "request body too large", start);
      co_return;
    }
    parser.body_limit(body_limit);

    if (!parser.is_done()) {
      if (header.version() >= 11 && beast::iequals(header[bhttp::field::expect], "100-continue")) {
        stream.expires_after(limits.write_timeout);
        auto [ec, n] = co_await asio::async_write(
            stream, asio::const_buffer(kContinue.data(), kContinue.size()), kNoThrow);
        if (ec) co_return;
      }
      if (!streamed_limit) {
        stream.expires_after(limits.body_timeout);
        auto [ec, n] = co_await bhttp::async_read(stream, buffer, parser, kNoThrow);
        if (ec) {
          co_await RejectBeforeHandler(s, ec, /*has_request_id=*/true, start);
          co_return;
        }
      }
    }

    std::optional<InFlightGuard> in_flight_guard(std::in_place, in_flight);
    // The response stays HTTP/1.1 until FinishResponse, so that keep_alive() on it reads as
    // "the handler did not ask to close".
    ex.response = Response{};
    ex.route.assign("-");
    ex.member_id.clear();
    ex.body.reset();
    bool body_complete = true;
    if (streamed_limit) {
      beast::error_code body_error;
      body_complete = co_await CallStreamingHandler(s, body_limit, body_error);
      if (body_error) {
        in_flight_guard.reset();
        co_await RejectBeforeHandler(s, body_error, /*has_request_id=*/true, start);
        co_return;
      }
    } else {
      ex.request = parser.release();
      stream.expires_never();
      co_await CallHandler(ex);
    }

    // Responses written after Stop() close the connection, and so do those to a request whose
    // body was not read whole.
    const bool keep_alive =
        ex.request.keep_alive() && ex.response.keep_alive() && body_complete && !stopping.load();
    FinishResponse(ex.response, ex.request, ex.request_id, keep_alive);
    stream.expires_after(limits.write_timeout);
    auto [ec, n] = co_await bhttp::async_write(stream, ex.response, kNoThrow);
    in_flight_guard.reset();
    LogAccess(ex, ex.request.method_string(), ex.route, static_cast<int>(ex.response.result_int()),
              start);
    if (ec) {
      log::Event(log::Level::kDebug, "http_write_failed",
                 {{"requestId", ex.request_id}, {"error", ec.message()}});
      co_return;
    }
    if (!keep_alive) {
      // Bytes the client sent after a closing request would turn our close into a reset.
      if (buffer.size() != 0) {
        co_await LingeringClose(s);
      } else {
        stream.socket().shutdown(tcp::socket::shutdown_send, ec);
      }
      co_return;
    }
  }
}

asio::awaitable<beast::error_code> Server::State::ReadHeader(Session& s, bool* folded) {
  auto& parser = *s.parser;
  std::size_t taken = 0;
  bool after_crlf = false;  // the last piece the parser took ended with CRLF
  for (;;) {
    if (s.buffer.size() != 0) {
      beast::error_code ec;
      const auto data = s.buffer.data();
      const std::size_t used = parser.put(data, ec);
      const std::string_view piece(static_cast<const char*>(data.data()), used);
      if (HasObsFold(piece, after_crlf)) {
        *folded = true;
        co_return beast::error_code{};
      }
      if (used != 0) after_crlf = piece.ends_with("\r\n");
      s.buffer.consume(used);
      taken += used;
      // Beast enforces header_limit only while the header is incomplete: a header that arrives
      // whole in one read passes whatever its size. Check what the parser took.
      if (taken > limits.max_header_bytes) co_return bhttp::error::header_limit;
      if (parser.is_header_done()) co_return beast::error_code{};
      if (ec && ec != bhttp::error::need_more) co_return ec;
    }
    auto [ec, n] = co_await s.stream.async_read_some(s.buffer.prepare(kReadSize), kNoThrow);
    if (ec == asio::error::eof) {
      co_return parser.got_some() ? bhttp::error::partial_message : bhttp::error::end_of_stream;
    }
    if (ec) co_return ec;
    s.buffer.commit(n);
  }
}

asio::awaitable<void> Server::State::CallHandler(Exchange& ex) {
  bool threw = false;
  std::string failure;
  try {
    co_await handler.Handle(ex);
  } catch (...) {
    threw = true;
    failure = DescribeCurrentException();
  }
  if (!threw) co_return;
  // The text goes to the log only: it may name internals the client must not see.
  log::Event(log::Level::kError, "handler_exception",
             {{"requestId", ex.request_id}, {"route", ex.route}, {"error", failure}});
  ex.response = Response{};
  SetErrorResponse(ex.response, HttpStatus(ErrorCode::kInternal), CodeName(ErrorCode::kInternal),
                   "internal error", ex.request_id);
}

asio::awaitable<bool> Server::State::CallStreamingHandler(Session& s, std::size_t body_limit,
                                                          beast::error_code& body_error) {
  using namespace asio::experimental::awaitable_operators;
  Exchange& ex = s.ex;
  // The handler sees the header in ex.request; the body parser takes over from the header's.
  ex.request = Request{};
  ex.request.base() = s.parser->get().base();
  s.streamed = true;
  bhttp::request_parser<bhttp::buffer_body> parser(std::move(*s.parser));
  parser.body_limit(body_limit);
  auto pipe = std::make_shared<BodyPipe>(s.stream.get_executor());
  ex.body = pipe;
  auto handle = [&]() -> asio::awaitable<void> {
    co_await CallHandler(ex);
    // The handler has answered: what it did not read is not read (the connection will close).
    pipe->CloseReader();
    if (!parser.is_done()) s.stream.cancel();
  };
  co_await (handle() && PumpBody(s, parser, *pipe, body_error));
  ex.body.reset();
  const bool complete = parser.is_done();
  if (!complete && body_error == asio::error::operation_aborted) body_error = {};
  co_return complete;
}

asio::awaitable<void> Server::State::PumpBody(Session& s,
                                              bhttp::request_parser<bhttp::buffer_body>& parser,
                                              BodyPipe& pipe, beast::error_code& body_error) {
  constexpr std::size_t kPieceSize = 64 * 1024;
  s.stream.expires_after(limits.body_timeout);
  while (!parser.is_done()) {
    std::string piece(kPieceSize, '\0');
    auto& body = parser.get().body();
    body.data = piece.data();
    body.size = piece.size();
    body.more = true;
    auto [ec, n] = co_await bhttp::async_read_some(s.stream, s.buffer, parser, kNoThrow);
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) {
      body_error = ec;
      pipe.End(ec == bhttp::error::body_limit
                   ? Error{ErrorCode::kPayloadTooLarge, "request body too large"}
                   : Error::BadRequest("the request body could not be read"));
      co_return;
    }
    piece.resize(piece.size() - parser.get().body().size);
    if (!piece.empty() && !co_await pipe.Push(std::move(piece))) co_return;  // handler answered
  }
  s.stream.expires_never();
  pipe.End(std::nullopt);
}

asio::awaitable<void> Server::State::RejectBeforeHandler(Session& s, const beast::error_code& ec,
                                                         bool has_request_id,
                                                         Clock::time_point start) {
  if (!has_request_id) AssignRequestId(s.parser->get(), s.ex.request_id);
  if (ec == bhttp::error::header_limit) {
    co_await Reject(s, ErrorCode::kHeaderFieldsTooLarge, "request header fields too large", start);
  } else if (ec == bhttp::error::body_limit) {
    // A declared length over the limit with a Transfer-Encoding is a framing error first.
    if (RequestHeader(s).count(bhttp::field::transfer_encoding) != 0 &&
        RequestHeader(s).count(bhttp::field::content_length) != 0) {
      co_await Reject(s, ErrorCode::kBadRequest,
                      "Content-Length and Transfer-Encoding must not both be present", start);
    } else {
      co_await Reject(s, ErrorCode::kPayloadTooLarge, "request body too large", start);
    }
  } else if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message) {
    // The client went away mid-request: nobody to answer.
  } else if (IsHttpParseError(ec)) {
    co_await Reject(s, ErrorCode::kBadRequest, "malformed HTTP request", start);
  } else if (ec == beast::error::timeout) {
    // Slow header or body: disconnect without an answer; the log still shows the attempt.
    std::string_view method = RequestHeader(s).method_string();
    LogAccess(s.ex, method.empty() ? "-" : method, "-",
              static_cast<int>(bhttp::status::request_timeout), start);
  } else if (ec != asio::error::operation_aborted) {
    log::Event(log::Level::kDebug, "http_read_failed",
               {{"remote", s.ex.remote_address}, {"error", ec.message()}});
  }
}

asio::awaitable<void> Server::State::Reject(Session& s, ErrorCode code, std::string_view message,
                                            Clock::time_point start) {
  Exchange& ex = s.ex;
  const bhttp::request_header<>& partial = RequestHeader(s);
  ex.response = Response{};
  SetErrorResponse(ex.response, HttpStatus(code), CodeName(code), message, ex.request_id);
  ex.response.version(11);
  ex.response.set(bhttp::field::server, kServerName);
  ex.response.set(kRequestIdHeader, ex.request_id);
  ex.response.keep_alive(false);
  ex.response.prepare_payload();
  s.stream.expires_after(limits.write_timeout);
  auto [ec, n] = co_await bhttp::async_write(s.stream, ex.response, kNoThrow);
  std::string_view method = partial.method_string();
  LogAccess(ex, method.empty() ? "-" : method, "-", HttpStatus(code), start);
  if (!ec) co_await LingeringClose(s);
}

asio::awaitable<void> Server::State::LingeringClose(Session& s) {
  beast::error_code ec;
  s.stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  if (ec) co_return;
  s.idle = true;  // the answer is out: Stop() need not wait for this
  s.stream.expires_after(kLingerTime);
  s.buffer.clear();
  std::size_t discarded = 0;
  while (discarded < kLingerMaxBytes && !stopping.load()) {
    auto [rec, n] = co_await s.stream.async_read_some(s.buffer.prepare(kReadSize), kNoThrow);
    if (rec) break;
    discarded += n;  // never committed: the bytes are dropped
  }
}

void Server::State::LogAccess(const Exchange& ex, std::string_view method, std::string_view route,
                              int status, Clock::time_point start) {
  const double duration_ms = MillisSince(start);
  metrics::RecordRequest(route, status, duration_ms / 1000.0);
  WriteAccessLine(*access_log, AccessRecord{.request_id = ex.request_id,
                                            .method = method,
                                            .route = route,
                                            .status = status,
                                            .duration_ms = duration_ms,
                                            .member_id = ex.member_id,
                                            .remote = ex.remote_address});
}

void Server::State::BeginStop(std::function<void()> done_fn) {
  done = std::move(done_fn);
  stop_begun = true;
  beast::error_code ec;
  acceptor.close(ec);
  for (const auto& s : sessions) {
    asio::post(s->stream.get_executor(), [s] {
      if (s->idle) s->stream.close();
    });
  }
  drain_timer.expires_after(limits.drain_timeout);
  drain_timer.async_wait([self = shared_from_this()](beast::error_code wait_ec) {
    if (wait_ec || self->finished) return;
    // Whatever is left gets closed; a handler that never returns is not waited for.
    log::Event(log::Level::kWarn, "http_drain_timeout",
               {{"connections", self->sessions.size()}, {"inFlight", self->in_flight.load()}});
    for (const auto& s : self->sessions) {
      asio::post(s->stream.get_executor(), [s] { s->stream.close(); });
    }
    self->Finish();
  });
  MaybeFinish();
}

void Server::State::MaybeFinish() {
  if (stop_begun && !finished && sessions.empty()) Finish();
}

void Server::State::Finish() {
  finished = true;
  drain_timer.cancel();
  auto done_fn = std::move(done);
  done = nullptr;
  if (done_fn) done_fn();
}

Server::Server(boost::asio::io_context& ioc, Handler& handler, ServerLimits limits)
    : state_(std::make_shared<State>(ioc, handler, limits)) {}

Server::~Server() {
  // Without Stop(), at least stop accepting: the accept loop would otherwise keep the state
  // (and its Handler reference) in use.
  if (!state_->stopping.exchange(true)) {
    asio::post(state_->strand, [st = state_] {
      beast::error_code ec;
      st->acceptor.close(ec);
    });
  }
}

boost::asio::ip::tcp::endpoint Server::Listen(const boost::asio::ip::tcp::endpoint& endpoint) {
  tcp::acceptor& acceptor = state_->acceptor;
  acceptor.open(endpoint.protocol());
  acceptor.set_option(tcp::acceptor::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen(tcp::socket::max_listen_connections);
  tcp::endpoint bound = acceptor.local_endpoint();
  asio::co_spawn(state_->strand, state_->AcceptLoop(state_), LogEscapedException);
  return bound;
}

void Server::Stop(std::function<void()> done) {
  if (state_->stopping.exchange(true)) {
    log::Event(log::Level::kWarn, "http_stop_repeated");
    return;
  }
  asio::post(state_->strand,
             [st = state_, done = std::move(done)]() mutable { st->BeginStop(std::move(done)); });
}

std::size_t Server::InFlight() const { return state_->in_flight.load(); }

}  // namespace connreg::http
