#include "probe/drivers/common/http_client.h"

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#include "crypto/encoding.h"

namespace connreg::probe {
namespace {

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool IsTlsError(CURLcode rc) {
  switch (rc) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED: return true;
    default: return false;
  }
}

// The contract code for a libcurl failure; `tls_phase`: the TLS handshake was under way.
std::string_view CodeForCurl(CURLcode rc, bool tls_phase) {
  if (rc == CURLE_OPERATION_TIMEDOUT) return code::kTimeout;
  if (rc == CURLE_COULDNT_CONNECT) return code::kConnectionRefused;
  if (rc == CURLE_COULDNT_RESOLVE_HOST) return code::kDnsFailure;
  if (IsTlsError(rc) || tls_phase) return code::kTlsFailure;
  return code::kProtocolError;
}

struct Body {
  std::string* out;
  bool too_large = false;
};

size_t WriteBody(char* data, size_t size, size_t n, void* user) {
  auto* b = static_cast<Body*>(user);
  size_t len = size * n;
  if (b->out->size() + len > HttpSession::kMaxResponseBytes) {
    b->too_large = true;
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  b->out->append(data, len);
  return len;
}

size_t DiscardBody(char*, size_t size, size_t n, void*) { return size * n; }

long RemainingMs(const Deadline& d) { return static_cast<long>(d.remaining().count()); }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string StripBrackets(std::string_view host) {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    return std::string(host.substr(1, host.size() - 2));
  }
  return std::string(host);
}

}  // namespace

// libcurl callbacks, with access to the session's private state.
struct HttpSessionCallbacks {
  // Called by libcurl when it creates the SSL_CTX of a connection: after the TCP connect,
  // before the handshake. Adds the extra CA bundle and, while opening, starts the tls step.
  static CURLcode SslCtx(CURL*, void* ssl_ctx, void* user) {
    auto* s = static_cast<HttpSession*>(user);
    if (!s->extra_ca_file_.empty()) {
      X509_STORE* store = SSL_CTX_get_cert_store(static_cast<SSL_CTX*>(ssl_ctx));
      if (X509_STORE_load_locations(store, s->extra_ca_file_.c_str(), nullptr) != 1) {
        ERR_clear_error();
        return CURLE_SSL_CACERT_BADFILE;
      }
    }
    if (s->opening_ && !s->tls_started_) {
      s->tls_started_ = true;
      s->run_.steps.Begin(step::kTls);  // passes connect
    }
    return CURLE_OK;
  }
};

HttpSession::HttpSession(ProbeRun& run, TlsSettings own_tls)
    : run_(run), own_tls_(std::move(own_tls)), extra_ca_file_(run.settings.tls_ca_file) {
  GlobalInit();
  curl_ = curl_easy_init();
}

HttpSession::~HttpSession() {
  if (curl_) curl_easy_cleanup(curl_);
}

std::string HttpSession::BaseUrl(bool tls) const {
  std::string host = run_.endpoint.host;
  if (host.find(':') != std::string::npos && host.front() != '[') host = "[" + host + "]";
  return std::string(tls ? "https://" : "http://") + host + ":" +
         std::to_string(run_.endpoint.port);
}

void HttpSession::Configure(CURL* c, bool own) {
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_PROXY, "");  // never a proxy from the environment
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  const TlsMode mode = own ? own_tls_.mode : TlsMode::kVerifyFull;
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, mode == TlsMode::kRequire ? 0L : 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, mode == TlsMode::kVerifyFull ? 2L : 0L);
  if (own && !own_tls_.ca_pem.empty()) {
    // In place of the system's CAs; the extra CA file is still added (SslCtx).
    curl_blob blob{own_tls_.ca_pem.data(), own_tls_.ca_pem.size(), CURL_BLOB_COPY};
    curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
  }
  curl_easy_setopt(c, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
  curl_easy_setopt(c, CURLOPT_CA_CACHE_TIMEOUT, 0L);
  curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, &HttpSessionCallbacks::SslCtx);
  curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, this);
  curl_easy_setopt(c, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  curl_easy_setopt(c, CURLOPT_USERAGENT, "connreg-probe/" CONNREG_VERSION);
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(kMaxResponseBytes));
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf_);
  curl_easy_setopt(c, CURLOPT_NETRC, static_cast<long>(CURL_NETRC_IGNORED));
  long ms = std::max(1L, RemainingMs(run_.deadline));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, ms);
}

