// Connections and their sealed secrets: the rows, the listing, and the walk of a key rotation,
// once for every backend.
#include <algorithm>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "core/log.h"
#include "domain/json_text.h"
#include "domain/permissions.h"
#include "store/sql_queries.h"
#include "store/sql_rows.h"
#include "store/sql_store.h"

namespace connreg::store {
namespace {

using C = domain::Connection;

constexpr int kMaxPageSize = 1000;

Status ParseObject(std::string_view text, std::string_view column, boost::json::object& out) {
  boost::system::error_code ec;
  boost::json::value v = domain::ParseJsonText(text, ec);
  if (ec || !v.is_object()) {
    return Error::Internal("store: corrupt JSON in connections." + std::string(column));
  }
  out = std::move(v.as_object());
  return OkStatus();
}

// A text column of the last test: NULL when there is none (last_test_at says so).
template <std::string domain::LastTest::*Member>
constexpr Column<C> LastTestText(std::string_view name) {
  return {name,
          [](Stmt& st, std::string_view p, const C& c) {
            if (c.last_test) {
              st.Bind(p, (*c.last_test).*Member);
            } else {
              st.Bind(p, std::nullopt);
            }
          },
          [](const Stmt& st, int col, C& c) -> Status {
            if (c.last_test) st.Get(col, (*c.last_test).*Member);
            return OkStatus();
          }};
}

// The connection object's columns (migrations.cc has their types). Secrets have a table of
// their own, below; the last test is three nullable columns, all set or all NULL.
constexpr Column<C> kConnectionColumns[] = {
    Field<&C::organization_id>("organization_id", kKey),
    Field<&C::connection_id>("connection_id", kKey),
    Field<&C::name>("name"),
    // The haystack of `search`: written with the name, never read back.
    {"name_folded",
     [](Stmt& st, std::string_view p, const C& c) { st.Bind(p, domain::FoldName(c.name)); },
     nullptr},
    Field<&C::type>("type"),
    Field<&C::is_sample>("is_sample"),
    Field<&C::is_archived>("is_archived"),
    Field<&C::use_oauth>("use_oauth"),
    Field<&C::write_access>("write_access"),
    Field<&C::use_friendly_names>("use_friendly_names"),
    Field<&C::timeout_secs>("timeout_secs"),
    Field<&C::created_by>("created_by"),
    Field<&C::updated_by>("updated_by"),
    Field<&C::created_at>("created_at"),
    Field<&C::updated_at>("updated_at"),
    Field<&C::last_active_at>("last_active_at"),
    Field<&C::version>("version"),
    {"details",
     [](Stmt& st, std::string_view p, const C& c) {
       st.Bind(p, boost::json::serialize(c.details));
     },
     [](const Stmt& st, int col, C& c) { return ParseObject(st.Text(col), "details", c.details); }},
    {"description",
     [](Stmt& st, std::string_view p, const C& c) {
       if (c.description) {
         st.Bind(p, boost::json::serialize(*c.description));
       } else {
         st.Bind(p, std::nullopt);
       }
     },
     [](const Stmt& st, int col, C& c) -> Status {
       if (st.IsNull(col)) return OkStatus();
       return ParseObject(st.Text(col), "description", c.description.emplace());
     }},
    {"last_test_at",
     [](Stmt& st, std::string_view p, const C& c) {
       st.Bind(p, c.last_test ? std::optional<TimeMs>(c.last_test->at) : std::nullopt);
     },
     [](const Stmt& st, int col, C& c) -> Status {
       if (!st.IsNull(col)) c.last_test.emplace().at = st.Int(col);
       return OkStatus();
     }},
    LastTestText<&domain::LastTest::read>("last_test_read"),
    LastTestText<&domain::LastTest::write>("last_test_write"),
};
const int kConnectionColumnCount = sql::ReadableCount(kConnectionColumns);

// One sealed secret; its connection_id and field are bound and read apart.
constexpr Column<domain::StoredSecret> kSecretColumns[] = {
    {"sealed",
     [](Stmt& st, std::string_view p, const domain::StoredSecret& s) {
       st.Bind(p, sql::Bytes{s.sealed});
     },
     [](const Stmt& st, int col, domain::StoredSecret& s) -> Status {
       s.sealed = st.BytesAt(col);
       return OkStatus();
     }},
    Field<&domain::StoredSecret::key_id>("key_id"),
    Field<&domain::StoredSecret::updated_at>("updated_at"),
};

// A page's narrow row: the id, the sort key and the stamp (store.h, ConnectionStamp: the
// version, and every column in the body that a write may change without a new version, which is
// RecordTest's). A new writer that changes a body column and keeps the version adds it here, or
// StoreStampTest.EveryWritePathChangesTheStampWhenItChangesTheBody fails.
template <auto Member>
constexpr Column<ConnectionPageRow> StampField(std::string_view name) {
  return {name, nullptr, [](const Stmt& st, int col, ConnectionPageRow& row) -> Status {
            st.Get(col, row.stamp.*Member);
            return OkStatus();
          }};
}
constexpr Column<ConnectionPageRow> kPageRowColumns[] = {
    Field<&ConnectionPageRow::connection_id>("connection_id"),
    Field<&ConnectionPageRow::name>("name"),
    Field<&ConnectionPageRow::created_at>("created_at"),
    StampField<&ConnectionStamp::version>("version"),
    StampField<&ConnectionStamp::last_active_at>("last_active_at"),
    StampField<&ConnectionStamp::last_test_at>("last_test_at"),
    StampField<&ConnectionStamp::last_test_read>("last_test_read"),
    StampField<&ConnectionStamp::last_test_write>("last_test_write"),
};

// connection_id, field, then the secret's columns.
const std::string& SecretSelectList() {
  static const std::string list = "connection_id, field, " + sql::SelectList(kSecretColumns);
  return list;
}

Status ReadSecretRow(const Stmt& st, int first, std::map<std::string, domain::StoredSecret>& into) {
  domain::StoredSecret secret;
  if (Status s = sql::ReadRow(st, kSecretColumns, secret, first + 1); !s) return s;
  into.insert_or_assign(std::string(st.Text(first)), std::move(secret));
  return OkStatus();
}

// How a listing's `search` is served: not at all, from the search index (a term of at least
// kIndexedSearchChars characters, the trigram's length: the index finds its matches, and the
// cost follows their number), or by a scan of the organization's rows (a shorter term, which
// has no trigram), refused beyond kMaxScannedConnections rows so that it stays bounded (an
// admin's: a non-admin's listing reads only what their grants reach). A scan costs about 15 ms
// per 100,000 rows on SQLite (its count and, at worst, its page), so the bound is about 0.3 s,
// and only an organization beyond a million connections ever sees the refusal.
enum Search { kNoSearch = 0, kIndexedSearch = 1, kScannedSearch = 2 };
constexpr int kIndexedSearchChars = 3;
constexpr std::int64_t kMaxScannedConnections = 1000000;

Search SearchOf(const std::optional<std::string>& term) {
  if (!term) return kNoSearch;
  // Characters (UTF-8 code points, as both indexes count them), not bytes.
  const auto chars = std::count_if(term->begin(), term->end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  });
  return chars >= kIndexedSearchChars ? kIndexedSearch : kScannedSearch;
}

// The count rows are spread over kCountShards rows per (organization, type, archived), by a hash
// of the connection id (migrations.cc says why); any shard would do, as only sums are read.
constexpr std::uint32_t kCountShards = 16;

std::int64_t CountShard(std::string_view connection_id) {
  std::uint32_t h = 2166136261u;  // FNV-1a
  for (char c : connection_id) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
  return static_cast<std::int64_t>(h % kCountShards);
}

// The search: a case-insensitive substring of the name, as a LIKE on the folded name (the term
// is folded too) with LIKE's own characters escaped, so that both backends agree byte for byte
// and PostgreSQL's trigram index serves it (it serves LIKE, not strpos). Both backends' LIKE
// folds ASCII case at most, which folded text on both sides makes moot.
constexpr std::string_view kNameMatches =
    R"(name_folded LIKE '%' || replace(replace(replace(:search, '\', '\\'), '%', '\%'), '_', '\_')
 || '%' ESCAPE '\')";

// The conditions every listing statement shares: organization, archived, type, search.
std::string FilterConditions(const sql::Dialect& d, Search search) {
  std::string sql =
      " organization_id = :organization_id"
      " AND (CAST(:include_archived AS BOOLEAN) OR NOT is_archived)"
      " AND (CAST(:type AS TEXT) IS NULL OR type = :type)";
  if (search != kNoSearch) sql += " AND " + std::string(kNameMatches);
  if (search == kIndexedSearch && !d.search_index_candidates.empty()) {
    sql += " AND " + std::string(d.search_index_candidates);
  }
  return sql;
}

// The connections whose grants reach :member_id: its own, and its teams' that are not archived
// (kGrantingTeamsOfMember), through grants_of_member and grants_of_team.
// A non-admin's rows are read from there: the grants drive the join (SQLite's CROSS JOIN keeps
// that order; with `connection_id IN`, its planner walked the organization instead), each a
// primary-key lookup of its connection, so the cost follows the grants, not the organization.
std::string FromGranted(const sql::Dialect& d, Search search) {
  return " FROM (SELECT g.connection_id AS granted_id FROM grants AS g WHERE g.member_id ="
         " :member_id UNION SELECT g.connection_id FROM grants AS g WHERE g.team_id IN (" +
         std::string(kGrantingTeamsOfMember) +
         ")) AS granted CROSS JOIN connections WHERE connections.connection_id ="
         " granted.granted_id AND " +
         std::string(kMemberIsActive) + " AND" + FilterConditions(d, search);
}

// The filter of an admin's page, and of a non-admin's indexed search, which the search index
// drives: there a non-admin's view adds two correlated EXISTS, each a point lookup per match
// (grants_by_member; grants_by_team for each team of the member that is not archived, a list
// computed once per statement), and the test that the member is active (computed once).
std::string ListFilter(const sql::Dialect& d, bool visible, Search search) {
  std::string sql = " WHERE" + FilterConditions(d, search);
  if (visible) {
    // The member's own state is one uncorrelated test, computed once per statement.
    sql += " AND " + std::string(kMemberIsActive) +
           " AND (EXISTS (SELECT 1 FROM grants AS g WHERE g.connection_id ="
           " connections.connection_id AND g.member_id = :member_id)"
           " OR EXISTS (SELECT 1 FROM grants AS g WHERE g.connection_id ="
           " connections.connection_id AND g.team_id IN (" +
           std::string(kGrantingTeamsOfMember) + ")))";
  }
  return sql;
}

// The order (name bytes, created_at, connection_id) is the index connections_by_name within an
// organization: an admin's keyset pages seek into it, so a page costs the same at any depth.
// Text columns compare in byte order on both backends (PostgreSQL's are COLLATE "C"). SQLite
// is pinned to that index (its planner could otherwise prefer the filter index and sort the
// organization), except for an indexed search: that page reads the search index's matches by
// rowid and sorts them, so it costs what the matches cost, however many rows the organization
// holds. A non-admin's page otherwise sorts what their grants reach (FromGranted).
std::string ListSql(const sql::Dialect& d, bool keyset, bool visible, Search search) {
  std::string sql = "SELECT " + sql::SelectList(kPageRowColumns);
  if (visible && search != kIndexedSearch) {
    sql += FromGranted(d, search);
  } else {
    sql += " FROM connections" +
           (search == kIndexedSearch ? std::string(d.NotIndexed())
                                     : d.IndexedBy("connections_by_name")) +
           ListFilter(d, visible, search);
  }
  if (keyset) {
    sql +=
        " AND (name, created_at, connection_id) > (:after_name, :after_created_at,"
        " :after_connection_id) ORDER BY name, created_at, connection_id LIMIT :limit";
  } else {
    sql += " ORDER BY name, created_at, connection_id LIMIT :limit OFFSET :offset";
  }
  return sql;
}

// The `total` of an admin's listing (every match in the organization): with no search, a sum
// of the kept counts (`counted`); with an indexed search, a count of the index's matches
// (SQLite reads them by rowid: NOT INDEXED); with a short term, a count over the filter index
// connections_by_filter, which covers the conditions (bounded by kMaxScannedConnections).
std::string CountSql(const sql::Dialect& d, Search search) {
  return "SELECT count(*) FROM connections" +
         (search == kIndexedSearch ? std::string(d.NotIndexed()) : std::string()) +
         ListFilter(d, false, search);
}

// A non-admin's `total`: a count over what their grants reach, however large the organization.
std::string CountVisibleSql(const sql::Dialect& d, bool searched) {
  return "SELECT count(*)" + FromGranted(d, searched ? kScannedSearch : kNoSearch);
}

// The page statements of one paging form, [visible_to_member][search].
std::array<std::array<sql::Query, 3>, 2> ListQueries(sql::QueryBook& b, bool keyset) {
  const sql::Dialect& d = b.dialect();
  auto of = [&](bool visible) {
    return std::array<sql::Query, 3>{sql::Query(b, ListSql(d, keyset, visible, kNoSearch)),
                                     sql::Query(b, ListSql(d, keyset, visible, kIndexedSearch)),
                                     sql::Query(b, ListSql(d, keyset, visible, kScannedSearch))};
  };
  return {of(false), of(true)};
}

// Two range scans of connection_secrets_by_key, each already in the index order (key_id,
// connection_id, field): a batch reads about `limit` rows however many secrets were re-sealed
// before, where `key_id <> K` would rescan them every batch.
std::string SecretsByKeySql(const sql::Dialect& d, std::string_view comparison) {
  return "SELECT " + SecretSelectList() + " FROM connection_secrets" +
         d.IndexedBy("connection_secrets_by_key") + " WHERE key_id " + std::string(comparison) +
         " :key_id ORDER BY key_id, connection_id, field LIMIT :limit";
}

// A connection `c` with its secrets `s`: a row per secret, or one with NULL secret columns after
// the connection's (`get`, `get_for_token`; read by ReadConnectionRows).
const std::string& ConnectionWithSecretsList() {
  static const std::string list = sql::SelectList(kConnectionColumns, "c.") + ", s.field, " +
                                  sql::SelectList(kSecretColumns, "s.");
  return list;
}
constexpr std::string_view kSecretsJoin =
    " LEFT JOIN connection_secrets AS s ON s.connection_id = c.connection_id";

// The position of connection_id among kConnectionColumns' select list.
constexpr int kConnectionIdColumn = 1;
static_assert(kConnectionColumns[kConnectionIdColumn].name == "connection_id");

// Reads the connection whose columns start at `first` of the current row of `st` into `c`, and
// its secrets from this row and the next ones of the same connection: true when the statement
// stopped on a row of another connection, false at its end.
Result<bool> ReadConnectionAt(Stmt& st, int first, C& c) {
  if (Status read = sql::ReadRow(st, kConnectionColumns, c, first); !read) return read.error();
  const int secret = first + kConnectionColumnCount;
  for (;;) {
    if (!st.IsNull(secret)) {  // else: no secret at all
      if (Status read = ReadSecretRow(st, secret, c.secrets); !read) return read.error();
    }
    auto row = st.Step();
    if (!row) return std::move(row).error();
    if (!*row) return false;
    if (st.Text(first + kConnectionIdColumn) != c.connection_id) return true;
  }
}

// The one connection of a statement (`get`, `get_for_token`), from its current row.
Result<C> ReadConnectionRows(Stmt& st, int first) {
  C c;
  auto more = ReadConnectionAt(st, first, c);
  if (!more) return std::move(more).error();
  return c;
}

}  // namespace

