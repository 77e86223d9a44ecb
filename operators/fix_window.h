#pragma once
// A container's GPS window in memory: fixed-size records laid end to end in
// GpsTrack.live_fixes, ordered by fix time, with their texts (seal number,
// border geofence, an event id kept from states stored before event keys)
// in GpsTrack.live_texts.
//
// Why: with more containers in flight than the caches hold, a window of
// protobuf messages (one heap object per fix and one per seal-number
// string) is read as a chain of cache misses by the join's duplicate check,
// the evaluation and the commit that stores it. Records side by side are
// read as a stream. Every number is kept exactly as the protobuf fix holds
// it, so the window converts both ways without loss (ToPoints, Append).
//
// FixWindow reads a track: a snapshot of where its records and texts are,
// valid (with every FixRef it gives) until the window changes. A
// MutableFixWindow changes it and stays valid while the track does. Neither
// owns anything. Not thread-safe, like the message. A record's text offsets
// refer to its own window's texts: copied into another window, its texts
// must be set again.
//
// Texts: live_texts starts with a 4-byte header (so offset 0 means "no
// text"); each text is a varint length and its bytes. A fix whose seal
// number is the one of the fix before it shares that text. Texts no fix
// refers to any more are dropped when the buffer has grown past
// kCompactTextsAt and to twice its size after the last such pass.

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "boxwatch/v1/state.pb.h"

namespace boxwatch::operators {

struct FixRecord {
  int64_t fix_time_ms = 0;
  double lat = 0, lon = 0, speed_kmh = 0, corridor_distance_m = 0;
  uint64_t event_key = 0;
  int32_t seal_state = 0;
  uint32_t seal_number = 0;      // offset in live_texts; 0: none
  uint32_t border_geofence = 0;  // offset in live_texts; 0: none
  uint32_t event_id = 0;         // offset in live_texts; 0: none
  uint32_t flags = 0;            // kFix* below
  uint32_t unused = 0;           // zero: records compare as bytes
};
static_assert(sizeof(FixRecord) == 72);
inline constexpr uint32_t kFixOutsideCorridors = 1, kFixInStopZone = 2, kFixAtApprovedCrossing = 4;

// The text at `offset` of a texts buffer.
std::string_view FixText(const std::string& texts, uint32_t offset);

// One fix of a window, as the protobuf fix's accessors read it.
class FixRef {
 public:
  FixRef(const FixRecord* r, const std::string* texts) : r_(r), texts_(texts) {}
  int64_t fix_time_ms() const { return r_->fix_time_ms; }
  double lat() const { return r_->lat; }
  double lon() const { return r_->lon; }
  double speed_kmh() const { return r_->speed_kmh; }
  double corridor_distance_m() const { return r_->corridor_distance_m; }
  uint64_t event_key() const { return r_->event_key; }
  v1::GpsEvent::SealState seal_state() const { return static_cast<v1::GpsEvent::SealState>(r_->seal_state); }
  bool outside_corridors() const { return (r_->flags & kFixOutsideCorridors) != 0; }
  bool in_stop_zone() const { return (r_->flags & kFixInStopZone) != 0; }
  bool at_approved_crossing() const { return (r_->flags & kFixAtApprovedCrossing) != 0; }
  std::string_view seal_number() const { return FixText(*texts_, r_->seal_number); }
  std::string_view border_geofence() const { return FixText(*texts_, r_->border_geofence); }
  std::string_view event_id() const { return FixText(*texts_, r_->event_id); }
  const FixRecord& record() const { return *r_; }

