#pragma once
// The default profile (profiles/default.yaml), compiled into the binary so
// that `boxwatch` runs without a profile file next to it.

#include <string_view>

namespace boxwatch::operators {

std::string_view DefaultProfileYaml();
inline constexpr const char* kDefaultProfileSource = "profiles/default.yaml (built in)";

}  // namespace boxwatch::operators
