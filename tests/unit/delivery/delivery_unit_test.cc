// Delivery pieces without a broker: resume cursors, the hubs file, the hub
// store's exactly-once writes and ordering, and the HTTP server and client.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <random>
#include <thread>

#include "core/http.h"
#include "delivery/dispatcher.h"
#include "delivery/hub_store.h"
#include "delivery/resume_cursor.h"

namespace boxwatch::delivery {
namespace {

TEST(DeliveryCursor, EmptyTokenStartsEveryPartitionAtTheOldestAlert) {
  auto c = DeliveryCursor::FromToken("", "boxwatch.alerts");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->StartOffset(0), -1);
  EXPECT_FALSE(c->IsDone(0, 0));
}

TEST(DeliveryCursor, OutOfOrderSendsFoldOnceTheGapCloses) {
  DeliveryCursor c("t");
  c.SkipBelow(0, 0);
  c.MarkDone(0, 5);  // a CRITICAL sent ahead of 0..4
  EXPECT_EQ(c.StartOffset(0), 0);
  EXPECT_TRUE(c.IsDone(0, 5));
  EXPECT_FALSE(c.IsDone(0, 4));
  EXPECT_EQ(c.OpenRanges(), 1u);
  for (int o = 0; o < 5; ++o) c.MarkDone(0, o);
  EXPECT_EQ(c.StartOffset(0), 6);
  EXPECT_EQ(c.OpenRanges(), 0u);
}

TEST(DeliveryCursor, TransactionMarkersBetweenRecordsAreMarkedAsGaps) {
  DeliveryCursor c("t");
  c.SkipBelow(0, 0);
  c.MarkDoneRange(0, 0, 3);  // 0..2, then a commit marker at 3
  c.MarkDoneRange(0, 3, 4);
  c.MarkDone(0, 4);
  EXPECT_EQ(c.StartOffset(0), 5);
  EXPECT_EQ(c.OpenRanges(), 0u);
}

TEST(DeliveryCursor, TokenRoundTripKeepsEveryHandledOffset) {
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  DeliveryCursor c("boxwatch.alerts");
  std::set<std::pair<int, int64_t>> done;
  for (int p = 0; p < 3; ++p) c.SkipBelow(p, 10);
  for (int i = 0; i < 400; ++i) {
    const int p = static_cast<int>(rng() % 3);
    const int64_t o = 10 + static_cast<int64_t>(rng() % 200);
    c.MarkDone(p, o);
    done.insert({p, o});
  }
  auto back = DeliveryCursor::FromToken(c.Token(), "boxwatch.alerts");
  ASSERT_TRUE(back.ok()) << back.error().message;
  for (int p = 0; p < 3; ++p) {
    for (int64_t o = 0; o < 220; ++o) {
      const bool want = o < 10 || done.count({p, o}) > 0;
      ASSERT_EQ(back->IsDone(p, o), want) << "partition " << p << " offset " << o;
    }
  }
  EXPECT_EQ(back->Token(), c.Token());
}

// A backlog of 1,000 alerts of random priorities goes in passes, CRITICAL
// first; 100 live alerts are sent meanwhile; the hub reconnects with its
// token at random moments. Every alert is delivered, the backlog in
// non-increasing priority, and the token stays small.
TEST(DeliveryCursor, ABacklogSweepDeliversEachPriorityInTurnAcrossReconnects) {
  const uint32_t seed = 4242;
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::vector<int> priority(1100);
  for (auto& p : priority) p = 1 + static_cast<int>(rng() % 4);
  DeliveryCursor c("t");
  c.SkipBelow(0, 0);
  c.MarkDone(0, 7);  // sent before the hub went away
  c.StartSweep({{0, 1000}}, 4);
  ASSERT_TRUE(c.sweeping());
  EXPECT_EQ(c.LiveStart(0), 1000);
  std::vector<int> backlog_order;
  std::set<int64_t> delivered = {7};
  int64_t live = 1000;
  size_t max_ranges = 0;
  auto reconnect = [&] {
    auto back = DeliveryCursor::FromToken(c.Token(), "t");
    ASSERT_TRUE(back.ok()) << back.error().message;
    c = std::move(*back);
  };
  for (int pass = 4; pass >= 1; --pass) {
    ASSERT_EQ(c.sweep_priority(), pass);
    for (int64_t o = c.PassStart(0); o < c.SweepEnd(0); ++o) {
      if (c.IsDone(0, o, priority[o]) || priority[o] != pass) continue;
      c.MarkDone(0, o);
      c.PassReached(0, o + 1);
      if (delivered.insert(o).second) backlog_order.push_back(priority[o]);
      if (rng() % 7 == 0 && live < 1100) {  // a new alert flows past the sweep
        c.MarkDone(0, live);
        delivered.insert(live++);
      }
      max_ranges = std::max(max_ranges, c.OpenRanges());
      if (rng() % 50 == 0) reconnect();
    }
    c.PassReached(0, c.SweepEnd(0));
    c.NextPass(pass > 1 ? pass - 1 : 0);
  }
  EXPECT_FALSE(c.sweeping());
  while (live < 1100) {
    c.MarkDone(0, live);
    delivered.insert(live++);
  }
  EXPECT_EQ(delivered.size(), 1100u);
  EXPECT_TRUE(std::is_sorted(backlog_order.rbegin(), backlog_order.rend())) << "a pass went out of priority order";
  EXPECT_EQ(c.StartOffset(0), 1100);
  EXPECT_EQ(c.OpenRanges(), 0u);
  EXPECT_LE(max_ranges, 2u) << "the token grew with the sweep";
  for (int64_t o = 0; o < 1100; ++o) EXPECT_TRUE(c.IsDone(0, o, priority[o]));
}

// A partition with nothing behind (its backlog is empty) takes live alerts
// from the sweep's start: the handled prefix then runs past the backlog's
// end, and the token must still resume (it was once refused, and the hub
// could never reconnect).
TEST(DeliveryCursor, APartitionWithAnEmptyBacklogKeepsItsTokenResumable) {
  DeliveryCursor c("t");
  c.SkipBelow(0, 0);
  c.SkipBelow(1, 0);
  c.MarkDoneRange(1, 0, 50);  // partition 1 was up to date
  c.StartSweep({{0, 1000}, {1, 50}}, 4);
  for (int64_t o = 50; o < 80; ++o) c.MarkDone(1, o);  // live alerts on partition 1
  c.MarkDone(0, 0);                                     // the pass's first alert
  c.PassReached(0, 1);
  EXPECT_GE(c.PassStart(0), c.StartOffset(0));
  auto back = DeliveryCursor::FromToken(c.Token(), "t");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->Token(), c.Token());
  EXPECT_TRUE(back->IsDone(1, 79, 1));
  EXPECT_FALSE(back->IsDone(1, 80, 4));
  EXPECT_FALSE(back->IsDone(0, 1, 4));
  EXPECT_FALSE(back->IsDone(0, 1, 3)) << "a lower priority waits for its own pass";
  EXPECT_EQ(back->LiveStart(1), 80);
  EXPECT_LE(back->OpenRanges(), 1u);
  back->NextPass(0);
  EXPECT_TRUE(back->IsDone(0, 1, 3)) << "the sweep is over: the whole backlog is handled";
  EXPECT_TRUE(back->IsDone(1, 79, 1));
}

