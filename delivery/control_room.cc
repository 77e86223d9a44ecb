#include "delivery/control_room.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <set>
#include <tuple>
#include <unordered_map>

#include "core/log.h"
#include "core/types.h"
#include "delivery/accounts.h"
#include "delivery/hub_store.h"
#include "delivery/probes.h"
#include "delivery/webapp_assets.h"
#include "operators/decode.h"

namespace boxwatch::delivery {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using http::JsonEscape;
using http::Response;

constexpr int64_t kSessionIdleMs = 30 * 60 * 1000;       // a session unused this long ends
constexpr int64_t kSessionMaxMs = 12 * 60 * 60 * 1000;   // and any session after a shift
constexpr int kMaxFailuresPerName = 5;                   // failed logins per name ...
constexpr int kMaxFailuresPerAddress = 20;               // ... or per address ...
constexpr int64_t kFailureWindowMs = 5 * 60 * 1000;      // ... within this window lock logins out
constexpr size_t kMaxListenerBacklog = 10000;            // live-feed events queued per client
constexpr size_t kMaxFeedsPerCaller = 8;                 // live feeds one person may hold open (tabs)
constexpr size_t kMaxFeeds = 900;                        // and all of them (the HTTP pool serves 1,024)
constexpr int kMaxConcurrentHashes = 2;                  // argon2id checks at once (64 MiB, 0.1 s each)
constexpr size_t kMaxFailureKeys = 100000;               // names and addresses with recent failures
constexpr size_t kMaxSummaryPage = 1000;                 // summaries per page; format=full may ask more

std::string Q(std::string_view s) { return "\"" + JsonEscape(s) + "\""; }

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}


// A JSON object body, or why not.
Result<google::protobuf::Struct> ParseObject(const std::string& body) {
  google::protobuf::Struct doc;
  if (!google::protobuf::util::JsonStringToMessage(body, &doc).ok())
    return Error(Errc::kInvalidArgument, "the body is not a JSON object");
  return doc;
}

std::string Field(const google::protobuf::Struct& doc, const std::string& name) {
  auto it = doc.fields().find(name);
  return it == doc.fields().end() || !it->second.has_string_value() ? "" : it->second.string_value();
}

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    std::string part = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!part.empty()) out.push_back(part);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string Cookie(const http::Request& req, const std::string& name) {
  auto it = req.headers.find("cookie");
  return it == req.headers.end() ? "" : http::CookieValue(it->second, name);
}

std::string Header(const http::Request& req, const std::string& name) {
  auto it = req.headers.find(name);
  return it == req.headers.end() ? "" : it->second;
}

// A strong validator of an embedded asset: FNV-1a of its bytes, computed
// once per asset.
std::string AssetTag(const EmbeddedAsset& asset) {
  static std::mutex mu;
  static std::unordered_map<const EmbeddedAsset*, std::string> tags;
  std::lock_guard lock(mu);
  auto& tag = tags[&asset];
  if (tag.empty()) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < asset.size; ++i) h = (h ^ static_cast<unsigned char>(asset.data[i])) * 1099511628211ULL;
    char buf[24];
    std::snprintf(buf, sizeof buf, "\"%016llx\"", static_cast<unsigned long long>(h));
    tag = buf;
  }
  return tag;
}

struct Workflow {
  std::string status = "new";
  std::string assignee, acknowledged_by, updated_by;
  int64_t acknowledged_ms = 0, updated_ms = 0;

  std::string Json() const {
    return "{\"status\":" + Q(status) + ",\"assignee\":" + Q(assignee) + ",\"acknowledged_by\":" +
           Q(acknowledged_by) + ",\"acknowledged_ms\":" + std::to_string(acknowledged_ms) + ",\"updated_by\":" +
           Q(updated_by) + ",\"updated_ms\":" + std::to_string(updated_ms) + "}";
  }
  // Stored as tab-separated fields (names never hold tabs).
  std::string Encode() const {
    return status + '\t' + assignee + '\t' + acknowledged_by + '\t' + std::to_string(acknowledged_ms) + '\t' +
           updated_by + '\t' + std::to_string(updated_ms);
  }
  static Workflow Decode(const std::string& text) {
    Workflow w;
    auto f = SplitTabs(text);
    if (f.size() == 6) {
      w.status = f[0], w.assignee = f[1], w.acknowledged_by = f[2], w.updated_by = f[4];
      w.acknowledged_ms = std::atoll(f[3].c_str()), w.updated_ms = std::atoll(f[5].c_str());
    }
    return w;
  }
  static std::vector<std::string> SplitTabs(const std::string& text) {
    std::vector<std::string> out(1);
    for (char c : text) {
      if (c == '\t') out.emplace_back();
      else out.back().push_back(c);
    }
    return out;
  }
};

bool ValidStatus(const std::string& s) {
  return s == "new" || s == "assigned" || s == "inspecting" || s == "closed";
}

// What the queue shows of an alert, kept in memory for every stored alert
// so that filtering and paging never read the store.
struct Entry {
  std::string id, container, bill_of_lading, shipper, consignee, headline, profile, discharge, destination;
  std::string search;  // lower-case container, B/L and party names
  std::vector<std::string> regions, families;
  int priority = 0;
  uint32_t sequence = 0;
  double score = 0;
  int64_t event_ms = 0, emit_ms = 0, stored_ms = 0;
  Workflow workflow;

