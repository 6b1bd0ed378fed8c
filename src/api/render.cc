#include "api/render.h"

namespace connreg::api {

void WriteConnection(JsonWriter& w, const domain::Connection& c) {
  w.BeginObject();
  w.Key("organizationId").String(c.organization_id);
  w.Key("connectionId").String(c.connection_id);
  w.Key("isSample").Bool(c.is_sample);
  w.Key("isAuditLog").Bool(false);
  w.Key("lastActiveAt").Time(c.last_active_at);
  w.Key("name").String(c.name);
  w.Key("type").String(c.type);
  w.Key("useOauth").Bool(c.use_oauth);
  w.Key("createdBy").String(c.created_by);
  w.Key("updatedBy").String(c.updated_by);
  w.Key("createdAt").Time(c.created_at);
  w.Key("updatedAt").Time(c.updated_at);
  w.Key("isArchived").Bool(c.is_archived);
  if (c.timeout_secs)
    w.Key("timeout").BeginObject().Key("default").Int(*c.timeout_secs).EndObject();
  w.Key("friendlyName").Bool(c.use_friendly_names);
  w.Key("writeAccess").Bool(c.write_access);
  for (const char* field : {"account", "warehouse", "user", "role"}) {
    if (auto it = c.details.find(field); it != c.details.end() && it->value().is_string()) {
      w.Key(field).String(it->value().get_string());
    }
  }
  if (c.description) w.Key("description").Value(*c.description);
  w.Key("details").Value(c.details);
  w.Key("secrets").BeginObject();
  for (const auto& [field, secret] : c.secrets) {
    w.Key(field).BeginObject().Key("isSet").Bool(true).Key("updatedAt").Time(secret.updated_at);
    w.EndObject();
  }
  w.EndObject();
  if (c.last_test) {
    w.Key("lastTest").BeginObject();
    w.Key("at").Time(c.last_test->at);
    w.Key("read").String(c.last_test->read);
    w.Key("write").String(c.last_test->write);
    w.EndObject();
  }
  w.Key("version").Int(c.version);
  w.EndObject();
}

std::string RenderConnection(const domain::Connection& c) {
  std::string out;
  out.reserve(1024);  // an ordinary object is 600 to 900 bytes: one allocation
  JsonWriter w(out);
  WriteConnection(w, c);
  return out;
}

namespace {

// {"entries":[...],"nextPage","hasMore","total"}, the entries written by `write_entries`.
template <class WriteEntries>
std::string RenderPage(std::size_t entries, WriteEntries write_entries, std::string_view next_page,
                       bool has_more, std::int64_t total) {
  std::string out;
  out.reserve(128 + 1024 * entries);
  JsonWriter w(out);
  w.BeginObject().Key("entries").BeginArray();
  write_entries(w);
  w.EndArray().Key("nextPage");
  if (next_page.empty()) {
    w.Null();
  } else {
    w.String(next_page);
  }
  w.Key("hasMore").Bool(has_more).Key("total").Int(total).EndObject();
  return out;
}

}  // namespace

std::string RenderConnectionPage(const std::vector<domain::Connection>& entries,
                                 std::string_view next_page, bool has_more, std::int64_t total) {
  return RenderPage(
      entries.size(),
      [&](JsonWriter& w) {
        for (const auto& c : entries) WriteConnection(w, c);
      },
      next_page, has_more, total);
}

std::string RenderConnectionPageOfBodies(
    const std::vector<std::shared_ptr<const std::string>>& bodies, std::string_view next_page,
    bool has_more, std::int64_t total) {
  std::size_t bytes = 0;
  for (const auto& body : bodies) bytes += body->size();
  return RenderPage(
      bytes / 1024 + 1,
      [&](JsonWriter& w) {
        for (const auto& body : bodies) w.Raw(*body);
      },
      next_page, has_more, total);
}

std::string EtagOf(const domain::Connection& c) {
  std::string etag(1, '"');
  etag += std::to_string(c.version);
  etag += '"';
  return etag;
}

}  // namespace connreg::api
