#include "ingest/cuscar.h"

#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <optional>
#include <set>

#include "core/types.h"

namespace boxwatch::ingest {
namespace {

constexpr size_t kTextComponent = 70;  // FTX C108 4440 an..70
constexpr size_t kNameComponent = 35;  // NAD C080 3036 an..35

struct Goods {
  v1::GoodsLine line;
  std::vector<std::pair<std::string, double>> placements;  // SGP: container, packages (0: not given)
  size_t segment = 0;
};

struct Consignment {
  std::string bill;
  v1::Party shipper, consignee, notify;
  v1::Manifest::FreightPayment freight = v1::Manifest::FREIGHT_PAYMENT_UNSPECIFIED;
  std::string loading, discharge, final_destination;
  std::vector<std::string> transhipments;
  std::vector<Goods> goods;
};

struct Equipment {
  std::string number;
  std::string size_type;
  double tare_kg = 0;
  std::vector<std::string> seals;
  size_t segment = 0;
};

// Free-text components: a component filled to its maximum length continues
// on the next one; otherwise the next one is a new line (joined by a space).
std::string JoinText(const EdiSegment& s, size_t element, size_t max) {
  std::string out;
  size_t previous = max;  // no separator before the first
  for (size_t c = 0; c < 5; ++c) {
    const std::string& part = s.Get(element, c);
    if (part.empty()) continue;
    if (!out.empty() && previous != max) out += ' ';
    out += part;
    previous = part.size();
  }
  return out;
}

std::optional<double> Decimal(std::string v) {
  for (auto& c : v) {
    if (c == ',') c = '.';
  }
  if (v.empty() || v.size() > 32) return std::nullopt;
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  if (end != v.c_str() + v.size() || !std::isfinite(d)) return std::nullopt;
  return d;
}

// A DTM value in format 2379: UTC ms, or nullopt.
std::optional<int64_t> DtmTime(const std::string& value, const std::string& format) {
  auto digits = [&](size_t from, size_t n) -> std::optional<int> {
    if (from + n > value.size()) return std::nullopt;
    int v = 0;
    for (size_t i = from; i < from + n; ++i) {
      if (value[i] < '0' || value[i] > '9') return std::nullopt;
      v = v * 10 + (value[i] - '0');
    }
    return v;
  };
  std::tm tm{};
  size_t at = 0;
  size_t want = 0;
  int64_t offset_s = 0;
  if (format == "102" || format == "203" || format == "204" || format == "205" || format.empty()) {
    auto y = digits(0, 4);
    if (!y) return std::nullopt;
    tm.tm_year = *y - 1900;
    at = 4;
    want = format == "102" ? 8 : format == "204" ? 14 : format == "205" ? 17 : 12;
    if (format.empty()) want = value.size() == 8 ? 8 : value.size() == 14 ? 14 : 12;
  } else if (format == "101" || format == "201") {
    auto y = digits(0, 2);
    if (!y) return std::nullopt;
    tm.tm_year = *y + 100;  // 20YY
    at = 2;
    want = format == "101" ? 6 : 10;
  } else {
    return std::nullopt;
  }
  if (value.size() != want) return std::nullopt;
  auto mo = digits(at, 2), d = digits(at + 2, 2);
  if (!mo || !d || *mo < 1 || *mo > 12 || *d < 1 || *d > 31) return std::nullopt;
  tm.tm_mon = *mo - 1;
  tm.tm_mday = *d;
  at += 4;
  if (value.size() > at) {
    auto h = digits(at, 2), mi = digits(at + 2, 2);
    if (!h || !mi || *h > 23 || *mi > 59) return std::nullopt;
    tm.tm_hour = *h;
    tm.tm_min = *mi;
    at += 4;
  }
  if (format == "204" || (format.empty() && value.size() == 14)) {
    auto s = digits(at, 2);
    if (!s || *s > 59) return std::nullopt;
    tm.tm_sec = *s;
    at += 2;
  }
  if (format == "205") {  // CCYYMMDDHHMMZHHMM, Z the sign
    const char sign = value[at];
    auto oh = digits(at + 1, 2), om = digits(at + 3, 2);
    if ((sign != '+' && sign != '-') || !oh || !om) return std::nullopt;
    offset_s = (*oh * 3600 + *om * 60) * (sign == '-' ? -1 : 1);
  }
  std::tm check = tm;  // no 31 February
  const std::time_t t = timegm(&check);
  std::tm back{};
  gmtime_r(&t, &back);
  if (back.tm_mday != tm.tm_mday) return std::nullopt;
  return (static_cast<int64_t>(t) - offset_s) * 1000;
}

v1::Party PartyFrom(const EdiSegment& nad) {
  v1::Party p;
  // C080 (element 3) structured name, else C058 (element 2) name and address lines.
  std::string name = JoinText(nad, 3, kNameComponent);
  if (name.empty()) name = nad.Get(2, 0);
  p.set_name(name);
  std::string address = JoinText(nad, 4, kNameComponent);
  for (size_t e : {5, 7}) {  // 3164 city, 3251 postcode
    if (!nad.Get(e).empty()) address += (address.empty() ? "" : ", ") + nad.Get(e);
  }
  if (address.empty()) {
    for (size_t c = 1; c < 5; ++c) {
      if (!nad.Get(2, c).empty()) address += (address.empty() ? "" : ", ") + nad.Get(2, c);
    }
  }
  p.set_address(address);
  p.set_country(nad.Get(8));
  if (nad.Get(1, 0).size() > 0) p.set_id(nad.Get(1, 0));
  return p;
}

// Releases the service characters (and '*', the repetition separator of
// syntax version 4, which is the only version the writer's callers use
// with it set).
thread_local bool g_release_star = true;
std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '+' || c == ':' || c == '\'' || c == '?' || (c == '*' && g_release_star)) out.push_back('?');
    out.push_back(c);
  }
  return out;
}

