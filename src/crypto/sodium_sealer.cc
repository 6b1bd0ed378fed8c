#include "crypto/sodium_sealer.h"

#include <sodium.h>

#include <new>
#include <stdexcept>

#include "crypto/encoding.h"
#include "crypto/random.h"

namespace connreg::crypto {
namespace {

std::string AssociatedData(std::string_view connection_id, std::string_view field) {
  std::string ad = "connreg-secret-v1|";
  ad.append(connection_id).append("|").append(field);
  return ad;
}

std::string KeyedBlake2b(const MasterKey& key, std::string_view purpose, std::string_view data) {
  static constexpr char kContext[crypto_kdf_CONTEXTBYTES + 1] = "crdigest";
  unsigned char subkey[crypto_generichash_KEYBYTES];
  crypto_kdf_derive_from_key(subkey, sizeof subkey, /*subkey_id=*/1, kContext, key.data());
  crypto_generichash_state state;
  crypto_generichash_init(&state, subkey, sizeof subkey, crypto_generichash_BYTES);
  sodium_memzero(subkey, sizeof subkey);
  crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(purpose.data()),
                            purpose.size());
  static constexpr unsigned char kSeparator = 0;
  crypto_generichash_update(&state, &kSeparator, 1);
  crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(data.data()),
                            data.size());
  std::string mac(crypto_generichash_BYTES, '\0');
  crypto_generichash_final(&state, reinterpret_cast<unsigned char*>(mac.data()), mac.size());
  sodium_memzero(&state, sizeof state);
  return mac;
}

}  // namespace

MasterKey::MasterKey(std::string_view raw) {
  EnsureSodium();
  if (raw.size() != kBytes) throw std::invalid_argument("master key must be 32 bytes");
  key_ = static_cast<unsigned char*>(sodium_malloc(kBytes));
  if (key_ == nullptr) throw std::bad_alloc();
  std::copy(raw.begin(), raw.end(), key_);
  sodium_mprotect_readonly(key_);
  unsigned char digest[4];
  static constexpr unsigned char kLabel[] = "connreg master key id v1";
  crypto_generichash(digest, sizeof digest, key_, kBytes, kLabel, sizeof kLabel - 1);
  id_ = HexEncode(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

MasterKey::~MasterKey() { sodium_free(key_); }  // sodium_free wipes before releasing

std::string MasterKey::ExportBase64() const {
  return Base64Encode(std::string_view(reinterpret_cast<const char*>(key_), kBytes));
}

SodiumSealer::SodiumSealer(Keyring keys) { SetKeys(std::move(keys)); }

void SodiumSealer::SetKeys(Keyring keys) {
  std::map<std::string, std::shared_ptr<const MasterKey>> all;
  all[keys.current->id()] = keys.current;
  for (auto& k : keys.previous) all.emplace(k->id(), k);
  std::unique_lock lock(mu_);
  current_ = std::move(keys.current);
  keys_ = std::move(all);
}

bool SodiumSealer::Knows(const std::string& key_id) const {
  std::shared_lock lock(mu_);
  return keys_.count(key_id) > 0;
}

std::string SodiumSealer::current_key_id() const { return Current()->id(); }

std::shared_ptr<const MasterKey> SodiumSealer::Current() const {
  std::shared_lock lock(mu_);
  return current_;
}

std::shared_ptr<const MasterKey> SodiumSealer::Find(std::string_view key_id) const {
  std::shared_lock lock(mu_);
  auto it = keys_.find(std::string(key_id));
  return it == keys_.end() ? nullptr : it->second;
}

domain::SecretSealer::KeyedDigest SodiumSealer::Digest(std::string_view purpose,
                                                       std::string_view data) const {
  auto key = Current();
  return {key->id(), KeyedBlake2b(*key, purpose, data)};
}

Result<std::string> SodiumSealer::DigestUnder(std::string_view key_id, std::string_view purpose,
                                              std::string_view data) const {
  auto key = Find(key_id);
  if (!key) return Error::NotFound("master key " + std::string(key_id) + " is not held");
  return KeyedBlake2b(*key, purpose, data);
}

domain::StoredSecret SodiumSealer::Seal(std::string_view connection_id, std::string_view field,
                                        std::string_view plaintext, TimeMs now) const {
  const std::shared_ptr<const MasterKey> current = Current();
  const std::string ad = AssociatedData(connection_id, field);
  std::string out(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + plaintext.size() +
                      crypto_aead_xchacha20poly1305_ietf_ABYTES,
                  '\0');
  auto* nonce = reinterpret_cast<unsigned char*>(out.data());
  randombytes_buf(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
  unsigned long long clen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      nonce + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &clen,
      reinterpret_cast<const unsigned char*>(plaintext.data()), plaintext.size(),
      reinterpret_cast<const unsigned char*>(ad.data()), ad.size(), nullptr, nonce,
      current->data());
  return {Base64Encode(out), current->id(), now};
}

Result<std::string> SodiumSealer::Open(std::string_view connection_id, std::string_view field,
                                       const domain::StoredSecret& secret) const {
  const std::shared_ptr<const MasterKey> key = Find(secret.key_id);
  if (!key) {
    return Error::Internal("secret " + std::string(field) + " is sealed under unknown key " +
                           secret.key_id);
  }
  auto raw = Base64Decode(secret.sealed);
  constexpr size_t kOverhead =
      crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES;
  if (!raw || raw->size() < kOverhead) {
    return Error::Internal("secret " + std::string(field) + " is not a sealed value");
  }
  const std::string ad = AssociatedData(connection_id, field);
  const auto* nonce = reinterpret_cast<const unsigned char*>(raw->data());
  std::string plain(raw->size() - kOverhead, '\0');
  unsigned long long plen = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(plain.data()), &plen, nullptr,
          nonce + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
          raw->size() - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
          reinterpret_cast<const unsigned char*>(ad.data()), ad.size(), nonce, key->data()) != 0) {
    return Error::Internal("secret " + std::string(field) +
                           " failed authentication (wrong key, tampered or moved)");
  }
  plain.resize(plen);
  return plain;
}

}  // namespace connreg::crypto
