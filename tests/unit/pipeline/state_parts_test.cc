#include "pipeline/state_parts.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <set>

#include "boxwatch/v1/state.pb.h"
#include "operators/fix_quantum.h"
#include "operators/fix_window.h"
#include "operators/pending_items.h"
#include "state/write_behind_cache.h"
#include "tests/support/map_partition.h"

namespace boxwatch::pipeline {
namespace {

using testing::MapPartition;

using Cache = state::WriteBehindCache<v1::ContainerState, ContainerStateCodec>;
constexpr char kBox[] = "CSQU3054383";

// A state's bytes with its window as protobuf points, however it is held
// (records in memory after a load or a save, points as built here): what
// two states are compared by.
// Pending items listed the old way (PendingEvaluation messages) count as
// the items they are.
std::string Canonical(const v1::ContainerState& state) {
  v1::ContainerState s = state;
  operators::MovePendingToItems(&s);
  if (!s.has_gps() || s.gps().live_fixes().empty()) return s.SerializeAsString();
  v1::GpsTrack* g = s.mutable_gps();
  google::protobuf::RepeatedPtrField<v1::GpsPoint> window;
  operators::ToPoints(*g, 0, operators::FixWindow(*g).size(), &window);
  g->clear_live_fixes();
  g->clear_live_texts();
  for (auto& p : *g->mutable_points()) *window.Add() = std::move(p);
  g->mutable_points()->Swap(&window);
  return s.SerializeAsString();
}

// Every field of ContainerState set.
v1::ContainerState FullState() {
  v1::ContainerState s;
  s.set_container_number(kBox);
  s.add_manifest_versions()->set_container_number(kBox);
  s.add_manifest_history()->set_version(1);
  s.add_scans()->set_scan_id("scan-1");
  for (int i = 0; i < 3; ++i) s.mutable_gps()->add_points()->set_fix_time_ms(1794970800000 + i * 60000);
  s.add_outcomes()->set_outcome_id("outcome-1");
  s.set_first_event_ms(1794970800000);
  s.set_last_event_ms(1794970920000);
  s.set_expires_at_ms(1797562920000);
  s.mutable_alerts()->set_alert_sequence(2);
  s.add_fired()->set_id("gps.route_deviation");
  s.add_pending()->set_time_ms(1794970920000);  // as states stored before pending_items list them
  operators::MutablePendingItems(s.mutable_pending_items()).Insert({1794970900000, 2});
  s.set_evaluated_through_ms(1794970860000);
  s.set_progress_ms(1794970920000);
  s.set_released_before_ms(1794970860001);
  s.set_due_ms(1794971220001);
  return s;
}

std::set<std::string> FieldsSet(const v1::ContainerState& s) {
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  s.GetReflection()->ListFields(s, &fields);
  std::set<std::string> names;
  for (const auto* f : fields) names.insert(f->name());
  return names;
}

TEST(StateParts, EveryFieldIsInExactlyOnePartAndThePartsJoinToTheWhole) {
  v1::ContainerState s = FullState();
  // Off the grid: the window is stored as protobuf points, so the raw parts
  // join by merging (a packed window is unpacked by the codec: tests below).
  s.mutable_gps()->mutable_points(0)->set_lat(0.123456789);
  const std::string whole = Canonical(s);
  // Every field but the one only stored movement parts hold.
  const size_t fields = static_cast<size_t>(v1::ContainerState::descriptor()->field_count()) - 1;
  ASSERT_EQ(FieldsSet(s).size(), fields) << "FullState must set every field, a new one included";
  EXPECT_EQ(FieldsSet(s).count("evaluation_part_stored"), 0u);
  std::string m, d, e;
  ASSERT_TRUE(SerializeMovement(s, &m));
  ASSERT_TRUE(SerializeDeclaration(s, &d));
  ASSERT_TRUE(SerializeEvaluation(s, &e));
  EXPECT_EQ(Canonical(s), whole) << "serialising a part leaves the state as it was";
  v1::ContainerState pm, pd, pe;
  ASSERT_TRUE(pm.ParseFromString(m));
  ASSERT_TRUE(pd.ParseFromString(d));
  ASSERT_TRUE(pe.ParseFromString(e));
  const std::set<std::string> in_m = FieldsSet(pm), in_d = FieldsSet(pd), in_e = FieldsSet(pe);
  for (const auto& name : in_m) EXPECT_EQ(in_d.count(name) + in_e.count(name), 0u) << name << " is in two parts";
  for (const auto& name : in_d) EXPECT_EQ(in_e.count(name), 0u) << name << " is in two parts";
  EXPECT_EQ(in_m.size() + in_d.size() + in_e.size(), fields) << "a field is in no part";
  EXPECT_TRUE(in_m.count("gps") && in_m.count("pending") && in_m.count("pending_items") && in_m.count("due_ms") &&
              in_m.count("last_event_ms"));
  EXPECT_TRUE(in_d.count("container_number") && in_d.count("manifest_versions") && in_d.count("scans"));
  EXPECT_EQ(in_e, (std::set<std::string>{"alerts", "fired"}));
  v1::ContainerState joined = pd;
  ASSERT_TRUE(joined.MergeFromString(m));
  ASSERT_TRUE(joined.MergeFromString(e));
  EXPECT_EQ(Canonical(joined), whole);
}

std::vector<std::string> Keys(const std::vector<state::PartitionStore::Write>& writes) {
  std::vector<std::string> keys;
  for (const auto& w : writes) keys.push_back(w.key + (w.value ? "" : " (delete)"));
  return keys;
}

// A movement part's bytes, saying an evaluation part is stored beside it.
std::string ListingEvaluation(const std::string& m) {
  v1::ContainerState parsed;
  EXPECT_TRUE(parsed.ParseFromString(m));
  parsed.set_evaluation_part_stored(true);
  return Canonical(parsed);
}

TEST(StateParts, AFixRewritesOnlyTheMovementPartUnlessItsReleaseChangedTheDeclaration) {
  MapPartition store;
  const std::string d_key = std::string(kBox) + "#d", e_key = std::string(kBox) + "#e";
  {
    Cache cache(&store);
    cache.Put(kBox, FullState());
    auto writes = cache.TakeDirty();
    ASSERT_TRUE(writes.ok());
    EXPECT_EQ(Keys(*writes), (std::vector<std::string>{kBox, d_key, e_key}));
    ASSERT_TRUE(store.Commit(*writes, 1, "").ok());
  }
  Cache cache(&store);
  auto s = cache.Get(kBox);
  ASSERT_TRUE(s.ok() && *s != nullptr);
  EXPECT_EQ(Canonical(**s), Canonical(FullState())) << "both parts load as one state";

  // A fix: movement only.
  (*s)->mutable_gps()->add_points()->set_fix_time_ms(1794971000000);
  ASSERT_TRUE(cache.MarkDirty(kBox, kMovementPart).ok());
  auto writes = cache.TakeDirty();
  ASSERT_TRUE(writes.ok());
  EXPECT_EQ(Keys(*writes), std::vector<std::string>{kBox});
  ASSERT_TRUE(store.Commit(*writes, 2, "").ok());

  // A fix whose evaluation fired an indicator and raised an alert (the
  // engine says so): E too.
  (*s)->add_fired()->set_id("gps.seal_breach");
  (*s)->mutable_alerts()->set_last_score(42);
  ASSERT_TRUE(cache.MarkDirty(kBox, kMovementPart | kEvaluationPart).ok());
  writes = cache.TakeDirty();
  ASSERT_TRUE(writes.ok());
  EXPECT_EQ(Keys(*writes), (std::vector<std::string>{kBox, e_key}));
  ASSERT_TRUE(store.Commit(*writes, 3, "").ok());

  // A release whose trim dropped a scan: detected, D is written too.
  (*s)->mutable_scans()->DeleteSubrange(0, 1);
  ASSERT_TRUE(cache.MarkDirty(kBox, kMovementPart).ok());
  writes = cache.TakeDirty();
  ASSERT_TRUE(writes.ok());
  EXPECT_EQ(Keys(*writes), (std::vector<std::string>{kBox, d_key}));
  ASSERT_TRUE(store.Commit(*writes, 5, "").ok());

  const std::string expected = Canonical(**s);
  Cache reread(&store);
  auto again = reread.Get(kBox);
  ASSERT_TRUE(again.ok() && *again != nullptr);
  EXPECT_EQ(Canonical(**again), expected);

  // Expiry deletes both parts.
  cache.Erase(kBox);
  writes = cache.TakeDirty();
  ASSERT_TRUE(writes.ok());
  EXPECT_EQ(Keys(*writes),
            (std::vector<std::string>{std::string(kBox) + " (delete)", d_key + " (delete)", e_key + " (delete)"}));
}

TEST(StateParts, TheEvaluationPartIsWrittenWhenItChangesAndDeletedWhenEmpty) {
  MapPartition store;
  const std::string e_key = std::string(kBox) + "#e";
  Cache cache(&store);
  v1::ContainerState s = FullState();
  s.clear_fired();
  s.clear_alerts();
  cache.Put(kBox, s);
  auto writes = cache.TakeDirty();
  ASSERT_TRUE(writes.ok());
  EXPECT_EQ(Keys(*writes), (std::vector<std::string>{kBox, std::string(kBox) + "#d"})) << "nothing fired: no E";
  ASSERT_TRUE(store.Commit(*writes, 1, "").ok());
  auto got = cache.Get(kBox);
  ASSERT_TRUE(got.ok() && *got != nullptr);
  v1::ContainerState* live = *got;
  live->add_fired()->set_id("route.high_risk_transhipment");
  ASSERT_TRUE(cache.MarkDirty(kBox, kMovementPart | kEvaluationPart).ok());
  writes = cache.TakeDirty();
  ASSERT_TRUE(writes.ok());
  EXPECT_EQ(Keys(*writes), (std::vector<std::string>{kBox, e_key}));
  ASSERT_TRUE(store.Commit(*writes, 2, "").ok());
  {
    v1::ContainerState m;
    ASSERT_TRUE(m.ParseFromString(store.values[kBox]));
    EXPECT_TRUE(m.evaluation_part_stored()) << "the stored M lists its E";
    EXPECT_FALSE(live->evaluation_part_stored()) << "never in memory";
  }
  // Same evidence, another fix: E is not written again, also after a reload
  // and when the engine says it may have changed (its bytes are compared).
  for (int round = 0; round < 2; ++round) {
    Cache fresh(&store);
    Cache& c = round == 0 ? cache : fresh;
    auto again = c.Get(kBox);
    ASSERT_TRUE(again.ok() && *again != nullptr);
    (*again)->set_progress_ms((*again)->progress_ms() + 1 + round);
    ASSERT_TRUE(c.MarkDirty(kBox, round == 0 ? kMovementPart : kMovementPart | kEvaluationPart).ok());
    writes = c.TakeDirty();
    ASSERT_TRUE(writes.ok());
    EXPECT_EQ(Keys(*writes), std::vector<std::string>{kBox}) << "round " << round;
    ASSERT_TRUE(store.Commit(*writes, 3 + round, "").ok());
  }
  // The evidence changes (same size): written.
  live->mutable_fired(0)->set_id("route.high_risk_transhipmenT");
  ASSERT_TRUE(cache.MarkDirty(kBox, kMovementPart | kEvaluationPart).ok());
  writes = cache.TakeDirty();
  ASSERT_TRUE(writes.ok());
  EXPECT_EQ(Keys(*writes), (std::vector<std::string>{kBox, e_key}));
  ASSERT_TRUE(store.Commit(*writes, 5, "").ok());
  // Nothing left fired: E is deleted, and the state loads without it.
  live->clear_fired();
  ASSERT_TRUE(cache.MarkDirty(kBox, kMovementPart | kEvaluationPart).ok());
  writes = cache.TakeDirty();
  ASSERT_TRUE(writes.ok());
  EXPECT_EQ(Keys(*writes), (std::vector<std::string>{kBox, e_key + " (delete)"}));
  ASSERT_TRUE(store.Commit(*writes, 6, "").ok());
  EXPECT_EQ(store.values.count(e_key), 0u);
  // An E key the stored M does not list (left behind by a crash part-way
  // through a container's deletes) is not merged in.
  v1::ContainerState stray = *live;
  stray.add_fired()->set_id("scan.stray");
  std::string stray_e;
  ASSERT_TRUE(SerializeEvaluation(stray, &stray_e));
  store.values[e_key] = stray_e;
  Cache reread(&store);
  auto loaded = reread.Get(kBox);
  ASSERT_TRUE(loaded.ok() && *loaded != nullptr);
  EXPECT_EQ(Canonical(**loaded), Canonical(*live));
}

TEST(StateParts, ASaveNotToldTheEvaluationMayHaveChangedDoesNotLookAtIt) {
  // The contract that spares serialising E at every save: only an
  // evaluation changes E, and the engine reports it (RiskEngine::Release).
  MapPartition store;
  Cache cache(&store);
  cache.Put(kBox, FullState());
  auto writes = cache.TakeDirty();
  ASSERT_TRUE(writes.ok());
  ASSERT_TRUE(store.Commit(*writes, 1, "").ok());
  const std::string stored_e = store.values[std::string(kBox) + "#e"];
  ASSERT_FALSE(stored_e.empty());
  auto s = cache.Get(kBox);
  ASSERT_TRUE(s.ok() && *s != nullptr);
  (*s)->add_fired()->set_id("scan.unreported");
  ASSERT_TRUE(cache.MarkDirty(kBox, kMovementPart).ok());
  writes = cache.TakeDirty();
  ASSERT_TRUE(writes.ok());
  EXPECT_EQ(Keys(*writes), std::vector<std::string>{kBox});
  ASSERT_TRUE(store.Commit(*writes, 2, "").ok());
  EXPECT_EQ(store.values[std::string(kBox) + "#e"], stored_e);
  // Reported, it is written.
  ASSERT_TRUE(cache.MarkDirty(kBox, kEvaluationPart).ok());
  writes = cache.TakeDirty();
  ASSERT_TRUE(writes.ok());
  EXPECT_EQ(Keys(*writes), std::vector<std::string>{std::string(kBox) + "#e"});
  ASSERT_TRUE(store.Commit(*writes, 3, "").ok());
  EXPECT_NE(store.values[std::string(kBox) + "#e"], stored_e);
}

TEST(StateParts, AMovementPartHoldingTheEvaluationLoadsWithItAndItsNextWriteMovesItToE) {
  // As a worker wrote M before E had a key: fired indicators and alert
  // bookkeeping inside it. A stale E beside it (left by a newer worker
  // before) is not merged in.
  v1::ContainerState s = FullState();
  std::string m_new, d, e;
  ASSERT_TRUE(SerializeMovement(s, &m_new));
  ASSERT_TRUE(SerializeDeclaration(s, &d));
  ASSERT_TRUE(SerializeEvaluation(s, &e));
  v1::ContainerState old_m;
  ASSERT_TRUE(old_m.ParseFromString(m_new));
  ASSERT_TRUE(old_m.MergeFromString(e));
  v1::ContainerState stale = s;
  stale.mutable_fired(0)->set_id("scan.stale_from_another_life");
  std::string stale_e;
  ASSERT_TRUE(SerializeEvaluation(stale, &stale_e));
  MapPartition store;
  store.values[kBox] = Canonical(old_m);
  store.values[std::string(kBox) + "#d"] = d;
  store.values[std::string(kBox) + "#e"] = stale_e;
  Cache cache(&store);
  auto got = cache.Get(kBox);
  ASSERT_TRUE(got.ok() && *got != nullptr) << (got.ok() ? "none" : got.error().message);
  EXPECT_EQ(Canonical(**got), Canonical(s));
  ASSERT_TRUE(cache.MarkDirty(kBox, kMovementPart).ok());
  auto writes = cache.TakeDirty();
  ASSERT_TRUE(writes.ok());
  EXPECT_EQ(Keys(*writes), (std::vector<std::string>{kBox, std::string(kBox) + "#e"}));
  ASSERT_TRUE(store.Commit(*writes, 1, "").ok());
  EXPECT_EQ(store.values[kBox], ListingEvaluation(m_new)) << "M no longer holds the evaluation, and lists E";
  Cache reread(&store);
  auto again = reread.Get(kBox);
  ASSERT_TRUE(again.ok() && *again != nullptr);
  EXPECT_EQ(Canonical(**again), Canonical(s));
}

TEST(StateParts, AFormat1StateLoadsWholeAndItsFirstWriteStoresTheParts) {
  MapPartition store;
  store.values[kBox] = Canonical(FullState());  // an older worker's value
  Cache cache(&store);
  auto s = cache.Get(kBox);
  ASSERT_TRUE(s.ok() && *s != nullptr);
  EXPECT_EQ(Canonical(**s), Canonical(FullState()));
  (*s)->set_progress_ms((*s)->progress_ms() + 1);
  ASSERT_TRUE(cache.MarkDirty(kBox, kMovementPart).ok());
  auto writes = cache.TakeDirty();
  ASSERT_TRUE(writes.ok());
  EXPECT_EQ(Keys(*writes), (std::vector<std::string>{kBox, std::string(kBox) + "#d", std::string(kBox) + "#e"}));
  ASSERT_TRUE(store.Commit(*writes, 1, "").ok());
  Cache reread(&store);
  auto again = reread.Get(kBox);
  ASSERT_TRUE(again.ok() && *again != nullptr);
  EXPECT_EQ(Canonical(**again), Canonical(**s));
  EXPECT_LT(store.values[kBox].size(), FullState().ByteSizeLong()) << "the movement part no longer holds the rest";
}

// A state stored before pending_items lists its pending items as messages,
// in any order: they load as items in (time, kind) order, and its next
// movement write stores them so.
TEST(StateParts, PendingItemsStoredAsMessagesLoadAsOrderedItemsAndAreWrittenSo) {
  MapPartition store;
  v1::ContainerState old;
  old.set_last_event_ms(1794970980000);
  for (auto [t, kind] : {std::pair<int64_t, int>{1794970980000, 2}, {1794970920000, 1}, {1794970920000, 0},
                         {1794970920000, 1}}) {
    v1::PendingEvaluation* p = old.add_pending();
    p->set_time_ms(t);
    p->set_kind(kind);
  }
  store.values[kBox] = old.SerializeAsString();  // an M part with no declaration beside it
  Cache cache(&store);
  auto s = cache.Get(kBox);
  ASSERT_TRUE(s.ok() && *s != nullptr);
  EXPECT_EQ((*s)->pending_size(), 0);
  const operators::PendingItems items((*s)->pending_items());
  ASSERT_EQ(items.size(), 3) << "the repeated item is one item";
  EXPECT_EQ(items.Get(0), (operators::PendingItem{1794970920000, 0}));
  EXPECT_EQ(items.Get(1), (operators::PendingItem{1794970920000, 1}));
  EXPECT_EQ(items.Get(2), (operators::PendingItem{1794970980000, 2}));
  ASSERT_TRUE(cache.MarkDirty(kBox, kMovementPart).ok());
  auto writes = cache.TakeDirty();
  ASSERT_TRUE(writes.ok());
  ASSERT_TRUE(store.Commit(*writes, 1, "").ok());
  v1::ContainerState stored;
  ASSERT_TRUE(stored.ParseFromString(store.values[kBox]));
  EXPECT_EQ(stored.pending_size(), 0);
  EXPECT_EQ(stored.pending_items(), (*s)->pending_items());
}

TEST(StateParts, PendingItemsThatAreNotWholeRecordsAreFatalAndSaySo) {
  MapPartition store;
  v1::ContainerState broken;
  broken.set_last_event_ms(1794970980000);
  broken.set_pending_items(std::string(17, '\0'));
  store.values[kBox] = broken.SerializeAsString();
  Cache cache(&store);
  auto s = cache.Get(kBox);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::kFatal);
  EXPECT_NE(s.error().message.find("not whole records"), std::string::npos) << s.error().message;
}

TEST(StateParts, AWholeValueBesideAStaleDeclarationPartIsTheStateAndItsNextWriteReplacesBoth) {
  MapPartition store;
  v1::ContainerState stale = FullState();
  stale.add_scans()->set_scan_id("scan-from-an-older-life");
  std::string d;
  ASSERT_TRUE(SerializeDeclaration(stale, &d));
  store.values[std::string(kBox) + "#d"] = d;
  store.values[kBox] = Canonical(FullState());  // written whole after it, by an older worker
  Cache cache(&store);
  auto s = cache.Get(kBox);
  ASSERT_TRUE(s.ok() && *s != nullptr);
  EXPECT_EQ(Canonical(**s), Canonical(FullState())) << "the stale part is not merged in";
  ASSERT_TRUE(cache.MarkDirty(kBox, kMovementPart).ok());
  auto writes = cache.TakeDirty();
  ASSERT_TRUE(writes.ok());
  EXPECT_EQ(Keys(*writes), (std::vector<std::string>{kBox, std::string(kBox) + "#d", std::string(kBox) + "#e"}));
}

TEST(StateParts, AnUndecodableDeclarationPartIsFatalAndNamesTheKey) {
  MapPartition store;
  std::string m;
  v1::ContainerState s = FullState();
  ASSERT_TRUE(SerializeMovement(s, &m));
  store.values[kBox] = m;
  store.values[std::string(kBox) + "#d"] = "\xff\xff\xff";
  Cache cache(&store);
  auto got = cache.Get(kBox);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, Errc::kFatal);
  EXPECT_NE(got.error().message.find(kBox), std::string::npos) << got.error().message;
  EXPECT_NE(got.error().message.find("declaration part"), std::string::npos) << got.error().message;
}

