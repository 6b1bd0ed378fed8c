// The steps of one test as they happen. A driver records into it from its worker thread while the
// engine's watchdog may close it at the deadline from another: once closed, later records are
// ignored, so a stuck driver's late answer cannot change a result that was already delivered.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "probe/scrub.h"
#include "probe/test_result.h"

namespace connreg::probe {

// Thread-safe.
class StepLog {
 public:
  // Messages are passed through `scrubber`, which must outlive the log.
  explicit StepLog(const Scrubber& scrubber) : scrubber_(scrubber) {}

  // Starts step `name`; its duration runs until Pass or Fail. A step still open when another
  // begins passes first.
  void Begin(std::string_view name);
  // The open step succeeded.
  void Pass();
  // Step `name` failed. When it is the open step, its duration ends now; otherwise the open
  // step (if any) passes first and `name` is recorded as a new failed step.
  void Fail(std::string_view name, std::string_view code, std::string_view message);
  // Records a finished step that took no measurable time (e.g. a FAILED step decided up front).
  void Add(std::string_view name, std::string_view status, std::string_view code = {},
           std::string_view message = {});

  // The scrubber messages pass through; drivers cut server text with its Excerpt.
  const Scrubber& scrubber() const { return scrubber_; }

  // True when some step failed.
  bool failed() const;
  // The name of the open step, or empty.
  std::string open_step() const;

  // Closes the log and returns its steps. An open step is returned FAILED with `open_code` and
  // `open_message` (the watchdog's timeout). Later calls of the recording methods are ignored.
  std::vector<Step> Close(std::string_view open_code, std::string_view open_message);

 private:
  using Clock = std::chrono::steady_clock;
  void PassLocked();
  double ElapsedMs() const;

  const Scrubber& scrubber_;
  mutable std::mutex mu_;
  std::vector<Step> steps_;
  bool open_ = false;  // steps_.back() is running
  bool closed_ = false;
  Clock::time_point started_;
};

}  // namespace connreg::probe
