#include "api/idempotency.h"

#include <array>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>

#include "crypto/encoding.h"
#include "crypto/hash.h"

namespace connreg::api {
namespace {

constexpr std::string_view kVersion = "v2";
constexpr std::string_view kPurpose = "idempotency request";
// What a secret value becomes in the hashed body (the value itself enters only the MAC).
constexpr std::string_view kRedacted = "<secret>";

struct SplitRequest {
  std::string body_hash;  // hex
  std::string secrets;    // [[path, value], ...] serialized; empty: the body holds none
};

// Takes the secret values (details fields that are secrets of details.type; a JSON null is no
// value) out of the body.
SplitRequest Split(const domain::TypeCatalog& types, std::string_view request_line,
                   const boost::json::value& body) {
  boost::json::value redacted = body;
  boost::json::array secrets;
  if (auto* root = redacted.if_object()) {
    if (auto* details_value = root->if_contains("details")) {
      if (auto* details = details_value->if_object()) {
        std::string_view type;
        if (const auto* t = details->if_contains("type"); t != nullptr && t->is_string()) {
          type = t->get_string();
        }
        for (auto& member : *details) {
          if (member.value().is_null() || !types.IsSecretField(type, member.key())) continue;
          secrets.push_back(boost::json::array{"details." + std::string(member.key()),
                                               std::move(member.value())});
          member.value() = kRedacted;
        }
      }
    }
  }
  std::string hashed(request_line);
  hashed += '\n';
  hashed += boost::json::serialize(redacted);
  return {crypto::TokenHash(hashed), secrets.empty() ? "" : boost::json::serialize(secrets)};
}

std::string MacInput(const SplitRequest& r) { return r.body_hash + "\n" + r.secrets; }

}  // namespace

std::string RequestFingerprint(const domain::TypeCatalog& types, std::string_view request_line,
                               const boost::json::value& body, const domain::SecretSealer& sealer) {
  const SplitRequest r = Split(types, request_line, body);
  std::string out = std::string(kVersion) + ":" + r.body_hash + ":";
  if (!r.secrets.empty()) {
    const auto digest = sealer.Digest(kPurpose, MacInput(r));
    out += digest.key_id + ":" + crypto::HexEncode(digest.mac);
  } else {
    out += ":";
  }
  return out;
}

Result<bool> IsSameRequest(const domain::TypeCatalog& types, std::string_view stored,
                           std::string_view request_line, const boost::json::value& body,
                           const domain::SecretSealer& sealer) {
  // v2:<hash>:<key id>:<mac>
  std::array<std::string_view, 4> parts;
  std::size_t n = 0;
  for (std::string_view rest = stored; n < parts.size() + 1;) {
    const auto colon = rest.find(':');
    if (n < parts.size()) parts[n] = rest.substr(0, colon);
    ++n;
    if (colon == std::string_view::npos) break;
    rest = rest.substr(colon + 1);
  }
  if (n != parts.size() || parts[0] != kVersion) {
    return Error::Conflict(
        "Idempotency-Key was recorded by an earlier version of the server and its request "
        "cannot be compared; use a new key");
  }
  const SplitRequest r = Split(types, request_line, body);
  if (!crypto::ConstantTimeEquals(parts[1], r.body_hash)) return false;
  if (parts[2].empty() || r.secrets.empty()) return parts[2].empty() && r.secrets.empty();
  auto mac = sealer.DigestUnder(parts[2], kPurpose, MacInput(r));
  if (!mac) {
    if (mac.error().code != ErrorCode::kNotFound) return mac.error();
    return Error::Conflict(
        "Idempotency-Key was used before a master key rotation, so its request can no longer be "
        "verified; use a new key");
  }
  return crypto::ConstantTimeEquals(parts[3], crypto::HexEncode(*mac));
}

}  // namespace connreg::api
