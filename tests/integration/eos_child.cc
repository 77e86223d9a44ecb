// A consume-transform-produce process for the exactly-once crash test. It
// reads --input in group --group (static member "eos-child"), writes one
// output per input ("out:" + value, same key) and commits outputs and input
// offsets in one Kafka transaction per batch.
//
// --hold-after N: after producing the records of the N-th batch, flush them
// to the broker, print "HOLDING" and block with the transaction open, so the
// parent can SIGKILL us in the middle of a transaction.
// Prints "COMMITTED <records>" after each commit. SIGTERM: finish the batch,
// commit, close, exit 0.

#include <signal.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "pipeline/kafka_client.h"

using namespace boxwatch;
using namespace boxwatch::pipeline;
using namespace std::chrono_literals;

namespace {
volatile std::sig_atomic_t g_stop = 0;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "eos_child: %s\n", what.c_str());
  std::exit(2);
}

void CheckOk(const Status& s) {
  if (!s.ok()) Die(s.ToString());
}
}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> args;
  for (int i = 1; i + 1 < argc; i += 2) args[argv[i]] = argv[i + 1];
  for (const char* required : {"--bootstrap", "--input", "--output", "--group", "--txn-id"}) {
    if (!args.count(required)) Die(std::string("missing ") + required);
  }
  const int hold_after = args.count("--hold-after") ? std::atoi(args["--hold-after"].c_str()) : 0;
  std::signal(SIGTERM, [](int) { g_stop = 1; });

  auto consumer = KafkaConsumer::Create({.bootstrap = args["--bootstrap"],
                                         .group_id = args["--group"],
                                         .group_instance_id = "eos-child",
                                         .session_timeout_ms = 10000});
  if (!consumer.ok()) Die(consumer.error().message);
  auto& c = **consumer;
  CheckOk(c.Subscribe({args["--input"]}));
  auto producer = KafkaProducer::Create(
      {.bootstrap = args["--bootstrap"], .transactional_id = args["--txn-id"]});
  if (!producer.ok()) Die(producer.error().message);
  auto& p = **producer;
  CheckOk(p.InitTransactions(60s));

  int batches = 0;
  uint64_t total = 0;
  while (!g_stop) {
    std::map<int32_t, int64_t> next;
    int in_batch = 0;
    const auto batch_end = std::chrono::steady_clock::now() + 100ms;
    while (in_batch < 50 && std::chrono::steady_clock::now() < batch_end) {
      auto m = c.Poll(20ms);
      if (!m.ok()) Die(m.error().message);
      if (!m->has_value()) continue;
      const Message& in = **m;
      if (in_batch == 0) CheckOk(p.BeginTransaction());
      CheckOk(p.Produce({.topic = args["--output"], .key = in.key(),
                         .value = "out:" + std::string(in.value())}));
      next[in.partition()] = in.offset() + 1;
      ++in_batch;
    }
    if (in_batch == 0) continue;
    ++batches;
    if (hold_after > 0 && batches == hold_after) {
      CheckOk(p.Flush(30s));
      std::printf("HOLDING\n");
      std::fflush(stdout);
      for (;;) pause();  // the parent kills us here, transaction open
    }
    std::vector<TopicPartitionOffset> offsets;
    for (auto [part, off] : next) offsets.push_back({args["--input"], part, off});
    GroupMetadata gm = c.GroupMetadataForTransaction();
    CheckOk(p.SendOffsetsToTransaction(offsets, gm.get(), 30s));
    CheckOk(p.CommitTransaction(30s));
    total += static_cast<uint64_t>(in_batch);
    std::printf("COMMITTED %llu\n", static_cast<unsigned long long>(total));
    std::fflush(stdout);
  }
  CheckOk(c.Close());
  return 0;
}
