// PostgreSQL-protocol warehouses (postgres, redshift, alloydb) through libpq: their details table
// (contract section 4) and their driver.
#pragma once

#include "probe/driver.h"

namespace connreg::probe {

// postgres, redshift and alloydb.
std::vector<WarehouseType> PostgresTypes();

}  // namespace connreg::probe
