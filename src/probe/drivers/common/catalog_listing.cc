#include "probe/drivers/common/catalog_listing.h"

#include <algorithm>
#include <cctype>

#include <boost/json/serialize.hpp>

namespace connreg::probe {

const std::string* CatalogListing::FixedName(std::size_t level) const {
  const domain::CatalogPath& prefix = run_.request.prefix;
  return level < prefix.size() ? &prefix[level] : nullptr;
}

bool CatalogListing::Reaches(const domain::CatalogPath& scope) const {
  const domain::CatalogPath& prefix = run_.request.prefix;
  if (static_cast<int>(scope.size()) > depth_) return false;
  for (std::size_t i = 0; i < scope.size() && i < prefix.size(); ++i) {
    if (scope[i] != prefix[i]) return false;
  }
  // Every level above an object is a scope; the last level of a full path names an object.
  for (std::size_t i = 0; i < scope.size() && static_cast<int>(i) + 1 < depth_; ++i) {
    if (domain::IsSystemScope(scope[i])) return false;
  }
  const int levels = run_.request.levels;
  return levels < 0 || scope.size() <= prefix.size() + static_cast<std::size_t>(levels);
}

bool CatalogListing::ReachesChildren(const domain::CatalogPath& scope) const {
  domain::CatalogPath child = scope;
  child.emplace_back();
  // The child's own name is not known yet: only the levels above it are compared.
  const domain::CatalogPath& prefix = run_.request.prefix;
  if (scope.size() < prefix.size()) child.back() = prefix[scope.size()];
  return Reaches(child);
}

void CatalogListing::Begin() { run_.probe.steps.Begin(step::kQuery); }

bool CatalogListing::Add(domain::WarehouseObject object) {
  if (stopped_) return false;
  if (run_.probe.deadline.expired()) {
    stopped_ = timed_out_ = true;
    return false;
  }
  if (!domain::IsPathPrefix(run_.request.prefix, object.path) || !Reaches(object.path)) {
    return true;
  }
  if (!run_.sink.Add(std::move(object))) stopped_ = true;
  return !stopped_;
}

void CatalogListing::Finish() {
  if (failed_) return;
  if (timed_out_) {
    return run_.probe.steps.Fail(step::kQuery, code::kTimeout,
                                 "the catalog listing did not finish before its deadline");
  }
  run_.probe.steps.Pass();
}

void CatalogListing::Fail(std::string_view code, std::string_view message) {
  stopped_ = failed_ = true;
  run_.probe.steps.Fail(
      step::kQuery, code,
      run_.probe.steps.scrubber().Excerpt(message, Scrubber::kMessageExcerptChars));
}

bool TableAssembler::Row(domain::CatalogPath path, std::string_view comment,
                         std::optional<domain::WarehouseColumn> column) {
  if (table_ && table_->path != path && !Flush()) return false;
  if (!table_) {
    table_.emplace();
    table_->path = std::move(path);
    table_->kind = domain::inode_kind::kTable;
    table_->comment = comment;
  }
  if (column) table_->columns.push_back(std::move(*column));
  return true;
}

bool TableAssembler::Flush() {
  if (!table_) return true;
  domain::WarehouseObject t = std::move(*table_);
  table_.reset();
  return listing_.Add(std::move(t));
}

int RowPage::Column(std::string_view name) const {
  for (std::size_t i = 0; i < columns.size(); ++i) {
    const std::string& c = columns[i];
    if (c.size() == name.size() && std::equal(c.begin(), c.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        })) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

std::string RowPage::Cell(const Row& row, std::string_view name) const {
  int i = Column(name);
  if (i < 0 || static_cast<std::size_t>(i) >= row.size() || !row[i]) return "";
  return *row[i];
}

bool ForEachRowPaged(CatalogListing& listing,
                     const std::function<SqlOutcome(const std::string& limit, RowPage&)>& select,
                     const std::function<bool(const RowPage&, const RowPage::Row&)>& row) {
  for (long offset = 0;; offset += kCatalogPageRows) {
    RowPage page;
    SqlOutcome o = select(
        "LIMIT " + std::to_string(kCatalogPageRows) + " OFFSET " + std::to_string(offset), page);
    if (!o.ok) {
      listing.Fail(o.code, o.message);
      return false;
    }
    for (const RowPage::Row& r : page.rows) {
      if (!row(page, r)) return false;
    }
    if (static_cast<long>(page.rows.size()) < kCatalogPageRows) return true;
  }
}

std::optional<std::string> CellText(const boost::json::value& v) {
  if (v.is_null()) return std::nullopt;
  if (v.is_string()) return std::string(v.get_string());
  return boost::json::serialize(v);
}

}  // namespace connreg::probe
