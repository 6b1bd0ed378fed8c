// SecretSealer over libsodium's XChaCha20-Poly1305 (IETF AEAD): a fresh 192-bit nonce per value,
// associated data "connreg-secret-v1|<connectionId>|<field>" binding the ciphertext to its row and
// field. Sealed form: base64(nonce || ciphertext). Keys are held in libsodium guarded memory
// (locked, wiped on destruction). Thread-safe after construction.
#pragma once

#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "domain/secret_sealer.h"

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
  // The key as base64, for writing a key file. The caller wipes the returned string.
  std::string ExportBase64() const;
  // Short public identifier derived from the key (BLAKE2b of it, 8 hex digits): names the key
  // beside each ciphertext without revealing it.
  const std::string& id() const { return id_; }

 private:
  unsigned char* key_;
  std::string id_;
};

// The keys in force: `current` seals; current and every key of `previous` open.
struct Keyring {
  std::shared_ptr<const MasterKey> current;
  std::vector<std::shared_ptr<const MasterKey>> previous;
};

class SodiumSealer : public domain::SecretSealer {
 public:
  explicit SodiumSealer(Keyring keys);
  // Replaces the keyring (a key rotation picked up at run time). Thread-safe.
  void SetKeys(Keyring keys);
  bool Knows(const std::string& key_id) const;

  domain::StoredSecret Seal(std::string_view connection_id, std::string_view field,
                            std::string_view plaintext, TimeMs now) const override;
  Result<std::string> Open(std::string_view connection_id, std::string_view field,
                           const domain::StoredSecret& secret) const override;
  // BLAKE2b keyed with a subkey of the master key (crypto_kdf_derive_from_key, context
  // "crdigest"), over `purpose`, a NUL byte and `data`.
  KeyedDigest Digest(std::string_view purpose, std::string_view data) const override;
  Result<std::string> DigestUnder(std::string_view key_id, std::string_view purpose,
                                  std::string_view data) const override;

  std::string current_key_id() const;

 private:
  std::shared_ptr<const MasterKey> Current() const;
  std::shared_ptr<const MasterKey> Find(std::string_view key_id) const;

  mutable std::shared_mutex mu_;
  std::shared_ptr<const MasterKey> current_;
  std::map<std::string, std::shared_ptr<const MasterKey>> keys_;
};

}  // namespace connreg::crypto
