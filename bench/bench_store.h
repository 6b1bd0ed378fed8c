// What the store micro-benchmarks share: a SQLite store in a temporary directory of its own,
// removed with it, and Must for set-up steps that cannot fail.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>

#include "core/result.h"
#include "store/sqlite_store.h"

namespace connreg::store::bench {

inline void Must(const Status& s) {
  if (!s.ok()) throw std::runtime_error(s.error().message);
}

// A fresh directory `<base>/<name>.XXXXXX` holding one SQLite store, `connreg.db`.
struct TempStore {
  explicit TempStore(const std::string& name, GroupCommitBounds bounds = {},
                     const std::filesystem::path& base = std::filesystem::temp_directory_path()) {
    std::string pattern = (base / (name + ".XXXXXX")).string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir = pattern;
    store = std::make_unique<SqliteStore>((dir / "connreg.db").string(), bounds);
  }
  ~TempStore() {
    store.reset();  // closed before its files go
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  TempStore(const TempStore&) = delete;
  TempStore& operator=(const TempStore&) = delete;

  std::filesystem::path dir;
  std::unique_ptr<SqliteStore> store;
};

}  // namespace connreg::store::bench