ConnectionQueries::ConnectionQueries(sql::QueryBook& b)
    : insert(b, sql::InsertSql("connections", kConnectionColumns)),
      // The compare-and-set is the WHERE version = :expected_version: of concurrent updates (on
      // any nodes) the first to commit wins; the others see the row's new version and change
      // nothing.
      update(b, "UPDATE connections SET " + sql::UpdateSetList(kConnectionColumns) + " WHERE " +
                    sql::KeyMatch(kConnectionColumns) + " AND version = :expected_version"),
      // The connection and its secrets in one statement (one snapshot, one round trip): a row
      // per secret, or one with NULL secret columns after the connection's.
      get(b,
          "SELECT " + ConnectionWithSecretsList() + " FROM connections AS c" +
              std::string(kSecretsJoin) +
              " WHERE c.connection_id = :connection_id AND c.organization_id = :organization_id"),
      // GET one and its token check in one statement (GetConnectionForToken): the principal,
      // whether it may see the connection, then the columns of `get` (NULL when the connection
      // is not in the principal's organization).
      get_for_token(b, "SELECT " + std::string(kPrincipalSelectList) +
                           ", (tok_member.account_type = '" + std::string(domain::kAdmin) +
                           "' OR " + HeldGrantSql("tok.member_id", "tok.organization_id") +
                           ") AS visible, " + ConnectionWithSecretsList() + " FROM " +
                           std::string(kValidTokenFrom) +
                           " LEFT JOIN connections AS c ON c.connection_id = :connection_id"
                           " AND c.organization_id = tok.organization_id" +
                           std::string(kSecretsJoin) + " WHERE " + std::string(kValidTokenWhere)),
      exists(b,
             "SELECT 1 FROM connections WHERE connection_id = :connection_id"
             " AND organization_id = :organization_id"),
      record_test(
          b,
          "UPDATE connections SET last_test_at = :at, last_test_read = :read,"
          " last_test_write = :write, last_active_at = CASE WHEN"
          " CAST(:query_reached AS BOOLEAN) THEN CAST(:at AS BIGINT) ELSE last_active_at END"
          " WHERE organization_id = :organization_id AND connection_id = :connection_id"),
      list{{ListQueries(b, false), ListQueries(b, true)}},
      // A page's rows that its caller does not hold, with their secrets (as `get` reads one),
      // grouped by connection.
      rows_of(b, "SELECT " + ConnectionWithSecretsList() + " FROM connections AS c" +
                     std::string(kSecretsJoin) +
                     " WHERE c.organization_id = :organization_id AND c.connection_id IN (" +
                     b.dialect().JsonArrayTexts(":connection_ids") + ") ORDER BY c.connection_id"),
      // The kept counts of the organization's rows that pass the filters but the search.
      counted(b,
              "SELECT CAST(coalesce(sum(connections), 0) AS BIGINT) FROM connection_counts"
              " WHERE organization_id = :organization_id"
              " AND (CAST(:include_archived AS BOOLEAN) OR NOT is_archived)"
              " AND (CAST(:type AS TEXT) IS NULL OR type = :type)"),
      add_count(b,
                "INSERT INTO connection_counts (organization_id, type, is_archived, shard,"
                " connections) VALUES (:organization_id, :type, :is_archived, :shard, :delta)"
                " ON CONFLICT (organization_id, type, is_archived, shard) DO UPDATE SET"
                " connections = connection_counts.connections + excluded.connections"),
      counted_state(b,
                    "SELECT type, is_archived FROM connections WHERE connection_id ="
                    " :connection_id AND organization_id = :organization_id"
                    " AND version = :expected_version"),
      count_indexed(b, CountSql(b.dialect(), kIndexedSearch)),
      count_scanned(b, CountSql(b.dialect(), kScannedSearch)),
      count_visible{sql::Query(b, CountVisibleSql(b.dialect(), false)),
                    sql::Query(b, CountVisibleSql(b.dialect(), true))},
      search_index_present(b, b.dialect().search_index_present),
      insert_secret(
          b, sql::InsertSql("connection_secrets", kSecretColumns, {"connection_id", "field"})),
      upsert_secret(
          b, sql::InsertSql("connection_secrets", kSecretColumns, {"connection_id", "field"}) +
                 " ON CONFLICT (connection_id, field) DO UPDATE SET sealed = "
                 "excluded.sealed, key_id = excluded.key_id, updated_at = "
                 "excluded.updated_at"),
      delete_secrets_except(b,
                            "DELETE FROM connection_secrets WHERE connection_id = :connection_id"
                            " AND field NOT IN (" +
                                b.dialect().JsonArrayTexts(":fields") + ")"),
      secrets_below_key(b, SecretsByKeySql(b.dialect(), "<")),
      secrets_above_key(b, SecretsByKeySql(b.dialect(), ">")),
      reseal_secret(b,
                    "UPDATE connection_secrets SET sealed = :sealed, key_id = :key_id,"
                    " updated_at = :updated_at WHERE connection_id = :connection_id"
                    " AND field = :field AND sealed = :expected_sealed"),
      secret_exists(b,
                    "SELECT 1 FROM connection_secrets WHERE connection_id = :connection_id"
                    " AND field = :field"),
      secret_key_ids(b, "SELECT DISTINCT key_id FROM connection_secrets" +
                            b.dialect().IndexedBy("connection_secrets_by_key") +
                            " ORDER BY key_id") {}

