// Where the master key comes from (contract section 11): the generated key file of the embedded
// default, raced by nodes starting together, and the start-up errors an operator sees.
#include "crypto/master_key_source.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "store_test_support.h"

namespace connreg::crypto {
namespace {

MasterKeySettings DefaultFile(const std::string& path, bool store_is_empty) {
  MasterKeySettings s;
  s.default_file = path;
  s.store_is_empty = store_is_empty;
  return s;
}

TEST(MasterKeySource, GeneratesAPrivateKeyFileOnAnEmptyStoreAndReadsItBack) {
  store::test_support::TempDir dir;
  const std::string path = dir.File("master.key");
  LoadedKeys first = LoadMasterKeys(DefaultFile(path, true));
  EXPECT_EQ(first.file, path);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  LoadedKeys again = LoadMasterKeys(DefaultFile(path, false));
  EXPECT_EQ(again.keys.current->id(), first.keys.current->id());
  EXPECT_TRUE(again.keys.previous.empty());
}

// Nodes starting together on one empty store: every one ends up with the same key, none reads a
// half-written file, and no temporary file is left behind.
TEST(MasterKeySource, RacingStartsOnAnEmptyStoreAgreeOnOneKey) {
  for (int round = 0; round < 20; ++round) {
    store::test_support::TempDir dir;
    const std::string path = dir.File("master.key");
    constexpr int kNodes = 8;
    std::vector<std::string> ids(kNodes);
    std::vector<std::string> errors(kNodes);
    std::vector<std::thread> threads;
    for (int i = 0; i < kNodes; ++i) {
      threads.emplace_back([&, i] {
        try {
          ids[i] = LoadMasterKeys(DefaultFile(path, true)).keys.current->id();
        } catch (const std::exception& e) {
          errors[i] = e.what();
        }
      });
    }
    for (auto& t : threads) t.join();
    for (int i = 0; i < kNodes; ++i) {
      EXPECT_EQ(errors[i], "") << "round " << round;
      EXPECT_EQ(ids[i], ids[0]) << "round " << round;
    }
    int files = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir.File(""))) {
      ++files;
      EXPECT_EQ(entry.path().filename(), "master.key");
    }
    EXPECT_EQ(files, 1);
  }
}

TEST(MasterKeySource, AMissingKeyFileBesideDataIsAnErrorNotANewKey) {
  store::test_support::TempDir dir;
  const std::string path = dir.File("master.key");
  try {
    LoadMasterKeys(DefaultFile(path, false));
    FAIL() << "a new key was generated for a store that holds data";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("is missing"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(MasterKeySource, BadKeysAreClearStartUpErrors) {
  store::test_support::TempDir dir;
  const std::string empty = dir.File("empty.key");
  std::ofstream(empty).close();
  MasterKeySettings from_file;
  from_file.key_file = empty;
  EXPECT_THROW(LoadMasterKeys(from_file), std::runtime_error);

  MasterKeySettings short_key;
  short_key.key_base64 = "c2hvcnQ=";  // "short"
  try {
    LoadMasterKeys(short_key);
    FAIL() << "a 5-byte key was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("32 bytes"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("c2hvcnQ"), std::string::npos) << "the key is echoed";
  }
  MasterKeySettings none;
  EXPECT_THROW(LoadMasterKeys(none), std::runtime_error);
}

}  // namespace
}  // namespace connreg::crypto
