// Removes secrets from text that leaves a driver (error messages from libpq, MariaDB, HTTP
// bodies...). Warehouses and client libraries sometimes echo what they were given (a password in
// a connection string, a token in a URL), so every message a test reports passes through here.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace connreg::probe {

// Immutable after construction; thread-safe.
class Scrubber {
 public:
  static constexpr std::size_t kDefaultMaxLength = 1024;
  static constexpr std::string_view kRedacted = "[redacted]";

  // Forms shorter than this are redacted only where they stand as a word of their own (no letter
  // or digit on either side): a one-letter password must not turn every "p" of a message into
  // "[redacted]", and is echoed as `password "p"` if at all.
  static constexpr std::size_t kMinInWordLength = 4;

  // `secrets`: field name -> plaintext value; every non-empty value is redacted, in its raw form
  // and in the encoded forms a driver could plausibly echo: base64 (standard, padded and not,
  // and url-safe), percent-encoding, SQL and JSON/C escaping.
  explicit Scrubber(const std::map<std::string, std::string>& secrets,
                    std::size_t max_length = kDefaultMaxLength);

  // `text` with every secret form replaced by "[redacted]", control characters and invalid
  // UTF-8 replaced, surrounding blanks trimmed and the length capped at `max_length` bytes (on a
  // character boundary, with "..." marking the cut). Redaction runs before the cut, so a cut can
  // never leave the prefix of a secret behind.
  std::string Scrub(std::string_view text) const;

 private:
  std::vector<std::string> needles_;  // longest first, so a longer form wins over its prefix
  std::size_t max_length_;
};

}  // namespace connreg::probe