namespace {

// What a connection adds to the kept counts: one in its (type, archived) row.
struct Counted {
  std::string type;
  bool is_archived = false;
  auto operator<=>(const Counted&) const = default;
};

Status AddCount(Session& s, const ConnectionQueries& q, const std::string& organization_id,
                const std::string& connection_id, const Counted& counted, std::int64_t delta) {
  auto n = Execute(s, q.add_count,
                   {{"organization_id", organization_id},
                    {"type", counted.type},
                    {"is_archived", counted.is_archived},
                    {"shard", CountShard(connection_id)},
                    {"delta", delta}});
  if (!n) return std::move(n).error();
  return OkStatus();
}

}  // namespace

Status SqlStore::InsertConnection(Session& s, const domain::Connection& c) {
  Status inserted = WriteRow(s, q_->connections.insert, kConnectionColumns, c);
  inserted =
      Reword(std::move(inserted), ErrorCode::kConflict, "a connection with this id already exists");
  inserted = Reword(std::move(inserted), ErrorCode::kNotFound, "organization not found");
  if (!inserted) return inserted;
  inserted =
      AddCount(s, q_->connections, c.organization_id, c.connection_id, {c.type, c.is_archived}, 1);
  if (!inserted) return inserted;
  for (const auto& [field, secret] : c.secrets) {
    inserted = WriteRow(s, q_->connections.insert_secret, kSecretColumns, secret,
                        {{"connection_id", c.connection_id}, {"field", field}});
    if (!inserted) return inserted;
  }
  return OkStatus();
}

