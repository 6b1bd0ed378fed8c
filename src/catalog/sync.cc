#include "catalog/sync.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <thread>
#include <unordered_set>
#include <utility>

#include "core/log.h"
#include "core/time.h"
#include "crypto/random.h"
#include "probe/test_result.h"

namespace connreg::catalog {
namespace {

using Clock = std::chrono::steady_clock;

std::string StepsJson(const probe::TestResult& r) { return probe::RenderTestSteps(r.steps); }

}  // namespace

// The finishing work (the last batch, the removal pass, the record) runs on this one thread:
// engine callbacks must not block, and the watchdog's thread must not wait on the store.
struct SyncService::Shared {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> tasks;
  bool stopping = false;
  std::thread thread;

  void Post(std::function<void()> task) {
    {
      std::lock_guard lock(mu);
      if (stopping) return;  // the service is gone: the sync stays RUNNING, resumed later
      tasks.push_back(std::move(task));
    }
    cv.notify_one();
  }
  void Loop() {
    std::unique_lock lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return stopping || !tasks.empty(); });
      if (stopping) return;
      auto task = std::move(tasks.front());
      tasks.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
  }
};

// Collects what the driver reports into batches and writes each as one store transaction, on
// the driver's worker thread. Close() (the finishing thread) stops it: a driver that answers
// after its deadline writes nothing more.
class SyncService::BatchSink : public probe::CatalogSink {
 public:
  BatchSink(store::CatalogStore& store, domain::Connection c, std::size_t batch_size,
            Clock::time_point deadline, std::shared_ptr<Sync> sync)
      : store_(store),
        connection_(std::move(c)),
        batch_size_(batch_size),
        deadline_(deadline),
        sync_(std::move(sync)) {}

  bool Add(domain::WarehouseObject object) override {
    std::lock_guard lock(mu_);
    if (closed_ || !error_.empty()) return false;
    if (Clock::now() >= deadline_) {
      out_of_time_ = true;
      return false;
    }
    // The object and every scope above it were seen.
    for (std::size_t n = 1; n <= object.path.size(); ++n) {
      seen_.insert(domain::PathKey({object.path.begin(), object.path.begin() + n}));
    }
    batch_.push_back(std::move(object));
    if (batch_.size() >= batch_size_) return FlushLocked();
    return true;
  }

  // Writes what is left and refuses everything after. Returns the store's error, if any.
  std::string Close() {
    std::lock_guard lock(mu_);
    if (!closed_ && error_.empty()) FlushLocked();
    closed_ = true;
    return error_;
  }
  bool out_of_time() const {
    std::lock_guard lock(mu_);
    return out_of_time_;
  }
  // After Close: the keys of every path the listing reported.
  const std::unordered_set<std::string>& seen() const { return seen_; }

 private:
  bool FlushLocked() {
    if (batch_.empty()) return true;
    auto applied = store_.ApplyCatalogBatch(connection_.organization_id, connection_.connection_id,
                                            batch_, NowMs(), [] { return crypto::NewUuid4(); });
    batch_.clear();
    if (!applied) {
      error_ = applied.error().message;
      return false;
    }
    if (sync_) {
      store::SyncRecord progress;
      {
        std::lock_guard lock(sync_->mu_);
        sync_->record_.added += applied->added;
        sync_->record_.changed += applied->changed;
        progress = sync_->record_;
      }
      // The counts so far, for GET .../sync on any node; losing one only delays them.
      (void)store_.SaveSync(progress);
    }
    return true;
  }

  store::CatalogStore& store_;
  const domain::Connection connection_;
  const std::size_t batch_size_;
  const Clock::time_point deadline_;
  const std::shared_ptr<Sync> sync_;  // null for a lookup
  mutable std::mutex mu_;
  std::vector<domain::WarehouseObject> batch_;
  std::unordered_set<std::string> seen_;
  std::string error_;
  bool closed_ = false;
  bool out_of_time_ = false;
};

store::SyncRecord SyncService::Sync::record() const {
  std::lock_guard lock(mu_);
  return record_;
}

bool SyncService::Sync::finished() const {
  std::lock_guard lock(mu_);
  return finished_;
}

void SyncService::Sync::OnFinished(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    if (!finished_) {
      waiters_.push_back(std::move(fn));
      return;
    }
  }
  fn();
}

