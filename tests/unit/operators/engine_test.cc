// Scoring, the alert policy, idempotent joins and order independence.
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "operators/fix_window.h"
#include "operators/pending_items.h"
#include "tests/unit/operators/scenario.h"

namespace boxwatch::operators::testing {
namespace {

constexpr int64_t kDay = kT0 + 3 * kHour;

// Items arrive mostly in order, sometimes not, sometimes twice: they are
// kept in (time, kind) order, once each, and leave from the front.
TEST(PendingItems, KeptInTimeThenKindOrderOnceEachAndTakenFromTheFront) {
  std::string bytes;
  MutablePendingItems items(&bytes);
  EXPECT_TRUE(items.Insert({1000, 2}));
  EXPECT_TRUE(items.Insert({3000, 2}));
  EXPECT_TRUE(items.Insert({2000, 2}));  // late: in the middle
  EXPECT_TRUE(items.Insert({2000, 0}));  // same time, earlier kind: before it
  EXPECT_TRUE(items.Insert({500, 3}));   // before everything
  EXPECT_FALSE(items.Insert({2000, 2})) << "twice";
  EXPECT_FALSE(items.Insert({500, 3})) << "twice, at the front";
  const std::vector<PendingItem> want = {{500, 3}, {1000, 2}, {2000, 0}, {2000, 2}, {3000, 2}};
  std::vector<PendingItem> got;
  for (int i = 0; i < items.View().size(); ++i) got.push_back(items.View().Get(i));
  EXPECT_EQ(got, want);
  EXPECT_EQ(bytes.size(), want.size() * PendingItems::kRecordBytes);
  items.EraseFront(2);
  ASSERT_EQ(items.View().size(), 3);
  EXPECT_EQ(items.View().Get(0), (PendingItem{2000, 0}));
  EXPECT_EQ(items.View().Get(2), (PendingItem{3000, 2}));
  items.EraseFront(3);
  EXPECT_TRUE(items.View().empty());
  // A negative time (before 1970) orders as a number, not as its bytes.
  EXPECT_TRUE(items.Insert({5, 2}));
  EXPECT_TRUE(items.Insert({-5, 2}));
  EXPECT_EQ(items.View().Get(0), (PendingItem{-5, 2}));
}

TEST(AlertPolicy, FirstAlertWhenTheContainerReachesAPriority) {
  Scenario s;
  s.Manifest([](auto& m) { m.mutable_consignee()->set_name("Golden Crescent Trading Co."); }).Finish();
  ASSERT_EQ(s.alerts.size(), 1u);
  const v1::Alert& a = s.alerts[0];
  EXPECT_EQ(a.alert_id(), "CSQU3054383-0001");
  EXPECT_EQ(a.sequence(), 1u);
  EXPECT_EQ(a.priority(), v1::PRIORITY_HIGH);
  EXPECT_EQ(a.lane(), v1::LANE_RED);
  EXPECT_DOUBLE_EQ(a.score(), 50);
  EXPECT_EQ(a.reason(), v1::Alert::ALERT_REASON_FIRST_PRIORITY);
  EXPECT_EQ(a.profile_name(), "unit-test");
  EXPECT_EQ(a.profile_version(), "t1");
  ASSERT_EQ(a.indicators_size(), 1);
  EXPECT_EQ(a.indicators(0).id(), "party.watchlisted");
  ASSERT_EQ(a.regions_size(), 1);
  EXPECT_EQ(a.regions(0), "mekong");
  EXPECT_EQ(a.port_of_discharge(), "THLCH");
}

TEST(AlertPolicy, CleanContainerRaisesNothing) {
  Scenario s;
  s.Manifest();
  for (int i = 0; i < 10; ++i) s.Gps(kDay + i * 5 * kMin, 13.05 + 0.004 * i, 100.0);
  s.Rpm(kDay, 110, 100).Finish();
  EXPECT_TRUE(s.alerts.empty());
  EXPECT_EQ(s.state.fired_size(), 0);
}

TEST(AlertPolicy, NeverTwiceForTheSameState) {
  Scenario s;
  s.Manifest([](auto& m) { m.mutable_consignee()->set_name("Golden Crescent Trading Co."); });
  s.Finish();
  // The same manifest again, and clean movement: nothing new to say.
  v1::Manifest again = CleanManifest();
  again.mutable_consignee()->set_name("Golden Crescent Trading Co.");
  EXPECT_EQ(s.engine.ApplyManifest(s.state, again, 0), JoinResult::kDuplicate);
  for (int i = 0; i < 5; ++i) s.Gps(kDay + i * 5 * kMin, 13.05 + 0.004 * i, 100.0);
  s.Finish();
  EXPECT_EQ(s.alerts.size(), 1u);
}

TEST(AlertPolicy, RaisedPriorityGivesANewAlert) {
  Scenario s;
  s.Manifest([](auto& m) {
    m.mutable_goods(0)->set_description("FAK");
    m.mutable_goods(0)->set_hs_code("851762");  // not NORM-bearing: the gamma reading counts in full
    m.set_freight_payment(v1::Manifest::FREIGHT_PAYMENT_CASH);
  });
  s.Rpm(kDay, 400, 100).Finish();
  ASSERT_EQ(s.alerts.size(), 2u);
  EXPECT_EQ(s.alerts[0].priority(), v1::PRIORITY_MEDIUM);  // 15 + 10
  EXPECT_EQ(s.alerts[1].priority(), v1::PRIORITY_HIGH);    // + 50
  EXPECT_EQ(s.alerts[1].reason(), v1::Alert::ALERT_REASON_PRIORITY_RAISED);
  EXPECT_EQ(s.alerts[1].alert_id(), "CSQU3054383-0002");
  EXPECT_EQ(s.alerts[1].indicators(0).id(), "scan.radiation_gamma");  // largest first
}

TEST(AlertPolicy, NewCriticalIndicatorAlertsAgainAtTheSamePriority) {
  Scenario s;
  s.Manifest().Rpm(kDay, 100, 100, 8, 1);
  s.Gps(kDay + kHour, 13.2, 100.0, 30, [](auto& e) { e.set_seal_state(v1::GpsEvent::SEAL_STATE_TAMPERED); });
  s.Finish();
  ASSERT_EQ(s.alerts.size(), 2u);
  EXPECT_EQ(s.alerts[0].priority(), v1::PRIORITY_CRITICAL);
  EXPECT_EQ(s.alerts[0].reason(), v1::Alert::ALERT_REASON_FIRST_PRIORITY);
  EXPECT_EQ(s.alerts[1].priority(), v1::PRIORITY_CRITICAL);
  EXPECT_EQ(s.alerts[1].reason(), v1::Alert::ALERT_REASON_NEW_CRITICAL_INDICATOR);
}

TEST(Scoring, FamilyCapLimitsTheScoreAndTheExplanationAddsUp) {
  Scenario s;
  s.Manifest([](auto& m) {
     m.mutable_consignee()->set_name("Golden Crescent Trading Co.");  // 50
     m.mutable_goods(0)->set_description("STC");                      // 15
     m.set_freight_payment(v1::Manifest::FREIGHT_PAYMENT_CASH);       // 10
   }).Finish();
  EXPECT_DOUBLE_EQ(s.engine.Score(s.state), 60);  // manifest family capped at 60
  ASSERT_EQ(s.alerts.size(), 1u);
  double sum = 0;
  double previous = 1e9;
  for (const auto& f : s.alerts[0].indicators()) {
    sum += f.contribution();
    EXPECT_LE(f.contribution(), previous);  // largest first
    previous = f.contribution();
  }
  EXPECT_NEAR(sum, 60, 1e-9);
}

TEST(Join, DuplicateEventsChangeNothing) {
  Scenario s;
  s.Manifest();
  v1::GpsEvent e;
  e.set_container_number(kBox);
  e.set_event_id("TRK-1-77");
  e.set_fix_time_ms(kDay);
  e.mutable_position()->set_lat(13.2);
  e.mutable_position()->set_lon(100.0);
  ASSERT_EQ(s.engine.ApplyGps(s.state, e, 0), JoinResult::kApplied);
  const std::string before = s.state.SerializeAsString();
  EXPECT_EQ(s.engine.ApplyGps(s.state, e, 0), JoinResult::kDuplicate);
  EXPECT_EQ(s.state.SerializeAsString(), before);
}

TEST(Join, EventOlderThanTheWatermarkIsLate) {
  Scenario s;
  v1::ScanResult scan;
  scan.set_container_number(kBox);
  scan.set_scan_id("x");
  scan.set_scanned_at_ms(kDay);
  EXPECT_EQ(s.engine.ApplyScan(s.state, scan, kDay + 1), JoinResult::kLate);
  EXPECT_EQ(s.state.scans_size(), 0);
  EXPECT_EQ(s.engine.ApplyScan(s.state, scan, kDay), JoinResult::kApplied);
}

// The i-th fix (minute i of day 1) of a box standing at one place.
v1::GpsEvent StandingFix(int i) {
  v1::GpsEvent e;
  e.set_container_number(kBox);
  e.set_event_id("E" + std::to_string(i));
  e.set_fix_time_ms(kDay + i * kMin);
  e.mutable_position()->set_lat(13.2);
  e.mutable_position()->set_lon(100.0);
  return e;
}

TEST(Join, GpsWindowDropsOnlyEvaluatedFixesAndStaysOrdered) {
  Scenario s;
  auto fix = [&](int i) { return s.engine.ApplyGps(s.state, StandingFix(i), 0); };
  // 100 fixes, newest first, none evaluated: all kept, in order.
  for (int i = 199; i >= 100; --i) EXPECT_EQ(fix(i), JoinResult::kApplied);
  EXPECT_EQ(FixWindow(s.state.gps()).size(), 100);
  // Released up to fix 180: evaluated fixes beyond the 64-fix window go,
  // the 19 unevaluated ones stay whatever the count.
  s.engine.Release(s.state, kDay + 180 * kMin + 1, 0, &s.alerts);
  const FixWindow pts(s.state.gps());
  ASSERT_EQ(pts.size(), 64);
  for (int i = 1; i < pts.size(); ++i) EXPECT_LT(pts[i - 1].fix_time_ms(), pts[i].fix_time_ms());
  EXPECT_EQ(pts[0].fix_time_ms(), kDay + 136 * kMin);
  EXPECT_EQ(pts[63].fix_time_ms(), kDay + 199 * kMin);
  EXPECT_EQ(PendingItems(s.state.pending_items()).size(), 19);
  // Older than every fix of a full window of evaluated ones: late.
  EXPECT_EQ(fix(120), JoinResult::kLate);
  // Newer than the bound: joined.
  EXPECT_EQ(fix(250), JoinResult::kApplied);
}

TEST(Join, AFixBeforeTheFinalFixesIsLateWhateverTheWatermarkSays) {
  Scenario s;
  auto fix = [&](int i, int64_t watermark) { return s.engine.ApplyGps(s.state, StandingFix(i), watermark); };
  for (int i = 10; i < 20; ++i) EXPECT_EQ(fix(i, 0), JoinResult::kApplied);
  // Fixes before minute 15 are final (the lateness was larger when they
  // were stored, or storage keeps them in chunks): a fix between them is
  // late though the watermark passed in would admit it.
  s.state.mutable_gps()->set_final_before_ms(kDay + 15 * kMin);
  EXPECT_EQ(fix(5, 0), JoinResult::kLate);
  v1::GpsEvent inside = StandingFix(14);
  inside.set_event_id("inside");
  inside.set_fix_time_ms(kDay + 14 * kMin + 30000);
  EXPECT_EQ(s.engine.ApplyGps(s.state, inside, 0), JoinResult::kLate);
  EXPECT_EQ(FixWindow(s.state.gps()).size(), 10);
  // At or after it: joined, in order.
  v1::GpsEvent between = StandingFix(15);
  between.set_event_id("between");
  between.set_fix_time_ms(kDay + 15 * kMin + 30000);
  EXPECT_EQ(s.engine.ApplyGps(s.state, between, 0), JoinResult::kApplied);
  EXPECT_EQ(FixWindow(s.state.gps()).Get(6).fix_time_ms(), kDay + 15 * kMin + 30000);
}

TEST(Join, AnAnalystVerdictAnHourAfterItsScanIsJoinedAndEvaluated) {
  Scenario s;
  s.Manifest();
  s.Nii(kDay, 0.2, [](v1::ScanResult& x) { x.mutable_nii()->set_verdict(v1::NiiResult::VERDICT_UNSPECIFIED); });
  s.engine.Release(s.state, kDay + 2 * kHour, 0, &s.alerts);
  EXPECT_FALSE(s.Fired("scan.xray_anomaly"));
  // The analyst's verdict on that image, an hour later: far behind any
  // lateness, yet joined, replacing the verdict-less result.
  v1::ScanResult verdict = s.state.scans(0);
  verdict.mutable_nii()->set_verdict(v1::NiiResult::VERDICT_SUSPICIOUS);
  EXPECT_EQ(s.engine.ApplyScan(s.state, verdict, kDay + 2 * kHour), JoinResult::kApplied);
  EXPECT_EQ(s.engine.ApplyScan(s.state, verdict, kDay + 2 * kHour), JoinResult::kDuplicate);
  s.engine.Release(s.state, kDay + 2 * kHour, 0, &s.alerts);
  EXPECT_TRUE(s.Fired("scan.xray_anomaly"));
  EXPECT_EQ(s.state.scans_size(), 1);
  // Without a verdict, the same lag is late.
  v1::ScanResult other = verdict;
  other.set_scan_id("NII-2");
  other.mutable_nii()->set_verdict(v1::NiiResult::VERDICT_UNSPECIFIED);
  EXPECT_EQ(s.engine.ApplyScan(s.state, other, kDay + 2 * kHour), JoinResult::kLate);
}

TEST(Join, ACorrectedResendOfAVersionWithUnusableFieldsReplacesIt) {
  Scenario s;
  s.Manifest([](auto& m) {
    m.clear_port_of_discharge();
    m.add_unusable_fields("port_of_discharge");
  });
  s.engine.Release(s.state, kDay, 0, &s.alerts);
  EXPECT_TRUE(s.Fired("manifest.incomplete"));
  // The filer resends version 1 with the port repaired: it replaces the
  // incomplete one; the same again is a duplicate.
  v1::Manifest fixed = CleanManifest();
  EXPECT_EQ(s.engine.ApplyManifest(s.state, fixed, kDay), JoinResult::kApplied);
  EXPECT_EQ(s.engine.ApplyManifest(s.state, fixed, kDay), JoinResult::kDuplicate);
  s.engine.Release(s.state, kDay, 0, &s.alerts);
  EXPECT_FALSE(s.Fired("manifest.incomplete"));
  ASSERT_EQ(s.state.manifest_versions_size(), 1);
  EXPECT_EQ(s.state.manifest_versions(0).port_of_discharge(), "THLCH");
}

TEST(Release, AStragglerOlderVersionLeavesTheNewerVersionsIndicators) {
  Scenario s;
  // Version 2 (cash freight) is evaluated first; version 1, filed earlier,
  // arrives after it as a straggler and is evaluated at its own time.
  s.Manifest([](auto& m) { m.set_freight_payment(v1::Manifest::FREIGHT_PAYMENT_CASH); }, kT0, 2);
  s.engine.Release(s.state, kT0 + 1, 0, &s.alerts);
  ASSERT_TRUE(s.Fired("payment.cash"));
  s.Manifest({}, kT0 - kHour, 1);
  s.engine.Release(s.state, kT0 + 1, 0, &s.alerts);
  EXPECT_EQ(PendingItems(s.state.pending_items()).size(), 0);
  EXPECT_TRUE(s.Fired("payment.cash")) << "the straggler replaced version 2's indicators";
}

TEST(Release, AStragglerFixIsExaminedByThePerFixIndicators) {
  Scenario s;
  s.Manifest();
  // Closed-seal fixes at minutes 0-10 and 20, evaluated; then the fix of
  // minute 15, opened on the road, arrives as a straggler.
  for (int i : {0, 5, 10, 20}) s.Gps(kDay + i * kMin, 13.2 + 0.01 * i, 100.0, 40);
  s.engine.Release(s.state, kDay + 21 * kMin, 0, &s.alerts);
  ASSERT_FALSE(s.Fired("gps.seal_breach"));
  s.Gps(kDay + 15 * kMin, 13.35, 100.0, 40, [](auto& e) { e.set_seal_state(v1::GpsEvent::SEAL_STATE_OPENED); });
  s.engine.Release(s.state, kDay + 21 * kMin, 0, &s.alerts);
  EXPECT_EQ(PendingItems(s.state.pending_items()).size(), 0);
  EXPECT_TRUE(s.Fired("gps.seal_breach")) << "the straggler's opened seal went unexamined";
}

TEST(Release, TooManyUnevaluatedFixesReleaseTheOldestWhateverTheBound) {
  Scenario s;
  operators::EngineLimits limits;
  for (int i = 0; i < limits.max_unevaluated_fixes + 10; ++i) {
    ASSERT_EQ(s.engine.ApplyGps(s.state, StandingFix(i), 0), JoinResult::kApplied);
  }
  s.engine.Release(s.state, 0, 0, &s.alerts);
  EXPECT_EQ(PendingItems(s.state.pending_items()).size(), limits.max_unevaluated_fixes);
  EXPECT_EQ(s.state.released_before_ms(), kDay + 9 * kMin + 1);
}

TEST(Join, AmendmentsKeepWhatChangedAndWhen) {
  Scenario s;
  s.Manifest({}, kT0 - 72 * kHour, 1);
  s.Manifest([](auto& m) { m.mutable_consignee()->set_name("Someone Else"); }, kT0 - 10 * kHour, 2);
  ASSERT_EQ(s.state.manifest_history_size(), 2);
  const auto& v2 = s.state.manifest_history(1);
  EXPECT_EQ(v2.version(), 2u);
  EXPECT_EQ(v2.declared_at_ms(), kT0 - 10 * kHour);
  ASSERT_EQ(v2.amended_fields_size(), 1);
  EXPECT_EQ(v2.amended_fields(0), "consignee");
  EXPECT_EQ(ManifestAsOf(s.state, kT0 - 20 * kHour)->version(), 1u);
  EXPECT_EQ(ManifestAsOf(s.state, kT0)->version(), 2u);
}

// ------------------------------------------------- order independence

struct Arrival {
  int container;
  int kind;  // 0 manifest, 1 scan, 2 gps
  int64_t time;
  v1::Manifest manifest;
  v1::ScanResult scan;
  v1::GpsEvent gps;
};

std::vector<Arrival> MakeTraffic(std::mt19937& rng, int containers) {
  std::vector<Arrival> out;
  std::uniform_real_distribution<double> u(0, 1);
  for (int c = 0; c < containers; ++c) {
    char first[11];
    std::snprintf(first, sizeof first, "MSKU%06d", 100000 + c);
    const std::string number = std::string(first) + std::to_string(ContainerNumber::CheckDigit(first));
    const int64_t start = kDay + static_cast<int64_t>(u(rng) * 2 * kHour);
    Arrival m{c, 0, start - kHour, CleanManifest(number), {}, {}};
    if (u(rng) < 0.2) m.manifest.mutable_consignee()->set_name("Golden Crescent Trading Co.");
    if (u(rng) < 0.3) m.manifest.mutable_goods(0)->set_description("said to contain general cargo");
    m.manifest.set_declared_at_ms(m.time);
    out.push_back(m);
    if (u(rng) < 0.3) {  // a late amendment
      Arrival a = m;
      a.time = start + 30 * kMin;
      a.manifest.set_version(2);
      a.manifest.set_declared_at_ms(a.time);
      a.manifest.mutable_consignee()->set_name("Changed Consignee " + std::to_string(c));
      out.push_back(a);
    }
    Arrival scan{c, 1, start + 5 * kMin, {}, {}, {}};
    scan.scan.set_container_number(number);
    scan.scan.set_scan_id("RPM-" + std::to_string(c));
    scan.scan.set_site("THLCH");
    scan.scan.set_scanned_at_ms(scan.time);
    scan.scan.mutable_rpm()->set_gamma_background_cps(100);
    scan.scan.mutable_rpm()->set_gamma_cps(u(rng) < 0.15 ? 450 : 110);
    scan.scan.mutable_rpm()->set_neutron_background_cps(1);
    scan.scan.mutable_rpm()->set_neutron_cps(u(rng) < 0.03 ? 6 : 1);
    out.push_back(scan);
    const bool deviates = u(rng) < 0.2, stops = u(rng) < 0.2, breach = u(rng) < 0.1;
    double lat = 13.02;
    for (int i = 0; i < 60; ++i) {
      Arrival g{c, 2, start + i * (2 + static_cast<int>(u(rng) * 3)) * kMin, {}, {}, {}};
      g.time = start + i * 3 * kMin + static_cast<int64_t>(u(rng) * 60000);
      const bool stopped = stops && i >= 20 && i < 35;
      const bool off = deviates && i >= 40 && i < 48;
      if (!stopped) lat += 0.01;
      g.gps.set_container_number(number);
      g.gps.set_event_id("T" + std::to_string(c) + "-" + std::to_string(i));
      g.gps.set_fix_time_ms(g.time);
      g.gps.mutable_position()->set_lat(lat);
      g.gps.mutable_position()->set_lon(off ? 100.2 : 100.0);
      g.gps.set_speed_kmh(stopped ? 0 : 55);
      g.gps.set_seal_state(breach && i == 50 ? v1::GpsEvent::SEAL_STATE_OPENED : v1::GpsEvent::SEAL_STATE_CLOSED);
      out.push_back(g);
      if (u(rng) < 0.05) out.push_back(g);  // a duplicate delivery
    }
  }
  return out;
}

struct RunResult {
  std::map<int, v1::ContainerState> states;
  std::map<int, std::vector<v1::Alert>> alerts;
  size_t late = 0;
  // Evaluations that changed what storage keeps in the evaluation part
  // (fired indicators, alert bookkeeping): reported by Advance, and not.
  size_t reported_changes = 0, unreported_changes = 0;
};

// The fields of the state's evaluation part, serialised.
std::string EvaluationBytes(const v1::ContainerState& s) {
  v1::ContainerState e;
  *e.mutable_fired() = s.fired();
  if (s.has_alerts()) *e.mutable_alerts() = s.alerts();
  return e.SerializeAsString();
}

RunResult RunTraffic(const std::vector<Arrival>& arrivals, int64_t lateness) {
  RiskEngine engine(&TestProfile(), nullptr);
  ReferenceData ref;
  engine.SetReference(&ref);
  RunResult r;
  int64_t max_time = 0;
  for (const Arrival& a : arrivals) {
    const int64_t watermark = max_time - lateness;
    v1::ContainerState& s = r.states[a.container];
    JoinResult j = a.kind == 0   ? engine.ApplyManifest(s, a.manifest, watermark)
                   : a.kind == 1 ? engine.ApplyScan(s, a.scan, watermark)
                                 : engine.ApplyGps(s, a.gps, watermark);
    if (j == JoinResult::kLate) ++r.late;
    max_time = std::max(max_time, a.time);
    const std::string before = EvaluationBytes(s);
    const bool reported = engine.Advance(s, max_time - lateness, 0, &r.alerts[a.container]);
    if (EvaluationBytes(s) != before) ++(reported ? r.reported_changes : r.unreported_changes);
  }
  for (auto& [c, s] : r.states) {
    const std::string before = EvaluationBytes(s);
    const bool reported = engine.Advance(s, kEndOfTime, 0, &r.alerts[c]);
    if (EvaluationBytes(s) != before) ++(reported ? r.reported_changes : r.unreported_changes);
  }
  return r;
}

TEST(OrderIndependence, AnyArrivalOrderWithinTheLatenessGivesTheSameStateAndAlerts) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::printf("seed %u\n", seed);
  std::mt19937 rng(seed);
  constexpr int64_t kLateness = 5 * kMin;
  std::vector<Arrival> traffic = MakeTraffic(rng, 40);

