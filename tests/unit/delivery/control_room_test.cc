// The control room's accounts, sessions and rules, in process (no sockets):
// the accounts file, argon2id and token checks, region authorisation, CSRF,
// login lockout, the workflow and the audit trail. tests/control_room/ runs
// the same over HTTPS with a real browser.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "delivery/accounts.h"
#include "delivery/control_room.h"
#include "delivery/hub_store.h"

namespace boxwatch::delivery {
namespace {

const std::string kPassword = "correct horse battery";

class ControlRoomTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/boxwatch-room-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    Accounts accounts;
    ASSERT_TRUE(accounts.SetUser("ofc-th", Role::kOfficer, {"TH"}, kPassword).ok());
    ASSERT_TRUE(accounts.SetUser("ofc-kz", Role::kOfficer, {"KZ"}, kPassword).ok());
    ASSERT_TRUE(accounts.SetUser("sup", Role::kSupervisor, {"*"}, kPassword).ok());
    auto token = accounts.AddToken("api-th", Role::kOfficer, {"TH"});
    ASSERT_TRUE(token.ok());
    token_ = *token;
    ASSERT_TRUE(accounts.Save(dir_ + "/accounts").ok());
    auto store = HubStore::Open(dir_ + "/store");
    ASSERT_TRUE(store.ok()) << store.error().message;
    store_ = std::move(*store);
    v1::Alert th = Alert("CSQU3054383-1", "CSQU3054383", "TH", v1::PRIORITY_CRITICAL);
    th.mutable_context()->mutable_manifest()->mutable_consignee()->set_name("Mekong Trading Co");
    v1::Alert kz = Alert("MSCU1234566-1", "MSCU1234566", "KZ", v1::PRIORITY_HIGH);
    ASSERT_TRUE(store_->Store({th, kz}, "t").ok());
    Hooks hooks;
    hooks.not_ready = [] { return std::string(); };
    hooks.report_outcome = [this](const v1::InspectionOutcome& o) -> Result<std::string> {
      reported_.push_back(o);
      return std::string("{\"outcome_id\":\"" + o.outcome_id() + "\",\"accepted\":true}");
    };
    auto room = ControlRoom::Open({"hub-1", {"TH", "KZ"}, dir_ + "/accounts", true}, store_.get(), hooks);
    ASSERT_TRUE(room.ok()) << room.error().message;
    room_ = std::move(*room);
  }
  void TearDown() override {
    room_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  using Hooks = ControlRoom::Hooks;

  static v1::Alert Alert(const std::string& id, const std::string& box, const std::string& region, v1::Priority p) {
    v1::Alert a;
    a.set_alert_id(id);
    a.set_container_number(box);
    a.set_priority(p);
    a.add_regions(region);
    a.set_event_time_ms(1764000000000);
    auto* f = a.add_indicators();
    f->set_id("scan.radiation_neutron");
    f->set_family("scan");
    f->set_summary("neutron count above background");
    return a;
  }

  http::Response Call(const std::string& method, const std::string& target, const std::string& body = "",
                      std::map<std::string, std::string> headers = {}) {
    http::Request r;
    r.method = method;
    r.remote_addr = "10.0.0.7";
    const size_t q = target.find('?');
    r.path = target.substr(0, q);
    if (q != std::string::npos) {
      std::string rest = target.substr(q + 1);
      for (size_t at = 0; at <= rest.size();) {
        const size_t amp = std::min(rest.find('&', at), rest.size());
        const std::string kv = rest.substr(at, amp - at);
        const size_t eq = kv.find('=');
        if (!kv.empty()) r.query[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
        at = amp + 1;
      }
    }
    r.body = body;
    r.headers = std::move(headers);
    if (!body.empty() && !r.headers.count("content-type")) r.headers["content-type"] = "application/json";
    return room_->Handle(r);
  }

  // Logs in; returns {cookie header, csrf token}.
  std::pair<std::string, std::string> Login(const std::string& user) {
    auto r = Call("POST", "/api/session", "{\"username\":\"" + user + "\",\"password\":\"" + kPassword + "\"}");
    EXPECT_EQ(r.status, 200) << r.body;
    std::string cookie;
    for (const auto& [k, v] : r.headers)
      if (k == "Set-Cookie") cookie = v.substr(0, v.find(';'));
    const size_t at = r.body.find("\"csrf_token\":\"") + 14;
    return {cookie, r.body.substr(at, r.body.find('"', at) - at)};
  }

  std::string dir_;
  std::string token_;
  std::unique_ptr<HubStore> store_;
  std::unique_ptr<ControlRoom> room_;
  std::vector<v1::InspectionOutcome> reported_;
};

TEST(Accounts, FileRoundTripsAndEveryProblemIsListed) {
  char tmpl[] = "/tmp/boxwatch-accounts-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/accounts";
  Accounts a;
  EXPECT_FALSE(a.SetUser("short", Role::kOfficer, {"TH"}, "too short").ok());
  EXPECT_FALSE(a.SetUser("bad name!", Role::kOfficer, {"TH"}, kPassword).ok());
  ASSERT_TRUE(a.SetUser("ofc", Role::kOfficer, {"TH", "LA"}, kPassword).ok());
  auto token = a.AddToken("api", Role::kSupervisor, {"*"});
  ASSERT_TRUE(token.ok());
  ASSERT_TRUE(a.Save(path).ok());
  EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  auto b = Accounts::Load(path);
  ASSERT_TRUE(b.ok()) << b.error().message;
  ASSERT_NE(b->Verify("ofc", kPassword), nullptr);
  EXPECT_EQ(b->Verify("ofc", kPassword)->regions, (std::vector<std::string>{"TH", "LA"}));
  EXPECT_EQ(b->Verify("ofc", "correct horse batterz"), nullptr);
  EXPECT_EQ(b->Verify("nobody", kPassword), nullptr);
  ASSERT_NE(b->VerifyToken(*token), nullptr);
  EXPECT_EQ(b->VerifyToken(*token)->role, Role::kSupervisor);
  // One character changed (never to itself: a token ending in '0' made this pass the token back).
  EXPECT_EQ(b->VerifyToken(token->substr(0, token->size() - 1) + (token->back() == '0' ? "1" : "0")), nullptr);
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text.find(kPassword), std::string::npos);
  EXPECT_EQ(text.find(*token), std::string::npos) << "the token is stored in the clear";
  std::ofstream(path) << "user\tx\tchief\tTH\t$argon2id$v=19$...\ntoken\ty\tofficer\t\tabc\nnonsense\n";
  auto bad = Accounts::Load(path);
  ASSERT_FALSE(bad.ok());
  for (const char* want : {":1: role chief", ":2: give at least one region", ":2: the token hash", ":3: expected 5"})
    EXPECT_NE(bad.error().message.find(want), std::string::npos) << want << " in\n" << bad.error().message;
  std::filesystem::remove_all(tmpl);
}

TEST_F(ControlRoomTest, EveryApiRouteNeedsASessionOrAToken) {
  for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/api/alerts"}, {"GET", "/api/alerts/CSQU3054383-1"}, {"POST", "/api/alerts/CSQU3054383-1/workflow"},
           {"POST", "/api/alerts/CSQU3054383-1/outcome"}, {"POST", "/api/outcomes"}, {"GET", "/api/events"},
           {"GET", "/api/status"}, {"GET", "/api/audit"}, {"GET", "/api/users"}, {"GET", "/api/session"}}) {
    EXPECT_EQ(Call(method, target).status, 401) << method << " " << target;
    EXPECT_EQ(Call(method, target, "", {{"authorization", "Bearer bwt_0000000000000000000000000000000000"}}).status,
              401)
        << method << " " << target;
  }
  EXPECT_EQ(Call("GET", "/").status, 200) << "the app itself loads without a session";
  EXPECT_EQ(Call("GET", "/api/alerts", "", {{"authorization", "Bearer " + token_}}).status, 200);
}

