// Reading the fields of validated details (domain/details.h has checked every type and limit), as
// the drivers need them: a missing or mistyped field reads as the fallback.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "probe/driver.h"

namespace connreg::probe {

// A string field, or "".
std::string DetailString(const boost::json::object& details, std::string_view field);
// An integer field, or `fallback`.
int DetailInt(const boost::json::object& details, std::string_view field, int fallback);
// A boolean field, or `fallback`.
bool DetailBool(const boost::json::object& details, std::string_view field, bool fallback);
// The endpoint `details.host` and `details.port` (or `default_port`) name; nullopt, with `why`,
// when the host is missing.
std::optional<Endpoint> HostEndpoint(const boost::json::object& details, int default_port,
                                     std::string& why);
// writeAccess.<field>, or "".
std::string WriteAccessString(const boost::json::object& details, std::string_view field);

}  // namespace connreg::probe