  std::vector<Arrival> in_order = traffic;
  std::stable_sort(in_order.begin(), in_order.end(), [](const auto& a, const auto& b) { return a.time < b.time; });
  const RunResult expected = RunTraffic(in_order, kLateness);
  ASSERT_EQ(expected.late, 0u);
  // Advance's result may say "changed" when nothing did, never the reverse:
  // storage skips the evaluation part on its word.
  EXPECT_EQ(expected.unreported_changes, 0u);
  EXPECT_GT(expected.reported_changes, 0u) << "the traffic fires something";
  size_t alert_count = 0;
  for (const auto& [c, a] : expected.alerts) alert_count += a.size();
  ASSERT_GT(alert_count, 10u) << "the traffic must exercise the alert policy";

  for (int round = 0; round < 5; ++round) {
    // Each event arrives at a random moment within the lateness after it happened.
    std::vector<std::pair<int64_t, const Arrival*>> keyed;
    std::uniform_int_distribution<int64_t> delay(0, kLateness - 1);
    for (const auto& a : traffic) keyed.emplace_back(a.time + delay(rng), &a);
    std::stable_sort(keyed.begin(), keyed.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
    std::vector<Arrival> shuffled;
    for (const auto& [k, a] : keyed) shuffled.push_back(*a);

    const RunResult got = RunTraffic(shuffled, kLateness);
    EXPECT_EQ(got.late, 0u);
    EXPECT_EQ(got.unreported_changes, 0u) << "round " << round;
    ASSERT_EQ(got.states.size(), expected.states.size());
    for (const auto& [c, s] : expected.states) {
      EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(s, got.states.at(c)))
          << "round " << round << " container " << c;
      const auto& ea = expected.alerts.at(c);
      const auto& ga = got.alerts.at(c);
      ASSERT_EQ(ea.size(), ga.size()) << "round " << round << " container " << c;
      for (size_t i = 0; i < ea.size(); ++i) {
        EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(ea[i], ga[i]))
            << ea[i].ShortDebugString() << "\nvs\n" << ga[i].ShortDebugString();
      }
    }
  }
}

}  // namespace
}  // namespace boxwatch::operators::testing