Status SqlStore::CreateConnection(const domain::Connection& c) {
  return Run<Ok>("create_connection", Access::kWrite,
                 [&](Session& s) { return InsertConnection(s, c); });
}

Result<domain::Connection> SqlStore::GetConnection(const std::string& organization_id,
                                                   const std::string& connection_id) {
  return Run<C>("get_connection", Access::kPoint, [&](Session& s) -> Result<C> {
    auto st = Select(s, q_->connections.get,
                     {{"connection_id", connection_id}, {"organization_id", organization_id}});
    if (!st) return std::move(st).error();
    auto row = st->Step();
    if (!row) return std::move(row).error();
    if (!*row) return Error::NotFound("connection not found");
    return ReadConnectionRows(*st, 0);
  });
}

Result<TokenConnectionRead> SqlStore::GetConnectionForToken(const std::string& token_hash,
                                                            TimeMs now,
                                                            const std::string& connection_id) {
  using R = TokenConnectionRead;
  return Run<R>("get_connection_for_token", Access::kPoint, [&](Session& s) -> Result<R> {
    auto st = Select(s, q_->connections.get_for_token,
                     {{"token_hash", token_hash}, {"now", now}, {"connection_id", connection_id}});
    if (!st) return std::move(st).error();
    auto row = st->Step();
    if (!row) return std::move(row).error();
    if (!*row) return Error::NotFound("token not found");
    R out;
    out.principal = ReadPrincipal(*st, 0);
    out.visible = st->Bool(kPrincipalColumnCount);
    const int first = kPrincipalColumnCount + 1;
    if (st->IsNull(first)) return out;  // no such connection in the organization
    auto c = ReadConnectionRows(*st, first);
    if (!c) return std::move(c).error();
    out.connection = std::move(*c);
    return out;
  });
}