// A window as the engine keeps it: numbers on the grid of operators/fix_quantum.h.
v1::ContainerState WithWindow(int fixes) {
  using operators::Quantize;
  v1::ContainerState s = FullState();
  auto* points = s.mutable_gps()->mutable_points();
  points->Clear();
  for (int i = 0; i < fixes; ++i) {
    v1::GpsPoint* p = points->Add();
    p->set_fix_time_ms(1794970800000 + i * 61234);
    p->set_lat(Quantize(13.0812345678 + i * 0.00123456, operators::kDegreeScale));
    p->set_lon(Quantize(-100.8823456789 - i * 0.00234567, operators::kDegreeScale));
    p->set_speed_kmh(Quantize(i % 5 == 0 ? 0 : 61.237 + i, operators::kSpeedScale));
    p->set_corridor_distance_m(Quantize(i * 37.31, operators::kDistanceScale));
    p->set_outside_corridors(i % 3 == 0);
    p->set_in_stop_zone(i % 7 == 0);
    p->set_seal_state(i % 11 == 0 ? v1::GpsEvent::SEAL_STATE_OPENED : v1::GpsEvent::SEAL_STATE_CLOSED);
    // Keys of both sizes: 32-bit ones, and whole hashes kept from before.
    p->set_event_key(i % 2 == 0 ? 0x9e3779b97f4a7c15ULL * (i + 1) : 0x7f4a7c15ULL * (i + 1) % 0xffffffffULL + 1);
    if (i % 13 == 0) p->set_seal_number("SX 0042-17");
    if (i == 20) {
      p->set_border_geofence("BORDER-KZ-UZ");
      p->set_at_approved_crossing(true);
    }
  }
  // A fix stored by an older worker: its event id as text, no key.
  points->Mutable(fixes - 1)->set_event_key(0);
  points->Mutable(fixes - 1)->set_event_id("TRK-000123-77");
  return s;
}