  static Entry From(const v1::Alert& a, int64_t stored_ms) {
    Entry e;
    e.id = a.alert_id();
    e.container = a.container_number();
    e.priority = a.priority();
    e.sequence = a.sequence();
    e.score = a.score();
    e.event_ms = a.event_time_ms();
    e.emit_ms = a.emit_time_ms();
    e.stored_ms = stored_ms;
    e.discharge = a.port_of_discharge();
    e.destination = a.final_destination();
    e.profile = a.profile_name() + " " + a.profile_version();
    e.regions.assign(a.regions().begin(), a.regions().end());
    std::set<std::string> families;
    for (const auto& f : a.indicators()) families.insert(f.family());
    e.families.assign(families.begin(), families.end());
    if (!a.indicators().empty()) e.headline = a.indicators(0).summary();
    const v1::Manifest& m = a.context().manifest();
    e.bill_of_lading = m.bill_of_lading();
    e.shipper = m.shipper().name();
    e.consignee = m.consignee().name();
    e.search = Lower(e.container + "\n" + e.bill_of_lading + "\n" + e.shipper + "\n" + e.consignee + "\n" +
                     m.notify_party().name());
    return e;
  }

  std::string Json() const {
    std::string r, f;
    for (const auto& x : regions) r += (r.empty() ? "" : ",") + Q(x);
    for (const auto& x : families) f += (f.empty() ? "" : ",") + Q(x);
    char score_text[32];
    std::snprintf(score_text, sizeof score_text, "%.4g", std::isfinite(score) ? score : 0.0);
    return "{\"alert_id\":" + Q(id) + ",\"container_number\":" + Q(container) + ",\"sequence\":" +
           std::to_string(sequence) + ",\"priority\":" + Q(PriorityName(static_cast<v1::Priority>(priority))) +
           ",\"score\":" + score_text + ",\"regions\":[" + r + "],\"port_of_discharge\":" + Q(discharge) +
           ",\"final_destination\":" + Q(destination) + ",\"event_time_ms\":" + std::to_string(event_ms) +
           ",\"emit_time_ms\":" + std::to_string(emit_ms) + ",\"stored_ms\":" + std::to_string(stored_ms) +
           ",\"families\":[" + f + "],\"headline\":" + Q(headline) + ",\"bill_of_lading\":" + Q(bill_of_lading) +
           ",\"shipper\":" + Q(shipper) + ",\"consignee\":" + Q(consignee) + ",\"profile\":" + Q(profile) +
           ",\"workflow\":" + workflow.Json() + "}";
  }
};

// Queue order: highest priority, then newest event, then id.
struct OrderKey {
  int priority;
  int64_t event_ms;
  std::string id;
  const Entry* entry;  // in entries_ (an unordered_map's nodes never move)
  bool operator<(const OrderKey& o) const {
    if (priority != o.priority) return priority > o.priority;
    if (event_ms != o.event_ms) return event_ms > o.event_ms;
    return id < o.id;
  }
};

struct Session {
  std::string user;
  std::string password_hash;  // at login: a new password ends the session
  std::string csrf;
  int64_t created_ms = 0;
  int64_t last_ms = 0;
};

// Who is asking: a person with a session or a machine with a token.
struct Caller {
  Account account;
  std::string session_id;  // empty for tokens
  std::string csrf;
};

// Live-feed fan-out; each client sees only its regions.
class LiveFeed {
 public:
  using Event = std::shared_ptr<const std::string>;  // one copy, shared by every listener
  struct Listener {
    std::string caller;
    std::vector<std::string> regions;
    std::deque<Event> events;
    bool overflowed = false;
  };
  // A new listener, or null when the hub holds kMaxFeeds or `caller`, a
  // person, kMaxFeedsPerCaller already. Machine clients (API tokens, issued
  // by an administrator) may fan out: only the hub's limit holds them.
  std::shared_ptr<Listener> Join(const std::string& caller, bool person, std::vector<std::string> regions) {
    std::lock_guard lock(mu_);
    if (listeners_.size() >= kMaxFeeds || (person && per_caller_[caller] >= kMaxFeedsPerCaller)) return nullptr;
    ++per_caller_[caller];
    listeners_.push_back(std::make_shared<Listener>());
    listeners_.back()->caller = caller;
    listeners_.back()->regions = std::move(regions);
    return listeners_.back();
  }
  void Leave(const std::shared_ptr<Listener>& l) {
    std::lock_guard lock(mu_);
    listeners_.remove(l);
    if (--per_caller_[l->caller] == 0) per_caller_.erase(l->caller);
  }
  // Events with the regions each concerns, in order, under one lock.
  void Publish(const std::vector<std::pair<std::string, std::vector<std::string>>>& batch) {
    if (batch.empty()) return;
    std::vector<Event> events;
    for (const auto& [text, regions] : batch) events.push_back(std::make_shared<const std::string>(text));
    std::lock_guard lock(mu_);
    for (auto& l : listeners_) {
      Account probe;
      probe.regions = l->regions;
      for (size_t i = 0; i < batch.size(); ++i) {
        if (!probe.MayRead(batch[i].second)) continue;
        if (l->events.size() >= kMaxListenerBacklog) l->overflowed = true;
        else l->events.push_back(events[i]);
      }
    }
    cv_.notify_all();
  }
  std::deque<Event> Take(const std::shared_ptr<Listener>& l, milliseconds timeout, bool* overflowed) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return !l->events.empty() || l->overflowed; });
    *overflowed = l->overflowed;
    return std::exchange(l->events, {});
  }
  size_t size() {
    std::lock_guard lock(mu_);
    return listeners_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::list<std::shared_ptr<Listener>> listeners_;
  std::unordered_map<std::string, size_t> per_caller_;
};

}  // namespace

std::string ProtoJson(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(m, &out, options);
  return out;
}

class ControlRoom::Impl {
 public:
  Impl(ControlRoomOptions options, HubStore* store, Hooks hooks)
      : options_(std::move(options)), store_(store), hooks_(std::move(hooks)) {}

