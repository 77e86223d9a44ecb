// Outcome-driven weight tuning (see tune.h).
#include "backtest/tune.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <regex>
#include <set>
#include <sstream>

#include "core/http.h"

namespace boxwatch::backtest {
namespace {

std::string Fmt(const char* f, double v) {
  char b[48];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

double Sigmoid(double z) { return z >= 0 ? 1 / (1 + std::exp(-z)) : std::exp(z) / (1 + std::exp(z)); }

// Solves a x = b (a symmetric positive definite, small) by Gaussian
// elimination with partial pivoting; a and b are overwritten.
std::vector<double> Solve(std::vector<std::vector<double>> a, std::vector<double> b) {
  const size_t n = b.size();
  for (size_t c = 0; c < n; ++c) {
    size_t pivot = c;
    for (size_t r = c + 1; r < n; ++r) {
      if (std::abs(a[r][c]) > std::abs(a[pivot][c])) pivot = r;
    }
    std::swap(a[c], a[pivot]);
    std::swap(b[c], b[pivot]);
    if (std::abs(a[c][c]) < 1e-12) continue;
    for (size_t r = c + 1; r < n; ++r) {
      const double f = a[r][c] / a[c][c];
      for (size_t k = c; k < n; ++k) a[r][k] -= f * a[c][k];
      b[r] -= f * b[c];
    }
  }
  std::vector<double> x(n, 0);
  for (size_t i = n; i-- > 0;) {
    double s = b[i];
    for (size_t k = i + 1; k < n; ++k) s -= a[i][k] * x[k];
    x[i] = std::abs(a[i][i]) < 1e-12 ? 0 : s / a[i][i];
  }
  return x;
}

uint64_t Fnv(std::string_view s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

struct Example {
  std::vector<double> x;  // one per learned indicator
  std::set<std::string> fired;
  int y = 0;
  int fold = 0;
};

// The profile's score of a fired set with the given weights (family caps
// applied) and whether a critical indicator fired.
std::pair<double, bool> ScoreOf(const std::set<std::string>& fired, const operators::Profile& p,
                                const std::map<std::string, double>& weight_override) {
  std::array<double, operators::kFamilyCount> sum{};
  bool critical = false;
  for (const auto& spec : operators::KnownIndicators()) {
    if (!fired.count(spec.id)) continue;
    const auto& cfg = p.Indicator(spec.id);
    if (!cfg.enabled) continue;
    auto it = weight_override.find(spec.id);
    sum[static_cast<int>(spec.family)] += it == weight_override.end() ? cfg.weight : it->second;
    critical = critical || cfg.critical;
  }
  double score = 0;
  for (int f = 0; f < operators::kFamilyCount; ++f) score += std::min(sum[f], p.family_cap[f]);
  return {score, critical};
}

void Count(CvFigures* c, bool flagged, int y) {
  if (flagged && y) ++c->tp;
  if (flagged && !y) ++c->fp;
  if (!flagged && y) ++c->fn;
}

void Finish(CvFigures* c) {
  c->precision = c->tp + c->fp ? static_cast<double>(c->tp) / (c->tp + c->fp) : 0;
  c->recall = c->tp + c->fn ? static_cast<double>(c->tp) / (c->tp + c->fn) : 0;
}

}  // namespace

std::vector<double> FitLogistic(const std::vector<std::vector<double>>& x, const std::vector<int>& y, double l2) {
  const size_t d = x.empty() ? 0 : x[0].size();
  std::vector<double> beta(d + 1, 0);
  // Start the intercept at the base rate's log-odds.
  double pos = 0;
  for (int v : y) pos += v;
  const double rate = std::clamp(pos / std::max<size_t>(1, y.size()), 1e-4, 1 - 1e-4);
  beta[0] = std::log(rate / (1 - rate));
  // Penalised log-likelihood (to be maximised).
  auto objective = [&](const std::vector<double>& b) {
    double f = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      double z = b[0];
      for (size_t k = 0; k < d; ++k) z += b[k + 1] * x[i][k];
      // log sigmoid(z) and log(1 - sigmoid(z)), stable for large |z|.
      const double log1pexp = z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z));
      f += y[i] ? z - log1pexp : -log1pexp;
    }
    for (size_t k = 1; k <= d; ++k) f -= 0.5 * l2 * b[k] * b[k];
    return f;
  };
  for (int iter = 0; iter < 100; ++iter) {
    std::vector<std::vector<double>> h(d + 1, std::vector<double>(d + 1, 0));
    std::vector<double> g(d + 1, 0);
    for (size_t i = 0; i < x.size(); ++i) {
      double z = beta[0];
      for (size_t k = 0; k < d; ++k) z += beta[k + 1] * x[i][k];
      const double p = Sigmoid(z);
      const double w = std::max(p * (1 - p), 1e-9);
      const double r = y[i] - p;
      g[0] += r;
      h[0][0] += w;
      for (size_t k = 0; k < d; ++k) {
        if (x[i][k] == 0) continue;
        g[k + 1] += r * x[i][k];
        h[0][k + 1] += w * x[i][k];
        for (size_t m = 0; m < d; ++m) h[k + 1][m + 1] += w * x[i][k] * x[i][m];
      }
    }
    for (size_t k = 0; k < d; ++k) {
      h[k + 1][0] = h[0][k + 1];
      h[k + 1][k + 1] += l2;
      g[k + 1] -= l2 * beta[k + 1];
    }
    const std::vector<double> step = Solve(h, g);
    // Damped: halve the step until the penalised likelihood does not fall
    // (a full Newton step overshoots when a feature nearly separates).
    const double before = objective(beta);
    double t = 1;
    std::vector<double> next(d + 1);
    for (int halvings = 0; halvings < 40; ++halvings, t /= 2) {
      for (size_t k = 0; k <= d; ++k) next[k] = beta[k] + t * step[k];
      if (objective(next) >= before - 1e-12) break;
    }
    double moved = 0;
    for (size_t k = 0; k <= d; ++k) moved = std::max(moved, std::abs(next[k] - beta[k]));
    beta = next;
    if (moved < 1e-8) break;
  }
  return beta;
}

