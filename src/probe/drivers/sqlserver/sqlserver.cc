// SQL Server and Azure SQL through FreeTDS db-lib (libsybdb), TDS 7.4.
//
// Pinning. db-lib connects to a server *name* that it looks up in freetds.conf, and resolves it as
// a host name itself when no section has it. So that it only ever connects to the egress-checked
// address, every login holds a section in a private configuration file that FreeTDS reads before
// any other (dbsetifile): the section gives the address literal, the port, the encryption level and
// the login timeout (see FreeTdsConfig for its name). FreeTDS reads the file at the start of
// dbopen; the section is let go when dbopen returns. Two more ways around the pinning are closed:
// FreeTDS lets TDSHOST, TDSPORT, TDSVER and TDSDUMP in the environment override the file (and
// TDSDUMP would log the login), so the driver refuses to run while any of them is set; and it
// follows a server's redirection (ENVCHANGE routing, Azure's "redirect" policy) inside dbopen to
// a host it resolves itself, so while a login runs the thread's connect(2) is checked (see
// ConnectGuard): only the pinned address, or for azuresql an address the egress policy allows.
//
// TLS. It is on for azuresql, and for sqlserver when tlsMode is set. `require` encrypts without
// verifying (this build of FreeTDS verifies no certificate unless given a CA file); `verify-ca`
// gives FreeTDS the trusted CAs as a private file, with its host name check off. FreeTDS 1.3
// checks a certificate's name only against the host it connects to, which is the pinned IP
// literal, and has no option to check another name or to pin a certificate: `verify-full` is
// therefore refused, with a message saying so, before any credential is sent.
//
// Steps. db-lib reports most failed logins as one opaque "connection failed". The driver therefore
// first makes its own TCP connection and TDS PRELOGIN exchange (the `connect` step): it tells
// refused from silent from not-SQL-Server precisely, and learns whether the server offers
// encryption, so that an Azure SQL endpoint without encryption is a `tls` failure before any
// credential is sent. dbopen then does TLS and LOGIN7 (`tls`, `authenticate`).
//
// Messages. db-lib's error and message handlers are process-wide; FreeTDS calls them synchronously
// on the thread that made the db-lib call, so they append to the diagnostics of the run on that
// thread (thread_local). A handler never answers INT_EXIT: db-lib would exit the process.
//
// Catalog (Introspect). It logs in exactly as a test does (Connected), then lists paths
// [database, schema, table]: the connection's database when the details name one (always for
// azuresql, which cannot read another database's catalog), else every database of sys.databases
// the login may access but the system's; per database one query over its INFORMATION_SCHEMA
// (SCHEMATA left-joined to TABLES and COLUMNS, so an empty schema is listed too) with the
// MS_Description extended properties as comments, ordered in binary collation so that each
// table's rows arrive together and the listing comes in byte order. Rows are handed to the sink as
// dbnextrow returns them; only the columns of the table being read are held.
//
// Deadline. During the login FreeTDS asks the error handler every kLoginWaitSecs of silence
// whether to go on, which it does until the deadline. After the login an interrupt handler, polled
// by FreeTDS about once a second, cancels a statement once the deadline has passed.
#include "probe/drivers/sqlserver/sqlserver.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "domain/catalog.h"
#include "probe/drivers/common/details_fields.h"
#include "probe/drivers/common/sql_probe.h"
#include "probe/drivers/common/tls.h"
#include "probe/raw_connection.h"

// After every other header: db-lib's headers define macros such as TRUE, FAIL and STATUS.
#include <sybdb.h>
#include <sybfront.h>

