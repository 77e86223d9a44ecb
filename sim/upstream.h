#pragma once
// Simulated traffic as the upstream systems of a Port Control Unit send it:
// each manifest version as a UN/EDIFACT CUSCAR interchange on
// boxwatch.raw.cuscar, each radiation-portal scan as an ANSI N42.42-2012
// document on boxwatch.raw.n42 (the formats `boxwatch ingest` reads); X-ray
// results, GPS fixes, outcomes and records that are malformed on purpose
// stay as they are. Keys, timestamps and order are kept, so `boxwatch
// ingest` gives the worker the same records as the native traffic.

#include "sim/traffic.h"

namespace boxwatch::sim {

Traffic InUpstreamFormats(const Traffic& traffic);

}  // namespace boxwatch::sim
