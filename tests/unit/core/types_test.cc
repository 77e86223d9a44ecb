#include "core/types.h"

#include <gtest/gtest.h>

#include <cmath>

namespace boxwatch {
namespace {

struct ContainerCase {
  const char* name;
  const char* input;
  bool valid;
  const char* canonical;  // when valid
  const char* error_part;  // when invalid: a phrase the message must contain
};

class ContainerNumberParse : public ::testing::TestWithParam<ContainerCase> {};

TEST_P(ContainerNumberParse, AcceptsValidAndExplainsInvalid) {
  const ContainerCase& c = GetParam();
  auto r = ContainerNumber::Parse(c.input);
  ASSERT_EQ(r.ok(), c.valid) << (r.ok() ? "accepted" : r.error().message);
  if (c.valid) {
    EXPECT_EQ(r->str(), c.canonical);
  } else {
    EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
    EXPECT_NE(r.error().message.find(c.error_part), std::string::npos) << r.error().message;
  }
}

// Real container numbers as printed on boxes and documents.
INSTANTIATE_TEST_SUITE_P(
    Iso6346, ContainerNumberParse,
    ::testing::Values(
        ContainerCase{"CsquValid", "CSQU3054383", true, "CSQU3054383", ""},
        ContainerCase{"CsquWrongCheckDigit", "CSQU3054384", false, "", "check digit is 4 but ISO 6346 gives 3"},
        ContainerCase{"MaerskValid", "MSKU9070323", true, "MSKU9070323", ""},
        ContainerCase{"TghuValid", "TGHU4765314", true, "TGHU4765314", ""},
        ContainerCase{"RemainderTenMapsToZero", "GVTU3000060", true, "GVTU3000060", ""},
        ContainerCase{"PrintedWithSpacesAndHyphen", "csqu 305438-3", true, "CSQU3054383", ""},
        ContainerCase{"TooShort", "CSQU305438", false, "", "has 10 characters"},
        ContainerCase{"TooLong", "CSQU30543830", false, "", "has 12 characters"},
        ContainerCase{"DigitInOwnerCode", "C5QU3054383", false, "", "owner code must be three letters"},
        ContainerCase{"BadCategory", "CSQX3054383", false, "", "equipment category 'X'"},
        ContainerCase{"LetterInSerial", "CSQU30A4383", false, "", "seven digits"},
        ContainerCase{"Empty", "", false, "", "has 0 characters"}),
    [](const auto& info) { return info.param.name; });

TEST(ContainerNumber, CheckDigitMatchesKnownNumbers) {
  EXPECT_EQ(ContainerNumber::CheckDigit("CSQU305438"), 3);
  EXPECT_EQ(ContainerNumber::CheckDigit("MSKU907032"), 3);
}

TEST(ContainerNumber, ExposesOwnerCodeAndCategory) {
  auto r = ContainerNumber::Parse("MSKU9070323");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->owner_code(), "MSK");
  EXPECT_EQ(r->category(), 'U');
}

struct CodeCase {
  const char* name;
  const char* input;
  bool valid;
  const char* canonical;
};

class UnLocodeParse : public ::testing::TestWithParam<CodeCase> {};
TEST_P(UnLocodeParse, Validates) {
  auto r = UnLocode::Parse(GetParam().input);
  ASSERT_EQ(r.ok(), GetParam().valid) << (r.ok() ? "" : r.error().message);
  if (r.ok()) {
    EXPECT_EQ(r->str(), GetParam().canonical);
  }
}
INSTANTIATE_TEST_SUITE_P(
    UnLocode, UnLocodeParse,
    ::testing::Values(CodeCase{"LaemChabang", "THLCH", true, "THLCH"},
                      CodeCase{"TashkentPrinted", "UZ TAS", true, "UZTAS"},
                      CodeCase{"LowerCase", "kzakx", true, "KZAKX"},
                      CodeCase{"DigitInLocation", "AEJE2", true, "AEJE2"},
                      CodeCase{"DigitOneNotAllowed", "AEJE1", false, ""},
                      CodeCase{"DigitInCountry", "T1LCH", false, ""},
                      CodeCase{"TooShort", "THLC", false, ""}),
    [](const auto& info) { return info.param.name; });

class HsCodeParse : public ::testing::TestWithParam<CodeCase> {};
TEST_P(HsCodeParse, Validates) {
  auto r = HsCode::Parse(GetParam().input);
  ASSERT_EQ(r.ok(), GetParam().valid) << (r.ok() ? "" : r.error().message);
  if (r.ok()) {
    EXPECT_EQ(r->str(), GetParam().canonical);
  }
}
INSTANTIATE_TEST_SUITE_P(
    HsCode, HsCodeParse,
    ::testing::Values(CodeCase{"SixDigits", "851762", true, "851762"},
                      CodeCase{"DottedHeading", "2401.10", true, "240110"},
                      CodeCase{"TenDigitNational", "0901210000", true, "0901210000"},
                      CodeCase{"FourDigitsTooShort", "2401", false, ""},
                      CodeCase{"SevenDigits", "2401101", false, ""},
                      CodeCase{"ChapterZero", "001234", false, ""},
                      CodeCase{"ReservedChapter77", "770100", false, ""},
                      CodeCase{"ChapterNinetyEight", "980100", false, ""},
                      CodeCase{"Letters", "85A762", false, ""}),
    [](const auto& info) { return info.param.name; });

TEST(HsCode, SplitsChapterHeadingSubheading) {
  auto r = HsCode::Parse("2401.10.9000");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->chapter(), 24);
  EXPECT_EQ(r->heading(), "2401");
  EXPECT_EQ(r->subheading(), "240110");
}

TEST(EventTime, RejectsBefore2000AndFarFuture) {
  const ProcessingTimeMs now(1795000000000);  // 2026-11
  EXPECT_TRUE(ValidateEventTime(EventTimeMs(now.value() - 1000), now, 60000).ok());
  EXPECT_TRUE(ValidateEventTime(EventTimeMs(now.value() + 60000), now, 60000).ok());
  Status future = ValidateEventTime(EventTimeMs(now.value() + 60001), now, 60000);
  ASSERT_FALSE(future.ok());
  EXPECT_NE(future.message().find("in the future"), std::string::npos);
  Status seconds = ValidateEventTime(EventTimeMs(1795000000), now, 60000);
  ASSERT_FALSE(seconds.ok());
  EXPECT_NE(seconds.message().find("seconds sent as ms"), std::string::npos);
}

TEST(Coordinates, RejectsOutOfRangeAndNaN) {
  EXPECT_TRUE(ValidateCoordinates(13.0833, 100.8833).ok());  // Laem Chabang
  EXPECT_FALSE(ValidateCoordinates(91, 0).ok());
  EXPECT_FALSE(ValidateCoordinates(0, -180.5).ok());
  EXPECT_FALSE(ValidateCoordinates(std::nan(""), 0).ok());
}

TEST(FormatUtc, RendersIso8601) {
  EXPECT_EQ(FormatUtc(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatUtc(1795000000123), "2026-11-18T11:06:40.123Z");
}

}  // namespace
}  // namespace boxwatch