namespace connreg::probe {
namespace {

bool IsAzure(const boost::json::object& details) {
  return DetailString(details, "type") == "azuresql";
}

// TLS is on for Azure SQL always, and for SQL Server when the connection has a tlsMode.
bool TlsOn(const boost::json::object& details) {
  return IsAzure(details) || details.contains("tlsMode");
}

// FreeTDS's environment variables that override the configuration file (or log the login); the
// first one set, or nullptr.
const char* OverridingEnvironment() {
  for (const char* name : {"TDSHOST", "TDSPORT", "TDSVER", "TDSDUMP", "TDSDUMPCONFIG"}) {
    if (const char* v = std::getenv(name); v && *v) return name;
  }
  return nullptr;
}

bool SameName(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

void ReplaceAll(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
}

// --- diagnostics from db-lib's process-wide handlers ---------------------------------------------

// What db-lib reported during the calls of one run. Used by one thread.
struct Diagnostics {
  struct ServerMessage {
    int number = 0;
    std::string text;
  };
  struct ClientError {
    int number = 0;  // SYBE*
    int os_error = 0;
    std::string text;
  };

  explicit Diagnostics(const Deadline& d) : deadline(d) {}
  void Clear() {
    server.clear();
    client.clear();
    timed_out = false;
  }
  bool HasClientError(int number) const {
    return std::any_of(client.begin(), client.end(),
                       [&](const ClientError& e) { return e.number == number; });
  }
  // The client errors' words, joined.
  std::string ClientText() const {
    std::string out;
    for (const ClientError& e : client) {
      if (!out.empty()) out += "; ";
      out += e.text;
    }
    return out;
  }

  const Deadline& deadline;
  std::vector<ServerMessage> server;  // errors only (severity above 10), in order
  std::vector<ClientError> client;
  bool timed_out = false;  // db-lib gave up waiting because the deadline had passed
};

thread_local Diagnostics* current_diagnostics = nullptr;

// Routes db-lib's messages on this thread to `d` while it lives.
class DiagnosticsScope {
 public:
  explicit DiagnosticsScope(Diagnostics* d) : previous_(current_diagnostics) {
    current_diagnostics = d;
  }
  ~DiagnosticsScope() { current_diagnostics = previous_; }
  DiagnosticsScope(const DiagnosticsScope&) = delete;
  DiagnosticsScope& operator=(const DiagnosticsScope&) = delete;

 private:
  Diagnostics* previous_;
};

int HandleError(DBPROCESS*, int, int dberr, int oserr, char* dberrstr, char* oserrstr) {
  Diagnostics* d = current_diagnostics;
  if (dberr == SYBETIME) {
    // FreeTDS waits in periods of its timeout; keep waiting while the run has time left.
    if (d && !d->deadline.expired()) return INT_CONTINUE;
    if (d) d->timed_out = true;
    return INT_CANCEL;
  }
  if (d) {
    std::string text = dberrstr ? dberrstr : "";
    if (oserr != DBNOERR && oserr != 0 && oserrstr && *oserrstr) {
      text += std::string(text.empty() ? "" : ": ") + oserrstr;
    }
    d->client.push_back({dberr, oserr == DBNOERR ? 0 : oserr, std::move(text)});
  }
  // Never INT_EXIT (db-lib exits the process), and only SYBETIME may answer INT_CONTINUE or
  // INT_TIMEOUT (db-lib treats either as INT_EXIT for other errors).
  return INT_CANCEL;
}

int HandleMessage(DBPROCESS*, DBINT msgno, int, int severity, char* msgtext, char*, char*, int) {
  Diagnostics* d = current_diagnostics;
  // Severity 10 and below are information (5701 "Changed database context to ...").
  if (d && severity > 10) d->server.push_back({static_cast<int>(msgno), msgtext ? msgtext : ""});
  return 0;
}

// Installed on a connection after login; FreeTDS polls it while it waits for the server.
int DeadlinePassed(void* dbproc) {
  const auto* deadline =
      reinterpret_cast<const Deadline*>(dbgetuserdata(static_cast<DBPROCESS*>(dbproc)));
  return deadline && deadline->expired() ? TRUE : FALSE;
}
int CancelStatement(void*) { return INT_CANCEL; }

// The contract code for a server message number (sys.messages).
std::string_view CodeForServerMessage(int number) {
  switch (number) {
    case 18456:  // Login failed for user
    case 18452:  // login from an untrusted domain
    case 18470:  // account disabled
    case 18486:  // account locked out
    case 18487:  // password expired
    case 18488:  // password must be changed
      return code::kAuthFailed;
    case 4060:   // Cannot open database requested by the login
    case 911:    // Database does not exist (USE)
    case 208:    // Invalid object name
    case 2760:   // The specified schema name does not exist (or no permission to use it)
    case 15151:  // Cannot find the object, because it does not exist or you do not have permission
    case 40532:  // Azure: cannot open server requested by the login
      return code::kNotFound;
    case 229:    // The permission was denied on the object
    case 230:    // The permission was denied on the column
    case 262:    // CREATE TABLE permission denied in database
    case 297:    // The user does not have permission to perform this action
    case 300:    // permission was denied on object (server level)
    case 916:    // The server principal is not able to access the database
    case 1088:   // Cannot find the object because it does not exist or you do not have permission
    case 3701:   // Cannot drop the table, because it does not exist or you do not have permission
    case 3906:   // Failed to update database because the database is read-only
    case 15247:  // User does not have permission to perform this action
    case 40615:  // Azure: the client's IP address is not allowed by the server's firewall
      return code::kPermissionDenied;
    case 1222:  // Lock request time out period exceeded
    case 7412:  // Query timeout
      return code::kTimeout;
    default: return code::kProtocolError;
  }
}

// The first server message that explains a failure, and its code.
std::optional<std::pair<std::string_view, std::string>> ExplainServerMessages(
    const Diagnostics& d) {
  if (d.server.empty()) return std::nullopt;
  for (const auto& m : d.server) {
    std::string_view c = CodeForServerMessage(m.number);
    if (c != code::kProtocolError) return std::pair{c, m.text};
  }
  return std::pair{code::kProtocolError, d.server.front().text};
}

// --- where a login may connect -----------------------------------------------------------------

// While a login runs on a thread, the connect(2) calls FreeTDS makes there are checked against
// this: the first connection must go to the pinned address and port; a later one (a redirection)
// only where `redirect_policy` allows, or nowhere when it is null.
struct ConnectGuard {
  IpAddress pinned;
  int port = 0;
  const EgressPolicy* redirect_policy = nullptr;
  std::string refused;  // why the last connection was refused, for the message

  bool Allows(const sockaddr* sa) {
    auto a = IpAddress::FromSockaddr(sa);
    if (!a) return true;  // not an IP socket (FreeTDS opens none other)
    int to_port = sa->sa_family == AF_INET
                      ? ntohs(reinterpret_cast<const sockaddr_in*>(sa)->sin_port)
                      : ntohs(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_port);
    if (*a == pinned && to_port == port) return true;
    std::string where = a->ToString() + " port " + std::to_string(to_port);
    if (!redirect_policy) {
      refused = "the server redirected the login to " + where +
                "; a SQL Server login is only made to the address that was checked";
      return false;
    }
    std::string why = redirect_policy->Check(*a);
    if (why.empty()) return true;
    refused = "the server redirected the login to " + where + ", and " + why;
    return false;
  }
};

thread_local ConnectGuard* current_connect_guard = nullptr;

// Checks this thread's connections against `guard` while it lives.
class ConnectGuardScope {
 public:
  explicit ConnectGuardScope(ConnectGuard* guard) : previous_(current_connect_guard) {
    current_connect_guard = guard;
  }
  ~ConnectGuardScope() { current_connect_guard = previous_; }
  ConnectGuardScope(const ConnectGuardScope&) = delete;
  ConnectGuardScope& operator=(const ConnectGuardScope&) = delete;

 private:
  ConnectGuard* previous_;
};

// --- the process-wide FreeTDS state --------------------------------------------------------------

std::string Lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The private freetds.conf that db-lib reads first (see the top of this file). Thread-safe.
//
// db-lib sends the section name as LOGIN7's ServerName, which Azure SQL's gateway reads to find the
// logical server, so a section is named after the configured host when it can be: when no other
// login in progress holds that name, or holds it with the same options (they then share it).
// Otherwise the login gets a synthetic name. A section lives until the dbopen that uses it returns.
class FreeTdsConfig {
 public:
  // Creates a private directory (mode 0700) with an empty configuration file in it.
  bool Init(std::string& why) {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/connreg-freetds-XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) {
      why = "could not create a directory for FreeTDS's configuration: " +
            std::string(std::strerror(errno));
      return false;
    }
    dir_ = buf.data();
    path_ = dir_ + "/freetds.conf";
    std::lock_guard lock(mu_);
    if (!WriteLocked()) {
      why = "could not write FreeTDS's configuration in " + dir_;
      return false;
    }
    return true;
  }

  const std::string& path() const { return path_; }

  // Holds a section with `body` (option lines), named `preferred` if possible. Returns the name to
  // hand to dbopen, or nullopt when the file could not be written. Release(name) lets go of it.
  std::optional<std::string> Acquire(std::string_view preferred, const std::string& body) {
    std::lock_guard lock(mu_);
    std::string name(preferred);
    auto it = sections_.end();
    bool fresh = false;
    if (Usable(name)) std::tie(it, fresh) = sections_.try_emplace(Lowercase(name), Entry{body, 0});
    // Taken with other options (or not usable): a synthetic name no section has.
    while (it == sections_.end() || (!fresh && it->second.body != body)) {
      name = "connreg-probe-" + std::to_string(++next_);
      std::tie(it, fresh) = sections_.try_emplace(Lowercase(name), Entry{body, 0});
    }
    ++it->second.refs;
    if (fresh && !WriteLocked()) {
      sections_.erase(it);
      return std::nullopt;
    }
    return name;
  }

  void Release(const std::string& name) {
    std::lock_guard lock(mu_);
    auto it = sections_.find(Lowercase(name));
    if (it == sections_.end() || --it->second.refs > 0) return;
    sections_.erase(it);
    WriteLocked();
  }

 private:
  struct Entry {
    std::string body;
    int refs = 0;
  };

  // Whether `name` can head a section: FreeTDS lowercases "[name]" lines, ends the name at the
  // first ']', reads lines of at most 255 characters and has a [global] section of its own.
  static bool Usable(const std::string& name) {
    if (name.empty() || name.size() > 200 || SameName(name, "global")) return false;
    return std::none_of(name.begin(), name.end(), [](char c) {
      return c == '[' || c == ']' || c == '=' || c == ';' || c == '#' ||
             std::isspace(static_cast<unsigned char>(c)) ||
             std::iscntrl(static_cast<unsigned char>(c));
    });
  }

  // Replaces the file atomically: a dbopen on another thread reads the old or the new one whole.
  bool WriteLocked() {
    std::string text =
        "# Written by connreg's sqlserver probe driver: one section per login in progress.\n"
        "[global]\n"
        "\ttds version = 7.4\n"
        "\tclient charset = UTF-8\n";
    for (const auto& [name, entry] : sections_) text += "[" + name + "]\n" + entry.body;
    // The directory may have been cleaned away (tmpfiles); a missing file must not make FreeTDS
    // fall back to the system's freetds.conf and resolve a name itself.
    if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) return false;
    // ... and what is there now must still be ours alone (not a directory someone else made).
    struct stat st {};
    if (::lstat(dir_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() ||
        (st.st_mode & 077) != 0) {
      return false;
    }
    std::string tmp = path_ + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ok = ::close(fd) == 0 && ok;
    return ok && ::rename(tmp.c_str(), path_.c_str()) == 0;
  }

  std::mutex mu_;
  std::string dir_;
  std::string path_;
  std::map<std::string, Entry> sections_;  // by lowercased name
  std::uint64_t next_ = 0;
};

struct FreeTds {
  bool ok = false;
  std::string why;  // when !ok
  FreeTdsConfig config;
};

FreeTds& Library() {
  static FreeTds* const lib = [] {
    auto* l = new FreeTds;
    if (dbinit() == FAIL) {
      l->why = "FreeTDS db-lib could not be initialized";
      return l;
    }
    dberrhandle(HandleError);
    dbmsghandle(HandleMessage);
    if (!l->config.Init(l->why)) return l;
    dbsetifile(const_cast<char*>(l->config.path().c_str()));
    l->ok = true;
    return l;
  }();
  return *lib;
}

// A configuration section held for one login.
class ConfigSection {
 public:
  ConfigSection(FreeTdsConfig& config, std::string_view preferred, const std::string& body)
      : config_(config), name_(config.Acquire(preferred, body)) {}
  ~ConfigSection() {
    if (name_) config_.Release(*name_);
  }
  ConfigSection(const ConfigSection&) = delete;
  ConfigSection& operator=(const ConfigSection&) = delete;

