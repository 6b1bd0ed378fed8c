// The permission vocabularies (domain/permissions.h). These cases moved here from the store
// contract tests when the rule left the stores: a store no longer decides what a permission or
// an account type may be.
#include "domain/permissions.h"

#include <gtest/gtest.h>

#include <string>

namespace connreg::domain {
namespace {

TEST(DomainPermissions, GrantPermissionIsUsageOrAnnotate) {
  EXPECT_TRUE(IsGrantPermission("usage"));
  EXPECT_TRUE(IsGrantPermission("annotate"));
  for (const char* bad : {"owner", "", "Usage", "USAGE", "usage ", "edit", "admin"}) {
    EXPECT_FALSE(IsGrantPermission(bad)) << bad;
  }
  EXPECT_FALSE(IsGrantPermission(std::string("usage\0", 6)));
}

TEST(DomainPermissions, AccountTypeIsAdminCreatorExplorerOrViewer) {
  for (const char* good : {"admin", "creator", "explorer", "viewer"}) {
    EXPECT_TRUE(IsAccountType(good)) << good;
  }
  for (const char* bad : {"owner", "", "Admin", "EXPLORER", "usage", "viewer "}) {
    EXPECT_FALSE(IsAccountType(bad)) << bad;
  }
}

TEST(DomainPermissions, MemberTypeIsReadCaseInsensitivelyAndStoredLowerCase) {
  EXPECT_EQ(ParseAccountType("Admin"), "admin");
  EXPECT_EQ(ParseAccountType("EXPLORER"), "explorer");
  EXPECT_EQ(ParseAccountType("viewer"), "viewer");
  for (const char* bad : {"", "owner", " admin", "admin ", "adm\u0131n", "vi\xc3\xa9wer"}) {
    EXPECT_EQ(ParseAccountType(bad), std::nullopt) << bad;
  }
}

}  // namespace
}  // namespace connreg::domain
