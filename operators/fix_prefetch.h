#pragma once
// A container's GPS window is a list of separate heap objects (protobuf
// messages). With more containers in flight than the caches hold, walking a
// window of 64 fixes one by one is a chain of cache misses: in a drain of
// 24,000 containers most of the time of storing a window went to its first
// load of each fix. Asking for every fix first lets the memory system fetch
// them side by side; the walk that follows finds them in the cache.

#include "boxwatch/v1/state.pb.h"

namespace boxwatch::operators {

// Fixes [from, to) of `points`.
inline void PrefetchFixRange(const google::protobuf::RepeatedPtrField<v1::GpsPoint>& points, int from, int to) {
  for (int i = from; i < to; ++i) {
    const char* at = reinterpret_cast<const char*>(&points.Get(i));
    __builtin_prefetch(at);
    __builtin_prefetch(at + 64);  // a fix spans two cache lines
  }
}

// The seal numbers of fixes [from, to): each one a string object of its
// own, a miss more per fix for whatever reads them (storing the window
// compares each with the one before). Call after PrefetchFixRange: reading
// where each string is waits for the fixes asked for there, together.
inline void PrefetchSealNumbers(const google::protobuf::RepeatedPtrField<v1::GpsPoint>& points, int from, int to) {
  for (int i = from; i < to; ++i) __builtin_prefetch(&points.Get(i).seal_number());
}

// `last`: only the newest so many (a window holding unevaluated fixes can
// be several times the evaluated window).
inline void PrefetchFixes(const google::protobuf::RepeatedPtrField<v1::GpsPoint>& points, int last = 1 << 30) {
  PrefetchFixRange(points, points.size() > last ? points.size() - last : 0, points.size());
}

}  // namespace boxwatch::operators
