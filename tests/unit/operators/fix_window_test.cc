#include "operators/fix_window.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>

namespace boxwatch::operators {
namespace {

v1::GpsPoint Point(int64_t t, std::string seal = "", std::string geofence = "", std::string event_id = "") {
  v1::GpsPoint p;
  p.set_fix_time_ms(t);
  p.set_lat(13.0812345 + static_cast<double>(t % 1000) * 1e-7);
  p.set_lon(-100.8823456);
  p.set_speed_kmh(61.25);
  p.set_corridor_distance_m(370.1);
  p.set_seal_state(v1::GpsEvent::SEAL_STATE_CLOSED);
  p.set_event_key(static_cast<uint64_t>(t) * 2654435761u);
  p.set_outside_corridors(t % 2 == 0);
  p.set_in_stop_zone(t % 3 == 0);
  if (!seal.empty()) p.set_seal_number(seal);
  if (!geofence.empty()) {
    p.set_border_geofence(geofence);
    p.set_at_approved_crossing(true);
  }
  if (!event_id.empty()) p.set_event_id(event_id);
  return p;
}

// The window's fixes as protobuf points, serialised: what it must give back.
std::string AsPoints(const v1::GpsTrack& track) {
  v1::GpsTrack out;
  ToPoints(track, 0, FixWindow(track).size(), out.mutable_points());
  return out.SerializeAsString();
}

TEST(FixWindow, GivesBackEveryFieldOfTheProtobufFixes) {
  v1::GpsTrack built;
  *built.add_points() = Point(1000, "SX 0042-17");
  *built.add_points() = Point(2000, "SX 0042-17", "BORDER-KZ-UZ");
  *built.add_points() = Point(3000, "", "", "TRK-000123-77");
  *built.add_points() = Point(4000);
  built.mutable_points(3)->set_seal_state(static_cast<v1::GpsEvent::SealState>(1234567));  // a newer producer's state
  const std::string expected = v1::GpsTrack(built).SerializeAsString();
  v1::GpsTrack track = built;
  MovePointsToWindow(&track);
  EXPECT_EQ(track.points_size(), 0);
  ASSERT_EQ(FixWindow(track).size(), 4);
  EXPECT_EQ(AsPoints(track), expected);
  const FixWindow w(track);
  EXPECT_EQ(w.Get(1).seal_number(), "SX 0042-17");
  EXPECT_EQ(w.Get(1).record().seal_number, w.Get(0).record().seal_number) << "the same seal number is kept once";
  EXPECT_EQ(w.Get(1).border_geofence(), "BORDER-KZ-UZ");
  EXPECT_TRUE(w.Get(1).at_approved_crossing());
  EXPECT_EQ(w.Get(2).event_id(), "TRK-000123-77");
  EXPECT_TRUE(w.Get(3).seal_number().empty());
  EXPECT_EQ(PointsByteSize(track), built.ByteSizeLong()) << "what the window takes as protobuf points";
}

TEST(FixWindow, InsertKeepsOrderAndEraseFrontDropsTheOldest) {
  v1::GpsTrack track;
  MutableFixWindow w(&track);
  for (int64_t t : {1000, 3000, 4000}) w.Append(Point(t, "S" + std::to_string(t)));
  FixRecord* r = w.Insert(1);
  r->fix_time_ms = 2000;
  w.SetSealNumber(1, "S2000");
  ASSERT_EQ(w.size(), 4);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(w.View().Get(i).fix_time_ms(), 1000 * (i + 1));
    EXPECT_EQ(w.View().Get(i).seal_number(), "S" + std::to_string(1000 * (i + 1)));
  }
  w.EraseFront(3);
  ASSERT_EQ(w.size(), 1);
  EXPECT_EQ(w.View().Get(0).fix_time_ms(), 4000);
  EXPECT_EQ(w.View().Get(0).seal_number(), "S4000");
  w.EraseFront(1);
  EXPECT_EQ(w.size(), 0);
  EXPECT_TRUE(track.live_texts().empty()) << "an empty window keeps no texts";
}

// A window whose every fix reads another long seal number, kept at its size
// as fixes come and go: the texts stay bounded and every fix reads its own.
TEST(FixWindow, TextsNoFixRefersToAreDroppedAndTheRestReadAsBefore) {
  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  v1::GpsTrack track;
  MutableFixWindow w(&track);
  std::vector<v1::GpsPoint> expected;
  size_t most_live = 0;
  for (int64_t t = 1; t <= 5000; ++t) {
    std::string seal(1 + rng() % 128, 'A' + static_cast<char>(rng() % 26));
    std::string geofence = rng() % 10 == 0 ? "GEO-" + std::to_string(rng() % 5) : "";
    expected.push_back(Point(t * 1000, rng() % 4 == 0 ? "" : seal, geofence));
    w.Append(expected.back());
    if (w.size() > 64) {
      w.EraseFront(1);
      expected.erase(expected.begin());
    }
    size_t live = 0;  // the texts the window's fixes hold, with their lengths
    for (const auto& p : expected) live += p.seal_number().size() + p.border_geofence().size() + 4;
    most_live = std::max(most_live, live);
    ASSERT_LE(track.live_texts().size(), 2 * std::max(MutableFixWindow::kCompactTextsAt, most_live) + 2 * 131)
        << "at fix " << t;
  }
  v1::GpsTrack want;
  for (const auto& p : expected) *want.add_points() = p;
  EXPECT_EQ(AsPoints(track), want.SerializeAsString());
}

}  // namespace
}  // namespace boxwatch::operators
