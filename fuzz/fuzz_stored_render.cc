// libFuzzer target: every body the server accepts can be stored and read back, and renders the
// same bytes on every read (issue 18, finding 1: `{"description":{"a":1e999}}` was accepted,
// stored as Infinity, and made the connection and every list page holding it answer 500).
//
// The input is a request body, read as the API reads bodies (api::ParseJsonBody: depth, UTF-8,
// NUL and finite-number checks). An object is a create (POST /v2/connections); an array [a, b]
// is the create `a` followed by the update `b`, applied both as a PUT and as a PATCH. Each
// accepted state goes through a real SQLite store in a temporary file, and must then:
// - be stored, and load again (GetConnection), rendering byte-equal on a second load;
// - appear, rendered the same, on the organization's list page;
// - render as JSON text that parses back.
// - render exactly as the write's own answer did (the store reads its JSON columns with
//   domain::ParseJsonText, so no double drifts by an ulp on the way through the database).
// Any rejection must be a 400.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <boost/beast/http/field.hpp>
#include <boost/json/parse.hpp>

#include "api/json_body.h"
#include "api/render.h"
#include "crypto/random.h"
#include "domain/connection_input.h"
#include "fuzz_support.h"
#include "probe/drivers/registry.h"
#include "store/store.h"

namespace {
using namespace connreg;

constexpr TimeMs kNow = 1655928427899;
// The store file is started afresh now and then, so that a long run does not slow down on a
// growing database.
constexpr int kInputsPerStore = 2000;

using fuzz::Sealer;

[[noreturn]] void Fail(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "fuzz_stored_render: %s %.*s\n", what, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

std::unique_ptr<store::Store>& StoreSlot() {
  static std::unique_ptr<store::Store> store;
  return store;
}

store::Store& Store() { return *StoreSlot(); }

// Called once per input, before any store call.
void StartInput() {
  static const std::filesystem::path dir = [] {
    std::string templ = (std::filesystem::temp_directory_path() / "fuzz-stored-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) Fail("mkdtemp failed");
    return std::filesystem::path(templ);
  }();
  static int inputs = 0;
  auto& store = StoreSlot();
  if (!store || ++inputs > kInputsPerStore) {
    store.reset();
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    store = store::OpenStore("sqlite:" + (dir / "connreg.db").string());
    inputs = 0;
  }
}

std::string Render(const domain::Connection& c) {
  const std::string text = api::RenderConnection(c);
  boost::system::error_code ec;
  (void)boost::json::parse(text, ec);
  if (ec) Fail("a rendering is not JSON:", text);
  return text;
}

// The stored state of `c` must render as the write's answer did, the same twice, and on the list
// page.
void CheckStored(const domain::Connection& c) {
  store::Store& s = Store();
  const std::string answer = Render(c);
  auto first = s.GetConnection(c.organization_id, c.connection_id);
  if (!first.ok()) Fail("a stored connection does not load:", first.error().message);
  const std::string once = Render(*first);
  if (once != answer) Fail("the stored state renders unlike the write's answer:", answer);
  auto second = s.GetConnection(c.organization_id, c.connection_id);
  if (!second.ok()) Fail("a stored connection does not load twice:", second.error().message);
  if (Render(*second) != once) Fail("two reads render differently:", once);
  store::ListQuery q;
  q.organization_id = c.organization_id;
  q.limit = 10;
  auto page = s.ListConnections(q);
  if (!page.ok()) Fail("the list page fails:", page.error().message);
  if (page->entries.size() != 1 || Render(page->entries.front()) != once) {
    Fail("the list page renders the connection differently:", once);
  }
}

template <class T>
bool AcceptedOr400(const Result<T>& r) {
  if (!r.ok() && r.error().code != ErrorCode::kBadRequest) Fail("not a 400:", r.error().message);
  return r.ok();
}

void Update(const domain::Connection& stored, const boost::json::value& body, bool replace) {
  const domain::Actor editor{stored.organization_id, "member-2"};
  bool restore = false;
  auto next = replace
                  ? domain::BuildReplacement(probe::Catalog(), stored, body, editor, kNow + 1,
                                             Sealer(), &restore)
                  : domain::BuildMerge(probe::Catalog(), stored, body, editor, kNow + 1, Sealer());
  if (!AcceptedOr400(next)) return;
  next->is_archived = false;
  if (auto s = Store().UpdateConnection(*next, stored.version); !s.ok()) {
    Fail("an accepted update is not stored:", s.error().message);
  }
  CheckStored(*next);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  http::Request req;
  req.set(boost::beast::http::field::content_type, "application/json");
  req.body().assign(reinterpret_cast<const char*>(data), size);
  auto body = api::ParseJsonBody(req);
  if (!AcceptedOr400(body)) return 0;

  StartInput();
  const auto* pair = body->if_array();
  const boost::json::value& create = pair != nullptr && pair->size() == 2 ? (*pair)[0] : *body;
  store::Organization org{crypto::NewUuid4(), "fuzz", kNow};
  if (auto s = Store().CreateOrganization(org); !s.ok()) Fail("org:", s.error().message);
  const domain::Actor actor{org.organization_id, "member-1"};
  auto c = domain::BuildNewConnection(probe::Catalog(), create, actor, kNow, crypto::NewUuid4(),
                                      Sealer());
  if (!AcceptedOr400(c)) return 0;
  if (auto s = Store().CreateConnection(*c); !s.ok()) {
    Fail("an accepted connection is not stored:", s.error().message);
  }
  CheckStored(*c);
  if (pair != nullptr && pair->size() == 2) {
    auto stored = Store().GetConnection(c->organization_id, c->connection_id);
    if (!stored.ok()) Fail("reload:", stored.error().message);
    Update(*stored, (*pair)[1], /*replace=*/true);
    stored = Store().GetConnection(c->organization_id, c->connection_id);
    if (!stored.ok()) Fail("reload:", stored.error().message);
    Update(*stored, (*pair)[1], /*replace=*/false);
  }
  return 0;
}
