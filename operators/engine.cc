#include "operators/engine.h"

#include <charconv>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <tuple>

#include "core/types.h"
#include "operators/fix_window.h"
#include "operators/pending_items.h"
#include "operators/fix_quantum.h"
#include "operators/geo.h"
#include "operators/names.h"

namespace boxwatch::operators {
namespace {

using google::protobuf::RepeatedPtrField;

constexpr int64_t kMinute = 60 * 1000;

std::string Num(double v, int precision = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", precision, v);
  return buf;
}

// Builds one fired indicator from the profile's settings for `id`.
constexpr size_t kMaxEvidenceBytes = 512;  // bytes of quoted input per summary or evidence value

class Fired {
 public:
  // `index`: IndicatorIndex("gps.seal_breach"), a constant (no look-up by name).
  Fired(const Profile& p, size_t index, Family family, int64_t t) {
    const IndicatorConfig& cfg = p.At(index);
    f_.set_id(std::string(kIndicatorIds[index]));
    f_.set_family(FamilyName(family));
    f_.set_contribution(cfg.weight);
    f_.set_critical(cfg.critical);
    f_.set_fired_at_ms(t);
  }
  // Summaries and evidence quote manifest text (descriptions, party names),
  // which can be up to max_value_bytes long: an alert stays small.
  Fired& Summary(std::string s) {
    f_.set_summary(s.size() > kMaxEvidenceBytes ? ClipText(s, kMaxEvidenceBytes) : std::move(s));
    return *this;
  }
  Fired& Evidence(const std::string& key, const std::string& value) {
    auto* e = f_.add_evidence();
    e->set_key(key);
    e->set_value(ClipText(value, kMaxEvidenceBytes));
    return *this;
  }
  Fired& Scale(double factor) {
    f_.set_contribution(f_.contribution() * factor);
    return *this;
  }
  Fired& NotCritical() {
    f_.set_critical(false);
    return *this;
  }
  v1::FiredIndicator Take() { return std::move(f_); }

 private:
  v1::FiredIndicator f_;
};

bool IsLatched(const std::string& id) {
  return id.rfind("scan.", 0) == 0 || id.rfind("gps.", 0) == 0 || id == "manifest.missing" ||
         id == "manifest.split_consignment";
}

// Replaces the fired indicators of one family (or, for latched ids, adds
// only those not fired yet). `fired` stays sorted by id. Returns whether
// it changed anything (an indicator dropped, added or moved): false means
// the fired list is exactly as it was, so storage need not look at it.
bool MergeFamily(v1::ContainerState& s, const char* family, std::vector<v1::FiredIndicator> fresh,
                 bool drop_unlatched) {
  if (fresh.empty() && s.fired_size() == 0) return false;
  auto* fired = s.mutable_fired();
  bool changed = false;
  if (drop_unlatched) {
    for (int i = fired->size() - 1; i >= 0; --i) {
      const auto& f = fired->Get(i);
      if (f.family() == family && !IsLatched(f.id())) {
        fired->DeleteSubrange(i, 1);
        changed = true;
      }
    }
  }
  for (auto& f : fresh) {
    auto it = std::find_if(fired->begin(), fired->end(), [&](const auto& e) { return e.id() == f.id(); });
    if (it != fired->end()) continue;  // latched and already fired: keep the first evidence
    *fired->Add() = std::move(f);
    changed = true;
  }
  auto by_id = [](const auto& a, const auto& b) { return a.id() < b.id(); };
  if (!std::is_sorted(fired->begin(), fired->end(), by_id)) {
    std::sort(fired->begin(), fired->end(), by_id);
    changed = true;
  }
  return changed;
}

bool InAnyList(const std::string& normalised, const std::unordered_set<std::string>& a,
               const std::unordered_set<std::string>& b) {
  return !normalised.empty() && (a.count(normalised) || b.count(normalised));
}

bool HighRiskPlace(const Profile& p, const std::string& locode) {
  return !locode.empty() &&
         (p.high_risk_ports.count(locode) || p.high_risk_countries.count(locode.substr(0, 2)));
}

// True when `term` occurs in `text` (both upper case) as a whole word or phrase.
bool ContainsTerm(const std::string& text, const std::string& term) {
  size_t pos = 0;
  while ((pos = text.find(term, pos)) != std::string::npos) {
    const bool left = pos == 0 || !std::isalnum(static_cast<unsigned char>(text[pos - 1]));
    const size_t end = pos + term.size();
    const bool right = end >= text.size() || !std::isalnum(static_cast<unsigned char>(text[end]));
    if (left && right) return true;
    ++pos;
  }
  return false;
}

std::string Upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s;
}

// Fields whose change between versions counts as an amendment of substance.
std::vector<std::string> DiffManifests(const v1::Manifest& a, const v1::Manifest& b) {
  std::vector<std::string> out;
  if (NormaliseName(a.consignee().name()) != NormaliseName(b.consignee().name())) out.push_back("consignee");
  if (NormaliseName(a.shipper().name()) != NormaliseName(b.shipper().name())) out.push_back("shipper");
  if (NormaliseName(a.notify_party().name()) != NormaliseName(b.notify_party().name())) out.push_back("notify_party");
  bool goods = a.goods_size() != b.goods_size();
  for (int i = 0; !goods && i < a.goods_size(); ++i) {
    goods = a.goods(i).hs_code() != b.goods(i).hs_code() ||
            Upper(a.goods(i).description()) != Upper(b.goods(i).description()) ||
            a.goods(i).packages() != b.goods(i).packages() ||
            std::fabs(a.goods(i).gross_weight_kg() - b.goods(i).gross_weight_kg()) > 0.5;
  }
  if (goods) out.push_back("goods");
  std::vector<std::string> sa(a.seal_numbers().begin(), a.seal_numbers().end());
  std::vector<std::string> sb(b.seal_numbers().begin(), b.seal_numbers().end());
  std::sort(sa.begin(), sa.end());
  std::sort(sb.begin(), sb.end());
  if (sa != sb) out.push_back("seal_numbers");
  if (a.port_of_discharge() != b.port_of_discharge()) out.push_back("port_of_discharge");
  if (a.final_destination() != b.final_destination()) out.push_back("final_destination");
  if (a.vessel_imo() != b.vessel_imo()) out.push_back("vessel_imo");
  return out;
}

// Recomputes every summary's amended_fields: what the filer said plus what
// differs from the previous version when both are kept.
void RefreshSummaries(v1::ContainerState& s) {
  for (auto& sum : *s.mutable_manifest_history()) {
    std::set<std::string> fields;
    const v1::Manifest* self = nullptr;
    const v1::Manifest* prev = nullptr;
    for (const auto& m : s.manifest_versions()) {
      if (m.version() == sum.version()) self = &m;
      if (m.version() + 1 == sum.version()) prev = &m;
    }
    if (self != nullptr) {
      fields.insert(self->amended_fields().begin(), self->amended_fields().end());
      if (prev != nullptr) {
        for (auto& f : DiffManifests(*prev, *self)) fields.insert(std::move(f));
      }
    } else {
      fields.insert(sum.amended_fields().begin(), sum.amended_fields().end());
    }
    sum.clear_amended_fields();
    for (const auto& f : fields) sum.add_amended_fields(f);
  }
}

void TouchEventTime(v1::ContainerState& s, int64_t t) {
  if (s.first_event_ms() == 0 || t < s.first_event_ms()) s.set_first_event_ms(t);
  if (t > s.last_event_ms()) s.set_last_event_ms(t);
}

int UtcOffsetHours(const Profile& p, const v1::Manifest* m, double lon) {
  if (m != nullptr && m->port_of_discharge().size() >= 2) {
    auto it = p.utc_offset_hours.find(m->port_of_discharge().substr(0, 2));
    if (it != p.utc_offset_hours.end()) return it->second;
  }
  return static_cast<int>(std::lround(lon / 15.0));
}

std::string LocalTime(int64_t t, int offset_hours) {
  std::string iso = FormatUtc(t + offset_hours * 3600 * 1000LL);
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, " UTC%+d", offset_hours);
  return iso.substr(0, 16) + suffix;
}

// Uncapped contribution of the fired indicators, per family.
std::array<double, kFamilyCount> FamilySums(const v1::ContainerState& s) {
  // The names once, as views: comparing with FamilyName's C strings took a
  // strlen and a call per family and indicator, at every evaluation.
  static const std::array<std::string_view, kFamilyCount> kNames = [] {
    std::array<std::string_view, kFamilyCount> names;
    for (int i = 0; i < kFamilyCount; ++i) names[i] = FamilyName(static_cast<Family>(i));
    return names;
  }();
  std::array<double, kFamilyCount> sum{};
  for (const auto& f : s.fired()) {
    const std::string_view family = f.family();
    for (int i = 0; i < kFamilyCount; ++i) {
      if (family == kNames[i]) {
        sum[i] += f.contribution();
        break;
      }
    }
  }
  return sum;
}

// Whether decoding cleared `field` of `m` as unusable (its value is no declaration).
bool Unusable(const v1::Manifest& m, const std::string& field) {
  return std::find(m.unusable_fields().begin(), m.unusable_fields().end(), field) != m.unusable_fields().end();
}

constexpr size_t kMaxFixText = 128;  // bytes of a fix's seal number, event id and geofence id kept

// 64-bit FNV-1a: stable across processes and versions (it is stored).
uint64_t EventKey(std::string_view id) {
  uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : id) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h == 0 ? 1 : h;  // 0 means "no key"
}

// The key a fix keeps: the hash folded to 32 bits (4 bytes a fix in the
// stored window instead of 8). It is compared only with the few fixes
// around the new one's time in the same container's window, so a false
// match needs two ids of one box within 16 fixes to collide in 32 bits.
uint64_t StoredEventKey(uint64_t key) {
  const uint64_t folded = (key ^ (key >> 32)) & 0xffffffffULL;
  return folded == 0 ? 1 : folded;
}

std::string Position(const FixRef& p) { return Num(p.lat(), 4) + "," + Num(p.lon(), 4); }

}  // namespace

const v1::Manifest* ManifestAsOf(const v1::ContainerState& s, int64_t t) {
  const v1::Manifest* best = nullptr;
  for (const auto& m : s.manifest_versions()) {
    if (m.declared_at_ms() <= t && (best == nullptr || m.version() > best->version())) best = &m;
  }
  return best;
}

