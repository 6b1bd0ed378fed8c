// The warehouse catalog endpoints (contract section 13), shaped as Sigma's connection paths:
// sync (admin; 200 when done within the test deadline, else 202 and GET .../sync), lookup (with
// an on-demand look into the warehouse for a path not synced yet), the paths listing, one path,
// a table's columns. Who sees what is the store's rule (CatalogStore::CanSeeInode and
// InodeListQuery::visible_to_member): admins everything, others what their connection grants
// and path grants show; anything else is a 404, as if it did not exist.

#include "api/api.h"
#include "api/json_body.h"
#include "api/page_token.h"
#include "api/people.h"
#include "core/json_write.h"
#include "crypto/encoding.h"
#include "domain/json_text.h"
#include "probe/drivers/registry.h"
#include "probe/test_result.h"

namespace connreg::api {
namespace {

constexpr std::size_t kMaxNameBytes = 1024;  // one path element

Error PathNotFound() { return Error::NotFound("path not found"); }

// The connection of a catalog route ({connectionId}), for any caller: 404 when it is not in the
// organization. Whether the caller sees (some of) its catalog is decided per inode.
Result<domain::Connection> LoadConnection(Context& ctx) {
  auto id = UuidParam(ctx, 0);
  if (!id) return Error::NotFound("connection not found");
  auto c = ctx.connections.GetConnection(ctx.principal->organization_id, *id);
  if (!c && c.error().code == ErrorCode::kNotFound) return Error::NotFound("connection not found");
  return c;
}

int PathDepthOf(const domain::Connection& c) {
  const probe::Driver* driver = probe::FindDriver(c.type);
  return driver ? driver->PathDepth() : 0;
}

// {"path": [names]}: at most the connection's path depth, each a non-empty string.
Result<domain::CatalogPath> ParsePathBody(const boost::json::value& body,
                                          const domain::Connection& c, bool allow_empty) {
  const auto* root = body.if_object();
  if (root == nullptr) return Error::BadRequest("the body must be a JSON object");
  auto it = root->find("path");
  if (it == root->end()) return Error::BadRequest("path is required");
  const auto* list = it->value().if_array();
  if (list == nullptr) return Error::BadRequest("path must be an array of names");
  const int depth = PathDepthOf(c);
  if (static_cast<int>(list->size()) > depth) {
    return Error::BadRequest("path has at most " + std::to_string(depth) + " names for a " +
                             c.type + " connection");
  }
  if (list->empty() && !allow_empty) return Error::BadRequest("path must name something");
  domain::CatalogPath path;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const auto* name = (*list)[i].if_string();
    if (name == nullptr || name->empty() || name->size() > kMaxNameBytes) {
      return Error::BadRequest("path[" + std::to_string(i) +
                               "] must be a non-empty string of at most " +
                               std::to_string(kMaxNameBytes) + " bytes");
    }
    path.emplace_back(*name);
  }
  return path;
}

Result<bool> MaySee(Context& ctx, const store::Inode& inode) {
  if (ctx.is_admin()) return true;
  return ctx.catalog.CanSeeInode(inode.organization_id, inode.inode_id, ctx.principal->member_id);
}

// The inode of the route's placeholder `i`, as the caller may see it (404 otherwise).
Result<store::Inode> LoadInode(Context& ctx, std::size_t i) {
  auto id = UuidParam(ctx, i);
  if (!id) return PathNotFound();
  auto inode = ctx.catalog.GetInode(ctx.principal->organization_id, *id);
  if (!inode) return inode.error().code == ErrorCode::kNotFound ? PathNotFound() : inode.error();
  auto seen = MaySee(ctx, *inode);
  if (!seen) return seen.error();
  if (!*seen) return PathNotFound();
  return inode;
}

boost::json::array RenderPath(const domain::CatalogPath& path) {
  boost::json::array out;
  for (const auto& name : path) out.emplace_back(name);
  return out;
}

bool IsScope(const store::Inode& inode) { return inode.kind == domain::inode_kind::kScope; }

std::string InodeUrl(const store::Inode& inode) {
  if (IsScope(inode)) {
    return "/v2/connections/paths?connectionId=" + inode.connection_id +
           "&parentId=" + inode.inode_id;
  }
  return "/v2/connections/paths/" + inode.inode_id;
}

// Sigma's lookup answer.
void ReplyLookup(http::Exchange& ex, const store::Inode& inode) {
  ReplyJson(ex, 200, {{"kind", inode.kind}, {"inodeId", inode.inode_id}, {"url", InodeUrl(inode)}});
}

// A sync's record. Its steps were stored as rendered; they are read and written again under the
// server's number rule, so that records stored before the rule read as people write numbers too
// (a record whose steps do not parse shows none).
std::string RenderSync(const store::SyncRecord& r) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("syncId").String(r.sync_id).Key("connectionId").String(r.connection_id);
  w.Key("status").String(r.status).Key("path").BeginArray();
  for (const auto& name : r.path) w.String(name);
  w.EndArray();
  w.Key("added").Int(r.added).Key("changed").Int(r.changed).Key("removed").Int(r.removed);
  w.Key("startedAt").Time(r.started_at);
  if (r.ended_at) w.Key("endedAt").Time(*r.ended_at);
  boost::system::error_code ec;
  const boost::json::value steps =
      domain::ParseJsonText(r.steps_json.empty() ? "[]" : r.steps_json, ec);
  w.Key("steps");
  if (ec) {
    w.BeginArray().EndArray();
  } else {
    w.Value(steps, JsonWriter::Doubles::kServer);
  }
  w.EndObject();
  return out;
}

