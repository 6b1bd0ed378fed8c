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

// Plain strings are limited in characters (code points); the key material fields, which are PEM
// or JSON blobs, are limited in bytes.
constexpr std::size_t kMaxStringChars = 4096;
constexpr std::size_t kMaxKeyBytes = std::size_t{64} * 1024;

constexpr std::string_view kTlsModes[] = {"require", "verify-ca", "verify-full"};  // weak first
constexpr std::string_view kDefaultTlsMode = "verify-full";
// What a connection with TLS on and no tlsMode gets: rows stored before tlsMode existed.
constexpr std::string_view kLegacyTlsMode = "require";

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

std::string Joined(const std::vector<std::string_view>& items) {
  std::string out;
  for (auto item : items) {
    if (!out.empty()) out += ", ";
    out += item;
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
    if (spec_.rule != nullptr) {
      if (auto s = spec_.rule(View()); !s) return std::move(s).error();
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
      case Kind::kChoice: {
        const auto* s = v.if_string();
        if (s == nullptr || std::find(field.choices.begin(), field.choices.end(),
                                      std::string_view(*s)) == field.choices.end()) {
          return Error::BadRequest(path + " must be one of " + Joined(field.choices));
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

  DetailsView View() const {
    return DetailsView(spec_.type, out_.visible, out_.secret_changes, kept_);
  }

  Status CheckRequired(const std::vector<FieldSpec>& fields, const boost::json::object& present,
                       const std::string& prefix) const {
    for (const auto& f : fields) {
      if (!f.required) continue;
      const bool set = IsSecretKind(f.kind) ? View().SecretSet(f.name) : present.contains(f.name);
      if (!set) return Error::BadRequest(prefix + std::string(f.name) + " is required");
    }
    return OkStatus();
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

Result<ParsedDetails> ParseDetails(const TypeCatalog& types, const boost::json::value& details,
                                   const std::set<std::string>& kept_secrets) {
  const auto* obj = details.if_object();
  if (obj == nullptr) return Error::BadRequest("details must be an object");
  const auto* type = obj->if_contains("type");
  if (type == nullptr || type->is_null()) return Error::BadRequest("details.type is required");
  const auto* name = type->if_string();
  const TypeSpec* spec = name != nullptr ? types.Find(*name) : nullptr;
  if (spec == nullptr) {
    return Error::BadRequest("details.type must be one of " + Joined(types.types()));
  }
  DetailsParser parser(*spec, kept_secrets);
  return parser.Run(*obj);
}

void KeepOnReplace(const TypeCatalog& types, std::string_view type,
                   const boost::json::object& stored, boost::json::object* body_details) {
  const TypeSpec* spec = types.Find(type);
  if (spec == nullptr) return;
  for (const auto& field : spec->fields) {
    if (!field.kept_by_put || body_details->contains(field.name)) continue;
    if (const auto* v = stored.if_contains(field.name)) (*body_details)[field.name] = *v;
  }
}

Status SettleDetails(const TypeCatalog& types, const boost::json::object* stored,
                     bool tls_mode_mentioned, const std::set<std::string>& kept,
                     ParsedDetails* next) {
  const TypeSpec* spec = types.Find(next->type);
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
