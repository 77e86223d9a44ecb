// Screening keys and name similarity (operators/names.h), table-driven, and
// what the watchlist indicator gives for an equal key and for a near one.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "operators/names.h"
#include "operators/profile.h"
#include "tests/unit/operators/scenario.h"

namespace boxwatch::operators::testing {
namespace {

struct SameParty {
  const char* a;
  const char* b;
  bool same;  // equal screening keys
};

TEST(PartyKey, FoldsSpellingsOfOneNameAndKeepsOthersApart) {
  const SameParty cases[] = {
      {"Valmorak General Trading LLC", "VALMORAK GENERAL TRADING L.L.C.", true},
      {"Valmorak General Trading LLC", "Valmorak Gen. Trdg Limited Liability Company", true},
      {"Valmorak General Trading LLC", "Walmorak General Trading", true},  // W / V
      {"Khorvana Logistics and Transit", "Horvana Log. & Transit", true},  // KH / H, abbreviation
      {"Zandrek Chemicals Co Ltd", "ZANDREK CHEMICAL CO., LTD.", true},
      {"Narevsk Holdings LLP", "Narevskk Holding TOO", true},  // doubled letter, Kazakh legal form
      {"Quorvex Shipping Services", "Kuorveks Shpg Svcs", true},  // Q / K, X / KS
      {"Pravelo Agro Export", "Pravelo Agro Exports GmbH", true},
      {"Valmorak General Trading LLC", "Valmorak Building Supplies LLC", false},
      {"Zandrek Chemicals Co Ltd", "Zandrek Textiles Co Ltd", false},
      {"Ostrivan Impex", "Ostrivan Export", false},
      {"Mekong Agro Trading Co Ltd", "Mekong Agro Trading JSC", true},
      {"Quorvex Shipping Services", "Quorvexx Shpg Svcs", true},  // a doubled X
  };
  for (const auto& c : cases)
    EXPECT_EQ(PartyKey(c.a) == PartyKey(c.b), c.same) << c.a << " | " << c.b << ": " << PartyKey(c.a) << " | "
                                                      << PartyKey(c.b);
  EXPECT_EQ(PartyKey("  L.L.C. & Co., Ltd  "), "") << "only legal forms: nothing to screen";
}

TEST(NameSimilarity, IsOneForEqualKeysAndFallsWithEdits) {
  EXPECT_DOUBLE_EQ(NameSimilarity("ABC", "ABC"), 1.0);
  EXPECT_DOUBLE_EQ(NameSimilarity("", "ABC"), 0.0);
  EXPECT_NEAR(NameSimilarity("VALMORAK GENERAL TRADING", "VALMORAC GENERAL TRADING"), 1 - 1.0 / 24, 1e-9);
  EXPECT_NEAR(NameSimilarity("ABCD", "ABDC"), 0.75, 1e-9) << "a transposition is one edit";
  EXPECT_LT(NameSimilarity("VALMORAK GENERAL TRADING", "MEKONG GENERAL TRADING"), 0.8);
}

TEST(MatchName, PicksTheClosestEntryAboveTheBar) {
  const NameList list = {"VALMORAK GENERAL TRADING LLC", "OSTRIVAN IMPEX"};
  auto exact = MatchName("Walmorak Gen Trading", {&list}, 0.88);
  ASSERT_TRUE(exact);
  EXPECT_EQ(exact->entry, "VALMORAK GENERAL TRADING LLC");
  EXPECT_DOUBLE_EQ(exact->similarity, 1.0);
  auto near = MatchName("Valmorac General Tradeing", {&list}, 0.88);
  ASSERT_TRUE(near);
  EXPECT_LT(near->similarity, 1.0);
  EXPECT_GE(near->similarity, 0.88);
  EXPECT_FALSE(MatchName("Valmorac General Tradeing", {&list}, 1.0)) << "a bar of 1 admits equal keys only";
  EXPECT_FALSE(MatchName("Ostrivan Export", {&list}, 0.88));
}

TEST(NameList, KeepsItsIndexWithTheEntries) {
  NameList list = {"OSTRIVAN IMPEX"};
  EXPECT_TRUE(list.insert("VALMORAK GENERAL TRADING LLC"));
  EXPECT_FALSE(list.insert("VALMORAK GENERAL TRADING LLC")) << "listed once";
  EXPECT_EQ(list.size(), 2u);
  EXPECT_EQ(list.count("OSTRIVAN IMPEX"), 1u);
  ASSERT_TRUE(MatchName("Walmorak Gen Trading", {&list}, 0.88));
  EXPECT_EQ(list.erase("VALMORAK GENERAL TRADING LLC"), 1u);
  EXPECT_EQ(list.erase("VALMORAK GENERAL TRADING LLC"), 0u);
  EXPECT_FALSE(MatchName("Walmorak Gen Trading", {&list}, 0.88)) << "an erased entry is not screened";
  ASSERT_TRUE(MatchName("Ostrivan Impex Ltd", {&list}, 1.0));
  // Two lists: the closer entry wins, whichever list holds it.
  const NameList other = {"OSTRIVAN IMPEKS"};
  auto m = MatchName("Ostrivan Impeks", {&list, &other}, 0.8);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->entry, "OSTRIVAN IMPEKS");
  EXPECT_DOUBLE_EQ(m->similarity, 1.0);
}

TEST(WatchlistIndicator, AnEqualKeyWeighsInFullANearOneByTheFuzzyFactor) {
  Scenario exact;
  exact.Manifest([](auto& m) { m.mutable_consignee()->set_name("GOLDEN CRESCENT TRDG"); });
  exact.Finish();
  const v1::FiredIndicator* f = exact.Get("party.watchlisted");
  ASSERT_NE(f, nullptr);
  EXPECT_DOUBLE_EQ(f->contribution(), 50);  // the test profile's weight
  Scenario near;
  near.Manifest([](auto& m) { m.mutable_consignee()->set_name("Golden Crescant Tradng Co"); });
  near.Finish();
  const v1::FiredIndicator* g = near.Get("party.watchlisted");
  ASSERT_NE(g, nullptr);
  EXPECT_DOUBLE_EQ(g->contribution(), 50 * 0.6);  // the default fuzzy_factor
  EXPECT_NE(g->summary().find("Near a watchlisted name"), std::string::npos) << g->summary();
  bool listed_as = false;
  for (const auto& e : g->evidence()) listed_as = listed_as || (e.key() == "listed_as" && e.value() == "GOLDEN CRESCENT TRADING CO");
  EXPECT_TRUE(listed_as);
}

// Radiation read against the declared goods: the test profile lists 6907
// (ceramic tiles) as NORM-bearing, norm_factor 6 and norm_weight_factor 0.3
// by default, weight 50.
TEST(RadiationAgainstGoods, NormGoodsWeighLessBelowTheNormFactorAndASourceIsCritical) {
  auto gamma = [](const char* hs, double cps, std::vector<std::string> nuclides, bool alarm = false) {
    Scenario s;
    s.Manifest([&](auto& m) { m.mutable_goods(0)->set_hs_code(hs); })
        .Rpm(kT0 + 3 * kHour, cps, 100, 0, 1, [&](auto& e) {
          for (const auto& n : nuclides) e.mutable_rpm()->add_nuclides(n);
          e.mutable_rpm()->set_gamma_alarm(alarm);
        });
    s.Finish();
    return s;
  };
  auto contribution = [](const Scenario& s, const char* id) {
    const v1::FiredIndicator* f = s.Get(id);
    return f ? f->contribution() : 0.0;
  };
  EXPECT_DOUBLE_EQ(contribution(gamma("100630", 400, {}), "scan.radiation_gamma"), 50) << "rice: full weight";
  EXPECT_DOUBLE_EQ(contribution(gamma("690721", 400, {}), "scan.radiation_gamma"), 15) << "tiles at 4x: NORM";
  EXPECT_DOUBLE_EQ(contribution(gamma("690721", 150, {}, true), "scan.radiation_gamma"), 15)
      << "tiles with the portal's alarm alone";
  EXPECT_DOUBLE_EQ(contribution(gamma("690721", 700, {}), "scan.radiation_gamma"), 50) << "tiles above 6x";
  EXPECT_DOUBLE_EQ(contribution(gamma("690721", 400, {"K-40", "Th-232"}), "scan.radiation_gamma"), 15);
  const Scenario masked = gamma("690721", 400, {"K-40", "Cs-137"});
  EXPECT_DOUBLE_EQ(contribution(masked, "scan.threat_nuclide"), 100) << "a source in NORM cargo";
  EXPECT_TRUE(masked.Get("scan.threat_nuclide")->critical());
  EXPECT_EQ(masked.Get("scan.radiation_gamma"), nullptr) << "counted once, as the source";
  EXPECT_NE(masked.Get("scan.threat_nuclide")->summary().find("HS 690721"), std::string::npos)
      << masked.Get("scan.threat_nuclide")->summary();
  const Scenario norm = gamma("690721", 400, {"K-40"});
  EXPECT_NE(norm.Get("scan.radiation_gamma")->summary().find("consistent with declared NORM goods"), std::string::npos)
      << norm.Get("scan.radiation_gamma")->summary();
}

// The comparisons that do not build strings agree with the ones that do,
// on texts with every byte class they treat differently: letters of both
// cases, digits, separators, punctuation, control and non-ASCII bytes.
TEST(NameComparisons, AgreeWithTheNormalisedStrings) {
  const std::vector<std::string> texts = {
      "",          " ",           "-",           "Acme Trading, Co.", "ACME TRADING CO", "acme  trading/co",
      "acme-trading & co", "Acme\tTrading\nCo", "ab-123 456", "AB123456", "ab123457", "AB 1234 56 ",
      "\xc3\xa9lan Export", "\xc3\x89LAN EXPORT", "ELAN EXPORT", "Border-Gate 7", "BORDERGATE7", "border",
      "BORD", "x", "X", "x.", "..X..", "a b", "ab", "A  B", "a&b", "a_b", "A B"};
  for (const std::string& a : texts) {
    for (const std::string& b : texts) {
      EXPECT_EQ(NormalisesTo(a, NormaliseName(b)), NormaliseName(a) == NormaliseName(b)) << a << " | " << b;
      EXPECT_EQ(SameAlnumUpper(a, b), AlnumUpper(a) == AlnumUpper(b)) << a << " | " << b;
      const std::string prefix = AlnumUpper(b);
      EXPECT_EQ(AlnumUpperStartsWith(a, prefix), AlnumUpper(a).starts_with(prefix)) << a << " | " << b;
    }
  }
  EXPECT_EQ(NormaliseName(" Acme--Trading,  Co. "), "ACME TRADING CO");
  EXPECT_EQ(AlnumUpper("ab-123 456"), "AB123456");
  EXPECT_TRUE(SameAlnumUpper("ab-123 456", "AB123456"));
  EXPECT_FALSE(SameAlnumUpper("ab-123 456", "AB1234567"));
  EXPECT_TRUE(AlnumUpperStartsWith("border-gate 7", "BORDERG"));
  EXPECT_FALSE(AlnumUpperStartsWith("bord", "BORDER"));
}

}  // namespace
}  // namespace boxwatch::operators::testing
