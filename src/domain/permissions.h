// The two closed vocabularies of the permission model (contract section 1), checked here and
// nowhere else: a member's account type and a grant's permission. Callers (the API for grants,
// the operator CLI for members) refuse any other value before it reaches a store; the stores
// take these values as given (the schema's CHECK constraints stay as a last line of defence).
#pragma once

#include <array>
#include <string_view>

namespace connreg::domain {

inline constexpr std::array<std::string_view, 3> kAccountTypes = {"admin", "creator", "viewer"};
inline constexpr std::array<std::string_view, 2> kGrantPermissions = {"usage", "annotate"};

// True for "admin", "creator" and "viewer" (exactly; no case folding).
bool IsAccountType(std::string_view account_type);
// True for "usage" and "annotate" (exactly; no case folding).
bool IsGrantPermission(std::string_view permission);

}  // namespace connreg::domain