  Status Init() {
    auto accounts = Accounts::Load(options_.accounts_file);
    if (!accounts.ok()) return accounts.error();
    accounts_ = std::move(*accounts);
    accounts_version_ = FileVersion();
    std::map<std::string, Workflow> workflows;
    if (Status s = store_->ForEachRecord("wf/", [&](const std::string& name, const std::string& value) {
          workflows[name.substr(3)] = Workflow::Decode(value);
        });
        !s.ok())
      return s;
    return store_->ForEach([&](const v1::Alert& a) {
      Entry e = Entry::From(a, a.emit_time_ms());
      if (auto w = workflows.find(e.id); w != workflows.end()) e.workflow = w->second;
      Add(std::move(e));
    });
  }

  void AlertsStored(const std::vector<const v1::Alert*>& alerts) {
    const int64_t now = NowMs();
    std::vector<std::pair<std::string, std::vector<std::string>>> events;  // text, regions
    {
      std::lock_guard lock(mu_);
      for (const v1::Alert* a : alerts) {
        Entry e = Entry::From(*a, now);
        events.emplace_back("event: alert\ndata: " + e.Json() + "\n\n", e.regions);
        Add(std::move(e));
      }
    }
    feed_.Publish(events);
  }

  Response Handle(const http::Request& req) {
    Response r = Route(req);
    if (req.path.rfind("/api/", 0) == 0) r.headers.emplace_back("Cache-Control", "no-store");
    return r;
  }

 private:
  // Caller must hold mu_.
  void Add(Entry e) {
    const int64_t minute = e.stored_ms / 60000;
    auto& counts = per_minute_[minute];
    if (e.priority >= 1 && e.priority <= 4) ++counts[e.priority - 1];
    while (per_minute_.size() > 60) per_minute_.erase(per_minute_.begin());
    last_alert_ms_ = std::max(last_alert_ms_, e.stored_ms);
    by_container_[e.container].push_back(e.id);
    auto [it, fresh] = entries_.emplace(e.id, std::move(e));
    if (fresh) order_.insert(OrderKey{it->second.priority, it->second.event_ms, it->second.id, &it->second});
  }

  // What identifies a version of the accounts file: the CLI replaces it by
  // rename, so a new inode, even within one timestamp tick.
  std::tuple<ino_t, off_t, int64_t> FileVersion() const {
    struct stat st {};
    if (::stat(options_.accounts_file.c_str(), &st) != 0) return {0, 0, 0};
    return {st.st_ino, st.st_size, st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec};
  }

  // Picks up edits made by `boxwatch hub users|tokens` while the hub runs.
  void ReloadAccountsIfChanged() {
    const auto m = FileVersion();
    std::lock_guard lock(accounts_mu_);
    if (m == accounts_version_) return;
    auto fresh = Accounts::Load(options_.accounts_file);
    if (!fresh.ok()) {
      BW_LOG(kError, "hub") << "accounts file not reloaded: " << fresh.error().message;
      accounts_version_ = m;
      return;
    }
    accounts_ = std::move(*fresh);
    accounts_version_ = m;
    BW_LOG(kInfo, "hub") << "accounts reloaded from " << options_.accounts_file;
  }

  void Audit(const std::string& user, const std::string& action, const std::string& alert_id,
             const std::string& container, const std::string& detail) {
    const std::string entry = "{\"time_ms\":" + std::to_string(NowMs()) + ",\"user\":" + Q(user) +
                              ",\"action\":" + Q(action) + ",\"alert_id\":" + Q(alert_id) +
                              ",\"container_number\":" + Q(container) + ",\"detail\":" + Q(detail) + "}";
    if (auto s = store_->AppendAudit(entry); !s.ok()) BW_LOG(kError, "hub") << "audit: " << s.error().message;
  }

  // Resolves the caller from a bearer token or a session cookie.
  std::optional<Caller> Authenticate(const http::Request& req) {
    ReloadAccountsIfChanged();
    const std::string auth = Header(req, "authorization");
    if (auth.rfind("Bearer ", 0) == 0) {
      std::lock_guard lock(accounts_mu_);
      const Account* a = accounts_.VerifyToken(auth.substr(7));
      if (!a) return std::nullopt;
      return Caller{*a, "", ""};
    }
    const std::string sid = Cookie(req, "bw_session");
    if (sid.empty()) return std::nullopt;
    const int64_t now = NowMs();
    std::string user, csrf, hash;
    {
      std::lock_guard lock(sessions_mu_);
      auto it = sessions_.find(sid);
      if (it == sessions_.end()) return std::nullopt;
      if (now - it->second.last_ms > kSessionIdleMs || now - it->second.created_ms > kSessionMaxMs) {
        sessions_.erase(it);
        return std::nullopt;
      }
      it->second.last_ms = now;
      user = it->second.user;
      csrf = it->second.csrf;
      hash = it->second.password_hash;
    }
    std::lock_guard lock(accounts_mu_);
    const Account* a = accounts_.Find(user, false);
    // A removed user's sessions end here, and so do those from before a
    // password change.
    if (!a || a->hash != hash) return std::nullopt;
    return Caller{*a, sid, csrf};
  }

  std::string UserJson(const Account& a) const {
    std::string r;
    for (const auto& x : a.regions) r += (r.empty() ? "" : ",") + Q(x);
    return "{\"name\":" + Q(a.name) + ",\"role\":" + Q(RoleName(a.role)) + ",\"regions\":[" + r + "]}";
  }

  std::string SessionCookie(const std::string& value, bool clear) const {
    std::string c = "bw_session=" + value + "; HttpOnly; SameSite=Strict; Path=/";
    if (options_.tls) c += "; Secure";
    if (clear) c += "; Max-Age=0";
    return c;
  }

  // Seconds until `key` may try again, 0 when not locked out. Caller holds
  // failures_mu_.
  int64_t LockedOutFor(const std::string& key, int max_failures, int64_t now) {
    auto it = failures_.find(key);
    if (it == failures_.end()) return 0;
    auto& times = it->second;
    while (!times.empty() && now - times.front() > kFailureWindowMs) times.pop_front();
    if (times.empty()) {
      failures_.erase(it);
      return 0;
    }
    if (static_cast<int>(times.size()) < max_failures) return 0;
    return (times.back() + kFailureWindowMs - now) / 1000 + 1;
  }

