// Testing a connection against its warehouse (contract section 7). The path of one test:
//   ProbeEngine (engine.h): queue, deadline and watchdog, on the engine's own threads
//   -> ResolveAndCheck (egress.h): resolve the host, check every address against the policy
//   -> Driver (drivers/driver.h): one per warehouse family (drivers/postgres.cc, mysql.cc),
//      connecting to the checked address: connect, tls, authenticate, query, write
//   -> StepLog (step_log.h) and Scrubber (scrub.h): every message recorded is free of secrets
//   -> TestResult (test_result.h), rendered by RenderTestResult.
#pragma once

#include <map>
#include <string>

#include "domain/connection.h"
#include "probe/engine.h"
#include "probe/test_result.h"

namespace connreg::probe {

// The process-wide engine, created on first use with ProbeEngine::OptionsFromEnv(). When the
// environment holds an invalid value it logs the error and fails closed: every address is denied.
// Never destroyed (its threads may be blocked in a driver at exit).
ProbeEngine& DefaultEngine();

// Tests `c` with its opened secrets (field -> plaintext) on DefaultEngine() and waits for the
// result. Blocks the calling thread up to the test's deadline (+ ~1 s); thread-safe. Callers on an
// I/O thread should use DefaultEngine().Submit instead.
TestResult RunTest(const domain::Connection& c, const std::map<std::string, std::string>& secrets);

}  // namespace connreg::probe
