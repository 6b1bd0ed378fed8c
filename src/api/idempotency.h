// The fingerprint of a request that a create stores with its Idempotency-Key (contract section 5;
// the request_hash of an idempotency record), made so that the database file reveals no secret
// of the body: the secret values are taken out of the body before it is hashed, and enter only a
// MAC under a key derived from the master key. Format (one string, no extra store column):
//
//   v2:<hex BLAKE2b of the method, path and body with its secret values replaced>:<key id>:<hex
//   MAC>
//
// where the MAC (SecretSealer::Digest) covers the body hash and the secret values with their
// paths; key id and MAC are empty when the body holds no secret value. Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "core/result.h"
#include "domain/details_spec.h"
#include "domain/secret_sealer.h"

namespace connreg::api {

// `request_line` names the operation ("POST /v2/connections"); `body` is the parsed body; `types`
// says which details fields are secrets.
std::string RequestFingerprint(const domain::TypeCatalog& types, std::string_view request_line,
                               const boost::json::value& body, const domain::SecretSealer& sealer);

// Whether `stored` is the fingerprint of this request. kConflict when it cannot be told: the
// record's MAC is under a master key no longer held (rotated away), or the record predates this
// format.
Result<bool> IsSameRequest(const domain::TypeCatalog& types, std::string_view stored,
                           std::string_view request_line, const boost::json::value& body,
                           const domain::SecretSealer& sealer);

}  // namespace connreg::api
