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

CorridorFix LocateInCorridors(const Profile& profile, LatLon p) {
  CorridorFix fix;
  double kx = 0;  // computed once, for the first corridor whose box holds p
  for (const auto& c : profile.corridors) {
    if (p.lat < c.min_lat || p.lat > c.max_lat || p.lon < c.min_lon || p.lon > c.max_lon) continue;
    if (kx == 0) kx = MetresPerDegreeLon(p);
    double best = INFINITY;
    for (size_t i = 1; i < c.points.size(); ++i) {
      const double d = SegmentDistanceM(kx, p, c.points[i - 1], c.points[i]);
      if (d <= c.buffer_m) {
        // Inside: the distance to this corridor's line is its nearest
        // segment's (earlier segments were all beyond the buffer, so farther).
        // gps.corridor_drift reads it; the first segment found would grow
        // along the next one past a bend.
        double nearest = d;
        for (size_t j = i + 1; j < c.points.size(); ++j) {
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

const Zone* ZoneContaining(const std::vector<Zone>& zones, LatLon p) {
  for (const auto& z : zones) {
    // Cheap reject before the trigonometry: 1 degree of latitude ~ 111 km.
    if (std::fabs(p.lat - z.at.lat) * 111000.0 > z.radius_m) continue;
    if (HaversineM(p, z.at) <= z.radius_m) return &z;
  }
  return nullptr;
}

}  // namespace boxwatch::operators
