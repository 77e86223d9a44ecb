// `boxwatch demo`: boxwatch end to end on an embedded broker. Starts
// librdkafka's in-process cluster, creates and checks the topic set, and
// produces a small fleet's manifests, scans and GPS fixes (protobuf and
// canonical JSON, plus malformed records) on an accelerated clock. It
// consumes them, decodes them (bad records go to the dead-letter topic with
// their reason), joins them per container in the risk engine with the
// built-in default profile, and prints the alerts as they are raised.
// Some containers carry a scenario (route deviation, long stop, seal
// tampering, radiation, watchlisted consignee, risky route); the closing
// summary says which of them were caught.

#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <map>
#include <random>

#include "app/commands.h"
#include "core/log.h"
#include "operators/decode.h"
#include "operators/default_profile.h"
#include "operators/engine.h"
#include "pipeline/embedded_broker.h"
#include "pipeline/kafka_client.h"
#include "pipeline/topics.h"

namespace boxwatch::app {
namespace {

using namespace std::chrono_literals;
using operators::Encoding;
using pipeline::TopicRole;

volatile std::sig_atomic_t g_interrupted = 0;

struct DemoArgs {
  int duration_s = 30;
  int partitions = 4;
  int rate = 300;  // events per second (wall clock)
  int containers = 60;
  int speedup = 600;  // simulated seconds per wall second
  unsigned seed = 42;
  std::string profile;  // empty: the built-in default profile
};

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A container number with a correct ISO 6346 check digit.
std::string MakeContainerNumber(const char* owner, int serial) {
  char first[32];
  std::snprintf(first, sizeof first, "%.3sU%06d", owner, serial % 1000000);
  return std::string(first) + std::to_string(ContainerNumber::CheckDigit(first));
}

enum class Scenario { kNone, kDeviation, kLongStop, kSealTamper, kGamma, kWatchlisted, kRiskyRoute };

const char* ScenarioName(Scenario s) {
  switch (s) {
    case Scenario::kNone: return "none";
    case Scenario::kDeviation: return "deviation and stop";
    case Scenario::kLongStop: return "night stop";
    case Scenario::kSealTamper: return "seal tampered";
    case Scenario::kGamma: return "gamma source";
    case Scenario::kWatchlisted: return "watchlisted consignee";
    case Scenario::kRiskyRoute: return "risky route, vague goods";
  }
  return "?";
}

struct DemoRecord {
  TopicRole role;
  std::string key;
  std::string value;
  Encoding encoding = Encoding::kProtobuf;
  int64_t timestamp_ms = 0;
};

// Trucks on the profile's first corridor (Laem Chabang to Vientiane in the
// default profile), a few of them misbehaving.
class DemoFleet {
 public:
  DemoFleet(const operators::Profile& profile, int containers, unsigned seed)
      : profile_(profile), rng_(seed) {
    static const char* kOwners[] = {"MSK", "CSQ", "MSC", "CMA", "HLX", "ONE", "EGH", "OOL"};
    for (int i = 0; i < containers; ++i) {
      Scenario s = Scenario::kNone;
      switch (i % 20) {
        case 1: case 11: s = Scenario::kDeviation; break;
        case 3: case 13: s = Scenario::kLongStop; break;
        case 5: s = Scenario::kSealTamper; break;
        case 7: case 17: s = Scenario::kGamma; break;
        case 9: s = Scenario::kWatchlisted; break;
        case 19: s = Scenario::kRiskyRoute; break;
      }
      boxes_.push_back({MakeContainerNumber(kOwners[i % 8], 100000 + i * 37), 0, s,
                        static_cast<double>(rng_() % 400) / 100.0});
    }
  }

  const std::map<std::string, Scenario> Scenarios() const {
    std::map<std::string, Scenario> out;
    for (const auto& b : boxes_) out[b.number] = b.scenario;
    return out;
  }

