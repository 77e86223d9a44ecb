#pragma once
// Deterministic container traffic for tests, benchmarks and `boxwatch
// simulate`: for each container a voyage from a real origin port through a
// transhipment hub to the start of one of the profile's road corridors,
// manifests (with amendments), radiation-portal scans at the discharge port,
// GPS/e-seal fixes along the corridor with noise, dropouts, duplicates and
// out-of-order delivery, and inspection outcomes; labelled smuggling
// scenarios and benign look-alikes; optionally malformed records. The same
// options and seed always give the same records. Geography comes from the
// profile (ports, corridors, stop zones), which notes its sources.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "operators/profile.h"
#include "pipeline/kafka_client.h"
#include "pipeline/task_core.h"
#include "pipeline/topics.h"

namespace boxwatch::sim {

struct TrafficOptions {
  uint32_t seed = 1;
  int containers = 1000;
  int64_t start_ms = 1794970800000;  // 2026-11-18T03:00Z, UTC ms
  int64_t spread_ms = 6LL * 3600 * 1000;  // trips start within this window after start_ms (ms)
  int gps_per_container = 40;        // fixes per trip, every 1-5 minutes of event time
  bool scans = true;                 // a radiation portal scan at the discharge port (the draws are made either way)
  int64_t max_disorder_ms = 60000;   // GPS delivered up to this late (ms), within the lateness
  double duplicate_rate = 0.02;      // share of GPS fixes delivered twice
  double dropout_rate = 0.03;        // share of GPS fixes never delivered
  double json_rate = 0.1;            // share of manifests sent as canonical JSON
  double scenario_rate = 0.15;       // share of containers carrying a smuggling scenario
  double lookalike_rate = 0.10;      // share of containers with a benign look-alike
  // Share of scenario containers inspected (an outcome is sent; a seizure
  // feeds the seized-parties list back); `boxwatch simulate` uses 0.3. The
  // alerts stay a function of the input: seizures are read as of event time.
  double outcome_rate = 0.0;
  // Share of smuggling containers whose shipper and consignee are front
  // companies already used by an earlier smuggling container (networks
  // reuse their fronts until one is caught, and after), so that seizure
  // feedback meets them again. 0 draws nothing (earlier seeds unchanged).
  double reused_front_rate = 0.0;
  bool bad_records = false;          // add one record of every dead-letter reason per 500 containers
  // The field model (docs/simulation.md "Field model"): devices, officers
  // and trade as they behave outside a lab (clock skew, store-and-forward,
  // power saving, replays, jitter, vendor geofences; outcomes reported days
  // later, customs re-seals, rip-on/rip-off victims, authorised consignees;
  // routine trade from high-risk origins, legitimate late amendments, late
  // filing, heading-level HS codes, detours, rest stops, multi-box bills, new
  // traders, a trader register on the reference topic). Off by default:
  // earlier seeds and the tests built on them stay as they were. Its draws
  // come from a generator of their own, so a seed's scenarios, routes and
  // contents are the same with it on.
  bool field = false;
};

// Labelled behaviour of one container. The smuggling scenarios should raise
// HIGH or CRITICAL alerts with the default profile; the look-alikes resemble
// them but are legitimate and should not.
enum class Scenario {
  kNone,
  kDeviation,       // leaves the corridor at night and stops off-route
  kNightStop,       // long night stop on the corridor (kept for older tests; not generated)
  kSealSwap,        // rip-on/rip-off: seal opened, a different seal read afterwards
  kGamma,           // gamma source: RPM gamma 4-6x background
  kNeutron,         // neutron source (rare): RPM neutron 5x background
  kWatchlisted,     // a watchlisted consignee
  kRiskyRoute,      // high-risk origin and transhipment, "said to contain" goods
  kWeightMismatch,  // tobacco leaf declared with an implausible weight per package
  kTrackingGap,     // tracker dark for 90 min, reappears off the corridor
  kLateAmendment,   // consignee switched 12 h before arrival, freight paid cash
  kBenignZoneStop,  // look-alike: long night stop inside an authorised stop zone
  kBenignTrafficStop,  // look-alike: several short stops in traffic
  kBenignAmendment,    // look-alike: an amendment well before the cutoff
  kBenignNorm,         // look-alike: ceramics/fertiliser with natural radioactivity (2-2.6x)
  kBenignSimilarName,  // look-alike: an honest consignee whose name shares words with a watchlisted one
  kSourceInNorm,       // a gamma source hidden in naturally radioactive cargo (ceramics, potash)
  // Honest behaviours of the field model (TrafficOptions::field), one per
  // ordinary box that has one; none should reach HIGH.
  kRoutineHighRiskOrigin,  // loaded at a high-risk port, honest goods and parties
  kLegitLateAmendment,     // a correction of goods or seal filed within the cutoff
  kManifestFiledLate,      // the declaration filed after the box arrived
  kRoadworksDetour,        // leaves the corridor 3-15 km for 15-40 min, keeps moving
  kRestStopOutsideZone,    // a 35-50 min driver's break on the road, outside zones
  kCustomsReseal,          // inspected en route, opened and re-sealed by customs
  kAuthorisedConsignee,    // delivered to an authorised consignee's premises and opened there
  kNewTrader,              // a consignee the trader register does not know yet (one in ten pays cash)
  kPharmaConsignment,      // three full boxes of medicaments for one distributor on one bill
  kSplitConsignment,       // smuggling: cigarettes split over 3-4 under-filled boxes for one front consignee
};
const char* ScenarioName(Scenario s);
// True for the smuggling scenarios (those that should alert at HIGH+).
bool IsSmuggling(Scenario s);
// The scenario named `name` (as ScenarioName gives it), or kNone.
Scenario ScenarioFromName(std::string_view name);

struct TrafficRecord {
  pipeline::TopicRole role;
  std::string key;
  std::string value;
  int64_t timestamp_ms = 0;  // the event time, as CreateTime
  bool json = false;
  std::string expect_dead_letter;  // reason a correct pipeline gives, "" when processed
};

struct Traffic {
  std::vector<TrafficRecord> records;  // in delivery order
  std::vector<std::pair<std::string, Scenario>> labels;  // container -> scenario
};

Traffic GenerateTraffic(const TrafficOptions& options, const operators::Profile& profile);
// Where the lead-in of `records` (in delivery order) ends: the index of the
// first scan, GPS fix or outcome. A window of trips opens with every trip's
// pre-arrival manifest (filed days ahead) and the reference data, all at once.
size_t LeadInEnd(const std::vector<TrafficRecord>& records);
// A record as a worker task's merge takes it (pipeline::InputMerge), for
// offline runs; it points into `record`. Only for records of input topics.
pipeline::InputRecord AsInputRecord(const TrafficRecord& record);
// Generates the traffic moved by whole days (so local times, and with them
// the night-time scenarios, stay as generated) to end within the day before
// `now_ms` minus a minute: every event time is in the past, as it is for
// real reports. options->start_ms is moved with it.
Traffic GenerateTrafficEndingBefore(TrafficOptions* options, const operators::Profile& profile, int64_t now_ms);

}  // namespace boxwatch::sim