  const std::optional<std::string>& name() const { return name_; }

 private:
  FreeTdsConfig& config_;
  std::optional<std::string> name_;
};

// --- our own TCP connection and PRELOGIN exchange ------------------------------------------------

constexpr std::uint8_t kPacketReply = 0x04;
constexpr std::uint8_t kPacketPrelogin = 0x12;
constexpr std::uint8_t kEncryptNotSupported = 0x02;
constexpr std::size_t kMaxPreloginReply = 64 * 1024;

struct PreloginAnswer {
  std::string_view code;  // empty on success
  std::string message;
  bool offers_encryption = false;
};

// Connects to `address`:`port` and exchanges TDS PRELOGIN packets, then closes the connection.
PreloginAnswer Prelogin(const IpAddress& address, int port, const Deadline& deadline) {
  PreloginAnswer out;
  RawConnection conn(address, port, deadline);
  auto fail = [&](std::string_view c, std::string message) {
    out.code = c;
    out.message = std::move(message);
    return out;
  };
  auto failed = [&] { return fail(conn.code(), conn.message()); };
  constexpr std::string_view kDuring = "the TDS pre-login handshake (not a SQL Server port?)";
  if (!conn.Connect()) return failed();

  // PRELOGIN with VERSION and ENCRYPTION = ENCRYPT_OFF, which makes the server say whether it has
  // encryption at all (ENCRYPT_NOT_SUP), offers it (ENCRYPT_OFF) or requires it (ENCRYPT_REQ).
  // clang-format off
  const std::uint8_t request[] = {
      kPacketPrelogin, 0x01, 0x00, 26, 0x00, 0x00, 0x01, 0x00,  // header: EOM, length 26
      0x00, 0x00, 11, 0x00, 6,                                  // VERSION at 11, 6 bytes
      0x01, 0x00, 17, 0x00, 1,                                  // ENCRYPTION at 17, 1 byte
      0xFF,                                                     // terminator
      0x0C, 0x00, 0x00, 0x00, 0x00, 0x00,                       // client version 12.0
      0x00};                                                    // ENCRYPT_OFF
  // clang-format on
  if (!conn.Send({reinterpret_cast<const char*>(request), sizeof request}, kDuring)) {
    return failed();
  }

  // The reply: packets of type 4 until one has the end-of-message bit.
  std::string reply;
  for (bool last = false; !last;) {
    std::string packet;
    if (!conn.Receive(packet, 8, kDuring)) return failed();
    const auto* h = reinterpret_cast<const std::uint8_t*>(packet.data());
    std::size_t length = static_cast<std::size_t>(h[2]) << 8 | h[3];
    if (h[0] != kPacketReply || length < 8) {
      return fail(code::kProtocolError,
                  "the server at " + conn.where() + " does not speak TDS (not a SQL Server port?)");
    }
    last = (h[1] & 0x01) != 0;
    if (!conn.Receive(reply, length - 8, kDuring)) return failed();
    if (reply.size() > kMaxPreloginReply) {
      return fail(code::kProtocolError, "the server's pre-login answer is too long");
    }
  }

  // Options: (token, offset, length) triples up to 0xFF; ENCRYPTION is token 1.
  const auto* p = reinterpret_cast<const std::uint8_t*>(reply.data());
  std::optional<std::uint8_t> encryption;
  for (std::size_t i = 0; i < reply.size() && p[i] != 0xFF; i += 5) {
    if (i + 5 > reply.size()) break;
    std::size_t offset = static_cast<std::size_t>(p[i + 1]) << 8 | p[i + 2];
    std::size_t length = static_cast<std::size_t>(p[i + 3]) << 8 | p[i + 4];
    if (p[i] == 0x01 && length >= 1 && offset < reply.size()) encryption = p[offset];
  }
  if (!encryption) {
    return fail(code::kProtocolError, "the server at " + conn.where() +
                                          " answered the TDS pre-login without an encryption "
                                          "option");
  }
  out.offers_encryption = *encryption != kEncryptNotSupported;
  return out;
}

// --- login through db-lib ------------------------------------------------------------------------

struct LoginParams {
  IpAddress address;
  int port = 0;
  std::string host;  // as configured, for messages
  std::string user;
  std::string password;
  std::string database;  // or empty: the login's default database
  bool require_encryption = false;
  std::string ca_file;  // verify-ca: the trusted CAs, for FreeTDS to verify the chain with
  // Where a redirection may take the login (azuresql: the egress policy), or null: nowhere.
  const EgressPolicy* redirect_policy = nullptr;
};

using DbProcess = std::unique_ptr<DBPROCESS, decltype(&dbclose)>;

// How long FreeTDS waits during a login before it asks HandleError whether to go on: it is also
// its TCP connect timeout (to an address the driver has just connected to itself), and it bounds
// how far past the deadline a server that stalls the login can keep dbopen waiting.
constexpr int kLoginWaitSecs = 2;

struct LoginResult {
  enum Kind { kOk, kServerRefused, kTimeout, kUnreachable, kUnexplained, kSetup, kRedirected };
  Kind kind = kUnexplained;
  DbProcess dbproc{nullptr, &dbclose};
  std::string_view code;  // kServerRefused: from the server's message
  std::string message;
};

// One dbopen. `diag` must be the calling thread's current diagnostics.
LoginResult Login(const LoginParams& p, const Deadline& deadline, Diagnostics& diag) {
  LoginResult out;
  FreeTds& lib = Library();
  // Option values come from the egress check and numbers only: nothing from the details goes into
  // the file, so nothing there can add an option. The login timeout is a constant so that
  // concurrent logins to one host can share a section; HandleError extends it to the deadline.
  std::string body = "\thost = " + p.address.ToString() + "\n\tport = " + std::to_string(p.port) +
                     "\n\tencryption = " + (p.require_encryption ? "require" : "request") +
                     "\n\tconnect timeout = " + std::to_string(kLoginWaitSecs) + "\n";
  if (!p.ca_file.empty())
    body += "\tca file = " + p.ca_file + "\n\tcheck certificate hostname = no\n";
  std::string preferred = p.host;
  if (preferred.size() > 2 && preferred.front() == '[' && preferred.back() == ']') {
    preferred = preferred.substr(1, preferred.size() - 2);
  }
  ConfigSection section(lib.config, preferred, body);
  if (!section.name()) {
    out.kind = LoginResult::kSetup;
    out.message = "could not write FreeTDS's configuration file " + lib.config.path();
    return out;
  }

  std::unique_ptr<LOGINREC, decltype(&dbloginfree)> login(dblogin(), &dbloginfree);
  if (!login) {
    out.kind = LoginResult::kSetup;
    out.message = "FreeTDS is out of memory";
    return out;
  }
  DBSETLUSER(login.get(), p.user.c_str());
  DBSETLPWD(login.get(), p.password.c_str());
  DBSETLAPP(login.get(), "connreg-probe");
  DBSETLCHARSET(login.get(), "UTF-8");
  if (!p.database.empty()) DBSETLDBNAME(login.get(), p.database.c_str());
  dbsetlversion(login.get(), DBVERSION_74);

  diag.Clear();
  ConnectGuard guard{p.address, p.port, p.redirect_policy, ""};
  {
    ConnectGuardScope checked(&guard);
    out.dbproc.reset(dbopen(login.get(), section.name()->c_str()));
  }
  if (!guard.refused.empty()) {
    out.dbproc.reset();
    out.kind = LoginResult::kRedirected;
    out.message = guard.refused;
    return out;
  }
  if (out.dbproc) {
    out.kind = LoginResult::kOk;
    return out;
  }
  if (auto explained = ExplainServerMessages(diag)) {
    out.kind = LoginResult::kServerRefused;
    out.code = explained->first;
    out.message = explained->second;
    return out;
  }
  out.message = diag.ClientText();
  if (*section.name() != preferred) ReplaceAll(out.message, *section.name(), p.host);
  if (out.message.empty()) out.message = "the login failed without a message";
  if (diag.timed_out || deadline.expired()) {
    out.kind = LoginResult::kTimeout;
    out.message = "no answer from the server before the test's deadline (" + out.message + ")";
  } else if (diag.HasClientError(SYBECONN)) {
    bool slow =
        std::any_of(diag.client.begin(), diag.client.end(),
                    [](const Diagnostics::ClientError& e) { return e.os_error == ETIMEDOUT; });
    out.kind = slow ? LoginResult::kTimeout : LoginResult::kUnreachable;
  }
  return out;
}

// --- statements ----------------------------------------------------------------------------------

// One logged-in connection; owns it. Not thread-safe.
class SqlServerSession : public SqlSession {
 public:
  SqlServerSession(DbProcess dbproc, const Deadline& deadline, Diagnostics& diag)
      : dbproc_(std::move(dbproc)), deadline_(deadline), diag_(diag) {
    // The deadline outlives the session; FreeTDS only hands the pointer back to DeadlinePassed.
    dbsetuserdata(dbproc_.get(), reinterpret_cast<BYTE*>(const_cast<Deadline*>(&deadline_)));
    dbsetinterrupt(dbproc_.get(), DeadlinePassed, CancelStatement);
  }