  DemoRecord Next(int64_t t) {
    ++count_;
    Box& box = boxes_[count_ % boxes_.size()];
    if (count_ % 197 == 0) return {TopicRole::kGps, box.number, "\x08\xff\xff garbage", {}, t};
    if (count_ % 211 == 0) {
      v1::GpsEvent e = Gps(box, t);
      std::string bad = box.number;
      bad.back() = bad.back() == '9' ? '0' : static_cast<char>(bad.back() + 1);
      e.set_container_number(bad);
      return {TopicRole::kGps, bad, e.SerializeAsString(), {}, t};
    }
    const int step = box.steps++;
    if (step == 0) {
      const Encoding enc = count_ % 3 == 0 ? Encoding::kJson : Encoding::kProtobuf;
      return {TopicRole::kManifests, box.number, operators::Encode(Manifest(box, t), enc), enc, t};
    }
    if (step == 3) return {TopicRole::kScans, box.number, Scan(box, t).SerializeAsString(), {}, t};
    return {TopicRole::kGps, box.number, Gps(box, t).SerializeAsString(), {}, t};
  }

 private:
  struct Box {
    std::string number;
    int steps;
    Scenario scenario;
    double start;  // position along the corridor, in segments
  };

  v1::Manifest Manifest(const Box& box, int64_t t) {
    v1::Manifest m;
    m.set_container_number(box.number);
    m.set_version(1);
    m.set_bill_of_lading("BL" + box.number.substr(4));
    m.mutable_shipper()->set_name("Shanghai Ceramics Export Ltd");
    m.mutable_consignee()->set_name("Vientiane Building Supplies");
    if (box.scenario == Scenario::kWatchlisted && !profile_.watchlisted_parties.empty()) {
      m.mutable_consignee()->set_name(*std::min_element(profile_.watchlisted_parties.begin(),
                                                        profile_.watchlisted_parties.end()));
    }
    m.set_port_of_loading("CNSHA");
    m.add_transhipment_ports("SGSIN");
    if (box.scenario == Scenario::kRiskyRoute && !profile_.high_risk_ports.empty()) {
      m.clear_transhipment_ports();
      m.add_transhipment_ports(*std::min_element(profile_.high_risk_ports.begin(), profile_.high_risk_ports.end()));
    }
    m.set_port_of_discharge("THLCH");
    m.set_final_destination("LAVTE");
    m.set_declared_at_ms(t);
    m.set_eta_ms(t + 6 * 3600 * 1000LL);
    m.add_seal_numbers("SL" + box.number.substr(4, 6));
    auto* g = m.add_goods();
    g->set_hs_code("690721");
    g->set_description(box.scenario == Scenario::kRiskyRoute ? "said to contain general cargo"
                                                             : "glazed ceramic floor tiles");
    g->set_packages(20);
    g->set_gross_weight_kg(18000 + static_cast<double>(rng_() % 4000));
    return m;
  }

  v1::ScanResult Scan(const Box& box, int64_t t) {
    v1::ScanResult s;
    s.set_container_number(box.number);
    s.set_scan_id("RPM-LCH-" + std::to_string(count_));
    s.set_scanned_at_ms(t);
    s.set_site("THLCH");
    s.set_device_id("RPM-LCH-01");
    s.set_kind(v1::ScanResult::SCAN_KIND_RPM);
    const double background = 85;
    s.mutable_rpm()->set_gamma_background_cps(background);
    s.mutable_rpm()->set_gamma_cps(box.scenario == Scenario::kGamma ? background * 5
                                                                    : 80 + static_cast<double>(rng_() % 40));
    s.mutable_rpm()->set_neutron_background_cps(1.5);
    s.mutable_rpm()->set_neutron_cps(1 + static_cast<double>(rng_() % 10) / 10);
    return s;
  }

