// The simulator's traffic against the default profile, offline (the engine
// without Kafka): deterministic output, and the detection quality the
// default profile must reach on the default simulation.
#include <gtest/gtest.h>

#include <cmath>

#include <cstdio>

#include "operators/decode.h"
#include "pipeline/partitioner.h"
#include "pipeline/task_core.h"
#include "operators/default_profile.h"
#include "operators/engine.h"
#include "sim/evaluation.h"
#include "sim/traffic.h"

namespace boxwatch::sim {
namespace {

operators::Profile DefaultProfile() {
  auto p = operators::ParseProfile(operators::DefaultProfileYaml(), operators::kDefaultProfileSource);
  EXPECT_TRUE(p.ok());
  return std::move(p).value();
}

// Every container's events through the engine, then everything evaluated.
std::vector<v1::Alert> RunOffline(const Traffic& traffic, const operators::Profile& profile) {
  operators::ReferenceData ref;
  operators::RiskEngine engine(&profile, &ref);
  std::map<std::string, v1::ContainerState> states;
  const ProcessingTimeMs now(4102444800000 - 1);
  const operators::DecodeLimits limits{.max_value_bytes = 262144};
  for (const auto& r : traffic.records) {
    if (!r.expect_dead_letter.empty()) continue;
    const operators::RecordView view{r.key, r.value, r.json ? operators::Encoding::kJson : operators::Encoding::kProtobuf};
    auto& s = states[r.key];
    switch (r.role) {
      case pipeline::TopicRole::kManifests:
        if (auto d = operators::DecodeManifest(view, now, limits); auto* m = std::get_if<v1::Manifest>(&d))
          (void)engine.ApplyManifest(s, *m, 0);
        break;
      case pipeline::TopicRole::kScans:
        if (auto d = operators::DecodeScan(view, now, limits); auto* m = std::get_if<v1::ScanResult>(&d))
          (void)engine.ApplyScan(s, *m, 0);
        break;
      case pipeline::TopicRole::kGps:
        if (auto d = operators::DecodeGps(view, now, limits); auto* m = std::get_if<v1::GpsEvent>(&d))
          (void)engine.ApplyGps(s, *m, 0);
        break;
      default: break;
    }
  }
  std::vector<v1::Alert> alerts;
  for (auto& [k, s] : states) engine.Advance(s, std::numeric_limits<int64_t>::max() / 2, 0, &alerts);
  return alerts;
}

TEST(Simulation, SameSeedSameRecordsAndEveryScenarioAppears) {
  const auto profile = DefaultProfile();
  const auto a = GenerateTraffic({.seed = 5, .containers = 400}, profile);
  const auto b = GenerateTraffic({.seed = 5, .containers = 400}, profile);
  ASSERT_EQ(a.records.size(), b.records.size());
  for (size_t i = 0; i < a.records.size(); ++i) ASSERT_EQ(a.records[i].value, b.records[i].value) << i;
  std::set<Scenario> seen;
  for (const auto& [c, s] : a.labels) seen.insert(s);
  for (Scenario s : {Scenario::kDeviation, Scenario::kSealSwap, Scenario::kGamma, Scenario::kWatchlisted,
                     Scenario::kRiskyRoute, Scenario::kWeightMismatch, Scenario::kTrackingGap, Scenario::kLateAmendment,
                     Scenario::kBenignZoneStop, Scenario::kBenignTrafficStop, Scenario::kBenignAmendment,
                     Scenario::kBenignNorm, Scenario::kBenignSimilarName, Scenario::kSourceInNorm}) {
    EXPECT_TRUE(seen.count(s)) << ScenarioName(s);
  }
}

TEST(Simulation, LeadInIsTheManifestsAndReferenceDataBeforeTheFirstTrip) {
  const auto traffic = GenerateTraffic({.seed = 7, .containers = 300, .field = true}, DefaultProfile());
  const size_t end = LeadInEnd(traffic.records);
  ASSERT_LT(end, traffic.records.size());
  size_t manifests = 0;
  for (size_t i = 0; i < end; ++i) {
    const auto role = traffic.records[i].role;
    ASSERT_TRUE(role == pipeline::TopicRole::kManifests || role == pipeline::TopicRole::kReference) << i;
    manifests += role == pipeline::TopicRole::kManifests;
  }
  EXPECT_NE(traffic.records[end].role, pipeline::TopicRole::kManifests);
  EXPECT_NE(traffic.records[end].role, pipeline::TopicRole::kReference);
  // The declarations filed days ahead (all but the few filed late) come before any trip starts.
  EXPECT_GE(manifests, 270u);
  EXPECT_EQ(LeadInEnd({}), 0u);
}

TEST(Simulation, DefaultProfileOnTheDefaultSimulationReachesItsDetectionTargets) {
  const auto profile = DefaultProfile();
  const auto traffic = GenerateTraffic({.seed = 1, .containers = 5000}, profile);
  const auto eval = Evaluate(traffic.labels, RunOffline(traffic, profile));
  std::printf("%s\n", eval.Table().c_str());
  EXPECT_GE(eval.At(v1::PRIORITY_HIGH).recall, 0.9);
  EXPECT_GE(eval.At(v1::PRIORITY_HIGH).precision, 0.8);
  for (const auto& row : eval.rows) {
    if (IsSmuggling(row.scenario)) {
      EXPECT_GE(eval.Recall(row.scenario, v1::PRIORITY_HIGH), 0.8) << ScenarioName(row.scenario);
    }
  }
}

// Five seeds, five fleets and mixes: every run must reach the targets, and
// the table (means with 95 % intervals, pooled recall by scenario) is what
// docs/simulation.md reports.
TEST(Simulation, DefaultProfileOverFiveSeedsReachesItsTargetsInEveryRun) {
  const auto profile = DefaultProfile();
  const std::vector<uint32_t> seeds = {1, 2, 3, 4, 5};
  std::vector<Evaluation> runs;
  for (uint32_t seed : seeds) {
    const auto traffic = GenerateTraffic({.seed = seed, .containers = 5000}, profile);
    runs.push_back(Evaluate(traffic.labels, RunOffline(traffic, profile)));
    const Evaluation& e = runs.back();
    EXPECT_GE(e.At(v1::PRIORITY_HIGH).recall, 0.9) << "seed " << seed;
    EXPECT_GE(e.At(v1::PRIORITY_HIGH).precision, 0.8) << "seed " << seed;
  }
  std::printf("%s\n", SeedTable(seeds, runs).c_str());
  for (const auto& [sc, hn] : PooledHighPlus(runs)) {
    const double share = static_cast<double>(hn.first) / hn.second;
    if (IsSmuggling(sc)) EXPECT_GE(share, 0.8) << ScenarioName(sc);
    else EXPECT_LE(share, 0.05) << ScenarioName(sc) << ": a look-alike class over 5 % at HIGH+";
  }
}

// The field model through the worker's own task code (per-container event
// time, lateness, the merge, four partitions), as a worker would run it.
struct FieldRun {
  Evaluation eval;
  int64_t inputs = 0;
  std::map<std::string, int64_t> dead_letters;  // by reason
};

FieldRun RunThroughTasks(const Traffic& traffic, const operators::Profile& profile) {
  std::map<int32_t, std::vector<pipeline::InputRecord>> by_partition;
  operators::ReferenceData reference;
  FieldRun run;
  for (const auto& r : traffic.records) {
    if (r.role == pipeline::TopicRole::kReference) {
      EXPECT_TRUE(operators::ApplyReferenceEntry(&reference, r.key, r.value).ok()) << r.key;
      continue;
    }
    by_partition[pipeline::JavaPartition(r.key, 4)].push_back(AsInputRecord(r));
    ++run.inputs;
  }
  const pipeline::TaskOptions options;  // lateness 5 min, max future 10 min: the worker's defaults
  auto alerts = pipeline::OfflineAlerts(by_partition, profile, reference, options, 4102444800000 - 1, &run.dead_letters);
  EXPECT_TRUE(alerts.ok()) << alerts.error().message;
  run.eval = Evaluate(traffic.labels, alerts.ok() ? *alerts : std::vector<v1::Alert>{});
  return run;
}

TEST(FieldModel, SameSeedSameRecordsSameScenariosAndEveryBehaviourAppears) {
  const auto profile = DefaultProfile();
  const auto a = GenerateTraffic({.seed = 5, .containers = 1500, .field = true}, profile);
  const auto b = GenerateTraffic({.seed = 5, .containers = 1500, .field = true}, profile);
  const auto lab = GenerateTraffic({.seed = 5, .containers = 1500}, profile);
  ASSERT_EQ(a.records.size(), b.records.size());
  for (size_t i = 0; i < a.records.size(); ++i) ASSERT_EQ(a.records[i].value, b.records[i].value) << i;
  ASSERT_EQ(a.labels.size(), lab.labels.size());
  std::set<Scenario> seen;
  for (size_t i = 0; i < a.labels.size(); ++i) {
    seen.insert(a.labels[i].second);
    // The field's honest behaviours replace "none" only; every scenario stays.
    if (lab.labels[i].second != Scenario::kNone) {
      EXPECT_EQ(a.labels[i].second, lab.labels[i].second) << i;
    }
  }
  for (Scenario s : {Scenario::kRoutineHighRiskOrigin, Scenario::kLegitLateAmendment, Scenario::kManifestFiledLate,
                     Scenario::kRoadworksDetour, Scenario::kRestStopOutsideZone, Scenario::kCustomsReseal,
                     Scenario::kAuthorisedConsignee, Scenario::kNewTrader}) {
    EXPECT_TRUE(seen.count(s)) << ScenarioName(s);
  }
  int register_entries = 0;
  for (const auto& r : a.records) register_entries += r.role == pipeline::TopicRole::kReference;
  EXPECT_GT(register_entries, 100) << "a trader register is published";
}

// Five seeds of the field model through the task code: the figures
// docs/simulation.md reports, and the floor each run must keep.
TEST(FieldModel, DefaultProfileOverFiveSeedsThroughTheTaskCode) {
  const auto profile = DefaultProfile();
  const std::vector<uint32_t> seeds = {1, 2, 3, 4, 5};
  std::vector<Evaluation> runs;
  int64_t inputs = 0, late = 0;
  std::map<std::string, int64_t> dead;
  for (uint32_t seed : seeds) {
    const auto traffic = GenerateTraffic({.seed = seed, .containers = 4000, .field = true}, profile);
    FieldRun run = RunThroughTasks(traffic, profile);
    inputs += run.inputs;
    for (const auto& [reason, n] : run.dead_letters) dead[reason] += n;
    late += run.dead_letters["late"];
    runs.push_back(std::move(run.eval));
  }
  std::printf("%s\n", SeedTable(seeds, runs).c_str());
  std::printf("inputs %lld, dead letters:", static_cast<long long>(inputs));
  for (const auto& [reason, n] : dead) std::printf(" %s %lld", reason.c_str(), static_cast<long long>(n));
  std::printf("\n");
  EXPECT_LT(static_cast<double>(late), 0.001 * static_cast<double>(inputs)) << "late dead letters over 0.1 % of input";
  for (const auto& e : runs) {
    EXPECT_GE(e.At(v1::PRIORITY_HIGH).recall, 0.9);
    EXPECT_GE(e.At(v1::PRIORITY_HIGH).precision, 0.9);
    // CRITICAL promises an examination before the box moves: it must be right.
    EXPECT_GE(e.At(v1::PRIORITY_CRITICAL).precision, 0.9);
  }
  for (const auto& [sc, hn] : PooledHighPlus(runs)) {
    const double share = static_cast<double>(hn.first) / hn.second;
    std::printf("%-36s HIGH+ %5.3f (%d/%d)\n", ScenarioName(sc), share, hn.first, hn.second);
    if (!IsSmuggling(sc)) {
      EXPECT_LE(share, 0.05) << ScenarioName(sc) << ": a look-alike class over 5 % at HIGH+";
    }
  }
}

TEST(Evaluation, SeedFiguresHaveStudentIntervals) {
  const SeedFigure f = OverSeeds({0.90, 0.92, 0.94, 0.96, 0.98});
  EXPECT_NEAR(f.mean, 0.94, 1e-12);
  // sd = sqrt(0.004 / 4) = 0.0316, t(4) = 2.776: half-width 0.0393.
  EXPECT_NEAR(f.high - f.mean, 2.776 * std::sqrt(0.004 / 4) / std::sqrt(5.0), 1e-6);
  EXPECT_DOUBLE_EQ(f.min, 0.90);
  EXPECT_DOUBLE_EQ(f.max, 0.98);
  EXPECT_EQ(OverSeeds({0.5}).low, 0.5);
  EXPECT_LE(OverSeeds({0.99, 1.0, 1.0}).high, 1.0) << "clipped to [0, 1]";
}

TEST(Evaluation, CountsByHighestPriorityAndScoresEachThreshold) {
  Labels labels = {{"A", Scenario::kGamma}, {"B", Scenario::kSealSwap}, {"C", Scenario::kNone},
                   {"D", Scenario::kBenignNorm}};
  auto alert = [](const char* c, v1::Priority p) {
    v1::Alert a;
    a.set_container_number(c);
    a.set_alert_id(std::string(c) + "-" + std::to_string(p));
    a.set_priority(p);
    a.add_indicators()->set_id(p >= v1::PRIORITY_HIGH ? "scan.radiation_gamma" : "route.high_risk_origin");
    return a;
  };
  const auto e = Evaluate(labels, {alert("A", v1::PRIORITY_MEDIUM), alert("A", v1::PRIORITY_HIGH),
                                   alert("D", v1::PRIORITY_HIGH), alert("Z", v1::PRIORITY_LOW)});
  EXPECT_EQ(e.At(v1::PRIORITY_HIGH).true_positives, 1);
  EXPECT_EQ(e.At(v1::PRIORITY_HIGH).false_positives, 1);
  EXPECT_EQ(e.At(v1::PRIORITY_HIGH).false_negatives, 1);
  EXPECT_DOUBLE_EQ(e.At(v1::PRIORITY_HIGH).precision, 0.5);
  EXPECT_DOUBLE_EQ(e.At(v1::PRIORITY_HIGH).recall, 0.5);
  EXPECT_DOUBLE_EQ(e.Recall(Scenario::kGamma, v1::PRIORITY_HIGH), 1.0);
  EXPECT_EQ(e.unlabelled_alerted, 1);
  EXPECT_EQ(e.alerts, 4);
  EXPECT_EQ(e.alerts_with_indicator.at("scan.radiation_gamma"), 2);
  EXPECT_EQ(e.alerts_with_indicator.at("route.high_risk_origin"), 2);
  // The same alert read twice (at-least-once, or a hub and the topic) counts once.
  const auto twice = Evaluate(labels, {alert("A", v1::PRIORITY_HIGH), alert("A", v1::PRIORITY_HIGH)});
  EXPECT_EQ(twice.alerts, 1);
  EXPECT_NE(twice.Json().find("\"alerts_with_indicator\":{\"scan.radiation_gamma\":1}"), std::string::npos) << twice.Json();
}

}  // namespace
}  // namespace boxwatch::sim
