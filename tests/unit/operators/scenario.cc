#include "tests/unit/operators/scenario.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace boxwatch::operators::testing {

std::string TestDataPath(const std::string& name) {
  return std::string(BOXWATCH_SOURCE_DIR) + "/tests/unit/operators/testdata/" + name;
}

const Profile& TestProfile() {
  static const Profile profile = [] {
    auto p = LoadProfile(TestDataPath("test_profile.yaml"));
    if (!p.ok()) {
      ADD_FAILURE() << p.error().message;
      std::abort();
    }
    return std::move(p).value();
  }();
  return profile;
}

v1::Manifest CleanManifest(const std::string& container) {
  v1::Manifest m;
  m.set_container_number(container);
  m.set_version(1);
  m.set_bill_of_lading("BLTEST0001");
  m.mutable_shipper()->set_name("Shanghai Ceramics Export Ltd");
  m.mutable_consignee()->set_name("Vientiane Building Supplies");
  m.mutable_notify_party()->set_name("Mekong Forwarding");
  auto* g = m.add_goods();
  g->set_hs_code("690721");
  g->set_description("glazed ceramic floor tiles");
  g->set_packages(20);
  g->set_gross_weight_kg(18000);
  m.add_seal_numbers("SEAL001");
  m.set_vessel_imo("9811000");
  m.set_vessel_name("TEST TRADER");
  m.set_port_of_loading("CNSHA");
  m.set_port_of_discharge("THLCH");
  m.set_final_destination("LAVTE");
  m.set_eta_ms(kT0 + 48 * kHour);
  m.set_declared_at_ms(kT0 - 72 * kHour);
  m.set_freight_payment(v1::Manifest::FREIGHT_PAYMENT_PREPAID);
  m.set_tare_weight_kg(3800);
  return m;
}

Scenario::Scenario(const Profile& profile, const ReferenceData* ref)
    : engine(&profile, ref ? ref : &reference) {}

Scenario& Scenario::Manifest(std::function<void(v1::Manifest&)> change, int64_t declared_at,
                             uint32_t version) {
  v1::Manifest m = CleanManifest(container);
  m.set_version(version);
  m.set_declared_at_ms(declared_at);
  if (change) change(m);
  EXPECT_EQ(engine.ApplyManifest(state, m, 0), JoinResult::kApplied);
  return *this;
}

Scenario& Scenario::Gps(int64_t t, double lat, double lon, double speed_kmh,
                        std::function<void(v1::GpsEvent&)> change) {
  v1::GpsEvent e;
  e.set_container_number(container);
  e.set_tracker_id("TRK-1");
  e.set_event_id("TRK-1-" + std::to_string(++gps_seq));
  e.set_fix_time_ms(t);
  e.mutable_position()->set_lat(lat);
  e.mutable_position()->set_lon(lon);
  e.set_speed_kmh(speed_kmh);
  e.set_seal_state(v1::GpsEvent::SEAL_STATE_CLOSED);
  if (change) change(e);
  EXPECT_EQ(engine.ApplyGps(state, e, 0), JoinResult::kApplied);
  return *this;
}

Scenario& Scenario::Rpm(int64_t t, double gamma, double gamma_bg, double neutron, double neutron_bg,
                        std::function<void(v1::ScanResult&)> change) {
  v1::ScanResult s;
  s.set_container_number(container);
  s.set_scan_id("RPM-" + std::to_string(t));
  s.set_site("THLCH");
  s.set_device_id("RPM-1");
  s.set_scanned_at_ms(t);
  s.set_kind(v1::ScanResult::SCAN_KIND_RPM);
  s.mutable_rpm()->set_gamma_cps(gamma);
  s.mutable_rpm()->set_gamma_background_cps(gamma_bg);
  s.mutable_rpm()->set_neutron_cps(neutron);
  s.mutable_rpm()->set_neutron_background_cps(neutron_bg);
  if (change) change(s);
  EXPECT_EQ(engine.ApplyScan(state, s, 0), JoinResult::kApplied);
  return *this;
}

Scenario& Scenario::Nii(int64_t t, double anomaly, std::function<void(v1::ScanResult&)> change) {
  v1::ScanResult s;
  s.set_container_number(container);
  s.set_scan_id("NII-" + std::to_string(t));
  s.set_site("THLCH");
  s.set_device_id("NII-1");
  s.set_scanned_at_ms(t);
  s.set_kind(v1::ScanResult::SCAN_KIND_NII_XRAY);
  s.mutable_nii()->set_anomaly_score(anomaly);
  s.mutable_nii()->set_verdict(v1::NiiResult::VERDICT_CLEAR);
  if (change) change(s);
  EXPECT_EQ(engine.ApplyScan(state, s, 0), JoinResult::kApplied);
  return *this;
}

Scenario& Scenario::Outcome(int64_t t, std::function<void(v1::InspectionOutcome&)> change, int64_t late_before) {
  v1::InspectionOutcome o;
  o.set_container_number(container);
  o.set_outcome_id("OUT-" + std::to_string(t));
  o.set_inspected_at_ms(t);
  o.set_site("THLCH");
  o.set_result(v1::InspectionOutcome::RESULT_NO_FINDING);
  if (change) change(o);
  EXPECT_EQ(engine.ApplyOutcome(state, o, late_before), JoinResult::kApplied);
  return *this;
}

Scenario& Scenario::Finish() {
  engine.Advance(state, kEndOfTime, kT0 + 1000 * kHour, &alerts);
  return *this;
}

const v1::FiredIndicator* Scenario::Get(const std::string& id) const {
  for (const auto& f : state.fired()) {
    if (f.id() == id) return &f;
  }
  return nullptr;
}

bool Scenario::Fired(const std::string& id) const { return Get(id) != nullptr; }

}  // namespace boxwatch::operators::testing