Result<TuneResult> Tune(const RunResult& run, const operators::Profile& profile, const TuneOptions& o) {
  if (o.folds < 2) return Error{Errc::kInvalidArgument, "--folds must be at least 2"};
  if (o.high_probability <= 0 || o.high_probability >= 1) {
    return Error{Errc::kInvalidArgument, "--high-probability must be between 0 and 1"};
  }
  TuneResult r;
  std::vector<Example> examples;
  for (const auto& [container, c] : run.containers) {
    if (!c.inspected) continue;
    Example e;
    e.fired.insert(c.fired_by_inspection.begin(), c.fired_by_inspection.end());
    e.y = c.seized ? 1 : 0;
    e.fold = static_cast<int>(Fnv(container) % static_cast<uint64_t>(o.folds));
    r.seized += e.y;
    if (c.randomly_selected) ++r.random;
    for (const auto& id : e.fired) {
      if (!profile.Indicator(id).enabled) continue;
      ++r.support[id];
      r.support_seized[id] += e.y;
    }
    examples.push_back(std::move(e));
  }
  r.examples = static_cast<int>(examples.size());
  if (r.seized == 0 || r.seized == r.examples) {
    return Error{Errc::kInvalidArgument, "the input has " + std::to_string(r.examples) + " inspected containers, " +
                                             std::to_string(r.seized) +
                                             " with a seizure: learning needs both seizures and clean inspections"};
  }
  for (const auto& spec : operators::KnownIndicators()) {
    const auto& cfg = profile.Indicator(spec.id);
    if (!cfg.enabled) continue;
    const int n = r.support.count(spec.id) ? r.support.at(spec.id) : 0;
    (n >= o.min_outcomes ? r.learned : r.too_few).push_back(spec.id);
  }
  if (r.learned.empty()) {
    return Error{Errc::kInvalidArgument, "no indicator fired on " + std::to_string(o.min_outcomes) +
                                             " or more inspected containers (--min-outcomes): nothing to learn"};
  }
  if (r.random == 0) {
    r.warnings.push_back(
        "no outcome comes from random selection: the weights learn only from boxes the profile chose, which biases "
        "them toward it (set random_selection in the profile)");
  }
  for (auto& e : examples) {
    for (const auto& id : r.learned) e.x.push_back(e.fired.count(id) ? 1.0 : 0.0);
  }
  auto fit = [&](int held_out, double l2) {
    std::vector<std::vector<double>> x;
    std::vector<int> y;
    for (const auto& e : examples) {
      if (e.fold == held_out) continue;
      x.push_back(e.x);
      y.push_back(e.y);
    }
    return FitLogistic(x, y, l2);
  };
  // The penalty: the least held-out log-loss.
  double best = INFINITY;
  for (double l2 : o.l2_grid) {
    double loss = 0;
    for (int k = 0; k < o.folds; ++k) {
      const auto beta = fit(k, l2);
      for (const auto& e : examples) {
        if (e.fold != k) continue;
        double z = beta[0];
        for (size_t j = 0; j < e.x.size(); ++j) z += beta[j + 1] * e.x[j];
        const double p = std::clamp(Sigmoid(z), 1e-12, 1 - 1e-12);
        loss -= e.y ? std::log(p) : std::log(1 - p);
      }
    }
    loss /= examples.size();
    r.cv_log_loss[l2] = loss;
    if (loss < best) {
      best = loss;
      r.l2 = l2;
    }
  }
  const double t_high = profile.threshold[v1::PRIORITY_HIGH];
  const double logit = std::log(o.high_probability / (1 - o.high_probability));
  auto weights_of = [&](const std::vector<double>& beta, double* scale) -> Result<std::map<std::string, double>> {
    if (logit - beta[0] <= 0) {
      return Error{Errc::kInvalidArgument,
                   "the modelled seizure rate of a box with no indicator is already above --high-probability " +
                       Fmt("%.2f", o.high_probability) + ": raise it"};
    }
    *scale = t_high / (logit - beta[0]);
    std::map<std::string, double> w;
    for (size_t j = 0; j < r.learned.size(); ++j) {
      const std::string& id = r.learned[j];
      auto [lo, hi] = o.bounds.count(id) ? o.bounds.at(id) : std::pair{o.min_weight, o.max_weight};
      w[id] = std::round(std::clamp(beta[j + 1] * *scale, lo, hi));
    }
    return w;
  };
  // Held-out precision and recall at HIGH: learned weights against the current ones.
  for (int k = 0; k < o.folds; ++k) {
    double scale = 0;
    auto w = weights_of(fit(k, r.l2), &scale);
    if (!w.ok()) return w.error();
    for (const auto& e : examples) {
      if (e.fold != k) continue;
      auto [tuned, tuned_critical] = ScoreOf(e.fired, profile, *w);
      auto [current, current_critical] = ScoreOf(e.fired, profile, {});
      Count(&r.cv_tuned, tuned_critical || tuned >= t_high, e.y);
      Count(&r.cv_current, current_critical || current >= t_high, e.y);
    }
  }
  Finish(&r.cv_tuned);
  Finish(&r.cv_current);
  std::vector<std::vector<double>> x;
  std::vector<int> y;
  for (const auto& e : examples) {
    x.push_back(e.x);
    y.push_back(e.y);
  }
  const auto beta = FitLogistic(x, y, r.l2);
  r.intercept = beta[0];
  for (size_t j = 0; j < r.learned.size(); ++j) r.coefficient[r.learned[j]] = beta[j + 1];
  auto w = weights_of(beta, &r.scale);
  if (!w.ok()) return w.error();
  for (const auto& [id, after] : *w) r.weights[id] = {profile.Indicator(id).weight, after};
  return r;
}