  // Counts a failure for `key`; caller holds failures_mu_. The map stays
  // bounded whatever names or addresses a client makes up.
  void CountFailure(const std::string& key, int64_t now) {
    if (failures_.size() >= kMaxFailureKeys && !failures_.count(key)) {
      std::erase_if(failures_, [&](const auto& kv) { return now - kv.second.back() > kFailureWindowMs; });
      if (failures_.size() >= kMaxFailureKeys) failures_.clear();
    }
    auto& times = failures_[key];
    times.push_back(now);
    if (times.size() > 64) times.pop_front();
  }

  Response Login(const http::Request& req) {
    // JSON only: a cross-site form cannot send it, so no one logs a victim's
    // browser into their own account.
    if (Header(req, "content-type").rfind("application/json", 0) != 0)
      return Response::Error(415, "send the login as application/json");
    auto doc = ParseObject(req.body);
    if (!doc.ok()) return Response::Error(400, doc.error().message);
    const std::string name = Field(*doc, "username"), password = Field(*doc, "password");
    if (name.empty() || password.empty() || name.size() > 64 || password.size() > 1024)
      return Response::Error(400, "give username and password");
    const int64_t now = NowMs();
    const std::string name_key = "n/" + name, address_key = "a/" + req.remote_addr;
    {
      // Checked and counted in one step (the failure is taken back on
      // success), so a burst of guesses gets no more than the limit.
      std::lock_guard lock(failures_mu_);
      const int64_t wait = std::max(LockedOutFor(name_key, kMaxFailuresPerName, now),
                                    LockedOutFor(address_key, kMaxFailuresPerAddress, now));
      if (wait > 0) {
        Response r = Response::Error(429, "too many failed logins; try again in " + std::to_string(wait) + " s");
        r.headers.emplace_back("Retry-After", std::to_string(wait));
        return r;
      }
      CountFailure(name_key, now);
      CountFailure(address_key, now);
    }
    ReloadAccountsIfChanged();
    std::string hash;
    {
      std::lock_guard lock(accounts_mu_);
      hash = accounts_.HashFor(name);
    }
    // argon2id outside every lock, at most kMaxConcurrentHashes at once.
    if (hashing_.fetch_add(1) >= kMaxConcurrentHashes) {
      hashing_.fetch_sub(1);
      Response r = Response::Error(503, "the hub is checking other logins; try again in a second");
      r.headers.emplace_back("Retry-After", "1");
      return r;
    }
    const bool ok = Accounts::VerifyPassword(hash, password);
    hashing_.fetch_sub(1);
    std::optional<Account> account;
    if (ok) {
      std::lock_guard lock(accounts_mu_);
      const Account* a = accounts_.Find(name, false);
      if (a && a->hash == hash) account = *a;
    }
    if (!account) {
      // The name only when it is an account's: a password typed into the
      // name field must not land in the audit trail.
      bool known = false;
      {
        std::lock_guard lock(accounts_mu_);
        known = accounts_.Find(name, false) != nullptr;
      }
      Audit(known ? name : "(unknown name)", "login_failed", "", "", "from " + req.remote_addr);
      return Response::Error(401, "wrong user name or password");
    }
    {
      std::lock_guard lock(failures_mu_);
      failures_.erase(name_key);
      if (auto it = failures_.find(address_key); it != failures_.end() && !it->second.empty()) {
        it->second.pop_back();  // this attempt was not a failure
        if (it->second.empty()) failures_.erase(it);
      }
    }
    Session s{account->name, account->hash, RandomHex(32), now, now};
    const std::string sid = RandomHex(32);
    {
      std::lock_guard lock(sessions_mu_);
      std::erase_if(sessions_, [&](const auto& kv) {
        return now - kv.second.last_ms > kSessionIdleMs || now - kv.second.created_ms > kSessionMaxMs;
      });
      sessions_[sid] = s;
    }
    Audit(account->name, "login", "", "", "from " + req.remote_addr);
    Response r = Response::Json(200, "{\"user\":" + UserJson(*account) + ",\"csrf_token\":" + Q(s.csrf) + "}");
    r.headers.emplace_back("Set-Cookie", SessionCookie(sid, false));
    return r;
  }

  // Whether a caller authenticated earlier still is (session alive, account
  // there, password unchanged): an open live feed asks every few seconds.
  bool StillValid(const Caller& c) {
    if (!c.session_id.empty()) {
      std::lock_guard lock(sessions_mu_);
      auto it = sessions_.find(c.session_id);
      const int64_t now = NowMs();
      if (it == sessions_.end() || now - it->second.last_ms > kSessionIdleMs ||
          now - it->second.created_ms > kSessionMaxMs || it->second.password_hash != c.account.hash)
        return false;
    }
    ReloadAccountsIfChanged();
    std::lock_guard lock(accounts_mu_);
    const Account* a = accounts_.Find(c.account.name, c.account.is_token);
    return a && a->hash == c.account.hash && a->regions == c.account.regions;
  }

