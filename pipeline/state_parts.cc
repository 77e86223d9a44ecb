#include "pipeline/state_parts.h"

#include <algorithm>
#include <functional>
#include <string_view>
#include <utility>

#include "core/varint.h"
#include "operators/fix_window.h"
#include "operators/fix_quantum.h"
#include "operators/pending_items.h"

namespace boxwatch::pipeline {
namespace {

std::string PartKey(std::string_view key, std::string_view suffix) {
  std::string k;
  k.reserve(key.size() + suffix.size());
  k.append(key).append(suffix);
  return k;
}
std::string DeclarationKey(std::string_view key) { return PartKey(key, kDeclarationSuffix); }
std::string EvaluationKey(std::string_view key) { return PartKey(key, kEvaluationSuffix); }

void Shape(const v1::ContainerState& s, uint32_t out[4]) {
  out[0] = static_cast<uint32_t>(s.manifest_versions_size());
  out[1] = static_cast<uint32_t>(s.manifest_history_size());
  out[2] = static_cast<uint32_t>(s.scans_size());
  out[3] = static_cast<uint32_t>(s.outcomes_size());
}

// Moves the evaluation fields (fired indicators, alert bookkeeping) between
// two states: O(1), no copies.
void SwapEvaluation(v1::ContainerState& a, v1::ContainerState& b) {
  a.mutable_fired()->Swap(b.mutable_fired());
  v1::AlertBookkeeping* from_a = a.has_alerts() ? a.release_alerts() : nullptr;
  v1::AlertBookkeeping* from_b = b.has_alerts() ? b.release_alerts() : nullptr;
  a.set_allocated_alerts(from_b);
  b.set_allocated_alerts(from_a);
}


// The compact encoding of a GPS window (GpsTrack.packed_points): a format
// byte, the count, then per fix, as varints (signed ones zigzagged) and
// relative to the previous fix where that makes them small: the time, the
// latitude and longitude deltas (1e-7 degree), the speed (0.01 km/h) and the
// corridor distance (0.1 m); then a flag byte and what its flags announce.
// Only a window whose numbers all lie on the engine's grid
// (operators/fix_quantum.h) is packed, so decoding gives back exactly what
// was encoded; any other is stored as protobuf points.
//
// Format 2 (written): the time delta is zigzagged and shifted left one bit;
// the bit says whole seconds (1: the delta is in seconds; trackers report
// whole seconds, which saves a byte a fix) or milliseconds (0). The flag
// byte: bits 0-2 off every corridor, in a stop zone, at an approved
// crossing; bits 3-4 the seal number (0 none, 1 the same as the last one
// written in this window, 2 its text follows; an e-seal reports the same
// number fix after fix, which format 1 wrote out every time); bit 5 a 32-bit
// event key follows (4 bytes, little-endian); bits 6-7 the seal state 0-2,
// or 3: a varint follows holding the seal state shifted left three bits and
// the rare flags: 1 border geofence text, 2 a 64-bit key (kept from before
// keys were 32-bit, 8 bytes), 4 event id text (kept from before event keys).
// Then the key, the seal number, the geofence and the event id (texts as
// length and bytes), each when announced. About 16 bytes a fix where the
// protobuf takes about 60.
//
// Format 1 (still read): time deltas in milliseconds; the flag byte as
// PointFlag below, then the seal state as a varint, the key (kHasKey32: 4
// bytes, kHasKey: 8) and the texts the flags announce.
constexpr char kPackedFormat = 2;
constexpr char kPackedFormat1 = 1;
enum PointFlag : uint8_t {  // format 1
  kOutside = 1,
  kInStopZone = 2,
  kApprovedCrossing = 4,
  kHasSeal = 8,
  kHasGeofence = 16,
  kHasKey = 32,
  kHasEventId = 64,
  kHasKey32 = 128,  // an event key below 2^32, in 4 bytes
};
// Format 2's flag byte and rare flags.
constexpr int kSealShift = 3;
constexpr uint8_t kSealNone = 0, kSealAsBefore = 1, kSealText = 2;
constexpr uint8_t kKey32 = 32;
constexpr int kStateShift = 6;
constexpr uint8_t kStateEscape = 3;
constexpr uint64_t kRareGeofence = 1, kRareKey64 = 2, kRareEventId = 4;
constexpr int kRareShift = 3;

uint64_t Zig(uint64_t v) { return (v << 1) ^ (0 - (v >> 63)); }
uint64_t Unzig(uint64_t v) { return (v >> 1) ^ (0 - (v & 1)); }
void PutText(std::string* out, std::string_view text) {
  AppendVarint(out, text.size());
  out->append(text);
}

// Packs fixes [from, to) of `points`.
bool PackPoints(const operators::FixWindow& points, int from, int to, std::string* out) {
  using operators::QuantumOf;
  out->clear();
  out->reserve(12 + static_cast<size_t>(to - from) * 20);
  out->push_back(kPackedFormat);
  AppendVarint(out, static_cast<uint64_t>(to - from));
  uint64_t prev_time = 0, prev_lat = 0, prev_lon = 0;  // unsigned: deltas wrap instead of overflowing
  // A fix's numbers go through a buffer on the stack, appended once: at
  // most 6 varints of 10 bytes, the flags and an 8-byte key.
  char buf[6 * 10 + 1 + 8];
  std::string_view previous_seal;  // the last seal number written, if any
  bool has_previous_seal = false;
  // The fixes after the chunks are cold when the commit stores them.
  points.Prefetch(from, to);
  for (int at = from; at < to; ++at) {
    const operators::FixRef p = points.Get(at);
    int64_t lat, lon, speed, distance;
    if (!QuantumOf(p.lat(), operators::kDegreeScale, &lat) || !QuantumOf(p.lon(), operators::kDegreeScale, &lon) ||
        !QuantumOf(p.speed_kmh(), operators::kSpeedScale, &speed) ||
        !QuantumOf(p.corridor_distance_m(), operators::kDistanceScale, &distance) || p.seal_state() < 0) {
      return false;
    }
    const uint64_t time = static_cast<uint64_t>(p.fix_time_ms());
    const uint64_t delta = time - prev_time;
    const bool whole_seconds = static_cast<int64_t>(delta) % 1000 == 0;
    const uint64_t zig = Zig(whole_seconds ? static_cast<uint64_t>(static_cast<int64_t>(delta) / 1000) : delta);
    if (zig >> 63 != 0) return false;  // a delta of more than 2^62 ms: no room for the unit bit
    char* w = buf;
    w = WriteVarint(w, zig << 1 | (whole_seconds ? 1 : 0));
    w = WriteVarint(w, Zig(static_cast<uint64_t>(lat) - prev_lat));
    w = WriteVarint(w, Zig(static_cast<uint64_t>(lon) - prev_lon));
    prev_time = time, prev_lat = static_cast<uint64_t>(lat), prev_lon = static_cast<uint64_t>(lon);
    w = WriteVarint(w, Zig(static_cast<uint64_t>(speed)));
    w = WriteVarint(w, Zig(static_cast<uint64_t>(distance)));
    const uint8_t seal = p.seal_number().empty()                                       ? kSealNone
                         : has_previous_seal && previous_seal == p.seal_number() ? kSealAsBefore
                                                                                        : kSealText;
    const bool key32 = p.event_key() != 0 && p.event_key() >> 32 == 0;
    const uint64_t rare = (p.border_geofence().empty() ? 0 : kRareGeofence) |
                          (p.event_key() >> 32 != 0 ? kRareKey64 : 0) | (p.event_id().empty() ? 0 : kRareEventId);
    const auto state = static_cast<uint64_t>(p.seal_state());
    const bool escape = rare != 0 || state >= kStateEscape;
    *w++ = static_cast<char>((p.outside_corridors() ? kOutside : 0) | (p.in_stop_zone() ? kInStopZone : 0) |
                             (p.at_approved_crossing() ? kApprovedCrossing : 0) | seal << kSealShift |
                             (key32 ? kKey32 : 0) | (escape ? kStateEscape : state) << kStateShift);
    if (escape) w = WriteVarint(w, state << kRareShift | rare);
    if (key32 || (rare & kRareKey64)) {
      const int bytes = key32 ? 4 : 8;
      for (int i = 0; i < bytes; ++i) *w++ = static_cast<char>(p.event_key() >> (8 * i));
    }
    out->append(buf, static_cast<size_t>(w - buf));
    if (seal != kSealNone) previous_seal = p.seal_number(), has_previous_seal = true;
    if (seal == kSealText) PutText(out, p.seal_number());
    if (rare & kRareGeofence) PutText(out, p.border_geofence());
    if (rare & kRareEventId) PutText(out, p.event_id());
  }
  return true;
}

class Reader {
 public:
  explicit Reader(std::string_view bytes) : p_(bytes.data()), end_(bytes.data() + bytes.size()) {}
  bool ok() const { return ok_; }
  bool done() const { return p_ == end_; }
  size_t left() const { return static_cast<size_t>(end_ - p_); }
  uint8_t Byte() {
    if (p_ == end_) return Fail();
    return static_cast<uint8_t>(*p_++);
  }
  uint64_t Varint() {
    uint64_t v = 0;
    return ReadVarint(p_, end_, kMaxVarintBytes, &v) ? v : Fail();
  }
  uint64_t Fixed(int bytes) {
    if (left() < static_cast<size_t>(bytes)) return Fail();
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(*p_++)) << (8 * i);
    return v;
  }
  std::string Text() {
    const uint64_t n = Varint();
    if (!ok_ || n > left()) {
      Fail();
      return {};
    }
    std::string s(p_, n);
    p_ += n;
    return s;
  }

