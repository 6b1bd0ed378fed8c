// The warehouse catalog (contract section 13): inodes, columns, path grants and syncs.
// TODO(catalog): placeholder until the store's catalog lands.
#include "store/sql_store.h"

namespace connreg::store {
namespace {
Error NotYet() { return Error::Internal("the catalog store is not built yet"); }
}  // namespace

Result<CatalogBatchResult> SqlStore::ApplyCatalogBatch(const std::string&, const std::string&,
                                                       const std::vector<domain::WarehouseObject>&,
                                                       TimeMs,
                                                       const std::function<std::string()>&) {
  return NotYet();
}
Result<std::int64_t> SqlStore::MarkUnseenRemoved(const std::string&, const std::string&,
                                                 const domain::CatalogPath&,
                                                 const std::unordered_set<std::string>&, TimeMs) {
  return NotYet();
}
Result<Inode> SqlStore::GetInode(const std::string&, const std::string&) { return NotYet(); }
Result<Inode> SqlStore::FindInode(const std::string&, const std::string&,
                                  const domain::CatalogPath&) {
  return NotYet();
}
Result<InodePage> SqlStore::ListInodes(const InodeListQuery&) { return NotYet(); }
Result<ColumnPage> SqlStore::ListColumns(const std::string&, const std::string&, int,
                                         const std::optional<ColumnCursor>&) {
  return NotYet();
}
Result<bool> SqlStore::CanSeeInode(const std::string&, const std::string&, const std::string&) {
  return NotYet();
}
Result<std::int64_t> SqlStore::ApplyDbtDescriptions(const std::string&, const std::string&,
                                                    const std::vector<DbtDescription>&) {
  return NotYet();
}
Status SqlStore::UpsertPathGrants(const std::string&, const std::string&,
                                  const std::vector<Grant>&) {
  return NotYet();
}
Result<GrantPage> SqlStore::ListPathGrants(const std::string&, const std::string&, int,
                                           const std::optional<GrantCursor>&, std::int64_t) {
  return NotYet();
}
Status SqlStore::DeletePathGrant(const std::string&, const std::string&, const std::string&) {
  return NotYet();
}
Status SqlStore::SaveSync(const SyncRecord&) { return NotYet(); }
Result<SyncRecord> SqlStore::LastSync(const std::string&, const std::string&) { return NotYet(); }
Result<std::vector<SyncRecord>> SqlStore::RunningSyncs() { return NotYet(); }

}  // namespace connreg::store
