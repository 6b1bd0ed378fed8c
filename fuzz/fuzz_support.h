// What the fuzz targets share: a sealer under a fixed master key (the targets check behaviour,
// not secrecy).
#pragma once

#include <memory>
#include <string>

#include "crypto/random.h"
#include "crypto/sodium_sealer.h"

namespace connreg::fuzz {

inline crypto::SodiumSealer& Sealer() {
  static crypto::SodiumSealer* sealer = [] {
    crypto::EnsureSodium();
    std::string raw(crypto::MasterKey::kBytes, '\x42');
    return new crypto::SodiumSealer(
        crypto::Keyring{std::make_shared<const crypto::MasterKey>(raw), {}});
  }();
  return *sealer;
}

}  // namespace connreg::fuzz
