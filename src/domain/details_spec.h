// The details table of a warehouse type (contract section 4) as data: its fields, which are
// required, which are secrets, what an absent field means, which fields make up the endpoint,
// how TLS is turned on, and the rules between fields that a table cannot say. The validation
// (details.h) reads nothing else about a type.
//
// Each driver family defines the TypeSpecs of its types beside its driver
// (src/probe/drivers/<family>/); the registry (probe/drivers/registry.h) gathers them in one
// TypeCatalog, which the API hands to the validation. So this folder names no warehouse type.
// Immutable once built; thread-safe to read.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "core/result.h"

namespace connreg::domain {

enum class Kind {
  kString,          // any string up to 4096 characters
  kHost,            // host name or IP literal
  kAccount,         // an account identifier pasted as a label into a host name (snowflake)
  kPort,            // integer 1..65535
  kBool,            //
  kStringList,      // array of strings
  kChoice,          // one of FieldSpec::choices
  kTlsMode,         // require | verify-ca | verify-full
  kCaBundle,        // PEM certificates, up to 64 KiB
  kObject,          // nested object checked against FieldSpec::nested
  kPassword,        // secret: string or {"type":"plain","value":string}
  kSecret,          // secret: string up to 4096 characters
  kKeySecret,       // secret: string up to 64 KiB (privateKey)
  kServiceAccount,  // secret: JSON string holding a JSON object, up to 64 KiB
};

bool IsSecretKind(Kind k);

struct FieldSpec {
  std::string_view name;
  Kind kind;
  bool required = false;
  // For kObject: the fields of the nested object.
  std::vector<FieldSpec> nested = {};
  // Part of the endpoint (contract section 4): the field decides where the secrets are sent, so
  // a request that changes it must give every secret of the connection again.
  bool endpoint = false;
  // What the field means when absent (a default port, starburst's useTls), compared in its
  // place when deciding whether the endpoint changed; null when absence means nothing more.
  boost::json::value fallback = nullptr;
  // An extension a Sigma client cannot know to send (tlsMode, tlsCaCert): a PUT that leaves it
  // out keeps the stored value, as for a secret; null clears it.
  bool kept_by_put = false;
  // For kChoice: the values allowed, in the order an error message lists them.
  std::vector<std::string_view> choices = {};

  FieldSpec Endpoint() && {
    endpoint = true;
    return std::move(*this);
  }
  FieldSpec Default(boost::json::value v) && {
    fallback = std::move(v);
    return std::move(*this);
  }
};

FieldSpec Req(std::string_view name, Kind kind);
FieldSpec Opt(std::string_view name, Kind kind);
FieldSpec Nested(std::string_view name, std::vector<FieldSpec> fields);
FieldSpec Choice(std::string_view name, std::vector<std::string_view> choices);
// `fields`, then the TLS fields every type with TLS settings has (tlsMode, tlsCaCert).
std::vector<FieldSpec> WithTlsFields(std::vector<FieldSpec> fields);

// How a type turns TLS on (contract section 4, extension). kUseTls: the `useTls` field (with its
// fallback when absent); kAlways: every connection (azuresql); kByMode: giving a `tlsMode`
// (sqlserver, whose driver otherwise encrypts only when the server offers it); kNone: the type
// has no TLS settings (the HTTP drivers always verify).
enum class TlsSwitch { kNone, kUseTls, kAlways, kByMode };

class DetailsView;

struct TypeSpec {
  std::string_view type;  // details.type
  std::vector<FieldSpec> fields;
  TlsSwitch tls = TlsSwitch::kNone;
  // The type's rules between fields ("account or host", "exactly one login"), run once every
  // field and every `required` has passed; nullptr when the table says everything.
  Status (*rule)(const DetailsView& details) = nullptr;
};

// The details being validated, as a TypeSpec::rule sees them: the non-secret fields given, and
// which secrets are set.
class DetailsView {
 public:
  DetailsView(std::string_view type, const boost::json::object& visible,
              const std::map<std::string, std::optional<std::string>>& secret_changes,
              const std::set<std::string>& kept)
      : type_(type), visible_(visible), secret_changes_(secret_changes), kept_(kept) {}

  std::string_view type() const { return type_; }
  // The non-secret fields, validated one by one.
  const boost::json::object& visible() const { return visible_; }
  bool Has(std::string_view field) const { return visible_.contains(field); }
  // The string value of a validated string field, or "" when absent.
  std::string_view String(std::string_view field) const;
  // A secret counts as set when the request gives it a value, or leaves a stored one untouched.
  bool SecretSet(std::string_view field) const;
  // The request names the secret (a value or null).
  bool SecretMentioned(std::string_view field) const;
  // details.useOauth is true.
  bool OauthOn() const;

  // The contract's "one login" rule: among the logins in `set` (secret fields and "useOauth"),
  // at most one. Else a 400 that keeps the one `preferred` names, else one the request itself
  // sends, else the first, and asks the client to drop the other explicitly rather than guessing
  // which credential it meant to retire.
  Status OneLogin(const std::vector<std::string_view>& set, std::string_view preferred) const;

 private:
  std::string_view type_;
  const boost::json::object& visible_;
  const std::map<std::string, std::optional<std::string>>& secret_changes_;
  const std::set<std::string>& kept_;
};

// Every type a server knows, in the contract's order (the order of `specs`).
class TypeCatalog {
 public:
  explicit TypeCatalog(std::vector<TypeSpec> specs);

  const std::vector<TypeSpec>& specs() const { return specs_; }
  // The `details.type` values.
  const std::vector<std::string_view>& types() const { return types_; }
  // nullptr when `type` is not one of them.
  const TypeSpec* Find(std::string_view type) const;
  // True when `field` is a secret field of `type` (password, privateKey, ...).
  bool IsSecretField(std::string_view type, std::string_view field) const;

 private:
  std::vector<TypeSpec> specs_;
  std::vector<std::string_view> types_;
};

// The field called `name` among `fields`, or nullptr.
const FieldSpec* FindField(const std::vector<FieldSpec>& fields, std::string_view name);

}  // namespace connreg::domain
