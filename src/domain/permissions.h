// The two closed vocabularies of the permission model (contract sections 1 and 12), checked here
// and nowhere else: a member's account type and a grant's permission. Callers (the API for
// grants, the member rules of domain/member.h for account types) refuse any other value before it
// reaches a store; the stores take these values as given (the schema's CHECK constraints stay as
// a last line of defence).
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace connreg::domain {

// Only "admin" changes what a member may do; the others are Sigma's names for the rest.
inline constexpr std::array<std::string_view, 4> kAccountTypes = {"admin", "creator", "explorer",
                                                                  "viewer"};
inline constexpr std::string_view kAdmin = "admin";
inline constexpr std::array<std::string_view, 2> kGrantPermissions = {"usage", "annotate"};

// True for "admin", "creator", "explorer" and "viewer" (exactly; no case folding): what is
// stored and rendered.
bool IsAccountType(std::string_view account_type);
// The account type that `input` names, ASCII case-insensitively ("Admin" -> "admin"), as Sigma's
// memberType is read; nullopt for anything else.
std::optional<std::string> ParseAccountType(std::string_view input);
// True for "usage" and "annotate" (exactly; no case folding).
bool IsGrantPermission(std::string_view permission);

}  // namespace connreg::domain
