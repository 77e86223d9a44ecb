#pragma once
// A risk profile: the versioned set of indicator parameters, weights,
// thresholds, reference lists and geography an analyst maintains as YAML
// (docs/profiles.md explains every field; profiles/default.yaml ships).
//
// LoadProfile/ParseProfile validate the whole document and report every
// problem at once, each as "<source>:<line>: <what is wrong>". A Profile is
// immutable after loading and safe to share between threads.

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "boxwatch/v1/common.pb.h"
#include "core/result.h"
#include "operators/names.h"

namespace boxwatch::operators {

// Indicator families; each has a cap on its total contribution.
enum class Family { kManifest = 0, kScan = 1, kGps = 2, kHistory = 3 };
inline constexpr int kFamilyCount = 4;
const char* FamilyName(Family f);

// Every indicator the engine knows, with its family and the params it reads.
struct IndicatorSpec {
  const char* id;
  Family family;
  std::vector<const char*> params;
  // Added after the first profile format: a profile written before it may
  // leave it out (it is then disabled). Every other indicator must be listed.
  bool optional = false;
};
const std::vector<IndicatorSpec>& KnownIndicators();

// The ids of KnownIndicators(), in the same order, for compile-time look-ups:
// IndicatorIndex("gps.seal_breach") is a constant, so the hot path indexes an
// array instead of hashing a string.
inline constexpr std::array<std::string_view, 32> kIndicatorIds = {
    "route.high_risk_port", "route.high_risk_transhipment", "route.detour", "party.watchlisted",
    "vessel.watchlisted", "owner.watchlisted", "goods.vague_description", "goods.sensitive_hs",
    "goods.weight_implausible", "payment.cash", "manifest.late_amendment", "manifest.missing", "manifest.incomplete",
    "scan.radiation_gamma", "scan.radiation_neutron", "scan.threat_nuclide", "scan.xray_anomaly",
    "scan.weight_mismatch",
    "gps.route_deviation", "gps.unscheduled_stop", "gps.tracking_gap", "gps.seal_breach",
    "gps.seal_mismatch", "gps.unapproved_border_crossing", "history.party_seizure",
    // Optional (IndicatorSpec::optional): absent from older profiles.
    "route.risky_routing", "party.new_trader", "scan.xray_inconclusive", "gps.off_corridor_stop",
    "gps.corridor_drift", "history.sibling_seizure", "manifest.split_consignment"};

consteval size_t IndicatorIndex(std::string_view id) {
  for (size_t i = 0; i < kIndicatorIds.size(); ++i) {
    if (kIndicatorIds[i] == id) return i;
  }
  throw "unknown indicator id";  // a compile error when reached in a constant evaluation
}
// The same at run time: the index of `id` in kIndicatorIds, if it is one.
std::optional<size_t> FindIndicatorIndex(std::string_view id);
static_assert(kIndicatorIds.size() <= 64, "FindIndicatorIndex's users keep indicator sets in 64-bit masks");

// A param's name, hashed when the engine's code is compiled: the hot path
// compares one integer per param the profile sets instead of a string.
// A unit test checks that no two params of one indicator share a hash.
constexpr uint64_t HashParamName(std::string_view name) {
  uint64_t h = 14695981039346656037ull;  // FNV-1a, 64 bits
  for (char c : name) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}
struct ParamName {
  template <size_t N>
  consteval ParamName(const char (&text)[N]) : hash(HashParamName(std::string_view(text, N - 1))) {}  // NOLINT: implicit on purpose
  uint64_t hash;
};

struct IndicatorConfig {
  bool enabled = true;
  double weight = 0;      // score contribution when fired, before the family cap
  bool critical = false;  // firing makes the alert CRITICAL whatever the score
  // The params the profile sets, a few per indicator: a flat list, looked
  // up on the hot path by the name's hash (comparing names cost 3 % of a
  // task's instructions).
  struct ParamValue {
    std::string name;
    uint64_t hash = 0;
    double value = 0;
  };
  std::vector<ParamValue> params;
  double Param(ParamName name, double fallback) const {
    for (const ParamValue& p : params) {
      if (p.hash == name.hash) return p.value;
    }
    return fallback;
  }
  void SetParam(std::string_view name, double value) {
    const uint64_t hash = HashParamName(name);
    for (ParamValue& p : params) {
      if (p.hash == hash) {
        p.value = value;
        return;
      }
    }
    params.push_back({std::string(name), hash, value});
  }
};

struct LatLon {
  double lat = 0;
  double lon = 0;
};

struct Port {
  std::string code;  // UN/LOCODE
  std::string name;
  LatLon at;
  std::string country;  // ISO 3166-1 alpha-2
};

struct SensitiveHs {
  std::string prefix;  // 2, 4 or 6 digits
  std::string label;
  double min_kg_per_package = 0;
  double max_kg_per_package = 0;
};

// An origin x transhipment-hub combination analysts flag (route.risky_routing):
// each side a UN/LOCODE (5 characters) or an ISO country (2 letters).
struct RiskyRouting {
  std::string origin;
  std::string hub;
  std::string label;
  bool Matches(std::string_view loading, std::string_view transhipment) const;
};

struct Corridor {
  std::string name;
  double buffer_m = 0;
  std::vector<LatLon> points;
  // Bounding box grown by the buffer, for a cheap first test.
  double min_lat = 0, max_lat = 0, min_lon = 0, max_lon = 0;
  // Each segment's bounding box (segment i joins points i and i+1): a lower
  // bound of a point's distance to it, so that segments that cannot be the
  // nearest or within the buffer are passed over (operators/geo.cc).
  // Filled with the bounding box; empty: every segment is measured.
  struct Box {
    double min_lat, max_lat, min_lon, max_lon;
  };
  std::vector<Box> segment_boxes;
};

struct Zone {
  std::string name;
  LatLon at;
  double radius_m = 0;
  std::vector<std::string> countries;  // border crossings only
};

// Zones by latitude, for ZoneContaining (operators/geo.h): only the zones
// whose latitude is within the largest radius of a point's are looked at.
// Built for a list of zones (BuildZoneIndex); an index of another list
// (another size) is not used.
struct ZoneIndex {
  struct Entry {
    double lat;
    uint32_t zone;  // index in the list
  };
  std::vector<Entry> by_lat;  // ascending latitude
  double reach_deg = 0;       // the largest radius, in degrees of latitude, with a margin
};
ZoneIndex BuildZoneIndex(const std::vector<Zone>& zones);

// Premises of an authorised consignee: the box may stand and be opened there
// when that party is the declared consignee (gps.unscheduled_stop,
// gps.seal_breach).
struct Premises {
  std::string name;
  std::string party;  // NormaliseName form
  LatLon at;
  double radius_m = 0;
};

struct Profile {
  std::string name;
  std::string version;
  std::string description;
  // Minimum score per priority, indexed by v1::Priority (LOW..CRITICAL).
  std::array<double, 5> threshold{};
  std::array<v1::Lane, 5> lane{};
  std::array<double, kFamilyCount> family_cap{};
  // Keyed by indicator id; transparent lookup, so a string_view needs no copy.
  struct IdHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, IndicatorConfig, IdHash, std::equal_to<>> indicators;

