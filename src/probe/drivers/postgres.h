// PostgreSQL-protocol warehouses (postgres, redshift, alloydb) through libpq.
#pragma once

#include "probe/drivers/driver.h"

namespace connreg::probe {

// The driver for a PostgreSQL-protocol warehouse whose default port is `default_port`.
const Driver& PostgresDriver(int default_port);

}  // namespace connreg::probe
