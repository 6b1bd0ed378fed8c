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

TEST(DomainPermissions, AccountTypeIsAdminCreatorOrViewer) {
  for (const char* good : {"admin", "creator", "viewer"}) EXPECT_TRUE(IsAccountType(good)) << good;
  for (const char* bad : {"owner", "", "Admin", "explorer", "usage", "viewer "}) {
    EXPECT_FALSE(IsAccountType(bad)) << bad;
  }
}

}  // namespace
}  // namespace connreg::domain
