// The interface between the probe engine and one warehouse family. The engine owns everything
// that is the same for every warehouse (deadline, queueing, egress check, secret scrubbing, the
// final read/write verdict); a driver only talks to its warehouse.
//
// A family lives in a folder of its own, src/probe/drivers/<family>/, whose one function returns
// its WarehouseTypes: for each `details.type`, the details table (domain/details_spec.h: fields,
// secrets, defaults, endpoint, TLS switch) and the Driver. Adding a warehouse is that folder, its
// #include and one entry in drivers/registry.cc, a schema with an example in docs/openapi.json (a
// unit test checks both against the table; the e2e suite builds its bodies from the example), and
// its tests.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "domain/details_spec.h"
#include "probe/deadline.h"
#include "probe/egress.h"
#include "probe/step_log.h"

namespace connreg::probe {

// Where a test connects first, read from the connection's details.
struct Endpoint {
  std::string host;  // as configured: a name or an IP literal (also the TLS server name)
  int port = 0;
};

// What the operator configures for the drivers (`connreg serve` flags); the same for every test.
struct DriverSettings {
  // CONNREG_TLS_CA_FILE: a PEM CA bundle trusted by every driver that verifies a server, beside
  // tlsCaCert or the system's CAs (a private CA); empty: none.
  std::string tls_ca_file;
  // CONNREG_BIGQUERY_API_URL: the BigQuery API the bigQuery driver tests against; empty: the
  // public one.
  std::string bigquery_api_url;
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
  const DriverSettings& settings;
};

// Implementations are stateless and thread-safe: one instance serves every concurrent test.
class Driver {
 public:
  virtual ~Driver() = default;

  // The endpoint of `details`, or nullopt with `why` set when the details lack one (validated
  // details always have one).
  virtual std::optional<Endpoint> Target(const boost::json::object& details,
                                         const DriverSettings& settings,
                                         std::string& why) const = 0;
  // True when the test of `details` negotiates TLS (and so reports a `tls` step).
  virtual bool UsesTls(const boost::json::object& details) const = 0;
  // Runs the connect .. write steps. Never throws.
  virtual void Run(ProbeRun& run) const = 0;
};

// One `details.type` as its family defines it: the table its details are validated against, and
// the driver that tests it (never nullptr; it outlives the process).
struct WarehouseType {
  domain::TypeSpec spec;
  const Driver* driver;
};

}  // namespace connreg::probe
