#include "probe/fair_pool.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>

#include "core/blocking_pool.h"

#include "metrics/metrics.h"

namespace connreg::probe {

struct FairPool::Entry {
  enum class State { kQueued, kRunning, kExpired };

  Entry(std::string k, std::shared_ptr<Job> j) : key(std::move(k)), job(std::move(j)) {}

  const std::string key;
  const std::shared_ptr<Job> job;
  std::atomic<bool> finished{false};
  // Guarded by FairPool::mu_.
  State state = State::kQueued;
  bool in_deadlines = false;
  std::multimap<Clock::time_point, std::weak_ptr<Entry>>::iterator deadline_it;
};

FairPool::FairPool(int workers, int per_key_cap)
    : workers_(std::max(1, workers)), per_key_cap_(std::clamp(per_key_cap, 1, workers_)) {
  metrics::SetPoolSize(metrics::Pool::kProbe, workers_);
  threads_.reserve(workers_);
  for (int i = 0; i < workers_; ++i) {
    threads_.emplace_back([this] {
      // As the blocking pool's threads: the CPU a worker spends (a catalog sync parsing and
      // writing 200,000 columns) yields to the I/O threads' cheap requests on a busy machine.
      ::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), BlockingPool::kNice);
      WorkerLoop();
    });
  }
  watchdog_ = std::thread([this] { WatchdogLoop(); });
}

FairPool::~FairPool() {
  std::vector<std::shared_ptr<Entry>> pending;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& [key, state] : keys_) {
      for (auto& e : state.queue) {
        e->state = Entry::State::kExpired;
        pending.push_back(std::move(e));
      }
      state.queue.clear();
    }
    turn_.clear();
    queued_ = 0;
  }
  metrics::AddPoolWaiting(metrics::Pool::kProbe, -static_cast<long>(pending.size()));
  work_cv_.notify_all();
  watchdog_cv_.notify_all();
  Expiry stopping;
  stopping.stopping = true;
  stopping.workers = workers_;
  stopping.per_key_cap = per_key_cap_;
  for (const auto& e : pending) Complete(e, &stopping);
  for (std::thread& t : threads_) t.join();
  watchdog_.join();
}

void FairPool::Submit(std::string key, Clock::time_point deadline, std::shared_ptr<Job> job) {
  auto e = std::make_shared<Entry>(std::move(key), std::move(job));
  bool stopping;
  {
    std::lock_guard lock(mu_);
    stopping = stopping_;
    if (!stopping) {
      e->deadline_it = deadlines_.emplace(deadline, e);
      e->in_deadlines = true;
      KeyState& state = keys_[e->key];
      if (state.queue.empty()) turn_.push_back(e->key);
      state.queue.push_back(e);
      ++queued_;
    }
  }
  if (stopping) {
    Expiry x;
    x.stopping = true;
    x.workers = workers_;
    x.per_key_cap = per_key_cap_;
    return Complete(e, &x);
  }
  metrics::AddPoolWaiting(metrics::Pool::kProbe, 1);
  work_cv_.notify_one();
  watchdog_cv_.notify_one();
}

FairPool::Stats FairPool::stats() const {
  std::lock_guard lock(mu_);
  return Stats{running_, queued_};
}

std::shared_ptr<FairPool::Entry> FairPool::TakeNextLocked() {
  for (auto it = turn_.begin(); it != turn_.end(); ++it) {
    KeyState& state = keys_.at(*it);
    if (state.running >= per_key_cap_) continue;  // keeps its place in the turn
    std::shared_ptr<Entry> e = std::move(state.queue.front());
    state.queue.pop_front();
    --queued_;
    std::string key = std::move(*it);
    turn_.erase(it);
    if (!state.queue.empty()) turn_.push_back(std::move(key));  // served: to the back
    return e;
  }
  return nullptr;
}

void FairPool::ForgetIfIdleLocked(const std::string& key) {
  auto it = keys_.find(key);
  if (it != keys_.end() && it->second.queue.empty() && it->second.running == 0) keys_.erase(it);
}

void FairPool::WorkerLoop() {
  for (;;) {
    std::shared_ptr<Entry> e;
    {
      std::unique_lock lock(mu_);
      while (!stopping_ && !(e = TakeNextLocked())) work_cv_.wait(lock);
      if (!e) return;  // stopping
      e->state = Entry::State::kRunning;
      ++running_;
      ++keys_.at(e->key).running;
    }
    metrics::AddPoolWaiting(metrics::Pool::kProbe, -1);
    metrics::AddPoolInUse(metrics::Pool::kProbe, 1);
    e->job->Run();
    metrics::AddPoolInUse(metrics::Pool::kProbe, -1);
    {
      std::lock_guard lock(mu_);
      --running_;
      --keys_.at(e->key).running;
      ForgetIfIdleLocked(e->key);
    }
    // The key may be below its cap again with jobs queued: this worker takes the next job when
    // it loops; any idle worker had nothing runnable before, so none needs waking.
    Complete(e, nullptr);
  }
}

void FairPool::WatchdogLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (deadlines_.empty()) {
      watchdog_cv_.wait(lock);
      continue;
    }
    auto it = deadlines_.begin();
    if (Clock::now() < it->first) {
      // A copy: wait_until reads its deadline again after waking, and while the lock is released
      // the job may finish and erase this node (heap-use-after-free found by fuzz/fuzz_http).
      const Clock::time_point deadline = it->first;
      watchdog_cv_.wait_until(lock, deadline);
      continue;
    }
    std::shared_ptr<Entry> e = it->second.lock();
    deadlines_.erase(it);
    if (!e) continue;
    e->in_deadlines = false;
    Expiry x;
    x.started = e->state == Entry::State::kRunning;
    x.running = running_;
    x.workers = workers_;
    x.per_key_cap = per_key_cap_;
    auto key = keys_.find(e->key);
    if (key != keys_.end()) x.running_for_key = key->second.running;
    if (e->state == Entry::State::kQueued) {
      auto& queue = key->second.queue;
      queue.erase(std::find(queue.begin(), queue.end(), e));
      --queued_;
      if (queue.empty()) turn_.erase(std::find(turn_.begin(), turn_.end(), e->key));
      ForgetIfIdleLocked(e->key);
      e->state = Entry::State::kExpired;
      metrics::AddPoolWaiting(metrics::Pool::kProbe, -1);
    }
    lock.unlock();
    Complete(e, &x);
    lock.lock();
  }
}

void FairPool::Complete(const std::shared_ptr<Entry>& e, const Expiry* expiry) {
  if (e->finished.exchange(true)) return;
  {
    std::lock_guard lock(mu_);
    if (e->in_deadlines) {
      deadlines_.erase(e->deadline_it);
      e->in_deadlines = false;
    }
  }
  e->job->Finish(expiry);
}

}  // namespace connreg::probe