TEST_F(ControlRoomTest, AnOfficerSeesOnlyTheAlertsOfTheirRegions) {
  auto [cookie, csrf] = Login("ofc-th");
  auto list = Call("GET", "/api/alerts", "", {{"cookie", cookie}});
  EXPECT_NE(list.body.find("CSQU3054383-1"), std::string::npos);
  EXPECT_EQ(list.body.find("MSCU1234566"), std::string::npos) << list.body;
  EXPECT_NE(list.body.find("\"total\":1"), std::string::npos) << list.body;
  EXPECT_EQ(Call("GET", "/api/alerts/MSCU1234566-1", "", {{"cookie", cookie}}).status, 404);
  EXPECT_EQ(Call("GET", "/api/alerts/CSQU3054383-1", "", {{"cookie", cookie}}).status, 200);
  EXPECT_EQ(Call("GET", "/api/alerts?q=mekong", "", {{"cookie", cookie}}).body.find("\"total\":1") == std::string::npos,
            false)
      << "party-name search";
  EXPECT_EQ(Call("POST", "/api/alerts/MSCU1234566-1/workflow", "{\"action\":\"acknowledge\"}",
                 {{"cookie", cookie}, {"x-csrf-token", csrf}})
                .status,
            404);
  EXPECT_EQ(Call("GET", "/api/audit", "", {{"cookie", cookie}}).status, 403) << "the audit is for supervisors";
  auto token_list = Call("GET", "/api/alerts", "", {{"authorization", "Bearer " + token_}});
  EXPECT_EQ(token_list.body.find("MSCU1234566"), std::string::npos) << "tokens are held to their regions too";
}

