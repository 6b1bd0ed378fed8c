// The SQLite writer's group commit (sqlite_store.cc, Database::RunWrite), driven through the
// database interface with bodies of the test's own, on real SQLite files: concurrent writes
// share one COMMIT (counted in the WAL file itself), a failing body is undone alone, a failing
// COMMIT fails its whole batch and nothing else, a body sees the earlier writes of its batch,
// a lone write is not held back, and every acknowledged write is on disk, also after kill -9.
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/sql.h"
#include "store/sqlite_store.h"
#include "store_test_support.h"

namespace connreg::store {
namespace {

using sql::Access;
using sql::Session;
using test_support::SqliteRawSql;
using test_support::TempDir;
using Body = std::function<Status(Session&)>;
using Clock = std::chrono::steady_clock;

// The commits in the WAL file at `path`-wal: its valid frames (the header's salts) that end a
// transaction (a non-zero database size). Valid until a checkpoint restarts the log (1,000
// pages), far more than any test here writes between two counts.
int CommitsInWal(const std::string& path) {
  std::ifstream in(path + "-wal", std::ios::binary);
  std::string wal((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto u32 = [&](std::size_t at) {
    const auto* p = reinterpret_cast<const unsigned char*>(wal.data() + at);
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
           std::uint32_t{p[3]};
  };
  if (wal.size() < 32) return 0;
  const std::size_t frame = 24 + u32(8);
  int commits = 0;
  for (std::size_t at = 32; at + frame <= wal.size(); at += frame) {
    if (u32(at + 8) != u32(16) || u32(at + 12) != u32(20)) break;  // an older log's frame
    if (u32(at + 4) != 0) ++commits;
  }
  return commits;
}

class SqliteGroupCommit : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(Write([](Session& s) {
                  return s.Exec(
                      "CREATE TABLE rows (id INTEGER PRIMARY KEY, seq INTEGER, tag TEXT);"
                      "CREATE TABLE parents (id INTEGER PRIMARY KEY);"
                      "CREATE TABLE children (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES "
                      "parents (id) DEFERRABLE INITIALLY DEFERRED);");
                }).ok());
  }

  Status Write(const Body& body) { return db_->Run(Access::kWrite, "test_write", body); }

  // Runs bodies[0] first; while it runs, the others call Run and wait for the writer, so all of
  // them make one batch: bodies[0], then the others in the order they take the writer.
  std::vector<Status> RunBatch(const std::vector<Body>& bodies) {
    const int others = static_cast<int>(bodies.size()) - 1;
    std::vector<Status> out(bodies.size(), OkStatus());
    std::atomic<bool> first_running{false};
    std::thread first([&] {
      out[0] = Write([&](Session& s) {
        Status st = bodies[0](s);
        first_running = true;
        const auto deadline = Clock::now() + std::chrono::seconds(20);
        while (db_->WritesWaiting() < others && Clock::now() < deadline) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        EXPECT_EQ(db_->WritesWaiting(), others) << "the batch did not form";
        return st;
      });
    });
    while (!first_running) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::vector<std::thread> threads;
    for (int i = 1; i <= others; ++i) {
      threads.emplace_back([&, i] { out[i] = Write(bodies[i]); });
    }
    first.join();
    for (auto& t : threads) t.join();
    return out;
  }

  std::string Sql(const std::string& sql) const { return SqliteRawSql(path_, sql); }

  static Body Insert(int id, const std::string& tag = "") {
    return [=](Session& s) {
      return s.Exec("INSERT INTO rows (id, tag) VALUES (" + std::to_string(id) + ", '" + tag +
                    "')");
    };
  }

  // Bounds no test reaches unless it means to: a batch the test builds is never cut short
  // because a slow machine (or ThreadSanitizer) took longer than the default 5 ms over it.
  static constexpr GroupCommitBounds kPatient{.max_writes = 64,
                                              .max_wait = std::chrono::minutes(1)};

  TempDir dir_;
  const std::string path_ = dir_.File("group.db");
  std::unique_ptr<SqliteDatabase> db_ = OpenSqliteDatabase(path_, kPatient);
  sql::QueryBook book_{db_->dialect()};
};

TEST_F(SqliteGroupCommit, ConcurrentWritesShareOneCommit) {
  const int before = CommitsInWal(path_);
  const auto out = RunBatch({Insert(1), Insert(2), Insert(3), Insert(4), Insert(5)});
  for (const Status& s : out) EXPECT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(CommitsInWal(path_) - before, 1);
  EXPECT_EQ(Sql("SELECT group_concat(id) FROM (SELECT id FROM rows ORDER BY id)"), "1,2,3,4,5");
}

// A batch commits once it holds max_writes, or once its first write has waited max_wait, even
// with more writes waiting; they make the next batch.
TEST_F(SqliteGroupCommit, BatchesStopAtTheirBounds) {
  db_ = OpenSqliteDatabase(path_, {.max_writes = 2, .max_wait = std::chrono::minutes(1)});
  int before = CommitsInWal(path_);
  for (const Status& s : RunBatch({Insert(1), Insert(2), Insert(3), Insert(4), Insert(5)})) {
    EXPECT_TRUE(s.ok());
  }
  EXPECT_EQ(CommitsInWal(path_) - before, 3);  // 2 + 2 + 1

  db_ = OpenSqliteDatabase(path_, {.max_writes = 64, .max_wait = std::chrono::microseconds(0)});
  before = CommitsInWal(path_);
  for (const Status& s : RunBatch({Insert(6), Insert(7), Insert(8)})) EXPECT_TRUE(s.ok());
  EXPECT_EQ(CommitsInWal(path_) - before, 3);
  EXPECT_EQ(Sql("SELECT count(*) FROM rows"), "8");
}

TEST_F(SqliteGroupCommit, LoneWritesCommitEachAtOnce) {
  const int before = CommitsInWal(path_);
  for (int i = 1; i <= 20; ++i) {
    ASSERT_TRUE(Write(Insert(i)).ok());
    // Acknowledged means committed: another connection already reads it.
    ASSERT_EQ(Sql("SELECT count(*) FROM rows"), std::to_string(i));
  }
  EXPECT_EQ(CommitsInWal(path_) - before, 20);
}

// A lone write costs what a plain BEGIN IMMEDIATE / INSERT / COMMIT costs on the same disk (one
// fsync): it never waits for company. Measured interleaved, median against median.
TEST_F(SqliteGroupCommit, LoneWriteIsNotHeldBack) {
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(dir_.File("plain.db").c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw,
                         "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                         "CREATE TABLE rows (id INTEGER PRIMARY KEY, seq INTEGER, tag TEXT)",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  std::vector<double> plain_ms;
  std::vector<double> grouped_ms;
  for (int i = 1; i <= 40; ++i) {
    const std::string insert = "INSERT INTO rows (id, tag) VALUES (" + std::to_string(i) + ", '')";
    auto t0 = Clock::now();
    ASSERT_EQ(sqlite3_exec(raw, ("BEGIN IMMEDIATE;" + insert + ";COMMIT").c_str(), nullptr, nullptr,
                           nullptr),
              SQLITE_OK);
    auto t1 = Clock::now();
    ASSERT_TRUE(Write(Insert(i)).ok());
    auto t2 = Clock::now();
    plain_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    grouped_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
  }
  sqlite3_close(raw);
  auto median = [](std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  };
  const double plain = median(plain_ms);
  const double grouped = median(grouped_ms);
  RecordProperty("plain_ms", std::to_string(plain));
  RecordProperty("grouped_ms", std::to_string(grouped));
  // A write that waited for company (up to max_wait) would be slower by that wait.
  EXPECT_LT(grouped, plain * 1.5 + 1.0)
      << "plain " << plain << " ms, group commit " << grouped << " ms";
}

// 409 and 412 bodies, and a body that breaks a unique constraint, undo their own statements
// only; the batch's other writes commit, in one COMMIT.
TEST_F(SqliteGroupCommit, FailingBodiesAreUndoneAloneAndTheBatchCommits) {
  const int before = CommitsInWal(path_);
  const auto out = RunBatch({
      Insert(1, "first"),
      [](Session& s) -> Status {  // a 409 decided by the body after it wrote
        if (Status w = s.Exec("INSERT INTO rows (id, tag) VALUES (100, 'conflict')"); !w) return w;
        return Error::Conflict("name taken");
      },
      [](Session& s) -> Status {  // a 412 after two statements
        if (Status w = s.Exec("INSERT INTO rows (id, tag) VALUES (200, 'stale')"); !w) return w;
        if (Status w = s.Exec("UPDATE rows SET tag = 'clobbered' WHERE id = 1"); !w) return w;
        return Error::PreconditionFailed("version mismatch");
      },
      [](Session& s) -> Status {  // the store's own constraint: the row of the first write
        if (Status w = s.Exec("INSERT INTO rows (id, tag) VALUES (300, 'half')"); !w) return w;
        return s.Exec("INSERT INTO rows (id, tag) VALUES (1, 'duplicate')");
      },
      Insert(2, "last"),
  });
  EXPECT_TRUE(out[0].ok());
  EXPECT_TRUE(out[4].ok());
  ASSERT_FALSE(out[1].ok());
  EXPECT_EQ(out[1].error().code, ErrorCode::kConflict);
  ASSERT_FALSE(out[2].ok());
  EXPECT_EQ(out[2].error().code, ErrorCode::kPreconditionFailed);
  ASSERT_FALSE(out[3].ok());
  EXPECT_EQ(out[3].error().code, ErrorCode::kConflict);
  EXPECT_EQ(Sql("SELECT group_concat(id || ':' || tag) FROM (SELECT * FROM rows ORDER BY id)"),
            "1:first,2:last");
  EXPECT_EQ(CommitsInWal(path_) - before, 1);
}

// A deferred foreign key would fail the COMMIT, i.e. every write of the batch: the write that
// leaves one behind fails alone, as an immediate one would.
TEST_F(SqliteGroupCommit, DeferredForeignKeyViolationFailsOnlyItsWrite) {
  const auto out = RunBatch({
      [](Session& s) { return s.Exec("INSERT INTO parents (id) VALUES (1)"); },
      [](Session& s) { return s.Exec("INSERT INTO children (id, parent) VALUES (1, 99)"); },
      [](Session& s) { return s.Exec("INSERT INTO children (id, parent) VALUES (2, 1)"); },
  });
  EXPECT_TRUE(out[0].ok());
  ASSERT_FALSE(out[1].ok());
  EXPECT_EQ(out[1].error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(out[2].ok()) << out[2].error().message;
  EXPECT_EQ(Sql("SELECT group_concat(id || '>' || parent) FROM children"), "2>1");
}

// Each body reads the last sequence number and writes the next: a body sees the writes of the
// batch before it (as it would after their commit) and not a failed one's, whose number is
// written then undone. So the committed numbers run 1..n without a gap or a repeat, and each
// body's acknowledged number is committed.
TEST_F(SqliteGroupCommit, BodiesSeeTheEarlierWritesOfTheirBatchButNotUndoneOnes) {
  sql::Query last(book_, "SELECT coalesce(max(seq), 0) FROM rows");
  constexpr int kWrites = 8;
  std::vector<std::int64_t> seen(kWrites, -1);
  std::vector<Body> bodies;
  for (int i = 0; i < kWrites; ++i) {
    bodies.push_back([&, i](Session& s) -> Status {
      auto st = s.Prepare(last);
      if (!st) return std::move(st).error();
      auto row = st->Step();
      if (!row) return std::move(row).error();
      const std::int64_t next = st->Int(0) + 1;
      seen[i] = next;
      if (Status w = s.Exec("INSERT INTO rows (seq, tag) VALUES (" + std::to_string(next) + ", '" +
                            std::to_string(i) + "')");
          !w) {
        return w;
      }
      if (i % 3 == 1) return Error::Conflict("undone after writing");
      return OkStatus();
    });
  }
  const auto out = RunBatch(bodies);
  std::set<std::int64_t> acknowledged;
  for (int i = 0; i < kWrites; ++i) {
    EXPECT_EQ(out[i].ok(), i % 3 != 1) << i;
    if (out[i].ok()) {
      EXPECT_TRUE(acknowledged.insert(seen[i]).second) << "repeated " << seen[i];
    }
  }
  std::string expected;
  for (std::size_t n = 1; n <= acknowledged.size(); ++n) {
    if (n > 1) expected += ',';
    expected += std::to_string(n);
  }
  EXPECT_EQ(Sql("SELECT group_concat(seq) FROM (SELECT seq FROM rows ORDER BY seq)"), expected);
  EXPECT_EQ(*acknowledged.rbegin(), static_cast<std::int64_t>(acknowledged.size()));
}

// A full disk, for a COMMIT that fails for real: SQLite's default VFS, whose next write to a WAL
// file fails with SQLITE_FULL once `full` is set (one failed write: one failed COMMIT; a tmpfs of
// a chosen size needs root). Registered as
// the default VFS while it lives, so the database under test opens its files through it.
class FullDiskVfs {
 public:
  static inline std::atomic<bool> full{false};

  FullDiskVfs() : real_(sqlite3_vfs_find(nullptr)) {
    vfs_ = *real_;
    vfs_.zName = "connreg-test-full-disk";
    vfs_.szOsFile = static_cast<int>(sizeof(File)) + real_->szOsFile;
    vfs_.pAppData = real_;
    vfs_.xOpen = &Open;
    sqlite3_vfs_register(&vfs_, /*makeDflt=*/1);
  }
  ~FullDiskVfs() {
    full = false;
    sqlite3_vfs_register(real_, /*makeDflt=*/1);
    sqlite3_vfs_unregister(&vfs_);
  }
  FullDiskVfs(const FullDiskVfs&) = delete;
  FullDiskVfs& operator=(const FullDiskVfs&) = delete;

 private:
  struct File {
    sqlite3_file base;  // first: SQLite sees this
    sqlite3_file* real;
    bool wal;
  };
  static sqlite3_file* Real(sqlite3_file* f) { return reinterpret_cast<File*>(f)->real; }

  static int Open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out) {
    auto* real_vfs = static_cast<sqlite3_vfs*>(vfs->pAppData);
    auto* f = reinterpret_cast<File*>(file);
    f->real = reinterpret_cast<sqlite3_file*>(f + 1);
    f->wal = (flags & SQLITE_OPEN_WAL) != 0;
    const int rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out);
    f->base.pMethods = f->real->pMethods != nullptr ? &kMethods : nullptr;
    return rc;
  }

  static constexpr sqlite3_io_methods kMethods = {
      3,
      [](sqlite3_file* f) { return Real(f)->pMethods->xClose(Real(f)); },
      [](sqlite3_file* f, void* p, int n, sqlite3_int64 at) {
        return Real(f)->pMethods->xRead(Real(f), p, n, at);
      },
      [](sqlite3_file* f, const void* p, int n, sqlite3_int64 at) {
        if (reinterpret_cast<File*>(f)->wal && full.exchange(false)) return SQLITE_FULL;
        return Real(f)->pMethods->xWrite(Real(f), p, n, at);
      },
      [](sqlite3_file* f, sqlite3_int64 size) {
        return Real(f)->pMethods->xTruncate(Real(f), size);
      },
      [](sqlite3_file* f, int flags) { return Real(f)->pMethods->xSync(Real(f), flags); },
      [](sqlite3_file* f, sqlite3_int64* size) {
        return Real(f)->pMethods->xFileSize(Real(f), size);
      },
      [](sqlite3_file* f, int lock) { return Real(f)->pMethods->xLock(Real(f), lock); },
      [](sqlite3_file* f, int lock) { return Real(f)->pMethods->xUnlock(Real(f), lock); },
      [](sqlite3_file* f, int* out) { return Real(f)->pMethods->xCheckReservedLock(Real(f), out); },
      [](sqlite3_file* f, int op, void* arg) {
        return Real(f)->pMethods->xFileControl(Real(f), op, arg);
      },
      [](sqlite3_file* f) { return Real(f)->pMethods->xSectorSize(Real(f)); },
      [](sqlite3_file* f) { return Real(f)->pMethods->xDeviceCharacteristics(Real(f)); },
      [](sqlite3_file* f, int region, int size, int extend, void volatile** p) {
        return Real(f)->pMethods->xShmMap(Real(f), region, size, extend, p);
      },
      [](sqlite3_file* f, int offset, int n, int flags) {
        return Real(f)->pMethods->xShmLock(Real(f), offset, n, flags);
      },
      [](sqlite3_file* f) { Real(f)->pMethods->xShmBarrier(Real(f)); },
      [](sqlite3_file* f, int remove) { return Real(f)->pMethods->xShmUnmap(Real(f), remove); },
      [](sqlite3_file* f, sqlite3_int64 at, int n, void** p) {
        return Real(f)->pMethods->xFetch(Real(f), at, n, p);
      },
      [](sqlite3_file* f, sqlite3_int64 at, void* p) {
        return Real(f)->pMethods->xUnfetch(Real(f), at, p);
      },
  };

  sqlite3_vfs* real_;
  sqlite3_vfs vfs_;
};

// The disk fills up at the batch's COMMIT: every write of the batch fails, none of it is in the
// file, what was committed before stays, and the next write commits.
TEST(SqliteGroupCommitFullDisk, AFailedCommitFailsTheWholeBatchAndNothingElse) {
  FullDiskVfs vfs;
  TempDir dir;
  const std::string path = dir.File("full.db");
  auto db = OpenSqliteDatabase(path);
  auto write = [&](const std::string& sql) {
    return db->Run(Access::kWrite, "test_write", [&](Session& s) { return s.Exec(sql); });
  };
  ASSERT_TRUE(write("CREATE TABLE rows (id INTEGER PRIMARY KEY)").ok());
  ASSERT_TRUE(write("INSERT INTO rows VALUES (1)").ok());

  constexpr int kWrites = 4;
  std::vector<Status> out(kWrites, OkStatus());
  std::atomic<bool> first_running{false};
  std::thread first([&] {
    out[0] = db->Run(Access::kWrite, "test_write", [&](Session& s) {
      Status st = s.Exec("INSERT INTO rows VALUES (10)");
      // The transaction's pages reach the WAL at its COMMIT only: that one COMMIT fails, and
      // any write not in its batch would commit.
      FullDiskVfs::full = true;
      first_running = true;
      while (db->WritesWaiting() < kWrites - 1) std::this_thread::yield();
      return st;
    });
  });
  while (!first_running) std::this_thread::yield();
  std::vector<std::thread> others;
  for (int i = 1; i < kWrites; ++i) {
    others.emplace_back(
        [&, i] { out[i] = write("INSERT INTO rows VALUES (" + std::to_string(10 + i) + ")"); });
  }
  first.join();
  for (auto& t : others) t.join();
  EXPECT_FALSE(FullDiskVfs::full) << "no write reached the WAL";

  for (int i = 0; i < kWrites; ++i) {
    ASSERT_FALSE(out[i].ok()) << i;
    EXPECT_EQ(out[i].error().code, ErrorCode::kUnavailable) << out[i].error().message;
    EXPECT_NE(out[i].error().message.find("test_write: "), std::string::npos);
  }
  ASSERT_TRUE(write("INSERT INTO rows VALUES (2)").ok());
  EXPECT_EQ(SqliteRawSql(path, "SELECT group_concat(id) FROM (SELECT id FROM rows ORDER BY id)"),
            "1,2");
  EXPECT_EQ(SqliteRawSql(path, "PRAGMA integrity_check"), "ok");
}

// Many writers at once, a few of their bodies failing after they wrote: every acknowledged write
// is in the file, no failed one is. Also a race test under ThreadSanitizer.
TEST_F(SqliteGroupCommit, RaceOfManyWritersKeepsExactlyTheAcknowledgedWrites) {
  db_ = OpenSqliteDatabase(path_);  // the default bounds, reached here
  constexpr int kThreads = 16;
  constexpr int kPerThread = 60;
  std::vector<std::vector<int>> acked(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int id = t * kPerThread + i + 1;
        Status s = Write([&](Session& session) -> Status {
          if (Status w = Insert(id)(session); !w) return w;
          if (id % 5 == 0) return Error::Conflict("undone");
          return OkStatus();
        });
        if (s) acked[t].push_back(id);
        EXPECT_EQ(s.ok(), id % 5 != 0) << id;
      }
    });
  }
  for (auto& t : threads) t.join();
  std::vector<int> all;
  for (const auto& a : acked) all.insert(all.end(), a.begin(), a.end());
  std::sort(all.begin(), all.end());
  std::string expected;
  for (int id : all) {
    if (!expected.empty()) expected += ',';
    expected += std::to_string(id);
  }
  EXPECT_EQ(Sql("SELECT group_concat(id) FROM (SELECT id FROM rows ORDER BY id)"), expected);
}