// The answer to POST .../sync once the sync has ended: Sigma's {} with the extensions, or the
// failure as a test reports one.
std::string RenderFinishedSync(const store::SyncRecord& r) {
  if (r.status != catalog::sync_status::kSuccess) return RenderSync(r);
  const TimeMs ended = r.ended_at.value_or(r.started_at);
  std::string out;
  JsonWriter w(out);
  w.BeginObject().Key("syncId").String(r.sync_id).Key("syncedAt").Time(ended);
  w.Key("added").Int(r.added).Key("changed").Int(r.changed).Key("removed").Int(r.removed);
  w.Key("durationMs").Int(ended - r.started_at).EndObject();
  return out;
}

// The rest of a lookup that must ask the warehouse: list one level, then answer from the
// catalog. Its arguments are copies: they live in its frame.
boost::asio::awaitable<void> LookInWarehouse(http::Exchange& ex, Api& api, domain::Connection c,
                                             domain::CatalogPath path, int levels,
                                             store::Principal principal) {
  probe::TestResult looked = co_await api.RunLookup(c, path, levels);
  auto inode = co_await api.pool().Run(
      [&] { return api.catalog().FindInode(c.organization_id, c.connection_id, path); });
  if (!inode || inode->removed) {
    if (looked.read != probe::status::kSuccess) {
      std::string why;
      for (const auto& step : looked.steps) {
        if (step.status == probe::status::kFailed) {
          why = step.code + ": " + step.message;
          break;
        }
      }
      co_return ReplyError(
          ex, Error::NotFound("path not found: the warehouse could not be asked (" + why + ")"));
    }
    co_return ReplyError(ex, PathNotFound());
  }
  if (principal.account_type != "admin") {
    auto seen = co_await api.pool().Run([&] {
      return api.catalog().CanSeeInode(c.organization_id, inode->inode_id, principal.member_id);
    });
    if (!seen) co_return ReplyError(ex, seen.error());
    if (!*seen) co_return ReplyError(ex, PathNotFound());
  }
  ReplyLookup(ex, *inode);
}

// The rest of a sync request: wait up to the connection's test deadline, then answer.
boost::asio::awaitable<void> AwaitSync(http::Exchange& ex, Api& api,
                                       std::shared_ptr<catalog::SyncService::Sync> sync,
                                       domain::Connection c) {
  const bool finished =
      co_await api.WaitForSync(sync, std::chrono::seconds(api.engine().DeadlineSecs(c)));
  const store::SyncRecord r = sync->record();
  if (finished) co_return ReplyJsonText(ex, 200, RenderFinishedSync(r));
  ReplyJson(ex, 202, {{"status", r.status}, {"syncId", r.sync_id}});
}

}  // namespace

