// The rendered bodies of connections (api::RenderConnection), kept in memory so that a listing
// page whose connections are held costs its narrow read (store::ListQuery::have_body) and copies.
//
// Exact without any invalidation: a body is kept with the stamp of the row it was rendered from
// (store::ConnectionStamp), and is used only for a row read at that same stamp, in the snapshot
// of the request that uses it. A change made anywhere (another request, the CLI, another node on
// the same database) changes the stamp the next read sees, so the stale body is not used, and is
// replaced by the fresh one.
//
// Bounded by the bytes it holds (bodies, ids and a fixed overhead per entry), least recently used
// first out; thread-safe, sharded by connection id so that concurrent pages rarely contend.
#pragma once

#include <array>
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "store/store.h"

namespace connreg::api {

class BodyCache {
 public:
  using Body = std::shared_ptr<const std::string>;
  static constexpr std::size_t kDefaultMaxBytes = 8u << 20;

  explicit BodyCache(std::size_t max_bytes = kDefaultMaxBytes);

  // The body of `connection_id` rendered at `stamp`; null when none is held at that stamp.
  Body Find(std::string_view connection_id, const store::ConnectionStamp& stamp);
  // Holds `body`, rendered from the row at `stamp`, in place of what was held for that id.
  void Put(std::string_view connection_id, const store::ConnectionStamp& stamp, Body body);

  std::size_t bytes() const;  // what is held, as the bound counts it

 private:
  struct Entry {
    std::string connection_id;
    store::ConnectionStamp stamp;
    Body body;
  };
  struct Shard {
    mutable std::mutex mutex;
    std::list<Entry> lru;  // most recently used first
    std::unordered_map<std::string_view, std::list<Entry>::iterator> by_id;  // keys in `lru`
    std::size_t bytes = 0;
  };
  static constexpr std::size_t kShards = 16;
  static std::size_t CostOf(const Entry& e);
  Shard& ShardOf(std::string_view connection_id);

  const std::size_t max_shard_bytes_;
  std::array<Shard, kShards> shards_;
};

}  // namespace connreg::api