  std::unordered_set<std::string> high_risk_ports;
  std::unordered_set<std::string> high_risk_countries;
  std::vector<SensitiveHs> sensitive_hs;
  // Plausible kilograms per package for goods that are not sensitive
  // (goods.weight_implausible reads a sensitive entry first, then these).
  std::vector<SensitiveHs> goods_weights;
  std::vector<RiskyRouting> risky_routings;
  std::vector<std::string> vague_terms;  // upper-cased
  NameList watchlisted_parties;  // normalised (NormaliseName)
  std::unordered_set<std::string> watchlisted_vessels;
  std::unordered_set<std::string> watchlisted_owner_codes;
  // Radiation read against the declared goods: HS prefixes of goods that
  // carry naturally occurring radioactive material (NORM), the nuclides
  // such goods show, and nuclides that are never cargo (sources).
  std::vector<std::string> norm_hs_prefixes;
  std::unordered_set<std::string> norm_nuclides;    // upper case, e.g. "K-40"
  std::unordered_set<std::string> threat_nuclides;  // upper case, e.g. "CS-137"

  std::unordered_map<std::string, Port> ports;
  std::unordered_map<std::string, std::string> regions;  // country -> region
  std::unordered_map<std::string, int> utc_offset_hours;  // country -> offset
  std::vector<Corridor> corridors;
  std::vector<Zone> stop_zones;
  std::vector<Zone> border_crossings;
  ZoneIndex stop_zone_index;        // of stop_zones
  ZoneIndex border_crossing_index;  // of border_crossings
  std::vector<Premises> consignee_premises;
  // How tracker vendors name border geofences: an id starting with one of
  // these (compared case-blind, on letters and digits) is a border
  // transition. Default: "border".
  std::vector<std::string> border_geofence_prefixes = {"BORDER"};