  Response Route(const http::Request& req) {
    const std::string& path = req.path;
    if (req.method == "GET" && (path == "/" || path == "/index.html" || path.rfind("/app/", 0) == 0)) {
      const EmbeddedAsset* asset = FindAsset(path == "/" ? "/index.html" : path);
      if (!asset) return Response::Error(404, "no file " + path);
      // Revalidated on every load, answered 304 while unchanged (the map
      // data is a megabyte).
      const std::string etag = AssetTag(*asset);
      Response r;
      r.headers.emplace_back("Cache-Control", "no-cache");
      r.headers.emplace_back("ETag", etag);
      if (Header(req, "if-none-match") == etag) {
        r.status = 304;
        r.content_type = asset->content_type;
        return r;
      }
      r.content_type = asset->content_type;
      r.body.assign(asset->data, asset->size);
      return r;
    }
    if (path == "/api/session" && req.method == "POST") return Login(req);
    if (path.rfind("/api/", 0) != 0) return Response::Error(404, "no route " + req.method + " " + path);

    auto caller = Authenticate(req);
    if (!caller) return Response::Error(401, "log in first (or send an API token)");
    const bool changes = req.method != "GET" && req.method != "HEAD";
    if (changes && !caller->session_id.empty() &&
        !ConstantTimeEqual(Header(req, "x-csrf-token"), caller->csrf))
      return Response::Error(403, "missing or wrong X-CSRF-Token header");

    if (path == "/api/session") {
      if (req.method == "GET")
        return Response::Json(200, "{\"user\":" + UserJson(caller->account) + ",\"csrf_token\":" + Q(caller->csrf) +
                                       "}");
      if (req.method == "DELETE") {
        {
          std::lock_guard lock(sessions_mu_);
          sessions_.erase(caller->session_id);
        }
        Audit(caller->account.name, "logout", "", "", "");
        Response r = Response::Json(200, "{}");
        r.headers.emplace_back("Set-Cookie", SessionCookie("", true));
        return r;
      }
    }
    if (path == "/api/alerts" && req.method == "GET") return ListAlerts(req, *caller);
    if (path.rfind("/api/alerts/", 0) == 0) {
      std::string rest = path.substr(12);
      std::string action;
      if (const size_t slash = rest.find('/'); slash != std::string::npos) {
        action = rest.substr(slash + 1);
        rest = rest.substr(0, slash);
      }
      if (action.empty() && req.method == "GET") return GetAlert(rest, *caller);
      if (action == "workflow" && req.method == "POST") return ChangeWorkflow(rest, req, *caller);
      if (action == "outcome" && req.method == "POST") return Outcome(rest, req, *caller);
    }
    if (path == "/api/outcomes" && req.method == "POST") return RawOutcome(req, *caller);
    if (path == "/api/events" && req.method == "GET") return LiveEvents(*caller);
    if (path == "/api/status" && req.method == "GET") return StatusJson();
    if (path == "/api/audit" && req.method == "GET") return AuditList(req, *caller);
    if (path == "/api/users" && req.method == "GET") return Users(*caller);
    return Response::Error(404, "no route " + req.method + " " + path + " (docs/design/control-room-api.md)");
  }

  static bool Supervises(const Caller& c) { return c.account.role != Role::kOfficer; }

  Response ListAlerts(const http::Request& req, const Caller& caller) {
    std::set<int> priorities;
    for (const auto& p : SplitList(req.Param("priority"))) {
      v1::Priority parsed;
      if (!ParsePriority(p, &parsed)) return Response::Error(400, "priority " + p + " is not LOW, MEDIUM, HIGH or CRITICAL");
      priorities.insert(parsed);
    }
    v1::Priority min_priority = v1::PRIORITY_UNSPECIFIED;
    if (auto p = req.Param("min_priority"); !p.empty() && !ParsePriority(p, &min_priority))
      return Response::Error(400, "min_priority " + p + " is not LOW, MEDIUM, HIGH or CRITICAL");
    std::set<std::string> statuses;
    for (const auto& s : SplitList(req.Param("status"))) {
      if (!ValidStatus(s)) return Response::Error(400, "status " + s + " is not new, assigned, inspecting or closed");
      statuses.insert(s);
    }
    const std::string region = req.Param("region"), port = req.Param("port"), family = req.Param("family");
    const std::string q = Lower(req.Param("q"));
    std::string container = req.Param("container");
    if (!container.empty()) {
      auto number = ContainerNumber::Parse(container);
      if (!number.ok()) return Response::Error(400, number.error().message);
      container = number->str();
    }
    size_t limit = 50, offset = 0;
    for (const auto& [name, fallback, max, out] :
         {std::tuple{"limit", "50", 1000000L, &limit}, std::tuple{"offset", "0", 1000000000L, &offset}}) {
      const std::string text = req.Param(name, fallback);
      char* end = nullptr;
      const long v = std::strtol(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || v < 0 || v > max)
        return Response::Error(400, std::string(name) + " must be an integer from 0 to " + std::to_string(max));
      *out = static_cast<size_t>(v);
    }
    const bool full = req.Param("format") == "full";
    if (!full && limit > kMaxSummaryPage)
      return Response::Error(400, "limit is at most " + std::to_string(kMaxSummaryPage) + " (format=full reads more)");
    std::vector<std::string> page_ids;
    size_t total = 0;
    std::string body;
    {
      std::lock_guard lock(mu_);
      for (const OrderKey& k : order_) {
        if (k.priority < min_priority) break;
        const Entry& e = *k.entry;
        if (!caller.account.MayRead(e.regions)) continue;
        if (!priorities.empty() && !priorities.count(e.priority)) continue;
        if (!statuses.empty() && !statuses.count(e.workflow.status)) continue;
        if (!region.empty() && std::find(e.regions.begin(), e.regions.end(), region) == e.regions.end()) continue;
        if (!port.empty() && e.discharge != port && e.destination != port) continue;
        if (!family.empty() && std::find(e.families.begin(), e.families.end(), family) == e.families.end()) continue;
        if (!container.empty() && e.container != container) continue;
        if (!q.empty() && e.search.find(q) == std::string::npos) continue;
        if (total >= offset && total - offset < limit) {
          if (full) page_ids.push_back(e.id);
          else body += (body.empty() ? "" : ",") + e.Json();
        }
        ++total;
      }
    }
    if (full) {
      for (const auto& id : page_ids) {
        auto a = store_->Get(id);
        if (!a.ok()) return Response::Error(500, a.error().message);
        if (*a) body += (body.empty() ? "" : ",") + ProtoJson(**a);
      }
    }
    return Response::Json(200, "{\"total\":" + std::to_string(total) + ",\"alerts\":[" + body + "]}");
  }

