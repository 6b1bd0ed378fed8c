#include "http/multipart.h"

#include <cctype>
#include <optional>
#include <utility>
#include <vector>

namespace connreg::http {
namespace {

constexpr std::size_t kMaxPartHeaders = 16 * 1024;
constexpr std::size_t kMaxBoundaryLine = 1024;  // a boundary line's transport padding included

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A header value "type; key=value; key="quoted value"": its type, lower-cased, and parameters
// (keys lower-cased, quoted values unescaped).
struct HeaderValue {
  std::string type;
  std::vector<std::pair<std::string, std::string>> params;

  std::optional<std::string> Param(std::string_view key) const {
    for (const auto& [k, v] : params) {
      if (k == key) return v;
    }
    return std::nullopt;
  }
};

HeaderValue ParseHeaderValue(std::string_view s) {
  HeaderValue out;
  const std::size_t semi = s.find(';');
  out.type = Lower(Trim(s.substr(0, semi)));
  std::size_t i = semi == std::string_view::npos ? s.size() : semi + 1;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == ';')) ++i;
    const std::size_t key_start = i;
    while (i < s.size() && s[i] != '=' && s[i] != ';') ++i;
    std::string key = Lower(Trim(s.substr(key_start, i - key_start)));
    std::string value;
    if (i < s.size() && s[i] == '=') {
      ++i;
      while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
      if (i < s.size() && s[i] == '"') {
        for (++i; i < s.size() && s[i] != '"'; ++i) {
          if (s[i] == '\\' && i + 1 < s.size()) ++i;
          value.push_back(s[i]);
        }
        if (i < s.size()) ++i;  // the closing quote
        while (i < s.size() && s[i] != ';') ++i;
      } else {
        const std::size_t value_start = i;
        while (i < s.size() && s[i] != ';') ++i;
        value = std::string(Trim(s.substr(value_start, i - value_start)));
      }
    }
    if (!key.empty()) out.params.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

}  // namespace

Result<std::string> MultipartBoundary(std::string_view content_type) {
  const HeaderValue v = ParseHeaderValue(content_type);
  if (v.type != "multipart/form-data") {
    return Error{ErrorCode::kUnsupportedMediaType,
                 "Content-Type must be multipart/form-data for this route"};
  }
  auto boundary = v.Param("boundary");
  if (!boundary || boundary->empty()) {
    return Error::BadRequest("the multipart/form-data Content-Type has no boundary");
  }
  if (boundary->size() > 70) {
    return Error::BadRequest("the multipart boundary is longer than 70 characters");
  }
  return *boundary;
}

MultipartFieldReader::MultipartFieldReader(std::string_view boundary, std::string field,
                                           std::function<Result<std::string_view>()> read)
    // The first delimiter may open the body without a CRLF before it: one is put in front.
    : delimiter_("\r\n--" + std::string(boundary)),
      field_(std::move(field)),
      read_(std::move(read)),
      buffer_("\r\n") {}

Result<bool> MultipartFieldReader::Fill() {
  auto piece = read_();
  if (!piece) return std::move(piece).error();
  if (piece->empty()) return false;
  buffer_.append(piece->data(), piece->size());
  return true;
}

Status MultipartFieldReader::ParsePartHeaders(std::string_view headers) {
  in_field_ = false;
  while (!headers.empty()) {
    const std::size_t end = headers.find("\r\n");
    const std::string_view line = headers.substr(0, end);
    headers = end == std::string_view::npos ? std::string_view{} : headers.substr(end + 2);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      return Error::BadRequest("a multipart part has a malformed header line");
    }
    if (Lower(Trim(line.substr(0, colon))) != "content-disposition") continue;
    const HeaderValue v = ParseHeaderValue(line.substr(colon + 1));
    if (v.type != "form-data") {
      return Error::BadRequest("a multipart part's Content-Disposition is not form-data");
    }
    in_field_ = v.Param("name") == field_;
  }
  if (in_field_) {
    if (field_seen_) {
      return Error::BadRequest("the form has more than one field \"" + field_ + "\"");
    }
    field_seen_ = true;
  }
  return OkStatus();
}