Status ApplyReferenceEntry(ReferenceData* ref, std::string_view key, std::string_view value, bool seizures) {
  const size_t colon = key.find(':');
  if (colon == std::string_view::npos) return Status::Ok();
  const std::string_view list = key.substr(0, colon);
  const std::string entry(key.substr(colon + 1));
  const bool remove = value.empty();
  auto apply = [remove](auto& set, std::string v) {
    remove ? (void)set.erase(v) : (void)set.insert(std::move(v));
  };
  if (list == "watchlisted_parties") apply(ref->watchlisted_parties, NormaliseName(entry));
  if (list == "watchlisted_vessels") apply(ref->watchlisted_vessels, entry);
  if (list == "watchlisted_owner_codes") apply(ref->watchlisted_owner_codes, entry);
  if (list == "known_traders") {
    const std::string party = NormaliseName(entry);
    if (remove) {
      ref->known_traders.erase(party);
      return Status::Ok();
    }
    constexpr std::string_view kSince = "since=";
    int64_t since = 0;
    const std::string_view v = value.substr(0, kSince.size()) == kSince ? value.substr(kSince.size()) : value;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), since);
    if (party.empty() || v.empty() || ec != std::errc() || end != v.data() + v.size() || since < 0) {
      return Error{Errc::kInvalidArgument, "a known_traders value is \"since=<ms>\" with a party name in the key"};
    }
    ref->known_traders[party] = since;
    return Status::Ok();
  }
  if (list == "consignments" && seizures) {
    const size_t sep = entry.rfind('@');
    if (sep == std::string::npos || sep == 0 || sep + 1 == entry.size()) {
      return Error{Errc::kInvalidArgument, "a consignments key is \"<CONSIGNEE>#<heading>@<container>\""};
    }
    const std::string group = entry.substr(0, sep), container = entry.substr(sep + 1);
    auto& boxes = ref->consignments[group];
    boxes.erase(std::remove_if(boxes.begin(), boxes.end(), [&](const ConsignmentListing& b) { return b.container == container; }),
                boxes.end());
    if (!remove) {
      ConsignmentListing box{container, 0, 0};
      constexpr std::string_view kDeclared = "declared_at=", kEffective = " effective=";
      const size_t eff = value.find(kEffective);
      auto number = [](std::string_view text, int64_t* out) {
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
        return !text.empty() && ec == std::errc() && end == text.data() + text.size();
      };
      if (value.substr(0, kDeclared.size()) != kDeclared || eff == std::string_view::npos ||
          !number(value.substr(kDeclared.size(), eff - kDeclared.size()), &box.declared_at_ms) ||
          !number(value.substr(eff + kEffective.size()), &box.effective_ms)) {
        if (boxes.empty()) ref->consignments.erase(group);
        return Error{Errc::kInvalidArgument, "the value is not \"declared_at=<ms> effective=<ms>\""};
      }
      boxes.push_back(std::move(box));
    }
    if (boxes.empty()) ref->consignments.erase(group);
    return Status::Ok();
  }
  if ((list == "seized_parties" || list == "seized_bills") && seizures) {
    // "<party>@<seized_at>": one seizure of the party; "<party>": every one.
    const bool bills = list == "seized_bills";
    std::string party = entry;
    std::optional<int64_t> at;
    if (const size_t sep = entry.rfind('@'); sep != std::string::npos) {
      int64_t v = 0;
      const char* b = entry.data() + sep + 1;
      const char* e = entry.data() + entry.size();
      if (auto [end, ec] = std::from_chars(b, e, v); ec == std::errc() && end == e && b != e) {
        party = entry.substr(0, sep);
        at = v;
      }
    }
    party = bills ? AlnumUpper(party) : NormaliseName(party);
    auto& map = bills ? ref->seized_bills : ref->seized_parties;
    auto& listings = map[party];
    auto same = [&](const SeizureListing& l) { return !at || l.seized_at_ms == *at; };
    if (remove) {
      listings.erase(std::remove_if(listings.begin(), listings.end(), same), listings.end());
      if (listings.empty()) map.erase(party);
      return Status::Ok();
    }
    auto listing = ParseSeizureListing(value);
    if (!listing) {
      if (listings.empty()) map.erase(party);
      return Error{Errc::kInvalidArgument, "the value is not \"seized_at=<ms> until=<ms>\""};
    }
    if (!at) listings.clear();  // an older worker's key: its latest listing stands alone
    listings.erase(std::remove_if(listings.begin(), listings.end(),
                                  [&](const SeizureListing& l) { return l.seized_at_ms == listing->seized_at_ms; }),
                   listings.end());
    listings.push_back(*listing);
    std::sort(listings.begin(), listings.end(),
              [](const SeizureListing& a, const SeizureListing& b) { return a.seized_at_ms < b.seized_at_ms; });
  }
  return Status::Ok();
}

namespace {
bool AnyCovers(const std::unordered_map<std::string, std::vector<SeizureListing>>& map, const std::string& key,
               int64_t t) {
  auto it = map.find(key);
  if (it == map.end()) return false;
  return std::any_of(it->second.begin(), it->second.end(), [t](const SeizureListing& l) { return l.Covers(t); });
}
}  // namespace

bool ReferenceData::SeizureCovers(const std::string& party, int64_t t) const {
  return AnyCovers(seized_parties, party, t);
}

bool ReferenceData::SiblingSeizureCovers(const std::string& bill, int64_t t) const {
  return AnyCovers(seized_bills, bill, t);
}

std::string AlertId(const std::string& container, uint32_t sequence) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "-%04u", sequence);
  return container + buf;
}

RiskEngine::RiskEngine(const Profile* profile, const ReferenceData* reference, EngineLimits limits)
    : profile_(profile), reference_(reference), limits_(limits) {}

// Pending items are kept in (time, kind) order (operators/pending_items.h).
void RiskEngine::AddPending(v1::ContainerState& s, int64_t t, Kind kind) const {
  MutablePendingItems(s.mutable_pending_items()).Insert({t, static_cast<int32_t>(kind)});
}

// ------------------------------------------------------------------ joins

JoinResult RiskEngine::ApplyManifest(v1::ContainerState& s, const v1::Manifest& m,
                                     int64_t late_before) const {
  const int64_t t = m.declared_at_ms();
  for (const auto& h : s.manifest_history()) {
    if (h.version() != m.version()) continue;
    // The same version again is a duplicate, unless it repairs fields the
    // one kept could not use (a filer's corrected resend, which may come
    // hours later, so it is never late): then it replaces it and is
    // evaluated again.
    for (auto& kept : *s.mutable_manifest_versions()) {
      if (kept.version() == m.version() && kept.unusable_fields_size() > m.unusable_fields_size() &&
          kept.declared_at_ms() == t) {
        kept = m;
        // Its seals may differ: fixes are read against it again.
        if (s.has_gps()) s.mutable_gps()->set_seals_checked_through_ms(0);
        for (auto& sum : *s.mutable_manifest_history()) {
          if (sum.version() == m.version()) sum.set_consignee_name(m.consignee().name());
        }
        RefreshSummaries(s);
        AddPending(s, t, kManifest);
        return JoinResult::kApplied;
      }
    }
    return JoinResult::kDuplicate;
  }
  if (t < late_before) return JoinResult::kLate;
  // With the history full, a version older than every summary kept is one
  // already seen (or superseded long ago): it changes nothing.
  if (s.manifest_history_size() >= limits_.max_manifest_history &&
      m.version() < s.manifest_history(0).version()) {
    return JoinResult::kDuplicate;
  }
  s.set_container_number(m.container_number());
  auto* versions = s.mutable_manifest_versions();
  auto pos = std::find_if(versions->begin(), versions->end(),
                          [&](const auto& v) { return v.version() > m.version(); });
  const int index = static_cast<int>(pos - versions->begin());
  *versions->Add() = m;
  for (int i = versions->size() - 1; i > index; --i) versions->SwapElements(i, i - 1);

  auto* history = s.mutable_manifest_history();
  auto* sum = history->Add();
  sum->set_version(m.version());
  sum->set_declared_at_ms(t);
  sum->set_consignee_name(m.consignee().name());
  sum->mutable_amended_fields()->CopyFrom(m.amended_fields());
  std::sort(history->begin(), history->end(),
            [](const auto& a, const auto& b) { return a.version() < b.version(); });
  if (history->size() > limits_.max_manifest_history) {
    history->DeleteSubrange(0, history->size() - limits_.max_manifest_history);
  }
  RefreshSummaries(s);
  TouchEventTime(s, t);
  AddPending(s, t, kManifest);
  return JoinResult::kApplied;
}

JoinResult RiskEngine::ApplyScan(v1::ContainerState& s, const v1::ScanResult& e,
                                 int64_t late_before) const {
  const int64_t t = e.scanned_at_ms();
  // An image analyst's verdict is timed at the scan and may follow it by an
  // hour: it is never late (an old one is evaluated at once, at its time).
  const bool verdict = e.has_nii() && e.nii().verdict() != v1::NiiResult::VERDICT_UNSPECIFIED;
  if (t < late_before && !verdict) return JoinResult::kLate;
  auto same = [&](const v1::ScanResult& x) {
    return e.scan_id().empty() ? (x.scan_id().empty() && x.device_id() == e.device_id() && x.scanned_at_ms() == t)
                               : x.scan_id() == e.scan_id();
  };
  auto* scans = s.mutable_scans();
  if (auto it = std::find_if(scans->begin(), scans->end(), same); it != scans->end()) {
    // The same scan again is a duplicate, unless it brings the verdict its
    // image was waiting for: then it replaces it and is evaluated again.
    if (!verdict || !it->has_nii() || it->nii().verdict() != v1::NiiResult::VERDICT_UNSPECIFIED ||
        it->scanned_at_ms() != t) {
      return JoinResult::kDuplicate;
    }
    *it = e;
    AddPending(s, t, kScan);
    return JoinResult::kApplied;
  }
  s.set_container_number(e.container_number());
  *scans->Add() = e;
  std::sort(scans->begin(), scans->end(), [](const auto& a, const auto& b) {
    return std::make_tuple(a.scanned_at_ms(), a.scan_id()) < std::make_tuple(b.scanned_at_ms(), b.scan_id());
  });
  TouchEventTime(s, t);
  AddPending(s, t, kScan);
  return JoinResult::kApplied;
}

JoinResult RiskEngine::ApplyGps(v1::ContainerState& s, const v1::GpsEvent& e, int64_t watermark) const {
  const int64_t t = e.fix_time_ms();
  auto* track = s.mutable_gps();
  MutableFixWindow window(track);
  const FixWindow points = window.View();
  // The duplicate check, the release and the evaluation read them next.
  points.PrefetchLast(limits_.max_gps_points);
  // Points are ordered by fix time; most fixes arrive in order, so search from the end.
  int index = points.size();
  while (index > 0 && points.Get(index - 1).fix_time_ms() > t) --index;
  const std::string_view event_id = Utf8Prefix(e.event_id(), kMaxFixText);
  const uint64_t full_key = event_id.empty() ? 0 : EventKey(event_id);
  const uint64_t event_key = event_id.empty() ? 0 : StoredEventKey(full_key);
  for (int i = std::max(0, index - 8); i < std::min(points.size(), index + 8); ++i) {
    const FixRef p = points.Get(i);
    // A fix stored before the 32-bit key kept the whole hash; one stored
    // before event_key, the id.
    const bool same = event_id.empty()                 ? p.fix_time_ms() == t
                      : p.event_key() != 0 ? p.event_key() == event_key || p.event_key() == full_key
                                           : p.event_id() == event_id;
    if (same) return JoinResult::kDuplicate;
  }
  // A fix seen before is a duplicate whatever its age (a device resending a
  // block of reports); only a new one can be late.
  // Before the fixes already final (the lateness may have been raised
  // since they were): late.
  if (t < watermark || t < track->final_before_ms()) return JoinResult::kLate;
  if (index == 0 && t < s.released_before_ms() && points.size() >= limits_.max_gps_points) {
    // Older than every fix of a full window of evaluated ones: what it would
    // be compared with is gone.
    return JoinResult::kLate;
  }
  // Compared first: a fix of a known box (nearly every one) copies nothing.
  if (s.container_number() != e.container_number()) s.set_container_number(e.container_number());
  // A fix older than the fixes read against the declared seals is read
  // with the next evaluation under that declaration (at its own time there
  // may have been no declaration with seals to read it against).
  if (track->seals_checked_through_ms() != 0 && t <= track->seals_checked_through_ms()) {
    track->set_seals_checked_through_ms(t - 1);
  }
  const LatLon at{e.position().lat(), e.position().lon()};
  const CorridorFix fix = LocateInCorridors(*profile_, at);
  const bool border = e.geofence_transition() != v1::GpsEvent::GEOFENCE_TRANSITION_NONE &&
                      profile_->IsBorderGeofence(e.geofence_id());
  FixRecord* p = window.Insert(index);
  p->fix_time_ms = t;
  // Rounded to the resolutions the state keeps (operators/fix_quantum.h).
  p->lat = Quantize(e.position().lat(), kDegreeScale);
  p->lon = Quantize(e.position().lon(), kDegreeScale);
  p->speed_kmh = Quantize(e.speed_kmh(), kSpeedScale);
  p->seal_state = e.seal_state();
  p->event_key = event_key;
  p->corridor_distance_m = Quantize(fix.distance_m, kDistanceScale);
  p->flags = (fix.inside ? 0 : kFixOutsideCorridors) |
             (ZoneContaining(profile_->stop_zones, at, &profile_->stop_zone_index) != nullptr ? kFixInStopZone : 0) |
             (border && ZoneContaining(profile_->border_crossings, at, &profile_->border_crossing_index) != nullptr
                  ? kFixAtApprovedCrossing
                  : 0);
  // Kept text is bounded per fix, so the window's 64 evaluated plus up to
  // 256 unevaluated fixes fit the state's GPS reserve whatever the input.
  window.SetSealNumber(index, Utf8Prefix(e.seal_number(), kMaxFixText));
  if (border) window.SetBorderGeofence(index, Utf8Prefix(e.geofence_id(), kMaxFixText));

  if (track->first_fix_ms() == 0 || t < track->first_fix_ms()) track->set_first_fix_ms(t);
  if (t >= track->last_fix_ms()) {
    track->set_last_fix_ms(t);
    if (track->last_tracker_id() != e.tracker_id()) track->set_last_tracker_id(e.tracker_id());
  }
  if (fix.inside && (track->first_corridor_fix_ms() == 0 || t < track->first_corridor_fix_ms())) {
    track->set_first_corridor_fix_ms(t);
  }
  TouchEventTime(s, t);
  AddPending(s, t, kGps);
  return JoinResult::kApplied;
}

