// The wrapper every public store method runs its body in, on both backends: it turns an escaping
// exception (allocation failure, a bug below) into kInternal, so no store method throws, and it
// records the call's latency under a fixed operation name
// (connreg_store_operation_duration_seconds).
#pragma once

#include <chrono>
#include <exception>
#include <string>

#include "core/result.h"
#include "metrics/metrics.h"

namespace connreg::store {

template <class Fn>
auto StoreCall(const char* operation, Fn&& fn) -> decltype(fn()) {
  auto start = std::chrono::steady_clock::now();
  struct Record {
    const char* operation;
    std::chrono::steady_clock::time_point start;
    ~Record() {
      metrics::RecordStoreOperation(
          operation,
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
  } record{operation, start};
  try {
    return fn();
  } catch (const std::exception& e) {
    return Error::Internal(std::string("store: unexpected exception: ") + e.what());
  }
}

}  // namespace connreg::store