Status MultipartFieldReader::Step(std::optional<std::string_view>* out) {
  // Each case either makes progress on buffer_ and returns, or reads more and returns.
  const auto more = [this](std::string_view at_end) -> Status {
    auto filled = Fill();
    if (!filled) return filled.error();
    if (!*filled) return Error::BadRequest(std::string(at_end));
    return OkStatus();
  };
  switch (state_) {
    case State::kPreamble: {
      const std::size_t at = buffer_.find(delimiter_);
      if (at == std::string::npos) {
        const std::size_t keep = delimiter_.size() - 1;
        if (buffer_.size() > keep) buffer_.erase(0, buffer_.size() - keep);
        return more("the body has no multipart boundary line (--" + delimiter_.substr(4) + ")");
      }
      buffer_.erase(0, at + delimiter_.size());
      state_ = State::kAfterDelimiter;
      return OkStatus();
    }
    case State::kAfterDelimiter: {
      if (buffer_.size() < 2) return more("the multipart body ends after a boundary line");
      if (buffer_.starts_with("--")) {
        buffer_.erase(0, 2);
        state_ = State::kClosed;
        return OkStatus();
      }
      const std::size_t eol = buffer_.find("\r\n");
      if (eol == std::string::npos) {
        if (buffer_.size() > kMaxBoundaryLine) {
          return Error::BadRequest("a multipart boundary line is malformed");
        }
        return more("the multipart body ends after a boundary line");
      }
      if (!Trim(std::string_view(buffer_).substr(0, eol)).empty()) {
        return Error::BadRequest("a multipart boundary line is malformed");
      }
      buffer_.erase(0, eol + 2);
      state_ = State::kHeaders;
      return OkStatus();
    }
    case State::kHeaders: {
      std::size_t end = buffer_.starts_with("\r\n") ? 0 : buffer_.find("\r\n\r\n");
      if (end == std::string::npos) {
        if (buffer_.size() > kMaxPartHeaders) {
          return Error::BadRequest("a multipart part's headers are longer than 16 KiB");
        }
        return more("the multipart body ends inside a part's headers");
      }
      if (auto s = ParsePartHeaders(std::string_view(buffer_).substr(0, end)); !s) return s;
      buffer_.erase(0, end == 0 ? 2 : end + 4);
      state_ = State::kContent;
      return OkStatus();
    }
    case State::kContent: {
      const std::size_t at = buffer_.find(delimiter_);
      // Content up to the delimiter, or all but what could be the start of one.
      const std::size_t keep = delimiter_.size() - 1;
      const std::size_t n =
          at != std::string::npos ? at : (buffer_.size() > keep ? buffer_.size() - keep : 0);
      if (in_field_ && n > 0) {
        out_.assign(buffer_, 0, n);
        *out = out_;
      }
      buffer_.erase(0, at != std::string::npos ? at + delimiter_.size() : n);
      if (at != std::string::npos) {
        if (in_field_) field_ended_ = true;
        in_field_ = false;
        state_ = State::kAfterDelimiter;
        return OkStatus();
      }
      if (n > 0) return OkStatus();
      return more("the multipart body ends inside a part (no closing boundary)");
    }
    case State::kClosed: return OkStatus();
  }
  return OkStatus();
}

Result<std::string_view> MultipartFieldReader::Read() {
  for (;;) {
    if (field_ended_) return std::string_view{};
    if (state_ == State::kClosed) {
      return Error::BadRequest("the form has no field \"" + field_ + "\"");
    }
    std::optional<std::string_view> out;
    if (auto s = Step(&out); !s) return s.error();
    if (out) return *out;
  }
}

Status MultipartFieldReader::Finish() {
  while (state_ != State::kClosed) {
    std::optional<std::string_view> ignored;
    if (auto s = Step(&ignored); !s) return s;
  }
  if (!field_seen_) return Error::BadRequest("the form has no field \"" + field_ + "\"");
  // The epilogue (after the closing boundary) is ignored, as RFC 2046 says.
  for (;;) {
    buffer_.clear();
    auto filled = Fill();
    if (!filled) return filled.error();
    if (!*filled) return OkStatus();
  }
}

}  // namespace connreg::http
