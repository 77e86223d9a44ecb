#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>

#include "app/commands.h"
#include "app/kafka_options.h"
#include "pipeline/kafka_client.h"
#include "pipeline/topics.h"

namespace boxwatch::app {
namespace {

int g_exit_code = 0;

struct TopicsArgs {
  std::string bootstrap = "127.0.0.1:9092";
  std::string prefix;
  int partitions = 8;
  int replication = 1;
  int timeout_s = 30;
  int64_t event_retention_ms = 7LL * 24 * 3600 * 1000;   // input and dead-letter topics; -1 keeps forever
  int64_t alert_retention_ms = 365LL * 24 * 3600 * 1000;  // alerts; -1 keeps forever
  int64_t max_message_bytes = 0;                            // bytes; 0: the broker's default
  KafkaCliOptions kafka;
};

// `settle`: right after a create, ask until every broker's answer shows the
// whole set (a broker's metadata can trail the controller for a moment).
int Describe(const TopicsArgs& a, pipeline::KafkaAdmin& admin, bool settle) {
  const pipeline::TopicNames names(a.prefix);
  std::vector<std::string> wanted;
  for (auto role : pipeline::kAllTopicRoles) wanted.push_back(names.Name(role));
  auto counts = settle ? admin.PartitionCountsOfAll(wanted, std::chrono::seconds(a.timeout_s))
                       : admin.PartitionCounts(wanted, std::chrono::seconds(a.timeout_s));
  if (!counts.ok()) {
    std::fprintf(stderr, "boxwatch topics describe: %s\n", counts.error().message.c_str());
    return 1;
  }
  std::printf("%-40s %s\n", "topic", "partitions");
  for (const auto& name : wanted) {
    auto it = counts->find(name);
    std::printf("%-40s %s\n", name.c_str(), it == counts->end() ? "missing" : std::to_string(it->second).c_str());
  }
  Status s = pipeline::CheckTopicSet(names, *counts);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    return 1;
  }
  std::printf("topic set OK: co-partitioned topics share one partition count\n");
  return 0;
}

int Create(const TopicsArgs& a, pipeline::KafkaAdmin& admin) {
  const auto specs = pipeline::TopicSetSpecs({.prefix = a.prefix,
                                              .partitions = a.partitions,
                                              .replication = a.replication,
                                              .event_retention_ms = a.event_retention_ms,
                                              .alert_retention_ms = a.alert_retention_ms,
                                              .max_message_bytes = a.max_message_bytes});
  std::vector<std::string> existing;
  Status s = admin.CreateTopics(specs, std::chrono::seconds(a.timeout_s), &existing);
  if (!s.ok()) {
    std::fprintf(stderr, "boxwatch topics create: %s\n", s.message().c_str());
    return 1;
  }
  for (const auto& spec : specs) {
    const bool was_there = std::find(existing.begin(), existing.end(), spec.name) != existing.end();
    std::printf("%-40s %s\n", spec.name.c_str(), was_there ? "exists" : "created");
  }
  return Describe(a, admin, true);
}

}  // namespace

int ExitCode() { return g_exit_code; }
void SetExitCode(int code) { g_exit_code = code; }
const char* VersionString() { return "boxwatch 0.1.0"; }

void RegisterTopicsCommand(CLI::App& app) {
  auto args = std::make_shared<TopicsArgs>();
  CLI::App* topics = app.add_subcommand("topics", "Create or check the Kafka topic set");
  topics->require_subcommand(1);
  auto add_common = [args](CLI::App* c) {
    c->add_option("--bootstrap", args->bootstrap, "Kafka bootstrap servers (host:port,...)")
        ->capture_default_str();
    c->add_option("--prefix", args->prefix, "Prefix prepended to every topic name (e.g. 'lab.')");
    c->add_option("--timeout", args->timeout_s, "Seconds to wait for the cluster")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    AddKafkaOptions(c, &args->kafka);
  };
  CLI::App* create = topics->add_subcommand(
      "create", "Create every boxwatch topic (existing ones are kept) and check the set");
  add_common(create);
  create->add_option("--partitions", args->partitions,
                     "Partition count P of the co-partitioned topics")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  create->add_option("--replication", args->replication, "Replication factor (3 in production)")
      ->capture_default_str()
      ->check(CLI::Range(1, 16));
  create->add_option("--event-retention-ms", args->event_retention_ms,
                     "retention.ms of the input and dead-letter topics; -1 keeps records forever (Kafka deletes "
                     "by record timestamp, which is the event time)")
      ->capture_default_str();
  create->add_option("--alert-retention-ms", args->alert_retention_ms,
                     "retention.ms of the alerts topic; -1 keeps alerts forever")
      ->capture_default_str();
  create->add_option("--max-message-bytes", args->max_message_bytes,
                     "max.message.bytes of every topic; 0 keeps the broker's default (about 1 MiB). Raise it "
                     "together with the clients' message.max.bytes to carry larger records")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1000000000}));
  CLI::App* describe = topics->add_subcommand(
      "describe", "Show partition counts and check that the co-partitioned topics agree");
  add_common(describe);

  auto run = [args](bool create_first) {
    auto kafka = ResolveKafkaOptions(args->kafka);
    if (!kafka.ok()) {
      std::fprintf(stderr, "boxwatch topics: %s\n", kafka.error().message.c_str());
      SetExitCode(2);
      return;
    }
    auto admin = pipeline::KafkaAdmin::Create(args->bootstrap, *kafka);
    if (!admin.ok()) {
      std::fprintf(stderr, "boxwatch topics: %s\n", admin.error().message.c_str());
      SetExitCode(1);
      return;
    }
    SetExitCode(create_first ? Create(*args, **admin) : Describe(*args, **admin, false));
  };
  create->callback([run] { run(true); });
  describe->callback([run] { run(false); });
}

}  // namespace boxwatch::app
