// MySQL and MariaDB through MariaDB Connector/C (libmariadb).
#pragma once

#include "probe/drivers/driver.h"

namespace connreg::probe {

const Driver& MysqlDriver();

}  // namespace connreg::probe
