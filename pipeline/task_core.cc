#include "pipeline/task_core.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>
#include <variant>

#include "core/types.h"
#include "operators/fix_window.h"
#include "pipeline/state_parts.h"
#include "pipeline/worker_config.h"

namespace boxwatch::pipeline {
namespace {

// The size of `s` serialised, counting its GPS fixes as the reserve kept for
// them instead of reading each one: an upper bound while the window holds no
// more fixes than the engine keeps (WorkerConfig::kGpsGrowthReserveBytes is
// sized for those, each with its texts at the engine's limit). The fixes are
// moved aside and back.
size_t SizeWithReserveForFixes(v1::ContainerState& s, int64_t gps_reserve_bytes) {
  if (!s.has_gps() || s.gps().live_fixes().empty()) return s.ByteSizeLong();
  std::string fixes, texts;
  v1::GpsTrack* g = s.mutable_gps();
  g->mutable_live_fixes()->swap(fixes);
  g->mutable_live_texts()->swap(texts);
  const size_t rest = s.ByteSizeLong();
  g->mutable_live_fixes()->swap(fixes);
  g->mutable_live_texts()->swap(texts);
  return rest + static_cast<size_t>(gps_reserve_bytes);
}

// The size of `s` serialised whole with its window as protobuf points (the
// size the state budget is judged by). The window is converted for the
// count and back: for the rare state near the budget.
size_t StateByteSize(v1::ContainerState& s) {
  if (!s.has_gps() || s.gps().live_fixes().empty()) return s.ByteSizeLong();
  v1::GpsTrack* g = s.mutable_gps();
  google::protobuf::RepeatedPtrField<v1::GpsPoint> points;
  operators::ToPoints(*g, 0, operators::FixWindow(*g).size(), &points);
  v1::GpsTrack window;  // the records, aside while the points are counted
  window.mutable_live_fixes()->swap(*g->mutable_live_fixes());
  window.mutable_live_texts()->swap(*g->mutable_live_texts());
  g->mutable_points()->Swap(&points);
  const size_t size = s.ByteSizeLong();
  g->mutable_points()->Swap(&points);
  g->mutable_live_fixes()->swap(*window.mutable_live_fixes());
  g->mutable_live_texts()->swap(*window.mutable_live_texts());
  return size;
}

using operators::RejectReason;
using operators::RejectReasonName;

constexpr std::string_view kMetaFormat = "clock 1";

operators::Rejection Reject(RejectReason reason, std::string detail) {
  operators::Rejection r;
  r.reason = reason;
  r.detail = std::move(detail);
  return r;
}

bool ParseInt(std::string_view text, int64_t* out) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

TaskOptions TaskOptions::From(const WorkerConfig& config) {
  TaskOptions o;
  o.allowed_lateness_ms = config.allowed_lateness_ms;
  o.max_future_ms = config.max_future_ms;
  o.state_ttl_ms = config.state_ttl_ms;
  o.expiry_sweep_interval_ms = config.expiry_sweep_interval_ms;
  o.max_value_bytes = config.max_value_bytes;
  o.state_limit_bytes = config.StateLimit();
  o.gps_reserve_bytes = WorkerConfig::kGpsGrowthReserveBytes;
  o.state_budget_bytes = o.state_limit_bytes - o.gps_reserve_bytes;
  o.owner = "group " + config.group_id + " prefix " + config.topic_prefix;
  o.adopt_foreign_state = config.adopt_foreign_state;
  return o;
}

TaskCore::TaskCore(const TaskOptions& options, const operators::RiskEngine* engine, ContainerStates* states)
    : options_(options), engine_(engine), states_(states) {}

void InputMerge::Add(InputRecord record) {
  record.future_timestamp = record.timestamp_ms > now_ms_ + max_future_ms_;
  inputs_[std::clamp(record.input, 0, 3)].push_back(record);
}

std::optional<InputRecord> InputMerge::Next() {
  auto key = [](const InputRecord& r) { return r.future_timestamp ? std::numeric_limits<int64_t>::min() : r.timestamp_ms; };
  int best = -1;
  for (int i = 0; i < 4; ++i) {
    if (inputs_[i].empty()) continue;
    if (best < 0 || key(inputs_[i].front()) < key(inputs_[best].front())) best = i;
  }
  if (best < 0) return std::nullopt;
  InputRecord r = inputs_[best].front();
  inputs_[best].pop_front();
  return r;
}

Result<std::vector<v1::Alert>> OfflineAlerts(const std::map<int32_t, std::vector<InputRecord>>& partitions,
                                             const operators::Profile& profile,
                                             const operators::ReferenceData& reference, const TaskOptions& options,
                                             int64_t now_ms, std::map<std::string, int64_t>* rejected) {
  operators::ReferenceData ref = reference;
  std::vector<operators::RiskEngine::ReferenceUpdate> feedback;
  auto pass = [&](bool collect) -> Result<std::vector<v1::Alert>> {
    const operators::RiskEngine engine(&profile, &ref);
    std::vector<v1::Alert> alerts;
    if (rejected != nullptr) rejected->clear();
    for (const auto& [partition, records] : partitions) {
      InputMerge merge(now_ms, options.max_future_ms);
      for (const auto& r : records) merge.Add(r);
      MemoryStates states;
      TaskCore core(options, &engine, &states);
      if (Status s = core.Start(""); !s.ok()) return s.error();
      TaskOutput out;
      while (auto record = merge.Next()) {
        if (Status s = core.Process(*record, now_ms, &out); !s.ok()) return s.error();
        alerts.insert(alerts.end(), out.alerts.begin(), out.alerts.end());
        if (rejected != nullptr && out.rejected) ++(*rejected)[operators::RejectReasonName(out.rejected->reason)];
        if (collect) feedback.insert(feedback.end(), out.feedback.begin(), out.feedback.end());
      }
    }
    return alerts;
  };
  auto first = pass(true);
  if (!first.ok() || feedback.empty()) return first;
  for (const auto& u : feedback) {
    if (Status s = operators::ApplyReferenceEntry(&ref, u.key, u.value); !s.ok()) return s.error();
  }
  return pass(false);
}

// ------------------------------------------------------------ metadata

// "clock 1\n<P>\n<P at the last sweep>\n<open block, space-separated>\n
// owner <owner>\nhorizon <idle horizon>"; an unset value is empty (and
// metadata without the horizon line has none).
std::string TaskCore::EncodeMeta() const {
  std::string out(kMetaFormat);
  auto num = [&](int64_t v) { out += "\n" + (v == kUnset ? std::string() : std::to_string(v)); };
  num(p_ms_);
  num(last_sweep_ms_);
  out += "\n";
  for (size_t i = 0; i < block_.size(); ++i) {
    if (i > 0) out += ' ';
    out += std::to_string(block_[i]);
  }
  out += "\nowner " + options_.owner;
  out += "\nhorizon " + (idle_horizon_ms_ == kUnset ? std::string() : std::to_string(idle_horizon_ms_));
  // A sweep deferred behind the gate is owed by whoever continues the task.
  out += sweep_deferred_ ? "\nsweep owed" : "\nsweep done";
  return out;
}

Status TaskCore::Start(std::string_view meta) {
  p_ms_ = kUnset;
  last_sweep_ms_ = kUnset;
  idle_horizon_ms_ = kUnset;
  bool sweep_owed = true;
  block_.clear();
  std::vector<std::string_view> lines;
  for (size_t at = 0; at <= meta.size();) {
    const size_t nl = std::min(meta.find('\n', at), meta.size());
    lines.push_back(meta.substr(at, nl - at));
    at = nl + 1;
  }
  // Metadata of the per-partition watermark (a number first) carries no
  // clock: the task starts one; pending containers are found below.
  foreign_owner_.clear();
  if (!lines.empty() && lines[0] == kMetaFormat) {
    constexpr std::string_view kOwner = "owner ";
    if (lines.size() >= 5 && lines[4].substr(0, kOwner.size()) == kOwner) {
      const std::string_view owner = lines[4].substr(kOwner.size());
      if (owner != options_.owner && !options_.adopt_foreign_state) {
        foreign_owner_ = std::string(owner);
        return Error{Errc::kInvalidArgument,
                     "the state was written by " + std::string(owner) + ", not by this worker's " + options_.owner +
                         ": it records what that pipeline has seen, and taking it over would make this group's "
                         "input late and repeat its alert ids. Give each group its own topic prefix, or start "
                         "with an empty state_dir on a prefix whose changelog is this group's, or set "
                         "state_owner: adopt to take the state over"};
      }
    }
    if (lines.size() < 4) return Error{Errc::kFatal, "task metadata is cut short: " + std::string(meta.substr(0, 64))};
    int64_t v = 0;
    if (!lines[1].empty()) {
      if (!ParseInt(lines[1], &v)) return Error{Errc::kFatal, "task metadata: bad partition clock"};
      p_ms_ = v;
    }
    if (!lines[2].empty()) {
      if (!ParseInt(lines[2], &v)) return Error{Errc::kFatal, "task metadata: bad sweep time"};
      last_sweep_ms_ = v;
    }
    constexpr std::string_view kHorizon = "horizon ";
    if (lines.size() >= 6 && lines[5].substr(0, kHorizon.size()) == kHorizon && lines[5].size() > kHorizon.size()) {
      if (!ParseInt(lines[5].substr(kHorizon.size()), &v)) return Error{Errc::kFatal, "task metadata: bad horizon"};
      idle_horizon_ms_ = v;
    }
    if (lines.size() >= 7 && lines[6] == "sweep done") sweep_owed = false;
    std::string_view rest = lines[3];
    while (!rest.empty()) {
      const size_t sp = std::min(rest.find(' '), rest.size());
      if (!ParseInt(rest.substr(0, sp), &v)) return Error{Errc::kFatal, "task metadata: bad block entry"};
      block_.push_back(v);
      rest = rest.substr(std::min(sp + 1, rest.size()));
    }
  }
  due_.clear();
  due_of_.clear();
  gated_.clear();
  gated_of_.clear();
  // A sweep the last incarnation deferred (its containers held by the gate)
  // runs once they are released; metadata written before this was recorded
  // may owe one.
  sweep_deferred_ = sweep_owed;
  containers_ = 0;
  oldest_event_ms_ = operators::kEndOfTime;
  std::string overlong;
  Status listed = states_->ForEach([&](const std::string& key, const ContainerStates::Summary& s) {
    ++containers_;
    oldest_event_ms_ = std::min(oldest_event_ms_, s.last_event_ms);
    if (key.size() > kMaxIndexKey) {
      // Not a container number: the store holds a state no join could
      // have made, and the indexes could not tell it from its prefix.
      if (overlong.empty()) overlong = key;
      return;
    }
    // A state written before due times were kept has pending items but no
    // due time: it is due at once, and the first walk sets it.
    if (s.due_ms > 0) {
      SetDue(key, s.due_ms);
    } else if (s.pending) {
      SetDue(key, 1);
    }
    // The gate may have held it: the first SetGate looks at it again. Only
    // if something of it is before its own bound, or it is due by the
    // partition clock: the rest wait for their own events, gate or not (and
    // loading each of them to find that out made a start after a restore of
    // a million containers a second or two slower).
    if (s.pending) {
      const int64_t L = options_.allowed_lateness_ms;
      const int64_t earliest = s.due_ms > 0 ? s.due_ms - L - 1 : kUnset;
      if (s.due_ms <= 0 || earliest < s.own_progress_ms - L || (p_ms_ != kUnset && s.due_ms <= p_ms_)) {
        SetGated(key, earliest, -1);
      }
    }
    examine_gated_ = true;
  });
  if (!listed.ok()) return listed;
  if (!overlong.empty()) {
    return Error{Errc::kFatal, "state store holds a state under '" + ClipText(overlong, 40) + "' (" +
                                   std::to_string(overlong.size()) + " bytes), not a container number (at most " +
                                   std::to_string(kMaxIndexKey) + " bytes): the store is not this pipeline's"};
  }
  return Status::Ok();
}

// ------------------------------------------------------------ processing

Status TaskCore::Process(const InputRecord& record, int64_t now_ms, TaskOutput* out) {
  out->Clear();
  if (record.future_timestamp) {
    // Dead-lettered, and kept out of the partition clock.
    out->rejected = Reject(RejectReason::kFutureTimestamp,
                           "record timestamp " + FormatUtc(record.timestamp_ms) + " is more than max_future_ms (" +
                               std::to_string(options_.max_future_ms) + " ms) ahead of the worker's clock " +
                               FormatUtc(now_ms));
    return Status::Ok();
  }
  // Before the first block closes there is no P: the horizon starts at the
  // first record's time (a function of the input, like P), which the
  // task's own evaluations cannot pass before P exists (a block spans at
  // most 60 s of record time, less than 2L).
  if (feedback_horizon_ms() == kUnset) idle_horizon_ms_ = std::min(record.timestamp_ms, now_ms);
  if (Status s = Join(record, now_ms, out); !s.ok()) return s;
  if (Tick(record.timestamp_ms, now_ms)) {
    if (Status s = Walk(now_ms, out); !s.ok()) return s;
    if (SweepDue()) {
      // Containers held by the gate are pending and so not expired: the
      // sweep runs again once the gate has released them.
      if (!gated_.empty()) sweep_deferred_ = true;
      if (Status s = Sweep(); !s.ok()) return s;
    }
  }
  return Status::Ok();
}

bool TaskCore::SweepDue() const {
  return p_ms_ != kUnset && (last_sweep_ms_ == kUnset || p_ms_ - last_sweep_ms_ >= options_.expiry_sweep_interval_ms);
}

// What a container's own events let it release to: its progress - L, or,
// once it has fixes, its tracker's progress - L (never more, since progress
// includes the fixes). Every item that is not late is then at or after the
// bound: nothing joins behind an evaluation, whatever the timing.
int64_t TaskCore::OwnBound(const v1::ContainerState& s) const {
  return OwnProgress(s) - options_.allowed_lateness_ms;
}

void TaskCore::FetchAhead(std::string_view key, int step) const {
  if (step == 0) {
    states_->Prefetch(key);
    const IndexKey k = IndexKey::Of(key);
    due_of_.prefetch(k);
    if (!gated_of_.empty()) gated_of_.prefetch(k);
    return;
  }
  if (step == 1) {
    states_->PrefetchEntry(key);
    return;
  }
  const v1::ContainerState* s = states_->Peek(key);
  if (s != nullptr) PrefetchState(*s, step - 2);
}

Status TaskCore::Join(const InputRecord& record, int64_t now_ms, TaskOutput* out) {
  // The record's key names its container: the state's look-up starts
  // fetching while the value is decoded (already on its way when the
  // caller fetched ahead).
  states_->Prefetch(record.key);
  auto enc = operators::EncodingFromHeader(record.content_type);
  if (auto* r = std::get_if<operators::Rejection>(&enc)) {
    out->rejected = *r;
    return Status::Ok();
  }
  const operators::RecordView view{record.key, record.value, std::get<operators::Encoding>(enc)};
  const ProcessingTimeMs now(now_ms);
  const operators::DecodeLimits limits{.max_value_bytes = static_cast<size_t>(options_.max_value_bytes),
                                       .max_future_ms = options_.max_future_ms};
  auto& event = event_;
  auto take = [&](auto decoded) {
    if (auto* r = std::get_if<operators::Rejection>(&decoded)) {
      out->rejected = *r;
    } else {
      event = std::move(std::get<0>(decoded));
    }
  };
  switch (record.input) {
    case 0: take(operators::DecodeManifest(view, now, limits)); break;
    case 1: take(operators::DecodeScan(view, now, limits)); break;
    case 2: {
      // Decoded in place: the message of the last GPS record is reused.
      auto* gps = std::get_if<v1::GpsEvent>(&event);
      if (gps == nullptr) gps = &event.emplace<v1::GpsEvent>();
      if (auto rejected = operators::DecodeGpsInto(view, now, limits, gps)) out->rejected = *std::move(rejected);
      break;
    }
    default: take(operators::DecodeOutcome(view, now, limits)); break;
  }
  if (out->rejected) return Status::Ok();

  const std::string key(record.key);
  auto loaded = states_->Get(key);
  if (!loaded.ok()) return loaded.error();
  v1::ContainerState fresh;
  v1::ContainerState* state = *loaded != nullptr ? *loaded : &fresh;
  const int64_t L = options_.allowed_lateness_ms;
  // A container's first event is never late: it has no progress yet. A fix
  // is judged against its tracker's progress (the fixes before it), so that
  // no other clock (a declaration filed late, a portal's) makes it late; the
  // release waits for the tracker in turn (OwnBound). A container's first
  // fix is late only behind what was already evaluated.
  const bool gps_event = std::holds_alternative<v1::GpsEvent>(event);
  const int64_t own_progress = gps_event ? state->gps().progress_ms() : state->progress_ms();
  const int64_t late_before = state == &fresh                  ? std::numeric_limits<int64_t>::min()
                              : gps_event && own_progress == 0 ? state->released_before_ms()
                                                               : own_progress - L;
  // A declaration may grow the state past what one changelog record can
  // carry: when it might, keep the state as it was to put back. GPS fixes
  // are bounded by the window and their text limits, for which the reserve
  // is kept free.
  std::optional<v1::ContainerState> before;
  const bool is_gps = std::holds_alternative<v1::GpsEvent>(event);
  if (options_.state_budget_bytes > 0 && !is_gps) {
    const int64_t room = options_.state_budget_bytes - static_cast<int64_t>(record.value.size());
    // A bound first that reads no fix (they count as their reserve, which
    // holds the most fixes the engine keeps, with their texts cut to its
    // limit); the exact size only when the bound says it may matter, so the
    // copy is kept in exactly the cases it was kept in before.
    const operators::EngineLimits& limits = engine_->limits();
    const bool fixes_within_reserve =
        !state->has_gps() ||
        operators::FixWindow(state->gps()).size() <= limits.max_gps_points + limits.max_unevaluated_fixes + 1;
    if ((!fixes_within_reserve ||
         static_cast<int64_t>(SizeWithReserveForFixes(*state, options_.gps_reserve_bytes)) > room) &&
        static_cast<int64_t>(StateByteSize(*state)) > room) {
      before = *state;
    }
  }
  int64_t event_ms = 0;
  bool is_outcome = false;
  const operators::JoinResult joined = std::visit(
      [&](const auto& e) {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, v1::Manifest>) {
          event_ms = e.declared_at_ms();
          return engine_->ApplyManifest(*state, e, late_before);
        } else if constexpr (std::is_same_v<T, v1::ScanResult>) {
          event_ms = e.scanned_at_ms();
          return engine_->ApplyScan(*state, e, late_before);
        } else if constexpr (std::is_same_v<T, v1::GpsEvent>) {
          event_ms = e.fix_time_ms();
          return engine_->ApplyGps(*state, e, late_before);
        } else {
          event_ms = e.inspected_at_ms();
          is_outcome = true;
          return engine_->ApplyOutcome(*state, e, late_before);
        }
      },
      event);
  if (joined == operators::JoinResult::kLate) {
    ++counters_.late;
    out->rejected = Reject(RejectReason::kLate,
                           event_ms >= late_before
                               ? "event time " + FormatUtc(event_ms) + " is older than every fix of " + key +
                                     "'s full window of evaluated fixes"
                               : "event time " + FormatUtc(event_ms) + " is more than allowed_lateness_ms (" +
                                     std::to_string(L) + " ms) behind " + key + (gps_event ? "'s tracker's progress " : "'s progress ") +
                                     FormatUtc(own_progress));
    return Status::Ok();
  }
  // Windows drop their evaluated items beyond the limits before the size is
  // judged, as they will at the release below.
  if (before && joined == operators::JoinResult::kApplied) engine_->Trim(*state);
  if (before && joined == operators::JoinResult::kApplied &&
      static_cast<int64_t>(StateByteSize(*state)) > options_.state_budget_bytes) {
    const size_t grown = StateByteSize(*state);
    *state = std::move(*before);
    out->rejected = Reject(
        RejectReason::kStateTooLarge,
        "joining this " + std::to_string(record.value.size()) + "-byte event would make the state of " + key + " " +
            std::to_string(grown) + " bytes; the limit is " + std::to_string(options_.state_budget_bytes) +
            " (max_state_bytes " + std::to_string(options_.state_limit_bytes) + " less " +
            std::to_string(options_.gps_reserve_bytes) + " kept for GPS fixes)");
    return Status::Ok();
  }
  ++counters_.processed;
  if (joined == operators::JoinResult::kDuplicate) return Status::Ok();
  if (is_outcome || std::holds_alternative<v1::Manifest>(event)) {
    // Feedback (a seizure lists the consignee; a first declaration of an
    // under-filled box of sensitive goods lists it under its consignee)
    // rides in this transaction; every worker applies it from the reference
    // topic, as of event time.
    const int64_t horizon = feedback_horizon_ms();
    const int64_t not_before = horizon == kUnset ? 0 : horizon + 1;
    out->feedback = is_outcome ? engine_->FeedbackFor(*state, std::get<v1::InspectionOutcome>(event), not_before,
                                                      options_.allowed_lateness_ms)
                               : engine_->ConsignmentFor(std::get<v1::Manifest>(event), not_before,
                                                         options_.allowed_lateness_ms);
    out->feedback_timestamp_ms = std::min(event_ms, now_ms);
    counters_.feedback += out->feedback.size();
  }
  if (state == &fresh) {
    state = states_->Put(key, std::move(fresh));
    ++containers_;
  } else if (Status d = states_->MarkDirty(key, is_gps ? ContainerStates::kMovement
                                                       : ContainerStates::kMovement | ContainerStates::kDeclaration);
             !d.ok()) {
    return d;
  }
  if (!is_outcome) {
    // Progress follows the container's own events, capped at the wall clock
    // (a device clock ahead of it) and at P + L (replays, where the wall
    // clock is far ahead of the data).
    int64_t capped = std::min(event_ms, now_ms);
    if (p_ms_ != kUnset) capped = std::min(capped, p_ms_ + L);
    if (capped < event_ms) ++counters_.clock_capped;
    state->set_progress_ms(std::max(state->progress_ms(), capped));
    if (gps_event && joined == operators::JoinResult::kApplied) {
      v1::GpsTrack* track = state->mutable_gps();
      track->set_progress_ms(std::max(track->progress_ms(), capped));
      // What can no longer be joined before: the window's fixes earlier than
      // this are final, and storage keeps them in chunks written once.
      track->set_final_before_ms(std::max(track->final_before_ms(), track->progress_ms() - L));
    }
  }
  state->set_expires_at_ms(state->last_event_ms() + options_.state_ttl_ms);
  oldest_event_ms_ = std::min(oldest_event_ms_, state->last_event_ms());
  if (Release(key, *state, OwnBound(*state), now_ms, out)) {
    if (Status d = states_->MarkDirty(key, ContainerStates::kEvaluation); !d.ok()) return d;
  }
  return Status::Ok();
}

bool TaskCore::Release(const std::string& key, v1::ContainerState& s, int64_t bound, int64_t now_ms,
                       TaskOutput* out) {
  const int64_t released = s.released_before_ms();
  // Emit time 0: the worker puts the processing time in a header, so the
  // alert's bytes depend on the input only.
  const size_t before = out->alerts.size();
  // One look-up of the held entry serves the latency attribution and the
  // gate's bookkeeping below (the engine does not touch gated_of_).
  const IndexKey index_key = IndexKey::Of(key);
  const HeldEntry held = gated_of_.empty() ? gated_of_.end() : gated_of_.find(index_key);
  const int64_t ingest_ms = held != gated_of_.end() ? held->second.since_ms : now_ms;
  const bool evaluation_changed = engine_->Release(s, bound, 0, &out->alerts, gate_ms_);
  out->alert_ingest_ms.resize(before, -1);  // alerts added by other means than Release: unattributed
  out->alert_ingest_ms.resize(out->alerts.size(), ingest_ms);
  if (s.released_before_ms() > std::max(std::min(bound, gate_ms_), released)) ++counters_.capacity_releases;
  const int64_t earliest = operators::EarliestPending(s);
  // Held by the gate: something before `bound` is still unevaluated.
  SetGated(index_key, held, gate_ms_ < bound && earliest < bound ? earliest : operators::kEndOfTime, now_ms,
           s.released_before_ms());
  const int64_t due = earliest == operators::kEndOfTime ? 0 : earliest + options_.allowed_lateness_ms + 1;
  s.set_due_ms(due);
  SetDue(index_key, due);
  return evaluation_changed;
}

Status TaskCore::MarkReleased(const std::string& key, bool evaluation_changed) {
  return states_->MarkDirty(key, ContainerStates::kMovement | (evaluation_changed ? ContainerStates::kEvaluation : 0));
}

namespace {
// A word read from or written to memory in big-endian byte order.
uint64_t BigEndian(uint64_t word) {
  if constexpr (std::endian::native == std::endian::little) return __builtin_bswap64(word);
  return word;
}
}  // namespace

TaskCore::IndexKey TaskCore::IndexKey::Of(std::string_view key) {
  unsigned char bytes[kMaxIndexKey] = {};
  std::memcpy(bytes, key.data(), std::min(key.size(), kMaxIndexKey));
  IndexKey k;
  std::memcpy(&k.hi, bytes, 8);
  std::memcpy(&k.lo, bytes + 8, 8);
  k.hi = BigEndian(k.hi);
  k.lo = BigEndian(k.lo);
  return k;
}

std::string_view TaskCore::IndexKey::View(char (&buf)[kMaxIndexKey]) const {
  const uint64_t words[2] = {BigEndian(hi), BigEndian(lo)};
  std::memcpy(buf, words, kMaxIndexKey);
  size_t n = kMaxIndexKey;
  while (n > 0 && buf[n - 1] == '\0') --n;
  return std::string_view(buf, n);
}

std::string TaskCore::IndexKey::str() const {
  char bytes[kMaxIndexKey];
  return std::string(View(bytes));
}

void TaskCore::SetDue(const std::string& key, int64_t due_ms) { SetDue(IndexKey::Of(key), due_ms); }

void TaskCore::SetDue(IndexKey key, int64_t due_ms) {
  auto it = due_of_.find(key);
  if (due_ms == 0) {
    if (it != due_of_.end()) due_of_.erase(it);  // its entry goes when it reaches the front
    return;
  }
  if (it == due_of_.end()) {
    due_of_.emplace(key, DueOf{due_ms, due_ms});
    due_.insert({due_ms, key});
    return;
  }
  it->second.due_ms = due_ms;
  if (due_ms >= it->second.indexed_ms) return;
  due_.erase({it->second.indexed_ms, key});
  due_.insert({due_ms, key});
  it->second.indexed_ms = due_ms;
}

void TaskCore::Settle() {
  while (!due_.empty()) {
    const auto& [indexed_ms, key] = *due_.begin();
    auto it = due_of_.find(key);
    if (it != due_of_.end() && it->second.indexed_ms == indexed_ms) {
      if (it->second.due_ms == indexed_ms) return;
      // Moved later: never to the front's place. Erased before the insert,
      // which would invalidate the B-tree's iterators and the key's reference.
      const std::pair<int64_t, IndexKey> moved{it->second.due_ms, key};
      it->second.indexed_ms = it->second.due_ms;
      due_.erase(due_.begin());
      due_.insert(moved);
      continue;
    }
    due_.erase(due_.begin());  // left behind by a container no longer due, or moved
  }
}

void TaskCore::SetGated(const std::string& key, int64_t earliest_ms, int64_t now_ms) {
  if (gated_of_.empty() && earliest_ms == operators::kEndOfTime) return;  // the usual case: nothing held
  const IndexKey k = IndexKey::Of(key);
  SetGated(k, gated_of_.find(k), earliest_ms, now_ms, kUnset);
}

void TaskCore::SetGated(IndexKey key, HeldEntry it, int64_t earliest_ms, int64_t now_ms,
                        int64_t released_before_ms) {
  if (it != gated_of_.end()) {
    it->second.released_before_ms = released_before_ms;
    it->second.gate_ms = gate_ms_;
    if (it->second.earliest_ms == earliest_ms) return;
    gated_.erase({it->second.earliest_ms, key});
    if (earliest_ms == operators::kEndOfTime) {
      gated_of_.erase(it);
      return;
    }
    it->second.earliest_ms = earliest_ms;
  } else {
    if (earliest_ms == operators::kEndOfTime) return;
    gated_of_.emplace(key, Held{earliest_ms, now_ms, released_before_ms, gate_ms_});
  }
  gated_.insert({earliest_ms, key});
}

Status TaskCore::SetGate(int64_t gate_ms, int64_t now_ms, TaskOutput* out) {
  out->Clear();
  const bool opened = gate_ms > gate_ms_ || examine_gated_;
  gate_ms_ = gate_ms;
  examine_gated_ = false;
  if (!opened) return Status::Ok();
  if (Status s = ReleaseGated(now_ms, out); !s.ok()) return s;
  if (sweep_deferred_ && gated_.empty()) {
    sweep_deferred_ = false;
    return Sweep();
  }
  return Status::Ok();
}

Status TaskCore::ReleaseGated(int64_t now_ms, TaskOutput* out) {
  const int64_t L = options_.allowed_lateness_ms;
  // Each container is looked at once: one still held moves behind the others.
  std::vector<std::string> keys;
  for (auto it = gated_.begin(); it != gated_.end() && it->first < gate_ms_; ++it) keys.push_back(it->second.str());
  for (size_t i = 0; i < keys.size(); ++i) {
    for (int step = 0; step < kFetchSteps; ++step) {
      if (const size_t ahead = i + kFetchSteps - step; ahead < keys.size()) FetchAhead(keys[ahead], step);
    }
    const std::string& key = keys[i];
    auto loaded = states_->Get(key);
    if (!loaded.ok()) return loaded.error();
    v1::ContainerState* s = *loaded;
    if (s == nullptr) {
      SetGated(key, operators::kEndOfTime, now_ms);
      continue;
    }
    // What it would have been released to without the gate: its own
    // progress, or the partition clock's quiet release once it is due.
    int64_t bound = OwnBound(*s);
    if (s->due_ms() > 0 && p_ms_ != kUnset && s->due_ms() <= p_ms_) {
      bound = std::max(bound, std::min(p_ms_ - L, s->last_event_ms() + 1));
    }
    const int64_t released = s->released_before_ms();
    const size_t pending = s->pending_items().size();
    const bool evaluation_changed = Release(key, *s, bound, now_ms, out);
    if (s->released_before_ms() == released && s->pending_items().size() == pending && !evaluation_changed) {
      continue;  // nothing changed
    }
    if (Status d = MarkReleased(key, evaluation_changed); !d.ok()) return d;
  }
  return Status::Ok();
}

// ------------------------------------------------------------ partition clock

bool TaskCore::Tick(int64_t timestamp_ms, int64_t now_ms) {
  block_.push_back(std::min(timestamp_ms, now_ms));
  const bool full = static_cast<int>(block_.size()) >= kBlockRecords || block_.back() - block_.front() >= kBlockSpanMs;
  if (!full) return false;
  const size_t k = (block_.size() + 7) / 8;  // the k-th smallest, 1-based
  std::nth_element(block_.begin(), block_.begin() + static_cast<long>(k - 1), block_.end());
  const int64_t low = block_[k - 1];
  block_.clear();
  if (p_ms_ != kUnset && low <= p_ms_) return false;
  p_ms_ = low;
  return true;
}

Status TaskCore::Idle(int64_t now_ms, TaskOutput* out) {
  out->Clear();
  if (!HasDueBy(now_ms)) return Status::Ok();
  if (p_ms_ == kUnset || now_ms > p_ms_) p_ms_ = now_ms;
  return Walk(now_ms, out);
}

bool TaskCore::WalkWouldChangeNothing(IndexKey key) const {
  if (gated_of_.empty()) return false;
  auto it = gated_of_.find(key);
  return it != gated_of_.end() && it->second.earliest_ms >= gate_ms_ && it->second.released_before_ms != kUnset &&
         it->second.released_before_ms >= gate_ms_ && it->second.gate_ms != kUnset && gate_ms_ >= it->second.gate_ms;
}

Status TaskCore::Walk(int64_t now_ms, TaskOutput* out) {
  const int64_t L = options_.allowed_lateness_ms;
  for (Settle(); !due_.empty() && due_.begin()->first <= p_ms_; Settle()) {
    // The containers after this one in due order (some may have moved on,
    // which costs a useless fetch): the next kFetchSteps get a step each, as
    // in ReleaseGated, unless Walk will not read them; the two after that,
    // their entries in the gate and due indexes, which that test reads.
    // A release evaluates, so it reads the parts PrefetchState's last step
    // fetches too: Walk, which knows its next containers, looks further
    // ahead than a join (kWalkFetchSteps).
    auto ahead = std::next(due_.begin());
    for (int position = 1; position <= kWalkFetchSteps + 2 && ahead != due_.end() && ahead->first <= p_ms_;
         ++position, ++ahead) {
      const IndexKey k = ahead->second;
      if (position > kWalkFetchSteps) {
        if (!gated_of_.empty()) gated_of_.prefetch(k);
        due_of_.prefetch(k);
      } else if (!WalkWouldChangeNothing(k)) {
        char bytes[kMaxIndexKey];
        FetchAhead(k.View(bytes), kWalkFetchSteps - position);
      }
    }
    const IndexKey index_key = due_.begin()->second;
    if (WalkWouldChangeNothing(index_key)) {
      SetDue(index_key, 0);
      continue;
    }
    const std::string key = index_key.str();
    auto loaded = states_->Get(key);
    if (!loaded.ok()) return loaded.error();
    v1::ContainerState* s = *loaded;
    if (s == nullptr) {
      SetDue(index_key, 0);
      continue;
    }
    // Never past the container's latest event: a store-and-forward upload
    // after a quiet spell then continues in order.
    const int64_t bound = std::min(p_ms_ - L, s->last_event_ms() + 1);
    const int64_t due_before = due_.begin()->first;
    const bool evaluation_changed = Release(key, *s, bound, now_ms, out);
    if (Status d = MarkReleased(key, evaluation_changed); !d.ok()) return d;
    ++counters_.quiet_releases;
    auto it = due_of_.find(index_key);
    if (it != due_of_.end() && it->second.due_ms <= due_before) {
      // Nothing was released (cannot happen: due - L - 1 < P - L and the
      // item is at or before the latest event); drop the entry rather than loop.
      SetDue(index_key, 0);
    }
  }
  return Status::Ok();
}

// Deletes the states of containers whose latest event is more than
// state_ttl_ms behind P - L and that wait for no evaluation; the deletes
// reach the changelog as tombstones at the next commit.
Status TaskCore::Sweep() {
  last_sweep_ms_ = p_ms_;
  // No partition clock yet, or no stored state old enough to expire: the
  // sweep would erase nothing.
  // (A clock within L + TTL of the earliest time representable is the
  // same: nothing can be older than that.)
  if (p_ms_ == kUnset || p_ms_ < std::numeric_limits<int64_t>::min() + options_.allowed_lateness_ms +
                                     options_.state_ttl_ms) {
    return Status::Ok();
  }
  const int64_t horizon = p_ms_ - options_.allowed_lateness_ms;
  if (oldest_event_ms_ >= horizon - options_.state_ttl_ms) return Status::Ok();
  std::vector<std::string> expired;
  size_t seen = 0;
  int64_t oldest = operators::kEndOfTime;
  Status s = states_->ForEach([&](const std::string& key, const ContainerStates::Summary& f) {
    ++seen;
    if (!f.pending && f.due_ms == 0 && f.last_event_ms + options_.state_ttl_ms < horizon) {
      expired.push_back(key);
    } else {
      oldest = std::min(oldest, f.last_event_ms);
    }
  });
  if (!s.ok()) return s;
  oldest_event_ms_ = oldest;
  containers_ = seen - expired.size();
  for (const auto& key : expired) {
    if (Status e = states_->Erase(key); !e.ok()) return e;
    SetDue(key, 0);
    ++counters_.expired;
  }
  return Status::Ok();
}

}  // namespace boxwatch::pipeline
