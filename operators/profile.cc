#include "operators/profile.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <optional>
#include <regex>
#include <sstream>

#include "core/types.h"

namespace boxwatch::operators {
namespace {

constexpr double kMetresPerDegreeLat = 111320.0;

// Collects every problem with its line, so one run reports all of them.
class Problems {
 public:
  explicit Problems(std::string source) : source_(std::move(source)) {}
  void Add(const YAML::Node& at, const std::string& what) {
    const int line = at.IsDefined() ? at.Mark().line + 1 : 0;
    list_.push_back(source_ + ":" + (line > 0 ? std::to_string(line) : "?") + ": " + what);
  }
  void AddTop(const std::string& what) { list_.push_back(source_ + ": " + what); }
  bool empty() const { return list_.empty(); }
  std::string Join() const {
    std::string out = "profile has " + std::to_string(list_.size()) + " problem(s):";
    for (const auto& p : list_) out += "\n  " + p;
    return out;
  }

 private:
  std::string source_;
  std::vector<std::string> list_;
};

bool GetDouble(const YAML::Node& n, const std::string& what, Problems& p, double* out) {
  if (!n.IsDefined() || !n.IsScalar()) {
    p.Add(n, what + " must be a number");
    return false;
  }
  try {
    *out = n.as<double>();
  } catch (const YAML::Exception&) {
    p.Add(n, what + " must be a number, got '" + n.Scalar() + "'");
    return false;
  }
  if (!std::isfinite(*out)) {
    p.Add(n, what + " must be finite");
    return false;
  }
  return true;
}

bool GetString(const YAML::Node& n, const std::string& what, Problems& p, std::string* out) {
  if (!n.IsDefined() || !n.IsScalar() || n.Scalar().empty()) {
    p.Add(n, what + " must be a non-empty string");
    return false;
  }
  *out = n.Scalar();
  return true;
}

// Requires a mapping and reports keys that are not in `allowed`.
bool CheckMap(const YAML::Node& n, const std::string& what, const std::vector<std::string>& allowed,
              Problems& p) {
  if (!n.IsDefined()) {
    p.AddTop(what + " is missing");
    return false;
  }
  if (!n.IsMap()) {
    p.Add(n, what + " must be a mapping");
    return false;
  }
  for (const auto& kv : n) {
    const std::string key = kv.first.Scalar();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      p.Add(kv.first, "unknown key '" + key + "' in " + what);
    }
  }
  return true;
}

bool GetLatLon(const YAML::Node& lat, const YAML::Node& lon, const std::string& what, Problems& p,
               LatLon* out) {
  if (!GetDouble(lat, what + ".lat", p, &out->lat) || !GetDouble(lon, what + ".lon", p, &out->lon)) {
    return false;
  }
  if (Status s = ValidateCoordinates(out->lat, out->lon); !s.ok()) {
    p.Add(lat, what + ": " + s.message());
    return false;
  }
  return true;
}

v1::Priority PriorityFromName(const std::string& s) {
  if (s == "critical") return v1::PRIORITY_CRITICAL;
  if (s == "high") return v1::PRIORITY_HIGH;
  if (s == "medium") return v1::PRIORITY_MEDIUM;
  if (s == "low") return v1::PRIORITY_LOW;
  return v1::PRIORITY_UNSPECIFIED;
}

void ParseIndicators(const YAML::Node& n, Profile& prof, Problems& p) {
  if (!n.IsDefined() || !n.IsMap()) {
    p.Add(n, "indicators must be a mapping of indicator id to settings");
    return;
  }
  for (const auto& spec : KnownIndicators()) {
    if (!spec.optional && !n[spec.id].IsDefined()) p.Add(n, std::string("indicator ") + spec.id + " is missing");
  }
  for (const auto& kv : n) {
    const std::string id = kv.first.Scalar();
    const auto& known = KnownIndicators();
    auto spec = std::find_if(known.begin(), known.end(), [&](const auto& s) { return id == s.id; });
    if (spec == known.end()) {
      p.Add(kv.first, "unknown indicator '" + id + "' (docs/profiles.md lists the known ones)");
      continue;
    }
    const YAML::Node& v = kv.second;
    if (!CheckMap(v, "indicator " + id, {"enabled", "weight", "critical", "params"}, p)) continue;
    IndicatorConfig cfg;
    if (v["enabled"].IsDefined()) cfg.enabled = v["enabled"].as<bool>(true);
    if (v["critical"].IsDefined()) cfg.critical = v["critical"].as<bool>(false);
    if (!v["weight"].IsDefined()) {
      p.Add(kv.first, "indicator " + id + " has no weight");
    } else if (GetDouble(v["weight"], "indicator " + id + ".weight", p, &cfg.weight) && cfg.weight < 0) {
      p.Add(v["weight"], "indicator " + id + ".weight must be >= 0");
    }
    if (v["params"].IsDefined()) {
      if (!v["params"].IsMap()) {
        p.Add(v["params"], "indicator " + id + ".params must be a mapping");
      } else {
        for (const auto& pkv : v["params"]) {
          const std::string name = pkv.first.Scalar();
          if (std::find_if(spec->params.begin(), spec->params.end(),
                           [&](const char* s) { return name == s; }) == spec->params.end()) {
            p.Add(pkv.first, "indicator " + id + " has no param '" + name + "'");
            continue;
          }
          double value = 0;
          if (GetDouble(pkv.second, "indicator " + id + ".params." + name, p, &value)) {
            if (value < 0) p.Add(pkv.second, "indicator " + id + ".params." + name + " must be >= 0");
            cfg.SetParam(name, value);
          }
        }
      }
    }
    prof.indicators[id] = std::move(cfg);
  }
}

void ParseStringSet(const YAML::Node& n, const std::string& what, Problems& p,
                    const std::function<std::optional<std::string>(const std::string&, std::string*)>& check,
                    std::function<void(std::string)> add) {
  if (!n.IsDefined()) return;
  if (!n.IsSequence()) {
    p.Add(n, what + " must be a list");
    return;
  }
  for (const auto& item : n) {
    std::string s;
    if (!GetString(item, what + " entry", p, &s)) continue;
    std::string canonical = s;
    if (auto err = check(s, &canonical)) {
      p.Add(item, what + ": " + *err);
      continue;
    }
    add(std::move(canonical));
  }
}

std::optional<std::string> AnyString(const std::string&, std::string*) { return std::nullopt; }

std::optional<std::string> LocodeCheck(const std::string& s, std::string* out) {
  auto r = UnLocode::Parse(s);
  if (!r.ok()) return r.error().message;
  *out = r->str();
  return std::nullopt;
}

std::optional<std::string> CountryCheck(const std::string& s, std::string* out) {
  if (s.size() != 2 || !std::isupper(static_cast<unsigned char>(s[0])) ||
      !std::isupper(static_cast<unsigned char>(s[1]))) {
    return "'" + s + "' is not an ISO 3166-1 alpha-2 code (two upper-case letters)";
  }
  *out = s;
  return std::nullopt;
}

void ParseReference(const YAML::Node& n, Profile& prof, Problems& p) {
  if (!CheckMap(n, "reference",
                {"high_risk_ports", "high_risk_countries", "sensitive_hs", "vague_terms",
                 "watchlisted_parties", "watchlisted_vessels", "watchlisted_owner_codes", "norm_hs_prefixes",
                 "norm_nuclides", "threat_nuclides", "goods_weights", "risky_routings"},
                p)) {
    return;
  }
  ParseStringSet(n["high_risk_ports"], "reference.high_risk_ports", p, LocodeCheck,
                 [&](std::string s) { prof.high_risk_ports.insert(std::move(s)); });
  ParseStringSet(n["high_risk_countries"], "reference.high_risk_countries", p, CountryCheck,
                 [&](std::string s) { prof.high_risk_countries.insert(std::move(s)); });
  ParseStringSet(n["vague_terms"], "reference.vague_terms", p, AnyString, [&](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
    prof.vague_terms.push_back(std::move(s));
  });
  ParseStringSet(n["watchlisted_parties"], "reference.watchlisted_parties", p, AnyString,
                 [&](std::string s) { prof.watchlisted_parties.insert(NormaliseName(s)); });
  ParseStringSet(
      n["watchlisted_vessels"], "reference.watchlisted_vessels", p,
      [](const std::string& s, std::string* out) -> std::optional<std::string> {
        if (s.size() != 7 || !std::all_of(s.begin(), s.end(), ::isdigit)) {
          return "'" + s + "' is not a 7-digit IMO number";
        }
        *out = s;
        return std::nullopt;
      },
      [&](std::string s) { prof.watchlisted_vessels.insert(std::move(s)); });
  ParseStringSet(
      n["watchlisted_owner_codes"], "reference.watchlisted_owner_codes", p,
      [](const std::string& s, std::string* out) -> std::optional<std::string> {
        if (s.size() != 3 || !std::all_of(s.begin(), s.end(), ::isupper)) {
          return "'" + s + "' is not a 3-letter owner code";
        }
        *out = s;
        return std::nullopt;
      },
      [&](std::string s) { prof.watchlisted_owner_codes.insert(std::move(s)); });
  ParseStringSet(
      n["norm_hs_prefixes"], "reference.norm_hs_prefixes", p,
      [](const std::string& s, std::string* out) -> std::optional<std::string> {
        if (s.size() < 2 || s.size() > 6 || s.size() % 2 || !std::all_of(s.begin(), s.end(), ::isdigit)) {
          return "'" + s + "' is not an HS prefix of 2, 4 or 6 digits";
        }
        *out = s;
        return std::nullopt;
      },
      [&](std::string s) { prof.norm_hs_prefixes.push_back(std::move(s)); });
  for (const char* list : {"norm_nuclides", "threat_nuclides"}) {
    ParseStringSet(
        n[list], std::string("reference.") + list, p,
        [](const std::string& s, std::string* out) -> std::optional<std::string> {
          static const std::regex nuclide("[A-Za-z]{1,2}-[0-9]{1,3}m?");
          if (!std::regex_match(s, nuclide)) return "'" + s + "' is not a nuclide such as Cs-137";
          *out = s;
          std::transform(out->begin(), out->end(), out->begin(), [](unsigned char c) { return std::toupper(c); });
          return std::nullopt;
        },
        [&, list](std::string s) {
          (std::string(list) == "norm_nuclides" ? prof.norm_nuclides : prof.threat_nuclides).insert(std::move(s));
        });
  }
  // sensitive_hs and goods_weights share their entry's form; goods_weights
  // entries need both weights.
  for (const char* list : {"sensitive_hs", "goods_weights"}) {
    const std::string what = std::string("reference.") + list;
    const YAML::Node& hs = n[list];
    if (!hs.IsDefined()) continue;
    if (!hs.IsSequence()) {
      p.Add(hs, what + " must be a list");
      continue;
    }
    const bool weights = std::string(list) == "goods_weights";
    for (const auto& e : hs) {
      if (!CheckMap(e, what + " entry", {"prefix", "label", "min_kg_per_package", "max_kg_per_package"}, p)) {
        continue;
      }
      SensitiveHs s;
      bool ok = GetString(e["prefix"], std::string(list) + ".prefix", p, &s.prefix) &&
                GetString(e["label"], std::string(list) + ".label", p, &s.label) &&
                GetDouble(e["min_kg_per_package"], std::string(list) + ".min_kg_per_package", p, &s.min_kg_per_package) &&
                GetDouble(e["max_kg_per_package"], std::string(list) + ".max_kg_per_package", p, &s.max_kg_per_package);
      if (!ok) continue;
      if ((s.prefix.size() != 2 && s.prefix.size() != 4 && s.prefix.size() != 6) ||
          !std::all_of(s.prefix.begin(), s.prefix.end(), ::isdigit)) {
        p.Add(e["prefix"], std::string(list) + ".prefix '" + s.prefix + "' must be 2, 4 or 6 digits");
        continue;
      }
      if (s.min_kg_per_package > s.max_kg_per_package) {
        p.Add(e["min_kg_per_package"], std::string(list) + " " + s.prefix +
                                           ": min_kg_per_package is above max_kg_per_package");
        continue;
      }
      if (weights && s.max_kg_per_package <= 0) {
        p.Add(e["max_kg_per_package"], "goods_weights " + s.prefix + ": max_kg_per_package must be > 0");
        continue;
      }
      (weights ? prof.goods_weights : prof.sensitive_hs).push_back(std::move(s));
    }
  }
  const YAML::Node& routings = n["risky_routings"];
  if (routings.IsDefined()) {
    if (!routings.IsSequence()) {
      p.Add(routings, "reference.risky_routings must be a list");
    } else {
      auto place = [&](const YAML::Node& v, const std::string& what, std::string* out) {
        if (!GetString(v, what, p, out)) return false;
        std::string canonical;
        auto err = out->size() == 2 ? CountryCheck(*out, &canonical) : LocodeCheck(*out, &canonical);
        if (err) {
          p.Add(v, what + ": " + *err + " (a UN/LOCODE or a country code)");
          return false;
        }
        *out = canonical;
        return true;
      };
      for (const auto& e : routings) {
        if (!CheckMap(e, "reference.risky_routings entry", {"origin", "hub", "label"}, p)) continue;
        RiskyRouting r;
        const bool ok = place(e["origin"], "risky_routings.origin", &r.origin) &
                        place(e["hub"], "risky_routings.hub", &r.hub);
        if (e["label"].IsDefined()) r.label = e["label"].Scalar();
        if (ok) prof.risky_routings.push_back(std::move(r));
      }
    }
  }
}

void FinishCorridor(Corridor& c) {
  c.min_lat = c.max_lat = c.points.front().lat;
  c.min_lon = c.max_lon = c.points.front().lon;
  for (const auto& pt : c.points) {
    c.min_lat = std::min(c.min_lat, pt.lat);
    c.max_lat = std::max(c.max_lat, pt.lat);
    c.min_lon = std::min(c.min_lon, pt.lon);
    c.max_lon = std::max(c.max_lon, pt.lon);
  }
  const double dlat = c.buffer_m / kMetresPerDegreeLat;
  const double coslat = std::max(0.1, std::cos((c.min_lat + c.max_lat) / 2 * M_PI / 180));
  const double dlon = dlat / coslat;
  c.min_lat -= dlat;
  c.max_lat += dlat;
  c.min_lon -= dlon;
  c.max_lon += dlon;
  c.segment_boxes.clear();
  for (size_t i = 1; i < c.points.size(); ++i) {
    const LatLon a = c.points[i - 1], b = c.points[i];
    c.segment_boxes.push_back({std::min(a.lat, b.lat), std::max(a.lat, b.lat), std::min(a.lon, b.lon),
                               std::max(a.lon, b.lon)});
  }
}

void ParseGeography(const YAML::Node& root, Profile& prof, Problems& p) {
  const YAML::Node& ports = root["ports"];
  if (!ports.IsDefined() || !ports.IsMap()) {
    p.Add(ports, "ports must be a mapping of UN/LOCODE to {name, lat, lon, country}");
  } else {
    for (const auto& kv : ports) {
      std::string code;
      if (auto err = LocodeCheck(kv.first.Scalar(), &code)) {
        p.Add(kv.first, "ports: " + *err);
        continue;
      }
      if (!CheckMap(kv.second, "port " + code, {"name", "lat", "lon", "country"}, p)) continue;
      Port port;
      port.code = code;
      if (!GetString(kv.second["name"], "port " + code + ".name", p, &port.name) ||
          !GetLatLon(kv.second["lat"], kv.second["lon"], "port " + code, p, &port.at) ||
          !GetString(kv.second["country"], "port " + code + ".country", p, &port.country)) {
        continue;
      }
      if (port.country != code.substr(0, 2)) {
        p.Add(kv.second["country"], "port " + code + ": country " + port.country +
                                        " differs from the LOCODE's country " + code.substr(0, 2));
      }
      prof.ports[code] = std::move(port);
    }
  }
  const YAML::Node& regions = root["regions"];
  if (regions.IsDefined() && regions.IsMap()) {
    for (const auto& kv : regions) {
      std::string country, region;
      if (auto err = CountryCheck(kv.first.Scalar(), &country)) {
        p.Add(kv.first, "regions: " + *err);
      } else if (GetString(kv.second, "regions." + country, p, &region)) {
        prof.regions[country] = region;
      }
    }
  } else {
    p.Add(regions, "regions must be a mapping of country to region");
  }
  const YAML::Node& tz = root["timezones"];
  if (tz.IsDefined() && tz.IsMap()) {
    for (const auto& kv : tz) {
      double hours = 0;
      if (GetDouble(kv.second, "timezones." + kv.first.Scalar(), p, &hours)) {
        if (hours < -12 || hours > 14) p.Add(kv.second, "timezones: UTC offset must be within -12..14");
        prof.utc_offset_hours[kv.first.Scalar()] = static_cast<int>(std::lround(hours));
      }
    }
  } else {
    p.Add(tz, "timezones must be a mapping of country to UTC offset in hours");
  }
  for (const auto& [code, port] : prof.ports) {
    if (!prof.regions.count(port.country)) {
      p.AddTop("port " + code + ": country " + port.country + " has no entry in regions");
    }
    if (!prof.utc_offset_hours.count(port.country)) {
      p.AddTop("port " + code + ": country " + port.country + " has no entry in timezones");
    }
  }

  const YAML::Node& corridors = root["corridors"];
  if (!corridors.IsDefined() || !corridors.IsSequence()) {
    p.Add(corridors, "corridors must be a list");
  } else {
    for (const auto& c : corridors) {
      if (!CheckMap(c, "corridor", {"name", "buffer_m", "points"}, p)) continue;
      Corridor cor;
      if (!GetString(c["name"], "corridor.name", p, &cor.name) ||
          !GetDouble(c["buffer_m"], "corridor " + cor.name + ".buffer_m", p, &cor.buffer_m)) {
        continue;
      }
      if (cor.buffer_m <= 0) p.Add(c["buffer_m"], "corridor " + cor.name + ".buffer_m must be > 0");
      if (!c["points"].IsSequence() || c["points"].size() < 2) {
        p.Add(c["points"], "corridor " + cor.name + " needs at least 2 points [lat, lon]");
        continue;
      }
      bool ok = true;
      for (const auto& pt : c["points"]) {
        LatLon ll;
        if (!pt.IsSequence() || pt.size() != 2 ||
            !GetLatLon(pt[0], pt[1], "corridor " + cor.name + " point", p, &ll)) {
          if (pt.IsDefined() && (!pt.IsSequence() || pt.size() != 2)) {
            p.Add(pt, "corridor " + cor.name + ": a point is [lat, lon]");
          }
          ok = false;
          continue;
        }
        cor.points.push_back(ll);
      }
      if (!ok) continue;
      FinishCorridor(cor);
      prof.corridors.push_back(std::move(cor));
    }
  }

  auto parse_zones = [&](const char* key, bool crossings, std::vector<Zone>* out) {
    const YAML::Node& zs = root[key];
    if (!zs.IsDefined() || !zs.IsSequence()) {
      p.Add(zs, std::string(key) + " must be a list");
      return;
    }
    for (const auto& z : zs) {
      std::vector<std::string> allowed = {"name", "lat", "lon", "radius_m"};
      if (crossings) allowed.push_back("countries");
      if (!CheckMap(z, key, allowed, p)) continue;
      Zone zone;
      if (!GetString(z["name"], std::string(key) + ".name", p, &zone.name) ||
          !GetLatLon(z["lat"], z["lon"], std::string(key) + " " + zone.name, p, &zone.at) ||
          !GetDouble(z["radius_m"], std::string(key) + " " + zone.name + ".radius_m", p, &zone.radius_m)) {
        continue;
      }
      if (zone.radius_m <= 0) p.Add(z["radius_m"], zone.name + ": radius_m must be > 0");
      if (crossings) {
        if (!z["countries"].IsSequence() || z["countries"].size() != 2) {
          p.Add(z, "border crossing " + zone.name + " needs countries: [A, B]");
          continue;
        }
        for (const auto& c : z["countries"]) zone.countries.push_back(c.Scalar());
      }
      out->push_back(std::move(zone));
    }
  };
  parse_zones("stop_zones", false, &prof.stop_zones);
  parse_zones("border_crossings", true, &prof.border_crossings);
  prof.stop_zone_index = BuildZoneIndex(prof.stop_zones);
  prof.border_crossing_index = BuildZoneIndex(prof.border_crossings);

  const YAML::Node& premises = root["consignee_premises"];
  if (premises.IsDefined()) {
    if (!premises.IsSequence()) {
      p.Add(premises, "consignee_premises must be a list");
    } else {
      for (const auto& z : premises) {
        if (!CheckMap(z, "consignee_premises", {"name", "party", "lat", "lon", "radius_m"}, p)) continue;
        Premises site;
        std::string party;
        if (!GetString(z["name"], "consignee_premises.name", p, &site.name) ||
            !GetString(z["party"], "consignee_premises " + site.name + ".party", p, &party) ||
            !GetLatLon(z["lat"], z["lon"], "consignee_premises " + site.name, p, &site.at) ||
            !GetDouble(z["radius_m"], "consignee_premises " + site.name + ".radius_m", p, &site.radius_m)) {
          continue;
        }
        if (site.radius_m <= 0 || site.radius_m > 5000) {
          p.Add(z["radius_m"], "consignee_premises " + site.name + ": radius_m must be > 0 and at most 5000");
          continue;
        }
        site.party = NormaliseName(party);
        if (site.party.empty()) {
          p.Add(z["party"], "consignee_premises " + site.name + ": party has no letters or digits");
          continue;
        }
        prof.consignee_premises.push_back(std::move(site));
      }
    }
  }
  const YAML::Node& prefixes = root["border_geofence_prefixes"];
  if (prefixes.IsDefined()) {
    prof.border_geofence_prefixes.clear();
    ParseStringSet(
        prefixes, "border_geofence_prefixes", p,
        [](const std::string& s, std::string* out) -> std::optional<std::string> {
          *out = AlnumUpper(s);
          if (out->empty()) return "'" + s + "' has no letters or digits";
          return std::nullopt;
        },
        [&](std::string s) { prof.border_geofence_prefixes.push_back(std::move(s)); });
    if (prof.border_geofence_prefixes.empty()) {
      p.Add(prefixes, "border_geofence_prefixes must list at least one prefix (leave it out for \"border\")");
    }
  }
}

}  // namespace

