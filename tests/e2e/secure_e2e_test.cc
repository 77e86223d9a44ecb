// End to end on a secured broker (scripts/kafka start --secure): no plaintext
// listener, SASL_SSL with SCRAM-SHA-512 and mutual TLS, Kafka's
// StandardAuthorizer with the ACLs docs/security.md lists. The worker reads
// and writes as User:worker (client certificate), the dispatcher as
// User:dispatcher (SCRAM), the test's own clients as User:admin; the worker
// takes its Kafka settings from a kafka_config file, the dispatcher and the
// tools from --kafka-config, passwords as ${file:} references. An outcome
// posted at the hub reaches the outcomes topic through the dispatcher. A worker with the dispatcher's credentials, or a
// wrong password, stops with exit code 4; the hub-facing principal reads
// nothing; no password appears in any process's output.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/http.h"
#include "tests/support/delivery_harness.h"

namespace boxwatch::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The secured broker's folder (scripts/kafka start --secure --dir).
std::string SecureDir() {
  const char* dir = std::getenv("BOXWATCH_KAFKA_SECURE_DIR");
  return dir != nullptr ? dir : "";
}

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

class SecuredPipeline : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = SecureDir();
    ASSERT_FALSE(dir_.empty()) << "BOXWATCH_KAFKA_SECURE_DIR is not set: run this test through ctest, whose "
                                  "kafka_secure_broker_start fixture starts the secured broker";
    sasl_bootstrap_ = Trimmed(ReadFile(dir_ + "/bootstrap"));
    mtls_bootstrap_ = Trimmed(ReadFile(dir_ + "/bootstrap-mtls"));
    ASSERT_FALSE(sasl_bootstrap_.empty() || mtls_bootstrap_.empty())
        << "no bootstrap lists in " << dir_ << ": the secured broker did not start";
    for (const char* user : {"admin", "worker", "dispatcher", "hub"}) {
      passwords_.push_back(Trimmed(ReadFile(dir_ + "/secrets/" + user + ".password")));
      ASSERT_GE(passwords_.back().size(), 32u) << "no password for " << user;
    }
  }
  std::string Client(const std::string& name) const { return dir_ + "/clients/" + name + ".properties"; }

  // Fails if any password appears in `text` (a process's output).
  void ExpectNoSecret(const std::string& what, const std::string& text) const {
    for (const auto& p : passwords_) EXPECT_EQ(text.find(p), std::string::npos) << what << " shows a password";
  }

  std::string dir_, sasl_bootstrap_, mtls_bootstrap_;
  std::vector<std::string> passwords_;
};