TEST_F(ControlRoomTest, ChangesNeedTheCsrfTokenOfTheSession) {
  auto [cookie, csrf] = Login("ofc-th");
  const std::string ack = "{\"action\":\"acknowledge\"}";
  EXPECT_EQ(Call("POST", "/api/alerts/CSQU3054383-1/workflow", ack, {{"cookie", cookie}}).status, 403);
  EXPECT_EQ(Call("POST", "/api/alerts/CSQU3054383-1/workflow", ack, {{"cookie", cookie}, {"x-csrf-token", "x" + csrf}})
                .status,
            403);
  auto [other_cookie, other_csrf] = Login("sup");
  EXPECT_EQ(Call("POST", "/api/alerts/CSQU3054383-1/workflow", ack, {{"cookie", cookie}, {"x-csrf-token", other_csrf}})
                .status,
            403)
      << "another session's token";
  EXPECT_EQ(Call("POST", "/api/alerts/CSQU3054383-1/workflow", ack, {{"cookie", cookie}, {"x-csrf-token", csrf}}).status,
            200);
  EXPECT_EQ(Call("DELETE", "/api/session", "", {{"cookie", cookie}}).status, 403);
  EXPECT_EQ(Call("DELETE", "/api/session", "", {{"cookie", cookie}, {"x-csrf-token", csrf}}).status, 200);
  EXPECT_EQ(Call("GET", "/api/alerts", "", {{"cookie", cookie}}).status, 401) << "the session ended";
}

TEST_F(ControlRoomTest, RepeatedWrongPasswordsLockTheNameOut) {
  const std::string wrong = "{\"username\":\"ofc-kz\",\"password\":\"not the password\"}";
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Call("POST", "/api/session", wrong).status, 401) << i;
  auto locked = Call("POST", "/api/session", wrong);
  EXPECT_EQ(locked.status, 429);
  bool retry_after = false;
  for (const auto& [k, v] : locked.headers) retry_after = retry_after || (k == "Retry-After" && std::stoi(v) > 0);
  EXPECT_TRUE(retry_after);
  EXPECT_EQ(Call("POST", "/api/session", "{\"username\":\"ofc-kz\",\"password\":\"" + kPassword + "\"}").status, 429)
      << "even the right password waits out the lock";
  auto [cookie, csrf] = Login("ofc-th");  // another name is not locked
  EXPECT_FALSE(cookie.empty());
}

TEST_F(ControlRoomTest, LoginTakesJsonOnlyAndANewPasswordEndsTheSessions) {
  EXPECT_EQ(Call("POST", "/api/session", "{\"username\":\"sup\",\"password\":\"" + kPassword + "\"}",
                 {{"content-type", "text/plain"}})
                .status,
            415)
      << "a cross-site form posts text/plain";
  auto [cookie, csrf] = Login("ofc-th");
  EXPECT_EQ(Call("GET", "/api/alerts", "", {{"cookie", cookie}}).status, 200);
  auto accounts = Accounts::Load(dir_ + "/accounts");
  ASSERT_TRUE(accounts.ok());
  ASSERT_TRUE(accounts->SetUser("ofc-th", Role::kOfficer, {"TH"}, "another long password").ok());
  ASSERT_TRUE(accounts->Save(dir_ + "/accounts").ok());
  EXPECT_EQ(Call("GET", "/api/alerts", "", {{"cookie", cookie}}).status, 401) << "the old session ended";
}

TEST_F(ControlRoomTest, RegionalOutcomesSpeakForTheirCallerAndMatchTheirAlert) {
  auto [cookie, csrf] = Login("ofc-th");
  const std::map<std::string, std::string> h = {{"cookie", cookie}, {"x-csrf-token", csrf}};
  auto wrong_box = Call("POST", "/api/outcomes",
                        "{\"container_number\":\"MSCU1234566\",\"alert_id\":\"CSQU3054383-1\",\"outcome_id\":\"x\","
                        "\"result\":\"RESULT_NO_FINDING\"}",
                        h);
  EXPECT_EQ(wrong_box.status, 400) << wrong_box.body;
  auto ok = Call("POST", "/api/outcomes",
                 "{\"container_number\":\"CSQU3054383\",\"alert_id\":\"CSQU3054383-1\",\"outcome_id\":\"x\","
                 "\"officer_unit\":\"someone-else\",\"result\":\"RESULT_NO_FINDING\"}",
                 h);
  ASSERT_EQ(ok.status, 200) << ok.body;
  ASSERT_EQ(reported_.size(), 1u);
  EXPECT_EQ(reported_[0].officer_unit(), "ofc-th");
  EXPECT_EQ(reported_[0].outcome_id(), "ofc-th/x");
}

