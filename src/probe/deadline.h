// A point in time by which a test must have answered. Value type; thread-safe to copy and read.
#pragma once

#include <algorithm>
#include <chrono>

namespace connreg::probe {

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Deadline(Clock::time_point at) : at_(at) {}
  static Deadline In(std::chrono::milliseconds d) { return Deadline(Clock::now() + d); }

  Clock::time_point at() const { return at_; }
  bool expired() const { return Clock::now() >= at_; }
  // Time left, never negative.
  std::chrono::milliseconds remaining() const {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(at_ - Clock::now());
    return std::max(left, std::chrono::milliseconds(0));
  }
  // Time left in whole seconds rounded up, at least 1: for driver options counted in seconds,
  // so that a driver's own timeout never fires before the deadline and never means "forever".
  unsigned remaining_seconds_ceil() const {
    auto ms = remaining().count();
    return static_cast<unsigned>(std::max<long long>(1, (ms + 999) / 1000));
  }

 private:
  Clock::time_point at_;
};

}  // namespace connreg::probe
