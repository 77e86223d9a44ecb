#pragma once
// Small-distance geometry on WGS84 coordinates, accurate to well under 1% at
// corridor scale (tens of km), and cheap: the GPS hot path calls it per fix.

#include "operators/profile.h"

namespace boxwatch::operators {

// Great-circle distance in metres.
double HaversineM(LatLon a, LatLon b);

// Distance in metres from `p` to the segment a-b (local equirectangular
// projection around `p`).
double DistanceToSegmentM(LatLon p, LatLon a, LatLon b);

struct CorridorFix {
  bool inside = false;        // within some corridor's buffer
  // Outside: metres to the nearest corridor centre line (-1 when no corridor
  // is near). Inside: metres to the centre line of the first corridor found
  // whose buffer holds the point.
  double distance_m = -1;
};

// Tests `p` against every corridor; corridors whose buffered bounding box
// excludes `p` are skipped without computing distances.
CorridorFix LocateInCorridors(const Profile& profile, LatLon p);

// The first zone of `zones` (in their order) whose radius contains `p`, or
// null. With `index` built for `zones`, only the zones near p's latitude
// are measured (same answer).
const Zone* ZoneContaining(const std::vector<Zone>& zones, LatLon p, const ZoneIndex* index = nullptr);

}  // namespace boxwatch::operators