TEST_F(SecuredPipeline, WorkerDispatcherAndHubDeliverEveryAlertOverTlsAndScram) {
  // The ACLs name the default topic prefix, group and transactional ids.
  auto h = DeliveryHarness::Create(2, {{"hub-sec", {"mekong", "central-asia", "caucasus", "europe", "gulf", "south-asia",
                                                    "east-asia", "southeast-asia", "latin-america"}}},
                                   std::string());
  ASSERT_TRUE(h.ok()) << h.error().message;
  auto& w = (*h)->workers();
  w.CaptureStderr();
  ASSERT_EQ(w.prefix(), "");
  const std::string logs = w.dir();

  Child simulate({BOXWATCH_BINARY, "simulate", "--bootstrap", sasl_bootstrap_, "--kafka-config", Client("admin"),
                  "--containers", "400", "--seed", "11"},
                 w.StderrFile("simulate"));
  ASSERT_TRUE(simulate.WaitForLine("{\"event\":\"simulated\"", seconds(120))) << ReadFile(w.StderrFile("simulate"));
  EXPECT_NE(simulate.last_line().find("\"complete\":true"), std::string::npos) << simulate.last_line();

  // The worker by client certificate on the mutual-TLS listener.
  auto worker = w.StartWorker("sec-1", {{"bootstrap", mtls_bootstrap_},
                                        {"group_id", "boxwatch-workers"},
                                        {"kafka_config", Client("worker-mtls")},
                                        {"idle_flush_ms", "2000"}});
  ASSERT_TRUE(worker.ok()) << worker.error().message << "\n" << ReadFile(w.StderrFile("sec-1"));
  // The dispatcher by SCRAM; its --bootstrap flag is the harness's (the SASL list).
  ASSERT_EQ(w.bootstrap(), sasl_bootstrap_);
  int port = 0;
  auto dispatcher = (*h)->StartDispatcher(0, &port, {"--kafka-config", Client("dispatcher")});
  ASSERT_TRUE(dispatcher.ok()) << dispatcher.error().message << "\n" << ReadFile(w.StderrFile("dispatcher"));
  int http_port = 0;
  auto hub = (*h)->StartHub("hub-sec",
                            "mekong,central-asia,caucasus,europe,gulf,south-asia,east-asia,southeast-asia,latin-america",
                            port, &http_port);
  ASSERT_TRUE(hub.ok()) << hub.error().message;

  // Every committed alert reaches the hub (it serves every region).
  std::set<std::string> on_topic, at_hub;
  const auto deadline = std::chrono::steady_clock::now() + seconds(240);
  while (std::chrono::steady_clock::now() < deadline) {
    auto alerts = w.Alerts();
    ASSERT_TRUE(alerts.ok()) << alerts.error().message;
    on_topic.clear();
    for (const auto& a : *alerts) on_topic.insert(a.alert_id());
    auto ids = (*h)->HubAlertIds(http_port);
    if (ids.ok()) at_hub = *ids;
    if (on_topic.size() > 30 && at_hub == on_topic) break;
    std::this_thread::sleep_for(milliseconds(500));  // polling the hub and the topic
  }
  EXPECT_GT(on_topic.size(), 30u) << "the worker committed too few alerts:\n" << ReadFile(w.StderrFile("sec-1"));
  EXPECT_EQ(at_hub, on_topic) << "the hub's alerts differ from the committed ones";

  // An outcome posted at the hub goes through the dispatcher (User:dispatcher
  // may write the outcomes topic) and is read by the worker.
  ASSERT_FALSE(on_topic.empty());
  auto alerts = w.Alerts();
  ASSERT_TRUE(alerts.ok() && !alerts->empty());
  const std::string container = (*alerts)[0].container_number();
  const std::string body = "{\"container_number\":\"" + container +
                           "\",\"outcome_id\":\"secure-1\",\"inspected_at_ms\":\"" + std::to_string(NowMs() - 60000) +
                           "\",\"site\":\"THLCH\",\"result\":\"RESULT_NO_FINDING\",\"final\":true}";
  auto posted = (*h)->HubFetch("POST", http_port, "/api/outcomes", body);
  ASSERT_TRUE(posted.ok()) << posted.error().message;
  EXPECT_EQ(posted->status, 200) << posted->body;
  auto outcomes = ReadAllCommitted(sasl_bootstrap_, "boxwatch.outcomes", 2, seconds(30));
  ASSERT_TRUE(outcomes.ok()) << outcomes.error().message;
  bool found = false;
  for (const auto& r : *outcomes) found = found || r.value.find("secure-1") != std::string::npos;
  EXPECT_TRUE(found) << "the outcome did not reach boxwatch.outcomes";

  // No password in any output, and no error in the worker's.
  (*worker)->Kill(SIGTERM);
  (*dispatcher)->Kill(SIGTERM);
  (*hub)->Kill(SIGTERM);
  ExpectNoSecret("worker stdout", (*worker)->ReadRest(seconds(5)));
  ExpectNoSecret("dispatcher stdout", (*dispatcher)->ReadRest(seconds(5)));
  ExpectNoSecret("simulate stdout", simulate.ReadRest(seconds(5)));
  for (const auto& entry : std::filesystem::directory_iterator(logs)) {
    if (entry.path().extension() == ".stderr") ExpectNoSecret(entry.path().string(), ReadFile(entry.path()));
  }
  const std::string worker_log = ReadFile(w.StderrFile("sec-1"));
  EXPECT_EQ(worker_log.find("uthorization failed"), std::string::npos) << worker_log;
}

