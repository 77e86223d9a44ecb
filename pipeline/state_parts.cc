#include "pipeline/state_parts.h"

#include <functional>
#include <string_view>
#include <utility>

#include "operators/fix_prefetch.h"
#include "operators/fix_quantum.h"

namespace boxwatch::pipeline {
namespace {

std::string DeclarationKey(std::string_view key) {
  std::string k;
  k.reserve(key.size() + kDeclarationSuffix.size());
  k.append(key).append(kDeclarationSuffix);
  return k;
}

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


// The compact encoding of a GPS window (GpsTrack.packed_points): format
// byte 1, the count, then per fix, as varints (signed ones zigzagged) and
// relative to the previous fix where that makes them small: time delta
// (ms), latitude and longitude deltas (1e-7 degree), speed (0.01 km/h),
// corridor distance (0.1 m), a flag byte, the seal state, then the event key
// (4 bytes, little-endian; 8 for a key stored before keys were 32-bit) and the seal number, border geofence and event id
// (length and bytes) when their flags say so. Format 2 writes a seal number
// equal to the previous fix's as length 0 (an e-seal reports the same number
// in almost every fix: 9 of a fix's 27 bytes in format 1); format 1, which
// wrote every seal number out, is still read. About 19 bytes a fix where the
// protobuf takes about 60. Only a window whose numbers all lie on the
// engine's grid (operators/fix_quantum.h) is packed, so decoding gives back
// exactly what was encoded; any other is stored as protobuf points.
constexpr char kPackedFormat = 2;
constexpr char kPackedFormatWholeSeals = 1;  // read, no longer written
enum PointFlag : uint8_t {
  kOutside = 1,
  kInStopZone = 2,
  kApprovedCrossing = 4,
  kHasSeal = 8,
  kHasGeofence = 16,
  kHasKey = 32,
  kHasEventId = 64,
  kHasKey32 = 128,  // an event key below 2^32, in 4 bytes
};

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}
uint64_t Zig(uint64_t v) { return (v << 1) ^ (0 - (v >> 63)); }
uint64_t Unzig(uint64_t v) { return (v >> 1) ^ (0 - (v & 1)); }
void PutText(std::string* out, const std::string& text) {
  PutVarint(out, text.size());
  out->append(text);
}

// Writes `v` as a varint at `p`; returns the end.
char* Varint(char* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

bool PackPoints(const google::protobuf::RepeatedPtrField<v1::GpsPoint>& points, std::string* out) {
  using operators::QuantumOf;
  out->clear();
  out->reserve(12 + static_cast<size_t>(points.size()) * 24);
  out->push_back(kPackedFormat);
  PutVarint(out, static_cast<uint64_t>(points.size()));
  uint64_t prev_time = 0, prev_lat = 0, prev_lon = 0;  // unsigned: deltas wrap instead of overflowing
  // A fix's numbers go through a buffer on the stack, appended once: at
  // most 7 varints of 10 bytes, the flags and an 8-byte key.
  char buf[7 * 10 + 1 + 8];
  const std::string* previous_seal = nullptr;  // the last fix's seal number written, if any
  operators::PrefetchFixes(points);
  for (int at = 0; at < points.size(); ++at) {
    const v1::GpsPoint& p = points.Get(at);
    // The seal number is an object of its own: asked for a few fixes ahead.
    if (at + 8 < points.size()) __builtin_prefetch(&points.Get(at + 8).seal_number());
    int64_t lat, lon, speed, distance;
    if (!QuantumOf(p.lat(), operators::kDegreeScale, &lat) || !QuantumOf(p.lon(), operators::kDegreeScale, &lon) ||
        !QuantumOf(p.speed_kmh(), operators::kSpeedScale, &speed) ||
        !QuantumOf(p.corridor_distance_m(), operators::kDistanceScale, &distance) || p.seal_state() < 0) {
      return false;
    }
    const uint64_t time = static_cast<uint64_t>(p.fix_time_ms());
    char* w = buf;
    w = Varint(w, Zig(time - prev_time));
    w = Varint(w, Zig(static_cast<uint64_t>(lat) - prev_lat));
    w = Varint(w, Zig(static_cast<uint64_t>(lon) - prev_lon));
    prev_time = time, prev_lat = static_cast<uint64_t>(lat), prev_lon = static_cast<uint64_t>(lon);
    w = Varint(w, Zig(static_cast<uint64_t>(speed)));
    w = Varint(w, Zig(static_cast<uint64_t>(distance)));
    const uint8_t flags = (p.outside_corridors() ? kOutside : 0) | (p.in_stop_zone() ? kInStopZone : 0) |
                          (p.at_approved_crossing() ? kApprovedCrossing : 0) |
                          (p.seal_number().empty() ? 0 : kHasSeal) | (p.border_geofence().empty() ? 0 : kHasGeofence) |
                          (p.event_key() == 0 ? 0 : p.event_key() >> 32 == 0 ? kHasKey32 : kHasKey) |
                          (p.event_id().empty() ? 0 : kHasEventId);
    *w++ = static_cast<char>(flags);
    w = Varint(w, static_cast<uint64_t>(p.seal_state()));
    if (flags & (kHasKey | kHasKey32)) {
      const int bytes = flags & kHasKey ? 8 : 4;
      for (int i = 0; i < bytes; ++i) *w++ = static_cast<char>(p.event_key() >> (8 * i));
    }
    out->append(buf, static_cast<size_t>(w - buf));
    if (flags & kHasSeal) {
      // Never empty when set (kHasSeal), so length 0 is free to mean "as before".
      if (previous_seal != nullptr && *previous_seal == p.seal_number()) {
        out->push_back(0);
      } else {
        PutText(out, p.seal_number());
      }
      previous_seal = &p.seal_number();
    }
    if (flags & kHasGeofence) PutText(out, p.border_geofence());
    if (flags & kHasEventId) PutText(out, p.event_id());
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
    for (int shift = 0; shift < 64 && p_ != end_; shift += 7) {
      const uint8_t b = static_cast<uint8_t>(*p_++);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    return Fail();
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

bool UnpackPoints(std::string_view bytes, google::protobuf::RepeatedPtrField<v1::GpsPoint>* points) {
  Reader r(bytes);
  const char format = static_cast<char>(r.Byte());
  if (format != kPackedFormat && format != kPackedFormatWholeSeals) return false;
  const std::string* previous_seal = nullptr;
  const uint64_t n = r.Varint();
  if (!r.ok() || n > r.left() / 7) return false;  // a fix takes at least 7 bytes
  points->Reserve(static_cast<int>(points->size() + n));
  uint64_t time = 0, lat = 0, lon = 0;
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    time += Unzig(r.Varint());
    lat += Unzig(r.Varint());
    lon += Unzig(r.Varint());
    const int64_t speed = static_cast<int64_t>(Unzig(r.Varint()));
    const int64_t distance = static_cast<int64_t>(Unzig(r.Varint()));
    const uint8_t flags = r.Byte();
    const uint64_t seal_state = r.Varint();
    if (seal_state > 0x7fffffff) return false;
    v1::GpsPoint* p = points->Add();
    p->set_fix_time_ms(static_cast<int64_t>(time));
    p->set_lat(static_cast<double>(static_cast<int64_t>(lat)) / operators::kDegreeScale);
    p->set_lon(static_cast<double>(static_cast<int64_t>(lon)) / operators::kDegreeScale);
    p->set_speed_kmh(static_cast<double>(speed) / operators::kSpeedScale);
    p->set_corridor_distance_m(static_cast<double>(distance) / operators::kDistanceScale);
    p->set_outside_corridors(flags & kOutside);
    p->set_in_stop_zone(flags & kInStopZone);
    p->set_at_approved_crossing(flags & kApprovedCrossing);
    p->set_seal_state(static_cast<v1::GpsEvent::SealState>(seal_state));
    if (flags & kHasKey) p->set_event_key(r.Fixed(8));
    if (flags & kHasKey32) p->set_event_key(r.Fixed(4));
    if (flags & kHasSeal) {
      std::string seal = r.Text();
      if (seal.empty() && format == kPackedFormat) {
        if (previous_seal == nullptr) return false;  // "as before" with nothing before
        seal = *previous_seal;
      }
      p->set_seal_number(std::move(seal));
      previous_seal = &p->seal_number();
    }
    if (flags & kHasGeofence) p->set_border_geofence(r.Text());
    if (flags & kHasEventId) p->set_event_id(r.Text());
  }
  return r.ok() && r.done();
}

}  // namespace

bool SerializeMovement(v1::ContainerState& s, std::string* out) {
  v1::ContainerState m;
  if (s.has_gps()) m.set_allocated_gps(s.release_gps());
  // The window goes packed; the points are moved aside and back.
  google::protobuf::RepeatedPtrField<v1::GpsPoint> aside;
  std::string packed;
  const bool pack = m.has_gps() && m.gps().points_size() > 0 && PackPoints(m.gps().points(), &packed);
  if (pack) {
    aside.Swap(m.mutable_gps()->mutable_points());
    m.mutable_gps()->set_packed_points(std::move(packed));
  }
  m.mutable_pending()->Swap(s.mutable_pending());
  SwapEvaluation(s, m);
  m.set_first_event_ms(s.first_event_ms());
  m.set_last_event_ms(s.last_event_ms());
  m.set_expires_at_ms(s.expires_at_ms());
  m.set_evaluated_through_ms(s.evaluated_through_ms());
  m.set_progress_ms(s.progress_ms());
  m.set_released_before_ms(s.released_before_ms());
  m.set_due_ms(s.due_ms());
  out->clear();
  const bool ok = m.SerializeToString(out);
  if (pack) {
    m.mutable_gps()->mutable_points()->Swap(&aside);
    m.mutable_gps()->clear_packed_points();
  }
  if (m.has_gps()) s.set_allocated_gps(m.release_gps());
  s.mutable_pending()->Swap(m.mutable_pending());
  SwapEvaluation(s, m);
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
  if (!value->container_number().empty()) {
    meta->declaration_stored = false;
  } else {
    Result<std::optional<std::string>> declaration = store.Get(DeclarationKey(key));
    if (!declaration.ok()) return declaration.error();
    meta->declaration_stored = declaration->has_value();
    // M's fields are disjoint from D's: merging the bytes joins the parts.
    if (meta->declaration_stored && !value->MergeFromString(**declaration)) {
      return Error{Errc::kFatal, "the stored declaration part (" + std::to_string((*declaration)->size()) +
                                     " bytes) does not decode"};
    }
  }
  if (value->has_gps() && !value->gps().packed_points().empty()) {
    v1::GpsTrack* track = value->mutable_gps();
    if (!UnpackPoints(track->packed_points(), track->mutable_points())) {
      return Error{Errc::kFatal, "the stored GPS window (" + std::to_string(track->packed_points().size()) +
                                     " bytes) does not decode"};
    }
    track->clear_packed_points();
  }
  Shape(*value, meta->shape);
  return true;
}

bool ContainerStateCodec::Save(std::string_view key, v1::ContainerState& value, uint32_t dirty_parts, Meta* meta,
                               std::vector<state::PartitionStore::Write>* out) {
  uint32_t shape[4];
  Shape(value, shape);
  if (!meta->declaration_stored || !std::equal(shape, shape + 4, meta->shape)) {
    dirty_parts |= kDeclarationPart;
  }
  if (dirty_parts & kMovementPart) {
    std::string bytes;
    if (!SerializeMovement(value, &bytes)) return false;
    out->push_back({std::string(key), std::move(bytes)});
  }
  if (dirty_parts & kDeclarationPart) {
    std::string bytes;
    if (!SerializeDeclaration(value, &bytes)) return false;
    out->push_back({DeclarationKey(key), std::move(bytes)});
    meta->declaration_stored = true;
    std::copy(shape, shape + 4, meta->shape);
  }
  return true;
}

void ContainerStateCodec::Delete(std::string_view key, Meta* meta, std::vector<state::PartitionStore::Write>* out) {
  // Both keys, whatever was loaded: a D key left beside a whole value would
  // never be read or expired.
  out->push_back({std::string(key), std::nullopt});
  out->push_back({DeclarationKey(key), std::nullopt});
  meta->declaration_stored = false;
}

}  // namespace boxwatch::pipeline
