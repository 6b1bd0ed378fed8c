// Databricks SQL warehouses through the SQL Statement Execution API.
#pragma once

#include "probe/drivers/driver.h"

namespace connreg::probe {

const Driver& DatabricksProbeDriver();

}  // namespace connreg::probe
