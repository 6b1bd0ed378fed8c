#include "api/page_token.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "crypto/encoding.h"
#include "crypto/hash.h"

namespace connreg::api {
namespace {

constexpr std::size_t kMacBytes = 16;
constexpr std::size_t kMaxTokenChars = 8192;

Error Invalid() { return Error::BadRequest("page is not a valid page token"); }

}  // namespace

std::string QueryFingerprint(std::string_view scope, const store::ListQuery& q) {
  std::string f(scope);
  f += '\n';
  f += q.include_archived ? '1' : '0';
  f += '\n';
  f += q.search ? "s:" + *q.search : "-";
  f += '\n';
  f += q.type ? "t:" + *q.type : "-";
  return crypto::TokenHash(f).substr(0, 16);
}

std::string EncodePageToken(const PageToken& token, std::string_view key) {
  boost::json::object o{{"o", token.organization_id},
                        {"f", token.filter},
                        {"n", token.cursor.name},
                        {"c", token.cursor.created_at},
                        {"i", token.cursor.connection_id}};
  std::string payload = crypto::Base64UrlEncode(boost::json::serialize(o));
  std::string mac = crypto::Mac(key, payload).substr(0, kMacBytes);
  return payload + "." + crypto::Base64UrlEncode(mac);
}

Result<PageToken> DecodePageToken(std::string_view text, std::string_view key) {
  if (text.size() > kMaxTokenChars) return Invalid();
  auto dot = text.find('.');
  if (dot == std::string_view::npos) return Invalid();
  std::string_view payload = text.substr(0, dot);
  auto mac = crypto::Base64UrlDecode(text.substr(dot + 1));
  if (!mac || mac->size() != kMacBytes ||
      !crypto::ConstantTimeEquals(*mac, crypto::Mac(key, payload).substr(0, kMacBytes))) {
    return Invalid();
  }
  auto json = crypto::Base64UrlDecode(payload);
  if (!json) return Invalid();
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(*json, ec);
  const boost::json::object* o = ec ? nullptr : v.if_object();
  if (o == nullptr) return Invalid();
  auto str = [&](const char* k) -> const boost::json::string* {
    auto it = o->find(k);
    return it == o->end() ? nullptr : it->value().if_string();
  };
  auto org = str("o"), filter = str("f"), name = str("n"), id = str("i");
  auto created = o->find("c");
  if (!org || !filter || !name || !id || created == o->end() || !created->value().is_int64()) {
    return Invalid();
  }
  return PageToken{
      std::string(*org), std::string(*filter),
      store::ListCursor{std::string(*name), created->value().as_int64(), std::string(*id)}};
}

}  // namespace connreg::api