 private:
  uint8_t Fail() {
    ok_ = false;
    p_ = end_;
    return 0;
  }
  const char* p_;
  const char* end_;
  bool ok_ = true;
};

bool UnpackPoints(std::string_view bytes, operators::MutableFixWindow* points) {
  Reader r(bytes);
  const char format = static_cast<char>(r.Byte());
  if (format != kPackedFormat && format != kPackedFormat1) return false;
  const uint64_t n = r.Varint();
  if (!r.ok() || n > r.left() / 6) return false;  // a fix takes at least 6 bytes
  uint64_t time = 0, lat = 0, lon = 0;
  int previous_seal = -1;  // the fix whose seal number was the last one read
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    const uint64_t t = r.Varint();
    if (format == kPackedFormat1) {
      time += Unzig(t);
    } else {
      const uint64_t delta = Unzig(t >> 1);
      time += t & 1 ? delta * 1000 : delta;  // unsigned: wraps as the encoder's int64 arithmetic did
    }
    lat += Unzig(r.Varint());
    lon += Unzig(r.Varint());
    const int64_t speed = static_cast<int64_t>(Unzig(r.Varint()));
    const int64_t distance = static_cast<int64_t>(Unzig(r.Varint()));
    const uint8_t flags = r.Byte();
    uint64_t seal_state, rare = 0, key_bytes = 0;
    uint8_t seal = kSealNone;
    if (format == kPackedFormat1) {
      seal_state = r.Varint();
      key_bytes = flags & kHasKey ? 8 : flags & kHasKey32 ? 4 : 0;
      seal = flags & kHasSeal ? kSealText : kSealNone;
      rare = (flags & kHasGeofence ? kRareGeofence : 0) | (flags & kHasEventId ? kRareEventId : 0);
    } else {
      seal_state = flags >> kStateShift;
      if (seal_state == kStateEscape) {
        const uint64_t v = r.Varint();
        seal_state = v >> kRareShift;
        rare = v & ((1u << kRareShift) - 1);
      }
      seal = (flags >> kSealShift) & 3;
      if (seal > kSealText || ((flags & kKey32) && (rare & kRareKey64))) return false;
      key_bytes = flags & kKey32 ? 4 : rare & kRareKey64 ? 8 : 0;
    }
    if (seal_state > 0x7fffffff) return false;
    const int index = points->size();
    operators::FixRecord* p = points->Insert(index);
    p->fix_time_ms = static_cast<int64_t>(time);
    p->lat = static_cast<double>(static_cast<int64_t>(lat)) / operators::kDegreeScale;
    p->lon = static_cast<double>(static_cast<int64_t>(lon)) / operators::kDegreeScale;
    p->speed_kmh = static_cast<double>(speed) / operators::kSpeedScale;
    p->corridor_distance_m = static_cast<double>(distance) / operators::kDistanceScale;
    p->flags = (flags & kOutside ? operators::kFixOutsideCorridors : 0) |
               (flags & kInStopZone ? operators::kFixInStopZone : 0) |
               (flags & kApprovedCrossing ? operators::kFixAtApprovedCrossing : 0);
    p->seal_state = static_cast<int32_t>(seal_state);
    if (key_bytes != 0) p->event_key = r.Fixed(static_cast<int>(key_bytes));
    if (seal == kSealAsBefore) {
      if (previous_seal < 0) return false;  // "as before" with nothing before
      const uint32_t offset = points->At(previous_seal)->seal_number;
      points->At(index)->seal_number = offset;
    } else if (seal == kSealText) {
      points->SetSealNumber(index, r.Text());
    }
    if (seal != kSealNone) previous_seal = index;
    if (rare & kRareGeofence) points->SetBorderGeofence(index, r.Text());
    if (rare & kRareEventId) points->SetEventId(index, r.Text());
  }
  return r.ok() && r.done();
}

}  // namespace

