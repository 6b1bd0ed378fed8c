// Turning a request body into the next state of a connection (contract section 4): create
// (POST), replace (PUT) and merge (PATCH). Validation errors are 400s naming the JSON path.
// `types` is the table of every warehouse type (details_spec.h) the details are checked against.
// Pure functions apart from the sealer; thread-safe.
#pragma once

#include <string>

#include <boost/json/value.hpp>

#include "core/result.h"
#include "domain/connection.h"
#include "domain/details_spec.h"
#include "domain/secret_sealer.h"

namespace connreg::domain {

// Who is acting: the member a token acts as.
struct Actor {
  std::string organization_id;
  std::string member_id;
};

// POST /v2/connections (and the unsaved-config test). The new connection gets `connection_id`,
// version 1, created/updated/lastActive at `now`, and every secret sealed by `sealer`.
Result<Connection> BuildNewConnection(const TypeCatalog& types, const boost::json::value& body,
                                      const Actor& actor, TimeMs now, std::string connection_id,
                                      const SecretSealer& sealer);

// PUT /v2/connections/{id}: the body replaces `stored`, except that a secret field absent from
// the body keeps its stored value when the type and the endpoint are unchanged (a changed endpoint
// without the secrets is a 400), null clears it; tlsMode and tlsCaCert are kept likewise
// (SettleDetails, KeepOnReplace). `*restore` is set from the body's `restore`. The result has
// version stored.version + 1.
Result<Connection> BuildReplacement(const TypeCatalog& types, const Connection& stored,
                                    const boost::json::value& body, const Actor& actor, TimeMs now,
                                    const SecretSealer& sealer, bool* restore);

// PATCH /v2/connections/{id} (and the proposed-change test): top-level fields replace, `details`
// merges field by field (a secret set to null is cleared); a changed endpoint needs every secret
// again (SettleDetails). No field is required. Version stored.version + 1.
Result<Connection> BuildMerge(const TypeCatalog& types, const Connection& stored,
                              const boost::json::value& body, const Actor& actor, TimeMs now,
                              const SecretSealer& sealer);

}  // namespace connreg::domain
