// What the HTTP-protocol driver families share: an HTTP(S)
// client over libcurl that only ever connects to egress-checked addresses, and RS256 JWT signing
// over OpenSSL.
//
// Every URL a session requests is parsed; its host is resolved and checked with ResolveAndCheck
// (the run's own endpoint uses the addresses the engine already checked) and libcurl is pinned to
// exactly that address with CURLOPT_RESOLVE, so DNS cannot change between the check and the
// connect. Redirects are never followed, proxies from the environment are ignored, responses are
// capped, and every transfer ends by the run's deadline.
//
// TLS is verified in full (chain and host name) except where the run's own endpoint has a lower
// tlsMode: `require` encrypts without verifying, `verify-ca` verifies the chain only. The CAs
// trusted are tlsCaCert when given, else the system's; DriverSettings::tls_ca_file
// (CONNREG_TLS_CA_FILE) names an extra PEM CA bundle trusted in addition either way (the tests use
// it for their self-signed fakes; operators for a private CA).
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "probe/driver.h"
#include "probe/drivers/common/tls.h"

typedef void CURL;

namespace connreg::probe {

struct HttpRequest {
  std::string method = "GET";        // GET, POST, DELETE...
  std::string url;                   // absolute http(s) URL
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // sent when method is not GET
};

struct HttpResponse {
  long status = 0;
  std::string body;
  std::string content_type;
};

// A transport failure (or a URL the session refuses): a contract code and a message.
struct HttpError {
  std::string code;
  std::string message;
};

// One test's HTTP client. Not thread-safe; used by one driver run.
class HttpSession {
 public:
  static constexpr std::size_t kMaxResponseBytes = 4 << 20;

  // `own_tls`: how requests to the run's own endpoint verify it; every other host is verified in
  // full.
  explicit HttpSession(ProbeRun& run, TlsSettings own_tls = {});
  ~HttpSession();
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;

  // Records the connect step (and the tls step when `tls`) by opening a TCP (and TLS) connection
  // to the run's endpoint. True when it could; otherwise the failed step is recorded.
  bool Open(bool tls);

  // Performs `request`; nullopt when an HTTP response arrived (whatever its status). Plain http
  // is only allowed to the run's own endpoint (a starburst with useTls false).
  std::optional<HttpError> Perform(const HttpRequest& request, HttpResponse& response);

  // The base URL of the run's endpoint: "https://host:port".
  std::string BaseUrl(bool tls) const;

  // What a failed HTTP answer said, for a message: "HTTP 500: " and a short excerpt of its body.
  std::string Describe(const HttpResponse& r) const;
  // A short excerpt of a server's own error text (a JSON "message" field), for a message.
  std::string Quote(std::string_view server_text) const;

 private:
  // Pins the host of `url` to a checked address; the error when it may not be requested. `own`:
  // the URL is on the run's own endpoint.
  std::optional<HttpError> Pin(std::string_view url, std::string& resolve_entry, bool& own);
  void Configure(CURL* curl, bool own);

  ProbeRun& run_;
  TlsSettings own_tls_;
  std::string extra_ca_file_;
  CURL* curl_ = nullptr;
  char errbuf_[256] = {};
  // Set while Open() runs: the TLS handshake started (the connect step passed).
  bool opening_ = false;
  bool tls_started_ = false;

  friend struct HttpSessionCallbacks;
};

// The contract code for a failed request's HTTP status: 401/403 auth_failed, 404 not_found,
// anything else protocol_error.
std::string_view CodeForHttpStatus(long status);

// `body` parsed as JSON, or nullopt.
std::optional<boost::json::value> ParseJson(std::string_view body);

// Percent-encodes `s` for a query string or a form body (RFC 3986 unreserved kept).
std::string UrlEncode(std::string_view s);

// A private key read from PEM (PKCS#8, encrypted or not, or traditional RSA), with `passphrase`
// for an encrypted one.
struct SigningKey;
struct SigningKeyDeleter {
  void operator()(SigningKey* k) const;
};
using SigningKeyPtr = std::unique_ptr<SigningKey, SigningKeyDeleter>;
// The key, or nullptr with `error` set (never quoting the key or the passphrase).
SigningKeyPtr LoadRsaPrivateKey(std::string_view pem, std::string_view passphrase,
                                std::string& error);
// base64url(header) "." base64url(claims) "." base64url(RS256 signature); "" with `error` set.
std::string SignJwtRs256(const SigningKey& key, const boost::json::object& header,
                         const boost::json::object& claims, std::string& error);
// "SHA256:" + base64(SHA-256 of the DER SubjectPublicKeyInfo of the key's public half): the
// fingerprint Snowflake's key-pair authentication puts in the JWT issuer.
std::string PublicKeyFingerprint(const SigningKey& key);

}  // namespace connreg::probe
