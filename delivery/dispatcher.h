#pragma once
// `boxwatch dispatcher`: serves AlertService (proto/boxwatch/v1/alert_service.proto)
// to regional hubs. Holds no state of its own: each Subscribe stream gets its
// own read_committed reader of the alerts topic, starting at the positions in
// the hub's resume token, so any replica can serve any hub and a restart
// loses nothing (DESIGN.md "Alert delivery").
//
// Per stream: the reader fills a bounded priority queue (at most
// max_buffered alerts) with the alerts for the hub's regions at or above its
// minimum priority; the sender sends the highest-priority queued alert
// whenever fewer than ack_window alerts are unacknowledged. So a CRITICAL
// alert overtakes queued lower ones, and a slow hub only fills its own
// window. On (re)connect the reader first catches up with what the topic
// held at that moment (up to max_buffered, for at most catch_up_ms) before
// the first send, so the first window already holds the most urgent alerts.
//
// Lifecycle: Start() validates options, binds and serves; Shutdown() ends
// every stream (hubs reconnect elsewhere) and stops. Thread-safe.

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "core/result.h"
#include "pipeline/kafka_client.h"

namespace prometheus {
class Registry;
}

namespace boxwatch::delivery {

// Hub id (its certificate's common name) -> regions it may read.
using HubGrants = std::map<std::string, std::set<std::string>>;

// Loads the hubs file:
//   hubs:
//     - id: hub-mekong
//       regions: [mekong, southeast-asia]
// Every problem is reported at once, with its line.
Result<HubGrants> LoadHubGrants(const std::string& path);
Result<HubGrants> ParseHubGrants(const std::string& yaml_text, const std::string& source);

struct DispatcherOptions {
  std::string bootstrap;                 // Kafka bootstrap servers; required
  std::string topic_prefix;              // topic name prefix (docs/topics.md)
  std::string listen = "0.0.0.0:7443";   // gRPC address; port 0 picks a free port
  std::string hubs_file;                 // hub id -> regions (LoadHubGrants); required
  std::string tls_ca;                    // CA that signs hub certificates (PEM)
  std::string tls_cert;                  // dispatcher certificate chain (PEM)
  std::string tls_key;                   // dispatcher private key (PEM)
  bool insecure = false;                 // plaintext, hub id taken on trust: local demos only
  uint32_t default_ack_window = 256;     // alerts unacknowledged per hub when it asks for 0
  uint32_t max_ack_window = 4096;        // upper bound on a hub's requested window
  int64_t max_buffered = 20000;          // alerts queued per stream (bounds memory)
  // A hub that (re)connects more than this many alerts behind gets its
  // backlog in passes, CRITICAL first, then HIGH, and so on, while new
  // alerts flow past it; 0: never start one (the backlog goes through the
  // bounded queue in offset order; a sweep already in a token goes on)
  int64_t sweep_backlog = 20000;
  int64_t heartbeat_ms = 5000;           // ms between heartbeats on an idle stream
  int64_t catch_up_ms = 5000;            // ms a (re)connect may read ahead before its first send
  int64_t lookup_max_records = 1000000;  // records GetContainer scans back at most
  pipeline::KafkaProperties kafka;       // extra librdkafka properties for readers and the producer

  // Every problem at once; empty when valid.
  std::string Validate() const;
};

class Dispatcher {
 public:
  static Result<std::unique_ptr<Dispatcher>> Start(const DispatcherOptions& options,
                                                   std::shared_ptr<prometheus::Registry> registry);
  ~Dispatcher();
  int port() const;
  // Empty when the dispatcher can reach Kafka and serve; else why not.
  std::string NotReady() const;
  size_t open_streams() const;
  void Shutdown();
  // Blocks until Shutdown (from another thread or a signal handler's flag).
  void Wait();

  class Impl;

 private:
  explicit Dispatcher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace boxwatch::delivery