const char* FamilyName(Family f) {
  switch (f) {
    case Family::kManifest: return "manifest";
    case Family::kScan: return "scan";
    case Family::kGps: return "gps";
    case Family::kHistory: return "history";
  }
  return "unknown";
}

std::optional<size_t> FindIndicatorIndex(std::string_view id) {
  static const std::unordered_map<std::string_view, size_t> by_id = [] {
    std::unordered_map<std::string_view, size_t> m;
    for (size_t i = 0; i < kIndicatorIds.size(); ++i) m.emplace(kIndicatorIds[i], i);
    return m;
  }();
  auto it = by_id.find(id);
  if (it == by_id.end()) return std::nullopt;
  return it->second;
}

const std::vector<IndicatorSpec>& KnownIndicators() {
  static const std::vector<IndicatorSpec> kSpecs = {
      {"route.high_risk_port", Family::kManifest, {}},
      {"route.high_risk_transhipment", Family::kManifest, {}},
      {"route.detour", Family::kManifest, {"max_detour_ratio"}},
      {"party.watchlisted", Family::kManifest, {"fuzzy_min_similarity", "fuzzy_factor"}},
      {"vessel.watchlisted", Family::kManifest, {}},
      {"owner.watchlisted", Family::kManifest, {}},
      {"goods.vague_description", Family::kManifest, {}},
      {"goods.sensitive_hs", Family::kManifest, {}},
      {"goods.weight_implausible", Family::kManifest, {"tolerance_fraction"}},
      {"payment.cash", Family::kManifest, {"new_trader_factor"}},
      {"manifest.late_amendment", Family::kManifest, {"cutoff_hours_before_eta", "minor_factor"}},
      {"manifest.missing", Family::kManifest, {"grace_minutes"}},
      {"manifest.incomplete", Family::kManifest, {}},
      {"scan.radiation_gamma", Family::kScan, {"factor", "norm_factor", "norm_weight_factor"}},
      {"scan.radiation_neutron", Family::kScan, {"factor"}},
      {"scan.threat_nuclide", Family::kScan, {}},
      {"scan.xray_anomaly", Family::kScan, {"min_anomaly_score"}},
      {"scan.weight_mismatch",
       Family::kScan,
       {"tolerance_fraction", "default_tare_20_kg", "default_tare_40_kg", "default_tare_45_kg"}},
      {"gps.route_deviation", Family::kGps, {"min_points", "min_minutes"}},
      {"gps.unscheduled_stop",
       Family::kGps,
       {"max_speed_kmh", "min_minutes", "night_factor", "night_start_hour", "night_end_hour", "near_zone_m",
        "near_zone_factor", "sparse_gap_minutes"}},
      {"gps.tracking_gap", Family::kGps, {"max_gap_minutes"}},
      {"gps.seal_breach", Family::kGps, {"inspection_minutes"}},
      {"gps.seal_mismatch", Family::kGps, {}},
      {"gps.unapproved_border_crossing", Family::kGps, {"min_points"}},
      {"history.party_seizure", Family::kHistory, {}},
      {"route.risky_routing", Family::kManifest, {}, true},
      {"party.new_trader", Family::kManifest, {"new_days"}, true},
      {"scan.xray_inconclusive", Family::kScan, {}, true},
      {"gps.off_corridor_stop", Family::kGps, {"max_speed_kmh", "min_minutes"}, true},
      {"gps.corridor_drift", Family::kGps, {"min_points", "min_rise_m", "jitter_m", "max_step_m", "min_speed_kmh"}, true},
      {"history.sibling_seizure", Family::kHistory, {}, true},
      {"manifest.split_consignment", Family::kManifest, {"min_boxes", "window_days", "max_box_kg"}, true},
  };
  return kSpecs;
}

