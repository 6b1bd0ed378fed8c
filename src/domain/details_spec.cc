#include "domain/details_spec.h"

#include <algorithm>

namespace connreg::domain {

bool IsSecretKind(Kind k) {
  return k == Kind::kPassword || k == Kind::kSecret || k == Kind::kKeySecret ||
         k == Kind::kServiceAccount;
}

FieldSpec Req(std::string_view name, Kind kind) { return {name, kind, true}; }
FieldSpec Opt(std::string_view name, Kind kind) { return {name, kind, false}; }
FieldSpec Nested(std::string_view name, std::vector<FieldSpec> fields) {
  return {name, Kind::kObject, false, std::move(fields)};
}
FieldSpec Choice(std::string_view name, std::vector<std::string_view> choices) {
  FieldSpec f = Opt(name, Kind::kChoice);
  f.choices = std::move(choices);
  return f;
}

std::vector<FieldSpec> WithTlsFields(std::vector<FieldSpec> fields) {
  FieldSpec mode = Opt("tlsMode", Kind::kTlsMode);
  FieldSpec ca = Opt("tlsCaCert", Kind::kCaBundle);
  mode.kept_by_put = ca.kept_by_put = true;
  fields.push_back(std::move(mode));
  fields.push_back(std::move(ca));
  return fields;
}

std::string_view DetailsView::String(std::string_view field) const {
  const auto* v = visible_.if_contains(field);
  return v != nullptr && v->is_string() ? std::string_view(v->get_string()) : std::string_view();
}

bool DetailsView::SecretSet(std::string_view field) const {
  auto it = secret_changes_.find(std::string(field));
  if (it != secret_changes_.end()) return it->second.has_value();
  return kept_.count(std::string(field)) > 0;
}

bool DetailsView::SecretMentioned(std::string_view field) const {
  return secret_changes_.count(std::string(field)) > 0;
}

bool DetailsView::OauthOn() const {
  const auto* v = visible_.if_contains("useOauth");
  return v != nullptr && v->is_bool() && v->get_bool();
}

Status DetailsView::OneLogin(const std::vector<std::string_view>& set,
                             std::string_view preferred) const {
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
                        std::string(keep) + " (a " + std::string(type_) +
                        " connection has one login); ";
  if (drop == "useOauth") {
    message += "remove \"useOauth\" or set it to false";
  } else {
    message += "send \"" + std::string(drop) + "\": null to drop it";
  }
  return Error::BadRequest(std::move(message));
}

TypeCatalog::TypeCatalog(std::vector<TypeSpec> specs) : specs_(std::move(specs)) {
  for (const auto& spec : specs_) types_.push_back(spec.type);
}

const TypeSpec* TypeCatalog::Find(std::string_view type) const {
  for (const auto& spec : specs_) {
    if (spec.type == type) return &spec;
  }
  return nullptr;
}

bool TypeCatalog::IsSecretField(std::string_view type, std::string_view field) const {
  const TypeSpec* spec = Find(type);
  if (spec == nullptr) return false;
  const FieldSpec* f = FindField(spec->fields, field);
  return f != nullptr && IsSecretKind(f->kind);
}

const FieldSpec* FindField(const std::vector<FieldSpec>& fields, std::string_view name) {
  for (const auto& f : fields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

}  // namespace connreg::domain
