#pragma once
// Metrics of the delivery component (dispatcher and hub), one probe object
// each (CONVENTIONS.md "Logging and metrics"). Labels are bounded: hub ids
// come from the dispatcher's hubs file, priorities and reasons are enums.
// Thread-safe.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <string>
#include <vector>

#include "boxwatch/v1/common.pb.h"

namespace boxwatch::delivery {

class DispatcherProbe {
 public:
  explicit DispatcherProbe(prometheus::Registry& registry);
  // Starts every per-hub series at zero for the hubs of the hubs file.
  void KnownHubs(const std::vector<std::string>& hubs);
  void SubscriberOpened(const std::string& hub);
  void SubscriberClosed(const std::string& hub);
  void Refused(const char* reason);  // permission_denied, invalid_argument, unauthenticated
  void Sent(const std::string& hub, double seconds_since_emit);
  void Acked(const std::string& hub, uint64_t n);
  void Backlog(const std::string& hub, double unacked, double queued);
  void Undecodable();
  void Outcome(bool accepted);

 private:
  prometheus::Family<prometheus::Gauge>& subscribers_;
  prometheus::Family<prometheus::Counter>& refused_;
  prometheus::Family<prometheus::Counter>& sent_;
  prometheus::Family<prometheus::Counter>& acked_;
  prometheus::Family<prometheus::Gauge>& unacked_;
  prometheus::Family<prometheus::Gauge>& queued_;
  prometheus::Histogram& send_latency_;
  prometheus::Counter& undecodable_;
  prometheus::Family<prometheus::Counter>& outcomes_;
};

class HubProbe {
 public:
  explicit HubProbe(prometheus::Registry& registry);
  void Connected(bool up);
  void Reconnect();
  void Stored(v1::Priority priority, double seconds_since_emit);
  void Duplicate();
  void BatchWritten(double seconds);
  void OutcomeReported(bool ok);

 private:
  prometheus::Gauge& connected_;
  prometheus::Counter& reconnects_;
  prometheus::Family<prometheus::Counter>& stored_;
  prometheus::Counter& duplicates_;
  prometheus::Histogram& receive_latency_;
  prometheus::Histogram& batch_;
  prometheus::Family<prometheus::Counter>& outcomes_;
};

// "CRITICAL", "HIGH", ... for labels and messages ("UNSPECIFIED" for 0).
const char* PriorityName(v1::Priority p);
// Parses a priority name (case-insensitive, with or without "PRIORITY_").
bool ParsePriority(std::string text, v1::Priority* out);

}  // namespace boxwatch::delivery
