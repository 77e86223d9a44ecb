#include "operators/names.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <unordered_map>

namespace boxwatch::operators {
namespace {

// Legal forms and words that say nothing about who the party is. Sources:
// the ISO 20275 entity legal forms list's common abbreviations (LLC, LLP,
// JSC, GmbH, SA, ...), plus the filler words of company names.
const std::set<std::string>& DroppedWords() {
  static const std::set<std::string> words = {
      "AND", "THE", "OF", "CO", "COMPANY", "CORP", "CORPORATION", "INC", "INCORPORATED", "LTD", "LIMITED",
      "LLC", "LLP", "LP", "PLC", "JSC", "OJSC", "CJSC", "PJSC", "OAO", "ZAO", "OOO", "TOO", "AO", "SA", "SAS",
      "SARL", "SRL", "SPA", "AG", "GMBH", "KG", "BV", "NV", "AS", "AB", "OY", "OU", "FZE", "FZCO", "FZC", "FZ",
      "DMCC", "PTE", "PVT", "PT", "SDN", "BHD", "TBK", "LIABILITY", "PRIVATE", "PUBLIC", "JOINT", "STOCK",
      "SOLE", "PARTNERSHIP"};
  return words;
}

// Abbreviations declarants use, to the word they stand for.
const std::map<std::string, std::string>& Expansions() {
  static const std::map<std::string, std::string> words = {
      {"GEN", "GENERAL"},      {"GENL", "GENERAL"},     {"TRDG", "TRADING"},     {"TRAD", "TRADING"},
      {"INTL", "INTERNATIONAL"}, {"INT", "INTERNATIONAL"}, {"LOG", "LOGISTICS"},  {"LOGS", "LOGISTICS"},
      {"HLDGS", "HOLDINGS"},   {"HLDG", "HOLDINGS"},    {"HOLDING", "HOLDINGS"}, {"SHPG", "SHIPPING"},
      {"SVCS", "SERVICES"},    {"SERV", "SERVICES"},    {"SVC", "SERVICES"},     {"SERVICE", "SERVICES"},
      {"EXP", "EXPORT"},       {"EXPORTS", "EXPORT"},   {"IMP", "IMPORT"},       {"IMPORTS", "IMPORT"},
      {"CHEM", "CHEMICALS"},   {"CHEMICAL", "CHEMICALS"}, {"ENT", "ENTERPRISES"}, {"ENTERPRISE", "ENTERPRISES"},
      {"DIST", "DISTRIBUTION"}, {"MFG", "MANUFACTURING"}, {"IND", "INDUSTRIES"},  {"INDS", "INDUSTRIES"},
      {"INDUSTRY", "INDUSTRIES"}, {"TRANS", "TRANSPORT"}, {"MGMT", "MANAGEMENT"}, {"BROS", "BROTHERS"}};
  return words;
}

// Folds one word's transliteration variants.
std::string FoldWord(std::string w) {
  w.erase(std::unique(w.begin(), w.end()), w.end());  // "Quorvexx" before X becomes KS
  std::string out;
  out.reserve(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    const char c = w[i];
    const char next = i + 1 < w.size() ? w[i + 1] : '\0';
    if (c == 'K' && next == 'H') {  // Х: KH / H
      out.push_back('H');
      ++i;
    } else if (c == 'P' && next == 'H') {
      out.push_back('F');
      ++i;
    } else if (c == 'C' && next == 'K') {
      out.push_back('K');
      ++i;
    } else if (c == 'C' && next == 'H') {  // Ч stays one sound
      out += "CH";
      ++i;
    } else if (c == 'W') {
      out.push_back('V');
    } else if (c == 'C' || c == 'Q') {
      out.push_back('K');
    } else if (c == 'Y' || c == 'J') {  // Й, Ы, Я (YA / IA / JA)
      out.push_back('I');
    } else if (c == 'X') {
      out += "KS";
    } else {
      out.push_back(c);
    }
  }
  // Doubled letters once ("Narevskk", "Ostrivann").
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace

std::string PartyKey(std::string_view name) {
  std::vector<std::string> words(1);
  for (unsigned char c : name) {
    if (std::isalnum(c)) {
      words.back().push_back(static_cast<char>(std::toupper(c)));
    } else if (c == '.' || c == '\'') {
      // "L.L.C." is one word; "O'Brien" too.
    } else if (!words.back().empty()) {
      words.emplace_back();
    }
  }
  std::string key;
  for (auto& w : words) {
    if (w.empty() || DroppedWords().count(w)) continue;
    if (auto it = Expansions().find(w); it != Expansions().end()) w = it->second;
    key += (key.empty() ? "" : " ") + FoldWord(w);
  }
  return key;
}

double NameSimilarity(std::string_view a, std::string_view b, double at_least) {
  if (a.empty() || b.empty()) return 0;
  if (a == b) return 1;
  // Optimal string alignment distance (Damerau-Levenshtein without
  // repeated edits of one substring), three rows.
  const size_t n = a.size(), m = b.size();
  // Rows reused across calls: a watchlist scan compares one name with every entry.
  thread_local std::vector<size_t> prev2, prev, cur;
  prev2.assign(m + 1, 0);
  prev.assign(m + 1, 0);
  cur.assign(m + 1, 0);
  for (size_t j = 0; j <= m; ++j) prev[j] = j;
  // Every entry of a row is at least the smallest entry of the two rows
  // before it (a transposition reaches back two rows), so once two rows in a
  // row exceed the largest distance `at_least` allows, the result will too.
  const double longest = static_cast<double>(std::max(n, m));
  const size_t max_distance =
      at_least > 0 ? static_cast<size_t>((1.0 - at_least) * longest + 1e-9) : std::max(n, m);
  size_t prev_min = 0;
  for (size_t i = 1; i <= n; ++i) {
    cur[0] = i;
    size_t row_min = cur[0];
    for (size_t j = 1; j <= m; ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) cur[j] = std::min(cur[j], prev2[j - 2] + 1);
      row_min = std::min(row_min, cur[j]);
    }
    if (i > 1 && row_min > max_distance && prev_min > max_distance) return 0;
    prev_min = row_min;
    std::swap(prev2, prev);
    std::swap(prev, cur);
  }
  return 1.0 - static_cast<double>(prev[m]) / static_cast<double>(std::max(n, m));
}

namespace {
// The keys of list entries, computed once per thread (lists change rarely;
// bounded so a churning reference list cannot grow it without end).
const std::string& CachedKey(const std::string& entry) {
  thread_local std::unordered_map<std::string, std::string> cache;
  if (cache.size() > 100000) cache.clear();
  auto it = cache.find(entry);
  if (it == cache.end()) it = cache.emplace(entry, PartyKey(entry)).first;
  return it->second;
}
}  // namespace

std::optional<NameMatch> MatchName(std::string_view name,
                                   const std::vector<const std::unordered_set<std::string>*>& lists,
                                   double min_similarity) {
  const std::string key = PartyKey(name);
  if (key.empty()) return std::nullopt;
  std::optional<NameMatch> best;
  for (const auto* list : lists) {
    for (const auto& entry : *list) {
      const std::string& entry_key = CachedKey(entry);
      // Lengths alone bound the similarity: skip what cannot reach the bar.
      const double len_bound = 1.0 - static_cast<double>(std::max(key.size(), entry_key.size()) -
                                                         std::min(key.size(), entry_key.size())) /
                                         static_cast<double>(std::max(key.size(), entry_key.size()));
      if (len_bound < std::min(min_similarity, 1.0)) continue;
      const double s = NameSimilarity(key, entry_key, std::min(min_similarity, 1.0));
      if (s < min_similarity && s < 1) continue;
      if (!best || s > best->similarity || (s == best->similarity && entry < best->entry)) best = NameMatch{entry, s};
    }
  }
  return best;
}

}  // namespace boxwatch::operators
