#include "sim/traffic.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "core/types.h"
#include "operators/decode.h"
#include "operators/geo.h"

namespace boxwatch::sim {
namespace {

// A UUID-shaped id (8-4-4-4-12 hex, version 4 and variant bits set) derived
// from `text`: the same text always gives the same id.
std::string UuidFor(const std::string& text) {
  uint64_t a = 1469598103934665603ULL, b = 0x9e3779b97f4a7c15ULL;
  for (unsigned char c : text) {
    a = (a ^ c) * 1099511628211ULL;
    b = (b ^ c) * 0x100000001b3ULL + (a >> 17);
  }
  char out[40];
  std::snprintf(out, sizeof out, "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xfff),
                static_cast<unsigned>(0x8000 | ((b >> 48) & 0x3fff)),
                static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return out;
}

using operators::LatLon;
constexpr int64_t kMin = 60000;
constexpr int64_t kHour = 60 * kMin;

std::string Number(const std::string& owner, int serial) {
  char first[32];
  std::snprintf(first, sizeof first, "%.3sU%06d", owner.c_str(), serial % 1000000);
  return std::string(first) + std::to_string(ContainerNumber::CheckDigit(first));
}

// Goods that fit the box: HS code, description, packages and kg per package.
struct Goods {
  const char* hs;
  const char* description;
  int min_packages, max_packages;
  double min_kg, max_kg;  // per package
  bool norm;              // naturally radioactive (ceramics, potash fertiliser)
};
constexpr Goods kGoods[] = {
    {"690721", "glazed ceramic floor tiles", 18, 24, 800, 1000, true},
    {"310420", "potassium chloride fertiliser in bags", 400, 540, 48, 52, true},
    {"100630", "milled jasmine rice", 900, 1000, 24.5, 25.5, false},
    {"520852", "printed cotton fabric rolls", 150, 260, 55, 80, false},
    {"870899", "automotive spare parts", 40, 90, 60, 180, false},
    {"851762", "network switching equipment", 200, 400, 6, 14, false},
    {"401120", "truck tyres", 90, 120, 55, 70, false},
    {"940360", "flat-pack wooden furniture", 100, 180, 25, 60, false},
};

// Party names are built from parts, so watchlists and seizure feedback hit
// only the boxes they should.
constexpr const char* kPlaces[] = {"Mekong", "Lanxang", "Caspian", "Kura", "Silk Road", "Isan", "Aral",
                                   "Tbilisi", "Khorat", "Samarkand", "Batumi", "Vientiane", "Ganja", "Mangyshlak"};
constexpr const char* kTrades[] = {"Building Supplies", "Agro Trading", "Textile Import", "Motor Parts",
                                   "Consumer Goods", "Industrial Supply", "Food Distribution", "Home Furnishing"};
constexpr const char* kSuffixes[] = {"Co Ltd", "LLC", "Sole Co", "JSC", "Trading House", "Import Export"};
constexpr const char* kShippers[] = {"Shanghai Ceramics Export Ltd", "Ningbo Ocean Textiles Co",
                                     "Busan Auto Components Corp", "Chennai Cotton Mills Ltd",
                                     "Mersin Agro Products AS", "Shenzhen Netcom Devices Ltd",
                                     "Jebel Ali General Trading FZE", "Port Klang Rubber Industries"};

// Parties of smuggling scenarios come from their own words, one name per
// scenario container, so no legitimate box shares a party with them (a
// seizure's feedback then touches only the guilty).
constexpr const char* kFrontPlaces[] = {"Zarvan", "Ostrel", "Kelmar", "Vandor", "Tiraz", "Belkov", "Murano",
                                        "Sarnak", "Dovran", "Elmira", "Qarsh", "Nizva", "Korvel", "Stavra",
                                        "Yelmar", "Ardon", "Pelkar", "Ruzan", "Tavrik", "Gomel"};
constexpr const char* kFrontTrades[] = {"General Trading", "Impex", "Commerce", "Global Supply", "Logistics",
                                        "Merchandise", "Enterprises", "Distribution", "Resources", "Ventures",
                                        "Holdings", "Export"};
constexpr const char* kFrontSuffixes[] = {"LLC", "Ltd", "FZE", "LLP", "SA", "GmbH", "OU", "Sdn Bhd"};

std::string FrontName(int k) {
  const int n = static_cast<int>(std::size(kFrontPlaces) * std::size(kFrontTrades) * std::size(kFrontSuffixes));
  k %= n;
  return std::string(kFrontPlaces[k % std::size(kFrontPlaces)]) + " " +
         kFrontTrades[(k / std::size(kFrontPlaces)) % std::size(kFrontTrades)] + " " +
         kFrontSuffixes[k / (std::size(kFrontPlaces) * std::size(kFrontTrades))];
}

std::string TitleCase(std::string s) {
  bool start = true;
  for (auto& c : s) {
    c = static_cast<char>(start ? std::toupper(static_cast<unsigned char>(c)) : std::tolower(static_cast<unsigned char>(c)));
    start = c == ' ';
  }
  return s;
}

// Another spelling of a listed name, as declarants write one company: a
// different legal form, abbreviated words, a Latin transliteration variant
// (KH/H, V/W, K/C, a doubled letter), in title case. The screening key
// (operators/names.h) is the listed one's.
std::string Respell(const std::string& listed, std::mt19937& rng) {
  std::vector<std::string> words;
  for (size_t at = 0; at < listed.size();) {
    const size_t space = std::min(listed.find(' ', at), listed.size());
    words.push_back(listed.substr(at, space - at));
    at = space + 1;
  }
  static const std::set<std::string> kForms = {"LLC", "LLP", "LTD", "CO", "SA", "GMBH", "JSC", "FZE"};
  static const std::map<std::string, std::string> kShort = {
      {"GENERAL", "Gen."}, {"TRADING", "Trdg"}, {"LOGISTICS", "Log."}, {"HOLDINGS", "Hldgs"},
      {"SHIPPING", "Shpg"}, {"SERVICES", "Svcs"}, {"EXPORT", "Exp."}, {"EXPORTS", "Exp."}, {"CHEMICALS", "Chem."}};
  std::string out;
  const uint32_t how = rng() % 4;
  for (size_t i = 0; i < words.size(); ++i) {
    std::string w = words[i];
    if (kForms.count(w)) continue;  // legal forms go; one is added below
    if (w == "AND") w = "&";
    if (how == 1 && kShort.count(w)) w = kShort.at(w);
    if (how == 2 && i == 0) {  // transliteration of the distinctive first word
      if (w.rfind("KH", 0) == 0) w = "H" + w.substr(2);
      else if (w[0] == 'V') w[0] = 'W';
      else if (w[0] == 'K') w = "KH" + w.substr(1);
      else if (w.find('K') != std::string::npos) w[w.find('K')] = 'C';
      else w.insert(w.size() - 1, 1, w[w.size() - 1]);  // a doubled last letter
    }
    out += (out.empty() ? "" : " ") + (w.back() == '.' || w == "Trdg" || w == "Hldgs" || w == "Shpg" || w == "Svcs"
                                            ? w
                                            : TitleCase(w));
  }
  static const char* kLegal[] = {"L.L.C.", "Ltd.", "Co., Ltd", "Limited", "LLP", "JSC", ""};
  const char* form = kLegal[rng() % std::size(kLegal)];
  if (how == 3) return out;  // no legal form at all
  return *form ? out + " " + form : out;
}

std::string PartyName(std::mt19937& rng) {
  return std::string(kPlaces[rng() % std::size(kPlaces)]) + " " + kTrades[rng() % std::size(kTrades)] + " " +
         kSuffixes[rng() % std::size(kSuffixes)];
}

struct Route {
  const operators::Corridor* corridor = nullptr;
  std::string discharge;    // seaport at the corridor's start
  std::string destination;  // dry port / border city at its end
  std::string country;      // of the discharge port (local time of night)
  std::vector<const operators::Zone*> zones;  // authorised stop zones on the corridor
};

std::string NearestPort(const operators::Profile& p, LatLon at, const std::string& other) {
  std::string best;
  double best_m = 1e18;
  for (const auto& [code, port] : p.ports) {
    if (code == other) continue;
    const double d = operators::HaversineM(at, port.at);
    if (d < best_m || (d == best_m && code < best)) {
      best_m = d;
      best = code;
    }
  }
  return best;
}

double DistanceToLine(LatLon p, const std::vector<LatLon>& line) {
  double best = 1e18;
  for (size_t i = 0; i + 1 < line.size(); ++i) best = std::min(best, operators::DistanceToSegmentM(p, line[i], line[i + 1]));
  return best;
}

std::vector<Route> Routes(const operators::Profile& p) {
  std::vector<Route> routes;
  for (const auto& c : p.corridors) {
    if (c.points.size() < 2) continue;
    Route r;
    r.corridor = &c;
    r.discharge = NearestPort(p, c.points.front(), "");
    r.destination = NearestPort(p, c.points.back(), r.discharge);
    r.country = r.discharge.substr(0, 2);
    for (const auto& z : p.stop_zones)
      if (DistanceToLine(z.at, c.points) < c.buffer_m * 0.5) r.zones.push_back(&z);
    routes.push_back(std::move(r));
  }
  return routes;
}

// A point `along` segments into the polyline (0 = first point).
LatLon PointAlong(const std::vector<LatLon>& line, double along) {
  along = std::clamp(along, 0.0, static_cast<double>(line.size() - 1) - 1e-9);
  const size_t seg = static_cast<size_t>(along);
  const double f = along - static_cast<double>(seg);
  return {line[seg].lat + f * (line[seg + 1].lat - line[seg].lat), line[seg].lon + f * (line[seg + 1].lon - line[seg].lon)};
}

// The position along `line` nearest to `p` (segment index + fraction).
double NearestAlong(const std::vector<LatLon>& line, LatLon p) {
  double best = 0, best_m = 1e18;
  for (size_t i = 0; i + 1 < line.size(); ++i) {
    for (int k = 0; k <= 20; ++k) {
      const double along = static_cast<double>(i) + k / 20.0;
      const double d = operators::HaversineM(p, PointAlong(line, along));
      if (d < best_m) {
        best_m = d;
        best = along;
      }
    }
  }
  return best;
}

}  // namespace

const char* ScenarioName(Scenario s) {
  switch (s) {
    case Scenario::kNone: return "none";
    case Scenario::kDeviation: return "route_deviation_night_stop";
    case Scenario::kNightStop: return "night_stop";
    case Scenario::kSealSwap: return "seal_swap";
    case Scenario::kGamma: return "radiation_gamma";
    case Scenario::kNeutron: return "radiation_neutron";
    case Scenario::kWatchlisted: return "watchlisted_consignee";
    case Scenario::kRiskyRoute: return "risky_transhipment_vague_goods";
    case Scenario::kWeightMismatch: return "weight_hs_mismatch";
    case Scenario::kTrackingGap: return "gps_gap_in_transit";
    case Scenario::kLateAmendment: return "late_consignee_amendment";
    case Scenario::kBenignZoneStop: return "benign_stop_in_authorised_zone";
    case Scenario::kBenignTrafficStop: return "benign_short_stops_in_traffic";
    case Scenario::kBenignAmendment: return "benign_early_amendment";
    case Scenario::kBenignNorm: return "benign_natural_radioactivity";
    case Scenario::kBenignSimilarName: return "benign_similar_party_name";
    case Scenario::kSourceInNorm: return "radiation_source_in_norm_cargo";
    case Scenario::kRoutineHighRiskOrigin: return "field_routine_high_risk_origin";
    case Scenario::kLegitLateAmendment: return "field_legitimate_late_amendment";
    case Scenario::kManifestFiledLate: return "field_manifest_filed_late";
    case Scenario::kRoadworksDetour: return "field_roadworks_detour";
    case Scenario::kRestStopOutsideZone: return "field_rest_stop_outside_zone";
    case Scenario::kCustomsReseal: return "field_customs_reseal";
    case Scenario::kAuthorisedConsignee: return "field_authorised_consignee";
    case Scenario::kNewTrader: return "field_new_trader";
    case Scenario::kPharmaConsignment: return "field_pharma_consignment";
    case Scenario::kSplitConsignment: return "field_split_consignment";
  }
  return "?";
}

bool IsSmuggling(Scenario s) {
  switch (s) {
    case Scenario::kDeviation:
    case Scenario::kNightStop:
    case Scenario::kSealSwap:
    case Scenario::kGamma:
    case Scenario::kNeutron:
    case Scenario::kWatchlisted:
    case Scenario::kRiskyRoute:
    case Scenario::kWeightMismatch:
    case Scenario::kTrackingGap:
    case Scenario::kLateAmendment:
    case Scenario::kSplitConsignment:
    case Scenario::kSourceInNorm: return true;
    default: return false;
  }
}

Scenario ScenarioFromName(std::string_view name) {
  for (int i = 0; i <= static_cast<int>(Scenario::kSplitConsignment); ++i) {
    if (name == ScenarioName(static_cast<Scenario>(i))) return static_cast<Scenario>(i);
  }
  return Scenario::kNone;
}

Traffic GenerateTraffic(const TrafficOptions& o, const operators::Profile& profile) {
  std::mt19937 rng(o.seed);
  std::uniform_real_distribution<double> u(0, 1);
  static const char* kOwners[] = {"MSK", "CSQ", "MSC", "CMA", "HLX", "ONE", "EGH", "OOL", "TGH", "SEG",
                                  "TCN", "CAI", "FCI", "GES", "TRH", "BMO"};
  const std::vector<Route> routes = Routes(profile);
  struct Timed {
    int64_t deliver;
    int64_t seq;
    TrafficRecord r;
  };
  std::vector<Timed> out;
  int64_t seq = 0;
  auto emit = [&](TrafficRecord r, int64_t deliver) { out.push_back({deliver, seq++, std::move(r)}); };
  Traffic traffic;
  if (routes.empty()) return traffic;

  std::vector<std::string> watchlisted(profile.watchlisted_parties.begin(), profile.watchlisted_parties.end());
  std::sort(watchlisted.begin(), watchlisted.end());
  std::vector<std::string> risky_ports(profile.high_risk_ports.begin(), profile.high_risk_ports.end());
  std::sort(risky_ports.begin(), risky_ports.end());
  auto known = [&](const char* code) { return profile.ports.count(code) > 0 && !profile.high_risk_ports.count(code); };
  std::vector<std::string> origins, hubs;
  for (const char* c : {"CNSHA", "CNNGB", "CNSZX", "KRPUS", "INNSA", "INMAA", "TRMER", "VNSGN", "JPYOK", "MYPKG"})
    if (known(c)) origins.push_back(c);
  for (const char* c : {"SGSIN", "LKCMB", "AEJEA", "MYPKG", "GRPIR", "TRMER"})
    if (known(c)) hubs.push_back(c);
  if (origins.empty()) origins.push_back(routes.front().discharge);
  if (hubs.empty()) hubs.push_back(routes.front().discharge);

  const Scenario kSmuggling[] = {Scenario::kDeviation,    Scenario::kSealSwap,      Scenario::kGamma,
                                 Scenario::kWatchlisted,  Scenario::kRiskyRoute,    Scenario::kWeightMismatch,
                                 Scenario::kTrackingGap,  Scenario::kLateAmendment};
  const Scenario kLookalikes[] = {Scenario::kBenignZoneStop, Scenario::kBenignTrafficStop, Scenario::kBenignAmendment,
                                  Scenario::kBenignNorm, Scenario::kBenignSimilarName};

  int front = 0;  // next unused front-company name
  // The field model's own generator: with it on, the main draws (and so a
  // seed's scenarios, routes and contents) are the same as without.
  std::mt19937 frng(o.seed * 2654435761u + 0x5eed);
  auto uf = [&frng] { return std::uniform_real_distribution<double>(0, 1)(frng); };
  auto fint = [&frng](int lo, int hi) { return lo + static_cast<int>(frng() % static_cast<uint32_t>(hi - lo + 1)); };
  // The trader register (reference topic, known_traders): who customs knows
  // and since when. Published a week before the simulated days.
  std::set<std::string> register_decided;
  auto register_party = [&](const std::string& name, std::optional<int64_t> since) {
    if (!o.field || name.empty() || !register_decided.insert(operators::NormaliseName(name)).second) return;
    if (!since) return;  // never registered
    const int64_t at = o.start_ms - 7 * 24 * kHour;
    emit({pipeline::TopicRole::kReference, "known_traders:" + name, "since=" + std::to_string(*since), at, false, ""}, at);
  };
  auto long_known = [&] { return o.start_ms - static_cast<int64_t>(fint(365, 3650)) * 24 * kHour; };
  struct Bill {
    std::string number, consignee, shipper;
  };
  std::optional<Bill> last_bill;  // the last ordinary box's bill, for consignments of several boxes
  // A consignment spread over several boxes (split, or a distributor's):
  // the boxes still to come, and what they share.
  struct Group {
    Scenario scenario = Scenario::kNone;
    int remaining = 0;
    Bill bill;
  } group;
  for (int c = 0; c < o.containers; ++c) {
    // Numbers depend on the seed, so two simulations are two fleets (unique up to 14.4 M boxes).
    const int64_t k = (static_cast<int64_t>(c) + static_cast<int64_t>(o.seed) * 7919) %
                      (static_cast<int64_t>(std::size(kOwners)) * 900000);
    const std::string number =
        Number(kOwners[k % static_cast<int64_t>(std::size(kOwners))], 100000 + static_cast<int>(k / std::size(kOwners)));
    Scenario sc = Scenario::kNone;
    const double pick = u(rng);
    if (pick < o.scenario_rate) {
      // Neutron sources are rare: one in ten radiation cases.
      sc = kSmuggling[rng() % std::size(kSmuggling)];
      if (sc == Scenario::kGamma && rng() % 10 == 0) sc = Scenario::kNeutron;
      // A third of the other gamma sources travel in naturally radioactive
      // cargo, whose own reading masks them.
      else if (sc == Scenario::kGamma && rng() % 3 == 0) sc = Scenario::kSourceInNorm;
    } else if (pick < o.scenario_rate + o.lookalike_rate) {
      sc = kLookalikes[rng() % std::size(kLookalikes)];
    }
    const Route* route = &routes[rng() % routes.size()];
    if (sc == Scenario::kBenignZoneStop && route->zones.empty()) {
      for (const auto& r : routes)
        if (!r.zones.empty()) route = &r;
      if (route->zones.empty()) sc = Scenario::kBenignTrafficStop;
    }
    // The field model's honest behaviours, one per ordinary box that has one.
    struct PremisesOnRoute {
      const operators::Premises* site = nullptr;
      double along_m = 0;
    } premises;
    const Scenario lab_scenario = sc;  // what the main generator's draws follow
    if (o.field && sc == Scenario::kNone) {
      const double f = uf();
      sc = f < 0.04   ? Scenario::kRoutineHighRiskOrigin
           : f < 0.07 ? Scenario::kLegitLateAmendment
           : f < 0.09 ? Scenario::kManifestFiledLate
           : f < 0.12 ? Scenario::kRoadworksDetour
           : f < 0.18 ? Scenario::kRestStopOutsideZone
           : f < 0.20 ? Scenario::kCustomsReseal
           : f < 0.22 ? Scenario::kNewTrader
                      : Scenario::kNone;
      if (group.remaining > 0) {
        sc = group.scenario;
        --group.remaining;
      } else if (f >= 0.22 && f < 0.23) {
        sc = Scenario::kSplitConsignment;
        group = {sc, fint(2, 3), {"BL" + number.substr(4, 6) + "S", FrontName(1000 + c), FrontName(1500 + c)}};
      } else if (f >= 0.23 && f < 0.24) {
        sc = Scenario::kPharmaConsignment;
        static constexpr const char* kDistributors[] = {"Caspian Pharma Distribution LLC", "Mekong Medical Supply Co Ltd",
                                                        "Kura Healthcare Trading LLC"};
        group = {sc, 2, {"BL" + number.substr(4, 6) + "P", kDistributors[frng() % std::size(kDistributors)],
                         "Ahmedabad Generic Pharma Ltd"}};
      }
      if (sc == Scenario::kNone && uf() < 0.3) {
        for (const auto& site : profile.consignee_premises) {
          if (DistanceToLine(site.at, route->corridor->points) < route->corridor->buffer_m * 0.5) {
            premises.site = &site;
            sc = Scenario::kAuthorisedConsignee;
            break;
          }
        }
      }
    }
    traffic.labels.emplace_back(number, sc);
    const auto& line = route->corridor->points;
    const int utc_offset = profile.utc_offset_hours.count(route->country) ? profile.utc_offset_hours.at(route->country) : 0;
    // Whole seconds: the times every upstream format can carry (EDIFACT DTM 204).
    int64_t start = (o.start_ms + static_cast<int64_t>(u(rng) * static_cast<double>(o.spread_ms))) / 1000 * 1000;
    // Night scenarios leave the port at 20:00 local, so their stop falls at night.
    const bool night = sc == Scenario::kDeviation || sc == Scenario::kBenignZoneStop;
    if (night) {
      const int64_t day = 24 * kHour;
      const int64_t local = start + utc_offset * kHour;
      start = local - (local % day) + 20 * kHour - utc_offset * kHour;
      if (start < o.start_ms) start += day;
    }
    const int64_t eta = start - kHour;  // arrival at the discharge port, before the scan and the trip

    // --- manifest (and amendment) ---
    const Goods& goods = kGoods[rng() % std::size(kGoods)];
    const bool norm_cargo = sc == Scenario::kBenignNorm || sc == Scenario::kSourceInNorm;
    const Goods& cargo = norm_cargo ? kGoods[rng() % 2] : goods;  // NORM: ceramics or potash
    v1::Manifest m;
    m.set_container_number(number);
    m.set_version(1);
    m.set_bill_of_lading("BL" + number.substr(4, 6) + std::to_string(c % 10));
    const bool guilty = IsSmuggling(lab_scenario);
    // A reused front: the pair of an earlier smuggling container.
    int reused = -1;
    if (guilty && o.reused_front_rate > 0 && front >= 2 && u(rng) < o.reused_front_rate) {
      reused = static_cast<int>(rng() % static_cast<uint32_t>(front / 2)) * 2;
    }
    auto next_front = [&] { return reused >= 0 ? FrontName(reused++) : FrontName(front++); };
    m.mutable_shipper()->set_name(guilty ? next_front() : kShippers[rng() % std::size(kShippers)]);
    if (sc == Scenario::kWatchlisted && !watchlisted.empty()) {
      // Half the listed consignees declare under another spelling of the
      // listed name, as evasion and sloppy filing both do.
      const std::string& listed = watchlisted[rng() % watchlisted.size()];
      m.mutable_consignee()->set_name(u(rng) < 0.5 ? Respell(listed, rng) : listed);
    } else if (sc == Scenario::kBenignSimilarName && !watchlisted.empty()) {
      // Another company, named in the same pattern: a place of its own in
      // place of the listed name's distinctive first word.
      std::string name = watchlisted[rng() % watchlisted.size()];
      name = std::string(kPlaces[rng() % std::size(kPlaces)]) + name.substr(std::min(name.find(' '), name.size()));
      m.mutable_consignee()->set_name(TitleCase(name));
    } else {
      m.mutable_consignee()->set_name(guilty ? next_front() : PartyName(rng));
    }
    m.mutable_notify_party()->set_name(PartyName(rng));
    auto* g = m.add_goods();
    int packages = cargo.min_packages + static_cast<int>(rng() % (cargo.max_packages - cargo.min_packages + 1));
    double kg_per_package = cargo.min_kg + u(rng) * (cargo.max_kg - cargo.min_kg);
    g->set_hs_code(cargo.hs);
    g->set_description(cargo.description);
    if (sc == Scenario::kWeightMismatch) {
      g->set_hs_code("240110");
      g->set_description("unmanufactured tobacco leaf, not stemmed");
      packages = 20 + static_cast<int>(rng() % 20);
      kg_per_package = 600 + u(rng) * 300;  // tobacco bales weigh 50-250 kg, not this
    }
    if (sc == Scenario::kRiskyRoute) g->set_description("said to contain general cargo");
    g->set_packages(packages);
    g->set_gross_weight_kg(std::round(packages * kg_per_package));
    m.add_seal_numbers("SL" + number.substr(4, 6));
    m.set_vessel_imo(std::to_string(9300000 + static_cast<int>(rng() % 600000)));
    m.set_port_of_loading(origins[rng() % origins.size()]);
    std::string hub = hubs[rng() % hubs.size()];
    if (hub == m.port_of_loading()) hub = hubs[(rng() + 1) % hubs.size()];
    if (sc == Scenario::kRiskyRoute && risky_ports.size() >= 2) {
      m.set_port_of_loading(risky_ports[rng() % risky_ports.size()]);
      do {
        hub = risky_ports[rng() % risky_ports.size()];
      } while (hub == m.port_of_loading() || hub == route->discharge);
    }
    if (hub != m.port_of_loading() && hub != route->discharge) m.add_transhipment_ports(hub);
    m.set_port_of_discharge(route->discharge);
    m.set_final_destination(route->destination);
    m.set_declared_at_ms(eta - 72 * kHour - static_cast<int64_t>(rng() % (12 * kHour)) / 1000 * 1000);
    m.set_eta_ms(eta);
    m.set_freight_payment(v1::Manifest::FREIGHT_PAYMENT_PREPAID);
    m.set_tare_weight_kg(3800);
    if (o.field) {
      if (sc == Scenario::kRoutineHighRiskOrigin && !risky_ports.empty()) {
        // Honest trade from a port on the list: most of what leaves it.
        m.set_port_of_loading(risky_ports[frng() % risky_ports.size()]);
        if (m.transhipment_ports_size() > 0 && m.transhipment_ports(0) == m.port_of_loading()) m.clear_transhipment_ports();
      }
      if (sc == Scenario::kAuthorisedConsignee && premises.site != nullptr) {
        m.mutable_consignee()->set_name(TitleCase(premises.site->party));
      }
      if (sc == Scenario::kSplitConsignment || sc == Scenario::kPharmaConsignment) {
        m.set_bill_of_lading(group.bill.number);
        m.mutable_consignee()->set_name(group.bill.consignee);
        m.mutable_shipper()->set_name(group.bill.shipper);
        auto* line0 = m.mutable_goods(0);
        if (sc == Scenario::kSplitConsignment) {
          // Cigarettes in master cases of about 11 kg, a tenth of a box each:
          // every box alone looks like a small, plausible shipment.
          const int cases = fint(90, 260);
          line0->set_hs_code("240220");
          line0->set_description("cigarettes containing tobacco");
          line0->set_packages(cases);
          line0->set_gross_weight_kg(std::round(cases * (10.5 + uf())));
        } else {
          const int cartons = fint(450, 700);
          line0->set_hs_code("300490");
          line0->set_description("medicaments in measured doses, tablets");
          line0->set_packages(cartons);
          line0->set_gross_weight_kg(std::round(cartons * (16 + uf() * 8)));
        }
      }
      if (sc == Scenario::kNewTrader) {
        // A company set up this year: a name no box used before; one in ten
        // pays freight in cash (assumption).
        static constexpr const char* kNewForms[] = {"Group LLC", "Partners Co", "Logistics LLC", "Holdings JSC",
                                                    "Enterprise Co", "Solutions Ltd"};
        m.mutable_consignee()->set_name(std::string(kPlaces[frng() % std::size(kPlaces)]) + " " +
                                        kTrades[frng() % std::size(kTrades)] + " " + kNewForms[frng() % std::size(kNewForms)]);
        if (uf() < 0.1) m.set_freight_payment(v1::Manifest::FREIGHT_PAYMENT_CASH);
      }
      // Declarations at heading level (4 digits), as older filings do.
      if (!guilty && uf() < 0.08 && m.goods(0).hs_code().size() == 6) m.mutable_goods(0)->set_hs_code(m.goods(0).hs_code().substr(0, 4));
      // Consignments of several boxes: an ordinary box may share the bill
      // and parties of the ordinary box before it.
      if (sc == Scenario::kNone && last_bill && uf() < 0.15) {
        m.set_bill_of_lading(last_bill->number);
        m.mutable_consignee()->set_name(last_bill->consignee);
        m.mutable_shipper()->set_name(last_bill->shipper);
      }
      if (sc == Scenario::kNone) last_bill = Bill{m.bill_of_lading(), m.consignee().name(), m.shipper().name()};
      if (sc == Scenario::kManifestFiledLate) {
        m.set_declared_at_ms(eta + static_cast<int64_t>(fint(30, 240)) * kMin);  // after the box arrived
      }
      // The register: ordinary parties long known; a new trader not at all;
      // front companies mostly unknown, some registered weeks before.
      auto front_since = [&]() -> std::optional<int64_t> {
        if (uf() < 0.7) return std::nullopt;
        return m.declared_at_ms() - static_cast<int64_t>(fint(20, 150)) * 24 * kHour;
      };
      const bool front_consignee = (guilty && sc != Scenario::kWatchlisted) || sc == Scenario::kSplitConsignment;
      register_party(m.consignee().name(), sc == Scenario::kNewTrader ? std::nullopt
                                           : front_consignee        ? front_since()
                                                                    : std::optional<int64_t>(long_known()));
      register_party(m.shipper().name(), guilty || sc == Scenario::kSplitConsignment ? front_since()
                                                                                      : std::optional<int64_t>(long_known()));
    }
    // A version only the field model sends draws from its generator.
    auto send_manifest = [&](const v1::Manifest& man, bool field_only = false) {
      const bool json = (field_only ? uf() : u(rng)) < o.json_rate;
      emit({pipeline::TopicRole::kManifests, number,
            operators::Encode(man, json ? operators::Encoding::kJson : operators::Encoding::kProtobuf),
            man.declared_at_ms(), json, ""},
           man.declared_at_ms());
    };
    send_manifest(m);
    std::string declared_seal = m.seal_numbers(0);
    if (sc == Scenario::kLateAmendment || sc == Scenario::kBenignAmendment || sc == Scenario::kLegitLateAmendment) {
      v1::Manifest amended = m;
      amended.set_version(2);
      if (sc == Scenario::kLateAmendment) {
        amended.mutable_consignee()->set_name(FrontName(front++));  // a new consignee, 12 h before arrival
        amended.set_freight_payment(v1::Manifest::FREIGHT_PAYMENT_CASH);
        amended.set_declared_at_ms(eta - 12 * kHour);
        if (o.field) register_party(amended.consignee().name(), uf() < 0.7 ? std::nullopt
                                                                          : std::optional<int64_t>(eta - 40 * 24 * kHour));
      } else if (sc == Scenario::kLegitLateAmendment) {
        // A correction within the cutoff: the description made precise, or
        // the seal number the shipper mistyped.
        if (uf() < 0.5) {
          amended.mutable_goods(0)->set_description(std::string(amended.goods(0).description()) + ", corrected");
        } else {
          amended.set_seal_numbers(0, "SL" + number.substr(5, 5) + "0");
        }
        amended.set_declared_at_ms(eta - static_cast<int64_t>(fint(2, 40)) * kHour);
      } else {
        amended.mutable_goods(0)->set_packages(packages + 1);  // a recount, days ahead
        amended.set_declared_at_ms(eta - 60 * kHour);
      }
      send_manifest(amended, sc == Scenario::kLegitLateAmendment);
      declared_seal = amended.seal_numbers(0);
    }

    // --- scans at the discharge port ---
    v1::ScanResult s;
    s.set_container_number(number);
    s.set_scan_id(UuidFor("RPM-" + number));  // as a portal's N42 document UUID
    s.set_site(route->discharge);
    // Lanes 1-3 of a port are spectroscopic portals that name the nuclides
    // they identify; lane 4 counts only (assumption: most, not all, lanes
    // of a Port Control Unit's port are spectroscopic).
    const int lane = 1 + static_cast<int>(rng() % 4);
    const bool spectroscopic = lane <= 3;
    s.set_device_id("RPM-" + route->discharge.substr(2) + "-0" + std::to_string(lane));
    s.set_kind(v1::ScanResult::SCAN_KIND_RPM);
    s.set_scanned_at_ms(start - 20 * kMin);
    const double background = 80 + u(rng) * 40;  // cps; varies with site and weather
    double gamma = background * (0.85 + u(rng) * 0.3);
    auto* rpm = s.mutable_rpm();
    static const char* kSources[] = {"Cs-137", "Co-60", "Ir-192", "Am-241"};
    if (sc == Scenario::kGamma) {
      gamma = background * (4 + u(rng) * 2);
      if (spectroscopic) rpm->add_nuclides(kSources[rng() % std::size(kSources)]);
    }
    if (norm_cargo) {
      // Potash shows potassium-40; ceramics K-40 and the thorium and uranium
      // series. Both read 2-5x background in a full box and set the portal
      // off; a source in them (3-9x, shielded by the cargo) looks the same to
      // a counting portal unless it is the stronger.
      const bool potash = cargo.hs == std::string("310420");
      gamma = background * (sc == Scenario::kSourceInNorm ? 3 + u(rng) * 6 : 2.0 + u(rng) * 3.0);
      if (spectroscopic) {
        rpm->add_nuclides("K-40");
        if (!potash) rpm->add_nuclides("Th-232");
        if (sc == Scenario::kSourceInNorm) rpm->add_nuclides(kSources[rng() % 2]);  // Cs-137 or Co-60
      }
    }
    rpm->set_gamma_alarm(gamma > background * 1.8);  // the portal's own alarm: well above background
    rpm->set_gamma_background_cps(std::round(background * 10) / 10);
    rpm->set_gamma_cps(std::round(gamma * 10) / 10);
    const double neutron_background = 1.2 + u(rng) * 0.8;
    s.mutable_rpm()->set_neutron_background_cps(std::round(neutron_background * 100) / 100);
    s.mutable_rpm()->set_occupancy_seconds(10);  // a truck passing the portal at walking pace
    s.mutable_rpm()->set_neutron_cps(sc == Scenario::kNeutron ? std::round(neutron_background * 500) / 100
                                                               : std::round(neutron_background * (80 + u(rng) * 40)) / 100);
    if (o.scans) {
      emit({pipeline::TopicRole::kScans, number, s.SerializeAsString(), s.scanned_at_ms(), false, ""},
           s.scanned_at_ms());
    }

    // --- GPS along the corridor: the truck covers speed x time ---
    std::vector<double> cum(line.size(), 0.0);  // metres from the corridor's start to each point
    for (size_t k = 1; k < line.size(); ++k) cum[k] = cum[k - 1] + operators::HaversineM(line[k - 1], line[k]);
    auto at_metres = [&](double m) {
      m = std::clamp(m, 0.0, cum.back());
      const size_t k = std::min<size_t>(std::upper_bound(cum.begin(), cum.end(), m) - cum.begin(), line.size() - 1);
      const size_t seg = k == 0 ? 0 : k - 1;
      const double len = cum[seg + 1] - cum[seg];
      return PointAlong(line, static_cast<double>(seg) + (len > 0 ? (m - cum[seg]) / len : 0));
    };
    // An off-route point: square to the road, on whichever side is clear of every corridor.
    auto off_route_point = [&](double m) {
      const LatLon on = at_metres(m);
      const LatLon ahead = at_metres(m + 500);
      const double dlat = ahead.lat - on.lat, dlon = ahead.lon - on.lon;
      const double len = std::hypot(dlat, dlon);
      for (double d : {0.25, -0.25, 0.4, -0.4, 0.6, -0.6, 0.9, -0.9}) {
        const LatLon p = len > 0 ? LatLon{on.lat - dlon / len * d, on.lon + dlat / len * d} : LatLon{on.lat + d, on.lon};
        if (!operators::LocateInCorridors(profile, p).inside) return p;
      }
      return LatLon{on.lat + 1.0, on.lon + 1.0};
    };
    double pos = u(rng) * 3000;  // metres from the port gate
    const double cruise_kmh = 45 + u(rng) * 30;
    int64_t t = start;
    int64_t stop_until = 0;
    int zone_stop_done = 0;
    const operators::Zone* zone = route->zones.empty() ? nullptr : route->zones[rng() % route->zones.size()];
    double zone_pos = 0;  // metres along the corridor nearest the zone
    if (zone != nullptr) {
      const double a = std::min(NearestAlong(line, zone->at), static_cast<double>(line.size() - 1) - 1e-9);
      const size_t seg = static_cast<size_t>(a);
      zone_pos = cum[seg] + (a - static_cast<double>(seg)) * (cum[seg + 1] - cum[seg]);
    }
    if (sc == Scenario::kBenignZoneStop) pos = std::max(0.0, zone_pos - 5000);  // reaches it within minutes

    // --- the field model's devices and behaviours on this trip ---
    struct Device {
      int64_t skew_ms = 0;            // the tracker's clock against UTC
      int64_t slow_network_ms = 0;    // every fix this much later
      int64_t gap_from_ms = 0, gap_to_ms = 0;  // coverage lost: fixes buffered, uploaded in order after
      int64_t power_save_ms = 0;      // reports at most this often (events at once)
      int replay_after = -1;          // re-sends fixes [replay_after - 15, replay_after - 5) later
      int64_t replay_delay_ms = 0;
      std::string geofence;           // the vendor's id for a border geofence crossed at the start
      LatLon geofence_at;
    } dev;
    const double premises_pos = premises.site != nullptr
                                    ? [&] {
                                        const double a = std::min(NearestAlong(line, premises.site->at),
                                                                  static_cast<double>(line.size() - 1) - 1e-9);
                                        const size_t seg = static_cast<size_t>(a);
                                        return cum[seg] + (a - static_cast<double>(seg)) * (cum[seg + 1] - cum[seg]);
                                      }()
                                    : 0.0;
    int behaviour_fix = -1;  // the fix where a detour, rest stop or inspection begins
    int64_t behaviour_ms = 0;
    double detour_m = 0;
    std::string reseal;  // the customs seal applied at an inspection
    int64_t inspected_at = 0;
    if (o.field) {
      const double clock = uf();
      if (clock < 0.03) dev.skew_ms = static_cast<int64_t>(fint(60, 480)) * 1000;            // fast 1-8 min
      else if (clock < 0.06) dev.skew_ms = -static_cast<int64_t>(fint(60, 900)) * 1000;      // slow 1-15 min
      if (uf() < 0.02) dev.slow_network_ms = static_cast<int64_t>(fint(120, 240)) * 1000;
      if (uf() < 0.08) {
        dev.gap_from_ms = start + static_cast<int64_t>(fint(15, 60)) * kMin;
        dev.gap_to_ms = dev.gap_from_ms + static_cast<int64_t>(fint(20, 90)) * kMin;
      }
      if (uf() < 0.10) dev.power_save_ms = static_cast<int64_t>(fint(20, 30)) * kMin;
      if (uf() < 0.01) {
        dev.replay_after = fint(15, 35);
        dev.replay_delay_ms = static_cast<int64_t>(fint(10, 60)) * kMin;
      }
      for (const auto& x : profile.border_crossings) {
        if (x.countries.size() == 2 && operators::HaversineM(x.at, line.front()) < 5000) {
          // Vendors name and draw border geofences their own way: the
          // polygon's edge 0.2-1.5 km from the crossing's centre.
          const std::string a = x.countries[0], b = x.countries[1];
          const int vendor = static_cast<int>(frng() % 3);
          std::string lower = a + "_" + b;
          std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
          dev.geofence = vendor == 0 ? "BORDER-" + a + "-" + b : vendor == 1 ? "border_" + lower : "XING-" + a + "-" + b;
          const double d = fint(200, 1500) / 111320.0, bearing = uf() * 2 * M_PI;
          dev.geofence_at = {x.at.lat + d * std::cos(bearing), x.at.lon + d * std::sin(bearing) / std::cos(x.at.lat * M_PI / 180)};
          break;
        }
      }
      if (sc == Scenario::kRoadworksDetour || sc == Scenario::kRestStopOutsideZone || sc == Scenario::kCustomsReseal) {
        behaviour_fix = fint(8, 22);
        behaviour_ms = static_cast<int64_t>(sc == Scenario::kRoadworksDetour   ? fint(15, 40)
                                            : sc == Scenario::kRestStopOutsideZone ? fint(35, 50)
                                                                                   : fint(30, 60)) * kMin;
        detour_m = fint(3000, 15000);
        reseal = "CUS" + std::to_string(fint(100000, 999999));
      }
    }
    // A point square to the road, `metres` to its left.
    auto beside_route = [&](double m, double metres) {
      const LatLon on = at_metres(m);
      const LatLon ahead = at_metres(m + 500);
      const double dlat = ahead.lat - on.lat, dlon = ahead.lon - on.lon;
      const double len = std::hypot(dlat, dlon);
      const double deg = metres / 111320.0;
      return len > 0 ? LatLon{on.lat - dlon / len * deg, on.lon + dlat / len * deg} : LatLon{on.lat + deg, on.lon};
    };
    const bool cloned_seal = o.field && sc == Scenario::kSealSwap && uf() < 0.5;  // a duplicate of the declared seal
    int64_t behaviour_until = 0;
    int64_t last_sent_ms = 0;      // the tracker's last report (power saving)
    int64_t backlog_end_ms = 0;    // when the store-and-forward upload has drained
    int opened_at_premises = -1;
    int64_t seal_opened_ms = 0;
    std::vector<std::pair<TrafficRecord, int64_t>> sent;  // for a replay: each fix and its delivery
    for (int i = 0; i < o.gps_per_container; ++i) {
      const int64_t dt = (1 + static_cast<int64_t>(rng() % 5)) * kMin;  // a fix every 1-5 minutes
      t += dt;
      bool stopped = t < stop_until;
      bool off_route = false;
      switch (sc) {
        case Scenario::kDeviation:
          // From fix 10 it turns off the corridor; from fix 14 it stops for 70 minutes, off-route.
          if (i == 14) stop_until = t + 70 * kMin;
          stopped = t < stop_until;
          off_route = i >= 10 && (i < 30 || stopped);
          break;
        case Scenario::kTrackingGap:
          if (i == 16) t += 90 * kMin;  // dark for an hour and a half
          off_route = i >= 16 && i < 28;
          break;
        case Scenario::kBenignTrafficStop:
          if (i == 8 || i == 20 || i == 30) stop_until = t + (12 + static_cast<int64_t>(rng() % 10)) * kMin;
          stopped = t < stop_until;
          break;
        case Scenario::kBenignZoneStop:
          // Drives to the stop zone, rests there two hours, goes on.
          if (zone_stop_done == 0 && pos >= zone_pos - 1500) {
            pos = zone_pos;
            stop_until = t + 120 * kMin;
            zone_stop_done = 1;
          }
          stopped = t < stop_until;
          break;
        default: break;
      }
      if (i == behaviour_fix) {
        behaviour_until = t + behaviour_ms;
        if (sc == Scenario::kCustomsReseal) inspected_at = t;
      }
      const bool in_behaviour = behaviour_fix >= 0 && i >= behaviour_fix && t < behaviour_until;
      if (in_behaviour && sc != Scenario::kRoadworksDetour) stopped = true;  // a break, an inspection
      bool parked_at_premises = false;
      if (sc == Scenario::kAuthorisedConsignee && pos >= premises_pos - 1500) {
        pos = premises_pos;
        stopped = parked_at_premises = true;  // delivered: unloaded at the consignee's site
      }
      const double speed = stopped ? u(rng) * 1.5 : std::max(20.0, cruise_kmh + (u(rng) - 0.5) * 20);
      if (!stopped) pos += speed * 1000.0 * static_cast<double>(dt) / static_cast<double>(kHour);
      if (sc == Scenario::kBenignZoneStop && zone_stop_done == 0) pos = std::min(pos, zone_pos);
      LatLon at = at_metres(pos);
      if (sc == Scenario::kBenignZoneStop && stopped && zone != nullptr) at = zone->at;  // parked in the zone
      if (parked_at_premises) at = premises.site->at;
      if (off_route) at = off_route_point(pos);
      if (in_behaviour && sc == Scenario::kRoadworksDetour) at = beside_route(pos, detour_m);
      const double noise_lat = (u(rng) - 0.5) * 0.0008, noise_lon = (u(rng) - 0.5) * 0.0008;
      if (!o.field) {
        at.lat += noise_lat;  // receiver noise, tens of metres
        at.lon += noise_lon;
      } else {
        // A receiver in the open: about 10 m; now and then multipath or a
        // bad fix puts it 150-400 m off.
        at.lat += noise_lat / 4;
        at.lon += noise_lon / 4;
        if (uf() < 0.015) {
          const double d = fint(150, 400) / 111320.0, bearing = uf() * 2 * M_PI;
          at.lat += d * std::cos(bearing);
          at.lon += d * std::sin(bearing);
        }
      }
      const bool dropped = u(rng) < o.dropout_rate;
      v1::GpsEvent e;
      e.set_container_number(number);
      e.set_tracker_id("TRK-" + number.substr(4, 6));
      e.set_event_id(e.tracker_id() + "-" + std::to_string(i));
      e.set_fix_time_ms(t + dev.skew_ms);  // the tracker's clock
      e.mutable_position()->set_lat(std::round(at.lat * 1e5) / 1e5);
      e.mutable_position()->set_lon(std::round(at.lon * 1e5) / 1e5);
      e.set_speed_kmh(std::round(speed * 10) / 10);
      e.set_battery_pct(98 - i / 8);
      e.set_seal_state(v1::GpsEvent::SEAL_STATE_CLOSED);
      if (o.field) e.set_seal_number(declared_seal);  // e-seals report the seal they hold
      bool event_fix = false;  // e-seals report a state change at once, whatever the reporting interval
      if (sc == Scenario::kSealSwap && i >= 20) {
        e.set_seal_number(cloned_seal ? declared_seal : "SX" + number.substr(4, 6));  // rip-on/rip-off
        if (i == 20) {
          e.set_seal_state(v1::GpsEvent::SEAL_STATE_OPENED);
          event_fix = true;
        }
      }
      if (sc == Scenario::kCustomsReseal && inspected_at > 0) {
        if (seal_opened_ms == 0 && t >= inspected_at + 5 * kMin) {
          e.set_seal_state(v1::GpsEvent::SEAL_STATE_OPENED);  // customs open it
          seal_opened_ms = t;
          event_fix = true;
        } else if (seal_opened_ms > 0) {
          e.set_seal_number(reseal);  // and close it with their own seal
        }
      }
      if (parked_at_premises && opened_at_premises < 0 && uf() < 0.5) {
        e.set_seal_state(v1::GpsEvent::SEAL_STATE_OPENED);  // the consignee unloads
        opened_at_premises = i;
        event_fix = true;
      } else if (opened_at_premises >= 0) {
        e.set_seal_state(v1::GpsEvent::SEAL_STATE_OPENED);
      }
      if (i == 0 && !dev.geofence.empty()) {
        e.set_geofence_transition(v1::GpsEvent::GEOFENCE_TRANSITION_EXIT);
        e.set_geofence_id(dev.geofence);
        e.mutable_position()->set_lat(std::round(dev.geofence_at.lat * 1e5) / 1e5);
        e.mutable_position()->set_lon(std::round(dev.geofence_at.lon * 1e5) / 1e5);
        event_fix = true;
      }
      // The main generator's draws stay those of the lab model (a seed's
      // traffic is the same with the field model on); the field decides after.
      const bool dropped_main = dropped && !(sc == Scenario::kSealSwap && i == 20);
      double delay_draw = 0, duplicate_draw = 1;
      if (!dropped_main) {
        delay_draw = u(rng);
        duplicate_draw = u(rng);
      }
      if (dropped_main && !event_fix) continue;
      if (dev.power_save_ms > 0 && !event_fix && last_sent_ms > 0 && t - last_sent_ms < dev.power_save_ms) continue;
      last_sent_ms = t;
      int64_t deliver = t + static_cast<int64_t>(delay_draw * static_cast<double>(o.max_disorder_ms));
      if (o.field) {
        // Cellular delivery: seconds, a tenth of fixes up to a minute; a slow
        // network adds minutes to every fix of its trip.
        deliver = t + (uf() < 0.9 ? fint(1000, 5000) : fint(5000, 60000)) + dev.slow_network_ms;
        if (t >= dev.gap_from_ms && t < dev.gap_to_ms) {
          // No coverage: kept on the device, uploaded in order, one every 4 s, when it returns.
          deliver = std::max(dev.gap_to_ms, backlog_end_ms) + 4000;
          backlog_end_ms = deliver;
        } else if (deliver <= backlog_end_ms) {
          deliver = backlog_end_ms + 1000;  // live reports wait behind the upload
        }
      }
      TrafficRecord r{pipeline::TopicRole::kGps, number, e.SerializeAsString(), e.fix_time_ms(), false, ""};
      if (duplicate_draw < o.duplicate_rate) emit(r, deliver + 1000);
      if (dev.replay_after >= 0) sent.emplace_back(r, deliver);
      if (i == dev.replay_after) {
        // The device sends a block of earlier reports again (a retry after
        // a lost acknowledgement): the same event ids, so duplicates.
        for (const auto& [old, when] : sent) {
          const int64_t fix_ms = old.timestamp_ms - dev.skew_ms;
          if (fix_ms >= t - 15 * 5 * kMin && fix_ms < t - 5 * kMin) emit(old, when + dev.replay_delay_ms);
        }
      }
      emit(std::move(r), deliver);
    }

    // --- inspection outcome ---
    if (IsSmuggling(sc) ? u(rng) < o.outcome_rate : u(rng) < o.outcome_rate * 0.05) {
      v1::InspectionOutcome out_rec;
      out_rec.set_container_number(number);
      out_rec.set_outcome_id("INS-" + number);
      out_rec.set_inspected_at_ms(t + 2 * kHour);
      out_rec.set_site(route->destination);
      out_rec.set_officer_unit("PCU-" + route->destination);
      if (IsSmuggling(sc) && sc != Scenario::kLateAmendment) {
        out_rec.set_result(v1::InspectionOutcome::RESULT_SEIZURE);
        out_rec.add_seizure_categories(sc == Scenario::kGamma || sc == Scenario::kNeutron || sc == Scenario::kSourceInNorm
                                           ? v1::InspectionOutcome::SEIZURE_CATEGORY_RADIOACTIVE
                                       : sc == Scenario::kWeightMismatch || sc == Scenario::kSplitConsignment
                                           ? v1::InspectionOutcome::SEIZURE_CATEGORY_TOBACCO
                                                                         : v1::InspectionOutcome::SEIZURE_CATEGORY_DRUGS);
      } else {
        out_rec.set_result(sc == Scenario::kLateAmendment ? v1::InspectionOutcome::RESULT_DISCREPANCY
                                                          : v1::InspectionOutcome::RESULT_NO_FINDING);
      }
      out_rec.set_final(true);
      // A rip-on/rip-off: the box's own shipper and consignee did not know.
      if (o.field && sc == Scenario::kSealSwap) out_rec.set_rip_on_off(true);
      // Officers file the report hours to three days later.
      const int64_t reported = out_rec.inspected_at_ms() + (o.field ? static_cast<int64_t>(fint(60, 72 * 60)) * kMin : 0);
      emit({pipeline::TopicRole::kOutcomes, number, out_rec.SerializeAsString(), out_rec.inspected_at_ms(), false, ""},
           reported);
    }
    if (sc == Scenario::kCustomsReseal && inspected_at > 0) {
      // The en-route inspection: nothing found, the box closed with a customs
      // seal whose number is entered at once (the e-seal reads it next).
      v1::InspectionOutcome insp;
      insp.set_container_number(number);
      insp.set_outcome_id("RESEAL-" + number);
      insp.set_inspected_at_ms(inspected_at);
      insp.set_site(route->discharge.substr(0, 2) + "ZZZ");
      insp.set_officer_unit("MOBILE-" + route->discharge.substr(0, 2));
      insp.set_result(v1::InspectionOutcome::RESULT_NO_FINDING);
      insp.add_seals_applied(reseal);
      emit({pipeline::TopicRole::kOutcomes, number, insp.SerializeAsString(), inspected_at, false, ""},
           inspected_at + static_cast<int64_t>(fint(60, 180)) * 1000);
    }

    if (o.bad_records && c % 500 == 0) {
      const int64_t bt = start + 5 * kMin;
      emit({pipeline::TopicRole::kGps, number, std::string("\x0a\xff\xfe not protobuf", 16), bt, false, "undecodable"}, bt);
      v1::GpsEvent bad;
      bad.set_container_number(number.substr(0, 10) + (number.back() == '9' ? "0" : std::string(1, number.back() + 1)));
      bad.set_fix_time_ms(bt);
      bad.mutable_position()->set_lat(14);
      bad.mutable_position()->set_lon(100.5);
      emit({pipeline::TopicRole::kGps, bad.container_number(), bad.SerializeAsString(), bt, false,
            "invalid_container_number"},
           bt);
      v1::GpsEvent future = bad;
      future.set_container_number(number);
      future.set_event_id("future-" + number);
      future.set_fix_time_ms(4102444800000);  // 2100-01-01
      emit({pipeline::TopicRole::kGps, number, future.SerializeAsString(), bt, false, "future_timestamp"}, bt);
      emit({pipeline::TopicRole::kScans, number, std::string(512 << 10, 'x'), bt, false, "oversized"}, bt);
      v1::GpsEvent late = future;
      late.set_event_id("late-" + number);
      late.set_fix_time_ms(o.start_ms - 48 * kHour);  // two days old when delivered
      emit({pipeline::TopicRole::kGps, number, late.SerializeAsString(), late.fix_time_ms(), false, "late"},
           start + 60 * kMin);
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const Timed& a, const Timed& b) {
    return a.deliver != b.deliver ? a.deliver < b.deliver : a.seq < b.seq;
  });
  for (auto& t : out) traffic.records.push_back(std::move(t.r));
  return traffic;
}

Traffic GenerateTrafficEndingBefore(TrafficOptions* options, const operators::Profile& profile, int64_t now_ms) {
  Traffic traffic = GenerateTraffic(*options, profile);
  if (traffic.records.empty()) return traffic;
  int64_t last = 0;
  for (const auto& r : traffic.records) last = std::max(last, r.timestamp_ms);
  constexpr int64_t kDay = 24LL * 3600 * 1000;
  const int64_t gap = now_ms - 60000 - last;
  const int64_t days = gap >= 0 ? gap / kDay : -((-gap + kDay - 1) / kDay);  // rounded down
  if (days == 0) return traffic;
  options->start_ms += days * kDay;
  return GenerateTraffic(*options, profile);
}

size_t LeadInEnd(const std::vector<TrafficRecord>& records) {
  for (size_t i = 0; i < records.size(); ++i) {
    if (records[i].role != pipeline::TopicRole::kManifests && records[i].role != pipeline::TopicRole::kReference) return i;
  }
  return records.size();
}

pipeline::InputRecord AsInputRecord(const TrafficRecord& record) {
  return {.input = pipeline::InputIndex(record.role),
          .key = record.key,
          .value = record.value,
          .content_type = record.json ? operators::kJsonContentType : std::string_view(),
          .timestamp_ms = record.timestamp_ms};
}

}  // namespace boxwatch::sim
