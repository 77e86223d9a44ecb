#include "core/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "core/types.h"

namespace boxwatch::log {
namespace {

const char* LevelName(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

Level FromEnv() {
  const char* v = std::getenv("BOXWATCH_LOG_LEVEL");
  if (v == nullptr) return Level::kInfo;
  if (std::strcmp(v, "debug") == 0) return Level::kDebug;
  if (std::strcmp(v, "warn") == 0) return Level::kWarn;
  if (std::strcmp(v, "error") == 0) return Level::kError;
  return Level::kInfo;
}

std::atomic<int>& ThresholdStore() {
  static std::atomic<int> threshold{static_cast<int>(FromEnv())};
  return threshold;
}

bool JsonFormat() {
  static const bool json = [] {
    const char* v = std::getenv("BOXWATCH_LOG_FORMAT");
    return v != nullptr && std::strcmp(v, "json") == 0;
  }();
  return json;
}

std::string JsonEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

}  // namespace

Level Threshold() { return static_cast<Level>(ThresholdStore().load(std::memory_order_relaxed)); }
void SetThreshold(Level level) { ThresholdStore().store(static_cast<int>(level)); }
bool Enabled(Level level) { return static_cast<int>(level) >= ThresholdStore().load(std::memory_order_relaxed); }

Line::~Line() {
  const int64_t now = NowMs();
  const char* base = std::strrchr(file_, '/');
  base = base ? base + 1 : file_;
  std::string text;
  if (JsonFormat()) {
    text = "{\"ts\":\"" + FormatUtc(now) + "\",\"level\":\"" + LevelName(level_) +
           "\",\"component\":\"" + std::string(component_) + "\",\"src\":\"" + base + ":" +
           std::to_string(line_) + "\",\"msg\":\"" + JsonEscape(out_.str()) + "\"}\n";
  } else {
    text = FormatUtc(now) + " " + LevelName(level_) + " [" + std::string(component_) + "] " +
           out_.str() + "  (" + base + ":" + std::to_string(line_) + ")\n";
  }
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  std::fwrite(text.data(), 1, text.size(), stderr);
}

}  // namespace boxwatch::log
