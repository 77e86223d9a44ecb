#pragma once
// CUSCAR (UN/EDIFACT customs cargo report, directories D.95B and later) to
// boxwatch.v1.Manifest: one Manifest per container (EQD) of a message.
//
// The mapping reads segments in order and does not depend on segment group
// numbers, which shift between directories; docs/formats.md has the table:
//   BGM   1225 message function: 9 original (version 1); 5 replace, 4 change:
//         an amendment, its version from BGM C106/1056 (D.01B+ layout);
//         1 / 3 cancellation, deletion: refused (cuscar_function)
//   DTM   137 document date -> declared_at_ms; 132 arrival estimated -> eta_ms
//         (formats 102, 203, 204, 101, 201; 205 with its offset; UTC otherwise)
//   TDT   20 main carriage: 8028 voyage; C222 8213 with 1131 = 146 -> IMO, 8212 vessel name;
//         C040 3127 -> carrier_scac
//   LOC   9 loading, 11/12 discharge, 13 transhipment (in order), 20/8/7 final destination
//   EQD   CN: 8260 container (ISO 6346 checked), C224 8155 size/type; its MEA T -> tare, SEL -> seals
//         (other equipment, with its MEA and SEL, is left aside)
//   CNI   a consignment; RFF BM (or CNI C503) -> bill_of_lading; CPI 4237 P/C/B prepaid/collect/
//         third party, C231 4215 ZZZ -> cash (by agreement with the filer: EDIFACT has no cash code)
//   NAD   CZ shipper, CN consignee, N1/NI notify party: C080 (or C058) name, C059 + city + postcode, 3207
//   GID   a goods line: 7224 packages, 7065 type; FTX AAA description; MEA G/AAD gross weight;
//         CST C246 7361 (or PIA with 7143 HS) HS code; SGP ties it to containers
// A goods item with SGP goes to those containers (packages and weight split
// by SGP's package counts); without SGP, to the message's container when it
// has exactly one (with several it is placed nowhere, and a container left
// with no consignment is refused as cuscar_link).
//
// Pure; thread-compatible. Fuzzed: tests/fuzz/cuscar_fuzz.cc.

#include <string>
#include <vector>

#include "boxwatch/v1/manifest.pb.h"
#include "ingest/edifact.h"

namespace boxwatch::ingest {

struct CuscarResult {
  std::vector<v1::Manifest> manifests;  // one per container
  std::vector<EdiProblem> problems;     // the message (or one container of it) could not be converted
};

// `interchange` gives the fallback document time (UNB S004).
CuscarResult MapCuscar(const EdiMessage& message, const EdiInterchange& interchange);

// The other way, for the simulator and tests: manifests of one filing as one
// interchange (syntax UNOW version 4 unless `syntax` says otherwise, directory
// D.01B), one message per manifest, one consignment and container each.
std::string WriteCuscar(const std::vector<v1::Manifest>& manifests, const std::string& control_reference,
                        const std::string& syntax = "UNOW");

}  // namespace boxwatch::ingest
