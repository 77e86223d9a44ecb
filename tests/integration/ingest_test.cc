// `boxwatch ingest` against real Apache Kafka: simulated traffic sent as
// UN/EDIFACT CUSCAR and ANSI N42.42 gives, through ingest and a worker, the
// very alerts of the native path; bad raw messages go to the dead letters
// with their reason and position while the good ones in the same batch
// convert; a drop directory's files are ingested once, across restarts.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "ingest/cuscar.h"
#include "operators/default_profile.h"
#include "sim/upstream.h"
#include "tests/support/worker_harness.h"

namespace boxwatch::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string Sample(const std::string& name) {
  std::ifstream in(std::string(BOXWATCH_SOURCE_DIR) + "/tests/data/ingest/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::unique_ptr<Child> StartIngest(const WorkerHarness& h, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {BOXWATCH_BINARY, "ingest", "--bootstrap", h.bootstrap(), "--topic-prefix",
                                   h.prefix(), "--metrics-listen", "127.0.0.1:0", "--n42-site", "GEPTI"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto child = std::make_unique<Child>(argv);
  EXPECT_TRUE(child->WaitForLine("{\"event\":\"started\"", 60s)) << "ingest did not start";
  return child;
}

size_t Count(const WorkerHarness& h, pipeline::TopicRole role) {
  auto r = ReadAllCommitted(h.bootstrap(), pipeline::TopicNames(h.prefix()).Name(role), 4, 30s);
  return r.ok() ? r->size() : 0;
}

bool WaitForCount(const WorkerHarness& h, pipeline::TopicRole role, size_t n, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (Count(h, role) >= n) return true;
    std::this_thread::sleep_for(500ms);  // polling a topic
  }
  return false;
}

TEST(IngestOnRealKafka, CuscarAndN42ThroughIngestGiveTheNativeAlerts) {
  auto h = WorkerHarness::Create(4);
  ASSERT_TRUE(h.ok()) << h.error().message;
  const sim::Traffic native = sim::GenerateTraffic(RecentTraffic(600, 31), DefaultProfile());
  const AlertDigest expected = ExpectedAlerts(native, DefaultProfile(), 4);
  ASSERT_GT(expected.size(), 50u);
  const sim::Traffic upstream = sim::InUpstreamFormats(native);
  size_t manifests = 0, scans = 0;
  for (const auto& r : upstream.records) {
    manifests += r.role == pipeline::TopicRole::kRawCuscar;
    scans += r.role == pipeline::TopicRole::kRawN42;
  }
  ASSERT_GT(manifests, 600u);
  ASSERT_EQ(scans, 600u);
  ASSERT_TRUE((*h)->Produce(upstream.records).ok());
  auto ingest = StartIngest(**h);
  // Every raw message converted before the worker starts: the worker's merge
  // then sees what it sees on the native path (a manifest converted after a
  // box's GPS trip was processed would be late, as it would be natively).
  ASSERT_TRUE(WaitForCount(**h, pipeline::TopicRole::kManifests, manifests, 180s)) << "ingest did not convert every CUSCAR";
  ASSERT_TRUE(WaitForCount(**h, pipeline::TopicRole::kScans, scans, 60s)) << "ingest did not convert every N42";
  EXPECT_EQ(Count(**h, pipeline::TopicRole::kDeadLetter), 0u);
  auto worker = (*h)->StartWorker("ingested-0");
  ASSERT_TRUE(worker.ok()) << worker.error().message;
  auto alerts = (*h)->WaitForAlerts(expected.size(), 240s);
  ASSERT_TRUE(alerts.ok()) << alerts.error().message;
  (*worker)->Kill(SIGTERM);
  EXPECT_TRUE(Digest(*alerts) == expected) << "alerts through ingest differ from the native path's";
  EXPECT_EQ(Digest(*alerts).size(), expected.size());
  ingest->Kill(SIGTERM);
  ASSERT_TRUE(ingest->WaitForLine("{\"event\":\"stopped\"", 30s));
  EXPECT_NE(ingest->last_line().find("\"ok\":true"), std::string::npos) << ingest->last_line();
}

