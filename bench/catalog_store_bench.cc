// The catalog store at two sizes (issue 15, Show): a page of the paths listing and of a table's
// columns on a SQLite store seeded directly through ApplyCatalogBatch with 100 tables and with
// 100,000 tables, to compare their latencies (goal: within 1.5x). Each size is seeded once, on
// first use, in a temporary directory; the seeding time goes to stderr.
//
// Layout: tables of 20 columns, 1,000 tables per schema (the 100-table store: one schema of
// 100). Every 10th table has its 20 columns (10,000 tables, 200,000 columns at the large size),
// to keep the seeding short; a columns page reads a table that has them.
//
//   build/bench/micro_bench --benchmark_filter=Catalog
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "bench_store.h"
#include "domain/catalog.h"
#include "store/sqlite_store.h"
#include "store/store.h"

namespace connreg::store {
namespace {

constexpr TimeMs kNow = 1700000000000;
constexpr int kTablesPerSchema = 1000;
constexpr int kColumns = 20;
constexpr std::size_t kBatch = 500;  // objects per ApplyCatalogBatch, as a sync sends them

using bench::Must;

std::string Name(const char* prefix, int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s%06d", prefix, i);
  return buf;
}

struct Seeded : bench::TempStore {
  using TempStore::TempStore;
  std::string schema_id;    // the parent of the parentId page
  std::string table_id;     // a table with columns
  std::string granted_dir;  // the scope of the viewer's path grant (its name)
};

// The store of `tables` tables, seeded on first use and kept for the process.
Seeded& StoreOf(int tables) {
  static std::map<int, std::unique_ptr<Seeded>> stores;
  auto& slot = stores[tables];
  if (slot) return *slot;
  slot = std::make_unique<Seeded>("connreg_catalog_bench");
  Seeded& s = *slot;
  Store& st = *s.store;
  Must(st.CreateOrganization({"org", "Org", kNow}));
  Must(st.CreateMember({"admin", "org", "admin@x", "admin", kNow}, {}));
  Must(st.CreateMember({"viewer", "org", "viewer@x", "viewer", kNow}, {}));
  domain::Connection c;
  c.organization_id = "org";
  c.connection_id = "conn";
  c.name = "warehouse";
  c.type = "postgres";
  c.created_by = c.updated_by = "admin";
  c.created_at = c.updated_at = c.last_active_at = kNow;
  c.details = {{"type", "postgres"}, {"host", "db.example"}};
  Must(st.CreateConnection(c));

  int next_id = 0;
  auto new_id = [&] { return Name("inode-", ++next_id); };
  const auto start = std::chrono::steady_clock::now();
  std::vector<domain::WarehouseObject> batch;
  auto flush = [&] {
    auto r = st.ApplyCatalogBatch("org", "conn", batch, kNow, new_id);
    if (!r.ok()) throw std::runtime_error(r.error().message);
    batch.clear();
  };
  for (int i = 0; i < tables; ++i) {
    domain::WarehouseObject o;
    o.path = {Name("schema_", i / kTablesPerSchema), Name("table_", i)};
    o.kind = std::string(domain::inode_kind::kTable);
    if (i % 10 == 0) {
      for (int k = 0; k < kColumns; ++k) {
        o.columns.push_back({Name("column_", k), "character varying(20)", true, "a column"});
      }
    }
    batch.push_back(std::move(o));
    if (batch.size() == kBatch) flush();
  }
  if (!batch.empty()) flush();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "seeded %d tables (%d with %d columns) in %.2f s\n", tables,
               (tables + 9) / 10, kColumns, seconds);

  // The middle schema, its first table (which has columns), and a path grant on it.
  const int middle = (tables / kTablesPerSchema) / 2;
  s.granted_dir = Name("schema_", middle);
  s.schema_id = st.FindInode("org", "conn", {s.granted_dir})->inode_id;
  s.table_id =
      st.FindInode("org", "conn", {s.granted_dir, Name("table_", middle * kTablesPerSchema)})
          ->inode_id;
  Grant g;
  g.grant_id = "grant";
  g.member_id = "viewer";
  g.permission = "usage";
  g.created_by = g.updated_by = "admin";
  g.created_at = g.updated_at = kNow;
  Must(st.UpsertPathGrants("org", s.schema_id, {g}));
  return s;
}

// A paths page of 50 from its middle (by keyset), as the listing serves it.
void RunPathsPage(benchmark::State& state, bool as_viewer, bool by_parent) {
  Seeded& s = StoreOf(static_cast<int>(state.range(0)));
  InodeListQuery q;
  q.organization_id = "org";
  q.limit = 50;
  if (as_viewer) q.visible_to_member = "viewer";
  if (by_parent) q.parent_id = s.schema_id;
  // Start at the granted schema's first table: a page from the middle of the catalog.
  q.after = InodeCursor{"conn", domain::PathKey({s.granted_dir})};
  std::int64_t total = 0;
  for (auto _ : state) {
    auto page = s.store->ListInodes(q);
    if (!page.ok() || page->entries.size() != 50) {
      state.SkipWithError("the page is not 50 entries");
      break;
    }
    total = page->total;
    benchmark::DoNotOptimize(page->entries.data());
  }
  state.counters["total"] = static_cast<double>(total);
}

void BM_CatalogPathsPageAdmin(benchmark::State& state) { RunPathsPage(state, false, false); }
void BM_CatalogPathsPagePathGrant(benchmark::State& state) { RunPathsPage(state, true, false); }
void BM_CatalogParentPage(benchmark::State& state) { RunPathsPage(state, false, true); }

void BM_CatalogColumnsPage(benchmark::State& state) {
  Seeded& s = StoreOf(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    auto page = s.store->ListColumns("org", s.table_id, 100, std::nullopt);
    if (!page.ok() || page->entries.size() != kColumns) {
      state.SkipWithError("the page is not the table's columns");
      break;
    }
    benchmark::DoNotOptimize(page->entries.data());
  }
}

BENCHMARK(BM_CatalogPathsPageAdmin)->Arg(100)->Arg(100000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_CatalogPathsPagePathGrant)->Arg(100)->Arg(100000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_CatalogParentPage)->Arg(100)->Arg(100000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_CatalogColumnsPage)->Arg(100)->Arg(100000)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace connreg::store
