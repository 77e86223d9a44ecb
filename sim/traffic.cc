#include "sim/traffic.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
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
    case Scenario::kSourceInNorm: return true;
    default: return false;
  }
}

Scenario ScenarioFromName(std::string_view name) {
  for (int i = 0; i <= static_cast<int>(Scenario::kSourceInNorm); ++i) {
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
    const bool guilty = IsSmuggling(sc);
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
    auto send_manifest = [&](const v1::Manifest& man) {
      const bool json = u(rng) < o.json_rate;
      emit({pipeline::TopicRole::kManifests, number,
            operators::Encode(man, json ? operators::Encoding::kJson : operators::Encoding::kProtobuf),
            man.declared_at_ms(), json, ""},
           man.declared_at_ms());
    };
    send_manifest(m);
    if (sc == Scenario::kLateAmendment || sc == Scenario::kBenignAmendment) {
      v1::Manifest amended = m;
      amended.set_version(2);
      if (sc == Scenario::kLateAmendment) {
        amended.mutable_consignee()->set_name(FrontName(front++));  // a new consignee, 12 h before arrival
        amended.set_freight_payment(v1::Manifest::FREIGHT_PAYMENT_CASH);
        amended.set_declared_at_ms(eta - 12 * kHour);
      } else {
        amended.mutable_goods(0)->set_packages(packages + 1);  // a recount, days ahead
        amended.set_declared_at_ms(eta - 60 * kHour);
      }
      send_manifest(amended);
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
      const double speed = stopped ? u(rng) * 1.5 : std::max(20.0, cruise_kmh + (u(rng) - 0.5) * 20);
      if (!stopped) pos += speed * 1000.0 * static_cast<double>(dt) / static_cast<double>(kHour);
      if (sc == Scenario::kBenignZoneStop && zone_stop_done == 0) pos = std::min(pos, zone_pos);
      LatLon at = at_metres(pos);
      if (sc == Scenario::kBenignZoneStop && stopped && zone != nullptr) at = zone->at;  // parked in the zone
      if (off_route) at = off_route_point(pos);
      at.lat += (u(rng) - 0.5) * 0.0008;  // receiver noise, tens of metres
      at.lon += (u(rng) - 0.5) * 0.0008;
      if (u(rng) < o.dropout_rate && !(sc == Scenario::kSealSwap && i == 20)) continue;
      v1::GpsEvent e;
      e.set_container_number(number);
      e.set_tracker_id("TRK-" + number.substr(4, 6));
      e.set_event_id(e.tracker_id() + "-" + std::to_string(i));
      e.set_fix_time_ms(t);
      e.mutable_position()->set_lat(std::round(at.lat * 1e5) / 1e5);
      e.mutable_position()->set_lon(std::round(at.lon * 1e5) / 1e5);
      e.set_speed_kmh(std::round(speed * 10) / 10);
      e.set_battery_pct(98 - i / 8);
      e.set_seal_state(v1::GpsEvent::SEAL_STATE_CLOSED);
      if (sc == Scenario::kSealSwap && i >= 20) {
        e.set_seal_number("SX" + number.substr(4, 6));  // rip-on/rip-off: a different seal is read
        if (i == 20) e.set_seal_state(v1::GpsEvent::SEAL_STATE_OPENED);
      }
      const int64_t deliver = t + static_cast<int64_t>(u(rng) * static_cast<double>(o.max_disorder_ms));
      TrafficRecord r{pipeline::TopicRole::kGps, number, e.SerializeAsString(), t, false, ""};
      if (u(rng) < o.duplicate_rate) emit(r, deliver + 1000);
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
                                       : sc == Scenario::kWeightMismatch ? v1::InspectionOutcome::SEIZURE_CATEGORY_TOBACCO
                                                                         : v1::InspectionOutcome::SEIZURE_CATEGORY_DRUGS);
      } else {
        out_rec.set_result(sc == Scenario::kLateAmendment ? v1::InspectionOutcome::RESULT_DISCREPANCY
                                                          : v1::InspectionOutcome::RESULT_NO_FINDING);
      }
      out_rec.set_final(true);
      emit({pipeline::TopicRole::kOutcomes, number, out_rec.SerializeAsString(), out_rec.inspected_at_ms(), false, ""},
           out_rec.inspected_at_ms());
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

pipeline::InputRecord AsInputRecord(const TrafficRecord& record) {
  return {.input = pipeline::InputIndex(record.role),
          .key = record.key,
          .value = record.value,
          .content_type = record.json ? operators::kJsonContentType : std::string_view(),
          .timestamp_ms = record.timestamp_ms};
}

}  // namespace boxwatch::sim
