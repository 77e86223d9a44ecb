// Backtest runs, reports, random selection and outcome-driven tuning, on
// simulated traffic (no Kafka; tests/integration/backtest_test.cc checks the
// backtest against a worker on real Kafka).

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>
#include <set>

#include "backtest/report.h"
#include "backtest/tune.h"
#include "operators/default_profile.h"
#include "pipeline/partitioner.h"
#include "sim/produce.h"
#include "sim/traffic.h"

namespace boxwatch::backtest {
namespace {

constexpr int kPartitions = 4;

const operators::Profile& Default() {
  static const operators::Profile p =
      *operators::ParseProfile(operators::DefaultProfileYaml(), operators::kDefaultProfileSource);
  return p;
}

operators::Profile WithYamlEdit(const std::string& from, const std::string& to) {
  std::string yaml(operators::DefaultProfileYaml());
  const size_t at = yaml.find(from);
  if (at == std::string::npos) ADD_FAILURE() << "the default profile has no '" << from << "'";
  yaml.replace(at, from.size(), to);
  auto p = operators::ParseProfile(yaml, "edited");
  if (!p.ok()) ADD_FAILURE() << p.error().message;
  return *p;
}

Input InputOf(const sim::Traffic& traffic) {
  Input in;
  in.source = "test traffic";
  for (const auto& r : traffic.records) {
    const int input = pipeline::InputIndex(r.role);
    if (input < 0) continue;
    in.Add(pipeline::JavaPartition(r.key, kPartitions),
           {.input = input, .key = r.key, .value = r.value, .content_type = r.json ? "application/json" : "",
            .timestamp_ms = r.timestamp_ms});
  }
  return in;
}

sim::Traffic Traffic(int containers, uint32_t seed) {
  sim::TrafficOptions o;
  o.seed = seed;
  o.containers = containers;
  return sim::GenerateTraffic(o, Default());
}

RunOptions Options() {
  RunOptions o;
  o.now_ms = 1796000000000;  // after every simulated event
  return o;
}

std::string Bytes(const std::vector<v1::Alert>& alerts) {
  std::string out;
  for (const auto& a : alerts) out += a.SerializeAsString();
  return out;
}

TEST(BacktestTime, ParsesUtcForms) {
  EXPECT_EQ(*ParseUtc("2026-11-18"), 1794960000000);
  EXPECT_EQ(*ParseUtc("2026-11-18T03:00Z"), 1794970800000);
  EXPECT_EQ(*ParseUtc("2026-11-18T03:00:05Z"), 1794970805000);
  EXPECT_EQ(*ParseUtc("1794970800000"), 1794970800000);
  for (const char* bad : {"2026-13-01", "2026-11-18T03:00", "18/11/2026", "", "2026-11-18T25:00Z", "yesterday"}) {
    EXPECT_FALSE(ParseUtc(bad).ok()) << bad;
  }
  EXPECT_EQ(FormatUtc(1794970805000), "2026-11-18T03:00:05Z");
}

TEST(BacktestInput, ReadsBackATrafficFileAsTheSimulatorWroteIt) {
  const sim::Traffic traffic = Traffic(50, 4);
  const std::string path = ::testing::TempDir() + "/traffic.jsonl";
  ASSERT_TRUE(sim::WriteTrafficFile(path, pipeline::TopicNames(""), traffic.records).ok());
  auto read = ReadTrafficFile(path, kPartitions);
  ASSERT_TRUE(read.ok()) << read.error().message;
  const Input direct = InputOf(traffic);
  ASSERT_EQ(read->records, direct.records);
  for (const auto& [p, records] : direct.partitions) {
    ASSERT_EQ(read->partitions.at(p).size(), records.size());
    for (size_t i = 0; i < records.size(); ++i) {
      EXPECT_EQ(read->partitions.at(p)[i].value, records[i].value);
      EXPECT_EQ(read->partitions.at(p)[i].timestamp_ms, records[i].timestamp_ms);
      EXPECT_EQ(read->partitions.at(p)[i].input, records[i].input);
    }
  }
  std::ofstream(path, std::ios::app) << "{\"topic\":\"boxwatch.gps\",\"key\":\"X\",\"timestamp_ms\":1,"
                                        "\"value_base64\":\"not base64!\"}\n";
  auto bad = ReadTrafficFile(path, kPartitions);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find(":" + std::to_string(traffic.records.size() + 1) + ": value_base64"),
            std::string::npos)
      << bad.error().message;
}

TEST(BacktestRun, SameInputAndProfileGiveByteIdenticalAlertsAndReports) {
  const Input input = InputOf(Traffic(400, 5));
  const RunResult a = backtest::Run(input, Default(), Options());
  const RunResult b = backtest::Run(input, Default(), Options());
  ASSERT_GT(a.alerts.size(), 20u);
  EXPECT_EQ(Bytes(a.alerts), Bytes(b.alerts));
  const Side sa{"candidate", &Default(), a}, sb{"baseline", &Default(), b};
  const Report ra = BuildReport(sa, &sb, {.input_source = "x"});
  EXPECT_TRUE(ra.newly_alerted.empty() && ra.no_longer_alerted.empty() && ra.raised.empty() && ra.lowered.empty());
  // Reports of two separate runs: byte-identical (no processing time in JSON or HTML).
  const RunResult c = backtest::Run(input, Default(), Options());
  const RunResult d = backtest::Run(input, Default(), Options());
  const Side sc{"candidate", &Default(), c}, sd{"baseline", &Default(), d};
  EXPECT_EQ(ra.Json(), BuildReport(sc, &sd, {.input_source = "x"}).Json());
  EXPECT_EQ(ra.Html(), BuildReport(sc, &sd, {.input_source = "x"}).Html());
}

TEST(BacktestRun, TheWindowLeavesOutLaterRecordsAndReportsNoEarlierAlert) {
  const Input input = InputOf(Traffic(400, 5));
  std::vector<int64_t> times;
  for (const auto& a : backtest::Run(input, Default(), Options()).alerts) times.push_back(a.event_time_ms());
  std::sort(times.begin(), times.end());
  ASSERT_GT(times.size(), 30u);
  RunOptions o = Options();
  o.from_ms = times[times.size() / 3];
  o.to_ms = times[2 * times.size() / 3];
  const RunResult r = backtest::Run(input, Default(), o);
  ASSERT_FALSE(r.alerts.empty());
  for (const auto& a : r.alerts) {
    EXPECT_GE(a.event_time_ms(), o.from_ms);
    EXPECT_LT(a.event_time_ms(), o.to_ms);
  }
  EXPECT_LT(r.records, input.records);
}

TEST(BacktestReport, ACandidateWithoutAnIndicatorDropsTheContainersItAloneAlerted) {
  const Input input = InputOf(Traffic(1500, 3));
  const operators::Profile candidate =
      WithYamlEdit("party.watchlisted: {weight: 55,", "party.watchlisted: {enabled: false, weight: 55,");
  const Side cand{"candidate", &candidate, backtest::Run(input, candidate, Options())};
  const Side base{"baseline", &Default(), backtest::Run(input, Default(), Options())};
  const Report r = BuildReport(cand, &base, {.input_source = "x"});
  // Expected from the baseline's explanations: alerted only with
  // party.watchlisted, and below LOW without it.
  std::map<std::string, bool> only;
  for (const auto& a : base.run.alerts) {
    double rest = 0;
    bool has = false;
    for (const auto& f : a.indicators()) {
      if (f.id() == "party.watchlisted") {
        has = true;
      } else {
        rest += f.contribution();
      }
    }
    const bool alone = has && rest < Default().threshold[v1::PRIORITY_LOW];
    auto [it, fresh] = only.try_emplace(a.container_number(), alone);
    if (!fresh) it->second = it->second && alone;
  }
  std::set<std::string> want, got;
  for (const auto& [c, alone] : only) {
    if (alone) want.insert(c);
  }
  for (const auto& ch : r.no_longer_alerted) got.insert(ch.container);
  ASSERT_FALSE(want.empty());
  EXPECT_EQ(got, want);
  EXPECT_TRUE(r.newly_alerted.empty());
  for (const auto& row : r.figures[0].indicators) {
    if (row.id == "party.watchlisted") {
      EXPECT_EQ(row.alerts, 0);
    }
  }
}

TEST(RandomSelection, PicksAShareOfContainersPerProfileVersionWithItsOwnReason) {
  const Input input = InputOf(Traffic(2000, 8));
  const operators::Profile p = WithYamlEdit("version: \"2026.12.2\"",
                                            "version: \"r1\"\nrandom_selection: {rate: 0.05, priority: medium}");
  const RunResult r = backtest::Run(input, p, Options());
  std::set<std::string> picked, by_reason;
  for (const auto& [c, s] : r.containers) {
    if (s.randomly_selected) picked.insert(c);
  }
  for (const auto& a : r.alerts) {
    if (a.reason() == v1::Alert::ALERT_REASON_RANDOM_SELECTION) {
      by_reason.insert(a.container_number());
      EXPECT_EQ(a.priority(), v1::PRIORITY_MEDIUM);
      EXPECT_EQ(a.indicators(a.indicators_size() - 1).id(), operators::kRandomSelectionId);
    }
  }
  // 5 % of 2000: 100, binomial sd ~10.
  EXPECT_GT(picked.size(), 60u);
  EXPECT_LT(picked.size(), 140u);
  // A picked box alerts at MEDIUM at least; its own reason unless its score got there first.
  for (const auto& c : picked) EXPECT_GE(r.containers.at(c).max_priority, v1::PRIORITY_MEDIUM) << c;
  EXPECT_GT(by_reason.size(), picked.size() / 2);
  for (const auto& c : by_reason) EXPECT_TRUE(picked.count(c)) << c;
  // The same version picks the same boxes; another version others.
  const operators::Profile again = WithYamlEdit("version: \"2026.12.2\"",
                                                "version: \"r1\"\nrandom_selection: {rate: 0.05, priority: medium}");
  const operators::Profile next = WithYamlEdit("version: \"2026.12.2\"",
                                               "version: \"r2\"\nrandom_selection: {rate: 0.05, priority: medium}");
  size_t same = 0, overlap = 0;
  for (const auto& c : picked) {
    same += again.RandomlySelected(c);
    overlap += next.RandomlySelected(c);
  }
  EXPECT_EQ(same, picked.size());
  EXPECT_LT(overlap, picked.size() / 4);
  EXPECT_FALSE(Default().RandomlySelected(*picked.begin())) << "off unless the profile sets it";
}

TEST(RandomSelection, BadSettingsAreListed) {
  std::string yaml(operators::DefaultProfileYaml());
  yaml += "\nrandom_selection: {rate: 0.5, priority: urgent}\n";
  auto p = operators::ParseProfile(yaml, "bad");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("random_selection.rate must be 0 (off) to 0.2"), std::string::npos);
  EXPECT_NE(p.error().message.find("random_selection.priority must be low, medium, high or critical"),
            std::string::npos);
}

