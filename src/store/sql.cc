#include "store/sql.h"

#include <algorithm>

namespace connreg::store::sql {
namespace {

bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }

}  // namespace

std::string Dialect::IndexedBy(std::string_view index) const {
  if (!index_hints) return {};
  return " INDEXED BY " + std::string(index);
}

std::string Dialect::Contains(std::string_view haystack, std::string_view needle) const {
  return std::string(find_substring) + "(" + std::string(haystack) + ", " + std::string(needle) +
         ") > 0";
}

std::string Dialect::JsonArrayTexts(std::string_view param) const {
  std::string out(json_array_texts);
  const auto at = out.find("{}");
  if (at != std::string::npos) out.replace(at, 2, param);
  return out;
}

Query::Query(QueryBook& book, std::string_view text) : slot_(book.next_slot_++) {
  const char marker = book.dialect().parameter_marker;
  sql_.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (c == '\'' || c == '"') {
      // A literal or a quoted identifier, copied through to its closing quote (a doubled quote
      // inside is two closings back to back, so this copies it too).
      const std::size_t end = text.find(c, i + 1);
      const std::size_t stop = end == std::string_view::npos ? text.size() : end + 1;
      sql_.append(text.substr(i, stop - i));
      i = stop;
    } else if (c == ':' && i + 1 < text.size() && text[i + 1] == ':') {
      sql_.append("::");  // a PostgreSQL cast, not a parameter
      i += 2;
    } else if (c == ':' && i + 1 < text.size() && IsNameStart(text[i + 1])) {
      std::size_t end = i + 1;
      while (end < text.size() && IsNameChar(text[end])) ++end;
      const std::string_view name = text.substr(i + 1, end - i - 1);
      auto it = std::find(params_.begin(), params_.end(), name);
      if (it == params_.end()) it = params_.emplace(params_.end(), name);
      sql_ += marker;
      sql_ += std::to_string(it - params_.begin() + 1);
      i = end;
    } else {
      sql_ += c;
      ++i;
    }
  }
}

int Query::ParamIndex(std::string_view name, int hint) const {
  const int n = param_count();
  if (hint >= 1 && hint <= n && params_[hint - 1] == name) return hint;
  for (int i = 0; i < n; ++i) {
    if (params_[i] == name) return i + 1;
  }
  return 0;
}

}  // namespace connreg::store::sql
