#include "probe/drivers/common/sql_probe.h"

#include "crypto/encoding.h"
#include "crypto/random.h"

namespace connreg::probe {
namespace {

// 16 lowercase hex characters carrying 48 random bits: table names and row markers, so that no
// text from the details or the user ever reaches these statements except the quoted schema.
std::string RandomHex() { return crypto::HexEncode(crypto::RandomToken(8)).substr(0, 16); }

}  // namespace

std::string QuoteDelimited(std::string_view name, char quote) {
  std::string q(1, quote);
  for (char ch : name) {
    if (ch == quote) q += quote;
    q += ch;
  }
  return q + quote;
}

void RunSqlSteps(ProbeRun& run, SqlSession& session, std::string_view write_schema) {
  // The warehouse's words are quoted as a short excerpt only.
  auto quote = [&](std::string_view said) {
    return run.steps.scrubber().Excerpt(said, Scrubber::kMessageExcerptChars);
  };
  run.steps.Begin(step::kQuery);
  SqlOutcome q = session.Execute("SELECT 1");
  if (!q.ok) return run.steps.Fail(step::kQuery, q.code, quote(q.message));
  if (q.value != "1") {
    return run.steps.Fail(step::kQuery, code::kProtocolError,
                          "SELECT 1 answered something other than 1");
  }
  run.steps.Pass();
  if (!run.write_access) return;

  run.steps.Begin(step::kWrite);
  std::string marker = RandomHex();
  std::string table = session.QuoteIdentifier(write_schema) + "." +
                      session.QuoteIdentifier("connreg_probe_" + RandomHex());
  std::string failure_code;
  std::string failure;
  auto run_one = [&](std::string_view what, const std::string& sql) -> SqlOutcome {
    SqlOutcome o = session.Execute(sql);
    if (!o.ok && failure_code.empty()) {
      failure_code = o.code;
      failure = std::string(what) + ": " + quote(o.message);
    }
    return o;
  };

  // Each statement runs only when the previous one succeeded; the DROP always runs (IF EXISTS:
  // a CREATE that failed, or timed out after the server created the table, leaves nothing).
  if (run_one("could not create a table in " + std::string(write_schema),
              "CREATE TABLE " + table + " (id INTEGER NOT NULL, marker " +
                  std::string(session.TextType()) + " NOT NULL)")
          .ok &&
      run_one("could not insert a row",
              "INSERT INTO " + table + " (id, marker) VALUES (1, '" + marker + "')")
          .ok) {
    SqlOutcome back =
        run_one("could not read the row back", "SELECT marker FROM " + table + " WHERE id = 1");
    if (back.ok && back.value != marker && failure_code.empty()) {
      failure_code = code::kProtocolError;
      failure = "the row read back differs from the row inserted";
    }
  }
  if (session.usable()) {
    run_one("could not drop the probe table " + table, "DROP TABLE IF EXISTS " + table);
  } else if (failure_code.empty()) {
    failure_code = code::kProtocolError;
    failure = "the connection was lost before the probe table " + table + " was dropped";
  }
  if (!failure_code.empty()) return run.steps.Fail(step::kWrite, failure_code, failure);
  run.steps.Pass();
}

}  // namespace connreg::probe