SyncService::SyncService(store::Store& store, const domain::SecretSealer& sealer,
                         probe::ProbeEngine& engine, SyncOptions options)
    : store_(store),
      sealer_(sealer),
      engine_(engine),
      options_(options),
      shared_(std::make_shared<Shared>()) {
  shared_->thread = std::thread([shared = shared_.get()] { shared->Loop(); });
}

SyncService::~SyncService() {
  {
    std::lock_guard lock(shared_->mu);
    shared_->stopping = true;
    shared_->tasks.clear();
  }
  shared_->cv.notify_all();
  shared_->thread.join();
}

Result<std::shared_ptr<SyncService::Sync>> SyncService::Start(const domain::Connection& c,
                                                              domain::CatalogPath path,
                                                              const std::string& actor) {
  std::shared_ptr<Sync> sync;
  {
    // Held while the record is written: two requests for one path must not both start a sync
    // (syncs are rare; the lock serialises only their starts).
    std::lock_guard lock(mu_);
    Slot& slot = slots_[c.connection_id];
    if (slot.running && slot.running->record().path == path) return slot.running;
    for (const auto& queued : slot.queued) {
      if (queued->record().path == path) return queued;
    }
    sync = std::make_shared<Sync>();
    sync->record_ = store::SyncRecord{.sync_id = crypto::NewUuid4(),
                                      .organization_id = c.organization_id,
                                      .connection_id = c.connection_id,
                                      .path = std::move(path),
                                      .status = std::string(sync_status::kRunning),
                                      .steps_json = "[]",
                                      .started_by = actor,
                                      .started_at = NowMs()};
    if (auto saved = store_.SaveSync(sync->record_); !saved) {
      if (!slot.running && slot.queued.empty()) slots_.erase(c.connection_id);
      return saved.error();
    }
    if (slot.running) {
      slot.queued.push_back(sync);
      return sync;
    }
    slot.running = sync;
  }
  Launch(sync);
  return sync;
}

int SyncService::Resume() {
  auto running = store_.RunningSyncs();
  if (!running) {
    log::Event(log::Level::kWarn, "catalog_resume_failed", {{"error", running.error().message}});
    return 0;
  }
  std::vector<std::shared_ptr<Sync>> launch;
  {
    std::lock_guard lock(mu_);
    for (const store::SyncRecord& r : *running) {
      auto sync = std::make_shared<Sync>();
      sync->record_ = r;
      Slot& slot = slots_[r.connection_id];
      if (slot.running) {
        slot.queued.push_back(sync);
      } else {
        slot.running = sync;
        launch.push_back(sync);
      }
    }
  }
  for (const auto& sync : launch) Launch(sync);
  return static_cast<int>(running->size());
}

Result<domain::Connection> SyncService::LoadConnection(const store::SyncRecord& r) {
  auto c = store_.GetConnection(r.organization_id, r.connection_id);
  if (!c) return c.error();
  if (c->is_archived) return Error::Conflict("the connection is archived");
  return c;
}

void SyncService::Launch(const std::shared_ptr<Sync>& sync) {
  const store::SyncRecord record = sync->record();
  auto c = LoadConnection(record);
  auto secrets =
      c ? domain::OpenSecrets(sealer_, *c) : Result<std::map<std::string, std::string>>(c.error());
  if (!secrets) {
    probe::TestResult failed;
    failed.read = std::string(probe::status::kFailed);
    failed.steps.push_back({std::string(probe::step::kConnect), std::string(probe::status::kFailed),
                            0, std::string(probe::code::kProtocolError),
                            "the sync could not start: " + secrets.error().message});
    shared_->Post([this, sync, failed] { Finish(sync, nullptr, failed); });
    return;
  }
  const auto deadline = Clock::now() + std::chrono::seconds(options_.timeout_secs);
  auto sink = std::make_shared<BatchSink>(store_, *c, options_.batch_size, deadline, sync);
  engine_.SubmitCatalog(*c, std::move(*secrets), probe::CatalogRequest{record.path, -1}, sink,
                        options_.timeout_secs,
                        [this, shared = shared_, sync, sink](probe::TestResult r) {
                          shared->Post([this, sync, sink, r = std::move(r)]() mutable {
                            Finish(sync, sink, std::move(r));
                          });
                        });
}

