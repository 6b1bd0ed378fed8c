#include "api/json_body.h"

#include <boost/beast/http/field.hpp>
#include <boost/json/error.hpp>
#include <boost/json/stream_parser.hpp>

#include <cctype>
#include <string>

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

Result<boost::json::value> ParseJsonBody(const http::Request& req, bool allow_empty) {
  if (req.body().empty() && allow_empty) return boost::json::value(nullptr);
  if (!IsJsonContentType(req)) {
    return Error{ErrorCode::kUnsupportedMediaType, "Content-Type must be application/json"};
  }
  const std::string& body = req.body();
  if (body.empty()) return Error::BadRequest("request body must be a JSON document");
  boost::json::parse_options opts;
  opts.max_depth = kMaxJsonDepth;
  boost::json::stream_parser parser({}, opts);
  boost::system::error_code ec;
  std::size_t consumed = parser.write(body.data(), body.size(), ec);
  if (!ec) parser.finish(ec);
  if (ec) {
    if (ec == boost::json::error::too_deep) {
      return Error::BadRequest("malformed JSON at byte offset " + std::to_string(consumed) +
                               ": nesting deeper than " + std::to_string(kMaxJsonDepth));
    }
    return Error::BadRequest("malformed JSON at byte offset " + std::to_string(consumed) + ": " +
                             ec.message());
  }
  return parser.release();
}

}  // namespace connreg::api
