// Per-client request rate limiting (contract section 10, CONNREG_RATE_LIMIT): a token bucket per
// API client holding one second's worth of requests, refilled continuously. In memory: each
// node limits the requests it serves. Thread-safe.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace connreg::api {

class RateLimiter {
 public:
  // `per_second` <= 0 disables limiting.
  explicit RateLimiter(double per_second) : rate_(per_second) {}

  bool enabled() const { return rate_ > 0; }
  // Takes one token for `client_id`. Returns 0 when the request may go ahead, else the whole
  // number of seconds (>= 1) after which it may be retried.
  int Acquire(const std::string& client_id);

 private:
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point refilled;
  };
  const double rate_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace connreg::api
