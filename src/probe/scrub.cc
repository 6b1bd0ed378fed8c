#include "probe/scrub.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "crypto/encoding.h"

namespace connreg::probe {
namespace {

std::string PercentEncode(std::string_view s, bool upper) {
  static constexpr char kUpper[] = "0123456789ABCDEF";
  static constexpr char kLower[] = "0123456789abcdef";
  const char* hex = upper ? kUpper : kLower;
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out.push_back(static_cast<char>(ch));
    } else {
      out.push_back('%');
      out.push_back(hex[ch >> 4]);
      out.push_back(hex[ch & 15]);
    }
  }
  return out;
}

std::string ReplaceAll(std::string s, std::string_view from, std::string_view to) {
  std::size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

// Length in bytes of the UTF-8 sequence starting at s[i], or 0 when it is not valid UTF-8.
std::size_t Utf8Length(std::string_view s, std::size_t i) {
  auto b = static_cast<unsigned char>(s[i]);
  std::size_t n = b < 0x80           ? 1
                  : (b >> 5) == 0x6  ? 2
                  : (b >> 4) == 0xE  ? 3
                  : (b >> 3) == 0x1E ? 4
                                     : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
  }
  return n;
}

// True when text[i] exists and is an ASCII letter or digit (i may be npos or past the end).
bool IsWordByte(std::string_view text, std::size_t i) {
  return i < text.size() && std::isalnum(static_cast<unsigned char>(text[i]));
}

}  // namespace

Scrubber::Scrubber(const std::map<std::string, std::string>& secrets, std::size_t max_length)
    : max_length_(std::max<std::size_t>(max_length, 16)) {
  std::set<std::string> forms;
  for (const auto& [field, value] : secrets) {
    if (value.empty()) continue;
    std::string b64 = crypto::Base64Encode(value);
    std::string b64_unpadded = b64.substr(0, b64.find('='));
    for (std::string form :
         {value, b64, b64_unpadded, crypto::Base64UrlEncode(value), PercentEncode(value, true),
          PercentEncode(value, false), ReplaceAll(value, "'", "''"),
          ReplaceAll(ReplaceAll(value, "\\", "\\\\"), "\"", "\\\"")}) {
      if (!form.empty()) forms.insert(std::move(form));
    }
  }
  needles_.assign(forms.begin(), forms.end());
  std::sort(needles_.begin(), needles_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

std::string Scrubber::Scrub(std::string_view text) const {
  // One left-to-right pass: the replacement text itself is never searched again, so a secret
  // that occurs inside "[redacted]" cannot make this loop forever.
  std::string s;
  s.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const std::string* hit = nullptr;
    for (const std::string& needle : needles_) {
      if (text.substr(i, needle.size()) != needle) continue;
      if (needle.size() < kMinInWordLength &&
          (IsWordByte(text, i - 1) || IsWordByte(text, i + needle.size()))) {
        continue;
      }
      hit = &needle;
      break;
    }
    if (hit) {
      s += kRedacted;
      i += hit->size();
    } else {
      s.push_back(text[i++]);
    }
  }

  std::string clean;
  clean.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    std::size_t n = Utf8Length(s, i);
    if (n == 0) {
      clean.push_back('?');
      ++i;
      continue;
    }
    auto b = static_cast<unsigned char>(s[i]);
    if (n == 1 && (b < 0x20 || b == 0x7F)) {
      clean.push_back(' ');
    } else {
      clean.append(s, i, n);
    }
    i += n;
  }

  auto first = clean.find_first_not_of(' ');
  if (first == std::string::npos) return "";
  clean = clean.substr(first, clean.find_last_not_of(' ') - first + 1);

  if (clean.size() > max_length_) {
    std::size_t cut = max_length_ - 3;
    while (cut > 0 && (static_cast<unsigned char>(clean[cut]) & 0xC0) == 0x80) --cut;
    clean.resize(cut);
    clean += "...";
  }
  return clean;
}

}  // namespace connreg::probe
