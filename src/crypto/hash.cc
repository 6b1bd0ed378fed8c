#include "crypto/hash.h"

#include <sodium.h>

#include "crypto/encoding.h"
#include "crypto/random.h"

namespace connreg::crypto {

std::string TokenHash(std::string_view token) {
  EnsureSodium();
  static constexpr unsigned char kLabel[] = "connreg token hash v1 ..........";  // 32 bytes
  unsigned char out[32];
  crypto_generichash(out, sizeof out, reinterpret_cast<const unsigned char*>(token.data()),
                     token.size(), kLabel, 32);
  return HexEncode(std::string_view(reinterpret_cast<const char*>(out), sizeof out));
}

std::string Mac(std::string_view key, std::string_view data) {
  EnsureSodium();
  unsigned char k[crypto_auth_hmacsha512256_KEYBYTES] = {};
  for (size_t i = 0; i < sizeof k && i < key.size(); ++i) k[i] = static_cast<unsigned char>(key[i]);
  unsigned char out[crypto_auth_hmacsha512256_BYTES];
  crypto_auth_hmacsha512256(out, reinterpret_cast<const unsigned char*>(data.data()), data.size(),
                            k);
  sodium_memzero(k, sizeof k);
  return std::string(reinterpret_cast<const char*>(out), sizeof out);
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace connreg::crypto
