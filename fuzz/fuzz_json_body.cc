// libFuzzer target: api::ParseJsonBody (contract section 10: 415 for another media type, 400 for
// malformed JSON, nesting deeper than 32 or invalid UTF-8). The first byte picks the Content-Type
// and allow_empty; the rest is the body.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <boost/beast/http/field.hpp>
#include <boost/json/serialize.hpp>

#include "api/json_body.h"

namespace {
constexpr std::string_view kTypes[] = {"application/json",
                                       "application/json; charset=utf-8",
                                       "APPLICATION/JSON",
                                       " application/json ;",
                                       "text/plain",
                                       "application/jsonx",
                                       "",
                                       "application/json;;;;"};
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace connreg;
  if (size == 0) return 0;
  const std::uint8_t selector = data[0];
  http::Request req;
  std::string_view type = kTypes[selector & 7];
  if (!(selector & 0x10)) req.set(boost::beast::http::field::content_type, type);
  req.body().assign(reinterpret_cast<const char*>(data + 1), size - 1);
  const bool allow_empty = (selector & 8) != 0;
  auto r = api::ParseJsonBody(req, allow_empty);
  if (r.ok()) {
    (void)boost::json::serialize(*r);
  } else if (r.error().code != ErrorCode::kBadRequest &&
             r.error().code != ErrorCode::kUnsupportedMediaType) {
    std::abort();
  }
  return 0;
}
