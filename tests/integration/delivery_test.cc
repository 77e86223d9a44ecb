// Alert delivery against the real broker and real gRPC: region routing and
// refusal, exactly-once at the hub through SIGKILLs of hubs and dispatcher,
// priority overtaking, mutual TLS, a third-party (Python) client, and the
// outcome feedback loop into the worker.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <algorithm>
#include <random>
#include <thread>

#include "boxwatch/v1/state.pb.h"
#include "core/http.h"
#include "operators/default_profile.h"
#include "operators/profile.h"
#include "pipeline/state_parts.h"
#include "pipeline/topics.h"
#include "tests/support/delivery_harness.h"

namespace boxwatch::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Grants = std::map<std::string, std::set<std::string>>;

std::set<std::string> IdsFor(const std::vector<v1::Alert>& alerts, const std::set<std::string>& regions,
                             v1::Priority min_priority = v1::PRIORITY_LOW) {
  std::set<std::string> ids;
  for (const auto& a : alerts) {
    if (a.priority() < min_priority) continue;
    for (const auto& r : a.regions())
      if (regions.count(r)) ids.insert(a.alert_id());
  }
  return ids;
}

// Polls the hub until it holds `expected` ids and then still holds exactly
// them a moment later (no late extras), or the deadline passes.
std::set<std::string> WaitForHub(DeliveryHarness& h, int http_port, const std::set<std::string>& expected,
                                 seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::set<std::string> got;
  for (;;) {
    auto ids = h.HubAlertIds(http_port);
    if (ids.ok()) got = *ids;
    if (got.size() >= expected.size() || std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(milliseconds(300));  // polling the hub's API
  }
  std::this_thread::sleep_for(milliseconds(1500));  // anything extra would arrive now
  if (auto ids = h.HubAlertIds(http_port); ids.ok()) got = *ids;
  return got;
}

size_t Missing(const std::set<std::string>& want, const std::set<std::string>& got) {
  size_t n = 0;
  for (const auto& id : want) n += got.count(id) ? 0 : 1;
  return n;
}

// Exit code of a child that is expected to end by itself.
int ExitCode(Child& c) {
  const int status = c.Wait(seconds(30));
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

TEST(DeliveryRouting, AlertsReachExactlyTheHubsAllowedToSeeThemAndForeignRegionsAreRefused) {
  const Grants grants = {{"hub-mekong", {"mekong"}}, {"hub-gulf", {"gulf"}}, {"hub-asia", {"central-asia", "mekong"}}};
  auto h = DeliveryHarness::Create(4, grants);
  ASSERT_TRUE(h.ok()) << h.error().message;
  std::vector<v1::Alert> alerts;
  const std::vector<std::vector<std::string>> routes = {{"mekong"}, {"gulf"}, {"central-asia"}, {"gulf", "central-asia"},
                                                        {"europe"}};
  for (int i = 0; i < 500; ++i)
    alerts.push_back(MakeAlert(i, static_cast<v1::Priority>(1 + i % 4), routes[i % routes.size()]));
  ASSERT_TRUE((*h)->ProduceAlerts(alerts, 50).ok());

  int port = 0;
  auto dispatcher = (*h)->StartDispatcher(0, &port);
  ASSERT_TRUE(dispatcher.ok()) << dispatcher.error().message;

  // A hub naming a region it may not read is refused, and says which.
  int refused_port = 0;
  auto refused = (*h)->StartHub("hub-mekong", "mekong,gulf", port, &refused_port);
  ASSERT_TRUE(refused.ok()) << refused.error().message;
  ASSERT_TRUE((*refused)->WaitForLine("{\"event\":\"refused\"", seconds(30)));
  EXPECT_NE((*refused)->last_line().find("PERMISSION_DENIED"), std::string::npos) << (*refused)->last_line();
  EXPECT_NE((*refused)->last_line().find("may not read region gulf"), std::string::npos) << (*refused)->last_line();
  EXPECT_EQ(ExitCode(**refused), 3);
  {
    auto stub = (*h)->Stub(port, "hub-gulf");
    grpc::ClientContext ctx;
    auto stream = stub->Subscribe(&ctx);
    v1::SubscribeRequest req;
    req.mutable_subscription()->set_hub_id("hub-gulf");
    req.mutable_subscription()->add_regions("mekong");
    ASSERT_TRUE(stream->Write(req));
    v1::SubscribeResponse resp;
    EXPECT_FALSE(stream->Read(&resp));
    const grpc::Status st = stream->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_EQ(st.error_message(), "hub hub-gulf may not read region mekong (it may read: gulf)");
  }

  std::map<std::string, int> http;
  std::vector<std::unique_ptr<Child>> hubs;
  for (const auto& [id, regions, extra] :
       std::vector<std::tuple<std::string, std::string, std::vector<std::string>>>{
           {"hub-mekong", "mekong", {}},
           {"hub-gulf", "gulf", {}},
           {"hub-asia", "central-asia,mekong", {"--min-priority", "MEDIUM"}}}) {
    auto hub = (*h)->StartHub(id, regions, port, &http[id], extra);
    ASSERT_TRUE(hub.ok()) << hub.error().message;
    hubs.push_back(std::move(*hub));
  }
  const std::map<std::string, std::set<std::string>> expected = {
      {"hub-mekong", IdsFor(alerts, {"mekong"})},
      {"hub-gulf", IdsFor(alerts, {"gulf"})},
      {"hub-asia", IdsFor(alerts, {"central-asia", "mekong"}, v1::PRIORITY_MEDIUM)}};
  EXPECT_EQ(expected.at("hub-mekong").size(), 100u);
  EXPECT_EQ(expected.at("hub-gulf").size(), 200u);
  for (const auto& [id, want] : expected) {
    const auto got = WaitForHub(**h, http[id], want, seconds(60));
    EXPECT_EQ(got.size(), want.size()) << id;
    EXPECT_EQ(Missing(want, got), 0u) << id;
    EXPECT_TRUE(got == want) << id << " holds alerts it may not see";
  }
}

TEST(DeliveryExactlyOnce, HubsAndDispatcherKilledRepeatedlyEachHubEndsWithExactlyItsAlerts) {
  const Grants grants = {{"hub-a", {"mekong"}}, {"hub-b", {"gulf", "mekong"}}};
  auto h = DeliveryHarness::Create(4, grants);
  ASSERT_TRUE(h.ok()) << h.error().message;
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::printf("seed %u\n", seed);
  std::mt19937 rng(seed);

  // 12,600 alerts in transactions of 100; every 7th transaction aborted, so
  // 10,800 count. Produced while the processes are being killed.
  std::vector<v1::Alert> alerts;
  for (int i = 0; i < 12600; ++i)
    alerts.push_back(MakeAlert(i, static_cast<v1::Priority>(1 + i % 4), {i % 3 == 0 ? "gulf" : "mekong"}));
  std::vector<v1::Alert> committed;
  for (size_t i = 0; i < alerts.size(); ++i)
    if ((i / 100 + 1) % 7 != 0) committed.push_back(alerts[i]);
  ASSERT_EQ(committed.size(), 10800u);

  const int fixed_port = DeliveryHarness::FreePort();
  int port = 0;
  auto dispatcher = (*h)->StartDispatcher(fixed_port, &port);
  ASSERT_TRUE(dispatcher.ok()) << dispatcher.error().message;
  std::map<std::string, int> http;
  std::map<std::string, std::unique_ptr<Child>> hubs;
  const std::map<std::string, std::string> regions = {{"hub-a", "mekong"}, {"hub-b", "gulf,mekong"}};
  auto start_hub = [&](const std::string& id) {
    auto hub = (*h)->StartHub(id, regions.at(id), port, &http[id], {"--ack-window", "64", "--max-batch", "50"});
    ASSERT_TRUE(hub.ok()) << hub.error().message;
    hubs[id] = std::move(*hub);
  };
  start_hub("hub-a");
  start_hub("hub-b");

  Status produced = Status::Ok();
  std::thread producer([&] {
    for (size_t at = 0; at < alerts.size() && produced.ok(); at += 1400) {
      std::vector<v1::Alert> chunk(alerts.begin() + static_cast<long>(at),
                                   alerts.begin() + static_cast<long>(std::min(alerts.size(), at + 1400)));
      produced = (*h)->ProduceAlerts(chunk, 100, 7);
      std::this_thread::sleep_for(milliseconds(300));  // spread the input over the kills
    }
  });
  int kills = 0;
  for (int round = 0; round < 6; ++round) {
    std::this_thread::sleep_for(milliseconds(300 + rng() % 900));
    const std::string victim = round % 2 == 0 ? "hub-a" : "hub-b";
    hubs[victim]->Kill(SIGKILL);
    ++kills;
    start_hub(victim);
    if (round == 2 || round == 4) {
      std::this_thread::sleep_for(milliseconds(200 + rng() % 600));
      (*dispatcher)->Kill(SIGKILL);
      ++kills;
      auto again = (*h)->StartDispatcher(fixed_port, &port);
      ASSERT_TRUE(again.ok()) << again.error().message;
      dispatcher = std::move(again);
    }
  }
  producer.join();
  ASSERT_TRUE(produced.ok()) << produced.ToString();
  EXPECT_EQ(kills, 8);

  const std::map<std::string, std::set<std::string>> expected = {{"hub-a", IdsFor(committed, {"mekong"})},
                                                                 {"hub-b", IdsFor(committed, {"gulf", "mekong"})}};
  for (const auto& [id, want] : expected) {
    const auto got = WaitForHub(**h, http[id], want, seconds(120));
    EXPECT_EQ(got.size(), want.size()) << id;
    EXPECT_EQ(Missing(want, got), 0u) << id << " lost alerts";
    EXPECT_TRUE(got == want) << id << " holds alerts outside its set (aborted or foreign)";
    // The store's own count agrees with the distinct ids: nothing stored twice.
    auto status = (*h)->HubFetch("GET", http[id], "/api/status");
    ASSERT_TRUE(status.ok());
    EXPECT_NE(status->body.find("\"alerts_stored\":" + std::to_string(want.size())), std::string::npos)
        << status->body;
  }
}

// Reads from a Subscribe stream until `n` alerts arrived (no acks sent).
std::vector<v1::AlertEnvelope> ReadAlerts(grpc::ClientReaderWriter<v1::SubscribeRequest, v1::SubscribeResponse>& s,
                                          size_t n) {
  std::vector<v1::AlertEnvelope> out;
  v1::SubscribeResponse r;
  while (out.size() < n && s.Read(&r)) {
    if (r.has_alert()) out.push_back(r.alert());
  }
  return out;
}

// Opens a Subscribe stream for `hub` reading region mekong from `token`.
std::unique_ptr<grpc::ClientReaderWriter<v1::SubscribeRequest, v1::SubscribeResponse>> SubscribeMekong(
    v1::AlertService::Stub& stub, grpc::ClientContext& ctx, const std::string& hub, const std::string& token,
    uint32_t window) {
  auto stream = stub.Subscribe(&ctx);
  v1::SubscribeRequest req;
  auto* sub = req.mutable_subscription();
  sub->set_hub_id(hub);
  sub->add_regions("mekong");
  sub->set_resume_token(token);
  sub->set_ack_window(window);
  EXPECT_TRUE(stream->Write(req));
  return stream;
}

// A hub that was connected once: one LOW alert produced, received, and the
// stream closed. Returns the token it would have stored.
std::string ConnectedOnce(DeliveryHarness& h, v1::AlertService::Stub& stub, const std::string& hub) {
  EXPECT_TRUE(h.ProduceAlerts({MakeAlert(0, v1::PRIORITY_LOW, {"mekong"})}).ok());
  grpc::ClientContext ctx;
  auto stream = SubscribeMekong(stub, ctx, hub, "", 100);
  auto got = ReadAlerts(*stream, 1);
  EXPECT_EQ(got.size(), 1u);
  ctx.TryCancel();
  (void)stream->Finish();
  return got.empty() ? std::string() : got[0].resume_token();
}

TEST(DeliveryPriority, CriticalOvertakesTenThousandLowAlertsQueuedForADisconnectedHub) {
  auto h = DeliveryHarness::Create(4, {{"hub-p", {"mekong"}}});
  ASSERT_TRUE(h.ok()) << h.error().message;
  int port = 0;
  auto dispatcher = (*h)->StartDispatcher(0, &port);
  ASSERT_TRUE(dispatcher.ok()) << dispatcher.error().message;
  auto stub = (*h)->Stub(port, "hub-p");
  constexpr uint32_t kWindow = 100;
  auto subscribe = [&](grpc::ClientContext& ctx, const std::string& token) {
    return SubscribeMekong(*stub, ctx, "hub-p", token, kWindow);
  };
  // Connected once: one alert received and acknowledged, then gone.
  const std::string token = ConnectedOnce(**h, *stub, "hub-p");
  ASSERT_FALSE(token.empty());
  // While it is away: 10,000 LOW alerts, then one CRITICAL.
  std::vector<v1::Alert> lows;
  for (int i = 1; i <= 10000; ++i) lows.push_back(MakeAlert(i, v1::PRIORITY_LOW, {"mekong"}));
  ASSERT_TRUE((*h)->ProduceAlerts(lows, 1000).ok());
  const v1::Alert critical = MakeAlert(20000, v1::PRIORITY_CRITICAL, {"mekong"});
  ASSERT_TRUE((*h)->ProduceAlerts({critical}).ok());

  grpc::ClientContext ctx;
  auto stream = subscribe(ctx, token);
  const auto first_window = ReadAlerts(*stream, kWindow);
  ASSERT_EQ(first_window.size(), kWindow);
  size_t position = kWindow;
  for (size_t i = 0; i < first_window.size(); ++i)
    if (first_window[i].alert().alert_id() == critical.alert_id()) position = i;
  EXPECT_LT(position, kWindow) << "the CRITICAL alert was not in the first acknowledgement window";
  std::printf("CRITICAL arrived as alert %zu of the first window of %u\n", position + 1, kWindow);

  // Acknowledging as we go, the rest arrive: every one once, none lost.
  std::set<std::string> ids;
  for (const auto& e : first_window) ids.insert(e.alert().alert_id());
  size_t received = first_window.size();
  v1::SubscribeRequest ack;
  for (const auto& e : first_window) ack.mutable_ack()->add_alert_ids(e.alert().alert_id());
  ASSERT_TRUE(stream->Write(ack));
  while (received < 10001) {
    auto more = ReadAlerts(*stream, std::min<size_t>(50, 10001 - received));
    ASSERT_FALSE(more.empty());
    v1::SubscribeRequest a;
    for (const auto& e : more) {
      ids.insert(e.alert().alert_id());
      a.mutable_ack()->add_alert_ids(e.alert().alert_id());
    }
    received += more.size();
    ASSERT_TRUE(stream->Write(a));
  }
  EXPECT_EQ(received, 10001u);
  EXPECT_EQ(ids.size(), 10001u);
  ctx.TryCancel();
  (void)stream->Finish();
}

// A hub away while 8,000 alerts of mixed priority pile up comes back with
// its token: the dispatcher sweeps the backlog CRITICAL first, then HIGH,
// MEDIUM and LOW, while CRITICALs produced during the sweep overtake the rest
// of it. The hub reconnects once mid-sweep; every alert arrives.
TEST(DeliveryPriority, ABacklogComesCriticalFirstWhileNewCriticalsOvertake) {
  auto h = DeliveryHarness::Create(4, {{"hub-b", {"mekong"}}});
  ASSERT_TRUE(h.ok()) << h.error().message;
  int port = 0;
  auto dispatcher = (*h)->StartDispatcher(0, &port, {"--max-buffered", "500", "--sweep-backlog", "1000"});
  ASSERT_TRUE(dispatcher.ok()) << dispatcher.error().message;
  auto stub = (*h)->Stub(port, "hub-b");
  constexpr uint32_t kWindow = 100;
  auto subscribe = [&](grpc::ClientContext& ctx, const std::string& token) {
    return SubscribeMekong(*stub, ctx, "hub-b", token, kWindow);
  };
  // Connected once: one alert received and acknowledged, then gone.
  std::string token = ConnectedOnce(**h, *stub, "hub-b");
  ASSERT_FALSE(token.empty());
  const uint32_t seed = 1717;
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::map<std::string, v1::Priority> backlog;
  // The backlog sits in partitions 0..2, a third of it for another region
  // (read and skipped: it must not grow the token); partition 3 has none,
  // and the new CRITICALs go there (its handled prefix then runs past its
  // empty backlog, and the token must still resume).
  for (int32_t part = 0; part < 3; ++part) {
    std::vector<v1::Alert> alerts;
    for (int i = 1; i <= 4000; ++i) {
      const uint32_t r = rng() % 100;
      const v1::Priority p = r < 5    ? v1::PRIORITY_CRITICAL
                             : r < 20 ? v1::PRIORITY_HIGH
                             : r < 50 ? v1::PRIORITY_MEDIUM
                                      : v1::PRIORITY_LOW;
      const bool ours = i % 3 != 0;
      alerts.push_back(MakeAlert(part * 10000 + i, p, {ours ? "mekong" : "gulf"}));
      if (ours) backlog[alerts.back().alert_id()] = p;
    }
    ASSERT_TRUE((*h)->ProduceAlerts(alerts, 1000, 0, part).ok());
  }
  size_t max_token = 0;

  // Back: read and acknowledge; new CRITICALs after 200, a reconnect after 3,000.
  std::vector<std::string> arrival;  // first arrivals, in order
  std::set<std::string> seen, fresh;
  const auto started = std::chrono::steady_clock::now();
  double first_critical_s = -1, all_critical_s = -1;
  size_t criticals = 0;
  for (const auto& [id, p] : backlog) criticals += p == v1::PRIORITY_CRITICAL;
  size_t critical_seen = 0;
  bool reconnected = false;
  while (seen.size() < backlog.size() + fresh.size() || fresh.empty()) {
    grpc::ClientContext ctx;
    auto stream = subscribe(ctx, token);
    bool again = false;
    while (seen.size() < backlog.size() + fresh.size() || fresh.empty()) {
      const size_t remaining = backlog.size() + 20 - seen.size();
      auto more = ReadAlerts(*stream, std::min<size_t>(20, remaining));
      ASSERT_FALSE(more.empty()) << "the stream ended after " << seen.size() << " alerts";
      v1::SubscribeRequest ack;
      for (const auto& e : more) {
        ack.mutable_ack()->add_alert_ids(e.alert().alert_id());
        token = e.resume_token();
        max_token = std::max(max_token, token.size());
        const std::string& id = e.alert().alert_id();
        if (!backlog.count(id) && !fresh.count(id)) continue;  // sent before the hub went away
        if (!seen.insert(id).second) continue;
        arrival.push_back(e.alert().alert_id());
        auto b = backlog.find(e.alert().alert_id());
        if (b != backlog.end() && b->second == v1::PRIORITY_CRITICAL) {
          const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
          if (first_critical_s < 0) first_critical_s = t;
          if (++critical_seen == criticals) all_critical_s = t;
        }
      }
      ASSERT_TRUE(stream->Write(ack));
      if (fresh.empty() && seen.size() >= 200) {
        std::vector<v1::Alert> news;
        for (int i = 0; i < 20; ++i) {
          news.push_back(MakeAlert(100000 + i, v1::PRIORITY_CRITICAL, {"mekong"}));
          fresh.insert(news.back().alert_id());
        }
        ASSERT_TRUE((*h)->ProduceAlerts(news, 100, 0, 3).ok());
      }
      if (!reconnected && seen.size() >= 3000) {
        reconnected = again = true;
        break;
      }
    }
    ctx.TryCancel();
    (void)stream->Finish();
    if (!again) break;
  }
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ASSERT_EQ(seen.size(), backlog.size() + fresh.size() + 0) << "alerts were lost";

  // The backlog in passes: priorities never rise along the arrival order.
  std::vector<int> order;
  size_t first_low = arrival.size(), last_fresh = 0;
  for (size_t i = 0; i < arrival.size(); ++i) {
    auto b = backlog.find(arrival[i]);
    if (b != backlog.end()) {
      order.push_back(b->second);
      if (b->second == v1::PRIORITY_LOW) first_low = std::min(first_low, i);
    } else if (fresh.count(arrival[i])) {
      last_fresh = std::max(last_fresh, i);
    }
  }
  EXPECT_TRUE(std::is_sorted(order.rbegin(), order.rend())) << "the backlog did not come in priority order";
  EXPECT_LT(last_fresh, first_low) << "new CRITICALs waited behind the backlog's LOW alerts";
  // Four partitions' offsets, the sweep's fields and the out-of-order sends
  // a window of 100 allows; every skipped record marked would be thousands.
  EXPECT_LT(max_token, 2048u) << "the resume token grew with the skipped records";
  std::printf(
      "backlog of %zu (%zu CRITICAL): first CRITICAL after %.2f s, all CRITICAL after %.2f s, everything after %.2f s; "
      "the 20 new CRITICALs arrived by position %zu, the first LOW at %zu; largest token %zu bytes\n",
      backlog.size(), criticals, first_critical_s, all_critical_s, total_s, last_fresh + 1, first_low + 1, max_token);
}

TEST(DeliveryTls, ClientsWithoutACertificateOrFromAnotherCaCannotConnect) {
  auto h = DeliveryHarness::Create(2, {{"hub-t", {"mekong"}}});
  ASSERT_TRUE(h.ok()) << h.error().message;
  int port = 0;
  auto dispatcher = (*h)->StartDispatcher(0, &port);
  ASSERT_TRUE(dispatcher.ok()) << dispatcher.error().message;

  auto try_subscribe = [&](v1::AlertService::Stub& stub, const std::string& hub_id) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + seconds(10));
    auto stream = stub.Subscribe(&ctx);
    v1::SubscribeRequest req;
    req.mutable_subscription()->set_hub_id(hub_id);
    req.mutable_subscription()->add_regions("mekong");
    (void)stream->Write(req);
    v1::SubscribeResponse resp;
    const bool got_message = stream->Read(&resp);
    if (got_message) ctx.TryCancel();  // a refused stream is already over: keep its status
    grpc::Status st = stream->Finish();
    return std::pair{got_message, st};
  };

  // The control: the right certificate gets the opening heartbeat.
  auto ok = try_subscribe(*(*h)->Stub(port, "hub-t"), "hub-t");
  EXPECT_TRUE(ok.first) << ok.second.error_message();

  for (const std::string who : {"", "stranger"}) {
    auto r = try_subscribe(*(*h)->Stub(port, who), "hub-t");
    EXPECT_FALSE(r.first) << (who.empty() ? "no certificate" : who) << " was let in";
    EXPECT_EQ(r.second.error_code(), grpc::StatusCode::UNAVAILABLE) << r.second.error_message();
    // Unary calls are refused at the handshake too.
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + seconds(10));
    v1::GetContainerRequest req;
    req.set_container_number("CSQU3054383");
    v1::GetContainerResponse resp;
    EXPECT_FALSE((*h)->Stub(port, who)->GetContainer(&ctx, req, &resp).ok());
  }
  // Plaintext to the TLS port fails.
  auto plain = v1::AlertService::NewStub(
      grpc::CreateChannel("localhost:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  EXPECT_FALSE(try_subscribe(*plain, "hub-t").first);
  // A valid certificate cannot claim another hub's id.
  auto claim = try_subscribe(*(*h)->Stub(port, "hub-t"), "hub-other");
  EXPECT_FALSE(claim.first);
  EXPECT_EQ(claim.second.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(claim.second.error_message(), "hub_id hub-other does not match the certificate identity hub-t");
}

TEST(DeliveryInterop, PythonGrpcioClientSubscribesReceivesAlertsAndLooksUpAContainer) {
  auto h = DeliveryHarness::Create(3, {{"hub-py", {"mekong"}}});
  ASSERT_TRUE(h.ok()) << h.error().message;
  std::vector<v1::Alert> alerts;
  for (int i = 0; i < 300; ++i) alerts.push_back(MakeAlert(i, v1::PRIORITY_HIGH, {i % 3 ? "mekong" : "gulf"}));
  ASSERT_TRUE((*h)->ProduceAlerts(alerts).ok());
  const auto want = IdsFor(alerts, {"mekong"});
  int port = 0;
  auto dispatcher = (*h)->StartDispatcher(0, &port);
  ASSERT_TRUE(dispatcher.ok()) << dispatcher.error().message;
  const std::string pki = (*h)->pki();
  Child python({"/usr/bin/python3", std::string(BOXWATCH_SOURCE_DIR) + "/tests/integration/python_hub_client.py",
                "--proto-dir", std::string(BOXWATCH_SOURCE_DIR) + "/proto", "--work-dir",
                (*h)->workers().dir() + "/py", "--target", "localhost:" + std::to_string(port), "--ca",
                pki + "/ca.crt", "--cert", pki + "/hub-py.crt", "--key", pki + "/hub-py.key", "--hub-id", "hub-py",
                "--regions", "mekong", "--count", std::to_string(want.size()), "--container",
                alerts[1].container_number()});
  ASSERT_TRUE(python.WaitForLine("{\"received\"", seconds(120))) << "the Python client printed no result";
  const std::string line = python.last_line();
  std::set<std::string> got;
  for (size_t at = line.find("TSTU"); at != std::string::npos; at = line.find("TSTU", at + 1)) {
    const size_t end = line.find('"', at);
    got.insert(line.substr(at, end - at));
  }
  EXPECT_EQ(got, want);
  ASSERT_TRUE(python.WaitForLine("{\"container\"", seconds(30)));
  EXPECT_NE(python.last_line().find("\"found\": true"), std::string::npos) << python.last_line();
  EXPECT_NE(python.last_line().find(alerts[1].alert_id()), std::string::npos) << python.last_line();
  EXPECT_EQ(ExitCode(python), 0);
}

TEST(DeliveryFeedback, OutcomePostedAtTheHubReachesTheOutcomesTopicAndTheWorkersState) {
  auto h = DeliveryHarness::Create(2, {{"hub-f", {"mekong", "gulf", "europe", "south-asia", "central-asia"}}});
  ASSERT_TRUE(h.ok()) << h.error().message;
  auto& w = (*h)->workers();
  auto profile = operators::ParseProfile(operators::DefaultProfileYaml(), operators::kDefaultProfileSource);
  ASSERT_TRUE(profile.ok());
  const auto traffic = sim::GenerateTraffic({.seed = 7, .containers = 30, .gps_per_container = 10}, *profile);
  ASSERT_TRUE(w.Produce(traffic.records).ok());
  auto worker = w.StartWorker("fw-1");
  ASSERT_TRUE(worker.ok()) << worker.error().message;
  int port = 0;
  auto dispatcher = (*h)->StartDispatcher(0, &port);
  ASSERT_TRUE(dispatcher.ok()) << dispatcher.error().message;
  int http_port = 0;
  auto hub = (*h)->StartHub("hub-f", "mekong,gulf,europe,south-asia,central-asia", port, &http_port);
  ASSERT_TRUE(hub.ok()) << hub.error().message;

  // The box to inspect: the first manifest's container and consignee.
  v1::Manifest manifest;
  int64_t latest_event = 0;
  for (const auto& r : traffic.records) {
    latest_event = std::max(latest_event, r.timestamp_ms);
    if (r.role != pipeline::TopicRole::kManifests || !manifest.container_number().empty()) continue;
    if (r.json) ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.value, &manifest).ok());
    else ASSERT_TRUE(manifest.ParseFromString(r.value));
  }
  ASSERT_FALSE(manifest.consignee().name().empty());
  const pipeline::TopicNames names(w.prefix());
  // Wait until the worker holds the container (its state is on the changelog).
  auto state_of = [&](const std::string& container) -> std::optional<v1::ContainerState> {
    auto recs = ReadAllCommitted(w.bootstrap(), names.Name(pipeline::TopicRole::kStateChangelog), 2, seconds(30));
    std::optional<v1::ContainerState> latest;
    if (!recs.ok()) return latest;
    // Its latest movement part (the container number) with its latest
    // declaration and evaluation parts (number + "#d", "#e") merged in: the
    // parts' fields are disjoint (pipeline/state_parts.h).
    const std::string* movement = nullptr;
    const std::string* declaration = nullptr;
    const std::string* evaluation = nullptr;
    for (const auto& r : *recs) {
      if (r.key == container) movement = &r.value;
      if (r.key == container + std::string(pipeline::kDeclarationSuffix)) declaration = &r.value;
      if (r.key == container + std::string(pipeline::kEvaluationSuffix)) evaluation = &r.value;
    }
    v1::ContainerState s;
    if (movement == nullptr || movement->empty() || !s.ParseFromString(*movement)) return latest;
    if (declaration != nullptr && !declaration->empty() && !s.MergeFromString(*declaration)) return latest;
    if (evaluation != nullptr && !evaluation->empty() && !s.MergeFromString(*evaluation)) return latest;
    latest = s;
    return latest;
  };
  const auto deadline = std::chrono::steady_clock::now() + seconds(90);
  while (!state_of(manifest.container_number()) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(milliseconds(500));  // polling a topic
  ASSERT_TRUE(state_of(manifest.container_number())) << "the worker never stored the container";

  // The worker stores alerts without a processing time (emit time travels in
  // a header, so stored values depend on the input alone); what reaches the
  // hub carries it again, from the dispatcher.
  {
    std::string alerts_json;
    const auto until = std::chrono::steady_clock::now() + seconds(90);
    while (std::chrono::steady_clock::now() < until) {
      auto got = (*h)->HubFetch("GET", http_port, "/api/alerts?format=full&limit=1000");
      if (got.ok() && got->status == 200 && got->body.find("\"alert_id\"") != std::string::npos) {
        alerts_json = got->body;
        break;
      }
      std::this_thread::sleep_for(milliseconds(500));  // polling the hub
    }
    ASSERT_FALSE(alerts_json.empty()) << "no alert reached the hub";
    EXPECT_NE(alerts_json.find("\"emit_time_ms\":\""), std::string::npos)
        << "alerts at the hub lack their emit time: " << alerts_json.substr(0, 600);
  }

  const std::string body = "{\"container_number\":\"" + manifest.container_number() +
                           "\",\"outcome_id\":\"feedback-1\",\"inspected_at_ms\":\"" +
                           std::to_string(latest_event - 3600000) +  // reported an hour late: still kept
                           "\",\"site\":\"THLCH\",\"result\":\"RESULT_SEIZURE\","
                           "\"seizure_categories\":[\"SEIZURE_CATEGORY_DRUGS\"],\"final\":true}";
  auto posted = (*h)->HubFetch("POST", http_port, "/api/outcomes", body);
  ASSERT_TRUE(posted.ok()) << posted.error().message;
  ASSERT_EQ(posted->status, 200) << posted->body;
  EXPECT_NE(posted->body.find("\"accepted\":true"), std::string::npos) << posted->body;
  // A malformed outcome is refused with the reason.
  auto bad = (*h)->HubFetch("POST", http_port, "/api/outcomes", "{\"container_number\":\"XXXX1\"}");
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->status, 400) << bad->body;

  auto outcomes = ReadAllCommitted(w.bootstrap(), names.Name(pipeline::TopicRole::kOutcomes), 2, seconds(30));
  ASSERT_TRUE(outcomes.ok()) << outcomes.error().message;
  ASSERT_EQ(outcomes->size(), 1u);
  EXPECT_EQ((*outcomes)[0].key, manifest.container_number());

  // The worker keeps the outcome on the container and lists the consignee.
  bool kept = false;
  while (!kept && std::chrono::steady_clock::now() < deadline + seconds(60)) {
    if (auto s = state_of(manifest.container_number())) {
      for (const auto& o : s->outcomes()) kept = kept || o.outcome_id() == "feedback-1";
    }
    if (!kept) std::this_thread::sleep_for(milliseconds(500));  // polling a topic
  }
  EXPECT_TRUE(kept) << "the container's state never showed the outcome";
  auto reference = ReadAllCommitted(w.bootstrap(), names.Name(pipeline::TopicRole::kReference), 1, seconds(30));
  ASSERT_TRUE(reference.ok());
  std::set<std::string> keys;  // "seized_parties:<party>", without the "@<seized at>"
  for (const auto& r : *reference) keys.insert(r.key.substr(0, r.key.rfind('@')));
  EXPECT_TRUE(keys.count("seized_parties:" + operators::NormaliseName(manifest.consignee().name())))
      << "no seized-party entry for " << manifest.consignee().name();
  EXPECT_TRUE(keys.count("seized_parties:" + operators::NormaliseName(manifest.shipper().name())))
      << "the default profile lists the shipper too";
  (*worker)->Kill(SIGTERM);
}