namespace boxwatch::operators::testing {
namespace {

v1::InspectionOutcome Seizure(int64_t at) {
  v1::InspectionOutcome o;
  o.set_container_number(kBox);
  o.set_outcome_id("o-1");
  o.set_inspected_at_ms(at);
  o.set_result(v1::InspectionOutcome::RESULT_SEIZURE);
  o.add_seizure_categories(v1::InspectionOutcome::SEIZURE_CATEGORY_DRUGS);
  return o;
}

TEST(Feedback, SeizureListsTheConsigneeForTheProfilesDays) {
  Scenario s;
  s.Manifest([](auto& m) { m.mutable_consignee()->set_name("Mekong Fresh Produce, Ltd."); });
  const auto o = Seizure(kDay);
  ASSERT_EQ(s.engine.ApplyOutcome(s.state, o, 0), JoinResult::kApplied);
  const auto updates = s.engine.FeedbackFor(s.state, o);
  ASSERT_EQ(updates.size(), 2u);  // the test profile names the consignee and the bill of lading
  EXPECT_EQ(updates[1].key, "seized_bills:BLTEST0001@" + std::to_string(kDay));
  EXPECT_EQ(updates[0].key, "seized_parties:MEKONG FRESH PRODUCE LTD@" + std::to_string(kDay));
  EXPECT_EQ(updates[0].value, "seized_at=" + std::to_string(kDay) + " until=" + std::to_string(kDay + 30 * 24 * kHour));
  const auto listing = ParseSeizureListing(updates[0].value);
  ASSERT_TRUE(listing.has_value());
  EXPECT_EQ(listing->seized_at_ms, kDay);
  EXPECT_FALSE(listing->Covers(kDay)) << "the seizure itself and anything before it are not covered";
  EXPECT_TRUE(listing->Covers(kDay + 1));
}

// A seizure reported after other tasks may have evaluated past its time
// takes effect from the task's horizon, not from the inspection.
TEST(Feedback, ASeizureReportedLateTakesEffectFromTheHorizon) {
  Scenario s;
  s.Manifest();
  const auto o = Seizure(kDay);
  ASSERT_EQ(s.engine.ApplyOutcome(s.state, o, 0), JoinResult::kApplied);
  const auto updates = s.engine.FeedbackFor(s.state, o, kDay + 6 * kHour, 5 * kMin);
  ASSERT_EQ(updates.size(), 2u);
  const auto listing = ParseSeizureListing(updates[0].value);
  ASSERT_TRUE(listing.has_value());
  EXPECT_EQ(listing->seized_at_ms, kDay + 6 * kHour + 5 * kMin) << "from the horizon, after the delay";
  EXPECT_EQ(listing->until_ms, kDay + 30 * 24 * kHour) << "the watch still counts from the inspection";
}

// A party seized twice keeps both listings, whatever order they are read in,
// and one listing's removal leaves the other.
TEST(Feedback, EverySeizureOfAPartyIsKeptAndReadAsOfTheEvent) {
  for (bool reversed : {false, true}) {
    ReferenceData ref;
    const std::string a = "seized_parties:ACME@100", b = "seized_parties:ACME@500";
    const std::string va = "seized_at=100 until=200", vb = "seized_at=500 until=900";
    if (reversed) {
      ASSERT_TRUE(ApplyReferenceEntry(&ref, b, vb).ok());
      ASSERT_TRUE(ApplyReferenceEntry(&ref, a, va).ok());
    } else {
      ASSERT_TRUE(ApplyReferenceEntry(&ref, a, va).ok());
      ASSERT_TRUE(ApplyReferenceEntry(&ref, b, vb).ok());
    }
    EXPECT_TRUE(ref.SeizureCovers("ACME", 150));
    EXPECT_FALSE(ref.SeizureCovers("ACME", 300));
    EXPECT_TRUE(ref.SeizureCovers("ACME", 600));
    ASSERT_TRUE(ApplyReferenceEntry(&ref, a, "").ok());
    EXPECT_FALSE(ref.SeizureCovers("ACME", 150));
    EXPECT_TRUE(ref.SeizureCovers("ACME", 600));
  }
  ReferenceData old;
  ASSERT_TRUE(ApplyReferenceEntry(&old, "seized_parties:Acme", "seized_at=5 until=9").ok());
  EXPECT_TRUE(old.SeizureCovers("ACME", 6)) << "an older worker's key still lists the party";
}

TEST(Feedback, SeizureListingsParseTheCurrentAndTheOlderFormAndRefuseOthers) {
  EXPECT_EQ(ParseSeizureListing("seized_at=5 until=9")->until_ms, 9);
  EXPECT_EQ(ParseSeizureListing("1700000000000")->seized_at_ms, 0);
  EXPECT_EQ(ParseSeizureListing("1700000000000")->until_ms, 1700000000000);
  for (const char* bad : {"", "soon", "seized_at=5", "seized_at=x until=9", "seized_at=5 until=9 extra", "12a"}) {
    EXPECT_FALSE(ParseSeizureListing(bad).has_value()) << bad;
  }
}

TEST(Feedback, OutcomesAreNeverLateAndARetriedReportIsADuplicate) {
  Scenario s;
  s.Manifest();
  const auto o = Seizure(kDay);
  EXPECT_EQ(s.engine.ApplyOutcome(s.state, o, kDay + 48 * kHour), JoinResult::kApplied);
  auto retried = o;
  retried.set_inspected_at_ms(kDay + 5 * kMin);
  EXPECT_EQ(s.engine.ApplyOutcome(s.state, retried, 0), JoinResult::kDuplicate);
  EXPECT_EQ(s.state.outcomes_size(), 1);
}

TEST(Feedback, NoFindingOrNoManifestFeedsNothingBack) {
  Scenario s;
  auto clear = Seizure(kDay);
  clear.set_result(v1::InspectionOutcome::RESULT_NO_FINDING);
  EXPECT_TRUE(s.engine.FeedbackFor(s.state, Seizure(kDay)).empty());  // no manifest yet
  s.Manifest();
  EXPECT_TRUE(s.engine.FeedbackFor(s.state, clear).empty());
  EXPECT_FALSE(s.engine.FeedbackFor(s.state, Seizure(kDay)).empty());
}

}  // namespace
}  // namespace boxwatch::operators::testing
