#include "delivery/probes.h"

#include <algorithm>

#include "monitoring/metrics.h"

namespace boxwatch::delivery {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

const char* PriorityName(v1::Priority p) {
  switch (p) {
    case v1::PRIORITY_LOW: return "LOW";
    case v1::PRIORITY_MEDIUM: return "MEDIUM";
    case v1::PRIORITY_HIGH: return "HIGH";
    case v1::PRIORITY_CRITICAL: return "CRITICAL";
    default: return "UNSPECIFIED";
  }
}

bool ParsePriority(std::string text, v1::Priority* out) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::toupper(c); });
  if (text.rfind("PRIORITY_", 0) == 0) text = text.substr(9);
  for (auto p : {v1::PRIORITY_LOW, v1::PRIORITY_MEDIUM, v1::PRIORITY_HIGH, v1::PRIORITY_CRITICAL}) {
    if (text == PriorityName(p)) {
      *out = p;
      return true;
    }
  }
  return false;
}

DispatcherProbe::DispatcherProbe(prometheus::Registry& r)
    : subscribers_(BuildGauge().Name("boxwatch_dispatcher_subscribers").Help("Open Subscribe streams per hub").Register(r)),
      refused_(BuildCounter()
                   .Name("boxwatch_dispatcher_subscriptions_refused_total")
                   .Help("Subscriptions refused, by reason")
                   .Register(r)),
      sent_(BuildCounter().Name("boxwatch_dispatcher_alerts_sent_total").Help("Alerts sent, per hub").Register(r)),
      acked_(BuildCounter()
                 .Name("boxwatch_dispatcher_alerts_acked_total")
                 .Help("Alerts the hub acknowledged as stored, per hub")
                 .Register(r)),
      unacked_(BuildGauge()
                   .Name("boxwatch_dispatcher_ack_backlog")
                   .Help("Alerts sent to a hub and not yet acknowledged")
                   .Register(r)),
      queued_(BuildGauge()
                  .Name("boxwatch_dispatcher_queued_alerts")
                  .Help("Alerts read for a hub and waiting for room in its acknowledgement window")
                  .Register(r)),
      send_latency_(BuildHistogram()
                        .Name("boxwatch_dispatcher_send_latency_seconds")
                        .Help("From the worker emitting an alert to the dispatcher sending it")
                        .Register(r)
                        .Add({}, monitoring::LatencyBuckets())),
      undecodable_(BuildCounter()
                       .Name("boxwatch_dispatcher_undecodable_alerts_total")
                       .Help("Records on the alerts topic that are not Alert messages (skipped)")
                       .Register(r)
                       .Add({})),
      outcomes_(BuildCounter()
                    .Name("boxwatch_dispatcher_outcomes_total")
                    .Help("ReportOutcome calls by result (accepted, rejected)")
                    .Register(r)) {}

void DispatcherProbe::KnownHubs(const std::vector<std::string>& hubs) {
  for (const auto& h : hubs) {
    subscribers_.Add({{"hub", h}});
    sent_.Add({{"hub", h}});
    acked_.Add({{"hub", h}});
    unacked_.Add({{"hub", h}});
    queued_.Add({{"hub", h}});
  }
  for (const char* r : {"permission_denied", "invalid_argument", "unauthenticated"}) refused_.Add({{"reason", r}});
  for (const char* r : {"accepted", "rejected"}) outcomes_.Add({{"result", r}});
}

void DispatcherProbe::SubscriberOpened(const std::string& hub) { subscribers_.Add({{"hub", hub}}).Increment(); }
void DispatcherProbe::SubscriberClosed(const std::string& hub) {
  subscribers_.Add({{"hub", hub}}).Decrement();
  unacked_.Add({{"hub", hub}}).Set(0);
  queued_.Add({{"hub", hub}}).Set(0);
}
void DispatcherProbe::Refused(const char* reason) { refused_.Add({{"reason", reason}}).Increment(); }
void DispatcherProbe::Sent(const std::string& hub, double seconds_since_emit) {
  sent_.Add({{"hub", hub}}).Increment();
  send_latency_.Observe(std::max(0.0, seconds_since_emit));
}
void DispatcherProbe::Acked(const std::string& hub, uint64_t n) {
  acked_.Add({{"hub", hub}}).Increment(static_cast<double>(n));
}
void DispatcherProbe::Backlog(const std::string& hub, double unacked, double queued) {
  unacked_.Add({{"hub", hub}}).Set(unacked);
  queued_.Add({{"hub", hub}}).Set(queued);
}
void DispatcherProbe::Undecodable() { undecodable_.Increment(); }
void DispatcherProbe::Outcome(bool accepted) {
  outcomes_.Add({{"result", accepted ? "accepted" : "rejected"}}).Increment();
}

HubProbe::HubProbe(prometheus::Registry& r)
    : connected_(BuildGauge()
                     .Name("boxwatch_hub_connected")
                     .Help("1 while the hub holds an accepted subscription, else 0")
                     .Register(r)
                     .Add({})),
      reconnects_(BuildCounter()
                      .Name("boxwatch_hub_reconnects_total")
                      .Help("Subscription attempts after the first")
                      .Register(r)
                      .Add({})),
      stored_(BuildCounter().Name("boxwatch_hub_alerts_stored_total").Help("Alerts stored, by priority").Register(r)),
      duplicates_(BuildCounter()
                      .Name("boxwatch_hub_duplicates_ignored_total")
                      .Help("Alerts received again after a reconnect and ignored")
                      .Register(r)
                      .Add({})),
      receive_latency_(BuildHistogram()
                           .Name("boxwatch_hub_receive_latency_seconds")
                           .Help("From the worker emitting an alert to the hub storing it")
                           .Register(r)
                           .Add({}, monitoring::LatencyBuckets())),
      batch_(BuildHistogram()
                 .Name("boxwatch_hub_store_batch_seconds")
                 .Help("Synced write of one batch of alerts and the resume token")
                 .Register(r)
                 .Add({}, monitoring::LatencyBuckets())),
      outcomes_(BuildCounter()
                    .Name("boxwatch_hub_outcomes_reported_total")
                    .Help("Outcomes posted by the control room and passed on, by result (ok, failed)")
                    .Register(r)) {
  for (auto p : {v1::PRIORITY_LOW, v1::PRIORITY_MEDIUM, v1::PRIORITY_HIGH, v1::PRIORITY_CRITICAL})
    stored_.Add({{"priority", PriorityName(p)}});
  for (const char* r : {"ok", "failed"}) outcomes_.Add({{"result", r}});
}

void HubProbe::Connected(bool up) { connected_.Set(up ? 1 : 0); }
void HubProbe::Reconnect() { reconnects_.Increment(); }
void HubProbe::Stored(v1::Priority priority, double seconds_since_emit) {
  stored_.Add({{"priority", PriorityName(priority)}}).Increment();
  receive_latency_.Observe(std::max(0.0, seconds_since_emit));
}
void HubProbe::Duplicate() { duplicates_.Increment(); }
void HubProbe::BatchWritten(double seconds) { batch_.Observe(seconds); }
void HubProbe::OutcomeReported(bool ok) { outcomes_.Add({{"result", ok ? "ok" : "failed"}}).Increment(); }

}  // namespace boxwatch::delivery
