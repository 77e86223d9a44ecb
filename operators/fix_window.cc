#include "operators/fix_window.h"

#include <cassert>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "core/varint.h"
#include "google/protobuf/io/coded_stream.h"

namespace boxwatch::operators {

std::string_view FixText(const std::string& texts, uint32_t offset) {
  if (offset == 0) return {};
  // Offsets come from AddText on this very buffer (the texts are never
  // stored): one that does not lead to a text is a bug here, not bad input.
  const bool inside = offset < texts.size();
  const char* p = inside ? texts.data() + offset : nullptr;
  const char* end = texts.data() + texts.size();
  uint64_t n = 0;
  if (!inside || !ReadVarint(p, end, kMaxVarintBytes, &n) || n > static_cast<uint64_t>(end - p)) {
    assert(false && "FixText: an offset that leads to no text");
    return {};
  }
  return {p, static_cast<size_t>(n)};
}

FixRecord* MutableFixWindow::Insert(int index) {
  std::string* bytes = Fixes();
  if (bytes->empty()) bytes->assign(kFixesHeader, '\0');
  const size_t at = kFixesHeader + (DepartedFixes(*bytes) + static_cast<size_t>(index)) * sizeof(FixRecord);
  // Grows by doubling; a full window then takes no allocation per fix.
  // Most fixes arrive in order: appended, nothing moved.
  if (at == bytes->size()) {
    bytes->append(sizeof(FixRecord), '\0');
  } else {
    bytes->insert(at, sizeof(FixRecord), '\0');
  }
  return At(index);
}

void MutableFixWindow::SetSealNumber(int index, std::string_view text) {
  if (text.empty()) {
    At(index)->seal_number = 0;
    return;
  }
  if (index > 0) {
    const uint32_t before = At(index - 1)->seal_number;
    if (before != 0 && FixText(track_->live_texts(), before) == text) {
      At(index)->seal_number = before;
      return;
    }
  }
  const uint32_t offset = AddText(text);
  At(index)->seal_number = offset;
}

namespace {
// live_texts opens with the size it had after its last compaction (4 bytes,
// little-endian; offsets 0-3 are then never a text's).
constexpr size_t kTextsHeader = 4;
uint32_t CompactedSize(const std::string& texts) {
  uint32_t v = 0;
  std::memcpy(&v, texts.data(), sizeof v);
  return v;
}
void SetCompactedSize(std::string* texts, uint32_t v) { std::memcpy(texts->data(), &v, sizeof v); }
}  // namespace

uint32_t MutableFixWindow::AddText(std::string_view text) {
  if (text.empty()) return 0;
  // Compacted when it has doubled since the last time (and is past
  // kCompactTextsAt): a window of fixes each with a text of its own costs
  // amortised constant work per fix, not a pass over the window each.
  const std::string& now = track_->live_texts();
  if (now.size() > kCompactTextsAt && now.size() >= 2 * static_cast<size_t>(CompactedSize(now))) CompactTexts();
  std::string* texts = track_->mutable_live_texts();
  if (texts->empty()) texts->append(kTextsHeader, '\0');
  const auto offset = static_cast<uint32_t>(texts->size());
  AppendVarint(texts, text.size());
  texts->append(text);
  return offset;
}

void MutableFixWindow::CompactTexts() {
  const std::string old = track_->live_texts();
  std::string texts(kTextsHeader, '\0');
  // Equal texts kept once (a window's fixes share a few seal numbers).
  std::unordered_map<uint32_t, uint32_t> moved;          // old offset -> new offset
  std::unordered_map<std::string_view, uint32_t> kept;  // text (in `old`) -> new offset
  auto keep = [&](uint32_t& offset) {
    if (offset == 0) return;
    if (auto it = moved.find(offset); it != moved.end()) {
      offset = it->second;
      return;
    }
    const std::string_view text = FixText(old, offset);
    auto [at, added] = kept.try_emplace(text, static_cast<uint32_t>(texts.size()));
    if (added) {
      AppendVarint(&texts, text.size());
      texts.append(text);
    }
    moved.emplace(offset, at->second);
    offset = at->second;
  };
  for (int i = 0, n = size(); i < n; ++i) {
    FixRecord* r = At(i);
    keep(r->seal_number);
    keep(r->border_geofence);
    keep(r->event_id);
  }
  SetCompactedSize(&texts, static_cast<uint32_t>(texts.size()));
  *track_->mutable_live_texts() = std::move(texts);
}

void MutableFixWindow::EraseFront(int n) {
  if (n <= 0) return;
  if (n >= size()) {
    Clear();
    return;
  }
  std::string* bytes = Fixes();
  const uint32_t departed = DepartedFixes(*bytes) + static_cast<uint32_t>(n);
  if (departed >= kLazyErase) {
    bytes->erase(kFixesHeader, departed * sizeof(FixRecord));
    std::memset(bytes->data(), 0, sizeof departed);
  } else {
    std::memcpy(bytes->data(), &departed, sizeof departed);
  }
}

void MutableFixWindow::Append(const v1::GpsPoint& p) {
  const int index = size();
  FixRecord* r = Insert(index);
  r->fix_time_ms = p.fix_time_ms();
  r->lat = p.lat();
  r->lon = p.lon();
  r->speed_kmh = p.speed_kmh();
  r->corridor_distance_m = p.corridor_distance_m();
  r->event_key = p.event_key();
  r->seal_state = p.seal_state();
  r->flags = (p.outside_corridors() ? kFixOutsideCorridors : 0) | (p.in_stop_zone() ? kFixInStopZone : 0) |
             (p.at_approved_crossing() ? kFixAtApprovedCrossing : 0);
  SetSealNumber(index, p.seal_number());
  SetBorderGeofence(index, p.border_geofence());
  SetEventId(index, p.event_id());
}

void MutableFixWindow::Clear() {
  track_->clear_live_fixes();
  track_->clear_live_texts();
}

void ToPoints(const v1::GpsTrack& track, int from, int to, google::protobuf::RepeatedPtrField<v1::GpsPoint>* out) {
  const FixWindow w(track);
  out->Reserve(out->size() + (to - from));
  for (int i = from; i < to; ++i) {
    const FixRef f = w.Get(i);
    v1::GpsPoint* p = out->Add();
    p->set_fix_time_ms(f.fix_time_ms());
    p->set_lat(f.lat());
    p->set_lon(f.lon());
    p->set_speed_kmh(f.speed_kmh());
    p->set_seal_state(f.seal_state());
    if (!f.seal_number().empty()) p->set_seal_number(std::string(f.seal_number()));
    if (!f.event_id().empty()) p->set_event_id(std::string(f.event_id()));
    p->set_event_key(f.event_key());
    p->set_outside_corridors(f.outside_corridors());
    p->set_corridor_distance_m(f.corridor_distance_m());
    p->set_in_stop_zone(f.in_stop_zone());
    if (!f.border_geofence().empty()) p->set_border_geofence(std::string(f.border_geofence()));
    p->set_at_approved_crossing(f.at_approved_crossing());
  }
}

void MovePointsToWindow(v1::GpsTrack* track) {
  if (track->points_size() == 0) return;
  MutableFixWindow w(track);
  for (const v1::GpsPoint& p : track->points()) w.Append(p);
  track->clear_points();
}

size_t PointsByteSize(const v1::GpsTrack& track) {
  const FixWindow w(track);
  size_t total = 0;
  google::protobuf::RepeatedPtrField<v1::GpsPoint> one;
  for (int i = 0; i < w.size(); ++i) {
    one.Clear();
    ToPoints(track, i, i + 1, &one);
    const size_t n = one.Get(0).ByteSizeLong();
    total += 1 + google::protobuf::io::CodedOutputStream::VarintSize64(n) + n;
  }
  return total;
}

}  // namespace boxwatch::operators
