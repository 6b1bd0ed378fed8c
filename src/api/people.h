// What the member and team endpoints (members.cc, teams.cc) and the operator CLI share: the
// member and team objects of contract section 12, and the listing frame of their pages (filters
// read from the query, page tokens, the page object). Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "api/api.h"
#include "domain/member.h"
#include "store/store.h"

namespace connreg::api {

// The member object: Sigma's fields (profileImgUrl null, userKind "internal", homeFolderId a
// stable opaque id derived from the member id).
boost::json::object RenderMember(const domain::Member& m);
// The team object; `member_ids` (single-team responses) adds `members`.
boost::json::object RenderTeam(const domain::Team& t,
                               const std::vector<std::string>* member_ids = nullptr);

// The query parameters of a listing request by name (the last value of a repeated one). Other
// parameters than a listing's own are ignored, as Sigma does.
class QueryParams {
 public:
  explicit QueryParams(const Context& ctx);
  std::optional<std::string> Get(std::string_view name) const;
  // A boolean parameter ("true"/"false", "1"/"0"): a 400 naming it otherwise.
  Result<bool> Bool(std::string_view name) const;
  // A text filter, folded with domain::FoldName (absent or empty: no filter; over 1024 bytes: a
  // 400).
  Result<std::optional<std::string>> Folded(std::string_view name) const;

 private:
  std::vector<std::pair<std::string, std::string>> params_;
};

// Where a page starts: after the keyset position of a page token, or at an offset (a numeric
// page, or the first page). A token must come from the same listing (`scope`: the listing and
// its filters) of the same organization: a 400 otherwise.
struct PageStart {
  std::optional<store::ListCursor> after;
  std::int64_t offset = 0;
};
class Listing {
 public:
  // Reads `limit` and `page` (ParsePaging); `scope` names the listing and every filter value.
  static Result<Listing> Open(Context& ctx, std::string_view scope);
  int limit() const { return paging_.limit; }
  const PageStart& start() const { return start_; }
  // The page object {entries, nextPage, hasMore, total}; `last` is the keyset position of the
  // page's last entry (its name and id fields; created_at unused).
  boost::json::object Page(boost::json::array entries, bool has_more, std::int64_t total,
                           const std::optional<store::ListCursor>& last) const;

 private:
  Listing() = default;
  Paging paging_;
  PageStart start_;
  std::string organization_id_;
  std::string fingerprint_;
  std::string key_;
};

// Replies with the page that `list(q)` returns, `q` being a store listing query (limit, offset,
// after) whose filters are set and whose paging is read here from the request (`scope` as for
// Listing::Open); `render(entry)` is an entry's JSON, `key(entry)` its keyset position as a
// {sort key, id} pair, which the store's Cursor (the type of `q.after`) is built from.
template <class Query, class List, class Render, class Key>
void ReplyPage(Context& ctx, std::string_view scope, Query q, List list, Render render, Key key) {
  auto listing = Listing::Open(ctx, scope);
  if (!listing) return ReplyError(ctx.ex, listing.error());
  q.limit = listing->limit();
  q.offset = listing->start().offset;
  if (const auto& after = listing->start().after) {
    q.after = typename decltype(q.after)::value_type{after->name, after->connection_id};
  }
  auto page = list(q);
  if (!page) return ReplyError(ctx.ex, page.error());
  boost::json::array entries;
  for (const auto& e : page->entries) entries.push_back(render(e));
  std::optional<store::ListCursor> last;
  if (!page->entries.empty()) {
    auto [sort_key, id] = key(page->entries.back());
    last = store::ListCursor{std::move(sort_key), 0, std::move(id)};
  }
  ReplyJson(ctx.ex, 200, listing->Page(std::move(entries), page->has_more, page->total, last));
}

// Replies with the page of teams that `q` (its filters set) selects, as ReplyPage.
void ReplyTeamPage(Context& ctx, store::TeamListQuery q, std::string_view scope);

// 403 unless the caller is an admin (contract section 1: members and teams are admin
// operations); replies and returns false.
bool RequireAdminFor(Context& ctx, std::string_view what);

}  // namespace connreg::api
