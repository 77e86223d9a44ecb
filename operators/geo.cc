#include "operators/geo.h"

#include <algorithm>
#include <cmath>

namespace boxwatch::operators {
namespace {
constexpr double kEarthRadiusM = 6371008.8;
constexpr double kRad = M_PI / 180.0;

// Metres per degree of longitude at p's latitude: the planar projection's x
// scale around p (one cosine, the same for every segment p is measured to).
double MetresPerDegreeLon(LatLon p) { return std::cos(p.lat * kRad) * kRad * kEarthRadiusM; }

double SegmentDistanceM(double kx, LatLon p, LatLon a, LatLon b) {
  const double ky = kRad * kEarthRadiusM;
  const double ax = (a.lon - p.lon) * kx, ay = (a.lat - p.lat) * ky;
  const double bx = (b.lon - p.lon) * kx, by = (b.lat - p.lat) * ky;
  const double dx = bx - ax, dy = by - ay;
  const double len2 = dx * dx + dy * dy;
  double t = len2 > 0 ? -(ax * dx + ay * dy) / len2 : 0;
  t = std::clamp(t, 0.0, 1.0);
  const double cx = ax + t * dx, cy = ay + t * dy;
  return std::sqrt(cx * cx + cy * cy);
}
}  // namespace

double HaversineM(LatLon a, LatLon b) {
  const double dlat = (b.lat - a.lat) * kRad;
  const double dlon = (b.lon - a.lon) * kRad;
  const double s = std::sin(dlat / 2) * std::sin(dlat / 2) +
                   std::cos(a.lat * kRad) * std::cos(b.lat * kRad) * std::sin(dlon / 2) * std::sin(dlon / 2);
  return 2 * kEarthRadiusM * std::asin(std::min(1.0, std::sqrt(s)));
}

double DistanceToSegmentM(LatLon p, LatLon a, LatLon b) { return SegmentDistanceM(MetresPerDegreeLon(p), p, a, b); }

namespace {
// Squared, a lower bound of SegmentDistanceM(kx, p, ...) for a segment
// within `box`: the distance to the box in the same projection (the
// projection scales each axis, so the segment's image lies in the box's).
double BoxDistanceSquared(double kx, LatLon p, const Corridor::Box& box) {
  const double ky = kRad * kEarthRadiusM;
  const double dx = std::max({0.0, box.min_lon - p.lon, p.lon - box.max_lon}) * kx;
  const double dy = std::max({0.0, box.min_lat - p.lat, p.lat - box.max_lat}) * ky;
  return dx * dx + dy * dy;
}

// Whether a segment whose lower bound is `bound2` (squared) is farther than
// `limit` whatever the rounding of the exact measure: a margin far above
// the few ulps both computations may be off by, so passing a segment over
// never changes what the full measure would have found.
bool SurelyFarther(double bound2, double limit) {
  const double l = limit * (1 + 1e-9) + 1e-6;
  return bound2 > l * l;
}
}  // namespace

CorridorFix LocateInCorridors(const Profile& profile, LatLon p) {
  CorridorFix fix;
  double kx = 0;  // computed once, for the first corridor whose box holds p
  for (const auto& c : profile.corridors) {
    if (p.lat < c.min_lat || p.lat > c.max_lat || p.lon < c.min_lon || p.lon > c.max_lon) continue;
    if (kx == 0) kx = MetresPerDegreeLon(p);
    const bool boxed = c.segment_boxes.size() + 1 == c.points.size();
    double best = INFINITY;
    for (size_t i = 1; i < c.points.size(); ++i) {
      // Neither within the buffer nor nearer than the nearest so far.
      if (boxed && SurelyFarther(BoxDistanceSquared(kx, p, c.segment_boxes[i - 1]), std::max(c.buffer_m, best))) {
        continue;
      }
      const double d = SegmentDistanceM(kx, p, c.points[i - 1], c.points[i]);
      if (d <= c.buffer_m) {
        // Inside: the distance to this corridor's line is its nearest
        // segment's (earlier segments were all beyond the buffer, so farther).
        // gps.corridor_drift reads it; the first segment found would grow
        // along the next one past a bend.
        double nearest = d;
        for (size_t j = i + 1; j < c.points.size(); ++j) {
          if (boxed && SurelyFarther(BoxDistanceSquared(kx, p, c.segment_boxes[j - 1]), nearest)) continue;
          nearest = std::min(nearest, SegmentDistanceM(kx, p, c.points[j - 1], c.points[j]));
        }
        fix.inside = true;
        fix.distance_m = nearest;
        return fix;
      }
      best = std::min(best, d);
    }
    if (fix.distance_m < 0 || best < fix.distance_m) fix.distance_m = best;
  }
  return fix;
}

ZoneIndex BuildZoneIndex(const std::vector<Zone>& zones) {
  ZoneIndex index;
  double reach_m = 0;
  for (size_t i = 0; i < zones.size(); ++i) {
    index.by_lat.push_back({zones[i].at.lat, static_cast<uint32_t>(i)});
    reach_m = std::max(reach_m, zones[i].radius_m);
  }
  std::sort(index.by_lat.begin(), index.by_lat.end(),
            [](const ZoneIndex::Entry& a, const ZoneIndex::Entry& b) { return a.lat < b.lat; });
  // ZoneContaining's own first test passes over a zone farther than its
  // radius in latitude (111 km a degree); the margin keeps every zone it
  // would measure inside the reach.
  index.reach_deg = reach_m / 111000.0 * (1 + 1e-6) + 1e-9;
  return index;
}

const Zone* ZoneContaining(const std::vector<Zone>& zones, LatLon p, const ZoneIndex* index) {
  auto contains = [&](const Zone& z) {
    // Cheap reject before the trigonometry: 1 degree of latitude ~ 111 km.
    return std::fabs(p.lat - z.at.lat) * 111000.0 <= z.radius_m && HaversineM(p, z.at) <= z.radius_m;
  };
  if (index == nullptr || index->by_lat.size() != zones.size()) {
    for (const auto& z : zones) {
      if (contains(z)) return &z;
    }
    return nullptr;
  }
  auto it = std::lower_bound(index->by_lat.begin(), index->by_lat.end(), p.lat - index->reach_deg,
                             [](const ZoneIndex::Entry& e, double lat) { return e.lat < lat; });
  uint32_t first = UINT32_MAX;  // the first zone in list order that holds p
  for (; it != index->by_lat.end() && it->lat <= p.lat + index->reach_deg; ++it) {
    if (it->zone < first && contains(zones[it->zone])) first = it->zone;
  }
  return first == UINT32_MAX ? nullptr : &zones[first];
}

}  // namespace boxwatch::operators
