#include "probe/drivers/common/details_fields.h"

namespace connreg::probe {

std::string DetailString(const boost::json::object& details, std::string_view field) {
  const auto* v = details.if_contains(field);
  if (!v || !v->is_string()) return "";
  return std::string(v->get_string());
}

int DetailInt(const boost::json::object& details, std::string_view field, int fallback) {
  const auto* v = details.if_contains(field);
  if (!v) return fallback;
  if (v->is_int64()) return static_cast<int>(v->get_int64());
  if (v->is_uint64() && v->get_uint64() < 1u << 30) return static_cast<int>(v->get_uint64());
  return fallback;
}

bool DetailBool(const boost::json::object& details, std::string_view field, bool fallback) {
  const auto* v = details.if_contains(field);
  return v && v->is_bool() ? v->get_bool() : fallback;
}

std::optional<Endpoint> HostEndpoint(const boost::json::object& details, int default_port,
                                     std::string& why) {
  Endpoint e{DetailString(details, "host"), DetailInt(details, "port", default_port)};
  if (e.host.empty()) {
    why = "details.host is missing";
    return std::nullopt;
  }
  return e;
}

std::string WriteAccessString(const boost::json::object& details, std::string_view field) {
  const auto* wa = details.if_contains("writeAccess");
  if (!wa || !wa->is_object()) return "";
  return DetailString(wa->get_object(), field);
}

}  // namespace connreg::probe
