// libFuzzer target: the HTTP request path from raw bytes to the routed handler, without sockets.
//
// The bytes go through a Beast request_parser with the server's limits (16 KiB of header, 1 MiB of
// body) and the server's framing checks (src/http/server.cc); each complete request (up to four
// pipelined ones per input) becomes an http::Exchange handed to api::Api::Handle on an io_context,
// with a real SQLite store in a temporary directory, the blocking pool and a probe engine without
// drivers (no network). So routing, the Authorization header, query parameters, JSON bodies,
// validation, the handlers and the store all run on fuzzed input.
//
// The store holds one organization with an admin token "fuzzadmintoken0123456789" and a viewer
// token "fuzzviewertoken0123456789", and one connection 0b0e2f7a-1111-4222-8333-444455556666;
// the seed corpus uses them. Findings: any sanitizer report, an exception escaping Handle (the
// server would answer 500), or a 500 answer (an input the API did not expect).
#include <unistd.h>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/parse.hpp>

#include "api/api.h"
#include "catalog/sync.h"
#include "core/blocking_pool.h"
#include "core/log.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "crypto/sodium_sealer.h"
#include "domain/connection_input.h"
#include "probe/drivers/registry.h"
#include "probe/engine.h"
#include "store/sqlite_store.h"

namespace {
using namespace connreg;
namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

constexpr std::size_t kMaxHeaderBytes = 16 * 1024;  // http::ServerLimits defaults
constexpr std::size_t kMaxBodyBytes = 1024 * 1024;

struct Env {
  std::string dir;
  std::unique_ptr<store::SqliteStore> store;
  std::unique_ptr<crypto::SodiumSealer> sealer;
  std::unique_ptr<BlockingPool> pool;
  std::unique_ptr<probe::ProbeEngine> engine;
  std::unique_ptr<catalog::SyncService> syncs;
  std::unique_ptr<api::Api> api;
};

void Must(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "fuzz_http setup: %s: %s\n", what, s.error().message.c_str());
    std::abort();
  }
}

Env& TheEnv() {
  static Env* env = [] {
    auto* e = new Env;
    log::SetLevel("error");
    crypto::EnsureSodium();
    // tmpfs when there is one: the store fsyncs every write.
    std::string base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
    std::string templ = base + "/connreg-fuzz-http-XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) std::abort();
    e->dir = templ;
    e->store = std::make_unique<store::SqliteStore>(e->dir + "/connreg.db");
    e->sealer = std::make_unique<crypto::SodiumSealer>(crypto::Keyring{
        std::make_shared<const crypto::MasterKey>(std::string(crypto::MasterKey::kBytes, 'k')),
        {}});
    const TimeMs now = NowMs();
    const TimeMs far = now + 10LL * 365 * 24 * 3600 * 1000;
    store::Store& s = *e->store;
    Must(s.CreateOrganization({"org-fuzz", "Fuzz org", now}), "org");
    auto member = [&](const std::string& id, const std::string& email, const std::string& type) {
      store::Member m;
      m.member_id = id;
      m.organization_id = "org-fuzz";
      m.email = email;
      m.account_type = type;
      m.first_name = id;
      m.created_by = m.updated_by = "fuzz";
      m.created_at = m.updated_at = now;
      return m;
    };
    Must(s.CreateMember(member("member-admin", "admin@fuzz", "admin"), {}), "admin");
    Must(s.CreateMember(member("member-viewer", "viewer@fuzz", "viewer"), {}), "viewer");
    Must(s.CreateApiClient(
             {"client-admin", "member-admin", crypto::TokenHash("admin-secret"), now, {}}),
         "admin client");
    Must(s.CreateApiClient(
             {"client-viewer", "member-viewer", crypto::TokenHash("viewer-secret"), now, {}}),
         "viewer client");
    Must(s.SaveAccessToken({crypto::TokenHash("fuzzadmintoken0123456789"), "client-admin",
                            "member-admin", "org-fuzz", far, "family-admin"}),
         "admin token");
    Must(s.SaveAccessToken({crypto::TokenHash("fuzzviewertoken0123456789"), "client-viewer",
                            "member-viewer", "org-fuzz", far, "family-viewer"}),
         "viewer token");
    auto body = boost::json::parse(
        R"({"name":"Warehouse","details":{"type":"postgres","host":"db.example.invalid",
            "database":"app","user":"u","password":"pg-pass-1"}})");
    auto c = domain::BuildNewConnection(probe::Catalog(), body, {"org-fuzz", "member-admin"}, now,
                                        "0b0e2f7a-1111-4222-8333-444455556666", *e->sealer);
    if (!c.ok()) std::abort();
    Must(s.CreateConnection(*c), "connection");

    e->pool = std::make_unique<BlockingPool>(2);
    probe::ProbeEngine::Options probe_options;
    probe_options.concurrency = 2;
    probe_options.timeout_max_secs = 2;
    probe_options.default_timeout_secs = 1;
    // No drivers: a connection test never leaves the process.
    e->engine = std::make_unique<probe::ProbeEngine>(
        probe_options, [](std::string_view) -> const probe::Driver* { return nullptr; });
    e->syncs = std::make_unique<catalog::SyncService>(*e->store, *e->sealer, *e->engine,
                                                      catalog::SyncOptions{.timeout_secs = 2});
    e->api = std::make_unique<api::Api>(
        *e->store, *e->pool, *e->sealer, probe::Catalog(), *e->engine, *e->syncs,
        api::ApiOptions{.rate_limit = 0, .cors_origins = {"https://app.example"}});
    return e;
  }();
  return *env;
}

