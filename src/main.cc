#include <csignal>

#include "cli/cli.h"

int main(int argc, char** argv) {
  // A peer that closes its socket must cost one failed write, never the process: OpenSSL's socket
  // BIO (the drivers' own TLS handshakes) writes with write(2), which raises SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  return connreg::cli::Run(argc, argv);
}
