#include "auth/credentials.h"

#include <cctype>

#include "crypto/encoding.h"

namespace connreg::auth {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> FormDecode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
      int hi = HexDigit(in[i + 1]), lo = HexDigit(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

bool SchemeIs(std::string_view header, std::string_view scheme) {
  if (header.size() <= scheme.size() || header[scheme.size()] != ' ') return false;
  for (size_t i = 0; i < scheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) != scheme[i]) return false;
  }
  return true;
}

std::string_view Credentials(std::string_view header, std::string_view scheme) {
  std::string_view rest = header.substr(scheme.size());
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  while (!rest.empty() && rest.back() == ' ') rest.remove_suffix(1);
  return rest;
}

}  // namespace

Result<std::map<std::string, std::string>> ParseForm(std::string_view body) {
  std::map<std::string, std::string> out;
  while (!body.empty()) {
    size_t amp = body.find('&');
    std::string_view pair = body.substr(0, amp);
    body = amp == std::string_view::npos ? std::string_view{} : body.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    auto name = FormDecode(pair.substr(0, eq));
    auto value =
        FormDecode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1));
    if (!name || !value) return Error::BadRequest("the form body has a malformed %-escape");
    if (!out.emplace(std::move(*name), std::move(*value)).second) {
      return Error::BadRequest("a form parameter is repeated");
    }
  }
  return out;
}

bool IsBasicScheme(std::string_view authorization) { return SchemeIs(authorization, "basic"); }

std::optional<BasicCredentials> ParseBasic(std::string_view authorization) {
  if (!IsBasicScheme(authorization)) return std::nullopt;
  std::string_view encoded = Credentials(authorization, "basic");
  auto decoded = crypto::Base64Decode(encoded);
  if (!decoded) return std::nullopt;
  size_t colon = decoded->find(':');
  if (colon == std::string::npos) return std::nullopt;
  auto id = FormDecode(std::string_view(*decoded).substr(0, colon));
  auto secret = FormDecode(std::string_view(*decoded).substr(colon + 1));
  if (!id || !secret || id->empty()) return std::nullopt;
  return BasicCredentials{std::move(*id), std::move(*secret)};
}

std::optional<std::string_view> ParseBearer(std::string_view authorization) {
  if (!SchemeIs(authorization, "bearer")) return std::nullopt;
  std::string_view token = Credentials(authorization, "bearer");
  if (token.empty() || token.size() > 512) return std::nullopt;
  for (char c : token) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) {
      return std::nullopt;
    }
  }
  return token;
}

}  // namespace connreg::auth
