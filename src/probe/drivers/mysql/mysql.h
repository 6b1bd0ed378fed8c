// MySQL and MariaDB through MariaDB Connector/C (libmariadb): the mysql details table (contract
// section 4) and its driver.
#pragma once

#include <vector>

#include "probe/driver.h"

namespace connreg::probe {

// mysql.
std::vector<WarehouseType> MysqlTypes();

}  // namespace connreg::probe
