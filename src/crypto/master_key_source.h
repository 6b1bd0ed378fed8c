// Where the master key comes from (contract section 11): CONNREG_MASTER_KEY (base64),
// CONNREG_MASTER_KEY_FILE, or, for the embedded default only, a key file beside the database
// that is generated (mode 0600) on the first start of an empty store. Start-up only: failures
// throw std::runtime_error with a message an operator can act on.
#pragma once

#include <memory>
#include <string>

#include "crypto/sodium_sealer.h"

namespace connreg::crypto {

struct MasterKeySettings {
  std::string key_base64;    // CONNREG_MASTER_KEY
  std::string key_file;      // CONNREG_MASTER_KEY_FILE
  std::string default_file;  // generated/used when both are empty; empty: no default (PostgreSQL)
  bool store_is_empty = false;  // a missing default file may be generated only then
};

// A key source holds one or more keys, separated by newlines or commas: the first seals, the
// others only open (they are the keys of a rotation in progress).
struct LoadedKeys {
  Keyring keys;
  std::string file;  // the key file read, empty when the keys came from CONNREG_MASTER_KEY
};
LoadedKeys LoadMasterKeys(const MasterKeySettings& settings);

// Reads a key file (no generation). Throws std::runtime_error like LoadMasterKeys.
Keyring ReadKeyFile(const std::string& path);
// Writes a key file holding `keys` (the first one current), atomically (temp file + rename),
// mode 0600.
void WriteKeyFile(const std::string& path, const Keyring& keys);

// Writes `contents` to `path` with mode 0600 (created exclusively unless `overwrite`).
void WritePrivateFile(const std::string& path, const std::string& contents, bool overwrite);

}  // namespace connreg::crypto