std::optional<HttpError> HttpSession::Pin(std::string_view url, std::string& resolve_entry,
                                          bool& own_endpoint) {
  auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed) return HttpError{std::string(code::kProtocolError), "not a valid URL"};
  std::string scheme = Lower(parsed->scheme());
  if (scheme != "https" && scheme != "http") {
    return HttpError{std::string(code::kProtocolError), "only http(s) URLs may be requested"};
  }
  if (parsed->has_userinfo()) {
    return HttpError{std::string(code::kProtocolError), "URLs with credentials are refused"};
  }
  std::string host = Lower(StripBrackets(parsed->encoded_host_address()));
  if (host.empty()) return HttpError{std::string(code::kProtocolError), "the URL has no host"};
  int port = parsed->has_port() ? parsed->port_number() : (scheme == "https" ? 443 : 80);
  if (port <= 0) return HttpError{std::string(code::kProtocolError), "the URL has a bad port"};

  const bool own = host == Lower(StripBrackets(run_.endpoint.host)) && port == run_.endpoint.port;
  own_endpoint = own;
  if (scheme == "http" && !own) {
    return HttpError{std::string(code::kProtocolError),
                     "refusing a plain-http URL outside the tested endpoint: " + host};
  }
  IpAddress address;
  if (own) {
    address = run_.addresses.front();
  } else {
    Resolution r = ResolveAndCheck(host, run_.egress);
    if (!r.code.empty()) return HttpError{r.code, r.message};
    address = r.addresses.front();
  }
  if (IpAddress::Parse(host)) {
    resolve_entry.clear();  // an IP literal: libcurl connects to it without resolving
    return std::nullopt;
  }
  std::string ip = address.ToString();
  if (address.family == 6) ip = "[" + ip + "]";
  resolve_entry = host + ":" + std::to_string(port) + ":" + ip;
  return std::nullopt;
}

bool HttpSession::Open(bool tls) {
  run_.steps.Begin(step::kConnect);
  if (!curl_) {
    run_.steps.Fail(step::kConnect, code::kProtocolError, "libcurl could not be initialised");
    return false;
  }
  CURL* c = curl_easy_init();
  if (!c) {
    run_.steps.Fail(step::kConnect, code::kProtocolError, "libcurl could not be initialised");
    return false;
  }
  std::string url = BaseUrl(tls) + "/";
  std::string entry;
  bool own = true;
  if (auto err = Pin(url, entry, own)) {
    curl_easy_cleanup(c);
    run_.steps.Fail(step::kConnect, err->code, err->message);
    return false;
  }
  curl_slist* resolve = entry.empty() ? nullptr : curl_slist_append(nullptr, entry.c_str());
  Configure(c, own);
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_RESOLVE, resolve);
  curl_easy_setopt(c, CURLOPT_CONNECT_ONLY, 1L);
  errbuf_[0] = 0;
  opening_ = true;
  tls_started_ = false;
  CURLcode rc = curl_easy_perform(c);
  opening_ = false;
  long connect_us = 0;
  curl_off_t connect_time = 0;
  curl_easy_getinfo(c, CURLINFO_CONNECT_TIME_T, &connect_time);
  connect_us = static_cast<long>(connect_time);
  curl_easy_cleanup(c);
  curl_slist_free_all(resolve);
  if (rc == CURLE_OK) {
    run_.steps.Pass();
    return true;
  }
  const bool in_tls = tls && (tls_started_ || connect_us > 0);
  std::string message = errbuf_[0] ? std::string(errbuf_) : curl_easy_strerror(rc);
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    message = "no answer from the server before the test's deadline (" + message + ")";
  }
  run_.steps.Fail(in_tls ? step::kTls : step::kConnect, CodeForCurl(rc, in_tls), message);
  return false;
}

std::optional<HttpError> HttpSession::Perform(const HttpRequest& request, HttpResponse& response) {
  response = HttpResponse{};
  if (!curl_) return HttpError{std::string(code::kProtocolError), "libcurl is unavailable"};
  if (run_.deadline.expired()) {
    return HttpError{std::string(code::kTimeout),
                     "no answer from the server before the test's deadline"};
  }
  std::string entry;
  bool own = false;
  if (auto err = Pin(request.url, entry, own)) return err;
  curl_slist* resolve = entry.empty() ? nullptr : curl_slist_append(nullptr, entry.c_str());
  curl_slist* headers = nullptr;
  for (const std::string& h : request.headers) headers = curl_slist_append(headers, h.c_str());
  headers = curl_slist_append(headers, "Expect:");

  curl_easy_reset(curl_);  // keeps the connection cache: a second request reuses the connection
  Configure(curl_, own);
  Body body{&response.body};
  curl_easy_setopt(curl_, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl_, CURLOPT_RESOLVE, resolve);
  curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &WriteBody);
  curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &body);
  if (request.method == "GET") {
    curl_easy_setopt(curl_, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(curl_, CURLOPT_POST, 1L);
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, request.body.data());
    if (request.method != "POST") {
      curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    }
  }
  errbuf_[0] = 0;
  CURLcode rc = curl_easy_perform(curl_);
  curl_slist_free_all(headers);
  curl_slist_free_all(resolve);
  // Nothing of this request (its headers carry credentials) stays referenced by the handle.
  curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(curl_, CURLOPT_RESOLVE, nullptr);
  curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, nullptr);
  curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &DiscardBody);

  if (rc != CURLE_OK) {
    if (body.too_large || rc == CURLE_FILESIZE_EXCEEDED) {
      return HttpError{
          std::string(code::kProtocolError),
          "the response is larger than " + std::to_string(kMaxResponseBytes >> 20) + " MiB"};
    }
    std::string message = errbuf_[0] ? std::string(errbuf_) : curl_easy_strerror(rc);
    if (rc == CURLE_OPERATION_TIMEDOUT) {
      message = "no answer from the server before the test's deadline (" + message + ")";
    }
    return HttpError{std::string(CodeForCurl(rc, false)), message};
  }
  curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &response.status);
  char* ct = nullptr;
  curl_easy_getinfo(curl_, CURLINFO_CONTENT_TYPE, &ct);
  if (ct) response.content_type = ct;
  return std::nullopt;
}

