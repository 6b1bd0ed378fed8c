// The connection object as main rendered it before the direct writer (api::WriteConnection): a
// boost::json::object tree, then boost::json::serialize. Kept only as the oracle of the writer's
// bytes (tests/unit/api_render_test.cc) and as the baseline of bench/render_bench.cc; nothing in
// the server uses it.
#pragma once

#include <boost/json/object.hpp>

#include "domain/connection.h"

namespace connreg::reference {

inline boost::json::object ConnectionTree(const domain::Connection& c) {
  boost::json::object o;
  o.reserve(24);
  o["organizationId"] = c.organization_id;
  o["connectionId"] = c.connection_id;
  o["isSample"] = c.is_sample;
  o["isAuditLog"] = false;
  o["lastActiveAt"] = FormatRfc3339(c.last_active_at);
  o["name"] = c.name;
  o["type"] = c.type;
  o["useOauth"] = c.use_oauth;
  o["createdBy"] = c.created_by;
  o["updatedBy"] = c.updated_by;
  o["createdAt"] = FormatRfc3339(c.created_at);
  o["updatedAt"] = FormatRfc3339(c.updated_at);
  o["isArchived"] = c.is_archived;
  if (c.timeout_secs) o["timeout"] = {{"default", *c.timeout_secs}};
  o["friendlyName"] = c.use_friendly_names;
  o["writeAccess"] = c.write_access;
  for (const char* field : {"account", "warehouse", "user", "role"}) {
    if (auto it = c.details.find(field); it != c.details.end() && it->value().is_string()) {
      o[field] = it->value();
    }
  }
  if (c.description) o["description"] = *c.description;
  o["details"] = c.details;
  boost::json::object secrets;
  for (const auto& [field, secret] : c.secrets) {
    secrets[field] = {{"isSet", true}, {"updatedAt", FormatRfc3339(secret.updated_at)}};
  }
  o["secrets"] = std::move(secrets);
  if (c.last_test) {
    o["lastTest"] = {{"at", FormatRfc3339(c.last_test->at)},
                     {"read", c.last_test->read},
                     {"write", c.last_test->write}};
  }
  o["version"] = c.version;
  return o;
}

}  // namespace connreg::reference
