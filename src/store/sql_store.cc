// The query layer's frame (construction, migrations, running a call) and what the server keeps
// for itself: shared keys, shared rate limits.
#include "store/sql_store.h"

#include <sodium.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "core/time.h"
#include "crypto/random.h"
#include "store/migrations.h"
#include "store/sql_queries.h"
#include "store/store_call.h"

namespace connreg::store {
namespace {

constexpr std::size_t kServerKeyBytes = 32;

// The bucket's milli-tokens after refilling by the time since its last use (never negative:
// node clocks may disagree a little), capped at the capacity.
std::string RefilledTokens(const sql::Dialect& d) {
  return std::string(d.least) + "(CAST(:capacity AS BIGINT), rate_buckets.tokens_milli + " +
         std::string(d.greatest) +
         "(0, CAST(:now AS BIGINT) - rate_buckets.refilled_at) * CAST(:rate_milli AS BIGINT)"
         " / 1000)";
}

// One upsert per request: refill, then take one token (1000 milli-tokens) if there is one.
// Every SET expression sees the row as it was (locked by the conflict), so concurrent requests
// on any node queue on the row and each sees the others' takes.
std::string TakeRateTokenSql(const sql::Dialect& d) {
  const std::string refilled = RefilledTokens(d);
  return "INSERT INTO rate_buckets (client_id, tokens_milli, refilled_at, allowed)"
         " VALUES (:client_id, CAST(:capacity AS BIGINT) - 1000, CAST(:now AS BIGINT), true)"
         " ON CONFLICT (client_id) DO UPDATE SET tokens_milli = CASE WHEN " +
         refilled + " >= 1000 THEN " + refilled + " - 1000 ELSE " + refilled +
         " END, refilled_at = CAST(:now AS BIGINT), allowed = " + refilled +
         " >= 1000 RETURNING tokens_milli, allowed";
}

// Applies each pending migration in a transaction of its own, on a session holding the
// migration lock; the version is re-checked inside the transaction, so whoever comes second
// (a process that took the lock after this one) skips what the first applied.
Status ApplyMigrations(Session& s, const sql::Dialect& d, const ServerQueries& q) {
  const std::string backend(d.name);
  const auto migrations = Migrations();
  const int latest = migrations.empty() ? 0 : migrations.back().version;
  auto fail = [&](const std::string& what, const Error& e) -> Status {
    (void)s.Exec("ROLLBACK");  // nothing to roll back when the failure came outside one
    return Error::Internal(backend + ": " + what + ": " + e.message);
  };
  if (Status created = s.Exec(MigrationsTable().*d.migration_sql); !created) {
    return fail("cannot create schema_migrations", created.error());
  }
  int applied = 0;
  {
    auto st = Select(s, q.schema_version, {});
    if (!st) return fail("cannot read the schema version", st.error());
    auto row = st->Step();
    if (!row) return fail("cannot read the schema version", row.error());
    applied = static_cast<int>(st->Int(0));
  }
  if (applied > latest) {
    return Error::Internal(backend + ": the database schema is at version " +
                           std::to_string(applied) + ", newer than this binary (" +
                           std::to_string(latest) + ")");
  }
  // One migration in a transaction of its own; for one that rebuilds tables, with foreign keys
  // off around the transaction and checked before it commits.
  auto apply = [&](const Migration& m, const std::string& what) -> Status {
    const std::string_view text = m.*d.migration_sql;
    if (text.empty()) return Error::Internal(backend + ": " + what + " has no text");
    if (Status begun = s.Exec(d.begin_migration); !begun) return fail(what, begun.error());
    bool applied_meanwhile = false;
    {
      auto st = Select(s, q.migration_applied, {{"version", m.version}});
      if (!st) return fail(what, st.error());
      auto row = st->Step();
      if (!row) return fail(what, row.error());
      applied_meanwhile = *row;
    }
    if (applied_meanwhile) {  // by another process
      if (Status rolled = s.Exec("ROLLBACK"); !rolled) return fail(what, rolled.error());
      return OkStatus();
    }
    if (Status done = s.Exec(text); !done) return fail(what, done.error());
    if (m.rebuilds_tables) {
      auto violations = Count(s, q.foreign_key_violations, {});
      if (!violations) return fail(what, violations.error());
      if (*violations != 0) {
        return fail(what, Error::Internal(std::to_string(*violations) +
                                          " foreign key violations after the rebuild"));
      }
    }
    auto n = Execute(s, q.record_migration,
                     {{"version", m.version}, {"name", m.name}, {"applied_at", NowMs()}});
    if (!n) return fail(what, n.error());
    if (Status committed = s.Exec("COMMIT"); !committed) return fail(what, committed.error());
    return OkStatus();
  };
  for (const Migration& m : migrations) {
    if (m.version <= applied) continue;
    const std::string what =
        "migration " + std::to_string(m.version) + " (" + std::string(m.name) + ")";
    const bool keys_off = m.rebuilds_tables && !d.foreign_keys_off.empty();
    if (keys_off) {
      if (Status off = s.Exec(d.foreign_keys_off); !off) return fail(what, off.error());
    }
    Status done = apply(m, what);
    if (keys_off) {
      Status on = s.Exec(d.foreign_keys_on);
      if (done && !on) done = fail(what, on.error());
    }
    if (!done) return done;
  }
  return OkStatus();
}

}  // namespace

ServerQueries::ServerQueries(sql::QueryBook& b)
    : get_server_key(b, "SELECT key FROM server_keys WHERE purpose = :purpose"),
      // Whoever inserts first wins; a concurrent insert waits for the first to commit.
      insert_server_key(b,
                        "INSERT INTO server_keys (purpose, key, created_at)"
                        " VALUES (:purpose, :key, :created_at) ON CONFLICT (purpose) DO NOTHING"),
      take_rate_token(b, TakeRateTokenSql(b.dialect())),
      schema_version(b, "SELECT coalesce(max(version), 0) FROM schema_migrations"),
      migration_applied(b, "SELECT 1 FROM schema_migrations WHERE version = :version"),
      record_migration(b,
                       "INSERT INTO schema_migrations (version, name, applied_at)"
                       " VALUES (:version, :name, :applied_at)"),
      foreign_key_violations(b, b.dialect().foreign_key_violations) {}

SqlStore::SqlStore(std::unique_ptr<sql::Database> db)
    : db_(std::move(db)), book_(db_->dialect()), q_(std::make_unique<const Queries>(book_)) {
  Status migrated =
      db_->Migrate([&](Session& s) { return ApplyMigrations(s, db_->dialect(), q_->server); });
  if (!migrated) throw std::runtime_error(migrated.error().message);
  WarnIfSearchScans();
}

SqlStore::~SqlStore() = default;

Status SqlStore::Ping() {
  return StoreCall("ping", [&] { return db_->Ping(); });
}

bool SqlStore::PointReadsAreLocal() const { return db_->PointReadsAreLocal(); }

bool SqlStore::SharesRateLimits() const { return db_->Shared(); }

Result<std::string> SqlStore::ServerKey(const std::string& purpose) {
  auto checked = [&](std::string key) -> Result<std::string> {
    if (key.size() != kServerKeyBytes) {
      return Error::Internal(std::string(db_->dialect().name) + ": corrupt server key");
    }
    return key;
  };
  auto read = [&](Session& s) -> Result<std::optional<std::string>> {
    auto st = Select(s, q_->server.get_server_key, {{"purpose", purpose}});
    if (!st) return std::move(st).error();
    auto row = st->Step();
    if (!row) return std::move(row).error();
    if (!*row) return std::optional<std::string>();
    return std::optional<std::string>(st->BytesAt(0));
  };
  return StoreCall("server_key", [&]() -> Result<std::string> {
    // Almost every call finds the key: one read, without the writer.
    auto found = RunBody<std::optional<std::string>>("server_key", Access::kPoint, read);
    if (!found) return std::move(found).error();
    if (*found) return checked(std::move(**found));
    // First use: whoever inserts first wins, and everyone reads the winner's key.
    crypto::EnsureSodium();
    std::string candidate(kServerKeyBytes, '\0');
    randombytes_buf(candidate.data(), candidate.size());
    auto key = RunBody<std::optional<std::string>>(
        "server_key", Access::kWrite, [&](Session& s) -> Result<std::optional<std::string>> {
          auto n = Execute(
              s, q_->server.insert_server_key,
              {{"purpose", purpose}, {"key", sql::Bytes{candidate}}, {"created_at", NowMs()}});
          if (!n) return std::move(n).error();
          return read(s);
        });
    sodium_memzero(candidate.data(), candidate.size());
    if (!key) return std::move(key).error();
    if (!*key) {
      return Error::Internal(std::string(db_->dialect().name) +
                             ": server key vanished after insert");
    }
    return checked(std::move(**key));
  });
}

Result<int> SqlStore::TakeRateToken(const std::string& client_id, double per_second, TimeMs now) {
  const std::int64_t rate_milli = std::max<std::int64_t>(1, std::llround(per_second * 1000));
  const std::int64_t capacity = std::max<std::int64_t>(1000, rate_milli);
  struct Bucket {
    std::int64_t tokens_milli = 0;
    bool allowed = false;
  };
  auto bucket = Run<Bucket>("take_rate_token", Access::kWrite, [&](Session& s) -> Result<Bucket> {
    auto st = Select(s, q_->server.take_rate_token,
                     {{"client_id", client_id},
                      {"capacity", capacity},
                      {"now", now},
                      {"rate_milli", rate_milli}});
    if (!st) return std::move(st).error();
    auto row = st->Step();
    if (!row) return std::move(row).error();
    if (!*row) return Error::Internal("store: the rate bucket upsert returned no row");
    Bucket b{st->Int("tokens_milli"), st->Bool("allowed")};
    if (Status done = st->Run(); !done) return std::move(done).error();
    return b;
  });
  if (!bucket) return std::move(bucket).error();
  if (bucket->allowed) return 0;
  const double wait_secs =
      static_cast<double>(1000 - bucket->tokens_milli) / static_cast<double>(rate_milli);
  return std::max(1, static_cast<int>(std::ceil(wait_secs)));
}

}  // namespace connreg::store
