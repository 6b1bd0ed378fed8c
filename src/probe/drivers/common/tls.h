// Per-connection TLS modes for the drivers (contract section 4): what `tlsMode` and `tlsCaCert` in
// the details ask for, the certificates a verification trusts, and a verification of the server
// made by the driver itself on a socket of its own, for client libraries that can only check a
// certificate against the IP literal they are pinned to (Connector/C).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "probe/deadline.h"
#include "probe/driver.h"

namespace connreg::probe {

enum class TlsMode {
  kRequire,     // encrypt, verify nothing
  kVerifyCa,    // encrypt, verify the chain against the trusted CAs
  kVerifyFull,  // ... and that the certificate names the configured host
};

// What a connection asks for once TLS is on.
struct TlsSettings {
  TlsMode mode = TlsMode::kVerifyFull;
  std::string ca_pem;  // details.tlsCaCert, or empty: the system's CAs
  // The operator's extra CA bundle (DriverSettings::tls_ca_file), trusted in either case; empty:
  // none.
  std::string extra_ca_file;
};

// details.tlsMode and details.tlsCaCert of the run, with the operator's extra CA bundle. An absent
// tlsMode is `require`: connections stored before tlsMode existed keep what they had (the domain
// fills verify-full into new ones).
TlsSettings TlsSettingsOf(const ProbeRun& run);
std::string_view TlsModeName(TlsMode mode);  // "require", "verify-ca", "verify-full"

// The CAs a verification trusts, as PEM: tlsCaCert when given, else the system's bundle; and in
// either case the operator's extra bundle (CONNREG_TLS_CA_FILE), trusted by every driver. Empty
// with `why` set when a file cannot be read.
std::string TrustedCasPem(const TlsSettings& tls, std::string& why);

// A file only this process's user can read, holding `contents` (a CA bundle for a library that
// takes a path), in a fresh private directory under TMPDIR; both are removed on destruction.
class PrivateFile {
 public:
  // path() is empty (and `why` set) when the file could not be written.
  PrivateFile(std::string_view name, std::string_view contents, std::string& why);
  ~PrivateFile();
  PrivateFile(const PrivateFile&) = delete;
  PrivateFile& operator=(const PrivateFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string dir_;
  std::string path_;
};

// The oldest error in OpenSSL's queue as text (clearing the queue), or `fallback` when it is empty.
std::string OpenSslError(std::string_view fallback);

// The outcome of VerifyServer.
struct ServerCertificate {
  bool ok = false;
  std::string code;      // on failure: tls_failure or timeout
  std::string message;   // on failure
  std::string sha1_hex;  // on success: SHA-1 of the leaf certificate's DER, 40 hex digits
};

// Makes a TLS handshake on `fd` (connected, non-blocking, with whatever the protocol needs before
// TLS already exchanged) and verifies the server as `tls.mode` says: the chain against
// TrustedCasPem, and for verify-full that the certificate names `host` (a DNS name or an IP
// literal; also sent as SNI when it is a name). Sends nothing but the handshake; ends by
// `deadline`. Leaves `fd` open, its TLS session abandoned.
ServerCertificate VerifyServer(int fd, std::string_view host, const TlsSettings& tls,
                               const Deadline& deadline);

}  // namespace connreg::probe
