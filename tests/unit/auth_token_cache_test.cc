// The token cache (auth/token_cache.h) over real SQLite files and its revocation epoch
// (store/revocation_epoch.h): entries served from memory, dropped by every revoking write of
// any store on the same file (a second store object maps the file anew, as a second process
// does), and the race of a revocation with a stream of resolutions, which the TSan run repeats.
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "auth/token_cache.h"
#include "crypto/hash.h"
#include "store/revocation_epoch.h"
#include "store/sqlite_store.h"
#include "store_test_support.h"

namespace connreg {
namespace {

using store::test_support::kT0;
using store::test_support::TempDir;

constexpr TimeMs kHour = 3600 * 1000;

class TokenCacheTest : public testing::Test {
 protected:
  void SetUp() override {
    store_ = std::make_unique<store::SqliteStore>(path_);
    other_ = std::make_unique<store::SqliteStore>(path_);  // another "process" on the file
    ASSERT_NE(store_->revocation_epoch(), nullptr);
    ASSERT_TRUE(store_->CreateOrganization({"org-a", "A", kT0}).ok());
    ASSERT_TRUE(store_->CreateMember({"admin", "org-a", "admin@a", "admin", kT0}, {}).ok());
    ASSERT_TRUE(store_->CreateMember({"m1", "org-a", "m1@a", "creator", kT0}, {}).ok());
    ASSERT_TRUE(store_->CreateApiClient({"c1", "m1", "h", kT0, std::nullopt}).ok());
  }

  // Issues the access token `token` to client c1 (and, with `refresh`, its refresh token).
  void Issue(const std::string& token, const std::string& refresh = "") {
    store::AccessToken a{crypto::TokenHash(token), "c1", "m1", "org-a", kT0 + kHour, "f-" + token};
    Status s = refresh.empty() ? store_->SaveAccessToken(a)
                               : store_->SaveTokenPair(a, {crypto::TokenHash(refresh), "f-" + token,
                                                           "c1", "m1", "org-a", kT0 + kHour});
    ASSERT_TRUE(s.ok()) << s.error().message;
  }

  std::string Raw(const std::string& sql) { return store::test_support::SqliteRawSql(path_, sql); }

