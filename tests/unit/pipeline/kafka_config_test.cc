#include "pipeline/kafka_config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "pipeline/kafka_client.h"
#include "pipeline/worker_config.h"

namespace boxwatch::pipeline {
namespace {

// A file under /tmp removed at the end of the test.
class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    char tmpl[] = "/tmp/boxwatch-kafka-config-XXXXXX";
    const int fd = ::mkstemp(tmpl);
    path_ = tmpl;
    ::close(fd);
    std::ofstream(path_) << text;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(KafkaConfig, FileThenEnvironmentThenCommandLineLaterWins) {
  TempFile file("# the cluster's security\nsecurity.protocol = SASL_SSL\n! another comment\n\n"
                "sasl.username=worker\nclient.id=from-file\n");
  auto props = LoadKafkaProperties({.file = file.path(),
                                    .overrides = {"client.id=from-flag"},
                                    .env = {{"BOXWATCH_RDKAFKA_SASL_MECHANISM", "SCRAM-SHA-512"},
                                            {"BOXWATCH_RDKAFKA_CLIENT_ID", "from-env"},
                                            {"BOXWATCH_KAFKA_VERSION", "4.4.0"}}});
  ASSERT_TRUE(props.ok()) << props.error().message;
  EXPECT_EQ(FindKafkaProperty(*props, "security.protocol"), "SASL_SSL");
  EXPECT_EQ(FindKafkaProperty(*props, "sasl.username"), "worker");
  EXPECT_EQ(FindKafkaProperty(*props, "sasl.mechanism"), "SCRAM-SHA-512");
  EXPECT_EQ(FindKafkaProperty(*props, "client.id"), "from-flag");
  // Only BOXWATCH_RDKAFKA_ variables are properties.
  EXPECT_FALSE(FindKafkaProperty(*props, "version").has_value());
}

TEST(KafkaConfig, TheFileMayComeFromTheEnvironment) {
  TempFile file("client.id=env-file\n");
  auto props = LoadKafkaProperties({.file = "", .overrides = {}, .env = {{"BOXWATCH_KAFKA_CONFIG", file.path()}}});
  ASSERT_TRUE(props.ok()) << props.error().message;
  EXPECT_EQ(FindKafkaProperty(*props, "client.id"), "env-file");
}

TEST(KafkaConfig, SecretsAreReadFromFilesAndEnvironmentReferences) {
  TempFile secret("s3cr3t-from-file\n");
  TempFile file("sasl.password=${file:" + secret.path() + "}\nssl.key.password=${env:KEY_PASSWORD}\n");
  auto props = LoadKafkaProperties({.file = file.path(), .overrides = {}, .env = {{"KEY_PASSWORD", "k3y"}}});
  ASSERT_TRUE(props.ok()) << props.error().message;
  EXPECT_EQ(FindKafkaProperty(*props, "sasl.password"), "s3cr3t-from-file");  // trailing newline dropped
  EXPECT_EQ(FindKafkaProperty(*props, "ssl.key.password"), "k3y");
}

TEST(KafkaConfig, ASecretOnTheCommandLineIsRefusedWithoutEchoingIt) {
  auto props = LoadKafkaProperties(
      {.file = "", .overrides = {"sasl.password=hunter2", "ssl.key.pem=-----BEGIN", "hunter3"}, .env = {}});
  ASSERT_FALSE(props.ok());
  const std::string& m = props.error().message;
  EXPECT_NE(m.find("3 problem(s)"), std::string::npos) << m;
  EXPECT_NE(m.find("--kafka sasl.password: a secret may not be given on the command line"), std::string::npos) << m;
  EXPECT_NE(m.find("BOXWATCH_RDKAFKA_SASL_PASSWORD"), std::string::npos) << m;
  EXPECT_NE(m.find("--kafka ssl.key.pem"), std::string::npos) << m;
  EXPECT_EQ(m.find("hunter"), std::string::npos) << m;
  EXPECT_EQ(m.find("BEGIN"), std::string::npos) << m;
  // A reference names where the secret is, not the secret: allowed.
  auto ref = LoadKafkaProperties({.file = "", .overrides = {"sasl.password=${env:PW}"}, .env = {{"PW", "x"}}});
  ASSERT_TRUE(ref.ok()) << ref.error().message;
  EXPECT_EQ(FindKafkaProperty(*ref, "sasl.password"), "x");
}

// A property librdkafka refuses is named, its value never shown: a
// misspelt key may hold a secret, and librdkafka's own message may quote it.
TEST(KafkaConfig, ARefusedPropertyIsNamedWithoutItsValue) {
  auto rk = NewKafkaHandle(RD_KAFKA_PRODUCER,
                           {{"sasl.pasword", "hunter2-misspelt"}, {"security.protocol", "hunter4-protocol"},
                            {"acks", "v"}},
                           nullptr, nullptr);
  ASSERT_FALSE(rk.ok());
  const std::string& m = rk.error().message;
  EXPECT_NE(m.find("sasl.pasword"), std::string::npos) << m;
  EXPECT_NE(m.find("security.protocol"), std::string::npos) << m;
  EXPECT_NE(m.find("acks"), std::string::npos) << m;
  EXPECT_EQ(m.find("hunter"), std::string::npos) << m;
}

TEST(KafkaConfig, ReportsEveryProblemAtOnce) {
  TempFile file("security.protocol=SSL\nthis line has no equals sign\n=value\nsasl.password=${vault:x}\n");
  auto props = LoadKafkaProperties({.file = file.path(),
                                    .overrides = {"ssl.ca.location=${file:/nonexistent/ca.pem}"},
                                    .env = {{"BOXWATCH_RDKAFKA_SASL_USERNAME", "${env:NOT_SET_ANYWHERE}"}}});
  ASSERT_FALSE(props.ok());
  const std::string& m = props.error().message;
  EXPECT_NE(m.find("5 problem(s)"), std::string::npos) << m;
  EXPECT_NE(m.find(file.path() + ":2: expected key=value"), std::string::npos) << m;
  EXPECT_NE(m.find(file.path() + ":3: the property name is empty"), std::string::npos) << m;
  EXPECT_NE(m.find("property sasl.password: unknown reference"), std::string::npos) << m;
  EXPECT_NE(m.find("property ssl.ca.location: cannot read /nonexistent/ca.pem"), std::string::npos) << m;
  EXPECT_NE(m.find("environment variable NOT_SET_ANYWHERE is not set"), std::string::npos) << m;
  auto missing = LoadKafkaProperties({.file = "/nonexistent/kafka.properties", .overrides = {}, .env = {}});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("cannot read /nonexistent/kafka.properties"), std::string::npos);
}

TEST(KafkaConfig, SecretPropertiesAreRecognised) {
  for (const char* key : {"sasl.password", "ssl.key.password", "ssl.keystore.password", "ssl.key.pem",
                          "sasl.oauthbearer.client.secret", "sasl.oauthbearer.config"}) {
    EXPECT_TRUE(IsSecretKafkaProperty(key)) << key;
    EXPECT_EQ(ShownKafkaValue(key, "v"), "(secret)") << key;
  }
  for (const char* key : {"sasl.username", "ssl.ca.location", "security.protocol", "ssl.key.location"}) {
    EXPECT_FALSE(IsSecretKafkaProperty(key)) << key;
  }
}

TEST(KafkaConfig, TheWorkerLayersItsFileMappingAndEnvironment) {
  TempFile secret("pw\n");
  TempFile file("security.protocol=SASL_SSL\nsasl.username=file-user\nclient.id=file\nssl.key.password=${env:KEY_PW}\n");
  auto c = WorkerConfig::Parse("instance_id: w\nkafka_config: " + file.path() +
                                   "\nkafka:\n  sasl.username: yaml-user\n  sasl.password: \"${file:" +
                                   secret.path() + "}\"\n",
                               "w.yaml", {{"BOXWATCH_RDKAFKA_CLIENT_ID", "env"}, {"KEY_PW", "kp"}});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(FindKafkaProperty(c->kafka, "security.protocol"), "SASL_SSL");
  EXPECT_EQ(FindKafkaProperty(c->kafka, "sasl.username"), "yaml-user");
  EXPECT_EQ(FindKafkaProperty(c->kafka, "sasl.password"), "pw");
  EXPECT_EQ(FindKafkaProperty(c->kafka, "client.id"), "env");
  EXPECT_EQ(FindKafkaProperty(c->kafka, "ssl.key.password"), "kp");  // a reference in the file
  // BOXWATCH_KAFKA_CONFIG is the kafka_config option's override.
  auto e = WorkerConfig::Parse("instance_id: w\n", "w.yaml", {{"BOXWATCH_KAFKA_CONFIG", file.path()}, {"KEY_PW", "x"}});
  ASSERT_TRUE(e.ok()) << e.error().message;
  EXPECT_EQ(FindKafkaProperty(e->kafka, "sasl.username"), "file-user");
  auto bad = WorkerConfig::Parse("instance_id: w\nkafka_config: /nonexistent/k.properties\n", "w.yaml", {});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("cannot read /nonexistent/k.properties"), std::string::npos);
}

}  // namespace
}  // namespace boxwatch::pipeline