TEST(Tune, LogisticRegressionRecoversKnownCoefficients) {
  std::mt19937 rng(7);
  std::bernoulli_distribution coin(0.3);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<std::vector<double>> x;
  std::vector<int> y;
  for (int i = 0; i < 20000; ++i) {
    std::vector<double> row = {double(coin(rng)), double(coin(rng)), double(coin(rng))};
    const double z = -2 + 2.5 * row[0] + 1.0 * row[1] - 1.5 * row[2];
    y.push_back(u(rng) < 1 / (1 + std::exp(-z)));
    x.push_back(row);
  }
  const auto beta = FitLogistic(x, y, 0.01);
  EXPECT_NEAR(beta[0], -2, 0.15);
  EXPECT_NEAR(beta[1], 2.5, 0.15);
  EXPECT_NEAR(beta[2], 1.0, 0.15);
  EXPECT_NEAR(beta[3], -1.5, 0.15);
}

// Outcomes drawn from a known model of the fired indicators: seizure with
// probability sigmoid(-2.5 + 3 watchlisted + 1.5 deviation - 1 detour).
struct Model {
  double Z(const std::vector<std::string>& fired) const {
    double z = -2.5;
    for (const auto& id : fired) {
      if (id == "party.watchlisted") z += 3.0;
      if (id == "gps.route_deviation") z += 1.5;
      if (id == "route.detour") z -= 1.0;
    }
    return z;
  }
};