  v1::GpsEvent Gps(const Box& box, int64_t t) {
    const auto& line = profile_.corridors.front().points;
    // With the defaults a box reports every 2 simulated minutes.
    auto stopped_at = [&](int step) {
      return (box.scenario == Scenario::kLongStop && step > 30 && step < 60) ||
             (box.scenario == Scenario::kDeviation && step > 45 && step < 62);
    };
    const bool stopped = stopped_at(box.steps);
    int moving_steps = 0;
    for (int i = 0; i < box.steps; ++i) moving_steps += stopped_at(i) ? 0 : 1;
    double along = std::min(box.start + moving_steps * 0.02, static_cast<double>(line.size() - 1) - 1e-6);
    const size_t seg = static_cast<size_t>(along);
    const double f = along - static_cast<double>(seg);
    double lat = line[seg].lat + f * (line[seg + 1].lat - line[seg].lat);
    double lon = line[seg].lon + f * (line[seg + 1].lon - line[seg].lon);
    if (box.scenario == Scenario::kDeviation && box.steps > 40 && box.steps < 66) lon += 0.15;
    v1::GpsEvent e;
    e.set_container_number(box.number);
    e.set_tracker_id("TRK-" + box.number.substr(4, 6));
    e.set_event_id(e.tracker_id() + "-" + std::to_string(box.steps));
    e.set_fix_time_ms(t);
    e.mutable_position()->set_lat(lat);
    e.mutable_position()->set_lon(lon);
    e.set_speed_kmh(stopped ? 0 : 45 + static_cast<double>(rng_() % 40));
    e.set_battery_pct(90);
    e.set_seal_state(box.scenario == Scenario::kSealTamper && box.steps >= 45 ? v1::GpsEvent::SEAL_STATE_TAMPERED
                                                                             : v1::GpsEvent::SEAL_STATE_CLOSED);
    return e;
  }