TEST(StateParts, TheGpsWindowIsStoredPackedAndLoadsBackExactly) {
  ASSERT_EQ(v1::GpsPoint::descriptor()->field_count(), 13)
      << "a new GpsPoint field must be added to the packed encoding (pipeline/state_parts.cc) and to the "
         "in-memory records (operators/fix_window.h: FixRecord, Append, ToPoints)";
  v1::ContainerState s = WithWindow(64);
  const std::string whole = Canonical(s);
  std::string m;
  ASSERT_TRUE(SerializeMovement(s, &m));
  EXPECT_EQ(Canonical(s), whole);
  v1::ContainerState stored;
  ASSERT_TRUE(stored.ParseFromString(m));
  EXPECT_EQ(stored.gps().points_size(), 0);
  EXPECT_FALSE(stored.gps().packed_points().empty());
  EXPECT_TRUE(stored.gps().live_fixes().empty() && stored.gps().live_texts().empty())
      << "the in-memory records are never stored";
  std::string unpacked_size;
  {
    v1::ContainerState plain;
    operators::ToPoints(s.gps(), 0, operators::FixWindow(s.gps()).size(), plain.mutable_gps()->mutable_points());
    unpacked_size = Canonical(plain);
  }
  EXPECT_LT(stored.gps().packed_points().size() * 2, unpacked_size.size())
      << "packed " << stored.gps().packed_points().size() << " bytes, protobuf " << unpacked_size.size();

  MapPartition store;
  Cache cache(&store);
  cache.Put(kBox, s);
  auto writes = cache.TakeDirty();
  ASSERT_TRUE(writes.ok());
  ASSERT_TRUE(store.Commit(*writes, 1, "").ok());
  Cache reread(&store);
  auto loaded = reread.Get(kBox);
  ASSERT_TRUE(loaded.ok() && *loaded != nullptr) << (loaded.ok() ? "none" : loaded.error().message);
  EXPECT_EQ(Canonical(**loaded), whole) << "every number and text of every fix comes back as it was";

  // A movement part that holds in-memory records (never written so: foreign
  // or damaged bytes) loads as the window it stores, the records ignored.
  v1::ContainerState damaged_m;
  ASSERT_TRUE(damaged_m.ParseFromString(store.values[kBox]));
  damaged_m.mutable_gps()->set_live_fixes(std::string(100, '\xff'));
  damaged_m.mutable_gps()->set_live_texts(std::string(3, '\x7f'));
  store.values[kBox] = damaged_m.SerializeAsString();
  Cache damaged(&store);
  loaded = damaged.Get(kBox);
  ASSERT_TRUE(loaded.ok() && *loaded != nullptr) << (loaded.ok() ? "none" : loaded.error().message);
  EXPECT_EQ(Canonical(**loaded), whole);
}

