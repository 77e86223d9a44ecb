#include "pipeline/expiry_fields.h"

#include <google/protobuf/io/coded_stream.h>

#include "boxwatch/v1/state.pb.h"

namespace boxwatch::pipeline {

bool ReadExpiryFields(std::string_view bytes, ExpiryFields* out) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  *out = ExpiryFields{};
  for (uint32_t tag = in.ReadTag(); tag != 0; tag = in.ReadTag()) {
    const uint32_t field = tag >> 3;
    switch (tag & 7) {
      case 0: {  // varint
        uint64_t v = 0;
        if (!in.ReadVarint64(&v)) return false;
        if (field == v1::ContainerState::kLastEventMsFieldNumber) out->last_event_ms = static_cast<int64_t>(v);
        if (field == v1::ContainerState::kDueMsFieldNumber) out->due_ms = static_cast<int64_t>(v);
        break;
      }
      case 1: {  // 64-bit
        uint64_t v = 0;
        if (!in.ReadLittleEndian64(&v)) return false;
        break;
      }
      case 2: {  // length-delimited: a message, string or packed field
        uint32_t length = 0;
        if (!in.ReadVarint32(&length) || !in.Skip(static_cast<int>(length))) return false;
        if (field == v1::ContainerState::kPendingFieldNumber) out->pending = true;
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

}  // namespace boxwatch::pipeline
