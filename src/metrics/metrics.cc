#include "metrics/metrics.h"

#include <array>
#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>

#include "core/log.h"

namespace connreg::metrics {
namespace {

constexpr std::array<double, 12> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                             0.05,   0.1,   0.25,   0.5,   1.0,  5.0};

struct Histogram {
  std::array<std::atomic<long>, kBuckets.size()> buckets{};
  std::atomic<long> count{0};
  std::atomic<double> sum{0};

  void Observe(double v) {
    for (std::size_t i = 0; i < kBuckets.size(); ++i) {
      if (v <= kBuckets[i]) buckets[i].fetch_add(1, std::memory_order_relaxed);
    }
    count.fetch_add(1, std::memory_order_relaxed);
    double old = sum.load(std::memory_order_relaxed);
    while (!sum.compare_exchange_weak(old, old + v, std::memory_order_relaxed)) {
    }
  }
};

struct RouteStats {
  std::array<std::atomic<long>, 600> by_status{};  // index: HTTP status
  Histogram latency;
};

// Keyed maps whose values are created once and never removed, so a pointer stays valid after
// the shared lock is released.
template <class V>
class Family {
 public:
  V& Get(const std::string& key) {
    {
      std::shared_lock lock(mu_);
      if (auto it = map_.find(key); it != map_.end()) return *it->second;
    }
    std::unique_lock lock(mu_);
    auto& slot = map_[key];
    if (!slot) slot = std::make_unique<V>();
    return *slot;
  }
  template <class Fn>
  void ForEach(Fn fn) {
    std::shared_lock lock(mu_);
    for (auto& [k, v] : map_) fn(k, *v);
  }

 private:
  std::shared_mutex mu_;
  std::map<std::string, std::unique_ptr<V>> map_;
};

struct Registry {
  Family<RouteStats> routes;
  Family<Histogram> store_ops;
  Family<std::atomic<long>> test_steps;  // key: type \x1f step \x1f status
  std::atomic<long> in_flight{0};
  struct PoolGauges {
    std::atomic<long> size{0}, in_use{0}, waiting{0};
  };
  std::array<PoolGauges, 3> pools;  // index: Pool
};

constexpr std::array<const char*, 3> kPoolNames = {"blocking", "probe", "database"};

Registry& R() {
  static Registry r;
  return r;
}

// Label values here are route templates and enum names; escape anyway.
std::string Escape(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

void RenderHistogram(std::string& out, const std::string& name, const std::string& labels,
                     const Histogram& h) {
  const std::string sep = labels.empty() ? "" : ",";
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    out += name + "_bucket{" + labels + sep + "le=\"" + Num(kBuckets[i]) + "\"} " +
           std::to_string(h.buckets[i].load()) + "\n";
  }
  out += name + "_bucket{" + labels + sep + "le=\"+Inf\"} " + std::to_string(h.count.load()) + "\n";
  out += name + "_sum{" + labels + "} " + Num(h.sum.load()) + "\n";
  out += name + "_count{" + labels + "} " + std::to_string(h.count.load()) + "\n";
}

}  // namespace

void RecordRequest(std::string_view route, int status, double duration_seconds) {
  RouteStats& s = R().routes.Get(std::string(route));
  if (status >= 100 && status < 600) s.by_status[status].fetch_add(1, std::memory_order_relaxed);
  s.latency.Observe(duration_seconds);
}

void RecordStoreOperation(std::string_view operation, double duration_seconds) {
  R().store_ops.Get(std::string(operation)).Observe(duration_seconds);
}

void RecordTestStep(std::string_view warehouse_type, std::string_view step,
                    std::string_view status) {
  std::string key(warehouse_type);
  key.append("\x1f").append(step).append("\x1f").append(status);
  R().test_steps.Get(key).fetch_add(1, std::memory_order_relaxed);
}

void AddInFlight(long delta) { R().in_flight.fetch_add(delta, std::memory_order_relaxed); }
void SetPoolSize(Pool pool, long size) {
  R().pools[static_cast<int>(pool)].size.store(size, std::memory_order_relaxed);
}
void AddPoolInUse(Pool pool, long delta) {
  R().pools[static_cast<int>(pool)].in_use.fetch_add(delta, std::memory_order_relaxed);
}
void AddPoolWaiting(Pool pool, long delta) {
  R().pools[static_cast<int>(pool)].waiting.fetch_add(delta, std::memory_order_relaxed);
}

