// GET /openapi.json, GET /docs and GET /docs/{asset}: see docs.h.
#include "api/docs.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <boost/beast/http/field.hpp>

#include "api/api.h"

namespace connreg::api {
namespace {

namespace http_ = boost::beast::http;

enum class Caching { kRevalidate, kVersioned };

// The only names /docs/{asset} serves, with their content types. Anything else is a 404: the
// name is compared whole against this list, so no path (".." or "/") can ever reach a file.
struct AssetType {
  std::string_view name;
  std::string_view content_type;
};
constexpr std::array kAssets{
    AssetType{"swagger-ui.css", "text/css; charset=utf-8"},
    AssetType{"swagger-ui.css.map", "application/json"},
    AssetType{"swagger-ui-bundle.js", "text/javascript; charset=utf-8"},
    AssetType{"swagger-ui-bundle.js.map", "application/json"},
    AssetType{"swagger-ui-standalone-preset.js", "text/javascript; charset=utf-8"},
    AssetType{"swagger-ui-standalone-preset.js.map", "application/json"},
    AssetType{"favicon-32x32.png", "image/png"},
    AssetType{"favicon-16x16.png", "image/png"},
    AssetType{"oauth2-redirect.html", "text/html; charset=utf-8"},
    AssetType{"oauth2-redirect.js", "text/javascript; charset=utf-8"},
};

// Our own page and initializer (not from the npm package). The asset URLs carry the package
// version, so a new build never serves a cached file of an older Swagger UI.
std::string PageHtml() {
  const std::string v(EmbeddedSwaggerUiVersion());
  return R"(<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>connreg API</title>
    <link rel="stylesheet" type="text/css" href="/docs/swagger-ui.css?v=)" +
         v + R"(">
    <link rel="icon" type="image/png" href="/docs/favicon-32x32.png?v=)" +
         v + R"(" sizes="32x32">
    <link rel="icon" type="image/png" href="/docs/favicon-16x16.png?v=)" +
         v + R"(" sizes="16x16">
    <style>html { box-sizing: border-box; overflow-y: scroll; } body { margin: 0; background: #fafafa; }</style>
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/docs/swagger-ui-bundle.js?v=)" +
         v + R"(" charset="UTF-8"></script>
    <script src="/docs/swagger-ui-standalone-preset.js?v=)" +
         v + R"(" charset="UTF-8"></script>
    <script src="/docs/swagger-initializer.js?v=)" +
         v + R"(" charset="UTF-8"></script>
  </body>
</html>
)";
}

// Points Swagger UI at /openapi.json. The Authorize dialog offers the document's security
// schemes: oauth2 (client credentials against /v2/auth/token) and bearer (paste a token).
// validatorUrl null: the page makes no request outside this server.
constexpr std::string_view kInitializerJs = R"(window.onload = function () {
  var origin = window.location.origin;
  window.ui = SwaggerUIBundle({
    url: origin + "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout",
    validatorUrl: null,
    displayRequestDuration: true,
    showExtensions: true,
    persistAuthorization: false,
    oauth2RedirectUrl: origin + "/docs/oauth2-redirect.html"
  });
  window.ui.initOAuth({ scopes: [], useBasicAuthenticationWithAccessCodeGrant: false });
};
)";

std::uint64_t Fnv1a64(std::string_view bytes) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::string StrongEtag(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::uint64_t h = Fnv1a64(bytes);
  std::string out = "\"";
  for (int shift = 60; shift >= 0; shift -= 4) out += kHex[(h >> shift) & 0xf];
  out += '-';
  out += std::to_string(bytes.size());
  out += '"';
  return out;
}

const EmbeddedFile* FindEmbedded(std::string_view name) {
  for (const EmbeddedFile& f : EmbeddedFiles()) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

bool IfNoneMatchHits(const http::Request& req, std::string_view etag) {
  auto h = req.find(http_::field::if_none_match);
  if (h == req.end()) return false;
  std::string_view v = h->value();
  while (!v.empty()) {
    size_t comma = v.find(',');
    std::string_view item = v.substr(0, comma);
    v = comma == std::string_view::npos ? std::string_view{} : v.substr(comma + 1);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (item.size() > 2 && item.substr(0, 2) == "W/") item.remove_prefix(2);
    if (item == "*" || item == etag) return true;
  }
  return false;
}

// Serves `bytes` with its content type, a strong ETag (304 on If-None-Match) and caching.
void ServeBytes(http::Exchange& ex, std::string_view bytes, std::string_view content_type,
                const std::string& etag, Caching caching) {
  ex.response.set(http_::field::etag, etag);
  ex.response.set(http_::field::cache_control,
                  caching == Caching::kVersioned ? "public, max-age=86400" : "no-cache");
  ex.response.set("X-Content-Type-Options", "nosniff");
  if (IfNoneMatchHits(ex.request, etag)) {
    ex.response.result(http_::status::not_modified);
    return;
  }
  ex.response.result(http_::status::ok);
  ex.response.set(http_::field::content_type, content_type);
  ex.response.body().assign(bytes.data(), bytes.size());
}

// The ETag of each embedded file, computed once (the bytes never change while the process runs).
const std::string& EmbeddedEtag(const EmbeddedFile& f) {
  static const std::vector<std::string> etags = [] {
    std::vector<std::string> out;
    for (const EmbeddedFile& e : EmbeddedFiles()) out.push_back(StrongEtag(e.bytes()));
    return out;
  }();
  return etags.at(static_cast<size_t>(&f - EmbeddedFiles().data()));
}

void ReplyMissing(http::Exchange& ex, std::string_view what) {
  ReplyError(ex, Error::NotFound("no such documentation file: " + std::string(what)));
}

}  // namespace

void HandleOpenApi(Context& ctx) {
  const EmbeddedFile* f = FindEmbedded("openapi.json");
  if (f == nullptr) return ReplyMissing(ctx.ex, "openapi.json");
  ServeBytes(ctx.ex, f->bytes(), "application/json", EmbeddedEtag(*f), Caching::kRevalidate);
  ctx.ex.response.set(http_::field::access_control_allow_origin, "*");
}

void HandleDocs(Context& ctx) {
  static const std::string html = PageHtml();
  static const std::string etag = StrongEtag(html);
  ServeBytes(ctx.ex, html, "text/html; charset=utf-8", etag, Caching::kRevalidate);
  // The page runs only scripts from this server; Swagger UI styles itself inline and shows
  // inline (data:) images; its requests go to this server only.
  ctx.ex.response.set("Content-Security-Policy",
                      "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                      "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
                      "base-uri 'none'; form-action 'self'");
  ctx.ex.response.set("Referrer-Policy", "no-referrer");
}

void HandleDocsAsset(Context& ctx) {
  const std::string& name = ctx.params.at(0);
  if (name == "swagger-initializer.js") {
    static const std::string etag = StrongEtag(kInitializerJs);
    return ServeBytes(ctx.ex, kInitializerJs, "text/javascript; charset=utf-8", etag,
                      Caching::kRevalidate);
  }
  if (name == "index.html") return HandleDocs(ctx);
  for (const AssetType& a : kAssets) {
    if (a.name != name) continue;
    const EmbeddedFile* f = FindEmbedded(a.name);
    if (f == nullptr) return ReplyMissing(ctx.ex, a.name);
    return ServeBytes(ctx.ex, f->bytes(), a.content_type, EmbeddedEtag(*f), Caching::kVersioned);
  }
  ReplyMissing(ctx.ex, name.size() > 64 ? name.substr(0, 64) : name);
}

}  // namespace connreg::api