std::string TuneResult::Text() const {
  std::ostringstream out;
  out << examples << " inspected containers, " << seized << " with a seizure, " << random
      << " picked by random selection\n";
  out << "penalty (L2) " << Fmt("%g", l2) << " chosen by cross-validation; held-out log-loss per penalty:";
  for (const auto& [k, v] : cv_log_loss) out << " " << Fmt("%g", k) << "=" << Fmt("%.4f", v);
  out << "\nintercept " << Fmt("%.3f", intercept) << ", " << Fmt("%.2f", scale) << " score points per unit of log-odds\n\n";
  out << "  indicator                        support seized  log-odds   weight before -> after\n";
  for (const auto& id : learned) {
    char b[160];
    std::snprintf(b, sizeof b, "  %-32s %7d %6d  %8.3f   %6.0f -> %.0f\n", id.c_str(), support.at(id),
                  support_seized.count(id) ? support_seized.at(id) : 0, coefficient.at(id), weights.at(id).first,
                  weights.at(id).second);
    out << b;
  }
  if (!too_few.empty()) {
    out << "\ntoo few outcomes to learn from (weight kept):";
    for (const auto& id : too_few) out << " " << id << " (" << (support.count(id) ? support.at(id) : 0) << ")";
    out << "\n";
  }
  auto cv = [&](const char* name, const CvFigures& c) {
    out << "  " << name << ": precision " << Fmt("%.3f", c.precision) << " (" << c.tp << "/" << c.tp + c.fp
        << "), recall " << Fmt("%.3f", c.recall) << " (" << c.tp << "/" << c.tp + c.fn << ")\n";
  };
  out << "\ncross-validated at the HIGH threshold, over inspected containers:\n";
  cv("current weights", cv_current);
  cv("learned weights", cv_tuned);
  for (const auto& w : warnings) out << "\nwarning: " << w << "\n";
  return out.str();
}

