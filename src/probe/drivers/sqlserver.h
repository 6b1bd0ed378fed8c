// SQL Server and Azure SQL (details.type "sqlserver" and "azuresql") through FreeTDS db-lib.
#pragma once

#include "probe/drivers/driver.h"

namespace connreg::probe {

// The driver for both types (never nullptr). Azure SQL always requires encryption and reports a
// `tls` step; SQL Server requests encryption and negotiates it as part of `authenticate`.
const Driver* SqlServerProbeDriver();

}  // namespace connreg::probe
