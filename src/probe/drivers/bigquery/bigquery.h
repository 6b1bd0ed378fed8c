// Google BigQuery: the bigQuery details table (contract section 4) and its driver, over Google's
// OAuth token endpoint (service-account JWT grant) and the BigQuery REST API v2. See bigquery.cc.
#pragma once

#include <vector>

#include "probe/driver.h"

namespace connreg::probe {

// bigQuery.
std::vector<WarehouseType> BigQueryTypes();

}  // namespace connreg::probe