// M by protobuf's own encoder: the fields moved into a message of their own
// and back. The reference the hand encoding is checked against, and the way
// for what it does not cover.
bool SerializeMovementByProtobuf(v1::ContainerState& s, int from, const ContainerStateCodec::Meta* meta,
                                 std::string* out) {
  if (s.has_gps() && s.gps().points_size() > 0) operators::MovePointsToWindow(s.mutable_gps());
  v1::ContainerState m;
  if (s.has_gps()) m.set_allocated_gps(s.release_gps());
  // The window goes packed (or, off the grid, as protobuf points); the
  // in-memory records are moved aside and back.
  std::string fixes_aside, texts_aside;
  // Off the grid: protobuf points made for the write and dropped after it.
  google::protobuf::RepeatedPtrField<v1::GpsPoint> off_grid;
  const int n = m.has_gps() ? operators::FixWindow(m.gps()).size() : 0;
  if (m.has_gps()) {
    v1::GpsTrack* g = m.mutable_gps();
    std::string packed;
    if (n > from && PackPoints(operators::FixWindow(*g), from, n, &packed)) {
      g->set_packed_points(std::move(packed));
    } else if (n > from) {
      operators::ToPoints(*g, from, n, &off_grid);
      g->mutable_points()->Swap(&off_grid);
    }
    g->mutable_live_fixes()->swap(fixes_aside);
    g->mutable_live_texts()->swap(texts_aside);
  }
  const bool chunked = meta != nullptr && meta->chunk_next > meta->chunk_first;
  if (chunked) {
    v1::GpsTrack* g = m.mutable_gps();
    g->set_chunk_first(meta->chunk_first);
    g->set_chunk_next(meta->chunk_next);
    g->set_chunk_skip(meta->chunk_skip);
    g->set_chunked_through_ms(meta->chunked_through_ms);
  }
  m.mutable_pending_items()->swap(*s.mutable_pending_items());
  m.mutable_pending()->Swap(s.mutable_pending());  // empty but in a state built by hand
  m.set_first_event_ms(s.first_event_ms());
  m.set_last_event_ms(s.last_event_ms());
  m.set_expires_at_ms(s.expires_at_ms());
  m.set_evaluated_through_ms(s.evaluated_through_ms());
  m.set_progress_ms(s.progress_ms());
  m.set_released_before_ms(s.released_before_ms());
  m.set_due_ms(s.due_ms());
  m.set_evaluation_part_stored(s.evaluation_part_stored());
  out->clear();
  const bool ok = m.SerializeToString(out);
  if (m.has_gps()) {
    v1::GpsTrack* g = m.mutable_gps();
    g->mutable_live_fixes()->swap(fixes_aside);
    g->mutable_live_texts()->swap(texts_aside);
    g->mutable_points()->Swap(&off_grid);
    g->clear_packed_points();
  }
  if (chunked) {
    v1::GpsTrack* g = m.mutable_gps();
    g->clear_chunk_first();
    g->clear_chunk_next();
    g->clear_chunk_skip();
    g->clear_chunked_through_ms();
  }
  if (m.has_gps()) s.set_allocated_gps(m.release_gps());
  s.mutable_pending_items()->swap(*m.mutable_pending_items());
  s.mutable_pending()->Swap(m.mutable_pending());
  return ok;
}