  // One row of a result: its columns as text (numbers as db-lib prints them), NULL as nullopt.
  using Row = std::vector<std::optional<std::string>>;

  // Runs `sql` and hands each row of its results to `on_row` as db-lib reads it, keeping none.
  // When on_row answers false the rest of the batch is cancelled and the outcome is ok.
  SqlOutcome Query(std::string_view sql, const std::function<bool(const Row&)>& on_row) {
    DBPROCESS* db = dbproc_.get();
    if (!usable_ || dbdead(db)) {
      usable_ = false;
      return Failure(code::kProtocolError, "the connection is no longer usable");
    }
    diag_.Clear();
    std::string seconds = std::to_string(deadline_.remaining_seconds_ceil());
    dbsetopt(db, DBSETTIME, seconds.c_str(), 0);
    std::string text(sql);
    bool ok = dbcmd(db, text.c_str()) == SUCCEED && dbsqlexec(db) == SUCCEED;
    bool stopped = false;
    Row row;
    while (ok && !stopped) {
      RETCODE r = dbresults(db);
      if (r == NO_MORE_RESULTS) break;
      if (r != SUCCEED) {
        ok = false;
        break;
      }
      while (!stopped) {
        STATUS status = dbnextrow(db);
        if (status == NO_MORE_ROWS) break;
        if (status == FAIL) {
          ok = false;
          break;
        }
        if (status != REG_ROW) continue;  // a COMPUTE row: none of our statements has one
        row.resize(static_cast<std::size_t>(std::max(0, dbnumcols(db))));
        for (std::size_t c = 0; c < row.size(); ++c) row[c] = ColumnText(static_cast<int>(c) + 1);
        stopped = !on_row(row);
      }
    }
    if (dbdead(db)) {
      usable_ = false;
    } else if (!ok || stopped) {
      dbcancel(db);  // discard what is left of the batch
    }
    if (ok && diag_.server.empty()) return SqlOutcome{.ok = true};
    if (auto explained = ExplainServerMessages(diag_)) {
      return Failure(explained->first, explained->second);
    }
    if (diag_.timed_out || deadline_.expired()) {
      usable_ = false;
      return Failure(code::kTimeout, "no answer from the server before the test's deadline");
    }
    std::string words = diag_.ClientText();
    return Failure(code::kProtocolError, words.empty() ? "the statement failed" : words);
  }

