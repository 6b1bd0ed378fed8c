// The `connreg` command line (contract section 11): serve, migrate, and the operator commands.
// Every command reads the store from CONNREG_DATABASE or --database; commands that create
// something print it as one JSON line on stdout; errors go to stderr with exit status 1.
#pragma once

#include <string>

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
  long long refresh_ttl = 30LL * 24 * 3600;
  int header_timeout = 30;
  int drain_timeout = 10;
  std::string master_key;
  std::string master_key_file;
  std::string log_level = "info";
};

int Serve(const ServeOptions& options);

}  // namespace connreg::cli