// A token whose sweep fields are out of order (as an earlier version could
// write) is put in order rather than refused.
TEST(DeliveryCursor, ASweepTokenOutOfOrderIsRepairedNotRefused) {
  DeliveryCursor c("t");
  c.SkipBelow(0, 0);
  c.StartSweep({{0, 100}}, 4);
  c.PassReached(0, 60);
  std::string token = c.Token();
  auto ok = DeliveryCursor::FromToken(token, "t");
  ASSERT_TRUE(ok.ok());
  // Simulate the old defect: next_offset moved to 70, past pass_next 60.
  for (int64_t o = 0; o < 70; ++o) c.MarkDone(0, o);
  auto back = DeliveryCursor::FromToken(c.Token(), "t");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->StartOffset(0), 70);
  EXPECT_GE(back->PassStart(0), 70);
  EXPECT_TRUE(back->IsDone(0, 69, 1));
  EXPECT_FALSE(back->IsDone(0, 70, 4));
}

// During a sweep a partition the sweep does not cover (the topic grew) joins
// it with an empty backlog at its oldest alert instead of reading from the
// end, which would lose its alerts.
TEST(DeliveryCursor, APartitionAddedDuringASweepStartsAtItsOldestAlert) {
  DeliveryCursor c("t");
  c.SkipBelow(0, 0);
  c.StartSweep({{0, 100}}, 4);
  auto back = DeliveryCursor::FromToken(c.Token(), "t");
  ASSERT_TRUE(back.ok());
  back->SkipBelow(1, 0);
  EXPECT_EQ(back->LiveStart(1), 0);
  EXPECT_EQ(back->SweepEnd(1), 0);
  EXPECT_FALSE(back->IsDone(1, 0, 1));
}

