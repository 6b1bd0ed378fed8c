// Syncing a connection's catalog (contract section 13): the warehouse is listed on the probe
// engine (probe/engine.h, SubmitCatalog: the egress check, pinned addresses, the organization's
// share of the slots and the scrubbing of a test), and what it reports is written to the store
// as a diff (store::CatalogStore) in bounded batches, each its own transaction, while the
// listing runs: no transaction spans the sync, so SQLite's one writer is held for one batch at a
// time. After a complete listing, what the sync did not see is marked removed. Each sync has a
// record in the store (RUNNING, then SUCCESS or FAILED with the steps); one left RUNNING by a
// stopped server is resumed at the next start (Resume), and since batches are diffs, the work
// already committed is not written again.
//
// One sync per connection runs at a time (per node): a request for the path being synced joins
// that sync, a request for another path queues behind it (and joins a queued one of its path).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "domain/catalog.h"
#include "domain/connection.h"
#include "domain/secret_sealer.h"
#include "probe/engine.h"
#include "store/store.h"

namespace connreg::catalog {

namespace sync_status {
inline constexpr std::string_view kRunning = "RUNNING";
inline constexpr std::string_view kSuccess = "SUCCESS";
inline constexpr std::string_view kFailed = "FAILED";
}  // namespace sync_status

struct SyncOptions {
  int timeout_secs = 600;        // CONNREG_SYNC_TIMEOUT: a sync's own deadline
  std::size_t batch_size = 500;  // objects per store transaction
};

// Thread-safe. Start and Resume call the store: run them where blocking is allowed.
class SyncService {
 public:
  // One sync, shared by everyone waiting on it. Thread-safe.
  class Sync {
   public:
    // The record as it stands (counts so far while RUNNING).
    store::SyncRecord record() const;
    bool finished() const;
    // Calls `fn` once when the sync has ended: at once (on this thread) if it has, else on the
    // thread that ends it. `fn` must not block.
    void OnFinished(std::function<void()> fn);

   private:
    friend class SyncService;
    mutable std::mutex mu_;
    store::SyncRecord record_;
    bool finished_ = false;
    std::vector<std::function<void()>> waiters_;
  };

  // `store` and `sealer` outlive the service; `engine` outlives it as well (the engine's jobs may
  // still report after the service is gone: they are then ignored, and the sync stays RUNNING in
  // the store, to be resumed).
  SyncService(store::Store& store, const domain::SecretSealer& sealer, probe::ProbeEngine& engine,
              SyncOptions options);
  ~SyncService();
  SyncService(const SyncService&) = delete;
  SyncService& operator=(const SyncService&) = delete;

  // Starts a sync of `path` of `c` for `actor`, or joins the one of that path running or queued
  // for the connection. Errors: the secrets do not open, or the record cannot be written.
  Result<std::shared_ptr<Sync>> Start(const domain::Connection& c, domain::CatalogPath path,
                                      const std::string& actor);
  // Restarts every sync the store holds as RUNNING (after a restart). Returns how many.
  int Resume();

  // Lists `path` of `c` once, `levels` deep, within `deadline_secs`, and applies what it finds
  // to the catalog (no removal: a lookup sees too little to know what is gone). `done` gets the
  // steps, after the store is written, on an engine or service thread; it must not block.
  void Lookup(const domain::Connection& c, domain::CatalogPath path, int levels, int deadline_secs,
              std::function<void(probe::TestResult)> done);

  const SyncOptions& options() const { return options_; }

 private:
  struct Shared;  // what engine callbacks may reach after the service is gone
  class BatchSink;
  struct Slot {  // one connection's running sync and those queued behind it
    std::shared_ptr<Sync> running;
    std::vector<std::shared_ptr<Sync>> queued;
  };

  // Submits `sync` to the engine (its record is saved). Called with mu_ not held.
  void Launch(const std::shared_ptr<Sync>& sync);
  // Ends `sync` with the listing's outcome: final batch, removal, record; starts the next one.
  void Finish(const std::shared_ptr<Sync>& sync, const std::shared_ptr<BatchSink>& sink,
              probe::TestResult result);
  Result<domain::Connection> LoadConnection(const store::SyncRecord& r);

  store::Store& store_;
  const domain::SecretSealer& sealer_;
  probe::ProbeEngine& engine_;
  SyncOptions options_;
  std::shared_ptr<Shared> shared_;
  std::mutex mu_;
  std::map<std::string, Slot> slots_;  // by connection id
};

}  // namespace connreg::catalog
