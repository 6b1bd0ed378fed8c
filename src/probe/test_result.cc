#include "probe/test_result.h"

namespace connreg::probe {
namespace {

void WriteSteps(JsonWriter& w, const std::vector<Step>& steps) {
  w.BeginArray();
  for (const Step& s : steps) {
    w.BeginObject();
    w.Key("name").String(s.name).Key("status").String(s.status);
    w.Key("durationMs").ServerNumber(s.duration_ms);
    if (!s.code.empty()) w.Key("code").String(s.code);
    if (!s.message.empty()) w.Key("message").String(s.message);
    w.EndObject();
  }
  w.EndArray();
}

}  // namespace

void WriteTestResult(JsonWriter& w, const TestResult& r) {
  w.BeginObject();
  w.Key("read").String(r.read).Key("write").String(r.write);
  w.Key("durationMs").ServerNumber(r.duration_ms);
  w.Key("steps");
  WriteSteps(w, r.steps);
  // readError: the first failed read step; writeError: the (last) failed write step. Each is
  // written where it first appears among the steps.
  const Step* read_failed = nullptr;
  const Step* write_failed = nullptr;
  bool write_first = false;
  for (const Step& s : r.steps) {
    if (s.status != status::kFailed) continue;
    if (s.name == step::kWrite) {
      write_first = write_first || (write_failed == nullptr && read_failed == nullptr);
      write_failed = &s;
    } else if (read_failed == nullptr) {
      read_failed = &s;
    }
  }
  auto write_error = [&] {
    if (write_failed != nullptr) w.Key("writeError").String(write_failed->message);
  };
  if (write_first) write_error();
  if (read_failed != nullptr) w.Key("readError").String(read_failed->message);
  if (!write_first) write_error();
  if (r.write == status::kFailed && write_failed == nullptr) {
    w.Key("writeError").String("the write test did not run because the read test failed");
  }
  w.EndObject();
}

std::string RenderTestResult(const TestResult& r) {
  std::string out;
  out.reserve(512);
  JsonWriter w(out);
  WriteTestResult(w, r);
  return out;
}

std::string RenderTestSteps(const std::vector<Step>& steps) {
  std::string out;
  JsonWriter w(out);
  WriteSteps(w, steps);
  return out;
}

}  // namespace connreg::probe
