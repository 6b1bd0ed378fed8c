// The sync service (catalog/sync.h) on a real SQLite store and the real probe engine, with a
// driver of this test that reports a catalog it is given (no warehouse is involved: the families'
// listings have tests of their own against real servers and protocol fakes). Joins the TSan run.
#include <gtest/gtest.h>
#include <sodium.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>

#include "catalog/sync.h"
#include "crypto/random.h"
#include "crypto/sodium_sealer.h"
#include "store_test_support.h"

namespace connreg::catalog {
namespace {

using namespace std::chrono_literals;
namespace ts = store::test_support;
using ts::kT0;

// Reports `objects()`, pausing `pause` before each, until the sink says stop.
class ListingDriver : public probe::Driver {
 public:
  std::optional<probe::Endpoint> Target(const boost::json::object&, const probe::DriverSettings&,
                                        std::string&) const override {
    return probe::Endpoint{"127.0.0.1", 1};
  }
  bool UsesTls(const boost::json::object&) const override { return false; }
  void Run(probe::ProbeRun&) const override {}
  int PathDepth() const override { return 2; }
  void Introspect(probe::CatalogRun& run) const override {
    calls.fetch_add(1);
    run.probe.steps.Begin(probe::step::kConnect);
    run.probe.steps.Pass();
    run.probe.steps.Begin(probe::step::kAuthenticate);
    run.probe.steps.Pass();
    run.probe.steps.Begin(probe::step::kQuery);
    for (const auto& o : Objects()) {
      std::this_thread::sleep_for(pause);
      if (!run.sink.Add(o)) break;
    }
    run.probe.steps.Pass();
  }

  std::vector<domain::WarehouseObject> Objects() const {
    std::lock_guard lock(mu);
    return objects;
  }
  void Set(std::vector<domain::WarehouseObject> next) {
    std::lock_guard lock(mu);
    objects = std::move(next);
  }

  mutable std::atomic<int> calls{0};
  std::chrono::milliseconds pause{0};

 private:
  mutable std::mutex mu;
  std::vector<domain::WarehouseObject> objects;
};

domain::WarehouseObject Table(std::string schema, std::string name) {
  return {{std::move(schema), std::move(name)},
          std::string(domain::inode_kind::kTable),
          "",
          {{"id", "integer", false, ""}}};
}

std::vector<domain::WarehouseObject> Tables(int n, const std::string& schema = "public") {
  std::vector<domain::WarehouseObject> out;
  for (int i = 0; i < n; ++i) out.push_back(Table(schema, "t" + std::to_string(1000 + i)));
  return out;
}

class CatalogSync : public testing::Test {
 protected:
  CatalogSync()
      : store_(store::OpenStore("sqlite:" + dir_.File("connreg.db"))),
        sealer_(crypto::Keyring{Key(), {}}) {}

  static std::shared_ptr<const crypto::MasterKey> Key() {
    crypto::EnsureSodium();
    std::string raw(crypto::MasterKey::kBytes, '\0');
    randombytes_buf(raw.data(), raw.size());
    return std::make_shared<const crypto::MasterKey>(raw);
  }

  void SetUp() override {
    ASSERT_TRUE(store_->CreateOrganization({"org-a", "A", kT0}));
    connection_ = ts::MakeConnection("org-a", ts::Id(1), "one");
    ASSERT_TRUE(store_->CreateConnection(connection_));
    probe::ProbeEngine::Options o;
    o.egress = probe::EgressPolicy({}, {}, /*allow_loopback=*/true);
    engine_ =
        std::make_unique<probe::ProbeEngine>(o, [this](std::string_view) { return &driver_; });
  }
  void TearDown() override {
    syncs_.reset();
    engine_.reset();
  }

  SyncService& Syncs(SyncOptions options = {.timeout_secs = 30, .batch_size = 3}) {
    if (!syncs_) syncs_ = std::make_unique<SyncService>(*store_, sealer_, *engine_, options);
    return *syncs_;
  }

