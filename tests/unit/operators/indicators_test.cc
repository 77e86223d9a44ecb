// Every indicator: fires, does not fire, and the boundary, table-driven.
#include <gtest/gtest.h>

#include "tests/unit/operators/scenario.h"

namespace boxwatch::operators::testing {
namespace {

constexpr int64_t kDay = kT0 + 3 * kHour;    // 10:00 in Thailand
constexpr int64_t kNight = kT0 + 15 * kHour;  // 22:00 in Thailand

struct IndicatorCase {
  const char* name;
  const char* indicator;
  bool fires;
  std::function<void(Scenario&)> build;
};

class Indicator : public ::testing::TestWithParam<IndicatorCase> {};

TEST_P(Indicator, FiresExactlyWhenItShould) {
  const IndicatorCase& c = GetParam();
  Scenario s;
  c.build(s);
  s.Finish();
  const v1::FiredIndicator* f = s.Get(c.indicator);
  EXPECT_EQ(f != nullptr, c.fires) << c.indicator;
  if (f != nullptr) {
    EXPECT_FALSE(f->summary().empty());
    EXPECT_GT(f->evidence_size(), 0) << "an officer needs evidence";
    EXPECT_GT(f->contribution(), 0);
  }
}

// A trip north along the test corridor, one fix every 5 minutes from `start`.
void Drive(Scenario& s, int64_t start, int fixes, double lat0 = 13.05) {
  for (int i = 0; i < fixes; ++i) s.Gps(start + i * 5 * kMin, lat0 + i * 0.004, 100.0);
}

std::vector<IndicatorCase> ManifestCases() {
  return {
      {"HighRiskPortOfLoading", "route.high_risk_port", true,
       [](Scenario& s) { s.Manifest([](auto& m) { m.set_port_of_loading("ECGYE"); }); }},
      {"CleanRouteHasNoHighRiskPort", "route.high_risk_port", false, [](Scenario& s) { s.Manifest(); }},
      {"HighRiskCountryDestinationBoundary", "route.high_risk_port", true,
       [](Scenario& s) { s.Manifest([](auto& m) { m.set_final_destination("VECCS"); }); }},
      {"TranshipmentThroughHighRiskPort", "route.high_risk_transhipment", true,
       [](Scenario& s) { s.Manifest([](auto& m) { m.add_transhipment_ports("ECGYE"); }); }},
      {"TranshipmentThroughOrdinaryHub", "route.high_risk_transhipment", false,
       [](Scenario& s) { s.Manifest([](auto& m) { m.add_transhipment_ports("SGSIN"); }); }},
      {"TranshipmentInHighRiskCountryBoundary", "route.high_risk_transhipment", true,
       [](Scenario& s) { s.Manifest([](auto& m) { m.add_transhipment_ports("VECCS"); }); }},
      {"DetourViaRotterdam", "route.detour", true,
       [](Scenario& s) { s.Manifest([](auto& m) { m.add_transhipment_ports("NLRTM"); }); }},
      {"DirectRouteNoDetour", "route.detour", false, [](Scenario& s) { s.Manifest(); }},
      {"ViaSingaporeBelowRatioBoundary", "route.detour", false,  // ~1.8x, limit 2.0
       [](Scenario& s) { s.Manifest([](auto& m) { m.add_transhipment_ports("SGSIN"); }); }},
      {"WatchlistedConsignee", "party.watchlisted", true,
       [](Scenario& s) { s.Manifest([](auto& m) { m.mutable_consignee()->set_name("Golden Crescent Trading Co."); }); }},
      {"SimilarButDifferentName", "party.watchlisted", false,
       [](Scenario& s) { s.Manifest([](auto& m) { m.mutable_consignee()->set_name("Golden Crescent Textiles Co"); }); }},
      {"SharedPlaceNameOnly", "party.watchlisted", false,
       [](Scenario& s) { s.Manifest([](auto& m) { m.mutable_consignee()->set_name("Golden Harvest Trading Co"); }); }},
      {"LegalFormLeftOut", "party.watchlisted", true,
       [](Scenario& s) { s.Manifest([](auto& m) { m.mutable_consignee()->set_name("Golden Crescent Trading"); }); }},
      {"AbbreviatedWithAnotherLegalForm", "party.watchlisted", true,
       [](Scenario& s) { s.Manifest([](auto& m) { m.mutable_shipper()->set_name("GOLDEN CRESCENT TRDG L.L.C."); }); }},
      {"TransliteratedSpelling", "party.watchlisted", true,
       [](Scenario& s) { s.Manifest([](auto& m) { m.mutable_consignee()->set_name("Golden Kreszent Trading Co"); }); }},
      {"NormalisedCaseAndPunctuationBoundary", "party.watchlisted", true,
       [](Scenario& s) { s.Manifest([](auto& m) { m.mutable_notify_party()->set_name("golden  crescent trading, co"); }); }},
      {"WatchlistFromReferenceData", "party.watchlisted", true,
       [](Scenario& s) {
         s.reference.watchlisted_parties.insert(NormaliseName("Mekong Forwarding"));
         s.Manifest();
       }},
      {"WatchlistedVessel", "vessel.watchlisted", true,
       [](Scenario& s) { s.Manifest([](auto& m) { m.set_vessel_imo("9999991"); }); }},
      {"OrdinaryVessel", "vessel.watchlisted", false, [](Scenario& s) { s.Manifest(); }},
      {"WatchlistedOwnerCode", "owner.watchlisted", true,
       [](Scenario& s) {
         s.container = "ZZZU" + std::string("123456") + std::to_string(ContainerNumber::CheckDigit("ZZZU123456"));
         s.Manifest();
       }},
      {"OrdinaryOwnerCode", "owner.watchlisted", false, [](Scenario& s) { s.Manifest(); }},
      {"VagueFak", "goods.vague_description", true,
       [](Scenario& s) { s.Manifest([](auto& m) { m.mutable_goods(0)->set_description("FAK"); }); }},
      {"VaguePhraseSaidToContain", "goods.vague_description", true,
       [](Scenario& s) { s.Manifest([](auto& m) { m.mutable_goods(0)->set_description("1 x 40' said to contain household goods"); }); }},
      {"TermInsideAWordBoundary", "goods.vague_description", false,
       [](Scenario& s) { s.Manifest([](auto& m) { m.mutable_goods(0)->set_description("FAKE LEATHER BAGS"); }); }},
      {"TobaccoIsSensitive", "goods.sensitive_hs", true,
       [](Scenario& s) { s.Manifest([](auto& m) { m.mutable_goods(0)->set_hs_code("240110"); }); }},
      {"TilesAreNotSensitive", "goods.sensitive_hs", false, [](Scenario& s) { s.Manifest(); }},
      {"ChapterPrefixMatchBoundary", "goods.sensitive_hs", true,
       [](Scenario& s) { s.Manifest([](auto& m) { m.mutable_goods(0)->set_hs_code("930690"); }); }},
      {"TobaccoTooHeavyPerPackage", "goods.weight_implausible", true,
       [](Scenario& s) {
         s.Manifest([](auto& m) {
           m.mutable_goods(0)->set_hs_code("240110");
           m.mutable_goods(0)->set_packages(100);
           m.mutable_goods(0)->set_gross_weight_kg(40000);  // 400 kg/pkg > 250 * 1.25
         });
       }},
      {"TobaccoTooLight", "goods.weight_implausible", true,
       [](Scenario& s) {
         s.Manifest([](auto& m) {
           m.mutable_goods(0)->set_hs_code("240110");
           m.mutable_goods(0)->set_packages(100);
           m.mutable_goods(0)->set_gross_weight_kg(3000);  // 30 kg/pkg < 50 * 0.75
         });
       }},
      {"TobaccoWithinToleranceBoundary", "goods.weight_implausible", false,
       [](Scenario& s) {
         s.Manifest([](auto& m) {
           m.mutable_goods(0)->set_hs_code("240110");
           m.mutable_goods(0)->set_packages(100);
           m.mutable_goods(0)->set_gross_weight_kg(31250);  // 312.5 kg/pkg = 250 * 1.25 exactly
         });
       }},
      {"UnusableWeightIsNoImplausibleWeight", "goods.weight_implausible", false,
       [](Scenario& s) {
         s.Manifest([](auto& m) {
           m.mutable_goods(0)->set_hs_code("240110");
           m.mutable_goods(0)->set_packages(100);
           m.mutable_goods(0)->set_gross_weight_kg(0);  // cleared by decoding: it was negative
           m.add_unusable_fields("goods[0].gross_weight_kg");
         });
       }},
      {"CashFreight", "payment.cash", true,
       [](Scenario& s) { s.Manifest([](auto& m) { m.set_freight_payment(v1::Manifest::FREIGHT_PAYMENT_CASH); }); }},
      {"PrepaidFreight", "payment.cash", false, [](Scenario& s) { s.Manifest(); }},
      {"ConsigneeChangedTenHoursBeforeEta", "manifest.late_amendment", true,
       [](Scenario& s) {
         s.Manifest();
         s.Manifest([](auto& m) { m.mutable_consignee()->set_name("New Consignee Ltd"); }, kT0 + 38 * kHour, 2);
       }},
      {"ConsigneeChangedWeekBeforeEta", "manifest.late_amendment", false,
       [](Scenario& s) {
         s.Manifest({}, kT0 - 200 * kHour);
         s.Manifest([](auto& m) { m.mutable_consignee()->set_name("New Consignee Ltd"); }, kT0 - 100 * kHour, 2);
       }},
      {"OnlyVesselChangedLate", "manifest.late_amendment", false,
       [](Scenario& s) {
         s.Manifest();
         s.Manifest([](auto& m) { m.set_vessel_imo("9811001"); }, kT0 + 38 * kHour, 2);
       }},
      {"GoodsChangedExactlyAtCutoffBoundary", "manifest.late_amendment", true,
       [](Scenario& s) {
         s.Manifest();
         s.Manifest([](auto& m) { m.mutable_goods(0)->set_description("porcelain tableware"); }, kT0, 2);
       }},
      {"MovingThreeHoursWithoutManifest", "manifest.missing", true, [](Scenario& s) { Drive(s, kDay, 37); }},
      {"MovingOneHourWithoutManifest", "manifest.missing", false, [](Scenario& s) { Drive(s, kDay, 13); }},
      {"MovingWithManifest", "manifest.missing", false,
       [](Scenario& s) {
         s.Manifest();
         Drive(s, kDay, 37);
       }},
      {"DeclarationWithAnUnusableHsCode", "manifest.incomplete", true,
       [](Scenario& s) {
         s.Manifest([](auto& m) {
           m.mutable_goods(0)->clear_hs_code();
           m.add_unusable_fields("goods[0].hs_code");
         });
       }},
      {"CompleteDeclaration", "manifest.incomplete", false, [](Scenario& s) { s.Manifest(); }},
      {"AmendmentRepairsTheDeclarationBoundary", "manifest.incomplete", false,
       [](Scenario& s) {
         s.Manifest([](auto& m) { m.add_unusable_fields("port_of_discharge"); });
         s.Manifest({}, kT0, 2);
       }},
  };
}

std::vector<IndicatorCase> ScanCases() {
  return {
      {"GammaFourTimesBackground", "scan.radiation_gamma", true,
       [](Scenario& s) { s.Manifest().Rpm(kDay, 400, 100); }},
      {"GammaNearBackground", "scan.radiation_gamma", false, [](Scenario& s) { s.Manifest().Rpm(kDay, 290, 100); }},
      {"GammaExactlyAtFactorBoundary", "scan.radiation_gamma", false,
       [](Scenario& s) { s.Manifest().Rpm(kDay, 300, 100); }},
      {"GammaAlarmFlag", "scan.radiation_gamma", true,
       [](Scenario& s) { s.Manifest().Rpm(kDay, 150, 100, 0, 1, [](auto& e) { e.mutable_rpm()->set_gamma_alarm(true); }); }},
      {"NeutronFiveTimesBackground", "scan.radiation_neutron", true,
       [](Scenario& s) { s.Manifest().Rpm(kDay, 100, 100, 5, 1); }},
      {"NeutronAtBackground", "scan.radiation_neutron", false,
       [](Scenario& s) { s.Manifest().Rpm(kDay, 100, 100, 1.5, 1); }},
      {"NeutronAlarmBoundary", "scan.radiation_neutron", true,
       [](Scenario& s) { s.Manifest().Rpm(kDay, 100, 100, 1, 1, [](auto& e) { e.mutable_rpm()->set_neutron_alarm(true); }); }},
      {"ThreatNuclideIdentified", "scan.threat_nuclide", true,
       [](Scenario& s) { s.Manifest().Rpm(kDay, 150, 100, 0, 1, [](auto& e) { e.mutable_rpm()->add_nuclides("Cs-137"); }); }},
      {"ThreatNuclideInAnyCase", "scan.threat_nuclide", true,
       [](Scenario& s) { s.Manifest().Rpm(kDay, 110, 100, 0, 1, [](auto& e) { e.mutable_rpm()->add_nuclides("co-60"); }); }},
      {"OnlyNormNuclides", "scan.threat_nuclide", false,
       [](Scenario& s) {
         s.Manifest().Rpm(kDay, 400, 100, 0, 1, [](auto& e) {
           e.mutable_rpm()->add_nuclides("K-40");
           e.mutable_rpm()->add_nuclides("Th-232");
         });
       }},
      {"UnlistedNuclide", "scan.threat_nuclide", false,
       [](Scenario& s) { s.Manifest().Rpm(kDay, 110, 100, 0, 1, [](auto& e) { e.mutable_rpm()->add_nuclides("Tc-99m"); }); }},
      {"XrayHighAnomaly", "scan.xray_anomaly", true, [](Scenario& s) { s.Manifest().Nii(kDay, 0.8); }},
      {"XrayLowAnomaly", "scan.xray_anomaly", false, [](Scenario& s) { s.Manifest().Nii(kDay, 0.5); }},
      {"XrayThresholdBoundary", "scan.xray_anomaly", true, [](Scenario& s) { s.Manifest().Nii(kDay, 0.75); }},
      {"XrayAnalystSuspicious", "scan.xray_anomaly", true,
       [](Scenario& s) {
         s.Manifest().Nii(kDay, 0.1, [](auto& e) { e.mutable_nii()->set_verdict(v1::NiiResult::VERDICT_SUSPICIOUS); });
       }},
      {"ScannerWeighsThirtyPercentMore", "scan.weight_mismatch", true,
       [](Scenario& s) { s.Manifest().Nii(kDay, 0.1, [](auto& e) { e.mutable_nii()->set_estimated_weight_kg(28600); }); }},
      {"ScannerWeightClose", "scan.weight_mismatch", false,
       [](Scenario& s) { s.Manifest().Nii(kDay, 0.1, [](auto& e) { e.mutable_nii()->set_estimated_weight_kg(23000); }); }},
      {"UndeclaredTareTakesATypical45FootTare", "scan.weight_mismatch", false,
       [](Scenario& s) {
         s.Manifest([](auto& m) {
           m.set_tare_weight_kg(0);
           m.set_container_size_type("L5G1");
         }).Nii(kDay, 0.1, [](auto& e) { e.mutable_nii()->set_estimated_weight_kg(22800); });
       }},
      {"UndeclaredTareOnATwentyFooterStillSeesHeavyGoods", "scan.weight_mismatch", true,
       [](Scenario& s) {
         s.Manifest([](auto& m) {
           m.set_tare_weight_kg(0);
           m.set_container_size_type("22G1");
         }).Nii(kDay, 0.1, [](auto& e) { e.mutable_nii()->set_estimated_weight_kg(28600); });
       }},
      {"ScannerWeightWithoutManifestBoundary", "scan.weight_mismatch", false,
       [](Scenario& s) { s.Nii(kDay, 0.1, [](auto& e) { e.mutable_nii()->set_estimated_weight_kg(90000); }); }},
  };
}

std::vector<IndicatorCase> GpsCases() {
  return {
      {"ThreeFixesOffCorridor", "gps.route_deviation", true,
       [](Scenario& s) {
         s.Manifest();
         Drive(s, kDay, 4);
         for (int i = 0; i < 3; ++i) s.Gps(kDay + (20 + 5 * i) * kMin, 13.1 + 0.01 * i, 100.1);
       }},
      {"TwoFixesOffCorridorFiveMinutes", "gps.route_deviation", false,
       [](Scenario& s) {
         s.Manifest();
         Drive(s, kDay, 4);
         s.Gps(kDay + 20 * kMin, 13.1, 100.1).Gps(kDay + 25 * kMin, 13.11, 100.1);
       }},
      {"TwoFixesOffCorridorTwelveMinutesBoundary", "gps.route_deviation", true,
       [](Scenario& s) {
         s.Manifest();
         Drive(s, kDay, 4);
         s.Gps(kDay + 20 * kMin, 13.1, 100.1).Gps(kDay + 32 * kMin, 13.11, 100.1);
       }},
      {"NeverOnAMonitoredCorridor", "gps.route_deviation", false,
       [](Scenario& s) {
         s.Manifest();
         for (int i = 0; i < 6; ++i) s.Gps(kDay + i * 5 * kMin, 52.0, 5.0 + 0.01 * i);
       }},
      {"FortyMinuteStopOnTheRoad", "gps.unscheduled_stop", true,
       [](Scenario& s) {
         s.Manifest();
         Drive(s, kDay, 3);
         for (int i = 0; i <= 8; ++i) s.Gps(kDay + (15 + 5 * i) * kMin, 13.2, 100.0, 0.5);
       }},
      {"TwentyMinuteStopInTraffic", "gps.unscheduled_stop", false,
       [](Scenario& s) {
         s.Manifest();
         Drive(s, kDay, 3);
         for (int i = 0; i <= 4; ++i) s.Gps(kDay + (15 + 5 * i) * kMin, 13.2, 100.0, 1.0);
         s.Gps(kDay + 40 * kMin, 13.21, 100.0, 60);
       }},
      {"LongStopInsideAuthorisedYard", "gps.unscheduled_stop", false,
       [](Scenario& s) {
         s.Manifest();
         for (int i = 0; i <= 12; ++i) s.Gps(kDay + 5 * i * kMin, 13.5, 100.001, 0);
       }},
      {"ThirtyMinuteStopBoundary", "gps.unscheduled_stop", true,
       [](Scenario& s) {
         s.Manifest();
         for (int i = 0; i <= 6; ++i) s.Gps(kDay + 5 * i * kMin, 13.2, 100.0, 3.0);
       }},
      {"NinetyMinuteGap", "gps.tracking_gap", true,
       [](Scenario& s) {
         s.Manifest();
         s.Gps(kDay, 13.1, 100.0).Gps(kDay + 90 * kMin, 13.3, 100.0);
       }},
      {"ThirtyMinuteGap", "gps.tracking_gap", false,
       [](Scenario& s) {
         s.Manifest();
         s.Gps(kDay, 13.1, 100.0).Gps(kDay + 30 * kMin, 13.3, 100.0);
       }},
      {"GapWhileParkedInYardBoundary", "gps.tracking_gap", false,
       [](Scenario& s) {
         s.Manifest();
         s.Gps(kDay, 13.5, 100.0, 0).Gps(kDay + 180 * kMin, 13.5, 100.0, 0);
       }},
      {"SealOpenedOnTheRoad", "gps.seal_breach", true,
       [](Scenario& s) {
         s.Manifest();
         s.Gps(kDay, 13.2, 100.0, 0, [](auto& e) { e.set_seal_state(v1::GpsEvent::SEAL_STATE_OPENED); });
       }},
      {"SealClosed", "gps.seal_breach", false, [](Scenario& s) { s.Manifest().Gps(kDay, 13.2, 100.0); }},
      {"SealOpenedInAuthorisedYardBoundary", "gps.seal_breach", false,
       [](Scenario& s) {
         s.Manifest();
         s.Gps(kDay, 13.5, 100.0, 0, [](auto& e) { e.set_seal_state(v1::GpsEvent::SEAL_STATE_OPENED); });
       }},
      {"SealTampered", "gps.seal_breach", true,
       [](Scenario& s) {
         s.Manifest();
         s.Gps(kDay, 13.2, 100.0, 40, [](auto& e) { e.set_seal_state(v1::GpsEvent::SEAL_STATE_TAMPERED); });
       }},
      {"SealNumberDiffers", "gps.seal_mismatch", true,
       [](Scenario& s) { s.Manifest().Gps(kDay, 13.2, 100.0, 40, [](auto& e) { e.set_seal_number("SEAL999"); }); }},
      {"SealNumberMatches", "gps.seal_mismatch", false,
       [](Scenario& s) { s.Manifest().Gps(kDay, 13.2, 100.0, 40, [](auto& e) { e.set_seal_number("SEAL001"); }); }},
      {"SealNumberMatchesAsReadWithOtherCaseSpacesAndHyphens", "gps.seal_mismatch", false,
       [](Scenario& s) { s.Manifest().Gps(kDay, 13.2, 100.0, 40, [](auto& e) { e.set_seal_number(" seal-00 1"); }); }},
      {"SealNumberNotReportedBoundary", "gps.seal_mismatch", false,
       [](Scenario& s) { s.Manifest().Gps(kDay, 13.2, 100.0, 40); }},
      {"BorderCrossedAwayFromBridge", "gps.unapproved_border_crossing", true,
       [](Scenario& s) {
         s.Manifest().Gps(kDay, 15.0, 100.0, 20, [](auto& e) {
           e.set_geofence_transition(v1::GpsEvent::GEOFENCE_TRANSITION_EXIT);
           e.set_geofence_id("border:TH-LA");
         });
       }},
      {"UpperCaseBorderGeofenceAwayFromBridge", "gps.unapproved_border_crossing", true,
       [](Scenario& s) {
         s.Manifest().Gps(kDay, 15.0, 100.0, 20, [](auto& e) {
           e.set_geofence_transition(v1::GpsEvent::GEOFENCE_TRANSITION_EXIT);
           e.set_geofence_id("BORDER-TH-LA");
         });
       }},
      {"BorderCrossedAtBridge", "gps.unapproved_border_crossing", false,
       [](Scenario& s) {
         s.Manifest().Gps(kDay, 14.0, 100.005, 20, [](auto& e) {
           e.set_geofence_transition(v1::GpsEvent::GEOFENCE_TRANSITION_EXIT);
           e.set_geofence_id("border:TH-LA");
         });
       }},
      {"NonBorderGeofenceBoundary", "gps.unapproved_border_crossing", false,
       [](Scenario& s) {
         s.Manifest().Gps(kDay, 15.0, 100.0, 20, [](auto& e) {
           e.set_geofence_transition(v1::GpsEvent::GEOFENCE_TRANSITION_ENTER);
           e.set_geofence_id("depot:udon");
         });
       }},
  };
}

std::vector<IndicatorCase> HistoryCases() {
  return {
      {"ConsigneeWithRecordedSeizure", "history.party_seizure", true,
       [](Scenario& s) {
         s.reference.seized_parties[NormaliseName("Vientiane Building Supplies")] = {{kT0 - 200 * kHour, kT0 + 1000 * kHour}};
         s.Manifest();
       }},
      // A seizure made after this manifest was declared (kT0 - 72 h) must not flag it.
      {"SeizureAfterTheManifestDoesNotReachBack", "history.party_seizure", false,
       [](Scenario& s) {
         s.reference.seized_parties[NormaliseName("Vientiane Building Supplies")] = {{kT0 - 24 * kHour, kT0 + 1000 * kHour}};
         s.Manifest();
       }},
      {"NoSeizureOnRecord", "history.party_seizure", false, [](Scenario& s) { s.Manifest(); }},
      {"SeizureListingExpiredBoundary", "history.party_seizure", false,
       [](Scenario& s) {
         s.reference.seized_parties[NormaliseName("Vientiane Building Supplies")] = {{kT0 - 800 * kHour, kT0 - 72 * kHour}};
         s.Manifest();
       }},
  };
}

auto CaseName = [](const auto& info) { return std::string(info.param.name); };
INSTANTIATE_TEST_SUITE_P(Manifest, Indicator, ::testing::ValuesIn(ManifestCases()), CaseName);
INSTANTIATE_TEST_SUITE_P(Scan, Indicator, ::testing::ValuesIn(ScanCases()), CaseName);
INSTANTIATE_TEST_SUITE_P(Gps, Indicator, ::testing::ValuesIn(GpsCases()), CaseName);
INSTANTIATE_TEST_SUITE_P(History, Indicator, ::testing::ValuesIn(HistoryCases()), CaseName);

TEST(IndicatorCoverage, EveryKnownIndicatorHasAFiringAndANonFiringCase) {
  std::map<std::string, std::pair<int, int>> seen;
  for (const auto& cases : {ManifestCases(), ScanCases(), GpsCases(), HistoryCases()}) {
    for (const auto& c : cases) (c.fires ? seen[c.indicator].first : seen[c.indicator].second)++;
  }
  for (const auto& spec : KnownIndicators()) {
    EXPECT_GE(seen[spec.id].first, 1) << spec.id << " has no firing case";
    EXPECT_GE(seen[spec.id].second, 1) << spec.id << " has no non-firing case";
  }
}

TEST(UnscheduledStop, WeighsMoreAtNight) {
  Scenario day, night;
  for (auto* s : {&day, &night}) s->Manifest();
  for (int i = 0; i <= 8; ++i) {
    day.Gps(kDay + 5 * i * kMin, 13.2, 100.0, 0);
    night.Gps(kNight + 5 * i * kMin, 13.2, 100.0, 0);
  }
  day.Finish();
  night.Finish();
  ASSERT_TRUE(day.Fired("gps.unscheduled_stop"));
  ASSERT_TRUE(night.Fired("gps.unscheduled_stop"));
  EXPECT_DOUBLE_EQ(day.Get("gps.unscheduled_stop")->contribution(), 20);
  EXPECT_DOUBLE_EQ(night.Get("gps.unscheduled_stop")->contribution(), 30);
}

}  // namespace
}  // namespace boxwatch::operators::testing