std::string FormatSeizureListing(const SeizureListing& listing) {
  return "seized_at=" + std::to_string(listing.seized_at_ms) + " until=" + std::to_string(listing.until_ms);
}

std::optional<SeizureListing> ParseSeizureListing(std::string_view value) {
  auto number = [](std::string_view text, int64_t* out) {
    if (text.empty()) return false;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
    return ec == std::errc() && end == text.data() + text.size();
  };
  SeizureListing l;
  if (number(value, &l.until_ms)) return l;  // an older entry: the until time alone
  constexpr std::string_view kSeized = "seized_at=", kUntil = " until=";
  const size_t until = value.find(kUntil);
  if (value.substr(0, kSeized.size()) != kSeized || until == std::string_view::npos) return std::nullopt;
  if (!number(value.substr(kSeized.size(), until - kSeized.size()), &l.seized_at_ms) ||
      !number(value.substr(until + kUntil.size()), &l.until_ms)) {
    return std::nullopt;
  }
  return l;
}

bool RiskEngine::FeedsBack() const {
  const auto& f = profile_->feedback;
  if (f.seizure_watch_days <= 0 || f.seizure_parties.empty()) return false;
  const bool bills = std::find(f.seizure_parties.begin(), f.seizure_parties.end(), "bill_of_lading") !=
                     f.seizure_parties.end();
  return profile_->At(IndicatorIndex("history.party_seizure")).enabled ||
         (bills && profile_->At(IndicatorIndex("history.sibling_seizure")).enabled) ||
         profile_->At(IndicatorIndex("manifest.split_consignment")).enabled;
}

namespace {
// The sensitive HS headings of an under-filled box (gross goods weight at
// most max_box_kg), for manifest.split_consignment; empty when none.
std::set<std::string> SplitHeadings(const Profile& p, const v1::Manifest& m) {
  std::set<std::string> out;
  const IndicatorConfig& cfg = p.At(IndicatorIndex("manifest.split_consignment"));
  if (!cfg.enabled) return out;
  double kg = 0;
  for (const auto& g : m.goods()) kg += g.gross_weight_kg();
  if (kg <= 0 || kg > cfg.Param("max_box_kg", 5000)) return out;
  if (NormalisesTo(m.consignee().name(), "")) return out;
  for (const auto& g : m.goods()) {
    if (g.hs_code().size() >= 4 && p.MatchSensitiveHs(g.hs_code()) != nullptr) out.insert(g.hs_code().substr(0, 4));
  }
  return out;
}
}  // namespace

std::vector<RiskEngine::ReferenceUpdate> RiskEngine::ConsignmentFor(const v1::Manifest& m, int64_t not_before_ms,
                                                                     int64_t delay_ms) const {
  std::vector<ReferenceUpdate> out;
  if (m.version() > 1) return out;  // the first declaration only: one listing per box
  const int64_t effective = std::max(m.declared_at_ms(), not_before_ms) + delay_ms;
  for (const auto& heading : SplitHeadings(*profile_, m)) {
    out.push_back({"consignments:" + NormaliseName(m.consignee().name()) + "#" + heading + "@" + m.container_number(),
                   "declared_at=" + std::to_string(m.declared_at_ms()) + " effective=" + std::to_string(effective)});
  }
  return out;
}

bool RiskEngine::EvaluateSplitConsignment(v1::ContainerState& s, int64_t t) const {
  const Profile& p = *profile_;
  const IndicatorConfig& cfg = p.At(IndicatorIndex("manifest.split_consignment"));
  if (!cfg.enabled || reference_->consignments.empty()) return false;
  const v1::Manifest* m = ManifestAsOf(s, t);
  if (m == nullptr) return false;
  const int64_t window = static_cast<int64_t>(cfg.Param("window_days", 14) * 86400000.0);
  const size_t min_boxes = static_cast<size_t>(cfg.Param("min_boxes", 3));
  const std::set<std::string> headings = SplitHeadings(p, *m);
  if (headings.empty()) return false;
  const std::string consignee = NormaliseName(m->consignee().name());
  for (const auto& heading : headings) {
    auto it = reference_->consignments.find(consignee + "#" + heading);
    if (it == reference_->consignments.end()) continue;
    // This box and the other under-filled boxes of the heading declared to
    // the consignee within the window, each listed before t.
    std::set<std::string> boxes = {s.container_number()};
    for (const auto& b : it->second) {
      if (b.effective_ms < t && b.declared_at_ms > t - window && b.declared_at_ms <= t) boxes.insert(b.container);
    }
    if (boxes.size() < min_boxes) continue;
    std::string list;
    int shown = 0;
    for (const auto& b : boxes) {
      if (shown++ == 6) {
        list += ", ...";
        break;
      }
      list += (list.empty() ? "" : ", ") + b;
    }
    return MergeFamily(s, FamilyName(Family::kManifest),
                {Fired(p, IndicatorIndex("manifest.split_consignment"), Family::kManifest, t)
                     .Summary(std::to_string(boxes.size()) + " under-filled boxes of HS " + heading + " for " +
                              m->consignee().name() + " within " + Num(cfg.Param("window_days", 14), 0) + " days")
                     .Evidence("consignee", m->consignee().name())
                     .Evidence("hs_heading", heading)
                     .Evidence("boxes", list)
                     .Take()},
                false);
  }
  return false;
}

std::vector<RiskEngine::ReferenceUpdate> RiskEngine::FeedbackFor(const v1::ContainerState& s,
                                                                  const v1::InspectionOutcome& o,
                                                                  int64_t not_before_ms, int64_t delay_ms) const {
  std::vector<ReferenceUpdate> out;
  const Profile& p = *profile_;
  if (o.result() != v1::InspectionOutcome::RESULT_SEIZURE || p.feedback.seizure_watch_days <= 0) return out;
  // A rip-on/rip-off's consignee and shipper are its victims.
  if (o.rip_on_off() && p.feedback.exclude_rip_on_off) return out;
  const int64_t seized_at = std::max(o.inspected_at_ms(), not_before_ms) + delay_ms;
  const v1::Manifest* m = ManifestAsOf(s, o.inspected_at_ms());
  if (m == nullptr) return out;
  const int64_t until = o.inspected_at_ms() + static_cast<int64_t>(p.feedback.seizure_watch_days * 86400000.0);
  if (seized_at >= until) return out;  // reported after its watch ended
  const std::string suffix = "@" + std::to_string(seized_at);
  for (const auto& role : p.feedback.seizure_parties) {
    if (role == "bill_of_lading") {
      const std::string bill = AlnumUpper(m->bill_of_lading());
      if (!bill.empty()) out.push_back({"seized_bills:" + bill + suffix, FormatSeizureListing({seized_at, until})});
      continue;
    }
    const v1::Party& party = role == "shipper" ? m->shipper() : role == "notify_party" ? m->notify_party() : m->consignee();
    const std::string name = NormaliseName(party.name());
    if (!name.empty()) out.push_back({"seized_parties:" + name + suffix, FormatSeizureListing({seized_at, until})});
  }
  return out;
}

JoinResult RiskEngine::ApplyOutcome(v1::ContainerState& s, const v1::InspectionOutcome& o,
                                    int64_t watermark) const {
  // Officers report inspections hours later, so an outcome is never late:
  // it fires no indicator, so keeping it out of order changes no alert
  // (only its re-seal counts, and only when it arrives in time).
  const int64_t t = o.inspected_at_ms();
  auto* outcomes = s.mutable_outcomes();
  for (const auto& x : *outcomes) {
    if (x.outcome_id() == o.outcome_id()) return JoinResult::kDuplicate;  // a retried report
  }
  s.set_container_number(o.container_number());
  v1::InspectionOutcome* kept = outcomes->Add();
  *kept = o;
  // No evaluation after the box's latest event can have run yet, whatever
  // the timing: those are the evaluations this report is in time for.
  kept->set_seen_after_ms(s.last_event_ms());
  std::sort(outcomes->begin(), outcomes->end(), [](const auto& a, const auto& b) {
    return std::make_tuple(a.inspected_at_ms(), a.outcome_id()) < std::make_tuple(b.inspected_at_ms(), b.outcome_id());
  });
  while (outcomes->size() > limits_.max_outcomes) outcomes->DeleteSubrange(0, 1);
  TouchEventTime(s, t);
  if (t >= watermark) AddPending(s, t, kOutcome);
  return JoinResult::kApplied;
}

// ------------------------------------------------------------ evaluation

bool RiskEngine::Advance(v1::ContainerState& s, int64_t watermark, int64_t emit_time_ms,
                         std::vector<v1::Alert>* alerts) const {
  if (s.pending_items().empty()) return false;
  bool changed = false;
  int done = 0;
  // Evaluation changes no pending item: the view stays valid.
  const PendingItems pending(s.pending_items());
  for (; done < pending.size(); ++done) {
    const PendingItem p = pending.Get(done);
    if (p.time_ms >= watermark) break;
    changed = Evaluate(s, p.time_ms, p.kind, emit_time_ms, alerts) || changed;
    // A straggler (evaluated after later items) does not move it back.
    s.set_evaluated_through_ms(std::max(s.evaluated_through_ms(), p.time_ms));
  }
  // The evaluated items leave from the front; the buffer keeps its room.
  if (done > 0) MutablePendingItems(s.mutable_pending_items()).EraseFront(done);
  return changed;
}

