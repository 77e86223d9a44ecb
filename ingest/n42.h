#pragma once
// ANSI N42.42 radiation data (the 2012 edition's RadInstrumentData and the
// 2006 edition's N42InstrumentData, as radiation portal monitors write
// them) to boxwatch.v1.ScanResult (kind RPM).
//
// One ScanResult per occupancy: in 2012 files a RadMeasurementGroup, or a
// foreground RadMeasurement outside any group; in 2006 files a Measurement's
// occupied DetectorData slices. Per occupancy: gross count rates summed over
// the gamma (neutron) detectors, the highest slice while occupied; the
// background rates from the Background measurements (2012) or unoccupied
// slices (2006) of the same document; alarms from RadAlarm (2012, linked to
// the occupancy through its AnalysisResults, or document-wide) or
// ThreatDescription (2006); the occupancy's duration; the container number
// from the linked RadItemInformation (a characteristic named
// ContainerNumber, else the first ISO 6346 number in its description) or
// the 2006 MeasuredItemInformation; the site from the instrument's
// characteristic named Site (a UN/LOCODE) or N42Options::default_site.
//
// Parsed with libxml2 with network access, DTD loading and entity
// substitution off, and any document with a DOCTYPE or ENTITY declaration
// refused before parsing (no external entities, no entity expansion bombs).
// Pure apart from libxml2's parser state; thread-safe after libxml2's
// initialisation (InitXml()). Fuzzed: tests/fuzz/n42_fuzz.cc.

#include <string>
#include <string_view>
#include <vector>

#include "boxwatch/v1/scan.pb.h"

namespace boxwatch::ingest {

struct N42Options {
  std::string default_site;   // UN/LOCODE used when the document names none; "" = a site is required
  size_t max_bytes = 8 << 20; // larger documents are refused (bytes)
};

struct N42Problem {
  std::string reason;  // stable: n42_size, n42_doctype, n42_xml, n42_root, n42_time, n42_container, n42_site, n42_counts, n42_empty
  std::string path;    // element path, e.g. /RadInstrumentData/RadMeasurement[2]/StartDateTime; "" for the document
  std::string detail;
};

struct N42Parse {
  std::vector<v1::ScanResult> scans;  // converted occupancies
  std::vector<N42Problem> problems;   // occupancies (or the whole document) that could not be converted
  std::string edition;                // "2012", "2006", or "" when not N42
};

// Call once per process before parsing from several threads (idempotent).
void InitXml();

N42Parse ParseN42(std::string_view bytes, const N42Options& options);

// The other way, for the simulator and tests: an RPM ScanResult as one
// N42.42-2012 document (n42DocUUID = scan_id, which must then be UUID-shaped;
// gross counts as 1 s samples so rates carry over exactly; a background
// measurement; a RadAlarm per alarm; the site as the instrument's Site
// characteristic; the container as the item's ContainerNumber).
std::string WriteN42(const v1::ScanResult& scan);

}  // namespace boxwatch::ingest
