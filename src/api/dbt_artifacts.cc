// POST /v2/connections/{connectionId}/dbtArtifacts (contract section 13): a multipart/form-data
// upload whose field `artifacts` is a .tar.gz of a dbt project's target/ folder. The body streams
// from the socket (http::Exchange::body) through the multipart reader into the archive reader
// (catalog/dbt.h) on this pool thread; the descriptions found are applied to the catalog only
// once the whole archive has been read, so a bad archive leaves nothing behind. Admin only.
#include <boost/beast/http/field.hpp>
#include <boost/json/object.hpp>

#include "api/api.h"
#include "catalog/dbt.h"
#include "http/multipart.h"
#include "probe/drivers/registry.h"

namespace connreg::api {
namespace {

constexpr std::string_view kField = "artifacts";
// Room for the multipart framing around the archive: boundaries and part headers.
constexpr std::size_t kFramingAllowance = 64 * 1024;

}  // namespace

std::size_t DbtArtifactsBodyLimit() {
  return catalog::DbtLimits{}.max_compressed_bytes + kFramingAllowance;
}

void HandleUploadDbtArtifacts(Context& ctx) {
  auto c = LoadVisible(ctx);
  if (!c) return ReplyError(ctx.ex, c.error());
  if (!ctx.is_admin()) {
    return ReplyError(ctx.ex, Error::Forbidden("uploading dbt artifacts needs an admin account"));
  }
  if (c->is_archived) {
    return ReplyError(ctx.ex, Error::Conflict("the connection is archived; restore it first"));
  }
  const probe::Driver* driver = probe::FindDriver(c->type);
  if (driver == nullptr) {
    return ReplyError(ctx.ex, Error::Internal("no driver for type " + c->type));
  }
  auto content_type = ctx.ex.request.find(boost::beast::http::field::content_type);
  if (content_type == ctx.ex.request.end()) {
    return ReplyError(ctx.ex, Error::BadRequest("the body must be multipart/form-data with the "
                                                "field \"artifacts\" (no Content-Type)"));
  }
  auto boundary = http::MultipartBoundary(content_type->value());
  if (!boundary) return ReplyError(ctx.ex, boundary.error());

  http::BodyStream* body = ctx.ex.body.get();  // null when the request has no body
  http::MultipartFieldReader field(std::move(*boundary), std::string(kField),
                                   [body]() -> Result<std::string_view> {
                                     if (body == nullptr) return std::string_view{};
                                     return body->Read();
                                   });
  auto descriptions =
      catalog::ReadDbtArtifacts([&field] { return field.Read(); }, driver->PathDepth());
  if (!descriptions) return ReplyError(ctx.ex, descriptions.error());
  if (auto rest = field.Finish(); !rest) return ReplyError(ctx.ex, rest.error());

  auto applied =
      ctx.catalog.ApplyDbtDescriptions(c->organization_id, c->connection_id, *descriptions);
  if (!applied) return ReplyError(ctx.ex, applied.error());
  ReplyJson(ctx.ex, 201, boost::json::object{});
}

}  // namespace connreg::api
