// Checking and issuing tokens (contract section 2) over the store's TokenStore: an API client's
// credentials checked, and the two OAuth grants (client credentials, refresh token); a request's
// bearer token is resolved by auth/token_cache.h. Tokens and client secrets are random 256-bit
// values the store keeps as BLAKE2b hashes only (crypto/hash.h). The HTTP side, parsing a request
// and shaping its answer, stays in src/api (api.cc, token_endpoint.cc). Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "auth/credentials.h"
#include "core/result.h"
#include "core/time.h"
#include "store/store.h"

namespace connreg::auth {

struct TokenLifetimes {
  std::int64_t access_secs = 3600;
  std::int64_t refresh_secs = 30 * 24 * 3600;
};

// What a grant issues, in clear (shown once to the client, stored as hashes).
struct IssuedTokens {
  std::string access_token;
  std::string refresh_token;
  std::string member_id;  // whom they act as
};

// The active API client `credentials` name, when the secret is its own; kUnauthorized when the
// client is unknown or revoked or the secret wrong (one answer for all three, and the same work:
// the secret is hashed and compared even for an unknown client, so timing does not tell which ids
// exist).
Result<store::ApiClient> CheckClient(store::TokenStore& tokens,
                                     const BasicCredentials& credentials);

// The client credentials grant: a new token family for `client`.
Result<IssuedTokens> IssueTokens(store::TokenStore& tokens, const store::ApiClient& client,
                                 const TokenLifetimes& lifetimes, TimeMs now);

// The refresh token grant: consumes `refresh_token` (which must have been issued to `client_id`
// when that is not empty) and issues the next pair of its family. kNotFound: unknown, expired or
// revoked; kConflict: it was used before, and every token of its family is now revoked.
Result<IssuedTokens> RefreshTokens(store::TokenStore& tokens, std::string_view refresh_token,
                                   const std::string& client_id, const TokenLifetimes& lifetimes,
                                   TimeMs now);

}  // namespace connreg::auth
