#include "sim/evaluation.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace boxwatch::sim {
namespace {

const char* kPriorityNames[] = {"none", "LOW", "MEDIUM", "HIGH", "CRITICAL"};

std::string Fixed(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3f", v);
  return b;
}

// The string value of "key" in a one-line JSON object (no escapes needed
// for container numbers and scenario names).
std::string Field(const std::string& line, const std::string& key) {
  const std::string k = "\"" + key + "\":\"";
  const size_t at = line.find(k);
  if (at == std::string::npos) return "";
  const size_t end = line.find('"', at + k.size());
  return end == std::string::npos ? "" : line.substr(at + k.size(), end - at - k.size());
}

}  // namespace

Status WriteLabels(const std::string& path, const Labels& labels) {
  std::ofstream out(path);
  if (!out) return Error{Errc::kIo, "cannot write labels file " + path};
  for (const auto& [container, s] : labels) {
    out << "{\"container\":\"" << container << "\",\"scenario\":\"" << ScenarioName(s)
        << "\",\"smuggling\":" << (IsSmuggling(s) ? "true" : "false") << "}\n";
  }
  out.close();
  if (!out) return Error{Errc::kIo, "writing labels file " + path + " failed"};
  return Status::Ok();
}

Result<Labels> ReadLabels(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error{Errc::kInvalidArgument, "cannot read labels file " + path};
  Labels labels;
  std::string line;
  int n = 0;
  std::vector<std::string> problems;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    const std::string container = Field(line, "container");
    const std::string scenario = Field(line, "scenario");
    const Scenario s = ScenarioFromName(scenario);
    if (container.empty() || (s == Scenario::kNone && scenario != "none")) {
      if (problems.size() < 10) problems.push_back(path + ":" + std::to_string(n) + ": not a label line: " + line);
      continue;
    }
    labels.emplace_back(container, s);
  }
  if (!problems.empty()) {
    std::string all;
    for (const auto& p : problems) all += (all.empty() ? "" : "\n") + p;
    return Error{Errc::kInvalidArgument, all};
  }
  return labels;
}

double Evaluation::Recall(Scenario s, v1::Priority p) const {
  for (const auto& r : rows) {
    if (r.scenario != s) continue;
    int hit = 0;
    for (int i = p; i <= 4; ++i) hit += r.reached[i];
    return r.containers == 0 ? 1.0 : static_cast<double>(hit) / r.containers;
  }
  return 1.0;
}

Evaluation Evaluate(const Labels& labels, const std::vector<v1::Alert>& alerts) {
  std::map<std::string, int> highest;
  for (const auto& a : alerts) {
    int& h = highest[a.container_number()];
    h = std::max(h, static_cast<int>(a.priority()));
  }
  Evaluation e;
  std::set<std::string> seen;
  for (const auto& a : alerts) {
    if (!seen.insert(a.alert_id()).second) continue;
    ++e.alerts;
    for (const auto& f : a.indicators()) ++e.alerts_with_indicator[f.id()];
  }
  std::map<Scenario, Evaluation::Row> rows;
  std::map<std::string, bool> labelled;
  for (const auto& [container, s] : labels) {
    labelled[container] = true;
    auto& row = rows[s];
    row.scenario = s;
    ++row.containers;
    auto it = highest.find(container);
    ++row.reached[it == highest.end() ? 0 : it->second];
  }
  for (const auto& [container, h] : highest)
    if (!labelled.count(container)) ++e.unlabelled_alerted;
  for (auto& [s, row] : rows) e.rows.push_back(row);
  for (int p = 1; p <= 4; ++p) {
    Evaluation::AtPriority at;
    at.priority = static_cast<v1::Priority>(p);
    for (const auto& row : e.rows) {
      int hit = 0;
      for (int i = p; i <= 4; ++i) hit += row.reached[i];
      if (IsSmuggling(row.scenario)) {
        at.true_positives += hit;
        at.false_negatives += row.containers - hit;
      } else {
        at.false_positives += hit;
      }
    }
    const int alerted = at.true_positives + at.false_positives;
    const int positives = at.true_positives + at.false_negatives;
    at.precision = alerted == 0 ? 1.0 : static_cast<double>(at.true_positives) / alerted;
    at.recall = positives == 0 ? 1.0 : static_cast<double>(at.true_positives) / positives;
    e.by_priority.push_back(at);
  }
  return e;
}

std::string Evaluation::Table() const {
  std::ostringstream out;
  char line[256];
  std::snprintf(line, sizeof line, "%-34s %6s %6s %6s %6s %6s %6s %9s\n", "scenario", "boxes", "none", "LOW", "MEDIUM",
                "HIGH", "CRIT", "HIGH+ %");
  out << line;
  for (const auto& r : rows) {
    const int high = r.reached[3] + r.reached[4];
    std::snprintf(line, sizeof line, "%-34s %6d %6d %6d %6d %6d %6d %8.1f%%\n",
                  (std::string(IsSmuggling(r.scenario) ? "* " : "  ") + ScenarioName(r.scenario)).c_str(), r.containers,
                  r.reached[0], r.reached[1], r.reached[2], r.reached[3], r.reached[4],
                  r.containers ? 100.0 * high / r.containers : 0.0);
    out << line;
  }
  out << "(* smuggling scenario: should reach HIGH or above; the others should not)\n\n";
  std::snprintf(line, sizeof line, "%-10s %8s %8s %8s %10s %8s\n", "alert at", "TP", "FP", "FN", "precision", "recall");
  out << line;
  for (const auto& a : by_priority) {
    std::snprintf(line, sizeof line, "%-10s %8d %8d %8d %10.3f %8.3f\n", (std::string(kPriorityNames[a.priority]) + "+").c_str(),
                  a.true_positives, a.false_positives, a.false_negatives, a.precision, a.recall);
    out << line;
  }
  if (unlabelled_alerted > 0) out << unlabelled_alerted << " alerted containers are not in the labels\n";
  out << "\n" << alerts << " alerts; alerts carrying each indicator:\n";
  for (const auto& [id, n] : alerts_with_indicator) {
    std::snprintf(line, sizeof line, "  %-34s %8d %6.1f%%\n", id.c_str(), n, alerts == 0 ? 0.0 : 100.0 * n / alerts);
    out << line;
  }
  return out.str();
}

