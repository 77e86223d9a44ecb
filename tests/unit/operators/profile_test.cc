// Profile validation: every problem reported at once, with file and line.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "tests/unit/operators/scenario.h"

namespace boxwatch::operators::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  const size_t pos = text.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  if (pos != std::string::npos) text.replace(pos, from.size(), to);
  return text;
}

TEST(Profile, TestProfileLoads) {
  const Profile& p = TestProfile();
  EXPECT_EQ(p.name, "unit-test");
  EXPECT_EQ(p.indicators.size(), KnownIndicators().size());
  EXPECT_EQ(p.PriorityFor(55), v1::PRIORITY_HIGH);
  EXPECT_EQ(p.PriorityFor(9.9), v1::PRIORITY_UNSPECIFIED);
  EXPECT_EQ(p.RegionOfLocode("LAVTE"), "mekong");
  ASSERT_EQ(p.corridors.size(), 1u);
  EXPECT_TRUE(p.watchlisted_parties.count("GOLDEN CRESCENT TRADING CO"));
}

// A profile written before an optional indicator existed still loads; the
// indicator is then off. A required one missing is a problem (ProfileRejects).
TEST(Profile, AnOlderProfileWithoutTheOptionalIndicatorsLoadsWithThemOff) {
  std::string yaml = ReadFile(TestDataPath("test_profile.yaml"));
  for (const auto& spec : KnownIndicators()) {
    if (!spec.optional) continue;
    const size_t at = yaml.find(std::string("  ") + spec.id + ":");
    ASSERT_NE(at, std::string::npos) << spec.id;
    yaml.erase(at, yaml.find('\n', at) + 1 - at);
  }
  auto r = ParseProfile(yaml, "older.yaml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  for (const auto& spec : KnownIndicators()) {
    EXPECT_EQ(r->Indicator(spec.id).enabled, !spec.optional) << spec.id;
  }
}

TEST(Profile, CompileTimeIndicatorIdsMatchTheKnownIndicators) {
  ASSERT_EQ(kIndicatorIds.size(), KnownIndicators().size());
  for (size_t i = 0; i < kIndicatorIds.size(); ++i) EXPECT_EQ(kIndicatorIds[i], KnownIndicators()[i].id);
  for (size_t i = 0; i < kIndicatorIds.size(); ++i) EXPECT_EQ(FindIndicatorIndex(KnownIndicators()[i].id), i);
  EXPECT_EQ(FindIndicatorIndex("gps.seal_breac"), std::nullopt);
  EXPECT_EQ(FindIndicatorIndex(""), std::nullopt);
  const Profile& p = TestProfile();
  EXPECT_DOUBLE_EQ(p.At(IndicatorIndex("party.watchlisted")).weight, 50);
  EXPECT_TRUE(p.At(IndicatorIndex("scan.radiation_neutron")).critical);
}

TEST(Profile, NoTwoParamsOfAnIndicatorShareAHash) {
  for (const IndicatorSpec& spec : KnownIndicators()) {
    for (size_t i = 0; i < spec.params.size(); ++i) {
      for (size_t j = i + 1; j < spec.params.size(); ++j) {
        EXPECT_NE(HashParamName(spec.params[i]), HashParamName(spec.params[j]))
            << spec.id << ": " << spec.params[i] << " and " << spec.params[j];
      }
    }
  }
}

TEST(Profile, ParamsAreFoundByNameAndOthersFallBack) {
  IndicatorConfig cfg;
  cfg.SetParam("min_minutes", 30);
  cfg.SetParam("max_speed_kmh", 3);
  cfg.SetParam("min_minutes", 45);  // set again: replaces
  EXPECT_EQ(cfg.Param("min_minutes", 1), 45);
  EXPECT_EQ(cfg.Param("max_speed_kmh", 1), 3);
  EXPECT_EQ(cfg.Param("min_points", 7), 7);
  EXPECT_EQ(cfg.params.size(), 2u);
}

TEST(Profile, DefaultProfileLoads) {
  auto p = LoadProfile(std::string(BOXWATCH_SOURCE_DIR) + "/profiles/default.yaml");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->name, "default");
  EXPECT_FALSE(p->version.empty());
  EXPECT_GE(p->corridors.size(), 3u);
  EXPECT_GE(p->ports.size(), 20u);
  EXPECT_FALSE(p->stop_zones.empty());
  EXPECT_FALSE(p->border_crossings.empty());
}

struct BadCase {
  const char* name;
  std::string from;
  std::string to;
  std::string expected;  // part of the message, with the line when it has one
};

class ProfileRejects : public ::testing::TestWithParam<BadCase> {};