namespace {

class PoolGauges final : public PoolObserver {
 public:
  explicit PoolGauges(Pool pool) : pool_(pool) {}
  void SetSize(long size) override { SetPoolSize(pool_, size); }
  void AddInUse(long delta) override { AddPoolInUse(pool_, delta); }

 private:
  Pool pool_;
};

}  // namespace

PoolObserver& ObserverOf(Pool pool) {
  static PoolGauges* const gauges[] = {new PoolGauges(Pool::kBlocking),
                                       new PoolGauges(Pool::kProbe),
                                       new PoolGauges(Pool::kDatabase)};
  return *gauges[static_cast<int>(pool)];
}

std::string Render() {
  std::string out;
  out += "# HELP connreg_build_info Build information.\n# TYPE connreg_build_info gauge\n";
  out += "connreg_build_info{version=\"" CONNREG_VERSION "\"} 1\n";

  out += "# HELP connreg_http_requests_total HTTP requests by route template and status.\n";
  out += "# TYPE connreg_http_requests_total counter\n";
  R().routes.ForEach([&](const std::string& route, RouteStats& s) {
    for (int status = 100; status < 600; ++status) {
      long n = s.by_status[status].load();
      if (n == 0) continue;
      out += "connreg_http_requests_total{route=\"" + Escape(route) + "\",status=\"" +
             std::to_string(status) + "\"} " + std::to_string(n) + "\n";
    }
  });
  out += "# HELP connreg_http_request_duration_seconds Request latency by route template.\n";
  out += "# TYPE connreg_http_request_duration_seconds histogram\n";
  R().routes.ForEach([&](const std::string& route, RouteStats& s) {
    RenderHistogram(out, "connreg_http_request_duration_seconds", "route=\"" + Escape(route) + "\"",
                    s.latency);
  });
  out += "# HELP connreg_http_requests_in_flight Requests being handled.\n";
  out += "# TYPE connreg_http_requests_in_flight gauge\n";
  out += "connreg_http_requests_in_flight " + std::to_string(R().in_flight.load()) + "\n";

  out += "# HELP connreg_store_operation_duration_seconds Store call latency by operation.\n";
  out += "# TYPE connreg_store_operation_duration_seconds histogram\n";
  R().store_ops.ForEach([&](const std::string& op, Histogram& h) {
    RenderHistogram(out, "connreg_store_operation_duration_seconds",
                    "operation=\"" + Escape(op) + "\"", h);
  });

  const std::pair<const char*, std::atomic<long> Registry::PoolGauges::*> gauges[] = {
      {"size", &Registry::PoolGauges::size},
      {"in_use", &Registry::PoolGauges::in_use},
      {"waiting", &Registry::PoolGauges::waiting}};
  for (const auto& [what, member] : gauges) {
    out += std::string("# HELP connreg_pool_") + what + " Pool " + what +
           " by pool (blocking threads, probe workers, database connections).\n";
    out += std::string("# TYPE connreg_pool_") + what + " gauge\n";
    for (std::size_t i = 0; i < kPoolNames.size(); ++i) {
      const auto& p = R().pools[i];
      if (p.size.load() == 0) continue;  // a pool this process does not have
      out += std::string("connreg_pool_") + what + "{pool=\"" + kPoolNames[i] + "\"} " +
             std::to_string((p.*member).load()) + "\n";
    }
  }

  out +=
      "# HELP connreg_connection_test_steps_total Connection test steps by warehouse type, "
      "step and outcome.\n";
  out += "# TYPE connreg_connection_test_steps_total counter\n";
  R().test_steps.ForEach([&](const std::string& key, std::atomic<long>& n) {
    auto a = key.find('\x1f'), b = key.find('\x1f', a + 1);
    out += "connreg_connection_test_steps_total{type=\"" + Escape(key.substr(0, a)) + "\",step=\"" +
           Escape(key.substr(a + 1, b - a - 1)) + "\",status=\"" + Escape(key.substr(b + 1)) +
           "\"} " + std::to_string(n.load()) + "\n";
  });
  return out;
}

}  // namespace connreg::metrics
