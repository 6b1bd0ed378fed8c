// Resolved bearer tokens kept in memory, so that a request whose token was seen before does not
// read the store (contract section 2's checks still hold exactly). An entry is trusted only while
// the store's revocation epoch (store::RevocationEpoch) is the one read before the store read
// that filled it, and until the token's own expiry: every write that can make a token fail bumps
// the epoch after its commit and before it returns, in whichever process made it, so a request
// that starts after that return finds every entry stale and asks the store, which has the
// change. Keyed by the token's hash (crypto::TokenHash), so no token is kept in clear. Bounded:
// when full it is emptied (entries of tokens not seen since are gone; the rest come back on
// their next request). Without an epoch (PostgreSQL, or no epoch file) it keeps nothing.
// Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/result.h"
#include "core/time.h"
#include "store/store.h"

namespace connreg::auth {

class TokenCache {
 public:
  static constexpr std::size_t kDefaultCapacity = 8192;

  // `epoch`: the store's (TokenStore::revocation_epoch), outliving the cache; nullptr: no cache.
  explicit TokenCache(const store::RevocationEpoch* epoch, std::size_t capacity = kDefaultCapacity);

  bool enabled() const { return epoch_ != nullptr; }

  // The principal of the bearer token `token` at `now` (TokenStore::ResolveAccessToken of its
  // hash), from memory while an entry is valid; kNotFound when it is unknown, expired or revoked.
  Result<store::Principal> Resolve(store::TokenStore& tokens, std::string_view token, TimeMs now);

  std::size_t size() const;

 private:
  struct Entry {
    store::Principal principal;  // principal.expires_at: the token's expiry
    std::uint64_t epoch = 0;     // the epoch read before the store read that filled it
  };

  const store::RevocationEpoch* epoch_;
  const std::size_t capacity_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;  // by token hash; guarded by mu_
};

}  // namespace connreg::auth