namespace {

// Protobuf's wire format, for the hand encoding of M: a varint field is
// left out when 0 and a bytes field when empty, as proto3 does.
// A tag and a varint go through one buffer on the stack.
void PutTagged(std::string* out, uint32_t field, uint32_t wire_type, uint64_t v) {
  char buf[20];
  char* w = WriteVarint(buf, field << 3 | wire_type);
  out->append(buf, static_cast<size_t>(WriteVarint(w, v) - buf));
}
void PutVarintField(std::string* out, uint32_t field, uint64_t v) {
  if (v != 0) PutTagged(out, field, 0, v);
}
void PutBytesField(std::string* out, uint32_t field, std::string_view bytes) {
  if (bytes.empty()) return;
  PutTagged(out, field, 2, bytes.size());
  out->append(bytes);
}
uint64_t Wire(int64_t v) { return static_cast<uint64_t>(v); }  // int64: two's complement, 10 bytes when negative

}  // namespace

// M with the window's fixes from `from` on (those before it are in the
// chunks `meta` lists; none when meta is null), encoded by hand: the same
// bytes as protobuf's encoder gives (fields in number order, defaults left
// out; checked in state_parts_test), without moving the fields into a
// message of their own, sizing it first, and moving them back. What it does
// not cover goes through SerializeMovementByProtobuf: a window off the grid
// (protobuf points), pending items listed as messages, unknown fields.
bool SerializeMovementFrom(v1::ContainerState& s, int from, const ContainerStateCodec::Meta* meta,
                           std::string* out) {
  // A window built as protobuf points (by hand, not by the engine or a
  // load) is taken into records first.
  if (s.has_gps() && s.gps().points_size() > 0) operators::MovePointsToWindow(s.mutable_gps());
  if (s.pending_size() > 0 || (s.has_gps() && !s.gps().GetReflection()->GetUnknownFields(s.gps()).empty())) {
    return SerializeMovementByProtobuf(s, from, meta, out);
  }
  out->clear();
  const bool chunked = meta != nullptr && meta->chunk_next > meta->chunk_first;
  if (s.has_gps() || chunked) {  // the chunks are listed in the track
    const v1::GpsTrack& g = s.gps();
    const operators::FixWindow window(g);
    const int n = window.size();
    thread_local std::string packed;  // buffers kept from one call to the next
    if (n > from && !PackPoints(window, from, n, &packed)) return SerializeMovementByProtobuf(s, from, meta, out);
    thread_local std::string track;  // the track's bytes, which M holds after their length
    track.clear();
    PutVarintField(&track, v1::GpsTrack::kFirstFixMsFieldNumber, Wire(g.first_fix_ms()));
    PutVarintField(&track, v1::GpsTrack::kLastFixMsFieldNumber, Wire(g.last_fix_ms()));
    PutVarintField(&track, v1::GpsTrack::kPointsSeenFieldNumber, g.points_seen());
    PutBytesField(&track, v1::GpsTrack::kLastTrackerIdFieldNumber, g.last_tracker_id());
    PutVarintField(&track, v1::GpsTrack::kFirstCorridorFixMsFieldNumber, Wire(g.first_corridor_fix_ms()));
    PutBytesField(&track, v1::GpsTrack::kPackedPointsFieldNumber, n > from ? std::string_view(packed) : g.packed_points());
    PutVarintField(&track, v1::GpsTrack::kProgressMsFieldNumber, Wire(g.progress_ms()));
    PutVarintField(&track, v1::GpsTrack::kSealsCheckedThroughMsFieldNumber, Wire(g.seals_checked_through_ms()));
    PutVarintField(&track, v1::GpsTrack::kSealsCheckedVersionFieldNumber, g.seals_checked_version());
    PutVarintField(&track, v1::GpsTrack::kSealsCheckedDeclaredMsFieldNumber, Wire(g.seals_checked_declared_ms()));
    PutVarintField(&track, v1::GpsTrack::kFinalBeforeMsFieldNumber, Wire(g.final_before_ms()));
    PutVarintField(&track, v1::GpsTrack::kChunkFirstFieldNumber, chunked ? meta->chunk_first : g.chunk_first());
    PutVarintField(&track, v1::GpsTrack::kChunkNextFieldNumber, chunked ? meta->chunk_next : g.chunk_next());
    PutVarintField(&track, v1::GpsTrack::kChunkSkipFieldNumber, chunked ? meta->chunk_skip : g.chunk_skip());
    PutVarintField(&track, v1::GpsTrack::kChunkedThroughMsFieldNumber,
                   Wire(chunked ? meta->chunked_through_ms : g.chunked_through_ms()));
    // A track that is there is written even when empty, as protobuf does.
    out->reserve(track.size() + 96 + s.pending_items().size());
    PutTagged(out, v1::ContainerState::kGpsFieldNumber, 2, track.size());
    out->append(track);
  }
  PutVarintField(out, v1::ContainerState::kFirstEventMsFieldNumber, Wire(s.first_event_ms()));
  PutVarintField(out, v1::ContainerState::kLastEventMsFieldNumber, Wire(s.last_event_ms()));
  PutVarintField(out, v1::ContainerState::kExpiresAtMsFieldNumber, Wire(s.expires_at_ms()));
  PutVarintField(out, v1::ContainerState::kEvaluatedThroughMsFieldNumber, Wire(s.evaluated_through_ms()));
  PutVarintField(out, v1::ContainerState::kProgressMsFieldNumber, Wire(s.progress_ms()));
  PutVarintField(out, v1::ContainerState::kReleasedBeforeMsFieldNumber, Wire(s.released_before_ms()));
  PutVarintField(out, v1::ContainerState::kDueMsFieldNumber, Wire(s.due_ms()));
  PutVarintField(out, v1::ContainerState::kEvaluationPartStoredFieldNumber, s.evaluation_part_stored() ? 1 : 0);
  PutBytesField(out, v1::ContainerState::kPendingItemsFieldNumber, s.pending_items());
  return true;
}