  // Starts a sync of `path` and waits for its end.
  store::SyncRecord SyncAndWait(const domain::CatalogPath& path) {
    auto sync = Syncs().Start(connection_, path, "member-1");
    EXPECT_TRUE(sync);
    if (!sync) return {};
    return Wait(*sync);
  }
  static store::SyncRecord Wait(const std::shared_ptr<SyncService::Sync>& sync) {
    // Shared: set_value may still be running on the service's thread when the wait returns.
    auto done = std::make_shared<std::promise<void>>();
    auto finished = done->get_future();
    sync->OnFinished([done] { done->set_value(); });
    EXPECT_EQ(finished.wait_for(20s), std::future_status::ready);
    return sync->record();
  }

  std::int64_t LiveTotal() {
    store::InodeListQuery q;
    q.organization_id = "org-a";
    q.connection_id = connection_.connection_id;
    auto page = store_->ListInodes(q);
    EXPECT_TRUE(page);
    return page ? page->total : -1;
  }

  ts::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  crypto::SodiumSealer sealer_;
  ListingDriver driver_;
  std::unique_ptr<probe::ProbeEngine> engine_;
  std::unique_ptr<SyncService> syncs_;
  domain::Connection connection_;
};

TEST_F(CatalogSync, WritesEveryObjectInBatchesAndMarksWhatIsGoneRemoved) {
  driver_.Set(Tables(10));
  store::SyncRecord first = SyncAndWait({});
  EXPECT_EQ(first.status, sync_status::kSuccess) << first.steps_json;
  EXPECT_EQ(first.added, 11);  // the scope and ten tables
  EXPECT_EQ(first.removed, 0);
  EXPECT_EQ(LiveTotal(), 11);
  auto kept = store_->FindInode("org-a", connection_.connection_id, {"public", "t1000"});
  ASSERT_TRUE(kept);

  auto fewer = Tables(10);
  fewer.erase(fewer.begin() + 5, fewer.end());
  driver_.Set(fewer);
  store::SyncRecord second = SyncAndWait({});
  EXPECT_EQ(second.status, sync_status::kSuccess);
  EXPECT_EQ(second.added, 0);
  EXPECT_EQ(second.removed, 5);
  EXPECT_EQ(LiveTotal(), 6);
  auto again = store_->FindInode("org-a", connection_.connection_id, {"public", "t1000"});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->inode_id, kept->inode_id);
  auto gone = store_->FindInode("org-a", connection_.connection_id, {"public", "t1009"});
  ASSERT_TRUE(gone);
  EXPECT_TRUE(gone->removed);