namespace {
// Index of the first element whose time is at or after `bound` (elements
// ordered by time).
template <typename Repeated, typename TimeOf>
int FirstAtOrAfter(const Repeated& items, int64_t bound, TimeOf time_of) {
  int i = items.size();
  while (i > 0 && time_of(items.Get(i - 1)) >= bound) --i;
  return i;
}
}  // namespace

bool RiskEngine::Release(v1::ContainerState& s, int64_t bound, int64_t emit_time_ms, std::vector<v1::Alert>* alerts,
                         int64_t gate) const {
  // Held by the gate: the windows are not trimmed either, so that the items
  // evaluated when the gate moves see the window they would have seen.
  const bool held = gate < bound;
  bound = std::min(bound, gate);
  if (bound > s.released_before_ms()) s.set_released_before_ms(bound);
  bool changed = Advance(s, s.released_before_ms(), emit_time_ms, alerts);
  // Capacity release: a container may hold only so many unevaluated fixes
  // and scans; past that its bound moves just beyond the oldest of them.
  // Only its own records decide when.
  auto fix_time = [](const FixRef& p) { return p.fix_time_ms(); };
  auto scan_time = [](const v1::ScanResult& x) { return x.scanned_at_ms(); };
  for (;;) {
    const FixWindow pts(s.gps());
    const auto& scans = s.scans();
    const int first_fix = FirstAtOrAfter(pts, s.released_before_ms(), fix_time);
    const int first_scan = FirstAtOrAfter(scans, s.released_before_ms(), scan_time);
    int64_t next = kEndOfTime;
    if (pts.size() - first_fix > limits_.max_unevaluated_fixes) next = pts.Get(first_fix).fix_time_ms() + 1;
    if (scans.size() - first_scan > limits_.max_unevaluated_scans) {
      next = std::min(next, scans.Get(first_scan).scanned_at_ms() + 1);
    }
    // The capacity release goes past the gate: a container's unevaluated
    // items stay bounded however long it is held.
    if (next == kEndOfTime) break;
    s.set_released_before_ms(next);
    changed = Advance(s, next, emit_time_ms, alerts) || changed;
  }
  if (!held || s.released_before_ms() > gate) Trim(s);
  return changed;
}

int64_t EarliestPending(const v1::ContainerState& s) {
  const PendingItems pending(s.pending_items());
  return pending.empty() ? kEndOfTime : pending.Get(0).time_ms;  // in order
}

void RiskEngine::Trim(v1::ContainerState& s) const {
  const int64_t bound = s.released_before_ms();
  {
    MutableFixWindow window(s.mutable_gps());
    const FixWindow pts = window.View();
    int drop = 0;
    while (pts.size() - drop > limits_.max_gps_points && pts.Get(drop).fix_time_ms() < bound) ++drop;
    window.EraseFront(drop);
  }
  int drop = 0;
  auto* scans = s.mutable_scans();
  while (scans->size() - drop > limits_.max_scans && scans->Get(drop).scanned_at_ms() < bound) ++drop;
  if (drop > 0) scans->DeleteSubrange(0, drop);
  // The oldest full manifest version can go once a newer version was in
  // force before the bound: no evaluation at or after it can pick it.
  auto* versions = s.mutable_manifest_versions();
  while (versions->size() > limits_.max_manifest_versions) {
    bool superseded = false;
    for (int i = 1; i < versions->size(); ++i) superseded |= versions->Get(i).declared_at_ms() < bound;
    if (!superseded) break;
    versions->DeleteSubrange(0, 1);
  }
}

bool RiskEngine::Evaluate(v1::ContainerState& s, int64_t t, int kind, int64_t emit_time_ms,
                          std::vector<v1::Alert>* alerts) const {
  bool changed = false;
  switch (kind) {
    case kManifest:
      changed = EvaluateManifestFamily(s, t);
      break;
    case kScan:
      changed = EvaluateScanFamily(s, t);
      changed = EvaluateMissingManifest(s, t) || changed;
      break;
    case kGps:
      changed = EvaluateGpsFamily(s, t);
      changed = EvaluateMissingManifest(s, t) || changed;
      break;
    default:
      return false;  // outcomes are kept on the state; they fire nothing themselves
  }
  // Siblings declared elsewhere become visible as time passes: looked at
  // with every evaluation, not only the box's own declarations.
  changed = EvaluateSplitConsignment(s, t) || changed;
  return ApplyAlertPolicy(s, t, emit_time_ms, alerts) || changed;
}

