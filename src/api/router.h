// Maps (method, path) to a route. Patterns are literal segments and "{name}" placeholders, e.g.
// "/v2/connections/{connectionId}/test". Immutable after construction; thread-safe.
#pragma once

#include <ostream>  // Boost 1.81 string_view needs std::ostream complete
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/verb.hpp>

namespace connreg::api {

struct Context;
using RouteHandler = void (*)(Context&);

// Where a handler runs. kPool: on the blocking pool (anything that may wait on the store: writes,
// listings, token issuance). kInline: on the I/O thread (static documents). kPointRead: a
// primary-key read, inline when the store serves those locally without waiting on a lock or a
// network (Store::PointReadsAreLocal: SQLite's WAL mode reads a snapshot without waiting on
// writers; the hop to the pool and back costs more than such a read, bench/README.md), on the
// pool otherwise (PostgreSQL).
enum class Exec { kPool, kInline, kPointRead };

struct Route {
  boost::beast::http::verb method;
  std::string_view pattern;  // also the route template used in logs and metrics
  bool needs_auth;
  RouteHandler handle;
  Exec exec = Exec::kPool;
  // A GET route that only reads also serves HEAD (RFC 9110 section 9.3.2: the same handler, the
  // same headers, no body). False for a GET that acts (the saved-connection test): HEAD is a 405.
  bool serves_head = true;
  // Non-zero: the route streams its body to the handler (http::Exchange::body) and takes bodies
  // up to this size, past the server's 1 MiB (http::Handler::StreamedBodyLimit).
  std::size_t streamed_body_limit = 0;
  // True: the handler reads the connection of its first placeholder with LoadVisible, and where
  // tokens are not cached (PostgreSQL), the token check is made by that read's statement
  // (ConnectionStore::GetConnectionForToken): one round trip for the request.
  bool token_in_read = false;
};

class Router {
 public:
  explicit Router(std::vector<Route> routes);

  struct Match {
    const Route* route = nullptr;  // null: no route for this method
    std::vector<std::string> params;
    std::string allow;  // methods the path does support ("GET, POST"); empty: unknown path
  };
  // `segments` are the decoded path segments ("/v2/connections/" → {"v2","connections"}). HEAD
  // finds the GET route of the path when it serves HEAD.
  Match Find(boost::beast::http::verb method, const std::vector<std::string>& segments) const;

  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
  std::vector<std::vector<std::string_view>> patterns_;
};

}  // namespace connreg::api
