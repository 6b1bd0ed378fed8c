// The connections listing at two sizes (issue 17, goals): a first page of 50 and a search with
// 100 matches, on a SQLite store of 1,000 and of 100,000 connections in one organization, seeded
// through the store (CreateConnection, in /dev/shm when it exists, so the seeding does not wait
// on the disk; the seeding time goes to stderr). At exit it prints each scenario's throughput at
// 100,000 as a fraction of its throughput at 1,000 (goal: at least 0.8), by wall-clock time and
// by the process's CPU time: on a shared machine the wall clock also counts the time the
// process waited for a core, the CPU time only the work of the request.
//
// Names are "conn NNNNNN"; every (size / 100)-th is "conn NNNNNN zq7", so the 100 matches of
// "zq7" are spread evenly over the name order, as they would be in a real registry.
//
//   build/bench/micro_bench --benchmark_filter=ConnectionList
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

#include "bench_store.h"
#include "store/sqlite_store.h"
#include "store/store.h"

namespace connreg::store {
namespace {

constexpr TimeMs kNow = 1700000000000;
constexpr int kMatches = 100;

using bench::Must;

struct Seeded : bench::TempStore {
  using TempStore::TempStore;
};

// The store of `n` connections, seeded on first use and kept for the process.
Seeded& StoreOf(int n) {
  static std::map<int, std::unique_ptr<Seeded>> stores;
  auto& slot = stores[n];
  if (slot) return *slot;
  const std::filesystem::path base = std::filesystem::exists("/dev/shm")
                                         ? std::filesystem::path("/dev/shm")
                                         : std::filesystem::temp_directory_path();
  slot = std::make_unique<Seeded>("connreg_list_bench", GroupCommitBounds{}, base);
  Seeded& s = *slot;
  Store& st = *s.store;
  Must(st.CreateOrganization({"org", "Org", kNow}));
  const auto start = std::chrono::steady_clock::now();
  const int every = n / kMatches;
  for (int i = 0; i < n; ++i) {
    char name[48];
    std::snprintf(name, sizeof name, "conn %06d%s", i, i % every == 0 ? " zq7" : "");
    char id[40];
    std::snprintf(id, sizeof id, "00000000-0000-4000-8000-%012d", i);
    domain::Connection c;
    c.organization_id = "org";
    c.connection_id = id;
    c.name = name;
    c.type = i % 3 == 0 ? "postgres" : "snowflake";
    c.created_by = c.updated_by = "admin";
    c.created_at = c.updated_at = c.last_active_at = kNow + i;
    c.details = {{"type", c.type}, {"host", "db.example"}};
    Must(st.CreateConnection(c));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "seeded %d connections in %.2f s\n", n, seconds);
  return s;
}

double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Wall and CPU seconds per iteration of each scenario at each size, for the ratios at exit.
struct Ratios {
  struct Cost {
    double wall = 0;
    double cpu = 0;
  };
  ~Ratios() {
    for (const auto& [scenario, by_size] : costs) {
      auto small = by_size.find(1000);
      auto large = by_size.find(100000);
      if (small == by_size.end() || large == by_size.end()) continue;
      std::fprintf(stderr,
                   "%s: throughput at 100,000 / at 1,000 = %.2f by wall clock, %.2f by CPU time"
                   " (goal >= 0.8)\n",
                   scenario.c_str(), small->second.wall / large->second.wall,
                   small->second.cpu / large->second.cpu);
    }
  }
  std::map<std::string, std::map<int, Cost>> costs;
};
Ratios ratios;

void RunList(benchmark::State& state, const char* scenario, std::optional<std::string> search,
             std::size_t expected_entries, std::int64_t expected_total) {
  const int n = static_cast<int>(state.range(0));
  Seeded& s = StoreOf(n);
  ListQuery q;
  q.organization_id = "org";
  q.limit = 50;
  q.search = std::move(search);
  const auto start = std::chrono::steady_clock::now();
  const double cpu_start = ProcessCpuSeconds();
  std::int64_t iterations = 0;
  for (auto _ : state) {
    auto page = s.store->ListConnections(q);
    if (!page.ok() || page->entries.size() != expected_entries ||
        page->total != (expected_total < 0 ? n : expected_total)) {
      state.SkipWithError(page.ok() ? "unexpected page" : page.error().message.c_str());
      break;
    }
    benchmark::DoNotOptimize(page->entries.data());
    ++iterations;
  }
  if (iterations > 0) {
    const auto per = [&](double seconds) { return seconds / static_cast<double>(iterations); };
    ratios.costs[scenario][n] = {
        per(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()),
        per(ProcessCpuSeconds() - cpu_start)};
  }
}

void BM_ConnectionListPage50(benchmark::State& state) {
  RunList(state, "page of 50", std::nullopt, 50, -1);
}
void BM_ConnectionListSearch100(benchmark::State& state) {
  RunList(state, "search, 100 matches", "zq7", 50, kMatches);
}

BENCHMARK(BM_ConnectionListPage50)->Arg(1000)->Arg(100000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ConnectionListSearch100)->Arg(1000)->Arg(100000)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace connreg::store
