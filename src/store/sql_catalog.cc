// The warehouse catalog (contract section 13): inodes, columns, path grants and syncs, once for
// every backend. migrations.cc (migration 5) has the tables and what their counts mean.
//
// The listing (ListInodes) never counts its matches: what a caller may see is planned as a few
// disjoint segments in listing order (the whole organization, a connection, a subtree, one
// inode, or the children of a scope), each of a size read from the counts kept with the rows;
// the total is their sum, and a page reads the segments in order from the cursor (or skips
// whole segments for the numeric offset), each a range scan of a live-row index.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "domain/json_text.h"
#include "store/sql_queries.h"
#include "store/sql_rows.h"
#include "store/sql_store.h"

namespace connreg::store {
namespace {

using domain::CatalogPath;
using domain::PathKey;

constexpr int kMaxPageSize = 1000;
constexpr int kMaxColumnPageSize = 1000;
// Rows per transaction of the walks that may cover a whole catalog (MarkUnseenRemoved,
// ApplyDbtDescriptions): SQLite has one writer, and a sync must not hold it for long.
constexpr std::size_t kWriteBatch = 1000;

std::string PathJson(const CatalogPath& path) {
  boost::json::array a;
  for (const std::string& element : path) a.emplace_back(element);
  return boost::json::serialize(a);
}

Status ParsePath(std::string_view text, CatalogPath& out) {
  boost::system::error_code ec;
  boost::json::value v = domain::ParseJsonText(text, ec);
  if (ec || !v.is_array()) return Error::Internal("store: corrupt JSON in a catalog path");
  out.clear();
  for (const auto& element : v.as_array()) {
    if (!element.is_string()) return Error::Internal("store: corrupt JSON in a catalog path");
    out.emplace_back(element.as_string());
  }
  return OkStatus();
}

// The smallest key above `key`: [key, Successor(key)) holds `key` alone.
std::string Successor(std::string key) {
  key.push_back('\0');
  return key;
}

CatalogPath Prefix(const CatalogPath& path, std::size_t n) {
  return CatalogPath(path.begin(), path.begin() + static_cast<std::ptrdiff_t>(n));
}

constexpr Column<Inode> kInodeColumns[] = {
    Field<&Inode::inode_id>("inode_id", kKey),
    Field<&Inode::organization_id>("organization_id"),
    Field<&Inode::connection_id>("connection_id"),
    Field<&Inode::parent_id>("parent_id"),
    Field<&Inode::kind>("kind"),
    // Derived from the path: written, never read back.
    {"name",
     [](Stmt& st, std::string_view p, const Inode& i) {
       st.Bind(p, i.path.empty() ? std::string_view() : std::string_view(i.path.back()));
     },
     nullptr},
    {"path", [](Stmt& st, std::string_view p, const Inode& i) { st.Bind(p, PathJson(i.path)); },
     [](const Stmt& st, int col, Inode& i) { return ParsePath(st.Text(col), i.path); }},
    {"path_key",
     [](Stmt& st, std::string_view p, const Inode& i) {
       const std::string key = PathKey(i.path);
       st.Bind(p, sql::Bytes{key});
     },
     nullptr},
    Field<&Inode::comment>("comment"),
    Field<&Inode::dbt_description>("dbt_description"),
    Field<&Inode::removed>("is_removed"),
    Field<&Inode::synced_at>("synced_at"),
};
const int kInodeColumnCount = sql::ReadableCount(kInodeColumns);

// A stored inode and the counts kept on it.
struct StoredInode {
  Inode inode;
  std::int64_t live_children = 0;
  std::int64_t live_descendants = 0;
};

std::string InodeSelect() {
  return "SELECT " + sql::SelectList(kInodeColumns) +
         ", live_children, live_descendants FROM catalog_inodes";
}

Result<std::optional<StoredInode>> ReadStoredInode(Stmt& st) {
  auto row = st.Step();
  if (!row) return std::move(row).error();
  if (!*row) return std::optional<StoredInode>();
  StoredInode out;
  if (Status s = sql::ReadRow(st, kInodeColumns, out.inode); !s) return std::move(s).error();
  out.live_children = st.Int(kInodeColumnCount);
  out.live_descendants = st.Int(kInodeColumnCount + 1);
  return std::optional<StoredInode>(std::move(out));
}

constexpr Column<CatalogColumn> kColumnColumns[] = {
    Field<&CatalogColumn::name>("name", kKey),
    Field<&CatalogColumn::ordinal>("ordinal"),
    Field<&CatalogColumn::warehouse_type>("warehouse_type"),
    Field<&CatalogColumn::nullable>("nullable"),
    Field<&CatalogColumn::comment>("comment"),
    Field<&CatalogColumn::dbt_description>("dbt_description"),
    Field<&CatalogColumn::removed>("is_removed"),
};

constexpr Column<SyncRecord> kSyncColumns[] = {
    Field<&SyncRecord::sync_id>("sync_id", kKey),
    Field<&SyncRecord::organization_id>("organization_id"),
    Field<&SyncRecord::connection_id>("connection_id"),
    {"path",
     [](Stmt& st, std::string_view p, const SyncRecord& r) { st.Bind(p, PathJson(r.path)); },
     [](const Stmt& st, int col, SyncRecord& r) { return ParsePath(st.Text(col), r.path); }},
    Field<&SyncRecord::status>("status"),
    Field<&SyncRecord::added>("added"),
    Field<&SyncRecord::changed>("changed"),
    Field<&SyncRecord::removed>("removed"),
    Field<&SyncRecord::steps_json>("steps"),
    Field<&SyncRecord::started_by>("started_by"),
    Field<&SyncRecord::started_at>("started_at"),
    Field<&SyncRecord::ended_at>("ended_at"),
};

// "INSERT ... ON CONFLICT (keys) DO UPDATE SET a = excluded.a, ..." over the other columns.
template <class Columns>
std::string UpsertSql(std::string_view table, const Columns& columns) {
  std::string keys;
  std::string set;
  for (const auto& c : columns) {
    std::string& out = c.key ? keys : set;
    if (!out.empty()) out += ", ";
    out += c.name;
    if (!c.key) out += " = excluded." + std::string(c.name);
  }
  return sql::InsertSql(table, columns) + " ON CONFLICT (" + keys + ") DO UPDATE SET " + set;
}

// The live rows of one connection in a key range [lo, hi), in listing order (the organization's
// live index: its first two columns fixed, the range on the third).
std::string RangeSql(const sql::Dialect& d, bool bounded, bool descending) {
  return InodeSelect() + d.IndexedBy("catalog_inodes_live") +
         " WHERE organization_id = :organization_id AND connection_id = :connection_id"
         " AND NOT is_removed AND path_key >= :lo" +
         (bounded ? " AND path_key < :hi" : "") + " ORDER BY path_key" +
         (descending ? " DESC LIMIT :limit" : " LIMIT :limit OFFSET :offset");
}

std::string OrganizationPageSql(const sql::Dialect& d, bool keyset) {
  return InodeSelect() + d.IndexedBy("catalog_inodes_live") +
         " WHERE organization_id = :organization_id AND NOT is_removed" +
         (keyset ? " AND (connection_id, path_key) > (:after_connection_id, :after_path_key)"
                 : "") +
         " ORDER BY connection_id, path_key LIMIT :limit OFFSET :offset";
}

std::string ColumnPageSql(const sql::Dialect& d, bool keyset) {
  return "SELECT " + sql::SelectList(kColumnColumns) + " FROM catalog_columns" +
         d.IndexedBy("catalog_columns_by_ordinal") + " WHERE table_id = :table_id" +
         (keyset ? " AND (ordinal, name) > (:after_ordinal, :after_name)" : "") +
         " ORDER BY ordinal, name LIMIT :limit";
}

// The grants that apply to :member_id (kMemberIsActive, kGrantingTeamsOfMember): as
// GrantStore::HasGrant says, over every grant of the member and of its teams.
std::string ApplyingGrants(std::string_view alias) {
  const std::string a(alias);
  return " WHERE " + a + ".organization_id = :organization_id AND " + std::string(kMemberIsActive) +
         " AND (" + a + ".member_id = :member_id OR " + a + ".team_id IN (" +
         std::string(kGrantingTeamsOfMember) + "))";
}

}  // namespace

CatalogQueries::CatalogQueries(sql::QueryBook& b)
    // Every write of a connection's catalog runs after this, so two writers of one catalog (a
    // sync's batch and a lookup) take turns on PostgreSQL; SQLite's one writer already does.
    : lock_connection(b,
                      "SELECT 1 FROM connections WHERE connection_id = :connection_id"
                      " AND organization_id = :organization_id" +
                          std::string(b.dialect().RowLocks(" FOR NO KEY UPDATE"))),
      get_inode(
          b, InodeSelect() + " WHERE inode_id = :inode_id AND organization_id = :organization_id"),
      find_inode(b, InodeSelect() +
                        " WHERE connection_id = :connection_id AND path_key = :path_key"
                        " AND organization_id = :organization_id"),
      insert_inode(b, sql::InsertSql("catalog_inodes", kInodeColumns,
                                     {"live_children", "live_descendants"})),
      update_inode(b,
                   "UPDATE catalog_inodes SET kind = :kind, comment = :comment,"
                   " is_removed = :is_removed, synced_at = :synced_at WHERE inode_id = :inode_id"),
      remove_inode(b,
                   "UPDATE catalog_inodes SET is_removed = :is_removed, synced_at = :synced_at"
                   " WHERE inode_id = :inode_id"),
      add_live_counts(b,
                      "UPDATE catalog_inodes SET live_children = live_children + :children,"
                      " live_descendants = live_descendants + :descendants"
                      " WHERE connection_id = :connection_id AND path_key = :path_key"),
      add_connection_count(
          b,
          "INSERT INTO catalog_connection_counts (connection_id, organization_id, live_inodes)"
          " VALUES (:connection_id, :organization_id, :delta) ON CONFLICT (connection_id)"
          " DO UPDATE SET live_inodes = catalog_connection_counts.live_inodes + "
          "excluded.live_inodes"),
      add_organization_count(
          b,
          "INSERT INTO catalog_organization_counts (organization_id, live_inodes)"
          " VALUES (:organization_id, :delta) ON CONFLICT (organization_id) DO UPDATE SET"
          " live_inodes = catalog_organization_counts.live_inodes + excluded.live_inodes"),
      connection_count(b,
                       "SELECT live_inodes FROM catalog_connection_counts"
                       " WHERE connection_id = :connection_id"
                       " AND organization_id = :organization_id"),
      organization_count(b,
                         "SELECT live_inodes FROM catalog_organization_counts"
                         " WHERE organization_id = :organization_id"),
      columns_of(b, "SELECT " + sql::SelectList(kColumnColumns) +
                        " FROM catalog_columns WHERE table_id = :table_id"),
      insert_column(b, sql::InsertSql("catalog_columns", kColumnColumns, {"table_id"})),
      update_column(b, "UPDATE catalog_columns SET " + sql::UpdateSetList(kColumnColumns) +
                           " WHERE table_id = :table_id AND " + sql::KeyMatch(kColumnColumns)),
      remove_columns_of(b,
                        "UPDATE catalog_columns SET is_removed = :is_removed"
                        " WHERE table_id = :table_id AND NOT is_removed"),
      live_below_desc{sql::Query(b, RangeSql(b.dialect(), false, true)),
                      sql::Query(b, RangeSql(b.dialect(), true, true))},
      list_organization{sql::Query(b, OrganizationPageSql(b.dialect(), false)),
                        sql::Query(b, OrganizationPageSql(b.dialect(), true))},
      list_range{sql::Query(b, RangeSql(b.dialect(), false, false)),
                 sql::Query(b, RangeSql(b.dialect(), true, false))},
      list_children(b, InodeSelect() + b.dialect().IndexedBy("catalog_inodes_live_children") +
                           " WHERE parent_id = :parent_id AND NOT is_removed"
                           " AND path_key >= :lo ORDER BY path_key LIMIT :limit OFFSET :offset"),
      page_columns{sql::Query(b, ColumnPageSql(b.dialect(), false)),
                   sql::Query(b, ColumnPageSql(b.dialect(), true))},
      // A connection may come twice (a grant to the member and one to its team).
      connection_grants_of_member(
          b,
          "SELECT g.connection_id, COALESCE(cc.live_inodes, 0) AS live_inodes FROM grants AS g"
          " LEFT JOIN catalog_connection_counts AS cc ON cc.connection_id = g.connection_id" +
              ApplyingGrants("g")),
      path_grants_of_member(
          b,
          "SELECT i.connection_id, i.path, i.is_removed, i.live_descendants"
          " FROM path_grants AS pg JOIN catalog_inodes AS i ON i.inode_id = pg.inode_id" +
              ApplyingGrants("pg")),
      set_inode_dbt(b,
                    "UPDATE catalog_inodes SET dbt_description = :description"
                    " WHERE inode_id = :inode_id"),
      set_column_dbt(b,
                     "UPDATE catalog_columns SET dbt_description = :description"
                     " WHERE table_id = :table_id AND name = :name"),
      on_paths(b, "path_grants", "inode_id"),
      save_sync(b, UpsertSql("catalog_syncs", kSyncColumns)),
      last_sync(b, "SELECT " + sql::SelectList(kSyncColumns) + " FROM catalog_syncs" +
                       b.dialect().IndexedBy("catalog_syncs_by_connection") +
                       " WHERE connection_id = :connection_id"
                       " AND organization_id = :organization_id"
                       " ORDER BY started_at DESC, sync_id DESC LIMIT 1"),
      running_syncs(b, "SELECT " + sql::SelectList(kSyncColumns) +
                           " FROM catalog_syncs WHERE status = 'RUNNING'"
                           " ORDER BY started_at, sync_id") {}

namespace {

// kNotFound unless the connection is in the organization; locks it for the catalog's writers.
Status LockConnection(Session& s, const CatalogQueries& q, const std::string& organization_id,
                      const std::string& connection_id) {
  auto found = Exists(s, q.lock_connection,
                      {{"connection_id", connection_id}, {"organization_id", organization_id}});
  if (!found) return std::move(found).error();
  if (!*found) return Error::NotFound("connection not found");
  return OkStatus();
}

Result<std::optional<StoredInode>> FindByPath(Session& s, const CatalogQueries& q,
                                              const std::string& organization_id,
                                              const std::string& connection_id,
                                              const std::string& key) {
  auto st = Select(s, q.find_inode,
                   {{"connection_id", connection_id},
                    {"path_key", sql::Bytes{key}},
                    {"organization_id", organization_id}});
  if (!st) return std::move(st).error();
  return ReadStoredInode(*st);
}

Result<StoredInode> GetStored(Session& s, const CatalogQueries& q,
                              const std::string& organization_id, const std::string& inode_id) {
  auto st = Select(s, q.get_inode, {{"inode_id", inode_id}, {"organization_id", organization_id}});
  if (!st) return std::move(st).error();
  auto found = ReadStoredInode(*st);
  if (!found) return std::move(found).error();
  if (!*found) return Error::NotFound("path not found");
  return std::move(**found);
}

// The changes of the counts that one transaction makes, written once at its end: a row whose
// liveness changed moves its connection's and organization's counts, its parent's children
// and every ancestor's descendants.
class CountDeltas {
 public:
  // `path` became live (+1) or removed (-1).
  void Add(const CatalogPath& path, int delta) {
    total_ += delta;
    for (std::size_t n = 1; n < path.size(); ++n) {
      auto& d = by_key_[PathKey(Prefix(path, n))];
      d.descendants += delta;
      if (n + 1 == path.size()) d.children += delta;
    }
  }
  // The pending change of the live children of the inode at `key`.
  std::int64_t Children(const std::string& key) const {
    auto it = by_key_.find(key);
    return it == by_key_.end() ? 0 : it->second.children;
  }
  Status Write(Session& s, const CatalogQueries& q, const std::string& organization_id,
               const std::string& connection_id) const {
    for (const auto& [key, d] : by_key_) {
      if (d.children == 0 && d.descendants == 0) continue;
      auto n = Execute(s, q.add_live_counts,
                       {{"children", d.children},
                        {"descendants", d.descendants},
                        {"connection_id", connection_id},
                        {"path_key", sql::Bytes{key}}});
      if (!n) return std::move(n).error();
    }
    if (total_ == 0) return OkStatus();
    auto n = Execute(s, q.add_connection_count,
                     {{"connection_id", connection_id},
                      {"organization_id", organization_id},
                      {"delta", total_}});
    if (!n) return std::move(n).error();
    n = Execute(s, q.add_organization_count,
                {{"organization_id", organization_id}, {"delta", total_}});
    if (!n) return std::move(n).error();
    return OkStatus();
  }

