// Idempotency keys of POST /v2/connections: their rows and statements, once for every backend.
#include <string>
#include <utility>

#include "store/sql_queries.h"
#include "store/sql_rows.h"
#include "store/sql_store.h"

namespace connreg::store {
namespace {

// The recorded response; its key (organization_id, member_id, key) is bound apart.
constexpr Column<IdempotentResponse> kResponseColumns[] = {
    Field<&IdempotentResponse::request_hash>("request_hash"),
    Field<&IdempotentResponse::status>("status"),
    Field<&IdempotentResponse::body>("body"),
    Field<&IdempotentResponse::location>("location"),
    Field<&IdempotentResponse::created_at>("created_at"),
};

constexpr std::string_view kKeyMatch =
    " WHERE organization_id = :organization_id AND member_id = :member_id AND key = :key";

}  // namespace

IdempotencyQueries::IdempotencyQueries(sql::QueryBook& b)
    : get(b, "SELECT " + sql::SelectList(kResponseColumns) + " FROM idempotency_keys" +
                 std::string(kKeyMatch) + " AND created_at >= :not_before"),
      remove_older(b, "DELETE FROM idempotency_keys" + std::string(kKeyMatch) +
                          " AND created_at < :not_before"),
      insert(b, sql::InsertSql("idempotency_keys", kResponseColumns,
                               {"organization_id", "member_id", "key"})) {}

Result<IdempotentResponse> SqlStore::GetIdempotent(const std::string& organization_id,
                                                   const std::string& member_id,
                                                   const std::string& key, TimeMs not_before) {
  return FindOne("get_idempotent", q_->idempotency.get, kResponseColumns,
                 {{"organization_id", organization_id},
                  {"member_id", member_id},
                  {"key", key},
                  {"not_before", not_before}},
                 "idempotency key not found");
}

// A record older than `not_before` is one GetIdempotent no longer returns: it is replaced here,
// in the same transaction as the create, rather than left to block its key until the next
// purge. Two nodes racing on one key: the second INSERT waits for the first's uncommitted key,
// then fails as a unique violation (kConflict).
Status SqlStore::CreateConnectionIdempotent(const domain::Connection& c,
                                            const std::string& member_id, const std::string& key,
                                            const IdempotentResponse& response, TimeMs not_before) {
  return Run<Ok>("create_connection_idempotent", Access::kWrite, [&](Session& s) -> Status {
    auto n = Execute(s, q_->idempotency.remove_older,
                     {{"organization_id", c.organization_id},
                      {"member_id", member_id},
                      {"key", key},
                      {"not_before", not_before}});
    if (!n) return std::move(n).error();
    Status recorded =
        WriteRow(s, q_->idempotency.insert, kResponseColumns, response,
                 {{"organization_id", c.organization_id}, {"member_id", member_id}, {"key", key}});
    recorded =
        Reword(std::move(recorded), ErrorCode::kConflict, "the Idempotency-Key was already used");
    if (!recorded) return recorded;
    return InsertConnection(s, c);
  });
}

}  // namespace connreg::store
