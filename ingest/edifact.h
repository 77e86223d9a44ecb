#pragma once
// UN/EDIFACT syntax (ISO 9735, syntax versions 1-4) as carriers and customs
// systems send it: an interchange UNB ... UNZ holding messages UNH ... UNT
// (optionally inside functional groups UNG ... UNE), with the service string
// advice UNA or the defaults, the release character, repetition (version 4)
// and the character sets UNOA-UNOK, UNOW and UNOY decoded to UTF-8.
//
// Parse() checks the envelopes: UNZ's count against the messages (or
// groups), UNT's segment count (UNH and UNT included) and that every
// trailer repeats its header's reference. An interchange-level problem
// (truncation, a broken UNB/UNZ, an unsupported character set) fails the
// whole interchange; a message-level one (wrong UNT count, a message cut by
// the next UNH) fails that message only: the others are still returned.
// Every problem names a stable reason and the position: the segment's
// number in the interchange (1 = the first after UNA) and its tag.
//
// Pure, no I/O; thread-compatible. Input of any bytes is safe (fuzzed:
// tests/fuzz/edifact_fuzz.cc).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace boxwatch::ingest {

// Where in a raw message a problem sits.
struct EdiProblem {
  std::string reason;  // stable: edifact_truncated, edifact_syntax, edifact_envelope, edifact_count, edifact_charset
  size_t segment = 0;  // 1-based segment number in the interchange; 0: before the first
  std::string tag;     // the segment's tag, when known
  std::string detail;  // for a person
  std::string Position() const;  // "segment 12 (UNT)"
};

struct EdiSegment {
  std::string tag;
  // elements[e][r][c]: data element e (0 = the first after the tag),
  // repetition r, component c; every string is UTF-8, release characters removed.
  std::vector<std::vector<std::vector<std::string>>> elements;
  size_t number = 0;  // in the interchange
  // Component c of repetition r of element e; "" when absent.
  const std::string& Get(size_t e, size_t c = 0, size_t r = 0) const;
  size_t Repetitions(size_t e) const { return e < elements.size() ? elements[e].size() : 0; }
};

struct EdiMessage {
  std::string reference;  // UNH 0062
  std::string type;       // S009 0065, e.g. CUSCAR
  std::string version;    // 0052, e.g. D
  std::string release;    // 0054, e.g. 95B
  std::string agency;     // 0051, e.g. UN
  std::vector<EdiSegment> segments;  // UNH ... UNT inclusive
  size_t first_byte = 0, end_byte = 0;  // its span in the raw interchange
};

struct EdiInterchange {
  std::string syntax;       // UNOA ... UNOY
  int syntax_version = 0;   // 1-4
  std::string sender;
  std::string recipient;
  std::string prepared;     // S004 date:time as sent (YYMMDD or CCYYMMDD : HHMM)
  std::string control_reference;
  std::vector<EdiMessage> messages;
  std::vector<EdiProblem> message_problems;  // messages left out, each with its problem
};

struct EdiParse {
  bool ok = false;
  EdiInterchange interchange;  // when ok
  EdiProblem problem;          // when not ok
};

EdiParse ParseEdifact(std::string_view bytes);

}  // namespace boxwatch::ingest