// Another connection's writer (another process, the CLI) waits for the open batch's lock within
// its busy timeout, as it waited for one write before, and then commits.
TEST_F(SqliteGroupCommit, AnotherConnectionsWriterWaitsForTheBatch) {
  std::atomic<int> outside_rc{-1};
  std::thread outside;
  const auto out = RunBatch({
      [&](Session& s) {
        outside = std::thread([&] {
          sqlite3* raw = nullptr;
          sqlite3_open(path_.c_str(), &raw);
          sqlite3_busy_timeout(raw, 5000);
          outside_rc = sqlite3_exec(raw, "INSERT INTO rows (id, tag) VALUES (50, 'outside')",
                                    nullptr, nullptr, nullptr);
          sqlite3_close(raw);
        });
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        return Insert(1)(s);
      },
      Insert(2),
  });
  outside.join();
  EXPECT_TRUE(out[0].ok());
  EXPECT_TRUE(out[1].ok());
  EXPECT_EQ(outside_rc, SQLITE_OK);
  EXPECT_EQ(Sql("SELECT group_concat(id) FROM (SELECT id FROM rows ORDER BY id)"), "1,2,50");
}

// kill -9 in the middle of many concurrent writes: a child process writes from 32 threads and
// reports each write on a pipe once Run returned (acknowledged); the parent kills it mid-load,
// then finds every acknowledged write in the file.
TEST(SqliteGroupCommitCrash, EveryAcknowledgedWriteSurvivesKill9) {
  TempDir dir;
  const std::string path = dir.File("crash.db");
  ASSERT_TRUE(
      OpenSqliteDatabase(path)
          ->Run(Access::kWrite, "create",
                [](Session& s) { return s.Exec("CREATE TABLE rows (id INTEGER PRIMARY KEY)"); })
          .ok());
  int acks[2];
  ASSERT_EQ(pipe(acks), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(acks[0]);
    auto db = OpenSqliteDatabase(path);
    std::vector<std::thread> threads;
    for (int t = 0; t < 32; ++t) {
      threads.emplace_back([&, t] {
        for (std::int64_t id = t + 1;; id += 32) {
          Status s = db->Run(Access::kWrite, "write", [&](Session& session) {
            return session.Exec("INSERT INTO rows VALUES (" + std::to_string(id) + ")");
          });
          if (!s || write(acks[1], &id, sizeof id) != sizeof id) _exit(3);
        }
      });
    }
    for (auto& t : threads) t.join();
    _exit(0);
  }
  close(acks[1]);
  std::vector<std::int64_t> acknowledged;
  std::int64_t id = 0;
  while (acknowledged.size() < 3000 && read(acks[0], &id, sizeof id) == sizeof id) {
    acknowledged.push_back(id);
  }
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the writer exited early";
  while (read(acks[0], &id, sizeof id) == sizeof id) acknowledged.push_back(id);  // sent before
  close(acks[0]);
  ASSERT_GE(acknowledged.size(), 3000u);

  const std::string present = SqliteRawSql(path, "SELECT group_concat(id) FROM rows");
  std::set<std::int64_t> rows;
  for (std::size_t at = 0; at < present.size();) {
    std::size_t end = present.find(',', at);
    if (end == std::string::npos) end = present.size();
    rows.insert(std::stoll(present.substr(at, end - at)));
    at = end + 1;
  }
  std::size_t lost = 0;
  for (std::int64_t a : acknowledged) lost += rows.count(a) == 0 ? 1 : 0;
  EXPECT_EQ(lost, 0u) << "of " << acknowledged.size() << " acknowledged writes";
  EXPECT_GE(rows.size(), acknowledged.size());
  EXPECT_EQ(SqliteRawSql(path, "PRAGMA integrity_check"), "ok");
}

}  // namespace
}  // namespace connreg::store
