// multipart/form-data (RFC 7578, RFC 2046 section 5.1), read as a stream: the content of one
// named field comes out piece by piece as the body's pieces come in, keeping no more than a
// part's headers and a boundary's length of lookbehind. Not thread-safe (one reader).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace connreg::http {

// The boundary of a `multipart/form-data; boundary=...` Content-Type. kUnsupportedMediaType for
// another media type, kBadRequest for a missing or invalid boundary.
Result<std::string> MultipartBoundary(std::string_view content_type);

class MultipartFieldReader {
 public:
  // `read` gives the body's pieces (empty at its end; a piece stays valid until the next call).
  MultipartFieldReader(std::string_view boundary, std::string field,
                       std::function<Result<std::string_view>()> read);

  // The next piece of the field's content (valid until the next call); empty at its end.
  // kBadRequest when the body is not multipart as announced or has no such field; the errors of
  // `read` as they are.
  Result<std::string_view> Read();
  // After the field: reads the rest of the body, which must end with the closing boundary.
  Status Finish();

 private:
  enum class State { kPreamble, kAfterDelimiter, kHeaders, kContent, kClosed };

  // Appends the next piece of the body; false at its end.
  Result<bool> Fill();
  // Parses the body up to the field's next piece; `out` is set when there is one.
  Status Step(std::optional<std::string_view>* out);
  Status ParsePartHeaders(std::string_view headers);

  std::string delimiter_;  // CRLF "--" boundary
  std::string field_;
  std::function<Result<std::string_view>()> read_;
  State state_ = State::kPreamble;
  std::string buffer_;        // bytes read and not yet parsed
  std::string out_;           // the piece last returned
  bool in_field_ = false;     // the current part is the field
  bool field_seen_ = false;   // the field's part has begun
  bool field_ended_ = false;  // the field's content is complete
};

}  // namespace connreg::http