const IndicatorConfig& Profile::Indicator(std::string_view id) const {
  static const IndicatorConfig kDisabled{.enabled = false};
  auto it = indicators.find(id);
  return it == indicators.end() ? kDisabled : it->second;
}

namespace {
const SensitiveHs* LongestPrefix(const std::vector<SensitiveHs>& entries, std::string_view hs) {
  const SensitiveHs* best = nullptr;
  for (const auto& s : entries) {
    if (hs.substr(0, s.prefix.size()) == s.prefix && (!best || s.prefix.size() > best->prefix.size())) {
      best = &s;
    }
  }
  return best;
}
}  // namespace

const SensitiveHs* Profile::MatchSensitiveHs(std::string_view hs) const { return LongestPrefix(sensitive_hs, hs); }

const SensitiveHs* Profile::MatchGoodsWeight(std::string_view hs) const {
  const SensitiveHs* s = LongestPrefix(sensitive_hs, hs);
  if (s != nullptr && s->max_kg_per_package > 0) return s;
  return LongestPrefix(goods_weights, hs);
}

bool Profile::IsBorderGeofence(std::string_view geofence_id) const {
  return std::any_of(border_geofence_prefixes.begin(), border_geofence_prefixes.end(),
                     [&](const std::string& prefix) { return AlnumUpperStartsWith(geofence_id, prefix); });
}

