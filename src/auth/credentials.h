// Parsing of the credentials a client presents: the token endpoint's form body, HTTP Basic
// client credentials, and bearer tokens. Pure functions over untrusted text; thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace connreg::auth {

// application/x-www-form-urlencoded: '&'-separated name=value pairs, '+' as space, %XX escapes.
// A malformed escape or a repeated name (RFC 6749 section 3.2) is a 400.
Result<std::map<std::string, std::string>> ParseForm(std::string_view body);

struct BasicCredentials {
  std::string id;
  std::string secret;
};
// "Basic base64(id:secret)", id and secret form-urlencoded (RFC 6749 section 2.3.1). nullopt when
// the header is not a well-formed Basic credential.
std::optional<BasicCredentials> ParseBasic(std::string_view authorization);
// True when the header uses the Basic scheme at all (well-formed or not).
bool IsBasicScheme(std::string_view authorization);

// "Bearer <token>" with a token of base64url characters (1..512); nullopt otherwise.
std::optional<std::string_view> ParseBearer(std::string_view authorization);

}  // namespace connreg::auth
