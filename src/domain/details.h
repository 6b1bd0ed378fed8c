// Validation of a connection's `details` for each warehouse type (contract section 4 table).
// Pure functions over JSON values; thread-safe.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "core/result.h"

namespace connreg::domain {

struct ParsedDetails {
  std::string type;
  // Every non-secret field as given (validated); never contains a secret field.
  boost::json::object visible;
  // Secret fields the request mentions: a value sets it, nullopt (JSON null) clears it.
  // `{"type":"plain","value":"x"}` passwords arrive here as "x".
  std::map<std::string, std::optional<std::string>> secret_changes;
  bool use_oauth = false;     // details.useOauth is true
  bool write_access = false;  // details.writeAccess is given
};

// Validates `details` against the row of its `type`. `kept_secrets` names secret fields that the
// stored connection has and the request leaves untouched (a PUT or PATCH of the same type): they
// count as set when checking what is required. Every error is a 400 naming the JSON path of the
// first bad value, e.g. "details.hots is not a field of a postgres connection".
Result<ParsedDetails> ParseDetails(const boost::json::value& details,
                                   const std::set<std::string>& kept_secrets = {});

// The ten `details.type` values, in the contract's order.
const std::vector<std::string_view>& WarehouseTypes();
bool IsWarehouseType(std::string_view type);
// True when `field` is a secret field of `type` (password, privateKey, privateKeyPassphrase,
// serviceAccount, token).
bool IsSecretField(std::string_view type, std::string_view field);

}  // namespace connreg::domain
