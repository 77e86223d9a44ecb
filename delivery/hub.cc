#include "delivery/hub.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <list>
#include <mutex>
#include <random>
#include <thread>

#include "boxwatch/v1/alert_service.grpc.pb.h"
#include "core/http.h"
#include "core/log.h"
#include "core/types.h"
#include "delivery/control_room.h"
#include "delivery/hub_store.h"
#include "delivery/probes.h"
#include "delivery/tls.h"
#include "operators/decode.h"

namespace boxwatch::delivery {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

bool Permanent(grpc::StatusCode code) {
  return code == grpc::StatusCode::PERMISSION_DENIED || code == grpc::StatusCode::INVALID_ARGUMENT ||
         code == grpc::StatusCode::UNAUTHENTICATED || code == grpc::StatusCode::UNIMPLEMENTED;
}

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    default: return "ERROR";
  }
}

}  // namespace

std::string HubOptions::Validate() const {
  std::vector<std::string> problems;
  if (hub_id.empty()) problems.push_back("--hub-id is required");
  if (dispatcher.empty()) problems.push_back("--dispatcher is required (host:port of a dispatcher)");
  if (regions.empty()) problems.push_back("--regions is required (comma-separated region ids)");
  for (const auto& r : regions)
    if (r.empty()) problems.push_back("--regions has an empty entry");
  if (state_dir.empty()) problems.push_back("--state-dir must not be empty");
  if (!insecure) {
    const std::string missing = TlsFiles{tls_ca, tls_cert, tls_key}.Missing();
    if (!missing.empty()) problems.push_back(missing + " required for TLS (or --insecure for a local demo)");
  }
  if (accounts_file.empty()) problems.push_back("--accounts is required (the control room's accounts file)");
  if (!http_plaintext && (http_cert.empty() || http_key.empty()))
    problems.push_back("--http-cert and --http-key are required for the control room's HTTPS (or --http-plaintext "
                       "for a local demo)");
  if (ack_window == 0) problems.push_back("--ack-window must be at least 1");
  if (max_batch < 1) problems.push_back("--max-batch must be at least 1");
  if (reconnect_min_ms < 10 || reconnect_max_ms < reconnect_min_ms)
    problems.push_back("--reconnect-min-ms must be at least 10 and not above --reconnect-max-ms");
  std::string all;
  for (const auto& p : problems) all += (all.empty() ? "" : "\n") + p;
  return all;
}

class Hub::Impl {
 public:
  Impl(HubOptions options, std::shared_ptr<prometheus::Registry> registry, EventSink sink)
      : options_(std::move(options)), registry_(std::move(registry)), probe_(*registry_), sink_(std::move(sink)) {}