TEST_P(ProfileRejects, WithFileLineAndReason) {
  const std::string good = ReadFile(TestDataPath("test_profile.yaml"));
  auto r = ParseProfile(Replace(good, GetParam().from, GetParam().to), "bad.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(GetParam().expected), std::string::npos) << r.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Validation, ProfileRejects,
    ::testing::Values(
        BadCase{"MisspelledKey", "route.detour: {weight: 10,", "route.detour: {weigth: 10,",
                "bad.yaml:11: unknown key 'weigth' in indicator route.detour"},
        BadCase{"MissingWeight", "route.detour: {weight: 10,", "route.detour: {",
                "bad.yaml:11: indicator route.detour has no weight"},
        BadCase{"UnknownIndicator", "  payment.cash: {weight: 10}", "  payment.cash: {weight: 10}\n  payment.crypto: {weight: 5}",
                "bad.yaml:19: unknown indicator 'payment.crypto'"},
        BadCase{"MissingIndicator", "  payment.cash: {weight: 10}\n", "", "indicator payment.cash is missing"},
        BadCase{"ThresholdsNotDecreasing", "high: 50", "high: 90", "thresholds must decrease"},
        BadCase{"BadLane", "medium: yellow, low", "medium: amber, low", "lanes.medium must be red, yellow or green"},
        BadCase{"NegativeWeight", "payment.cash: {weight: 10}", "payment.cash: {weight: -3}",
                "bad.yaml:18: indicator payment.cash.weight must be >= 0"},
        BadCase{"UnknownParam", "max_detour_ratio: 2.0", "max_ratio: 2.0", "indicator route.detour has no param 'max_ratio'"},
        BadCase{"BadLocode", "  SGSIN: {name", "  SG-SIN1: {name", "ports: UN/LOCODE 'SG-SIN1'"},
        BadCase{"CountryMismatch", "country: SG}", "country: MY}", "differs from the LOCODE's country SG"},
        BadCase{"CorridorWithOnePoint", "points: [[13.0, 100.0], [13.5, 100.0], [14.0, 100.0]]", "points: [[13.0, 100.0]]",
                "corridor test-north needs at least 2 points"},
        BadCase{"LatitudeOutOfRange", "{name: \"Test yard\", lat: 13.5", "{name: \"Test yard\", lat: 113.5",
                "outside WGS84 range"},
        BadCase{"BadImo", "[\"9999991\"]", "[\"99999\"]", "'99999' is not a 7-digit IMO number"},
        BadCase{"SensitiveHsRangeInverted", "min_kg_per_package: 50, max_kg_per_package: 250",
                "min_kg_per_package: 500, max_kg_per_package: 250", "min_kg_per_package is above max_kg_per_package"},
        BadCase{"UnknownFeedbackParty", "seizure_parties: [consignee, bill_of_lading]", "seizure_parties: [carrier]",
                "feedback.seizure_parties: 'carrier' is not consignee, shipper, notify_party or bill_of_lading"},
        BadCase{"RipOnOffIsNoBoolean", "seizure_watch_days: 30", "seizure_watch_days: 30\n  exclude_rip_on_off: maybe",
                "feedback.exclude_rip_on_off must be true or false"},
        BadCase{"RiskyRoutingHubIsNoPlace", "hub: SGSIN", "hub: SINGAPORE",
                "risky_routings.hub: "},
        BadCase{"GoodsWeightWithoutAMaximum", "min_kg_per_package: 400, max_kg_per_package: 1500",
                "min_kg_per_package: 0, max_kg_per_package: 0", "goods_weights 6907: max_kg_per_package must be > 0"},
        BadCase{"PremisesTooLarge", "lat: 13.3, lon: 100.0, radius_m: 500", "lat: 13.3, lon: 100.0, radius_m: 50000",
                "consignee_premises Test importer depot: radius_m must be > 0 and at most 5000"},
        BadCase{"EmptyBorderGeofencePrefix", "border_geofence_prefixes: [border, xing]",
                "border_geofence_prefixes: [border, \"--\"]", "border_geofence_prefixes: '--' has no letters or digits"},
        BadCase{"UnknownParamOfANewIndicator", "min_rise_m: 1000", "min_rise_km: 1",
                "indicator gps.corridor_drift has no param 'min_rise_km'"},
        BadCase{"FeedbackDaysOutOfRange", "seizure_watch_days: 30", "seizure_watch_days: -1",
                "feedback.seizure_watch_days must be 0 (off) to 3650"},
        BadCase{"BrokenYaml", "lanes: {critical: red", "lanes: {critical: [red", "bad.yaml:6: not valid YAML"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Profile, ReportsEveryProblemAtOnce) {
  std::string text = ReadFile(TestDataPath("test_profile.yaml"));
  text = Replace(text, "high: 50", "high: 90");
  text = Replace(text, "payment.cash: {weight: 10}", "payment.cash: {weight: -3}");
  text = Replace(text, "country: SG}", "country: MY}");
  auto r = ParseProfile(text, "bad.yaml");
  ASSERT_FALSE(r.ok());
  const std::string& msg = r.error().message;
  EXPECT_NE(msg.find("profile has 5 problem(s)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bad.yaml:5: thresholds must decrease"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bad.yaml:18: indicator payment.cash.weight must be >= 0"), std::string::npos) << msg;
  EXPECT_NE(msg.find("country MY has no entry in regions"), std::string::npos) << msg;
}

TEST(Profile, MissingFileSaysWhich) {
  auto r = LoadProfile("/nonexistent/profile.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("/nonexistent/profile.yaml"), std::string::npos);
}

}  // namespace
}  // namespace boxwatch::operators::testing
