// Removes secrets from text that leaves a driver (error messages from libpq, MariaDB, HTTP
// bodies...), and cuts what a server sent down to a short excerpt. Warehouses and client libraries
// sometimes echo what they were given (a password in a connection string, a token in a URL, an
// Authorization header), so every message a test reports passes through here.
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
  // Excerpt lengths, in characters: of a reply quoted as it came (an HTTP body), and of a server's
  // own error message (a SQLSTATE message, a JSON "message" field). Short enough that a test
  // cannot be used to read a page of an internal service.
  static constexpr std::size_t kReplyExcerptChars = 80;
  static constexpr std::size_t kMessageExcerptChars = 160;

  // Forms shorter than this are redacted only where they stand as a word of their own (no letter
  // or digit on either side): a one-letter password must not turn every "p" of a message into
  // "[redacted]", and is echoed as `password "p"` if at all.
  static constexpr std::size_t kMinInWordLength = 4;

  // `secrets`: field name -> plaintext value. Every non-empty value is redacted in its raw form,
  // reversed, and in every encoding a driver produces or a server plausibly echoes: base64
  // (standard and url-safe, at each of the three byte alignments, so that "user:password" in an
  // HTTP Basic header is caught too; the whole base64 word is redacted), hex, percent- and
  // form-encoding, SQL and JSON/C escaping. All but base64 match regardless of letter case.
  // Whitespace and control characters in the text are skipped while matching, so a secret that a
  // server split across lines is still found.
  explicit Scrubber(const std::map<std::string, std::string>& secrets,
                    std::size_t max_length = kDefaultMaxLength);

  // `text` with every secret form replaced by "[redacted]", runs of whitespace and control
  // characters turned into one space, invalid UTF-8 replaced, surrounding blanks trimmed and the
  // length capped at `max_length` bytes (on a character boundary, with "..." marking the cut).
  // Redaction runs before the cut, so a cut can never leave the prefix of a secret behind.
  std::string Scrub(std::string_view text) const;

  // At most `chars` characters of what a server sent, redacted and cleaned as by Scrub (the cut
  // comes after the redaction), with "..." marking a cut. Every driver quotes server text through
  // this, never whole.
  std::string Excerpt(std::string_view server_text, std::size_t chars = kReplyExcerptChars) const;

 private:
  struct Needle {
    std::string text;
    bool fold_case = true;    // ASCII letters match either case
    bool whole_word = false;  // a hit redacts the whole base64/hex word around it
  };

  // Redaction and cleaning, without a length cap.
  std::string Clean(std::string_view text) const;

  std::vector<Needle> needles_;  // longest first, so a longer form wins over its prefix
  std::size_t max_length_;
};

}  // namespace connreg::probe
