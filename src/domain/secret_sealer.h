// Authenticated encryption of secret fields before they reach the store. A sealed value is bound
// to its connection and field (associated data), so a ciphertext moved to another row or field
// fails to open. Thread-safe.
//
// The domain owns this interface (it seals a request's secrets as it builds the next state of a
// connection); crypto/sodium_sealer.h implements it, so the domain includes nothing above it.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "core/result.h"
#include "domain/connection.h"

namespace connreg::domain {

class SecretSealer {
 public:
  // A MAC and the id of the master key it was made under.
  struct KeyedDigest {
    std::string key_id;
    std::string mac;  // raw 32 bytes
  };

  virtual ~SecretSealer() = default;
  virtual StoredSecret Seal(std::string_view connection_id, std::string_view field,
                            std::string_view plaintext, TimeMs now) const = 0;
  // Fails (kInternal) when the key is unknown or the value was tampered with or moved.
  virtual Result<std::string> Open(std::string_view connection_id, std::string_view field,
                                   const StoredSecret& secret) const = 0;

  // For values derived from secrets that are compared but never recovered (the idempotency
  // record of a request that carries a password): a MAC of `data`, separated by `purpose`, under
  // a key derived from the current master key. Without the master key the MAC is not computable,
  // so it allows no dictionary attack on the secrets in `data`.
  virtual KeyedDigest Digest(std::string_view purpose, std::string_view data) const = 0;
  // The same MAC under the master key `key_id` names; kNotFound when that key is no longer held
  // (rotated away).
  virtual Result<std::string> DigestUnder(std::string_view key_id, std::string_view purpose,
                                          std::string_view data) const = 0;
};

// Opens every secret of `c` (field -> plaintext), for a test or a catalog listing; a secret that
// fails to open fails the whole call (kInternal).
inline Result<std::map<std::string, std::string>> OpenSecrets(const SecretSealer& sealer,
                                                              const Connection& c) {
  std::map<std::string, std::string> out;
  for (const auto& [field, secret] : c.secrets) {
    auto plain = sealer.Open(c.connection_id, field, secret);
    if (!plain) return plain.error();
    out.emplace(field, std::move(*plain));
  }
  return out;
}

}  // namespace connreg::domain
