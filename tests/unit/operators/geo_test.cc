#include "operators/geo.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "operators/default_profile.h"

namespace boxwatch::operators {
namespace {

// The corridor and zone look-ups with their indexes (segment boxes, zones
// by latitude) against the same look-ups measuring everything, over points
// near the default profile's geography and far from it: the same answers,
// bit for bit.
TEST(Geo, IndexedLookUpsAnswerAsMeasuringEverything) {
  auto parsed = ParseProfile(DefaultProfileYaml(), kDefaultProfileSource);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const Profile& indexed = *parsed;
  ASSERT_FALSE(indexed.corridors.empty());
  ASSERT_EQ(indexed.stop_zone_index.by_lat.size(), indexed.stop_zones.size());
  Profile plain = indexed;
  for (auto& c : plain.corridors) c.segment_boxes.clear();

  const unsigned seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(-1, 1);
  int inside = 0, outside_near = 0, in_zone = 0;
  for (int i = 0; i < 200000; ++i) {
    LatLon p;
    if (i % 3 == 0) {  // anywhere in the corridors' region
      const Corridor& c = indexed.corridors[rng() % indexed.corridors.size()];
      p = {c.min_lat + (c.max_lat - c.min_lat) * (unit(rng) + 1) / 2, c.min_lon + (c.max_lon - c.min_lon) * (unit(rng) + 1) / 2};
    } else if (i % 3 == 1) {  // near a corridor's line (up to twice its buffer)
      const Corridor& c = indexed.corridors[rng() % indexed.corridors.size()];
      const LatLon a = c.points[rng() % c.points.size()];
      const double reach = 2 * c.buffer_m / 111000.0;
      p = {a.lat + unit(rng) * reach, a.lon + unit(rng) * reach};
    } else {  // near a zone's edge
      const auto& zones = rng() % 2 ? indexed.stop_zones : indexed.border_crossings;
      const Zone& z = zones[rng() % zones.size()];
      const double reach = 1.2 * z.radius_m / 111000.0;
      p = {z.at.lat + unit(rng) * reach, z.at.lon + unit(rng) * reach};
    }
    const CorridorFix a = LocateInCorridors(indexed, p);
    const CorridorFix b = LocateInCorridors(plain, p);
    ASSERT_EQ(a.inside, b.inside) << p.lat << "," << p.lon;
    ASSERT_EQ(a.distance_m, b.distance_m) << p.lat << "," << p.lon;
    inside += a.inside;
    outside_near += !a.inside && a.distance_m >= 0;
    for (const auto* zones : {&indexed.stop_zones, &indexed.border_crossings}) {
      const ZoneIndex* index = zones == &indexed.stop_zones ? &indexed.stop_zone_index : &indexed.border_crossing_index;
      const Zone* x = ZoneContaining(*zones, p, index);
      ASSERT_EQ(x, ZoneContaining(*zones, p)) << p.lat << "," << p.lon;
      in_zone += x != nullptr;
    }
  }
  // The points reach every case.
  EXPECT_GT(inside, 1000);
  EXPECT_GT(outside_near, 1000);
  EXPECT_GT(in_zone, 1000);
}

// An index built for another list of zones is not used.
TEST(Geo, AZoneIndexOfAnotherListIsIgnored) {
  std::vector<Zone> zones(2);
  zones[0].at = {10, 10};
  zones[0].radius_m = 1000;
  zones[1].at = {20, 20};
  zones[1].radius_m = 1000;
  const ZoneIndex index = BuildZoneIndex({zones[0]});
  EXPECT_EQ(ZoneContaining(zones, {20, 20}, &index), &zones[1]);
  EXPECT_EQ(ZoneContaining(zones, {20, 20}, &index), ZoneContaining(zones, {20, 20}));
}

}  // namespace
}  // namespace boxwatch::operators