bool RiskEngine::EvaluateManifestFamily(v1::ContainerState& s, int64_t t) const {
  const Profile& p = *profile_;
  const ReferenceData& ref = *reference_;
  // A straggler (a version older than what was evaluated already) must not
  // replace the newer version's indicators: the family reflects the version
  // in force at the latest time evaluated.
  const v1::Manifest* m = ManifestAsOf(s, std::max(t, s.evaluated_through_ms()));
  std::vector<v1::FiredIndicator> manifest_fired;
  std::vector<v1::FiredIndicator> history_fired;
  if (m != nullptr) {
    auto on = [&](size_t index) { return p.At(index).enabled; };
    const Family F = Family::kManifest;

    if (on(IndicatorIndex("route.high_risk_port"))) {
      for (const auto* field : {&m->port_of_loading(), &m->port_of_discharge(), &m->final_destination()}) {
        if (HighRiskPlace(p, *field)) {
          const char* role = field == &m->port_of_loading() ? "port_of_loading"
                             : field == &m->port_of_discharge() ? "port_of_discharge" : "final_destination";
          manifest_fired.push_back(Fired(p, IndicatorIndex("route.high_risk_port"), F, t)
                                       .Summary(std::string("Route touches high-risk place ") + *field + " (" + role + ")")
                                       .Evidence(role, *field)
                                       .Take());
          break;
        }
      }
    }
    if (on(IndicatorIndex("route.high_risk_transhipment"))) {
      for (const auto& port : m->transhipment_ports()) {
        if (HighRiskPlace(p, port)) {
          manifest_fired.push_back(Fired(p, IndicatorIndex("route.high_risk_transhipment"), F, t)
                                       .Summary("Transhipped through high-risk port " + port)
                                       .Evidence("transhipment_port", port)
                                       .Take());
          break;
        }
      }
    }
    if (on(IndicatorIndex("route.risky_routing"))) {
      const RiskyRouting* hit = nullptr;
      std::string via;
      for (const auto& r : p.risky_routings) {
        for (const auto& hub : m->transhipment_ports()) {
          if (r.Matches(m->port_of_loading(), hub)) {
            hit = &r;
            via = hub;
            break;
          }
        }
        if (hit) break;
      }
      if (hit) {
        manifest_fired.push_back(Fired(p, IndicatorIndex("route.risky_routing"), F, t)
                                     .Summary("Routing " + m->port_of_loading() + " via " + via + " (" +
                                              (hit->label.empty() ? hit->origin + " x " + hit->hub : hit->label) + ")")
                                     .Evidence("port_of_loading", m->port_of_loading())
                                     .Evidence("transhipment_port", via)
                                     .Evidence("listed", hit->origin + " x " + hit->hub)
                                     .Take());
      }
    }
    if (on(IndicatorIndex("route.detour")) && !m->port_of_loading().empty() && !m->port_of_discharge().empty()) {
      std::vector<std::string> chain = {m->port_of_loading()};
      chain.insert(chain.end(), m->transhipment_ports().begin(), m->transhipment_ports().end());
      chain.push_back(m->port_of_discharge());
      bool known = true;
      double length = 0;
      for (size_t i = 0; known && i + 1 < chain.size(); ++i) {
        auto a = p.ports.find(chain[i]);
        auto b = p.ports.find(chain[i + 1]);
        known = a != p.ports.end() && b != p.ports.end();
        if (known) length += HaversineM(a->second.at, b->second.at);
      }
      if (known) {
        const double direct = HaversineM(p.ports.at(chain.front()).at, p.ports.at(chain.back()).at);
        const double max_ratio = p.At(IndicatorIndex("route.detour")).Param("max_detour_ratio", 1.6);
        if (direct > 300000 && length / direct > max_ratio) {
          std::string route;
          for (const auto& c : chain) route += (route.empty() ? "" : " > ") + c;
          manifest_fired.push_back(Fired(p, IndicatorIndex("route.detour"), F, t)
                                       .Summary("Declared route is " + Num(length / direct, 2) +
                                                "x the direct distance (" + route + ")")
                                       .Evidence("route", route)
                                       .Evidence("route_km", Num(length / 1000, 0))
                                       .Evidence("direct_km", Num(direct / 1000, 0))
                                       .Take());
        }
      }
    }
    if (on(IndicatorIndex("party.watchlisted"))) {
      // Screening keys fold legal forms, abbreviations and transliterations
      // (operators/names.h): an equal key is the listed party under another
      // spelling, full weight. A near key (a typo, a letter changed) is a
      // lead for a documentary check: weight times fuzzy_factor.
      const IndicatorConfig& cfg = p.At(IndicatorIndex("party.watchlisted"));
      const double min_similarity = cfg.Param("fuzzy_min_similarity", 0.88);
      const double fuzzy_factor = cfg.Param("fuzzy_factor", 0.6);
      std::optional<std::pair<std::string, NameMatch>> best;  // role, match
      for (const auto& [role, party] : {std::pair{"consignee", &m->consignee()}, std::pair{"shipper", &m->shipper()},
                                        std::pair{"notify_party", &m->notify_party()}}) {
        auto match = MatchName(party->name(), {&p.watchlisted_parties, &ref.watchlisted_parties}, min_similarity);
        if (match && (!best || match->similarity > best->second.similarity)) best.emplace(role, *match);
      }
      if (best) {
        const auto& [role, match] = *best;
        const std::string declared = role == "consignee"   ? m->consignee().name()
                                     : role == "shipper" ? m->shipper().name()
                                                         : m->notify_party().name();
        const bool same = match.similarity >= 1;
        Fired f(p, IndicatorIndex("party.watchlisted"), F, t);
        f.Summary(std::string(same ? "Watchlisted " : "Near a watchlisted name: ") + role + " " + declared +
                  (NormaliseName(declared) == match.entry ? "" : " (list: " + match.entry + ")"))
            .Evidence(role, declared)
            .Evidence("listed_as", match.entry)
            .Evidence("similarity", Num(match.similarity, 2));
        // A near name is a lead for a documentary check: never critical.
        if (!same) f.Scale(fuzzy_factor).NotCritical();
        manifest_fired.push_back(f.Take());
      }
    }
    if (on(IndicatorIndex("vessel.watchlisted")) && InAnyList(m->vessel_imo(), p.watchlisted_vessels, ref.watchlisted_vessels)) {
      manifest_fired.push_back(Fired(p, IndicatorIndex("vessel.watchlisted"), F, t)
                                   .Summary("Watchlisted vessel IMO " + m->vessel_imo() + " " + m->vessel_name())
                                   .Evidence("vessel_imo", m->vessel_imo())
                                   .Take());
    }
    const std::string owner = m->container_number().substr(0, 3);
    if (on(IndicatorIndex("owner.watchlisted")) && InAnyList(owner, p.watchlisted_owner_codes, ref.watchlisted_owner_codes)) {
      manifest_fired.push_back(Fired(p, IndicatorIndex("owner.watchlisted"), F, t)
                                   .Summary("Container owner code " + owner + " is watchlisted")
                                   .Evidence("owner_code", owner)
                                   .Take());
    }
    bool vague_done = false, hs_done = false, weight_done = false;
    for (int i = 0; i < m->goods_size(); ++i) {
      const auto& g = m->goods(i);
      const std::string line = "goods[" + std::to_string(i) + "]";
      if (on(IndicatorIndex("goods.vague_description")) && !vague_done) {
        const std::string desc = Upper(g.description());
        for (const auto& term : p.vague_terms) {
          if (ContainsTerm(desc, term)) {
            manifest_fired.push_back(Fired(p, IndicatorIndex("goods.vague_description"), F, t)
                                         .Summary("Vague goods description \"" + g.description() + "\"")
                                         .Evidence(line + ".description", g.description())
                                         .Evidence("term", term)
                                         .Take());
            vague_done = true;
            break;
          }
        }
      }
      const SensitiveHs* hs = p.MatchSensitiveHs(g.hs_code());
      if (hs != nullptr && on(IndicatorIndex("goods.sensitive_hs")) && !hs_done) {
        manifest_fired.push_back(Fired(p, IndicatorIndex("goods.sensitive_hs"), F, t)
                                     .Summary("Sensitive goods: HS " + g.hs_code() + " (" + hs->label + ")")
                                     .Evidence(line + ".hs_code", g.hs_code())
                                     .Evidence("category", hs->label)
                                     .Take());
        hs_done = true;
      }
      // Plausible weight: a sensitive entry's range, else goods_weights'.
      const SensitiveHs* w = p.MatchGoodsWeight(g.hs_code());
      if (w != nullptr && on(IndicatorIndex("goods.weight_implausible")) && !weight_done && g.packages() > 0 &&
          !Unusable(*m, line + ".gross_weight_kg")) {
        const double tol = p.At(IndicatorIndex("goods.weight_implausible")).Param("tolerance_fraction", 0.25);
        const double per = g.gross_weight_kg() / g.packages();
        if (per < w->min_kg_per_package * (1 - tol) || per > w->max_kg_per_package * (1 + tol)) {
          manifest_fired.push_back(
              Fired(p, IndicatorIndex("goods.weight_implausible"), F, t)
                  .Summary("Declared " + Num(per, 1) + " kg per package for " + w->label + "; plausible " +
                           Num(w->min_kg_per_package, 0) + "-" + Num(w->max_kg_per_package, 0) + " kg")
                  .Evidence(line + ".gross_weight_kg", Num(g.gross_weight_kg(), 0))
                  .Evidence(line + ".packages", std::to_string(g.packages()))
                  .Evidence("kg_per_package", Num(per, 1))
                  .Evidence("plausible_for", "HS " + w->prefix + " " + w->label)
                  .Take());
          weight_done = true;
        }
      }
    }
    // A party the trader register does not know, or registered recently.
    // Without a register (no known_traders entry at all) nothing is new.
    std::optional<std::pair<std::string, std::string>> new_trader;  // role, why
    if (on(IndicatorIndex("party.new_trader")) && !ref.known_traders.empty()) {
      const double days = p.At(IndicatorIndex("party.new_trader")).Param("new_days", 180);
      for (const auto& [role, party] : {std::pair{"consignee", &m->consignee()}, std::pair{"shipper", &m->shipper()}}) {
        const std::string name = NormaliseName(party->name());
        if (name.empty()) continue;
        auto it = ref.known_traders.find(name);
        if (it == ref.known_traders.end() || it->second > t) {
          new_trader.emplace(role, "not in the trader register");
        } else if (t - it->second < static_cast<int64_t>(days * 86400000.0)) {
          new_trader.emplace(role, "registered " + Num((t - it->second) / 86400000.0, 0) + " days before");
        }
        if (new_trader) {
          manifest_fired.push_back(Fired(p, IndicatorIndex("party.new_trader"), F, t)
                                       .Summary("Newly seen " + std::string(role) + " " + party->name() + ": " +
                                                new_trader->second)
                                       .Evidence(role, party->name())
                                       .Evidence("register", new_trader->second)
                                       .Take());
          break;
        }
      }
    }
    if (on(IndicatorIndex("payment.cash")) && m->freight_payment() == v1::Manifest::FREIGHT_PAYMENT_CASH) {
      Fired f(p, IndicatorIndex("payment.cash"), F, t);
      f.Summary("Freight paid in cash").Evidence("freight_payment", "CASH");
      if (new_trader) {
        // Cash freight by a company nobody knows yet: the pattern of a front.
        f.Scale(p.At(IndicatorIndex("payment.cash")).Param("new_trader_factor", 1))
            .Summary("Freight paid in cash by a newly seen " + new_trader->first)
            .Evidence("newly_seen", new_trader->first);
      }
      manifest_fired.push_back(f.Take());
    }
    if (on(IndicatorIndex("manifest.late_amendment")) && m->eta_ms() > 0) {
      const double cutoff_h = p.At(IndicatorIndex("manifest.late_amendment")).Param("cutoff_hours_before_eta", 48);
      const int64_t cutoff = m->eta_ms() - static_cast<int64_t>(cutoff_h * 3600 * 1000);
      const IndicatorConfig& late = p.At(IndicatorIndex("manifest.late_amendment"));
      // Who receives the box, or what goods it holds (another HS heading),
      // changed late: full weight. A correction (a description made precise,
      // a package recount, a seal number) weighs minor_factor.
      auto headings = [](const v1::Manifest& man) {
        std::set<std::string> out;
        for (const auto& g : man.goods()) out.insert(g.hs_code().substr(0, 4));
        return out;
      };
      for (int k = 0; k < s.manifest_history_size(); ++k) {
        const auto& sum = s.manifest_history(k);
        if (sum.version() <= 1 || sum.declared_at_ms() > t || sum.declared_at_ms() < cutoff) continue;
        std::string changed;
        bool substance = false;
        for (const auto& f : sum.amended_fields()) {
          if (f == "consignee" || f == "goods" || f == "seal_numbers") changed += (changed.empty() ? "" : ",") + f;
          substance = substance || f == "consignee";
        }
        if (changed.empty()) continue;
        if (!substance && changed.find("goods") != std::string::npos) {
          // The goods changed: of substance when the headings differ from
          // the version before, or when that version is no longer kept.
          const v1::Manifest* now = nullptr;
          const v1::Manifest* before = nullptr;
          for (const auto& v : s.manifest_versions()) {
            if (v.version() == sum.version()) now = &v;
            if (v.version() < sum.version() && (before == nullptr || v.version() > before->version())) before = &v;
          }
          substance = now == nullptr || before == nullptr || headings(*now) != headings(*before);
        }
        const double hours_before = (m->eta_ms() - sum.declared_at_ms()) / 3600000.0;
        Fired f(p, IndicatorIndex("manifest.late_amendment"), F, t);
        if (!substance) f.Scale(late.Param("minor_factor", 1));
        manifest_fired.push_back(
            f.Summary("Version " + std::to_string(sum.version()) + " changed " + changed + " " +
                      (hours_before >= 0 ? Num(hours_before, 1) + " h before ETA" : Num(-hours_before, 1) + " h after ETA") +
                      (substance ? "" : " (a correction: same parties, same HS headings)"))
                .Evidence("version", std::to_string(sum.version()))
                .Evidence("declared_at", FormatUtc(sum.declared_at_ms()))
                .Evidence("changed", changed)
                .Evidence("substance", substance ? "yes" : "no")
                .Take());
        break;
      }
    }
    if (p.At(IndicatorIndex("manifest.incomplete")).enabled && m->unusable_fields_size() > 0) {
      std::string fields;
      for (const auto& f : m->unusable_fields()) fields += (fields.empty() ? "" : ",") + f;
      manifest_fired.push_back(Fired(p, IndicatorIndex("manifest.incomplete"), F, t)
                                   .Summary("Declaration with unusable fields: " + fields)
                                   .Evidence("fields", fields)
                                   .Evidence("version", std::to_string(m->version()))
                                   .Take());
    }
    if (p.At(IndicatorIndex("history.party_seizure")).enabled) {
      for (const auto& [role, party] : {std::pair{"consignee", &m->consignee()}, std::pair{"shipper", &m->shipper()},
                                        std::pair{"notify_party", &m->notify_party()}}) {
        // Only a seizure before this event counts: feedback never reaches back in time.
        if (ref.SeizureCovers(NormaliseName(party->name()), t)) {
          history_fired.push_back(Fired(p, IndicatorIndex("history.party_seizure"), Family::kHistory, t)
                                      .Summary(std::string("The ") + role + " " + party->name() + " had a recorded seizure")
                                      .Evidence(role, party->name())
                                      .Take());
          break;
        }
      }
    }
    const std::string bill = AlnumUpper(m->bill_of_lading());
    if (p.At(IndicatorIndex("history.sibling_seizure")).enabled && !bill.empty() &&
        ref.SiblingSeizureCovers(bill, t)) {
      history_fired.push_back(Fired(p, IndicatorIndex("history.sibling_seizure"), Family::kHistory, t)
                                  .Summary("Another box of bill of lading " + m->bill_of_lading() + " was seized")
                                  .Evidence("bill_of_lading", m->bill_of_lading())
                                  .Take());
    }
  }
  const bool manifest_changed = MergeFamily(s, FamilyName(Family::kManifest), std::move(manifest_fired), true);
  return MergeFamily(s, FamilyName(Family::kHistory), std::move(history_fired), true) || manifest_changed;
}

