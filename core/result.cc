#include "core/result.h"

namespace boxwatch {

const char* ErrcName(Errc code) {
  switch (code) {
    case Errc::kInvalidArgument: return "invalid_argument";
    case Errc::kNotFound: return "not_found";
    case Errc::kRetriable: return "retriable";
    case Errc::kFenced: return "fenced";
    case Errc::kAbortable: return "abortable";
    case Errc::kFatal: return "fatal";
    case Errc::kTimeout: return "timeout";
    case Errc::kIo: return "io";
    case Errc::kAccessDenied: return "access_denied";
    case Errc::kUnauthenticated: return "unauthenticated";
    case Errc::kNoSpace: return "no_space";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok_) return "ok";
  return std::string(ErrcName(error_.code)) + ": " + error_.message;
}

}  // namespace boxwatch
