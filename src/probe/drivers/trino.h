// Starburst (Trino) through the Trino client REST protocol.
#pragma once

#include "probe/drivers/driver.h"

namespace connreg::probe {

const Driver& TrinoProbeDriver();

}  // namespace connreg::probe