std::string Evaluation::Json() const {
  std::ostringstream out;
  out << "{\"scenarios\":[";
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    out << (i ? "," : "") << "{\"scenario\":\"" << ScenarioName(r.scenario) << "\",\"smuggling\":"
        << (IsSmuggling(r.scenario) ? "true" : "false") << ",\"containers\":" << r.containers << ",\"highest\":{";
    for (int p = 0; p <= 4; ++p) out << (p ? "," : "") << "\"" << kPriorityNames[p] << "\":" << r.reached[p];
    out << "},\"recall_high\":" << Fixed(Recall(r.scenario, v1::PRIORITY_HIGH)) << "}";
  }
  out << "],\"by_priority\":[";
  for (size_t i = 0; i < by_priority.size(); ++i) {
    const auto& a = by_priority[i];
    out << (i ? "," : "") << "{\"at_or_above\":\"" << kPriorityNames[a.priority] << "\",\"true_positives\":"
        << a.true_positives << ",\"false_positives\":" << a.false_positives << ",\"false_negatives\":"
        << a.false_negatives << ",\"precision\":" << Fixed(a.precision) << ",\"recall\":" << Fixed(a.recall) << "}";
  }
  out << "],\"unlabelled_alerted\":" << unlabelled_alerted << ",\"alerts\":" << alerts << ",\"alerts_with_indicator\":{";
  bool first = true;
  for (const auto& [id, n] : alerts_with_indicator) {
    out << (first ? "" : ",") << "\"" << id << "\":" << n;
    first = false;
  }
  out << "}}";
  return out.str();
}

std::map<Scenario, std::pair<int, int>> PooledHighPlus(const std::vector<Evaluation>& runs) {
  std::map<Scenario, std::pair<int, int>> pooled;
  for (const auto& r : runs) {
    for (const auto& row : r.rows) {
      auto& [hit, n] = pooled[row.scenario];
      hit += row.reached[v1::PRIORITY_HIGH] + row.reached[v1::PRIORITY_CRITICAL];
      n += row.containers;
    }
  }
  return pooled;
}

SeedFigure OverSeeds(const std::vector<double>& values) {
  SeedFigure f;
  f.runs = static_cast<int>(values.size());
  if (values.empty()) return f;
  double sum = 0;
  f.min = values[0], f.max = values[0];
  for (double v : values) {
    sum += v;
    f.min = std::min(f.min, v);
    f.max = std::max(f.max, v);
  }
  f.mean = sum / values.size();
  if (values.size() < 2) {
    f.low = f.high = f.mean;
    return f;
  }
  double ss = 0;
  for (double v : values) ss += (v - f.mean) * (v - f.mean);
  const double sd = std::sqrt(ss / (values.size() - 1));
  // Two-sided 97.5 % quantiles of Student's t for 1..10 degrees of freedom;
  // beyond, the normal's 1.96 is close enough.
  static const double kT[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228};
  const size_t df = values.size() - 1;
  const double t = df <= 10 ? kT[df - 1] : 1.96;
  const double half = t * sd / std::sqrt(static_cast<double>(values.size()));
  f.low = std::max(0.0, f.mean - half);
  f.high = std::min(1.0, f.mean + half);
  return f;
}

std::string SeedTable(const std::vector<uint32_t>& seeds, const std::vector<Evaluation>& runs) {
  std::ostringstream out;
  out << "seeds";
  for (uint32_t s : seeds) out << " " << s;
  out << " (" << runs.size() << " runs)\n\n";
  out << "alert at      precision mean [95% CI]  (min-max)     recall mean [95% CI]  (min-max)\n";
  char line[200];
  for (v1::Priority p : {v1::PRIORITY_MEDIUM, v1::PRIORITY_HIGH, v1::PRIORITY_CRITICAL}) {
    std::vector<double> precision, recall;
    for (const auto& r : runs) {
      precision.push_back(r.At(p).precision);
      recall.push_back(r.At(p).recall);
    }
    const SeedFigure pr = OverSeeds(precision), rc = OverSeeds(recall);
    std::snprintf(line, sizeof line, "%-9s     %.3f [%.3f, %.3f] (%.3f-%.3f)   %.3f [%.3f, %.3f] (%.3f-%.3f)\n",
                  (std::string(p == v1::PRIORITY_MEDIUM ? "MEDIUM" : p == v1::PRIORITY_HIGH ? "HIGH" : "CRITICAL") +
                   "+").c_str(),
                  pr.mean, pr.low, pr.high, pr.min, pr.max, rc.mean, rc.low, rc.high, rc.min, rc.max);
    out << line;
  }
  const auto pooled = PooledHighPlus(runs);
  out << "\nscenario (pooled over the runs)      boxes   HIGH+ %\n";
  for (const auto& [sc, hn] : pooled) {
    std::snprintf(line, sizeof line, "%s %-34s %6d  %6.1f%%\n", IsSmuggling(sc) ? "*" : " ", ScenarioName(sc),
                  hn.second, hn.second ? 100.0 * hn.first / hn.second : 0.0);
    out << line;
  }
  return out.str();
}

}  // namespace boxwatch::sim