Status SqlStore::UpdateConnection(const domain::Connection& next, std::int64_t expected_version) {
  return Run<Ok>("update_connection", Access::kWrite, [&](Session& s) -> Status {
    // What the row at expected_version counts as: if the compare-and-set below succeeds, that
    // is the row it replaced (every update changes the version).
    std::optional<Counted> before;
    {
      auto st = Select(s, q_->connections.counted_state,
                       {{"connection_id", next.connection_id},
                        {"organization_id", next.organization_id},
                        {"expected_version", expected_version}});
      if (!st) return std::move(st).error();
      auto row = st->Step();
      if (!row) return std::move(row).error();
      if (*row) before = Counted{std::string(st->Text(0)), st->Bool(1)};
    }
    {
      auto st = Select(s, q_->connections.update, {{"expected_version", expected_version}});
      if (!st) return std::move(st).error();
      sql::BindRow(*st, kConnectionColumns, next);
      if (Status updated = st->Run(); !updated) return updated;
      if (st->Changes() == 0) {
        return LostCompareAndSet(
            s, q_->connections.exists,
            {{"connection_id", next.connection_id}, {"organization_id", next.organization_id}},
            "connection not found", "the connection was changed by another request");
      }
    }
    if (!before) return Error::Internal("store: a connection changed without its prior row");
    const Counted after{next.type, next.is_archived};
    if (*before != after) {
      // Moved from one count row to another; the two rows in one order, so that two updates
      // moving connections the opposite ways cannot deadlock on PostgreSQL.
      const bool down_first = *before < after;
      for (const bool down : {down_first, !down_first}) {
        Status moved = AddCount(s, q_->connections, next.organization_id, next.connection_id,
                                down ? *before : after, down ? -1 : 1);
        if (!moved) return moved;
      }
    }
    // The stored secrets become exactly next.secrets.
    boost::json::array fields;
    for (const auto& [field, secret] : next.secrets) fields.emplace_back(field);
    auto n = Execute(
        s, q_->connections.delete_secrets_except,
        {{"connection_id", next.connection_id}, {"fields", boost::json::serialize(fields)}});
    if (!n) return std::move(n).error();
    for (const auto& [field, secret] : next.secrets) {
      Status upserted = WriteRow(s, q_->connections.upsert_secret, kSecretColumns, secret,
                                 {{"connection_id", next.connection_id}, {"field", field}});
      if (!upserted) return upserted;
    }
    return OkStatus();
  });
}