// The movement part is encoded by hand: byte for byte what protobuf's
// encoder gives, for every field M holds at zero, positive and negative
// values, with and without a track, window, chunks and pending items.
TEST(StateParts, TheMovementPartEncodedByHandIsProtobufsEncodingByteForByte) {
  ASSERT_EQ(v1::ContainerState::descriptor()->field_count(), 18)
      << "a new ContainerState field M holds must be added to SerializeMovementFrom (pipeline/state_parts.cc)";
  ASSERT_EQ(v1::GpsTrack::descriptor()->field_count(), 18)
      << "a new GpsTrack field must be added to SerializeMovementFrom (pipeline/state_parts.cc)";
  const uint32_t seed = 20261206;
  SCOPED_TRACE(seed);
  std::mt19937_64 rng(seed);
  auto any = [&](int64_t scale) -> int64_t {
    switch (rng() % 4) {
      case 0: return 0;
      case 1: return -static_cast<int64_t>(rng() % static_cast<uint64_t>(scale)) - 1;
      default: return static_cast<int64_t>(rng() % static_cast<uint64_t>(scale));
    }
  };
  for (int round = 0; round < 400; ++round) {
    SCOPED_TRACE(round);
    v1::ContainerState s = round % 5 == 0 ? v1::ContainerState() : WithWindow(1 + static_cast<int>(rng() % 40));
    s.clear_pending();  // listed as messages, M goes through protobuf anyway
    s.set_first_event_ms(any(1LL << 42));
    s.set_last_event_ms(any(1LL << 42));
    s.set_expires_at_ms(any(1LL << 42));
    s.set_evaluated_through_ms(any(1LL << 42));
    s.set_progress_ms(any(1LL << 42));
    s.set_released_before_ms(any(1LL << 42));
    s.set_due_ms(any(1LL << 42));
    s.set_evaluation_part_stored(rng() % 2 == 0);
    s.clear_pending_items();
    for (int i = static_cast<int>(rng() % 4); i > 0; --i) {
      operators::MutablePendingItems(s.mutable_pending_items()).Insert({any(1LL << 42), static_cast<int32_t>(rng() % 4)});
    }
    if (round % 5 != 0 || rng() % 2 == 0) {
      v1::GpsTrack* g = s.mutable_gps();  // present, perhaps with nothing set
      if (rng() % 3 != 0) {
        g->set_first_fix_ms(any(1LL << 42));
        g->set_last_fix_ms(any(1LL << 42));
        g->set_points_seen(rng() % 3 == 0 ? 0 : rng());
        g->set_last_tracker_id(rng() % 3 == 0 ? "" : "TRK-" + std::to_string(rng() % 100000));
        g->set_first_corridor_fix_ms(any(1LL << 42));
        g->set_progress_ms(any(1LL << 42));
        g->set_seals_checked_through_ms(any(1LL << 42));
        g->set_seals_checked_version(static_cast<uint32_t>(rng() % 3 == 0 ? 0 : rng()));
        g->set_seals_checked_declared_ms(any(1LL << 42));
        g->set_final_before_ms(any(1LL << 42));
      }
    }
    ContainerStateCodec::Meta meta;
    const bool chunked = rng() % 3 == 0;
    if (chunked) {
      meta.chunk_first = rng() % 1000000 + 1;
      meta.chunk_next = meta.chunk_first + rng() % 4 + 1;
      meta.chunk_skip = static_cast<uint32_t>(rng() % 16);
      meta.chunked_through_ms = any(1LL << 42);
    }
    const int fixes = s.has_gps() ? operators::FixWindow(s.gps()).size() : 0;
    const int from = fixes == 0 ? 0 : static_cast<int>(rng() % static_cast<uint64_t>(fixes + 1));
    std::string by_hand, by_protobuf;
    ASSERT_TRUE(SerializeMovementFrom(s, from, chunked ? &meta : nullptr, &by_hand));
    ASSERT_TRUE(SerializeMovementByProtobuf(s, from, chunked ? &meta : nullptr, &by_protobuf));
    ASSERT_EQ(by_hand, by_protobuf) << "fixes " << fixes << " from " << from << " chunked " << chunked;
  }
}

