#include "cli/cli.h"

#include <CLI/CLI.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <boost/json/serialize.hpp>

#include "api/people.h"
#include "api/render.h"
#include "crypto/hash.h"
#include "crypto/random.h"
#include "domain/member.h"
#include "store/store.h"

namespace connreg::cli {
namespace {

std::string DefaultDatabase() { return "sqlite:./data/connreg.db"; }

[[noreturn]] void Fail(const std::string& message) { throw std::runtime_error(message); }

template <class T>
T Check(Result<T> r, const std::string& what) {
  if (!r) Fail(what + ": " + r.error().message);
  return std::move(*r);
}

void Print(const boost::json::object& o) { std::cout << boost::json::serialize(o) << std::endl; }

}  // namespace

std::string SqlitePath(const std::string& url) {
  return url.rfind("sqlite:", 0) == 0 ? url.substr(7) : std::string();
}

std::string StateDirectory(const std::string& url) {
  std::string path = SqlitePath(url);
  if (path.empty()) return std::filesystem::current_path().string();
  auto parent = std::filesystem::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

crypto::MasterKeySettings KeySettingsFor(const std::string& database, const std::string& master_key,
                                         const std::string& master_key_file, bool store_is_empty) {
  crypto::MasterKeySettings s{master_key, master_key_file, "", store_is_empty};
  if (!SqlitePath(database).empty()) {
    s.default_file = (std::filesystem::path(StateDirectory(database)) / "master.key").string();
  }
  return s;
}

int Run(int argc, char** argv) {
  CLI::App app{"connreg: a registry of data warehouse connections with a Sigma-compatible API"};
  app.require_subcommand(1);
  app.fallthrough();  // --database may follow the subcommand: `connreg serve --database …`
  std::string database = DefaultDatabase();
  app.add_option("--database", database, "store url: sqlite:PATH or postgresql://...")
      ->envname("CONNREG_DATABASE");

  ServeOptions serve;
  app.add_option("--master-key", serve.master_key,
                 "base64 of a 32-byte master key (several, comma-separated, during a rotation)")
      ->envname("CONNREG_MASTER_KEY");
  app.add_option("--master-key-file", serve.master_key_file, "file holding the master key(s)")
      ->envname("CONNREG_MASTER_KEY_FILE");
  auto* serve_cmd = app.add_subcommand("serve", "run the HTTP server");
  serve_cmd->add_option("--listen", serve.listen, "address:port (port 0 picks a free one)")
      ->envname("CONNREG_LISTEN");
  serve_cmd->add_option("--threads", serve.threads, "I/O threads (0: one per core)")
      ->envname("CONNREG_THREADS");
  serve_cmd->add_option("--db-threads", serve.db_threads, "threads for blocking store work")
      ->envname("CONNREG_DB_THREADS")
      ->check(CLI::Range(1, 256));
  serve_cmd->add_option("--token-ttl", serve.token_ttl, "access token lifetime, seconds")
      ->envname("CONNREG_TOKEN_TTL")
      ->check(CLI::Range(1LL, 86400LL * 365));
  serve_cmd->add_option("--refresh-ttl", serve.refresh_ttl, "refresh token lifetime, seconds")
      ->envname("CONNREG_REFRESH_TTL")
      ->check(CLI::Range(1LL, 86400LL * 3650));
  serve_cmd
      ->add_option("--header-timeout", serve.header_timeout,
                   "seconds a client has to send complete headers")
      ->envname("CONNREG_HEADER_TIMEOUT")
      ->check(CLI::Range(1, 3600));
  serve_cmd
      ->add_option("--drain-timeout", serve.drain_timeout,
                   "seconds requests in flight may take to finish on SIGTERM")
      ->envname("CONNREG_DRAIN_TIMEOUT")
      ->check(CLI::Range(0, 3600));
  serve_cmd
      ->add_option("--max-connections", serve.max_connections,
                   "open HTTP connections at most; more are answered 503 and closed at once")
      ->envname("CONNREG_MAX_CONNECTIONS")
      ->check(CLI::Range(1LL, 10'000'000LL));
  serve_cmd->add_option("--log-level", serve.log_level, "debug, info, warn or error")
      ->envname("CONNREG_LOG_LEVEL");
  serve_cmd
      ->add_option("--rate-limit", serve.rate_limit, "requests per second per API client (0: off)")
      ->envname("CONNREG_RATE_LIMIT")
      ->check(CLI::Range(0.0, 1e9));
  serve_cmd
      ->add_option("--test-concurrency", serve.probe.test_concurrency,
                   "connection tests run at once (default 32); more wait in a queue")
      ->envname("CONNREG_TEST_CONCURRENCY");
  serve_cmd
      ->add_option("--test-concurrency-per-org", serve.probe.test_concurrency_per_org,
                   "connection tests one organization runs at once (default half the pool)")
      ->envname("CONNREG_TEST_CONCURRENCY_PER_ORG");
  serve_cmd
      ->add_option("--test-timeout-max", serve.probe.test_timeout_max,
                   "cap on a connection test's deadline, seconds (default 60)")
      ->envname("CONNREG_TEST_TIMEOUT_MAX");
  serve_cmd
      ->add_option("--sync-timeout", serve.sync_timeout,
                   "deadline of a catalog sync, seconds (default 600)")
      ->envname("CONNREG_SYNC_TIMEOUT")
      ->check(CLI::Range(1, 86400));
  serve_cmd
      ->add_option("--egress-deny", serve.probe.egress_deny,
                   "CIDR list tests may not connect to (added to the built-in list)")
      ->envname("CONNREG_EGRESS_DENY");
  serve_cmd
      ->add_option("--egress-allow", serve.probe.egress_allow,
                   "CIDR list tests may only connect to (default: anything not denied)")
      ->envname("CONNREG_EGRESS_ALLOW");
  serve_cmd
      ->add_option("--egress-allow-loopback", serve.probe.egress_allow_loopback,
                   "true: tests may connect to loopback (127.0.0.0/8, ::1); default false")
      ->envname("CONNREG_EGRESS_ALLOW_LOOPBACK");
  serve_cmd
      ->add_option("--tls-ca-file", serve.probe.drivers.tls_ca_file,
                   "PEM CA bundle every driver that verifies a server trusts too (a private CA)")
      ->envname("CONNREG_TLS_CA_FILE");
  serve_cmd
      ->add_option(
          "--bigquery-api-url", serve.probe.drivers.bigquery_api_url,
          "the BigQuery API bigQuery tests go to (default https://bigquery.googleapis.com)")
      ->envname("CONNREG_BIGQUERY_API_URL");
  serve_cmd
      ->add_option("--cors-origins", serve.cors_origins,
                   "comma-separated origins allowed by CORS, or *")
      ->envname("CONNREG_CORS_ORIGINS");

  auto* migrate_cmd = app.add_subcommand("migrate", "apply pending schema migrations and exit");

  std::string name, org, email, account_type = "viewer", member, last_name;
  std::optional<std::string> first_name;
  auto* org_cmd = app.add_subcommand("org", "organizations")->require_subcommand(1);
  auto* org_create = org_cmd->add_subcommand("create", "create an organization");
  org_create->add_option("--name", name, "organization name")->required();

  auto* member_cmd = app.add_subcommand("member", "members")->require_subcommand(1);
  auto* member_create = member_cmd->add_subcommand("create", "create a member");
  member_create->add_option("--org", org, "organization id")->required();
  member_create->add_option("--email", email, "email address")->required();
  member_create->add_option("--account-type", account_type,
                            "admin, creator, explorer or viewer (default viewer)");
  member_create->add_option("--first-name", first_name,
                            "first name (default: the email's local part)");
  member_create->add_option("--last-name", last_name, "last name (default: empty)");

  auto* client_cmd = app.add_subcommand("client", "API clients")->require_subcommand(1);
  auto* client_create = client_cmd->add_subcommand("create", "create an API client");
  client_create->add_option("--member", member, "member id the client acts as")->required();
  std::string client;
  auto* client_revoke = client_cmd->add_subcommand(
      "revoke", "revoke an API client: its tokens fail on every node at once");
  client_revoke->add_option("--client", client, "client id")->required();

  std::string team;
  auto* team_cmd = app.add_subcommand("team", "teams")->require_subcommand(1);
  auto* team_create = team_cmd->add_subcommand("create", "create a team");
  team_create->add_option("--org", org, "organization id")->required();
  team_create->add_option("--name", name, "team name")->required();
  auto* team_add = team_cmd->add_subcommand("add-member", "add a member to a team");
  team_add->add_option("--team", team, "team id")->required();
  team_add->add_option("--member", member, "member id")->required();

  auto* key_cmd = app.add_subcommand("key", "the master key")->require_subcommand(1);
  auto* key_rotate = key_cmd->add_subcommand(
      "rotate", "re-encrypt every secret under a new master key while servers keep serving");
  int settle_secs = 5;
  key_rotate
      ->add_option("--settle", settle_secs,
                   "seconds to let running servers pick up a changed key file")
      ->check(CLI::Range(0, 600));

  auto* sample_cmd = app.add_subcommand("sample", "sample connections")->require_subcommand(1);
  auto* sample_add = sample_cmd->add_subcommand(
      "add", "add a read-only sample connection (isSample: true) to an organization");
  sample_add->add_option("--org", org, "organization id")->required();
  sample_add->add_option("--name", name, "connection name");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;
  }

  // The database, its WAL, the key file and the bootstrap credentials are readable by the owner
  // only.
  ::umask(077);
  try {
    if (serve_cmd->parsed()) {
      serve.database = database;
      return Serve(serve);
    }
    auto store = store::OpenStore(database);
    if (key_rotate->parsed()) {
      return RotateMasterKey(
          *store, KeySettingsFor(database, serve.master_key, serve.master_key_file, false),
          std::chrono::seconds(settle_secs));
    }
    if (migrate_cmd->parsed()) {
      Print({{"event", "migrated"}});
      return 0;
    }
    const TimeMs now = NowMs();
    if (org_create->parsed()) {
      store::Organization o{crypto::NewUuid4(), name, now};
      if (name.empty() || name.size() > 255) Fail("--name must be 1 to 255 characters");
      Check(store->CreateOrganization(o), "cannot create the organization");
      Print({{"organizationId", o.organization_id},
             {"name", o.name},
             {"createdAt", FormatRfc3339(o.created_at)}});
    } else if (member_create->parsed()) {
      // The same rules and object as POST /v2/members; accountType is kept for scripts.
      auto created = Check(domain::BuildOperatorMember(org, email, first_name, last_name,
                                                       account_type, now, crypto::NewOpaqueId()),
                           "invalid member");
      Check(store->CreateMember(created.member, created.teams), "cannot create the member");
      boost::json::object out = api::RenderMember(created.member);
      out["accountType"] = created.member.account_type;
      Print(out);
    } else if (client_revoke->parsed()) {
      Check(store->RevokeApiClient(client, now), "cannot revoke client " + client);
      Print({{"clientId", client}, {"revokedAt", FormatRfc3339(now)}});
    } else if (team_create->parsed()) {
      // The same rules and object as POST /v2/teams, with the team's organizationId.
      const domain::Actor operator_actor{org, std::string(domain::kOperatorActor)};
      auto created = Check(domain::BuildNewTeam(boost::json::object{{"name", name}}, operator_actor,
                                                now, crypto::NewUuid4()),
                           "invalid team");
      Check(store->CreateTeam(created.team, created.member_ids), "cannot create the team");
      boost::json::object out = api::RenderTeam(created.team, &created.member_ids);
      out["organizationId"] = created.team.organization_id;
      Print(out);
    } else if (team_add->parsed()) {
      // As PATCH /v2/teams/{id}/members {"add": [member]}, in the member's organization.
      const auto m = Check(store->GetMember(member), "no member " + member);
      domain::TeamMembersChange change;
      change.add.push_back(member);
      Check(store->ChangeTeamMembers(m.organization_id, team, change,
                                     std::string(domain::kOperatorActor)),
            "cannot add the member to the team");
      Print({{"teamId", team}, {"memberId", member}});
    } else if (sample_add->parsed()) {
      Check(store->GetOrganization(org), "no organization " + org);
      domain::Connection c;
      c.organization_id = org;
      c.connection_id = crypto::NewUuid4();
      c.name = name.empty() ? "Sample Database" : name;
      c.type = "postgres";
      c.is_sample = true;
      c.created_by = c.updated_by = "connreg-cli";
      c.created_at = c.updated_at = c.last_active_at = now;
      c.details = {{"type", "postgres"}, {"host", "sample.invalid"}, {"database", "sample"}};
      Check(store->CreateConnection(c), "cannot add the sample connection");
      std::cout << api::RenderConnection(c) << std::endl;
    } else if (client_create->parsed()) {
      Check(store->GetMember(member), "no member " + member);
      std::string secret = crypto::RandomToken(32);
      store::ApiClient c{crypto::NewOpaqueId(), member, crypto::TokenHash(secret), now, {}};
      Check(store->CreateApiClient(c), "cannot create the client");
      Print({{"clientId", c.client_id}, {"clientSecret", secret}, {"memberId", c.member_id}});
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "connreg: " << e.what() << std::endl;
    return 1;
  }
}

}  // namespace connreg::cli
