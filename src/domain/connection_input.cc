#include "domain/connection_input.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

#include <boost/json/serialize.hpp>

#include "domain/details.h"
#include "domain/names.h"

namespace connreg::domain {
namespace {

constexpr std::size_t kMaxNameChars = 255;
constexpr std::size_t kMaxDescriptionBytes = std::size_t{16} * 1024;
constexpr std::int64_t kMaxTimeoutSecs = 86400;

enum class Verb { kCreate, kReplace, kMerge };

// The top-level fields of a request body. For each optional field, `has_x` says whether the body
// mentions it; JSON null counts as mentioned with no value (PATCH: back to the default).
struct BodyFields {
  const boost::json::value* details = nullptr;
  std::optional<std::string> name;
  bool has_description = false;
  std::optional<boost::json::object> description;
  bool has_timeout = false;
  std::optional<int> timeout_secs;
  bool has_friendly_names = false;
  bool use_friendly_names = true;
  bool restore = false;
};

// Reads and checks the top-level fields in the body's order, so that the first bad value is the
// one reported. `details` is only located here; the callers validate it.
Result<BodyFields> ParseBodyFields(const boost::json::value& body, Verb verb) {
  const auto* obj = body.if_object();
  if (obj == nullptr) return Error::BadRequest("the request body must be a JSON object");
  BodyFields out;
  for (const auto& member : *obj) {
    const std::string_view key = member.key();
    const boost::json::value& v = member.value();
    if (key == "details") {
      out.details = &v;
    } else if (key == "name") {
      auto name = ParseName(v, "name", kMaxNameChars);
      if (!name) return std::move(name).error();
      out.name = std::move(*name);
    } else if (key == "description") {
      out.has_description = true;
      if (v.is_null()) continue;
      const auto* d = v.if_object();
      if (d == nullptr) return Error::BadRequest("description must be a JSON object");
      if (boost::json::serialize(*d).size() > kMaxDescriptionBytes) {
        return Error::BadRequest("description must be at most 16 KiB serialized");
      }
      out.description = *d;
    } else if (key == "timeoutSecs") {
      out.has_timeout = true;
      if (v.is_null()) continue;
      std::int64_t t = 0;
      if (const auto* i = v.if_int64()) {
        t = *i;
      } else if (const auto* u = v.if_uint64()) {
        t = *u > static_cast<std::uint64_t>(kMaxTimeoutSecs) ? 0 : static_cast<std::int64_t>(*u);
      }
      if (t < 1 || t > kMaxTimeoutSecs) {
        return Error::BadRequest("timeoutSecs must be an integer from 1 to 86400");
      }
      out.timeout_secs = static_cast<int>(t);
    } else if (key == "useFriendlyNames") {
      out.has_friendly_names = true;
      if (v.is_null()) continue;
      if (!v.is_bool()) return Error::BadRequest("useFriendlyNames must be a boolean");
      out.use_friendly_names = v.get_bool();
    } else if (key == "restore" && verb == Verb::kReplace) {
      if (v.is_null()) continue;
      if (!v.is_bool()) return Error::BadRequest("restore must be a boolean");
      out.restore = v.get_bool();
    } else {
      return Error::BadRequest(std::string(key) + " is not a field of this request");
    }
  }
  if (verb != Verb::kMerge) {
    if (out.details == nullptr || out.details->is_null()) {
      return Error::BadRequest("details is required");
    }
    if (!out.name) return Error::BadRequest("name is required");
  }
  return out;
}

// Secret fields of `type` that `stored` has and `details` does not mention: a PUT or PATCH of the
// same type keeps them. A type change keeps none, since the old credentials mean nothing to the
// new warehouse.
std::set<std::string> KeptSecrets(const TypeCatalog& types, const Connection& stored,
                                  std::string_view type, const boost::json::object& details) {
  std::set<std::string> kept;
  if (type != stored.type) return kept;
  for (const auto& [field, secret] : stored.secrets) {
    if (types.IsSecretField(type, field) && !details.contains(field)) kept.insert(field);
  }
  return kept;
}

std::string_view DetailsType(const boost::json::object& details) {
  const auto* t = details.if_contains("type");
  if (t == nullptr) return {};
  const auto* s = t->if_string();
  return s == nullptr ? std::string_view() : std::string_view(*s);
}

// The secrets of the next state: the kept ones unchanged (same ciphertext, same updated_at), the
// ones the request sets sealed afresh; cleared ones are simply absent.
std::map<std::string, StoredSecret> NextSecrets(const Connection* stored,
                                                const std::set<std::string>& kept,
                                                const ParsedDetails& parsed,
                                                std::string_view connection_id, TimeMs now,
                                                const SecretSealer& sealer) {
  std::map<std::string, StoredSecret> secrets;
  if (stored != nullptr) {
    for (const auto& field : kept) {
      if (auto it = stored->secrets.find(field); it != stored->secrets.end()) {
        secrets.emplace(field, it->second);
      }
    }
  }
  for (const auto& [field, value] : parsed.secret_changes) {
    if (value) secrets[field] = sealer.Seal(connection_id, field, *value, now);
  }
  return secrets;
}

void ApplyDetails(ParsedDetails&& parsed, std::map<std::string, StoredSecret>&& secrets,
                  Connection* c) {
  c->type = std::move(parsed.type);
  c->use_oauth = parsed.use_oauth;
  c->write_access = parsed.write_access;
  c->details = std::move(parsed.visible);
  c->secrets = std::move(secrets);
}

// The bookkeeping shared by PUT and PATCH: identity, creation and activity stay, the change is
// attributed to `actor` at `now`.
Connection NextVersion(const Connection& stored, const Actor& actor, TimeMs now) {
  Connection next = stored;
  next.updated_by = actor.member_id;
  next.updated_at = now;
  next.version = stored.version + 1;
  return next;
}

}  // namespace

Result<Connection> BuildNewConnection(const TypeCatalog& types, const boost::json::value& body,
                                      const Actor& actor, TimeMs now, std::string connection_id,
                                      const SecretSealer& sealer) {
  auto fields = ParseBodyFields(body, Verb::kCreate);
  if (!fields) return std::move(fields).error();
  auto parsed = ParseDetails(types, *fields->details);
  if (!parsed) return std::move(parsed).error();
  if (auto s = SettleDetails(types, nullptr, false, {}, &*parsed); !s) return std::move(s).error();

  Connection c;
  c.organization_id = actor.organization_id;
  c.connection_id = std::move(connection_id);
  c.name = std::move(*fields->name);
  c.is_sample = false;
  c.is_archived = false;
  c.use_friendly_names = fields->use_friendly_names;
  c.timeout_secs = fields->timeout_secs;
  c.created_by = actor.member_id;
  c.updated_by = actor.member_id;
  c.created_at = now;
  c.updated_at = now;
  c.last_active_at = now;
  c.version = 1;
  c.description = std::move(fields->description);
  auto secrets = NextSecrets(nullptr, {}, *parsed, c.connection_id, now, sealer);
  ApplyDetails(std::move(*parsed), std::move(secrets), &c);
  return c;
}

Result<Connection> BuildReplacement(const TypeCatalog& types, const Connection& stored,
                                    const boost::json::value& body, const Actor& actor, TimeMs now,
                                    const SecretSealer& sealer, bool* restore) {
  auto fields = ParseBodyFields(body, Verb::kReplace);
  if (!fields) return std::move(fields).error();
  const auto* body_details = fields->details->if_object();
  if (body_details == nullptr) return Error::BadRequest("details must be an object");
  const std::string_view type = DetailsType(*body_details);
  const std::set<std::string> kept = KeptSecrets(types, stored, type, *body_details);
  const boost::json::object* prior = type == stored.type ? &stored.details : nullptr;
  boost::json::object details = *body_details;
  if (prior != nullptr) KeepOnReplace(types, type, *prior, &details);
  auto parsed = ParseDetails(types, boost::json::value(std::move(details)), kept);
  if (!parsed) return std::move(parsed).error();
  if (auto s = SettleDetails(types, prior, body_details->contains("tlsMode"), kept, &*parsed); !s) {
    return std::move(s).error();
  }

  Connection next = NextVersion(stored, actor, now);
  next.name = std::move(*fields->name);
  // PUT replaces the object: what the body leaves out returns to its default.
  next.description = std::move(fields->description);
  next.timeout_secs = fields->timeout_secs;
  next.use_friendly_names = fields->use_friendly_names;
  auto secrets = NextSecrets(&stored, kept, *parsed, stored.connection_id, now, sealer);
  ApplyDetails(std::move(*parsed), std::move(secrets), &next);
  if (restore != nullptr) *restore = fields->restore;
  return next;
}

Result<Connection> BuildMerge(const TypeCatalog& types, const Connection& stored,
                              const boost::json::value& body, const Actor& actor, TimeMs now,
                              const SecretSealer& sealer) {
  auto fields = ParseBodyFields(body, Verb::kMerge);
  if (!fields) return std::move(fields).error();

  Connection next = NextVersion(stored, actor, now);
  if (fields->name) next.name = std::move(*fields->name);
  if (fields->has_description) next.description = std::move(fields->description);
  if (fields->has_timeout) next.timeout_secs = fields->timeout_secs;
  if (fields->has_friendly_names) next.use_friendly_names = fields->use_friendly_names;

  if (fields->details != nullptr) {
    const auto* patch = fields->details->if_object();
    if (patch == nullptr) return Error::BadRequest("details must be an object");
    std::string type(stored.type);
    if (const auto* t = patch->if_contains("type"); t != nullptr && t->is_string()) {
      type = std::string(t->get_string());
    }
    // Field by field over the stored (secret-free) details. Secrets pass through as given, null
    // included, so that ParseDetails records a null as "clear"; a null anywhere else removes the
    // field. Nested objects (writeAccess, userAttributes) are replaced whole.
    boost::json::object merged = stored.details;
    for (const auto& member : *patch) {
      const std::string_view key = member.key();
      if (member.value().is_null() && !types.IsSecretField(type, key)) {
        merged.erase(key);
      } else {
        merged[key] = member.value();
      }
    }
    const std::set<std::string> kept = KeptSecrets(types, stored, type, *patch);
    auto parsed = ParseDetails(types, boost::json::value(std::move(merged)), kept);
    if (!parsed) return std::move(parsed).error();
    const boost::json::object* prior = type == stored.type ? &stored.details : nullptr;
    if (auto s = SettleDetails(types, prior, patch->contains("tlsMode"), kept, &*parsed); !s) {
      return std::move(s).error();
    }
    auto secrets = NextSecrets(&stored, kept, *parsed, stored.connection_id, now, sealer);
    ApplyDetails(std::move(*parsed), std::move(secrets), &next);
  }
  return next;
}

}  // namespace connreg::domain