bool RiskEngine::EvaluateScanFamily(v1::ContainerState& s, int64_t t) const {
  const Profile& p = *profile_;
  const Family F = Family::kScan;
  std::vector<v1::FiredIndicator> fired;
  const v1::Manifest* m = ManifestAsOf(s, t);
  for (const auto& scan : s.scans()) {
    if (scan.scanned_at_ms() > t) break;
    const std::string where = scan.site() + " " + scan.device_id();
    if (scan.has_rpm()) {
      const auto& r = scan.rpm();
      // Radiation read against the declared goods. Goods that carry natural
      // radioactivity (NORM: ceramics, potash, granite, ...) set portals off
      // every day; what they show is judged against norm_factor, and the
      // portal's own alarm does not count by itself. A nuclide the portal
      // identified that is never cargo (a source) is its own, critical,
      // indicator, whatever the goods; nuclides that are all NORM's clear a
      // NORM declaration's reading below norm_factor.
      std::string threat, identified;
      bool all_norm = r.nuclides_size() > 0;
      for (const auto& n : r.nuclides()) {
        std::string upper = n;
        std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char c) { return std::toupper(c); });
        identified += (identified.empty() ? "" : ", ") + n;
        if (p.threat_nuclides.count(upper) && threat.empty()) threat = n;
        all_norm = all_norm && p.norm_nuclides.count(upper) > 0;
      }
      std::string norm_goods;  // the declared NORM goods line's HS code, if any
      for (int i = 0; m != nullptr && i < m->goods_size() && norm_goods.empty(); ++i) {
        for (const auto& prefix : p.norm_hs_prefixes)
          if (m->goods(i).hs_code().rfind(prefix, 0) == 0) norm_goods = m->goods(i).hs_code();
      }
      if (!threat.empty() && p.At(IndicatorIndex("scan.threat_nuclide")).enabled) {
        fired.push_back(Fired(p, IndicatorIndex("scan.threat_nuclide"), F, t)
                            .Summary(threat + " identified at " + where +
                                     (norm_goods.empty() ? "" : " in goods declared as HS " + norm_goods))
                            .Evidence("nuclides", identified)
                            .Evidence("gamma_cps", Num(r.gamma_cps(), 1))
                            .Evidence("scanned_at", FormatUtc(scan.scanned_at_ms()))
                            .Take());
      }
      const IndicatorConfig& gcfg = p.At(IndicatorIndex("scan.radiation_gamma"));
      const double gf = gcfg.Param("factor", 3.0);
      const double ratio = r.gamma_cps() / std::max(r.gamma_background_cps(), 1.0);
      const bool over = r.gamma_alarm() || ratio > gf;
      if (gcfg.enabled && threat.empty() && over) {
        Fired f(p, IndicatorIndex("scan.radiation_gamma"), F, t);
        const bool norm = !norm_goods.empty() && ratio <= gcfg.Param("norm_factor", 6.0);
        f.Summary("Gamma " + Num(r.gamma_cps(), 0) + " cps against background " + Num(r.gamma_background_cps(), 0) +
                  " cps at " + where +
                  (norm ? " (" + Num(ratio, 1) + "x, consistent with declared NORM goods, HS " + norm_goods +
                              (all_norm ? "; nuclides " + identified : "") + ")"
                        : ""))
            .Evidence("gamma_cps", Num(r.gamma_cps(), 1))
            .Evidence("gamma_background_cps", Num(r.gamma_background_cps(), 1))
            .Evidence("alarm", r.gamma_alarm() ? "yes" : "no")
            .Evidence("scanned_at", FormatUtc(scan.scanned_at_ms()));
        if (!identified.empty()) f.Evidence("nuclides", identified);
        if (norm) f.Scale(gcfg.Param("norm_weight_factor", 0.3));
        fired.push_back(f.Take());
      }
      const double nf = p.At(IndicatorIndex("scan.radiation_neutron")).Param("factor", 2.0);
      if (p.At(IndicatorIndex("scan.radiation_neutron")).enabled &&
          (r.neutron_alarm() || r.neutron_cps() > std::max(r.neutron_background_cps(), 0.5) * nf)) {
        fired.push_back(Fired(p, IndicatorIndex("scan.radiation_neutron"), F, t)
                            .Summary("Neutron " + Num(r.neutron_cps(), 1) + " cps against background " +
                                     Num(r.neutron_background_cps(), 1) + " cps at " + where)
                            .Evidence("neutron_cps", Num(r.neutron_cps(), 1))
                            .Evidence("neutron_background_cps", Num(r.neutron_background_cps(), 1))
                            .Evidence("alarm", r.neutron_alarm() ? "yes" : "no")
                            .Take());
      }
    }
    if (scan.has_nii()) {
      const auto& n = scan.nii();
      const double min_score = p.At(IndicatorIndex("scan.xray_anomaly")).Param("min_anomaly_score", 0.75);
      if (p.At(IndicatorIndex("scan.xray_anomaly")).enabled &&
          (n.verdict() == v1::NiiResult::VERDICT_SUSPICIOUS || n.anomaly_score() >= min_score)) {
        fired.push_back(Fired(p, IndicatorIndex("scan.xray_anomaly"), F, t)
                            .Summary("X-ray anomaly score " + Num(n.anomaly_score(), 2) +
                                     (n.verdict() == v1::NiiResult::VERDICT_SUSPICIOUS ? ", analyst: suspicious" : "") +
                                     " at " + where)
                            .Evidence("anomaly_score", Num(n.anomaly_score(), 2))
                            .Evidence("analyst_note", n.analyst_note())
                            .Take());
      }
      // The analyst could not tell: not a finding, but a reason to look
      // (a dense or uneven load hides what an image would show).
      else if (p.At(IndicatorIndex("scan.xray_inconclusive")).enabled &&
               n.verdict() == v1::NiiResult::VERDICT_INCONCLUSIVE) {
        fired.push_back(Fired(p, IndicatorIndex("scan.xray_inconclusive"), F, t)
                            .Summary("X-ray image inconclusive at " + where +
                                     (n.analyst_note().empty() ? "" : ": " + n.analyst_note()))
                            .Evidence("anomaly_score", Num(n.anomaly_score(), 2))
                            .Evidence("analyst_note", n.analyst_note())
                            .Take());
      }
      bool weights_known = m != nullptr;
      for (int i = 0; weights_known && i < m->goods_size(); ++i) {
        weights_known = !Unusable(*m, "goods[" + std::to_string(i) + "].gross_weight_kg");
      }
      if (p.At(IndicatorIndex("scan.weight_mismatch")).enabled && n.has_estimated_weight_kg() && weights_known) {
        const IndicatorConfig& cfg = p.At(IndicatorIndex("scan.weight_mismatch"));
        // Tare 0 means "not declared" (manifest.proto): take a typical tare
        // for the box's length (ISO 6346 size code: 2 = 20 ft, 4 = 40 ft,
        // L = 45 ft); unknown length: the 20 ft one, the smallest, so an
        // undeclared tare never reads as under-declared goods.
        double declared = m->tare_weight_kg();
        const char length = m->container_size_type().empty() ? '2' : m->container_size_type()[0];
        if (declared <= 0) {
          declared = length == '4'   ? cfg.Param("default_tare_40_kg", 3800)
                     : length == 'L' ? cfg.Param("default_tare_45_kg", 4800)
                                     : cfg.Param("default_tare_20_kg", 2300);
        }
        for (const auto& g : m->goods()) declared += g.gross_weight_kg();
        const double tol = cfg.Param("tolerance_fraction", 0.2);
        if (declared > 0 && std::fabs(n.estimated_weight_kg() - declared) / declared > tol) {
          fired.push_back(Fired(p, IndicatorIndex("scan.weight_mismatch"), F, t)
                              .Summary("Scanner estimates " + Num(n.estimated_weight_kg(), 0) + " kg; manifest declares " +
                                       Num(declared, 0) + " kg")
                              .Evidence("estimated_kg", Num(n.estimated_weight_kg(), 0))
                              .Evidence("declared_kg", Num(declared, 0))
                              .Take());
        }
      }
    }
  }
  return MergeFamily(s, FamilyName(F), std::move(fired), false);
}