namespace {

// Brings the stored chunks up to date with the window before M is written:
// chunks whose fixes have all left the window are deleted, and the oldest
// final fixes not yet chunked are chunked while a whole chunk of them is
// there. Returns the index of the first fix M keeps; false when the window
// is not what the chunks say (then the caller stores it whole).
bool UpdateChunks(std::string_view key, const v1::ContainerState& s, ContainerStateCodec::Meta* meta,
                  std::vector<state::PartitionStore::Write>* out, int* keep_from) {
  const operators::FixWindow points(s.gps());
  const int n = points.size();
  int chunked = 0;  // the window's fixes stored in chunks: its first ones
  if (meta->chunk_next > meta->chunk_first) {
    const uint64_t stored = (meta->chunk_next - meta->chunk_first) * kWindowChunkFixes - meta->chunk_skip;
    // Those at or before chunked_through_ms, found by halving the window's
    // first stored + 1 (it is in time order): a scan from the start read
    // every chunked fix, cold at the commit, at every save.
    int hi = static_cast<int>(std::min<uint64_t>(static_cast<uint64_t>(n), stored + 1));
    while (chunked < hi) {
      const int mid = chunked + (hi - chunked) / 2;
      if (points.Get(mid).fix_time_ms() <= meta->chunked_through_ms) {
        chunked = mid + 1;
      } else {
        hi = mid;
      }
    }
    if (static_cast<uint64_t>(chunked) > stored) return false;
    // The window drops fixes from its start only: those dropped since.
    meta->chunk_skip += static_cast<uint32_t>(stored - static_cast<uint64_t>(chunked));
    while (meta->chunk_skip >= static_cast<uint32_t>(kWindowChunkFixes) && meta->chunk_first < meta->chunk_next) {
      out->push_back({WindowChunkKey(key, meta->chunk_first), std::nullopt});
      ++meta->chunk_first;
      meta->chunk_skip -= kWindowChunkFixes;
    }
    if (meta->chunk_first == meta->chunk_next) meta->chunk_skip = 0;
  }
  // New chunks: whole ones, of final fixes, ending between two fix times
  // (so "at or before chunked_through_ms" says which fixes are chunked).
  const int64_t final_before = s.gps().final_before_ms();
  std::string packed;
  // No more chunks than a load accepts: past that, M keeps the fixes.
  while (n - chunked >= kWindowChunkFixes && meta->chunk_next - meta->chunk_first < kMaxWindowChunks) {
    const int last = chunked + kWindowChunkFixes - 1;
    const int64_t t = points.Get(last).fix_time_ms();
    if (t >= final_before || (last + 1 < n && points.Get(last + 1).fix_time_ms() == t)) break;
    if (!PackPoints(points, chunked, last + 1, &packed)) break;  // off the grid: M keeps them
    if (meta->chunk_next == 0) {
      // Numbered from the first chunked fix's second: a later container of
      // this number never lists the chunks of an earlier one.
      const int64_t first_s = points.Get(chunked).fix_time_ms() / 1000;
      meta->chunk_first = meta->chunk_next = static_cast<uint64_t>(std::max<int64_t>(1, first_s));
    }
    out->push_back({WindowChunkKey(key, meta->chunk_next), std::move(packed)});
    packed = std::string();
    ++meta->chunk_next;
    meta->chunked_through_ms = t;
    chunked = last + 1;
  }
  *keep_from = chunked;
  return true;
}

}  // namespace

bool SerializeMovement(v1::ContainerState& s, std::string* out) { return SerializeMovementFrom(s, 0, nullptr, out); }

