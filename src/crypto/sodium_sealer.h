// SecretSealer over libsodium's XChaCha20-Poly1305 (IETF AEAD): a fresh 192-bit nonce per value,
// associated data "connreg-secret-v1|<connectionId>|<field>" binding the ciphertext to its row and
// field. Sealed form: base64(nonce || ciphertext). Keys are held in libsodium guarded memory
// (locked, wiped on destruction). Thread-safe after construction.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "crypto/sealer.h"

namespace connreg::crypto {

// A 256-bit master key in locked, wiped memory.
class MasterKey {
 public:
  static constexpr std::size_t kBytes = 32;
  // `raw` must be exactly kBytes bytes.
  explicit MasterKey(std::string_view raw);
  ~MasterKey();
  MasterKey(const MasterKey&) = delete;
  MasterKey& operator=(const MasterKey&) = delete;

  const unsigned char* data() const { return key_; }
  // Short public identifier derived from the key (BLAKE2b of it, 8 hex digits): names the key
  // beside each ciphertext without revealing it.
  const std::string& id() const { return id_; }

 private:
  unsigned char* key_;
  std::string id_;
};

class SodiumSealer : public SecretSealer {
 public:
  // `current` seals; every key in `all` (current included) may open.
  SodiumSealer(std::shared_ptr<const MasterKey> current,
               std::vector<std::shared_ptr<const MasterKey>> others = {});

  domain::StoredSecret Seal(std::string_view connection_id, std::string_view field,
                            std::string_view plaintext, TimeMs now) const override;
  Result<std::string> Open(std::string_view connection_id, std::string_view field,
                           const domain::StoredSecret& secret) const override;

  const std::string& current_key_id() const { return current_->id(); }

 private:
  std::shared_ptr<const MasterKey> current_;
  std::map<std::string, std::shared_ptr<const MasterKey>> keys_;
};

}  // namespace connreg::crypto
