#include "operators/decode.h"

#include <gtest/gtest.h>

#include <random>

namespace boxwatch::operators {
namespace {

constexpr int64_t kNow = 1795000000000;  // 2026-11-18
const ProcessingTimeMs now(kNow);
const DecodeLimits limits;

v1::Manifest ValidManifest() {
  v1::Manifest m;
  m.set_container_number("CSQU3054383");
  m.set_version(1);
  m.set_bill_of_lading("MEDUTH123456");
  m.mutable_consignee()->set_name("Vientiane Trading Co");
  m.set_port_of_loading("CNSHA");
  m.add_transhipment_ports("SGSIN");
  m.set_port_of_discharge("THLCH");
  m.set_final_destination("LAVTE");
  m.set_eta_ms(kNow + 86400000);
  m.set_declared_at_ms(kNow - 86400000);
  auto* g = m.add_goods();
  g->set_hs_code("6907.21");
  g->set_description("ceramic floor tiles");
  g->set_packages(20);
  g->set_gross_weight_kg(21000);
  return m;
}

v1::GpsEvent ValidGps() {
  v1::GpsEvent e;
  e.set_container_number("CSQU3054383");
  e.set_tracker_id("TRK-1");
  e.set_event_id("TRK-1-000001");
  e.set_fix_time_ms(kNow - 60000);
  e.mutable_position()->set_lat(13.0833);
  e.mutable_position()->set_lon(100.8833);
  e.set_speed_kmh(62.5);
  e.set_battery_pct(88);
  return e;
}

template <typename T>
const Rejection& RejectionOf(const Decoded<T>& d) {
  static const Rejection none{RejectReason::kLate, "accepted"};
  return std::holds_alternative<Rejection>(d) ? std::get<Rejection>(d) : none;
}

TEST(DecodeManifest, AcceptsProtobufAndCanonicalJson) {
  const v1::Manifest m = ValidManifest();
  for (Encoding enc : {Encoding::kProtobuf, Encoding::kJson}) {
    const std::string bytes = Encode(m, enc);
    auto d = DecodeManifest({"CSQU3054383", bytes, enc}, now, limits);
    ASSERT_TRUE(std::holds_alternative<v1::Manifest>(d)) << RejectionOf(d).detail;
    v1::Manifest want = m;
    want.mutable_goods(0)->set_hs_code("690721");  // HS codes are kept as digits
    EXPECT_EQ(std::get<v1::Manifest>(d).SerializeAsString(), want.SerializeAsString());
  }
}

TEST(DecodeManifest, JsonUsesCanonicalFieldNames) {
  const std::string json = Encode(ValidManifest(), Encoding::kJson);
  EXPECT_NE(json.find("\"containerNumber\":\"CSQU3054383\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"portOfDischarge\":\"THLCH\""), std::string::npos) << json;
}

TEST(DecodeGps, AcceptsProtobufAndJson) {
  for (Encoding enc : {Encoding::kProtobuf, Encoding::kJson}) {
    auto d = DecodeGps({"CSQU3054383", Encode(ValidGps(), enc), enc}, now, limits);
    ASSERT_TRUE(std::holds_alternative<v1::GpsEvent>(d)) << RejectionOf(d).detail;
    EXPECT_DOUBLE_EQ(std::get<v1::GpsEvent>(d).position().lat(), 13.0833);
  }
}

TEST(DecodeGps, IntoAReusedMessageLeavesNothingOfTheLastEvent) {
  // The first event sets every field a later one may leave out; a rejected
  // one comes between.
  v1::GpsEvent full = ValidGps();
  full.set_seal_number("SX 0042-17");
  full.set_seal_state(v1::GpsEvent::SEAL_STATE_TAMPERED);
  full.set_geofence_id("BORDER-TH-LA");
  full.set_geofence_transition(v1::GpsEvent::GEOFENCE_TRANSITION_EXIT);
  v1::GpsEvent bad = ValidGps();
  bad.set_speed_kmh(900);
  v1::GpsEvent plain;
  plain.set_container_number("csqu 305438-3");  // canonicalised by decoding
  plain.set_fix_time_ms(kNow - 1000);
  plain.mutable_position()->set_lat(-33.9);
  plain.mutable_position()->set_lon(18.4);
  for (Encoding enc : {Encoding::kProtobuf, Encoding::kJson}) {
    v1::GpsEvent reused;
    ASSERT_FALSE(DecodeGpsInto({"CSQU3054383", Encode(full, enc), enc}, now, limits, &reused));
    EXPECT_EQ(reused.seal_number(), "SX 0042-17");
    auto rejected = DecodeGpsInto({"CSQU3054383", Encode(bad, enc), enc}, now, limits, &reused);
    ASSERT_TRUE(rejected);
    EXPECT_EQ(rejected->reason, RejectReason::kInvalidField);
    for (const v1::GpsEvent& e : {plain, full, plain}) {
      const std::string bytes = Encode(e, enc);
      auto fresh = DecodeGps({"CSQU3054383", bytes, enc}, now, limits);
      ASSERT_TRUE(std::holds_alternative<v1::GpsEvent>(fresh)) << RejectionOf(fresh).detail;
      ASSERT_FALSE(DecodeGpsInto({"CSQU3054383", bytes, enc}, now, limits, &reused));
      EXPECT_EQ(reused.SerializeAsString(), std::get<v1::GpsEvent>(fresh).SerializeAsString());
    }
    EXPECT_EQ(reused.container_number(), "CSQU3054383");
    EXPECT_TRUE(reused.seal_number().empty());
  }
}

TEST(DecodeScanAndOutcome, AcceptJson) {
  v1::ScanResult s;
  s.set_container_number("CSQU3054383");
  s.set_scanned_at_ms(kNow - 1000);
  s.mutable_rpm()->set_gamma_cps(240);
  s.mutable_rpm()->set_gamma_background_cps(80);
  auto ds = DecodeScan({"CSQU3054383", Encode(s, Encoding::kJson), Encoding::kJson}, now, limits);
  ASSERT_TRUE(std::holds_alternative<v1::ScanResult>(ds)) << RejectionOf(ds).detail;

  v1::InspectionOutcome o;
  o.set_container_number("CSQU3054383");
  o.set_inspected_at_ms(kNow - 1000);
  o.set_result(v1::InspectionOutcome::RESULT_SEIZURE);
  auto dout = DecodeOutcome({"CSQU3054383", Encode(o, Encoding::kJson), Encoding::kJson}, now, limits);
  ASSERT_TRUE(std::holds_alternative<v1::InspectionOutcome>(dout)) << RejectionOf(dout).detail;
}

struct BadCase {
  const char* name;
  std::function<std::string()> value;  // protobuf bytes of a GPS event
  const char* key;
  RejectReason reason;
};

class DecodeGpsRejects : public ::testing::TestWithParam<BadCase> {};

TEST_P(DecodeGpsRejects, WithReason) {
  const BadCase& c = GetParam();
  const std::string bytes = c.value();
  auto d = DecodeGps({c.key, bytes, Encoding::kProtobuf}, now, limits);
  ASSERT_TRUE(std::holds_alternative<Rejection>(d));
  EXPECT_EQ(RejectReasonName(std::get<Rejection>(d).reason), std::string(RejectReasonName(c.reason)))
      << std::get<Rejection>(d).detail;
  EXPECT_FALSE(std::get<Rejection>(d).detail.empty());
}

std::string With(std::function<void(v1::GpsEvent&)> change) {
  v1::GpsEvent e = ValidGps();
  change(e);
  return e.SerializeAsString();
}

INSTANTIATE_TEST_SUITE_P(
    BadInput, DecodeGpsRejects,
    ::testing::Values(
        BadCase{"GarbageBytes", [] { return std::string("\xff\xff\xff\xff garbage", 12); }, "CSQU3054383",
                RejectReason::kUndecodable},
        BadCase{"Oversized", [] { return std::string((1 << 20) + 1, 'x'); }, "CSQU3054383",
                RejectReason::kOversized},
        BadCase{"BadCheckDigit", [] { return With([](auto& e) { e.set_container_number("CSQU3054384"); }); },
                "CSQU3054384", RejectReason::kInvalidContainerNumber},
        BadCase{"KeyMismatch", [] { return With([](auto&) {}); }, "MSKU9070323", RejectReason::kKeyMismatch},
        BadCase{"LatitudeOutOfRange", [] { return With([](auto& e) { e.mutable_position()->set_lat(95); }); },
                "CSQU3054383", RejectReason::kInvalidField},
        BadCase{"NoPosition", [] { return With([](auto& e) { e.clear_position(); }); }, "CSQU3054383",
                RejectReason::kInvalidField},
        BadCase{"FarFuture", [] { return With([](auto& e) { e.set_fix_time_ms(kNow + 3600000); }); },
                "CSQU3054383", RejectReason::kFutureTimestamp},
        BadCase{"SecondsNotMillis", [] { return With([](auto& e) { e.set_fix_time_ms(kNow / 1000); }); },
                "CSQU3054383", RejectReason::kImplausibleTimestamp}),
    [](const auto& info) { return info.param.name; });

TEST(DecodeManifest, KeepsTheDeclarationWhenAPortHsCodeOrWeightIsUnusable) {
  v1::Manifest m = ValidManifest();
  m.set_port_of_discharge("TH-LCH1");
  m.clear_transhipment_ports();
  m.add_transhipment_ports("SGSIN");
  m.add_transhipment_ports("??");
  m.mutable_goods(0)->set_hs_code("7700.11");
  m.mutable_goods(0)->set_gross_weight_kg(-5);
  m.add_unusable_fields("forged by the producer");
  auto d = DecodeManifest({"CSQU3054383", m.SerializeAsString(), Encoding::kProtobuf}, now, limits);
  ASSERT_TRUE(std::holds_alternative<v1::Manifest>(d)) << std::get<Rejection>(d).detail;
  const v1::Manifest& got = std::get<v1::Manifest>(d);
  EXPECT_EQ(got.port_of_discharge(), "");
  EXPECT_EQ(got.port_of_loading(), m.port_of_loading()) << "the rest is kept";
  ASSERT_EQ(got.transhipment_ports_size(), 1);
  EXPECT_EQ(got.transhipment_ports(0), "SGSIN");
  EXPECT_EQ(got.goods(0).hs_code(), "");
  EXPECT_EQ(got.goods(0).gross_weight_kg(), 0);
  EXPECT_EQ(got.consignee().name(), m.consignee().name());
  const std::vector<std::string> unusable(got.unusable_fields().begin(), got.unusable_fields().end());
  EXPECT_EQ(unusable, (std::vector<std::string>{"port_of_discharge", "transhipment_ports", "goods[0].hs_code",
                                                "goods[0].gross_weight_kg"}));
}

TEST(DecodeManifest, HsCodesAreKeptAsDigitsAndHeadingsAreAccepted) {
  v1::Manifest m = ValidManifest();
  m.mutable_goods(0)->set_hs_code("24.02");
  auto d = DecodeManifest({"CSQU3054383", m.SerializeAsString(), Encoding::kProtobuf}, now, limits);
  ASSERT_TRUE(std::holds_alternative<v1::Manifest>(d));
  EXPECT_EQ(std::get<v1::Manifest>(d).goods(0).hs_code(), "2402");
  EXPECT_EQ(std::get<v1::Manifest>(d).unusable_fields_size(), 0);
  m.mutable_goods(0)->set_hs_code("6907.21");
  d = DecodeManifest({"CSQU3054383", m.SerializeAsString(), Encoding::kProtobuf}, now, limits);
  ASSERT_TRUE(std::holds_alternative<v1::Manifest>(d));
  EXPECT_EQ(std::get<v1::Manifest>(d).goods(0).hs_code(), "690721");
}

TEST(DecodeManifest, RejectsInvalidJson) {
  auto d = DecodeManifest({"CSQU3054383", "{\"containerNumber\": 12,", Encoding::kJson}, now, limits);
  ASSERT_TRUE(std::holds_alternative<Rejection>(d));
  EXPECT_EQ(std::get<Rejection>(d).reason, RejectReason::kUndecodable);
}

TEST(EncodingFromHeader, KnowsProtobufJsonAndRejectsOthers) {
  EXPECT_EQ(std::get<Encoding>(EncodingFromHeader("")), Encoding::kProtobuf);
  EXPECT_EQ(std::get<Encoding>(EncodingFromHeader("application/json")), Encoding::kJson);
  auto other = EncodingFromHeader("text/csv");
  ASSERT_TRUE(std::holds_alternative<Rejection>(other));
  EXPECT_EQ(std::get<Rejection>(other).reason, RejectReason::kUnknownEncoding);
}

// Enum numbers and names the schema does not define are refused, whatever
// the encoding, and the reason names the field; unknown fields still pass.
TEST(DecodeEnums, OutOfRangeNumbersAreInvalidFields) {
  v1::GpsEvent g = ValidGps();
  g.set_seal_state(static_cast<v1::GpsEvent::SealState>(99));
  for (Encoding enc : {Encoding::kProtobuf, Encoding::kJson}) {
    auto d = DecodeGps({"CSQU3054383", Encode(g, enc), enc}, now, limits);
    ASSERT_TRUE(std::holds_alternative<Rejection>(d)) << "seal_state 99 accepted";
    EXPECT_EQ(std::get<Rejection>(d).reason, RejectReason::kInvalidField);
    EXPECT_NE(std::get<Rejection>(d).detail.find("seal_state = 99"), std::string::npos) << std::get<Rejection>(d).detail;
  }
  v1::ScanResult scan;
  scan.set_container_number("CSQU3054383");
  scan.set_scanned_at_ms(kNow - 60000);
  scan.set_kind(static_cast<v1::ScanResult::ScanKind>(77));
  scan.mutable_nii()->set_verdict(v1::NiiResult::VERDICT_CLEAR);
  auto ds = DecodeScan({"CSQU3054383", Encode(scan, Encoding::kProtobuf), Encoding::kProtobuf}, now, limits);
  ASSERT_TRUE(std::holds_alternative<Rejection>(ds));
  EXPECT_NE(std::get<Rejection>(ds).detail.find("kind = 77"), std::string::npos) << std::get<Rejection>(ds).detail;
  v1::InspectionOutcome o;
  o.set_container_number("CSQU3054383");
  o.set_inspected_at_ms(kNow - 60000);
  o.set_result(static_cast<v1::InspectionOutcome::Result>(42));
  auto dout = DecodeOutcome({"CSQU3054383", Encode(o, Encoding::kProtobuf), Encoding::kProtobuf}, now, limits);
  ASSERT_TRUE(std::holds_alternative<Rejection>(dout));
  EXPECT_EQ(std::get<Rejection>(dout).reason, RejectReason::kInvalidField);
  o.set_result(v1::InspectionOutcome::RESULT_SEIZURE);
  o.add_seizure_categories(static_cast<v1::InspectionOutcome::SeizureCategory>(1000));
  dout = DecodeOutcome({"CSQU3054383", Encode(o, Encoding::kProtobuf), Encoding::kProtobuf}, now, limits);
  ASSERT_TRUE(std::holds_alternative<Rejection>(dout));
  EXPECT_NE(std::get<Rejection>(dout).detail.find("seizure_categories"), std::string::npos);
}

TEST(DecodeEnums, UnknownJsonNamesAreInvalidFieldsButUnknownFieldsPass) {
  std::string json = Encode(ValidGps(), Encoding::kJson);
  ASSERT_EQ(json.back(), '}');
  const std::string with_name = json.substr(0, json.size() - 1) + ",\"sealState\":\"SEAL_STATE_WELDED\"}";
  auto d = DecodeGps({"CSQU3054383", with_name, Encoding::kJson}, now, limits);
  ASSERT_TRUE(std::holds_alternative<Rejection>(d)) << "an unknown enum name was silently dropped";
  EXPECT_EQ(std::get<Rejection>(d).reason, RejectReason::kInvalidField);
  EXPECT_NE(std::get<Rejection>(d).detail.find("SEAL_STATE_WELDED"), std::string::npos) << std::get<Rejection>(d).detail;

  const std::string with_field = json.substr(0, json.size() - 1) + ",\"futureField\":{\"x\":1},\"sealState\":\"SEAL_STATE_OPENED\"}";
  auto ok = DecodeGps({"CSQU3054383", with_field, Encoding::kJson}, now, limits);
  ASSERT_TRUE(std::holds_alternative<v1::GpsEvent>(ok)) << RejectionOf(ok).detail;
  EXPECT_EQ(std::get<v1::GpsEvent>(ok).seal_state(), v1::GpsEvent::SEAL_STATE_OPENED);

  v1::InspectionOutcome o;
  o.set_container_number("CSQU3054383");
  o.set_inspected_at_ms(kNow - 60000);
  o.set_result(v1::InspectionOutcome::RESULT_SEIZURE);
  std::string oj = Encode(o, Encoding::kJson);
  oj = oj.substr(0, oj.size() - 1) + ",\"seizureCategories\":[\"SEIZURE_CATEGORY_DRUGS\",\"SEIZURE_CATEGORY_GOLD\"]}";
  auto dout = DecodeOutcome({"CSQU3054383", oj, Encoding::kJson}, now, limits);
  ASSERT_TRUE(std::holds_alternative<Rejection>(dout));
  EXPECT_NE(std::get<Rejection>(dout).detail.find("seizure_categories[1]"), std::string::npos)
      << std::get<Rejection>(dout).detail;
}

// A rejection quotes outside input clipped, never whole.
TEST(DecodeLimitsTest, AHugeContainerNumberIsNotEchoedInTheReason) {
  v1::GpsEvent g = ValidGps();
  g.set_container_number(std::string(3 << 20, 'A'));
  const DecodeLimits big{.max_value_bytes = 8 << 20};
  auto d = DecodeGps({"CSQU3054383", Encode(g, Encoding::kProtobuf), Encoding::kProtobuf}, now, big);
  ASSERT_TRUE(std::holds_alternative<Rejection>(d));
  EXPECT_EQ(std::get<Rejection>(d).reason, RejectReason::kInvalidField);
  EXPECT_LT(std::get<Rejection>(d).detail.size(), 300u);
  EXPECT_EQ(std::get<Rejection>(d).detail, "container_number is 3145728 bytes; the limit is 1024");
  // Just over the container-number shape, the reason still quotes it clipped.
  g.set_container_number(std::string(200, 'A'));
  auto d2 = DecodeGps({"CSQU3054383", Encode(g, Encoding::kProtobuf), Encoding::kProtobuf}, now, big);
  ASSERT_TRUE(std::holds_alternative<Rejection>(d2));
  EXPECT_EQ(std::get<Rejection>(d2).reason, RejectReason::kInvalidContainerNumber);
  EXPECT_NE(std::get<Rejection>(d2).detail.find("(200 bytes)"), std::string::npos) << std::get<Rejection>(d2).detail;
}

// Text fields are bounded at decoding, nested ones with their path: a
// state grown from many small events stays under one changelog record.
TEST(DecodeLimitsTest, TextFieldsOverTheirLimitAreInvalidFields) {
  v1::Manifest m = ValidManifest();
  m.mutable_consignee()->set_name(std::string(1025, 'n'));
  auto d = DecodeManifest({"CSQU3054383", Encode(m, Encoding::kProtobuf), Encoding::kProtobuf}, now, limits);
  ASSERT_TRUE(std::holds_alternative<Rejection>(d));
  EXPECT_EQ(std::get<Rejection>(d).detail, "consignee.name is 1025 bytes; the limit is 1024");
  m = ValidManifest();
  m.mutable_goods(0)->set_description(std::string(4096, 'd'));  // descriptions may be 4096
  auto ok = DecodeManifest({"CSQU3054383", Encode(m, Encoding::kProtobuf), Encoding::kProtobuf}, now, limits);
  ASSERT_TRUE(std::holds_alternative<v1::Manifest>(ok)) << RejectionOf(ok).detail;
  m.mutable_goods(0)->set_description(std::string(4097, 'd'));
  auto bad = DecodeManifest({"CSQU3054383", Encode(m, Encoding::kProtobuf), Encoding::kProtobuf}, now, limits);
  ASSERT_TRUE(std::holds_alternative<Rejection>(bad));
  EXPECT_EQ(std::get<Rejection>(bad).detail, "goods[0].description is 4097 bytes; the limit is 4096");
}

// The JSON mapping accepts an enum as its declared number, also in a string.
TEST(DecodeEnums, JsonEnumNumbersInStringsPassWhenDeclared) {
  std::string json = Encode(ValidGps(), Encoding::kJson);
  const std::string declared = json.substr(0, json.size() - 1) + ",\"sealState\":\"2\"}";
  auto ok = DecodeGps({"CSQU3054383", declared, Encoding::kJson}, now, limits);
  ASSERT_TRUE(std::holds_alternative<v1::GpsEvent>(ok)) << RejectionOf(ok).detail;
  EXPECT_EQ(std::get<v1::GpsEvent>(ok).seal_state(), v1::GpsEvent::SEAL_STATE_OPENED);
  const std::string undeclared = json.substr(0, json.size() - 1) + ",\"sealState\":\"77\"}";
  auto bad = DecodeGps({"CSQU3054383", undeclared, Encoding::kJson}, now, limits);
  ASSERT_TRUE(std::holds_alternative<Rejection>(bad));
  EXPECT_EQ(std::get<Rejection>(bad).reason, RejectReason::kInvalidField);
}

// A JSON record is converted strictly first and leniently when it names a
// field this build does not know: both ways give the same verdicts on enum
// spellings and the same message.
TEST(DecodeEnums, JsonWithAndWithoutUnknownFieldsGetTheSameVerdicts) {
  const std::string json = Encode(ValidGps(), Encoding::kJson);
  const std::string base = json.substr(0, json.size() - 1);
  struct Case {
    std::string seal_state;  // as it appears in the document
    bool accepted;
  };
  const std::vector<Case> cases = {{"\"SEAL_STATE_OPENED\"", true}, {"\"seal_state_opened\"", false},
                                   {"\"SEAL_STATE_WELDED\"", false}, {"\"2\"", true},
                                   {"\"77\"", false},                 {"2", true},
                                   {"77", false}};
  for (const Case& c : cases) {
    for (const bool unknown_field : {false, true}) {
      SCOPED_TRACE(c.seal_state + (unknown_field ? " with an unknown field" : ""));
      const std::string doc =
          base + (unknown_field ? ",\"futureField\":{\"x\":[1,2]}" : "") + ",\"sealState\":" + c.seal_state + "}";
      auto d = DecodeGps({"CSQU3054383", doc, Encoding::kJson}, now, limits);
      if (c.accepted) {
        ASSERT_TRUE(std::holds_alternative<v1::GpsEvent>(d)) << RejectionOf(d).detail;
        v1::GpsEvent expected = ValidGps();
        expected.set_seal_state(v1::GpsEvent::SEAL_STATE_OPENED);
        EXPECT_EQ(std::get<v1::GpsEvent>(d).SerializeAsString(), expected.SerializeAsString());
      } else {
        ASSERT_TRUE(std::holds_alternative<Rejection>(d));
        EXPECT_EQ(std::get<Rejection>(d).reason, RejectReason::kInvalidField) << std::get<Rejection>(d).detail;
      }
    }
  }
}

// Random values for a message's text, enum and sub-message fields: text
// lengths about the limits, enum numbers declared or not, repeated fields of
// up to two items.
void Randomise(google::protobuf::Message* msg, std::mt19937& rng, int depth = 0) {
  const auto* d = msg->GetDescriptor();
  const auto* r = msg->GetReflection();
  static const size_t kLengths[] = {0, 12, 1023, 1024, 1025, 4096, 4097, 8192, 8193};
  for (int i = 0; i < d->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* f = d->field(i);
    if (rng() % 3 != 0) continue;
    const int items = f->is_repeated() ? static_cast<int>(rng() % 3) : 1;
    for (int k = 0; k < items; ++k) {
      if (f->type() == google::protobuf::FieldDescriptor::TYPE_STRING) {
        const std::string text(kLengths[rng() % std::size(kLengths)], 'a');
        f->is_repeated() ? r->AddString(msg, f, text) : r->SetString(msg, f, text);
      } else if (f->enum_type() != nullptr) {
        const int v = static_cast<int>(rng() % 12) - 2;
        f->is_repeated() ? r->AddEnumValue(msg, f, v) : r->SetEnumValue(msg, f, v);
      } else if (f->message_type() != nullptr && depth < 3) {
        Randomise(f->is_repeated() ? r->AddMessage(msg, f) : r->MutableMessage(msg, f), rng, depth + 1);
      }
    }
  }
}

// A protobuf value is checked against the schema on its wire bytes first
// (no reflection); whatever the full check would refuse must still be
// refused, with the same words. Random manifests, scans, GPS events and
// outcomes (texts about their limits, enum numbers declared or not), some
// sent as two encodings one after the other, which the parser merges (the
// last of a field written twice wins, so a bad first one may be overwritten).
template <typename T, typename Decode>
void ExpectTheWireScanRefusesWhatTheFullCheckRefuses(T valid, Decode decode, const std::string& key) {
  const uint32_t seed = 20261205;
  SCOPED_TRACE("seed " + std::to_string(seed) + ", " + T::descriptor()->name());
  std::mt19937 rng(seed);
  int refused = 0, accepted = 0;
  for (int i = 0; i < 3000; ++i) {
    T a = valid;
    Randomise(&a, rng);
    std::string bytes = Encode(a, Encoding::kProtobuf);
    if (rng() % 4 == 0) {
      T b = valid;
      Randomise(&b, rng);
      bytes += Encode(b, Encoding::kProtobuf);
    }
    T parsed;
    ASSERT_TRUE(parsed.ParseFromString(bytes)) << "case " << i;
    const std::optional<std::string> problem = SchemaProblem(parsed);
    auto d = decode(RecordView{key, bytes, Encoding::kProtobuf}, now, limits);
    const Rejection* rejected = std::get_if<Rejection>(&d);
    if (!problem) {
      // Refused for something else (a time, a number) or accepted: either
      // way not for a schema problem it does not have.
      if (rejected == nullptr) ++accepted;
      continue;
    }
    ++refused;
    ASSERT_NE(rejected, nullptr) << "case " << i << ": accepted although " << *problem;
    EXPECT_EQ(rejected->reason, RejectReason::kInvalidField) << "case " << i;
    EXPECT_EQ(rejected->detail, *problem) << "case " << i;
  }
  EXPECT_GT(refused, 300) << "the cases must reach the schema check";
}

// Bytes of a GpsEvent with every field set (texts ASCII).
std::string FullGpsBytes() {
  v1::GpsEvent e = ValidGps();
  e.set_heading_deg(271.5);
  e.set_hdop(0.9);
  e.set_seal_state(v1::GpsEvent::SEAL_STATE_CLOSED);
  e.set_seal_number("SX 0042-17");
  e.set_geofence_transition(v1::GpsEvent::GEOFENCE_TRANSITION_ENTER);
  e.set_geofence_id("BORDER-TH-LA");
  return e.SerializeAsString();
}

TEST(ParseGpsWire, TakesWhatTheGenericParseMakesOfTheUsualFix) {
  for (const std::string& bytes : {ValidGps().SerializeAsString(), FullGpsBytes(), std::string()}) {
    v1::GpsEvent fast, generic;
    ASSERT_TRUE(ParseGpsWire(bytes, &fast));
    ASSERT_TRUE(generic.ParseFromString(bytes));
    EXPECT_EQ(fast.SerializeAsString(), generic.SerializeAsString());
    EXPECT_EQ(fast.has_position(), generic.has_position());
    EXPECT_EQ(fast.has_heading_deg(), generic.has_heading_deg());
    EXPECT_EQ(fast.has_battery_pct(), generic.has_battery_pct());
  }
  // A field written twice: the last scalar wins, positions merge.
  v1::GpsEvent first = ValidGps(), second;
  second.set_speed_kmh(10);
  second.mutable_position()->set_lon(101.5);
  const std::string twice = first.SerializeAsString() + second.SerializeAsString();
  v1::GpsEvent fast, generic;
  ASSERT_TRUE(ParseGpsWire(twice, &fast));
  ASSERT_TRUE(generic.ParseFromString(twice));
  EXPECT_EQ(fast.SerializeAsString(), generic.SerializeAsString());
  EXPECT_EQ(fast.position().lat(), 13.0833);
  EXPECT_EQ(fast.position().lon(), 101.5);
}

TEST(ParseGpsWire, LeavesTheUnusualToTheGenericParseWhichDecodesAsBefore) {
  v1::GpsEvent accented = ValidGps();
  accented.set_seal_number("SÉAL-7");  // valid UTF-8, not ASCII
  v1::GpsEvent negative = ValidGps();
  negative.set_battery_pct(-1);  // a ten-byte varint
  std::string unknown = ValidGps().SerializeAsString();
  unknown += std::string("\xa0\x01\x05", 3);  // field 20, varint 5: a newer producer's field
  // Length prefixes written longer than needed: protobuf takes up to five
  // bytes (the fifth under 8), so four are the same event and six are not
  // protobuf at all.
  const std::string rest = ValidGps().SerializeAsString().substr(13);  // after container_number
  const std::string padded4 = std::string("\x0a\x8b\x80\x80\x00", 5) + "CSQU3054383" + rest;
  const std::string padded6 = std::string("\x0a\x8b\x80\x80\x80\x80\x00", 7) + "CSQU3054383" + rest;
  const std::string empty_id6 = std::string("\x1a\x80\x80\x80\x80\x80\x00", 7) + ValidGps().SerializeAsString();
  const std::string position6 = ValidGps().SerializeAsString() + std::string("\x2a\x80\x80\x80\x80\x80\x00", 7);
  v1::GpsEvent scratch, generic;
  ASSERT_EQ(ValidGps().SerializeAsString().substr(0, 13), std::string("\x0a\x0b") + "CSQU3054383");
  ASSERT_TRUE(ParseGpsWire(padded4, &scratch));
  ASSERT_TRUE(generic.ParseFromString(padded4));
  EXPECT_EQ(scratch.SerializeAsString(), generic.SerializeAsString());
  for (const std::string& bytes : {padded6, empty_id6, position6}) {
    EXPECT_FALSE(generic.ParseFromString(bytes));
    EXPECT_FALSE(ParseGpsWire(bytes, &scratch));
    EXPECT_EQ(RejectionOf(DecodeGps({"CSQU3054383", bytes, Encoding::kProtobuf}, now, limits)).reason,
              RejectReason::kUndecodable);
  }
  EXPECT_FALSE(ParseGpsWire(accented.SerializeAsString(), &scratch));
  EXPECT_FALSE(ParseGpsWire(negative.SerializeAsString(), &scratch));
  EXPECT_FALSE(ParseGpsWire(unknown, &scratch));
  auto decoded = DecodeGps({"CSQU3054383", accented.SerializeAsString(), Encoding::kProtobuf}, now, limits);
  ASSERT_TRUE(std::holds_alternative<v1::GpsEvent>(decoded)) << RejectionOf(decoded).detail;
  EXPECT_EQ(std::get<v1::GpsEvent>(decoded).seal_number(), "SÉAL-7");
  EXPECT_TRUE(std::holds_alternative<v1::GpsEvent>(
      DecodeGps({"CSQU3054383", unknown, Encoding::kProtobuf}, now, limits)));
  EXPECT_EQ(RejectionOf(DecodeGps({"CSQU3054383", negative.SerializeAsString(), Encoding::kProtobuf}, now, limits))
                .reason,
            RejectReason::kInvalidField);
}

TEST(ParseGpsWire, WhatItTakesFromDamagedBytesTheGenericParseTakesAlike) {
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const std::string base = FullGpsBytes();
  int taken = 0;
  for (int i = 0; i < 200000; ++i) {
    std::string bytes = base;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < edits; ++k) {
      const size_t at = rng() % bytes.size();
      switch (rng() % 3) {
        case 0: bytes[at] = static_cast<char>(rng()); break;
        case 1: bytes.erase(at, 1 + rng() % 4); break;
        default: bytes.insert(at, 1, static_cast<char>(rng())); break;
      }
      if (bytes.empty()) bytes = base;
    }
    v1::GpsEvent fast, generic;
    if (!ParseGpsWire(bytes, &fast)) continue;
    ++taken;
    ASSERT_TRUE(generic.ParseFromString(bytes)) << i;
    ASSERT_EQ(fast.SerializeAsString(), generic.SerializeAsString()) << i;
    ASSERT_FALSE(SchemaProblem(generic)) << i;
  }
  EXPECT_GT(taken, 1000) << "the damaged inputs should often still be plain fixes";
}

TEST(DecodeSchema, TheWireScanLetsNothingThroughThatTheFullCheckRefuses) {
  ExpectTheWireScanRefusesWhatTheFullCheckRefuses(ValidManifest(), DecodeManifest, "CSQU3054383");
  ExpectTheWireScanRefusesWhatTheFullCheckRefuses(ValidGps(), DecodeGps, "MSKU1234565");
  v1::ScanResult scan;
  scan.set_container_number("MSKU1234565");
  ExpectTheWireScanRefusesWhatTheFullCheckRefuses(scan, DecodeScan, "MSKU1234565");
  v1::InspectionOutcome outcome;
  outcome.set_container_number("MSKU1234565");
  ExpectTheWireScanRefusesWhatTheFullCheckRefuses(outcome, DecodeOutcome, "MSKU1234565");
}

}  // namespace
}  // namespace boxwatch::operators