void PrefetchState(const v1::ContainerState& s, int step) {
  if (step == 0) {
    if (s.has_gps()) {
      const char* track = reinterpret_cast<const char*>(&s.gps());
      for (size_t line = 0; line < sizeof(v1::GpsTrack); line += 64) __builtin_prefetch(track + line);
    }
    __builtin_prefetch(&s.pending_items());
    // What an evaluation reads of D and E: the manifest versions' and the
    // fired indicators' arrays of pointers.
    if (!s.manifest_versions().empty()) __builtin_prefetch(s.manifest_versions().data());
    if (!s.fired().empty()) __builtin_prefetch(s.fired().data());
    return;
  }
  if (step == 1) {
    // The newest manifest version (whose declared time and parties every
    // evaluation reads) and the fired indicators themselves.
    if (!s.manifest_versions().empty()) {
      const char* m = reinterpret_cast<const char*>(&s.manifest_versions(s.manifest_versions_size() - 1));
      for (size_t line = 0; line < sizeof(v1::Manifest); line += 64) __builtin_prefetch(m + line);
    }
    for (const v1::FiredIndicator& f : s.fired()) __builtin_prefetch(&f);
    __builtin_prefetch(&s.container_number());
    if (s.has_gps()) {
      __builtin_prefetch(&s.gps().live_fixes());
      __builtin_prefetch(&s.gps().live_texts());
      __builtin_prefetch(&s.gps().last_tracker_id());
    }
    // The pending items are read from the front (evaluation) and the back
    // (a join): both ends.
    const std::string& pending = s.pending_items();
    if (!pending.empty()) {
      __builtin_prefetch(pending.data());
      __builtin_prefetch(pending.data() + pending.size() - 1);
    }
    return;
  }
  if (step == 3) {
    // The ids' bytes, and the consignee's name.
    for (const v1::FiredIndicator& f : s.fired()) __builtin_prefetch(f.id().data());
    if (!s.manifest_versions().empty()) {
      const v1::Manifest& m = s.manifest_versions(s.manifest_versions_size() - 1);
      if (m.has_consignee()) __builtin_prefetch(&m.consignee().name());
    }
    return;
  }
  // The fired indicators' ids and the newest version's consignee.
  for (const v1::FiredIndicator& f : s.fired()) __builtin_prefetch(&f.id());
  if (!s.manifest_versions().empty()) {
    const v1::Manifest& m = s.manifest_versions(s.manifest_versions_size() - 1);
    if (m.has_consignee()) __builtin_prefetch(&m.consignee());
  }
  if (!s.has_gps()) return;
  // Everyone reads the window's newest fixes: a join's duplicate check and
  // insert, the evaluation's runs backwards from the latest fix, a save's
  // binary search and packing of the fixes not yet chunked. So the header
  // (the count of departed records) and the last kb, where those are; the
  // texts of the newest fixes are at the end of theirs too.
  const std::string& fixes = s.gps().live_fixes();
  if (!fixes.empty()) {
    __builtin_prefetch(fixes.data());
    const size_t from = fixes.size() > 1024 ? fixes.size() - 1024 : 64;
    for (size_t at = from; at < fixes.size(); at += 64) __builtin_prefetch(fixes.data() + at);
    __builtin_prefetch(fixes.data() + fixes.size() - 1);
  }
  const std::string& texts = s.gps().live_texts();
  if (!texts.empty()) {
    __builtin_prefetch(texts.data());
    if (texts.size() > 64) __builtin_prefetch(texts.data() + texts.size() - 1);
  }
}

void ContainerStateCodec::PrefetchForSave(const v1::ContainerState& value, int step) { PrefetchState(value, step); }

void OrderForChangelog(std::vector<state::PartitionStore::Write>* writes) {
  auto rank = [](const state::PartitionStore::Write& w) {
    return !IsWindowChunkKey(w.key) ? 1 : w.value ? 0 : 2;
  };
  std::stable_sort(writes->begin(), writes->end(), [&](const auto& a, const auto& b) { return rank(a) < rank(b); });
}

std::string WindowChunkKey(std::string_view key, uint64_t number) {
  std::string k;
  k.reserve(key.size() + 2 + 20);
  k.append(key).append(kWindowChunkInfix).append(std::to_string(number));
  return k;
}

bool SerializeEvaluation(v1::ContainerState& s, std::string* out) {
  v1::ContainerState e;
  SwapEvaluation(s, e);
  out->clear();
  const bool ok = e.SerializeToString(out);
  SwapEvaluation(s, e);
  return ok;
}

bool SerializeDeclaration(v1::ContainerState& s, std::string* out) {
  // Moves the declaration's fields between two states (O(1), no copies).
  auto swap = [](v1::ContainerState& a, v1::ContainerState& b) {
    a.mutable_container_number()->swap(*b.mutable_container_number());
    a.mutable_manifest_versions()->Swap(b.mutable_manifest_versions());
    a.mutable_manifest_history()->Swap(b.mutable_manifest_history());
    a.mutable_scans()->Swap(b.mutable_scans());
    a.mutable_outcomes()->Swap(b.mutable_outcomes());
  };
  v1::ContainerState d;
  swap(s, d);
  out->clear();
  const bool ok = d.SerializeToString(out);
  swap(s, d);
  return ok;
}

