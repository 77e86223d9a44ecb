#pragma once
// Party names as screening compares them. Declarants write one company many
// ways: legal forms ("LLC", "L.L.C.", "Limited Liability Company"),
// abbreviations ("Gen. Trdg"), and several Latin transliterations of one
// Cyrillic or Arabic name ("Khorvana" / "Horvana", "Valmorak" / "Walmorak").
// A watchlist that compares names verbatim misses all of them.
//
// PartyKey folds those away; NameSimilarity measures what is left.

#include <array>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace boxwatch::operators {

// The name's screening key: upper case, punctuation dropped, legal-form and
// filler words removed, common abbreviations expanded, transliteration
// variants folded (KH->H, W->V, PH->F, C/CK/Q->K, Y/J->I, doubled letters
// once). Two spellings of one name give one key.
std::string PartyKey(std::string_view name);

// 1 - (edit distance with transpositions) / (length of the longer key): 1 for
// equal keys, lower for more distant ones; 0 when either is empty.
// With `at_least` > 0, a pair below it returns 0, computed only in the band
// of the allowed distance and given up as soon as that is certain (a
// watchlist scan skips most entries after a few rows).
double NameSimilarity(std::string_view key_a, std::string_view key_b, double at_least = 0);

struct NameMatch {
  std::string entry;        // the list's entry as written
  double similarity = 0;    // of the keys; 1 when they are equal
};

// A list of party names for screening (a watchlist): the entries as
// written, each with its PartyKey computed once when it is added, indexed
// by the key's length (a name can only come near keys of about its own
// length). Iterates the entries as an unordered_set would.
class NameList {
 public:
  NameList() = default;
  NameList(std::initializer_list<std::string> entries);
  bool insert(std::string entry);  // false: already listed
  size_t erase(const std::string& entry);
  size_t count(const std::string& entry) const { return entries_.count(entry); }
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  auto begin() const { return entries_.begin(); }
  auto end() const { return entries_.end(); }

 private:
  friend std::optional<NameMatch> MatchName(std::string_view, const std::vector<const NameList*>&, double);
  // How often each letter, digit and space occurs in a key (capped at
  // 255): an edit changes these counts by at most 2 in all, so a key whose
  // counts differ from the name's by more than twice the allowed distance
  // is skipped without computing the distance.
  using Histogram = std::array<uint8_t, 38>;
  static Histogram HistogramOf(std::string_view key);
  struct Keyed {
    std::string key;
    std::string entry;
    Histogram histogram;
  };
  std::unordered_set<std::string> entries_;
  std::vector<std::vector<Keyed>> by_key_length_;  // [key length] -> entries
};

// The closest entry of `lists` to `name` whose key similarity is at least
// `min_similarity` (ties: the entry first in sort order), or none.
// `min_similarity` >= 1 admits equal keys only.
std::optional<NameMatch> MatchName(std::string_view name, const std::vector<const NameList*>& lists,
                                   double min_similarity);

}  // namespace boxwatch::operators