 private:
  const FixRecord* r_;
  const std::string* texts_;
};

// live_fixes: empty when the window is; else an 8-byte header (the count of
// records at the front that have left the window and are not yet erased:
// erasing moves the whole window, so it is done once every kLazyErase
// departures, not at each) and the records.
inline constexpr size_t kFixesHeader = 8;
inline constexpr uint32_t kLazyErase = 8;
inline uint32_t DepartedFixes(const std::string& fixes) {
  uint32_t n = 0;
  if (!fixes.empty()) std::memcpy(&n, fixes.data(), sizeof n);
  return n;
}

class FixWindow {
 public:
  explicit FixWindow(const v1::GpsTrack& track) : texts_(&track.live_texts()) {
    const std::string& fixes = track.live_fixes();
    if (fixes.empty()) return;
    const uint32_t departed = DepartedFixes(fixes);
    records_ = reinterpret_cast<const FixRecord*>(fixes.data() + kFixesHeader) + departed;
    size_ = static_cast<int>((fixes.size() - kFixesHeader) / sizeof(FixRecord) - departed);
  }
  int size() const { return size_; }
  bool empty() const { return size_ == 0; }
  FixRef Get(int i) const { return FixRef(records_ + i, texts_); }
  FixRef operator[](int i) const { return Get(i); }
  // Asks the memory system for fixes [from, to) (records side by side: a
  // stream the prefetcher follows once started).
  void Prefetch(int from, int to) const {
    const char* begin = reinterpret_cast<const char*>(records_ + from);
    const char* end = reinterpret_cast<const char*>(records_ + to);
    for (const char* at = begin; at < end; at += 64) __builtin_prefetch(at);
  }
  // The newest `last` fixes.
  void PrefetchLast(int last) const { Prefetch(size_ > last ? size_ - last : 0, size_); }

 private:
  const FixRecord* records_ = nullptr;
  int size_ = 0;
  const std::string* texts_;
};

class MutableFixWindow {
 public:
  static constexpr size_t kCompactTextsAt = 4096;  // bytes of live_texts

  explicit MutableFixWindow(v1::GpsTrack* track) : track_(track) {}
  int size() const { return View().size(); }
  FixWindow View() const { return FixWindow(*track_); }
  // A zeroed record at `index` (0..size()), the later ones moved up one.
  FixRecord* Insert(int index);
  // The fix at `index`: valid until the window changes.
  FixRecord* At(int index) {
    std::string* fixes = Fixes();
    return reinterpret_cast<FixRecord*>(fixes->data() + kFixesHeader) + DepartedFixes(*fixes) + index;
  }
  // Sets a text of the fix at `index` (empty: none). The seal number is
  // shared with the fix before it when they read the same.
  void SetSealNumber(int index, std::string_view text);
  void SetBorderGeofence(int index, std::string_view text) { At(index)->border_geofence = AddText(text); }
  void SetEventId(int index, std::string_view text) { At(index)->event_id = AddText(text); }
  // Drops the oldest `n` fixes.
  void EraseFront(int n);
  // Appends a protobuf fix (loads of stored states, tests).
  void Append(const v1::GpsPoint& p);
  void Clear();

 private:
  // The records' string, asked of the message once (the field's mutable
  // accessor is a call into protobuf; the string stays the same object).
  std::string* Fixes() {
    if (fixes_ == nullptr) fixes_ = track_->mutable_live_fixes();
    return fixes_;
  }
  uint32_t AddText(std::string_view text);
  void CompactTexts();
  v1::GpsTrack* track_;
  std::string* fixes_ = nullptr;
};

// Fixes [from, to) of the window as protobuf fixes, appended to `out`.
void ToPoints(const v1::GpsTrack& track, int from, int to, google::protobuf::RepeatedPtrField<v1::GpsPoint>* out);
// A track whose window is in `points` (as stored, or built by a test) with
// the window moved into live_fixes; a no-op when `points` is empty.
void MovePointsToWindow(v1::GpsTrack* track);
// The bytes the window takes serialised as protobuf points (field 1 of
// GpsTrack): what ByteSizeLong counted for it when it was held that way.
size_t PointsByteSize(const v1::GpsTrack& track);

}  // namespace boxwatch::operators