Result<bool> ContainerStateCodec::Load(const state::PartitionStore& store, std::string_view key,
                                       v1::ContainerState* value, Meta* meta) {
  Result<std::optional<std::string>> movement = store.Get(key);
  if (!movement.ok()) return movement.error();
  if (!movement->has_value()) return false;
  if (!value->ParseFromString(**movement)) {
    return Error{Errc::kFatal, "the stored value (" + std::to_string((*movement)->size()) + " bytes) does not decode"};
  }
  // A whole value (format 1, or written by an older worker after a newer
  // one: a D key beside it is then stale) holds the container number, which
  // an M part never does: it is the state, and the next write stores both
  // parts again.
  // Unknown (an E may be stored beside a value that is not to be joined
  // with it): the next save writes E, or deletes it when there is none.
  meta->evaluation_stored = true;
  meta->evaluation_size = 0;
  meta->evaluation_hash = 0;
  meta->evaluation_unverified = true;
  if (!value->container_number().empty()) {
    meta->declaration_stored = false;
  } else {
    // An M that holds what evaluation keeps was written before E had a key
    // of its own: it is the evaluation (an E beside it would be stale). Else
    // M says whether an E is stored: an E key it does not vouch for (left
    // by a crash part-way through a container's deletes under
    // at-least-once) is never merged in, and most loads need no third read.
    const bool evaluation_in_m = value->fired_size() > 0 || value->has_alerts();
    const bool evaluation_listed = value->evaluation_part_stored();
    value->clear_evaluation_part_stored();
    Result<std::optional<std::string>> declaration = store.Get(DeclarationKey(key));
    if (!declaration.ok()) return declaration.error();
    meta->declaration_stored = declaration->has_value();
    // The parts' fields are disjoint: merging the bytes joins them.
    if (meta->declaration_stored && !value->MergeFromString(**declaration)) {
      return Error{Errc::kFatal, "the stored declaration part (" + std::to_string((*declaration)->size()) +
                                     " bytes) does not decode"};
    }
    if (!evaluation_in_m) {
      meta->evaluation_stored = false;
      meta->evaluation_unverified = false;
    }
    if (!evaluation_in_m && evaluation_listed) {
      Result<std::optional<std::string>> evaluation = store.Get(EvaluationKey(key));
      if (!evaluation.ok()) return evaluation.error();
      meta->evaluation_stored = evaluation->has_value();
      if (evaluation->has_value()) {
        if (!value->MergeFromString(**evaluation)) {
          return Error{Errc::kFatal, "the stored evaluation part (" + std::to_string((*evaluation)->size()) +
                                         " bytes) does not decode"};
        }
        meta->evaluation_size = static_cast<uint32_t>((*evaluation)->size());
        meta->evaluation_hash = std::hash<std::string_view>{}(**evaluation);
      }
    }
  }
  if (value->has_gps()) {
    v1::GpsTrack* track = value->mutable_gps();
    meta->chunk_first = track->chunk_first();
    meta->chunk_next = track->chunk_next();
    meta->chunk_skip = track->chunk_skip();
    meta->chunked_through_ms = track->chunked_through_ms();
    track->clear_chunk_first();
    track->clear_chunk_next();
    track->clear_chunk_skip();
    track->clear_chunked_through_ms();
    // The window as stored: chunks, then the packed fixes or protobuf points.
    // (A window of protobuf points alone is what states stored before the
    // compact encoding hold.)
    track->clear_live_fixes();
    track->clear_live_texts();
    operators::MutableFixWindow window(track);
    const bool chunked = meta->chunk_next > meta->chunk_first;
    if (!chunked) {
      meta->chunk_skip = 0;
      meta->chunked_through_ms = 0;
    }
    if (meta->chunk_next >= (uint64_t{1} << 62)) {
      return Error{Errc::kFatal, "the stored window's chunk number " + std::to_string(meta->chunk_next) +
                                     " is out of range"};
    }
    if (chunked) {
      if (meta->chunk_next - meta->chunk_first > kMaxWindowChunks ||
          meta->chunk_skip >= static_cast<uint32_t>(kWindowChunkFixes)) {
        return Error{Errc::kFatal, "the stored window lists chunks " + std::to_string(meta->chunk_first) + " to " +
                                       std::to_string(meta->chunk_next) + " skipping " +
                                       std::to_string(meta->chunk_skip) + ", more than a window holds"};
      }
      // Read together: neighbouring keys.
      std::vector<std::string> chunk_keys;
      for (uint64_t n = meta->chunk_first; n < meta->chunk_next; ++n) chunk_keys.push_back(WindowChunkKey(key, n));
      auto chunks = store.GetMany(chunk_keys);
      if (!chunks.ok()) return chunks.error();
      for (size_t i = 0; i < chunk_keys.size(); ++i) {
        const std::optional<std::string>& chunk = (*chunks)[i];
        if (!chunk) return Error{Errc::kFatal, "the window chunk \"" + chunk_keys[i] + "\" is missing"};
        const int before = window.size();
        if (!UnpackPoints(*chunk, &window) || window.size() - before != kWindowChunkFixes) {
          return Error{Errc::kFatal, "the window chunk \"" + chunk_keys[i] + "\" (" + std::to_string(chunk->size()) +
                                         " bytes) does not decode"};
        }
      }
      if (meta->chunk_skip > 0) window.EraseFront(static_cast<int>(meta->chunk_skip));
    }
    if (!track->packed_points().empty() && !UnpackPoints(track->packed_points(), &window)) {
      return Error{Errc::kFatal, "the stored GPS window (" + std::to_string(track->packed_points().size()) +
                                     " bytes) does not decode"};
    }
    track->clear_packed_points();
    // A window kept as protobuf points (off the grid) follows its chunks.
    operators::MovePointsToWindow(track);
  }
  if (value->pending_items().size() % operators::PendingItems::kRecordBytes != 0) {
    return Error{Errc::kFatal, "the stored pending items (" + std::to_string(value->pending_items().size()) +
                                   " bytes) are not whole records"};
  }
  // Stored before pending_items: its items move there (and are stored so
  // with the next write of M).
  operators::MovePendingToItems(value);
  Shape(*value, meta->shape);
  return true;
}