TEST_F(SecuredPipeline, AWorkerWithTheDispatchersCredentialsOrAWrongPasswordStopsWithExitCode4) {
  auto h = WorkerHarness::Create(2, {}, std::string());
  ASSERT_TRUE(h.ok()) << h.error().message;
  (*h)->CaptureStderr();
  auto run = [&](const std::string& instance, const std::string& config) {
    const std::string path = (*h)->dir() + "/" + instance + ".yaml";
    std::ofstream(path) << "bootstrap: \"" << sasl_bootstrap_ << "\"\ninstance_id: " << instance
                        << "\ngroup_id: boxwatch-workers\nstate_dir: " << (*h)->StateDir(instance)
                        << "\nmetrics_listen: \"127.0.0.1:0\"\nkafka_config: " << config << "\n";
    Child child({BOXWATCH_BINARY, "worker", "--config", path}, (*h)->StderrFile(instance));
    const int status = child.Wait(seconds(90));
    const std::string err = ReadFile((*h)->StderrFile(instance));
    ExpectNoSecret(instance + " stderr", err);
    ExpectNoSecret(instance + " stdout", child.ReadRest(seconds(2)));
    return std::make_pair(status, err);
  };

  auto [status, err] = run("as-dispatcher", Client("dispatcher"));
  ASSERT_TRUE(WIFEXITED(status)) << "the worker did not stop by itself: " << err;
  EXPECT_EQ(WEXITSTATUS(status), 4) << err;
  EXPECT_NE(err.find("uthorization failed"), std::string::npos) << err;
  EXPECT_NE(err.find("docs/security.md"), std::string::npos) << err;

  // A wrong password, given by reference as the documentation advises.
  const std::string wrong = (*h)->dir() + "/wrong.password";
  std::ofstream(wrong) << "not-the-password\n";
  const std::string props = (*h)->dir() + "/wrong.properties";
  std::ofstream(props) << ReadFile(Client("worker")) << "sasl.password=${file:" << wrong << "}\n";
  auto [status2, err2] = run("wrong-password", props);
  ASSERT_TRUE(WIFEXITED(status2)) << "the worker did not stop by itself: " << err2;
  EXPECT_EQ(WEXITSTATUS(status2), 4) << err2;
  EXPECT_NE(err2.find("refused this client's credentials"), std::string::npos) << err2;
  EXPECT_EQ(err2.find("not-the-password"), std::string::npos) << "the wrong password is shown: " << err2;
}

TEST_F(SecuredPipeline, TheHubPrincipalReadsNothingAndSecretsStayOffTheCommandLine) {
  const std::string err_file = "/tmp/boxwatch-secure-" + std::to_string(::getpid()) + ".stderr";
  const std::string labels = "/tmp/boxwatch-secure-" + std::to_string(::getpid()) + ".labels";
  std::ofstream(labels) << "";
  {
    Child evaluate({BOXWATCH_BINARY, "evaluate", "--labels", labels, "--bootstrap", sasl_bootstrap_, "--kafka-config",
                    Client("hub")},
                   err_file);
    const int status = evaluate.Wait(seconds(60));
    const std::string err = ReadFile(err_file);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << err;
    EXPECT_NE(err.find("refused this client's principal access to boxwatch.alerts (TOPIC_AUTHORIZATION_FAILED)"),
              std::string::npos)
        << err;
  }
  std::remove(labels.c_str());
  std::remove(err_file.c_str());
  {
    Child describe({BOXWATCH_BINARY, "topics", "describe", "--bootstrap", sasl_bootstrap_, "--kafka-config",
                    Client("hub")},
                   err_file);
    const int status = describe.Wait(seconds(60));
    const std::string err = ReadFile(err_file);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << err;
    EXPECT_NE(err.find("TOPIC_AUTHORIZATION_FAILED"), std::string::npos) << err;
  }
  std::remove(err_file.c_str());
  {
    Child leak({BOXWATCH_BINARY, "topics", "describe", "--bootstrap", sasl_bootstrap_, "--kafka",
                "sasl.password=typed-by-mistake-0451"},
               err_file);
    const int status = leak.Wait(seconds(30));
    const std::string err = ReadFile(err_file);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << err;
    EXPECT_NE(err.find("a secret may not be given on the command line"), std::string::npos) << err;
    EXPECT_EQ(err.find("typed-by-mistake-0451"), std::string::npos) << err;
  }
  std::remove(err_file.c_str());
}

}  // namespace
}  // namespace boxwatch::testing
