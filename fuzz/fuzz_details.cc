// libFuzzer target: domain::ParseDetails, BuildNewConnection, BuildReplacement and BuildMerge on
// arbitrary JSON (the bodies of POST, PUT and PATCH /v2/connections). The input is parsed as the
// API parses bodies (depth 32). A JSON array [a, b] is also read as a create body `a` followed by
// a PUT/PATCH body `b` applied to the connection `a` made, so updates of fuzzed states run too.
// Every rejection must be a 400; every accepted connection must open its sealed secrets.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include <sodium.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "crypto/random.h"
#include "domain/connection_input.h"
#include "domain/details.h"
#include "fuzz_support.h"
#include "probe/drivers/registry.h"

namespace {
using namespace connreg;

constexpr TimeMs kNow = 1655928427899;
const char kId[] = "0b0e2f7a-1111-4222-8333-444455556666";

using fuzz::Sealer;

const domain::Actor kActor{"org-1", "member-1"};
const domain::Actor kEditor{"org-1", "member-2"};

template <class T>
void ExpectBadRequestOr(const Result<T>& r) {
  if (!r.ok() && r.error().code != ErrorCode::kBadRequest) std::abort();
}

void CheckConnection(const domain::Connection& c) {
  if (c.version < 1) std::abort();
  (void)boost::json::serialize(c.details);
  for (const auto& [field, s] : c.secrets) {
    auto plain = Sealer().Open(c.connection_id, field, s);
    if (!plain.ok()) std::abort();
    if (c.details.contains(field)) std::abort();  // a secret never stays in the visible details
  }
}

const domain::Connection& Stored() {
  static const domain::Connection c = [] {
    auto body = boost::json::parse(
        R"({"name":"Warehouse","description":{"team":"bi"},"timeoutSecs":120,
            "details":{"type":"postgres","host":"db.example.com","database":"app","port":5432,
                       "user":"u","password":"pg-pass-1","writeAccess":{"writeSchema":"w"}}})");
    auto r = domain::BuildNewConnection(probe::Catalog(), body, kActor, kNow, kId, Sealer());
    if (!r.ok()) std::abort();
    return std::move(r).value();
  }();
  return c;
}

void Updates(const domain::Connection& stored, const boost::json::value& body) {
  bool restore = false;
  auto put = domain::BuildReplacement(probe::Catalog(), stored, body, kEditor, kNow + 1, Sealer(),
                                      &restore);
  ExpectBadRequestOr(put);
  if (put.ok()) {
    CheckConnection(*put);
    if (put->version != stored.version + 1) std::abort();
  }
  auto patch = domain::BuildMerge(probe::Catalog(), stored, body, kEditor, kNow + 1, Sealer());
  ExpectBadRequestOr(patch);
  if (patch.ok()) {
    CheckConnection(*patch);
    if (patch->version != stored.version + 1) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  boost::json::parse_options opts;
  opts.max_depth = 32;  // api::kMaxJsonDepth: deeper bodies never reach the domain
  boost::system::error_code ec;
  boost::json::value v =
      boost::json::parse(std::string_view(reinterpret_cast<const char*>(data), size), ec, {}, opts);
  if (ec) return 0;

  ExpectBadRequestOr(domain::ParseDetails(probe::Catalog(), v));
  ExpectBadRequestOr(
      domain::ParseDetails(probe::Catalog(), v, {"password", "privateKey", "token"}));
  if (const auto* o = v.if_object(); o != nullptr && o->contains("details")) {
    ExpectBadRequestOr(domain::ParseDetails(probe::Catalog(), o->at("details")));
  }

  auto created = domain::BuildNewConnection(probe::Catalog(), v, kActor, kNow, kId, Sealer());
  ExpectBadRequestOr(created);
  if (created.ok()) CheckConnection(*created);
  Updates(Stored(), v);

  if (const auto* a = v.if_array(); a != nullptr && a->size() == 2) {
    auto first = domain::BuildNewConnection(probe::Catalog(), (*a)[0], kActor, kNow, kId, Sealer());
    ExpectBadRequestOr(first);
    if (first.ok()) Updates(*first, (*a)[1]);
  }
  return 0;
}
