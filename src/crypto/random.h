// Randomness and identifiers, all from libsodium's CSPRNG. Thread-safe.
#pragma once

#include <cstddef>
#include <string>

namespace connreg::crypto {

// Calls sodium_init() once; every function here calls it, so callers need not.
void EnsureSodium();

// Lowercase RFC 4122 version 4 UUID.
std::string NewUuid4();
// `bytes` random bytes rendered as unpadded base64url (32 bytes -> 43 characters).
std::string RandomToken(std::size_t bytes = 32);
// Short opaque identifier for members, teams and clients: 20 random bytes, base62-free base64url.
std::string NewOpaqueId();

}  // namespace connreg::crypto
