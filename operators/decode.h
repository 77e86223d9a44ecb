#pragma once
// Decoding and validation of input records: Kafka key + value bytes into a
// typed boxwatch.v1 message, or a Rejection with a machine-readable reason
// that the pipeline sends to the dead-letter topic with the original bytes.
//
// Pure and thread-compatible: no I/O, no clocks (the caller passes `now`).
//
// Encoding: the record header "content-type" says "application/x-protobuf"
// (the default when absent) or "application/json" (the canonical Protobuf
// JSON mapping, for producers that cannot speak Protobuf).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "boxwatch/v1/gps.pb.h"
#include "boxwatch/v1/manifest.pb.h"
#include "boxwatch/v1/outcome.pb.h"
#include "boxwatch/v1/scan.pb.h"
#include "core/types.h"

namespace boxwatch::operators {

// Reasons are stable identifiers: they appear in dead-letter headers and
// metric labels. Never rename one; add new ones at the end.
enum class RejectReason {
  kOversized,               // value larger than the configured limit
  kUnknownEncoding,         // content-type header names no known encoding
  kUndecodable,             // bytes are not a valid message of the topic's type
  kInvalidContainerNumber,  // missing, malformed, or failing the ISO 6346 check digit
  kKeyMismatch,             // record key differs from the message's container number
  kInvalidField,            // a field out of range (coordinates, LOCODE, HS code, ...)
  kFutureTimestamp,         // event time too far ahead of the processing clock
  kImplausibleTimestamp,    // event time before 2000 (broken clock, seconds for ms)
  kLate,                    // older than the allowed lateness (set by the pipeline)
  kStateTooLarge,           // joining it would grow the container's state past max_state_bytes (pipeline)
};
inline constexpr RejectReason kLastRejectReason = RejectReason::kStateTooLarge;

const char* RejectReasonName(RejectReason reason);

struct Rejection {
  RejectReason reason;
  std::string detail;  // what was wrong, for a person
};

enum class Encoding { kProtobuf, kJson };

inline constexpr std::string_view kContentTypeHeader = "content-type";
inline constexpr std::string_view kProtobufContentType = "application/x-protobuf";
inline constexpr std::string_view kJsonContentType = "application/json";

// Maps a content-type header value (absent: empty) to an encoding.
std::variant<Encoding, Rejection> EncodingFromHeader(std::string_view content_type);

struct DecodeLimits {
  size_t max_value_bytes = 1 << 20;      // bytes; larger values are rejected (1 MiB)
  int64_t max_future_ms = 10 * 60 * 1000;  // ms an event time may lead the clock (10 min)
};

struct RecordView {
  std::string_view key;
  std::string_view value;
  Encoding encoding = Encoding::kProtobuf;
};

template <typename T>
using Decoded = std::variant<T, Rejection>;

Decoded<v1::Manifest> DecodeManifest(const RecordView& r, ProcessingTimeMs now, const DecodeLimits& limits);
Decoded<v1::ScanResult> DecodeScan(const RecordView& r, ProcessingTimeMs now, const DecodeLimits& limits);
Decoded<v1::GpsEvent> DecodeGps(const RecordView& r, ProcessingTimeMs now, const DecodeLimits& limits);
// The same into `out`, which is cleared first: a message reused record after
// record keeps its strings' buffers (GPS events are most of the traffic).
// Nullopt: decoded; else the rejection (`out` then holds no valid event).
std::optional<Rejection> DecodeGpsInto(const RecordView& r, ProcessingTimeMs now, const DecodeLimits& limits,
                                       v1::GpsEvent* out);
Decoded<v1::InspectionOutcome> DecodeOutcome(const RecordView& r, ProcessingTimeMs now,
                                             const DecodeLimits& limits);

// DecodeGpsInto's fast path, public for tests and the fuzz target: reads the
// protobuf bytes of a GpsEvent straight into `out` (cleared first) when they
// hold only what the schema declares, each field with its own wire type,
// ASCII texts within their size, declared enum values, varints of at most
// nine bytes and length prefixes of at most four. False (with `out` unspecified) for anything else, which
// the generic parse and schema check then decide. True means the message
// equals what ParseFromArray makes of the bytes and passes the schema check.
bool ParseGpsWire(std::string_view bytes, v1::GpsEvent* out);

// Size limits of an outcome's text fields, checked wherever an outcome comes
// in (hub, dispatcher, worker) so an officer's typo or a hostile client
// cannot push a megabyte through. Each problem names the field, its size and
// the limit, never the value. Empty: within limits.
inline constexpr size_t kMaxContainerNumberBytes = 32;  // 11 characters, with room for spaces
std::vector<std::string> OutcomeSizeProblems(const v1::InspectionOutcome& o);

// Every text field of an input message holds at most this many bytes
// (descriptions and analysts' notes 4096, outcome notes 8192): with the
// engine's count bounds this bounds a state grown from small events.
inline constexpr size_t kMaxTextFieldBytes = 1024;
// The first schema problem of an input message (manifest, scan, GPS event,
// outcome, or a part of one): an enum number its enum does not declare, or a
// text field over its size. Decoding checks it; the dispatcher checks the
// outcomes it is given the same way. Nullopt: none.
std::optional<std::string> SchemaProblem(const google::protobuf::Message& message);

// Serialises `message` in the given encoding (used by producers and tests).
std::string Encode(const google::protobuf::Message& message, Encoding encoding);

}  // namespace boxwatch::operators
