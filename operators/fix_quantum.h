#pragma once
// The resolutions at which the engine keeps a GPS fix's numbers. A fix's
// position, speed and corridor distance are rounded to these when it joins,
// so that the compact encoding of the GPS window in the state's movement
// part (pipeline/state_parts.cc) gives back exactly the values it was given:
// a state evaluated from memory and one reloaded from RocksDB or the
// changelog see the same numbers.

#include <cmath>
#include <cstdint>

namespace boxwatch::operators {

inline constexpr double kDegreeScale = 1e7;   // 1e-7 degree, about 1 cm
inline constexpr double kSpeedScale = 100;    // 0.01 km/h
inline constexpr double kDistanceScale = 10;  // 0.1 m

// `v` rounded to 1/scale; a value too large or not finite is kept as it is
// (a window holding one is then stored uncompacted).
inline double Quantize(double v, double scale) {
  if (!std::isfinite(v) || std::fabs(v * scale) >= 9e15) return v;
  return static_cast<double>(std::llround(v * scale)) / scale;
}

// The integer q with q / scale == v exactly; false when `v` is not on the
// grid (or out of range).
// Runs for every number of every fix each time a window is stored, so it
// rounds with arithmetic instead of a libm call: adding and subtracting
// 1.5 * 2^52 rounds any |x| < 2^51 to an integer (ties to even, the default
// mode; IEEE arithmetic, which the build keeps: -ffast-math would fold it away). How
// a tie rounds does not matter: a value on the grid is within an ulp of its
// integer, and a value off it fails the check whichever way it rounds.
inline bool QuantumOf(double v, double scale, int64_t* q) {
  const double x = v * scale;
  // NaN and infinities fail the comparison; -0.0 would come back as +0.0
  // (Quantize never makes it).
  if (!(std::fabs(x) < 0x1p51) || (v == 0 && std::signbit(v))) return false;
  constexpr double kRound = 0x1.8p52;
  *q = static_cast<int64_t>((x + kRound) - kRound);
  return static_cast<double>(*q) / scale == v;
}

}  // namespace boxwatch::operators
