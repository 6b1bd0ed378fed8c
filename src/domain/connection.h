// The connection object as the registry keeps it (contract section 3). Plain data: no
// behaviour, no I/O. The store persists it; api/render.cc turns it into the response shape.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <boost/json/object.hpp>

#include "core/time.h"

namespace connreg::domain {

// A secret field of the details (password, privateKey, ...), as it reaches the store.
// `sealed` is what the store writes: the value's ciphertext under the master key named by
// `key_id` (domain/secret_sealer.h). The store never interprets it.
struct StoredSecret {
  std::string sealed;
  std::string key_id;
  TimeMs updated_at = 0;
};

struct LastTest {
  TimeMs at = 0;
  std::string read;   // "SUCCESS" | "FAILED"
  std::string write;  // "SUCCESS" | "FAILED" | "DISABLED"
};

struct Connection {
  std::string organization_id;
  std::string connection_id;  // UUID v4, lowercase
  std::string name;
  std::string type;  // details.type
  bool is_sample = false;
  bool is_archived = false;
  bool use_oauth = false;
  bool write_access = false;
  bool use_friendly_names = true;
  std::optional<int> timeout_secs;
  std::string created_by;
  std::string updated_by;
  TimeMs created_at = 0;
  TimeMs updated_at = 0;
  TimeMs last_active_at = 0;
  std::int64_t version = 1;

  // Details without any secret field, as domain/details.h validated them.
  boost::json::object details;
  // The `description` object given at create/update; nullopt when none was given.
  std::optional<boost::json::object> description;
  // Secret fields by name ("password", "privateKey", ...).
  std::map<std::string, StoredSecret> secrets;
  std::optional<LastTest> last_test;
};

// Case-folded form of a name used by `search` (ASCII letters lowered; other bytes kept).
std::string FoldName(std::string_view name);

}  // namespace connreg::domain
