#pragma once
// Detection quality of alerts against the simulator's ground truth: for each
// scenario, how many containers reached each priority; and, with "an alert
// at priority P or above" as the detection rule, precision and recall over
// the smuggling scenarios at each P. Used by `boxwatch evaluate` and the
// tests that hold the default profile to its figures.

#include <map>
#include <string>
#include <vector>

#include "boxwatch/v1/alert.pb.h"
#include "core/result.h"
#include "sim/traffic.h"

namespace boxwatch::sim {

using Labels = std::vector<std::pair<std::string, Scenario>>;  // container -> scenario

// Labels file: one JSON object per line,
//   {"container":"MSKU1000003","scenario":"seal_swap","smuggling":true}
Status WriteLabels(const std::string& path, const Labels& labels);
Result<Labels> ReadLabels(const std::string& path);

struct Evaluation {
  struct Row {
    Scenario scenario = Scenario::kNone;
    int containers = 0;
    int reached[5] = {0, 0, 0, 0, 0};  // by highest priority reached (index = v1::Priority; 0 = no alert)
  };
  std::vector<Row> rows;  // one per scenario present, in enum order
  struct AtPriority {
    v1::Priority priority = v1::PRIORITY_HIGH;
    int true_positives = 0, false_positives = 0, false_negatives = 0;
    double precision = 0, recall = 0;  // 1 when there is nothing to count
  };
  std::vector<AtPriority> by_priority;  // LOW, MEDIUM, HIGH, CRITICAL
  int unlabelled_alerted = 0;           // alerted containers not in the labels
  int alerts = 0;                       // distinct alert ids
  // Distinct alerts that carry each fired indicator id: what drives the
  // priorities (e.g. how often seizure feedback, history.party_seizure, counts).
  std::map<std::string, int> alerts_with_indicator;

  const AtPriority& At(v1::Priority p) const { return by_priority.at(static_cast<size_t>(p) - 1); }
  // Recall of one scenario at priority p or above (containers reaching it / containers).
  double Recall(Scenario s, v1::Priority p) const;
  std::string Table() const;
  std::string Json() const;
};

// `alerts`: every alert seen (any order, duplicates allowed).
Evaluation Evaluate(const Labels& labels, const std::vector<v1::Alert>& alerts);

// A figure over several independent runs (seeds): its mean and the 95 %
// confidence interval of the mean (Student's t, n - 1 degrees of freedom),
// with the smallest and largest run.
struct SeedFigure {
  double mean = 0, low = 0, high = 0, min = 0, max = 0;
  int runs = 0;
};
SeedFigure OverSeeds(const std::vector<double>& values);

// The evaluations of runs with different seeds, summarised: precision and
// recall at MEDIUM+, HIGH+ and CRITICAL+ with intervals, and each scenario's
// share reaching HIGH+ pooled over the runs. A table for people.
std::string SeedTable(const std::vector<uint32_t>& seeds, const std::vector<Evaluation>& runs);
// Per scenario over the runs: {containers reaching HIGH+, containers}.
std::map<Scenario, std::pair<int, int>> PooledHighPlus(const std::vector<Evaluation>& runs);

}  // namespace boxwatch::sim
