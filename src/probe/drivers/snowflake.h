// Snowflake through its REST login-request and query-request protocol.
#pragma once

#include "probe/drivers/driver.h"

namespace connreg::probe {

const Driver& SnowflakeProbeDriver();

}  // namespace connreg::probe