// The input with outcomes: every alerted container inspected (as officers
// examine what the profile raises) plus `random_share` of the others, or all.
Input WithOutcomes(const Input& input, const RunResult& run, double random_share, uint32_t seed) {
  Input out = input;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  int n = 0;
  for (const auto& [c, s] : run.containers) {
    const bool pick = s.max_priority != v1::PRIORITY_UNSPECIFIED || u(rng) < random_share;
    const bool seized = u(rng) < 1 / (1 + std::exp(-Model().Z(s.fired)));
    if (!pick) continue;
    v1::InspectionOutcome o;
    o.set_container_number(c);
    o.set_outcome_id("t-" + std::to_string(++n));
    o.set_inspected_at_ms(input.last_ms + 3600 * 1000);
    o.set_result(seized ? v1::InspectionOutcome::RESULT_SEIZURE : v1::InspectionOutcome::RESULT_NO_FINDING);
    out.Add(pipeline::JavaPartition(c, kPartitions),
            {.input = 3, .key = c, .value = o.SerializeAsString(), .timestamp_ms = o.inspected_at_ms()});
  }
  return out;
}

TEST(Tune, RecoversTheSignAndOrderOfKnownEffectsAndDoesNotLosePrecisionOnHeldOutData) {
  const Input train = InputOf(Traffic(4000, 21));
  const Input train_outcomes = WithOutcomes(train, backtest::Run(train, Default(), Options()), 0.15, 1);
  const RunResult run = backtest::Run(train_outcomes, Default(), Options());
  auto fit = Tune(run, Default(), {});
  ASSERT_TRUE(fit.ok()) << fit.error().message;
  std::printf("%s", fit->Text().c_str());
  const auto& b = fit->coefficient;
  ASSERT_TRUE(b.count("party.watchlisted") && b.count("gps.route_deviation") && b.count("route.detour"));
  EXPECT_GT(b.at("party.watchlisted"), b.at("gps.route_deviation"));
  EXPECT_GT(b.at("gps.route_deviation"), 0.5);
  EXPECT_LT(b.at("route.detour"), -0.3);
  const auto& w = fit->weights;
  EXPECT_GT(w.at("party.watchlisted").second, w.at("gps.route_deviation").second);
  EXPECT_GT(w.at("gps.route_deviation").second, w.at("route.detour").second);
  EXPECT_EQ(w.at("route.detour").second, 0) << "a negative effect is clamped to the lowest weight";
  EXPECT_FALSE(fit->warnings.empty()) << "no random selection in the default profile: the bias is said";

  // The candidate profile, as written, on another seed with every box inspected.
  auto yaml = TunedProfileYaml(std::string(operators::DefaultProfileYaml()), "default", *fit, "tuned-1");
  ASSERT_TRUE(yaml.ok()) << yaml.error().message;
  EXPECT_NE(yaml->find("# boxwatch default risk profile."), std::string::npos) << "comments kept";
  auto tuned = operators::ParseProfile(*yaml, "tuned");
  ASSERT_TRUE(tuned.ok()) << tuned.error().message;
  EXPECT_EQ(tuned->version, "tuned-1");
  const Input held = InputOf(Traffic(3000, 22));
  const Input held_outcomes = WithOutcomes(held, backtest::Run(held, Default(), Options()), 1.0, 2);
  const Side t{"tuned", &*tuned, backtest::Run(held_outcomes, *tuned, Options())};
  const Side d{"default", &Default(), backtest::Run(held_outcomes, Default(), Options())};
  const Report r = BuildReport(t, &d, {.input_source = "held out"});
  const Quality& qt = r.figures[0].by_outcomes[v1::PRIORITY_HIGH - 1];
  const Quality& qd = r.figures[1].by_outcomes[v1::PRIORITY_HIGH - 1];
  std::printf("held out, HIGH+: tuned precision %.3f (%d/%d) recall %.3f; default precision %.3f (%d/%d) recall %.3f\n",
              qt.precision, qt.tp, qt.tp + qt.fp, qt.recall, qd.precision, qd.tp, qd.tp + qd.fp, qd.recall);
  ASSERT_GT(qt.tp + qt.fp, 10);
  EXPECT_GE(qt.precision, qd.precision);
}