  SqlOutcome Execute(std::string_view sql) override {
    std::optional<std::string> first;
    SqlOutcome out = Query(sql, [&](const Row& row) {
      if (!first && !row.empty()) first = row.front().value_or("");
      return true;
    });
    if (out.ok && first) out.value = *first;
    return out;
  }

  std::string QuoteIdentifier(std::string_view name) override {
    std::string q = "[";
    for (char ch : name) {
      if (ch == ']') q += ']';
      q += ch;
    }
    return q + "]";
  }

  bool usable() const override { return usable_; }

 private:
  std::optional<std::string> ColumnText(int column) {
    DBPROCESS* db = dbproc_.get();
    BYTE* data = dbdata(db, column);
    if (!data) return std::nullopt;  // db-lib's NULL (an empty value has data and length 0)
    DBINT len = std::max<DBINT>(0, dbdatlen(db, column));
    int type = dbcoltype(db, column);
    // Text arrives in the client charset (UTF-8) already, whole: a comment may be long.
    if (type == SYBCHAR || type == SYBVARCHAR || type == SYBTEXT) {
      return std::string(reinterpret_cast<const char*>(data), static_cast<std::size_t>(len));
    }
    char buf[512];
    DBINT n = dbconvert(db, type, data, len, SYBCHAR, reinterpret_cast<BYTE*>(buf), sizeof buf);
    if (n < 0) return "";
    std::string s(buf, static_cast<std::size_t>(std::min<DBINT>(n, sizeof buf)));
    while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
    return s;
  }

  SqlOutcome Failure(std::string_view c, std::string message) {
    SqlOutcome out;
    out.code = c;
    out.message = std::move(message);
    return out;
  }

  DbProcess dbproc_;
  const Deadline& deadline_;
  Diagnostics& diag_;
  bool usable_ = true;
};

// Runs the read query where the login landed and everything after it (the write step: RunSqlSteps
// runs the read query first) in writeAccess.writeDatabase. `enter` gets there before the first
// write statement and returns the session to use, or a failure that every write statement returns.
class WriteLocationSession : public SqlSession {
 public:
  using Enter = std::function<SqlOutcome(SqlSession** write)>;

  WriteLocationSession(SqlSession& read, Enter enter) : read_(read), enter_(std::move(enter)) {}

  SqlOutcome Execute(std::string_view sql) override {
    if (statements_++ == 0) return read_.Execute(sql);
    if (!entered_) entered_ = enter_(&write_);
    if (!entered_->ok) return *entered_;
    return write_->Execute(sql);
  }
  std::string QuoteIdentifier(std::string_view name) override {
    return read_.QuoteIdentifier(name);
  }
  bool usable() const override {
    return entered_ && entered_->ok ? write_->usable() : read_.usable();
  }

 private:
  SqlSession& read_;
  Enter enter_;
  int statements_ = 0;
  std::optional<SqlOutcome> entered_;
  SqlSession* write_ = nullptr;
};

// --- the catalog (contract section 13): paths [database, schema, table] --------------------------

constexpr int kCatalogDepth = 3;

// The databases every server has for itself, and the other system scopes (domain::IsSystemScope).
bool IsSystemDatabase(std::string_view name) {
  for (std::string_view system : {"master", "tempdb", "model", "msdb"}) {
    if (SameName(name, system)) return true;
  }
  return domain::IsSystemScope(name);
}

// The schemas every database has: the system's, guest's and the fixed database roles'.
bool IsSystemSchema(std::string_view name) {
  for (std::string_view system :
       {"sys", "INFORMATION_SCHEMA", "guest", "db_owner", "db_accessadmin", "db_securityadmin",
        "db_ddladmin", "db_backupoperator", "db_datareader", "db_datawriter", "db_denydatareader",
        "db_denydatawriter"}) {
    if (SameName(name, system)) return true;
  }
  return domain::IsSystemScope(name);
}

// A column's type as SQL Server prints it, from INFORMATION_SCHEMA.COLUMNS: the length of the
// character and binary types (nvarchar(50), varbinary(max)), the precision and scale of the exact
// numerics (decimal(10,2)), and the fractional seconds of datetime2, datetimeoffset and time when
// they are not the default 7 (datetime2(3)). Every other type prints bare (int, money, xml).
std::string PrintedType(const std::string& data_type, const std::optional<std::string>& length,
                        const std::optional<std::string>& precision,
                        const std::optional<std::string>& scale,
                        const std::optional<std::string>& fraction) {
  auto one_of = [&](std::initializer_list<std::string_view> names) {
    return std::any_of(names.begin(), names.end(),
                       [&](std::string_view n) { return SameName(data_type, n); });
  };
  if (one_of({"char", "varchar", "nchar", "nvarchar", "binary", "varbinary"}) && length) {
    return data_type + "(" + (*length == "-1" ? std::string("max") : *length) + ")";
  }
  if (one_of({"decimal", "numeric"}) && precision && scale) {
    return data_type + "(" + *precision + "," + *scale + ")";
  }
  if (one_of({"datetime2", "datetimeoffset", "time"}) && fraction && *fraction != "7") {
    return data_type + "(" + *fraction + ")";
  }
  return data_type;
}

// N'text': a Unicode string literal.
std::string UnicodeLiteral(std::string_view text) { return "N" + QuoteDelimited(text, '\''); }

// The listing of one connection's catalog into run.sink, on a logged-in session: the databases,
// then per database one query whose rows arrive ordered by schema, table and ordinal position (in
// binary order, so that each table's rows are adjacent whatever the database's collation), each
// handed on as it arrives: only the columns of the table being read are held.
class CatalogListing {
 public:
  CatalogListing(CatalogRun& run, SqlServerSession& session) : run_(run), session_(session) {
    const domain::CatalogPath& prefix = run.request.prefix;
    const int below = run.request.levels < 0 ? kCatalogDepth : run.request.levels;
    max_depth_ = static_cast<int>(prefix.size()) + std::min(below, kCatalogDepth);
    max_depth_ = std::min(max_depth_, kCatalogDepth);
  }