  // What inspection outcomes feed back into the reference data.
  struct Feedback {
    // A seizure puts the container's parties on the seized-parties list for
    // this many days from the inspection (history.party_seizure); 0 turns it off.
    double seizure_watch_days = 0;
    // Which manifest parties: "consignee", "shipper", "notify_party".
    // Also "bill_of_lading": the other boxes of the seized box's bill of
    // lading are listed too (history.sibling_seizure).
    std::vector<std::string> seizure_parties = {"consignee"};
    // A seizure reported as a rip-on/rip-off lists none of the box's parties
    // (they are its victims).
    bool exclude_rip_on_off = true;
  } feedback;

  // Random selection for inspection (as customs selectivity systems do), so
  // that recorded outcomes are not only those the profile chose: a share
  // `rate` of containers, picked by a hash of the container number and the
  // profile's name and version (so the same box is picked by every worker,
  // replay and backtest of one version), gets an alert of at least
  // `priority` with its own reason. 0: off.
  struct RandomSelection {
    double rate = 0;
    v1::Priority priority = v1::PRIORITY_MEDIUM;
  } random_selection;
  // Whether random selection picks this container under this profile.
  bool RandomlySelected(std::string_view container_number) const;

  const IndicatorConfig& Indicator(std::string_view id) const;
  // The same as Indicator(kIndicatorIds[index]), without a look-up.
  const IndicatorConfig& At(size_t index) const { return by_index[index]; }
  std::array<IndicatorConfig, kIndicatorIds.size()> by_index{};  // filled by ParseProfile
  // The sensitive-HS entry with the longest prefix matching `hs`, or null.
  const SensitiveHs* MatchSensitiveHs(std::string_view hs) const;
  // The plausible-weight entry for `hs`: the longest matching sensitive
  // entry, else the longest matching goods_weights entry, or null.
  const SensitiveHs* MatchGoodsWeight(std::string_view hs) const;
  // Whether `geofence_id` names a border geofence (border_geofence_prefixes).
  bool IsBorderGeofence(std::string_view geofence_id) const;
  v1::Priority PriorityFor(double score) const;
  // Region of a UN/LOCODE's country ("" when unknown).
  std::string RegionOfLocode(std::string_view locode) const;
};

// Upper case, punctuation dropped, runs of spaces folded: "Acme Trading, Co." -> "ACME TRADING CO".
std::string NormaliseName(std::string_view name);
// Letters and digits only, upper case: "ab-123 456" -> "AB123456" (seal
// numbers, geofence ids).
std::string AlnumUpper(std::string_view text);
// The same comparisons without building the strings (hot paths):
// NormaliseName(name) == normalised; AlnumUpper(a) == AlnumUpper(b);
// AlnumUpper(text) starts with `prefix` (itself in AlnumUpper form).
bool NormalisesTo(std::string_view name, std::string_view normalised);
bool SameAlnumUpper(std::string_view a, std::string_view b);
bool AlnumUpperStartsWith(std::string_view text, std::string_view prefix);

Result<Profile> ParseProfile(std::string_view yaml_text, const std::string& source_name);
Result<Profile> LoadProfile(const std::string& path);

}  // namespace boxwatch::operators
