#include "api/json_body.h"

#include <boost/beast/http/field.hpp>
#include <boost/json/error.hpp>

#include <cctype>
#include <cmath>
#include <optional>
#include <string>

#include "domain/json_text.h"

namespace connreg::api {

bool IsJsonContentType(const http::Request& req) {
  auto it = req.find(boost::beast::http::field::content_type);
  if (it == req.end()) return false;
  std::string_view v = it->value();
  std::string_view media = v.substr(0, v.find(';'));
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.remove_suffix(1);
  while (!media.empty() && (media.front() == ' ' || media.front() == '\t')) media.remove_prefix(1);
  static constexpr std::string_view kJson = "application/json";
  if (media.size() != kJson.size()) return false;
  for (size_t i = 0; i < media.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(media[i])) != kJson[i]) return false;
  }
  return true;
}

namespace {

// Why no store could keep a value of the body: a string or key that holds a NUL character
// (PostgreSQL text cannot hold it; SQLite would), or a number too large for a double (the parser
// reads 1e999 as infinity, which no JSON text can spell, so the stored row could never be read
// back). Refused here, the same on every backend and for every body, with the path of the first
// such value ("details.user", "description.tags[2]").
struct Unstorable {
  std::string path;
  std::string_view why;
};

constexpr std::string_view kHoldsNul =
    " contains a NUL character (\\u0000), which no value may hold";
constexpr std::string_view kNotFinite = " must be a finite number";

std::optional<Unstorable> FindUnstorable(const boost::json::value& v, const std::string& path) {
  switch (v.kind()) {
    case boost::json::kind::string:
      if (v.get_string().find('\0') != boost::json::string::npos)
        return Unstorable{path, kHoldsNul};
      break;
    case boost::json::kind::double_:
      if (!std::isfinite(v.get_double())) return Unstorable{path, kNotFinite};
      break;
    case boost::json::kind::object:
      for (const auto& kv : v.get_object()) {
        std::string at = path.empty() ? std::string(kv.key()) : path + "." + std::string(kv.key());
        if (kv.key().find('\0') != std::string_view::npos) return Unstorable{at, kHoldsNul};
        if (auto found = FindUnstorable(kv.value(), at)) return found;
      }
      break;
    case boost::json::kind::array: {
      const auto& a = v.get_array();
      for (std::size_t i = 0; i < a.size(); ++i) {
        if (auto found = FindUnstorable(a[i], path + "[" + std::to_string(i) + "]")) return found;
      }
      break;
    }
    default: break;
  }
  return std::nullopt;
}

}  // namespace

Result<boost::json::value> ParseJsonBody(const http::Request& req, bool allow_empty) {
  if (req.body().empty() && allow_empty) return boost::json::value(nullptr);
  if (!IsJsonContentType(req)) {
    return Error{ErrorCode::kUnsupportedMediaType, "Content-Type must be application/json"};
  }
  const std::string& body = req.body();
  if (body.empty()) return Error::BadRequest("request body must be a JSON document");
  boost::json::parse_options opts;
  opts.max_depth = kMaxJsonDepth;
  boost::system::error_code ec;
  std::size_t consumed = 0;
  boost::json::value value = domain::ParseJsonText(body, ec, opts, &consumed);
  if (ec) {
    if (ec == boost::json::error::too_deep) {
      return Error::BadRequest("malformed JSON at byte offset " + std::to_string(consumed) +
                               ": nesting deeper than " + std::to_string(kMaxJsonDepth));
    }
    return Error::BadRequest("malformed JSON at byte offset " + std::to_string(consumed) + ": " +
                             ec.message());
  }
  if (auto bad = FindUnstorable(value, "")) {
    return Error::BadRequest((bad->path.empty() ? std::string("the body") : bad->path) +
                             std::string(bad->why));
  }
  return value;
}

}  // namespace connreg::api