bool RiskyRouting::Matches(std::string_view loading, std::string_view transhipment) const {
  auto side = [](const std::string& want, std::string_view code) {
    return code.size() == 5 && (want.size() == 2 ? code.substr(0, 2) == want : code == want);
  };
  return side(origin, loading) && side(hub, transhipment);
}

v1::Priority Profile::PriorityFor(double score) const {
  for (v1::Priority pr : {v1::PRIORITY_CRITICAL, v1::PRIORITY_HIGH, v1::PRIORITY_MEDIUM, v1::PRIORITY_LOW}) {
    if (score >= threshold[pr]) return pr;
  }
  return v1::PRIORITY_UNSPECIFIED;
}

bool Profile::RandomlySelected(std::string_view container_number) const {
  if (random_selection.rate <= 0) return false;
  uint64_t h = 1469598103934665603ULL;  // FNV-1a over "container\nname\nversion"
  auto mix = [&h](std::string_view part) {
    for (unsigned char c : part) h = (h ^ c) * 1099511628211ULL;
    h = (h ^ '\n') * 1099511628211ULL;
  };
  mix(container_number);
  mix(name);
  mix(version);
  h ^= h >> 29;  // FNV's low bits mix poorly; fold the high ones in
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 32;
  return static_cast<double>(h >> 11) * 0x1.0p-53 < random_selection.rate;
}