// Splits text into up to 5 components of at most `max` bytes (at UTF-8
// boundaries), escaped, joined by ':'.
std::string Components(const std::string& text, size_t max) {
  std::string out;
  size_t i = 0;
  for (int n = 0; n < 5 && i < text.size(); ++n) {
    size_t len = std::min(max, text.size() - i);
    while (len > 0 && i + len < text.size() && (static_cast<unsigned char>(text[i + len]) & 0xC0) == 0x80) --len;
    if (n > 0) out += ':';
    out += Escape(text.substr(i, len));
    i += len;
  }
  return out;
}

std::string Utc204(int64_t ms) { return FormatUtcTime(ms, "%Y%m%d%H%M%S"); }

std::string Num(double v) {
  char b[40];
  std::snprintf(b, sizeof b, "%.10g", v);
  return b;
}

}  // namespace

CuscarResult MapCuscar(const EdiMessage& msg, const EdiInterchange& x) {
  CuscarResult out;
  auto problem = [&](const char* reason, const EdiSegment& s, std::string detail) {
    out.problems.push_back({reason, s.number, s.tag, std::move(detail)});
  };
  if (msg.type != "CUSCAR") {
    out.problems.push_back({"cuscar_type", msg.segments.empty() ? 0 : msg.segments[0].number, "UNH",
                            "message type '" + msg.type + "' is not CUSCAR"});
    return out;
  }
  enum Context { kHeader, kConveyance, kEquipment, kConsignment, kOnward, kParty, kGoods } ctx = kHeader;
  std::string function = "9", version_text, voyage, imo, vessel, scac;
  std::string loading, discharge, final_destination;
  std::vector<std::string> transhipments;
  std::optional<int64_t> declared, eta;
  std::vector<Equipment> equipment;
  bool container_equipment = false;  // the last EQD was a container
  std::vector<Consignment> consignments;
  const EdiSegment* bgm = nullptr;
  auto consignment = [&]() -> Consignment& {
    if (consignments.empty()) consignments.emplace_back();
    return consignments.back();
  };
  for (const EdiSegment& s : msg.segments) {
    const std::string& t = s.tag;
    if (t == "BGM") {
      bgm = &s;
      if (!s.Get(2).empty()) function = s.Get(2);
      version_text = s.Get(1, 1);
    } else if (t == "DTM") {
      const std::string& q = s.Get(0, 0);
      if ((ctx == kHeader || ctx == kConveyance) && (q == "137" || q == "132")) {
        auto when = DtmTime(s.Get(0, 1), s.Get(0, 2));
        if (!when) {
          problem("cuscar_date", s, "DTM " + q + " value '" + s.Get(0, 1) + "' is not format " + s.Get(0, 2));
          return out;
        }
        (q == "137" ? declared : eta) = *when;
      }
    } else if (t == "TDT") {
      if (ctx == kHeader || ctx == kConveyance) {
        ctx = kConveyance;
        if (s.Get(0) == "20" || voyage.empty()) {
          voyage = s.Get(1);
          if (!s.Get(4, 0).empty()) scac = s.Get(4, 0);
          const std::string& id = s.Get(7, 0);
          const std::string& qualifier = s.Get(7, 1);
          if (qualifier == "146" || (qualifier.empty() && id.size() == 7 && id.find_first_not_of("0123456789") == std::string::npos)) {
            imo = id;
          }
          if (!s.Get(7, 3).empty()) vessel = s.Get(7, 3);
        }
      } else {
        ctx = kOnward;
      }
    } else if (t == "LOC") {
      const std::string& q = s.Get(0);
      const std::string& code = s.Get(1, 0);
      // Place qualifiers (3227) a cargo report uses: mapped, or known and
      // left aside. Any other would drop a place the filer meant: refused.
      static const std::set<std::string> kKnownPlaces = {"5",  "7",  "8",  "9",  "11", "12", "13", "20", "22",
                                                         "24", "28", "60", "61", "76", "80", "84", "88"};
      if (!kKnownPlaces.count(q)) {
        problem("cuscar_qualifier", s,
                "LOC qualifier '" + q + "' is not a place boxwatch knows (" +
                    "9 loading, 11/12 discharge, 13 transhipment, 20/8/7 destination; 5, 22, 24, 28, 60, 61, 76, 80, "
                    "84, 88 read and left aside)");
        return out;
      }
      const bool in_consignment = ctx == kConsignment || ctx == kParty || ctx == kGoods;
      if (ctx == kOnward) {
        if (q == "20" || q == "8" || q == "7") consignment().final_destination = code;
      } else if (ctx == kHeader || ctx == kConveyance || in_consignment) {
        Consignment* c = in_consignment ? &consignment() : nullptr;
        std::string& l = c ? c->loading : loading;
        std::string& d = c ? c->discharge : discharge;
        std::string& f = c ? c->final_destination : final_destination;
        auto& tr = c ? c->transhipments : transhipments;
        if (q == "9") l = code;
        if (q == "11" || q == "12") d = code;
        if (q == "13") tr.push_back(code);
        if ((q == "20") || ((q == "8" || q == "7") && f.empty())) f = code;
      }
    } else if (t == "EQD") {
      ctx = kEquipment;
      container_equipment = s.Get(0) == "CN";
      if (!container_equipment) continue;  // trailers, chassis: not containers (their MEA and SEL too)
      equipment.push_back({.number = s.Get(1, 0), .size_type = s.Get(2, 0), .segment = s.number});
    } else if (t == "MEA") {
      const std::string& dimension = s.Get(1, 0);
      const std::string& unit = s.Get(2, 0);
      auto value = Decimal(s.Get(2, 1));
      // T tare, G gross weight, AAD total gross weight (code list 6313).
      const bool weight = dimension == "T" || dimension == "G" || dimension == "AAD";
      if (!weight || (ctx != kEquipment && ctx != kGoods)) continue;
      if (!value || (unit != "KGM" && unit != "TNE")) {
        problem("cuscar_measure", s, "weight '" + s.Get(2, 1) + "' " + unit + " is not a number in KGM or TNE");
        return out;
      }
      const double kg = unit == "TNE" ? *value * 1000 : *value;
      if (ctx == kEquipment && dimension == "T" && container_equipment) equipment.back().tare_kg = kg;
      if (ctx == kGoods && dimension != "T") consignment().goods.back().line.set_gross_weight_kg(kg);
    } else if (t == "SEL") {
      if (ctx != kEquipment || !container_equipment) continue;
      for (size_t r = 0; r < s.Repetitions(0); ++r) {  // syntax 4 may repeat 9308
        if (!s.Get(0, 0, r).empty()) equipment.back().seals.push_back(s.Get(0, 0, r));
      }
    } else if (t == "CNI") {
      consignments.emplace_back();
      consignments.back().bill = s.Get(1, 0);
      ctx = kConsignment;
    } else if (t == "RFF") {
      const std::string& q = s.Get(0, 0);
      if ((ctx == kConsignment) && (q == "BM" || q == "MB" || q == "BH")) {
        if (q == "BM" || consignment().bill.empty()) consignment().bill = s.Get(0, 1);
      }
    } else if (t == "CPI") {
      if (ctx != kConsignment && ctx != kParty) continue;
      const std::string& arrangement = s.Get(2);
      const std::string& method = s.Get(1, 0);
      auto& f = consignment().freight;
      if (method == "ZZZ") {
        f = v1::Manifest::FREIGHT_PAYMENT_CASH;
      } else if (arrangement == "P") {
        f = v1::Manifest::FREIGHT_PAYMENT_PREPAID;
      } else if (arrangement == "C") {
        f = v1::Manifest::FREIGHT_PAYMENT_COLLECT;
      } else if (arrangement == "B") {
        f = v1::Manifest::FREIGHT_PAYMENT_THIRD_PARTY;
      }
    } else if (t == "NAD") {
      if (ctx == kEquipment) continue;
      const std::string& q = s.Get(0);
      static const std::set<std::string> kKnownParties = {"CZ", "CN", "N1", "N2", "NI", "CA", "FW", "MS", "CS", "CB",
                                                          "GO", "FP", "CPD", "DP", "OS", "UC", "SF", "ST", "AE"};
      if (!kKnownParties.count(q)) {
        problem("cuscar_qualifier", s,
                "NAD party qualifier '" + q + "' is not one boxwatch knows (CZ shipper, CN consignee, N1/NI notify; "
                "CA, FW, MS, CS, CB, GO, FP, CPD, DP, OS, N2, UC, SF, ST, AE left aside)");
        return out;
      }
      if (ctx == kHeader || ctx == kConveyance) {
        if (q == "CA" && scac.empty()) scac = s.Get(1, 0);
        continue;
      }
      ctx = kParty;
      if (q == "CZ") consignment().shipper = PartyFrom(s);
      if (q == "CN") consignment().consignee = PartyFrom(s);
      if (q == "N1" || q == "NI") consignment().notify = PartyFrom(s);
    } else if (t == "GID") {
      ctx = kGoods;
      Goods g;
      g.segment = s.number;
      if (!s.Get(1, 0).empty()) {
        auto n = Decimal(s.Get(1, 0));
        if (!n || *n < 0 || *n > 1e8 || std::floor(*n) != *n) {
          problem("cuscar_measure", s, "package count '" + s.Get(1, 0) + "' is not a whole number");
          return out;
        }
        g.line.set_packages(static_cast<uint32_t>(*n));
      }
      g.line.set_package_type(s.Get(1, 1));
      consignment().goods.push_back(std::move(g));
    } else if (ctx == kGoods && t == "FTX") {
      if (s.Get(0) == "AAA") {
        auto& line = consignment().goods.back().line;
        const std::string text = JoinText(s, 3, kTextComponent);
        line.set_description(line.description().empty() ? text : line.description() + " " + text);
      }
    } else if (ctx == kGoods && t == "SGP") {
      auto n = Decimal(s.Get(1));
      consignment().goods.back().placements.push_back({s.Get(0, 0), n && *n > 0 ? *n : 0});
    } else if (ctx == kGoods && t == "CST") {
      if (!s.Get(1, 0).empty()) consignment().goods.back().line.set_hs_code(s.Get(1, 0));
    } else if (ctx == kGoods && t == "PIA") {
      if (s.Get(1, 1) == "HS") consignment().goods.back().line.set_hs_code(s.Get(1, 0));
    }
  }
  // The version.
  uint32_t version = 1;
  const EdiSegment& bgm_seg = bgm ? *bgm : msg.segments.front();
  if (function == "1" || function == "3") {
    problem("cuscar_function", bgm_seg, "message function " + function + " (cancellation/deletion) is not supported");
    return out;
  }
  if (!version_text.empty()) {
    auto v = Decimal(version_text);
    if (!v || *v < 1 || *v > 1e6 || std::floor(*v) != *v) {
      problem("cuscar_version", bgm_seg, "version '" + version_text + "' is not a whole number from 1");
      return out;
    }
    version = static_cast<uint32_t>(*v);
  } else if (function == "4" || function == "5") {
    problem("cuscar_version", bgm_seg,
            "an amendment (message function " + function + ") must give its version in BGM C106 (document number:version)");
    return out;
  }
  if (!declared) {
    // UNB S004: YYMMDD or CCYYMMDD, HHMM.
    const size_t colon = x.prepared.find(':');
    const std::string date = x.prepared.substr(0, colon), time = colon == std::string::npos ? "" : x.prepared.substr(colon + 1);
    declared = DtmTime(date + time, date.size() == 8 ? "203" : "201");
    if (!declared) {
      problem("cuscar_date", bgm_seg, "no DTM 137 and no usable UNB date/time '" + x.prepared + "'");
      return out;
    }
  }
  if (equipment.empty()) {
    problem("cuscar_link", bgm_seg, "the message declares no container (EQD+CN)");
    return out;
  }
  size_t goods_items = 0;
  for (auto& c : consignments) {
    goods_items += c.goods.size();
    for (auto& g : c.goods) {
      for (auto& [container, packages] : g.placements) {
        auto placed = ContainerNumber::Parse(container);
        container = placed.ok() ? placed->str() : "";  // canonical once, compared per container below
      }
    }
  }
  // The directory's own maxima (SG2 and SG10 repeat 9999 times).
  if (equipment.size() > 9999 || goods_items > 9999) {
    problem("cuscar_link", bgm_seg, std::to_string(equipment.size()) + " containers and " + std::to_string(goods_items) +
                                        " goods items: over the directory's 9999");
    return out;
  }
  for (const Equipment& e : equipment) {
    auto number = ContainerNumber::Parse(e.number);
    if (!number.ok()) {
      out.problems.push_back({"cuscar_container", e.segment, "EQD", number.error().message});
      continue;
    }
    v1::Manifest m;
    m.set_container_number(number->str());
    m.set_version(version);
    m.set_declared_at_ms(*declared);
    if (eta) m.set_eta_ms(*eta);
    m.set_voyage(voyage);
    m.set_vessel_imo(imo);
    m.set_vessel_name(vessel);
    m.set_carrier_scac(scac);
    m.set_container_size_type(e.size_type);
    m.set_tare_weight_kg(e.tare_kg);
    for (const auto& seal : e.seals) m.add_seal_numbers(seal);
    const Consignment* first = nullptr;
    std::string unlinked;
    for (const Consignment& c : consignments) {
      bool linked = false;
      for (const Goods& g : c.goods) {
        double share = 0;
        if (g.placements.empty()) {
          if (equipment.size() != 1) {
            if (unlinked.empty()) {
              unlinked = "goods item at segment " + std::to_string(g.segment) +
                         " names no container (SGP) and the message has several";
            }
            continue;
          }
          share = 1;
        } else {
          for (const auto& [container, packages] : g.placements) {
            if (container != number->str()) continue;
            share = packages > 0 && g.line.packages() > 0 ? packages / g.line.packages() : 1;
            if (g.placements.size() == 1) share = 1;
          }
        }
        if (share <= 0) continue;
        linked = true;
        v1::GoodsLine* line = m.add_goods();
        *line = g.line;
        if (share != 1) {
          line->set_packages(static_cast<uint32_t>(std::llround(g.line.packages() * share)));
          line->set_gross_weight_kg(g.line.gross_weight_kg() * share);
        }
      }
      if (c.goods.empty() && equipment.size() == 1) linked = true;  // a consignment without goods lines
      if (linked && first == nullptr) first = &c;
    }
    if (first == nullptr) {
      out.problems.push_back({"cuscar_link", e.segment, "EQD",
                              "container " + number->str() + " belongs to no consignment" +
                                  (unlinked.empty() ? "" : ": " + unlinked)});
      continue;
    }
    m.set_bill_of_lading(first->bill);
    if (!first->shipper.name().empty()) *m.mutable_shipper() = first->shipper;
    if (!first->consignee.name().empty()) *m.mutable_consignee() = first->consignee;
    if (!first->notify.name().empty()) *m.mutable_notify_party() = first->notify;
    m.set_freight_payment(first->freight);
    m.set_port_of_loading(first->loading.empty() ? loading : first->loading);
    m.set_port_of_discharge(first->discharge.empty() ? discharge : first->discharge);
    m.set_final_destination(first->final_destination.empty() ? final_destination : first->final_destination);
    for (const auto& p : first->transhipments.empty() ? transhipments : first->transhipments) m.add_transhipment_ports(p);
    out.manifests.push_back(std::move(m));
  }
  return out;
}

