// libFuzzer target: api::DecodePageToken on arbitrary text (contract section 6: any malformed,
// forged or corrupted token is a 400, never anything else). Two passes per input: the bytes as a
// token (exercises the framing and the MAC check), and the bytes as the payload of a token with a
// valid MAC (exercises the base64 and JSON decoding that only authentic tokens reach).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "api/page_token.h"
#include "crypto/encoding.h"
#include "crypto/hash.h"
#include "crypto/random.h"

namespace {
constexpr std::string_view kKey = "0123456789abcdef0123456789abcdef";

void Check(const connreg::Result<connreg::api::PageToken>& r) {
  if (!r.ok() && r.error().code != connreg::ErrorCode::kBadRequest) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  connreg::crypto::EnsureSodium();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  Check(connreg::api::DecodePageToken(text, kKey));

  // Authentic token around the bytes: payload = base64url(bytes), MAC as EncodePageToken makes it.
  std::string payload = connreg::crypto::Base64UrlEncode(text);
  std::string mac = connreg::crypto::Mac(kKey, payload).substr(0, 16);
  std::string token = payload + "." + connreg::crypto::Base64UrlEncode(mac);
  auto r = connreg::api::DecodePageToken(token, kKey);
  Check(r);
  if (r.ok() && token.size() <= 8192) {
    // A decoded token encodes again to a token that decodes to the same cursor.
    auto again = connreg::api::DecodePageToken(connreg::api::EncodePageToken(*r, kKey), kKey);
    if (!again.ok() || again->cursor.name != r->cursor.name ||
        again->cursor.connection_id != r->cursor.connection_id ||
        again->cursor.created_at != r->cursor.created_at ||
        again->organization_id != r->organization_id || again->filter != r->filter) {
      // Re-encoding may exceed the 8192-character cap for long fields: only then may it fail.
      if (again.ok() || connreg::api::EncodePageToken(*r, kKey).size() <= 8192) std::abort();
    }
  }
  return 0;
}