void HandleSync(Context& ctx) {
  if (!ctx.is_admin()) {
    return ReplyError(ctx.ex, Error::Forbidden("syncing a connection needs an admin account"));
  }
  auto c = LoadConnection(ctx);
  if (!c) return ReplyError(ctx.ex, c.error());
  auto body = ParseJsonBody(ctx.ex.request);
  if (!body) return ReplyError(ctx.ex, body.error());
  auto path = ParsePathBody(*body, *c, /*allow_empty=*/true);
  if (!path) return ReplyError(ctx.ex, path.error());
  if (c->is_archived) {
    return ReplyError(ctx.ex, Error::Conflict("the connection is archived; restore it first"));
  }
  if (c->use_oauth) {
    return ReplyError(ctx.ex, Error::Conflict("OAuth connections are read with a signed-in "
                                              "user's token; the registry holds no credential "
                                              "to sync this connection with"));
  }
  auto sync = ctx.syncs.Start(*c, std::move(*path), ctx.principal->member_id);
  if (!sync) return ReplyError(ctx.ex, sync.error());
  ctx.then = [&ex = ctx.ex, sync = std::move(*sync), c = *c](Api& api) {
    return AwaitSync(ex, api, sync, c);
  };
}

void HandleGetSync(Context& ctx) {
  if (!ctx.is_admin()) {
    return ReplyError(ctx.ex, Error::Forbidden("reading a sync needs an admin account"));
  }
  auto c = LoadConnection(ctx);
  if (!c) return ReplyError(ctx.ex, c.error());
  auto r = ctx.catalog.LastSync(c->organization_id, c->connection_id);
  if (!r) {
    if (r.error().code == ErrorCode::kNotFound) {
      return ReplyError(ctx.ex, Error::NotFound("this connection has not been synced"));
    }
    return ReplyError(ctx.ex, r.error());
  }
  ReplyJsonText(ctx.ex, 200, RenderSync(*r));
}

void HandleLookup(Context& ctx) {
  auto c = LoadConnection(ctx);
  if (!c) return ReplyError(ctx.ex, c.error());
  auto body = ParseJsonBody(ctx.ex.request);
  if (!body) return ReplyError(ctx.ex, body.error());
  auto path = ParsePathBody(*body, *c, /*allow_empty=*/false);
  if (!path) return ReplyError(ctx.ex, path.error());

  auto found = ctx.catalog.FindInode(c->organization_id, c->connection_id, *path);
  if (!found && found.error().code != ErrorCode::kNotFound) {
    return ReplyError(ctx.ex, found.error());
  }
  if (found && !found->removed) {
    auto seen = MaySee(ctx, *found);
    if (!seen) return ReplyError(ctx.ex, seen.error());
    return *seen ? ReplyLookup(ctx.ex, *found) : ReplyError(ctx.ex, PathNotFound());
  }
  // Not in the synced catalog: look in the warehouse, if the caller may see what is there (an
  // admin, a connection grant, or a path grant above the path).
  bool may_look = ctx.is_admin();
  for (std::size_t n = path->size(); !may_look && n-- > 0;) {
    domain::CatalogPath above(path->begin(), path->begin() + static_cast<std::ptrdiff_t>(n));
    if (n == 0) {
      auto granted =
          ctx.grants.HasGrant(c->organization_id, c->connection_id, ctx.principal->member_id);
      if (!granted) return ReplyError(ctx.ex, granted.error());
      may_look = *granted;
      break;
    }
    auto ancestor = ctx.catalog.FindInode(c->organization_id, c->connection_id, above);
    if (!ancestor) continue;
    auto seen = MaySee(ctx, *ancestor);
    if (!seen) return ReplyError(ctx.ex, seen.error());
    may_look = *seen;
    break;
  }
  if (!may_look) return ReplyError(ctx.ex, PathNotFound());
  if (c->is_archived) {
    return ReplyError(ctx.ex, Error::Conflict("the connection is archived; restore it first"));
  }
  if (c->use_oauth) return ReplyError(ctx.ex, PathNotFound());
  const int levels = static_cast<int>(path->size()) >= PathDepthOf(*c) ? 0 : 1;
  ctx.then = [&ex = ctx.ex, c = *c, path = std::move(*path), levels, principal = *ctx.principal](
                 Api& api) { return LookInWarehouse(ex, api, c, path, levels, principal); };
}

