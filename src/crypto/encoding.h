// Base64 (standard and url-safe) and hex codecs over libsodium's constant-time routines.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace connreg::crypto {

std::string Base64UrlEncode(std::string_view bytes);                // unpadded
std::optional<std::string> Base64UrlDecode(std::string_view text);  // unpadded only
std::string Base64Encode(std::string_view bytes);                   // padded, standard
std::optional<std::string> Base64Decode(std::string_view text);     // padded, standard
std::string HexEncode(std::string_view bytes);

}  // namespace connreg::crypto
