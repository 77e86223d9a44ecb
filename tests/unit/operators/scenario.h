#pragma once
// Builders for risk-engine tests: a container, a clean manifest, GPS fixes
// along the unit-test profile's corridor, scans and outcomes, applied
// through a RiskEngine and flushed.

#include <functional>
#include <string>
#include <vector>

#include "core/types.h"
#include "operators/engine.h"

namespace boxwatch::operators::testing {

inline constexpr int64_t kT0 = 1794960000000;  // 2026-11-18T00:00Z (07:00 in Thailand)
inline constexpr int64_t kMin = 60 * 1000;
inline constexpr int64_t kHour = 60 * kMin;
inline constexpr const char* kBox = "CSQU3054383";

std::string TestDataPath(const std::string& name);
const Profile& TestProfile();

v1::Manifest CleanManifest(const std::string& container = kBox);

class Scenario {
 public:
  explicit Scenario(const Profile& profile = TestProfile(), const ReferenceData* ref = nullptr);

  Scenario& Manifest(std::function<void(v1::Manifest&)> change = {}, int64_t declared_at = kT0 - 72 * kHour,
                     uint32_t version = 1);
  Scenario& Gps(int64_t t, double lat, double lon, double speed_kmh = 50,
                std::function<void(v1::GpsEvent&)> change = {});
  Scenario& Rpm(int64_t t, double gamma, double gamma_bg, double neutron = 0, double neutron_bg = 1,
                std::function<void(v1::ScanResult&)> change = {});
  Scenario& Nii(int64_t t, double anomaly, std::function<void(v1::ScanResult&)> change = {});
  // An inspection outcome at `t`, joined with `late_before` as the
  // container's lateness bound (an outcome is never late, but a re-seal
  // older than the bound is not used).
  Scenario& Outcome(int64_t t, std::function<void(v1::InspectionOutcome&)> change = {}, int64_t late_before = 0);
  Scenario& Finish();

  bool Fired(const std::string& id) const;
  const v1::FiredIndicator* Get(const std::string& id) const;

  RiskEngine engine;
  ReferenceData reference;
  v1::ContainerState state;
  std::vector<v1::Alert> alerts;
  std::string container = kBox;
  int gps_seq = 0;
};

}  // namespace boxwatch::operators::testing
