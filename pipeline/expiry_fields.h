#pragma once
// The fields of a stored ContainerState that the worker's expiry sweep and
// its due index (pipeline/task_core.h) need, read from the protobuf wire format without decoding the rest (GPS
// track, manifests, scans). A sweep looks at every stored state of a task,
// so this is what keeps it cheap when millions of containers are tracked.

#include <cstdint>
#include <string_view>

namespace boxwatch::pipeline {

struct ExpiryFields {
  int64_t last_event_ms = 0;  // ContainerState.last_event_ms
  bool pending = false;       // ContainerState.pending is not empty
  int64_t due_ms = 0;         // ContainerState.due_ms
  // What TaskCore::OwnBound starts from: ContainerState.progress_ms, or
  // GpsTrack.progress_ms when that is set and lower.
  int64_t own_progress_ms = 0;
};

// False when `bytes` is not a well-formed protobuf message.
bool ReadExpiryFields(std::string_view bytes, ExpiryFields* out);

}  // namespace boxwatch::pipeline