std::string Profile::RegionOfLocode(std::string_view locode) const {
  if (locode.size() < 2) return "";
  auto it = regions.find(std::string(locode.substr(0, 2)));
  return it == regions.end() ? "" : it->second;
}

namespace {
// The C locale's classes, spelled out: names and seals are compared byte by
// byte in ASCII whatever the process locale, and without a call per byte.
constexpr bool AsciiAlnum(unsigned char c) {
  return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}
constexpr char AsciiUpper(unsigned char c) { return static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c); }
constexpr bool NameSeparator(unsigned char c) {
  return c == ' ' || (c >= '\t' && c <= '\r') || c == '-' || c == '/' || c == '&';
}

// Calls emit(c) with each byte of NormaliseName(name) in turn, stopping
// when it returns false; returns whether it went to the end.
template <typename Emit>
bool ForEachNameByte(std::string_view name, Emit emit) {
  bool space = false, any = false;
  for (unsigned char c : name) {
    if (AsciiAlnum(c)) {
      if (space && any && !emit(' ')) return false;
      space = false;
      any = true;
      if (!emit(AsciiUpper(c))) return false;
    } else if (NameSeparator(c)) {
      space = true;
    }
  }
  return true;
}
}  // namespace

std::string NormaliseName(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  ForEachNameByte(name, [&](char c) {
    out.push_back(c);
    return true;
  });
  return out;
}