  // The entry of an alert the caller may read, copied; nullopt when there is
  // none (another region's alert is as absent as an unknown one).
  std::optional<Entry> Readable(const std::string& id, const Caller& caller) {
    std::lock_guard lock(mu_);
    auto it = entries_.find(id);
    if (it == entries_.end() || !caller.account.MayRead(it->second.regions)) return std::nullopt;
    return it->second;
  }

  Response GetAlert(const std::string& id, const Caller& caller) {
    auto e = Readable(id, caller);
    if (!e) return Response::Error(404, "no alert " + id + " for you at this hub");
    auto a = store_->Get(id);
    if (!a.ok()) return Response::Error(500, a.error().message);
    if (!*a) return Response::Error(404, "no alert " + id + " at this hub");
    std::string others;
    {
      std::lock_guard lock(mu_);
      for (const auto& other : by_container_[e->container]) {
        if (other == id) continue;
        const Entry& o = entries_.at(other);
        if (caller.account.MayRead(o.regions)) others += (others.empty() ? "" : ",") + o.Json();
      }
    }
    Audit(caller.account.name, "view", id, e->container, "");
    return Response::Json(200, "{\"alert\":" + ProtoJson(**a) + ",\"summary\":" + e->Json() + ",\"others\":[" +
                                   others + "]}");
  }

  // Applies `change` to the alert's workflow, stores it, tells the live feed.
  Result<Workflow> UpdateWorkflow(const std::string& id, const Caller& caller,
                                  const std::function<void(Workflow&)>& change) {
    std::lock_guard lock(workflow_mu_);
    Workflow w;
    std::vector<std::string> regions;
    {
      std::lock_guard l(mu_);
      auto it = entries_.find(id);
      if (it == entries_.end()) return Error(Errc::kNotFound, "no alert " + id);
      w = it->second.workflow;
      regions = it->second.regions;
    }
    change(w);
    w.updated_by = caller.account.name;
    w.updated_ms = NowMs();
    if (Status s = store_->PutRecord("wf/" + id, w.Encode()); !s.ok()) return s.error();
    {
      std::lock_guard l(mu_);
      entries_.at(id).workflow = w;
    }
    feed_.Publish({{"event: workflow\ndata: {\"alert_id\":" + Q(id) + ",\"workflow\":" + w.Json() + "}\n\n", regions}});
    return w;
  }

  Response ChangeWorkflow(const std::string& id, const http::Request& req, const Caller& caller) {
    auto e = Readable(id, caller);
    if (!e) return Response::Error(404, "no alert " + id + " for you at this hub");
    auto doc = ParseObject(req.body);
    if (!doc.ok()) return Response::Error(400, doc.error().message);
    const std::string action = Field(*doc, "action");
    std::function<void(Workflow&)> change;
    std::string detail;
    if (action == "acknowledge") {
      change = [&](Workflow& w) {
        w.acknowledged_by = caller.account.name;
        w.acknowledged_ms = NowMs();
      };
    } else if (action == "assign") {
      if (!Supervises(caller)) return Response::Error(403, "only a supervisor assigns alerts");
      const std::string assignee = Field(*doc, "assignee");
      {
        std::lock_guard lock(accounts_mu_);
        const Account* a = accounts_.Find(assignee, false);
        if (!a || !a->MayRead(e->regions))
          return Response::Error(400, "no user " + assignee + " who may read this alert's regions");
      }
      detail = "to " + assignee;
      change = [&](Workflow& w) {
        w.assignee = assignee;
        w.status = "assigned";
      };
    } else if (action == "status") {
      const std::string status = Field(*doc, "status");
      if (!ValidStatus(status)) return Response::Error(400, "status must be new, assigned, inspecting or closed");
      detail = e->workflow.status + " -> " + status;
      change = [&](Workflow& w) { w.status = status; };
    } else {
      return Response::Error(400, "action must be acknowledge, assign or status");
    }
    auto w = UpdateWorkflow(id, caller, change);
    if (!w.ok()) return Response::Error(w.error().code == Errc::kNotFound ? 404 : 500, w.error().message);
    Audit(caller.account.name, action, id, e->container, detail);
    return Response::Json(200, "{\"workflow\":" + w->Json() + "}");
  }

  // Sends an outcome on; the HTTP answer when it failed, else the reply JSON.
  Result<std::string> Report(const v1::InspectionOutcome& o) {
    if (auto problems = operators::OutcomeSizeProblems(o); !problems.empty()) {
      std::string all;
      for (const auto& p : problems) all += (all.empty() ? "" : "; ") + p;
      return Error(Errc::kInvalidArgument, all);
    }
    return hooks_.report_outcome(o);
  }

  static Response ReportFailed(const Error& e) {
    return Response::Error(e.code == Errc::kInvalidArgument ? 400 : 502, e.message);
  }

