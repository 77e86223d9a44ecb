// The control room's queue at 100,000 stored alerts: listing a page (first
// and deep), filtering, searching by party name, and opening one alert, as
// the hub answers them (in process, no sockets). bench/README.md reports the
// figures.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <filesystem>

#include "delivery/accounts.h"
#include "delivery/control_room.h"
#include "delivery/hub_store.h"

namespace boxwatch::delivery {
namespace {

constexpr int kAlerts = 100000;
const char* const kRegions[] = {"mekong", "central-asia", "caucasus", "europe", "gulf"};

struct Fixture {
  std::string dir;
  std::unique_ptr<HubStore> store;
  std::unique_ptr<ControlRoom> room;
  std::string token;

  Fixture() {
    char tmpl[] = "/tmp/boxwatch-room-bench-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) std::abort();
    dir = tmpl;
    Accounts accounts;
    auto added = accounts.AddToken("bench", Role::kSupervisor, {"mekong", "gulf"});
    if (!added.ok()) std::abort();
    token = *added;
    (void)accounts.Save(dir + "/accounts");
    auto opened = HubStore::Open(dir + "/store");
    if (!opened.ok()) std::abort();
    store = std::move(*opened);
    std::vector<v1::Alert> batch;
    for (int i = 0; i < kAlerts; ++i) {
      v1::Alert a;
      char box[16];
      std::snprintf(box, sizeof box, "MSCU%07d", i);
      a.set_container_number(box);
      a.set_alert_id(std::string(box) + "-1");
      a.set_priority(static_cast<v1::Priority>(1 + i % 4));
      a.set_event_time_ms(1764000000000 + i * 1000LL);
      a.add_regions(kRegions[i % 5]);
      a.set_port_of_discharge(i % 2 ? "THLCH" : "KZAAU");
      auto* f = a.add_indicators();
      f->set_id(i % 3 ? "gps.unscheduled_stop" : "scan.radiation_neutron");
      f->set_family(i % 3 ? "gps" : "scan");
      f->set_summary("an indicator's one-line summary for the queue");
      a.mutable_context()->mutable_manifest()->mutable_consignee()->set_name("Consignee Trading " + std::to_string(i % 997));
      batch.push_back(std::move(a));
      if (batch.size() == 1000) {
        (void)store->Store(batch, "t");
        batch.clear();
      }
    }
    auto room_opened = ControlRoom::Open({"hub", {"mekong", "gulf"}, dir + "/accounts", true}, store.get(),
                                         {[] { return std::string(); }, nullptr});
    if (!room_opened.ok()) std::abort();
    room = std::move(*room_opened);
  }
  ~Fixture() {
    room.reset();
    store.reset();
    std::filesystem::remove_all(dir);
  }
  size_t Get(const std::string& path, const std::map<std::string, std::string>& query) {
    http::Request r;
    r.method = "GET";
    r.path = path;
    r.query = query;
    r.headers["authorization"] = "Bearer " + token;
    auto resp = room->Handle(r);
    if (resp.status != 200) std::abort();
    return resp.body.size();
  }
};

Fixture& F() {
  static Fixture f;
  return f;
}

void BM_FirstPage(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(F().Get("/api/alerts", {{"limit", "50"}}));
}
BENCHMARK(BM_FirstPage)->Unit(benchmark::kMillisecond);

void BM_DeepPage(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(F().Get("/api/alerts", {{"limit", "50"}, {"offset", "39000"}}));
}
BENCHMARK(BM_DeepPage)->Unit(benchmark::kMillisecond);

void BM_FilteredPage(benchmark::State& state) {
  for (auto _ : state)
    benchmark::DoNotOptimize(F().Get("/api/alerts", {{"priority", "CRITICAL,HIGH"}, {"family", "scan"},
                                                     {"port", "THLCH"}, {"status", "new"}}));
}
BENCHMARK(BM_FilteredPage)->Unit(benchmark::kMillisecond);

void BM_PartySearch(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(F().Get("/api/alerts", {{"q", "trading 42"}}));
}
BENCHMARK(BM_PartySearch)->Unit(benchmark::kMillisecond);

void BM_OpenAlert(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(F().Get("/api/alerts/MSCU0000005-1", {}));
}
BENCHMARK(BM_OpenAlert)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace boxwatch::delivery

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  (void)boxwatch::delivery::F();  // 100,000 alerts stored before any timing
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