TEST(StateParts, AWindowOffTheGridIsStoredAsProtobufPoints) {
  v1::ContainerState s = WithWindow(8);
  s.mutable_gps()->mutable_points(3)->set_lat(13.08123456789);  // finer than 1e-7 degree
  const std::string whole = Canonical(s);
  std::string m;
  ASSERT_TRUE(SerializeMovement(s, &m));
  v1::ContainerState stored;
  ASSERT_TRUE(stored.ParseFromString(m));
  EXPECT_EQ(stored.gps().points_size(), 8);
  EXPECT_TRUE(stored.gps().packed_points().empty());
  MapPartition store;
  store.values[kBox] = m;
  std::string d, e;
  ASSERT_TRUE(SerializeDeclaration(s, &d));
  ASSERT_TRUE(SerializeEvaluation(s, &e));
  store.values[kBox] = ListingEvaluation(m);
  store.values[std::string(kBox) + "#d"] = d;
  store.values[std::string(kBox) + "#e"] = e;
  Cache cache(&store);
  auto loaded = cache.Get(kBox);
  ASSERT_TRUE(loaded.ok() && *loaded != nullptr);
  EXPECT_EQ(Canonical(**loaded), whole);
}

// The grid check packing relies on: every value Quantize makes is on the
// grid and comes back exactly; anything else is refused, never rounded.
TEST(StateParts, TheGridCheckAcceptsQuantizedValuesAndRefusesEverythingElse) {
  using operators::Quantize;
  using operators::QuantumOf;
  const double scales[] = {operators::kDegreeScale, operators::kSpeedScale, operators::kDistanceScale};
  uint64_t seed = 0x2545f4914f6cdd1dULL;
  for (double scale : scales) {
    for (int i = 0; i < 20000; ++i) {
      seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
      const double raw = (static_cast<double>(seed % 4000000001ULL) - 2e9) / 1e7 * (i % 3 == 0 ? 1 : 0.001);
      const double v = Quantize(raw, scale);
      int64_t q = 0;
      ASSERT_TRUE(QuantumOf(v, scale, &q)) << v << " at scale " << scale;
      EXPECT_EQ(static_cast<double>(q) / scale, v);
      EXPECT_EQ(q, std::llround(v * scale));
      // Half a step off the grid is refused.
      if (v != 0) {
        EXPECT_FALSE(QuantumOf(v + 0.5 / scale * (v < 0 ? -1 : 1), scale, &q)) << v;
      }
    }
  }
  int64_t q = 0;
  EXPECT_TRUE(QuantumOf(-100.8823457, operators::kDegreeScale, &q));
  EXPECT_EQ(q, -1008823457);
  EXPECT_TRUE(QuantumOf(0.0, operators::kSpeedScale, &q));
  EXPECT_EQ(q, 0);
  EXPECT_FALSE(QuantumOf(-0.0, operators::kSpeedScale, &q));
  EXPECT_FALSE(QuantumOf(std::nan(""), operators::kSpeedScale, &q));
  EXPECT_FALSE(QuantumOf(std::numeric_limits<double>::infinity(), operators::kSpeedScale, &q));
  EXPECT_FALSE(QuantumOf(1e300, operators::kSpeedScale, &q));
  EXPECT_FALSE(QuantumOf(0.001, operators::kSpeedScale, &q));  // a thousandth of a km/h: off the 0.01 grid
}

