// Screening keys and name similarity (operators/names.h), table-driven, and
// what the watchlist indicator gives for an equal key and for a near one.
#include <gtest/gtest.h>

#include "operators/names.h"
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
  const std::unordered_set<std::string> list = {"VALMORAK GENERAL TRADING LLC", "OSTRIVAN IMPEX"};
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

}  // namespace
}  // namespace boxwatch::operators::testing
