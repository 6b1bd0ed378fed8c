// The response shapes of the API: the connection object (contract section 3) and the page of
// the connections listing, written as JSON text (core/json_write.h). Pure functions;
// thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

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

// A page of the connections listing (contract section 6), every object written from its row
// into one buffer reserved for the page: {"entries","nextPage","hasMore","total"}; `next_page`
// empty is null.
std::string RenderConnectionPage(const std::vector<domain::Connection>& entries,
                                 std::string_view next_page, bool has_more, std::int64_t total);

// The same page from the bodies of its entries (each RenderConnection's text), in page order:
// the same bytes as RenderConnectionPage of their rows.
std::string RenderConnectionPageOfBodies(
    const std::vector<std::shared_ptr<const std::string>>& bodies, std::string_view next_page,
    bool has_more, std::int64_t total);

// The ETag header value of a connection: its version, quoted.
std::string EtagOf(const domain::Connection& c);

}  // namespace connreg::api
