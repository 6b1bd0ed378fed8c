// Starburst (Trino) through the Trino client REST protocol: the starburst details table
// (contract section 4) and its driver.
#pragma once

#include <vector>

#include "probe/driver.h"

namespace connreg::probe {

// starburst.
std::vector<WarehouseType> TrinoTypes();

}  // namespace connreg::probe
