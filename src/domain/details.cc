#include "domain/details.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>

#include <boost/json/parse.hpp>
#include <boost/system/error_code.hpp>

namespace connreg::domain {
namespace {

// Plain strings are limited in characters (code points); the two key-material fields, which are
// PEM or JSON blobs, are limited in bytes.
constexpr std::size_t kMaxStringChars = 4096;
constexpr std::size_t kMaxKeyBytes = std::size_t{64} * 1024;

enum class Kind {
  kString,   // any string up to kMaxStringChars
  kHost,     // host name or IP literal
  kAccount,  // snowflake account identifier: a label of <account>.snowflakecomputing.com
  kPort,     // integer 1..65535
  kBool,
  kStringList,      // array of strings
  kAuthType,        // snowflake: basic-auth | key-pair | oauth
  kTlsMode,         // require | verify-ca | verify-full
  kCaBundle,        // PEM certificates, up to kMaxKeyBytes
  kObject,          // nested object checked against `nested`
  kPassword,        // secret: string or {"type":"plain","value":string}
  kSecret,          // secret: string up to kMaxStringChars
  kKeySecret,       // secret: string up to kMaxKeyBytes (privateKey)
  kServiceAccount,  // secret: JSON string holding a JSON object, up to kMaxKeyBytes
};

bool IsSecretKind(Kind k) {
  return k == Kind::kPassword || k == Kind::kSecret || k == Kind::kKeySecret ||
         k == Kind::kServiceAccount;
}

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