bool NormalisesTo(std::string_view name, std::string_view normalised) {
  size_t i = 0;
  return ForEachNameByte(name, [&](char c) { return i < normalised.size() && normalised[i++] == c; }) &&
         i == normalised.size();
}

std::string AlnumUpper(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (AsciiAlnum(c)) out.push_back(AsciiUpper(c));
  }
  return out;
}

bool SameAlnumUpper(std::string_view a, std::string_view b) {
  size_t i = 0, j = 0;
  for (;;) {
    while (i < a.size() && !AsciiAlnum(static_cast<unsigned char>(a[i]))) ++i;
    while (j < b.size() && !AsciiAlnum(static_cast<unsigned char>(b[j]))) ++j;
    if (i == a.size() || j == b.size()) return i == a.size() && j == b.size();
    if (AsciiUpper(static_cast<unsigned char>(a[i++])) != AsciiUpper(static_cast<unsigned char>(b[j++]))) return false;
  }
}

bool AlnumUpperStartsWith(std::string_view text, std::string_view prefix) {
  size_t j = 0;
  for (size_t i = 0; j < prefix.size(); ++i) {
    if (i == text.size()) return false;
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (AsciiAlnum(c) && AsciiUpper(c) != prefix[j++]) return false;
  }
  return true;
}

