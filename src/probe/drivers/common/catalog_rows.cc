#include "probe/drivers/common/catalog_rows.h"

#include <algorithm>

namespace connreg::probe {

TwoLevelListing PlanTwoLevel(const CatalogRequest& request) {
  TwoLevelListing plan;
  const auto& prefix = request.prefix;
  if (prefix.size() > 2) return plan;  // nothing lies below an object
  const std::size_t deepest =
      request.levels < 0 ? 2 : std::min<std::size_t>(2, prefix.size() + request.levels);
  plan.scopes = prefix.size() <= 1 && deepest >= 1;
  plan.objects = deepest >= 2;
  if (!prefix.empty()) plan.scope = prefix[0];
  if (prefix.size() == 2) plan.object = prefix[1];
  return plan;
}

bool CatalogRows::Wanted(const domain::CatalogPath& path) const {
  const CatalogRequest& request = run_.request;
  if (path.empty() || domain::IsSystemScope(path.front())) return false;
  // The queries narrow by the prefix already, but a catalog's comparison may fold case
  // (MySQL's information_schema): names must match exactly.
  if (!domain::IsPathPrefix(request.prefix, path)) return false;
  return request.levels < 0 ||
         path.size() <= request.prefix.size() + static_cast<std::size_t>(request.levels);
}

bool CatalogRows::Add(std::string_view row_kind, std::string_view scope, std::string_view object,
                      std::string_view comment, const domain::WarehouseColumn* column) {
  domain::CatalogPath path{std::string(scope)};
  if (row_kind != "s") path.emplace_back(object);
  const std::string_view kind = row_kind == "s"   ? domain::inode_kind::kScope
                                : row_kind == "p" ? domain::inode_kind::kStoredProcedure
                                                  : domain::inode_kind::kTable;
  if (current_ && current_->path == path) {
    if (column && current_->kind == kind) current_->columns.push_back(*column);
    return true;
  }
  if (!Finish()) return false;
  if (!Wanted(path) || path == last_reported_) return true;
  current_.emplace();
  current_->path = std::move(path);
  current_->kind = std::string(kind);
  current_->comment = std::string(comment);
  if (column) current_->columns.push_back(*column);
  return true;
}

bool CatalogRows::Finish() {
  if (!current_) return true;
  last_reported_ = current_->path;
  domain::WarehouseObject object = std::move(*current_);
  current_.reset();
  return run_.sink.Add(std::move(object));
}

}  // namespace connreg::probe
