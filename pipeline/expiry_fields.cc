#include "pipeline/expiry_fields.h"

#include <algorithm>

#include <google/protobuf/io/coded_stream.h>

#include "boxwatch/v1/state.pb.h"

namespace boxwatch::pipeline {

namespace {

// Calls on_varint(field, value) and on_bytes(field, bytes) for the fields of
// one message on the wire; false when it is malformed or a callback says so.
template <typename OnVarint, typename OnBytes>
bool ReadFields(std::string_view bytes, OnVarint on_varint, OnBytes on_bytes) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  for (uint32_t tag = in.ReadTag(); tag != 0; tag = in.ReadTag()) {
    const uint32_t field = tag >> 3;
    switch (tag & 7) {
      case 0: {  // varint
        uint64_t v = 0;
        if (!in.ReadVarint64(&v)) return false;
        on_varint(field, v);
        break;
      }
      case 1: {  // 64-bit
        uint64_t v = 0;
        if (!in.ReadLittleEndian64(&v)) return false;
        break;
      }
      case 2: {  // length-delimited: a message, string or packed field
        uint32_t length = 0;
        if (!in.ReadVarint32(&length)) return false;
        const int at = in.CurrentPosition();
        if (!in.Skip(static_cast<int>(length))) return false;
        if (!on_bytes(field, bytes.substr(static_cast<size_t>(at), length))) return false;
        break;
      }
      case 5: {  // 32-bit
        uint32_t v = 0;
        if (!in.ReadLittleEndian32(&v)) return false;
        break;
      }
      default:  // groups are not used by boxwatch's messages
        return false;
    }
  }
  return in.ConsumedEntireMessage();
}

}  // namespace

bool ReadExpiryFields(std::string_view bytes, ExpiryFields* out) {
  *out = ExpiryFields{};
  int64_t progress = 0, gps_progress = 0;
  const bool ok = ReadFields(
      bytes,
      [&](uint32_t field, uint64_t v) {
        if (field == v1::ContainerState::kLastEventMsFieldNumber) out->last_event_ms = static_cast<int64_t>(v);
        if (field == v1::ContainerState::kDueMsFieldNumber) out->due_ms = static_cast<int64_t>(v);
        if (field == v1::ContainerState::kProgressMsFieldNumber) progress = static_cast<int64_t>(v);
      },
      [&](uint32_t field, std::string_view sub) {
        // Items listed the way states stored before pending_items list them, or the new way.
        if (field == v1::ContainerState::kPendingFieldNumber) out->pending = true;
        if (field == v1::ContainerState::kPendingItemsFieldNumber && !sub.empty()) out->pending = true;
        if (field != v1::ContainerState::kGpsFieldNumber) return true;
        return ReadFields(
            sub,
            [&](uint32_t f, uint64_t v) {
              if (f == v1::GpsTrack::kProgressMsFieldNumber) gps_progress = static_cast<int64_t>(v);
            },
            [](uint32_t, std::string_view) { return true; });
      });
  out->own_progress_ms = gps_progress > 0 ? std::min(progress, gps_progress) : progress;
  return ok;
}

}  // namespace boxwatch::pipeline
