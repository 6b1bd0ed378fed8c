// The response shapes of the API: the connection object (contract section 3) and pages.
// Pure functions; thread-safe.
#pragma once

#include <string>

#include <boost/json/object.hpp>

#include "domain/connection.h"

namespace connreg::api {

// The connection object as Sigma's schema and the contract's extensions describe it. Never
// contains a secret value: secret fields appear only as {"isSet","updatedAt"} under `secrets`.
boost::json::object RenderConnection(const domain::Connection& c);

// The ETag header value of a connection: its version, quoted.
std::string EtagOf(const domain::Connection& c);

}  // namespace connreg::api
