// The `connreg` command line (contract section 11): serve, migrate, and the operator commands.
// Every command reads the store from CONNREG_DATABASE or --database; commands that create
// something print it as one JSON line on stdout; errors go to stderr with exit status 1.
#pragma once

#include <chrono>
#include <string>

#include "crypto/master_key_source.h"
#include "probe/engine.h"
#include "store/store.h"

namespace connreg::cli {

int Run(int argc, char** argv);

// The path of a "sqlite:PATH" url, or empty for other urls.
std::string SqlitePath(const std::string& database_url);
// The folder that holds bootstrap-credentials.json and the generated key file: the SQLite
// file's folder, or the working directory for other stores.
std::string StateDirectory(const std::string& database_url);

struct ServeOptions {
  std::string database;
  std::string listen = "127.0.0.1:8080";
  int threads = 0;     // I/O threads; 0 = one per core
  int db_threads = 8;  // blocking pool
  long long token_ttl = 3600;
  int sync_timeout = 600;  // CONNREG_SYNC_TIMEOUT: a catalog sync's deadline, seconds
  long long refresh_ttl = 30LL * 24 * 3600;
  int header_timeout = 30;
  int drain_timeout = 10;
  // Open HTTP connections at most (also capped at 3/4 of the file-descriptor limit).
  long long max_connections = 1024;
  std::string master_key;
  std::string master_key_file;
  std::string log_level = "info";
  double rate_limit = 0;
  std::string cors_origins;  // comma-separated
  // Connection tests (contract section 7) and their drivers; empty strings keep the defaults.
  probe::ProbeEngine::Settings probe;
};

int Serve(const ServeOptions& options);

// Where the master key comes from for this database: CONNREG_MASTER_KEY, CONNREG_MASTER_KEY_FILE,
// or the embedded default's master.key beside the SQLite file.
crypto::MasterKeySettings KeySettingsFor(const std::string& database, const std::string& master_key,
                                         const std::string& master_key_file, bool store_is_empty);

// Fails start-up (std::runtime_error) when a stored secret is sealed under a key the keyring
// does not hold: a wrong key is a clear error, never silent data loss.
void CheckKeysCoverStore(store::SealedSecretStore& store, const crypto::SodiumSealer& sealer);

// `connreg key rotate` (cli/key_rotate.cc). With a key file: writes [new, old…] to it, waits
// `settle` for running servers to reload it, re-seals every secret under the new key, then
// writes [new] alone. Re-run after an interruption, it resumes with the file's current key.
// With CONNREG_MASTER_KEY (no file) it re-seals under the first listed key.
int RotateMasterKey(store::SealedSecretStore& store, const crypto::MasterKeySettings& settings,
                    std::chrono::seconds settle);

}  // namespace connreg::cli
