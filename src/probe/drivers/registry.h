// The warehouse types this server knows: each driver family's folder (drivers/<family>/) gives its
// types with their details tables and drivers, and this registry lists the families, in the
// contract's order of types. Everything else derives from it: the catalogue the API validates
// details with, the driver a test runs, and (checked by a unit test) the `details` schemas of
// docs/openapi.json. Built once; thread-safe.
#pragma once

#include <string_view>
#include <vector>

#include "domain/details_spec.h"
#include "probe/driver.h"

namespace connreg::probe {

// Every type, in the contract's order.
const std::vector<WarehouseType>& Registry();
// Their details tables, for the validation (domain/details.h).
const domain::TypeCatalog& Catalog();
// The driver for a `details.type`, or nullptr when this build has none.
const Driver* FindDriver(std::string_view type);

}  // namespace connreg::probe
