#include "domain/permissions.h"

#include <algorithm>

namespace connreg::domain {

bool IsAccountType(std::string_view account_type) {
  return std::ranges::find(kAccountTypes, account_type) != kAccountTypes.end();
}

bool IsGrantPermission(std::string_view permission) {
  return std::ranges::find(kGrantPermissions, permission) != kGrantPermissions.end();
}

}  // namespace connreg::domain
