// `connreg serve`: opens the store, loads the master key, bootstraps an empty store, and runs
// the HTTP server on one io_context with one thread per core until SIGTERM or SIGINT.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/serialize.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <thread>

#include <spdlog/spdlog.h>

#include "api/api.h"
#include "catalog/sync.h"
#include "cli/cli.h"
#include "core/blocking_pool.h"
#include "core/log.h"
#include "crypto/hash.h"
#include "crypto/master_key_source.h"
#include "crypto/random.h"
#include "http/server.h"
#include "metrics/metrics.h"
#include "probe/drivers/registry.h"
#include "probe/engine.h"
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

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string item =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// First start on an empty store: one organization, one admin, one API client, created once even
// when several nodes start together. The secret is printed once and written, mode 0600, to
// bootstrap-credentials.json in the state directory.
void Bootstrap(store::IdentityStore& store, const std::string& state_dir) {
  const TimeMs now = NowMs();
  store::Organization org{crypto::NewUuid4(), "Default organization", now};
  auto built = domain::BuildOperatorMember(org.organization_id, "admin@localhost", std::nullopt, "",
                                           "admin", now, crypto::NewOpaqueId());
  if (!built) throw std::runtime_error("bootstrap: " + built.error().message);
  const store::Member& admin = built->member;
  std::string secret = crypto::RandomToken(32);
  store::ApiClient client{
      crypto::NewOpaqueId(), admin.member_id, crypto::TokenHash(secret), now, {}};
  auto created = store.BootstrapIfEmpty(org, admin, client);
  if (!created) throw std::runtime_error("bootstrap failed: " + created.error().message);
  if (!*created) return;  // another node starting at the same time bootstrapped the store
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

// Raises the soft limit on open files to the hard limit (idle keep-alive connections, store
// files and warehouse sockets all take descriptors) and returns the connection cap that fits in
// it: `wanted`, or 3/4 of the limit when that is lower, so the rest is left for everything else.
std::size_t FitConnectionCap(long long wanted) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return static_cast<std::size_t>(wanted);
  if (limit.rlim_cur != limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  if (limit.rlim_cur == RLIM_INFINITY) return static_cast<std::size_t>(wanted);
  const auto fit = std::max<rlim_t>(1, limit.rlim_cur / 4 * 3);
  return static_cast<std::size_t>(std::min<rlim_t>(static_cast<rlim_t>(wanted), fit));
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
  crypto::LoadedKeys keys =
      crypto::LoadMasterKeys(KeySettingsFor(o.database, o.master_key, o.master_key_file, empty));
  crypto::SodiumSealer sealer(keys.keys);
  CheckKeysCoverStore(*store, sealer);
  if (empty) Bootstrap(*store, state_dir);

  const int threads = o.threads > 0
                          ? o.threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  boost::asio::io_context ioc(threads);
  BlockingPool pool(static_cast<std::size_t>(o.db_threads),
                    &metrics::ObserverOf(metrics::Pool::kBlocking));
  api::ApiOptions api_options{.access_token_ttl_secs = o.token_ttl,
                              .refresh_token_ttl_secs = o.refresh_ttl,
                              .rate_limit = o.rate_limit,
                              .cors_origins = SplitList(o.cors_origins)};
  auto probe_options = probe::ProbeEngine::ParseOptions(o.probe);
  if (!probe_options) throw std::runtime_error(probe_options.error().message);
  probe::ProbeEngine engine(std::move(*probe_options), probe::FindDriver);
  catalog::SyncService syncs(*store, sealer, engine, {.timeout_secs = o.sync_timeout});
  api::Api api(*store, pool, sealer, probe::Catalog(), engine, syncs, api_options);
  http::ServerLimits limits;
  limits.header_timeout = std::chrono::seconds(o.header_timeout);
  limits.drain_timeout = std::chrono::seconds(o.drain_timeout);
  limits.max_connections = FitConnectionCap(o.max_connections);
  http::Server server(ioc, api, limits);
  // Expired tokens and idempotency records are purged every ten minutes, on the blocking pool.
  boost::asio::steady_timer purge_timer(ioc);
  std::function<void()> schedule_purge = [&] {
    purge_timer.expires_after(std::chrono::minutes(10));
    purge_timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      boost::asio::post(pool.executor(), [&store] {
        const TimeMs now = NowMs();
        auto purged = store->PurgeExpired(now, now - 24LL * 3600 * 1000);
        if (!purged) {
          log::Event(log::Level::kWarn, "purge_failed", {{"detail", purged.error().message}});
        } else if (*purged > 0) {
          log::Event(log::Level::kInfo, "purged", {{"rows", *purged}});
        }
      });
      schedule_purge();
    });
  };
  schedule_purge();

  // A key rotation rewrites the key file: reload it when it changes (cli/key_rotate.cc).
  boost::asio::steady_timer key_timer(ioc);
  std::filesystem::file_time_type key_mtime{};
  if (!keys.file.empty()) key_mtime = std::filesystem::last_write_time(keys.file);
  std::function<void()> watch_keys = [&] {
    if (keys.file.empty()) return;
    key_timer.expires_after(std::chrono::seconds(1));
    key_timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      std::error_code fs_ec;
      auto mtime = std::filesystem::last_write_time(keys.file, fs_ec);
      if (!fs_ec && mtime != key_mtime) {
        try {
          crypto::Keyring ring = crypto::ReadKeyFile(keys.file);
          key_mtime = mtime;
          sealer.SetKeys(ring);
          log::Event(
              log::Level::kInfo, "master_key_reloaded",
              {{"currentKeyId", sealer.current_key_id()}, {"keys", 1 + ring.previous.size()}});
        } catch (const std::exception& e) {
          log::Event(log::Level::kError, "master_key_reload_failed", {{"detail", e.what()}});
        }
      }
      watch_keys();
    });
  };
  watch_keys();

  boost::asio::signal_set signals(ioc, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    log::Event(
        log::Level::kInfo, "shutting_down",
        {{"signal", signo == SIGTERM ? "SIGTERM" : "SIGINT"}, {"inFlight", server.InFlight()}});
    purge_timer.cancel();
    key_timer.cancel();
    server.Stop([&ioc] { ioc.stop(); });
  });

  // Listen last: once "listening" is logged, a SIGTERM is already handled gracefully.
  auto bound = server.Listen(ParseListen(o.listen));
  log::Event(log::Level::kInfo, "listening",
             {{"address", bound.address().to_string()},
              {"port", bound.port()},
              {"threads", threads},
              {"maxConnections", limits.max_connections},
              {"store", SqlitePath(o.database).empty() ? "postgresql" : "sqlite"},
              {"masterKeyId", sealer.current_key_id()},
              {"version", CONNREG_VERSION}});

  // Syncs a previous run left RUNNING start again (their committed batches are not redone).
  boost::asio::post(pool.executor(), [&syncs] {
    if (int resumed = syncs.Resume(); resumed > 0) {
      log::Event(log::Level::kInfo, "catalog_syncs_resumed", {{"count", resumed}});
    }
  });

  std::vector<std::thread> workers;
  for (int i = 1; i < threads; ++i) workers.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : workers) t.join();
  pool.Join();
  log::Event(log::Level::kInfo, "stopped");
  log::Drain();
  spdlog::shutdown();
  return 0;
}

}  // namespace connreg::cli
