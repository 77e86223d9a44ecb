#include "delivery/dispatcher.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <mutex>
#include <queue>
#include <set>
#include <sstream>
#include <thread>

#include "boxwatch/v1/alert_service.grpc.pb.h"
#include "core/log.h"
#include "core/types.h"
#include "delivery/probes.h"
#include "delivery/resume_cursor.h"
#include "delivery/tls.h"
#include "operators/decode.h"
#include "pipeline/partitioner.h"
#include "pipeline/topics.h"

namespace boxwatch::delivery {
namespace {

// An alert record's value, with emit_time_ms from its header (the worker
// stores 0 in the value; older records carry it in the field).
bool ParseAlertRecord(const pipeline::Message& m, v1::Alert* out) {
  if (!out->ParseFromArray(m.value().data(), static_cast<int>(m.value().size()))) return false;
  if (out->emit_time_ms() == 0) {
    if (auto h = m.header(pipeline::kEmitTimeHeader)) {
      int64_t v = 0;
      const auto [end, ec] = std::from_chars(h->data(), h->data() + h->size(), v);
      if (ec == std::errc() && end == h->data() + h->size()) out->set_emit_time_ms(v);
    }
  }
  return true;
}

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string Join(const std::set<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// An alert waiting in a stream's queue. Highest priority first; within a
// priority, the oldest emitted first.
struct Queued {
  v1::Priority priority;
  int64_t emit_time_ms;
  int32_t partition;
  int64_t offset;
  std::shared_ptr<v1::Alert> alert;
  bool backlog = false;  // read by a backlog sweep's pass
  bool operator<(const Queued& o) const {  // std::priority_queue pops the largest
    if (priority != o.priority) return priority < o.priority;
    if (emit_time_ms != o.emit_time_ms) return emit_time_ms > o.emit_time_ms;
    if (partition != o.partition) return partition > o.partition;
    return offset > o.offset;
  }
};

}  // namespace

Result<HubGrants> ParseHubGrants(const std::string& yaml_text, const std::string& source) {
  std::vector<std::string> problems;
  HubGrants grants;
  try {
    YAML::Node root = YAML::Load(yaml_text);
    auto where = [&](const YAML::Node& n) { return source + ":" + std::to_string(n.Mark().line + 1) + ": "; };
    if (!root.IsMap() || !root["hubs"] || !root["hubs"].IsSequence()) {
      problems.push_back(source + ": expected a mapping with a list `hubs:` of {id, regions}");
    } else {
      for (const auto& hub : root["hubs"]) {
        if (!hub.IsMap()) {
          problems.push_back(where(hub) + "each hub is a mapping {id, regions}");
          continue;
        }
        for (const auto& kv : hub) {
          const auto key = kv.first.as<std::string>();
          if (key != "id" && key != "regions") problems.push_back(where(kv.first) + "unknown key `" + key + "`");
        }
        const std::string id = hub["id"] && hub["id"].IsScalar() ? hub["id"].as<std::string>() : "";
        if (id.empty()) {
          problems.push_back(where(hub) + "hub without an `id` (its certificate's common name)");
          continue;
        }
        if (grants.count(id)) problems.push_back(where(hub) + "hub " + id + " is listed twice");
        auto& regions = grants[id];
        if (!hub["regions"] || !hub["regions"].IsSequence() || hub["regions"].size() == 0) {
          problems.push_back(where(hub) + "hub " + id + " needs a non-empty list `regions`");
          continue;
        }
        for (const auto& r : hub["regions"]) {
          const std::string region = r.IsScalar() ? r.as<std::string>() : "";
          if (region.empty()) problems.push_back(where(r) + "hub " + id + " has an empty region");
          else regions.insert(region);
        }
      }
    }
  } catch (const YAML::Exception& e) {
    problems.push_back(source + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (!problems.empty()) {
    std::string all;
    for (const auto& p : problems) all += (all.empty() ? "" : "\n") + p;
    return Error(Errc::kInvalidArgument, all);
  }
  return grants;
}

Result<HubGrants> LoadHubGrants(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return Error(Errc::kInvalidArgument, "hubs file: " + text.error().message);
  return ParseHubGrants(*text, path);
}

std::string DispatcherOptions::Validate() const {
  std::vector<std::string> problems;
  if (bootstrap.empty()) problems.push_back("--bootstrap is required (Kafka bootstrap servers)");
  if (hubs_file.empty()) problems.push_back("--hubs is required (the hub id -> regions file)");
  if (!insecure) {
    const std::string missing = TlsFiles{tls_ca, tls_cert, tls_key}.Missing();
    if (!missing.empty()) problems.push_back(missing + " required for TLS (or --insecure for a local demo)");
  }
  if (default_ack_window == 0 || default_ack_window > max_ack_window)
    problems.push_back("--ack-window must be between 1 and --max-ack-window (" + std::to_string(max_ack_window) + ")");
  if (max_buffered < 1) problems.push_back("--max-buffered must be at least 1");
  if (sweep_backlog < 0) problems.push_back("--sweep-backlog must not be negative (0: never sweep)");
  if (heartbeat_ms < 100) problems.push_back("--heartbeat-ms must be at least 100");
  if (catch_up_ms < 0) problems.push_back("--catch-up-ms must not be negative");
  std::string all;
  for (const auto& p : problems) all += (all.empty() ? "" : "\n") + p;
  return all;
}

class Dispatcher::Impl final : public v1::AlertService::Service {
 public:
  Impl(DispatcherOptions options, HubGrants grants, std::shared_ptr<prometheus::Registry> registry)
      : options_(std::move(options)),
        grants_(std::move(grants)),
        registry_(std::move(registry)),
        probe_(*registry_),
        names_(options_.topic_prefix),
        alerts_topic_(names_.Name(pipeline::TopicRole::kAlerts)),
        outcomes_topic_(names_.Name(pipeline::TopicRole::kOutcomes)) {
    std::vector<std::string> hubs;
    for (const auto& [id, _] : grants_) hubs.push_back(id);
    probe_.KnownHubs(hubs);
  }

  Status Init() {
    pipeline::KafkaProducer::Options po;
    po.bootstrap = options_.bootstrap;
    po.extra = options_.kafka;
    auto producer = pipeline::KafkaProducer::Create(po);
    if (!producer.ok()) return producer.error();
    producer_ = std::move(*producer);
    auto admin = pipeline::KafkaAdmin::Create(options_.bootstrap, options_.kafka);
    if (!admin.ok()) return admin.error();
    admin_ = std::move(*admin);

    std::shared_ptr<grpc::ServerCredentials> creds;
    if (options_.insecure) {
      creds = grpc::InsecureServerCredentials();
    } else {
      auto tls = ServerTls({options_.tls_ca, options_.tls_cert, options_.tls_key});
      if (!tls.ok()) return tls.error();
      creds = *tls;
    }
    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder builder;
    builder.AddListeningPort(options_.listen, creds, &port_);
    builder.RegisterService(this);
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    server_ = builder.BuildAndStart();
    if (!server_ || port_ == 0)
      return Error(Errc::kIo, "cannot serve gRPC on " + options_.listen + " (address in use or malformed)");
    RefreshHealth();
    health_thread_ = std::thread([this] {
      std::unique_lock lock(stop_mu_);
      while (!stop_cv_.wait_for(lock, milliseconds(5000), [this] { return stopping_.load(); })) {
        lock.unlock();
        RefreshHealth();
        lock.lock();
      }
    });
    return Status::Ok();
  }

  void RefreshHealth() {
    auto counts = admin_->PartitionCounts({alerts_topic_, outcomes_topic_}, milliseconds(5000));
    std::string why;
    if (!counts.ok()) why = "Kafka does not answer: " + counts.error().message;
    else if (!counts->count(alerts_topic_)) why = "topic " + alerts_topic_ + " does not exist (boxwatch topics create)";
    else if (!counts->count(outcomes_topic_)) why = "topic " + outcomes_topic_ + " does not exist (boxwatch topics create)";
    {
      std::lock_guard lock(health_mu_);
      not_ready_ = why;
      if (counts.ok() && counts->count(alerts_topic_)) alert_partitions_ = counts->at(alerts_topic_);
      if (counts.ok() && counts->count(outcomes_topic_)) outcome_partitions_ = counts->at(outcomes_topic_);
    }
    if (server_) server_->GetHealthCheckService()->SetServingStatus(why.empty());
  }

  std::string NotReady() const {
    std::lock_guard lock(health_mu_);
    return not_ready_;
  }

  void Shutdown() {
    if (stopping_.exchange(true)) return;
    stop_cv_.notify_all();
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + milliseconds(2000));
    if (health_thread_.joinable()) health_thread_.join();
  }

  void Wait() {
    std::unique_lock lock(stop_mu_);
    stop_cv_.wait(lock, [this] { return stopping_.load(); });
  }

  int port() const { return port_; }
  size_t open_streams() const { return open_streams_.load(); }

  // --- AlertService ---

  grpc::Status Subscribe(grpc::ServerContext* ctx,
                         grpc::ServerReaderWriter<v1::SubscribeResponse, v1::SubscribeRequest>* stream) override {
    v1::SubscribeRequest first;
    if (!stream->Read(&first)) return {grpc::StatusCode::CANCELLED, "stream closed before a subscription"};
    if (!first.has_subscription()) {
      probe_.Refused("invalid_argument");
      return {grpc::StatusCode::INVALID_ARGUMENT, "the first message on Subscribe must be a Subscription"};
    }
    const v1::Subscription& sub = first.subscription();
    std::string identity = sub.hub_id();
    if (!options_.insecure) {
      auto cns = ctx->auth_context()->FindPropertyValues("x509_common_name");
      if (cns.empty()) {
        probe_.Refused("unauthenticated");
        return {grpc::StatusCode::UNAUTHENTICATED, "no client certificate common name"};
      }
      identity = std::string(cns.front().data(), cns.front().size());
      if (sub.hub_id() != identity) {
        probe_.Refused("permission_denied");
        return {grpc::StatusCode::PERMISSION_DENIED,
                "hub_id " + sub.hub_id() + " does not match the certificate identity " + identity};
      }
    }
    auto grant = grants_.find(identity);
    if (grant == grants_.end()) {
      probe_.Refused("permission_denied");
      return {grpc::StatusCode::PERMISSION_DENIED,
              "hub " + identity + " is not in the dispatcher's hubs file, so it may read no region"};
    }
    if (sub.regions().empty()) {
      probe_.Refused("invalid_argument");
      return {grpc::StatusCode::INVALID_ARGUMENT, "the subscription names no region"};
    }
    std::set<std::string> regions;
    for (const auto& r : sub.regions()) {
      if (!grant->second.count(r)) {
        probe_.Refused("permission_denied");
        BW_LOG(kWarn, "dispatcher") << "refused hub " << identity << ": region " << r;
        return {grpc::StatusCode::PERMISSION_DENIED,
                "hub " + identity + " may not read region " + r + " (it may read: " + Join(grant->second) + ")"};
      }
      regions.insert(r);
    }
    auto cursor = DeliveryCursor::FromToken(sub.resume_token(), alerts_topic_);
    if (!cursor.ok()) {
      probe_.Refused("invalid_argument");
      return {grpc::StatusCode::INVALID_ARGUMENT, cursor.error().message};
    }
    const uint32_t window = sub.ack_window() == 0 ? options_.default_ack_window
                                                  : std::min(sub.ack_window(), options_.max_ack_window);
    open_streams_++;
    probe_.SubscriberOpened(identity);
    BW_LOG(kInfo, "dispatcher") << "hub " << identity << " subscribed to " << Join(regions) << " from "
                                << (sub.resume_token().empty() ? "the start" : "its resume token") << ", window "
                                << window;
    grpc::Status result = Stream(ctx, stream, identity, regions, sub.min_priority(), std::move(*cursor), window);
    probe_.SubscriberClosed(identity);
    open_streams_--;
    BW_LOG(kInfo, "dispatcher") << "hub " << identity << " stream ended: "
                                << (result.ok() ? "ok" : result.error_message());
    return result;
  }

  grpc::Status ReportOutcome(grpc::ServerContext* ctx, const v1::InspectionOutcome* request,
                             v1::ReportOutcomeResponse* response) override {
    std::string caller;
    if (grpc::Status who = Caller(ctx, &caller); !who.ok()) return who;
    v1::InspectionOutcome o = *request;
    // Derived from the request as sent, so a retried call (same body, no
    // id) records the same outcome once.
    const uint32_t request_hash = pipeline::Murmur2(request->SerializeAsString());
    std::vector<std::string> problems = operators::OutcomeSizeProblems(o);
    if (problems.empty()) {
      if (auto schema = operators::SchemaProblem(o)) problems.push_back(*schema);  // e.g. result 42
    }
    auto number = ContainerNumber::Parse(o.container_number());
    if (!number.ok() && problems.empty()) problems.push_back(number.error().message);
    if (o.result() == v1::InspectionOutcome::RESULT_UNSPECIFIED)
      problems.push_back("result is required (NO_FINDING, DISCREPANCY or SEIZURE)");
    const int64_t now = NowMs();
    if (o.inspected_at_ms() == 0) o.set_inspected_at_ms(now);
    if (o.inspected_at_ms() > now + 600000) problems.push_back("inspected_at_ms is more than 10 minutes in the future");
    if (!problems.empty()) {
      probe_.Outcome(false);
      std::string all;
      for (const auto& p : problems) all += (all.empty() ? "" : "; ") + p;
      return {grpc::StatusCode::INVALID_ARGUMENT, all};
    }
    o.set_container_number(number->str());
    if (o.outcome_id().empty()) {
      char id[64];
      std::snprintf(id, sizeof id, "%s-%08x", number->str().c_str(), request_hash);
      o.set_outcome_id(id);
    }
    if (o.officer_unit().empty()) o.set_officer_unit(caller);
    std::string value;
    o.SerializeToString(&value);
    {
      std::lock_guard lock(producer_mu_);
      pipeline::OutRecord rec{.topic = outcomes_topic_, .key = o.container_number(), .value = value,
                              .timestamp_ms = o.inspected_at_ms()};
      Status s = producer_->Produce(rec);
      if (s.ok()) s = producer_->Flush(milliseconds(15000));
      if (!s.ok()) {
        probe_.Outcome(false);
        return {grpc::StatusCode::UNAVAILABLE, "cannot write to " + outcomes_topic_ + ": " + s.ToString()};
      }
    }
    probe_.Outcome(true);
    BW_LOG(kInfo, "dispatcher") << "outcome " << o.outcome_id() << " for " << o.container_number() << " recorded";
    response->set_outcome_id(o.outcome_id());
    response->set_accepted(true);
    return grpc::Status::OK;
  }

  grpc::Status GetContainer(grpc::ServerContext* ctx, const v1::GetContainerRequest* request,
                            v1::GetContainerResponse* response) override {
    std::string caller;
    if (grpc::Status who = Caller(ctx, &caller); !who.ok()) return who;
    const std::set<std::string>& visible = grants_.at(caller);
    if (request->container_number().size() > operators::kMaxContainerNumberBytes) {
      return {grpc::StatusCode::INVALID_ARGUMENT, "container_number is " +
                                                      std::to_string(request->container_number().size()) +
                                                      " bytes; the limit is " +
                                                      std::to_string(operators::kMaxContainerNumberBytes)};
    }
    auto number = ContainerNumber::Parse(request->container_number());
    if (!number.ok()) return {grpc::StatusCode::INVALID_ARGUMENT, number.error().message};
    response->set_container_number(number->str());
    int32_t partitions = 0;
    {
      std::lock_guard lock(health_mu_);
      partitions = alert_partitions_;
    }
    if (partitions <= 0) return {grpc::StatusCode::UNAVAILABLE, "topic " + alerts_topic_ + " is not available"};
    const int32_t p = pipeline::JavaPartition(number->str(), partitions);
    auto consumer = NewReader("lookup");
    if (!consumer.ok()) return {grpc::StatusCode::UNAVAILABLE, consumer.error().message};
    auto marks = (*consumer)->Watermarks(alerts_topic_, p, milliseconds(5000));
    if (!marks.ok()) return {grpc::StatusCode::UNAVAILABLE, marks.error().message};
    // Scan backwards in windows: the newest alert of the container wins.
    const int64_t window = 5000;
    int64_t end = marks->second;
    const auto deadline = Clock::now() + milliseconds(20000);
    while (end > marks->first && marks->second - end < options_.lookup_max_records) {
      const int64_t start = std::max(marks->first, end - window);
      if (Status s = (*consumer)->Assign({{alerts_topic_, p, start}}); !s.ok())
        return {grpc::StatusCode::UNAVAILABLE, s.ToString()};
      std::optional<v1::Alert> latest;
      for (;;) {
        if (Clock::now() > deadline) return {grpc::StatusCode::DEADLINE_EXCEEDED, "look-up took too long"};
        auto m = (*consumer)->Poll(milliseconds(200));
        if (!m.ok()) return {grpc::StatusCode::UNAVAILABLE, m.error().message};
        if (*m) {
          if ((*m)->offset() >= end) break;
          if ((*m)->key() == number->str()) {
            // Only alerts of regions the caller may read.
            v1::Alert a;
            bool may_see = false;
            if (ParseAlertRecord(**m, &a)) {
              for (const auto& r : a.regions()) may_see = may_see || visible.count(r) > 0;
            }
            if (may_see) latest = std::move(a);
          }
          if ((*m)->offset() >= end - 1) break;
        } else {
          auto pos = (*consumer)->Positions();
          if (pos.ok() && !pos->empty() && pos->front().offset >= end) break;
        }
      }
      if (latest) {
        response->set_found(true);
        *response->mutable_latest_alert() = std::move(*latest);
        return grpc::Status::OK;
      }
      end = start;
    }
    response->set_found(false);
    return grpc::Status::OK;
  }

 private:
  // The calling hub: its certificate's common name (or, with --insecure, the
  // x-boxwatch-hub-id metadata); it must be in the hubs file.
  grpc::Status Caller(grpc::ServerContext* ctx, std::string* id) const {
    if (options_.insecure) {
      auto it = ctx->client_metadata().find("x-boxwatch-hub-id");
      if (it != ctx->client_metadata().end()) *id = std::string(it->second.data(), it->second.size());
    } else {
      auto cns = ctx->auth_context()->FindPropertyValues("x509_common_name");
      if (!cns.empty()) *id = std::string(cns.front().data(), cns.front().size());
    }
    if (id->empty()) return {grpc::StatusCode::UNAUTHENTICATED, "the caller has no hub identity"};
    if (!grants_.count(*id))
      return {grpc::StatusCode::PERMISSION_DENIED, "hub " + *id + " is not in the dispatcher's hubs file"};
    return grpc::Status::OK;
  }

  Result<std::unique_ptr<pipeline::KafkaConsumer>> NewReader(const std::string& who) {
    pipeline::KafkaConsumer::Options co;
    co.bootstrap = options_.bootstrap;
    co.group_id = "boxwatch-dispatcher";  // never joined or committed: readers use Assign
    co.read_committed = true;
    co.extra = {{"enable.auto.commit", "false"},
                {"queued.max.messages.kbytes", "8192"},
                {"fetch.max.bytes", "8388608"},
                {"client.id", "boxwatch-dispatcher-" + who}};
    co.extra.insert(co.extra.end(), options_.kafka.begin(), options_.kafka.end());
    return pipeline::KafkaConsumer::Create(co);
  }

  grpc::Status Stream(grpc::ServerContext* ctx,
                      grpc::ServerReaderWriter<v1::SubscribeResponse, v1::SubscribeRequest>* stream,
                      const std::string& hub, const std::set<std::string>& regions, v1::Priority min_priority,
                      DeliveryCursor cursor, uint32_t window) {
    int32_t partitions = 0;
    {
      std::lock_guard lock(health_mu_);
      partitions = alert_partitions_;
    }
    if (partitions <= 0) return {grpc::StatusCode::UNAVAILABLE, "topic " + alerts_topic_ + " is not available"};
    auto reader = NewReader(hub);
    if (!reader.ok()) return {grpc::StatusCode::UNAVAILABLE, reader.error().message};
    auto& consumer = **reader;

    std::vector<pipeline::TopicPartitionOffset> assignment;
    std::map<int32_t, int64_t> expected;    // next offset each partition should show
    std::map<int32_t, int64_t> catch_up_to;  // high watermarks at connect
    int64_t behind = 0;
    for (int32_t p = 0; p < partitions; ++p) {
      auto marks = consumer.Watermarks(alerts_topic_, p, milliseconds(10000));
      if (!marks.ok()) return {grpc::StatusCode::UNAVAILABLE, marks.error().message};
      cursor.SkipBelow(p, marks->first);
      catch_up_to[p] = marks->second;
      behind += std::max<int64_t>(0, marks->second - std::max<int64_t>(cursor.StartOffset(p), marks->first));
    }
    // A hub further behind than a stream queues gets its backlog in passes,
    // most urgent first, while new alerts flow past it (docs/delivery.md).
    if (!cursor.sweeping() && options_.sweep_backlog > 0 && behind > options_.sweep_backlog) {
      cursor.StartSweep(catch_up_to, v1::PRIORITY_CRITICAL);
      BW_LOG(kInfo, "dispatcher") << "hub " << hub << " is " << behind
                                  << " alerts behind: its backlog goes in passes, CRITICAL first";
    }
    for (int32_t p = 0; p < partitions; ++p) {
      expected[p] = cursor.sweeping() ? cursor.LiveStart(p) : cursor.StartOffset(p);
      assignment.push_back({alerts_topic_, p, expected[p]});
    }
    if (Status s = consumer.Assign(assignment); !s.ok()) return {grpc::StatusCode::UNAVAILABLE, s.ToString()};
    // The sweep's reader: the backlog [PassStart, SweepEnd) of every
    // partition, once per priority.
    std::unique_ptr<pipeline::KafkaConsumer> backlog;
    std::map<int32_t, int64_t> backlog_expected;
    std::map<int32_t, std::multiset<int64_t>> pass_queued;  // offsets of the pass queued, not sent
    // Each pass has a reader of its own, so that no position of the last
    // pass can make this one look finished; partitions whose pass has
    // nothing left to read are not assigned.
    auto start_pass = [&]() -> Status {
      backlog.reset();
      auto b = NewReader(hub + "-backlog");
      if (!b.ok()) return Status(b.error());
      backlog = std::move(*b);
      std::vector<pipeline::TopicPartitionOffset> at;
      for (int32_t p = 0; p < partitions; ++p) {
        backlog_expected[p] = cursor.PassStart(p);
        if (backlog_expected[p] < cursor.SweepEnd(p)) at.push_back({alerts_topic_, p, backlog_expected[p]});
      }
      return backlog->Assign(at);
    };
    if (cursor.sweeping()) {
      if (Status s = start_pass(); !s.ok()) return {grpc::StatusCode::UNAVAILABLE, s.ToString()};
    }
    {
      // Tells the hub at once that the subscription is accepted.
      v1::SubscribeResponse hello;
      hello.mutable_heartbeat()->set_server_time_ms(NowMs());
      if (!stream->Write(hello)) return {grpc::StatusCode::CANCELLED, "hub went away"};
    }

    // Acknowledgements arrive on their own thread.
    std::mutex mu;
    std::condition_variable cv;
    uint64_t unacked = 0;
    bool closed = false;
    std::thread ack_reader([&] {
      v1::SubscribeRequest req;
      while (stream->Read(&req)) {
        if (!req.has_ack()) continue;
        std::lock_guard lock(mu);
        const uint64_t n = std::min<uint64_t>(unacked, req.ack().alert_ids_size());
        unacked -= n;
        probe_.Acked(hub, n);
        cv.notify_all();
      }
      std::lock_guard lock(mu);
      closed = true;
      cv.notify_all();
    });

    // The subscription's filter: at least its minimum priority, in one of its regions.
    auto for_hub = [&](const v1::Alert& a) {
      if (a.priority() < min_priority) return false;
      for (const auto& r : a.regions())
        if (regions.count(r) > 0) return true;
      return false;
    };
    std::priority_queue<Queued> queue;
    bool catching_up = !cursor.sweeping();
    const auto catch_up_deadline = Clock::now() + milliseconds(options_.catch_up_ms);
    auto last_write = Clock::now();
    grpc::Status result = grpc::Status::OK;
    auto is_closed = [&] {
      std::lock_guard lock(mu);
      return closed;
    };
    while (!stopping_ && !ctx->IsCancelled() && !is_closed()) {
      // 1. Read what is there, into the bounded queue.
      uint64_t room;
      {
        std::lock_guard lock(mu);
        room = unacked < window ? window - unacked : 0;
      }
      // Block on Kafka only when there is nothing else to do: when the
      // window is full, acknowledgements are waited for below instead.
      milliseconds wait((catching_up || (room > 0 && queue.empty())) && !backlog ? 50 : 0);
      for (int n = 0; static_cast<int64_t>(queue.size()) < options_.max_buffered && n < 5000; ++n) {
        auto m = consumer.Poll(n == 0 ? wait : milliseconds(0));
        if (!m.ok()) {
          if (m.error().code == Errc::kFatal) {
            result = {grpc::StatusCode::UNAVAILABLE, m.error().message};
            break;
          }
          BW_LOG(kWarn, "dispatcher") << "reading alerts for " << hub << ": " << m.error().message;
          break;
        }
        if (!*m) break;
        const int32_t p = (*m)->partition();
        const int64_t o = (*m)->offset();
        if (o > expected[p]) cursor.MarkDoneRange(p, expected[p], o);  // markers, aborted records
        expected[p] = o + 1;
        auto alert = std::make_shared<v1::Alert>();
        if (!ParseAlertRecord(**m, alert.get())) {
          if (!cursor.IsDone(p, o)) probe_.Undecodable();
          cursor.MarkDone(p, o);
          continue;
        }
        if (cursor.IsDone(p, o, alert->priority())) continue;
        if (!for_hub(*alert)) {
          cursor.MarkDone(p, o);
          continue;
        }
        queue.push({alert->priority(), alert->emit_time_ms(), p, o, std::move(alert)});
      }
      if (!result.ok()) break;
      if (backlog) {
        // 1b. The backlog pass: only its priority, while the queue has room.
        const int pass = cursor.sweep_priority();
        bool at_end = true;
        uint64_t backlog_room;
        {
          std::lock_guard lock(mu);
          backlog_room = unacked < window ? window - unacked : 0;
        }
        // Wait for the backlog's fetch only when there is nothing to send.
        const milliseconds backlog_wait(backlog_room > 0 && queue.empty() ? 20 : 0);
        for (int n = 0; static_cast<int64_t>(queue.size()) < options_.max_buffered && n < 5000; ++n) {
          auto m = backlog->Poll(n == 0 ? backlog_wait : milliseconds(0));
          if (!m.ok()) {
            if (m.error().code == Errc::kFatal) {
              result = {grpc::StatusCode::UNAVAILABLE, m.error().message};
              break;
            }
            BW_LOG(kWarn, "dispatcher") << "reading the backlog for " << hub << ": " << m.error().message;
            break;
          }
          if (!*m) break;
          const int32_t p = (*m)->partition();
          const int64_t o = (*m)->offset();
          if (o >= cursor.SweepEnd(p)) {  // past the backlog: the live reader has it
            backlog_expected[p] = std::max(backlog_expected[p], cursor.SweepEnd(p));
            continue;
          }
          backlog_expected[p] = o + 1;
          // Nothing read here is marked handled but what is sent: records of
          // other passes, of other regions, or undecodable ones are covered
          // by the pass's prefix and, at the sweep's end, by next_offset
          // (marking them would grow the token with every skipped record).
          auto alert = std::make_shared<v1::Alert>();
          if (!ParseAlertRecord(**m, alert.get()) || !for_hub(*alert)) continue;
          if (DeliveryCursor::PassOf(alert->priority()) != pass || cursor.IsDone(p, o, alert->priority())) continue;
          pass_queued[p].insert(o);
          queue.push({alert->priority(), alert->emit_time_ms(), p, o, std::move(alert), true});
        }
        if (!result.ok()) break;
        // The pass's handled prefix, and whether it has read its whole backlog.
        auto positions = backlog->Positions();
        for (int32_t p = 0; p < partitions; ++p) {
          int64_t reached = backlog_expected[p];
          if (positions.ok()) {  // also past trailing transaction markers
            for (const auto& tp : *positions)
              if (tp.partition == p && tp.offset >= cursor.SweepEnd(p)) reached = std::max(reached, tp.offset);
          }
          if (reached < cursor.SweepEnd(p)) at_end = false;
          const auto& q = pass_queued[p];
          cursor.PassReached(p, q.empty() ? reached : std::min(reached, *q.begin()));
        }
        bool pass_done = at_end;
        for (const auto& [p, q] : pass_queued) pass_done = pass_done && q.empty();
        if (pass_done) {
          const int next = pass - 1 >= std::max<int>(min_priority, v1::PRIORITY_LOW) ? pass - 1 : 0;
          cursor.NextPass(next);
          BW_LOG(kDebug, "dispatcher") << "hub " << hub << ": backlog pass " << v1::Priority_Name(
                                              static_cast<v1::Priority>(pass)) << " done";
          if (next == 0) {
            backlog.reset();
            BW_LOG(kInfo, "dispatcher") << "hub " << hub << ": backlog delivered";
          } else if (Status s = start_pass(); !s.ok()) {
            result = {grpc::StatusCode::UNAVAILABLE, s.ToString()};
            break;
          }
        }
      }
      if (catching_up) {
        std::set<int32_t> behind;
        for (const auto& [p, hw] : catch_up_to)
          if (expected[p] < hw) behind.insert(p);
        if (!behind.empty()) {
          // The position also moves past trailing transaction markers.
          if (auto pos = consumer.Positions(); pos.ok()) {
            for (const auto& tp : *pos)
              if (tp.offset >= catch_up_to[tp.partition]) behind.erase(tp.partition);
          }
        }
        const bool reached = behind.empty();
        if (reached || static_cast<int64_t>(queue.size()) >= options_.max_buffered ||
            Clock::now() >= catch_up_deadline) {
          BW_LOG(kDebug, "dispatcher") << "hub " << hub << " caught up: " << queue.size() << " queued"
                                       << (reached ? "" : " (stopped early)");
          catching_up = false;
        } else {
          continue;
        }
      }
      // 2. Send the most urgent queued alerts while the window has room.
      bool write_failed = false;
      while (!queue.empty()) {
        {
          std::lock_guard lock(mu);
          if (unacked >= window) break;
          ++unacked;
        }
        Queued q = queue.top();
        queue.pop();
        cursor.MarkDone(q.partition, q.offset);
        if (q.backlog) {
          auto& pq = pass_queued[q.partition];
          if (auto it = pq.find(q.offset); it != pq.end()) pq.erase(it);
          cursor.PassReached(q.partition, pq.empty() ? backlog_expected[q.partition] : *pq.begin());
        }
        v1::SubscribeResponse out;
        auto* env = out.mutable_alert();
        *env->mutable_alert() = *q.alert;
        env->set_resume_token(cursor.Token());
        if (!stream->Write(out)) {
          write_failed = true;
          break;
        }
        last_write = Clock::now();
        probe_.Sent(hub, static_cast<double>(NowMs() - q.alert->emit_time_ms()) / 1000.0);
      }
      if (write_failed) break;
      // 3. Heartbeat an idle stream.
      if (Clock::now() - last_write >= milliseconds(options_.heartbeat_ms)) {
        v1::SubscribeResponse hb;
        hb.mutable_heartbeat()->set_server_time_ms(NowMs());
        if (!stream->Write(hb)) break;
        last_write = Clock::now();
      }
      {
        std::unique_lock lock(mu);
        probe_.Backlog(hub, static_cast<double>(unacked), static_cast<double>(queue.size()));
        // A full window: nothing to send until an acknowledgement.
        if (unacked >= window) cv.wait_for(lock, milliseconds(50), [&] { return closed || unacked < window; });
      }
    }
    if (!is_closed()) ctx->TryCancel();  // ends the ack reader's Read
    ack_reader.join();
    if (stopping_) return {grpc::StatusCode::UNAVAILABLE, "dispatcher shutting down; reconnect"};
    return result;
  }

  DispatcherOptions options_;
  HubGrants grants_;
  std::shared_ptr<prometheus::Registry> registry_;
  DispatcherProbe probe_;
  pipeline::TopicNames names_;
  std::string alerts_topic_;
  std::string outcomes_topic_;
  std::unique_ptr<pipeline::KafkaAdmin> admin_;
  std::mutex producer_mu_;
  std::unique_ptr<pipeline::KafkaProducer> producer_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::atomic<size_t> open_streams_{0};
  mutable std::mutex health_mu_;
  std::string not_ready_ = "starting";
  int32_t alert_partitions_ = 0;
  int32_t outcome_partitions_ = 0;
  std::atomic<bool> stopping_{false};
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  std::thread health_thread_;
};

Result<std::unique_ptr<Dispatcher>> Dispatcher::Start(const DispatcherOptions& options,
                                                      std::shared_ptr<prometheus::Registry> registry) {
  if (std::string problems = options.Validate(); !problems.empty()) return Error(Errc::kInvalidArgument, problems);
  auto grants = LoadHubGrants(options.hubs_file);
  if (!grants.ok()) return grants.error();
  auto impl = std::make_unique<Impl>(options, std::move(*grants), std::move(registry));
  if (Status s = impl->Init(); !s.ok()) return s.error();
  return std::unique_ptr<Dispatcher>(new Dispatcher(std::move(impl)));
}

Dispatcher::Dispatcher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Dispatcher::~Dispatcher() { impl_->Shutdown(); }
int Dispatcher::port() const { return impl_->port(); }
std::string Dispatcher::NotReady() const { return impl_->NotReady(); }
size_t Dispatcher::open_streams() const { return impl_->open_streams(); }
void Dispatcher::Shutdown() { impl_->Shutdown(); }
void Dispatcher::Wait() { impl_->Wait(); }

}  // namespace boxwatch::delivery
