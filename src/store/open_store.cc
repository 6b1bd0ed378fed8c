// OpenStore: the one place that maps a CONNREG_DATABASE url to a Store backend.
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

#include "store/postgres_store.h"
#include "store/sqlite_store.h"
#include "store/store.h"

namespace connreg::store {

std::unique_ptr<Store> OpenStore(const std::string& url) {
  constexpr std::string_view kSqlite = "sqlite:";
  const std::string_view u = url;
  if (u.starts_with(kSqlite)) {
    const std::filesystem::path path(std::string(u.substr(kSqlite.size())));
    if (path.empty()) throw std::runtime_error("database url \"sqlite:\" names no file");
    if (path.has_parent_path()) {
      std::error_code ec;
      std::filesystem::create_directories(path.parent_path(), ec);
      if (ec) {
        throw std::runtime_error("cannot create the directory " + path.parent_path().string() +
                                 ": " + ec.message());
      }
    }
    return std::make_unique<SqliteStore>(path.string());
  }
  if (u.starts_with("postgresql://") || u.starts_with("postgres://")) {
    // The pool takes `pool_size` and `pool_timeout_ms` from the url's query; the rest goes to
    // libpq. PostgresStore's errors never contain the password.
    return std::make_unique<PostgresStore>(url);
  }
  // Only the scheme is echoed: the rest of a url may hold a password.
  const std::string scheme(u.substr(0, u.find(':')));
  throw std::runtime_error("unsupported database url (scheme \"" + scheme.substr(0, 32) +
                           "\"): expected sqlite:PATH or postgresql://...");
}

}  // namespace connreg::store