  Response Outcome(const std::string& id, const http::Request& req, const Caller& caller) {
    auto e = Readable(id, caller);
    if (!e) return Response::Error(404, "no alert " + id + " for you at this hub");
    auto doc = ParseObject(req.body);
    if (!doc.ok()) return Response::Error(400, doc.error().message);
    v1::InspectionOutcome o;
    const std::string result = Field(*doc, "result");
    v1::InspectionOutcome::Result parsed;
    if (!v1::InspectionOutcome::Result_Parse("RESULT_" + result, &parsed) || parsed == v1::InspectionOutcome::RESULT_UNSPECIFIED)
      return Response::Error(400, "result must be NO_FINDING, DISCREPANCY or SEIZURE");
    o.set_result(parsed);
    if (auto it = doc->fields().find("seizure_categories"); it != doc->fields().end()) {
      for (const auto& v : it->second.list_value().values()) {
        v1::InspectionOutcome::SeizureCategory c;
        if (!v1::InspectionOutcome::SeizureCategory_Parse("SEIZURE_CATEGORY_" + v.string_value(), &c) ||
            c == v1::InspectionOutcome::SEIZURE_CATEGORY_UNSPECIFIED)
          return Response::Error(400, "seizure category " + v.string_value() + " is unknown");
        o.add_seizure_categories(c);
      }
    }
    if (parsed == v1::InspectionOutcome::RESULT_SEIZURE && o.seizure_categories().empty())
      return Response::Error(400, "a seizure names at least one category");
    const int64_t now = NowMs();
    o.set_container_number(e->container);
    o.set_alert_id(id);
    o.set_outcome_id(id + "-" + caller.account.name + "-" + std::to_string(now));
    o.set_inspected_at_ms(now);
    o.set_site(Field(*doc, "site").empty() ? e->discharge : Field(*doc, "site"));
    o.set_officer_unit(caller.account.name);
    o.set_quantity_description(Field(*doc, "quantity_description"));
    o.set_notes(Field(*doc, "notes"));
    auto final_it = doc->fields().find("final");
    o.set_final(final_it == doc->fields().end() || final_it->second.bool_value());
    auto reply = Report(o);
    if (!reply.ok()) return ReportFailed(reply.error());
    std::string workflow_json = e->workflow.Json();
    if (o.final()) {
      auto w = UpdateWorkflow(id, caller, [](Workflow& w) { w.status = "closed"; });
      if (w.ok()) workflow_json = w->Json();
    }
    Audit(caller.account.name, "outcome", id, e->container,
          result + (o.quantity_description().empty() ? "" : ": " + o.quantity_description()) + " (" + o.outcome_id() +
              ")");
    return Response::Json(200, "{\"outcome_id\":" + Q(o.outcome_id()) + ",\"accepted\":true,\"workflow\":" +
                                   workflow_json + "}");
  }

  // POST /api/outcomes: an InspectionOutcome as JSON, for integrations. The
  // caller must be able to read the alert (or some alert of the container),
  // unless it holds every region ("*"): a national system reports the
  // outcomes of examinations no alert asked for, too.
  Response RawOutcome(const http::Request& req, const Caller& caller) {
    v1::InspectionOutcome o;
    auto parsed = google::protobuf::util::JsonStringToMessage(req.body, &o);
    if (!parsed.ok())
      return Response::Error(400, "body is not an InspectionOutcome in JSON: " + ClipText(std::string(parsed.message()), 256));
    if (!operators::OutcomeSizeProblems(o).empty()) return ReportFailed(Report(o).error());
    const bool national = std::find(caller.account.regions.begin(), caller.account.regions.end(), "*") !=
                          caller.account.regions.end();
    bool allowed = national;
    {
      std::lock_guard lock(mu_);
      if (!o.alert_id().empty()) {
        auto it = entries_.find(o.alert_id());
        if (it != entries_.end() && it->second.container != o.container_number())
          return Response::Error(400, "alert " + o.alert_id() + " is not of container " + o.container_number());
        allowed = allowed || (it != entries_.end() && caller.account.MayRead(it->second.regions));
      } else if (auto it = by_container_.find(o.container_number()); it != by_container_.end()) {
        for (const auto& id : it->second) allowed = allowed || caller.account.MayRead(entries_.at(id).regions);
      }
    }
    if (!allowed) return Response::Error(403, "no alert of this container in your regions at this hub");
    if (!national) {
      // A regional caller reports as itself: its name is the unit, and the
      // outcome id is its own, so it can neither speak for another unit nor
      // overwrite another's outcome.
      o.set_officer_unit(caller.account.name);
      o.set_outcome_id(caller.account.name + "/" + o.outcome_id());
    }
    auto reply = Report(o);
    if (!reply.ok()) return ReportFailed(reply.error());
    Audit(caller.account.name, "outcome", o.alert_id(), o.container_number(), "via API (" + o.outcome_id() + ")");
    return Response::Json(200, *reply);
  }

  Response LiveEvents(const Caller& caller) {
    auto joined = feed_.Join((caller.account.is_token ? "t/" : "u/") + caller.account.name, !caller.account.is_token,
                             caller.account.regions);
    if (!joined)
      return Response::Error(503, "too many live feeds open (at most " + std::to_string(kMaxFeedsPerCaller) +
                                      " per person, " + std::to_string(kMaxFeeds) + " per hub)");
    // Leaves the feed when the last copy of the stream goes, whether or not
    // the stream ever ran (the client may be gone before the headers).
    struct Ticket {
      LiveFeed* feed;
      std::shared_ptr<LiveFeed::Listener> listener;
      ~Ticket() { feed->Leave(listener); }
    };
    auto ticket = std::shared_ptr<Ticket>(new Ticket{&feed_, std::move(joined)});  // no temporary to destroy
    Response r;
    r.content_type = "text/event-stream";
    r.stream = [this, caller, ticket](http::StreamWriter& w) {
      const auto& listener = ticket->listener;
      bool ok = w.Write(": boxwatch hub " + options_.hub_id + " live feed\n\n");
      auto last = Clock::now();
      auto checked = Clock::now();
      while (ok && !w.stopping() && w.open()) {
        // Logout, a removed account, new regions or a new password end the
        // stream within seconds, as they end the session.
        if (Clock::now() - checked > std::chrono::seconds(5)) {
          if (!StillValid(caller)) break;
          checked = Clock::now();
        }
        bool overflowed = false;
        auto events = feed_.Take(listener, milliseconds(500), &overflowed);
        for (const auto& e : events) ok = ok && w.Write(*e);
        if (overflowed) {
          (void)w.Write("event: overflow\ndata: {}\n\n");
          break;
        }
        if (!events.empty()) last = Clock::now();
        if (ok && Clock::now() - last > std::chrono::seconds(15)) {
          ok = w.Write(": keep-alive\n\n");
          last = Clock::now();
        }
      }
    };
    return r;
  }

