#pragma once
// The risk engine: joins events into a ContainerState, evaluates the
// profile's indicators, scores, and applies the alert policy. Pure: no I/O,
// no clocks (callers pass the event-time bounds and the emit time).
//
// Lifecycle per event:
//   Apply*(state, event, late_before)  joins the event (idempotent; a
//       duplicate changes nothing; an event older than `late_before` is
//       refused as late and changes nothing).
//   Release(state, bound, ...)  evaluates, in event-time order, every joined
//       item older than the container's release bound and emits alerts, then
//       drops evaluated items beyond the limits.
// The worker's task (pipeline/task_core.h) derives both times from the
// container's own event-time progress: late_before is progress minus the
// allowed lateness, and so is the bound it releases to. Because evaluation
// waits for it, any arrival order within the lateness yields the same state
// and the same alerts. Advance(state, kEndOfTime, ...) evaluates everything
// (offline use).
//
// Thread-compatibility: a RiskEngine is immutable after construction apart
// from its profile/reference pointers, which the owner swaps at commit
// boundaries; one engine may serve many states on one thread.

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "boxwatch/v1/alert.pb.h"
#include "boxwatch/v1/gps.pb.h"
#include "boxwatch/v1/manifest.pb.h"
#include "boxwatch/v1/outcome.pb.h"
#include "boxwatch/v1/scan.pb.h"
#include "boxwatch/v1/state.pb.h"
#include "operators/profile.h"

namespace boxwatch::operators {

// The explanation entry of an alert raised (or kept) by random selection:
// listed with the fired indicators, weight 0, family "selection".
inline constexpr std::string_view kRandomSelectionId = "selection.random";

inline constexpr int64_t kEndOfTime = std::numeric_limits<int64_t>::max();

// A party's listing after a seizure: it counts for events after the seizure
// and before the listing ends, never for events before the seizure.
struct SeizureListing {
  int64_t seized_at_ms = 0;  // inspection time of the seizure, UTC ms (0: unknown, an old entry)
  int64_t until_ms = 0;      // listed until, UTC ms
  // True when an event at `t` sees the listing: seized_at_ms < t < until_ms.
  bool Covers(int64_t t) const { return seized_at_ms < t && t < until_ms; }
};
// The reference topic's value for a `seized_parties:` entry:
// "seized_at=<ms> until=<ms>". A bare number (older entries) is the until
// time with the seizure time unknown. Nullopt: not a listing.
std::string FormatSeizureListing(const SeizureListing& listing);
std::optional<SeizureListing> ParseSeizureListing(std::string_view value);

// One box of a consignee's goods under a sensitive HS heading, declared
// under-filled (manifest.split_consignment): listed by the task that joined
// its first declaration, read as of event time like a seizure.
struct ConsignmentListing {
  std::string container;
  int64_t declared_at_ms = 0;
  int64_t effective_ms = 0;  // seen by evaluations after this (max(declared, horizon + 1) + lateness)
};

// Reference data that changes without a profile release: entries from the
// boxwatch.reference topic and what inspection outcomes feed back.
struct ReferenceData {
  NameList watchlisted_parties;  // NormaliseName form
  std::unordered_set<std::string> watchlisted_vessels;  // IMO numbers
  std::unordered_set<std::string> watchlisted_owner_codes;
  // Parties with a recorded seizure (NormaliseName form) -> each listing,
  // ordered by seized_at (a party seized twice keeps both, so an evaluation
  // at t reads the listings in force at t whenever it runs).
  std::unordered_map<std::string, std::vector<SeizureListing>> seized_parties;
  // Bills of lading (AlnumUpper form) with a seized box, the same way: the
  // other boxes of the bill are its siblings (history.sibling_seizure).
  std::unordered_map<std::string, std::vector<SeizureListing>> seized_bills;
  // The customs trader register (`known_traders:<NAME>`, value
  // "since=<ms>"): party (NormaliseName form) -> first registered or seen,
  // UTC ms. party.new_trader reads it only when it holds any entry.
  std::unordered_map<std::string, int64_t> known_traders;
  // "<CONSIGNEE>#<HS heading>" -> its under-filled boxes of that heading.
  std::unordered_map<std::string, std::vector<ConsignmentListing>> consignments;
  // Whether one of `party`'s listings covers an event at `t`.
  bool SeizureCovers(const std::string& party, int64_t t) const;
  bool SiblingSeizureCovers(const std::string& bill, int64_t t) const;
};

// Applies one boxwatch.reference record to `ref`: key "<list>:<entry>", an
// empty value removes the entry. A seized_parties entry is "<party>@<seized
// at ms>" (one key per seizure, so compaction keeps every seizure; a bare
// "<party>" key, as older workers wrote, is one listing of that party). Keys of no known list are ignored (Ok); a
// seized_parties value that is no listing is refused (InvalidArgument) and
// changes nothing. A seized_bills entry is "<bill of lading>@<seized at ms>"
// with the same value. A known_traders entry's value is "since=<ms>".
// A consignments entry is "<CONSIGNEE>#<heading>@<container>" with value
// "declared_at=<ms> effective=<ms>".
// `seizures` false skips seized_parties, seized_bills and consignments entries (for
// replays that derive them from the outcomes they process).
[[nodiscard]] Status ApplyReferenceEntry(ReferenceData* ref, std::string_view key, std::string_view value,
                                         bool seizures = true);

struct EngineLimits {
  int max_gps_points = 64;        // evaluated GPS fixes kept per container
  int max_scans = 16;             // evaluated scans kept
  // Unevaluated items a container may hold before its bound is moved past
  // the oldest (a capacity release, RiskEngine::Release).
  int max_unevaluated_fixes = 256;
  int max_unevaluated_scans = 64;
  int max_outcomes = 8;
  int max_manifest_versions = 4;  // full versions kept
  int max_manifest_history = 32;  // version summaries kept (the newest); an older version is a duplicate
};

enum class JoinResult { kApplied, kDuplicate, kLate };

class RiskEngine {
 public:
  RiskEngine(const Profile* profile, const ReferenceData* reference, EngineLimits limits = {});