 private:
  struct Delta {
    std::int64_t children = 0;
    std::int64_t descendants = 0;
  };
  std::map<std::string, Delta> by_key_;
  std::int64_t total_ = 0;
};

// Writes `wanted` (a table's columns as the warehouse lists them) over the stored columns of
// `table_id`, field by field: new ones inserted, changed ones updated (their dbt description
// kept), stored ones the table no longer has marked removed. True when anything changed.
Result<bool> DiffColumns(Session& s, const CatalogQueries& q, const std::string& table_id,
                         bool table_is_new, const std::vector<domain::WarehouseColumn>& wanted) {
  std::map<std::string, CatalogColumn> stored;
  if (!table_is_new) {
    auto st = Select(s, q.columns_of, {{"table_id", table_id}});
    if (!st) return std::move(st).error();
    for (;;) {
      auto row = st->Step();
      if (!row) return std::move(row).error();
      if (!*row) break;
      CatalogColumn c;
      if (Status read = sql::ReadRow(*st, kColumnColumns, c); !read) return read.error();
      std::string name = c.name;
      stored.emplace(std::move(name), std::move(c));
    }
  }
  bool changed = false;
  std::set<std::string> listed;
  for (std::size_t i = 0; i < wanted.size(); ++i) {
    const domain::WarehouseColumn& w = wanted[i];
    if (!listed.insert(w.name).second) continue;  // a name listed twice: the first one counts
    CatalogColumn next;
    next.ordinal = static_cast<int>(i) + 1;
    next.name = w.name;
    next.warehouse_type = w.warehouse_type;
    next.nullable = w.nullable;
    next.comment = w.comment;
    auto it = stored.find(w.name);
    if (it == stored.end()) {
      Status inserted =
          WriteRow(s, q.insert_column, kColumnColumns, next, {{"table_id", table_id}});
      if (!inserted) return inserted.error();
      changed = true;
      continue;
    }
    const CatalogColumn& old = it->second;
    next.dbt_description = old.dbt_description;
    if (old.ordinal == next.ordinal && old.warehouse_type == next.warehouse_type &&
        old.nullable == next.nullable && old.comment == next.comment && !old.removed) {
      continue;
    }
    Status updated = WriteRow(s, q.update_column, kColumnColumns, next, {{"table_id", table_id}});
    if (!updated) return updated.error();
    changed = true;
  }
  for (auto& [name, old] : stored) {
    if (old.removed || listed.count(name) != 0) continue;
    old.removed = true;
    Status updated = WriteRow(s, q.update_column, kColumnColumns, old, {{"table_id", table_id}});
    if (!updated) return updated.error();
    changed = true;
  }
  return changed;
}

}  // namespace

// The batch's objects and every ancestor of theirs, by key: a map in key order puts each
// ancestor before its descendants, so a parent's id is known before its children are written.
Result<CatalogBatchResult> SqlStore::ApplyCatalogBatch(
    const std::string& organization_id, const std::string& connection_id,
    const std::vector<domain::WarehouseObject>& objects, TimeMs now,
    const std::function<std::string()>& new_id) {
  struct Entry {
    CatalogPath path;
    const domain::WarehouseObject* object = nullptr;  // none: an ancestor only
  };
  std::map<std::string, Entry> entries;
  for (const domain::WarehouseObject& o : objects) {
    if (o.path.empty()) return Error::BadRequest("a catalog object has an empty path");
    for (std::size_t n = 1; n < o.path.size(); ++n) {
      CatalogPath prefix = Prefix(o.path, n);
      std::string key = PathKey(prefix);
      entries.try_emplace(std::move(key), Entry{std::move(prefix), nullptr});
    }
    Entry& e = entries[PathKey(o.path)];
    e.path = o.path;
    e.object = &o;  // a path listed twice: the last one counts
  }
  // Ids drawn once, so a body run again (PostgreSQL's retries) gives the same new paths the
  // same ids.
  std::map<std::string, std::string> drawn;
  return Run<CatalogBatchResult>(
      "apply_catalog_batch", Access::kWrite, [&](Session& s) -> Result<CatalogBatchResult> {
        const CatalogQueries& q = q_->catalog;
        if (Status locked = LockConnection(s, q, organization_id, connection_id); !locked) {
          return locked.error();
        }
        CatalogBatchResult result;
        CountDeltas deltas;
        std::map<std::string, std::string> ids;  // key -> inode id, for the children's parent_id
        for (const auto& [key, e] : entries) {
          auto found = FindByPath(s, q, organization_id, connection_id, key);
          if (!found) return std::move(found).error();
          Inode next;
          if (*found) next = (*found)->inode;
          next.organization_id = organization_id;
          next.connection_id = connection_id;
          next.path = e.path;
          if (e.path.size() > 1)
            next.parent_id = ids.at(PathKey(Prefix(e.path, e.path.size() - 1)));
          const bool is_new = !*found;
          const bool was_removed = !is_new && next.removed;
          bool changed = false;
          if (e.object != nullptr) {
            changed = next.kind != e.object->kind || next.comment != e.object->comment;
            next.kind = e.object->kind;
            next.comment = e.object->comment;
          } else if (is_new) {
            next.kind = std::string(domain::inode_kind::kScope);
          }
          next.removed = false;
          next.synced_at = now;
          if (is_new) {
            auto [it, fresh] = drawn.try_emplace(key);
            if (fresh) it->second = new_id();
            next.inode_id = it->second;
            Status inserted = WriteRow(
                s, q.insert_inode, kInodeColumns, next,
                {{"live_children", std::int64_t{0}}, {"live_descendants", std::int64_t{0}}});
            if (!inserted) return inserted.error();
          } else if (changed || was_removed) {
            auto n = Execute(s, q.update_inode,
                             {{"kind", next.kind},
                              {"comment", next.comment},
                              {"is_removed", false},
                              {"synced_at", now},
                              {"inode_id", next.inode_id}});
            if (!n) return std::move(n).error();
          }
          if (e.object != nullptr &&
              (next.kind == domain::inode_kind::kTable || !e.object->columns.empty())) {
            auto columns_changed = DiffColumns(s, q, next.inode_id, is_new, e.object->columns);
            if (!columns_changed) return std::move(columns_changed).error();
            changed = changed || *columns_changed;
          }
          if (is_new || was_removed) {
            ++result.added;
            deltas.Add(e.path, +1);
          } else if (changed) {
            ++result.changed;
          }
          ids.emplace(key, next.inode_id);
        }
        if (Status written = deltas.Write(s, q, organization_id, connection_id); !written) {
          return written.error();
        }
        return result;
      });
}

// Walks the live inodes of the subtree from its last key down, kWriteBatch per transaction: a
// descendant comes before its ancestors, so a scope whose subtree still holds a live (seen)
// inode is known to, and stays live (a live inode's ancestors are live).
Result<std::int64_t> SqlStore::MarkUnseenRemoved(const std::string& organization_id,
                                                 const std::string& connection_id,
                                                 const domain::CatalogPath& prefix,
                                                 const std::unordered_set<std::string>& seen,
                                                 TimeMs now) {
  const std::string lo = prefix.empty() ? std::string() : PathKey(prefix);
  std::optional<std::string> hi;
  if (!prefix.empty()) hi = domain::PathKeyEnd(prefix);
  std::int64_t marked = 0;
  for (;;) {
    struct Step {
      std::int64_t marked = 0;
      std::size_t walked = 0;
      std::string last_key;
    };
    auto step = Run<Step>("mark_unseen_removed", Access::kWrite, [&](Session& s) -> Result<Step> {
      const CatalogQueries& q = q_->catalog;
      if (Status locked = LockConnection(s, q, organization_id, connection_id); !locked) {
        return locked.error();
      }
      std::vector<StoredInode> rows;
      {
        auto st = Select(s, q.live_below_desc[hi.has_value()],
                         {{"organization_id", organization_id},
                          {"connection_id", connection_id},
                          {"lo", sql::Bytes{lo}},
                          {"limit", static_cast<std::int64_t>(kWriteBatch)}});
        if (!st) return std::move(st).error();
        if (hi) st->Bind("hi", sql::Bytes{*hi});
        for (;;) {
          auto row = ReadStoredInode(*st);
          if (!row) return std::move(row).error();
          if (!*row) break;
          rows.push_back(std::move(**row));
        }
      }
      Step out;
      out.walked = rows.size();
      CountDeltas deltas;
      for (const StoredInode& r : rows) {
        std::string key = PathKey(r.inode.path);
        out.last_key = key;
        if (seen.count(key) != 0) continue;
        if (r.live_children + deltas.Children(key) > 0) continue;
        auto n =
            Execute(s, q.remove_inode,
                    {{"is_removed", true}, {"synced_at", now}, {"inode_id", r.inode.inode_id}});
        if (!n) return std::move(n).error();
        n = Execute(s, q.remove_columns_of, {{"is_removed", true}, {"table_id", r.inode.inode_id}});
        if (!n) return std::move(n).error();
        deltas.Add(r.inode.path, -1);
        ++out.marked;
      }
      if (Status written = deltas.Write(s, q, organization_id, connection_id); !written) {
        return written.error();
      }
      return out;
    });
    if (!step) return std::move(step).error();
    marked += step->marked;
    if (step->walked < kWriteBatch) return marked;
    hi = step->last_key;
  }
}

Result<Inode> SqlStore::GetInode(const std::string& organization_id, const std::string& inode_id) {
  return FindOne("get_inode", q_->catalog.get_inode, kInodeColumns,
                 {{"inode_id", inode_id}, {"organization_id", organization_id}}, "path not found");
}

Result<Inode> SqlStore::FindInode(const std::string& organization_id,
                                  const std::string& connection_id,
                                  const domain::CatalogPath& path) {
  const std::string key = PathKey(path);
  return FindOne("find_inode", q_->catalog.find_inode, kInodeColumns,
                 {{"connection_id", connection_id},
                  {"path_key", sql::Bytes{key}},
                  {"organization_id", organization_id}},
                 "path not found");
}

namespace {

// One run of the listing order: the live inodes of the organization (connection_id empty), or
// of one connection with lo <= path_key < hi (no hi: to its end), or the live children of a
// scope (parent_id); `count` of them, from the kept counts.
struct Segment {
  std::string connection_id;
  std::string lo;
  std::optional<std::string> hi;
  std::optional<std::string> parent_id;
  std::int64_t count = 0;
};

// What applies to a member: the connections it holds a grant on (with their live counts), and
// the inodes of its path grants.
struct GrantedInode {
  std::string connection_id;
  CatalogPath path;
  std::string key;
  bool removed = false;
  std::int64_t live_descendants = 0;
};
struct MemberGrants {
  std::map<std::string, std::int64_t> connections;
  // Live path grants outside those connections and not inside another such grant, in listing
  // order (deduplicated: a grant inside another one adds nothing).
  std::vector<GrantedInode> paths;
  // Every path grant (removed inodes too), for CanSeeInode.
  std::vector<GrantedInode> all_paths;
};

bool KeyIsPrefix(std::string_view prefix, std::string_view key) {
  return key.substr(0, prefix.size()) == prefix;
}

Result<MemberGrants> ReadMemberGrants(Session& s, const CatalogQueries& q,
                                      const std::string& organization_id,
                                      const std::string& member_id) {
  MemberGrants out;
  {
    auto st = Select(s, q.connection_grants_of_member,
                     {{"organization_id", organization_id}, {"member_id", member_id}});
    if (!st) return std::move(st).error();
    for (;;) {
      auto row = st->Step();
      if (!row) return std::move(row).error();
      if (!*row) break;
      out.connections[std::string(st->Text(0))] = st->Int(1);
    }
  }
  auto st = Select(s, q.path_grants_of_member,
                   {{"organization_id", organization_id}, {"member_id", member_id}});
  if (!st) return std::move(st).error();
  for (;;) {
    auto row = st->Step();
    if (!row) return std::move(row).error();
    if (!*row) break;
    GrantedInode g;
    g.connection_id = st->Text(0);
    if (Status parsed = ParsePath(st->Text(1), g.path); !parsed) return parsed.error();
    g.key = PathKey(g.path);
    g.removed = st->Bool(2);
    g.live_descendants = st->Int(3);
    out.all_paths.push_back(std::move(g));
  }
  std::vector<GrantedInode> live;
  for (const GrantedInode& g : out.all_paths) {
    if (!g.removed && out.connections.count(g.connection_id) == 0) live.push_back(g);
  }
  std::sort(live.begin(), live.end(), [](const GrantedInode& a, const GrantedInode& b) {
    return std::tie(a.connection_id, a.key) < std::tie(b.connection_id, b.key);
  });
  for (GrantedInode& g : live) {
    // A grant's descendants sort right after it: the last kept grant is the only candidate.
    if (!out.paths.empty() && out.paths.back().connection_id == g.connection_id &&
        KeyIsPrefix(out.paths.back().key, g.key)) {
      continue;
    }
    out.paths.push_back(std::move(g));
  }
  return out;
}

// The segments a member sees of `connection` (all connections when empty), in listing order:
// each granted connection whole; each path grant's subtree; each of its ancestors alone.
std::vector<Segment> MemberSegments(const MemberGrants& grants, const std::string& connection) {
  std::vector<Segment> out;
  for (const auto& [id, count] : grants.connections) {
    if (!connection.empty() && id != connection) continue;
    out.push_back({id, "", std::nullopt, std::nullopt, count});
  }
  std::set<std::pair<std::string, std::string>> ancestors;
  for (const GrantedInode& g : grants.paths) {
    if (!connection.empty() && g.connection_id != connection) continue;
    out.push_back(
        {g.connection_id, g.key, domain::PathKeyEnd(g.path), std::nullopt, 1 + g.live_descendants});
    for (std::size_t n = 1; n < g.path.size(); ++n) {
      ancestors.emplace(g.connection_id, PathKey(Prefix(g.path, n)));
    }
  }
  // An ancestor of a kept grant is inside no kept grant (that grant would contain the other).
  for (const auto& [id, key] : ancestors) {
    out.push_back({id, key, Successor(key), std::nullopt, 1});
  }
  std::sort(out.begin(), out.end(), [](const Segment& a, const Segment& b) {
    return std::tie(a.connection_id, a.lo) < std::tie(b.connection_id, b.lo);
  });
  return out;
}

// The segments of the children of `parent` that a member sees: all of them when it sees the
// parent's subtree; else, when the parent is an ancestor of path grants, the children on the
// way to them; else none (nullopt: the member may not see the parent).
std::optional<std::vector<Segment>> MemberChildSegments(const MemberGrants& grants,
                                                        const StoredInode& parent) {
  const Inode& p = parent.inode;
  const std::string key = PathKey(p.path);
  auto whole = [&] {
    return std::vector<Segment>{
        {p.connection_id, "", std::nullopt, p.inode_id, parent.live_children}};
  };
  if (grants.connections.count(p.connection_id) != 0) return whole();
  std::set<std::string> on_the_way;
  for (const GrantedInode& g : grants.paths) {
    if (g.connection_id != p.connection_id) continue;
    if (KeyIsPrefix(g.key, key)) return whole();
    if (g.path.size() > p.path.size() && KeyIsPrefix(key, g.key)) {
      on_the_way.insert(PathKey(Prefix(g.path, p.path.size() + 1)));
    }
  }
  if (on_the_way.empty()) return std::nullopt;
  std::vector<Segment> out;
  for (const std::string& child : on_the_way) {
    out.push_back({p.connection_id, child, Successor(child), std::nullopt, 1});
  }
  return out;
}

}  // namespace

Result<InodePage> SqlStore::ListInodes(const InodeListQuery& query) {
  const int limit = std::clamp(query.limit, 1, kMaxPageSize);
  // The plan, the total and the entries from one snapshot.
  return Run<InodePage>("list_inodes", Access::kSnapshot, [&](Session& s) -> Result<InodePage> {
    const CatalogQueries& q = q_->catalog;
    const std::string& org = query.organization_id;
    std::optional<MemberGrants> grants;
    if (query.visible_to_member) {
      auto read = ReadMemberGrants(s, q, org, *query.visible_to_member);
      if (!read) return std::move(read).error();
      grants = std::move(*read);
    }
    std::vector<Segment> segments;
    if (query.parent_id) {
      auto parent = GetStored(s, q, org, *query.parent_id);
      if (!parent) return std::move(parent).error();
      if (query.connection_id && *query.connection_id != parent->inode.connection_id) {
        return InodePage{};
      }
      if (grants) {
        auto visible = MemberChildSegments(*grants, *parent);
        if (!visible) return Error::NotFound("path not found");
        segments = std::move(*visible);
      } else {
        segments.push_back({parent->inode.connection_id, "", std::nullopt, parent->inode.inode_id,
                            parent->live_children});
      }
    } else if (grants) {
      segments = MemberSegments(*grants, query.connection_id.value_or(""));
    } else if (query.connection_id) {
      auto found = Exists(s, q_->connections.exists,
                          {{"connection_id", *query.connection_id}, {"organization_id", org}});
      if (!found) return std::move(found).error();
      if (!*found) return Error::NotFound("connection not found");
      auto count = Select(s, q.connection_count,
                          {{"connection_id", *query.connection_id}, {"organization_id", org}});
      if (!count) return std::move(count).error();
      auto row = count->Step();
      if (!row) return std::move(row).error();
      segments.push_back(
          {*query.connection_id, "", std::nullopt, std::nullopt, *row ? count->Int(0) : 0});
    } else {
      auto count = Select(s, q.organization_count, {{"organization_id", org}});
      if (!count) return std::move(count).error();
      auto row = count->Step();
      if (!row) return std::move(row).error();
      segments.push_back({"", "", std::nullopt, std::nullopt, *row ? count->Int(0) : 0});
    }

    InodePage page;
    for (const Segment& seg : segments) page.total += seg.count;
    const auto wanted = static_cast<std::size_t>(limit) + 1;
    std::int64_t skip = query.after ? 0 : std::max<std::int64_t>(query.offset, 0);
    std::vector<Inode> entries;
    for (const Segment& seg : segments) {
      if (entries.size() >= wanted) break;
      if (seg.count == 0) continue;
      std::string lo = seg.lo;
      std::int64_t offset = 0;
      if (query.after && !seg.connection_id.empty()) {
        if (seg.connection_id < query.after->connection_id) continue;
        if (seg.connection_id == query.after->connection_id) {
          lo = std::max(lo, Successor(query.after->path_key));
          if (seg.hi && lo >= *seg.hi) continue;
        }
      } else if (!query.after) {
        if (skip >= seg.count) {
          skip -= seg.count;
          continue;
        }
        offset = skip;
        skip = 0;
      }
      const auto room = static_cast<std::int64_t>(wanted - entries.size());
      auto open = [&]() -> Result<Stmt> {
        if (seg.parent_id) {
          return Select(s, q.list_children,
                        {{"parent_id", *seg.parent_id}, {"lo", sql::Bytes{lo}}});
        }
        if (seg.connection_id.empty()) {
          auto st =
              Select(s, q.list_organization[query.after.has_value()], {{"organization_id", org}});
          if (st && query.after) {
            st->Bind({{"after_connection_id", query.after->connection_id},
                      {"after_path_key", sql::Bytes{query.after->path_key}}});
          }
          return st;
        }
        auto st = Select(s, q.list_range[seg.hi.has_value()],
                         {{"organization_id", org},
                          {"connection_id", seg.connection_id},
                          {"lo", sql::Bytes{lo}}});
        if (st && seg.hi) st->Bind("hi", sql::Bytes{*seg.hi});
        return st;
      };
      auto st = open();
      if (!st) return std::move(st).error();
      st->Bind({{"limit", room}, {"offset", offset}});
      for (;;) {
        auto row = ReadStoredInode(*st);
        if (!row) return std::move(row).error();
        if (!*row) break;
        entries.push_back(std::move((*row)->inode));
      }
    }
    page.has_more = entries.size() > static_cast<std::size_t>(limit);
    if (page.has_more) entries.resize(static_cast<std::size_t>(limit));
    page.entries = std::move(entries);
    return page;
  });
}

Result<ColumnPage> SqlStore::ListColumns(const std::string& organization_id,
                                         const std::string& table_id, int limit,
                                         const std::optional<ColumnCursor>& after) {
  limit = std::clamp(limit, 1, kMaxColumnPageSize);
  return Run<ColumnPage>("list_columns", Access::kSnapshot, [&](Session& s) -> Result<ColumnPage> {
    const CatalogQueries& q = q_->catalog;
    auto table = GetStored(s, q, organization_id, table_id);
    if (!table) return std::move(table).error();
    if (table->inode.kind != domain::inode_kind::kTable) return Error::NotFound("table not found");
    auto st = Select(s, q.page_columns[after.has_value()],
                     {{"table_id", table_id}, {"limit", limit + 1}});
    if (!st) return std::move(st).error();
    if (after) st->Bind({{"after_ordinal", after->ordinal}, {"after_name", after->name}});
    ColumnPage page;
    auto more = ReadPage(*st, kColumnColumns, limit, page.entries);
    if (!more) return std::move(more).error();
    page.has_more = *more;
    // A removed table's columns are removed, whatever their rows say.
    if (table->inode.removed) {
      for (CatalogColumn& c : page.entries) c.removed = true;
    }
    return page;
  });
}

Result<bool> SqlStore::CanSeeInode(const std::string& organization_id, const std::string& inode_id,
                                   const std::string& member_id) {
  return Run<bool>("can_see_inode", Access::kSnapshot, [&](Session& s) -> Result<bool> {
    const CatalogQueries& q = q_->catalog;
    auto inode = GetStored(s, q, organization_id, inode_id);
    if (!inode) return std::move(inode).error();
    auto grants = ReadMemberGrants(s, q, organization_id, member_id);
    if (!grants) return std::move(grants).error();
    const Inode& i = inode->inode;
    if (grants->connections.count(i.connection_id) != 0) return true;
    const std::string key = PathKey(i.path);
    for (const GrantedInode& g : grants->all_paths) {
      if (g.connection_id != i.connection_id) continue;
      if (KeyIsPrefix(g.key, key)) return true;                // the granted path or its subtree
      if (!g.removed && KeyIsPrefix(key, g.key)) return true;  // an ancestor of a live grant
    }
    return false;
  });
}

Result<std::int64_t> SqlStore::ApplyDbtDescriptions(
    const std::string& organization_id, const std::string& connection_id,
    const std::vector<DbtDescription>& descriptions) {
  std::int64_t matched = 0;
  for (std::size_t begin = 0; begin < descriptions.size() || begin == 0; begin += kWriteBatch) {
    const std::size_t end = std::min(descriptions.size(), begin + kWriteBatch);
    auto n = Run<std::int64_t>(
        "apply_dbt_descriptions", Access::kWrite, [&](Session& s) -> Result<std::int64_t> {
          const CatalogQueries& q = q_->catalog;
          if (Status locked = LockConnection(s, q, organization_id, connection_id); !locked) {
            return locked.error();
          }
          std::int64_t batch = 0;
          for (std::size_t i = begin; i < end; ++i) {
            const DbtDescription& d = descriptions[i];
            auto found = FindByPath(s, q, organization_id, connection_id, PathKey(d.table_path));
            if (!found) return std::move(found).error();
            if (!*found) continue;
            const std::string& id = (*found)->inode.inode_id;
            auto changed =
                d.column.empty()
                    ? Execute(s, q.set_inode_dbt,
                              {{"description", d.description}, {"inode_id", id}})
                    : Execute(
                          s, q.set_column_dbt,
                          {{"description", d.description}, {"table_id", id}, {"name", d.column}});
            if (!changed) return std::move(changed).error();
            batch += *changed > 0 ? 1 : 0;
          }
          return batch;
        });
    if (!n) return std::move(n).error();
    matched += *n;
    if (end == descriptions.size()) break;
  }
  return matched;
}

// ---- path grants: the grants machinery (sql_grants.cc) on an inode ---------------------------

Status SqlStore::UpsertPathGrants(const std::string& organization_id, const std::string& inode_id,
                                  const std::vector<Grant>& grants) {
  return Run<Ok>("upsert_path_grants", Access::kWrite, [&](Session& s) -> Status {
    auto inode = GetStored(s, q_->catalog, organization_id, inode_id);
    if (!inode) return std::move(inode).error();
    Grant on;
    on.connection_id = inode->inode.connection_id;
    on.inode_id = inode_id;
    return UpsertGrantRows(s, q_->grants, q_->catalog.on_paths, organization_id, on, grants);
  });
}

Result<GrantPage> SqlStore::ListPathGrants(const std::string& organization_id,
                                           const std::string& inode_id, int limit,
                                           const std::optional<GrantCursor>& after,
                                           std::int64_t offset) {
  return Run<GrantPage>("list_path_grants", Access::kSnapshot,
                        [&](Session& s) -> Result<GrantPage> {
                          auto inode = GetStored(s, q_->catalog, organization_id, inode_id);
                          if (!inode) return std::move(inode).error();
                          return ListGrantRows(s, q_->catalog.on_paths, organization_id, inode_id,
                                               limit, after, offset);
                        });
}

Status SqlStore::DeletePathGrant(const std::string& organization_id, const std::string& inode_id,
                                 const std::string& grant_id) {
  return Run<Ok>("delete_path_grant", Access::kWrite, [&](Session& s) -> Status {
    return DeleteGrantRow(s, q_->catalog.on_paths, organization_id, inode_id, grant_id);
  });
}

// ---- syncs -----------------------------------------------------------------------------------

Status SqlStore::SaveSync(const SyncRecord& sync) {
  return Run<Ok>("save_sync", Access::kWrite, [&](Session& s) -> Status {
    Status saved = WriteRow(s, q_->catalog.save_sync, kSyncColumns, sync);
    return Reword(std::move(saved), ErrorCode::kNotFound, "connection not found");
  });
}

Result<SyncRecord> SqlStore::LastSync(const std::string& organization_id,
                                      const std::string& connection_id) {
  return FindOne("last_sync", q_->catalog.last_sync, kSyncColumns,
                 {{"connection_id", connection_id}, {"organization_id", organization_id}},
                 "no sync of this connection");
}

Result<std::vector<SyncRecord>> SqlStore::RunningSyncs() {
  using Syncs = std::vector<SyncRecord>;
  return Run<Syncs>("running_syncs", Access::kPoint, [&](Session& s) -> Result<Syncs> {
    auto st = Select(s, q_->catalog.running_syncs, {});
    if (!st) return std::move(st).error();
    Syncs out;
    for (;;) {
      auto row = st->Step();
      if (!row) return std::move(row).error();
      if (!*row) return out;
      if (Status read = sql::ReadRow(*st, kSyncColumns, out.emplace_back()); !read) {
        return read.error();
      }
    }
  });
}

}  // namespace connreg::store
