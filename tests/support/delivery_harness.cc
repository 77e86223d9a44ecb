#include "tests/support/delivery_harness.h"

#include "delivery/accounts.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "core/http.h"
#include "core/types.h"
#include "delivery/tls.h"
#include "pipeline/topics.h"

namespace boxwatch::testing {

v1::Alert MakeAlert(int n, v1::Priority priority, const std::vector<std::string>& regions) {
  // Valid ISO 6346 numbers: owner TSTU, serial n, computed check digit.
  char first_ten[16];
  std::snprintf(first_ten, sizeof first_ten, "TSTU%06d", n % 1000000);
  const std::string number = first_ten + std::to_string(ContainerNumber::CheckDigit(first_ten));
  v1::Alert a;
  a.set_alert_id(number + "-0001");
  a.set_container_number(number);
  a.set_sequence(1);
  a.set_priority(priority);
  a.set_score(10.0 * static_cast<int>(priority));
  for (const auto& r : regions) a.add_regions(r);
  a.set_event_time_ms(NowMs());
  a.set_emit_time_ms(NowMs());
  a.set_profile_name("test");
  a.set_profile_version("1");
  return a;
}

Result<std::unique_ptr<DeliveryHarness>> DeliveryHarness::Create(
    int partitions, const std::map<std::string, std::set<std::string>>& grants,
    const std::optional<std::string>& prefix, const std::function<void(std::vector<pipeline::TopicSpec>&)>& adjust) {
  auto h = std::make_unique<DeliveryHarness>();
  auto workers = WorkerHarness::Create(partitions, adjust, prefix);
  if (!workers.ok()) return workers.error();
  h->workers_ = std::move(*workers);
  h->pki_ = h->workers_->dir() + "/pki";
  std::string cmd = std::string(BOXWATCH_SOURCE_DIR) + "/scripts/make-test-pki " + h->pki_;
  for (const auto& [id, _] : grants) cmd += " " + id;
  cmd += " >/dev/null";
  if (std::system(cmd.c_str()) != 0) return Error{Errc::kIo, "scripts/make-test-pki failed: " + cmd};
  h->accounts_file_ = h->workers_->dir() + "/hub-accounts";
  {
    delivery::Accounts accounts;
    auto token = accounts.AddToken("tests", delivery::Role::kSupervisor, {"*"});
    if (!token.ok()) return token.error();
    if (Status s = accounts.Save(h->accounts_file_); !s.ok()) return s.error();
    h->hub_token_ = *token;
  }
  h->hubs_file_ = h->workers_->dir() + "/hubs.yaml";
  std::ofstream out(h->hubs_file_);
  out << "hubs:\n";
  for (const auto& [id, regions] : grants) {
    out << "  - id: " << id << "\n    regions: [";
    bool first = true;
    for (const auto& r : regions) {
      out << (first ? "" : ", ") << r;
      first = false;
    }
    out << "]\n";
  }
  return h;
}

int DeliveryHarness::FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

Result<std::unique_ptr<Child>> DeliveryHarness::StartDispatcher(int port, int* grpc_port,
                                                                const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {BOXWATCH_BINARY, "dispatcher", "--bootstrap", workers_->bootstrap(),
                                   "--topic-prefix", workers_->prefix(), "--listen",
                                   "127.0.0.1:" + std::to_string(port), "--hubs", hubs_file_,
                                   "--tls-ca", pki_ + "/ca.crt", "--tls-cert", pki_ + "/dispatcher.crt",
                                   "--tls-key", pki_ + "/dispatcher.key", "--metrics-listen", "127.0.0.1:0",
                                   "--heartbeat-ms", "1000"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto child = std::make_unique<Child>(argv, workers_->StderrFile("dispatcher"));
  if (!child->WaitForLine("{\"event\":\"started\"", std::chrono::seconds(30)))
    return Error{Errc::kTimeout, "dispatcher did not start within 30 s (see its stderr above)"};
  *grpc_port = static_cast<int>(JsonField(child->last_line(), "grpc_port"));
  return child;
}

Result<std::unique_ptr<Child>> DeliveryHarness::StartHub(const std::string& id, const std::string& regions,
                                                         int dispatcher_port, int* http_port,
                                                         const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {BOXWATCH_BINARY, "hub", "--hub-id", id, "--dispatcher",
                                   "localhost:" + std::to_string(dispatcher_port), "--regions", regions,
                                   "--state-dir", workers_->dir() + "/hub-" + id, "--http-listen", "127.0.0.1:0",
                                   "--metrics-listen", "127.0.0.1:0", "--tls-ca", pki_ + "/ca.crt",
                                   "--tls-cert", pki_ + "/" + id + ".crt", "--tls-key", pki_ + "/" + id + ".key",
                                   "--reconnect-min-ms", "100", "--reconnect-max-ms", "1000",
                                   "--http-plaintext", "--accounts", accounts_file_};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto child = std::make_unique<Child>(argv, workers_->StderrFile("hub-" + id));
  if (!child->WaitForLine("{\"event\":\"started\"", std::chrono::seconds(30)))
    return Error{Errc::kTimeout, "hub " + id + " did not start within 30 s (see its stderr above)"};
  *http_port = static_cast<int>(JsonField(child->last_line(), "http_port"));
  return child;
}

Status DeliveryHarness::ProduceAlerts(const std::vector<v1::Alert>& alerts, int per_transaction, int abort_every,
                                      int32_t partition) {
  auto props = TestClientProperties();
  if (!props.ok()) return props.error();
  auto producer = pipeline::KafkaProducer::Create({.bootstrap = workers_->bootstrap(),
                                                   .transactional_id = workers_->prefix() + "alerts-" + std::to_string(txn_++),
                                                   .extra = *props});
  if (!producer.ok()) return producer.error();
  auto& p = **producer;
  if (Status s = p.InitTransactions(std::chrono::seconds(30)); !s.ok()) return s;
  const std::string topic = pipeline::TopicNames(workers_->prefix()).Name(pipeline::TopicRole::kAlerts);
  int in_txn = 0;
  int txns = 0;
  auto finish = [&]() -> Status {
    ++txns;
    in_txn = 0;
    if (abort_every > 0 && txns % abort_every == 0) {
      // Delivered first, so the aborted records really sit in the log.
      if (Status s = p.Flush(std::chrono::seconds(30)); !s.ok()) return s;
      return p.AbortTransaction(std::chrono::seconds(30));
    }
    return p.CommitTransaction(std::chrono::seconds(30));
  };
  std::string value;
  for (const auto& a : alerts) {
    if (in_txn == 0) {
      if (Status s = p.BeginTransaction(); !s.ok()) return s;
    }
    a.SerializeToString(&value);
    pipeline::OutRecord out{.topic = topic, .key = a.container_number(), .value = value};
    if (partition >= 0) out.partition = partition;
    if (Status s = p.Produce(out); !s.ok()) return s;
    if (++in_txn == per_transaction) {
      if (Status s = finish(); !s.ok()) return s;
    }
  }
  if (in_txn > 0) return finish();
  return Status::Ok();
}

Result<std::set<std::string>> DeliveryHarness::HubAlertIds(int http_port) {
  auto r = http::Fetch("GET", "127.0.0.1", http_port, "/api/alerts?format=full&limit=1000000",
                       {.headers = {{"Authorization", "Bearer " + hub_token_}}, .timeout_ms = 60000});
  if (!r.ok()) return r.error();
  if (r->status != 200) return Error{Errc::kIo, "hub answered " + std::to_string(r->status) + ": " + r->body};
  std::set<std::string> ids;
  const std::string field = "\"alert_id\":\"";
  for (size_t at = r->body.find(field); at != std::string::npos; at = r->body.find(field, at)) {
    at += field.size();
    const size_t end = r->body.find('"', at);
    ids.insert(r->body.substr(at, end - at));
  }
  return ids;
}

Result<http::ClientResponse> DeliveryHarness::HubFetch(const std::string& method, int http_port,
                                                      const std::string& target, const std::string& body) {
  return http::Fetch(method, "127.0.0.1", http_port, target,
                     {.headers = {{"Authorization", "Bearer " + hub_token_}}, .body = body, .timeout_ms = 30000});
}

std::unique_ptr<v1::AlertService::Stub> DeliveryHarness::Stub(int port, const std::string& identity) {
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = *delivery::ReadFile(pki_ + "/ca.crt");
  if (!identity.empty()) {
    o.pem_cert_chain = *delivery::ReadFile(pki_ + "/" + identity + ".crt");
    o.pem_private_key = *delivery::ReadFile(pki_ + "/" + identity + ".key");
  }
  return v1::AlertService::NewStub(
      grpc::CreateChannel("localhost:" + std::to_string(port), grpc::SslCredentials(o)));
}

}  // namespace boxwatch::testing
