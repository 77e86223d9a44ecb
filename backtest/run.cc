// One backtest run: the input through TaskCore under one profile.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <memory>
#include <queue>
#include <set>

#include "backtest/backtest.h"
#include "core/types.h"
#include "pipeline/task_core.h"

namespace boxwatch::backtest {
namespace {

double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

// What a container's state says, merged into its summary (a container
// whose state expired and came back is merged).
void Summarise(const operators::RiskEngine& engine, const v1::ContainerState& s, ContainerSummary& c) {
  c.max_priority = std::max(c.max_priority, s.alerts().last_priority());
  c.score = std::max(c.score, engine.Score(s));
  std::set<std::string> fired(c.fired.begin(), c.fired.end());
  for (const auto& f : s.fired()) fired.insert(f.id());
  c.fired.assign(fired.begin(), fired.end());
  if (s.outcomes_size() > 0 && !c.inspected) {
    const int64_t at = s.outcomes(0).inspected_at_ms();  // outcomes are ordered by inspection time
    for (const auto& f : s.fired()) {
      if (f.fired_at_ms() <= at) c.fired_by_inspection.push_back(f.id());
    }
    std::sort(c.fired_by_inspection.begin(), c.fired_by_inspection.end());
  }
  for (const auto& o : s.outcomes()) {
    c.inspected = true;
    if (o.result() == v1::InspectionOutcome::RESULT_SEIZURE) c.seized = true;
  }
  c.randomly_selected = engine.profile().RandomlySelected(s.container_number());
  if (c.region.empty()) {
    if (const v1::Manifest* m = operators::ManifestAsOf(s, operators::kEndOfTime)) {
      c.region = engine.profile().RegionOfLocode(m->port_of_discharge());
    }
  }
}

}  // namespace

RunResult Run(const Input& input, const operators::Profile& profile, const RunOptions& options) {
  RunResult result;
  const double cpu0 = CpuSeconds();
  const auto wall0 = std::chrono::steady_clock::now();
  const int64_t now = options.now_ms > 0 ? options.now_ms : NowMs();
  operators::ReferenceData reference = input.reference;
  operators::RiskEngine engine(&profile, &reference);
  size_t done = 0;
  pipeline::TaskOutput out;
  auto take = [&](const pipeline::TaskOutput& o) {
    for (const auto& a : o.alerts) {
      if (a.event_time_ms() >= options.from_ms) result.alerts.push_back(a);
    }
    // Seizure feedback reaches every later evaluation at once.
    for (const auto& u : o.feedback) (void)operators::ApplyReferenceEntry(&reference, u.key, u.value);
  };
  // One task per partition, each fed in its worker's merged order; the
  // tasks take turns by record time (ties to the lower partition), so a
  // seizure's feedback reaches every partition's later records, as it
  // reaches every worker soon after the seizure.
  struct Task {
    pipeline::MemoryStates states;
    std::unique_ptr<pipeline::TaskCore> core;
    std::vector<pipeline::InputRecord> merged;
    size_t next = 0;
  };
  std::vector<std::unique_ptr<Task>> tasks;
  for (const auto& [partition, records] : input.partitions) {
    auto task = std::make_unique<Task>();
    task->states.OnErase([&](const v1::ContainerState& s) { Summarise(engine, s, result.containers[s.container_number()]); });
    task->core = std::make_unique<pipeline::TaskCore>(options.task, &engine, &task->states);
    if (Status s = task->core->Start(""); !s.ok()) std::abort();  // no metadata: a fresh task cannot fail
    pipeline::InputMerge merge(now, options.task.max_future_ms);
    for (const auto& r : records) {
      if (r.timestamp_ms >= options.to_ms) continue;
      merge.Add({.input = r.input, .key = r.key, .value = r.value, .content_type = r.content_type,
                 .timestamp_ms = r.timestamp_ms});
    }
    while (auto rec = merge.Next()) task->merged.push_back(*rec);
    tasks.push_back(std::move(task));
  }
  auto key = [](const pipeline::InputRecord& r) {
    return r.future_timestamp ? std::numeric_limits<int64_t>::min() : r.timestamp_ms;
  };
  // Min-heap of (time of the task's next record, task index).
  std::priority_queue<std::pair<int64_t, size_t>, std::vector<std::pair<int64_t, size_t>>, std::greater<>> turn;
  for (size_t t = 0; t < tasks.size(); ++t) {
    if (!tasks[t]->merged.empty()) turn.push({key(tasks[t]->merged[0]), t});
  }
  while (!turn.empty()) {
    Task& task = *tasks[turn.top().second];
    const size_t t = turn.top().second;
    turn.pop();
    const pipeline::InputRecord& rec = task.merged[task.next++];
    if (Status s = task.core->Process(rec, now, &out); !s.ok()) {
      ++result.dead_letters["error: " + s.message()];
    } else {
      if (out.rejected) ++result.dead_letters[operators::RejectReasonName(out.rejected->reason)];
      take(out);
      ++result.records;
    }
    if (options.progress && ++done % 4096 == 0) options.progress(done, input.records);
    if (task.next < task.merged.size()) turn.push({key(task.merged[task.next]), t});
  }
  for (auto& task : tasks) {
    // The end of the input: an idle, caught-up task releases quiet containers.
    const int64_t idle_at = std::min(now, options.to_ms);
    if (task->core->HasDueBy(idle_at) && task->core->Idle(idle_at, &out).ok()) take(out);
    const pipeline::TaskCounters& c = task->core->counters();
    result.counters.processed += c.processed;
    result.counters.late += c.late;
    result.counters.expired += c.expired;
    result.counters.feedback += c.feedback;
    result.counters.clock_capped += c.clock_capped;
    result.counters.quiet_releases += c.quiet_releases;
    result.counters.capacity_releases += c.capacity_releases;
    for (const auto& [k, s] : task->states.states()) Summarise(engine, s, result.containers[s.container_number()]);
  }
  for (const auto& a : result.alerts) {
    ContainerSummary& c = result.containers[a.container_number()];
    if (c.region.empty() && a.regions_size() > 0) c.region = a.regions(0);
  }
  if (options.progress) options.progress(input.records, input.records);
  result.cpu_seconds = CpuSeconds() - cpu0;
  result.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  return result;
}

}  // namespace boxwatch::backtest