  FieldSpec Endpoint() && {
    endpoint = true;
    return std::move(*this);
  }
  FieldSpec Default(boost::json::value v) && {
    fallback = std::move(v);
    return std::move(*this);
  }
};

// How a type turns TLS on (contract section 4, extension). kUseTls: the `useTls` field (with its
// fallback when absent); kAlways: every connection (azuresql); kByMode: giving a `tlsMode`
// (sqlserver, whose driver otherwise encrypts only when the server offers it); kNone: the type
// has no TLS settings (the HTTP drivers always verify).
enum class TlsSwitch { kNone, kUseTls, kAlways, kByMode };

struct TypeSpec {
  std::string_view type;
  std::vector<FieldSpec> fields;
  TlsSwitch tls = TlsSwitch::kNone;
};

FieldSpec Req(std::string_view name, Kind kind) { return {name, kind, true}; }
FieldSpec Opt(std::string_view name, Kind kind) { return {name, kind, false}; }
FieldSpec Nested(std::string_view name, std::vector<FieldSpec> fields) {
  return {name, Kind::kObject, false, std::move(fields)};
}

constexpr std::string_view kTlsModes[] = {"require", "verify-ca", "verify-full"};  // weak first
constexpr std::string_view kDefaultTlsMode = "verify-full";
// What a connection with TLS on and no tlsMode gets: rows stored before tlsMode existed.
constexpr std::string_view kLegacyTlsMode = "require";

// The TLS fields every type with TLS settings has, after its own.
std::vector<FieldSpec> WithTlsFields(std::vector<FieldSpec> fields) {
  FieldSpec mode = Opt("tlsMode", Kind::kTlsMode);
  FieldSpec ca = Opt("tlsCaCert", Kind::kCaBundle);
  mode.kept_by_put = ca.kept_by_put = true;
  fields.push_back(std::move(mode));
  fields.push_back(std::move(ca));
  return fields;
}

std::vector<FieldSpec> PostgresFamily(std::int64_t default_port) {
  return WithTlsFields({Req("host", Kind::kHost).Endpoint(), Req("database", Kind::kString),
                        Opt("port", Kind::kPort).Endpoint().Default(default_port),
                        Opt("user", Kind::kString), Opt("password", Kind::kPassword),
                        Opt("useTls", Kind::kBool).Default(false),
                        Nested("writeAccess", {Req("writeSchema", Kind::kString)})});
}

std::vector<FieldSpec> SqlServerFamily(bool database_required) {
  return WithTlsFields({Req("server", Kind::kHost).Endpoint(),
                        Req("port", Kind::kPort).Endpoint(),
                        Req("user", Kind::kString),
                        Req("password", Kind::kPassword),
                        {"database", Kind::kString, database_required},
                        Opt("useReadUncommittedIsolation", Kind::kBool),
                        Nested("writeAccess", {Req("writeDatabase", Kind::kString),
                                               Req("writeSchema", Kind::kString)})});
}

// The contract's section 4 table, one entry per `details.type`, in the contract's order.
const std::vector<TypeSpec>& Specs() {
  static const std::vector<TypeSpec>* const specs = new std::vector<TypeSpec>{
      {"postgres", PostgresFamily(5432), TlsSwitch::kUseTls},
      {"redshift", PostgresFamily(5439), TlsSwitch::kUseTls},
      {"alloydb", PostgresFamily(5432), TlsSwitch::kUseTls},
      {"mysql",
       WithTlsFields({Req("host", Kind::kHost).Endpoint(), Req("port", Kind::kPort).Endpoint(),
                      Req("user", Kind::kString), Req("password", Kind::kPassword),
                      Opt("database", Kind::kString), Opt("useTls", Kind::kBool).Default(false),
                      Nested("writeAccess", {Req("writeSchema", Kind::kString)})}),
       TlsSwitch::kUseTls},
      // Snowflake's "account or host" and its one-login rule are checked in CheckSnowflake.
      {"snowflake",
       {Opt("account", Kind::kAccount).Endpoint(), Opt("host", Kind::kHost).Endpoint(),
        Opt("server", Kind::kHost).Endpoint(), Opt("user", Kind::kString),
        Opt("password", Kind::kPassword), Opt("privateKey", Kind::kKeySecret),
        Opt("privateKeyPassphrase", Kind::kSecret), Opt("useOauth", Kind::kBool),
        Opt("warehouse", Kind::kString), Opt("role", Kind::kString), Opt("database", Kind::kString),
        Opt("schema", Kind::kString), Opt("authType", Kind::kAuthType),
        // Two accepted shapes; CheckSnowflake decides which fields are required.
        Nested("writeAccess",
               {Opt("writeDatabase", Kind::kString), Opt("writeSchema", Kind::kString),
                Opt("materializationWarehouse", Kind::kString)}),
        Nested("userAttributes", {Opt("role", Kind::kString), Opt("warehouse", Kind::kString)})}},
      // The endpoint of a service-account key, its token_uri, is inside the secret itself: it
      // cannot change without the secret being given again, and bigQuery has no other secret.
      {"bigQuery",
       {Req("projectId", Kind::kString), Opt("additionalProjectIds", Kind::kStringList),
        Opt("serviceAccount", Kind::kServiceAccount), Opt("useOauth", Kind::kBool),
        Nested("writeAccess",
               {Req("writeProject", Kind::kString), Req("writeDataset", Kind::kString)})}},
      // Databricks' token-or-OAuth rule is checked in CheckDatabricks.
      {"databricks",
       {Req("host", Kind::kHost).Endpoint(), Req("endpoint", Kind::kString).Endpoint(),
        Opt("token", Kind::kSecret), Opt("useOauth", Kind::kBool),
        Opt("workspaceUrl", Kind::kString).Endpoint(), Opt("catalog", Kind::kString),
        Nested("writeAccess",
               {Req("writeCatalog", Kind::kString), Req("writeSchema", Kind::kString)})}},
      {"starburst",
       WithTlsFields({Req("host", Kind::kHost).Endpoint(), Req("port", Kind::kPort).Endpoint(),
                      Req("user", Kind::kString), Req("password", Kind::kPassword),
                      Opt("catalog", Kind::kString), Opt("useTls", Kind::kBool).Default(true),
                      Nested("writeAccess", {Req("writeCatalog", Kind::kString),
                                             Req("writeSchema", Kind::kString)})}),
       TlsSwitch::kUseTls},
      {"sqlserver", SqlServerFamily(/*database_required=*/false), TlsSwitch::kByMode},
      {"azuresql", SqlServerFamily(/*database_required=*/true), TlsSwitch::kAlways},
  };
  return *specs;
}

const TypeSpec* FindType(std::string_view type) {
  for (const auto& spec : Specs()) {
    if (spec.type == type) return &spec;
  }
  return nullptr;
}

const FieldSpec* FindField(const std::vector<FieldSpec>& fields, std::string_view name) {
  for (const auto& f : fields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::size_t CodePoints(std::string_view s) {
  return static_cast<std::size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// Conservative: the drivers resolve and connect to exactly this, so anything that could smuggle
// a path, query, credential or option into a driver's connection string is refused.
bool IsHostLike(std::string_view s) {
  if (s.empty() || s.size() > 253 + 2 + 6) return false;  // name, brackets, ":port"
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7F) return false;  // controls, space, DEL, non-ASCII
    switch (c) {
      case '/':
      case '?':
      case '=':
      case '@':
      case '#':
      case ';':
      case '"':
      case '\'': return false;
      default: break;
    }
  }
  return true;
}

// A Snowflake account identifier ("acme-xy12345", "xy12345.us-east-1.aws", "org_acct") is pasted
// into the host name <account>.snowflakecomputing.com: only what a DNS label sequence may hold.
bool IsAccountLike(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// A PEM bundle is checked for shape only (at least one certificate block); the driver that uses
// it reports a bundle it cannot load as a `tls` failure.
bool IsPemCertificates(std::string_view s) {
  const auto begin = s.find("-----BEGIN CERTIFICATE-----");
  return begin != std::string_view::npos &&
         s.find("-----END CERTIFICATE-----", begin) != std::string_view::npos;
}

std::string TypeList() {
  std::string out;
  for (auto t : WarehouseTypes()) {
    if (!out.empty()) out += ", ";
    out += t;
  }
  return out;
}

// Validation state shared by one ParseDetails call.
class DetailsParser {
 public:
  DetailsParser(const TypeSpec& spec, const std::set<std::string>& kept)
      : spec_(spec), kept_(kept) {
    out_.type = std::string(spec.type);
  }

  Result<ParsedDetails> Run(const boost::json::object& details) {
    if (auto s = CheckObject(details, spec_.fields, "details.", &out_.visible); !s) {
      return std::move(s).error();
    }
    if (auto s = CheckRequired(spec_.fields, out_.visible, "details."); !s) {
      return std::move(s).error();
    }
    if (spec_.type == "snowflake") {
      if (auto s = CheckSnowflake(); !s) return std::move(s).error();
    } else if (spec_.type == "databricks") {
      if (auto s = CheckDatabricks(); !s) return std::move(s).error();
    }
    const auto* oauth = out_.visible.if_contains("useOauth");
    out_.use_oauth = oauth != nullptr && oauth->is_bool() && oauth->get_bool();
    out_.write_access = out_.visible.contains("writeAccess");
    return std::move(out_);
  }

 private:
  Error NotAField(std::string_view path) const {
    return Error::BadRequest(std::string(path) + " is not a field of a " + std::string(spec_.type) +
                             " connection");
  }

  // Checks each member of `in` in order, so the first bad value is the one reported; copies the
  // non-secret ones (JSON nulls dropped: an optional field set to null is simply absent) to `out`.
  Status CheckObject(const boost::json::object& in, const std::vector<FieldSpec>& fields,
                     const std::string& prefix, boost::json::object* out) {
    for (const auto& member : in) {
      const std::string_view key = member.key();
      const std::string path = prefix + std::string(key);
      if (prefix == "details." && key == "type") {
        (*out)["type"] = member.value();
        continue;
      }
      const FieldSpec* field = FindField(fields, key);
      if (field == nullptr) return NotAField(path);
      if (IsSecretKind(field->kind)) {
        if (auto s = CheckSecret(*field, member.value(), path); !s) return s;
        continue;
      }
      if (member.value().is_null()) continue;
      if (field->kind == Kind::kObject) {
        const auto* obj = member.value().if_object();
        if (obj == nullptr) return Error::BadRequest(path + " must be an object");
        boost::json::object nested;
        if (auto s = CheckObject(*obj, field->nested, path + ".", &nested); !s) return s;
        if (auto s = CheckRequired(field->nested, nested, path + "."); !s) return s;
        (*out)[key] = std::move(nested);
        continue;
      }
      if (auto s = CheckPlain(*field, member.value(), path); !s) return s;
      (*out)[key] = member.value();
    }
    return OkStatus();
  }

  static Status CheckPlain(const FieldSpec& field, const boost::json::value& v,
                           const std::string& path) {
    switch (field.kind) {
      case Kind::kString: {
        const auto* s = v.if_string();
        if (s == nullptr) return Error::BadRequest(path + " must be a string");
        if (CodePoints(*s) > kMaxStringChars) {
          return Error::BadRequest(path + " must be at most 4096 characters");
        }
        return OkStatus();
      }
      case Kind::kHost: {
        const auto* s = v.if_string();
        if (s == nullptr || !IsHostLike(*s)) {
          return Error::BadRequest(path + " must be a host name or IP address");
        }
        return OkStatus();
      }
      case Kind::kAccount: {
        const auto* s = v.if_string();
        if (s == nullptr || !IsAccountLike(*s)) {
          return Error::BadRequest(path +
                                   " must be a Snowflake account identifier (letters, digits, "
                                   "'-', '_' and '.')");
        }
        return OkStatus();
      }
      case Kind::kTlsMode: {
        const auto* s = v.if_string();
        if (s == nullptr || std::find(std::begin(kTlsModes), std::end(kTlsModes),
                                      std::string_view(*s)) == std::end(kTlsModes)) {
          return Error::BadRequest(path + " must be one of require, verify-ca, verify-full");
        }
        return OkStatus();
      }
      case Kind::kCaBundle: {
        const auto* s = v.if_string();
        if (s != nullptr && s->size() > kMaxKeyBytes) {
          return Error::BadRequest(path + " must be at most 64 KiB");
        }
        if (s == nullptr || !IsPemCertificates(*s)) {
          return Error::BadRequest(path +
                                   " must be PEM certificates (-----BEGIN CERTIFICATE-----)");
        }
        return OkStatus();
      }
      case Kind::kPort: {
        std::int64_t port = 0;
        if (const auto* i = v.if_int64()) {
          port = *i;
        } else if (const auto* u = v.if_uint64()) {
          port = *u > 65535 ? 0 : static_cast<std::int64_t>(*u);
        }
        if (port < 1 || port > 65535) {
          return Error::BadRequest(path + " must be an integer from 1 to 65535");
        }
        return OkStatus();
      }
      case Kind::kBool:
        if (!v.is_bool()) return Error::BadRequest(path + " must be a boolean");
        return OkStatus();
      case Kind::kStringList: {
        const auto* arr = v.if_array();
        if (arr == nullptr) return Error::BadRequest(path + " must be an array of strings");
        for (std::size_t i = 0; i < arr->size(); ++i) {
          const std::string item = path + "[" + std::to_string(i) + "]";
          const auto* s = (*arr)[i].if_string();
          if (s == nullptr) return Error::BadRequest(item + " must be a string");
          if (CodePoints(*s) > kMaxStringChars) {
            return Error::BadRequest(item + " must be at most 4096 characters");
          }
        }
        return OkStatus();
      }
      case Kind::kAuthType: {
        const auto* s = v.if_string();
        if (s == nullptr || (*s != "basic-auth" && *s != "key-pair" && *s != "oauth")) {
          return Error::BadRequest(path + " must be one of basic-auth, key-pair, oauth");
        }
        return OkStatus();
      }
      default: return Error::Internal("unexpected field kind");
    }
  }

  // Records a secret change. Messages never quote the value.
  Status CheckSecret(const FieldSpec& field, const boost::json::value& v, const std::string& path) {
    const std::string name(field.name);
    if (v.is_null()) {
      out_.secret_changes[name] = std::nullopt;
      return OkStatus();
    }
    const boost::json::string* s = v.if_string();
    if (field.kind == Kind::kPassword) {
      const std::string shape =
          path + " must be a string or {\"type\": \"plain\", \"value\": string}";
      if (const auto* obj = v.if_object()) {
        const auto* type = obj->if_contains("type");
        const auto* value = obj->if_contains("value");
        if (obj->size() != 2 || type == nullptr || value == nullptr || !type->is_string() ||
            type->get_string() != "plain" || !value->is_string()) {
          return Error::BadRequest(shape);
        }
        s = value->if_string();
      } else if (s == nullptr) {
        return Error::BadRequest(shape);
      }
    }
    if (field.kind == Kind::kServiceAccount) {
      const std::string message = path + " must be a service-account key as a JSON string";
      if (s == nullptr || s->size() > kMaxKeyBytes) return Error::BadRequest(message);
      boost::system::error_code ec;
      boost::json::value key = boost::json::parse(*s, ec);
      if (ec || !key.is_object()) return Error::BadRequest(message);
    } else if (s == nullptr) {
      return Error::BadRequest(path + " must be a string or null");
    } else if (field.kind == Kind::kKeySecret) {
      if (s->size() > kMaxKeyBytes) return Error::BadRequest(path + " must be at most 64 KiB");
    } else if (CodePoints(*s) > kMaxStringChars) {
      return Error::BadRequest(path + " must be at most 4096 characters");
    }
    out_.secret_changes[name] = std::string(*s);
    return OkStatus();
  }

  // A secret counts as set when the request gives it a value, or leaves a stored one untouched.
  bool SecretSet(std::string_view field) const {
    auto it = out_.secret_changes.find(std::string(field));
    if (it != out_.secret_changes.end()) return it->second.has_value();
    return kept_.count(std::string(field)) > 0;
  }

  bool SecretMentioned(std::string_view field) const {
    return out_.secret_changes.count(std::string(field)) > 0;
  }

  bool Has(std::string_view field) const { return out_.visible.contains(field); }

  Status CheckRequired(const std::vector<FieldSpec>& fields, const boost::json::object& present,
                       const std::string& prefix) const {
    for (const auto& f : fields) {
      if (!f.required) continue;
      const bool set = IsSecretKind(f.kind) ? SecretSet(f.name) : present.contains(f.name);
      if (!set) return Error::BadRequest(prefix + std::string(f.name) + " is required");
    }
    return OkStatus();
  }

  bool OauthOn() const {
    const auto* v = out_.visible.if_contains("useOauth");
    return v != nullptr && v->is_bool() && v->get_bool();
  }

  // Among the logins in `set` (contract: exactly one), the one to keep is the one authType
  // names, else one the request itself sends, else the first; the message asks the client to
  // drop the other explicitly rather than guessing which credential it meant to retire.
  Status OneLogin(const std::vector<std::string_view>& set, std::string_view preferred) const {
    if (set.size() <= 1) return OkStatus();
    std::string_view keep = set.front();
    if (std::find(set.begin(), set.end(), preferred) != set.end()) {
      keep = preferred;
    } else {
      for (auto login : set) {
        if (login == "useOauth" || SecretMentioned(login)) {
          keep = login;
          break;
        }
      }
    }
    std::string_view drop = set.front() == keep ? set[1] : set.front();
    std::string message = "details." + std::string(drop) + " conflicts with details." +
                          std::string(keep) + " (a " + std::string(spec_.type) +
                          " connection has one login); ";
    if (drop == "useOauth") {
      message += "remove \"useOauth\" or set it to false";
    } else {
      message += "send \"" + std::string(drop) + "\": null to drop it";
    }
    return Error::BadRequest(std::move(message));
  }

  Status CheckSnowflake() const {
    if (!Has("account") && !Has("host")) {
      return Error::BadRequest("details.account or details.host is required");
    }
    std::string_view auth_type;
    if (const auto* a = out_.visible.if_contains("authType")) auth_type = a->get_string();

    std::vector<std::string_view> logins;
    if (SecretSet("password")) logins.push_back("password");
    if (SecretSet("privateKey")) logins.push_back("privateKey");
    if (OauthOn()) logins.push_back("useOauth");
    if (logins.empty()) {
      if (auth_type == "basic-auth") return Error::BadRequest("details.password is required");
      if (auth_type == "key-pair") return Error::BadRequest("details.privateKey is required");
      if (auth_type == "oauth") {
        return Error::BadRequest("details.useOauth must be true when details.authType is oauth");
      }
      return Error::BadRequest(
          "details.password is required: a snowflake connection needs one login, user and "
          "password, user and privateKey, or useOauth: true");
    }
    std::string_view preferred = auth_type == "basic-auth" ? "password"
                                 : auth_type == "key-pair" ? "privateKey"
                                 : auth_type == "oauth"    ? "useOauth"
                                                           : "";
    if (auto s = OneLogin(logins, preferred); !s) return s;

    const std::string_view login = logins.front();
    if (!auth_type.empty() && login != preferred) {
      static constexpr std::array<std::pair<std::string_view, std::string_view>, 3> kDescribe{{
          {"password", "user and password"},
          {"privateKey", "user and privateKey"},
          {"useOauth", "useOauth: true"},
      }};
      std::string_view described;
      for (const auto& [l, d] : kDescribe) {
        if (l == login) described = d;
      }
      return Error::BadRequest("details.authType is " + std::string(auth_type) +
                               " but the login is " + std::string(described));
    }
    if (login != "useOauth" && !Has("user")) return Error::BadRequest("details.user is required");
    if (SecretSet("privateKeyPassphrase") && !SecretSet("privateKey")) {
      return Error::BadRequest(
          "details.privateKeyPassphrase needs details.privateKey; send \"privateKeyPassphrase\": "
          "null to drop it");
    }
    if (const auto* wa = out_.visible.if_contains("writeAccess")) {
      const auto& w = wa->get_object();
      const bool location = w.contains("writeDatabase") || w.contains("writeSchema");
      if (location || !w.contains("materializationWarehouse")) {
        for (std::string_view f : {"writeDatabase", "writeSchema"}) {
          if (!w.contains(f)) {
            return Error::BadRequest("details.writeAccess." + std::string(f) + " is required");
          }
        }
      }
    }
    return OkStatus();
  }

  Status CheckDatabricks() const {
    std::vector<std::string_view> logins;
    if (SecretSet("token")) logins.push_back("token");
    if (OauthOn()) logins.push_back("useOauth");
    if (logins.empty()) {
      return Error::BadRequest(
          "details.token is required: a databricks connection needs a token or useOauth: true");
    }
    return OneLogin(logins, "");
  }

  const TypeSpec& spec_;
  const std::set<std::string>& kept_;
  ParsedDetails out_;
};

bool AsciiIEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// The value of `field` in `details`, or what its absence means.
const boost::json::value& ValueOrFallback(const boost::json::object& details,
                                          const FieldSpec& field) {
  const auto* v = details.if_contains(field.name);
  return v != nullptr ? *v : field.fallback;
}

bool TlsOn(const TypeSpec& spec, const boost::json::object& details) {
  switch (spec.tls) {
    case TlsSwitch::kNone: return false;
    case TlsSwitch::kAlways: return true;
    case TlsSwitch::kByMode: return details.contains("tlsMode");
    case TlsSwitch::kUseTls: {
      const auto& v = ValueOrFallback(details, *FindField(spec.fields, "useTls"));
      return v.is_bool() && v.get_bool();
    }
  }
  return false;
}

// How strictly a connection with TLS on verifies the server: the index of its tlsMode in
// kTlsModes (weakest first); no tlsMode is the legacy `require`.
std::ptrdiff_t TlsRank(const boost::json::object& details) {
  std::string_view mode = kLegacyTlsMode;
  if (const auto* m = details.if_contains("tlsMode"); m != nullptr && m->is_string()) {
    mode = m->get_string();
  }
  return std::find(std::begin(kTlsModes), std::end(kTlsModes), mode) - std::begin(kTlsModes);
}

bool SameEndpointValue(const FieldSpec& field, const boost::json::object& a,
                       const boost::json::object& b) {
  const auto& x = ValueOrFallback(a, field);
  const auto& y = ValueOrFallback(b, field);
  // Host names and account identifiers are case-insensitive (DNS).
  if ((field.kind == Kind::kHost || field.kind == Kind::kAccount) && x.is_string() &&
      y.is_string()) {
    return AsciiIEquals(x.get_string(), y.get_string());
  }
  return x == y;
}

// The first field whose change moves where the secrets of a `spec` connection would go, from
// `stored` to `next`: an endpoint field, or a weaker TLS setting (contract section 4): TLS turned
// off, a lower tlsMode, or another tlsCaCert while certificates are verified. Turning TLS on, a
// stricter mode, or a CA on a connection that verified nothing (`require`) only narrow what the
// connection accepts, and are no change in this sense.
std::optional<std::string_view> ChangedEndpointField(const TypeSpec& spec,
                                                     const boost::json::object& stored,
                                                     const boost::json::object& next) {
  for (const auto& field : spec.fields) {
    if (field.endpoint && !SameEndpointValue(field, stored, next)) return field.name;
  }
  const bool was_on = TlsOn(spec, stored);
  const bool is_on = TlsOn(spec, next);
  if (was_on && !is_on) return spec.tls == TlsSwitch::kByMode ? "tlsMode" : "useTls";
  if (was_on && is_on) {
    const auto was = TlsRank(stored);
    if (TlsRank(next) < was) return "tlsMode";
    const auto* ca_was = stored.if_contains("tlsCaCert");
    const auto* ca_is = next.if_contains("tlsCaCert");
    const bool same_ca =
        ca_was == nullptr ? ca_is == nullptr : ca_is != nullptr && *ca_was == *ca_is;
    if (was > 0 && !same_ca) return "tlsCaCert";
  }
  return std::nullopt;
}

}  // namespace

const std::vector<std::string_view>& WarehouseTypes() {
  static const std::vector<std::string_view>* const types = [] {
    auto* v = new std::vector<std::string_view>;
    for (const auto& spec : Specs()) v->push_back(spec.type);
    return v;
  }();
  return *types;
}

bool IsWarehouseType(std::string_view type) { return FindType(type) != nullptr; }

bool IsSecretField(std::string_view type, std::string_view field) {
  const TypeSpec* spec = FindType(type);
  if (spec == nullptr) return false;
  const FieldSpec* f = FindField(spec->fields, field);
  return f != nullptr && IsSecretKind(f->kind);
}

Result<ParsedDetails> ParseDetails(const boost::json::value& details,
                                   const std::set<std::string>& kept_secrets) {
  const auto* obj = details.if_object();
  if (obj == nullptr) return Error::BadRequest("details must be an object");
  const auto* type = obj->if_contains("type");
  if (type == nullptr || type->is_null()) return Error::BadRequest("details.type is required");
  const auto* name = type->if_string();
  const TypeSpec* spec = name != nullptr ? FindType(*name) : nullptr;
  if (spec == nullptr) {
    return Error::BadRequest("details.type must be one of " + TypeList());
  }
  DetailsParser parser(*spec, kept_secrets);
  return parser.Run(*obj);
}

void KeepOnReplace(std::string_view type, const boost::json::object& stored,
                   boost::json::object* body_details) {
  const TypeSpec* spec = FindType(type);
  if (spec == nullptr) return;
  for (const auto& field : spec->fields) {
    if (!field.kept_by_put || body_details->contains(field.name)) continue;
    if (const auto* v = stored.if_contains(field.name)) (*body_details)[field.name] = *v;
  }
}

Status SettleDetails(const boost::json::object* stored, bool tls_mode_mentioned,
                     const std::set<std::string>& kept, ParsedDetails* next) {
  const TypeSpec* spec = FindType(next->type);
  if (spec == nullptr) return Error::Internal("settling details of an unknown type");
  // TLS default: verify-full whenever TLS is on and no mode is given, except on a row stored
  // before tlsMode existed that keeps TLS on without mentioning the mode: it keeps `require`.
  if (TlsOn(*spec, next->visible) && !next->visible.contains("tlsMode")) {
    const bool legacy = stored != nullptr && !tls_mode_mentioned && TlsOn(*spec, *stored) &&
                        !stored->contains("tlsMode");
    if (!legacy) next->visible["tlsMode"] = kDefaultTlsMode;
  }
  if (stored == nullptr || kept.empty()) return OkStatus();
  const auto changed = ChangedEndpointField(*spec, *stored, next->visible);
  if (!changed) return OkStatus();
  for (const auto& field : spec->fields) {
    if (IsSecretKind(field.kind) && kept.count(std::string(field.name)) > 0) {
      return Error::BadRequest("details." + std::string(field.name) +
                               " must be given again when details." + std::string(*changed) +
                               " changes");
    }
  }
  return OkStatus();
}

}  // namespace connreg::domain
