#include "http/access_log.h"

#include <mutex>
#include <string>

#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serializer.hpp>

#include "core/json_write.h"
#include "core/time.h"

namespace connreg::http {
namespace {

// Methods are client-chosen tokens of any length; the log keeps a bounded prefix.
constexpr std::size_t kMaxMethodChars = 32;

}  // namespace

std::shared_ptr<spdlog::logger> AccessLogger() {
  static std::mutex mu;  // get-then-create must not race: stdout_logger_mt throws on duplicates
  std::lock_guard lock(mu);
  auto logger = spdlog::get("access");
  if (!logger) logger = spdlog::stdout_logger_mt("access");
  logger->set_pattern("%v");
  return logger;
}

void WriteAccessLine(spdlog::logger& logger, const AccessRecord& r) {
  if (!logger.should_log(spdlog::level::info)) return;
  // The object lives in a stack buffer: no heap allocation for an ordinary line.
  unsigned char storage[2048];
  boost::json::monotonic_resource mr(storage, sizeof storage);
  boost::json::object line(&mr);
  line.reserve(7);
  line.emplace("time", FormatRfc3339(NowMs()));
  line.emplace("requestId", r.request_id);
  line.emplace("method", r.method.substr(0, kMaxMethodChars));
  line.emplace("route", r.route);
  line.emplace("status", r.status);
  if (r.member_id.empty()) {
    line.emplace("memberId", nullptr);
  } else {
    line.emplace("memberId", r.member_id);
  }
  line.emplace("remote", r.remote);

  // boost::json does every string's escaping. durationMs is appended by hand, under the server's
  // number rule (FormatServerNumber: "702.75"): boost::json renders doubles in exponent form
  // ("7.02754E2"), unkind to people reading logs.
  boost::json::serializer sr;
  sr.reset(&line);
  char out[2048];
  std::string_view head = sr.read(out, sizeof out);
  std::string long_line;  // only when a route or member id is unusually long
  if (!sr.done()) {
    long_line.assign(head);
    while (!sr.done()) long_line.append(sr.read(out, sizeof out));
    head = long_line;
  }
  head.remove_suffix(1);  // the closing brace
  char number[kServerNumberChars];
  std::string_view duration_prefix = ",\"durationMs\":";
  fmt::memory_buffer text;  // stack storage for lines up to 500 bytes
  text.append(head);
  text.append(duration_prefix);
  text.append(FormatServerNumber(r.duration_ms, number));
  text.push_back('}');
  logger.log(spdlog::level::info, spdlog::string_view_t(text.data(), text.size()));
}

}  // namespace connreg::http
