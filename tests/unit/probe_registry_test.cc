// The registry of driver families (probe/drivers/registry.h) is the one table of warehouse types;
// docs/openapi.json, as the server serves it (embedded at build time), must say what it says:
// the same types in the same order wherever the document lists them, and for each type a
// `details` schema with exactly the table's fields, its required ones, its secrets, and the JSON
// shape of each field's kind, and an example that the validation accepts. A new type or field that
// the document lacks fails here, naming it.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "api/docs.h"
#include "domain/details.h"
#include "domain/details_spec.h"
#include "probe/drivers/registry.h"

namespace connreg::probe {
namespace {

using domain::FieldSpec;
using domain::Kind;

const boost::json::object& Document() {
  static const boost::json::value* const doc = [] {
    for (const auto& f : api::EmbeddedFiles()) {
      if (f.name == "openapi.json") return new boost::json::value(boost::json::parse(f.bytes()));
    }
    return new boost::json::value(nullptr);
  }();
  return doc->as_object();
}

const boost::json::object& Schemas() {
  return Document().at("components").at("schemas").as_object();
}

// The schema a "#/components/schemas/X" reference names.
const boost::json::object& Resolve(std::string_view ref) {
  constexpr std::string_view kPrefix = "#/components/schemas/";
  EXPECT_EQ(ref.substr(0, kPrefix.size()), kPrefix);
  return Schemas().at(ref.substr(kPrefix.size())).as_object();
}

std::vector<std::string> Strings(const boost::json::value& array) {
  std::vector<std::string> out;
  for (const auto& v : array.as_array()) out.emplace_back(v.as_string());
  return out;
}

std::vector<std::string> CatalogTypes() {
  return {Catalog().types().begin(), Catalog().types().end()};
}

std::set<std::string> TypesOf(const boost::json::object& schema) {
  const auto* t = schema.if_contains("type");
  if (t == nullptr) return {};
  if (t->is_string()) return {std::string(t->as_string())};
  auto list = Strings(*t);
  return {list.begin(), list.end()};
}

// The JSON shape `field`'s kind promises, against its property schema.
void ExpectFieldShape(const FieldSpec& field, const boost::json::object& property,
                      const std::string& path) {
  SCOPED_TRACE(path + ": " + boost::json::serialize(property));
  auto max_length = [&](std::int64_t n) {
    ASSERT_TRUE(property.contains("maxLength"));
    EXPECT_EQ(property.at("maxLength").to_number<std::int64_t>(), n);
  };
  switch (field.kind) {
    case Kind::kPassword:
      EXPECT_EQ(property.at("$ref").as_string(), "#/components/schemas/Password");
      return;
    case Kind::kSecret:
    case Kind::kKeySecret:
    case Kind::kServiceAccount:
      EXPECT_EQ(TypesOf(property), (std::set<std::string>{"string", "null"}));
      max_length(field.kind == Kind::kSecret ? 4096 : 65536);
      return;
    case Kind::kString:
      EXPECT_EQ(TypesOf(property), std::set<std::string>{"string"});
      max_length(4096);
      return;
    case Kind::kHost:
    case Kind::kAccount:
      EXPECT_EQ(TypesOf(property), std::set<std::string>{"string"});
      EXPECT_TRUE(property.contains("pattern"));
      return;
    case Kind::kCaBundle:
      EXPECT_EQ(TypesOf(property), std::set<std::string>{"string"});
      max_length(65536);
      return;
    case Kind::kPort:
      EXPECT_EQ(TypesOf(property), std::set<std::string>{"integer"});
      EXPECT_EQ(property.at("minimum").to_number<int>(), 1);
      EXPECT_EQ(property.at("maximum").to_number<int>(), 65535);
      return;
    case Kind::kBool: EXPECT_EQ(TypesOf(property), std::set<std::string>{"boolean"}); return;
    case Kind::kStringList:
      EXPECT_EQ(TypesOf(property), std::set<std::string>{"array"});
      EXPECT_EQ(TypesOf(property.at("items").as_object()), std::set<std::string>{"string"});
      return;
    case Kind::kChoice:
      EXPECT_EQ(Strings(property.at("enum")),
                std::vector<std::string>(field.choices.begin(), field.choices.end()));
      return;
    case Kind::kTlsMode:
      EXPECT_EQ(Strings(property.at("enum")),
                (std::vector<std::string>{"require", "verify-ca", "verify-full"}));
      return;
    case Kind::kObject: break;
  }
  EXPECT_EQ(TypesOf(property), std::set<std::string>{"object"});
  EXPECT_EQ(property.at("additionalProperties"), false);
}

// `schema` has exactly the properties of `fields` (plus `type` at the top), the required ones as
// required, each with its kind's shape; nested objects alike.
void ExpectFields(const std::vector<FieldSpec>& fields, const boost::json::object& schema,
                  const std::string& prefix, bool top) {
  std::set<std::string> expected_names;
  std::set<std::string> expected_required;
  if (top) expected_names = expected_required = {"type"};
  for (const auto& f : fields) {
    expected_names.emplace(f.name);
    if (f.required) expected_required.emplace(f.name);
  }
  const auto& properties = schema.at("properties").as_object();
  std::set<std::string> names;
  for (const auto& p : properties) names.emplace(p.key());
  EXPECT_EQ(names, expected_names) << prefix << " properties";
  std::set<std::string> required;
  if (const auto* r = schema.if_contains("required")) {
    auto list = Strings(*r);
    required = {list.begin(), list.end()};
  }
  EXPECT_EQ(required, expected_required) << prefix << " required";
  for (const auto& f : fields) {
    const auto* property = properties.if_contains(f.name);
    if (property == nullptr) continue;  // reported above
    const std::string path = prefix + std::string(f.name);
    ExpectFieldShape(f, property->as_object(), path);
    if (f.kind == Kind::kObject) ExpectFields(f.nested, property->as_object(), path + ".", false);
  }
}

TEST(ProbeRegistry, EveryTypeHasADriverAndOneTable) {
  std::set<std::string_view> seen;
  ASSERT_FALSE(Registry().empty());
  for (const auto& t : Registry()) {
    EXPECT_NE(t.driver, nullptr) << t.spec.type;
    EXPECT_TRUE(seen.insert(t.spec.type).second) << t.spec.type << " is registered twice";
    EXPECT_EQ(FindDriver(t.spec.type), t.driver) << t.spec.type;
    EXPECT_EQ(Catalog().Find(t.spec.type)->fields.size(), t.spec.fields.size()) << t.spec.type;
  }
  EXPECT_EQ(FindDriver("no-such-type"), nullptr);
}

TEST(ProbeRegistry, OpenApiListsTheRegisteredTypesInTheirOrder) {
  const auto& mapping =
      Schemas().at("ConnectionDetails").at("discriminator").at("mapping").as_object();
  std::vector<std::string> mapped;
  for (const auto& m : mapping) mapped.emplace_back(m.key());
  EXPECT_EQ(mapped, CatalogTypes()) << "ConnectionDetails.discriminator.mapping";

  const auto& connection = Schemas().at("Connection").at("properties").as_object();
  EXPECT_EQ(Strings(connection.at("type").at("enum")), CatalogTypes()) << "Connection.type";
  EXPECT_EQ(Strings(connection.at("details").at("properties").at("type").at("enum")),
            CatalogTypes())
      << "Connection.details.type";
  EXPECT_EQ(
      Strings(Document().at("components").at("parameters").at("type").at("schema").at("enum")),
      CatalogTypes())
      << "the type query parameter";

  // The stored details never show a secret field of any type.
  std::set<std::string> secrets;
  for (const auto& spec : Catalog().specs()) {
    for (const auto& f : spec.fields) {
      if (domain::IsSecretKind(f.kind)) secrets.emplace(f.name);
    }
  }
  auto hidden = Strings(connection.at("details").at("propertyNames").at("not").at("enum"));
  EXPECT_EQ(std::set<std::string>(hidden.begin(), hidden.end()), secrets);
}

TEST(ProbeRegistry, OpenApiDetailsSchemaOfEachTypeIsItsTable) {
  const auto& mapping =
      Schemas().at("ConnectionDetails").at("discriminator").at("mapping").as_object();
  const auto& one_of = Schemas().at("ConnectionDetails").at("oneOf").as_array();
  for (const auto& spec : Catalog().specs()) {
    SCOPED_TRACE(std::string(spec.type));
    const auto* ref = mapping.if_contains(spec.type);
    ASSERT_NE(ref, nullptr) << "no details schema for " << spec.type;
    bool listed = false;
    for (const auto& alternative : one_of) listed |= alternative.at("$ref") == *ref;
    EXPECT_TRUE(listed) << *ref << " is not one of ConnectionDetails.oneOf";
    const auto& schema = Resolve(ref->as_string());
    EXPECT_EQ(schema.at("additionalProperties"), false);
    auto types = Strings(schema.at("properties").at("type").at("enum"));
    EXPECT_NE(std::find(types.begin(), types.end(), spec.type), types.end());
    ExpectFields(spec.fields, schema, "details.", /*top=*/true);
  }
}

// The example of each details schema is what the e2e suite builds its bodies from
// (tests/e2e/conftest.py, valid_details): it must pass the validation of every type the schema
// serves, with a value for each secret field the type requires.
TEST(ProbeRegistry, OpenApiDetailsExampleOfEachTypeIsValid) {
  const auto& mapping =
      Schemas().at("ConnectionDetails").at("discriminator").at("mapping").as_object();
  for (const auto& spec : Catalog().specs()) {
    SCOPED_TRACE(std::string(spec.type));
    const auto* ref = mapping.if_contains(spec.type);
    ASSERT_NE(ref, nullptr);
    const auto* examples = Resolve(ref->as_string()).if_contains("examples");
    ASSERT_NE(examples, nullptr) << *ref << " has no examples";
    ASSERT_EQ(examples->as_array().size(), 1u) << *ref;
    boost::json::object details = examples->as_array().front().as_object();
    details["type"] = spec.type;
    auto parsed = domain::ParseDetails(Catalog(), details);
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_EQ(parsed->type, spec.type);
  }
}

}  // namespace
}  // namespace connreg::probe
