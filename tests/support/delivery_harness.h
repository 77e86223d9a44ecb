#pragma once
// Runs `boxwatch dispatcher` and `boxwatch hub` processes for integration
// tests, on a WorkerHarness topic set (real broker), with a throw-away PKI
// made by scripts/make-test-pki. Alerts are produced straight onto the
// alerts topic in transactions (some aborted on request, which no hub may
// ever see), or come from a real worker.

#include <grpcpp/grpcpp.h>

#include <map>
#include <optional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "boxwatch/v1/alert_service.grpc.pb.h"
#include "core/http.h"
#include "tests/support/worker_harness.h"

namespace boxwatch::testing {

class DeliveryHarness {
 public:
  // Hub ids get certificates; `grants` is the dispatcher's hubs file.
  // `prefix`: the topic prefix (default: one unique to this harness).
  static Result<std::unique_ptr<DeliveryHarness>> Create(int partitions,
                                                         const std::map<std::string, std::set<std::string>>& grants,
                                                         const std::optional<std::string>& prefix = std::nullopt,
                                                         const std::function<void(std::vector<pipeline::TopicSpec>&)>& adjust = {});
  WorkerHarness& workers() { return *workers_; }
  const std::string& pki() const { return pki_; }
  // A free loopback port (bound and released), for a dispatcher that must
  // come back on the same address after a kill.
  static int FreePort();

  // Starts a dispatcher on `port` (0: any); returns it with its gRPC port.
  Result<std::unique_ptr<Child>> StartDispatcher(int port, int* grpc_port,
                                                 const std::vector<std::string>& extra = {});
  // Starts a hub with its own store under the harness directory (kept across
  // restarts of the same id); waits for "started" and returns the HTTP port.
  Result<std::unique_ptr<Child>> StartHub(const std::string& id, const std::string& regions, int dispatcher_port,
                                          int* http_port, const std::vector<std::string>& extra = {});

  // Produces alerts in transactions of `per_transaction`; when `abort_every`
  // > 0 every n-th transaction is aborted instead (its alerts never count).
  // `partition` >= 0 puts every alert there instead of by key.
  Status ProduceAlerts(const std::vector<v1::Alert>& alerts, int per_transaction = 100, int abort_every = 0,
                       int32_t partition = -1);

  // Alert ids stored at the hub serving HTTP on `http_port`.
  Result<std::set<std::string>> HubAlertIds(int http_port);
  // A request to a hub's control-room API (plain HTTP, as the harness runs
  // hubs) with the harness's API token (a supervisor of every region).
  Result<http::ClientResponse> HubFetch(const std::string& method, int http_port, const std::string& target,
                                        const std::string& body = "");
  // That token.
  const std::string& hub_token() const { return hub_token_; }

  // A gRPC stub with the given identity: "" no client certificate, "stranger"
  // a certificate from another CA, otherwise the hub id's certificate.
  std::unique_ptr<v1::AlertService::Stub> Stub(int port, const std::string& identity);

 private:
  std::unique_ptr<WorkerHarness> workers_;
  std::string pki_;
  std::string hubs_file_;
  std::string accounts_file_;
  std::string hub_token_;
  int txn_ = 0;
};

// A test alert: id "<container>-0001", one region, emitted now.
v1::Alert MakeAlert(int n, v1::Priority priority, const std::vector<std::string>& regions);

}  // namespace boxwatch::testing