  // Records the query step. `database_named`: the details name the connection's database, which
  // is then the only one listed.
  void List(bool database_named) {
    StepLog& steps = run_.probe.steps;
    steps.Begin(step::kQuery);
    const domain::CatalogPath& prefix = run_.request.prefix;
    // Nothing a path of this family can hold; a NUL would end the statement's text early.
    bool listable = static_cast<int>(prefix.size()) <= max_depth_ &&
                    std::none_of(prefix.begin(), prefix.end(), [](const std::string& name) {
                      return name.find('\0') != std::string::npos;
                    });
    if (listable && max_depth_ >= 1) {
      std::vector<std::string> databases;
      if (!ListDatabases(database_named, databases)) return;
      for (const std::string& database : databases) {
        if (!Report({.path = {database}, .kind = std::string(domain::inode_kind::kScope)})) break;
        if (max_depth_ >= 2 && !ListDatabase(database)) break;
      }
    }
    if (failed_) return;
    if (late_) {
      return steps.Fail(step::kQuery, code::kTimeout,
                        "the catalog listing did not finish before the deadline");
    }
    steps.Pass();
  }

 private:
  enum Column {
    kSchema,
    kTable,
    kTableComment,
    kColumn,
    kDataType,
    kLength,
    kPrecision,
    kScale,
    kFraction,
    kNullable,
    kColumnComment,
  };

  // The databases to list, in byte order; false after recording a failed step.
  bool ListDatabases(bool database_named, std::vector<std::string>& databases) {
    const domain::CatalogPath& prefix = run_.request.prefix;
    // The connection's database as the server spells it.
    std::string sql = "SELECT DB_NAME()";
    if (!database_named) {
      sql = "SELECT name FROM sys.databases WHERE HAS_DBACCESS(name) = 1";
      if (!prefix.empty()) sql += " AND name = " + UnicodeLiteral(prefix.front());
    }
    SqlOutcome o = session_.Query(sql, [&](const SqlServerSession::Row& row) {
      if (row.empty() || !row[0]) return true;
      const std::string& name = *row[0];
      bool system = database_named ? domain::IsSystemScope(name) : IsSystemDatabase(name);
      if (!system && (prefix.empty() || prefix.front() == name)) databases.push_back(name);
      return true;
    });
    if (!o.ok) return Failed("could not list the databases", o);
    std::sort(databases.begin(), databases.end());
    databases.erase(std::unique(databases.begin(), databases.end()), databases.end());
    return true;
  }

  // The schemas of `database`, and with max_depth_ 3 its tables and views with their columns.
  // False when the listing ends here (a failure, the sink, the deadline).
  bool ListDatabase(const std::string& database) {
    const domain::CatalogPath& prefix = run_.request.prefix;
    const std::string db = session_.QuoteIdentifier(database);
    const bool objects = max_depth_ >= 3;
    std::string sql;
    if (objects) {
      // Comments are MS_Description extended properties on the object (minor_id 0) and on its
      // columns (minor_id = column_id).
      sql =
          "SELECT s.SCHEMA_NAME, t.TABLE_NAME, CAST(tp.value AS nvarchar(4000)), c.COLUMN_NAME, "
          "c.DATA_TYPE, c.CHARACTER_MAXIMUM_LENGTH, c.NUMERIC_PRECISION, c.NUMERIC_SCALE, "
          "c.DATETIME_PRECISION, c.IS_NULLABLE, CAST(cp.value AS nvarchar(4000)) FROM " +
          db + ".INFORMATION_SCHEMA.SCHEMATA AS s LEFT JOIN " + db +
          ".INFORMATION_SCHEMA.TABLES AS t ON t.TABLE_SCHEMA = s.SCHEMA_NAME AND "
          "t.TABLE_TYPE IN ('BASE TABLE', 'VIEW') LEFT JOIN " +
          db +
          ".INFORMATION_SCHEMA.COLUMNS AS c ON c.TABLE_SCHEMA = t.TABLE_SCHEMA AND "
          "c.TABLE_NAME = t.TABLE_NAME LEFT JOIN " +
          db + ".sys.schemas AS os ON os.name = t.TABLE_SCHEMA LEFT JOIN " + db +
          ".sys.objects AS o ON o.schema_id = os.schema_id AND o.name = t.TABLE_NAME "
          "LEFT JOIN " +
          db +
          ".sys.extended_properties AS tp ON tp.class = 1 AND tp.major_id = o.object_id AND "
          "tp.minor_id = 0 AND tp.name = N'MS_Description' LEFT JOIN " +
          db +
          ".sys.columns AS oc ON oc.object_id = o.object_id AND oc.name = c.COLUMN_NAME "
          "LEFT JOIN " +
          db +
          ".sys.extended_properties AS cp ON cp.class = 1 AND cp.major_id = o.object_id AND "
          "cp.minor_id = oc.column_id AND cp.name = N'MS_Description'";
    } else {
      sql = "SELECT s.SCHEMA_NAME FROM " + db + ".INFORMATION_SCHEMA.SCHEMATA AS s";
    }
    std::vector<std::string> where;
    if (prefix.size() >= 2) where.push_back("s.SCHEMA_NAME = " + UnicodeLiteral(prefix[1]));
    if (prefix.size() >= 3) where.push_back("t.TABLE_NAME = " + UnicodeLiteral(prefix[2]));
    for (std::size_t i = 0; i < where.size(); ++i) sql += (i == 0 ? " WHERE " : " AND ") + where[i];
    sql += " ORDER BY s.SCHEMA_NAME COLLATE Latin1_General_BIN2";
    if (objects) sql += ", t.TABLE_NAME COLLATE Latin1_General_BIN2, c.ORDINAL_POSITION";

    std::optional<std::string> schema;             // the schema whose rows are arriving
    std::optional<domain::WarehouseObject> table;  // the table whose columns are arriving
    SqlOutcome o = session_.Query(sql, [&](const SqlServerSession::Row& row) {
      if (row.empty() || !row[kSchema] || IsSystemSchema(*row[kSchema])) return true;
      const std::string& schema_name = *row[kSchema];
      if (schema != schema_name) {
        if (table && !Report(*std::exchange(table, std::nullopt))) return false;
        schema = schema_name;
        if (!Report({.path = {database, schema_name},
                     .kind = std::string(domain::inode_kind::kScope)})) {
          return false;
        }
      }
      if (!objects || row.size() <= kColumnComment || !row[kTable]) return true;
      if (!table || table->path[2] != *row[kTable]) {
        if (table && !Report(*std::exchange(table, std::nullopt))) return false;
        table = domain::WarehouseObject{.path = {database, schema_name, *row[kTable]},
                                        .kind = std::string(domain::inode_kind::kTable),
                                        .comment = row[kTableComment].value_or("")};
      }
      if (row[kColumn] && row[kDataType]) {
        table->columns.push_back(
            {.name = *row[kColumn],
             .warehouse_type = PrintedType(*row[kDataType], row[kLength], row[kPrecision],
                                           row[kScale], row[kFraction]),
             .nullable = row[kNullable].value_or("YES") != "NO",
             .comment = row[kColumnComment].value_or("")});
      }
      return !Late();
    });
    if (!o.ok) return Failed("could not list the catalog of database " + database, o);
    if (stopped_ || late_) return false;
    return !table || Report(std::move(*table));
  }

