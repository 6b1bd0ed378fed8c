#include "domain/permissions.h"

#include <algorithm>

#include "domain/connection.h"

namespace connreg::domain {

bool IsAccountType(std::string_view account_type) {
  return std::ranges::find(kAccountTypes, account_type) != kAccountTypes.end();
}

std::optional<std::string> ParseAccountType(std::string_view input) {
  std::string folded = FoldName(input);
  if (!IsAccountType(folded)) return std::nullopt;
  return folded;
}

bool IsGrantPermission(std::string_view permission) {
  return std::ranges::find(kGrantPermissions, permission) != kGrantPermissions.end();
}

}  // namespace connreg::domain
