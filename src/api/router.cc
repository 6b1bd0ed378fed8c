#include "api/router.h"

#include <ostream>  // Boost 1.81 string_view needs it complete before beast/http/verb.hpp

#include <boost/beast/http/verb.hpp>

namespace connreg::api {
namespace {

std::vector<std::string_view> Split(std::string_view pattern) {
  std::vector<std::string_view> out;
  while (!pattern.empty()) {
    if (pattern.front() == '/') {
      pattern.remove_prefix(1);
      continue;
    }
    size_t slash = pattern.find('/');
    out.push_back(pattern.substr(0, slash));
    pattern = slash == std::string_view::npos ? std::string_view{} : pattern.substr(slash);
  }
  return out;
}

bool IsPlaceholder(std::string_view s) {
  return s.size() > 2 && s.front() == '{' && s.back() == '}';
}

void AddAllowed(std::string_view method, std::string& allow) {
  for (std::string_view rest = allow; !rest.empty();) {
    const size_t comma = rest.find(", ");
    if (rest.substr(0, comma) == method) return;
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 2);
  }
  if (!allow.empty()) allow += ", ";
  allow += method;
}

}  // namespace

using boost::beast::http::verb;

Router::Router(std::vector<Route> routes) : routes_(std::move(routes)) {
  for (const Route& r : routes_) patterns_.push_back(Split(r.pattern));
}

Router::Match Router::Find(boost::beast::http::verb method,
                           const std::vector<std::string>& segments) const {
  Match match;
  for (size_t i = 0; i < routes_.size(); ++i) {
    const auto& pattern = patterns_[i];
    if (pattern.size() != segments.size()) continue;
    bool ok = true;
    for (size_t s = 0; s < pattern.size() && ok; ++s) {
      ok = IsPlaceholder(pattern[s]) ? !segments[s].empty() : pattern[s] == segments[s];
    }
    if (!ok) continue;
    // A literal route wins over a placeholder one for the same path ("/connections/test" vs
    // "/connections/{id}"): literal routes are listed first, so the first full match is kept.
    const Route& route = routes_[i];
    const bool head = route.method == verb::get && route.serves_head;
    if (match.route == nullptr && (route.method == method || (method == verb::head && head))) {
      match.route = &route;
      for (size_t s = 0; s < pattern.size(); ++s) {
        if (IsPlaceholder(pattern[s])) match.params.push_back(segments[s]);
      }
    }
    AddAllowed(boost::beast::http::to_string(route.method), match.allow);
    if (head) AddAllowed("HEAD", match.allow);
  }
  return match;
}

}  // namespace connreg::api
