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

std::shared_ptr<const MasterKey> LoadMasterKey(const MasterKeySettings& settings);

// Writes `contents` to `path` with mode 0600 (created exclusively unless `overwrite`).
void WritePrivateFile(const std::string& path, const std::string& contents, bool overwrite);

}  // namespace connreg::crypto
