#include "ingest/n42.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>

#include "core/types.h"

namespace boxwatch::ingest {
namespace {

constexpr const char* kNs2012 = "http://physics.nist.gov/N42/2011/N42";
constexpr const char* kNs2006 = "http://physics.nist.gov/Divisions/Div846/Gp4/ANSIN4242/2005/ANSIN4242";

// An element of the N42 namespaces (or none) with local name `name`.
bool Is(const xmlNode* n, const char* name) {
  if (n == nullptr || n->type != XML_ELEMENT_NODE || xmlStrcmp(n->name, BAD_CAST name) != 0) return false;
  if (n->ns == nullptr || n->ns->href == nullptr) return true;
  return xmlStrcmp(n->ns->href, BAD_CAST kNs2012) == 0 || xmlStrcmp(n->ns->href, BAD_CAST kNs2006) == 0;
}

std::vector<const xmlNode*> Children(const xmlNode* n, const char* name) {
  std::vector<const xmlNode*> out;
  for (const xmlNode* c = n ? n->children : nullptr; c; c = c->next) {
    if (Is(c, name)) out.push_back(c);
  }
  return out;
}

const xmlNode* Child(const xmlNode* n, const char* name) {
  for (const xmlNode* c = n ? n->children : nullptr; c; c = c->next) {
    if (Is(c, name)) return c;
  }
  return nullptr;
}

std::string Text(const xmlNode* n) {
  if (n == nullptr) return "";
  xmlChar* t = xmlNodeGetContent(n);
  std::string s = t ? reinterpret_cast<const char*>(t) : "";
  xmlFree(t);
  const size_t b = s.find_first_not_of(" \t\r\n");
  const size_t e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::string Attr(const xmlNode* n, const char* name) {
  xmlChar* v = xmlGetProp(n, BAD_CAST name);
  std::string s = v ? reinterpret_cast<const char*>(v) : "";
  xmlFree(v);
  return s;
}

// "/RadInstrumentData/RadMeasurement[2]/StartDateTime": local names, with a
// 1-based index where an element has same-named siblings.
std::string Path(const xmlNode* n) {
  std::string path;
  for (; n != nullptr && n->type == XML_ELEMENT_NODE; n = n->parent) {
    const char* name = reinterpret_cast<const char*>(n->name);
    int index = 1, same = 0;
    for (const xmlNode* s = n->parent ? n->parent->children : nullptr; s; s = s->next) {
      if (s->type != XML_ELEMENT_NODE || xmlStrcmp(s->name, n->name) != 0) continue;
      ++same;
      if (s == n) index = same;
    }
    path = "/" + std::string(name) + (same > 1 ? "[" + std::to_string(index) + "]" : "") + path;
  }
  return path;
}

std::vector<std::string> Words(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    size_t j = i;
    while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::optional<double> Number(const std::string& s) {
  if (s.empty() || s.size() > 64) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

// xs:duration as N42 uses it (PT0.1S, PT1M30S, P0DT0H5M): seconds.
std::optional<double> Duration(const std::string& s) {
  if (s.size() < 3 || s[0] != 'P') return std::nullopt;
  double total = 0;
  bool time = false, any = false;
  size_t i = 1;
  while (i < s.size()) {
    if (s[i] == 'T') {
      if (time) return std::nullopt;
      time = true;
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '.')) ++j;
    if (j == i || j >= s.size()) return std::nullopt;
    auto v = Number(s.substr(i, j - i));
    if (!v || *v < 0) return std::nullopt;
    const char unit = s[j];
    if (!time && unit == 'D') {
      total += *v * 86400;
    } else if (time && unit == 'H') {
      total += *v * 3600;
    } else if (time && unit == 'M') {
      total += *v * 60;
    } else if (time && unit == 'S') {
      total += *v;
    } else {
      return std::nullopt;  // years and months are not durations of a measurement
    }
    any = true;
    i = j + 1;
  }
  if (!any) return std::nullopt;
  return total;
}

// xs:dateTime with a zone (Z or +hh:mm): UTC ms.
std::optional<int64_t> DateTime(const std::string& s) {
  if (s.size() < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':') return std::nullopt;
  for (size_t k : {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18}) {
    if (!std::isdigit(static_cast<unsigned char>(s[k]))) return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = std::stoi(s.substr(0, 4)) - 1900;
  tm.tm_mon = std::stoi(s.substr(5, 2)) - 1;
  tm.tm_mday = std::stoi(s.substr(8, 2));
  tm.tm_hour = std::stoi(s.substr(11, 2));
  tm.tm_min = std::stoi(s.substr(14, 2));
  tm.tm_sec = std::stoi(s.substr(17, 2));
  if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
      tm.tm_sec > 60) {
    return std::nullopt;
  }
  {
    std::tm check = tm;  // no 31 February
    const std::time_t t = timegm(&check);
    std::tm back{};
    gmtime_r(&t, &back);
    if (back.tm_mday != tm.tm_mday) return std::nullopt;
  }
  size_t i = 19;
  int64_t ms = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    int digits = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      if (digits < 3) ms = ms * 10 + (s[i] - '0');
      ++digits;
      ++i;
    }
    if (digits == 0) return std::nullopt;
    for (int d = digits; d < 3; ++d) ms *= 10;
  }
  int64_t offset_s = 0;
  if (i < s.size() && s[i] == 'Z' && i + 1 == s.size()) {
    offset_s = 0;
  } else if (i + 6 == s.size() && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':' &&
             std::isdigit(static_cast<unsigned char>(s[i + 1])) && std::isdigit(static_cast<unsigned char>(s[i + 2])) &&
             std::isdigit(static_cast<unsigned char>(s[i + 4])) && std::isdigit(static_cast<unsigned char>(s[i + 5]))) {
    offset_s = (std::stoi(s.substr(i + 1, 2)) * 3600 + std::stoi(s.substr(i + 4, 2)) * 60) * (s[i] == '-' ? -1 : 1);
  } else {
    return std::nullopt;  // no zone: the time is ambiguous
  }
  return (static_cast<int64_t>(timegm(&tm)) - offset_s) * 1000 + ms;
}

// The first ISO 6346 number in free text ("Container MSKU 123456-7"): the
// container, or an error saying what was found.
Result<std::string> ContainerIn(const std::string& text) {
  std::string compact;
  for (char c : text) {
    if (c != ' ' && c != '-') compact.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  for (size_t i = 0; i + 11 <= compact.size(); ++i) {
    bool shape = true;
    for (size_t k = 0; k < 4; ++k) shape = shape && std::isupper(static_cast<unsigned char>(compact[i + k]));
    for (size_t k = 4; k < 11; ++k) shape = shape && std::isdigit(static_cast<unsigned char>(compact[i + k]));
    if (!shape) continue;
    auto c = ContainerNumber::Parse(compact.substr(i, 11));
    if (!c.ok()) return c.error();
    return c->str();
  }
  return Error{Errc::kNotFound, "no ISO 6346 container number in '" + text.substr(0, 80) + "'"};
}

// A Characteristic named `name` (case-insensitive) anywhere under `n`.
std::optional<std::string> Characteristic(const xmlNode* n, const std::string& name) {
  for (const xmlNode* c = n ? n->children : nullptr; c; c = c->next) {
    if (c->type != XML_ELEMENT_NODE) continue;
    if (Is(c, "Characteristic") && Lower(Text(Child(c, "CharacteristicName"))) == Lower(name)) {
      return Text(Child(c, "CharacteristicValue"));
    }
    if (auto v = Characteristic(c, name)) return v;
  }
  return std::nullopt;
}

struct Slice {
  int64_t start_ms = 0;
  double real_s = 0;
  double gamma_cps = 0, neutron_cps = 0;
  bool has_gamma = false, has_neutron = false;
};

struct Occupancy {
  std::string key;
  std::vector<Slice> slices;
  std::string container_text;  // where to look for the container number
  bool container_from_characteristic = false;
  bool gamma_alarm = false, neutron_alarm = false;
  std::vector<std::string> nuclides;  // identified (NuclideAnalysisResults), in document order
  const xmlNode* node = nullptr;  // for problem paths
};

struct Background {
  double gamma = 0, neutron = 0;
  int gamma_n = 0, neutron_n = 0;
};

v1::ScanResult ToScan(const Occupancy& o, const Background& bg, const std::string& container, const std::string& site,
                      const std::string& device, const std::string& doc_id, bool single) {
  v1::ScanResult s;
  s.set_container_number(container);
  s.set_kind(v1::ScanResult::SCAN_KIND_RPM);
  s.set_site(site);
  s.set_device_id(device);
  int64_t start = o.slices.empty() ? 0 : o.slices[0].start_ms;
  double gamma = 0, neutron = 0, seconds = 0;
  for (const auto& sl : o.slices) {
    start = std::min(start, sl.start_ms);
    gamma = std::max(gamma, sl.gamma_cps);
    neutron = std::max(neutron, sl.neutron_cps);
    seconds += sl.real_s;
  }
  s.set_scanned_at_ms(start);
  s.set_scan_id(doc_id.empty() ? device + "@" + std::to_string(start) : single ? doc_id : doc_id + "/" + o.key);
  auto* r = s.mutable_rpm();
  r->set_gamma_cps(gamma);
  r->set_neutron_cps(neutron);
  r->set_gamma_background_cps(bg.gamma_n ? bg.gamma / bg.gamma_n : 0);
  r->set_neutron_background_cps(bg.neutron_n ? bg.neutron / bg.neutron_n : 0);
  r->set_gamma_alarm(o.gamma_alarm);
  r->set_neutron_alarm(o.neutron_alarm);
  r->set_occupancy_seconds(seconds);
  for (const auto& n : o.nuclides) {
    // As the canonical scan allows: 16 at most, each 1-16 bytes, once each.
    if (n.empty() || n.size() > 16 || r->nuclides_size() >= 16) continue;
    if (std::find(r->nuclides().begin(), r->nuclides().end(), n) == r->nuclides().end()) r->add_nuclides(n);
  }
  return s;
}

// Emits one scan per occupancy, or a problem.
void Finish(std::vector<Occupancy>& occupancies, const Background& bg, const std::string& site,
            const std::string& device, const std::string& doc_id, N42Parse* out) {
  if (occupancies.empty()) {
    // Unless its measurements were refused already (each with its problem).
    if (out->problems.empty()) {
      out->problems.push_back({"n42_empty", "", "the document has no occupancy (no foreground measurement)"});
    }
    return;
  }
  for (auto& o : occupancies) {
    auto container = ContainerIn(o.container_text);
    if (!container.ok()) {
      out->problems.push_back({"n42_container", Path(o.node), container.error().message});
      continue;
    }
    if (site.empty()) {
      out->problems.push_back({"n42_site", Path(o.node),
                               "the instrument names no Site characteristic and no default site is configured"});
      continue;
    }
    out->scans.push_back(ToScan(o, bg, *container, site, device, doc_id, occupancies.size() == 1));
  }
}

// Sum of a whitespace-separated count list; nullopt when malformed or negative.
std::optional<double> SumCounts(const std::string& s) {
  double total = 0;
  const auto words = Words(s);
  if (words.empty()) return std::nullopt;
  for (const auto& w : words) {
    auto v = Number(w);
    if (!v || *v < 0) return std::nullopt;
    total += *v;
  }
  return total;
}

void Parse2012(const xmlNode* root, const N42Options& options, N42Parse* out) {
  out->edition = "2012";
  const xmlNode* inst = Child(root, "RadInstrumentInformation");
  std::string device = Text(Child(inst, "RadInstrumentIdentifier"));
  if (device.empty() && inst) device = Attr(inst, "id");
  std::string site = options.default_site;
  if (auto s = Characteristic(inst, "Site"); s && !s->empty()) site = *s;
  std::map<std::string, std::string> detector;  // id -> Gamma / Neutron / ...
  for (const xmlNode* d : Children(root, "RadDetectorInformation")) {
    detector[Attr(d, "id")] = Text(Child(d, "RadDetectorCategoryCode"));
  }
  struct Item {
    std::string text;
    bool characteristic = false;
  };
  std::map<std::string, Item> items;
  for (const xmlNode* it : Children(root, "RadItemInformation")) {
    if (auto c = Characteristic(it, "ContainerNumber"); c && !c->empty()) {
      items[Attr(it, "id")] = {*c, true};
    } else {
      items[Attr(it, "id")] = {Text(Child(it, "RadItemDescription")), false};
    }
  }
  Background bg;
  std::map<std::string, Occupancy> by_key;
  std::vector<std::string> order;
  std::map<std::string, std::string> key_of_measurement;
  const auto measurements = Children(root, "RadMeasurement");
  if (measurements.size() > 10000) {
    out->problems.push_back({"n42_size", "", std::to_string(measurements.size()) + " measurements, over 10000"});
    return;
  }
  for (const xmlNode* m : measurements) {
    if (out->problems.size() >= 100) break;  // a document this broken says enough in 100 problems
    const std::string cls = Text(Child(m, "MeasurementClassCode"));
    if (cls != "Foreground" && cls != "Background") continue;  // calibrations and the like
    Slice slice;
    const xmlNode* start = Child(m, "StartDateTime");
    auto t = DateTime(Text(start));
    auto real = Duration(Text(Child(m, "RealTimeDuration")));
    if (!t || !real) {
      out->problems.push_back({"n42_time", Path(t ? Child(m, "RealTimeDuration") : start),
                               "StartDateTime needs a date, time and zone; RealTimeDuration an xs:duration"});
      continue;
    }
    slice.start_ms = *t;
    slice.real_s = *real;
    bool bad = false;
    for (const xmlNode* g : Children(m, "GrossCounts")) {
      auto live = Duration(Text(Child(g, "LiveTimeDuration")));
      auto counts = SumCounts(Text(Child(g, "CountData")));
      if (!live || *live <= 0 || !counts) {
        out->problems.push_back({"n42_counts", Path(g), "GrossCounts needs a positive LiveTimeDuration and counts"});
        bad = true;
        break;
      }
      const std::string& category = detector[Attr(g, "radDetectorInformationReference")];
      if (category == "Gamma") {
        slice.gamma_cps += *counts / *live;
        slice.has_gamma = true;
      } else if (category == "Neutron") {
        slice.neutron_cps += *counts / *live;
        slice.has_neutron = true;
      }
    }
    if (bad) continue;
    if (cls == "Background") {
      if (slice.has_gamma) bg.gamma += slice.gamma_cps, ++bg.gamma_n;
      if (slice.has_neutron) bg.neutron += slice.neutron_cps, ++bg.neutron_n;
      continue;
    }
    const xmlNode* occ = Child(m, "OccupancyIndicator");
    const std::string occupied = Text(occ);
    if (occ != nullptr && (occupied == "false" || occupied == "0")) continue;  // a pre- or post-occupancy slice
    const auto groups = Words(Attr(m, "radMeasurementGroupReferences"));
    const std::string key = groups.empty() ? Attr(m, "id") : groups[0];
    key_of_measurement[Attr(m, "id")] = key;
    auto [it, fresh] = by_key.try_emplace(key);
    Occupancy& o = it->second;
    if (fresh) {
      o.key = key;
      o.node = m;
      order.push_back(key);
    }
    for (const auto& ref : Words(Attr(m, "radItemInformationReferences"))) {
      auto item = items.find(ref);
      if (item != items.end() && o.container_text.empty()) o.container_text = item->second.text;
    }
    if (o.container_text.empty() && items.size() == 1) o.container_text = items.begin()->second.text;
    o.slices.push_back(slice);
  }
  for (const xmlNode* a : Children(root, "AnalysisResults")) {
    std::set<std::string> targets;
    for (const auto& r : Words(Attr(a, "radMeasurementGroupReferences"))) targets.insert(r);
    for (const auto& r : Words(Attr(a, "radMeasurementReferences"))) {
      auto k = key_of_measurement.find(r);
      if (k != key_of_measurement.end()) targets.insert(k->second);
    }
    for (const xmlNode* alarm : Children(a, "RadAlarm")) {
      const std::string category = Text(Child(alarm, "RadAlarmCategoryCode"));
      for (auto& [key, o] : by_key) {
        if (!targets.empty() && !targets.count(key)) continue;
        if (category == "Gamma" || category == "Isotope") o.gamma_alarm = true;
        if (category == "Neutron") o.neutron_alarm = true;
      }
    }
    // Spectroscopic portals name what they identified.
    for (const xmlNode* results : Children(a, "NuclideAnalysisResults")) {
      for (const xmlNode* nuclide : Children(results, "Nuclide")) {
        const std::string name = Text(Child(nuclide, "NuclideName"));
        const std::string identified = Text(Child(nuclide, "NuclideIdentifiedIndicator"));
        if (name.empty() || identified == "false" || identified == "0") continue;
        for (auto& [key, o] : by_key) {
          if (!targets.empty() && !targets.count(key)) continue;
          o.nuclides.push_back(name);
        }
      }
    }
  }
  std::vector<Occupancy> occupancies;
  for (const auto& k : order) occupancies.push_back(by_key[k]);
  std::string doc_id = Attr(root, "n42DocUUID");
  if (doc_id.empty()) doc_id = Attr(root, "id");
  Finish(occupancies, bg, site, device, doc_id, out);
}

const xmlNode* Find2006(const xmlNode* n, int depth) {
  for (const xmlNode* c = n; c && depth < 8; c = c->next) {
    if (Is(c, "N42InstrumentData")) return c;
    if (c->type == XML_ELEMENT_NODE) {
      if (const xmlNode* f = Find2006(c->children, depth + 1)) return f;
    }
  }
  return nullptr;
}

void Parse2006(const xmlNode* data, const N42Options& options, N42Parse* out) {
  out->edition = "2006";
  for (const xmlNode* m : Children(data, "Measurement")) {
    const xmlNode* inst = Child(m, "InstrumentInformation");
    const std::string device = Text(Child(inst, "InstrumentID"));
    Background bg;
    Occupancy o;
    o.key = "occupancy";
    o.node = m;
    o.container_text = Text(Child(m, "MeasuredItemInformation"));
    bool bad = false;
    for (const xmlNode* d : Children(m, "DetectorData")) {
      Slice slice;
      auto t = DateTime(Text(Child(d, "StartTime")));
      auto real = Duration(Text(Child(d, "SampleRealTime")));
      if (!t || !real || *real <= 0) {
        out->problems.push_back({"n42_time", Path(d), "DetectorData needs StartTime with a zone and a positive SampleRealTime"});
        bad = true;
        break;
      }
      slice.start_ms = *t;
      slice.real_s = *real;
      for (const xmlNode* dm : Children(d, "DetectorMeasurement")) {
        const std::string type = Attr(dm, "DetectorType");
        const xmlNode* gc = Child(Child(dm, "GrossCountMeasurement"), "GrossCounts");
        if (gc == nullptr) continue;
        auto counts = SumCounts(Text(gc));
        if (!counts) {
          out->problems.push_back({"n42_counts", Path(gc), "GrossCounts is not a list of non-negative numbers"});
          bad = true;
          break;
        }
        if (type == "Gamma") slice.gamma_cps += *counts / *real, slice.has_gamma = true;
        if (type == "Neutron") slice.neutron_cps += *counts / *real, slice.has_neutron = true;
      }
      if (bad) break;
      const std::string occupied = Text(Child(d, "Occupied"));
      if (occupied == "1" || occupied == "true") {
        o.slices.push_back(slice);
      } else {
        if (slice.has_gamma) bg.gamma += slice.gamma_cps, ++bg.gamma_n;
        if (slice.has_neutron) bg.neutron += slice.neutron_cps, ++bg.neutron_n;
      }
    }
    if (bad) continue;
    const std::string threat = Lower(Text(Child(Child(m, "AnalysisResults"), "ThreatDescription")));
    if (threat.find("no alarm") == std::string::npos) {
      o.gamma_alarm = threat.find("gamma") != std::string::npos;
      o.neutron_alarm = threat.find("neutron") != std::string::npos;
    }
    std::vector<Occupancy> occupancies;
    if (!o.slices.empty()) occupancies.push_back(std::move(o));
    Finish(occupancies, bg, options.default_site, device, Attr(m, "UUID"), out);
  }
  if (Children(data, "Measurement").empty()) out->problems.push_back({"n42_empty", Path(data), "no Measurement"});
}

}  // namespace

void InitXml() {
  static std::once_flag once;
  std::call_once(once, [] { xmlInitParser(); });
}

N42Parse ParseN42(std::string_view bytes, const N42Options& options) {
  InitXml();
  N42Parse out;
  if (bytes.size() > options.max_bytes) {
    out.problems.push_back({"n42_size", "", std::to_string(bytes.size()) + " bytes, over the limit of " +
                                                std::to_string(options.max_bytes)});
    return out;
  }
  // N42 documents need no DTD; one that declares a DOCTYPE or entities is
  // refused before libxml2 sees it (external entities, expansion bombs).
  if (bytes.find("<!DOCTYPE") != std::string_view::npos || bytes.find("<!ENTITY") != std::string_view::npos) {
    out.problems.push_back({"n42_doctype", "", "a DOCTYPE or ENTITY declaration is not accepted in N42 data"});
    return out;
  }
  // IGNORE_ENC: the bytes are read as UTF-8 whatever the document declares,
  // so a UTF-16 or UTF-7 document cannot hide a DOCTYPE from the check above.
  const int flags = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA | XML_PARSE_IGNORE_ENC;
  std::unique_ptr<xmlDoc, void (*)(xmlDoc*)> doc(
      xmlReadMemory(bytes.data(), static_cast<int>(bytes.size()), "n42.xml", nullptr, flags), xmlFreeDoc);
  if (!doc) {
    const xmlError* e = xmlGetLastError();
    out.problems.push_back({"n42_xml", e ? "line " + std::to_string(e->line) : "",
                            e && e->message ? Lower(std::string(e->message).substr(0, 160)) : "not well-formed XML"});
    return out;
  }
  if (doc->intSubset != nullptr || doc->extSubset != nullptr) {
    out.problems.push_back({"n42_doctype", "", "a DOCTYPE is not accepted in N42 data"});
    return out;
  }
  const xmlNode* root = xmlDocGetRootElement(doc.get());
  if (Is(root, "RadInstrumentData")) {
    Parse2012(root, options, &out);
  } else if (const xmlNode* data = Find2006(root, 0)) {
    Parse2006(data, options, &out);
  } else {
    out.problems.push_back({"n42_root", root ? Path(root) : "",
                            "neither RadInstrumentData (N42.42-2012) nor N42InstrumentData (N42.42-2006)"});
  }
  return out;
}

std::string WriteN42(const v1::ScanResult& scan) {
  auto esc = [](const std::string& t) {
    std::string o;
    for (char c : t) {
      if (c == '<') o += "&lt;";
      else if (c == '>') o += "&gt;";
      else if (c == '&') o += "&amp;";
      else if (c == '"') o += "&quot;";
      else o += c;
    }
    return o;
  };
  auto num = [](double v) {
    char b[40];
    std::snprintf(b, sizeof b, "%.10g", v);
    return std::string(b);
  };
  auto when = [](int64_t ms) {
    char frac[8];
    std::snprintf(frac, sizeof frac, ".%03dZ", static_cast<int>(ms % 1000));
    return FormatUtcTime(ms, "%Y-%m-%dT%H:%M:%S") + frac;
  };
  auto characteristic = [&](const char* name, const std::string& value) {
    return std::string("<Characteristic><CharacteristicName>") + name + "</CharacteristicName><CharacteristicValue>" +
           esc(value) + "</CharacteristicValue><CharacteristicValueUnits>unit-less</CharacteristicValueUnits>"
           "<CharacteristicValueDataClassCode>string</CharacteristicValueDataClassCode></Characteristic>";
  };
  const auto& r = scan.rpm();
  auto counts = [&](const char* id, const char* detector, double cps) {
    return std::string("<GrossCounts id=\"") + id + "\" radDetectorInformationReference=\"" + detector +
           "\"><LiveTimeDuration>PT1S</LiveTimeDuration><CountData>" + num(cps) + "</CountData></GrossCounts>";
  };
  std::string x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<RadInstrumentData xmlns=\"http://physics.nist.gov/N42/2011/N42\"";
  if (!scan.scan_id().empty()) x += " n42DocUUID=\"" + esc(scan.scan_id()) + "\"";
  x += ">\n<RadInstrumentInformation id=\"rpm\"><RadInstrumentManufacturerName>boxwatch simulator</RadInstrumentManufacturerName>";
  if (!scan.device_id().empty()) x += "<RadInstrumentIdentifier>" + esc(scan.device_id()) + "</RadInstrumentIdentifier>";
  x += "<RadInstrumentModelName>gross-count RPM</RadInstrumentModelName><RadInstrumentClassCode>Portal Monitor</RadInstrumentClassCode>"
       "<RadInstrumentVersion><RadInstrumentComponentName>Software</RadInstrumentComponentName>"
       "<RadInstrumentComponentVersion>1</RadInstrumentComponentVersion></RadInstrumentVersion>"
       "<RadInstrumentCharacteristics>" + characteristic("Site", scan.site()) + "</RadInstrumentCharacteristics>"
       "</RadInstrumentInformation>\n"
       "<RadDetectorInformation id=\"gamma\"><RadDetectorCategoryCode>Gamma</RadDetectorCategoryCode><RadDetectorKindCode>PVT</RadDetectorKindCode></RadDetectorInformation>\n"
       "<RadDetectorInformation id=\"neutron\"><RadDetectorCategoryCode>Neutron</RadDetectorCategoryCode><RadDetectorKindCode>He3</RadDetectorKindCode></RadDetectorInformation>\n"
       "<RadItemInformation id=\"item\"><RadItemDescription>Container " + esc(scan.container_number()) +
       "</RadItemDescription><RadItemCharacteristics>" + characteristic("ContainerNumber", scan.container_number()) +
       "</RadItemCharacteristics></RadItemInformation>\n";
  x += "<RadMeasurement id=\"background\"><MeasurementClassCode>Background</MeasurementClassCode><StartDateTime>" +
       when(scan.scanned_at_ms() - 300000) + "</StartDateTime><RealTimeDuration>PT300S</RealTimeDuration>" +
       counts("bg-g", "gamma", r.gamma_background_cps()) + counts("bg-n", "neutron", r.neutron_background_cps()) +
       "<OccupancyIndicator>false</OccupancyIndicator></RadMeasurement>\n";
  x += "<RadMeasurement id=\"occupancy\" radItemInformationReferences=\"item\"><MeasurementClassCode>Foreground</MeasurementClassCode>"
       "<StartDateTime>" + when(scan.scanned_at_ms()) + "</StartDateTime><RealTimeDuration>PT" + num(r.occupancy_seconds()) +
       "S</RealTimeDuration>" + counts("fg-g", "gamma", r.gamma_cps()) + counts("fg-n", "neutron", r.neutron_cps()) +
       "<OccupancyIndicator>true</OccupancyIndicator></RadMeasurement>\n";
  if (r.gamma_alarm() || r.neutron_alarm() || r.nuclides_size() > 0) {
    x += "<AnalysisResults radMeasurementReferences=\"occupancy\">";
    if (r.gamma_alarm()) x += "<RadAlarm radDetectorInformationReferences=\"gamma\"><RadAlarmCategoryCode>Gamma</RadAlarmCategoryCode></RadAlarm>";
    if (r.neutron_alarm()) x += "<RadAlarm radDetectorInformationReferences=\"neutron\"><RadAlarmCategoryCode>Neutron</RadAlarmCategoryCode></RadAlarm>";
    if (r.nuclides_size() > 0) {
      x += "<NuclideAnalysisResults>";
      for (const auto& n : r.nuclides())
        x += "<Nuclide><NuclideIdentifiedIndicator>true</NuclideIdentifiedIndicator><NuclideName>" + n +
             "</NuclideName><NuclideIDConfidenceValue>80</NuclideIDConfidenceValue></Nuclide>";
      x += "</NuclideAnalysisResults>";
    }
    x += "</AnalysisResults>\n";
  }
  x += "</RadInstrumentData>\n";
  return x;
}

}  // namespace boxwatch::ingest