Result<ConnectionPage> SqlStore::ListConnections(const ListQuery& q) {
  const int limit = std::clamp(q.limit, 1, kMaxPageSize);
  const bool visible = q.visible_to_member.has_value();
  const Search search = SearchOf(q.search);
  // Total and entries from one snapshot.
  return Run<ConnectionPage>(
      "list_connections", Access::kSnapshot, [&](Session& s) -> Result<ConnectionPage> {
        auto bind_filter = [&](Stmt& st) {
          st.Bind({{"organization_id", q.organization_id},
                   {"include_archived", q.include_archived},
                   {"type", q.type}});
          if (search != kNoSearch) st.Bind("search", *q.search);
          if (visible) st.Bind("member_id", *q.visible_to_member);
        };
        auto count = [&](const sql::Query& query) -> Result<std::int64_t> {
          auto st = s.Prepare(query);
          if (!st) return std::move(st).error();
          bind_filter(*st);
          auto row = st->Step();
          if (!row) return std::move(row).error();
          return st->Int(0);
        };
        ConnectionPage page;
        // The organization's rows that pass the filters but the search, from the kept counts:
        // an admin's total when there is no search, and the length of a short term's scan (a
        // non-admin's reads only what their grants reach).
        if (!visible && search != kIndexedSearch) {
          auto st = Select(s, q_->connections.counted,
                           {{"organization_id", q.organization_id},
                            {"include_archived", q.include_archived},
                            {"type", q.type}});
          if (!st) return std::move(st).error();
          auto row = st->Step();
          if (!row) return std::move(row).error();
          page.total = st->Int(0);
          if (search == kScannedSearch && page.total > kMaxScannedConnections) {
            return Error::BadRequest(
                "search: a term shorter than " + std::to_string(kIndexedSearchChars) +
                " characters is served only where at most " +
                std::to_string(kMaxScannedConnections) +
                " connections pass the other filters; use a longer term or filter by type");
          }
        }
        if (visible || search != kNoSearch) {
          auto total = count(visible ? q_->connections.count_visible[search != kNoSearch]
                             : search == kIndexedSearch ? q_->connections.count_indexed
                                                        : q_->connections.count_scanned);
          if (!total) return std::move(total).error();
          page.total = *total;
        }
        auto st = s.Prepare(q_->connections.list[q.after.has_value()][visible][search]);
        if (!st) return std::move(st).error();
        bind_filter(*st);
        st->Bind("limit", limit + 1);
        if (q.after) {
          st->Bind({{"after_name", q.after->name},
                    {"after_created_at", q.after->created_at},
                    {"after_connection_id", q.after->connection_id}});
        } else {
          st->Bind("offset", std::max<std::int64_t>(q.offset, 0));
        }
        page.rows.reserve(static_cast<std::size_t>(limit) + 1);
        auto more = ReadPage(*st, kPageRowColumns, limit, page.rows);
        if (!more) return std::move(more).error();
        page.has_more = *more;
        // The full rows of what the caller does not hold, and their secrets, in one statement.
        boost::json::array ids;
        std::map<std::string_view, std::size_t> position;  // in page order, of `ids`
        for (std::size_t i = 0; i < page.rows.size(); ++i) {
          const ConnectionPageRow& row = page.rows[i];
          if (q.have_body && q.have_body(i, row)) continue;
          position.emplace(row.connection_id, ids.size());
          ids.emplace_back(row.connection_id);
        }
        if (ids.empty()) return page;
        auto full = Select(s, q_->connections.rows_of,
                           {{"organization_id", q.organization_id},
                            {"connection_ids", boost::json::serialize(ids)}});
        if (!full) return std::move(full).error();
        page.entries.resize(ids.size());
        auto row = full->Step();
        if (!row) return std::move(row).error();
        std::size_t read = 0;
        for (bool at_row = *row; at_row; ++read) {
          auto it = position.find(full->Text(kConnectionIdColumn));
          if (it == position.end()) return Error::Internal("store: a page row outside its page");
          auto next = ReadConnectionAt(*full, 0, page.entries[it->second]);
          if (!next) return std::move(next).error();
          at_row = *next;
        }
        // The same snapshot as the narrow read: every row is there.
        if (read != ids.size()) return Error::Internal("store: a page row without its full row");
        return page;
      });
}