bool RiskEngine::EvaluateGpsFamily(v1::ContainerState& s, int64_t t) const {
  const Profile& p = *profile_;
  const Family F = Family::kGps;
  const FixWindow pts(s.gps());
  int end = pts.size();  // points [0, end) are at or before t
  while (end > 0 && pts.Get(end - 1).fix_time_ms() > t) --end;
  if (end == 0) return false;
  std::vector<v1::FiredIndicator> fired;
  const FixRef last = pts.Get(end - 1);
  const v1::Manifest* m = ManifestAsOf(s, t);
  // An indicator of this family that fired before stays as it fired
  // (MergeFamily keeps the first evidence): it is not looked at again.
  // The fired ones as a bit set, found with one pass over the fired list
  // (comparing ids per indicator was 2 % of a task's instructions).
  uint64_t fired_before = 0;
  for (const v1::FiredIndicator& f : s.fired()) {
    if (const std::optional<size_t> index = FindIndicatorIndex(f.id())) fired_before |= uint64_t{1} << *index;
  }
  auto open = [&](size_t index) { return p.At(index).enabled && (fired_before & (uint64_t{1} << index)) == 0; };

  const IndicatorConfig& dev = p.At(IndicatorIndex("gps.route_deviation"));
  const int64_t corridor_since = s.gps().first_corridor_fix_ms();
  if (open(IndicatorIndex("gps.route_deviation")) && corridor_since != 0 && corridor_since <= t && last.outside_corridors()) {
    int run = 0;
    double max_dist = 0;  // 0 when no corridor is even near (distance unknown)
    while (run < end && pts.Get(end - 1 - run).outside_corridors()) {
      max_dist = std::max(max_dist, pts.Get(end - 1 - run).corridor_distance_m());
      ++run;
    }
    const FixRef first = pts.Get(end - run);
    const double minutes = (last.fix_time_ms() - first.fix_time_ms()) / double(kMinute);
    if (run >= dev.Param("min_points", 3) || (run >= 2 && minutes >= dev.Param("min_minutes", 10))) {
      fired.push_back(Fired(p, IndicatorIndex("gps.route_deviation"), F, t)
                          .Summary("Off every approved corridor for " + Num(minutes, 0) + " min (" +
                                   std::to_string(run) + " fixes), up to " +
                                   (max_dist <= 0 ? std::string("more than a buffer") : Num(max_dist / 1000, 1) + " km") + " away")
                          .Evidence("left_corridor_at", FormatUtc(first.fix_time_ms()))
                          .Evidence("fixes_outside", std::to_string(run))
                          .Evidence("last_position", Position(last))
                          .Take());
    }
  }

  // Authorised places: the profile's stop zones, and the premises of the
  // declared consignee (an authorised consignee may keep and open the box
  // there). The consignee's premises are looked up at the first stationary
  // fix that needs them: most evaluations have none, and the name is the
  // one part of the manifest they would read.
  std::vector<const Premises*> premises;
  bool premises_found = m == nullptr || p.consignee_premises.empty();
  auto at_premises = [&](const FixRef& pt) -> const Premises* {
    if (!premises_found) {
      premises_found = true;
      for (const auto& site : p.consignee_premises) {
        if (NormalisesTo(m->consignee().name(), site.party)) premises.push_back(&site);
      }
    }
    for (const Premises* site : premises) {
      if (HaversineM({pt.lat(), pt.lon()}, site->at) <= site->radius_m) return site;
    }
    return nullptr;
  };
  // Customs held the box: within inspection_minutes after an inspection
  // that re-sealed it (an outcome with seals_applied, which only counts when
  // it arrived in time), opening and standing are theirs.
  const IndicatorConfig& breach = p.At(IndicatorIndex("gps.seal_breach"));
  const int64_t inspection_ms = static_cast<int64_t>(breach.Param("inspection_minutes", 120) * kMinute);
  auto held_by_customs = [&](const FixRef& pt) {
    return std::any_of(s.outcomes().begin(), s.outcomes().end(), [&](const v1::InspectionOutcome& o) {
      return o.seals_applied_size() > 0 && o.seen_after_ms() < t && o.inspected_at_ms() <= pt.fix_time_ms() &&
             pt.fix_time_ms() <= o.inspected_at_ms() + inspection_ms;
    });
  };
  auto authorised = [&](const FixRef& pt) {
    return pt.in_stop_zone() || at_premises(pt) != nullptr || (s.outcomes_size() > 0 && held_by_customs(pt));
  };
  // The run of stationary fixes ending at the latest one, outside
  // authorised places (and, when `off_corridor`, outside every corridor);
  // its start is estimated, not the first stationary fix: a tracker that
  // saves power reports every 20-30 minutes, so the stop began when the
  // truck, at its previous fix's speed, reached the place it stands.
  struct Stop {
    int run = 0;
    int64_t start_ms = 0;
    double max_off_m = 0;
  };
  const IndicatorConfig& stop = p.At(IndicatorIndex("gps.unscheduled_stop"));
  const int64_t sparse_gap = static_cast<int64_t>(stop.Param("sparse_gap_minutes", 10) * kMinute);
  auto stop_run = [&](double max_speed, bool off_corridor) {
    Stop st;
    while (st.run < end) {
      const FixRef pt = pts.Get(end - 1 - st.run);
      if (pt.speed_kmh() > max_speed || authorised(pt) || (off_corridor && !pt.outside_corridors())) break;
      st.max_off_m = std::max(st.max_off_m, pt.corridor_distance_m());
      ++st.run;
    }
    if (st.run == 0) return st;
    const FixRef first = pts.Get(end - st.run);
    st.start_ms = first.fix_time_ms();
    if (end - st.run > 0) {
      const FixRef prev = pts.Get(end - st.run - 1);
      const int64_t gap = first.fix_time_ms() - prev.fix_time_ms();
      if (gap > sparse_gap && prev.speed_kmh() > max_speed && !authorised(prev)) {
        const double metres = HaversineM({prev.lat(), prev.lon()}, {first.lat(), first.lon()});
        const double speed_ms = std::max(prev.speed_kmh(), 5.0) / 3.6;
        st.start_ms = prev.fix_time_ms() + std::min<int64_t>(gap, static_cast<int64_t>(metres / speed_ms * 1000));
      }
    }
    return st;
  };
  const double max_stop_speed = stop.Param("max_speed_kmh", 3);
  if (open(IndicatorIndex("gps.unscheduled_stop")) && last.speed_kmh() <= max_stop_speed && !authorised(last)) {
    const Stop st = stop_run(max_stop_speed, false);
    const FixRef first = pts.Get(end - st.run);
    const double minutes = (last.fix_time_ms() - st.start_ms) / double(kMinute);
    if (minutes >= stop.Param("min_minutes", 30)) {
      const int offset = UtcOffsetHours(p, m, first.lon());
      const int64_t local_ms = st.start_ms + offset * 3600 * 1000LL;
      const int hour = static_cast<int>(((local_ms / 3600000) % 24 + 24) % 24);
      const int night_start = static_cast<int>(stop.Param("night_start_hour", 20));
      const int night_end = static_cast<int>(stop.Param("night_end_hour", 5));
      const bool night = hour >= night_start || hour < night_end;
      // How far the stop is from the nearest authorised zone's edge: just
      // outside one (a full truck park, the receiver's error) is weighed
      // near_zone_factor; the officer sees the distance either way.
      const Zone* nearest = nullptr;
      double zone_gap = 0;
      for (const auto& z : p.stop_zones) {
        const double d = HaversineM({first.lat(), first.lon()}, z.at) - z.radius_m;
        if (nearest == nullptr || d < zone_gap) {
          nearest = &z;
          zone_gap = d;
        }
      }
      const double near_m = stop.Param("near_zone_m", 0);
      const bool near = nearest != nullptr && near_m > 0 && zone_gap <= near_m;
      Fired f(p, IndicatorIndex("gps.unscheduled_stop"), F, t);
      if (night) f.Scale(stop.Param("night_factor", 1.5));
      if (near) f.Scale(stop.Param("near_zone_factor", 1));
      f.Summary(std::string(night ? "Night stop" : "Stop") + " of " + Num(minutes, 0) + " min outside authorised zones at " +
                Position(first) +
                (near ? ", " + Num(std::max(0.0, zone_gap), 0) + " m outside " + nearest->name : std::string()))
          .Evidence("stopped_at", LocalTime(st.start_ms, offset))
          .Evidence("minutes", Num(minutes, 0))
          .Evidence("night", night ? "yes" : "no");
      if (nearest != nullptr) {
        f.Evidence("nearest_zone", nearest->name).Evidence("zone_distance_m", Num(std::max(0.0, zone_gap), 0));
      }
      fired.push_back(f.Take());
    }
  }

  // A stop away from every corridor: the box stands where no approved route
  // goes. Shorter than an unscheduled stop and weighed on its own.
  const IndicatorConfig& off_stop = p.At(IndicatorIndex("gps.off_corridor_stop"));
  const double off_stop_speed = off_stop.Param("max_speed_kmh", 3);
  if (open(IndicatorIndex("gps.off_corridor_stop")) && corridor_since != 0 && corridor_since <= t && last.outside_corridors() &&
      last.speed_kmh() <= off_stop_speed && !authorised(last)) {
    const Stop st = stop_run(off_stop_speed, true);
    const FixRef first = pts.Get(end - st.run);
    const double minutes = (last.fix_time_ms() - st.start_ms) / double(kMinute);
    if (minutes >= off_stop.Param("min_minutes", 15)) {
      fired.push_back(Fired(p, IndicatorIndex("gps.off_corridor_stop"), F, t)
                          .Summary("Stopped " + Num(minutes, 0) + " min off every approved corridor at " + Position(first) +
                                   (st.max_off_m > 0 ? ", " + Num(st.max_off_m / 1000, 1) + " km from the nearest" : ""))
                          .Evidence("stopped_at", FormatUtc(st.start_ms))
                          .Evidence("minutes", Num(minutes, 0))
                          .Evidence("corridor_distance_km", st.max_off_m > 0 ? Num(st.max_off_m / 1000, 1) : "unknown")
                          .Take());
    }
  }

  // Slow drift: the box moves steadily away from the corridor's centre
  // line, fix after fix, rather than leaving it in one jump.
  const IndicatorConfig& drift = p.At(IndicatorIndex("gps.corridor_drift"));
  const int drift_points = static_cast<int>(drift.Param("min_points", 8));
  if (open(IndicatorIndex("gps.corridor_drift")) && drift_points >= 2 && end >= drift_points) {
    const double jitter = drift.Param("jitter_m", 200);
    const double min_speed = drift.Param("min_speed_kmh", 10);
    const double max_step = drift.Param("max_step_m", 1000);  // more in one step is a jump (gps.route_deviation)
    bool steady = true;
    for (int i = end - drift_points; steady && i < end; ++i) {
      const FixRef pt = pts.Get(i);
      const double step = i == end - drift_points ? 0 : pt.corridor_distance_m() - pts.Get(i - 1).corridor_distance_m();
      steady = pt.speed_kmh() >= min_speed && pt.corridor_distance_m() >= 0 && step >= -jitter && step <= max_step;
    }
    const FixRef from = pts.Get(end - drift_points);
    const double rise = last.corridor_distance_m() - from.corridor_distance_m();
    if (steady && rise >= drift.Param("min_rise_m", 2000)) {
      fired.push_back(Fired(p, IndicatorIndex("gps.corridor_drift"), F, t)
                          .Summary("Drifting away from the corridor: " + Num(from.corridor_distance_m() / 1000, 1) + " to " +
                                   Num(last.corridor_distance_m() / 1000, 1) + " km off its line over " +
                                   std::to_string(drift_points) + " fixes")
                          .Evidence("from", FormatUtc(from.fix_time_ms()))
                          .Evidence("from_km", Num(from.corridor_distance_m() / 1000, 1))
                          .Evidence("to_km", Num(last.corridor_distance_m() / 1000, 1))
                          .Evidence("last_position", Position(last))
                          .Take());
    }
  }

  // Fixes up to the previous evaluation were examined then (evaluations run
  // in time order, and these indicators latch): look only at the new ones.
  // A straggler (a fix older than what was evaluated, joined after a quiet
  // or capacity release) is new itself: the fixes at its time are examined.
  const int64_t examined_through = t <= s.evaluated_through_ms() ? t - 1 : s.evaluated_through_ms();
  int first_new = end;
  while (first_new > 0 && pts.Get(first_new - 1).fix_time_ms() > examined_through) --first_new;
  const IndicatorConfig& gap = p.At(IndicatorIndex("gps.tracking_gap"));
  if (open(IndicatorIndex("gps.tracking_gap"))) {
    const double max_gap = gap.Param("max_gap_minutes", 60);
    for (int i = std::max(1, first_new); i < end; ++i) {
      const FixRef a = pts.Get(i - 1);
      const FixRef b = pts.Get(i);
      const double minutes = (b.fix_time_ms() - a.fix_time_ms()) / double(kMinute);
      if (minutes > max_gap && !a.in_stop_zone()) {
        fired.push_back(Fired(p, IndicatorIndex("gps.tracking_gap"), F, t)
                            .Summary("No position for " + Num(minutes, 0) + " min in transit after " + Position(a))
                            .Evidence("from", FormatUtc(a.fix_time_ms()))
                            .Evidence("to", FormatUtc(b.fix_time_ms()))
                            .Take());
        break;
      }
    }
  }

  for (int i = open(IndicatorIndex("gps.seal_breach")) ? first_new : end; i < end; ++i) {
    const FixRef pt = pts.Get(i);
    if (!authorised(pt) &&
        (pt.seal_state() == v1::GpsEvent::SEAL_STATE_OPENED || pt.seal_state() == v1::GpsEvent::SEAL_STATE_TAMPERED)) {
      const char* state = pt.seal_state() == v1::GpsEvent::SEAL_STATE_OPENED ? "opened" : "tampered";
      fired.push_back(Fired(p, IndicatorIndex("gps.seal_breach"), F, t)
                          .Summary(std::string("E-seal ") + state + " outside authorised zones at " + Position(pt))
                          .Evidence("seal_state", state)
                          .Evidence("at", FormatUtc(pt.fix_time_ms()))
                          .Take());
      break;
    }
  }
  if (open(IndicatorIndex("gps.seal_mismatch")) && m != nullptr && m->seal_numbers_size() > 0) {
    // Fixes read before against this same declaration did not mismatch (or
    // this would have fired), and outcomes since only excuse more (a fix an
    // outcome excused stays excused when the outcome is trimmed): only the
    // newer ones, and a straggler at its own time, are looked at. After an
    // amendment (or a declaration that came late), the whole window again.
    const v1::GpsTrack& track = s.gps();
    int from = 0;
    if (track.seals_checked_through_ms() != 0 && track.seals_checked_version() == m->version() &&
        track.seals_checked_declared_ms() == m->declared_at_ms()) {
      from = end;
      while (from > 0 && pts.Get(from - 1).fix_time_ms() > track.seals_checked_through_ms()) --from;
      from = std::min(from, first_new);
    }
    bool mismatch = false;
    for (int i = from; i < end; ++i) {
      const FixRef pt = pts.Get(i);
      if (pt.seal_number().empty()) continue;
      // Seal numbers as printed and as read differ in case, spaces and
      // hyphens ("ab-123 456" is seal AB123456).
      const std::string_view read = pt.seal_number();
      auto same = [&](const std::string& seal) { return seal == read || SameAlnumUpper(seal, read); };
      // A seal customs applied at an inspection before this fix is declared too.
      const bool resealed = std::any_of(s.outcomes().begin(), s.outcomes().end(), [&](const v1::InspectionOutcome& o) {
        return o.seen_after_ms() < t && o.inspected_at_ms() <= pt.fix_time_ms() &&
               std::any_of(o.seals_applied().begin(), o.seals_applied().end(), same);
      });
      if (!resealed && std::none_of(m->seal_numbers().begin(), m->seal_numbers().end(), same)) {
        fired.push_back(Fired(p, IndicatorIndex("gps.seal_mismatch"), F, t)
                            .Summary("Seal " + std::string(read) + " read in transit is not on the manifest (" +
                                     m->seal_numbers(0) + ")")
                            .Evidence("seal_read", std::string(read))
                            .Evidence("seal_declared", m->seal_numbers(0))
                            .Take());
        mismatch = true;
        break;
      }
    }
    if (!mismatch) {
      v1::GpsTrack* checked = s.mutable_gps();
      checked->set_seals_checked_through_ms(std::max(track.seals_checked_version() == m->version() &&
                                                             track.seals_checked_declared_ms() == m->declared_at_ms()
                                                         ? track.seals_checked_through_ms()
                                                         : int64_t{0},
                                                     last.fix_time_ms()));
      checked->set_seals_checked_version(m->version());
      checked->set_seals_checked_declared_ms(m->declared_at_ms());
    }
  }
  const IndicatorConfig& border = p.At(IndicatorIndex("gps.unapproved_border_crossing"));
  if (open(IndicatorIndex("gps.unapproved_border_crossing"))) {
    const double min_points = border.Param("min_points", 1);
    int count = 0;
    // Counts over the window when min_points exceeds 1; at 1, a fix examined
    // before would have fired then, so only the new ones are looked at.
    for (int i = min_points <= 1 ? first_new : 0; i < end; ++i) {
      const FixRef pt = pts.Get(i);
      if (pt.border_geofence().empty() || pt.at_approved_crossing()) continue;
      if (++count >= min_points) {
        fired.push_back(Fired(p, IndicatorIndex("gps.unapproved_border_crossing"), F, t)
                            .Summary("Border geofence " + std::string(pt.border_geofence()) + " crossed away from approved crossings at " +
                                     Position(pt))
                            .Evidence("geofence", std::string(pt.border_geofence()))
                            .Evidence("at", FormatUtc(pt.fix_time_ms()))
                            .Take());
        break;
      }
    }
  }
  return MergeFamily(s, FamilyName(F), std::move(fired), false);
}