  auto last = store_->LastSync("org-a", connection_.connection_id);
  ASSERT_TRUE(last);
  EXPECT_EQ(last->sync_id, second.sync_id);
  EXPECT_TRUE(last->ended_at.has_value());
}

TEST_F(CatalogSync, ASubtreeSyncRemovesNothingOutsideItsPath) {
  auto both = Tables(3, "a");
  for (auto& t : Tables(3, "b")) both.push_back(t);
  driver_.Set(both);
  ASSERT_EQ(SyncAndWait({}).status, sync_status::kSuccess);
  driver_.Set(Tables(1, "a"));  // the driver reports a's subtree only, and less of it
  store::SyncRecord sub = SyncAndWait({"a"});
  EXPECT_EQ(sub.status, sync_status::kSuccess);
  EXPECT_EQ(sub.removed, 2);
  EXPECT_EQ(LiveTotal(), 2 + 4);  // a with one table, b with three
}

TEST_F(CatalogSync, RequestsForTheRunningPathJoinItAndOtherPathsQueueBehindIt) {
  driver_.Set(Tables(20));
  driver_.pause = 5ms;
  auto first = Syncs().Start(connection_, {}, "member-1");
  auto joined = Syncs().Start(connection_, {}, "member-2");
  auto other = Syncs().Start(connection_, {"public"}, "member-1");
  auto other_joined = Syncs().Start(connection_, {"public"}, "member-3");
  ASSERT_TRUE(first && joined && other && other_joined);
  EXPECT_EQ(first->get(), joined->get());
  EXPECT_EQ(other->get(), other_joined->get());
  EXPECT_NE(first->get(), other->get());
  EXPECT_FALSE((*other)->finished());
  EXPECT_EQ(Wait(*first).status, sync_status::kSuccess);
  EXPECT_EQ(Wait(*other).status, sync_status::kSuccess);
  EXPECT_EQ(driver_.calls.load(), 2);
}

TEST_F(CatalogSync, ASyncPastItsDeadlineEndsWithATimeoutStepAndKeepsItsCommittedBatches) {
  driver_.Set(Tables(200));
  driver_.pause = 20ms;  // 4 s of listing against a deadline of 1 s
  Syncs({.timeout_secs = 1, .batch_size = 5});
  const auto started = std::chrono::steady_clock::now();
  store::SyncRecord r = SyncAndWait({});
  EXPECT_LT(std::chrono::steady_clock::now() - started, 4s);
  EXPECT_EQ(r.status, sync_status::kFailed);
  EXPECT_NE(r.steps_json.find("\"timeout\""), std::string::npos) << r.steps_json;
  EXPECT_GT(r.added, 0);
  EXPECT_LT(r.added, 201);
  EXPECT_EQ(r.removed, 0);
  EXPECT_EQ(LiveTotal(), r.added);
}

TEST_F(CatalogSync, ASyncLeftRunningIsResumedAndWritesNothingTwice) {
  driver_.Set(Tables(4));
  ASSERT_EQ(SyncAndWait({}).status, sync_status::kSuccess);
  // A record a stopped server left RUNNING.
  store::SyncRecord left{.sync_id = ts::Id(77),
                         .organization_id = "org-a",
                         .connection_id = connection_.connection_id,
                         .path = {},
                         .status = std::string(sync_status::kRunning),
                         .steps_json = "[]",
                         .started_by = "member-1",
                         .started_at = kT0};
  ASSERT_TRUE(store_->SaveSync(left));
  driver_.Set(Tables(5));
  EXPECT_EQ(Syncs().Resume(), 1);
  for (int i = 0; i < 200; ++i) {
    auto last = store_->LastSync("org-a", connection_.connection_id);
    ASSERT_TRUE(last);
    auto running = store_->RunningSyncs();
    ASSERT_TRUE(running);
    if (running->empty()) break;
    std::this_thread::sleep_for(20ms);
  }
  auto running = store_->RunningSyncs();
  ASSERT_TRUE(running);
  EXPECT_TRUE(running->empty());
  EXPECT_EQ(LiveTotal(), 6);
}

TEST_F(CatalogSync, ALookupAppliesWhatItFindsWithoutRemovingAnything) {
  driver_.Set(Tables(3));
  ASSERT_EQ(SyncAndWait({}).status, sync_status::kSuccess);
  driver_.Set({Table("public", "fresh")});
  auto done = std::make_shared<std::promise<probe::TestResult>>();
  auto result = done->get_future();
  Syncs().Lookup(connection_, {"public", "fresh"}, 0, 10,
                 [done](probe::TestResult r) { done->set_value(std::move(r)); });
  ASSERT_EQ(result.wait_for(20s), std::future_status::ready);
  EXPECT_EQ(result.get().read, probe::status::kSuccess);
  EXPECT_TRUE(store_->FindInode("org-a", connection_.connection_id, {"public", "fresh"}));
  EXPECT_EQ(LiveTotal(), 5);
}

TEST_F(CatalogSync, ManySyncsAtOnceFromSeveralThreadsAllSucceed) {
  driver_.Set(Tables(30));
  SyncService& syncs = Syncs();  // made before the threads share it
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 3; ++i) {
        auto sync = syncs.Start(
            connection_, t % 2 ? domain::CatalogPath{"public"} : domain::CatalogPath{}, "member-1");
        if (!sync || Wait(*sync).status != sync_status::kSuccess) failures.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(LiveTotal(), 31);
}

}  // namespace
}  // namespace connreg::catalog
