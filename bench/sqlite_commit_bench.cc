// The SQLite writer's group commit (issue 17): CreateConnection from 1, 8 and 32 threads on a
// durable store (WAL, synchronous=FULL) in a temporary directory, once with every write
// committed alone (max_writes = 1: the writer before group commit, one fsync per write) and once
// with the default bounds, in one run. items_per_second is writes per second, all threads.
//
//   build/bench/micro_bench --benchmark_filter=SqliteCommit
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>

#include "bench_store.h"
#include "domain/connection.h"
#include "store/sqlite_store.h"
#include "store/store.h"

namespace connreg::store {
namespace {

constexpr TimeMs kNow = 1700000000000;

using bench::Must;

struct Fresh : bench::TempStore {
  explicit Fresh(std::size_t max_writes)
      : TempStore("connreg_commit_bench", GroupCommitBounds{.max_writes = max_writes}) {
    Must(store->CreateOrganization({"org", "Org", kNow}));
    Must(store->CreateMember({"admin", "org", "admin@x", "admin", kNow}, {}));
  }
  std::atomic<std::int64_t> next{0};
};

Fresh* fresh = nullptr;  // set up by thread 0 before the timed loop, torn down after it

void BM_SqliteCommitCreateConnection(benchmark::State& state) {
  if (state.thread_index() == 0) fresh = new Fresh(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {  // the first iteration waits for every thread (set-up done)
    const std::string id = "conn-" + std::to_string(fresh->next.fetch_add(1));
    domain::Connection c;
    c.organization_id = "org";
    c.connection_id = id;
    c.name = id;
    c.type = "postgres";
    c.created_by = c.updated_by = "admin";
    c.created_at = c.updated_at = c.last_active_at = kNow;
    c.details = {{"type", "postgres"}, {"host", "db.example"}, {"database", "analytics"}};
    if (!fresh->store->CreateConnection(c).ok()) state.SkipWithError("CreateConnection failed");
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    delete fresh;
    fresh = nullptr;
  }
}
// Arg: max_writes of a group commit (1: every write alone).
BENCHMARK(BM_SqliteCommitCreateConnection)
    ->ArgName("max_writes")
    ->Arg(1)
    ->Arg(64)
    ->Threads(1)
    ->Threads(8)
    ->Threads(32)
    ->UseRealTime()
    ->MinTime(2.0);

}  // namespace
}  // namespace connreg::store
