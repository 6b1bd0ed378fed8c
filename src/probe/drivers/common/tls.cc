#include "probe/drivers/common/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include "probe/driver.h"
#include "probe/drivers/common/details_fields.h"
#include "probe/egress.h"
#include "probe/raw_connection.h"
#include "probe/test_result.h"

namespace connreg::probe {
namespace {

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string Unbracketed(std::string_view host) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    return std::string(host.substr(1, host.size() - 2));
  }
  return std::string(host);
}

}  // namespace

std::string OpenSslError(std::string_view fallback) {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (!e) return std::string(fallback);
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

TlsSettings TlsSettingsOf(const ProbeRun& run) {
  const boost::json::object& details = run.details;
  TlsSettings s;
  std::string mode = DetailString(details, "tlsMode");
  s.mode = mode == "verify-full" ? TlsMode::kVerifyFull
           : mode == "verify-ca" ? TlsMode::kVerifyCa
                                 : TlsMode::kRequire;
  s.ca_pem = DetailString(details, "tlsCaCert");
  s.extra_ca_file = run.settings.tls_ca_file;
  return s;
}

std::string_view TlsModeName(TlsMode mode) {
  switch (mode) {
    case TlsMode::kRequire: return "require";
    case TlsMode::kVerifyCa: return "verify-ca";
    case TlsMode::kVerifyFull: return "verify-full";
  }
  return "require";
}

std::string TrustedCasPem(const TlsSettings& tls, std::string& why) {
  std::string pem = tls.ca_pem;
  if (pem.empty()) {
    const char* env = std::getenv(X509_get_default_cert_file_env());
    std::string system = env && *env ? env : X509_get_default_cert_file();
    auto bundle = ReadFile(system);
    if (!bundle) {
      why = "the system's CA bundle " + system + " cannot be read; give tlsCaCert";
      return "";
    }
    pem = std::move(*bundle);
  }
  if (!tls.extra_ca_file.empty()) {
    auto more = ReadFile(tls.extra_ca_file);
    if (!more) {
      why = "CONNREG_TLS_CA_FILE (" + tls.extra_ca_file + ") cannot be read";
      return "";
    }
    pem += "\n" + *more;
  }
  return pem;
}

PrivateFile::PrivateFile(std::string_view name, std::string_view contents, std::string& why) {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/connreg-tls-XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) {  // mode 0700
    why = "could not create a private directory: " + std::string(std::strerror(errno));
    return;
  }
  dir_ = buf.data();
  std::string path = dir_ + "/" + std::string(name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  ::chmod(path.c_str(), 0600);
  out << contents;
  out.close();
  if (!out) {
    why = "could not write " + path;
    ::unlink(path.c_str());
    return;
  }
  path_ = std::move(path);
}

PrivateFile::~PrivateFile() {
  if (!path_.empty()) ::unlink(path_.c_str());
  if (!dir_.empty()) ::rmdir(dir_.c_str());
}

ServerCertificate VerifyServer(int fd, std::string_view host, const TlsSettings& tls,
                               const Deadline& deadline) {
  ServerCertificate out;
  auto fail = [&](std::string_view c, std::string message) {
    out.code = c;
    out.message = std::move(message);
    return out;
  };
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        &SSL_CTX_free);
  if (!ctx) return fail(code::kTlsFailure, OpenSslError("out of memory"));
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (tls.mode != TlsMode::kRequire) {
    std::string why;
    std::string pem = TrustedCasPem(tls, why);
    if (pem.empty()) return fail(code::kTlsFailure, why.empty() ? "no CA to trust" : why);
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(
        BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
    STACK_OF(X509_INFO)* infos = PEM_X509_INFO_read_bio(bio.get(), nullptr, nullptr, nullptr);
    X509_STORE* store = SSL_CTX_get_cert_store(ctx.get());
    int added = 0;
    for (int i = 0; infos && i < sk_X509_INFO_num(infos); ++i) {
      X509_INFO* info = sk_X509_INFO_value(infos, i);
      if (info->x509 && X509_STORE_add_cert(store, info->x509) == 1) ++added;
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    ERR_clear_error();
    if (added == 0) return fail(code::kTlsFailure, "tlsCaCert holds no PEM certificate");
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  }
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), &SSL_free);
  if (!ssl) return fail(code::kTlsFailure, OpenSslError("out of memory"));
  const std::string name = Unbracketed(host);
  const bool literal = IpAddress::Parse(name).ok();
  if (!literal) SSL_set_tlsext_host_name(ssl.get(), name.c_str());
  if (tls.mode == TlsMode::kVerifyFull) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    int set = literal ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                      : X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
    if (set != 1) return fail(code::kTlsFailure, "cannot verify the name " + name);
  }
  SSL_set_fd(ssl.get(), fd);
  for (;;) {
    int rc = SSL_connect(ssl.get());
    if (rc == 1) break;
    int err = SSL_get_error(ssl.get(), rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      int w = WaitFd(fd, err == SSL_ERROR_WANT_WRITE, deadline);
      if (w == 0) {
        return fail(code::kTimeout,
                    "no answer from the server during the TLS handshake before "
                    "the test's deadline");
      }
      if (w > 0) continue;
    }
    long verify = SSL_get_verify_result(ssl.get());
    if (verify != X509_V_OK) {
      ERR_clear_error();
      return fail(code::kTlsFailure, std::string("the server's certificate failed ") +
                                         std::string(TlsModeName(tls.mode)) +
                                         " verification: " + X509_verify_cert_error_string(verify));
    }
    return fail(code::kTlsFailure, "the TLS handshake failed: " + OpenSslError("no detail"));
  }
  std::unique_ptr<X509, decltype(&X509_free)> cert(SSL_get1_peer_certificate(ssl.get()),
                                                   &X509_free);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!cert || X509_digest(cert.get(), EVP_sha1(), digest, &len) != 1) {
    return fail(code::kTlsFailure, "the server presented no certificate");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned int i = 0; i < len; ++i) {
    out.sha1_hex += kHex[digest[i] >> 4];
    out.sha1_hex += kHex[digest[i] & 15];
  }
  out.ok = true;
  return out;
}

}  // namespace connreg::probe
