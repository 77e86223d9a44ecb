// Every indicator: fires, does not fire, and the boundary, table-driven.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

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

// An under-filled box of leaf tobacco: 20 bales of 100 kg.
void TobaccoBox(v1::Manifest& m) {
  m.mutable_goods(0)->set_hs_code("240110");
  m.mutable_goods(0)->set_description("tobacco leaf");
  m.mutable_goods(0)->set_packages(20);
  m.mutable_goods(0)->set_gross_weight_kg(2000);
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
      {"OriginCountryViaListedHub", "route.risky_routing", true,
       [](Scenario& s) {
         s.Manifest([](auto& m) {
           m.set_port_of_loading("ECGYE");
           m.add_transhipment_ports("SGSIN");
         });
       }},
      {"ListedOriginViaAnotherHub", "route.risky_routing", false,
       [](Scenario& s) {
         s.Manifest([](auto& m) {
           m.set_port_of_loading("ECGYE");
           m.add_transhipment_ports("NLRTM");
         });
       }},
      {"ListedHubFromAnotherOriginBoundary", "route.risky_routing", false,
       [](Scenario& s) { s.Manifest([](auto& m) { m.add_transhipment_ports("SGSIN"); }); }},
      {"ConsigneeNotInTheRegister", "party.new_trader", true,
       [](Scenario& s) {
         s.reference.known_traders[NormaliseName("Shanghai Ceramics Export Ltd")] = kT0 - 3000 * kHour * 24;
         s.Manifest();
       }},
      {"BothPartiesLongRegistered", "party.new_trader", false,
       [](Scenario& s) {
         s.reference.known_traders[NormaliseName("Shanghai Ceramics Export Ltd")] = kT0 - 3000 * kHour * 24;
         s.reference.known_traders[NormaliseName("Vientiane Building Supplies")] = kT0 - 3000 * kHour * 24;
         s.Manifest();
       }},
      {"ConsigneeRegisteredUnder180DaysBoundary", "party.new_trader", true,
       [](Scenario& s) {
         s.reference.known_traders[NormaliseName("Shanghai Ceramics Export Ltd")] = kT0 - 3000 * kHour * 24;
         // The manifest is evaluated at its declaration, kT0 - 72 h.
         s.reference.known_traders[NormaliseName("Vientiane Building Supplies")] = kT0 - 72 * kHour - 179 * 24 * kHour;
         s.Manifest();
       }},
      {"NoTraderRegisterAtAll", "party.new_trader", false, [](Scenario& s) { s.Manifest(); }},
      {"ThirdUnderFilledBoxOfTobaccoForTheConsignee", "manifest.split_consignment", true,
       [](Scenario& s) {
         for (const char* other : {"MSKU1000000", "CSQU1000011"}) {
           s.reference.consignments["VIENTIANE BUILDING SUPPLIES#2401"].push_back({other, kT0 - 80 * kHour, kT0 - 79 * kHour});
         }
         s.Manifest(TobaccoBox);
       }},
      {"OnlyOneOtherBox", "manifest.split_consignment", false,
       [](Scenario& s) {
         s.reference.consignments["VIENTIANE BUILDING SUPPLIES#2401"].push_back({"MSKU1000000", kT0 - 80 * kHour, kT0 - 79 * kHour});
         s.Manifest(TobaccoBox);
       }},
      {"AFullBoxIsNoSplit", "manifest.split_consignment", false,
       [](Scenario& s) {
         for (const char* other : {"MSKU1000000", "CSQU1000011"}) {
           s.reference.consignments["VIENTIANE BUILDING SUPPLIES#2401"].push_back({other, kT0 - 80 * kHour, kT0 - 79 * kHour});
         }
         s.Manifest([](auto& m) {
           TobaccoBox(m);
           m.mutable_goods(0)->set_packages(120);
           m.mutable_goods(0)->set_gross_weight_kg(18000);
         });
       }},
      // Seen by this box's evaluations only from when it was listed: a
      // sibling listed after the last event of this box is not counted.
      {"SiblingListedAfterEveryEventOfThisBoxBoundary", "manifest.split_consignment", false,
       [](Scenario& s) {
         s.reference.consignments["VIENTIANE BUILDING SUPPLIES#2401"].push_back({"MSKU1000000", kT0 - 80 * kHour, kT0 - 79 * kHour});
         s.reference.consignments["VIENTIANE BUILDING SUPPLIES#2401"].push_back({"CSQU1000011", kT0 - 71 * kHour, kT0 - 71 * kHour});
         s.Manifest(TobaccoBox);
       }},
      {"ASiblingSeenAtALaterFixOfThisBox", "manifest.split_consignment", true,
       [](Scenario& s) {
         s.reference.consignments["VIENTIANE BUILDING SUPPLIES#2401"].push_back({"MSKU1000000", kT0 - 80 * kHour, kT0 - 79 * kHour});
         s.reference.consignments["VIENTIANE BUILDING SUPPLIES#2401"].push_back({"CSQU1000011", kT0 - 71 * kHour, kT0 - 71 * kHour});
         s.Manifest(TobaccoBox).Gps(kDay, 13.2, 100.0);
       }},
      {"TilesFarTooLightForTiles", "goods.weight_implausible", true,
       [](Scenario& s) { s.Manifest([](auto& m) { m.mutable_goods(0)->set_gross_weight_kg(2000); }); }},  // 100 kg a crate
      {"TilesAtTheirUsualWeight", "goods.weight_implausible", false, [](Scenario& s) { s.Manifest(); }},
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
      {"XrayInconclusive", "scan.xray_inconclusive", true,
       [](Scenario& s) {
         s.Manifest().Nii(kDay, 0.4, [](auto& e) { e.mutable_nii()->set_verdict(v1::NiiResult::VERDICT_INCONCLUSIVE); });
       }},
      {"XrayClear", "scan.xray_inconclusive", false, [](Scenario& s) { s.Manifest().Nii(kDay, 0.4); }},
      {"XrayInconclusiveButAnomalousIsTheAnomalyBoundary", "scan.xray_inconclusive", false,
       [](Scenario& s) {
         s.Manifest().Nii(kDay, 0.9, [](auto& e) { e.mutable_nii()->set_verdict(v1::NiiResult::VERDICT_INCONCLUSIVE); });
       }},
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
      // Fixes read against a declaration are not read again under it; a
      // later fix that mismatches still fires, and an amendment reads the
      // whole window again.
      {"SealMismatchAfterMatchingReads", "gps.seal_mismatch", true,
       [](Scenario& s) {
         s.Manifest();
         for (int i = 0; i < 5; ++i) {
           s.Gps(kDay + 5 * i * kMin, 13.2 + 0.01 * i, 100.0, 40, [](auto& e) { e.set_seal_number("SEAL001"); });
         }
         s.Gps(kDay + 30 * kMin, 13.26, 100.0, 40, [](auto& e) { e.set_seal_number("SEAL999"); });
       }},
      {"SealReadBeforeAnAmendmentThatReplacedIt", "gps.seal_mismatch", true,
       [](Scenario& s) {
         s.Manifest().Gps(kDay, 13.2, 100.0, 40, [](auto& e) { e.set_seal_number("SEAL001"); });
         s.Manifest([](auto& m) { m.set_seal_numbers(0, "SEAL555"); }, kDay + 10 * kMin, 2);
         s.Gps(kDay + 20 * kMin, 13.21, 100.0, 40, [](auto& e) { e.set_seal_number("SEAL555"); });
       }},
      {"SealReadsMatchingUnderOneDeclarationBoundary", "gps.seal_mismatch", false,
       [](Scenario& s) {
         s.Manifest();
         for (int i = 0; i < 8; ++i) {
           s.Gps(kDay + 5 * i * kMin, 13.2 + 0.01 * i, 100.0, 40, [](auto& e) { e.set_seal_number("seal-001"); });
         }
       }},
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
      {"AnotherVendorsBorderGeofenceName", "gps.unapproved_border_crossing", true,
       [](Scenario& s) {
         s.Manifest().Gps(kDay, 15.0, 100.0, 20, [](auto& e) {
           e.set_geofence_transition(v1::GpsEvent::GEOFENCE_TRANSITION_ENTER);
           e.set_geofence_id("xing_th_la");
         });
       }},
      // A tracker that saves power reports every 25 minutes: the stop began
      // when the truck reached the place (1.1 km at 50 km/h after the moving
      // fix), not at the first stationary fix 25 minutes later.
      {"SparseTrackerStopMeasuredFromArrival", "gps.unscheduled_stop", true,
       [](Scenario& s) {
         s.Manifest();
         s.Gps(kDay, 13.1, 100.0, 50).Gps(kDay + 25 * kMin, 13.11, 100.0, 0).Gps(kDay + 50 * kMin, 13.11, 100.0, 0);
       }},
      {"DenseTrackerTwentyFiveMinuteStopBoundary", "gps.unscheduled_stop", false,
       [](Scenario& s) {
         s.Manifest();
         s.Gps(kDay, 13.1, 100.0, 50);
         for (int i = 1; i <= 6; ++i) s.Gps(kDay + (5 + 5 * i) * kMin - 5 * kMin, 13.11, 100.0, 0);  // 5..30 min
       }},
      {"LongStopAtTheConsigneesPremises", "gps.unscheduled_stop", false,
       [](Scenario& s) {
         s.Manifest();
         for (int i = 0; i <= 12; ++i) s.Gps(kDay + 5 * i * kMin, 13.3, 100.001, 0);
       }},
      {"LongStopAtAnotherConsigneesPremises", "gps.unscheduled_stop", true,
       [](Scenario& s) {
         s.Manifest([](auto& m) { m.mutable_consignee()->set_name("Other Importer Co"); });
         for (int i = 0; i <= 12; ++i) s.Gps(kDay + 5 * i * kMin, 13.3, 100.001, 0);
       }},
      {"TwentyMinutesStoppedOffEveryCorridor", "gps.off_corridor_stop", true,
       [](Scenario& s) {
         s.Manifest();
         Drive(s, kDay, 4);
         for (int i = 0; i <= 4; ++i) s.Gps(kDay + (20 + 5 * i) * kMin, 13.1, 100.1, 0);
       }},
      {"TenMinutesStoppedOffEveryCorridor", "gps.off_corridor_stop", false,
       [](Scenario& s) {
         s.Manifest();
         Drive(s, kDay, 4);
         for (int i = 0; i <= 2; ++i) s.Gps(kDay + (20 + 5 * i) * kMin, 13.1, 100.1, 0);
       }},
      {"LongStopOnTheCorridorIsNoOffCorridorStopBoundary", "gps.off_corridor_stop", false,
       [](Scenario& s) {
         s.Manifest();
         for (int i = 0; i <= 12; ++i) s.Gps(kDay + 5 * i * kMin, 13.2, 100.0, 0);
       }},
      {"SteadyDriftAwayFromTheLine", "gps.corridor_drift", true,
       [](Scenario& s) {
         s.Manifest();
         // 300 m further east with every fix, still inside the 2 km buffer at first.
         for (int i = 0; i < 7; ++i) s.Gps(kDay + 5 * i * kMin, 13.05 + i * 0.004, 100.0 + i * 0.00277, 50);
       }},
      {"StraightAlongTheLine", "gps.corridor_drift", false, [](Scenario& s) { s.Manifest(); Drive(s, kDay, 8); }},
      {"AJumpOffTheCorridorIsNoDrift", "gps.corridor_drift", false,
       [](Scenario& s) {
         s.Manifest();
         Drive(s, kDay, 4);
         for (int i = 0; i < 3; ++i) s.Gps(kDay + (20 + 5 * i) * kMin, 13.1 + 0.01 * i, 100.1);
       }},
      {"ZigZagNoiseIsNoDriftBoundary", "gps.corridor_drift", false,
       [](Scenario& s) {
         s.Manifest();
         for (int i = 0; i < 7; ++i) s.Gps(kDay + 5 * i * kMin, 13.05 + i * 0.004, 100.0 + (i % 2) * 0.0046 + i * 0.0005, 50);
       }},
      {"SealOpenedAtTheConsigneesPremises", "gps.seal_breach", false,
       [](Scenario& s) {
         s.Manifest();
         s.Gps(kDay, 13.3, 100.0, 0, [](auto& e) { e.set_seal_state(v1::GpsEvent::SEAL_STATE_OPENED); });
       }},
      {"SealOpenedAtSomeoneElsesPremises", "gps.seal_breach", true,
       [](Scenario& s) {
         s.Manifest([](auto& m) { m.mutable_consignee()->set_name("Other Importer Co"); });
         s.Gps(kDay, 13.3, 100.0, 0, [](auto& e) { e.set_seal_state(v1::GpsEvent::SEAL_STATE_OPENED); });
       }},
      {"SealOpenedDuringACustomsInspectionThatResealed", "gps.seal_breach", false,
       [](Scenario& s) {
         s.Manifest().Outcome(kDay, [](auto& o) { o.add_seals_applied("CUS-777"); });
         s.Gps(kDay + 10 * kMin, 13.2, 100.0, 0, [](auto& e) { e.set_seal_state(v1::GpsEvent::SEAL_STATE_OPENED); });
       }},
      {"StandingThroughACustomsInspectionThatResealed", "gps.unscheduled_stop", false,
       [](Scenario& s) {
         s.Manifest().Outcome(kDay, [](auto& o) { o.add_seals_applied("CUS-777"); });
         for (int i = 0; i <= 10; ++i) s.Gps(kDay + 5 * i * kMin, 13.2, 100.0, 0);
       }},
      {"SealOpenedThreeHoursAfterTheInspectionBoundary", "gps.seal_breach", true,
       [](Scenario& s) {
         s.Manifest().Outcome(kDay, [](auto& o) { o.add_seals_applied("CUS-777"); });
         s.Gps(kDay + 180 * kMin, 13.2, 100.0, 0, [](auto& e) { e.set_seal_state(v1::GpsEvent::SEAL_STATE_OPENED); });
       }},
      {"CustomsResealReadAfterTheInspection", "gps.seal_mismatch", false,
       [](Scenario& s) {
         s.Manifest().Outcome(kDay, [](auto& o) { o.add_seals_applied("CUS-777"); });
         s.Gps(kDay + 30 * kMin, 13.2, 100.0, 40, [](auto& e) { e.set_seal_number("cus 777"); });
       }},
      // Reported after the fix that reads the new seal had joined: the
      // evaluation of that fix may have run without it, so it never counts.
      {"CustomsResealReportedAfterTheFixThatReadsIt", "gps.seal_mismatch", true,
       [](Scenario& s) {
         s.Manifest().Gps(kDay + 30 * kMin, 13.2, 100.0, 40, [](auto& e) { e.set_seal_number("CUS777"); });
         s.Outcome(kDay, [](auto& o) { o.add_seals_applied("CUS-777"); });
       }},
      {"ResealNumberReadBeforeTheInspectionBoundary", "gps.seal_mismatch", true,
       [](Scenario& s) {
         s.Manifest().Outcome(kDay, [](auto& o) { o.add_seals_applied("CUS-777"); });
         s.Gps(kDay - 30 * kMin, 13.2, 100.0, 40, [](auto& e) { e.set_seal_number("CUS777"); });
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
      {"AnotherBoxOfTheBillWasSeized", "history.sibling_seizure", true,
       [](Scenario& s) {
         s.reference.seized_bills["BLTEST0001"] = {{kT0 - 200 * kHour, kT0 + 1000 * kHour}};
         s.Manifest();
       }},
      {"AnotherBillWasSeized", "history.sibling_seizure", false,
       [](Scenario& s) {
         s.reference.seized_bills["BLTEST0002"] = {{kT0 - 200 * kHour, kT0 + 1000 * kHour}};
         s.Manifest();
       }},
      {"SiblingSeizedAfterTheManifestBoundary", "history.sibling_seizure", false,
       [](Scenario& s) {
         s.reference.seized_bills["BLTEST0001"] = {{kT0 - 24 * kHour, kT0 + 1000 * kHour}};
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

TEST(UnscheduledStop, JustOutsideAZoneWeighsLessAndSaysHowFar) {
  Scenario near, far;
  for (auto* s : {&near, &far}) s->Manifest();
  for (int i = 0; i <= 8; ++i) {
    near.Gps(kDay + 5 * i * kMin, 13.5108, 100.0, 0);  // about 200 m outside the 1 km test yard
    far.Gps(kDay + 5 * i * kMin, 13.2, 100.0, 0);      // 33 km from it
  }
  near.Finish();
  far.Finish();
  ASSERT_TRUE(near.Fired("gps.unscheduled_stop"));
  ASSERT_TRUE(far.Fired("gps.unscheduled_stop"));
  EXPECT_DOUBLE_EQ(near.Get("gps.unscheduled_stop")->contribution(), 10);
  EXPECT_DOUBLE_EQ(far.Get("gps.unscheduled_stop")->contribution(), 20);
  auto evidence = [](const v1::FiredIndicator* f, const std::string& key) {
    for (const auto& e : f->evidence()) {
      if (e.key() == key) return e.value();
    }
    return std::string("(none)");
  };
  EXPECT_EQ(evidence(near.Get("gps.unscheduled_stop"), "nearest_zone"), "Test yard");
  const double gap = std::stod(evidence(near.Get("gps.unscheduled_stop"), "zone_distance_m"));
  EXPECT_GT(gap, 150);
  EXPECT_LT(gap, 250);
  EXPECT_NE(near.Get("gps.unscheduled_stop")->summary().find("outside Test yard"), std::string::npos);
}

Profile EditedTestProfile(const std::string& from, const std::string& to);

TEST(PartyWatchlisted, AnExactMatchKeepsTheCriticalFlagANearNameDropsIt) {
  static const Profile profile = EditedTestProfile("party.watchlisted: {weight: 50}", "party.watchlisted: {weight: 50, critical: true}");
  Scenario exact(profile), near(profile);
  exact.Manifest([](auto& m) { m.mutable_consignee()->set_name("Golden Crescent Trading Co."); }).Finish();
  near.Manifest([](auto& m) { m.mutable_consignee()->set_name("Golden Cresent Trading Co"); }).Finish();
  ASSERT_TRUE(exact.Fired("party.watchlisted"));
  ASSERT_TRUE(near.Fired("party.watchlisted"));
  EXPECT_TRUE(exact.Get("party.watchlisted")->critical());
  EXPECT_FALSE(near.Get("party.watchlisted")->critical()) << "a near name is a lead, not a reason to stop the box";
  EXPECT_LT(near.Get("party.watchlisted")->contribution(), 50);
  ASSERT_FALSE(exact.alerts.empty());
  EXPECT_EQ(exact.alerts.back().priority(), v1::PRIORITY_CRITICAL);
  ASSERT_FALSE(near.alerts.empty());
  EXPECT_NE(near.alerts.back().priority(), v1::PRIORITY_CRITICAL);
}

TEST(PaymentCash, WeighsMoreWhenTheCompanyIsNewlySeen) {
  static const Profile profile =
      EditedTestProfile("payment.cash: {weight: 10}", "payment.cash: {weight: 10, params: {new_trader_factor: 2.5}}");
  Scenario known(profile), fresh(profile);
  for (auto* s : {&known, &fresh}) {
    s->reference.known_traders[NormaliseName("Shanghai Ceramics Export Ltd")] = kT0 - 3000LL * 24 * kHour;
  }
  known.reference.known_traders[NormaliseName("Vientiane Building Supplies")] = kT0 - 3000LL * 24 * kHour;
  for (auto* s : {&known, &fresh}) {
    s->Manifest([](auto& m) { m.set_freight_payment(v1::Manifest::FREIGHT_PAYMENT_CASH); }).Finish();
  }
  ASSERT_TRUE(known.Fired("payment.cash"));
  ASSERT_TRUE(fresh.Fired("payment.cash"));
  EXPECT_FALSE(known.Fired("party.new_trader"));
  EXPECT_TRUE(fresh.Fired("party.new_trader"));
  EXPECT_DOUBLE_EQ(known.Get("payment.cash")->contribution(), 10);
  EXPECT_DOUBLE_EQ(fresh.Get("payment.cash")->contribution(), 25);
}

// The test profile with one line edited.
Profile EditedTestProfile(const std::string& from, const std::string& to) {
  std::ifstream in(TestDataPath("test_profile.yaml"));
  std::stringstream text;
  text << in.rdbuf();
  std::string yaml = text.str();
  const size_t at = yaml.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) yaml.replace(at, from.size(), to);
  auto p = ParseProfile(yaml, "edited.yaml");
  EXPECT_TRUE(p.ok()) << p.error().message;
  return std::move(p).value();
}

// gps.seal_mismatch reads a fix against a declaration once; these are the
// ways a fix must be read again, as a whole-window read would.
TEST(SealMismatch, AFixOlderThanTheReadOnesIsReadWithTheNextEvaluation) {
  // At its own time there was no declaration with seals; the next fix's
  // evaluation, under the declaration, reads it.
  Scenario s;
  s.Manifest({}, kDay + 2 * kMin);
  for (int i = 0; i <= 2; ++i) s.Gps(kDay + 5 * i * kMin, 13.2, 100.0, 40, [](auto& e) { e.set_seal_number("SEAL001"); });
  s.Finish();
  ASSERT_FALSE(s.Fired("gps.seal_mismatch"));
  s.Gps(kDay - 5 * kMin, 13.19, 100.0, 40, [](auto& e) { e.set_seal_number("SEAL999"); });
  s.Finish();
  EXPECT_FALSE(s.Fired("gps.seal_mismatch")) << "no declaration with seals at its own time";
  s.Gps(kDay + 15 * kMin, 13.23, 100.0, 40, [](auto& e) { e.set_seal_number("SEAL001"); });
  s.Finish();
  EXPECT_TRUE(s.Fired("gps.seal_mismatch"));
}

TEST(SealMismatch, ACorrectedResendOfTheDeclarationIsReadAgainst) {
  // The declaration kept had a field it could not use; its corrected resend
  // (same version, same time) replaces it, seals included.
  Scenario s;
  s.Manifest([](auto& m) {
    m.set_seal_numbers(0, "SEAL002");
    m.add_unusable_fields("gross_weight_kg");
  });
  s.Gps(kDay, 13.2, 100.0, 40, [](auto& e) { e.set_seal_number("SEAL002"); });
  s.Finish();
  ASSERT_FALSE(s.Fired("gps.seal_mismatch"));
  s.Manifest();  // SEAL001, nothing unusable
  s.Gps(kDay + 5 * kMin, 13.21, 100.0, 40, [](auto& e) { e.set_seal_number("SEAL001"); });
  s.Finish();
  EXPECT_TRUE(s.Fired("gps.seal_mismatch")) << "the fix read SEAL002, which the resend no longer declares";
}

TEST(LateAmendment, ACorrectionWeighsMinorFactorAChangeOfConsigneeOrHeadingInFull) {
  static const Profile profile =
      EditedTestProfile("manifest.late_amendment: {weight: 30, params: {cutoff_hours_before_eta: 48}}",
                        "manifest.late_amendment: {weight: 30, params: {cutoff_hours_before_eta: 48, minor_factor: 0.5}}");
  auto amended = [&](std::function<void(v1::Manifest&)> change) {
    Scenario s(profile);
    s.Manifest();
    s.Manifest(change, kT0 + 38 * kHour, 2);
    s.Finish();
    const v1::FiredIndicator* f = s.Get("manifest.late_amendment");
    return f == nullptr ? -1.0 : f->contribution();
  };
  EXPECT_DOUBLE_EQ(amended([](auto& m) { m.mutable_consignee()->set_name("New Consignee Ltd"); }), 30);
  EXPECT_DOUBLE_EQ(amended([](auto& m) { m.mutable_goods(0)->set_hs_code("240110"); }), 30) << "another heading";
  EXPECT_DOUBLE_EQ(amended([](auto& m) { m.mutable_goods(0)->set_description("glazed porcelain floor tiles"); }), 15);
  EXPECT_DOUBLE_EQ(amended([](auto& m) { m.set_seal_numbers(0, "SEAL002"); }), 15);
}

TEST(Feedback, ARipOnOffListsNoneOfItsVictimsAndASeizureListsItsBill) {
  Scenario s;
  s.Manifest();
  v1::InspectionOutcome o;
  o.set_container_number(kBox);
  o.set_outcome_id("OUT-1");
  o.set_inspected_at_ms(kDay);
  o.set_result(v1::InspectionOutcome::RESULT_SEIZURE);
  const auto updates = s.engine.FeedbackFor(s.state, o);
  ASSERT_EQ(updates.size(), 2u);
  EXPECT_EQ(updates[0].key, "seized_parties:VIENTIANE BUILDING SUPPLIES@" + std::to_string(kDay));
  EXPECT_EQ(updates[1].key, "seized_bills:BLTEST0001@" + std::to_string(kDay));
  ReferenceData ref;
  for (const auto& u : updates) ASSERT_TRUE(ApplyReferenceEntry(&ref, u.key, u.value).ok()) << u.key;
  EXPECT_TRUE(ref.SiblingSeizureCovers("BLTEST0001", kDay + kHour));
  EXPECT_FALSE(ref.SiblingSeizureCovers("BLTEST0001", kDay - kHour));
  o.set_rip_on_off(true);
  EXPECT_TRUE(s.engine.FeedbackFor(s.state, o).empty()) << "a rip-on/rip-off's parties are its victims";
}

TEST(SplitConsignment, AFirstDeclarationOfAnUnderFilledSensitiveBoxIsListedAndReadBack) {
  Scenario s;
  v1::Manifest m = CleanManifest();
  TobaccoBox(m);
  const auto listed = s.engine.ConsignmentFor(m, kT0, 5 * kMin);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].key, "consignments:VIENTIANE BUILDING SUPPLIES#2401@" + std::string(kBox));
  EXPECT_EQ(listed[0].value, "declared_at=" + std::to_string(m.declared_at_ms()) + " effective=" + std::to_string(kT0 + 5 * kMin))
      << "listed from the horizon, after the lateness";
  ReferenceData ref;
  ASSERT_TRUE(ApplyReferenceEntry(&ref, listed[0].key, listed[0].value).ok());
  ASSERT_EQ(ref.consignments["VIENTIANE BUILDING SUPPLIES#2401"].size(), 1u);
  EXPECT_FALSE(ApplyReferenceEntry(&ref, "consignments:X#2401@Y", "declared_at=1").ok());
  ASSERT_TRUE(ApplyReferenceEntry(&ref, listed[0].key, "").ok());
  EXPECT_TRUE(ref.consignments.empty());
  m.set_version(2);
  EXPECT_TRUE(s.engine.ConsignmentFor(m).empty()) << "an amendment lists nothing again";
  v1::Manifest full = CleanManifest();
  EXPECT_TRUE(s.engine.ConsignmentFor(full).empty()) << "tiles are not sensitive";
}

TEST(ReferenceEntries, TraderRegisterEntriesParseAndBadOnesAreRefused) {
  ReferenceData ref;
  ASSERT_TRUE(ApplyReferenceEntry(&ref, "known_traders:Kura Agro Trading LLC", "since=1700000000000").ok());
  EXPECT_EQ(ref.known_traders.at(NormaliseName("Kura Agro Trading LLC")), 1700000000000);
  EXPECT_FALSE(ApplyReferenceEntry(&ref, "known_traders:Other Co", "since=soon").ok());
  EXPECT_FALSE(ApplyReferenceEntry(&ref, "known_traders:Other Co", "since=-5").ok());
  EXPECT_EQ(ref.known_traders.count(NormaliseName("Other Co")), 0u);
  ASSERT_TRUE(ApplyReferenceEntry(&ref, "known_traders:Kura Agro Trading LLC", "").ok());
  EXPECT_TRUE(ref.known_traders.empty());
}

}  // namespace
}  // namespace boxwatch::operators::testing