bool ContainerStateCodec::Save(std::string_view key, v1::ContainerState& value, uint32_t dirty_parts, Meta* meta,
                               std::vector<state::PartitionStore::Write>* out) {
  // A state put with its window as protobuf points (built by hand, not by
  // the engine or a load) keeps it as records from here on.
  if (value.has_gps() && value.gps().points_size() > 0) operators::MovePointsToWindow(value.mutable_gps());
  uint32_t shape[4];
  Shape(value, shape);
  if (!meta->declaration_stored || !std::equal(shape, shape + 4, meta->shape)) {
    dirty_parts |= kDeclarationPart;
  }
  // E, when it may have changed: written when its bytes are not the stored
  // ones, deleted when nothing is left in it. M lists whether it is stored,
  // so M is written too when that changes.
  std::optional<state::PartitionStore::Write> evaluation_write;
  const bool had_evaluation = meta->evaluation_stored;
  std::string evaluation;
  if (!(dirty_parts & kEvaluationPart) && !meta->evaluation_unverified) {
    // Unchanged since it was loaded or stored.
  } else if (!SerializeEvaluation(value, &evaluation)) {
    return false;
  } else if (evaluation.empty()) {
    if (meta->evaluation_stored) evaluation_write = {EvaluationKey(key), std::nullopt};
    meta->evaluation_stored = false;
  } else {
    const uint64_t hash = std::hash<std::string_view>{}(evaluation);
    if (!meta->evaluation_stored || meta->evaluation_size != evaluation.size() || meta->evaluation_hash != hash) {
      meta->evaluation_stored = true;
      meta->evaluation_size = static_cast<uint32_t>(evaluation.size());
      meta->evaluation_hash = hash;
      evaluation_write = {EvaluationKey(key), std::move(evaluation)};
    }
  }
  meta->evaluation_unverified = false;
  if (meta->evaluation_stored != had_evaluation) dirty_parts |= kMovementPart;
  if (dirty_parts & kMovementPart) {
    int keep_from = 0;
    if (!UpdateChunks(key, value, meta, out, &keep_from)) {
      // The window is not what the chunks say: stored whole in M instead.
      for (uint64_t n = meta->chunk_first; n < meta->chunk_next; ++n) {
        out->push_back({WindowChunkKey(key, n), std::nullopt});
      }
      meta->chunk_first = meta->chunk_next;
      meta->chunk_skip = 0;
    }
    std::string bytes;
    value.set_evaluation_part_stored(meta->evaluation_stored);
    const bool ok = SerializeMovementFrom(value, keep_from, meta, &bytes);
    value.clear_evaluation_part_stored();
    if (!ok) return false;
    out->push_back({std::string(key), std::move(bytes)});
  }
  if (dirty_parts & kDeclarationPart) {
    std::string bytes;
    if (!SerializeDeclaration(value, &bytes)) return false;
    out->push_back({DeclarationKey(key), std::move(bytes)});
    meta->declaration_stored = true;
    std::copy(shape, shape + 4, meta->shape);
  }
  if (evaluation_write) out->push_back(std::move(*evaluation_write));
  return true;
}

void ContainerStateCodec::Replace(std::string_view key, Meta* meta, std::vector<state::PartitionStore::Write>* out) {
  // The chunks of the state erased: deleted, and numbering goes on after
  // them (a new chunk never shares a key with a delete in the same batch).
  for (uint64_t n = meta->chunk_first; n < meta->chunk_next; ++n) {
    out->push_back({WindowChunkKey(key, n), std::nullopt});
  }
  meta->chunk_first = meta->chunk_next;
  meta->chunk_skip = 0;
  meta->chunked_through_ms = 0;
}

void ContainerStateCodec::Delete(std::string_view key, Meta* meta, std::vector<state::PartitionStore::Write>* out) {
  // Every part's key, whatever was loaded: a D or E key left beside a whole
  // value would never be read or expired.
  out->push_back({std::string(key), std::nullopt});
  out->push_back({DeclarationKey(key), std::nullopt});
  out->push_back({EvaluationKey(key), std::nullopt});
  // The window's chunks, as the loaded M listed them (the caller loads a
  // state before deleting it).
  for (uint64_t n = meta->chunk_first; n < meta->chunk_next; ++n) {
    out->push_back({WindowChunkKey(key, n), std::nullopt});
  }
  meta->declaration_stored = false;
  meta->evaluation_stored = false;
  meta->evaluation_unverified = false;
  meta->chunk_first = meta->chunk_next = 0;
  meta->chunk_skip = 0;
  meta->chunked_through_ms = 0;
}

}  // namespace boxwatch::pipeline
