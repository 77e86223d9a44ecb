#pragma once
// The project's error vocabulary. Hot paths return Result<T> / Status instead
// of throwing; exceptions are for what ends the operation (startup failures).
//
// An Error says what failed and why in words a person can act on; `code`
// lets callers branch without parsing the message.

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace boxwatch {

enum class Errc {
  kInvalidArgument,  // input was malformed; retrying the same input cannot help
  kNotFound,
  kRetriable,        // a transient condition; the same call may succeed later
  kFenced,           // another instance took over (Kafka producer fenced)
  kAbortable,        // the open transaction must be aborted; the work can be redone
  kFatal,            // the component cannot continue and must be rebuilt
  kTimeout,
  kIo,
  kAccessDenied,     // Kafka refused the client's principal a right (an ACL)
  kUnauthenticated,  // Kafka refused the client's credentials (also, briefly, while a broker restarts)
  kNoSpace,          // a disk is full; the same call may succeed once space is freed
};

const char* ErrcName(Errc code);

struct Error {
  Errc code;
  std::string message;
};

// Status is the result of an operation with no value.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT: implicit by design
  static Status Ok() { return Status(); }

  bool ok() const { return ok_; }
  const Error& error() const {
    assert(!ok_);
    return error_;
  }
  Errc code() const { return error().code; }
  const std::string& message() const { return error().message; }
  std::string ToString() const;
  // Explicit, greppable way to drop a status on purpose.
  void PermitUnchecked() const {}

 private:
  Error error_{Errc::kFatal, {}};
  bool ok_ = true;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }
  Status status() const { return ok() ? Status::Ok() : Status(error()); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Error> v_;
};

inline Error InvalidArgument(std::string message) {
  return Error{Errc::kInvalidArgument, std::move(message)};
}

}  // namespace boxwatch