TEST(StateParts, ABrokenPackedWindowIsFatalAndNamesTheKey) {
  v1::ContainerState s = WithWindow(16);
  std::string m, d;
  ASSERT_TRUE(SerializeMovement(s, &m));
  ASSERT_TRUE(SerializeDeclaration(s, &d));
  v1::ContainerState stored;
  ASSERT_TRUE(stored.ParseFromString(m));
  for (const size_t cut : {size_t{1}, stored.gps().packed_points().size() / 2, stored.gps().packed_points().size() - 1}) {
    v1::ContainerState broken = stored;
    broken.mutable_gps()->set_packed_points(stored.gps().packed_points().substr(0, cut));
    MapPartition store;
    store.values[kBox] = Canonical(broken);
    store.values[std::string(kBox) + "#d"] = d;
    Cache cache(&store);
    auto got = cache.Get(kBox);
    ASSERT_FALSE(got.ok()) << "cut at " << cut;
    EXPECT_EQ(got.error().code, Errc::kFatal);
    EXPECT_NE(got.error().message.find("GPS window"), std::string::npos) << got.error().message;
    EXPECT_NE(got.error().message.find(kBox), std::string::npos) << got.error().message;
  }
}

// Loads `m` (a movement part) beside the declaration and evaluation of
// FullState().
Result<v1::ContainerState> LoadMovement(const std::string& m) {
  v1::ContainerState s = FullState();
  std::string d, e;
  if (!SerializeDeclaration(s, &d) || !SerializeEvaluation(s, &e)) return Error{Errc::kFatal, "parts not serialised"};
  MapPartition store;
  store.values[kBox] = ListingEvaluation(m);
  store.values[std::string(kBox) + "#d"] = d;
  store.values[std::string(kBox) + "#e"] = e;
  Cache cache(&store);
  auto got = cache.Get(kBox);
  if (!got.ok()) return got.error();
  if (*got == nullptr) return Error{Errc::kFatal, "nothing loaded"};
  return **got;
}

TEST(StateParts, ASealNumberRepeatedFromTheOneBeforeIsNotWrittenAgain) {
  v1::ContainerState s = WithWindow(24);
  // Seals as e-seals report them: the same number fix after fix, a fix
  // without one, a new seal after an inspection, the old number once more.
  for (int i = 0; i < 24; ++i) {
    auto* p = s.mutable_gps()->mutable_points(i);
    p->set_seal_number(i < 10 ? "SX 0042-17" : i < 12 ? "" : i < 20 ? "CUS 9981-02" : "SX 0042-17");
    // Whole seconds (stored in seconds) from the ninth fix on, milliseconds
    // before; every seal state, the escaped one (tampered) among them.
    if (i >= 8) p->set_fix_time_ms(1794970800000 + i * 61000);
    p->set_seal_state(static_cast<v1::GpsEvent::SealState>(i % 4));
  }
  const std::string whole = Canonical(s);
  std::string m;
  ASSERT_TRUE(SerializeMovement(s, &m));
  v1::ContainerState stored;
  ASSERT_TRUE(stored.ParseFromString(m));
  const std::string& packed = stored.gps().packed_points();
  // Written out three times (first, new seal, old seal again); for the
  // other nineteen fixes with a seal the flag byte says "as before".
  size_t written = 0;
  for (size_t at = packed.find("SX 0042-17"); at != std::string::npos; at = packed.find("SX 0042-17", at + 1)) ++written;
  EXPECT_EQ(written, 2u) << "a seal number equal to the fix before's is not written again";
  EXPECT_EQ(packed.find("CUS 9981-02"), packed.rfind("CUS 9981-02"));
  auto loaded = LoadMovement(m);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(Canonical(*loaded), whole) << "every fix gets its seal number back";
}

// Varints as the packed encoding writes them.
void Put(std::string* out, uint64_t v) {
  for (; v >= 0x80; v >>= 7) out->push_back(static_cast<char>(v | 0x80));
  out->push_back(static_cast<char>(v));
}
uint64_t Zig(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }

// A packed window of two fixes in `format` (pipeline/state_parts.cc), one
// minute apart, both closed and sealed "SX 0042-17" (the first only when
// `first_has_seal`); format 2 writes the second's number as "as before"
// when `second_as_before`.
std::string TwoFixWindow(char format, bool second_as_before, bool first_has_seal = true) {
  std::string w(1, format);
  Put(&w, 2);
  const int64_t t0 = 1794970800000;
  for (int i = 0; i < 2; ++i) {
    const int64_t dt = i == 0 ? t0 : 60000;
    Put(&w, format == 1 ? Zig(dt) : Zig(dt / 1000) << 1 | 1);  // format 2: whole seconds
    Put(&w, Zig(i == 0 ? 130812346 : 1000));    // 1e-7 degree
    Put(&w, Zig(i == 0 ? -1008823457 : -2000));
    Put(&w, Zig(6123));                         // 61.23 km/h
    Put(&w, Zig(0));
    const bool seal = i == 1 || first_has_seal;
    const bool as_before = i == 1 && second_as_before;
    if (format == 1) {
      w.push_back(static_cast<char>(seal ? 8 : 0));  // kHasSeal
      Put(&w, 1);                                     // SEAL_STATE_CLOSED
    } else {
      w.push_back(static_cast<char>((seal ? (as_before ? 1 : 2) : 0) << 3 | 1 << 6));  // seal mode, closed
    }
    if (!seal || as_before) continue;
    Put(&w, 10);
    w.append("SX 0042-17");
  }
  return w;
}

std::string MovementWith(const std::string& packed) {
  v1::ContainerState m;
  m.mutable_gps()->set_packed_points(packed);
  m.mutable_gps()->set_points_seen(2);
  return Canonical(m);
}

