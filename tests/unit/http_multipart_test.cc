// The streaming multipart/form-data reader (http/multipart.h): boundaries split across pieces,
// other fields around the one wanted, and malformed bodies, each a clear error.
#include "http/multipart.h"

#include <gtest/gtest.h>

#include <string>

namespace connreg::http {
namespace {

// Reads the field `name` of `body` delivered in pieces of `piece` bytes; the content, or the
// error message.
std::string ReadField(const std::string& body, std::size_t piece,
                      const std::string& name = "artifacts", bool finish = true) {
  std::size_t at = 0;
  MultipartFieldReader reader("XyZ", name, [&]() -> Result<std::string_view> {
    std::string_view rest = std::string_view(body).substr(at, piece);
    at += rest.size();
    return rest;
  });
  std::string content;
  for (;;) {
    auto p = reader.Read();
    if (!p) return "error: " + p.error().message;
    if (p->empty()) break;
    content += *p;
  }
  if (finish) {
    if (auto s = reader.Finish(); !s) return "error: " + s.error().message;
  }
  return content;
}

const std::string kPayload = "\x1f\x8b binary\r\n--XyQ not a boundary\r\n-- and \r\n--Xy";

std::string Body() {
  return "preamble to ignore\r\n"
         "--XyZ\r\n"
         "Content-Disposition: form-data; name=\"comment\"\r\n\r\n"
         "hello\r\n"
         "--XyZ  \r\n"  // transport padding
         "Content-Disposition: form-data; name=\"artifacts\"; filename=\"target;1.tar.gz\"\r\n"
         "Content-Type: application/gzip\r\n\r\n" +
         kPayload +
         "\r\n--XyZ\r\n"
         "content-disposition: FORM-DATA; name=after\r\n\r\n"
         "x\r\n"
         "--XyZ--\r\nepilogue";
}

TEST(HttpMultipart, ReadsTheNamedFieldWhateverThePieces) {
  for (std::size_t piece : {1, 2, 3, 5, 7, 64, 100000}) {
    EXPECT_EQ(ReadField(Body(), piece), kPayload) << piece;
  }
  EXPECT_EQ(ReadField(Body(), 3, "comment"), "hello");
  // A body that opens with its boundary (no preamble) and an empty field.
  EXPECT_EQ(ReadField("--XyZ\r\nContent-Disposition: form-data; name=\"artifacts\"\r\n\r\n"
                      "\r\n--XyZ--",
                      4),
            "");
}

TEST(HttpMultipart, MalformedBodiesAreClearErrors) {
  EXPECT_EQ(ReadField(Body(), 9, "missing"), "error: the form has no field \"missing\"");
  EXPECT_EQ(ReadField("no boundary here", 4),
            "error: the body has no multipart boundary line (--XyZ)");
  EXPECT_EQ(ReadField("--XyZ\r\nContent-Disposition: form-data; name=\"artifacts\"\r\n\r\nabc", 2),
            "error: the multipart body ends inside a part (no closing boundary)");
  EXPECT_EQ(ReadField("--XyZ\r\nContent-Disposition: form-data; name=\"artifacts\"", 2),
            "error: the multipart body ends inside a part's headers");
  EXPECT_EQ(ReadField("--XyZ\r\nbroken header\r\n\r\nabc\r\n--XyZ--", 2),
            "error: a multipart part has a malformed header line");
  EXPECT_EQ(ReadField("--XyZ\r\nContent-Disposition: form-data; name=artifacts\r\n\r\na\r\n"
                      "--XyZ\r\nContent-Disposition: form-data; name=artifacts\r\n\r\nb\r\n--XyZ--",
                      3),
            "error: the form has more than one field \"artifacts\"");
  EXPECT_EQ(
      ReadField("--XyZ\r\nContent-Disposition: form-data; name=artifacts\r\n\r\na\r\n--XyZ", 3),
      "error: the multipart body ends after a boundary line");
  EXPECT_EQ(
      ReadField("--XyZ\r\nContent-Disposition: form-data; name=artifacts\r\n\r\na\r\n--XyZ\r\n", 3),
      "error: the multipart body ends inside a part's headers");
}

TEST(HttpMultipart, BoundaryComesFromTheContentType) {
  EXPECT_EQ(*MultipartBoundary("multipart/form-data; boundary=----abc123"), "----abc123");
  EXPECT_EQ(*MultipartBoundary("Multipart/Form-Data;boundary=\"a b;c\""), "a b;c");
  auto json = MultipartBoundary("application/json");
  ASSERT_FALSE(json);
  EXPECT_EQ(json.error().code, ErrorCode::kUnsupportedMediaType);
  auto none = MultipartBoundary("multipart/form-data");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, ErrorCode::kBadRequest);
  EXPECT_FALSE(MultipartBoundary("multipart/form-data; boundary=" + std::string(71, 'a')));
}

}  // namespace
}  // namespace connreg::http