void SqlStore::WarnIfSearchScans() {
  auto present = Run<std::int64_t>("search_index_present", Access::kPoint,
                                   [&](Session& s) -> Result<std::int64_t> {
                                     return Count(s, q_->connections.search_index_present, {});
                                   });
  if (present && *present != 0) return;
  log::Event(log::Level::kWarn, "search_index_missing",
             {{"backend", db_->dialect().name},
              {"detail", present ? "the pg_trgm extension could not be created (migration 6):"
                                   " search scans the organization's connections"
                                 : present.error().message}});
}

Status SqlStore::RecordTest(const std::string& organization_id, const std::string& connection_id,
                            const domain::LastTest& test, bool query_reached) {
  return Run<Ok>("record_test", Access::kWrite, [&](Session& s) -> Status {
    auto n = Execute(s, q_->connections.record_test,
                     {{"at", test.at},
                      {"read", test.read},
                      {"write", test.write},
                      {"query_reached", query_reached},
                      {"organization_id", organization_id},
                      {"connection_id", connection_id}});
    if (!n) return std::move(n).error();
    if (*n == 0) return Error::NotFound("connection not found");
    return OkStatus();
  });
}

// ---- sealed secrets ------------------------------------------------------------------------

Result<std::vector<SealedSecretStore::SealedSecretRef>> SqlStore::SecretsNotUnderKey(
    const std::string& key_id, int limit) {
  using Refs = std::vector<SealedSecretRef>;
  if (limit <= 0) return Refs{};
  // Both ranges from one snapshot.
  return Run<Refs>("secrets_not_under_key", Access::kSnapshot, [&](Session& s) -> Result<Refs> {
    Refs out;
    for (const sql::Query* q :
         {&q_->connections.secrets_below_key, &q_->connections.secrets_above_key}) {
      const auto wanted = static_cast<std::int64_t>(limit) - static_cast<std::int64_t>(out.size());
      if (wanted <= 0) break;
      auto st = Select(s, *q, {{"key_id", key_id}, {"limit", wanted}});
      if (!st) return std::move(st).error();
      for (;;) {
        auto row = st->Step();
        if (!row) return std::move(row).error();
        if (!*row) break;
        SealedSecretRef& ref = out.emplace_back();
        ref.connection_id = st->Text(0);
        ref.field = st->Text(1);
        if (Status read = sql::ReadRow(*st, kSecretColumns, ref.secret, 2); !read) {
          return read.error();
        }
      }
    }
    return out;
  });
}

