#include "api/body_cache.h"

#include <functional>
#include <utility>

namespace connreg::api {

BodyCache::BodyCache(std::size_t max_bytes) : max_shard_bytes_(max_bytes / kShards) {}

std::size_t BodyCache::CostOf(const Entry& e) {
  // The list node, the map node and the shared body's control block, roughly.
  constexpr std::size_t kOverhead = 160;
  return kOverhead + e.connection_id.size() + e.stamp.last_test_read.size() +
         e.stamp.last_test_write.size() + (e.body ? e.body->size() : 0);
}

BodyCache::Shard& BodyCache::ShardOf(std::string_view connection_id) {
  return shards_[std::hash<std::string_view>{}(connection_id) % kShards];
}

BodyCache::Body BodyCache::Find(std::string_view connection_id,
                                const store::ConnectionStamp& stamp) {
  Shard& shard = ShardOf(connection_id);
  std::lock_guard lock(shard.mutex);
  auto it = shard.by_id.find(connection_id);
  if (it == shard.by_id.end() || it->second->stamp != stamp) return nullptr;
  shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
  return it->second->body;
}

void BodyCache::Put(std::string_view connection_id, const store::ConnectionStamp& stamp,
                    Body body) {
  Entry entry{std::string(connection_id), stamp, std::move(body)};
  const std::size_t cost = CostOf(entry);
  if (cost > max_shard_bytes_) return;
  Shard& shard = ShardOf(connection_id);
  std::lock_guard lock(shard.mutex);
  if (auto it = shard.by_id.find(connection_id); it != shard.by_id.end()) {
    shard.bytes -= CostOf(*it->second);
    shard.lru.erase(it->second);
    shard.by_id.erase(it);
  }
  while (!shard.lru.empty() && shard.bytes + cost > max_shard_bytes_) {
    shard.bytes -= CostOf(shard.lru.back());
    shard.by_id.erase(shard.lru.back().connection_id);
    shard.lru.pop_back();
  }
  shard.lru.push_front(std::move(entry));
  shard.by_id.emplace(shard.lru.front().connection_id, shard.lru.begin());
  shard.bytes += cost;
}

std::size_t BodyCache::bytes() const {
  std::size_t total = 0;
  for (const Shard& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    total += shard.bytes;
  }
  return total;
}

}  // namespace connreg::api
