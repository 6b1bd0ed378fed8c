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

}  // namespace

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
    if (routes_[i].method == method && match.route == nullptr) {
      match.route = &routes_[i];
      for (size_t s = 0; s < pattern.size(); ++s) {
        if (IsPlaceholder(pattern[s])) match.params.push_back(segments[s]);
      }
    }
    std::string_view name = boost::beast::http::to_string(routes_[i].method);
    if (match.allow.find(name) == std::string::npos) {
      if (!match.allow.empty()) match.allow += ", ";
      match.allow += name;
    }
  }
  return match;
}

}  // namespace connreg::api