Result<Profile> ParseProfile(std::string_view yaml_text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::ParserException& e) {
    return InvalidArgument("profile " + source + ":" + std::to_string(e.mark.line + 1) +
                           ": not valid YAML: " + e.msg);
  }
  Problems p(source);
  Profile prof;
  if (!CheckMap(root, "the profile document",
                {"name", "version", "description", "thresholds", "lanes", "family_caps", "indicators",
                 "reference", "ports", "regions", "timezones", "corridors", "stop_zones",
                 "border_crossings", "feedback", "random_selection", "consignee_premises",
                 "border_geofence_prefixes"},
                p)) {
    return InvalidArgument(p.Join());
  }
  if (GetString(root["name"], "name", p, &prof.name) &&
      !std::regex_match(prof.name, std::regex("[a-z0-9-]+"))) {
    p.Add(root["name"], "name '" + prof.name + "' may use only a-z, 0-9 and '-'");
  }
  (void)GetString(root["version"], "version", p, &prof.version);
  if (root["description"].IsDefined()) prof.description = root["description"].Scalar();

  const std::vector<std::string> priorities = {"critical", "high", "medium", "low"};
  if (CheckMap(root["thresholds"], "thresholds", priorities, p)) {
    double previous = INFINITY;
    for (const auto& name : priorities) {
      double v = 0;
      if (!GetDouble(root["thresholds"][name], "thresholds." + name, p, &v)) continue;
      if (v >= previous) {
        p.Add(root["thresholds"][name], "thresholds must decrease from critical to low; " + name +
                                            " = " + std::to_string(v) + " is not below the one above");
      }
      if (v <= 0) p.Add(root["thresholds"][name], "thresholds." + name + " must be > 0");
      previous = v;
      prof.threshold[PriorityFromName(name)] = v;
    }
  }
  if (CheckMap(root["lanes"], "lanes", priorities, p)) {
    for (const auto& name : priorities) {
      const YAML::Node& n = root["lanes"][name];
      const std::string lane = n.IsDefined() ? n.Scalar() : "";
      v1::Lane l = lane == "red" ? v1::LANE_RED : lane == "yellow" ? v1::LANE_YELLOW : lane == "green" ? v1::LANE_GREEN : v1::LANE_UNSPECIFIED;
      if (l == v1::LANE_UNSPECIFIED) p.Add(n, "lanes." + name + " must be red, yellow or green");
      prof.lane[PriorityFromName(name)] = l;
    }
  }
  if (CheckMap(root["family_caps"], "family_caps", {"manifest", "scan", "gps", "history"}, p)) {
    for (int f = 0; f < kFamilyCount; ++f) {
      const char* name = FamilyName(static_cast<Family>(f));
      double v = 0;
      if (GetDouble(root["family_caps"][name], std::string("family_caps.") + name, p, &v)) {
        prof.family_cap[f] = v;
      }
    }
  }
  ParseIndicators(root["indicators"], prof, p);
  ParseReference(root["reference"], prof, p);
  if (root["feedback"].IsDefined() && CheckMap(root["feedback"], "feedback", {"seizure_watch_days", "seizure_parties", "exclude_rip_on_off"}, p)) {
    const YAML::Node& f = root["feedback"];
    double days = 0;
    if (f["seizure_watch_days"].IsDefined() && GetDouble(f["seizure_watch_days"], "feedback.seizure_watch_days", p, &days)) {
      if (days < 0 || days > 3650) p.Add(f["seizure_watch_days"], "feedback.seizure_watch_days must be 0 (off) to 3650");
      prof.feedback.seizure_watch_days = days;
    }
    if (f["seizure_parties"].IsDefined()) {
      prof.feedback.seizure_parties.clear();
      ParseStringSet(
          f["seizure_parties"], "feedback.seizure_parties", p,
          [](const std::string& role, std::string*) -> std::optional<std::string> {
            if (role == "consignee" || role == "shipper" || role == "notify_party" || role == "bill_of_lading") {
              return std::nullopt;
            }
            return "'" + role + "' is not consignee, shipper, notify_party or bill_of_lading";
          },
          [&](std::string role) { prof.feedback.seizure_parties.push_back(std::move(role)); });
    }
    if (f["exclude_rip_on_off"].IsDefined()) {
      const YAML::Node& x = f["exclude_rip_on_off"];
      if (!x.IsScalar() || (x.Scalar() != "true" && x.Scalar() != "false")) {
        p.Add(x, "feedback.exclude_rip_on_off must be true or false");
      } else {
        prof.feedback.exclude_rip_on_off = x.Scalar() == "true";
      }
    }
  }
  if (root["random_selection"].IsDefined() &&
      CheckMap(root["random_selection"], "random_selection", {"rate", "priority"}, p)) {
    const YAML::Node& r = root["random_selection"];
    double rate = 0;
    if (GetDouble(r["rate"], "random_selection.rate", p, &rate)) {
      if (rate < 0 || rate > 0.2) p.Add(r["rate"], "random_selection.rate must be 0 (off) to 0.2");
      prof.random_selection.rate = rate;
    }
    if (r["priority"].IsDefined()) {
      const std::string name = r["priority"].Scalar();
      if (std::find(priorities.begin(), priorities.end(), name) == priorities.end()) {
        p.Add(r["priority"], "random_selection.priority must be low, medium, high or critical");
      } else {
        prof.random_selection.priority = PriorityFromName(name);
      }
    }
  }
  ParseGeography(root, prof, p);
  if (!p.empty()) return InvalidArgument(p.Join());
  for (size_t i = 0; i < kIndicatorIds.size(); ++i) prof.by_index[i] = prof.Indicator(kIndicatorIds[i]);
  return prof;
}

Result<Profile> LoadProfile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error{Errc::kNotFound, "cannot read profile " + path};
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseProfile(ss.str(), path);
}

}  // namespace boxwatch::operators
