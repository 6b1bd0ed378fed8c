// libFuzzer target: auth::ParseForm, ParseBasic, IsBasicScheme and ParseBearer on arbitrary text
// (the token endpoint's form body and the Authorization header).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "auth/credentials.h"
#include "crypto/encoding.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace connreg;
  std::string_view text(reinterpret_cast<const char*>(data), size);

  auto form = auth::ParseForm(text);
  if (!form.ok() && form.error().code != ErrorCode::kBadRequest) std::abort();

  auto basic = auth::ParseBasic(text);
  if (basic && !auth::IsBasicScheme(text)) std::abort();
  if (basic && basic->id.empty()) std::abort();
  // The same bytes as the decoded credential of a well-formed Basic header.
  auto basic2 = auth::ParseBasic("Basic " + crypto::Base64Encode(text));
  (void)basic2;

  auto bearer = auth::ParseBearer(text);
  if (bearer) {
    if (bearer->empty() || bearer->size() > 512) std::abort();
    // The view points into the header.
    if (bearer->data() < text.data() || bearer->data() + bearer->size() > text.data() + text.size())
      std::abort();
  }
  auto bearer2 = auth::ParseBearer("Bearer " + std::string(text));
  (void)bearer2;
  return 0;
}