void HandleListPaths(Context& ctx) {
  const QueryParams params(ctx);
  store::InodeListQuery q;
  q.organization_id = ctx.principal->organization_id;
  std::string scope = "paths";
  for (const char* name : {"connectionId", "parentId"}) {
    auto value = params.Get(name);
    if (!value || value->empty()) continue;
    std::string id = *value;
    for (char& ch : id) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (id.size() > 64)
      return ReplyError(ctx.ex, Error::BadRequest(std::string(name) + " is too long"));
    (std::string_view(name) == "connectionId" ? q.connection_id : q.parent_id) = id;
    scope += std::string(":") + name + "=" + id;
  }
  if (!ctx.is_admin()) q.visible_to_member = ctx.principal->member_id;
  scope += ":" + q.visible_to_member.value_or("*");
  auto listing = Listing::Open(ctx, scope);
  if (!listing) return ReplyError(ctx.ex, listing.error());
  q.limit = listing->limit();
  q.offset = listing->start().offset;
  if (const auto& after = listing->start().after) {
    auto key = crypto::Base64UrlDecode(after->connection_id);
    if (!key) return ReplyError(ctx.ex, Error::BadRequest("page is not a valid page token"));
    q.after = store::InodeCursor{after->name, *key};
  }
  auto page = ctx.catalog.ListInodes(q);
  if (!page) return ReplyError(ctx.ex, page.error());
  boost::json::array entries;
  entries.reserve(page->entries.size());
  for (const auto& inode : page->entries) {
    entries.push_back(boost::json::object{{"connectionId", inode.connection_id},
                                          {"urlId", inode.inode_id},
                                          {"path", RenderPath(inode.path)},
                                          {"kind", inode.kind}});
  }
  std::optional<store::ListCursor> last;
  if (!page->entries.empty()) {
    const auto& e = page->entries.back();
    last = store::ListCursor{e.connection_id, 0, crypto::Base64UrlEncode(domain::PathKey(e.path))};
  }
  ReplyJson(ctx.ex, 200, listing->Page(std::move(entries), page->has_more, page->total, last));
}

void HandleGetPath(Context& ctx) {
  auto inode = LoadInode(ctx, 0);
  if (!inode) return ReplyError(ctx.ex, inode.error());
  ReplyJson(ctx.ex, 200,
            {{"connectionId", inode->connection_id},
             {"path", RenderPath(inode->path)},
             {"inodeId", inode->inode_id},
             {"kind", inode->kind},
             {"removed", inode->removed}});
}

void HandleListColumns(Context& ctx) {
  auto table = LoadInode(ctx, 0);
  if (!table) return ReplyError(ctx.ex, table.error());
  if (IsScope(*table)) return ReplyError(ctx.ex, Error::NotFound("table not found"));
  const QueryParams params(ctx);
  int size = 100;
  if (auto raw = params.Get("pageSize"); raw && !raw->empty()) {
    bool digits = raw->size() <= 4 && raw->find_first_not_of("0123456789") == std::string::npos;
    size = digits ? std::stoi(*raw) : 0;
    if (size < 1 || size > 1000) {
      return ReplyError(ctx.ex, Error::BadRequest("pageSize must be an integer from 1 to 1000"));
    }
  }
  auto key = ctx.server_keys.ServerKey("page-token");
  if (!key) return ReplyError(ctx.ex, key.error());
  const std::string fingerprint = QueryFingerprint("columns:" + table->inode_id, {});
  std::optional<store::ColumnCursor> after;
  if (auto raw = params.Get("pageToken"); raw && !raw->empty()) {
    auto token = DecodePageToken(*raw, *key);
    if (!token) return ReplyError(ctx.ex, token.error());
    if (token->organization_id != table->organization_id || token->filter != fingerprint) {
      return ReplyError(ctx.ex,
                        Error::BadRequest("pageToken is not a valid page token for this listing"));
    }
    after = store::ColumnCursor{static_cast<int>(token->cursor.created_at), token->cursor.name};
  }
  auto page = ctx.catalog.ListColumns(table->organization_id, table->inode_id, size, after);
  if (!page) return ReplyError(ctx.ex, page.error());
  boost::json::array entries;
  entries.reserve(page->entries.size());
  for (const auto& col : page->entries) {
    boost::json::object e{{"name", col.name},
                          {"type", domain::ColumnTypeJson(col.warehouse_type, col.nullable)},
                          {"visibility", col.removed || table->removed ? "removed" : "included"}};
    const std::string& description =
        col.dbt_description.empty() ? col.comment : col.dbt_description;
    if (!description.empty()) e["description"] = description;
    entries.push_back(std::move(e));
  }
  boost::json::object out{{"entries", std::move(entries)}};
  if (page->has_more && !page->entries.empty()) {
    const auto& last = page->entries.back();
    out["nextPageToken"] =
        EncodePageToken({table->organization_id, fingerprint, {last.name, last.ordinal, ""}}, *key);
  }
  ReplyJson(ctx.ex, 200, out);
}

}  // namespace connreg::api