TEST(StateParts, AWindowPackedInFormat1StillLoads) {
  auto loaded = LoadMovement(MovementWith(TwoFixWindow(1, false)));
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  const operators::FixWindow window(loaded->gps());
  ASSERT_EQ(window.size(), 2);
  EXPECT_EQ(window.Get(0).seal_number(), "SX 0042-17");
  EXPECT_EQ(window.Get(1).seal_number(), "SX 0042-17");
  EXPECT_EQ(window.Get(1).fix_time_ms(), 1794970860000);
  EXPECT_DOUBLE_EQ(window.Get(1).lat(), 13.0813346);
  // The same window in format 2, its second seal number "as before".
  auto as_before = LoadMovement(MovementWith(TwoFixWindow(2, true)));
  ASSERT_TRUE(as_before.ok()) << as_before.error().message;
  EXPECT_EQ(Canonical(*as_before), Canonical(*loaded));
}

TEST(StateParts, ASealNumberAsBeforeWithNoneBeforeIsFatal) {
  auto got = LoadMovement(MovementWith(TwoFixWindow(2, true, /*first_has_seal=*/false)));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, Errc::kFatal);
  EXPECT_NE(got.error().message.find("GPS window"), std::string::npos) << got.error().message;
  auto unknown = LoadMovement(MovementWith(TwoFixWindow(3, false)));
  ASSERT_FALSE(unknown.ok()) << "a packed format this worker does not know is refused";
}

// The chunk keys among `writes`, "(delete)" marking tombstones.
std::vector<std::string> ChunkKeys(const std::vector<state::PartitionStore::Write>& writes) {
  std::vector<std::string> keys;
  for (const auto& k : Keys(writes))
    if (IsWindowChunkKey(k)) keys.push_back(k);
  return keys;
}

// Stores `cache`'s dirty entries; returns the writes.
std::vector<state::PartitionStore::Write> Flush(Cache& cache, MapPartition& store, int64_t offset) {
  auto writes = cache.TakeDirty();
  EXPECT_TRUE(writes.ok());
  if (!writes.ok()) return {};
  EXPECT_TRUE(store.Commit(*writes, offset, "").ok());
  return *writes;
}

// What a fresh cache loads from `store`, serialised.
std::string Reloaded(MapPartition& store) {
  Cache reread(&store);
  auto loaded = reread.Get(kBox);
  if (!loaded.ok()) return "error: " + loaded.error().message;
  return *loaded == nullptr ? "none" : Canonical(**loaded);
}

// A state's window, as built here (protobuf points) or as loaded (records).
int WindowSize(const v1::ContainerState& s) {
  return s.gps().points_size() > 0 ? s.gps().points_size() : operators::FixWindow(s.gps()).size();
}
int64_t FixTime(const v1::ContainerState& s, int i) {
  return s.gps().points_size() > 0 ? s.gps().points(i).fix_time_ms()
                                   : operators::FixWindow(s.gps()).Get(i).fix_time_ms();
}
// Appends to a loaded state's window a copy of its fix `i` with another
// time and event key.
void AppendCopy(v1::ContainerState* s, int i, int64_t time, uint64_t key) {
  operators::MutableFixWindow w(s->mutable_gps());
  const operators::FixRecord copy = *w.At(i);
  operators::FixRecord* r = w.Insert(w.size());
  *r = copy;
  r->fix_time_ms = time;
  r->event_key = key;
}

// A window of `fixes` fixes, all final.
v1::ContainerState FinalWindow(int fixes) {
  v1::ContainerState s = WithWindow(fixes);
  s.mutable_gps()->set_final_before_ms(FixTime(s, fixes - 1) + 1);
  return s;
}

TEST(StateParts, TheWindowsFinalFixesAreStoredInChunksWrittenOnceAndDeletedWhenTheyLeave) {
  MapPartition store;
  Cache cache(&store);
  v1::ContainerState s = WithWindow(40);
  // Fixes 0-34 are final: two whole chunks of them, 35-39 stay in M.
  s.mutable_gps()->set_final_before_ms(FixTime(s, 35));
  std::string whole_m;
  ASSERT_TRUE(SerializeMovement(s, &whole_m));
  cache.Put(kBox, s);
  auto writes = Flush(cache, store, 1);
  const std::string first = std::to_string(FixTime(s, 0) / 1000);
  const std::string second = std::to_string(FixTime(s, 0) / 1000 + 1);
  EXPECT_EQ(ChunkKeys(writes), (std::vector<std::string>{std::string(kBox) + "#w" + first,
                                                         std::string(kBox) + "#w" + second}));
  ASSERT_TRUE(store.values.count(kBox));
  EXPECT_LT(store.values[kBox].size() * 2, whole_m.size())
      << "M " << store.values[kBox].size() << " bytes, M holding the whole window " << whole_m.size();
  EXPECT_EQ(Reloaded(store), Canonical(s)) << "chunks and M load as the window";

  // A new fix, final_before unchanged: M only, no chunk rewritten.
  auto state = cache.Get(kBox);
  ASSERT_TRUE(state.ok() && *state != nullptr);
  v1::ContainerState* live = *state;
  AppendCopy(live, 39, FixTime(*live, 39) + 60000, 77);
  ASSERT_TRUE(cache.MarkDirty(kBox, kMovementPart).ok());
  writes = Flush(cache, store, 2);
  EXPECT_EQ(Keys(writes), std::vector<std::string>{kBox});
  EXPECT_EQ(Reloaded(store), Canonical(*live));

  // The window drops its 20 oldest fixes: the first chunk is deleted, the
  // second stays with its first 4 fixes skipped.
  operators::MutableFixWindow(live->mutable_gps()).EraseFront(20);
  ASSERT_TRUE(cache.MarkDirty(kBox, kMovementPart).ok());
  writes = Flush(cache, store, 3);
  EXPECT_EQ(Keys(writes), (std::vector<std::string>{kBox, std::string(kBox) + "#w" + first + " (delete)"}));
  EXPECT_EQ(Reloaded(store), Canonical(*live));

  // 10 more fixes and all final: 16 of the 21 not yet in chunks make one.
  for (int i = 0; i < 10; ++i) {
    const int n = WindowSize(*live);
    AppendCopy(live, n - 1, FixTime(*live, n - 1) + 30000, 100 + i);
  }
  live->mutable_gps()->set_final_before_ms(FixTime(*live, WindowSize(*live) - 1) + 1);
  ASSERT_TRUE(cache.MarkDirty(kBox, kMovementPart).ok());
  writes = Flush(cache, store, 4);
  EXPECT_EQ(ChunkKeys(writes), std::vector<std::string>{std::string(kBox) + "#w" + std::to_string(FixTime(s, 0) / 1000 + 2)});
  const std::string expected = Canonical(*live);
  EXPECT_EQ(Reloaded(store), expected);

  // Expiry deletes every part and every chunk M lists, in a cache that
  // loaded the state first (the worker's Erase loads it).
  Cache other(&store);
  ASSERT_TRUE(other.Get(kBox).ok());
  other.Erase(kBox);
  writes = Flush(other, store, 5);
  EXPECT_EQ(ChunkKeys(writes),
            (std::vector<std::string>{std::string(kBox) + "#w" + second + " (delete)",
                                      std::string(kBox) + "#w" + std::to_string(FixTime(s, 0) / 1000 + 2) + " (delete)"}));
  EXPECT_TRUE(store.values.empty()) << store.values.size() << " keys left, the first " << store.values.begin()->first;
}