// Alerts with no priority, or one above CRITICAL, still get a pass.
TEST(DeliveryCursor, EveryPriorityHasAPass) {
  EXPECT_EQ(DeliveryCursor::PassOf(0), 1);
  EXPECT_EQ(DeliveryCursor::PassOf(9), 4);
  EXPECT_EQ(DeliveryCursor::PassOf(3), 3);
  DeliveryCursor c("t");
  c.SkipBelow(0, 0);
  c.StartSweep({{0, 10}}, 4);
  EXPECT_FALSE(c.IsDone(0, 5, 9)) << "above CRITICAL: in the first pass";
  c.NextPass(1);
  EXPECT_FALSE(c.IsDone(0, 5, 0)) << "unspecified: in the LOW pass";
}

TEST(DeliveryCursor, RetentionMovesTheStartPastDeletedRecords) {
  DeliveryCursor c("t");
  c.SkipBelow(0, 0);
  c.MarkDone(0, 50);
  c.SkipBelow(0, 40);
  EXPECT_EQ(c.StartOffset(0), 40);
  c.SkipBelow(0, 51);
  EXPECT_EQ(c.StartOffset(0), 51);
  EXPECT_EQ(c.OpenRanges(), 0u);
}

TEST(DeliveryCursor, ForeignOrCorruptTokensAreRefusedWithTheReason) {
  DeliveryCursor c("lab.boxwatch.alerts");
  c.MarkDone(0, 1);
  auto other = DeliveryCursor::FromToken(c.Token(), "boxwatch.alerts");
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.error().message.find("is for topic lab.boxwatch.alerts"), std::string::npos);
  auto junk = DeliveryCursor::FromToken(std::string("\xff\xff\xff", 3), "boxwatch.alerts");
  ASSERT_FALSE(junk.ok());
  EXPECT_NE(junk.error().message.find("does not decode"), std::string::npos);
}

TEST(HubGrants, ParsesHubsAndRegions) {
  auto g = ParseHubGrants("hubs:\n  - id: hub-a\n    regions: [mekong, gulf]\n  - id: hub-b\n    regions: [europe]\n",
                          "hubs.yaml");
  ASSERT_TRUE(g.ok()) << g.error().message;
  EXPECT_EQ(g->at("hub-a"), (std::set<std::string>{"gulf", "mekong"}));
  EXPECT_EQ(g->at("hub-b"), (std::set<std::string>{"europe"}));
}

TEST(HubGrants, ListsEveryProblemWithItsLine) {
  auto g = ParseHubGrants(
      "hubs:\n  - id: hub-a\n    regions: []\n  - regions: [gulf]\n  - id: hub-c\n    regoins: [x]\n    regions: [x]\n",
      "hubs.yaml");
  ASSERT_FALSE(g.ok());
  const std::string& m = g.error().message;
  EXPECT_NE(m.find("hubs.yaml:2: hub hub-a needs a non-empty list `regions`"), std::string::npos) << m;
  EXPECT_NE(m.find("hubs.yaml:4: hub without an `id`"), std::string::npos) << m;
  EXPECT_NE(m.find("hubs.yaml:6: unknown key `regoins`"), std::string::npos) << m;
}

class HubStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/boxwatch-hubstore-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  static v1::Alert Alert(const std::string& id, v1::Priority p, int64_t t, const std::string& box = "CSQU3054383") {
    v1::Alert a;
    a.set_alert_id(id);
    a.set_container_number(box);
    a.set_priority(p);
    a.set_event_time_ms(t);
    return a;
  }
  std::string dir_;
};

