// Microbenchmarks of the risk engine's in-memory path: join + evaluate per
// event type on realistic states (the default profile's real corridors, a
// full GPS window, a manifest, scans), and decoding a GPS fix. No I/O.
//
//   build/release/bench/operators_bench [--benchmark_filter=gps]

#include <benchmark/benchmark.h>

#include <cstdio>
#include <random>
#include <vector>

#include "core/types.h"
#include "operators/decode.h"
#include "operators/engine.h"
#include "operators/names.h"

namespace boxwatch::operators {
namespace {

constexpr int64_t kT0 = 1794970800000;  // 2026-11-18T03:00Z, 10:00 in Thailand
constexpr int64_t kMin = 60000;
constexpr int kContainers = 1024;

const Profile& DefaultProfile() {
  static const Profile profile = [] {
    auto p = LoadProfile(std::string(BOXWATCH_SOURCE_DIR) + "/profiles/default.yaml");
    if (!p.ok()) {
      std::fprintf(stderr, "%s\n", p.error().message.c_str());
      std::abort();
    }
    return std::move(p).value();
  }();
  return profile;
}

std::string Number(int i) {
  char first[11];
  std::snprintf(first, sizeof first, "MSKU%06d", i);
  return std::string(first) + std::to_string(ContainerNumber::CheckDigit(first));
}

v1::Manifest MakeManifest(const std::string& number) {
  v1::Manifest m;
  m.set_container_number(number);
  m.set_version(1);
  m.mutable_shipper()->set_name("Shanghai Ceramics Export Ltd");
  m.mutable_consignee()->set_name("Vientiane Building Supplies");
  auto* g = m.add_goods();
  g->set_hs_code("690721");
  g->set_description("glazed ceramic floor tiles");
  g->set_packages(20);
  g->set_gross_weight_kg(18000);
  m.add_seal_numbers("SEAL001");
  m.set_vessel_imo("9811000");
  m.set_port_of_loading("CNSHA");
  m.add_transhipment_ports("SGSIN");
  m.set_port_of_discharge("THLCH");
  m.set_final_destination("LAVTE");
  m.set_eta_ms(kT0 + 48 * 60 * kMin);
  m.set_declared_at_ms(kT0 - 72 * 60 * kMin);
  return m;
}

// A truck on the Laem Chabang - Vientiane corridor: the first corridor of the profile.
struct Fleet {
  RiskEngine engine;
  ReferenceData ref;
  std::vector<v1::ContainerState> states;
  std::vector<v1::GpsEvent> gps;  // one pre-built event per container, times advanced in the loop
  std::vector<size_t> along;      // index into the corridor polyline per container
  Fleet() : engine(&DefaultProfile(), &ref) {
    engine.SetReference(&ref);
    const auto& corridor = DefaultProfile().corridors.front().points;
    states.resize(kContainers);
    gps.resize(kContainers);
    along.resize(kContainers);
    std::vector<v1::Alert> sink;
    for (int c = 0; c < kContainers; ++c) {
      const std::string number = Number(100000 + c);
      (void)engine.ApplyManifest(states[c], MakeManifest(number), 0);
      auto& e = gps[c];
      e.set_container_number(number);
      e.set_tracker_id("TRK-" + number);
      e.set_speed_kmh(62);
      e.set_seal_state(v1::GpsEvent::SEAL_STATE_CLOSED);
      along[c] = static_cast<size_t>(c) % (corridor.size() - 1);
      for (int i = 0; i < 64; ++i) Step(c, kT0 + i * 2 * kMin, i);
      engine.Advance(states[c], kEndOfTime, 0, &sink);
    }
  }
  void Step(int c, int64_t t, uint64_t seq) {
    const auto& corridor = DefaultProfile().corridors.front().points;
    const LatLon a = corridor[along[c]], b = corridor[along[c] + 1];
    const double f = static_cast<double>(seq % 64) / 64.0;
    auto& e = gps[c];
    e.set_fix_time_ms(t);
    e.set_event_id(std::to_string(seq));
    e.mutable_position()->set_lat(a.lat + f * (b.lat - a.lat));
    e.mutable_position()->set_lon(a.lon + f * (b.lon - a.lon));
    (void)engine.ApplyGps(states[c], e, 0);
  }
};

void BM_GpsJoinEvaluate(benchmark::State& st) {
  Fleet fleet;
  std::vector<v1::Alert> alerts;
  uint64_t seq = 1000;
  int64_t t = kT0 + 200 * kMin;
  for (auto _ : st) {
    const int c = static_cast<int>(seq % kContainers);
    if (c == 0) t += 2 * kMin;
    fleet.Step(c, t, seq);
    fleet.engine.Release(fleet.states[c], t + 1, t, &alerts);
    ++seq;
    if (alerts.size() > 1024) alerts.clear();
  }
  st.SetItemsProcessed(st.iterations());
  st.counters["fired"] = static_cast<double>(fleet.states[0].fired_size());
}
BENCHMARK(BM_GpsJoinEvaluate);

void BM_ManifestJoinEvaluate(benchmark::State& st) {
  const Profile& p = DefaultProfile();
  ReferenceData ref;
  RiskEngine engine(&p, &ref);
  std::vector<v1::Manifest> manifests;
  for (int c = 0; c < kContainers; ++c) manifests.push_back(MakeManifest(Number(200000 + c)));
  std::vector<v1::Alert> alerts;
  uint64_t i = 0;
  for (auto _ : st) {
    v1::ContainerState s;
    const auto& m = manifests[i++ % manifests.size()];
    (void)engine.ApplyManifest(s, m, 0);
    engine.Advance(s, kEndOfTime, 0, &alerts);
    benchmark::DoNotOptimize(s);
    alerts.clear();
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_ManifestJoinEvaluate);

void BM_ScanJoinEvaluate(benchmark::State& st) {
  Fleet fleet;
  std::vector<v1::Alert> alerts;
  v1::ScanResult scan;
  scan.set_site("THLCH");
  scan.set_device_id("RPM-1");
  scan.mutable_rpm()->set_gamma_cps(110);
  scan.mutable_rpm()->set_gamma_background_cps(100);
  scan.mutable_rpm()->set_neutron_cps(1);
  scan.mutable_rpm()->set_neutron_background_cps(1);
  uint64_t seq = 0;
  int64_t t = kT0 + 300 * kMin;
  for (auto _ : st) {
    const int c = static_cast<int>(seq % kContainers);
    if (c == 0) t += kMin;
    scan.set_container_number(fleet.gps[c].container_number());
    scan.set_scan_id(std::to_string(seq));
    scan.set_scanned_at_ms(t);
    (void)fleet.engine.ApplyScan(fleet.states[c], scan, 0);
    fleet.engine.Release(fleet.states[c], t + 1, t, &alerts);
    ++seq;
    alerts.clear();
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_ScanJoinEvaluate);

// Decoding and validating one GPS fix as the worker does per record
// (protobuf parse, container number, ranges, enum values, text sizes).
void BM_DecodeGps(benchmark::State& st) {
  v1::GpsEvent e;
  const std::string number = Number(7);
  e.set_container_number(number);
  e.set_tracker_id("TRK-000007");
  e.set_event_id("TRK-000007-000123");
  e.set_fix_time_ms(kT0);
  e.mutable_position()->set_lat(14.2);
  e.mutable_position()->set_lon(101.1);
  e.set_speed_kmh(61.5);
  e.set_battery_pct(80);
  e.set_seal_state(v1::GpsEvent::SEAL_STATE_CLOSED);
  e.set_seal_number("SEAL-99812");
  const std::string bytes = e.SerializeAsString();
  const RecordView view{number, bytes, Encoding::kProtobuf};
  const DecodeLimits limits;
  for (auto _ : st) {
    auto d = DecodeGps(view, ProcessingTimeMs(kT0 + kMin), limits);
    benchmark::DoNotOptimize(d);
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_DecodeGps);

// Screening one party name against a watchlist of `range(0)` entries at the
// default profile's fuzzy bar: synthetic names of two to four words.
void BM_MatchName(benchmark::State& st) {
  static const char* kWords[] = {"Valmorak", "General", "Trading", "Khorvana", "Quorvex", "Shipping", "Golden",
                                 "Crescent", "Mekong",   "Agro",    "Export",   "Ostrivan", "Impex",   "Narevsk",
                                 "Zandrek",  "Chemicals", "Textiles", "Pravelo", "Logistics", "Holdings"};
  std::mt19937 rng(7);
  auto name = [&] {
    std::string n;
    const int words = 2 + static_cast<int>(rng() % 3);
    for (int i = 0; i < words; ++i) {
      std::string w = kWords[rng() % std::size(kWords)];
      w[1 + rng() % (w.size() - 1)] = static_cast<char>('a' + rng() % 26);  // a new party, not a respelling
      n += (n.empty() ? "" : " ") + w;
    }
    return n + " LLC";
  };
  decltype(Profile::watchlisted_parties) list;  // the engine's list type
  while (static_cast<int64_t>(list.size()) < st.range(0)) list.insert(NormaliseName(name()));
  std::vector<std::string> queries(256);
  for (auto& q : queries) q = name();
  size_t i = 0, matches = 0;
  for (auto _ : st) {
    auto match = MatchName(queries[i++ % queries.size()], {&list}, 0.88);
    matches += match.has_value();
    benchmark::DoNotOptimize(match);
  }
  st.counters["matched"] = static_cast<double>(matches) / static_cast<double>(st.iterations());
}
BENCHMARK(BM_MatchName)->Arg(20)->Arg(1000)->Arg(10000);

}  // namespace
}  // namespace boxwatch::operators

BENCHMARK_MAIN();
