// The API's own documentation: GET /openapi.json (docs/openapi.json, embedded into the binary at
// build time), GET /docs (a Swagger UI page pointed at it) and GET /docs/{asset} (the Swagger UI
// files of the swagger-ui-dist npm package, embedded too). Nothing is read from disk at run time
// and only a fixed list of asset names is served. No authentication.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

namespace connreg::api {

struct Context;

void HandleOpenApi(Context& ctx);    // GET /openapi.json
void HandleDocs(Context& ctx);       // GET /docs
void HandleDocsAsset(Context& ctx);  // GET /docs/{asset}

// A file embedded at build time (cmake/embed.cmake generates the definitions).
struct EmbeddedFile {
  std::string_view name;  // "openapi.json", "swagger-ui-bundle.js", ...
  const unsigned char* begin;
  const unsigned char* end;
  std::string_view bytes() const {
    return {reinterpret_cast<const char*>(begin), static_cast<std::size_t>(end - begin)};
  }
};

// Every embedded file, in a fixed order; defined by the generated embedded_docs.cc.
std::span<const EmbeddedFile> EmbeddedFiles();
// The version of the swagger-ui-dist package embedded (from its package.json).
std::string_view EmbeddedSwaggerUiVersion();

}  // namespace connreg::api