// One request through Api::Handle, as Server::State::CallHandler runs it.
void Handle(http::Exchange& ex) {
  Env& env = TheEnv();
  asio::io_context ioc;
  std::exception_ptr failure;
  bool done = false;
  asio::co_spawn(ioc, env.api->Handle(ex), [&](std::exception_ptr e) {
    failure = e;
    done = true;
  });
  ioc.run();
  if (!done) {
    std::fprintf(stderr, "fuzz_http: the handler never completed\n");
    std::abort();
  }
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "fuzz_http: exception escaped Api::Handle: %s\n", e.what());
    } catch (...) {
      std::fprintf(stderr, "fuzz_http: non-standard exception escaped Api::Handle\n");
    }
    std::abort();
  }
  const unsigned status = ex.response.result_int();
  if (status < 100 || status > 599) std::abort();
  if (status == 500) {
    std::fprintf(stderr, "fuzz_http: 500 for %s %s: %s\n",
                 std::string(ex.request.method_string()).c_str(),
                 std::string(ex.request.target()).c_str(), ex.response.body().c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  TheEnv();
  if (size == 0) return 0;
  boost::beast::flat_buffer buffer;
  auto in = buffer.prepare(size);
  std::memcpy(in.data(), data, size);
  buffer.commit(size);

  for (int i = 0; i < 4 && buffer.size() > 0; ++i) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(kMaxHeaderBytes));
    parser.body_limit(kMaxBodyBytes);
    parser.eager(true);
    boost::beast::error_code ec;
    // Feeds what the input holds; its end is where a client would close the connection.
    while (!parser.is_done()) {
      std::size_t n = parser.put(buffer.data(), ec);
      buffer.consume(n);
      // need_more: Beast must next be given more bytes than this call had (calling put again
      // with the same bytes trips its assertions), and the input is all in the buffer already.
      if (ec == bhttp::error::need_more) {
        ec = {};
        n = 0;
      }
      if (ec) break;
      if (n == 0) {  // no progress: the input is exhausted (or cannot complete the message)
        if (buffer.size() == 0) {
          parser.put_eof(ec);
          if (!ec && !parser.is_done()) ec = bhttp::error::partial_message;
        } else {
          ec = bhttp::error::partial_message;
        }
        break;
      }
    }
    if (ec || !parser.is_done()) return 0;  // the server answers 400/413/431 or drops it
    const auto& header = parser.get();
    // The server's framing checks (src/http/server.cc, Serve): rejected before the handler.
    if (header.count(bhttp::field::transfer_encoding) != 0 &&
        (header.count(bhttp::field::content_length) != 0 || !parser.chunked())) {
      return 0;
    }
    http::Exchange ex;
    ex.request = parser.release();
    ex.request_id = "fuzz-request";
    ex.remote_address = "127.0.0.1";
    Handle(ex);
    if (!ex.request.keep_alive()) break;
  }
  return 0;
}