TEST_F(ControlRoomTest, APersonHoldsAtMostEightLiveFeeds) {
  auto [cookie, csrf] = Login("ofc-th");
  std::vector<http::Response> feeds;  // each holds its place until destroyed
  for (int i = 0; i < 8; ++i) {
    feeds.push_back(Call("GET", "/api/events", "", {{"cookie", cookie}}));
    EXPECT_EQ(feeds.back().status, 200) << i;
  }
  EXPECT_EQ(Call("GET", "/api/events", "", {{"cookie", cookie}}).status, 503);
  feeds.pop_back();
  EXPECT_EQ(Call("GET", "/api/events", "", {{"cookie", cookie}}).status, 200)
      << "a feed that was never streamed gives its place back";
  for (int i = 0; i < 20; ++i)  // a machine client fans out within the hub's limit
    feeds.push_back(Call("GET", "/api/events", "", {{"authorization", "Bearer " + token_}}));
  EXPECT_EQ(feeds.back().status, 200);
}

TEST_F(ControlRoomTest, WorkflowAndOutcomesAreAuditedAndSurviveARestart) {
  auto [cookie, csrf] = Login("sup");
  const std::map<std::string, std::string> h = {{"cookie", cookie}, {"x-csrf-token", csrf}};
  EXPECT_EQ(Call("GET", "/api/alerts/CSQU3054383-1", "", {{"cookie", cookie}}).status, 200);
  EXPECT_EQ(Call("POST", "/api/alerts/CSQU3054383-1/workflow", "{\"action\":\"assign\",\"assignee\":\"ofc-kz\"}", h).status,
            400)
      << "ofc-kz cannot read a TH alert";
  auto assigned = Call("POST", "/api/alerts/CSQU3054383-1/workflow", "{\"action\":\"assign\",\"assignee\":\"ofc-th\"}", h);
  EXPECT_EQ(assigned.status, 200) << assigned.body;
  EXPECT_NE(assigned.body.find("\"status\":\"assigned\""), std::string::npos);
  auto outcome = Call("POST", "/api/alerts/CSQU3054383-1/outcome",
                      "{\"result\":\"SEIZURE\",\"seizure_categories\":[\"DRUGS\"],\"quantity_description\":\"12 kg\"}", h);
  ASSERT_EQ(outcome.status, 200) << outcome.body;
  ASSERT_EQ(reported_.size(), 1u);
  EXPECT_EQ(reported_[0].container_number(), "CSQU3054383");
  EXPECT_EQ(reported_[0].alert_id(), "CSQU3054383-1");
  EXPECT_EQ(reported_[0].result(), v1::InspectionOutcome::RESULT_SEIZURE);
  EXPECT_EQ(reported_[0].officer_unit(), "sup");
  EXPECT_NE(outcome.body.find("\"status\":\"closed\""), std::string::npos) << "a final outcome closes the alert";

  // A new control room over the same store: workflow and audit are still there.
  room_.reset();
  auto room = ControlRoom::Open({"hub-1", {"TH", "KZ"}, dir_ + "/accounts", true}, store_.get(),
                                {[] { return std::string(); }, [](const v1::InspectionOutcome&) -> Result<std::string> {
                                   return std::string("{}");
                                 }});
  ASSERT_TRUE(room.ok());
  room_ = std::move(*room);
  auto [cookie2, csrf2] = Login("sup");
  auto list = Call("GET", "/api/alerts?status=closed", "", {{"cookie", cookie2}});
  EXPECT_NE(list.body.find("CSQU3054383-1"), std::string::npos) << list.body;
  auto audit = Call("GET", "/api/audit?alert_id=CSQU3054383-1", "", {{"cookie", cookie2}});
  ASSERT_EQ(audit.status, 200);
  for (const char* action : {"\"action\":\"view\"", "\"action\":\"assign\"", "\"action\":\"outcome\""})
    EXPECT_NE(audit.body.find(action), std::string::npos) << action << " in " << audit.body;
  auto logins = Call("GET", "/api/audit?user=sup", "", {{"cookie", cookie2}});
  EXPECT_NE(logins.body.find("\"action\":\"login\""), std::string::npos);
}

}  // namespace
}  // namespace boxwatch::delivery