// Compare-and-set on the sealed bytes themselves: a concurrent UpdateConnection that rewrote the
// secret (under whatever key) wins, and the rotation re-reads it.
Status SqlStore::ResealSecret(const std::string& connection_id, const std::string& field,
                              const std::string& expected_sealed,
                              const domain::StoredSecret& next) {
  return Run<Ok>("reseal_secret", Access::kWrite, [&](Session& s) -> Status {
    auto st = Select(s, q_->connections.reseal_secret,
                     {{"connection_id", connection_id},
                      {"field", field},
                      {"expected_sealed", sql::Bytes{expected_sealed}}});
    if (!st) return std::move(st).error();
    sql::BindRow(*st, kSecretColumns, next);
    if (Status updated = st->Run(); !updated) return updated;
    if (st->Changes() > 0) return OkStatus();
    return LostCompareAndSet(s, q_->connections.secret_exists,
                             {{"connection_id", connection_id}, {"field", field}},
                             "secret not found", "the secret was changed by another request");
  });
}

Result<std::vector<std::string>> SqlStore::SecretKeyIds() {
  using Ids = std::vector<std::string>;
  return Run<Ids>("secret_key_ids", Access::kPoint, [&](Session& s) -> Result<Ids> {
    auto st = Select(s, q_->connections.secret_key_ids, {});
    if (!st) return std::move(st).error();
    Ids out;
    for (;;) {
      auto row = st->Step();
      if (!row) return std::move(row).error();
      if (!*row) return out;
      out.emplace_back(st->Text(0));
    }
  });
}

}  // namespace connreg::store