TEST(Tune, TooFewOutcomesIsAnErrorThatSaysSo) {
  const Input input = InputOf(Traffic(200, 9));
  auto fit = Tune(backtest::Run(input, Default(), Options()), Default(), {});
  ASSERT_FALSE(fit.ok());
  EXPECT_NE(fit.error().message.find("inspected containers"), std::string::npos) << fit.error().message;
}

TEST(Tune, TheTunedYamlKeepsLayoutAndRefusesAProfileWithoutTheWeight) {
  TuneResult r;
  r.weights["payment.cash"] = {15, 7};
  auto yaml = TunedProfileYaml(std::string(operators::DefaultProfileYaml()), "default", r, "v9");
  ASSERT_TRUE(yaml.ok()) << yaml.error().message;
  EXPECT_NE(yaml->find("payment.cash: {weight: 7, params: {new_trader_factor: 2}}"), std::string::npos) << *yaml;
  EXPECT_NE(yaml->find("version: \"v9\""), std::string::npos);
  r.weights["gps.route_deviation"] = {30, 12};
  const std::string block = "name: x\nversion: \"1\"\nindicators:\n  gps.route_deviation:\n    # note\n    weight: 30\n";
  auto bad = TunedProfileYaml(block, "block.yaml", r, "2");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("payment.cash"), std::string::npos) << bad.error().message;
}

}  // namespace
}  // namespace boxwatch::backtest
