// Authenticated encryption of secret fields before they reach the store. A sealed value is bound
// to its connection and field (associated data), so a ciphertext moved to another row or field
// fails to open. Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"
#include "domain/connection.h"

namespace connreg::crypto {

class SecretSealer {
 public:
  virtual ~SecretSealer() = default;
  virtual domain::StoredSecret Seal(std::string_view connection_id, std::string_view field,
                                    std::string_view plaintext, TimeMs now) const = 0;
  // Fails (kInternal) when the key is unknown or the value was tampered with or moved.
  virtual Result<std::string> Open(std::string_view connection_id, std::string_view field,
                                   const domain::StoredSecret& secret) const = 0;
};

}  // namespace connreg::crypto
