#include "auth/token_cache.h"

#include <utility>

#include "crypto/hash.h"
#include "store/revocation_epoch.h"

namespace connreg::auth {

TokenCache::TokenCache(const store::RevocationEpoch* epoch, std::size_t capacity)
    : epoch_(epoch), capacity_(capacity) {}

Result<store::Principal> TokenCache::Resolve(store::TokenStore& tokens, std::string_view token,
                                             TimeMs now) {
  std::string hash = crypto::TokenHash(token);
  if (epoch_ == nullptr) return tokens.ResolveAccessToken(hash, now);
  // Before the store read: a revocation that commits after it bumps the epoch past this value,
  // so what the read finds is never trusted beyond that bump.
  const std::uint64_t epoch = epoch_->Load();
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(hash);
    if (it != entries_.end() && it->second.epoch == epoch &&
        now < it->second.principal.expires_at) {
      return it->second.principal;
    }
  }
  auto resolved = tokens.ResolveAccessToken(hash, now);
  if (!resolved) return resolved;  // failures are not kept: the store answers them
  std::lock_guard lock(mu_);
  if (entries_.size() >= capacity_ && !entries_.contains(hash)) entries_.clear();
  entries_.insert_or_assign(std::move(hash), Entry{*resolved, epoch});
  return resolved;
}

std::size_t TokenCache::size() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

}  // namespace connreg::auth
