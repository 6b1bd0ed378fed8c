#include "probe/step_log.h"

namespace connreg::probe {

double StepLog::ElapsedMs() const {
  return std::chrono::duration<double, std::milli>(Clock::now() - started_).count();
}

void StepLog::PassLocked() {
  if (!open_) return;
  steps_.back().status = status::kSuccess;
  steps_.back().duration_ms = ElapsedMs();
  open_ = false;
}

void StepLog::Begin(std::string_view name) {
  std::lock_guard lock(mu_);
  if (closed_) return;
  PassLocked();
  steps_.push_back({std::string(name), "", 0, "", ""});
  open_ = true;
  started_ = Clock::now();
}

void StepLog::Pass() {
  std::lock_guard lock(mu_);
  if (closed_) return;
  PassLocked();
}

void StepLog::Fail(std::string_view name, std::string_view code, std::string_view message) {
  std::string clean = scrubber_.Scrub(message);
  std::lock_guard lock(mu_);
  if (closed_) return;
  bool same = open_ && steps_.back().name == name;
  if (!same) {
    PassLocked();
    steps_.push_back({std::string(name), "", 0, "", ""});
  }
  Step& s = steps_.back();
  s.status = status::kFailed;
  s.duration_ms = same ? ElapsedMs() : 0;
  s.code = code;
  s.message = std::move(clean);
  open_ = false;
}

void StepLog::Add(std::string_view name, std::string_view st, std::string_view code,
                  std::string_view message) {
  std::string clean = scrubber_.Scrub(message);
  std::lock_guard lock(mu_);
  if (closed_) return;
  PassLocked();
  steps_.push_back({std::string(name), std::string(st), 0, std::string(code), std::move(clean)});
}

bool StepLog::failed() const {
  std::lock_guard lock(mu_);
  for (const Step& s : steps_) {
    if (s.status == status::kFailed) return true;
  }
  return false;
}

std::string StepLog::open_step() const {
  std::lock_guard lock(mu_);
  return open_ ? steps_.back().name : "";
}

std::vector<Step> StepLog::Close(std::string_view open_code, std::string_view open_message) {
  std::lock_guard lock(mu_);
  if (closed_) return steps_;
  if (open_) {
    Step& s = steps_.back();
    s.status = status::kFailed;
    s.duration_ms = ElapsedMs();
    s.code = open_code;
    s.message = scrubber_.Scrub(open_message);
    open_ = false;
  }
  closed_ = true;
  return steps_;
}

}  // namespace connreg::probe
