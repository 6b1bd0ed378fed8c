#include "auth/tokens.h"

#include <utility>

#include "crypto/hash.h"
#include "crypto/random.h"

namespace connreg::auth {
namespace {

// A fresh access/refresh pair, its rows with the expiry at `now` + the lifetimes; the rows'
// owner fields are left for the grant to fill.
struct NewPair {
  IssuedTokens issued;
  store::AccessToken access;
  store::RefreshToken refresh;
};

NewPair MakePair(const TokenLifetimes& lifetimes, TimeMs now) {
  NewPair p;
  p.issued.access_token = crypto::RandomToken(32);
  p.issued.refresh_token = crypto::RandomToken(32);
  p.access = {crypto::TokenHash(p.issued.access_token), "", "", "",
              now + lifetimes.access_secs * 1000,       ""};
  p.refresh = {crypto::TokenHash(p.issued.refresh_token), "", "", "", "",
               now + lifetimes.refresh_secs * 1000};
  return p;
}

}  // namespace

Result<store::ApiClient> CheckClient(store::TokenStore& tokens,
                                     const BasicCredentials& credentials) {
  auto found = tokens.GetActiveApiClient(credentials.id);
  if (!found && found.error().code != ErrorCode::kNotFound) return found.error();
  // Hash and compare even for an unknown client, so timing does not tell which ids exist.
  const std::string presented = crypto::TokenHash(credentials.secret);
  if (!found || !crypto::ConstantTimeEquals(presented, found->secret_hash)) {
    return Error::Unauthorized("the client credentials are not valid");
  }
  return std::move(*found);
}

Result<IssuedTokens> IssueTokens(store::TokenStore& tokens, const store::ApiClient& client,
                                 const TokenLifetimes& lifetimes, TimeMs now) {
  NewPair p = MakePair(lifetimes, now);
  auto member = tokens.GetMember(client.member_id);
  if (!member) return member.error();
  const std::string family = crypto::NewUuid4();
  p.access.client_id = p.refresh.client_id = client.client_id;
  p.access.member_id = p.refresh.member_id = member->member_id;
  p.access.organization_id = p.refresh.organization_id = member->organization_id;
  p.access.family_id = p.refresh.family_id = family;
  if (auto s = tokens.SaveTokenPair(p.access, p.refresh); !s) return s.error();
  p.issued.member_id = member->member_id;
  return std::move(p.issued);
}

Result<IssuedTokens> RefreshTokens(store::TokenStore& tokens, std::string_view refresh_token,
                                   const std::string& client_id, const TokenLifetimes& lifetimes,
                                   TimeMs now) {
  NewPair p = MakePair(lifetimes, now);
  auto principal = tokens.RotateRefreshToken(crypto::TokenHash(refresh_token), client_id, now,
                                             p.access, p.refresh);
  if (!principal) return principal.error();
  p.issued.member_id = principal->member_id;
  return std::move(p.issued);
}

}  // namespace connreg::auth
