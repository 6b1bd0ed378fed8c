// The listing's stamp (store.h, ConnectionStamp) and its narrow page read, on both backends, and
// the cache of rendered bodies that relies on them (api/body_cache.h).
#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "api/body_cache.h"
#include "api/render.h"
#include "domain/connection.h"
#include "store/store.h"
#include "store_test_support.h"

namespace connreg::store {
namespace {

using test_support::Backend;
using test_support::BackendName;
using test_support::Id;
using test_support::kT0;
using test_support::MakeConnection;

class StoreStampTest : public test_support::BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(store_->CreateOrganization({"org-a", "A", kT0}).ok());
  }

  // Id(1)'s stamp as the page reads it and its body as GET one renders it, both read now.
  struct Seen {
    ConnectionStamp stamp;
    std::string body;
  };
  Seen See() {
    ListQuery q;
    q.organization_id = "org-a";
    q.include_archived = true;
    auto page = store_->ListConnections(q);
    EXPECT_TRUE(page.ok());
    if (!page.ok()) return {};
    for (const auto& row : page->rows) {
      if (row.connection_id == Id(1)) {
        auto c = store_->GetConnection("org-a", Id(1));
        EXPECT_TRUE(c.ok());
        return {row.stamp, c.ok() ? api::RenderConnection(*c) : ""};
      }
    }
    ADD_FAILURE() << "Id(1) not listed";
    return {};
  }
};

INSTANTIATE_TEST_SUITE_P(, StoreStampTest, testing::Values(Backend::kSqlite, Backend::kPostgres),
                         BackendName);

// The rule the body cache stands on: a write that changes a connection's body changes its stamp.
// Every write path of a connection's row and its secrets is here; a new one belongs here too.
TEST_P(StoreStampTest, EveryWritePathChangesTheStampWhenItChangesTheBody) {
  domain::Connection c = MakeConnection("org-a", Id(1), "one");
  c.secrets["password"] = {"p1", "k1", kT0};
  ASSERT_TRUE(store_->CreateConnection(c).ok());
  ASSERT_TRUE(store_->CreateConnection(MakeConnection("org-a", Id(2), "two")).ok());

  Seen before = See();
  // `changes_body`: what the write is for; the test checks that too, so that it cannot pass by
  // a write that does nothing.
  auto check = [&](const char* what, bool changes_body, auto write) {
    SCOPED_TRACE(what);
    Status s = write();
    ASSERT_TRUE(s.ok()) << s.error().message;
    Seen after = See();
    EXPECT_EQ(after.body != before.body, changes_body);
    if (after.body != before.body) {
      EXPECT_NE(after.stamp, before.stamp);
    }
    before = after;
  };
  auto update = [&](auto change) {
    auto got = store_->GetConnection("org-a", Id(1));
    if (!got) return Status(got.error());
    domain::Connection next = *got;
    change(next);
    next.version = got->version + 1;
    return store_->UpdateConnection(next, got->version);
  };
  check("update", true, [&] { return update([](auto& n) { n.name = "uno"; }); });
  check("secret set", true, [&] {
    return update([](auto& n) { n.secrets["privateKey"] = {"pk", "k1", kT0 + 5}; });
  });
  check("secret cleared", true, [&] { return update([](auto& n) { n.secrets.clear(); }); });
  check("archive", true, [&] { return update([](auto& n) { n.is_archived = true; }); });
  check("unarchive", true, [&] { return update([](auto& n) { n.is_archived = false; }); });
  check("test recorded, query reached", true, [&] {
    return store_->RecordTest("org-a", Id(1), {kT0 + 10, "success", "success"}, true);
  });
  check("test recorded, query not reached", true, [&] {
    return store_->RecordTest("org-a", Id(1), {kT0 + 20, "failed", "failed"}, false);
  });
  // Two results in the same millisecond: the stamp holds the results, not only the time.
  check("test recorded again in the same millisecond", true, [&] {
    return store_->RecordTest("org-a", Id(1), {kT0 + 20, "success", "failed"}, false);
  });
  check("another connection's test", false, [&] {
    return store_->RecordTest("org-a", Id(2), {kT0 + 30, "success", "success"}, true);
  });
  ASSERT_TRUE(update([](auto& n) { n.secrets["password"] = {"p2", "k1", kT0 + 40}; }).ok());
  before = See();
  // A key rotation re-seals and keeps the secret's updated_at: no body shows the difference.
  check("reseal", false, [&] {
    return store_->ResealSecret(Id(1), "password", "p2", {"p2-under-k2", "k2", kT0 + 40});
  });
}

