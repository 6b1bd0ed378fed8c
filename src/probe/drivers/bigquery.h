// The BigQuery driver: Google's OAuth token endpoint (service-account JWT grant) and the BigQuery
// REST API v2. See bigquery.cc.
#pragma once

#include "probe/drivers/driver.h"

namespace connreg::probe {

// The bigQuery driver (never nullptr in a build that has it).
const Driver* BigQueryProbeDriver();

}  // namespace connreg::probe
