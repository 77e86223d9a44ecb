#pragma once
// The backtest report: a candidate profile's run beside a baseline's, as
// text (a terminal), JSON (machines) and one self-contained HTML page with
// its plots drawn as inline SVG (no script, nothing fetched).

#include <array>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "backtest/backtest.h"
#include "sim/evaluation.h"

namespace boxwatch::backtest {

struct Side {
  std::string label;  // "candidate", "baseline"
  const operators::Profile* profile = nullptr;
  RunResult run;
};

struct ReportOptions {
  std::string input_source;
  size_t input_records = 0;
  int64_t from_ms = 0;  // the reported window (event time)
  int64_t to_ms = 0;
  const sim::Labels* labels = nullptr;  // ground truth, when the input is a labelled simulation
  size_t sample = 20;                   // containers listed per change in the text and HTML
};

struct IndicatorRow {
  std::string id;
  double weight = 0;      // in the profile (0 when disabled)
  bool enabled = false;
  int alerts = 0;         // alerts carrying it
  int containers = 0;     // alerted containers whose alerts carry it
  int decided = 0;        // containers whose highest priority it decided
  int inspected = 0;      // inspected containers where it fired
  int seized = 0;         // of those, with a seizure
};

struct Quality {
  v1::Priority priority = v1::PRIORITY_LOW;
  int tp = 0, fp = 0, fn = 0;
  double precision = 0, recall = 0;  // 0 when nothing to count (see tp+fp, tp+fn)
};

struct SideFigures {
  std::map<std::string, std::array<int, 5>> alerts_per_day;     // UTC day -> by priority
  std::map<std::string, std::array<int, 5>> alerts_per_region;  // region -> by priority
  std::array<int, 5> containers_at{};  // containers by highest priority (0: none)
  std::vector<IndicatorRow> indicators;
  std::vector<Quality> by_outcomes;  // LOW..CRITICAL, over inspected containers
  std::optional<sim::Evaluation> by_labels;
  int inspected = 0, seized = 0, randomly_selected = 0;
  // Score histograms of inspected containers, 10-point bins 0..150+.
  std::array<int, 16> seized_scores{}, cleared_scores{};
};

struct Change {
  std::string container;
  v1::Priority before = v1::PRIORITY_UNSPECIFIED;  // baseline's highest
  v1::Priority after = v1::PRIORITY_UNSPECIFIED;   // candidate's highest
  std::string explanation;                          // the deciding side's highest alert, in one line
};

struct Report {
  ReportOptions options;
  std::vector<const Side*> sides;  // candidate first, then baseline (if any)
  std::vector<SideFigures> figures;
  std::vector<Change> newly_alerted;      // candidate alerts, baseline did not
  std::vector<Change> no_longer_alerted;  // baseline alerted, candidate does not
  std::vector<Change> raised, lowered;    // both alert, highest priority differs

  std::string Text() const;
  std::string Json() const;
  std::string Html() const;
};

// `baseline` may be null (the candidate alone).
Report BuildReport(const Side& candidate, const Side* baseline, const ReportOptions& options);

// One line for an alert: "HIGH 55.0 = party.watchlisted 55.0, ...".
std::string Explain(const v1::Alert& alert);

}  // namespace boxwatch::backtest