// have_body's rows are not read in full; the others are, in page order, with their secrets.
TEST_P(StoreStampTest, PageReadsInFullOnlyTheRowsTheCallerDoesNotHold) {
  for (int i = 1; i <= 7; ++i) {
    domain::Connection c = MakeConnection("org-a", Id(i), "c" + std::to_string(i));
    if (i % 3 == 0) c.secrets["password"] = {"p" + std::to_string(i), "k", kT0 + i};
    ASSERT_TRUE(store_->CreateConnection(c).ok());
  }
  ListQuery q;
  q.organization_id = "org-a";
  q.limit = 6;
  auto all = store_->ListConnections(q);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->rows.size(), 6u);
  ASSERT_EQ(all->entries.size(), 6u);
  std::vector<std::size_t> asked;
  q.have_body = [&](std::size_t i, const ConnectionPageRow&) {
    asked.push_back(i);
    return i % 2 == 0;
  };
  auto page = store_->ListConnections(q);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(asked, (std::vector<std::size_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(page->total, 7);
  EXPECT_TRUE(page->has_more);
  ASSERT_EQ(page->rows.size(), 6u);
  ASSERT_EQ(page->entries.size(), 3u);
  for (std::size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(page->rows[i].connection_id, all->entries[i].connection_id);
    EXPECT_EQ(page->rows[i].name, all->entries[i].name);
    EXPECT_EQ(page->rows[i].created_at, all->entries[i].created_at);
    EXPECT_EQ(page->rows[i].stamp.version, all->entries[i].version);
  }
  for (std::size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(api::RenderConnection(page->entries[k]),
              api::RenderConnection(all->entries[2 * k + 1]));
  }
  q.have_body = [](std::size_t, const ConnectionPageRow&) { return true; };
  page = store_->ListConnections(q);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->rows.size(), 6u);
  EXPECT_TRUE(page->entries.empty());
}

ConnectionStamp StampAt(std::int64_t version) {
  ConnectionStamp s;
  s.version = version;
  return s;
}

TEST(ApiBodyCache, ServesABodyOnlyAtItsStamp) {
  api::BodyCache cache;
  EXPECT_EQ(cache.Find("a", StampAt(1)), nullptr);
  cache.Put("a", StampAt(1), std::make_shared<const std::string>("{1}"));
  ASSERT_NE(cache.Find("a", StampAt(1)), nullptr);
  EXPECT_EQ(*cache.Find("a", StampAt(1)), "{1}");
  EXPECT_EQ(cache.Find("a", StampAt(2)), nullptr);
  ConnectionStamp tested = StampAt(1);
  tested.last_test_read = "failed";
  EXPECT_EQ(cache.Find("a", tested), nullptr);
  EXPECT_EQ(cache.Find("b", StampAt(1)), nullptr);
  cache.Put("a", StampAt(2), std::make_shared<const std::string>("{2}"));
  EXPECT_EQ(cache.Find("a", StampAt(1)), nullptr);
  EXPECT_EQ(*cache.Find("a", StampAt(2)), "{2}");
}

TEST(ApiBodyCache, HoldsAtMostItsBoundLeastRecentlyUsedFirstOut) {
  constexpr std::size_t kBound = 64 * 1024;
  api::BodyCache cache(kBound);
  const std::string body(700, 'x');
  for (int i = 0; i < 1000; ++i) {
    cache.Put(Id(i), StampAt(1), std::make_shared<const std::string>(body));
    EXPECT_LE(cache.bytes(), kBound);
  }
  EXPECT_GT(cache.bytes(), kBound / 2);
  EXPECT_NE(cache.Find(Id(999), StampAt(1)), nullptr);  // the last ones are held
  EXPECT_EQ(cache.Find(Id(0), StampAt(1)), nullptr);    // the first ones went
  // A body larger than a shard's share is not held at all.
  cache.Put("big", StampAt(1), std::make_shared<const std::string>(std::string(kBound, 'y')));
  EXPECT_EQ(cache.Find("big", StampAt(1)), nullptr);
}

// Pages on many threads find, replace and evict the same ids at once (run under TSan too): every
// body found is one that was put for that id at that stamp, and the bound holds.
TEST(ApiBodyCache, ConcurrentFindsAndPutsStayConsistentAndBounded) {
  constexpr std::size_t kBound = 32 * 1024;
  api::BodyCache cache(kBound);
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5000; ++i) {
        const std::string id = Id((i * 7 + t) % 200);
        const std::int64_t version = i % 3;
        const std::string body = id + "@" + std::to_string(version) + std::string(100, 'x');
        if (auto found = cache.Find(id, StampAt(version)); found && *found != body) ++wrong;
        if (i % 2 == t % 2)
          cache.Put(id, StampAt(version), std::make_shared<const std::string>(body));
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_LE(cache.bytes(), kBound);
  EXPECT_GT(cache.bytes(), 0u);
}

TEST(ApiRender, PageOfBodiesIsThePageOfTheirRows) {
  std::vector<domain::Connection> rows;
  std::vector<api::BodyCache::Body> bodies;
  for (int i = 0; i < 3; ++i) {
    domain::Connection c = MakeConnection("org-a", Id(i), "n\"" + std::to_string(i));
    c.secrets["password"] = {"p", "k", kT0};
    rows.push_back(c);
    bodies.push_back(std::make_shared<const std::string>(api::RenderConnection(c)));
  }
  EXPECT_EQ(api::RenderConnectionPageOfBodies(bodies, "tok", true, 9),
            api::RenderConnectionPage(rows, "tok", true, 9));
  EXPECT_EQ(api::RenderConnectionPageOfBodies({}, "", false, 0),
            api::RenderConnectionPage({}, "", false, 0));
}

}  // namespace
}  // namespace connreg::store
