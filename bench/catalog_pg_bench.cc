// A full catalog listing by the postgres driver (Driver::Introspect) of a large database, with the
// process's peak RSS: run by bench/catalog_pg_bench.sh, which makes the database (10,000 tables of
// 20 columns) in a throwaway server and passes CONNREG_BENCH_PG_PORT / _DATABASE / _USER.
#include <sys/resource.h>

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

#include "../tests/unit/probe_test_support.h"

namespace connreg::probe {
namespace {

// Counts what it is given and keeps nothing, so the RSS is the driver's.
class CountingSink : public CatalogSink {
 public:
  bool Add(domain::WarehouseObject object) override {
    ++objects;
    columns += static_cast<long>(object.columns.size());
    return true;
  }
  long objects = 0;
  long columns = 0;
};

long PeakRssKib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;  // KiB on Linux
}

void BM_CatalogPostgresFullListing(benchmark::State& state) {
  const char* port = std::getenv("CONNREG_BENCH_PG_PORT");
  const char* database = std::getenv("CONNREG_BENCH_PG_DATABASE");
  const char* user = std::getenv("CONNREG_BENCH_PG_USER");
  if (!port || !database || !user) {
    state.SkipWithError("run through bench/catalog_pg_bench.sh (CONNREG_BENCH_PG_* unset)");
    return;
  }
  const long rss_before = PeakRssKib();
  CountingSink sink;
  for (auto _ : state) {
    sink = CountingSink();
    std::vector<Step> steps = test_support::RunIntrospect(
        "postgres",
        {{"host", "127.0.0.1"}, {"port", std::atoi(port)}, {"database", database}, {"user", user}},
        {}, CatalogRequest{}, sink, /*secs=*/600);
    if (steps.empty() || steps.back().name != "query" || steps.back().status != "SUCCESS") {
      state.SkipWithError(("the listing failed: " +
                           (steps.empty() ? std::string("no steps")
                                          : steps.back().name + " " + steps.back().message))
                              .c_str());
      return;
    }
  }
  state.counters["objects"] = static_cast<double>(sink.objects);
  state.counters["columns"] = static_cast<double>(sink.columns);
  state.counters["peak_rss_kib_before"] = static_cast<double>(rss_before);
  state.counters["peak_rss_kib"] = static_cast<double>(PeakRssKib());
}
BENCHMARK(BM_CatalogPostgresFullListing)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace connreg::probe
