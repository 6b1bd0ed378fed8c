// The response shapes of the API: the connection object (contract section 3). Pure functions;
// thread-safe.
#pragma once

#include <string>

#include "core/json_write.h"
#include "domain/connection.h"

namespace connreg::api {

// The connection object as Sigma's schema and the contract's extensions describe it, written
// straight from the stored row (no JSON tree in between) after what `w` has written. Never
// contains a secret value: secret fields appear only as {"isSet","updatedAt"} under `secrets`.
// `details` and `description` come back as stored (JsonWriter::Doubles::kAsStored).
void WriteConnection(JsonWriter& w, const domain::Connection& c);
// The connection object alone: a response body, or what an Idempotency-Key replays.
std::string RenderConnection(const domain::Connection& c);

// The ETag header value of a connection: its version, quoted.
std::string EtagOf(const domain::Connection& c);

}  // namespace connreg::api
