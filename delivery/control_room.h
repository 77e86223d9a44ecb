#pragma once
// The hub's control room: the officers' web app (served from assets built
// into the binary), its JSON API and live feed, behind accounts, sessions,
// CSRF tokens and region authorisation, with an append-only audit trail and
// the alert workflow (acknowledge, assign, status, outcome) kept in the hub's
// store. docs/design/control-room-api.md is the API; docs/control-room.md
// the guide.
//
// Thread-safe: HTTP handlers run concurrently with AlertsStored.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "boxwatch/v1/alert.pb.h"
#include "boxwatch/v1/outcome.pb.h"
#include "core/http.h"
#include "core/result.h"

namespace boxwatch::delivery {

class HubStore;

// A message as proto JSON with the proto's field names (enums by name,
// int64 as strings), as the API sends alerts.
std::string ProtoJson(const google::protobuf::Message& m);

struct ControlRoomOptions {
  std::string hub_id;
  std::vector<std::string> regions;  // the hub's regions
  std::string accounts_file;         // delivery/accounts.h
  bool tls = true;                   // HTTPS: cookies are Secure, HSTS is sent
};

class ControlRoom {
 public:
  struct Hooks {
    // Empty while the hub is subscribed; else why not.
    std::function<std::string()> not_ready;
    // Sends an outcome to the dispatcher; the ReportOutcomeResponse as JSON,
    // or an error (kInvalidArgument: the dispatcher refused it as invalid).
    std::function<Result<std::string>(const v1::InspectionOutcome&)> report_outcome;
  };
  static Result<std::unique_ptr<ControlRoom>> Open(const ControlRoomOptions& options, HubStore* store, Hooks hooks);
  ~ControlRoom();

  // Alerts just stored (new ones only), in order.
  void AlertsStored(const std::vector<const v1::Alert*>& alerts);
  http::Response Handle(const http::Request& request);
  // Headers every response of the control room's listener carries.
  static std::vector<std::pair<std::string, std::string>> SecurityHeaders(bool tls);

  class Impl;

 private:
  explicit ControlRoom(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace boxwatch::delivery
