// End to end on the real broker: `boxwatch simulate` feeds the input topics,
// a worker scores, a dispatcher delivers over mutual TLS, a hub stores; then
// `boxwatch evaluate` scores the hub's alerts and the alerts topic against
// the simulation's labels, and the default profile must reach its targets
// (HIGH+ recall >= 0.9, precision >= 0.8).
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <thread>

#include "core/http.h"
#include "tests/support/delivery_harness.h"
#include "tests/support/worker_harness.h"

namespace boxwatch::testing {
namespace {

using std::chrono::seconds;

struct Figures {
  double precision = -1, recall = -1;
};

// Runs `boxwatch evaluate` with `source` and returns its HIGH+ figures.
Figures Evaluate(const std::string& dir, const std::string& labels, const std::vector<std::string>& source) {
  const std::string json = dir + "/eval-" + std::to_string(source.size()) + source.back() + ".json";
  std::vector<std::string> argv = {BOXWATCH_BINARY, "evaluate", "--labels", labels, "--json", json};
  argv.insert(argv.end(), source.begin(), source.end());
  Child evaluate(argv);
  EXPECT_TRUE(evaluate.WaitForLine("HIGH+", seconds(120))) << "evaluate printed no table";
  std::printf("evaluate (%s): %s\n", source.front().c_str(), evaluate.last_line().c_str());
  const int status = evaluate.Wait(seconds(60));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::ifstream in(json);
  std::stringstream text;
  text << in.rdbuf();
  google::protobuf::Struct doc;
  Figures f;
  if (!google::protobuf::util::JsonStringToMessage(text.str(), &doc).ok()) {
    ADD_FAILURE() << json << " is not JSON: " << text.str();
    return f;
  }
  for (const auto& row : doc.fields().at("by_priority").list_value().values()) {
    const auto& fields = row.struct_value().fields();
    if (fields.at("at_or_above").string_value() == "HIGH") {
      f.precision = fields.at("precision").number_value();
      f.recall = fields.at("recall").number_value();
    }
  }
  return f;
}

TEST(SimulationEndToEnd, SimulatorWorkerDispatcherAndHubReachTheDetectionTargets) {
  const std::string regions = "mekong,central-asia,caucasus,europe,gulf,south-asia,east-asia,southeast-asia,latin-america";
  auto h = DeliveryHarness::Create(4, {{"hub-e2e", {"mekong", "central-asia", "caucasus", "europe", "gulf", "south-asia",
                                                    "east-asia", "southeast-asia", "latin-america"}}});
  ASSERT_TRUE(h.ok()) << h.error().message;
  auto& w = (*h)->workers();
  const std::string labels = w.dir() + "/labels.jsonl";
  Child simulate({BOXWATCH_BINARY, "simulate", "--bootstrap", w.bootstrap(), "--topic-prefix", w.prefix(),
                  "--containers", "1500", "--seed", "3", "--labels", labels});
  ASSERT_TRUE(simulate.WaitForLine("{\"event\":\"simulated\"", seconds(120)));
  EXPECT_NE(simulate.last_line().find("\"complete\":true"), std::string::npos) << simulate.last_line();

  auto worker = w.StartWorker("e2e-1", {{"idle_flush_ms", "2000"}});
  ASSERT_TRUE(worker.ok()) << worker.error().message;
  int port = 0;
  auto dispatcher = (*h)->StartDispatcher(0, &port);
  ASSERT_TRUE(dispatcher.ok()) << dispatcher.error().message;
  int http_port = 0;
  auto hub = (*h)->StartHub("hub-e2e", regions, port, &http_port);
  ASSERT_TRUE(hub.ok()) << hub.error().message;

  // Every input record committed; then what the idle flush releases
  // (idle_flush_ms after the worker is caught up) is committed and
  // delivered: the hub holds exactly what the alerts topic holds, and both
  // stay so for 5 s, well past the flush.
  const int64_t input_records = JsonField(simulate.last_line(), "input_records");
  ASSERT_GT(input_records, 0) << simulate.last_line();
  ASSERT_TRUE(WaitForCommittedRecords(**worker, input_records, seconds(240)))
      << "the worker did not commit the " << input_records << " input records within 240 s";
  const auto deadline = std::chrono::steady_clock::now() + seconds(240);
  std::set<std::string> topic_ids, hub_ids, last;
  int steady = 0;
  while (std::chrono::steady_clock::now() < deadline && steady < 10) {
    auto alerts = w.Alerts();
    ASSERT_TRUE(alerts.ok()) << alerts.error().message;
    topic_ids.clear();
    for (const auto& a : *alerts) topic_ids.insert(a.alert_id());
    auto ids = (*h)->HubAlertIds(http_port);
    hub_ids = ids.ok() ? *ids : std::set<std::string>{};
    steady = !topic_ids.empty() && hub_ids == topic_ids && topic_ids == last ? steady + 1 : 0;
    last = topic_ids;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // polling the hub's API and the topic
  }
  ASSERT_GT(topic_ids.size(), 100u) << "the worker committed too few alerts";
  if (hub_ids != topic_ids) {
    std::vector<std::string> missing, extra;
    std::set_difference(topic_ids.begin(), topic_ids.end(), hub_ids.begin(), hub_ids.end(), std::back_inserter(missing));
    std::set_difference(hub_ids.begin(), hub_ids.end(), topic_ids.begin(), topic_ids.end(), std::back_inserter(extra));
    FAIL() << "after 240 s the hub holds " << hub_ids.size() << " alerts and the topic " << topic_ids.size() << ": "
           << missing.size() << " missing at the hub (e.g. " << (missing.empty() ? "-" : missing.front()) << "), "
           << extra.size() << " not on the topic (e.g. " << (extra.empty() ? "-" : extra.front()) << ")";
  }

  ::setenv("BOXWATCH_HUB_TOKEN", (*h)->hub_token().c_str(), 1);  // read by `evaluate --hub`
  const Figures at_hub = Evaluate(w.dir(), labels, {"--hub", "127.0.0.1:" + std::to_string(http_port)});
  EXPECT_GE(at_hub.recall, 0.9);
  EXPECT_GE(at_hub.precision, 0.8);
  const Figures on_topic = Evaluate(w.dir(), labels, {"--bootstrap", w.bootstrap(), "--topic-prefix", w.prefix()});
  EXPECT_GE(on_topic.recall, 0.9);
  EXPECT_GE(on_topic.precision, 0.8);
  // The hub serves every region the alerts name, so it holds the whole set.
  EXPECT_DOUBLE_EQ(at_hub.recall, on_topic.recall);
  (*worker)->Kill(SIGTERM);
}

}  // namespace
}  // namespace boxwatch::testing
