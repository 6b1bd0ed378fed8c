// Process-wide Prometheus metrics (contract section 5, GET /metrics). Labels carry route
// templates and enum values only: never an id, a name, a token or a secret. Thread-safe; the hot
// path (one request) takes a shared lock and does relaxed atomic increments.
#pragma once

#include <string>
#include <string_view>

#include "core/pool_observer.h"

namespace connreg::metrics {

// One HTTP request finished: `route` is the template ("/v2/connections/{connectionId}") or "-".
void RecordRequest(std::string_view route, int status, double duration_seconds);
// One store call finished (operation is a fixed name such as "get_connection").
void RecordStoreOperation(std::string_view operation, double duration_seconds);
// One connection test finished, with the outcome of each step.
void RecordTestStep(std::string_view warehouse_type, std::string_view step,
                    std::string_view status);
// A request started (+1) or its response was written (-1).
void AddInFlight(long delta);
// The server's pools: the blocking pool's threads (store work), the probe engine's workers
// (connection tests) and PostgreSQL connections. Size is the bound; in use and waiting move by
// deltas (waiting: jobs queued for a worker, callers waiting for a connection).
enum class Pool { kBlocking, kProbe, kDatabase };
void SetPoolSize(Pool pool, long size);
void AddPoolInUse(Pool pool, long delta);
void AddPoolWaiting(Pool pool, long delta);
// SetPoolSize and AddPoolInUse of `pool` as an observer, for a pool that takes one (BlockingPool).
// Lives as long as the process.
PoolObserver& ObserverOf(Pool pool);

// The Prometheus text exposition (version 0.0.4) of everything recorded.
std::string Render();

}  // namespace connreg::metrics
