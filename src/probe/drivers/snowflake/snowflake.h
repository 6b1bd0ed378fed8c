// Snowflake through its REST login-request and query-request protocol: the snowflake details
// table (contract section 4), its rules between fields, and its driver.
#pragma once

#include <vector>

#include "probe/driver.h"

namespace connreg::probe {

// snowflake.
std::vector<WarehouseType> SnowflakeTypes();

}  // namespace connreg::probe
