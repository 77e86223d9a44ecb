#pragma once
// Learning indicator weights from inspection outcomes (`boxwatch profile
// tune`): an L2-regularised logistic regression of "the inspection found a
// seizure" on the indicators that had fired by the inspection, over the
// inspected containers of a backtest run; the penalty chosen by k-fold
// cross-validation. Coefficients become weights on the profile's own scale:
// the modelled seizure probability `high_probability` lands on the HIGH
// threshold, so weight_i = clamp(beta_i * T_high / (logit(p) - beta_0)).
// The result is a candidate profile; nothing changes in production until an
// analyst backtests and publishes it.

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "backtest/backtest.h"
#include "core/result.h"
#include "operators/profile.h"

namespace boxwatch::backtest {

struct TuneOptions {
  double min_weight = 0;    // bounds of every learned weight
  double max_weight = 100;
  std::map<std::string, std::pair<double, double>> bounds;  // per indicator, overriding the above
  int min_outcomes = 20;    // inspected containers where it fired, to learn an indicator's weight
  int folds = 5;
  std::vector<double> l2_grid = {0.1, 0.3, 1, 3, 10, 30};
  double high_probability = 0.5;  // modelled seizure probability that reaches HIGH
};

struct CvFigures {
  int tp = 0, fp = 0, fn = 0;
  double precision = 0, recall = 0;
};

struct TuneResult {
  int examples = 0, seized = 0, random = 0;  // inspected containers; with a seizure; picked at random
  std::vector<std::string> learned;          // indicator ids given a learned weight
  std::map<std::string, int> support;        // inspected containers where each fired (enabled ones)
  std::map<std::string, int> support_seized;
  std::vector<std::string> too_few;          // enabled, fewer than min_outcomes: weight kept
  std::map<std::string, double> coefficient; // log-odds per learned indicator
  double intercept = 0;
  double l2 = 0;                             // the penalty cross-validation chose
  std::map<double, double> cv_log_loss;      // per penalty tried (mean per example)
  double scale = 0;                          // weight per unit of log-odds
  std::map<std::string, std::pair<double, double>> weights;  // id -> (before, after), learned ones
  CvFigures cv_current, cv_tuned;            // held-out, at the profile's HIGH threshold
  std::vector<std::string> warnings;

  std::string Text() const;
  std::string Json() const;
};

Result<TuneResult> Tune(const RunResult& run, const operators::Profile& profile, const TuneOptions& options);

// The profile's YAML with the learned weights and `version` written in
// (comments and layout kept), checked by parsing it back.
Result<std::string> TunedProfileYaml(const std::string& yaml, const std::string& source, const TuneResult& result,
                                     const std::string& version);

// Plain logistic regression, for the tuner and its tests: rows of 0/1
// features, labels, L2 penalty on the coefficients (not the intercept).
// Returns {intercept, coefficients...}.
std::vector<double> FitLogistic(const std::vector<std::vector<double>>& x, const std::vector<int>& y, double l2);

}  // namespace boxwatch::backtest