  TempDir dir_;
  std::string path_ = dir_.File("connreg.db");
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<store::SqliteStore> other_;
};

TEST_F(TokenCacheTest, ServesAResolvedTokenFromMemoryUntilTheEpochMoves) {
  auth::TokenCache cache(store_->revocation_epoch());
  ASSERT_TRUE(cache.enabled());
  Issue("tok");
  auto first = cache.Resolve(*store_, "tok", kT0);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->member_id, "m1");
  EXPECT_EQ(first->account_type, "creator");
  EXPECT_EQ(first->expires_at, kT0 + kHour);
  // Gone from the store behind its back (no bump): still served, so it came from memory.
  Raw("DELETE FROM access_tokens");
  EXPECT_TRUE(cache.Resolve(*store_, "tok", kT0).ok());
  // Until its own expiry (exclusive, as in the store).
  EXPECT_EQ(cache.Resolve(*store_, "tok", kT0 + kHour).error().code, ErrorCode::kNotFound);
  Issue("tok2");
  ASSERT_TRUE(cache.Resolve(*store_, "tok2", kT0).ok());
  Raw("DELETE FROM access_tokens");
  // Any bump, by any store on the file, makes every entry stale.
  EXPECT_EQ(other_->RevokeApiClient("c-unknown", kT0).error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(cache.Resolve(*store_, "tok2", kT0).ok()) << "a write that revoked nothing bumped";
  ASSERT_TRUE(other_->UpdateMember("org-a", "m1", {.first_name = "Renamed"}, "admin", kT0).ok());
  EXPECT_TRUE(cache.Resolve(*store_, "tok2", kT0).ok()) << "a rename bumped";
  ASSERT_TRUE(other_->UpdateMember("org-a", "m1", {.account_type = "viewer"}, "admin", kT0).ok());
  EXPECT_EQ(cache.Resolve(*store_, "tok2", kT0).error().code, ErrorCode::kNotFound);
}

TEST_F(TokenCacheTest, EveryRevokingWriteOfAnotherStoreOnTheFileBumpsTheEpoch) {
  const store::RevocationEpoch& epoch = *store_->revocation_epoch();
  std::uint64_t before = epoch.Load();
  auto bumped = [&] {
    const std::uint64_t now = epoch.Load();
    const bool moved = now != before;
    before = now;
    return moved;
  };
  ASSERT_TRUE(other_->UpdateMember("org-a", "m1", {.account_type = "viewer"}, "admin", kT0).ok());
  EXPECT_TRUE(bumped()) << "account type change";
  ASSERT_TRUE(other_->UpdateMember("org-a", "m1", {.first_name = "X"}, "admin", kT0).ok());
  EXPECT_FALSE(bumped()) << "a rename";
  ASSERT_TRUE(other_->UpdateMember("org-a", "m1", {.is_inactive = true}, "admin", kT0).ok());
  EXPECT_TRUE(bumped()) << "deactivation";
  ASSERT_TRUE(other_->UpdateMember("org-a", "m1", {.is_inactive = false}, "admin", kT0).ok());
  EXPECT_TRUE(bumped()) << "reactivation";
  Issue("a1", "r1");
  store::AccessToken a2{crypto::TokenHash("a2"), "", "", "", kT0 + kHour, ""};
  store::RefreshToken r2{crypto::TokenHash("r2"), "", "", "", "", kT0 + kHour};
  ASSERT_TRUE(other_->RotateRefreshToken(crypto::TokenHash("r1"), "c1", kT0, a2, r2).ok());
  EXPECT_FALSE(bumped()) << "a rotation";
  a2.token_hash = crypto::TokenHash("a3");
  r2.token_hash = crypto::TokenHash("r3");
  EXPECT_EQ(other_->RotateRefreshToken(crypto::TokenHash("r1"), "c1", kT0, a2, r2).error().code,
            ErrorCode::kConflict);
  EXPECT_TRUE(bumped()) << "refresh token reuse";
  ASSERT_TRUE(other_->RevokeApiClient("c1", kT0).ok());
  EXPECT_TRUE(bumped()) << "client revocation";
}

TEST_F(TokenCacheTest, IsBoundedAndKeepsNoFailures) {
  auth::TokenCache cache(store_->revocation_epoch(), /*capacity=*/3);
  for (const char* t : {"t1", "t2", "t3", "t4"}) Issue(t);
  EXPECT_EQ(cache.Resolve(*store_, "nope", kT0).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(cache.size(), 0u);
  for (const char* t : {"t1", "t2", "t3"}) ASSERT_TRUE(cache.Resolve(*store_, t, kT0).ok());
  EXPECT_EQ(cache.size(), 3u);
  ASSERT_TRUE(cache.Resolve(*store_, "t4", kT0).ok());
  EXPECT_EQ(cache.size(), 1u);  // emptied when full, then t4
}

TEST_F(TokenCacheTest, WithoutAnEpochEveryResolutionAsksTheStore) {
  auth::TokenCache cache(nullptr);
  EXPECT_FALSE(cache.enabled());
  Issue("tok");
  ASSERT_TRUE(cache.Resolve(*store_, "tok", kT0).ok());
  Raw("DELETE FROM access_tokens");
  EXPECT_EQ(cache.Resolve(*store_, "tok", kT0).error().code, ErrorCode::kNotFound);
}

TEST(RevocationEpochFile, TakesTheDatabasesModeAndIsSharedByEveryMapping) {
  TempDir dir;
  const std::string db = dir.File("x.db");
  { std::ofstream(db) << ""; }
  ASSERT_EQ(::chmod(db.c_str(), 0640), 0);
  auto a = store::RevocationEpoch::OpenBeside(db);
  auto b = store::RevocationEpoch::OpenBeside(db);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  struct stat st {};
  ASSERT_EQ(::stat((db + "-epoch").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(st.st_size, 4096);
  const std::uint64_t start = a->Load();
  b->Bump();
  EXPECT_EQ(a->Load(), start + 1);
  b.reset();  // reopening keeps the value
  EXPECT_EQ(store::RevocationEpoch::OpenBeside(db)->Load(), start + 1);
}

TEST(RevocationEpochFile, NoneWithoutAFileOrWhereItCannotBeMade) {
  EXPECT_EQ(store::RevocationEpoch::OpenBeside(":memory:"), nullptr);
  EXPECT_EQ(store::RevocationEpoch::OpenBeside(""), nullptr);
  TempDir dir;
  EXPECT_EQ(store::RevocationEpoch::OpenBeside(dir.File("missing-dir/x.db")), nullptr);
}

// The promise under a race: threads resolve a token through the cache in a loop while another
// thread revokes its client through a second store on the file. No resolution that started after
// the revoking call returned may succeed. Repeated with a fresh client each round.
TEST_F(TokenCacheTest, RaceRevocationIsExactForResolutionsStartedAfterItReturned) {
  auth::TokenCache cache(store_->revocation_epoch());
  constexpr int kRounds = 15;
  constexpr int kResolvers = 3;
  for (int round = 0; round < kRounds; ++round) {
    const std::string client = "rc" + std::to_string(round);
    const std::string token = "tok-" + client;
    ASSERT_TRUE(store_->CreateApiClient({client, "m1", "h", kT0, std::nullopt}).ok());
    ASSERT_TRUE(
        store_->SaveAccessToken({crypto::TokenHash(token), client, "m1", "org-a", kT0 + kHour, ""})
            .ok());
    std::atomic<bool> revoked{false};
    std::atomic<bool> stop{false};
    std::atomic<int> served_before{0};
    std::atomic<int> served_after{0};
    std::atomic<int> checked_after{0};
    std::vector<std::thread> resolvers;
    for (int i = 0; i < kResolvers; ++i) {
      resolvers.emplace_back([&] {
        while (!stop.load()) {
          const bool after = revoked.load();  // read before the resolution starts
          auto p = cache.Resolve(*store_, token, kT0);
          if (after) {
            ++checked_after;
            if (p.ok()) ++served_after;
          } else if (p.ok()) {
            ++served_before;
          }
        }
      });
    }
    while (served_before.load() < 20) std::this_thread::yield();
    ASSERT_TRUE(other_->RevokeApiClient(client, kT0).ok());
    revoked.store(true);
    while (checked_after.load() < 50) std::this_thread::yield();
    stop.store(true);
    for (auto& t : resolvers) t.join();
    EXPECT_EQ(served_after.load(), 0) << "round " << round;
  }
}

}  // namespace
}  // namespace connreg
