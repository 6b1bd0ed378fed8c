#include "api/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace connreg::api {

int RateLimiter::Acquire(const std::string& client_id) {
  if (!enabled()) return 0;
  const auto now = std::chrono::steady_clock::now();
  const double capacity = std::max(1.0, rate_);
  std::lock_guard lock(mu_);
  // Forget idle clients now and then so the map stays bounded by the active ones.
  if (buckets_.size() > 100000) {
    std::erase_if(buckets_, [&](const auto& kv) {
      return now - kv.second.refilled > std::chrono::seconds(60);
    });
  }
  auto [it, inserted] = buckets_.try_emplace(client_id, Bucket{capacity, now});
  Bucket& b = it->second;
  if (!inserted) {
    double elapsed = std::chrono::duration<double>(now - b.refilled).count();
    b.tokens = std::min(capacity, b.tokens + elapsed * rate_);
    b.refilled = now;
  }
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return 0;
  }
  return std::max(1, static_cast<int>(std::ceil((1.0 - b.tokens) / rate_)));
}

}  // namespace connreg::api
