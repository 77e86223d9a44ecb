// The backtest report as one self-contained HTML page: inline CSS and SVG
// plots, no script and nothing fetched, so it opens offline and can be
// mailed or archived as one file.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>

#include "backtest/report.h"

namespace boxwatch::backtest {
namespace {

const char* kPriority[] = {"none", "LOW", "MEDIUM", "HIGH", "CRITICAL"};
const char* kSideColour[] = {"#1f5fa8", "#b0b7c3"};      // candidate, baseline
const char* kOutcomeColour[] = {"#c0392b", "#7f8c8d"};   // seized, cleared

std::string Esc(std::string_view s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string Num(double v, const char* f = "%.0f") {
  char b[48];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

struct Series {
  std::string name;
  std::string colour;
  std::vector<double> values;
};

// A "nice" axis maximum at or above v.
double NiceMax(double v) {
  if (v <= 0) return 1;
  const double mag = std::pow(10, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 4.0, 8.0, 10.0}) {  // quarters of these are round
    if (v <= m * mag) return m * mag;
  }
  return 10 * mag;
}

// Vertical grouped bars: one group per category, one bar per series.
std::string Bars(const std::string& title, const std::vector<std::string>& categories, const std::vector<Series>& series,
                 const std::string& y_label, const std::vector<std::pair<double, std::string>>& x_marks = {}) {
  const int w = 760, h = 300, left = 56, right = 16, top = 34, bottom = 64;
  const int pw = w - left - right, ph = h - top - bottom;
  double max = 0;
  for (const auto& s : series) {
    for (double v : s.values) max = std::max(max, v);
  }
  max = NiceMax(max);
  std::ostringstream o;
  o << "<svg class=\"plot\" viewBox=\"0 0 " << w << " " << h << "\" role=\"img\" aria-label=\"" << Esc(title)
    << "\"><title>" << Esc(title) << "</title>";
  o << "<text x=\"" << left << "\" y=\"20\" class=\"t\">" << Esc(title) << "</text>";
  for (int i = 0; i <= 4; ++i) {
    const double y = top + ph - ph * i / 4.0;
    o << "<line x1=\"" << left << "\" x2=\"" << left + pw << "\" y1=\"" << y << "\" y2=\"" << y
      << "\" class=\"grid\"/><text x=\"" << left - 6 << "\" y=\"" << y + 4 << "\" class=\"ya\">"
      << Num(max * i / 4, max < 4 ? "%.2f" : "%g") << "</text>";
  }
  o << "<text transform=\"translate(14," << top + ph / 2 << ") rotate(-90)\" class=\"yl\">" << Esc(y_label)
    << "</text>";
  const size_t n = std::max<size_t>(1, categories.size());
  const double group = static_cast<double>(pw) / n;
  const double bar = std::max(1.0, (group * 0.8) / std::max<size_t>(1, series.size()));
  size_t longest = 1;
  for (const auto& c : categories) longest = std::max(longest, c.size());
  // Labels about 6.5 px a character at 11 px; every k-th so that they do not overlap.
  const size_t label_every = std::max<size_t>(1, static_cast<size_t>(std::ceil((6.5 * longest + 8) / group)));
  for (size_t c = 0; c < categories.size(); ++c) {
    for (size_t s = 0; s < series.size(); ++s) {
      const double v = c < series[s].values.size() ? series[s].values[c] : 0;
      const double bh = ph * v / max;
      o << "<rect x=\"" << Num(left + c * group + group * 0.1 + s * bar, "%.1f") << "\" y=\""
        << Num(top + ph - bh, "%.1f") << "\" width=\"" << Num(bar, "%.1f") << "\" height=\"" << Num(bh, "%.1f")
        << "\" fill=\"" << series[s].colour << "\"><title>" << Esc(categories[c]) << ", " << Esc(series[s].name)
        << ": " << Num(v, v == std::floor(v) ? "%.0f" : "%.3f") << "</title></rect>";
    }
    if (c % label_every == 0) {
      o << "<text x=\"" << Num(left + c * group + group / 2, "%.1f") << "\" y=\"" << top + ph + 16
        << "\" class=\"xa\">" << Esc(categories[c]) << "</text>";
    }
  }
  for (const auto& [at, label] : x_marks) {  // at: position in category units
    const double x = left + at * group;
    o << "<line x1=\"" << x << "\" x2=\"" << x << "\" y1=\"" << top << "\" y2=\"" << top + ph
      << "\" class=\"mark\"/><text x=\"" << x + 3 << "\" y=\"" << top + 10 << "\" class=\"ml\">" << Esc(label)
      << "</text>";
  }
  double lx = left;
  for (const auto& s : series) {
    o << "<rect x=\"" << lx << "\" y=\"" << h - 22 << "\" width=\"12\" height=\"12\" fill=\"" << s.colour
      << "\"/><text x=\"" << lx + 16 << "\" y=\"" << h - 12 << "\" class=\"lg\">" << Esc(s.name) << "</text>";
    lx += 30 + 7.5 * s.name.size();
  }
  o << "</svg>";
  return o.str();
}

// Horizontal bars of a rate in 0..1, one row per item, with a text label.
std::string RateBars(const std::string& title, const std::vector<std::string>& items, const std::vector<Series>& series,
                     const std::vector<std::vector<std::string>>& labels) {
  const int row = 16 * static_cast<int>(std::max<size_t>(1, series.size())) + 8;
  const int left = 250, right = 150, top = 34, w = 760;
  const int h = top + row * static_cast<int>(items.size()) + 34;
  const int pw = w - left - right;
  std::ostringstream o;
  o << "<svg class=\"plot\" viewBox=\"0 0 " << w << " " << h << "\" role=\"img\" aria-label=\"" << Esc(title)
    << "\"><title>" << Esc(title) << "</title><text x=\"10\" y=\"20\" class=\"t\">" << Esc(title) << "</text>";
  for (int i = 0; i <= 4; ++i) {
    const double x = left + pw * i / 4.0;
    o << "<line x1=\"" << x << "\" x2=\"" << x << "\" y1=\"" << top << "\" y2=\"" << h - 30 << "\" class=\"grid\"/>"
      << "<text x=\"" << x << "\" y=\"" << h - 16 << "\" class=\"xa\">" << Num(i / 4.0, "%.2f") << "</text>";
  }
  for (size_t k = 0; k < items.size(); ++k) {
    const int y = top + row * static_cast<int>(k);
    o << "<text x=\"" << left - 8 << "\" y=\"" << y + row / 2 + 4 << "\" class=\"ya\">" << Esc(items[k]) << "</text>";
    for (size_t s = 0; s < series.size(); ++s) {
      const double v = std::clamp(series[s].values[k], 0.0, 1.0);
      const int by = y + 4 + 16 * static_cast<int>(s);
      o << "<rect x=\"" << left << "\" y=\"" << by << "\" width=\"" << Num(pw * v, "%.1f")
        << "\" height=\"12\" fill=\"" << series[s].colour << "\"><title>" << Esc(items[k]) << " ("
        << Esc(series[s].name) << "): " << Esc(labels[s][k]) << "</title></rect><text x=\""
        << Num(left + pw * v + 4, "%.1f") << "\" y=\"" << by + 10 << "\" class=\"lg\">" << Esc(labels[s][k])
        << "</text>";
    }
  }
  o << "</svg>";
  return o.str();
}

std::string Table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows) {
  std::ostringstream o;
  o << "<table><thead><tr>";
  for (const auto& h : head) o << "<th>" << Esc(h) << "</th>";
  o << "</tr></thead><tbody>";
  for (const auto& r : rows) {
    o << "<tr>";
    for (const auto& c : r) o << "<td>" << Esc(c) << "</td>";
    o << "</tr>";
  }
  o << "</tbody></table>";
  return o.str();
}

}  // namespace

std::string Report::Html() const {
  std::ostringstream o;
  const Side& cand = *sides[0];
  o << "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
    << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    << "<title>Backtest: " << Esc(cand.profile->name) << " " << Esc(cand.profile->version) << "</title><style>"
    << "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;max-width:980px;"
       "color:#1b1f24;padding:0 16px}h1{font-size:22px}h2{font-size:17px;margin-top:32px;border-bottom:1px solid #d5d9df}"
       "table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{border:1px solid #d5d9df;padding:3px 8px;"
       "text-align:right}th{background:#f2f4f7}td:first-child,th:first-child{text-align:left}"
       ".plot{width:100%;max-width:760px;display:block;margin:12px 0}.t{font-weight:600;font-size:14px}"
       ".ya{font-size:11px;text-anchor:end}.xa{font-size:11px;text-anchor:middle}.yl{font-size:11px;"
       "text-anchor:middle}.lg{font-size:11px}.grid{stroke:#e3e6ea}.mark{stroke:#444;stroke-dasharray:4 3}"
       ".ml{font-size:10px}.note{color:#59616b}code{background:#f2f4f7;padding:0 3px}</style></head><body>";
  o << "<h1>Backtest of profile <code>" << Esc(cand.profile->name) << " " << Esc(cand.profile->version) << "</code>";
  if (sides.size() > 1) o << " against <code>" << Esc(sides[1]->profile->name) << " " << Esc(sides[1]->profile->version) << "</code>";
  o << "</h1><p class=\"note\">Input: " << Esc(options.input_source) << ", " << options.input_records
    << " records. Reported event time " << FormatUtc(options.from_ms) << " to " << FormatUtc(options.to_ms)
    << ". Produced by <code>boxwatch backtest</code>; the same input and profiles give the same page.</p>";

  // Summary.
  std::vector<std::vector<std::string>> rows;
  for (size_t i = 0; i < sides.size(); ++i) {
    const auto& f = figures[i];
    rows.push_back({sides[i]->label + " (" + sides[i]->profile->version + ")", std::to_string(sides[i]->run.alerts.size()),
                    std::to_string(f.containers_at[1]), std::to_string(f.containers_at[2]),
                    std::to_string(f.containers_at[3]), std::to_string(f.containers_at[4]), std::to_string(f.inspected),
                    std::to_string(f.seized), std::to_string(f.randomly_selected)});
  }
  o << "<h2>Summary</h2>"
    << Table({"profile", "alerts", "boxes at LOW", "at MEDIUM", "at HIGH", "at CRITICAL", "inspected", "seized",
              "picked at random"},
             rows);
  if (sides.size() > 1) {
    o << "<p>" << newly_alerted.size() << " containers newly alerted, " << no_longer_alerted.size()
      << " no longer alerted, " << raised.size() << " raised, " << lowered.size() << " lowered.</p>";
  }

  // Workload over time.
  std::set<std::string> day_set;
  for (const auto& f : figures) {
    for (const auto& [d, by] : f.alerts_per_day) day_set.insert(d);
  }
  const std::vector<std::string> days(day_set.begin(), day_set.end());
  o << "<h2>Workload over time</h2><p class=\"note\">Alerts per UTC day of the event that raised them, by "
       "priority: the examinations each profile asks for.</p>";
  for (int p = v1::PRIORITY_CRITICAL; p >= v1::PRIORITY_LOW; --p) {
    std::vector<Series> series;
    for (size_t i = 0; i < sides.size(); ++i) {
      Series s{sides[i]->label, kSideColour[i], {}};
      for (const auto& d : days) {
        auto it = figures[i].alerts_per_day.find(d);
        s.values.push_back(it == figures[i].alerts_per_day.end() ? 0 : it->second[p]);
      }
      series.push_back(std::move(s));
    }
    o << Bars(std::string(kPriority[p]) + " alerts per day", days, series, "alerts");
  }
  // Regions.
  std::set<std::string> region_set;
  for (const auto& f : figures) {
    for (const auto& [g, by] : f.alerts_per_region) region_set.insert(g);
  }
  rows.clear();
  for (const auto& g : region_set) {
    for (size_t i = 0; i < sides.size(); ++i) {
      auto it = figures[i].alerts_per_region.find(g);
      const auto by = it == figures[i].alerts_per_region.end() ? std::array<int, 5>{} : it->second;
      rows.push_back({g + " (" + sides[i]->label + ")", std::to_string(by[1]), std::to_string(by[2]),
                      std::to_string(by[3]), std::to_string(by[4])});
    }
  }
  o << "<h2>Alerts per region</h2>" << Table({"region", "LOW", "MEDIUM", "HIGH", "CRITICAL"}, rows);

  // Changes.
  if (sides.size() > 1) {
    auto list = [&](const char* title, const std::vector<Change>& v) {
      o << "<h2>" << title << " (" << v.size() << ")</h2>";
      if (v.empty()) return;
      if (v.size() > options.sample) o << "<p class=\"note\">The first " << options.sample << "; all are in the JSON.</p>";
      std::vector<std::vector<std::string>> r;
      for (size_t i = 0; i < v.size() && i < options.sample; ++i) {
        r.push_back({v[i].container, kPriority[v[i].before], kPriority[v[i].after], v[i].explanation});
      }
      o << Table({"container", "baseline", "candidate", "explanation (highest alert)"}, r);
    };
    list("Containers newly alerted", newly_alerted);
    list("Containers no longer alerted", no_longer_alerted);
    list("Containers raised", raised);
    list("Containers lowered", lowered);
  }

  // Indicators.
  o << "<h2>Indicators</h2><p class=\"note\">Alerts: alerts carrying the indicator. Decided: containers whose "
       "highest priority would have been lower without it. Hit rate: seizures per inspected container where it "
       "fired; counts beside it, so a small sample shows as small.</p>";
  const SideFigures& cf = figures[0];
  std::vector<std::string> items;
  std::vector<Series> hit_series;
  std::vector<std::vector<std::string>> hit_labels;
  for (size_t i = 0; i < sides.size(); ++i) {
    rows.clear();
    for (const auto& r : figures[i].indicators) {
      if (r.alerts == 0 && r.inspected == 0) continue;
      rows.push_back({r.id, r.enabled ? Num(r.weight) : "off", std::to_string(r.alerts), std::to_string(r.decided),
                      std::to_string(r.inspected), std::to_string(r.seized),
                      r.inspected ? Num(static_cast<double>(r.seized) / r.inspected, "%.2f") : "-"});
    }
    o << "<p><b>" << Esc(sides[i]->label) << "</b></p>"
      << Table({"indicator", "weight", "alerts", "decided", "inspected", "seized", "hit rate"}, rows);
  }
  for (const auto& r : cf.indicators) {
    if (r.inspected > 0) items.push_back(r.id);
  }
  std::sort(items.begin(), items.end());
  for (size_t i = 0; i < sides.size(); ++i) {
    Series s{sides[i]->label, kSideColour[i], {}};
    std::vector<std::string> labels;
    for (const auto& id : items) {
      for (const auto& r : figures[i].indicators) {
        if (r.id != id) continue;
        s.values.push_back(r.inspected ? static_cast<double>(r.seized) / r.inspected : 0);
        labels.push_back(std::to_string(r.seized) + "/" + std::to_string(r.inspected) + (r.enabled ? "" : " (off)"));
      }
    }
    hit_series.push_back(std::move(s));
    hit_labels.push_back(std::move(labels));
    break;  // the fired sets hardly differ between profiles: one series keeps the plot readable
  }
  if (items.empty()) {
    o << "<p>No inspection outcomes in the input: hit rates need them.</p>";
  } else {
    o << RateBars("Hit rate per indicator (seizures / inspected containers where it fired)", items, hit_series,
                  hit_labels);
  }

  // Quality.
  o << "<h2>Precision and recall</h2><p class=\"note\">By outcomes: over inspected containers only (a box "
       "nobody inspected counts neither way). By labels: against the simulation's ground truth.</p>";
  rows.clear();
  for (size_t i = 0; i < sides.size(); ++i) {
    for (const auto& q : figures[i].by_outcomes) {
      rows.push_back({sides[i]->label + " outcomes", std::string(kPriority[q.priority]) + "+",
                      Num(q.precision, "%.3f"), std::to_string(q.tp) + "/" + std::to_string(q.tp + q.fp),
                      Num(q.recall, "%.3f"), std::to_string(q.tp) + "/" + std::to_string(q.tp + q.fn)});
    }
    if (figures[i].by_labels) {
      for (const auto& q : figures[i].by_labels->by_priority) {
        rows.push_back({sides[i]->label + " labels", std::string(kPriority[q.priority]) + "+", Num(q.precision, "%.3f"),
                        std::to_string(q.true_positives) + "/" + std::to_string(q.true_positives + q.false_positives),
                        Num(q.recall, "%.3f"),
                        std::to_string(q.true_positives) + "/" + std::to_string(q.true_positives + q.false_negatives)});
      }
    }
  }
  o << Table({"side", "at or above", "precision", "", "recall", ""}, rows);

  // Score distributions.
  o << "<h2>Scores of inspected containers</h2>";
  for (size_t i = 0; i < sides.size(); ++i) {
    std::vector<std::string> bins;
    for (int b = 0; b < 16; ++b) bins.push_back(b == 15 ? "150+" : std::to_string(b * 10) + "-" + std::to_string(b * 10 + 9));
    std::vector<Series> series = {{"seized", kOutcomeColour[0], {}}, {"cleared", kOutcomeColour[1], {}}};
    for (int b = 0; b < 16; ++b) {
      series[0].values.push_back(figures[i].seized_scores[b]);
      series[1].values.push_back(figures[i].cleared_scores[b]);
    }
    std::vector<std::pair<double, std::string>> marks;
    for (int p = v1::PRIORITY_LOW; p <= v1::PRIORITY_CRITICAL; ++p) {
      marks.push_back({std::min(15.0, sides[i]->profile->threshold[p] / 10), kPriority[p]});
    }
    o << Bars("Score distribution, " + sides[i]->label + " (" + sides[i]->profile->version + ")", bins, series,
              "containers", marks);
  }
  o << "</body></html>\n";
  return o.str();
}

}  // namespace boxwatch::backtest
