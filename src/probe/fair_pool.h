// FairPool: the probe workers, shared fairly between organizations (contract section 7).
//
// Everything that talks to a warehouse on an organization's behalf runs here as a Job with a key
// (the organization id) and a deadline: connection tests today (ProbeEngine), catalog syncs later,
// under one rule. At most `workers` jobs run at once and at most `per_key_cap` of them for one
// key; the rest wait in one FIFO queue per key, and the queues are served round-robin, so a key
// that keeps its share busy (a tenant's warehouse that hangs) delays no other key's jobs by more
// than the pool's free workers allow. A job still queued or running at its deadline is finished
// by a watchdog with an Expiry; time spent queued counts against the deadline.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace connreg::probe {

// Thread-safe: Submit and stats may be called from any thread.
class FairPool {
 public:
  using Clock = std::chrono::steady_clock;

  // Why a job was finished without (or before the end of) its Run.
  struct Expiry {
    bool stopping = false;    // the pool is being destroyed (else: the deadline passed)
    bool started = false;     // Run had begun
    int running = 0;          // jobs running in the pool at that moment (timed-out ones too)
    int running_for_key = 0;  // ... of them for the job's key
    int workers = 0;
    int per_key_cap = 0;
  };

  class Job {
   public:
    virtual ~Job() = default;
    // Runs on a worker thread; not called for a job that expired in the queue.
    virtual void Run() = 0;
    // Called exactly once: with nullptr after Run returns, or with the Expiry when the deadline
    // passes (or the pool stops) first; then a late Run's return is not reported again. Called on
    // a worker, on the watchdog, or (for a Submit to a stopping pool) on the submitting thread;
    // it must not block.
    virtual void Finish(const Expiry* expiry) = 0;
  };

  // `workers` >= 1 threads; `per_key_cap` is clamped to 1..workers.
  FairPool(int workers, int per_key_cap);
  // Finishes every queued job with a `stopping` Expiry, then waits for running jobs to return.
  ~FairPool();
  FairPool(const FairPool&) = delete;
  FairPool& operator=(const FairPool&) = delete;

  void Submit(std::string key, Clock::time_point deadline, std::shared_ptr<Job> job);

  struct Stats {
    int running = 0;  // Run calls in progress, including ones past their deadline
    int queued = 0;   // submitted, not started, not expired
  };
  Stats stats() const;
  int workers() const { return workers_; }
  int per_key_cap() const { return per_key_cap_; }

 private:
  struct Entry;
  struct KeyState {
    std::deque<std::shared_ptr<Entry>> queue;
    int running = 0;
  };

  void WorkerLoop();
  void WatchdogLoop();
  // The next job a worker may start, removed from its queue: the first key in round-robin order
  // that has a queued job and runs fewer than per_key_cap. nullptr when there is none.
  std::shared_ptr<Entry> TakeNextLocked();
  // Drops `key`'s state once it has nothing queued or running.
  void ForgetIfIdleLocked(const std::string& key);
  void Complete(const std::shared_ptr<Entry>& e, const Expiry* expiry);

  const int workers_;
  const int per_key_cap_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable watchdog_cv_;
  std::map<std::string, KeyState> keys_;
  std::deque<std::string> turn_;  // keys with queued jobs, in the order they are served
  int queued_ = 0;
  int running_ = 0;
  std::multimap<Clock::time_point, std::weak_ptr<Entry>> deadlines_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
  std::thread watchdog_;
};

}  // namespace connreg::probe