std::string WriteCuscar(const std::vector<v1::Manifest>& manifests, const std::string& control_reference,
                        const std::string& syntax) {
  const bool v4 = syntax == "UNOW" || syntax == "UNOY";
  g_release_star = v4;
  std::string out = v4 ? "UNA:+.?*'" : "UNA:+.? '";
  const int64_t prepared = manifests.empty() ? 0 : manifests.front().declared_at_ms();
  const std::string when = Utc204(prepared);
  out += "UNB+" + syntax + ":" + (v4 ? "4" : "3") + "+BOXWATCH-SIM:ZZZ+CUSTOMS:ZZZ+" +
         (v4 ? when.substr(0, 8) : when.substr(2, 6)) + ":" + when.substr(8, 4) + "+" + Escape(control_reference) +
         "'\n";
  int n = 0;
  for (const auto& m : manifests) {
    ++n;
    std::vector<std::string> segs;
    segs.push_back("UNH+" + std::to_string(n) + "+CUSCAR:D:01B:UN");
    segs.push_back("BGM+85+" + Escape(m.bill_of_lading()) + ":" + std::to_string(m.version()) + "+" +
                   (m.version() <= 1 ? "9" : "5"));
    segs.push_back("DTM+137:" + Utc204(m.declared_at_ms()) + ":204");
    std::string tdt = "TDT+20+" + Escape(m.voyage()) + "+1++" + (m.carrier_scac().empty() ? "" : Escape(m.carrier_scac()) + ":172");
    if (!m.vessel_imo().empty() || !m.vessel_name().empty()) {
      tdt += "+++" + Escape(m.vessel_imo()) + ":146:11:" + Escape(m.vessel_name());
    }
    segs.push_back(tdt);
    if (!m.port_of_loading().empty()) segs.push_back("LOC+9+" + Escape(m.port_of_loading()) + ":139:6");
    for (const auto& t : m.transhipment_ports()) segs.push_back("LOC+13+" + Escape(t) + ":139:6");
    if (!m.port_of_discharge().empty()) segs.push_back("LOC+11+" + Escape(m.port_of_discharge()) + ":139:6");
    if (!m.final_destination().empty()) segs.push_back("LOC+20+" + Escape(m.final_destination()) + ":139:6");
    if (m.eta_ms() > 0) segs.push_back("DTM+132:" + Utc204(m.eta_ms()) + ":204");
    segs.push_back("EQD+CN+" + Escape(m.container_number()) +
                   (m.container_size_type().empty() ? "" : "+" + Escape(m.container_size_type()) + ":102:5"));
    if (m.tare_weight_kg() > 0) segs.push_back("MEA+AAE+T+KGM:" + Num(m.tare_weight_kg()));
    for (const auto& seal : m.seal_numbers()) segs.push_back("SEL+" + Escape(seal) + "+CA");
    segs.push_back("CNI+1+" + Escape(m.bill_of_lading()));
    segs.push_back("RFF+BM:" + Escape(m.bill_of_lading()));
    switch (m.freight_payment()) {
      case v1::Manifest::FREIGHT_PAYMENT_PREPAID: segs.push_back("CPI+4++P"); break;
      case v1::Manifest::FREIGHT_PAYMENT_COLLECT: segs.push_back("CPI+4++C"); break;
      case v1::Manifest::FREIGHT_PAYMENT_THIRD_PARTY: segs.push_back("CPI+4++B"); break;
      case v1::Manifest::FREIGHT_PAYMENT_CASH: segs.push_back("CPI+4+ZZZ+P"); break;
      default: break;
    }
    auto nad = [&](const char* q, const v1::Party& p) {
      if (p.name().empty()) return;
      std::string s = std::string("NAD+") + q + "+" + Escape(p.id()) + "++" + Components(p.name(), kNameComponent);
      if (!p.address().empty() || !p.country().empty()) {
        s += "+" + Components(p.address(), kNameComponent) + "++++" + Escape(p.country());
      }
      segs.push_back(s);
    };
    nad("CZ", m.shipper());
    nad("CN", m.consignee());
    nad("N1", m.notify_party());
    for (int i = 0; i < m.goods_size(); ++i) {
      const auto& g = m.goods(i);
      segs.push_back("GID+" + std::to_string(i + 1) + "+" + std::to_string(g.packages()) +
                     (g.package_type().empty() ? "" : ":" + Escape(g.package_type())));
      if (!g.description().empty()) segs.push_back("FTX+AAA+++" + Components(g.description(), kTextComponent));
      if (g.gross_weight_kg() > 0) segs.push_back("MEA+AAE+G+KGM:" + Num(g.gross_weight_kg()));
      segs.push_back("SGP+" + Escape(m.container_number()) + "+" + std::to_string(g.packages()));
      if (!g.hs_code().empty()) segs.push_back("CST++" + Escape(g.hs_code()));
    }
    segs.push_back("UNT+" + std::to_string(segs.size() + 1) + "+" + std::to_string(n));
    for (const auto& s : segs) out += s + "'\n";
  }
  out += "UNZ+" + std::to_string(n) + "+" + Escape(control_reference) + "'\n";
  return out;
}

}  // namespace boxwatch::ingest
