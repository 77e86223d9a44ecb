// The ceiling of broker and client on this machine for the worker's I/O:
// consumes every partition of the input topics with the worker's consumer
// settings (read_committed), and produces the same number of output bytes
// (as the broker stores them: random, so compression cannot shrink them)
// with the worker's producer settings (idempotent, acks=all, lz4, linger 5
// ms, murmur2), in transactions committed every --commit-ms like the
// worker's. No decoding, no state, no scoring: what is left is Kafka.
//
//   pipeline_ceiling --bootstrap B --topics t1,t2,... --partitions P
//                    --records N --output-bytes BYTES --sink TOPIC
//
// Prints one JSON line: records, seconds, records_per_s, cpu_s.
#include <sys/resource.h>

#include <chrono>
#include <random>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "pipeline/kafka_client.h"

using namespace boxwatch;
using namespace std::chrono_literals;

namespace {

double CpuSeconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

std::string Arg(int argc, char** argv, const std::string& name, const std::string& fallback = "") {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == name) return argv[i + 1];
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string bootstrap = Arg(argc, argv, "--bootstrap");
  const std::string topics = Arg(argc, argv, "--topics");
  const int partitions = std::atoi(Arg(argc, argv, "--partitions", "4").c_str());
  const long long records = std::atoll(Arg(argc, argv, "--records", "0").c_str());
  const long long output_bytes = std::atoll(Arg(argc, argv, "--output-bytes", "0").c_str());
  const std::string sink = Arg(argc, argv, "--sink");
  const int commit_ms = std::atoi(Arg(argc, argv, "--commit-ms", "100").c_str());
  if (bootstrap.empty() || topics.empty() || records <= 0 || sink.empty()) {
    std::fprintf(stderr, "usage: %s --bootstrap B --topics t1,t2 --partitions P --records N --output-bytes BYTES "
                         "--sink TOPIC [--commit-ms 100]\n", argv[0]);
    return 2;
  }
  auto consumer = pipeline::KafkaConsumer::Create(
      {.bootstrap = bootstrap, .group_id = "boxwatch-ceiling", .read_committed = true});
  auto producer = pipeline::KafkaProducer::Create({.bootstrap = bootstrap, .transactional_id = "boxwatch-ceiling"});
  if (!consumer.ok() || !producer.ok()) {
    std::fprintf(stderr, "ceiling: cannot create clients\n");
    return 1;
  }
  std::vector<pipeline::TopicPartitionOffset> all;
  std::stringstream ts(topics);
  for (std::string t; std::getline(ts, t, ',');)
    for (int p = 0; p < partitions; ++p) all.push_back({t, p, RD_KAFKA_OFFSET_BEGINNING});
  if (!(*consumer)->Assign(all).ok() || !(*producer)->InitTransactions(60s).ok()) {
    std::fprintf(stderr, "ceiling: assign or init transactions failed\n");
    return 1;
  }
  const long long bytes_per_record = records > 0 ? std::max(1LL, output_bytes / records) : 1;
  // Incompressible bytes: lz4 must not shrink them below what the worker's output costs.
  std::string payload(static_cast<size_t>(std::min(bytes_per_record, 1LL << 20)), '\0');
  std::mt19937 rng(7);
  for (auto& c : payload) c = static_cast<char>(rng());
  const double cpu0 = CpuSeconds();
  const auto start = std::chrono::steady_clock::now();
  long long seen = 0;
  long long produced_bytes = 0;
  bool open = false;
  auto txn_started = start;
  while (seen < records) {
    auto m = (*consumer)->Poll(100ms);
    if (!m.ok()) {
      std::fprintf(stderr, "ceiling: %s\n", m.error().message.c_str());
      return 1;
    }
    if (!*m) {
      if (std::chrono::steady_clock::now() - start > 600s) break;
      continue;
    }
    if (!open) {
      if (!(*producer)->BeginTransaction().ok()) return 1;
      open = true;
      txn_started = std::chrono::steady_clock::now();
    }
    ++seen;
    // The worker writes about output_bytes/records per input record.
    if (produced_bytes < output_bytes * seen / records) {
      if (!(*producer)->Produce({.topic = sink, .key = (*m)->key(), .value = payload}).ok()) return 1;
      produced_bytes += static_cast<long long>(payload.size());
    }
    if (std::chrono::steady_clock::now() - txn_started >= std::chrono::milliseconds(commit_ms) || seen == records) {
      if (!(*producer)->CommitTransaction(60s).ok()) return 1;
      open = false;
    }
  }
  if (open && !(*producer)->CommitTransaction(60s).ok()) return 1;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("{\"records\":%lld,\"output_bytes\":%lld,\"seconds\":%.3f,\"records_per_s\":%.0f,\"cpu_s\":%.3f}\n", seen,
              produced_bytes, secs, seen / secs, CpuSeconds() - cpu0);
  return seen == records ? 0 : 1;
}
