// The ingest formats: UN/EDIFACT syntax, CUSCAR to Manifest, N42.42 to
// ScanResult, on the hand-written samples of tests/data/ingest (README
// there says what each covers and where it comes from) and on bad input;
// and the simulator's upstream formats converting back to the very records
// of the native traffic.

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "ingest/convert.h"
#include "ingest/cuscar.h"
#include "ingest/edifact.h"
#include "ingest/n42.h"
#include "operators/default_profile.h"
#include "sim/traffic.h"
#include "sim/upstream.h"

namespace boxwatch::ingest {
namespace {

std::string Sample(const std::string& name) {
  std::ifstream in(std::string(BOXWATCH_SOURCE_DIR) + "/tests/data/ingest/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<v1::Manifest> Manifests(const std::string& bytes, std::vector<Rejected>* rejected = nullptr) {
  Conversion c = Convert(RawFormat::kCuscar, bytes, {});
  std::vector<v1::Manifest> out;
  for (const auto& r : c.records) {
    v1::Manifest m;
    EXPECT_TRUE(m.ParseFromString(r.value));
    EXPECT_EQ(r.key, m.container_number());
    EXPECT_EQ(r.timestamp_ms, m.declared_at_ms());
    out.push_back(m);
  }
  if (rejected) *rejected = c.rejected;
  return out;
}

Rejected OnlyRejection(RawFormat f, const std::string& bytes, const N42Options& o = {}) {
  Conversion c = Convert(f, bytes, o);
  EXPECT_TRUE(c.records.empty());
  EXPECT_EQ(c.rejected.size(), 1u);
  return c.rejected.empty() ? Rejected{} : c.rejected[0];
}

TEST(Cuscar, TwoConsignmentsOverTwoContainersMapQualifierByQualifier) {
  std::vector<Rejected> rejected;
  const auto ms = Manifests(Sample("cuscar_d95b_two_consignments.edi"), &rejected);
  for (const auto& r : rejected) ADD_FAILURE() << r.reason << " at " << r.position << ": " << r.detail;
  ASSERT_EQ(ms.size(), 3u);
  const v1::Manifest& a = ms[0];
  EXPECT_EQ(a.container_number(), "MSKU1234565");
  EXPECT_EQ(a.version(), 1u);
  EXPECT_EQ(a.bill_of_lading(), "BL20261118001");
  EXPECT_EQ(a.declared_at_ms(), 1794994200000);  // 2026-11-18T09:30Z (DTM 137, format 203)
  EXPECT_EQ(a.eta_ms(), 1795242600000);          // 2026-11-21T06:30:00Z (DTM 132, format 204)
  EXPECT_EQ(a.voyage(), "V2611E");
  EXPECT_EQ(a.vessel_imo(), "9312345");
  EXPECT_EQ(a.vessel_name(), "BLACK SEA TRADER");
  EXPECT_EQ(a.carrier_scac(), "CARX");
  EXPECT_EQ(a.port_of_loading(), "CNSHA");
  ASSERT_EQ(a.transhipment_ports_size(), 1);
  EXPECT_EQ(a.transhipment_ports(0), "TRMER");
  EXPECT_EQ(a.port_of_discharge(), "GEPTI");
  EXPECT_EQ(a.final_destination(), "AZBAK");  // the consignment's LOC 20
  EXPECT_EQ(a.container_size_type(), "45G1");
  EXPECT_EQ(a.tare_weight_kg(), 3800);
  ASSERT_EQ(a.seal_numbers_size(), 2);
  EXPECT_EQ(a.seal_numbers(1), "GE99887");
  EXPECT_EQ(a.freight_payment(), v1::Manifest::FREIGHT_PAYMENT_PREPAID);
  EXPECT_EQ(a.shipper().name(), "Shanghai Ceramic Works Co. Ltd");
  EXPECT_EQ(a.shipper().address(), "88 Pudong Road, Shanghai, 200120");
  EXPECT_EQ(a.shipper().country(), "CN");
  EXPECT_EQ(a.consignee().name(), "Kura Agro Trading LLC");
  EXPECT_EQ(a.notify_party().name(), "Caspian Forwarding: Baku Branch");  // ?: released
  ASSERT_EQ(a.goods_size(), 1);
  EXPECT_EQ(a.goods(0).hs_code(), "690721");
  EXPECT_EQ(a.goods(0).description(), "CERAMIC FLOOR TILES, GLAZED+BOXED SIZE 60'60 CM");  // ?+ and ?' released
  EXPECT_EQ(a.goods(0).packages(), 300u);  // SGP: 300 of the 400 cartons
  EXPECT_EQ(a.goods(0).gross_weight_kg(), 15300);
  EXPECT_EQ(a.goods(0).package_type(), "CT");
  const v1::Manifest& b = ms[1];
  EXPECT_EQ(b.container_number(), "TGHU7654320");
  EXPECT_EQ(b.tare_weight_kg(), 2200);  // 2.2 TNE
  ASSERT_EQ(b.goods_size(), 2);        // the split tiles and the second consignment's pumps
  EXPECT_EQ(b.goods(0).packages(), 100u);
  EXPECT_EQ(b.goods(0).gross_weight_kg(), 5100);
  EXPECT_EQ(b.goods(1).hs_code(), "841370");
  EXPECT_EQ(b.goods(1).description(), "CENTRIFUGAL PUMPS FOR WATER");
  const v1::Manifest& c = ms[2];
  EXPECT_EQ(c.container_number(), "CSQU3054383");
  EXPECT_EQ(c.bill_of_lading(), "BL20261118003");  // from CNI when no RFF BM
  EXPECT_EQ(c.consignee().name(), "Tbilisi Textile Import");
  EXPECT_EQ(c.goods(0).packages(), 150u);
  EXPECT_EQ(c.freight_payment(), v1::Manifest::FREIGHT_PAYMENT_UNSPECIFIED);
}

TEST(Cuscar, SyntaxFourWithoutUnaDecodesUtf8AndCarriesTheAmendmentVersion) {
  std::vector<Rejected> rejected;
  const auto ms = Manifests(Sample("cuscar_v4_utf8_amendment.edi"), &rejected);
  for (const auto& r : rejected) ADD_FAILURE() << r.reason << " at " << r.position << ": " << r.detail;
  ASSERT_EQ(ms.size(), 1u);
  const v1::Manifest& m = ms[0];
  EXPECT_EQ(m.version(), 2u);
  EXPECT_EQ(m.declared_at_ms(), 1795083300000);  // 14:15 at +04:00 = 10:15Z (format 205)
  EXPECT_EQ(m.shipper().name(), "İzmir Tekstil Sanayi A.Ş.");
  EXPECT_EQ(m.consignee().name(), "ООО Каспий Логистик");
  EXPECT_EQ(m.freight_payment(), v1::Manifest::FREIGHT_PAYMENT_CASH);
  EXPECT_EQ(m.final_destination(), "AZBAK");  // LOC 8
  ASSERT_EQ(m.seal_numbers_size(), 2);       // 9308 repeated with '*'
  EXPECT_EQ(m.seal_numbers(1), "SL100201");
}

TEST(Cuscar, Latin1IsDecodedAndTheInterchangeDateStandsInForAMissingDocumentDate) {
  std::vector<Rejected> rejected;
  const auto ms = Manifests(Sample("cuscar_latin1.edi"), &rejected);
  for (const auto& r : rejected) ADD_FAILURE() << r.reason << " at " << r.position << ": " << r.detail;
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].consignee().name(), "Société Géorgienne SARL");
  EXPECT_EQ(ms[0].goods(0).description(), "CAFÉ EN GRAINS");
  EXPECT_EQ(ms[0].declared_at_ms(), 1795161600000);  // UNB 261120:0800
}

struct BadCase {
  const char* name;
  std::string bytes;
  const char* reason;
  const char* position;  // a substring of the position
};

class CuscarBadInput : public ::testing::TestWithParam<BadCase> {};

TEST_P(CuscarBadInput, IsRejectedWithItsReasonAndPosition) {
  const BadCase& c = GetParam();
  Conversion out = Convert(RawFormat::kCuscar, c.bytes, {});
  ASSERT_FALSE(out.rejected.empty()) << c.name;
  EXPECT_EQ(out.rejected[0].reason, c.reason) << out.rejected[0].detail;
  EXPECT_NE(out.rejected[0].position.find(c.position), std::string::npos) << out.rejected[0].position;
}

const std::string kHead = "UNA:+.? 'UNB+UNOC:3+S:ZZZ+R:ZZZ+261118:0930+X1'UNH+1+CUSCAR:D:95B:UN'BGM+85+D1+9'DTM+137:202611180930:203'";
const std::string kBody = "EQD+CN+MSKU1234565'CNI+1+B1'GID+1+1:PK'";

INSTANTIATE_TEST_SUITE_P(
    Cases, CuscarBadInput,
    ::testing::Values(
        BadCase{"truncated", kHead + "EQD+CN+MSKU1234565'CNI+1+B", "edifact_truncated", "segment 6"},
        BadCase{"unt_count", kHead + kBody + "UNT+9+1'UNZ+1+X1'", "edifact_count", "(UNT)"},
        BadCase{"unz_count", kHead + kBody + "UNT+7+1'UNZ+2+X1'", "edifact_count", "(UNZ)"},
        BadCase{"unz_reference", kHead + kBody + "UNT+7+1'UNZ+1+X2'", "edifact_envelope", "(UNZ)"},
        BadCase{"check_digit", kHead + "EQD+CN+MSKU1234566'CNI+1+B1'GID+1+1:PK'UNT+7+1'UNZ+1+X1'", "cuscar_container",
                "(EQD)"},
        BadCase{"charset", "UNB+UNOZ:3+S+R+261118:0930+X1'UNZ+0+X1'", "edifact_charset", "segment 1"},
        BadCase{"ascii_only", "UNB+UNOB:3+S+R+261118:0930+X1'UNH+1+CUSCAR:D:95B:UN'BGM+85+D\xe9+9'UNT+3+1'UNZ+1+X1'",
                "edifact_charset", "(BGM)"},
        BadCase{"bad_utf8", "UNB+UNOW:4+S+R+20261118:0930+X1'UNH+1+CUSCAR:D:01B:UN'BGM+85+D\xc3\x28+9'UNT+3+1'UNZ+1+X1'",
                "edifact_charset", "(BGM)"},
        BadCase{"cancellation",
                "UNB+UNOC:3+S+R+261118:0930+X1'UNH+1+CUSCAR:D:95B:UN'BGM+85+D1+1'EQD+CN+MSKU1234565'UNT+4+1'UNZ+1+X1'",
                "cuscar_function", "(BGM)"},
        BadCase{"amendment_without_version",
                "UNB+UNOC:3+S+R+261118:0930+X1'UNH+1+CUSCAR:D:95B:UN'BGM+85+D1+5'EQD+CN+MSKU1234565'UNT+4+1'UNZ+1+X1'",
                "cuscar_version", "(BGM)"},
        BadCase{"not_cuscar", "UNB+UNOC:3+S+R+261118:0930+X1'UNH+1+IFTMIN:D:95B:UN'BGM+85+D1+9'UNT+3+1'UNZ+1+X1'",
                "cuscar_type", "(UNH)"},
        BadCase{"unknown_date_format", kHead.substr(0, kHead.size() - 25) + "DTM+137:18112026:999'" + kBody +
                                           "UNT+7+1'UNZ+1+X1'",
                "cuscar_date", "(DTM)"},
        BadCase{"no_container", "UNB+UNOC:3+S+R+261118:0930+X1'UNH+1+CUSCAR:D:95B:UN'BGM+85+D1+9'UNT+3+1'UNZ+1+X1'",
                "cuscar_link", "(BGM)"},
        BadCase{"no_unb", "UNH+1+CUSCAR:D:95B:UN'", "edifact_envelope", "segment 1"},
        BadCase{"too_many_elements", kHead + "FTX+AAA" + std::string(120, '+') + "X'" + kBody + "UNT+8+1'UNZ+1+X1'",
                "edifact_syntax", "segment 5 (FTX)"},
        BadCase{"thirty_first_february", kHead.substr(0, kHead.size() - 25) + "DTM+137:202602311200:203'" + kBody +
                                             "UNT+7+1'UNZ+1+X1'",
                "cuscar_date", "(DTM)"},
        BadCase{"une_count",
                "UNB+UNOC:3+S+R+261118:0930+X1'UNG+CUSCAR+S+R+261118:0930+G1+UN+D:95B'UNH+1+CUSCAR:D:95B:UN'"
                "BGM+85+D1+9'EQD+CN+MSKU1234565'CNI+1+B1'UNT+5+1'UNE+2+G1'UNZ+1+X1'",
                "edifact_count", "(UNE)"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Cuscar, ABadMessageLeavesTheOtherMessagesOfItsInterchange) {
  // The second message's UNT count is wrong; the first converts.
  const std::string x = "UNB+UNOC:3+S+R+261118:0930+X1'"
                        "UNH+1+CUSCAR:D:95B:UN'BGM+85+D1+9'EQD+CN+MSKU1234565'CNI+1+B1'UNT+5+1'"
                        "UNH+2+CUSCAR:D:95B:UN'BGM+85+D2+9'EQD+CN+TGHU7654320'CNI+1+B2'UNT+6+2'"
                        "UNZ+2+X1'";
  Conversion c = Convert(RawFormat::kCuscar, x, {});
  ASSERT_EQ(c.records.size(), 1u);
  EXPECT_EQ(c.records[0].key, "MSKU1234565");
  ASSERT_EQ(c.rejected.size(), 1u);
  EXPECT_EQ(c.rejected[0].reason, "edifact_count");
  EXPECT_EQ(c.rejected[0].position, "segment 11 (UNT)");
}

TEST(Edifact, ReleaseCharactersAndRepetitionFollowTheSyntaxVersion) {
  // ??' is a released ? then the terminator; ???' a released ? and a released '.
  EdiParse p = ParseEdifact("UNA:+.?*'UNB+UNOC:4+S+R+20261118:0930+X1'UNH+1+CUSCAR:D:01B:UN'FTX+AAA+++A?\?'"
                            "FTX+AAA+++B?\?\?'C'FTX+AAA+++D*E'UNT+5+1'UNZ+1+X1'");
  ASSERT_TRUE(p.ok) << p.problem.detail;
  const auto& seg = p.interchange.messages[0].segments;
  EXPECT_EQ(seg[1].Get(3), "A?");
  EXPECT_EQ(seg[2].Get(3), "B?'C");
  EXPECT_EQ(seg[3].Get(3, 0, 0), "D");
  EXPECT_EQ(seg[3].Get(3, 0, 1), "E");
  // A space as UNA's release character: none, '?' is data.
  EdiParse no_release = ParseEdifact("UNA:+.  'UNB+UNOC:3+S+R+261118:0930+X1'UNH+1+CUSCAR:D:95B:UN'FTX+AAA+++A?B'"
                                     "UNT+3+1'UNZ+1+X1'");
  ASSERT_TRUE(no_release.ok) << no_release.problem.detail;
  EXPECT_EQ(no_release.interchange.messages[0].segments[1].Get(3), "A?B");
  // Version 3 has no repetition: '*' is data, even when UNA names it.
  EdiParse una_star = ParseEdifact("UNA:+.?*'UNB+UNOC:3+S+R+261118:0930+X1'UNH+1+CUSCAR:D:95B:UN'FTX+AAA+++D*E'"
                                   "UNT+3+1'UNZ+1+X1'");
  ASSERT_TRUE(una_star.ok) << una_star.problem.detail;
  EXPECT_EQ(una_star.interchange.messages[0].segments[1].Get(3), "D*E");
  // Version 3 has no repetition: '*' is data.
  EdiParse v3 = ParseEdifact("UNB+UNOC:3+S+R+261118:0930+X1'UNH+1+CUSCAR:D:95B:UN'FTX+AAA+++D*E'UNT+3+1'UNZ+1+X1'");
  ASSERT_TRUE(v3.ok);
  EXPECT_EQ(v3.interchange.messages[0].segments[1].Get(3), "D*E");
}

TEST(N42, A2012OccupancyWithAGammaAlarmBecomesOneScan) {
  N42Parse p = ParseN42(Sample("n42_2012_alarm.n42"), {});
  for (const auto& pr : p.problems) ADD_FAILURE() << pr.reason << " at " << pr.path << ": " << pr.detail;
  EXPECT_EQ(p.edition, "2012");
  ASSERT_EQ(p.scans.size(), 1u);
  const v1::ScanResult& s = p.scans[0];
  EXPECT_EQ(s.container_number(), "MSKU1234565");
  EXPECT_EQ(s.scan_id(), "7d1c9a52-3b8e-4f10-9c2a-5e4d3b2a1f00");
  EXPECT_EQ(s.site(), "GEPTI");
  EXPECT_EQ(s.device_id(), "RPM-PTI-02");
  EXPECT_EQ(s.kind(), v1::ScanResult::SCAN_KIND_RPM);
  EXPECT_EQ(s.scanned_at_ms(), 1795244700500);  // the first occupied slice, 07:05:00.5Z
  EXPECT_DOUBLE_EQ(s.rpm().gamma_cps(), 800);   // the peak slice, both gamma panels, both windows
  EXPECT_DOUBLE_EQ(s.rpm().gamma_background_cps(), 95);
  EXPECT_DOUBLE_EQ(s.rpm().neutron_cps(), 4);
  EXPECT_DOUBLE_EQ(s.rpm().neutron_background_cps(), 1.5);
  EXPECT_TRUE(s.rpm().gamma_alarm());
  EXPECT_FALSE(s.rpm().neutron_alarm());
  EXPECT_DOUBLE_EQ(s.rpm().occupancy_seconds(), 1.5);
}

TEST(N42, A2012DocumentWithoutSiteTakesTheDefaultAndItsOffsetTime) {
  N42Parse none = ParseN42(Sample("n42_2012_clear.n42"), {});
  ASSERT_EQ(none.problems.size(), 1u);
  EXPECT_EQ(none.problems[0].reason, "n42_site");
  N42Parse p = ParseN42(Sample("n42_2012_clear.n42"), {.default_site = "KZAAU"});
  ASSERT_EQ(p.scans.size(), 1u) << (p.problems.empty() ? "" : p.problems[0].detail);
  const v1::ScanResult& s = p.scans[0];
  EXPECT_EQ(s.container_number(), "TGHU7654320");
  EXPECT_EQ(s.site(), "KZAAU");
  EXPECT_EQ(s.scanned_at_ms(), 1795244400250);  // 11:00:00.25 at +04:00
  EXPECT_DOUBLE_EQ(s.rpm().gamma_cps(), 105);
  EXPECT_DOUBLE_EQ(s.rpm().gamma_background_cps(), 100);
  EXPECT_FALSE(s.rpm().gamma_alarm());
  EXPECT_DOUBLE_EQ(s.rpm().occupancy_seconds(), 8);
}

TEST(N42, The2006EditionsPortalSlicesAndThreatDescription) {
  N42Parse p = ParseN42(Sample("n42_2006_alarm.n42"), {.default_site = "GEPTI"});
  for (const auto& pr : p.problems) ADD_FAILURE() << pr.reason << " at " << pr.path << ": " << pr.detail;
  EXPECT_EQ(p.edition, "2006");
  ASSERT_EQ(p.scans.size(), 1u);
  const v1::ScanResult& s = p.scans[0];
  EXPECT_EQ(s.container_number(), "CSQU3054383");
  EXPECT_EQ(s.device_id(), "RPM-PTI-05");
  EXPECT_EQ(s.scan_id(), "3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c");
  EXPECT_DOUBLE_EQ(s.rpm().gamma_cps(), 520);
  EXPECT_DOUBLE_EQ(s.rpm().gamma_background_cps(), 100);
  EXPECT_DOUBLE_EQ(s.rpm().neutron_cps(), 3);
  EXPECT_TRUE(s.rpm().gamma_alarm());
  EXPECT_DOUBLE_EQ(s.rpm().occupancy_seconds(), 2);
  N42Parse clear = ParseN42(Sample("n42_2006_clear.n42"), {.default_site = "GEPTI"});
  ASSERT_EQ(clear.scans.size(), 1u) << (clear.problems.empty() ? "" : clear.problems[0].detail);
  EXPECT_EQ(clear.scans[0].container_number(), "OOLU1002005");
  EXPECT_FALSE(clear.scans[0].rpm().gamma_alarm());
  EXPECT_DOUBLE_EQ(clear.scans[0].rpm().gamma_cps(), 105);
}

class N42BadInput : public ::testing::TestWithParam<BadCase> {};

TEST_P(N42BadInput, IsRejectedWithItsReason) {
  const BadCase& c = GetParam();
  const Rejected r = OnlyRejection(RawFormat::kN42, c.bytes, {.default_site = "GEPTI"});
  EXPECT_EQ(r.reason, c.reason) << r.detail;
  EXPECT_NE(r.position.find(c.position), std::string::npos) << r.position;
}

const std::string kN42Head =
    "<RadInstrumentData xmlns=\"http://physics.nist.gov/N42/2011/N42\"><RadInstrumentInformation id=\"i\"/>"
    "<RadDetectorInformation id=\"G\"><RadDetectorCategoryCode>Gamma</RadDetectorCategoryCode></RadDetectorInformation>"
    "<RadItemInformation id=\"t\"><RadItemDescription>";
std::string N42With(const std::string& item, const std::string& start, const std::string& counts) {
  return kN42Head + item + "</RadItemDescription></RadItemInformation><RadMeasurement id=\"m\">"
                           "<MeasurementClassCode>Foreground</MeasurementClassCode><StartDateTime>" + start +
         "</StartDateTime><RealTimeDuration>PT1S</RealTimeDuration><GrossCounts id=\"g\" "
         "radDetectorInformationReference=\"G\"><LiveTimeDuration>PT1S</LiveTimeDuration><CountData>" + counts +
         "</CountData></GrossCounts></RadMeasurement></RadInstrumentData>";
}

INSTANTIATE_TEST_SUITE_P(
    Cases, N42BadInput,
    ::testing::Values(
        BadCase{"external_entity",
                "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><r>&x;</r>",
                "n42_doctype", ""},
        BadCase{"billion_laughs",
                "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]><l>&b;</l>",
                "n42_doctype", ""},
        BadCase{"not_xml", "<RadInstrumentData><unclosed>", "n42_xml", "line"},
        BadCase{"non_utf8", N42With("MSKU1234565 \xff\xfe", "2026-11-21T07:05:00Z", "5"), "n42_xml", "line"},
        BadCase{"no_zone", N42With("MSKU1234565", "2026-11-21T07:05:00", "5"), "n42_time", "StartDateTime"},
        BadCase{"check_digit", N42With("MSKU1234566", "2026-11-21T07:05:00Z", "5"), "n42_container", "RadMeasurement"},
        BadCase{"negative_counts", N42With("MSKU1234565", "2026-11-21T07:05:00Z", "-5"), "n42_counts", "GrossCounts"},
        BadCase{"other_root", "<SpectrumFile/>", "n42_root", "SpectrumFile"},
        // UTF-16 hides "<!DOCTYPE" from a byte search; the bytes are read as UTF-8 and refused.
        BadCase{"utf16_doctype",
                std::string("<\0?\0x\0m\0l\0 \0v\0e\0r\0s\0i\0o\0n\0=\0\"\0\x31\0.\0\x30\0\"\0?\0>\0<\0!\0D\0O\0C\0T\0Y\0P\0E\0"
                            " \0r\0>\0<\0r\0/\0>\0", 64),
                "n42_xml", ""},
        BadCase{"month_zero", N42With("MSKU1234565", "2026-00-21T07:05:00Z", "5"), "n42_time", "StartDateTime"}),
    [](const auto& info) { return std::string(info.param.name); });

// Every manifest and portal scan of a simulation, written as CUSCAR and N42
// and converted back, is the record the native traffic carries.
TEST(UpstreamFormats, ConvertBackToTheNativeRecords) {
  auto profile = operators::ParseProfile(operators::DefaultProfileYaml(), "default");
  ASSERT_TRUE(profile.ok());
  sim::TrafficOptions o;
  o.containers = 300;
  o.seed = 17;
  const sim::Traffic native = sim::GenerateTraffic(o, *profile);
  const sim::Traffic upstream = sim::InUpstreamFormats(native);
  ASSERT_EQ(native.records.size(), upstream.records.size());
  int manifests = 0, scans = 0;
  for (size_t i = 0; i < native.records.size(); ++i) {
    const auto& n = native.records[i];
    const auto& u = upstream.records[i];
    EXPECT_EQ(n.key, u.key);
    EXPECT_EQ(n.timestamp_ms, u.timestamp_ms);
    if (u.role != pipeline::TopicRole::kRawCuscar && u.role != pipeline::TopicRole::kRawN42) continue;
    Conversion c = Convert(u.role == pipeline::TopicRole::kRawCuscar ? RawFormat::kCuscar : RawFormat::kN42, u.value, {});
    ASSERT_TRUE(c.rejected.empty()) << c.rejected[0].reason << " " << c.rejected[0].position << " "
                                    << c.rejected[0].detail << "\n" << u.value;
    ASSERT_EQ(c.records.size(), 1u);
    EXPECT_EQ(c.records[0].timestamp_ms, n.timestamp_ms);
    if (u.role == pipeline::TopicRole::kRawCuscar) {
      ++manifests;
      v1::Manifest want, got;
      ASSERT_TRUE(n.json ? google::protobuf::util::JsonStringToMessage(n.value, &want).ok() : want.ParseFromString(n.value));
      ASSERT_TRUE(got.ParseFromString(c.records[0].value));
      EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(want, got))
          << want.ShortDebugString() << "\n" << got.ShortDebugString();
    } else {
      ++scans;
      EXPECT_EQ(c.records[0].value, n.value) << "scan of " << n.key;
    }
  }
  EXPECT_GT(manifests, 300);
  EXPECT_EQ(scans, 300);
}

}  // namespace
}  // namespace boxwatch::ingest
