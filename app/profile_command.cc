// `boxwatch profile check FILE`: validates a profile and summarises it.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "app/commands.h"
#include "app/kafka_options.h"
#include "operators/default_profile.h"
#include "operators/profile.h"
#include "pipeline/kafka_client.h"
#include "pipeline/topics.h"

namespace boxwatch::app {

void RegisterProfileCommand(CLI::App& app) {
  auto file = std::make_shared<std::string>();
  CLI::App* profile = app.add_subcommand("profile", "Work with risk profiles");
  profile->require_subcommand(1);
  CLI::App* check = profile->add_subcommand(
      "check", "Validate a profile (every problem is listed with its line) and summarise it");
  check->add_option("file", *file, "Profile YAML; omit to check the built-in default profile");
  check->callback([file] {
    auto p = file->empty() ? operators::ParseProfile(operators::DefaultProfileYaml(),
                                                     operators::kDefaultProfileSource)
                           : operators::LoadProfile(*file);
    if (!p.ok()) {
      std::fprintf(stderr, "%s\n", p.error().message.c_str());
      SetExitCode(1);
      return;
    }
    std::printf("profile %s version %s: OK\n", p->name.c_str(), p->version.c_str());
    std::printf("  thresholds: critical %.0f, high %.0f, medium %.0f, low %.0f\n",
                p->threshold[v1::PRIORITY_CRITICAL], p->threshold[v1::PRIORITY_HIGH],
                p->threshold[v1::PRIORITY_MEDIUM], p->threshold[v1::PRIORITY_LOW]);
    size_t enabled = 0;
    for (const auto& [id, cfg] : p->indicators) enabled += cfg.enabled ? 1 : 0;
    std::printf("  indicators: %zu (%zu enabled)\n", p->indicators.size(), enabled);
    std::printf("  ports %zu, corridors %zu, stop zones %zu, border crossings %zu, regions %zu\n",
                p->ports.size(), p->corridors.size(), p->stop_zones.size(),
                p->border_crossings.size(), p->regions.size());
    std::printf("  reference: %zu high-risk ports, %zu sensitive HS entries, %zu vague terms, "
                "%zu watchlisted parties\n",
                p->high_risk_ports.size(), p->sensitive_hs.size(), p->vague_terms.size(),
                p->watchlisted_parties.size());
    SetExitCode(0);
  });

  struct PublishArgs {
    std::string file;
    std::string bootstrap = "127.0.0.1:9092";
    std::string prefix;
    KafkaCliOptions kafka;
  };
  auto pub = std::make_shared<PublishArgs>();
  CLI::App* publish = profile->add_subcommand(
      "publish", "Validate a profile and publish it to the profiles topic; workers apply it at "
                 "their next commit");
  publish->add_option("file", pub->file, "Profile YAML")->required();
  publish->add_option("--bootstrap", pub->bootstrap, "Kafka bootstrap servers")->capture_default_str();
  publish->add_option("--prefix", pub->prefix, "Topic name prefix");
  AddKafkaOptions(publish, &pub->kafka);
  publish->callback([pub] {
    std::ifstream in(pub->file);
    std::stringstream text;
    text << in.rdbuf();
    auto p = operators::ParseProfile(text.str(), pub->file);
    if (!in || !p.ok()) {
      std::fprintf(stderr, "%s\n", in ? p.error().message.c_str() : ("cannot read " + pub->file).c_str());
      SetExitCode(1);
      return;
    }
    auto kafka = ResolveKafkaOptions(pub->kafka);
    if (!kafka.ok()) {
      std::fprintf(stderr, "boxwatch profile publish: %s\n", kafka.error().message.c_str());
      SetExitCode(2);
      return;
    }
    auto producer = pipeline::KafkaProducer::Create({.bootstrap = pub->bootstrap, .extra = *kafka});
    const std::string topic = pipeline::TopicNames(pub->prefix).Name(pipeline::TopicRole::kProfiles);
    Status s = producer.ok() ? (*producer)->Produce({.topic = topic, .key = p->name, .value = text.str()})
                             : producer.status();
    if (s.ok()) s = (*producer)->Flush(std::chrono::seconds(30));
    if (!s.ok()) {
      std::fprintf(stderr, "boxwatch profile publish: %s\n", s.message().c_str());
      SetExitCode(1);
      return;
    }
    std::printf("published profile %s version %s to %s\n", p->name.c_str(), p->version.c_str(), topic.c_str());
    SetExitCode(0);
  });
}

}  // namespace boxwatch::app
