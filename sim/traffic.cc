#include "sim/traffic.h"

#include <algorithm>
#include <cstdio>
#include <random>

#include "core/types.h"
#include "operators/decode.h"

namespace boxwatch::sim {
namespace {

constexpr int64_t kMin = 60000;

std::string Number(const char* owner, int serial) {
  char first[32];
  std::snprintf(first, sizeof first, "%.3sU%06d", owner, serial % 1000000);
  return std::string(first) + std::to_string(ContainerNumber::CheckDigit(first));
}

}  // namespace

const char* ScenarioName(Scenario s) {
  switch (s) {
    case Scenario::kNone: return "none";
    case Scenario::kDeviation: return "route_deviation";
    case Scenario::kNightStop: return "night_stop";
    case Scenario::kSealSwap: return "seal_swap";
    case Scenario::kGamma: return "radiation_gamma";
    case Scenario::kNeutron: return "radiation_neutron";
    case Scenario::kWatchlisted: return "watchlisted_consignee";
    case Scenario::kRiskyRoute: return "risky_route_vague_goods";
  }
  return "?";
}

Traffic GenerateTraffic(const TrafficOptions& o, const operators::Profile& profile) {
  std::mt19937 rng(o.seed);
  std::uniform_real_distribution<double> u(0, 1);
  static const char* kOwners[] = {"MSK", "CSQ", "MSC", "CMA", "HLX", "ONE", "EGH", "OOL", "TGH", "SEG"};
  const auto& line = profile.corridors.front().points;
  struct Timed {
    int64_t deliver;
    int64_t seq;
    TrafficRecord r;
  };
  std::vector<Timed> out;
  int64_t seq = 0;
  auto emit = [&](TrafficRecord r, int64_t deliver) { out.push_back({deliver, seq++, std::move(r)}); };
  Traffic traffic;
  const std::string watchlisted =
      profile.watchlisted_parties.empty() ? "" : *std::min_element(profile.watchlisted_parties.begin(), profile.watchlisted_parties.end());
  const std::string risky_port =
      profile.high_risk_ports.empty() ? "" : *std::min_element(profile.high_risk_ports.begin(), profile.high_risk_ports.end());

  for (int c = 0; c < o.containers; ++c) {
    const std::string number = Number(kOwners[c % 10], 100000 + c);
    const double pick = u(rng);
    Scenario sc = Scenario::kNone;
    if (pick < 0.04) sc = Scenario::kDeviation;
    else if (pick < 0.08) sc = Scenario::kNightStop;
    else if (pick < 0.10) sc = Scenario::kSealSwap;
    else if (pick < 0.13) sc = Scenario::kGamma;
    else if (pick < 0.135) sc = Scenario::kNeutron;
    else if (pick < 0.16) sc = Scenario::kWatchlisted;
    else if (pick < 0.18) sc = Scenario::kRiskyRoute;
    traffic.labels.emplace_back(number, sc);
    const int64_t start = o.start_ms + static_cast<int64_t>(u(rng) * 6 * 60 * kMin);

    v1::Manifest m;
    m.set_container_number(number);
    m.set_version(1);
    m.set_bill_of_lading("BL" + number.substr(4, 6));
    m.mutable_shipper()->set_name("Shanghai Ceramics Export Ltd");
    m.mutable_consignee()->set_name(sc == Scenario::kWatchlisted ? watchlisted : "Vientiane Building Supplies");
    m.mutable_notify_party()->set_name("Mekong Forwarding");
    auto* g = m.add_goods();
    g->set_hs_code("690721");
    g->set_description(sc == Scenario::kRiskyRoute ? "said to contain general cargo" : "glazed ceramic floor tiles");
    g->set_packages(20);
    g->set_gross_weight_kg(17000 + static_cast<double>(rng() % 5000));
    m.add_seal_numbers("SL" + number.substr(4, 6));
    m.set_vessel_imo("9811000");
    m.set_port_of_loading("CNSHA");
    m.add_transhipment_ports(sc == Scenario::kRiskyRoute && !risky_port.empty() ? risky_port : "SGSIN");
    m.set_port_of_discharge("THLCH");
    m.set_final_destination("LAVTE");
    m.set_declared_at_ms(start - 30 * kMin);
    m.set_eta_ms(start + 24 * 60 * kMin);
    m.set_freight_payment(v1::Manifest::FREIGHT_PAYMENT_PREPAID);
    m.set_tare_weight_kg(3800);
    const bool json = u(rng) < o.json_rate;
    emit({pipeline::TopicRole::kManifests, number,
          operators::Encode(m, json ? operators::Encoding::kJson : operators::Encoding::kProtobuf),
          m.declared_at_ms(), json, ""},
         m.declared_at_ms());

    v1::ScanResult s;
    s.set_container_number(number);
    s.set_scan_id("RPM-" + number);
    s.set_site("THLCH");
    s.set_device_id("RPM-LCH-01");
    s.set_kind(v1::ScanResult::SCAN_KIND_RPM);
    s.set_scanned_at_ms(start - 10 * kMin);
    s.mutable_rpm()->set_gamma_background_cps(85);
    s.mutable_rpm()->set_gamma_cps(sc == Scenario::kGamma ? 85 * 4.5 : 75 + static_cast<double>(rng() % 30));
    s.mutable_rpm()->set_neutron_background_cps(1.5);
    s.mutable_rpm()->set_neutron_cps(sc == Scenario::kNeutron ? 9 : 1 + static_cast<double>(rng() % 10) / 10);
    emit({pipeline::TopicRole::kScans, number, s.SerializeAsString(), s.scanned_at_ms(), false, ""}, s.scanned_at_ms());

    // A night stop starts at 22:00 Thailand time on the container's day.
    const int64_t night = start - (start % (24 * 60 * kMin)) + 15 * 60 * kMin;
    double along = static_cast<double>(rng() % 100) / 100.0;
    for (int i = 0; i < o.gps_per_container; ++i) {
      int64_t t = start + i * 3 * kMin + static_cast<int64_t>(rng() % 20000);
      const bool stopped = (sc == Scenario::kNightStop && i >= 10 && i < 30) ||
                           (sc == Scenario::kDeviation && i >= 17 && i < 25);
      if (sc == Scenario::kNightStop && i >= 10) t = std::max(t, night + (i - 10) * 3 * kMin);
      if (!stopped) along = std::min(along + 0.03, static_cast<double>(line.size() - 1) - 1e-6);
      const size_t seg = static_cast<size_t>(along);
      const double f = along - static_cast<double>(seg);
      double lat = line[seg].lat + f * (line[seg + 1].lat - line[seg].lat);
      double lon = line[seg].lon + f * (line[seg + 1].lon - line[seg].lon);
      if (sc == Scenario::kDeviation && i >= 15 && i < 25) lon += 0.2;
      v1::GpsEvent e;
      e.set_container_number(number);
      e.set_tracker_id("TRK-" + number.substr(4, 6));
      e.set_event_id(e.tracker_id() + "-" + std::to_string(i));
      e.set_fix_time_ms(t);
      e.mutable_position()->set_lat(lat);
      e.mutable_position()->set_lon(lon);
      e.set_speed_kmh(stopped ? 0 : 40 + static_cast<double>(rng() % 45));
      e.set_battery_pct(95 - i / 10);
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

    if (o.bad_records && c % 500 == 0) {
      const int64_t t = start + 5 * kMin;
      emit({pipeline::TopicRole::kGps, number, std::string("\x0a\xff\xfe not protobuf", 16), t, false, "undecodable"}, t);
      v1::GpsEvent bad;
      bad.set_container_number(number.substr(0, 10) + (number.back() == '9' ? "0" : std::string(1, number.back() + 1)));
      bad.set_fix_time_ms(t);
      bad.mutable_position()->set_lat(14);
      bad.mutable_position()->set_lon(100.5);
      emit({pipeline::TopicRole::kGps, bad.container_number(), bad.SerializeAsString(), t, false,
            "invalid_container_number"},
           t);
      v1::GpsEvent future = bad;
      future.set_container_number(number);
      future.set_event_id("future-" + number);
      future.set_fix_time_ms(4102444800000);  // 2100-01-01
      emit({pipeline::TopicRole::kGps, number, future.SerializeAsString(), t, false, "future_timestamp"}, t);
      emit({pipeline::TopicRole::kScans, number, std::string(512 << 10, 'x'), t, false, "oversized"}, t);
      v1::GpsEvent late = future;
      late.set_event_id("late-" + number);
      late.set_fix_time_ms(o.start_ms - 48 * 60 * kMin);  // two days old when delivered
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

}  // namespace boxwatch::sim
