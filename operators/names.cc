#include "operators/names.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <unordered_map>

namespace boxwatch::operators {
namespace {

// Legal forms and words that say nothing about who the party is. Sources:
// the ISO 20275 entity legal forms list's common abbreviations (LLC, LLP,
// JSC, GmbH, SA, ...), plus the filler words of company names. Looked up
// packed (PackedWord below).
constexpr std::string_view kDroppedWords[] = {
    "AB",      "AG",     "AND",     "AO",      "AS",          "BHD",  "BV",    "CJSC",  "CO",       "COMPANY",
    "CORP",    "CORPORATION", "DMCC", "FZ",    "FZC",         "FZCO", "FZE",   "GMBH",  "INC",      "INCORPORATED",
    "JOINT",   "JSC",    "KG",      "LIABILITY", "LIMITED",   "LLC",  "LLP",   "LP",    "LTD",      "NV",
    "OAO",     "OF",     "OJSC",    "OOO",     "OU",          "OY",   "PARTNERSHIP", "PJSC", "PLC",  "PRIVATE",
    "PT",      "PTE",    "PUBLIC",  "PVT",     "SA",          "SARL", "SAS",   "SDN",   "SOLE",     "SPA",
    "SRL",     "STOCK",  "TBK",     "THE",     "TOO",         "ZAO"};

// Abbreviations declarants use, to the word they stand for.
constexpr std::pair<std::string_view, std::string_view> kExpansions[] = {
    {"BROS", "BROTHERS"},     {"CHEM", "CHEMICALS"},      {"CHEMICAL", "CHEMICALS"},   {"DIST", "DISTRIBUTION"},
    {"ENT", "ENTERPRISES"},   {"ENTERPRISE", "ENTERPRISES"}, {"EXP", "EXPORT"},        {"EXPORTS", "EXPORT"},
    {"GEN", "GENERAL"},       {"GENL", "GENERAL"},        {"HLDG", "HOLDINGS"},        {"HLDGS", "HOLDINGS"},
    {"HOLDING", "HOLDINGS"},  {"IMP", "IMPORT"},          {"IMPORTS", "IMPORT"},       {"IND", "INDUSTRIES"},
    {"INDS", "INDUSTRIES"},   {"INDUSTRY", "INDUSTRIES"}, {"INT", "INTERNATIONAL"},    {"INTL", "INTERNATIONAL"},
    {"LOG", "LOGISTICS"},     {"LOGS", "LOGISTICS"},      {"MFG", "MANUFACTURING"},    {"MGMT", "MANAGEMENT"},
    {"SERV", "SERVICES"},     {"SERVICE", "SERVICES"},    {"SHPG", "SHIPPING"},        {"SVC", "SERVICES"},
    {"SVCS", "SERVICES"},     {"TRAD", "TRADING"},        {"TRANS", "TRANSPORT"},      {"TRDG", "TRADING"}};

// A word of at most 16 characters as two integers (its bytes, zero-padded):
// the dropped words and the abbreviations are looked up by these, one
// integer comparison per step instead of a string comparison.
struct PackedWord {
  uint64_t lo = 0, hi = 0;
  friend bool operator<(const PackedWord& a, const PackedWord& b) { return a.lo != b.lo ? a.lo < b.lo : a.hi < b.hi; }
  friend bool operator==(const PackedWord&, const PackedWord&) = default;
};
constexpr size_t kMaxPackedWord = 16;

PackedWord Pack(std::string_view w) {  // w.size() <= kMaxPackedWord
  char bytes[kMaxPackedWord] = {};
  std::memcpy(bytes, w.data(), w.size());
  PackedWord p;
  std::memcpy(&p.lo, bytes, 8);
  std::memcpy(&p.hi, bytes + 8, 8);
  return p;
}

// Every word of both lists fits in a PackedWord.
constexpr bool WordsFit() {
  for (std::string_view w : kDroppedWords) {
    if (w.size() > kMaxPackedWord) return false;
  }
  for (const auto& [w, x] : kExpansions) {
    if (w.size() > kMaxPackedWord) return false;
  }
  return true;
}
static_assert(WordsFit(), "a dropped word or abbreviation is longer than kMaxPackedWord");

// The dropped words and the abbreviations (with the index of their
// expansion), packed and sorted, once.
struct WordTables {
  std::vector<PackedWord> dropped;
  std::vector<std::pair<PackedWord, size_t>> abbreviations;
};
const WordTables& Tables() {
  static const WordTables tables = [] {
    WordTables t;
    for (std::string_view w : kDroppedWords) t.dropped.push_back(Pack(w));
    std::sort(t.dropped.begin(), t.dropped.end());
    for (size_t i = 0; i < std::size(kExpansions); ++i) t.abbreviations.emplace_back(Pack(kExpansions[i].first), i);
    std::sort(t.abbreviations.begin(), t.abbreviations.end());
    return t;
  }();
  return tables;
}

bool IsDropped(std::string_view w) {
  if (w.size() > kMaxPackedWord) return false;
  const auto& d = Tables().dropped;
  return std::binary_search(d.begin(), d.end(), Pack(w));
}

std::string_view Expanded(std::string_view w) {
  if (w.size() > kMaxPackedWord) return w;
  const auto& a = Tables().abbreviations;
  const PackedWord p = Pack(w);
  const auto it = std::lower_bound(a.begin(), a.end(), p, [](const auto& e, const PackedWord& x) { return e.first < x; });
  return it != a.end() && it->first == p ? kExpansions[it->second].second : w;
}

// Appends one word's transliteration variants, folded, to `key`: doubled
// letters once ("Quorvexx" before X becomes KS), then KH->H, PH->F, CK->K,
// CH kept, W->V, C/Q->K, Y/J->I, X->KS, and doubled letters once again.
void AppendFoldedWord(std::string_view w, std::string* key) {
  char once[64];
  std::string long_word;  // rare: a word longer than the buffer
  char* d = once;
  if (w.size() > sizeof(once)) {
    long_word.resize(w.size());
    d = long_word.data();
  }
  size_t n = 0;
  for (char c : w) {
    if (n == 0 || d[n - 1] != c) d[n++] = c;
  }
  const size_t word_start = key->size();
  auto push = [&](char c) {
    if (key->size() == word_start || key->back() != c) key->push_back(c);
  };
  for (size_t i = 0; i < n; ++i) {
    const char c = d[i];
    const char next = i + 1 < n ? d[i + 1] : '\0';
    if (c == 'K' && next == 'H') {  // Х: KH / H
      push('H');
      ++i;
    } else if (c == 'P' && next == 'H') {
      push('F');
      ++i;
    } else if (c == 'C' && next == 'K') {
      push('K');
      ++i;
    } else if (c == 'C' && next == 'H') {  // Ч stays one sound
      push('C');
      push('H');
      ++i;
    } else if (c == 'W') {
      push('V');
    } else if (c == 'C' || c == 'Q') {
      push('K');
    } else if (c == 'Y' || c == 'J') {  // Й, Ы, Я (YA / IA / JA)
      push('I');
    } else if (c == 'X') {
      push('K');
      push('S');
    } else {
      push(c);
    }
  }
}

// The most edits a pair whose longer key has `longest` characters may need
// and still reach `at_least` (any number when at_least <= 0): what
// NameSimilarity bounds its table by and MatchName filters with.
size_t MaxEdits(double at_least, size_t longest) {
  return at_least > 0 ? static_cast<size_t>((1.0 - at_least) * static_cast<double>(longest) + 1e-9) : longest;
}

bool IsAsciiAlnum(unsigned char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

}  // namespace

std::string PartyKey(std::string_view name) {
  std::string key;
  key.reserve(name.size() + 16);
  // The word being read, upper case, in a buffer (a longer word, rare,
  // continues in `long_word`).
  char buffer[64];
  size_t n = 0;
  std::string long_word;
  auto end_word = [&] {
    const std::string_view word = long_word.empty() ? std::string_view(buffer, n) : std::string_view(long_word);
    if (!word.empty() && !IsDropped(word)) {
      if (!key.empty()) key.push_back(' ');
      AppendFoldedWord(Expanded(word), &key);
    }
    n = 0;
    long_word.clear();
  };
  for (unsigned char c : name) {
    if (IsAsciiAlnum(c)) {
      const char upper = c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : static_cast<char>(c);
      if (!long_word.empty()) {
        long_word.push_back(upper);
      } else if (n == sizeof(buffer)) {
        long_word.assign(buffer, n);
        long_word.push_back(upper);
      } else {
        buffer[n++] = upper;
      }
    } else if (c == '.' || c == '\'') {
      // "L.L.C." is one word; "O'Brien" too.
    } else if (n > 0 || !long_word.empty()) {
      end_word();
    }
  }
  end_word();
  return key;
}

double NameSimilarity(std::string_view a, std::string_view b, double at_least) {
  if (a.empty() || b.empty()) return 0;
  if (a == b) return 1;
  // Optimal string alignment distance (Damerau-Levenshtein without
  // repeated edits of one substring), three rows.
  const size_t n = a.size(), m = b.size();
  const size_t max_distance = MaxEdits(at_least, std::max(n, m));
  // Lengths alone: at least |n - m| edits.
  if ((n > m ? n - m : m - n) > max_distance) return 0;
  // Only cells within max_distance of the diagonal can hold max_distance or
  // less (every step of an alignment adds 0 or more, and cell (i, j) is at
  // least |i - j|): a band of 2 * max_distance + 1 cells per row instead of
  // the whole row; cells outside it count as "too far" (kFar).
  const size_t kFar = max_distance + 1;
  // Rows reused across calls: a watchlist scan compares one name with every entry.
  thread_local std::vector<size_t> prev2, prev, cur;
  prev2.assign(m + 1, kFar);
  prev.assign(m + 1, kFar);
  cur.assign(m + 1, kFar);
  for (size_t j = 0; j <= std::min(m, max_distance); ++j) prev[j] = j;
  // Every entry of a row is at least the smallest entry of the two rows
  // before it (a transposition reaches back two rows), so once two rows in a
  // row exceed the largest distance `at_least` allows, the result will too.
  size_t prev_min = 0;
  for (size_t i = 1; i <= n; ++i) {
    const size_t lo = i > max_distance ? i - max_distance : 1;
    const size_t hi = std::min(m, i + max_distance);
    cur[0] = i <= max_distance ? i : kFar;
    if (lo > 1) cur[lo - 1] = kFar;  // left of the band (held a value two rows back)
    size_t row_min = cur[0];
    for (size_t j = lo; j <= hi; ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      size_t v = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) v = std::min(v, prev2[j - 2] + 1);
      v = std::min(v, kFar);
      cur[j] = v;
      row_min = std::min(row_min, v);
    }
    if (hi < m) cur[hi + 1] = kFar;  // right of the band
    if (i > 1 && row_min > max_distance && prev_min > max_distance) return 0;
    prev_min = row_min;
    std::swap(prev2, prev);
    std::swap(prev, cur);
  }
  if (prev[m] > max_distance) return 0;
  return 1.0 - static_cast<double>(prev[m]) / static_cast<double>(std::max(n, m));
}

NameList::NameList(std::initializer_list<std::string> entries) {
  for (const std::string& e : entries) insert(e);
}

NameList::Histogram NameList::HistogramOf(std::string_view key) {
  Histogram h{};
  for (const char c : key) {
    const size_t slot = c >= 'A' && c <= 'Z' ? static_cast<size_t>(c - 'A')
                        : c >= '0' && c <= '9' ? 26 + static_cast<size_t>(c - '0')
                        : c == ' '             ? 36
                                               : 37;
    if (h[slot] < 255) ++h[slot];
  }
  return h;
}

bool NameList::insert(std::string entry) {
  if (entries_.count(entry) > 0) return false;
  std::string key = PartyKey(entry);
  if (by_key_length_.size() <= key.size()) by_key_length_.resize(key.size() + 1);
  const Histogram histogram = HistogramOf(key);
  by_key_length_[key.size()].push_back({std::move(key), entry, histogram});
  entries_.insert(std::move(entry));
  return true;
}

size_t NameList::erase(const std::string& entry) {
  if (entries_.erase(entry) == 0) return 0;
  auto& bucket = by_key_length_[PartyKey(entry).size()];
  bucket.erase(std::find_if(bucket.begin(), bucket.end(), [&](const Keyed& k) { return k.entry == entry; }));
  return 1;
}

std::optional<NameMatch> MatchName(std::string_view name, const std::vector<const NameList*>& lists,
                                   double min_similarity) {
  const std::string key = PartyKey(name);
  if (key.empty()) return std::nullopt;
  std::optional<NameMatch> best;
  const double bar = std::min(min_similarity, 1.0);
  const NameList::Histogram histogram = NameList::HistogramOf(key);
  for (const NameList* list : lists) {
    // Key lengths near the name's (the exact test follows): from
    // len * bar up to len / bar, with a margin for rounding.
    const size_t lengths = list->by_key_length_.size();
    const double len = static_cast<double>(key.size());
    const size_t from = bar > 0 ? static_cast<size_t>(std::max(0.0, std::floor(len * bar) - 1)) : 0;
    const size_t to = bar > 0 ? static_cast<size_t>(std::min(len / bar + 2, static_cast<double>(lengths))) : lengths;
    for (size_t length = from; length < std::min(to, lengths); ++length) {
      // Lengths alone bound the similarity: skip what cannot reach the bar.
      const size_t longer = std::max(key.size(), length), shorter = std::min(key.size(), length);
      const double len_bound = 1.0 - static_cast<double>(longer - shorter) / static_cast<double>(longer);
      if (len_bound < bar) continue;
      // Counts may differ by at most twice the edits the bar allows.
      const size_t max_distance = MaxEdits(bar, longer);
      for (const auto& [entry_key, entry, entry_histogram] : list->by_key_length_[length]) {
        size_t differ = 0;
        for (size_t i = 0; i < histogram.size(); ++i) {
          differ += static_cast<size_t>(std::abs(int{histogram[i]} - int{entry_histogram[i]}));
        }
        if (differ > 2 * max_distance) continue;
        const double s = NameSimilarity(key, entry_key, bar);
        if (s < min_similarity && s < 1) continue;
        if (!best || s > best->similarity || (s == best->similarity && entry < best->entry)) best = NameMatch{entry, s};
      }
    }
  }
  return best;
}

}  // namespace boxwatch::operators