  const operators::Profile& profile_;
  std::mt19937 rng_;
  std::vector<Box> boxes_;
  uint64_t count_ = 0;
};

const char* PriorityName(v1::Priority p) {
  switch (p) {
    case v1::PRIORITY_CRITICAL: return "CRITICAL";
    case v1::PRIORITY_HIGH: return "HIGH";
    case v1::PRIORITY_MEDIUM: return "MEDIUM";
    case v1::PRIORITY_LOW: return "LOW";
    default: return "-";
  }
}

const char* Colour(v1::Priority p, bool tty) {
  if (!tty) return "";
  switch (p) {
    case v1::PRIORITY_CRITICAL: return "\033[1;41;97m";
    case v1::PRIORITY_HIGH: return "\033[1;31m";
    case v1::PRIORITY_MEDIUM: return "\033[33m";
    default: return "\033[2m";
  }
}

int RunDemo(const DemoArgs& a) {
  std::signal(SIGINT, [](int) { g_interrupted = 1; });
  std::signal(SIGTERM, [](int) { g_interrupted = 1; });
  const bool tty = isatty(fileno(stdout));
  const char* reset = tty ? "\033[0m" : "";

  auto profile = a.profile.empty()
                     ? operators::ParseProfile(operators::DefaultProfileYaml(), operators::kDefaultProfileSource)
                     : operators::LoadProfile(a.profile);
  if (!profile.ok()) {
    std::fprintf(stderr, "demo: %s\n", profile.error().message.c_str());
    return 1;
  }
  if (profile->corridors.empty()) {
    std::fprintf(stderr, "demo: profile %s has no corridor to drive on\n", profile->name.c_str());
    return 1;
  }
  std::printf("boxwatch demo: profile %s %s; starting the embedded Kafka cluster...\n",
              profile->name.c_str(), profile->version.c_str());
  auto broker = pipeline::EmbeddedBroker::Start(1);
  if (!broker.ok()) {
    std::fprintf(stderr, "demo: %s\n", broker.error().message.c_str());
    return 1;
  }
  const std::string bootstrap = (*broker)->bootstrap();
  const pipeline::TopicNames names;
  const auto specs = pipeline::TopicSetSpecs({.partitions = a.partitions});
  if (Status s = (*broker)->CreateTopics(specs); !s.ok()) {
    std::fprintf(stderr, "demo: %s\n", s.message().c_str());
    return 1;
  }
  auto admin = pipeline::KafkaAdmin::Create(bootstrap);
  if (!admin.ok()) return 1;
  std::vector<std::string> all_names;
  for (const auto& s : specs) all_names.push_back(s.name);
  auto counts = (*admin)->PartitionCounts(all_names, 10s);
  if (!counts.ok() || !pipeline::CheckTopicSet(names, *counts).ok()) {
    std::fprintf(stderr, "demo: topic set check failed\n");
    return 1;
  }
  std::printf("broker %s: %zu topics, %d partitions each (co-partitioned)\n", bootstrap.c_str(),
              specs.size(), a.partitions);

  auto producer = pipeline::KafkaProducer::Create({.bootstrap = bootstrap});
  auto consumer = pipeline::KafkaConsumer::Create(
      {.bootstrap = bootstrap, .group_id = "boxwatch-demo", .group_instance_id = "demo-0"});
  if (!producer.ok() || !consumer.ok()) {
    std::fprintf(stderr, "demo: cannot create Kafka clients\n");
    return 1;
  }
  std::vector<std::string> inputs;
  std::map<std::string, TopicRole> role_of;
  for (TopicRole r : pipeline::kInputTopicRoles) {
    inputs.push_back(names.Name(r));
    role_of[names.Name(r)] = r;
  }
  if (Status s = (*consumer)->Subscribe(inputs); !s.ok()) {
    std::fprintf(stderr, "demo: %s\n", s.message().c_str());
    return 1;
  }

  DemoFleet fleet(*profile, a.containers, a.seed);
  const auto scenarios = fleet.Scenarios();
  operators::ReferenceData reference;
  operators::RiskEngine engine(&*profile, &reference);
  std::map<std::string, v1::ContainerState> states;
  // The demo consumes its partitions as they come rather than merging them by
  // time (the worker does that), so it allows 5 wall seconds of disorder.
  const int64_t lateness_ms = 5000LL * a.speedup;
  int64_t max_event_ms = 0;
  std::map<std::string, v1::Priority> best;  // highest priority alerted per container
  std::map<v1::Priority, uint64_t> alerts_by_priority;

  std::map<std::string, uint64_t> produced, decoded, dead;
  uint64_t produced_total = 0, consumed_total = 0;
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::seconds(a.duration_s);
  auto next_report = start + 5s;
  // The simulated clock starts at 12:00 UTC yesterday (19:00 in Thailand), so
  // stops fall at night; it stays behind the wall clock for hours.
  const int64_t day_ms = 24 * 3600 * 1000LL;
  const int64_t sim_start = (WallMs() / day_ms - 1) * day_ms + 12 * 3600 * 1000LL;
  auto sim_now = [&] {
    const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return sim_start + static_cast<int64_t>(wall_s * a.speedup * 1000);
  };
  const operators::DecodeLimits limits;

  auto print_alert = [&](const v1::Alert& al) {
    ++alerts_by_priority[al.priority()];
    auto& b = best[al.container_number()];
    b = std::max(b, al.priority());
    if (al.priority() < v1::PRIORITY_MEDIUM) return;
    std::printf("%s%-8s%s %s score %5.1f  %s  [%s]\n", Colour(al.priority(), tty), PriorityName(al.priority()), reset,
                al.container_number().c_str(), al.score(),
                al.indicators_size() > 0 ? al.indicators(0).summary().c_str() : "",
                al.regions_size() > 0 ? al.regions(0).c_str() : "no region");
  };

  auto dead_letter = [&](const pipeline::Message& m, const char* reason, const std::string& detail) {
    ++dead[reason];
    Status s = (*producer)->Produce({.topic = names.Name(TopicRole::kDeadLetter),
                                     .key = m.key(),
                                     .value = m.value(),
                                     .headers = {{"boxwatch-reason", reason},
                                                 {"boxwatch-detail", detail},
                                                 {"boxwatch-source-topic", std::string(m.topic())},
                                                 {"boxwatch-source-partition", std::to_string(m.partition())},
                                                 {"boxwatch-source-offset", std::to_string(m.offset())}}});
    if (!s.ok()) BW_LOG(kError, "demo") << s.ToString();
  };

  auto handle = [&](const pipeline::Message& m) {
    ++consumed_total;
    const TopicRole role = role_of[std::string(m.topic())];
    auto enc = operators::EncodingFromHeader(m.header("content-type").value_or(""));
    if (auto* r = std::get_if<operators::Rejection>(&enc)) {
      dead_letter(m, operators::RejectReasonName(r->reason), r->detail);
      return;
    }
    const operators::RecordView view{m.key(), m.value(), std::get<Encoding>(enc)};
    const ProcessingTimeMs now(WallMs());
    const int64_t watermark = max_event_ms - lateness_ms;
    v1::ContainerState scratch;  // rejected records must not create state
    auto existing = states.find(std::string(m.key()));
    v1::ContainerState& state = existing != states.end() ? existing->second : scratch;
    std::optional<operators::Rejection> rejection;
    operators::JoinResult joined = operators::JoinResult::kApplied;
    auto join = [&](auto decoded_event, auto apply) {
      if (auto* r = std::get_if<operators::Rejection>(&decoded_event)) {
        rejection = *r;
      } else {
        joined = apply(std::get<0>(decoded_event));
      }
    };
    switch (role) {
      case TopicRole::kManifests:
        join(operators::DecodeManifest(view, now, limits), [&](const auto& e) { return engine.ApplyManifest(state, e, watermark); });
        break;
      case TopicRole::kScans:
        join(operators::DecodeScan(view, now, limits), [&](const auto& e) { return engine.ApplyScan(state, e, watermark); });
        break;
      case TopicRole::kGps:
        join(operators::DecodeGps(view, now, limits), [&](const auto& e) { return engine.ApplyGps(state, e, watermark); });
        break;
      default:
        join(operators::DecodeOutcome(view, now, limits), [&](const auto& e) { return engine.ApplyOutcome(state, e, watermark); });
        break;
    }
    if (rejection) {
      dead_letter(m, operators::RejectReasonName(rejection->reason), rejection->detail);
      return;
    }
    if (joined == operators::JoinResult::kLate) {
      dead_letter(m, operators::RejectReasonName(operators::RejectReason::kLate), "older than the watermark");
      return;
    }
    ++decoded[std::string(m.topic())];
    if (&state == &scratch) states.emplace(std::string(m.key()), std::move(scratch));
    v1::ContainerState& kept = states.at(std::string(m.key()));
    max_event_ms = std::max(max_event_ms, m.timestamp_ms());
    std::vector<v1::Alert> alerts;
    engine.Advance(kept, max_event_ms - lateness_ms, WallMs(), &alerts);
    for (const auto& al : alerts) print_alert(al);
  };

  const double interval_ms = 1000.0 / a.rate;
  while (!g_interrupted) {
    const auto now = std::chrono::steady_clock::now();
    if (now < end) {
      const auto due = static_cast<uint64_t>(std::chrono::duration<double, std::milli>(now - start).count() / interval_ms);
      while (produced_total < due) {
        DemoRecord r = fleet.Next(sim_now());
        std::vector<pipeline::Header> headers;
        if (r.encoding == Encoding::kJson) headers.push_back({"content-type", "application/json"});
        const std::string topic = names.Name(r.role);
        Status s = (*producer)->Produce({.topic = topic, .key = r.key, .value = r.value,
                                         .timestamp_ms = r.timestamp_ms, .headers = headers});
        if (!s.ok()) {
          std::fprintf(stderr, "demo: %s\n", s.ToString().c_str());
          return 1;
        }
        ++produced[topic];
        ++produced_total;
      }
    } else if (consumed_total >= produced_total || now > end + 15s) {
      break;
    }
    rd_kafka_poll((*producer)->handle(), 0);
    auto m = (*consumer)->Poll(10ms);
    if (!m.ok()) {
      BW_LOG(kWarn, "demo") << m.error().message;
    } else if (m->has_value()) {
      handle(**m);
    }
    if (now >= next_report) {
      next_report += 5s;
      const double secs = std::chrono::duration<double>(now - start).count();
      uint64_t dead_total = 0;
      for (auto& [k, v] : dead) dead_total += v;
      std::printf("-- %4.0fs  consumed %llu (%.0f events/s)  containers %zu  dead letters %llu  simulated clock %s\n",
                  secs, static_cast<unsigned long long>(consumed_total), consumed_total / secs, states.size(),
                  static_cast<unsigned long long>(dead_total), FormatUtc(sim_now()).substr(11, 5).c_str());
    }
  }
  // Input ended: evaluate what the watermark still holds back.
  for (auto& [c, s] : states) {
    std::vector<v1::Alert> alerts;
    engine.Advance(s, operators::kEndOfTime, WallMs(), &alerts);
    for (const auto& al : alerts) print_alert(al);
  }
  if (Status s = (*producer)->Flush(10s); !s.ok()) std::fprintf(stderr, "demo: %s\n", s.ToString().c_str());
  (*consumer)->Close().PermitUnchecked();

  std::printf("\nsummary\n%-28s %10s %10s\n", "topic", "produced", "decoded");
  for (const auto& t : inputs) {
    std::printf("%-28s %10llu %10llu\n", t.c_str(), static_cast<unsigned long long>(produced[t]),
                static_cast<unsigned long long>(decoded[t]));
  }
  uint64_t dead_total = 0;
  std::printf("dead letters by reason:\n");
  for (const auto& [reason, n] : dead) {
    std::printf("  %-26s %llu\n", reason.c_str(), static_cast<unsigned long long>(n));
    dead_total += n;
  }
  std::printf("alerts: critical %llu, high %llu, medium %llu, low %llu\n",
              static_cast<unsigned long long>(alerts_by_priority[v1::PRIORITY_CRITICAL]),
              static_cast<unsigned long long>(alerts_by_priority[v1::PRIORITY_HIGH]),
              static_cast<unsigned long long>(alerts_by_priority[v1::PRIORITY_MEDIUM]),
              static_cast<unsigned long long>(alerts_by_priority[v1::PRIORITY_LOW]));
  std::map<Scenario, std::pair<int, int>> caught;  // scenario -> (HIGH or above, total)
  int false_high = 0;
  for (const auto& [number, scenario] : scenarios) {
    if (!states.count(number)) continue;
    const bool high = best.count(number) && best.at(number) >= v1::PRIORITY_HIGH;
    if (scenario == Scenario::kNone) {
      false_high += high ? 1 : 0;
      continue;
    }
    auto& c = caught[scenario];
    c.second++;
    c.first += high ? 1 : 0;
  }
  std::printf("scenarios raised to HIGH or above:\n");
  for (const auto& [scenario, c] : caught) {
    std::printf("  %-26s %d of %d\n", ScenarioName(scenario), c.first, c.second);
  }
  std::printf("  %-26s %d\n", "clean boxes at HIGH+", false_high);
  uint64_t decoded_total = 0;
  for (auto& [k, v] : decoded) decoded_total += v;
  const bool complete = decoded_total + dead_total == produced_total;
  std::printf("%llu produced, %llu processed, %llu dead-lettered: %s\n",
              static_cast<unsigned long long>(produced_total), static_cast<unsigned long long>(decoded_total),
              static_cast<unsigned long long>(dead_total),
              complete ? "every record accounted for" : "RECORDS MISSING");
  return complete ? 0 : 1;
}

}  // namespace

void RegisterDemoCommand(CLI::App& app) {
  auto args = std::make_shared<DemoArgs>();
  CLI::App* demo = app.add_subcommand(
      "demo", "Run boxwatch end to end on an embedded Kafka cluster (no installation needed)");
  demo->add_option("--duration", args->duration_s, "Seconds to produce events before stopping")
      ->capture_default_str()
      ->check(CLI::Range(1, 86400));
  demo->add_option("--partitions", args->partitions, "Partitions per co-partitioned topic")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  demo->add_option("--rate", args->rate, "Events produced per second")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  demo->add_option("--containers", args->containers, "Containers in transit")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  demo->add_option("--speedup", args->speedup, "Simulated seconds per wall-clock second")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  demo->add_option("--seed", args->seed, "Seed of the event generator")->capture_default_str();
  demo->add_option("--profile", args->profile, "Risk profile YAML (default: the built-in default profile)");
  demo->callback([args] { SetExitCode(RunDemo(*args)); });
}

}  // namespace boxwatch::app
