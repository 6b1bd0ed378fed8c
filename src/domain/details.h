// Validation of a connection's `details` against the table of its type (contract section 4): a
// TypeCatalog (details_spec.h) that the caller hands in, as the registry of driver families
// builds it. Pure functions over JSON values; thread-safe.
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
#include "domain/details_spec.h"

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
Result<ParsedDetails> ParseDetails(const TypeCatalog& types, const boost::json::value& details,
                                   const std::set<std::string>& kept_secrets = {});

// PUT: copies into `body_details` the stored values of the fields that a PUT leaving them out
// keeps (tlsMode and tlsCaCert: extensions a Sigma client cannot know to send, so a PUT from one
// does not silently change how the connection verifies its server). `stored` is the stored
// details of the same `type`.
void KeepOnReplace(const TypeCatalog& types, std::string_view type,
                   const boost::json::object& stored, boost::json::object* body_details);

// The rules that relate the next details to the stored ones (contract section 4), applied to
// `next` after ParseDetails. `stored` is the stored details when the request keeps the type (PUT,
// PATCH, a proposed test), else null (create, type change); `tls_mode_mentioned` says whether the
// request names tlsMode (a JSON null included); `kept` is as for ParseDetails.
// - TLS default: with TLS on and no tlsMode, `next` gets tlsMode verify-full, except when a
//   stored row without tlsMode (stored before it existed, hence `require`) keeps TLS on and the
//   request does not mention the mode.
// - Secrets stay bound to their endpoint: when the request changes an endpoint field (marked
//   Endpoint() in the type's table, compared with its Default() when absent) or weakens TLS (turns
//   it off, lowers tlsMode, or changes tlsCaCert while certificates are verified), no stored secret
//   may be kept: a 400 "details.password must be given again when details.host changes".
Status SettleDetails(const TypeCatalog& types, const boost::json::object* stored,
                     bool tls_mode_mentioned, const std::set<std::string>& kept,
                     ParsedDetails* next);

}  // namespace connreg::domain
