#include "core/log.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "core/json_write.h"
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

// Lines for stdout, written by a thread of its own: a request's thread only appends to a
// buffer, so a reader that stops draining stdout (a full pipe) never stalls request handling.
// While kMaxPending bytes wait, further lines are dropped and counted (DroppedLines).
class StdoutWriter {
 public:
  static constexpr std::size_t kMaxPending = 8 << 20;
  static constexpr std::size_t kBatch = 8 << 10;
  static constexpr std::chrono::milliseconds kInterval{200};

  static StdoutWriter& Get() {
    static StdoutWriter* const writer = new StdoutWriter;  // lives until the process exits
    return *writer;
  }

  void Append(std::string_view line) {
    bool wake = false;
    {
      std::lock_guard lock(mu_);
      if (pending_.size() + line.size() + 1 > kMaxPending) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      pending_.append(line).push_back('\n');
      // Small batches written often: one large write every interval would take a core from
      // the I/O threads long enough to show in their tail latency.
      if (pending_.size() >= kBatch && !kicked_) wake = kicked_ = true;
    }
    if (wake) wake_.notify_one();
  }

  // Asks for a write now; does not wait for it.
  void Kick() {
    {
      std::lock_guard lock(mu_);
      kicked_ = true;
    }
    wake_.notify_one();
  }

  // Waits until every line appended so far is written, or `timeout` passed (stdout may be stuck).
  void Drain(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    kicked_ = true;
    wake_.notify_one();
    written_.wait_for(lock, timeout, [&] { return pending_.empty() && !writing_; });
  }

  std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  StdoutWriter() {
    std::thread([this] { Loop(); }).detach();
  }

  void Loop() {
    std::string batch;
    std::unique_lock lock(mu_);
    for (;;) {
      wake_.wait_for(lock, kInterval, [&] { return kicked_; });
      kicked_ = false;
      if (pending_.empty()) continue;
      batch.swap(pending_);
      writing_ = true;
      lock.unlock();
      for (std::size_t done = 0; done < batch.size();) {
        ssize_t n = ::write(STDOUT_FILENO, batch.data() + done, batch.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // stdout is gone: the lines are lost, the server goes on
        done += static_cast<std::size_t>(n);
      }
      batch.clear();
      lock.lock();
      writing_ = false;
      written_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable written_;
  std::string pending_;   // guarded by mu_
  bool kicked_ = false;   // guarded by mu_
  bool writing_ = false;  // guarded by mu_
  std::atomic<std::uint64_t> dropped_{0};
};

class BufferedStdoutSink : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    StdoutWriter::Get().Append({msg.payload.data(), msg.payload.size()});
  }
  void flush_() override { StdoutWriter::Get().Kick(); }
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
  });
}

void Drain() { StdoutWriter::Get().Drain(std::chrono::seconds(2)); }

std::uint64_t DroppedLines() { return StdoutWriter::Get().dropped(); }

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
  // A log line is the server's own: any double in it follows the server's number rule.
  std::string text;
  JsonWriter(text).Value(line, JsonWriter::Doubles::kServer);
  logger->log(ToSpd(level), "{}", text);
}

}  // namespace connreg::log