  // Hands `object` on when the request asks for it; false when the listing ends here.
  bool Report(domain::WarehouseObject object) {
    if (static_cast<int>(object.path.size()) > max_depth_ ||
        !domain::IsPathPrefix(run_.request.prefix, object.path)) {
      return !Late();
    }
    if (Late()) return false;
    stopped_ = !run_.sink.Add(std::move(object));
    return !stopped_;
  }

  bool Late() {
    late_ = late_ || run_.probe.deadline.expired();
    return late_;
  }

  bool Failed(const std::string& what, const SqlOutcome& o) {
    failed_ = true;
    run_.probe.steps.Fail(
        step::kQuery, o.code,
        what + ": " +
            run_.probe.steps.scrubber().Excerpt(o.message, Scrubber::kMessageExcerptChars));
    return false;
  }

  CatalogRun& run_;
  SqlServerSession& session_;
  int max_depth_ = 0;     // the longest path the request asks for
  bool stopped_ = false;  // the sink said stop
  bool late_ = false;     // the deadline passed
  bool failed_ = false;   // a query failed (recorded)
};

// --- the driver ----------------------------------------------------------------------------------

class SqlServerDriverImpl : public Driver {
 public:
  int PathDepth() const override { return 3; }
  std::optional<Endpoint> Target(const boost::json::object& details, const DriverSettings&,
                                 std::string& why) const override {
    Endpoint e{DetailString(details, "server"), DetailInt(details, "port", 1433)};
    if (e.host.empty()) why = "details.server is missing";
    if (e.port <= 0 || e.port > 65535) why = "details.port is not a port number";
    if (!why.empty()) return std::nullopt;
    return e;
  }

  bool UsesTls(const boost::json::object& details) const override { return TlsOn(details); }

  void Run(ProbeRun& run) const override {
    Connected(run, [&](SqlServerSession& session, const LoginParams& params, Diagnostics& diag) {
      std::string write_database = WriteAccessString(run.details, "writeDatabase");
      std::unique_ptr<SqlServerSession> write_login;
      WriteLocationSession located(session, [&](SqlSession** write) {
        return EnterWriteDatabase(run, params, write_database, session, write_login, write, diag);
      });
      RunSqlSteps(run, located, WriteAccessString(run.details, "writeSchema"));
    });
  }

  void Introspect(CatalogRun& run) const override {
    Connected(run.probe, [&](SqlServerSession& session, const LoginParams& params, Diagnostics&) {
      CatalogListing(run, session).List(/*database_named=*/!params.database.empty());
    });
  }

 private:
  using UseSession = std::function<void(SqlServerSession&, const LoginParams&, Diagnostics& diag)>;

