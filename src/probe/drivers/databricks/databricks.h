// Databricks SQL warehouses through the SQL Statement Execution API: the details table (contract
// section 4), its login rule, and the driver.
#pragma once

#include <vector>

#include "probe/driver.h"

namespace connreg::probe {

// databricks.
std::vector<WarehouseType> DatabricksTypes();

}  // namespace connreg::probe
