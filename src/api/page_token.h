// Opaque, tamper-evident page tokens for keyset paging (contract section 6). A token carries the
// organization, a fingerprint of the query's filters and the keyset cursor, MAC'd with a key
// shared by every node (Store::ServerKey), so it works on any node and cannot be forged, moved to
// another tenant or reused with other filters. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"
#include "store/store.h"

namespace connreg::api {

struct PageToken {
  std::string organization_id;
  std::string filter;  // QueryFingerprint() of the listing it belongs to
  store::ListCursor cursor;
};

// A short digest of the filters that must stay the same across the pages of one walk.
std::string QueryFingerprint(std::string_view scope, const store::ListQuery& q);

std::string EncodePageToken(const PageToken& token, std::string_view key);
// Any malformed, forged or corrupted token is a 400; never anything else.
Result<PageToken> DecodePageToken(std::string_view text, std::string_view key);

}  // namespace connreg::api