  // What a test and a catalog listing share: connects, negotiates TLS and logs in to the pinned
  // address, recording connect, tls (when on) and authenticate, applies
  // useReadUncommittedIsolation (a failure is the query step's), then hands the session, the
  // login's parameters and the thread's diagnostics to `use`. Returns after a failed step.
  static void Connected(ProbeRun& run, const UseSession& use) {
    FreeTds& lib = Library();
    if (!lib.ok) {
      return run.steps.Add(step::kConnect, status::kFailed, code::kDriverUnavailable, lib.why);
    }
    if (const char* variable = OverridingEnvironment()) {
      return run.steps.Add(step::kConnect, status::kFailed, code::kDriverUnavailable,
                           std::string(variable) +
                               " is set in this server's environment: FreeTDS would let it "
                               "override the checked address and port (or log the login). "
                               "Unset it to test SQL Server connections");
    }
    const bool tls = TlsOn(run.details);
    const TlsSettings settings = TlsSettingsOf(run);
    Diagnostics diag(run.deadline);
    DiagnosticsScope scope(&diag);

    LoginParams params;
    params.address = run.addresses.front();
    params.port = run.endpoint.port;
    params.host = run.endpoint.host;
    params.user = DetailString(run.details, "user");
    if (auto pw = run.secrets.find("password"); pw != run.secrets.end()) {
      params.password = pw->second;
    }
    params.database = DetailString(run.details, "database");
    params.require_encryption = tls;
    if (IsAzure(run.details)) params.redirect_policy = &run.egress;

    run.steps.Begin(step::kConnect);
    PreloginAnswer pre = Prelogin(params.address, params.port, run.deadline);
    if (!pre.code.empty()) return run.steps.Fail(step::kConnect, pre.code, pre.message);
    run.steps.Pass();
    if (tls && settings.mode == TlsMode::kVerifyFull) {
      return run.steps.Fail(
          step::kTls, code::kTlsFailure,
          "tlsMode verify-full cannot be enforced for SQL Server: FreeTDS 1.3 checks a "
          "certificate's name only against the IP address it connects to. Use tlsMode verify-ca "
          "(with tlsCaCert for a private CA); no credentials were sent");
    }
    if (tls && !pre.offers_encryption) {
      return run.steps.Fail(
          step::kTls, code::kTlsFailure,
          "the server does not offer encryption, which " +
              std::string(IsAzure(run.details) ? "Azure SQL requires" : "tlsMode requires") +
              "; no credentials were sent");
    }
    std::optional<PrivateFile> trusted;
    if (tls && settings.mode == TlsMode::kVerifyCa) {
      std::string why;
      std::string pem = TrustedCasPem(settings, why);
      if (!pem.empty()) trusted.emplace("ca.pem", pem, why);
      const std::string path = trusted ? trusted->path() : "";
      // The path goes into freetds.conf, where these would end the value or the line.
      if (path.empty() || path.find_first_of(";#[]\n\r") != std::string::npos) {
        return run.steps.Fail(
            step::kTls, code::kTlsFailure,
            "cannot give FreeTDS the trusted CAs" +
                (why.empty() ? std::string(" (TMPDIR holds ; # [ or ])") : ": " + why));
      }
      params.ca_file = path;
    }

    // dbopen negotiates TLS and logs in in one call: with TLS required its time shows under `tls`.
    const std::string_view open_step = tls ? step::kTls : step::kAuthenticate;
    run.steps.Begin(open_step);
    LoginResult login = Login(params, run.deadline, diag);
    if (login.kind != LoginResult::kOk) {
      return FailLogin(run, login, open_step, tls || pre.offers_encryption);
    }
    run.steps.Pass();
    if (tls) run.steps.Add(step::kAuthenticate, status::kSuccess);

    SqlServerSession session(std::move(login.dbproc), run.deadline, diag);
    if (DetailBool(run.details, "useReadUncommittedIsolation", false)) {
      SqlOutcome o = session.Execute("SET TRANSACTION ISOLATION LEVEL READ UNCOMMITTED");
      if (!o.ok) return run.steps.Fail(step::kQuery, o.code, o.message);
    }
    use(session, params, diag);
  }

  static void FailLogin(ProbeRun& run, const LoginResult& login, std::string_view open_step,
                        bool encrypted) {
    const std::string said =
        run.steps.scrubber().Excerpt(login.message, Scrubber::kMessageExcerptChars);
    switch (login.kind) {
      case LoginResult::kServerRefused:
        return run.steps.Fail(step::kAuthenticate, login.code, said);
      case LoginResult::kTimeout: return run.steps.Fail(open_step, code::kTimeout, said);
      case LoginResult::kUnreachable:
        return run.steps.Fail(open_step, code::kConnectionRefused, said);
      case LoginResult::kSetup: return run.steps.Fail(open_step, code::kDriverUnavailable, said);
      case LoginResult::kRedirected:
        return run.steps.Fail(step::kAuthenticate, code::kEgressDenied, said);
      default:
        // The server answered the pre-login but the login failed without a word from it: with
        // encryption in play that is the TLS handshake failing.
        if (encrypted) {
          return run.steps.Fail(open_step, code::kTlsFailure,
                                "the TLS handshake or the login failed: " + said);
        }
        return run.steps.Fail(open_step, code::kProtocolError, "the login failed: " + said);
    }
  }

  static SqlOutcome EnterWriteDatabase(ProbeRun& run, const LoginParams& params,
                                       const std::string& database, SqlServerSession& session,
                                       std::unique_ptr<SqlServerSession>& write_login,
                                       SqlSession** write, Diagnostics& diag) {
    SqlOutcome out;
    if (database.empty() || (!params.database.empty() && SameName(database, params.database))) {
      *write = &session;
      out.ok = true;
      return out;
    }
    if (!IsAzure(run.details)) {
      out = session.Execute("USE " + session.QuoteIdentifier(database));
      if (out.ok) {
        *write = &session;
      } else {
        out.message = "could not switch to database " + database + ": " + out.message;
      }
      return out;
    }
    // Azure SQL Database cannot switch databases on a connection (USE fails with 40508).
    LoginParams p = params;
    p.database = database;
    LoginResult login = Login(p, run.deadline, diag);
    if (login.kind != LoginResult::kOk) {
      out.code = login.kind == LoginResult::kServerRefused ? login.code
                 : login.kind == LoginResult::kTimeout     ? code::kTimeout
                                                           : code::kProtocolError;
      out.message = "could not log in to database " + database + ": " +
                    run.steps.scrubber().Excerpt(login.message, Scrubber::kMessageExcerptChars);
      return out;
    }
    write_login = std::make_unique<SqlServerSession>(std::move(login.dbproc), run.deadline, diag);
    *write = write_login.get();
    out.ok = true;
    return out;
  }
};

}  // namespace

std::vector<WarehouseType> SqlServerTypes() {
  using domain::Kind, domain::Req, domain::Opt, domain::Nested;
  auto fields = [](bool database_required) {
    return domain::WithTlsFields({Req("server", Kind::kHost).Endpoint(),
                                  Req("port", Kind::kPort).Endpoint(),
                                  Req("user", Kind::kString),
                                  Req("password", Kind::kPassword),
                                  {"database", Kind::kString, database_required},
                                  Opt("useReadUncommittedIsolation", Kind::kBool),
                                  Nested("writeAccess", {Req("writeDatabase", Kind::kString),
                                                         Req("writeSchema", Kind::kString)})});
  };
  static const SqlServerDriverImpl* const driver = new SqlServerDriverImpl;
  return {
      {{"sqlserver", fields(/*database_required=*/false), domain::TlsSwitch::kByMode}, driver},
      {{"azuresql", fields(/*database_required=*/true), domain::TlsSwitch::kAlways}, driver},
  };
}

}  // namespace connreg::probe

// connect(2) as every library of the process sees it: a definition in the executable comes before
// the C library's. On a thread where a SQL Server login runs it is checked (ConnectGuard); anywhere
// else it is the next definition's (the C library's, or a sanitizer's) unchanged.
extern "C" int connect(int fd, const sockaddr* addr, socklen_t len) {
  using Connect = int (*)(int, const sockaddr*, socklen_t);
  static const Connect next = reinterpret_cast<Connect>(dlsym(RTLD_NEXT, "connect"));
  if (auto* guard = connreg::probe::current_connect_guard; guard && !guard->Allows(addr)) {
    errno = EACCES;
    return -1;
  }
  return next(fd, addr, len);
}