  void SetProfile(const Profile* profile) { profile_ = profile; }
  void SetReference(const ReferenceData* reference) { reference_ = reference; }
  const Profile& profile() const { return *profile_; }
  const EngineLimits& limits() const { return limits_; }

  JoinResult ApplyManifest(v1::ContainerState& s, const v1::Manifest& m, int64_t late_before) const;
  // An X-ray result with an analyst's verdict is never late, and one for a
  // scan already joined without a verdict replaces it (evaluated again).
  JoinResult ApplyScan(v1::ContainerState& s, const v1::ScanResult& e, int64_t late_before) const;
  // Also late: a fix older than every fix of a full window of evaluated ones.
  JoinResult ApplyGps(v1::ContainerState& s, const v1::GpsEvent& e, int64_t late_before) const;
  // Outcomes are never late (kept whatever their time); the same outcome_id
  // again is a duplicate.
  JoinResult ApplyOutcome(v1::ContainerState& s, const v1::InspectionOutcome& o, int64_t late_before) const;

  // An entry for the boxwatch.reference topic.
  struct ReferenceUpdate {
    std::string key;    // "<list>:<entry>", e.g. "seized_parties:ACME TRADING@<ms>", "seized_bills:<B/L>@<ms>"
    std::string value;  // the list's value, e.g. listed-until UTC ms
  };
  // What an applied outcome feeds back, as the profile's `feedback` says:
  // for a seizure, the parties of the manifest in force at the inspection,
  // listed as seized from max(inspection, `not_before_ms`) + `delay_ms`
  // until inspection + seizure_watch_days. `not_before_ms` is past the
  // task's feedback horizon (pipeline/task_core.h): a seizure reported late
  // takes effect from when the pipeline learnt of it, never before a time
  // other tasks may already have evaluated.
  std::vector<ReferenceUpdate> FeedbackFor(const v1::ContainerState& s, const v1::InspectionOutcome& o,
                                           int64_t not_before_ms = 0, int64_t delay_ms = 0) const;
  // What a first declaration feeds back for manifest.split_consignment:
  // each sensitive HS heading of an under-filled box, listed under its
  // consignee from max(declared, `not_before_ms`) + `delay_ms`.
  std::vector<ReferenceUpdate> ConsignmentFor(const v1::Manifest& m, int64_t not_before_ms = 0,
                                              int64_t delay_ms = 0) const;
  // Whether the profile turns seizures or declarations into reference
  // entries at all (the worker then gates evaluation on every task's horizon).
  bool FeedsBack() const;

