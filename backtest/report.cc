// Building the backtest report and writing it as text and JSON (the HTML
// page is in html.cc).
#include "backtest/report.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <set>
#include <sstream>

#include "core/http.h"

namespace boxwatch::backtest {
namespace {

const char* kPriority[] = {"none", "LOW", "MEDIUM", "HIGH", "CRITICAL"};

std::string Fmt(const char* format, double v) {
  char b[64];
  std::snprintf(b, sizeof b, format, v);
  return b;
}

// Each container's highest alert (the first that reached its highest priority).
std::map<std::string, const v1::Alert*> Highest(const std::vector<v1::Alert>& alerts) {
  std::map<std::string, const v1::Alert*> out;
  for (const auto& a : alerts) {
    auto [it, fresh] = out.try_emplace(a.container_number(), &a);
    if (!fresh && a.priority() > it->second->priority()) it->second = &a;
  }
  return out;
}

SideFigures Figures(const Side& side, const ReportOptions& o) {
  SideFigures f;
  const operators::Profile& p = *side.profile;
  std::map<std::string, IndicatorRow> rows;
  for (const auto& spec : operators::KnownIndicators()) {
    const auto& cfg = p.Indicator(spec.id);
    rows[spec.id] = {.id = spec.id, .weight = cfg.enabled ? cfg.weight : 0, .enabled = cfg.enabled};
  }
  std::map<std::string, std::set<std::string>> containers_with;
  for (const auto& a : side.run.alerts) {
    f.alerts_per_day[FormatUtcDay(a.event_time_ms())][a.priority()]++;
    if (a.regions_size() == 0) f.alerts_per_region["(no region)"][a.priority()]++;
    for (const auto& r : a.regions()) f.alerts_per_region[r][a.priority()]++;
    for (const auto& ind : a.indicators()) {
      auto it = rows.find(ind.id());
      if (it == rows.end()) continue;  // the random-selection note
      ++it->second.alerts;
      containers_with[ind.id()].insert(a.container_number());
    }
  }
  for (auto& [id, row] : rows) row.containers = static_cast<int>(containers_with[id].size());
  for (const auto& [container, a] : Highest(side.run.alerts)) {
    const bool by_critical = std::any_of(a->indicators().begin(), a->indicators().end(),
                                         [](const auto& i) { return i.critical(); });
    for (const auto& ind : a->indicators()) {
      auto it = rows.find(ind.id());
      if (it == rows.end()) continue;
      const bool decided = by_critical ? ind.critical() : p.PriorityFor(a->score() - ind.contribution()) < a->priority();
      if (decided) ++it->second.decided;
    }
  }
  for (const auto& [container, c] : side.run.containers) {
    f.containers_at[c.max_priority]++;
    if (c.randomly_selected) ++f.randomly_selected;
    if (!c.inspected) continue;
    ++f.inspected;
    if (c.seized) ++f.seized;
    const size_t bin = std::min<size_t>(15, static_cast<size_t>(std::max(0.0, c.score) / 10));
    (c.seized ? f.seized_scores : f.cleared_scores)[bin]++;
    for (const auto& id : c.fired) {
      auto it = rows.find(id);
      if (it == rows.end()) continue;
      ++it->second.inspected;
      if (c.seized) ++it->second.seized;
    }
  }
  for (int pr = v1::PRIORITY_LOW; pr <= v1::PRIORITY_CRITICAL; ++pr) {
    Quality q{.priority = static_cast<v1::Priority>(pr)};
    for (const auto& [container, c] : side.run.containers) {
      if (!c.inspected) continue;
      const bool flagged = c.max_priority >= pr;
      if (flagged && c.seized) ++q.tp;
      if (flagged && !c.seized) ++q.fp;
      if (!flagged && c.seized) ++q.fn;
    }
    q.precision = q.tp + q.fp ? static_cast<double>(q.tp) / (q.tp + q.fp) : 0;
    q.recall = q.tp + q.fn ? static_cast<double>(q.tp) / (q.tp + q.fn) : 0;
    f.by_outcomes.push_back(q);
  }
  if (o.labels) f.by_labels = sim::Evaluate(*o.labels, side.run.alerts);
  for (auto& [id, row] : rows) f.indicators.push_back(row);
  std::sort(f.indicators.begin(), f.indicators.end(), [](const auto& a, const auto& b) {
    return std::tie(b.alerts, a.id) < std::tie(a.alerts, b.id);
  });
  return f;
}

void JsonChanges(std::ostringstream& out, const char* name, const std::vector<Change>& changes) {
  out << ",\"" << name << "\":[";
  for (size_t i = 0; i < changes.size(); ++i) {
    const auto& c = changes[i];
    out << (i ? "," : "") << "{\"container\":\"" << http::JsonEscape(c.container) << "\",\"baseline\":\""
        << kPriority[c.before] << "\",\"candidate\":\"" << kPriority[c.after] << "\",\"explanation\":\""
        << http::JsonEscape(c.explanation) << "\"}";
  }
  out << "]";
}

std::string Row(const std::array<int, 5>& by) {
  char b[96];
  std::snprintf(b, sizeof b, "%8d %8d %8d %8d", by[1], by[2], by[3], by[4]);
  return b;
}

}  // namespace

std::string Explain(const v1::Alert& a) {
  std::string s = std::string(kPriority[a.priority()]) + " " + Fmt("%.1f", a.score()) + " =";
  bool first = true;
  for (const auto& i : a.indicators()) {
    s += (first ? " " : ", ") + i.id();
    if (i.id() != operators::kRandomSelectionId) s += " " + Fmt("%.1f", i.contribution());
    if (i.critical()) s += " (critical)";
    first = false;
  }
  return s;
}

Report BuildReport(const Side& candidate, const Side* baseline, const ReportOptions& options) {
  Report r;
  r.options = options;
  r.sides.push_back(&candidate);
  if (baseline) r.sides.push_back(baseline);
  for (const Side* s : r.sides) r.figures.push_back(Figures(*s, options));
  // Every day from the first to the last, so quiet days show as zero.
  int64_t first = std::numeric_limits<int64_t>::max(), last = std::numeric_limits<int64_t>::min();
  for (const Side* s : r.sides) {
    for (const auto& a : s->run.alerts) {
      first = std::min(first, a.event_time_ms());
      last = std::max(last, a.event_time_ms());
    }
  }
  for (int64_t day = first / 86400000 * 86400000; first <= last && day <= last; day += 86400000) {
    for (auto& f : r.figures) f.alerts_per_day.try_emplace(FormatUtcDay(day));
  }
  if (!baseline) return r;
  const auto after = Highest(candidate.run.alerts);
  const auto before = Highest(baseline->run.alerts);
  std::set<std::string> all;
  for (const auto& [c, a] : after) all.insert(c);
  for (const auto& [c, a] : before) all.insert(c);
  for (const auto& c : all) {
    auto a = after.find(c);
    auto b = before.find(c);
    Change ch{.container = c,
              .before = b == before.end() ? v1::PRIORITY_UNSPECIFIED : b->second->priority(),
              .after = a == after.end() ? v1::PRIORITY_UNSPECIFIED : a->second->priority()};
    if (ch.before == ch.after) continue;
    ch.explanation = Explain(a != after.end() ? *a->second : *b->second);
    if (ch.before == v1::PRIORITY_UNSPECIFIED) {
      r.newly_alerted.push_back(std::move(ch));
    } else if (ch.after == v1::PRIORITY_UNSPECIFIED) {
      r.no_longer_alerted.push_back(std::move(ch));
    } else {
      (ch.after > ch.before ? r.raised : r.lowered).push_back(std::move(ch));
    }
  }
  return r;
}

std::string Report::Text() const {
  std::ostringstream out;
  out << "input: " << options.input_source << ", " << options.input_records << " records; reported event time "
      << FormatUtc(options.from_ms) << " to " << FormatUtc(options.to_ms) << "\n";
  for (size_t i = 0; i < sides.size(); ++i) {
    const Side& s = *sides[i];
    out << s.label << ": profile " << s.profile->name << " " << s.profile->version << ", " << s.run.alerts.size()
        << " alerts, " << s.run.records << " records in " << Fmt("%.1f", s.run.cpu_seconds) << " CPU-s ("
        << Fmt("%.0f", s.run.cpu_seconds > 0 ? s.run.records / s.run.cpu_seconds : 0) << " records per CPU-second)";
    uint64_t dead = 0;
    for (const auto& [reason, n] : s.run.dead_letters) dead += n;
    out << ", " << dead << " dead letters\n";
  }
  out << "\nalerts per day (by event time)      LOW   MEDIUM     HIGH CRITICAL\n";
  std::set<std::string> days;
  for (const auto& f : figures) {
    for (const auto& [d, by] : f.alerts_per_day) days.insert(d);
  }
  for (const auto& d : days) {
    for (size_t i = 0; i < sides.size(); ++i) {
      auto it = figures[i].alerts_per_day.find(d);
      out << "  " << d << " " << std::string(12 - std::min<size_t>(12, sides[i]->label.size()), ' ') << sides[i]->label
          << "  " << Row(it == figures[i].alerts_per_day.end() ? std::array<int, 5>{} : it->second) << "\n";
    }
  }
  out << "\nalerts per region                    LOW   MEDIUM     HIGH CRITICAL\n";
  std::set<std::string> regions;
  for (const auto& f : figures) {
    for (const auto& [g, by] : f.alerts_per_region) regions.insert(g);
  }
  for (const auto& g : regions) {
    for (size_t i = 0; i < sides.size(); ++i) {
      auto it = figures[i].alerts_per_region.find(g);
      char head[40];
      std::snprintf(head, sizeof head, "  %-20.20s %-12.12s", g.c_str(), sides[i]->label.c_str());
      out << head << Row(it == figures[i].alerts_per_region.end() ? std::array<int, 5>{} : it->second) << "\n";
    }
  }
  if (sides.size() == 2) {
    auto list = [&](const char* title, const std::vector<Change>& v) {
      out << "\n" << title << ": " << v.size() << (v.size() > options.sample ? " (a sample; all in the JSON)" : "")
          << "\n";
      for (size_t i = 0; i < v.size() && i < options.sample; ++i) {
        out << "  " << v[i].container << "  " << kPriority[v[i].before] << " -> " << kPriority[v[i].after] << "  "
            << v[i].explanation << "\n";
      }
    };
    list("containers newly alerted", newly_alerted);
    list("containers no longer alerted", no_longer_alerted);
    list("containers raised", raised);
    list("containers lowered", lowered);
  }
  for (size_t i = 0; i < sides.size(); ++i) {
    const SideFigures& f = figures[i];
    out << "\nindicators (" << sides[i]->label << "; hit rate = seizures / inspected containers where it fired)\n"
        << "  indicator                        weight   alerts  decided inspected seized  hit rate\n";
    for (const auto& row : f.indicators) {
      if (row.alerts == 0 && row.inspected == 0) continue;
      char b[160];
      std::snprintf(b, sizeof b, "  %-32s %6s %8d %8d %9d %6d  %s\n", row.id.c_str(),
                    row.enabled ? Fmt("%.0f", row.weight).c_str() : "off", row.alerts, row.decided, row.inspected,
                    row.seized, row.inspected ? Fmt("%.2f", static_cast<double>(row.seized) / row.inspected).c_str() : "-");
      out << b;
    }
    out << "  inspected containers: " << f.inspected << ", with a seizure: " << f.seized << "\n";
    out << "  containers picked by random selection: " << f.randomly_selected << "\n";
    out << "  by outcomes (inspected containers only): ";
    for (const auto& q : f.by_outcomes) {
      out << kPriority[q.priority] << "+ precision " << Fmt("%.3f", q.precision) << " (" << q.tp << "/" << q.tp + q.fp
          << ") recall " << Fmt("%.3f", q.recall) << " (" << q.tp << "/" << q.tp + q.fn << ")"
          << (q.priority == v1::PRIORITY_CRITICAL ? "\n" : "; ");
    }
    if (f.by_labels) {
      out << "  by labels: ";
      for (const auto& q : f.by_labels->by_priority) {
        out << kPriority[q.priority] << "+ precision " << Fmt("%.3f", q.precision) << " recall "
            << Fmt("%.3f", q.recall) << (q.priority == v1::PRIORITY_CRITICAL ? "\n" : "; ");
      }
    }
  }
  return out.str();
}

std::string Report::Json() const {
  std::ostringstream out;
  out << "{\"input\":{\"source\":\"" << http::JsonEscape(options.input_source) << "\",\"records\":"
      << options.input_records << ",\"from\":\"" << FormatUtc(options.from_ms) << "\",\"to\":\""
      << FormatUtc(options.to_ms) << "\"},\"sides\":[";
  for (size_t i = 0; i < sides.size(); ++i) {
    const Side& s = *sides[i];
    const SideFigures& f = figures[i];
    out << (i ? "," : "") << "{\"label\":\"" << s.label << "\",\"profile\":{\"name\":\"" << http::JsonEscape(s.profile->name)
        << "\",\"version\":\"" << http::JsonEscape(s.profile->version) << "\"},\"records\":" << s.run.records
        << ",\"alerts\":" << s.run.alerts.size()
        << ",\"late\":" << s.run.counters.late << ",\"dead_letters\":{";
    bool first = true;
    for (const auto& [reason, n] : s.run.dead_letters) {
      out << (first ? "" : ",") << "\"" << http::JsonEscape(reason) << "\":" << n;
      first = false;
    }
    auto by = [&](const std::map<std::string, std::array<int, 5>>& m) {
      out << "{";
      bool first_key = true;
      for (const auto& [k, v] : m) {
        out << (first_key ? "" : ",") << "\"" << http::JsonEscape(k) << "\":{\"LOW\":" << v[1] << ",\"MEDIUM\":" << v[2]
            << ",\"HIGH\":" << v[3] << ",\"CRITICAL\":" << v[4] << "}";
        first_key = false;
      }
      out << "}";
    };
    out << "},\"alerts_per_day\":";
    by(f.alerts_per_day);
    out << ",\"alerts_per_region\":";
    by(f.alerts_per_region);
    out << ",\"containers_by_highest_priority\":{";
    for (int p = 0; p <= 4; ++p) out << (p ? "," : "") << "\"" << kPriority[p] << "\":" << f.containers_at[p];
    out << "},\"inspected\":" << f.inspected << ",\"seized\":" << f.seized
        << ",\"randomly_selected\":" << f.randomly_selected << ",\"indicators\":[";
    for (size_t k = 0; k < f.indicators.size(); ++k) {
      const auto& r = f.indicators[k];
      out << (k ? "," : "") << "{\"id\":\"" << r.id << "\",\"enabled\":" << (r.enabled ? "true" : "false")
          << ",\"weight\":" << Fmt("%g", r.weight) << ",\"alerts\":" << r.alerts << ",\"containers\":" << r.containers
          << ",\"decided\":" << r.decided << ",\"inspected\":" << r.inspected << ",\"seized\":" << r.seized
          << ",\"hit_rate\":" << (r.inspected ? Fmt("%.4f", static_cast<double>(r.seized) / r.inspected) : "null") << "}";
    }
    out << "],\"by_outcomes\":[";
    for (size_t k = 0; k < f.by_outcomes.size(); ++k) {
      const auto& q = f.by_outcomes[k];
      out << (k ? "," : "") << "{\"at_or_above\":\"" << kPriority[q.priority] << "\",\"true_positives\":" << q.tp
          << ",\"false_positives\":" << q.fp << ",\"false_negatives\":" << q.fn << ",\"precision\":"
          << Fmt("%.4f", q.precision) << ",\"recall\":" << Fmt("%.4f", q.recall) << "}";
    }
    out << "]";
    if (f.by_labels) out << ",\"by_labels\":" << f.by_labels->Json();
    out << ",\"score_histogram\":{\"bin_width\":10,\"seized\":[";
    for (size_t k = 0; k < f.seized_scores.size(); ++k) out << (k ? "," : "") << f.seized_scores[k];
    out << "],\"cleared\":[";
    for (size_t k = 0; k < f.cleared_scores.size(); ++k) out << (k ? "," : "") << f.cleared_scores[k];
    out << "]},\"alert_list\":[";
    for (size_t k = 0; k < s.run.alerts.size(); ++k) {
      const auto& a = s.run.alerts[k];
      out << (k ? "," : "") << "{\"alert_id\":\"" << http::JsonEscape(a.alert_id()) << "\",\"priority\":\""
          << kPriority[a.priority()] << "\",\"score\":" << Fmt("%.2f", a.score()) << ",\"event_time_ms\":"
          << a.event_time_ms() << ",\"explanation\":\"" << http::JsonEscape(Explain(a)) << "\"}";
    }
    out << "]}";
  }
  out << "]";
  JsonChanges(out, "newly_alerted", newly_alerted);
  JsonChanges(out, "no_longer_alerted", no_longer_alerted);
  JsonChanges(out, "raised", raised);
  JsonChanges(out, "lowered", lowered);
  out << "}";
  return out.str();
}

}  // namespace boxwatch::backtest
