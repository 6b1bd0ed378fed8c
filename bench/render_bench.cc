// Rendering the connection object (issue 17, Rendering): the tree main built (a
// boost::json::object, then boost::json::serialize; tests/unit/render_reference.h) against the
// direct writer the server uses (api::WriteConnection), for one object and for a page of 50
// written into one buffer. The connection is an ordinary one: a snowflake connection with a
// description, a secret and a last test, about 700 bytes rendered.
//
//   build/bench/micro_bench --benchmark_filter=Render
#include <benchmark/benchmark.h>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include <string>
#include <vector>

#include "../tests/unit/render_reference.h"
#include "api/render.h"

namespace connreg::api {
namespace {

constexpr int kPage = 50;

domain::Connection Ordinary(int i) {
  domain::Connection c;
  c.organization_id = "5f1c2a40-8d7e-4b1a-9c3d-2e6f7a8b9c0d";
  c.connection_id = "0b0e2f7a-1111-4222-8333-" + std::to_string(444455556666LL + i);
  c.name = "Warehouse connection number " + std::to_string(i);
  c.type = "snowflake";
  c.created_by = "b7a1c3d5-2e4f-4a6b-8c0d-1e2f3a4b5c6d";
  c.updated_by = c.created_by;
  c.created_at = 1655930827899 + i;
  c.updated_at = c.created_at + 1000;
  c.last_active_at = c.created_at;
  c.timeout_secs = 120;
  c.details = {{"type", "snowflake"},       {"account", "acme-analytics"},
               {"warehouse", "COMPUTE_WH"}, {"user", "SIGMA_SERVICE"},
               {"role", "SIGMA_READER"},    {"database", "ANALYTICS"},
               {"schema", "PUBLIC"},        {"authType", "password"},
               {"tlsMode", "verify-full"},  {"server", "acme.snowflakecomputing.com"}};
  c.description = boost::json::object{{"team", "data platform"},
                                      {"tags", boost::json::array{"prod", "finance"}},
                                      {"owner", "jane.doe@example.com"}};
  c.secrets["password"] = {"c2VhbGVk", "key1", 1655928427000};
  c.last_test = domain::LastTest{1655930900000, "SUCCESS", "DISABLED"};
  c.version = 7;
  return c;
}

std::vector<domain::Connection> Page() {
  std::vector<domain::Connection> page;
  for (int i = 0; i < kPage; ++i) page.push_back(Ordinary(i));
  return page;
}

void BM_RenderOneTree(benchmark::State& state) {
  const domain::Connection c = Ordinary(0);
  std::size_t bytes = 0;
  for (auto _ : state) {
    std::string body = boost::json::serialize(reference::ConnectionTree(c));
    bytes = body.size();
    benchmark::DoNotOptimize(body);
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_RenderOneTree);

void BM_RenderOneWriter(benchmark::State& state) {
  const domain::Connection c = Ordinary(0);
  std::size_t bytes = 0;
  for (auto _ : state) {
    std::string body = RenderConnection(c);
    bytes = body.size();
    benchmark::DoNotOptimize(body);
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_RenderOneWriter);

// The listing's body as main built it: an array of trees inside the page object, serialized.
void BM_RenderPageTree(benchmark::State& state) {
  const std::vector<domain::Connection> page = Page();
  for (auto _ : state) {
    boost::json::array entries;
    entries.reserve(page.size());
    for (const auto& c : page) entries.push_back(reference::ConnectionTree(c));
    std::string body = boost::json::serialize(boost::json::object{{"entries", std::move(entries)},
                                                                  {"nextPage", nullptr},
                                                                  {"hasMore", true},
                                                                  {"total", 100000}});
    benchmark::DoNotOptimize(body);
  }
  state.counters["per_object"] = benchmark::Counter(
      kPage, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_RenderPageTree);

// The listing's body as the server writes it now (RenderConnectionPage): one buffer.
void BM_RenderPageWriter(benchmark::State& state) {
  const std::vector<domain::Connection> page = Page();
  for (auto _ : state) {
    std::string body = RenderConnectionPage(page, "", true, 100000);
    benchmark::DoNotOptimize(body);
  }
  state.counters["per_object"] = benchmark::Counter(
      kPage, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_RenderPageWriter);

}  // namespace
}  // namespace connreg::api