TEST_F(HubStoreTest, StoresOnceAndKeepsTheTokenAcrossReopen) {
  {
    auto store = HubStore::Open(dir_);
    ASSERT_TRUE(store.ok()) << store.error().message;
    auto r = (*store)->Store({Alert("a-1", v1::PRIORITY_LOW, 1), Alert("a-2", v1::PRIORITY_HIGH, 2)}, "tok-2");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->stored, (std::vector<size_t>{0, 1}));
    // Redelivered after a reconnect: a-2 again, with a new one.
    r = (*store)->Store({Alert("a-2", v1::PRIORITY_HIGH, 2), Alert("a-3", v1::PRIORITY_MEDIUM, 3),
                         Alert("a-3", v1::PRIORITY_MEDIUM, 3)},
                        "tok-3");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->stored, (std::vector<size_t>{1}));
    EXPECT_EQ(r->duplicates, 2u);
  }
  auto store = HubStore::Open(dir_);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->count(), 3u);
  EXPECT_EQ(*(*store)->Token(), "tok-3");
  auto a = (*store)->Get("a-3");
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ((*a)->priority(), v1::PRIORITY_MEDIUM);
  EXPECT_FALSE((*(*store)->Get("zzz")).has_value());
}

TEST_F(HubStoreTest, ListsByPriorityThenNewestFirstWithFiltersAndPaging) {
  auto store = HubStore::Open(dir_);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)
                  ->Store({Alert("low-old", v1::PRIORITY_LOW, 1), Alert("crit", v1::PRIORITY_CRITICAL, 2),
                           Alert("low-new", v1::PRIORITY_LOW, 9), Alert("high", v1::PRIORITY_HIGH, 5, "MSCU1234566")},
                          "t")
                  .ok());
  auto ids = [](const std::vector<v1::Alert>& v) {
    std::vector<std::string> out;
    for (const auto& a : v) out.push_back(a.alert_id());
    return out;
  };
  size_t total = 0;
  auto all = (*store)->List({}, &total);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(ids(*all), (std::vector<std::string>{"crit", "high", "low-new", "low-old"}));
  EXPECT_EQ(total, 4u);
  auto high = (*store)->List({.min_priority = v1::PRIORITY_HIGH}, &total);
  EXPECT_EQ(ids(*high), (std::vector<std::string>{"crit", "high"}));
  EXPECT_EQ(total, 2u);
  auto box = (*store)->List({.container = "MSCU1234566"});
  EXPECT_EQ(ids(*box), (std::vector<std::string>{"high"}));
  auto page = (*store)->List({.limit = 2, .offset = 1}, &total);
  EXPECT_EQ(ids(*page), (std::vector<std::string>{"high", "low-new"}));
  EXPECT_EQ(total, 4u);
}

TEST(HttpServer, ServesRoutesQueriesBodiesAndStreams) {
  auto server = http::Server::Start({}, [](const http::Request& r) {
    if (r.path == "/echo") return http::Response::Json(200, "{\"q\":\"" + r.Param("q") + "\",\"body\":\"" + r.body + "\"}");
    if (r.path == "/stream") {
      http::Response s;
      s.content_type = "text/event-stream";
      s.stream = [](http::StreamWriter& w) {
        for (int i = 0; i < 3; ++i) (void)w.Write("data: " + std::to_string(i) + "\n\n");
      };
      return s;
    }
    return http::Response::Error(404, "no " + r.path);
  });
  ASSERT_TRUE(server.ok()) << server.error().message;
  const int port = (*server)->port();
  auto r = http::Fetch("POST", "127.0.0.1", port, "/echo?q=a%20b+c", "xyz");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "{\"q\":\"a b c\",\"body\":\"xyz\"}");
  r = http::Fetch("GET", "127.0.0.1", port, "/nothing");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->body, "{\"error\":\"no /nothing\"}");
  r = http::Fetch("GET", "127.0.0.1", port, "/stream");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->headers["content-type"], "text/event-stream");
  EXPECT_EQ(r->body, "data: 0\n\ndata: 1\n\ndata: 2\n\n");
  (*server)->Stop();
  EXPECT_FALSE(http::Fetch("GET", "127.0.0.1", port, "/echo").ok());
}

TEST(HttpServer, RefusesAnAddressInUseWithTheReason) {
  auto first = http::Server::Start({}, [](const http::Request&) { return http::Response::Text(200, ""); });
  ASSERT_TRUE(first.ok());
  auto second = http::Server::Start({.listen = "127.0.0.1:" + std::to_string((*first)->port())},
                                    [](const http::Request&) { return http::Response::Text(200, ""); });
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("Address already in use"), std::string::npos) << second.error().message;
}

}  // namespace
}  // namespace boxwatch::delivery
