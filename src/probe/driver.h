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

#include "domain/catalog.h"
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

// ---- the catalog (contract section 13) -----------------------------------------------------

// What a catalog listing asks for: every scope and object whose path starts with `prefix` (the
// prefix itself included), at most `levels` levels below it (-1: all the way down; 0: the prefix
// alone, e.g. one table and its columns). A driver narrows its queries by the prefix where its
// catalog allows; the engine drops whatever it reports outside the request.
struct CatalogRequest {
  domain::CatalogPath prefix;
  int levels = -1;
};

// Where a driver reports what it finds, from its worker thread, one scope or object at a time.
class CatalogSink {
 public:
  virtual ~CatalogSink() = default;
  // Takes one scope or object. Scopes may come before, after or without their children (the
  // consumer creates missing ancestors); an object comes once, with all its columns. False: stop
  // listing (the deadline passed, or the consumer failed); the driver returns soon after.
  virtual bool Add(domain::WarehouseObject object) = 0;
};

// One catalog listing, as handed to Driver::Introspect. `probe.write_access` is false.
struct CatalogRun {
  ProbeRun& probe;
  const CatalogRequest& request;
  CatalogSink& sink;
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

  // The number of levels of this family's paths (contract section 13): 2 for postgres
  // [schema, table] and mysql [database, table], 3 for the others.
  virtual int PathDepth() const = 0;
  // Lists the catalog with the warehouse's own catalog views, into run.sink: records connect,
  // tls and authenticate as Run does, then `query` for the listing (FAILED with the contract's
  // code when a catalog query fails; a sink that says stop ends it SUCCESS). System scopes
  // (domain::IsSystemScope) are left out; names are reported exactly as the warehouse spells
  // them; tables and views are inode_kind::kTable. Never throws.
  virtual void Introspect(CatalogRun& run) const = 0;
};

// One `details.type` as its family defines it: the table its details are validated against, and
// the driver that tests it (never nullptr; it outlives the process).
struct WarehouseType {
  domain::TypeSpec spec;
  const Driver* driver;
};

}  // namespace connreg::probe
