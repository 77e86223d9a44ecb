#pragma once
// Minimal leveled logging. BW_LOG checks the level before anything is
// formatted, and records the component and source location:
//
//   BW_LOG(kInfo, "pipeline") << "assigned " << n << " partitions";
//
// Output goes to stderr, one line per call: readable text on a terminal,
// JSON lines when BOXWATCH_LOG_FORMAT=json (production). Thread-safe.

#include <sstream>
#include <string_view>

namespace boxwatch::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// Current threshold; from BOXWATCH_LOG_LEVEL (debug|info|warn|error) at first use.
Level Threshold();
void SetThreshold(Level level);
bool Enabled(Level level);

class Line {
 public:
  Line(Level level, std::string_view component, const char* file, int line)
      : level_(level), component_(component), file_(file), line_(line) {}
  ~Line();
  std::ostream& stream() { return out_; }

 private:
  Level level_;
  std::string_view component_;
  const char* file_;
  int line_;
  std::ostringstream out_;
};

}  // namespace boxwatch::log

namespace boxwatch::log {
// Lets BW_LOG be one expression, safe inside an unbraced if/else.
struct Voidify {
  void operator&(std::ostream&) {}
};
}  // namespace boxwatch::log

#define BW_LOG(level, component)                                          \
  !::boxwatch::log::Enabled(::boxwatch::log::Level::level)                \
      ? (void)0                                                           \
      : ::boxwatch::log::Voidify() &                                      \
            ::boxwatch::log::Line(::boxwatch::log::Level::level, component, __FILE__, __LINE__).stream()
