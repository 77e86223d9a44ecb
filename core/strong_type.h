#pragma once
// A value wrapped in a distinct type so that, e.g., a partition cannot be
// passed where an offset is expected. Comparison and hashing follow the value.

#include <compare>
#include <functional>
#include <utility>

namespace boxwatch {

template <typename T, typename Tag>
class NamedType {
 public:
  using value_type = T;
  constexpr NamedType() = default;
  constexpr explicit NamedType(T v) : value_(std::move(v)) {}
  constexpr const T& value() const { return value_; }
  constexpr auto operator<=>(const NamedType&) const = default;

 private:
  T value_{};
};

}  // namespace boxwatch

template <typename T, typename Tag>
struct std::hash<boxwatch::NamedType<T, Tag>> {
  size_t operator()(const boxwatch::NamedType<T, Tag>& v) const noexcept {
    return std::hash<T>{}(v.value());
  }
};
