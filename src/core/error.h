// Errors as values: every failure on the request path is an Error with one of the contract's
// codes (contract section 9). The mapping to HTTP statuses and code names lives in error.cc,
// the only place that knows it.
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace connreg {

enum class ErrorCode {
  kBadRequest,
  kUnauthorized,
  kForbidden,
  kNotFound,
  kMethodNotAllowed,
  kConflict,
  kPreconditionFailed,
  kPayloadTooLarge,
  kUnsupportedMediaType,
  kTooManyRequests,
  kHeaderFieldsTooLarge,
  kInternal,
  kUnavailable,
};

struct Error {
  ErrorCode code;
  // Safe to show to the client: never a secret, never internal detail for kInternal.
  std::string message;

  static Error BadRequest(std::string m) { return {ErrorCode::kBadRequest, std::move(m)}; }
  static Error Unauthorized(std::string m) { return {ErrorCode::kUnauthorized, std::move(m)}; }
  static Error Forbidden(std::string m) { return {ErrorCode::kForbidden, std::move(m)}; }
  static Error NotFound(std::string m) { return {ErrorCode::kNotFound, std::move(m)}; }
  static Error Conflict(std::string m) { return {ErrorCode::kConflict, std::move(m)}; }
  static Error PreconditionFailed(std::string m) {
    return {ErrorCode::kPreconditionFailed, std::move(m)};
  }
  static Error Internal(std::string m) { return {ErrorCode::kInternal, std::move(m)}; }
  static Error Unavailable(std::string m) { return {ErrorCode::kUnavailable, std::move(m)}; }
};

// HTTP status for a code (400, 401, ...).
int HttpStatus(ErrorCode code);
// The contract's code string ("bad_request", ...).
std::string_view CodeName(ErrorCode code);

}  // namespace connreg