TEST(StateParts, AChunkEndsBetweenTwoFixTimesAndHoldsOnlyFinalFixes) {
  MapPartition store;
  Cache cache(&store);
  v1::ContainerState s = WithWindow(20);
  // Fix 16 has fix 15's time: a chunk of 0-15 would not end between two
  // times, so none is written, though all are final.
  s.mutable_gps()->mutable_points(16)->set_fix_time_ms(FixTime(s, 15));
  s.mutable_gps()->set_final_before_ms(FixTime(s, 19) + 1);
  cache.Put(kBox, s);
  EXPECT_TRUE(ChunkKeys(Flush(cache, store, 1)).empty());
  EXPECT_EQ(Reloaded(store), Canonical(s));
  // Final only before fix 15: not a whole chunk of final fixes.
  MapPartition store2;
  Cache cache2(&store2);
  v1::ContainerState t = WithWindow(20);
  t.mutable_gps()->set_final_before_ms(FixTime(t, 15));
  cache2.Put(kBox, t);
  EXPECT_TRUE(ChunkKeys(Flush(cache2, store2, 1)).empty());
  t.mutable_gps()->set_final_before_ms(FixTime(t, 16));
  cache2.Put(kBox, t);
  EXPECT_EQ(ChunkKeys(Flush(cache2, store2, 2)).size(), 1u);
  EXPECT_EQ(Reloaded(store2), Canonical(t));
}

TEST(StateParts, AContainerErasedAndPutAgainInOneCommitDeletesTheOldChunks) {
  MapPartition store;
  Cache cache(&store);
  cache.Put(kBox, FinalWindow(40));
  const auto first_chunks = ChunkKeys(Flush(cache, store, 1));
  ASSERT_EQ(first_chunks.size(), 2u);
  // Expired, and in the same commit a new container of that number with
  // fixes as old as the erased one's (a replayed archive).
  ASSERT_TRUE(cache.Get(kBox).ok());
  cache.Erase(kBox);
  v1::ContainerState fresh = FinalWindow(20);
  for (auto& p : *fresh.mutable_gps()->mutable_points()) p.set_event_key(p.event_key() + 1);
  cache.Put(kBox, fresh);
  const auto writes = Flush(cache, store, 2);
  std::vector<std::string> deleted, written;
  for (const auto& k : ChunkKeys(writes)) (k.ends_with(" (delete)") ? deleted : written).push_back(k);
  EXPECT_EQ(deleted, (std::vector<std::string>{first_chunks[0] + " (delete)", first_chunks[1] + " (delete)"}));
  ASSERT_EQ(written.size(), 1u) << "the new window's 16 final fixes";
  EXPECT_NE(written[0] + " (delete)", deleted[0]);
  EXPECT_NE(written[0] + " (delete)", deleted[1]);
  EXPECT_EQ(Reloaded(store), Canonical(fresh)) << "the new container's window alone";
}

TEST(StateParts, TheChangelogGetsNewChunksBeforeTheMovementPartAndDeletedChunksAfter) {
  std::vector<state::PartitionStore::Write> writes = {
      {kBox, "m"},
      {std::string(kBox) + "#d", "d"},
      {std::string(kBox) + "#w5", std::nullopt},
      {std::string(kBox) + "#w9", "new"},
      {"ZZZU0000001", "m2"},
      {"ZZZU0000001#w3", "new2"}};
  OrderForChangelog(&writes);
  EXPECT_EQ(Keys(writes), (std::vector<std::string>{std::string(kBox) + "#w9", "ZZZU0000001#w3", kBox,
                                                    std::string(kBox) + "#d", "ZZZU0000001",
                                                    std::string(kBox) + "#w5 (delete)"}));
}

TEST(StateParts, AMissingOrOverlongWindowChunkListIsFatalAndNamesTheKey) {
  MapPartition store;
  Cache cache(&store);
  cache.Put(kBox, FinalWindow(20));
  const auto chunks = ChunkKeys(Flush(cache, store, 1));
  ASSERT_EQ(chunks.size(), 1u);
  const std::string chunk = store.values[chunks[0]];
  store.values.erase(chunks[0]);
  std::string error = Reloaded(store);
  EXPECT_NE(error.find(chunks[0]), std::string::npos) << error;
  EXPECT_NE(error.find("missing"), std::string::npos) << error;
  store.values[chunks[0]] = chunk.substr(0, chunk.size() / 2);
  error = Reloaded(store);
  EXPECT_NE(error.find("does not decode"), std::string::npos) << error;
  // A movement part listing more chunks than a window holds is refused
  // before anything is read.
  v1::ContainerState m;
  ASSERT_TRUE(m.ParseFromString(store.values[kBox]));
  m.mutable_gps()->set_chunk_next(m.gps().chunk_first() + 1000000);
  store.values[kBox] = Canonical(m);
  error = Reloaded(store);
  EXPECT_NE(error.find("more than a window holds"), std::string::npos) << error;
}

TEST(StateParts, DeclarationKeysAreRecognised) {
  EXPECT_TRUE(IsDeclarationKey("CSQU3054383#d"));
  EXPECT_FALSE(IsDeclarationKey("CSQU3054383"));
  EXPECT_FALSE(IsDeclarationKey("__task__"));
  EXPECT_TRUE(IsWindowChunkKey("CSQU3054383#w1794970800"));
  EXPECT_FALSE(IsWindowChunkKey("CSQU3054383#d"));
  EXPECT_TRUE(IsMovementKey("CSQU3054383"));
  EXPECT_FALSE(IsMovementKey("CSQU3054383#w1794970800"));
  EXPECT_FALSE(IsMovementKey("CSQU3054383#e"));
  EXPECT_EQ(WindowChunkKey("CSQU3054383", 42), "CSQU3054383#w42");
}

}  // namespace
}  // namespace boxwatch::pipeline