TEST(IngestOnRealKafka, BadRawMessagesAreDeadLetteredWithReasonAndPositionAndTheRestConverts) {
  auto h = WorkerHarness::Create(4);
  ASSERT_TRUE(h.ok()) << h.error().message;
  const std::string good = Sample("cuscar_d95b_two_consignments.edi");
  const std::string head = "UNB+UNOC:3+S+R+261118:0930+X1'UNH+1+CUSCAR:D:95B:UN'BGM+85+D1+9'DTM+137:202611180930:203'";
  struct Bad {
    pipeline::TopicRole role;
    std::string value;
    std::string reason, position;
  };
  const std::vector<Bad> bad = {
      {pipeline::TopicRole::kRawCuscar, good.substr(0, good.size() / 2), "edifact_truncated", "segment"},
      {pipeline::TopicRole::kRawCuscar, head + "EQD+CN+MSKU1234565'UNT+9+1'UNZ+1+X1'", "edifact_count", "segment 6 (UNT)"},
      {pipeline::TopicRole::kRawCuscar, head + "EQD+CN+MSKU1234566'CNI+1+B'UNT+6+1'UNZ+1+X1'", "cuscar_container",
       "segment 5 (EQD)"},
      {pipeline::TopicRole::kRawCuscar, head + "LOC+99+GEPTI'EQD+CN+MSKU1234565'CNI+1+B'UNT+7+1'UNZ+1+X1'",
       "cuscar_qualifier", "segment 5 (LOC)"},
      {pipeline::TopicRole::kRawCuscar, "UNB+UNOB:3+S+R+261118:0930+X1'UNH+1+CUSCAR:D:95B:UN'BGM+85+D\xe9+9'UNT+3+1'UNZ+1+X1'",
       "edifact_charset", "segment 3 (BGM)"},
      {pipeline::TopicRole::kRawN42,
       "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><r>&x;</r>", "n42_doctype", ""},
      {pipeline::TopicRole::kRawN42,
       "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">"
       "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]><l>&c;</l>",
       "n42_doctype", ""},
      {pipeline::TopicRole::kRawN42, "<RadInstrumentData>\xff\xfe</RadInstrumentData>", "n42_xml", "line 1"},
  };
  std::vector<sim::TrafficRecord> records;
  records.push_back({pipeline::TopicRole::kRawCuscar, "MAN-A", good, 1795080600000, false, ""});
  for (size_t i = 0; i < bad.size(); ++i) {
    records.push_back({bad[i].role, "bad-" + std::to_string(i), bad[i].value, 1795080600000, false, ""});
  }
  records.push_back({pipeline::TopicRole::kRawN42, "RPM-A", Sample("n42_2012_alarm.n42"), 1795244700500, false, ""});
  ASSERT_TRUE((*h)->Produce(records).ok());
  auto ingest = StartIngest(**h);
  ASSERT_TRUE(WaitForCount(**h, pipeline::TopicRole::kDeadLetter, bad.size(), 120s));
  auto dead = (*h)->DeadLetters();
  ASSERT_TRUE(dead.ok()) << dead.error().message;
  EXPECT_EQ(dead->size(), bad.size());
  for (const auto& b : bad) {
    bool found = false;
    for (const auto& d : *dead) {
      if (d.header("boxwatch-reason").value_or("") != b.reason) continue;
      if (std::string(d.header("boxwatch-position").value_or("")).find(b.position) == std::string::npos) continue;
      if (d.value != b.value) continue;  // the dead letter keeps the original bytes
      found = true;
      EXPECT_FALSE(std::string(d.header("boxwatch-detail").value_or("")).empty());
      EXPECT_TRUE(d.header("boxwatch-source-offset").has_value());
    }
    EXPECT_TRUE(found) << "no dead letter " << b.reason << " at " << b.position;
  }
  EXPECT_TRUE(WaitForCount(**h, pipeline::TopicRole::kManifests, 3, 30s));
  EXPECT_EQ(Count(**h, pipeline::TopicRole::kManifests), 3u);
  // The scan is produced last, maybe in a transaction after the dead letters'.
  EXPECT_TRUE(WaitForCount(**h, pipeline::TopicRole::kScans, 1, 30s));
  EXPECT_EQ(Count(**h, pipeline::TopicRole::kScans), 1u);
  ingest->Kill(SIGTERM);
}

TEST(IngestOnRealKafka, DropDirectoryFilesAreIngestedOnceAcrossRestarts) {
  auto h = WorkerHarness::Create(4);
  ASSERT_TRUE(h.ok()) << h.error().message;
  const fs::path drop = fs::path((*h)->dir()) / "drop";
  fs::create_directories(drop);
  auto put = [&](const std::string& name, const std::string& bytes) {
    std::ofstream(drop / ("." + name), std::ios::binary) << bytes;  // hidden while written, then renamed
    fs::rename(drop / ("." + name), drop / name);
  };
  put("carrier-0001.edi", Sample("cuscar_d95b_two_consignments.edi"));
  put("portal-0001.n42", Sample("n42_2006_alarm.n42"));
  put("portal-0002.n42", "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"http://127.0.0.1:1/\">]><r>&x;</r>");
  {
    auto ingest = StartIngest(**h, {"--watch", drop.string(), "--no-kafka-input"});
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline &&
           !(fs::exists(drop / "done" / "carrier-0001.edi") && fs::exists(drop / "done" / "portal-0001.n42") &&
             fs::exists(drop / "failed" / "portal-0002.n42"))) {
      std::this_thread::sleep_for(200ms);  // polling the directory
    }
    EXPECT_TRUE(fs::exists(drop / "done" / "carrier-0001.edi"));
    EXPECT_TRUE(fs::exists(drop / "done" / "portal-0001.n42"));
    EXPECT_TRUE(fs::exists(drop / "failed" / "portal-0002.n42"));
    ingest->Kill(SIGTERM);
    ASSERT_TRUE(ingest->WaitForLine("{\"event\":\"stopped\"", 30s));
  }
  EXPECT_EQ(Count(**h, pipeline::TopicRole::kManifests), 3u);
  EXPECT_EQ(Count(**h, pipeline::TopicRole::kScans), 1u);
  auto dead = (*h)->DeadLetters();
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ(dead->at(0).header("boxwatch-source-file").value_or(""), "portal-0002.n42");
  // The same file again, as after a crash between the commit and the move:
  // the ledger knows it; nothing is produced twice.
  fs::copy_file(drop / "done" / "carrier-0001.edi", drop / "carrier-0001.edi");
  auto again = StartIngest(**h, {"--watch", drop.string(), "--no-kafka-input"});
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline && fs::exists(drop / "carrier-0001.edi")) {
    std::this_thread::sleep_for(200ms);  // polling the directory
  }
  EXPECT_FALSE(fs::exists(drop / "carrier-0001.edi")) << "the file was not handled";
  again->Kill(SIGTERM);
  ASSERT_TRUE(again->WaitForLine("{\"event\":\"stopped\"", 30s));
  EXPECT_NE(again->last_line().find("\"records\":0"), std::string::npos) << again->last_line();
  EXPECT_EQ(Count(**h, pipeline::TopicRole::kManifests), 3u);
}

}  // namespace
}  // namespace boxwatch::testing
