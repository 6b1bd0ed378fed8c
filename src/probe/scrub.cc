#include "probe/scrub.h"

#include <algorithm>
#include <cctype>

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

// Bytes a match skips: whitespace and control characters, which a server inserts when it wraps
// or indents what it echoes.
bool IsSkipped(unsigned char b) { return b <= 0x20 || b == 0x7f; }

// Characters of a base64 or hex word, the unit a whole-word hit redacts.
bool IsEncodedWordByte(unsigned char b) {
  return std::isalnum(b) || b == '+' || b == '/' || b == '=' || b == '-' || b == '_';
}

char FoldCase(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

// The base64 characters that depend on `secret` alone when it starts `offset` bytes (0..2) into
// the encoded data, whatever comes before or after it: the characters whose six bits all lie
// inside the secret's bytes.
std::string Base64Core(std::string_view secret, std::size_t offset) {
  std::string encoded = crypto::Base64Encode(std::string(offset, '\0') + std::string(secret));
  std::size_t first = (8 * offset + 5) / 6;
  std::size_t end = (8 * (offset + secret.size())) / 6;
  return end > first ? encoded.substr(first, end - first) : "";
}

// One run of bytes of the original text to replace by the marker: [begin, end).
struct Span {
  std::size_t begin;
  std::size_t end;
};

}  // namespace

Scrubber::Scrubber(const std::map<std::string, std::string>& secrets, std::size_t max_length)
    : max_length_(std::max<std::size_t>(max_length, 16)) {
  std::map<std::string, Needle> forms;  // by text: one needle per form
  auto add = [&](const std::string& text, bool fold_case, bool whole_word) {
    std::string squeezed;
    for (char c : text) {
      if (!IsSkipped(static_cast<unsigned char>(c)))
        squeezed.push_back(fold_case ? FoldCase(c) : c);
    }
    if (squeezed.empty()) return;
    forms.try_emplace(squeezed, Needle{squeezed, fold_case, whole_word});
  };
  for (const auto& [field, value] : secrets) {
    if (value.empty()) continue;
    add(value, true, false);
    add(std::string(value.rbegin(), value.rend()), true, false);
    add(ReplaceAll(value, "'", "''"), true, false);
    add(ReplaceAll(ReplaceAll(value, "\\", "\\\\"), "\"", "\\\""), true, false);
    std::string percent = PercentEncode(value, true);
    add(percent, true, false);
    add(ReplaceAll(percent, "%20", "+"), true, false);
    add(crypto::HexEncode(value), true, true);
    for (std::size_t offset = 0; offset < 3; ++offset) {
      std::string core = Base64Core(value, offset);
      if (core.size() < kMinInWordLength) continue;  // too few bits to tell from chance
      add(core, false, true);
      add(ReplaceAll(ReplaceAll(core, "+", "-"), "/", "_"), false, true);  // url-safe
    }
  }
  for (auto& [text, needle] : forms) needles_.push_back(std::move(needle));
  std::sort(needles_.begin(), needles_.end(),
            [](const Needle& a, const Needle& b) { return a.text.size() > b.text.size(); });
}

std::string Scrubber::Clean(std::string_view text) const {
  // The text without skipped bytes, and where each of its bytes came from.
  std::string view;
  std::vector<std::size_t> at;
  view.reserve(text.size());
  at.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (IsSkipped(static_cast<unsigned char>(text[i]))) continue;
    view.push_back(text[i]);
    at.push_back(i);
  }

  // One left-to-right pass over the view: the marker itself is never searched, so a secret that
  // occurs inside "[redacted]" cannot make this loop forever.
  std::vector<Span> spans;
  for (std::size_t j = 0; j < view.size();) {
    const Needle* hit = nullptr;
    for (const Needle& needle : needles_) {
      std::size_t n = needle.text.size();
      if (j + n > view.size()) continue;
      bool same = true;
      for (std::size_t k = 0; k < n && same; ++k) {
        char c = view[j + k];
        same = (needle.fold_case ? FoldCase(c) : c) == needle.text[k];
      }
      if (!same) continue;
      if (n < kMinInWordLength) {
        // Short forms: only as a word of their own, and never across skipped bytes.
        std::size_t begin = at[j];
        std::size_t last = at[j + n - 1];
        if (last - begin + 1 != n || (begin > 0 && IsWordByte(text, begin - 1)) ||
            IsWordByte(text, last + 1)) {
          continue;
        }
      }
      hit = &needle;
      break;
    }
    if (!hit) {
      ++j;
      continue;
    }
    Span span{at[j], at[j + hit->text.size() - 1] + 1};
    if (hit->whole_word) {
      auto encoded = [&](std::size_t i) {
        return IsEncodedWordByte(static_cast<unsigned char>(text[i]));
      };
      while (span.begin > 0 && encoded(span.begin - 1)) --span.begin;
      while (span.end < text.size() && encoded(span.end)) ++span.end;
    }
    if (!spans.empty() && span.begin < spans.back().end) span.begin = spans.back().end;
    if (span.begin < span.end) spans.push_back(span);
    while (j < view.size() && at[j] < span.end) ++j;
  }

  std::string redacted;
  redacted.reserve(text.size());
  std::size_t i = 0;
  for (const Span& span : spans) {
    redacted.append(text.substr(i, span.begin - i));
    redacted += kRedacted;
    i = span.end;
  }
  redacted.append(text.substr(i));

  // Runs of whitespace and control characters become one space; invalid UTF-8 becomes '?'.
  std::string clean;
  clean.reserve(redacted.size());
  for (std::size_t k = 0; k < redacted.size();) {
    std::size_t n = Utf8Length(redacted, k);
    if (n == 0) {
      clean.push_back('?');
      ++k;
      continue;
    }
    if (n == 1 && IsSkipped(static_cast<unsigned char>(redacted[k]))) {
      if (!clean.empty() && clean.back() != ' ') clean.push_back(' ');
    } else {
      clean.append(redacted, k, n);
    }
    k += n;
  }
  while (!clean.empty() && clean.back() == ' ') clean.pop_back();
  if (!clean.empty() && clean.front() == ' ') clean.erase(0, 1);
  return clean;
}

std::string Scrubber::Scrub(std::string_view text) const {
  std::string clean = Clean(text);
  if (clean.size() > max_length_) {
    std::size_t cut = max_length_ - 3;
    while (cut > 0 && (static_cast<unsigned char>(clean[cut]) & 0xC0) == 0x80) --cut;
    clean.resize(cut);
    clean += "...";
  }
  return clean;
}

std::string Scrubber::Excerpt(std::string_view server_text, std::size_t chars) const {
  // Only the start is ever shown; the window leaves room for a secret that begins within the
  // excerpt and runs on, whitespace and all, past its end.
  constexpr std::size_t kWindow = 16 * 1024;
  std::string clean = Clean(server_text.substr(0, kWindow));
  std::size_t count = 0;
  for (std::size_t i = 0; i < clean.size(); ++count) {
    if (count == chars) {
      clean.resize(i);
      return clean + "...";
    }
    std::size_t n = Utf8Length(clean, i);  // Clean leaves valid UTF-8 only
    i += n == 0 ? 1 : n;
  }
  return server_text.size() > kWindow ? clean + "..." : clean;
}

}  // namespace connreg::probe