std::string_view CodeForHttpStatus(long status) {
  if (status == 401 || status == 403) return code::kAuthFailed;
  if (status == 404) return code::kNotFound;
  return code::kProtocolError;
}

std::optional<boost::json::value> ParseJson(std::string_view body) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(body, ec);
  if (ec) return std::nullopt;
  return v;
}

std::string HttpSession::Describe(const HttpResponse& r) const {
  std::string out = "HTTP " + std::to_string(r.status);
  if (!r.body.empty()) out += ": " + run_.steps.scrubber().Excerpt(r.body);
  return out;
}

std::string HttpSession::Quote(std::string_view server_text) const {
  return run_.steps.scrubber().Excerpt(server_text, Scrubber::kMessageExcerptChars);
}

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out += static_cast<char>(ch);
    } else {
      out += '%';
      out += kHex[ch >> 4];
      out += kHex[ch & 15];
    }
  }
  return out;
}

// --- JWT ---------------------------------------------------------------------------------------

struct SigningKey {
  EVP_PKEY* pkey = nullptr;
};

void SigningKeyDeleter::operator()(SigningKey* k) const {
  if (k) EVP_PKEY_free(k->pkey);
  delete k;
}

namespace {

struct Passphrase {
  std::string_view value;
};

int PassphraseCallback(char* buf, int size, int, void* user) {
  auto* p = static_cast<Passphrase*>(user);
  if (p->value.empty() || static_cast<int>(p->value.size()) > size) return -1;
  std::copy(p->value.begin(), p->value.end(), buf);
  return static_cast<int>(p->value.size());
}

}  // namespace

SigningKeyPtr LoadRsaPrivateKey(std::string_view pem, std::string_view passphrase,
                                std::string& error) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  if (!bio) {
    error = "out of memory";
    return nullptr;
  }
  Passphrase p{passphrase};
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio.get(), nullptr, &PassphraseCallback, &p);
  if (!pkey) {
    std::string why = OpenSslError("unknown OpenSSL error");
    error = passphrase.empty() && pem.find("ENCRYPTED") != std::string_view::npos
                ? "the private key is encrypted and no passphrase was given"
                : "the private key could not be read (not a PEM private key, or a wrong "
                  "passphrase): " +
                      why;
    return nullptr;
  }
  if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
    EVP_PKEY_free(pkey);
    error = "the private key is not an RSA key";
    return nullptr;
  }
  SigningKeyPtr key(new SigningKey);
  key->pkey = pkey;
  return key;
}

std::string SignJwtRs256(const SigningKey& key, const boost::json::object& header,
                         const boost::json::object& claims, std::string& error) {
  std::string input = crypto::Base64UrlEncode(boost::json::serialize(header)) + "." +
                      crypto::Base64UrlEncode(boost::json::serialize(claims));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.pkey) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                     input.size()) != 1) {
    error = "could not sign the JWT: " + OpenSslError("unknown OpenSSL error");
    return "";
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    error = "could not sign the JWT: " + OpenSslError("unknown OpenSSL error");
    return "";
  }
  sig.resize(len);
  return input + "." + crypto::Base64UrlEncode(sig);
}

std::string PublicKeyFingerprint(const SigningKey& key) {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key.pkey, &der);
  if (len <= 0) return "";
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(der, static_cast<size_t>(len), digest);
  OPENSSL_free(der);
  return "SHA256:" +
         crypto::Base64Encode(std::string_view(reinterpret_cast<char*>(digest), sizeof digest));
}

}  // namespace connreg::probe