  Status Init() {
    auto store = HubStore::Open(options_.state_dir);
    if (!store.ok()) return store.error();
    store_ = std::move(*store);
    if (options_.insecure) {
      creds_ = grpc::InsecureChannelCredentials();
    } else {
      auto tls = ClientTls({options_.tls_ca, options_.tls_cert, options_.tls_key});
      if (!tls.ok()) return tls.error();
      creds_ = *tls;
    }
    grpc::ChannelArguments args;
    if (!options_.tls_server_name.empty()) args.SetSslTargetNameOverride(options_.tls_server_name);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(options_.reconnect_max_ms));
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, static_cast<int>(options_.reconnect_min_ms));
    channel_ = grpc::CreateCustomChannel(options_.dispatcher, creds_, args);
    stub_ = v1::AlertService::NewStub(channel_);
    ControlRoom::Hooks hooks;
    hooks.not_ready = [this] { return NotReady(); };
    hooks.report_outcome = [this](const v1::InspectionOutcome& o) { return ReportOutcome(o); };
    auto room = ControlRoom::Open({options_.hub_id, options_.regions, options_.accounts_file, !options_.http_plaintext},
                                  store_.get(), std::move(hooks));
    if (!room.ok()) return Error(room.error().code, "control room: " + room.error().message);
    room_ = std::move(*room);
    http::Server::Options ho;
    ho.listen = options_.http_listen;
    if (!options_.http_plaintext) {
      ho.tls_cert = options_.http_cert;
      ho.tls_key = options_.http_key;
    }
    ho.default_headers = ControlRoom::SecurityHeaders(!options_.http_plaintext);
    auto server = http::Server::Start(ho, [this](const http::Request& r) { return room_->Handle(r); });
    if (!server.ok()) return Error(server.error().code, "control-room API: " + server.error().message);
    http_ = std::move(*server);
    return Status::Ok();
  }

  ~Impl() {
    if (http_) http_->Stop();
  }

  int http_port() const { return http_->port(); }

  std::string NotReady() const {
    std::lock_guard lock(mu_);
    return connected_ ? "" : not_ready_;
  }

  void Emit(const std::string& json) {
    if (sink_) sink_(json);
  }

  Status Run(const std::atomic<bool>& stop) {
    int64_t backoff = options_.reconnect_min_ms;
    std::mt19937_64 rng(std::random_device{}());
    bool first = true;
    while (!stop) {
      if (!first) probe_.Reconnect();
      first = false;
      grpc::Status status = Session(stop);
      SetConnected(false, status.ok() ? "stopped" : status.error_message());
      if (stop) break;
      if (Permanent(status.error_code())) {
        Emit(std::string("{\"event\":\"refused\",\"code\":\"") + CodeName(status.error_code()) + "\",\"message\":\"" +
             http::JsonEscape(status.error_message()) + "\"}");
        return Error(Errc::kInvalidArgument, std::string("dispatcher refused the subscription (") +
                                                 CodeName(status.error_code()) + "): " + status.error_message());
      }
      if (received_in_session_) backoff = options_.reconnect_min_ms;
      Emit(std::string("{\"event\":\"disconnected\",\"code\":\"") + CodeName(status.error_code()) +
           "\",\"retry_ms\":" + std::to_string(backoff) + "}");
      BW_LOG(kWarn, "hub") << "stream to " << options_.dispatcher << " ended (" << CodeName(status.error_code())
                           << ": " << status.error_message() << "); retrying in " << backoff << " ms";
      // Sleep with jitter, waking early on stop.
      const int64_t sleep_ms = backoff / 2 + static_cast<int64_t>(rng() % static_cast<uint64_t>(backoff / 2 + 1));
      const auto until = Clock::now() + milliseconds(sleep_ms);
      while (!stop && Clock::now() < until) std::this_thread::sleep_for(milliseconds(20));
      backoff = std::min(options_.reconnect_max_ms, backoff * 2);
    }
    return Status::Ok();
  }

 private:
  void SetConnected(bool up, const std::string& why) {
    std::lock_guard lock(mu_);
    connected_ = up;
    if (!up) not_ready_ = "not subscribed: " + why;
    probe_.Connected(up);
  }

  grpc::Status Session(const std::atomic<bool>& stop) {
    received_in_session_ = false;
    grpc::ClientContext ctx;
    auto token = store_->Token();
    if (!token.ok()) return {grpc::StatusCode::INTERNAL, token.error().message};
    auto stream = stub_->Subscribe(&ctx);
    v1::SubscribeRequest hello;
    auto* sub = hello.mutable_subscription();
    sub->set_hub_id(options_.hub_id);
    for (const auto& r : options_.regions) sub->add_regions(r);
    sub->set_min_priority(options_.min_priority);
    sub->set_resume_token(*token);
    sub->set_ack_window(options_.ack_window);
    if (!stream->Write(hello)) return stream->Finish();

    std::mutex mu;
    std::condition_variable cv;
    std::deque<v1::SubscribeResponse> inbox;
    bool ended = false;
    std::thread reader([&] {
      v1::SubscribeResponse r;
      while (stream->Read(&r)) {
        std::lock_guard lock(mu);
        inbox.push_back(std::move(r));
        cv.notify_all();
      }
      std::lock_guard lock(mu);
      ended = true;
      cv.notify_all();
    });

    grpc::Status failure = grpc::Status::OK;
    for (;;) {
      std::deque<v1::SubscribeResponse> got;
      {
        std::unique_lock lock(mu);
        cv.wait_for(lock, milliseconds(100), [&] { return ended || !inbox.empty(); });
        if (inbox.empty() && (ended || stop)) break;
        if (stop) break;
        while (!inbox.empty() && static_cast<int64_t>(got.size()) < options_.max_batch) {
          got.push_back(std::move(inbox.front()));
          inbox.pop_front();
        }
      }
      if (got.empty()) continue;
      if (!received_in_session_) {
        received_in_session_ = true;
        SetConnected(true, "");
        Emit("{\"event\":\"subscribed\",\"hub_id\":\"" + http::JsonEscape(options_.hub_id) + "\",\"dispatcher\":\"" +
             http::JsonEscape(options_.dispatcher) + "\"}");
      }
      std::vector<v1::Alert> alerts;
      std::string newest_token;
      for (auto& r : got) {
        if (!r.has_alert()) continue;
        alerts.push_back(std::move(*r.mutable_alert()->mutable_alert()));
        newest_token = r.alert().resume_token();
      }
      if (alerts.empty()) continue;
      const auto t0 = Clock::now();
      auto stored = store_->Store(alerts, newest_token);
      if (!stored.ok()) {
        BW_LOG(kError, "hub") << stored.error().message;
        failure = {grpc::StatusCode::INTERNAL, stored.error().message};
        break;
      }
      probe_.BatchWritten(std::chrono::duration<double>(Clock::now() - t0).count());
      const int64_t now = NowMs();
      for (size_t i = 0; i < stored->duplicates; ++i) probe_.Duplicate();
      std::vector<const v1::Alert*> fresh;
      for (size_t i : stored->stored) {
        const v1::Alert& a = alerts[i];
        probe_.Stored(a.priority(), static_cast<double>(now - a.emit_time_ms()) / 1000.0);
        fresh.push_back(&a);
      }
      room_->AlertsStored(fresh);
      v1::SubscribeRequest ack;
      for (const auto& a : alerts) ack.mutable_ack()->add_alert_ids(a.alert_id());
      ack.mutable_ack()->set_resume_token(newest_token);
      if (!stream->Write(ack)) break;  // the stream broke; Finish says why
    }
    bool server_ended;
    {
      std::lock_guard lock(mu);
      server_ended = ended;
    }
    // Cancelling a stream the server already ended would hide its status.
    if (!server_ended) ctx.TryCancel();
    reader.join();
    grpc::Status finish = stream->Finish();
    if (!failure.ok()) return failure;
    return finish;
  }

  Result<std::string> ReportOutcome(const v1::InspectionOutcome& o) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    ctx.AddMetadata("x-boxwatch-hub-id", options_.hub_id);  // identity with --insecure (TLS uses the certificate)
    v1::ReportOutcomeResponse resp;
    grpc::Status s = stub_->ReportOutcome(&ctx, o, &resp);
    probe_.OutcomeReported(s.ok());
    if (s.error_code() == grpc::StatusCode::INVALID_ARGUMENT) return Error(Errc::kInvalidArgument, s.error_message());
    if (!s.ok())
      return Error(Errc::kIo, std::string("dispatcher: ") + CodeName(s.error_code()) + ": " + s.error_message());
    return ProtoJson(resp);
  }

  HubOptions options_;
  std::shared_ptr<prometheus::Registry> registry_;
  HubProbe probe_;
  EventSink sink_;
  std::unique_ptr<HubStore> store_;
  std::shared_ptr<grpc::ChannelCredentials> creds_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AlertService::Stub> stub_;
  std::unique_ptr<ControlRoom> room_;
  std::unique_ptr<http::Server> http_;
  mutable std::mutex mu_;
  bool connected_ = false;
  std::string not_ready_ = "not subscribed yet";
  bool received_in_session_ = false;
};

Result<std::unique_ptr<Hub>> Hub::Start(const HubOptions& options, std::shared_ptr<prometheus::Registry> registry,
                                        EventSink sink) {
  if (std::string problems = options.Validate(); !problems.empty()) return Error(Errc::kInvalidArgument, problems);
  auto impl = std::make_unique<Impl>(options, std::move(registry), std::move(sink));
  if (Status s = impl->Init(); !s.ok()) return s.error();
  return std::unique_ptr<Hub>(new Hub(std::move(impl)));
}

Hub::Hub(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Hub::~Hub() = default;
int Hub::http_port() const { return impl_->http_port(); }
std::string Hub::NotReady() const { return impl_->NotReady(); }
Status Hub::Run(const std::atomic<bool>& stop) { return impl_->Run(stop); }

}  // namespace boxwatch::delivery
