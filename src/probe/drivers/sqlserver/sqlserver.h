// SQL Server and Azure SQL (details.type "sqlserver" and "azuresql") through FreeTDS db-lib: their
// details table (contract section 4) and their driver.
#pragma once

#include <vector>

#include "probe/driver.h"

namespace connreg::probe {

// sqlserver and azuresql.
std::vector<WarehouseType> SqlServerTypes();

}  // namespace connreg::probe
