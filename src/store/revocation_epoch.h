// The revocation epoch of a SQLite database: a 64-bit counter in a small file beside it
// (`<database>-epoch`), mapped MAP_SHARED by every process that opens the database, as SQLite
// maps its own `-shm`. Every write that can make a resolved bearer token fail or change its
// principal increments it after its commit and before the call returns
// (TokenStore::revocation_epoch), so a token cache (auth/token_cache.h) in any process on the
// same file learns of it with one atomic load. Like the -wal and -shm files, it belongs with the
// database while any process has it open: all processes must run on one host (as WAL requires),
// and removing the file under running processes breaks the promise (they keep the old mapping).
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace connreg::store {

class RevocationEpoch {
 public:
  // Maps `<database_path>-epoch`, creating it (zero) when absent, with the database file's mode
  // (and, for root, its owner), so every process that may write the database may bump it. nullptr
  // when there is no file to put it beside (an in-memory database), or when it cannot be created
  // or mapped (a read-only directory, a filesystem without shared mappings): then the process
  // keeps no token cache, and says so once in the log.
  static std::unique_ptr<RevocationEpoch> OpenBeside(const std::string& database_path);
  ~RevocationEpoch();
  RevocationEpoch(const RevocationEpoch&) = delete;
  RevocationEpoch& operator=(const RevocationEpoch&) = delete;

  // The current value. Acquire: a store read made after it sees every commit whose bump it sees.
  std::uint64_t Load() const {
    return std::atomic_ref<std::uint64_t>(*word_).load(std::memory_order_acquire);
  }
  // Increments the counter (a full barrier: visible to every process when it returns).
  void Bump() { std::atomic_ref<std::uint64_t>(*word_).fetch_add(1, std::memory_order_seq_cst); }

 private:
  RevocationEpoch(void* mapping, std::size_t size);

  // The counter lives in memory shared between processes: its atomic operations must work on the
  // word itself, with no lock kept anywhere else (address-free, which lock-free implies here).
  static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free);

  void* mapping_;
  std::size_t size_;
  std::uint64_t* word_;
};

}  // namespace connreg::store