  // Evaluates every pending event older than `watermark` and appends the
  // alerts the policy emits (emit_time_ms set to `emit_time_ms`). Returns
  // whether what evaluation keeps (fired indicators, alert bookkeeping) may
  // have changed: false means those fields are exactly as they were, so
  // storage need not look at them (pipeline/state_parts.h).
  bool Advance(v1::ContainerState& s, int64_t watermark, int64_t emit_time_ms,
               std::vector<v1::Alert>* alerts) const;

  // Moves the container's release bound (released_before_ms) to at least
  // `bound`, evaluates every pending item earlier than it, applies the
  // capacity release, then drops evaluated items beyond the limits (never an
  // unevaluated one, so what is evaluated does not depend on when Release
  // runs).
  // Nothing at or after `gate` is evaluated (the reference data is not
  // known to be complete there yet), except by a capacity release; while
  // held, the windows are not trimmed. Returns what Advance returns.
  bool Release(v1::ContainerState& s, int64_t bound, int64_t emit_time_ms, std::vector<v1::Alert>* alerts,
               int64_t gate = kEndOfTime) const;
  // Drops evaluated fixes, scans and manifest versions beyond the limits.
  void Trim(v1::ContainerState& s) const;

  // Current score of the state's fired indicators (after family caps).
  double Score(const v1::ContainerState& s) const;

 private:
  enum Kind { kManifest = 0, kScan = 1, kGps = 2, kOutcome = 3 };
  void AddPending(v1::ContainerState& s, int64_t t, Kind kind) const;
  // These return whether they changed the fired indicators or the alert
  // bookkeeping (see Advance).
  bool Evaluate(v1::ContainerState& s, int64_t t, int kind, int64_t emit_time_ms,
                std::vector<v1::Alert>* alerts) const;
  bool EvaluateManifestFamily(v1::ContainerState& s, int64_t t) const;
  bool EvaluateScanFamily(v1::ContainerState& s, int64_t t) const;
  bool EvaluateGpsFamily(v1::ContainerState& s, int64_t t) const;
  bool EvaluateMissingManifest(v1::ContainerState& s, int64_t t) const;
  bool EvaluateSplitConsignment(v1::ContainerState& s, int64_t t) const;
  bool ApplyAlertPolicy(v1::ContainerState& s, int64_t t, int64_t emit_time_ms,
                        std::vector<v1::Alert>* alerts) const;
  // The alert's case file as of t (see v1::AlertContext).
  void FillContext(const v1::ContainerState& s, int64_t t, v1::AlertContext& c) const;

  const Profile* profile_;
  const ReferenceData* reference_;
  EngineLimits limits_;
};

// The manifest version in force at time t (latest version declared at or
// before t), or null.
const v1::Manifest* ManifestAsOf(const v1::ContainerState& s, int64_t t);

// Time of the earliest joined item not yet evaluated; kEndOfTime when none.
int64_t EarliestPending(const v1::ContainerState& s);

// Alert id for the n-th alert of a container: "<container>-<n, 4 digits>".
std::string AlertId(const std::string& container, uint32_t sequence);

}  // namespace boxwatch::operators
