#pragma once
// `boxwatch hub`: a regional hub. Subscribes to the dispatcher for its
// regions, stores each group of received alerts with the resume token in
// one synced RocksDB batch (delivery/hub_store.h) and acknowledges only
// after that, reconnecting with exponential backoff when the stream breaks.
// Serves its control room over HTTPS (the officers' web app, its JSON API and
// live feed, behind accounts; delivery/control_room.h) and passes inspection
// outcomes recorded there to the dispatcher's ReportOutcome.
//
// Lifecycle: Start() opens the store and the HTTP server; Run() subscribes
// until `stop` is set. A refusal that retrying cannot fix (PERMISSION_DENIED,
// INVALID_ARGUMENT, UNAUTHENTICATED) ends Run with an error naming it.

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "boxwatch/v1/common.pb.h"
#include "core/result.h"

namespace prometheus {
class Registry;
}

namespace boxwatch::delivery {

struct HubOptions {
  std::string hub_id;                        // this hub's id (its certificate's common name); required
  std::string dispatcher;                    // dispatcher address host:port; required
  std::vector<std::string> regions;          // regions to receive; required
  v1::Priority min_priority = v1::PRIORITY_LOW;  // lowest priority to receive
  std::string state_dir = "/var/lib/boxwatch/hub";  // RocksDB directory of the store
  std::string http_listen = "127.0.0.1:8080";       // control room and its API; port 0 picks one
  std::string http_cert;                     // HTTPS certificate chain of the control room (PEM)
  std::string http_key;                      // its private key (PEM)
  bool http_plaintext = false;               // plain HTTP: local demos only
  std::string accounts_file = "/etc/boxwatch/hub-accounts";  // people and API tokens (delivery/accounts.h)
  std::string tls_ca;                        // CA that signs the dispatcher's certificate (PEM)
  std::string tls_cert;                      // this hub's certificate chain (PEM)
  std::string tls_key;                       // this hub's private key (PEM)
  std::string tls_server_name;               // expected name in the dispatcher's certificate; empty: its host
  bool insecure = false;                     // plaintext: local demos only
  // Alerts the dispatcher may send ahead of acknowledgements. Each synced
  // batch acknowledges what arrived while the last was written, so the
  // window bounds the batches: at 256, a burst of 2,400 alerts in a quarter
  // second queued 1,100 at the dispatcher for 0.75 s on the benchmark.
  uint32_t ack_window = 1024;
  int64_t max_batch = 1000;                  // alerts stored per synced write at most
  int64_t reconnect_min_ms = 200;            // first backoff after a broken stream, ms
  int64_t reconnect_max_ms = 10000;          // backoff ceiling, ms

  // Every problem at once; empty when valid.
  std::string Validate() const;
};

class Hub {
 public:
  // One JSON object per notable event (started, subscribed, disconnected,
  // refused), for operators and tests.
  using EventSink = std::function<void(const std::string& json)>;
  static Result<std::unique_ptr<Hub>> Start(const HubOptions& options, std::shared_ptr<prometheus::Registry> registry,
                                            EventSink sink = {});
  ~Hub();
  int http_port() const;
  // Empty while subscribed; else why the hub is not ready.
  std::string NotReady() const;
  Status Run(const std::atomic<bool>& stop);

  class Impl;

 private:
  explicit Hub(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace boxwatch::delivery
