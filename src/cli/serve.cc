// `connreg serve`: opens the store, loads the master key, bootstraps an empty store, and runs
// the HTTP server on one io_context with one thread per core until SIGTERM or SIGINT.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/json/serialize.hpp>

#include <filesystem>
#include <iostream>
#include <thread>

#include <spdlog/spdlog.h>

#include "api/api.h"
#include "cli/cli.h"
#include "core/blocking_pool.h"
#include "core/log.h"
#include "crypto/hash.h"
#include "crypto/master_key_source.h"
#include "crypto/random.h"
#include "http/server.h"
#include "store/store.h"

namespace connreg::cli {
namespace {

boost::asio::ip::tcp::endpoint ParseListen(const std::string& listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("--listen must be ADDRESS:PORT");
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost") host = "127.0.0.1";
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(host, ec);
  if (ec) throw std::runtime_error("--listen: '" + host + "' is not an IP address");
  int port = -1;
  try {
    port = std::stoi(listen.substr(colon + 1));
  } catch (const std::exception&) {
  }
  if (port < 0 || port > 65535) throw std::runtime_error("--listen: the port must be 0 to 65535");
  return {address, static_cast<unsigned short>(port)};
}

// First start on an empty store: one organization, one admin, one API client. The secret is
// printed once and written, mode 0600, to bootstrap-credentials.json in the state directory.
void Bootstrap(store::Store& store, const std::string& state_dir) {
  const TimeMs now = NowMs();
  store::Organization org{crypto::NewUuid4(), "Default organization", now};
  store::Member admin{crypto::NewOpaqueId(), org.organization_id, "admin@localhost", "admin", now};
  std::string secret = crypto::RandomToken(32);
  store::ApiClient client{crypto::NewOpaqueId(), admin.member_id, crypto::TokenHash(secret), now,
                          {}};
  for (Status s : {store.CreateOrganization(org), store.CreateMember(admin),
                   store.CreateApiClient(client)}) {
    if (!s) throw std::runtime_error("bootstrap failed: " + s.error().message);
  }
  boost::json::object creds{{"organizationId", org.organization_id},
                            {"memberId", admin.member_id},
                            {"clientId", client.client_id},
                            {"clientSecret", secret}};
  const std::string path =
      (std::filesystem::path(state_dir) / "bootstrap-credentials.json").string();
  crypto::WritePrivateFile(path, boost::json::serialize(creds) + "\n", /*overwrite=*/true);
  // Printed once, on purpose, outside the structured log.
  std::cout << "connreg: first start: created an organization, an admin and an API client.\n"
            << "connreg:   client id:     " << client.client_id << "\n"
            << "connreg:   client secret: " << secret << "\n"
            << "connreg:   (also written to " << path << ", mode 0600)" << std::endl;
}

}  // namespace

int Serve(const ServeOptions& o) {
  log::UseBufferedStdout();
  log::SetLevel(o.log_level);
  std::unique_ptr<store::Store> store = store::OpenStore(o.database);
  auto orgs = store->CountOrganizations();
  if (!orgs) throw std::runtime_error("cannot read the store: " + orgs.error().message);
  const bool empty = *orgs == 0;

  const std::string state_dir = StateDirectory(o.database);
  crypto::MasterKeySettings key_settings{o.master_key, o.master_key_file, "", empty};
  if (!SqlitePath(o.database).empty()) {
    key_settings.default_file = (std::filesystem::path(state_dir) / "master.key").string();
  }
  auto key = crypto::LoadMasterKey(key_settings);
  crypto::SodiumSealer sealer(key);
  if (empty) Bootstrap(*store, state_dir);

  const int threads = o.threads > 0 ? o.threads
                                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  boost::asio::io_context ioc(threads);
  BlockingPool pool(static_cast<std::size_t>(o.db_threads));
  api::Api api(*store, pool, sealer,
               api::ApiOptions{.access_token_ttl_secs = o.token_ttl,
                               .refresh_token_ttl_secs = o.refresh_ttl});
  http::ServerLimits limits;
  limits.header_timeout = std::chrono::seconds(o.header_timeout);
  limits.drain_timeout = std::chrono::seconds(o.drain_timeout);
  http::Server server(ioc, api, limits);
  auto bound = server.Listen(ParseListen(o.listen));
  log::Event(log::Level::kInfo, "listening",
             {{"address", bound.address().to_string()},
              {"port", bound.port()},
              {"threads", threads},
              {"store", SqlitePath(o.database).empty() ? "postgresql" : "sqlite"},
              {"masterKeyId", sealer.current_key_id()},
              {"version", CONNREG_VERSION}});

  boost::asio::signal_set signals(ioc, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    log::Event(log::Level::kInfo, "shutting_down",
               {{"signal", signo == SIGTERM ? "SIGTERM" : "SIGINT"},
                {"inFlight", server.InFlight()}});
    server.Stop([&ioc] { ioc.stop(); });
  });

  std::vector<std::thread> workers;
  for (int i = 1; i < threads; ++i) workers.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : workers) t.join();
  pool.Join();
  log::Event(log::Level::kInfo, "stopped");
  spdlog::shutdown();  // flushes the access log
  return 0;
}

}  // namespace connreg::cli
