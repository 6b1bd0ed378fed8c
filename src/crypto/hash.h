// Hashes and MACs. Client secrets and tokens carry 256 bits of entropy, so a fast keyed hash
// (BLAKE2b) is the right tool for storing them: a slow password hash buys nothing there.
#pragma once

#include <string>
#include <string_view>

namespace connreg::crypto {

// Hex BLAKE2b-256 of `data`, keyed with a fixed domain-separation label per use.
std::string TokenHash(std::string_view token);
// Raw 32-byte HMAC-SHA-512/256 of `data` under `key` (32 bytes).
std::string Mac(std::string_view key, std::string_view data);
// Constant-time equality for secrets of equal length.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace connreg::crypto