std::string TuneResult::Json() const {
  std::ostringstream out;
  out << "{\"examples\":" << examples << ",\"seized\":" << seized << ",\"random\":" << random
      << ",\"l2\":" << Fmt("%g", l2) << ",\"intercept\":" << Fmt("%.6f", intercept) << ",\"scale\":"
      << Fmt("%.6f", scale) << ",\"indicators\":[";
  for (size_t i = 0; i < learned.size(); ++i) {
    const auto& id = learned[i];
    out << (i ? "," : "") << "{\"id\":\"" << id << "\",\"support\":" << support.at(id) << ",\"seized\":"
        << (support_seized.count(id) ? support_seized.at(id) : 0) << ",\"coefficient\":"
        << Fmt("%.6f", coefficient.at(id)) << ",\"weight_before\":" << Fmt("%g", weights.at(id).first)
        << ",\"weight_after\":" << Fmt("%g", weights.at(id).second) << "}";
  }
  out << "],\"too_few\":[";
  for (size_t i = 0; i < too_few.size(); ++i) {
    out << (i ? "," : "") << "{\"id\":\"" << too_few[i] << "\",\"support\":"
        << (support.count(too_few[i]) ? support.at(too_few[i]) : 0) << "}";
  }
  auto cv = [&](const CvFigures& c) {
    return "{\"precision\":" + Fmt("%.4f", c.precision) + ",\"recall\":" + Fmt("%.4f", c.recall) +
           ",\"true_positives\":" + std::to_string(c.tp) + ",\"false_positives\":" + std::to_string(c.fp) +
           ",\"false_negatives\":" + std::to_string(c.fn) + "}";
  };
  out << "],\"cv_high\":{\"current\":" << cv(cv_current) << ",\"tuned\":" << cv(cv_tuned) << "},\"warnings\":[";
  for (size_t i = 0; i < warnings.size(); ++i) out << (i ? "," : "") << "\"" << http::JsonEscape(warnings[i]) << "\"";
  out << "]}";
  return out.str();
}

Result<std::string> TunedProfileYaml(const std::string& yaml, const std::string& source, const TuneResult& result,
                                     const std::string& version) {
  std::vector<std::string> lines;
  {
    std::istringstream in(yaml);
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
  }
  auto indent = [](const std::string& l) { return l.find_first_not_of(' '); };
  bool version_set = false;
  for (auto& l : lines) {
    if (l.rfind("version:", 0) == 0) {
      l = "version: \"" + version + "\"";
      version_set = true;
      break;
    }
  }
  if (!version_set) return Error{Errc::kInvalidArgument, source + ": no top-level 'version:' line to update"};
  const std::regex weight_re(R"((weight:\s*)(-?[0-9]+(\.[0-9]*)?))");
  for (const auto& [id, ba] : result.weights) {
    const std::string value = Fmt("%g", ba.second);
    bool done = false;
    for (size_t i = 0; i < lines.size() && !done; ++i) {
      const size_t at = indent(lines[i]);
      if (at == std::string::npos || lines[i].compare(at, id.size() + 1, id + ":") != 0) continue;
      // Flow style on the line itself, or a block below it.
      for (size_t j = i; j < lines.size() && !done; ++j) {
        if (j > i) {
          const size_t in = indent(lines[j]);
          if (in == std::string::npos || lines[j][in] == '#') continue;
          if (in <= at) break;
        }
        std::smatch m;
        if (std::regex_search(lines[j], m, weight_re)) {
          lines[j] = m.prefix().str() + m[1].str() + value + m.suffix().str();
          done = true;
        }
      }
      if (!done) break;
    }
    if (!done) return Error{Errc::kInvalidArgument, source + ": no 'weight:' found for indicator " + id};
  }
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  auto check = operators::ParseProfile(out, source + " (tuned)");
  if (!check.ok()) return check.error();
  for (const auto& [id, ba] : result.weights) {
    if (std::abs(check->Indicator(id).weight - ba.second) > 1e-9) {
      return Error{Errc::kInvalidArgument, "the tuned profile does not read back weight " + Fmt("%g", ba.second) + " for " + id};
    }
  }
  return out;
}

}  // namespace boxwatch::backtest
