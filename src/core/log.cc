#include "core/log.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <mutex>

#include <boost/json/serialize.hpp>

#include "core/time.h"

namespace connreg::log {
namespace {

std::shared_ptr<spdlog::logger> Logger() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto l = spdlog::get("app");
    if (!l) l = spdlog::stdout_logger_mt("app");
    l->set_pattern("%v");
    l->flush_on(spdlog::level::info);
    return l;
  }();
  return logger;
}

spdlog::level::level_enum ToSpd(Level level) {
  switch (level) {
    case Level::kDebug: return spdlog::level::debug;
    case Level::kInfo: return spdlog::level::info;
    case Level::kWarn: return spdlog::level::warn;
    case Level::kError: return spdlog::level::err;
  }
  return spdlog::level::info;
}

std::string_view Name(Level level) {
  switch (level) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

// Lines go to stdout through stdio's buffer; flush_() empties it.
class BufferedStdoutSink : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::fwrite(msg.payload.data(), 1, msg.payload.size(), stdout);
    std::fputc('\n', stdout);
  }
  void flush_() override { std::fflush(stdout); }
};

}  // namespace

void UseBufferedStdout() {
  static std::once_flag once;
  std::call_once(once, [] {
    auto sink = std::make_shared<BufferedStdoutSink>();
    for (const char* name : {"app", "access"}) {
      spdlog::drop(name);
      auto logger = std::make_shared<spdlog::logger>(name, sink);
      logger->set_pattern("%v");
      if (std::string_view(name) == "app") logger->flush_on(spdlog::level::info);
      spdlog::register_logger(logger);
    }
    spdlog::flush_every(std::chrono::seconds(1));
  });
}

void SetLevel(std::string_view level) {
  Level l = Level::kInfo;
  if (level == "debug") l = Level::kDebug;
  if (level == "warn") l = Level::kWarn;
  if (level == "error") l = Level::kError;
  Logger()->set_level(ToSpd(l));
}

void Event(Level level, std::string_view event, boost::json::object fields) {
  auto logger = Logger();
  if (!logger->should_log(ToSpd(level))) return;
  boost::json::object line;
  line["time"] = FormatRfc3339(NowMs());
  line["level"] = Name(level);
  line["event"] = event;
  for (auto& kv : fields) line[kv.key()] = std::move(kv.value());
  logger->log(ToSpd(level), "{}", boost::json::serialize(line));
}

}  // namespace connreg::log