bool RiskEngine::EvaluateMissingManifest(v1::ContainerState& s, int64_t t) const {
  const IndicatorConfig& cfg = profile_->At(IndicatorIndex("manifest.missing"));
  if (!cfg.enabled || ManifestAsOf(s, t) != nullptr) return false;
  const double grace = cfg.Param("grace_minutes", 120);
  const double minutes = (t - s.first_event_ms()) / double(kMinute);
  if (minutes < grace) return false;
  std::vector<v1::FiredIndicator> fired;
  fired.push_back(Fired(*profile_, IndicatorIndex("manifest.missing"), Family::kManifest, t)
                      .Summary("No manifest " + Num(minutes, 0) + " min after the box was first scanned or tracked")
                      .Evidence("first_seen", FormatUtc(s.first_event_ms()))
                      .Take());
  return MergeFamily(s, FamilyName(Family::kManifest), std::move(fired), false);
}

double RiskEngine::Score(const v1::ContainerState& s) const {
  const std::array<double, kFamilyCount> sum = FamilySums(s);
  double score = 0;
  for (int i = 0; i < kFamilyCount; ++i) score += std::min(sum[i], profile_->family_cap[i]);
  return score;
}

bool RiskEngine::ApplyAlertPolicy(v1::ContainerState& s, int64_t t, int64_t emit_time_ms,
                                  std::vector<v1::Alert>* alerts) const {
  const Profile& p = *profile_;
  const double score = Score(s);
  v1::Priority priority = p.PriorityFor(score);
  std::vector<std::string> new_critical;
  for (const auto& f : s.fired()) {
    if (!f.critical()) continue;
    priority = v1::PRIORITY_CRITICAL;
    const auto& done = s.alerts().emitted_critical_indicator_ids();
    if (std::find(done.begin(), done.end(), f.id()) == done.end()) new_critical.push_back(f.id());
  }
  const bool selected = p.RandomlySelected(s.container_number());
  bool by_selection = false;
  if (selected && priority < p.random_selection.priority) {
    priority = p.random_selection.priority;
    by_selection = true;
  }
  if (priority == v1::PRIORITY_UNSPECIFIED) return false;
  const bool had_book = s.has_alerts();
  auto* book = s.mutable_alerts();
  v1::Alert::AlertReason reason;
  if (priority > book->last_priority()) {
    reason = by_selection ? v1::Alert::ALERT_REASON_RANDOM_SELECTION
             : book->last_priority() == v1::PRIORITY_UNSPECIFIED ? v1::Alert::ALERT_REASON_FIRST_PRIORITY
                                                                 : v1::Alert::ALERT_REASON_PRIORITY_RAISED;
  } else if (!new_critical.empty()) {
    reason = v1::Alert::ALERT_REASON_NEW_CRITICAL_INDICATOR;
  } else {
    return !had_book;  // only the (empty) bookkeeping is new
  }
  book->set_alert_sequence(book->alert_sequence() + 1);
  book->set_last_priority(std::max(priority, book->last_priority()));
  book->set_last_score(score);
  for (auto& id : new_critical) book->add_emitted_critical_indicator_ids(id);
  const std::string id = AlertId(s.container_number(), book->alert_sequence());
  book->set_last_alert_id(id);
  if (alerts == nullptr) return true;

  v1::Alert a;
  a.set_alert_id(id);
  a.set_container_number(s.container_number());
  a.set_sequence(book->alert_sequence());
  a.set_priority(priority);
  a.set_lane(p.lane[priority]);
  a.set_score(score);
  a.set_reason(reason);
  a.set_profile_name(p.name);
  a.set_profile_version(p.version);
  a.set_event_time_ms(t);
  a.set_emit_time_ms(emit_time_ms);
  // Explanation: contributions after family caps, largest first.
  const std::array<double, kFamilyCount> sum = FamilySums(s);
  for (const auto& f : s.fired()) {
    auto* out = a.add_indicators();
    *out = f;
    for (int i = 0; i < kFamilyCount; ++i) {
      if (f.family() == FamilyName(static_cast<Family>(i)) && sum[i] > p.family_cap[i]) {
        out->set_contribution(f.contribution() * p.family_cap[i] / sum[i]);
      }
    }
  }
  std::stable_sort(a.mutable_indicators()->begin(), a.mutable_indicators()->end(),
                   [](const auto& x, const auto& y) { return x.contribution() > y.contribution(); });
  if (selected) {
    // Not an indicator: no weight, no family; says why a low score alerts.
    auto* out = a.add_indicators();
    out->set_id(std::string(kRandomSelectionId));
    out->set_family("selection");
    char summary[160];
    std::snprintf(summary, sizeof summary, "picked by random selection (%.2f %% of containers under profile %s %s)",
                  p.random_selection.rate * 100, p.name.c_str(), p.version.c_str());
    out->set_summary(summary);
    out->set_fired_at_ms(t);
  }
  std::set<std::string> regions;
  if (const v1::Manifest* m = ManifestAsOf(s, t)) {
    a.set_port_of_discharge(m->port_of_discharge());
    a.set_final_destination(m->final_destination());
    a.set_vessel_imo(m->vessel_imo());
    // Discharge, destination and transit: each country the box passes
    // through gets notice before it arrives.
    for (const auto* code : {&m->port_of_discharge(), &m->final_destination()}) {
      if (auto r = p.RegionOfLocode(*code); !r.empty()) regions.insert(r);
    }
    for (const auto& code : m->transhipment_ports()) {
      if (auto r = p.RegionOfLocode(code); !r.empty()) regions.insert(r);
    }
  }
  for (const auto& scan : s.scans()) {
    if (auto r = p.RegionOfLocode(scan.site()); !r.empty() && scan.scanned_at_ms() <= t) regions.insert(r);
  }
  for (const auto& r : regions) a.add_regions(r);
  FillContext(s, t, *a.mutable_context());
  alerts->push_back(std::move(a));
  return true;
}

void RiskEngine::FillContext(const v1::ContainerState& s, int64_t t, v1::AlertContext& c) const {
  const Profile& p = *profile_;
  if (const v1::Manifest* m = ManifestAsOf(s, t)) *c.mutable_manifest() = *m;
  for (const auto& m : s.manifest_versions()) c.set_manifest_versions(c.manifest_versions() + (m.declared_at_ms() <= t));
  constexpr int kScans = 20, kOutcomes = 10, kFixes = 500;
  const int scans_to = FirstAtOrAfter(s.scans(), t + 1, [](const v1::ScanResult& x) { return x.scanned_at_ms(); });
  for (int i = std::max(0, scans_to - kScans); i < scans_to; ++i) *c.add_scans() = s.scans(i);
  const int outcomes_to =
      FirstAtOrAfter(s.outcomes(), t + 1, [](const v1::InspectionOutcome& x) { return x.inspected_at_ms(); });
  // Reports this evaluation was in time for (the last kOutcomes of them):
  // whether a later one had joined when it ran depends on timing.
  std::vector<int> in_case;
  for (int i = 0; i < outcomes_to; ++i) {
    if (s.outcomes(i).seen_after_ms() < t) in_case.push_back(i);
  }
  for (size_t k = in_case.size() > static_cast<size_t>(kOutcomes) ? in_case.size() - kOutcomes : 0; k < in_case.size(); ++k) {
    *c.add_outcomes() = s.outcomes(in_case[k]);
  }
  const FixWindow points(s.gps());
  const int fixes_to = FirstAtOrAfter(points, t + 1, [](const FixRef& x) { return x.fix_time_ms(); });
  double min_lat = 90, max_lat = -90, min_lon = 180, max_lon = -180;
  for (int i = std::max(0, fixes_to - kFixes); i < fixes_to; ++i) {
    const FixRef g = points[i];
    auto* out = c.add_track();
    out->set_fix_time_ms(g.fix_time_ms());
    out->set_lat(g.lat());
    out->set_lon(g.lon());
    out->set_speed_kmh(g.speed_kmh());
    out->set_outside_corridors(g.outside_corridors());
    out->set_in_stop_zone(g.in_stop_zone());
    out->set_seal_state(g.seal_state());
    if (!g.border_geofence().empty()) out->set_border_geofence(std::string(g.border_geofence()));
    min_lat = std::min(min_lat, g.lat()), max_lat = std::max(max_lat, g.lat());
    min_lon = std::min(min_lon, g.lon()), max_lon = std::max(max_lon, g.lon());
  }
  c.set_fixes_seen(s.gps().points_seen());
  if (c.track().empty()) return;
  // The profile's geometry near the track: within 50 km of its bounding box
  // (about 0.45 degrees of latitude; longitude widened by the latitude).
  const double near_m = 50000;
  const double dlat = near_m / 111320.0;
  const double dlon = dlat / std::max(0.1, std::cos(std::max(std::abs(min_lat), std::abs(max_lat)) * M_PI / 180.0));
  auto near = [&](LatLon x, double extra_m) {
    const double e = extra_m / 111320.0;
    return x.lat >= min_lat - dlat - e && x.lat <= max_lat + dlat + e && x.lon >= min_lon - dlon - e &&
           x.lon <= max_lon + dlon + e;
  };
  for (const Corridor& k : p.corridors) {
    bool hit = false;
    for (const LatLon& v : k.points) hit = hit || near(v, k.buffer_m);
    if (!hit) continue;
    auto* out = c.add_corridors();
    out->set_name(k.name);
    out->set_buffer_m(k.buffer_m);
    for (const LatLon& v : k.points) {
      auto* q = out->add_points();
      q->set_lat(v.lat);
      q->set_lon(v.lon);
    }
  }
  for (const auto& [zones, field] : {std::pair{&p.stop_zones, c.mutable_stop_zones()},
                                     std::pair{&p.border_crossings, c.mutable_border_crossings()}}) {
    for (const Zone& z : *zones) {
      if (!near(z.at, z.radius_m)) continue;
      auto* out = field->Add();
      out->set_name(z.name);
      out->mutable_centre()->set_lat(z.at.lat);
      out->mutable_centre()->set_lon(z.at.lon);
      out->set_radius_m(z.radius_m);
    }
  }
}

}  // namespace boxwatch::operators
