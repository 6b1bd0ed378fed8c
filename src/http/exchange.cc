#include "http/exchange.h"

#include <boost/beast/http/field.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace connreg::http {

void SetErrorResponse(Response& res, int status, std::string_view code, std::string_view message,
                      std::string_view request_id) {
  res.result(static_cast<unsigned>(status));
  res.set(boost::beast::http::field::content_type, "application/json");
  // boost::json escapes whatever the message holds; callers keep secrets out of it.
  boost::json::object body;
  body.reserve(3);
  body.emplace("code", code);
  body.emplace("message", message);
  body.emplace("requestId", request_id);
  res.body() = boost::json::serialize(body);
  res.prepare_payload();
}

}  // namespace connreg::http
