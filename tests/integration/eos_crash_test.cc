// Exactly-once across crashes, on the real broker: a consume-transform-
// produce child (eos_child) is killed with SIGKILL while its transaction is
// open, several times, and restarted; a read_committed reader must then see
// exactly one output for every input.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "pipeline/kafka_client.h"
#include "tests/support/child_process.h"
#include "tests/support/test_broker.h"

namespace boxwatch::pipeline {
namespace {

using boxwatch::testing::BrokerKind;
using boxwatch::testing::Child;
using boxwatch::testing::ReadAllCommitted;
using boxwatch::testing::TestBroker;
using namespace std::chrono_literals;

TEST(ExactlyOnceOnRealKafka, EveryInputHasExactlyOneOutputAfterSigkillMidTransaction) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::printf("seed %u\n", seed);
  std::mt19937 rng(seed);

  auto broker = TestBroker::Start(BrokerKind::kReal);
  ASSERT_TRUE(broker.ok()) << broker.error().message;
  const std::string bootstrap = (*broker)->bootstrap();
  const std::string input = TestBroker::UniqueName("eos-in");
  const std::string output = TestBroker::UniqueName("eos-out");
  const int partitions = 3;
  ASSERT_TRUE((*broker)->CreateTopics({{input, partitions, 1, {}}, {output, partitions, 1, {}}}).ok());

  constexpr int kInputs = 3000;
  auto producer = KafkaProducer::Create({.bootstrap = bootstrap});
  ASSERT_TRUE(producer.ok());
  for (int i = 0; i < kInputs; ++i) {
    const std::string id = "in-" + std::to_string(i);
    ASSERT_TRUE((*producer)->Produce({.topic = input, .key = id, .value = id}).ok());
  }
  ASSERT_TRUE((*producer)->Flush(30s).ok());

  const std::vector<std::string> base = {EOS_CHILD_PATH, "--bootstrap", bootstrap, "--input", input,
                                         "--output", output, "--group",
                                         TestBroker::UniqueName("eos-group"), "--txn-id",
                                         TestBroker::UniqueName("eos-txn")};
  constexpr int kKills = 5;
  for (int k = 0; k < kKills; ++k) {
    auto argv = base;
    const int hold_after = 1 + static_cast<int>(rng() % 4);
    argv.insert(argv.end(), {"--hold-after", std::to_string(hold_after)});
    Child child(argv);
    ASSERT_TRUE(child.started());
    ASSERT_TRUE(child.WaitForLine("HOLDING", 90s))
        << "child did not reach an open transaction (kill " << k << ")";
    const int status = child.Kill(SIGKILL);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  }

  // A last run without interruption processes the rest.
  Child finisher(base);
  ASSERT_TRUE(finisher.started());
  std::vector<OwnedRecord> outputs;
  const auto deadline = std::chrono::steady_clock::now() + 180s;
  for (;;) {
    auto read = ReadAllCommitted(bootstrap, output, partitions, 60s);
    ASSERT_TRUE(read.ok()) << read.error().message;
    outputs = std::move(read).value();
    if (outputs.size() >= static_cast<size_t>(kInputs)) break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline)
        << "only " << outputs.size() << " of " << kInputs << " outputs committed";
    finisher.WaitForLine("COMMITTED", 5s);
  }
  const int status = finisher.Kill(SIGTERM);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;

  // Everything committed is now visible: read again to the end.
  auto final_read = ReadAllCommitted(bootstrap, output, partitions, 60s);
  ASSERT_TRUE(final_read.ok()) << final_read.error().message;
  std::map<std::string, int> count;
  for (const auto& m : *final_read) {
    ASSERT_EQ(m.value.substr(0, 4), "out:");
    ++count[std::string(m.value.substr(4))];
  }
  EXPECT_EQ(final_read->size(), static_cast<size_t>(kInputs)) << "duplicates or losses";
  EXPECT_EQ(count.size(), static_cast<size_t>(kInputs));
  for (int i = 0; i < kInputs; ++i) {
    EXPECT_EQ(count["in-" + std::to_string(i)], 1) << "in-" << i;
  }
}

}  // namespace
}  // namespace boxwatch::pipeline