// Opens a live-feed stream on the hub's HTTP port with the API token and
// reads its response headers; returns the socket (or -1) and the status line.
std::pair<int, std::string> OpenLiveFeed(int http_port, const std::string& token) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(http_port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return {-1, "connect failed"};
  }
  const std::string req =
      "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token + "\r\n\r\n";
  (void)!::write(fd, req.data(), req.size());
  std::string got;
  char buf[512];
  pollfd p{fd, POLLIN, 0};
  while (got.find("\r\n") == std::string::npos && ::poll(&p, 1, 5000) > 0) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return {fd, got.substr(0, got.find("\r\n"))};
}

// Oversized fields are refused with 400 / INVALID_ARGUMENT naming the field
// and its limit, never echoing the value; hundreds of live-feed clients are
// served at once and let go of as soon as they leave.
TEST(DeliveryEdges, OversizedFieldsAreRefusedByNameAndManyLiveFeedsComeAndGo) {
  auto h = DeliveryHarness::Create(2, {{"hub-e", {"mekong"}}});
  ASSERT_TRUE(h.ok()) << h.error().message;
  int port = 0;
  auto dispatcher = (*h)->StartDispatcher(0, &port);
  ASSERT_TRUE(dispatcher.ok()) << dispatcher.error().message;
  int http_port = 0;
  auto hub = (*h)->StartHub("hub-e", "mekong", port, &http_port);
  ASSERT_TRUE(hub.ok()) << hub.error().message;

  const std::string huge(3 << 20, 'A');
  auto posted = (*h)->HubFetch("POST", http_port, "/api/outcomes",
                               "{\"container_number\":\"" + huge + "\",\"result\":\"RESULT_SEIZURE\"}");
  ASSERT_TRUE(posted.ok()) << posted.error().message;
  EXPECT_EQ(posted->status, 400) << posted->body.substr(0, 300);
  EXPECT_NE(posted->body.find("container_number is 3145728 bytes; the limit is 32"), std::string::npos)
      << posted->body.substr(0, 300);
  EXPECT_LT(posted->body.size(), 1000u) << "the value was echoed";

  auto stub = (*h)->Stub(port, "hub-e");
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + seconds(10));
    v1::GetContainerRequest req;
    req.set_container_number(std::string(1 << 20, 'B'));
    v1::GetContainerResponse resp;
    const grpc::Status st = stub->GetContainer(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message().substr(0, 200);
    EXPECT_NE(st.error_message().find("container_number is 1048576 bytes; the limit is 32"), std::string::npos);
    EXPECT_LT(st.error_message().size(), 200u);
  }
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + seconds(10));
    v1::InspectionOutcome o;
    o.set_container_number("CSQU3054383");
    o.set_result(v1::InspectionOutcome::RESULT_NO_FINDING);
    o.set_notes(std::string(1 << 20, 'n'));
    v1::ReportOutcomeResponse resp;
    const grpc::Status st = stub->ReportOutcome(&ctx, o, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(st.error_message().find("notes is 1048576 bytes; the limit is 8192"), std::string::npos)
        << st.error_message().substr(0, 200);
  }

  // 200 live feeds at once (three times the old server's cap) leave the hub
  // answering; once their clients go away the hub lets go of them within
  // seconds (a feed checks its peer every 500 ms; 200 threads waking on a
  // loaded machine take longer), not at the next keep-alive write 15 s later.
  auto live_clients = [&] {
    auto r = (*h)->HubFetch("GET", http_port, "/api/status");
    if (!r.ok() || r->status != 200) return -1;
    const size_t at = r->body.find("\"live_clients\":");
    return at == std::string::npos ? -1 : std::atoi(r->body.c_str() + at + 15);
  };
  std::vector<int> feeds;
  for (int i = 0; i < 200; ++i) {
    auto [fd, status] = OpenLiveFeed(http_port, (*h)->hub_token());
    ASSERT_GE(fd, 0);
    EXPECT_NE(status.find("200"), std::string::npos) << "feed " << i << ": " << status;
    feeds.push_back(fd);
  }
  EXPECT_EQ(live_clients(), 200) << "the hub should answer, and count 200 open feeds";
  auto stranger = OpenLiveFeed(http_port, "bwt_not-a-token-of-this-hub-0000000000000000");
  EXPECT_NE(stranger.second.find("401"), std::string::npos) << stranger.second;
  if (stranger.first >= 0) ::close(stranger.first);
  for (int fd : feeds) ::close(fd);
  const auto closed = std::chrono::steady_clock::now();
  int open = -1;
  while (std::chrono::steady_clock::now() - closed < seconds(8)) {
    open = live_clients();
    if (open == 0) break;
    std::this_thread::sleep_for(milliseconds(100));  // polling the hub
  }
  EXPECT_EQ(open, 0) << "the hub still held feeds 8 s after every client left";
}

}  // namespace
}  // namespace boxwatch::testing