void SyncService::Finish(const std::shared_ptr<Sync>& sync, const std::shared_ptr<BatchSink>& sink,
                         probe::TestResult result) {
  store::SyncRecord record = sync->record();
  bool ok = result.read == probe::status::kSuccess;
  if (sink) {
    std::string store_error = sink->Close();
    if (sink->out_of_time()) {
      // The sink stopped the driver at the deadline: the listing is incomplete.
      for (auto& step : result.steps) {
        if (step.name == probe::step::kQuery) {
          step.status = std::string(probe::status::kFailed);
          step.code = std::string(probe::code::kTimeout);
          step.message = "the sync did not finish within its deadline of " +
                         std::to_string(options_.timeout_secs) + " s";
        }
      }
      ok = false;
    }
    if (!store_error.empty()) {
      log::Event(log::Level::kError, "catalog_sync_store_failed", {{"error", store_error}});
      result.steps.push_back({"store", std::string(probe::status::kFailed), 0,
                              std::string(probe::code::kProtocolError),
                              "the catalog could not be written; see the server log"});
      ok = false;
    }
    if (ok) {
      auto removed = store_.MarkUnseenRemoved(record.organization_id, record.connection_id,
                                              record.path, sink->seen(), NowMs());
      if (removed) {
        record.removed = *removed;
      } else {
        log::Event(log::Level::kError, "catalog_sync_store_failed",
                   {{"error", removed.error().message}});
        ok = false;
      }
    }
  } else {
    ok = false;
  }
  {
    std::lock_guard lock(sync->mu_);
    record.added = sync->record_.added;
    record.changed = sync->record_.changed;
  }
  record.status = std::string(ok ? sync_status::kSuccess : sync_status::kFailed);
  record.steps_json = StepsJson(result);
  record.ended_at = NowMs();
  if (auto saved = store_.SaveSync(record); !saved) {
    log::Event(log::Level::kError, "catalog_sync_store_failed", {{"error", saved.error().message}});
  }
  // The slot first: a request that comes once a waiter has seen the end starts a new sync
  // rather than joining this one.
  std::shared_ptr<Sync> next;
  {
    std::lock_guard lock(mu_);
    auto it = slots_.find(record.connection_id);
    if (it != slots_.end()) {
      Slot& slot = it->second;
      if (!slot.queued.empty()) {
        next = slot.queued.front();
        slot.queued.erase(slot.queued.begin());
        slot.running = next;
      } else {
        slots_.erase(it);
      }
    }
  }
  std::vector<std::function<void()>> waiters;
  {
    std::lock_guard lock(sync->mu_);
    sync->record_ = record;
    sync->finished_ = true;
    waiters.swap(sync->waiters_);
  }
  for (auto& w : waiters) w();
  if (next) Launch(next);
}

void SyncService::Lookup(const domain::Connection& c, domain::CatalogPath path, int levels,
                         int deadline_secs, std::function<void(probe::TestResult)> done) {
  auto secrets = domain::OpenSecrets(sealer_, c);
  if (!secrets) {
    probe::TestResult failed;
    failed.read = std::string(probe::status::kFailed);
    failed.steps.push_back({std::string(probe::step::kConnect), std::string(probe::status::kFailed),
                            0, std::string(probe::code::kProtocolError),
                            "the stored secrets could not be opened"});
    return done(std::move(failed));
  }
  const auto deadline = Clock::now() + std::chrono::seconds(deadline_secs);
  auto sink = std::make_shared<BatchSink>(store_, c, options_.batch_size, deadline, nullptr);
  engine_.SubmitCatalog(
      c, std::move(*secrets), probe::CatalogRequest{std::move(path), levels}, sink, deadline_secs,
      [shared = shared_, sink, done = std::move(done)](probe::TestResult r) {
        shared->Post([sink, done, r = std::move(r)]() mutable {
          if (std::string error = sink->Close(); !error.empty()) {
            log::Event(log::Level::kError, "catalog_lookup_store_failed", {{"error", error}});
            r.read = std::string(probe::status::kFailed);
          }
          done(std::move(r));
        });
      });
}

}  // namespace connreg::catalog
