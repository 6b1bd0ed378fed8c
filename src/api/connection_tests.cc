// The test endpoints (contract section 7): a saved connection, a proposed change to one, and an
// unsaved configuration. Admin only; an archived connection answers 409.
#include "api/api.h"
#include "api/json_body.h"
#include "crypto/random.h"
#include "metrics/metrics.h"
#include "probe/test_result.h"

namespace connreg::api {
namespace {

// Tests `c` on the probe engine, after the blocking part of the request: no pool thread waits
// for a warehouse. With `record`, the outcome becomes the connection's lastTest (and moves
// lastActiveAt when the read query ran).
void RunAndReply(Context& ctx, const domain::Connection& c, bool record) {
  auto secrets = domain::OpenSecrets(ctx.sealer, c);
  if (!secrets) return ReplyError(ctx.ex, secrets.error());
  ctx.then = [&ex = ctx.ex, c, secrets = std::move(*secrets),
              record](Api& api) -> boost::asio::awaitable<void> {
    probe::TestResult result = co_await api.RunProbe(c, secrets);
    for (const auto& step : result.steps) metrics::RecordTestStep(c.type, step.name, step.status);
    if (record) {
      Status recorded = co_await api.pool().Run([&] {
        return api.connections().RecordTest(c.organization_id, c.connection_id,
                                            domain::LastTest{NowMs(), result.read, result.write},
                                            result.query_reached);
      });
      if (!recorded && recorded.error().code != ErrorCode::kNotFound) {
        co_return ReplyError(ex, recorded.error());
      }
    }
    ReplyJsonText(ex, 200, probe::RenderTestResult(result));
  };
}

Result<domain::Connection> LoadForTest(Context& ctx) {
  auto c = LoadVisible(ctx);
  if (!c) return c;
  if (!ctx.is_admin()) return Error::Forbidden("testing a connection needs an admin account");
  if (c->is_archived) return Error::Conflict("the connection is archived; restore it first");
  return c;
}

}  // namespace

void HandleTestSavedConnection(Context& ctx) {
  auto c = LoadForTest(ctx);
  if (!c) return ReplyError(ctx.ex, c.error());
  RunAndReply(ctx, *c, /*record=*/true);
}

void HandleTestProposedChange(Context& ctx) {
  // Permission first: a caller who may not test learns nothing from how its body is read.
  auto c = LoadForTest(ctx);
  if (!c) return ReplyError(ctx.ex, c.error());
  auto body = ParseJsonBody(ctx.ex.request, /*allow_empty=*/true);
  if (!body) return ReplyError(ctx.ex, body.error());
  if (body->is_null()) return RunAndReply(ctx, *c, /*record=*/false);
  auto proposed = domain::BuildMerge(ctx.types, *c, *body, ctx.actor(), NowMs(), ctx.sealer);
  if (!proposed) return ReplyError(ctx.ex, proposed.error());
  RunAndReply(ctx, *proposed, /*record=*/false);
}

void HandleTestUnsavedConnection(Context& ctx) {
  if (!ctx.is_admin()) {
    return ReplyError(ctx.ex, Error::Forbidden("testing a connection needs an admin account"));
  }
  auto body = ParseJsonBody(ctx.ex.request);
  if (!body) return ReplyError(ctx.ex, body.error());
  auto c = domain::BuildNewConnection(ctx.types, *body, ctx.actor(), NowMs(), crypto::NewUuid4(),
                                      ctx.sealer);
  if (!c) return ReplyError(ctx.ex, c.error());
  RunAndReply(ctx, *c, /*record=*/false);
}

}  // namespace connreg::api