  Response StatusJson() {
    const std::string why = hooks_.not_ready ? hooks_.not_ready() : "";
    std::string regions;
    for (const auto& r : options_.regions) regions += (regions.empty() ? "" : ",") + Q(r);
    std::string minutes;
    int64_t last = 0;
    size_t stored = 0;
    {
      std::lock_guard lock(mu_);
      const int64_t now_minute = NowMs() / 60000;
      for (int64_t m = now_minute - 29; m <= now_minute; ++m) {
        auto it = per_minute_.find(m);
        const std::array<int64_t, 4> c = it == per_minute_.end() ? std::array<int64_t, 4>{} : it->second;
        minutes += std::string(minutes.empty() ? "" : ",") + "{\"minute_ms\":" + std::to_string(m * 60000) +
                   ",\"LOW\":" + std::to_string(c[0]) + ",\"MEDIUM\":" + std::to_string(c[1]) +
                   ",\"HIGH\":" + std::to_string(c[2]) + ",\"CRITICAL\":" + std::to_string(c[3]) + "}";
      }
      last = last_alert_ms_;
      stored = entries_.size();
    }
    return Response::Json(200, "{\"hub_id\":" + Q(options_.hub_id) + ",\"regions\":[" + regions +
                                   "],\"connected\":" + (why.empty() ? "true" : "false") + ",\"not_ready\":" + Q(why) +
                                   ",\"alerts_stored\":" + std::to_string(stored) + ",\"last_alert_ms\":" +
                                   std::to_string(last) + ",\"live_clients\":" + std::to_string(feed_.size()) +
                                   ",\"per_minute\":[" + minutes + "]}");
  }

  Response AuditList(const http::Request& req, const Caller& caller) {
    if (!Supervises(caller)) return Response::Error(403, "the audit trail is for supervisors");
    const std::string alert = req.Param("alert_id"), container = req.Param("container"), user = req.Param("user");
    const uint64_t before = std::strtoull(req.Param("before", "0").c_str(), nullptr, 10);
    const size_t limit = std::clamp<size_t>(std::strtoul(req.Param("limit", "100").c_str(), nullptr, 10), 1, 1000);
    auto contains = [](const std::string& entry, const std::string& key, const std::string& value) {
      return value.empty() || entry.find("\"" + key + "\":" + Q(value)) != std::string::npos;
    };
    auto entries = store_->Audit(before, limit, [&](const std::string& e) {
      return contains(e, "alert_id", alert) && contains(e, "container_number", container) && contains(e, "user", user);
    });
    if (!entries.ok()) return Response::Error(500, entries.error().message);
    std::string body;
    for (const auto& [seq, e] : *entries)
      body += (body.empty() ? "" : ",") + std::string("{\"seq\":") + std::to_string(seq) + "," + e.substr(1);
    return Response::Json(200, "{\"entries\":[" + body + "]}");
  }

  Response Users(const Caller& caller) {
    if (!Supervises(caller)) return Response::Error(403, "the user list is for supervisors");
    std::string body;
    std::lock_guard lock(accounts_mu_);
    for (const auto& a : accounts_.all())
      if (!a.is_token) body += (body.empty() ? "" : ",") + UserJson(a);
    return Response::Json(200, "{\"users\":[" + body + "]}");
  }

  ControlRoomOptions options_;
  HubStore* store_;
  Hooks hooks_;
  LiveFeed feed_;

  std::mutex accounts_mu_;
  Accounts accounts_;
  std::tuple<ino_t, off_t, int64_t> accounts_version_{};

  std::mutex sessions_mu_;
  std::unordered_map<std::string, Session> sessions_;

  std::mutex failures_mu_;
  std::unordered_map<std::string, std::deque<int64_t>> failures_;
  std::atomic<int> hashing_{0};  // argon2id checks running

  std::mutex workflow_mu_;  // one workflow change at a time

  std::mutex mu_;  // guards the index below
  std::unordered_map<std::string, Entry> entries_;
  std::set<OrderKey> order_;
  std::unordered_map<std::string, std::vector<std::string>> by_container_;
  std::map<int64_t, std::array<int64_t, 4>> per_minute_;
  int64_t last_alert_ms_ = 0;
};

Result<std::unique_ptr<ControlRoom>> ControlRoom::Open(const ControlRoomOptions& options, HubStore* store,
                                                       Hooks hooks) {
  auto impl = std::make_unique<Impl>(options, store, std::move(hooks));
  if (Status s = impl->Init(); !s.ok()) return s.error();
  return std::unique_ptr<ControlRoom>(new ControlRoom(std::move(impl)));
}

ControlRoom::ControlRoom(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ControlRoom::~ControlRoom() = default;
void ControlRoom::AlertsStored(const std::vector<const v1::Alert*>& alerts) { impl_->AlertsStored(alerts); }
http::Response ControlRoom::Handle(const http::Request& request) { return impl_->Handle(request); }

std::vector<std::pair<std::string, std::string>> ControlRoom::SecurityHeaders(bool tls) {
  std::vector<std::pair<std::string, std::string>> h = {
      {"Content-Security-Policy",
       "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"},
      {"X-Content-Type-Options", "nosniff"},
      {"X-Frame-Options", "DENY"},
      {"Referrer-Policy", "no-referrer"},
  };
  if (tls) h.emplace_back("Strict-Transport-Security", "max-age=31536000");
  return h;
}

}  // namespace boxwatch::delivery
