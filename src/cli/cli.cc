#include "cli/cli.h"

#include <CLI/CLI.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <iostream>

#include <boost/json/serialize.hpp>

#include "crypto/hash.h"
#include "crypto/random.h"
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

int Run(int argc, char** argv) {
  CLI::App app{"connreg: a registry of data warehouse connections with a Sigma-compatible API"};
  app.require_subcommand(1);
  app.fallthrough();  // --database may follow the subcommand: `connreg serve --database …`
  std::string database = DefaultDatabase();
  app.add_option("--database", database, "store url: sqlite:PATH or postgresql://...")
      ->envname("CONNREG_DATABASE");

  ServeOptions serve;
  auto* serve_cmd = app.add_subcommand("serve", "run the HTTP server");
  serve_cmd->add_option("--listen", serve.listen, "address:port (port 0 picks a free one)")
      ->envname("CONNREG_LISTEN");
  serve_cmd->add_option("--threads", serve.threads, "I/O threads (0: one per core)")
      ->envname("CONNREG_THREADS");
  serve_cmd->add_option("--db-threads", serve.db_threads, "threads for blocking store work")
      ->envname("CONNREG_DB_THREADS")->check(CLI::Range(1, 256));
  serve_cmd->add_option("--token-ttl", serve.token_ttl, "access token lifetime, seconds")
      ->envname("CONNREG_TOKEN_TTL")->check(CLI::Range(1LL, 86400LL * 365));
  serve_cmd->add_option("--refresh-ttl", serve.refresh_ttl, "refresh token lifetime, seconds")
      ->envname("CONNREG_REFRESH_TTL")->check(CLI::Range(1LL, 86400LL * 3650));
  serve_cmd->add_option("--header-timeout", serve.header_timeout,
                        "seconds a client has to send complete headers")
      ->envname("CONNREG_HEADER_TIMEOUT")->check(CLI::Range(1, 3600));
  serve_cmd->add_option("--drain-timeout", serve.drain_timeout,
                        "seconds requests in flight may take to finish on SIGTERM")
      ->envname("CONNREG_DRAIN_TIMEOUT")->check(CLI::Range(0, 3600));
  serve_cmd->add_option("--master-key", serve.master_key, "base64 of a 32-byte master key")
      ->envname("CONNREG_MASTER_KEY");
  serve_cmd->add_option("--master-key-file", serve.master_key_file, "file holding the master key")
      ->envname("CONNREG_MASTER_KEY_FILE");
  serve_cmd->add_option("--log-level", serve.log_level, "debug, info, warn or error")
      ->envname("CONNREG_LOG_LEVEL");

  auto* migrate_cmd = app.add_subcommand("migrate", "apply pending schema migrations and exit");

  std::string name, org, email, account_type = "viewer", member;
  auto* org_cmd = app.add_subcommand("org", "organizations")->require_subcommand(1);
  auto* org_create = org_cmd->add_subcommand("create", "create an organization");
  org_create->add_option("--name", name, "organization name")->required();

  auto* member_cmd = app.add_subcommand("member", "members")->require_subcommand(1);
  auto* member_create = member_cmd->add_subcommand("create", "create a member");
  member_create->add_option("--org", org, "organization id")->required();
  member_create->add_option("--email", email, "email address")->required();
  member_create->add_option("--account-type", account_type, "admin, creator or viewer")
      ->check(CLI::IsMember({"admin", "creator", "viewer"}));

  auto* client_cmd = app.add_subcommand("client", "API clients")->require_subcommand(1);
  auto* client_create = client_cmd->add_subcommand("create", "create an API client");
  client_create->add_option("--member", member, "member id the client acts as")->required();

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
      if (email.empty() || email.size() > 320 || email.find('@') == std::string::npos) {
        Fail("--email must be an email address");
      }
      Check(store->GetOrganization(org), "no organization " + org);
      store::Member m{crypto::NewOpaqueId(), org, email, account_type, now};
      Check(store->CreateMember(m), "cannot create the member");
      Print({{"memberId", m.member_id},
             {"organizationId", m.organization_id},
             {"email", m.email},
             {"accountType", m.account_type}});
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
