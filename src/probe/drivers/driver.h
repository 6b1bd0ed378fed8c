// The interface between the probe engine and one warehouse family. The engine owns everything
// that is the same for every warehouse (deadline, queueing, egress check, secret scrubbing, the
// final read/write verdict); a driver only talks to its warehouse. Adding a warehouse is one new
// file implementing Driver plus one line in registry.cc.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "probe/deadline.h"
#include "probe/egress.h"
#include "probe/step_log.h"

namespace connreg::probe {

// Where a test connects first, read from the connection's details.
struct Endpoint {
  std::string host;  // as configured: a name or an IP literal (also the TLS server name)
  int port = 0;
};

// One test run, as handed to Driver::Run. Everything referenced outlives the call.
struct ProbeRun {
  const boost::json::object& details;                 // no secret fields
  const std::map<std::string, std::string>& secrets;  // field -> plaintext
  bool write_access = false;                          // details.writeAccess is configured
  Endpoint endpoint;
  // The egress-checked addresses of endpoint.host, in resolver order (never empty). A driver
  // connects to one of these literals and never resolves endpoint.host itself.
  std::vector<IpAddress> addresses;
  // Drivers pass the time left to every timeout their client library has (connect, read, write,
  // statement) so that a stuck call ends soon after the deadline; the engine's watchdog delivers
  // a `timeout` result at the deadline whatever the driver does.
  Deadline deadline;
  // Steps to record, in order: connect, tls (when UsesTls), authenticate, query, then write when
  // write_access and the query passed. Stop after the first failed read step; the engine marks
  // the steps that did not run SKIPPED. Messages are scrubbed of secrets by the log.
  StepLog& steps;
  // Egress policy, for drivers that must reach further endpoints (an OAuth token URL, a
  // redirect): they resolve with ResolveAndCheck and connect only to the addresses it returns.
  const EgressPolicy& egress;
};

// Implementations are stateless and thread-safe: one instance serves every concurrent test.
class Driver {
 public:
  virtual ~Driver() = default;

  // The endpoint of `details`, or nullopt with `why` set when the details lack one (validated
  // details always have one).
  virtual std::optional<Endpoint> Target(const boost::json::object& details,
                                         std::string& why) const = 0;
  // True when the test of `details` negotiates TLS (and so reports a `tls` step).
  virtual bool UsesTls(const boost::json::object& details) const = 0;
  // Runs the connect .. write steps. Never throws.
  virtual void Run(ProbeRun& run) const = 0;
};

// The driver for a `details.type`, or nullptr when this build has none.
const Driver* FindDriver(std::string_view type);

// Details helpers shared by drivers: a string field or "" / an integer field or `fallback`.
std::string DetailString(const boost::json::object& details, std::string_view field);
int DetailInt(const boost::json::object& details, std::string_view field, int fallback);
bool DetailBool(const boost::json::object& details, std::string_view field, bool fallback);
// writeAccess.<field>, or "".
std::string WriteAccessString(const boost::json::object& details, std::string_view field);

}  // namespace connreg::probe
