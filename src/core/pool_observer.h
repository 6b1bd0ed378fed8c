// What a pool of threads or connections reports about how busy it is, to whoever counts it (the
// server's metrics, metrics::ObserverOf). An interface here, so that a pool at the bottom of the
// layers includes nothing above it.
#pragma once

namespace connreg {

// Implementations are thread-safe: a pool calls them from any of its threads.
class PoolObserver {
 public:
  // The pool's bound: `size` threads or connections.
  virtual void SetSize(long size) = 0;
  // Work started (+1) or ended (-1) on one of them.
  virtual void AddInUse(long delta) = 0;

 protected:
  ~PoolObserver() = default;
};

}  // namespace connreg
