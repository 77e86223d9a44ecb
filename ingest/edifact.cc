#include "ingest/edifact.h"

#include <iconv.h>

#include <cerrno>
#include <memory>
#include <optional>

namespace boxwatch::ingest {
namespace {

struct Delimiters {
  char component = ':';
  char data = '+';
  char release = '?';
  char repetition = 0;  // none (syntax versions 1-3) unless UNA or version 4 says so
  char terminator = '\'';
};

struct RawSegment {
  std::vector<std::vector<std::vector<std::string>>> elements;  // as bytes
  size_t number = 0;
  size_t begin = 0, end = 0;  // bytes, end past the terminator
};

const std::string kEmpty;

bool IsTagChar(char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

EdiProblem Problem(const char* reason, size_t segment, std::string tag, std::string detail) {
  return {reason, segment, std::move(tag), std::move(detail)};
}

// Splits bytes into segments; false with `problem` set on a truncation.
bool Tokenise(std::string_view s, size_t pos, const Delimiters& d, size_t max_segments, std::vector<RawSegment>* out,
              EdiProblem* problem) {
  // Bounds on what one interchange may hold, far above any real cargo
  // report (D.95B segments have fewer than 20 elements), so hostile input
  // cannot make the parser's memory grow without limit.
  constexpr size_t kMaxElements = 99, kMaxComponents = 99, kMaxRepetitions = 9999, kMaxItems = 2000000;
  size_t items = 0;
  while (pos < s.size()) {
    // Line breaks and tabs between segments are layout, not data.
    if (s[pos] == '\r' || s[pos] == '\n' || s[pos] == '\t') {
      ++pos;
      continue;
    }
    if (out->size() >= max_segments) {
      *problem = Problem("edifact_syntax", out->size(), "", "more than " + std::to_string(max_segments) + " segments");
      return false;
    }
    RawSegment seg;
    seg.number = out->size() + 1;
    seg.begin = pos;
    seg.elements.push_back({{std::string()}});
    bool terminated = false;
    while (pos < s.size()) {
      const char c = s[pos];
      auto& element = seg.elements.back();
      if (d.release != 0 && c == d.release) {
        if (pos + 1 >= s.size()) break;  // truncated inside a release
        element.back().back().push_back(s[pos + 1]);
        pos += 2;
        continue;
      }
      ++pos;
      if (c == d.terminator) {
        terminated = true;
        break;
      }
      const bool data = c == d.data, component = c == d.component, repetition = d.repetition != 0 && c == d.repetition;
      if ((data || component || repetition) && ++items > kMaxItems) {
        *problem = Problem("edifact_syntax", seg.number, "", "more than " + std::to_string(kMaxItems) + " data items");
        return false;
      }
      if (data) {
        if (seg.elements.size() >= kMaxElements) {
          *problem = Problem("edifact_syntax", seg.number, seg.elements[0][0][0].substr(0, 3),
                             "more than " + std::to_string(kMaxElements) + " data elements in a segment");
          return false;
        }
        seg.elements.push_back({{std::string()}});
      } else if (component) {
        if (element.back().size() >= kMaxComponents) {
          *problem = Problem("edifact_syntax", seg.number, seg.elements[0][0][0].substr(0, 3),
                             "more than " + std::to_string(kMaxComponents) + " components in an element");
          return false;
        }
        element.back().emplace_back();
      } else if (repetition) {
        if (element.size() >= kMaxRepetitions) {
          *problem = Problem("edifact_syntax", seg.number, seg.elements[0][0][0].substr(0, 3),
                             "more than " + std::to_string(kMaxRepetitions) + " repetitions of an element");
          return false;
        }
        element.push_back({std::string()});
      } else {
        element.back().back().push_back(c);
      }
    }
    const std::string tag = seg.elements[0][0][0].substr(0, 3);
    if (!terminated) {
      *problem = Problem("edifact_truncated", seg.number, tag,
                         "the interchange ends inside segment " + std::to_string(seg.number) +
                             " (no segment terminator)");
      return false;
    }
    seg.end = pos;
    out->push_back(std::move(seg));
  }
  return true;
}

// Converts one string of the interchange's character set to UTF-8.
class Decoder {
 public:
  static std::optional<Decoder> For(const std::string& syntax) {
    Decoder d;
    d.syntax_ = syntax;
    if (syntax == "UNOA" || syntax == "UNOB") {
      d.kind_ = kAscii;
    } else if (syntax == "UNOC") {
      d.kind_ = kLatin1;
    } else if (syntax == "UNOW" || syntax == "UNOY") {
      d.kind_ = kUtf8;
    } else {
      static const std::pair<const char*, const char*> kIconv[] = {
          {"UNOD", "ISO-8859-2"}, {"UNOE", "ISO-8859-5"}, {"UNOF", "ISO-8859-7"}, {"UNOG", "ISO-8859-3"},
          {"UNOH", "ISO-8859-4"}, {"UNOI", "ISO-8859-6"}, {"UNOJ", "ISO-8859-8"}, {"UNOK", "ISO-8859-9"}};
      for (const auto& [id, charset] : kIconv) {
        if (syntax != id) continue;
        iconv_t cd = iconv_open("UTF-8", charset);
        if (cd == reinterpret_cast<iconv_t>(-1)) return std::nullopt;
        d.kind_ = kIconvSet;
        d.iconv_ = std::shared_ptr<void>(cd, [](void* p) { iconv_close(static_cast<iconv_t>(p)); });
      }
      if (d.kind_ != kIconvSet) return std::nullopt;
    }
    return d;
  }

  // False when a byte is not in the character set.
  bool Decode(std::string* s) const {
    switch (kind_) {
      case kAscii:
        for (unsigned char c : *s) {
          if (c >= 0x80) return false;
        }
        return true;
      case kLatin1: {
        std::string out;
        out.reserve(s->size());
        for (unsigned char c : *s) {
          if (c < 0x80) {
            out.push_back(static_cast<char>(c));
          } else {
            out.push_back(static_cast<char>(0xC0 | (c >> 6)));
            out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
          }
        }
        *s = std::move(out);
        return true;
      }
      case kUtf8:
        return ValidUtf8(*s);
      case kIconvSet: {
        std::string out(s->size() * 4 + 4, '\0');
        char* in = s->data();
        size_t in_left = s->size();
        char* o = out.data();
        size_t out_left = out.size();
        iconv(static_cast<iconv_t>(iconv_.get()), nullptr, nullptr, nullptr, nullptr);
        if (iconv(static_cast<iconv_t>(iconv_.get()), &in, &in_left, &o, &out_left) == static_cast<size_t>(-1)) {
          return false;
        }
        out.resize(out.size() - out_left);
        *s = std::move(out);
        return true;
      }
    }
    return false;
  }

  static bool ValidUtf8(std::string_view s) {
    for (size_t i = 0; i < s.size();) {
      const unsigned char c = s[i];
      size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
      if (n == 0 || i + n > s.size()) return false;
      uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
      for (size_t k = 1; k < n; ++k) {
        const unsigned char cc = s[i + k];
        if ((cc >> 6) != 0x2) return false;
        cp = (cp << 6) | (cc & 0x3F);
      }
      // Overlong forms, surrogates and code points past Unicode's range.
      if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
          (cp >= 0xD800 && cp <= 0xDFFF)) {
        return false;
      }
      i += n;
    }
    return true;
  }

 private:
  enum Kind { kAscii, kLatin1, kUtf8, kIconvSet } kind_ = kAscii;
  std::string syntax_;
  std::shared_ptr<void> iconv_;
};

const std::string& At(const RawSegment& s, size_t e, size_t c = 0) {
  if (e >= s.elements.size() || s.elements[e].empty() || c >= s.elements[e][0].size()) return kEmpty;
  return s.elements[e][0][c];
}

}  // namespace

std::string EdiProblem::Position() const {
  if (segment == 0) return "before the first segment";
  return "segment " + std::to_string(segment) + (tag.empty() ? "" : " (" + tag + ")");
}

const std::string& EdiSegment::Get(size_t e, size_t c, size_t r) const {
  if (e >= elements.size() || r >= elements[e].size() || c >= elements[e][r].size()) return kEmpty;
  return elements[e][r][c];
}

EdiParse ParseEdifact(std::string_view bytes) {
  EdiParse result;
  auto fail = [&](EdiProblem p) {
    result.ok = false;
    result.problem = std::move(p);
    return result;
  };
  size_t pos = 0;
  if (bytes.substr(0, 3) == "\xEF\xBB\xBF") pos = 3;  // a UTF-8 byte order mark
  while (pos < bytes.size() && (bytes[pos] == '\r' || bytes[pos] == '\n' || bytes[pos] == ' ' || bytes[pos] == '\t')) {
    ++pos;
  }
  Delimiters d;
  bool una = false;
  if (bytes.substr(pos, 3) == "UNA") {
    if (bytes.size() < pos + 9) return fail(Problem("edifact_truncated", 0, "UNA", "UNA needs 6 characters"));
    d.component = bytes[pos + 3];
    d.data = bytes[pos + 4];
    d.release = bytes[pos + 6] == ' ' ? 0 : bytes[pos + 6];  // a space: no release character
    d.repetition = bytes[pos + 7] == ' ' ? 0 : bytes[pos + 7];
    d.terminator = bytes[pos + 8];
    const char chars[] = {d.component, d.data, d.terminator, d.release};
    const size_t n = d.release != 0 ? 4 : 3;
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = i + 1; j < n; ++j) {
        if (chars[i] == chars[j] || IsTagChar(chars[i]) || IsTagChar(chars[j])) {
          return fail(Problem("edifact_syntax", 0, "UNA", "UNA declares clashing or alphanumeric delimiters"));
        }
      }
    }
    pos += 9;
    una = true;
  }
  constexpr size_t kMaxSegments = 200000;
  std::vector<RawSegment> raw;
  EdiProblem problem;
  if (!Tokenise(bytes, pos, d, kMaxSegments, &raw, &problem)) return fail(problem);
  if (raw.empty()) return fail(Problem("edifact_truncated", 0, "", "no segments"));
  for (const auto& s : raw) {
    const std::string& tag = s.elements[0][0][0];
    bool ok = tag.size() == 3 && s.elements[0].size() == 1 && s.elements[0][0].size() == 1;
    for (char c : tag) ok = ok && IsTagChar(c);
    if (!ok) {
      return fail(Problem("edifact_syntax", s.number, tag.substr(0, 8), "'" + tag.substr(0, 16) + "' is not a segment tag"));
    }
  }
  if (raw[0].elements[0][0][0] != "UNB") {
    return fail(Problem("edifact_envelope", 1, raw[0].elements[0][0][0], "the interchange does not start with UNB"));
  }
  EdiInterchange& x = result.interchange;
  x.syntax = At(raw[0], 1, 0);
  const std::string& version = At(raw[0], 1, 1);
  x.syntax_version = version.size() == 1 && version[0] >= '1' && version[0] <= '4' ? version[0] - '0' : 0;
  if (x.syntax_version == 0) {
    return fail(Problem("edifact_envelope", 1, "UNB", "syntax version '" + version + "' is not 1 to 4"));
  }
  // Only version 4 repeats: with '*' unless UNA said otherwise. Versions 1-3
  // reserve UNA's fifth character (senders put '*' there yet use it as text).
  const char repetition = x.syntax_version == 4 ? (una ? d.repetition : '*') : 0;
  if (repetition != d.repetition) {
    d.repetition = repetition;
    raw.clear();
    if (!Tokenise(bytes, pos, d, kMaxSegments, &raw, &problem)) return fail(problem);
  }
  auto decoder = Decoder::For(x.syntax);
  if (!decoder) {
    return fail(Problem("edifact_charset", 1, "UNB",
                        "character set '" + x.syntax + "' is not supported (UNOA-UNOK, UNOW, UNOY)"));
  }
  // Decode everything to UTF-8 and build segments.
  std::vector<EdiSegment> segs;
  segs.reserve(raw.size());
  for (auto& r : raw) {
    EdiSegment s;
    s.number = r.number;
    s.tag = r.elements[0][0][0];
    for (size_t e = 1; e < r.elements.size(); ++e) {
      for (auto& rep : r.elements[e]) {
        for (auto& comp : rep) {
          if (!decoder->Decode(&comp)) {
            return fail(Problem("edifact_charset", r.number, s.tag,
                                "element " + std::to_string(e) + " has a byte that is not " + x.syntax));
          }
        }
      }
      s.elements.push_back(std::move(r.elements[e]));
    }
    segs.push_back(std::move(s));
  }
  const EdiSegment& unb = segs[0];
  x.sender = unb.Get(1);
  x.recipient = unb.Get(2);
  x.prepared = unb.Get(3, 0) + ":" + unb.Get(3, 1);
  x.control_reference = unb.Get(4);
  if (x.control_reference.empty()) return fail(Problem("edifact_envelope", 1, "UNB", "UNB has no control reference"));

  size_t groups = 0, messages = 0, group_messages = 0;
  std::string group_reference;
  bool in_group = false;
  size_t i = 1;
  for (; i < segs.size(); ++i) {
    const EdiSegment& s = segs[i];
    if (s.tag == "UNZ") break;
    if (s.tag == "UNG") {
      if (in_group) return fail(Problem("edifact_envelope", s.number, s.tag, "UNG inside a group"));
      in_group = true;
      ++groups;
      group_reference = s.Get(4);
      group_messages = messages;
      continue;
    }
    if (s.tag == "UNE") {
      if (!in_group) return fail(Problem("edifact_envelope", s.number, s.tag, "UNE without UNG"));
      in_group = false;
      if (s.Get(0) != std::to_string(messages - group_messages)) {
        return fail(Problem("edifact_count", s.number, s.tag,
                            "UNE says " + s.Get(0) + " messages, the group has " +
                                std::to_string(messages - group_messages)));
      }
      if (s.Get(1) != group_reference) {
        return fail(Problem("edifact_envelope", s.number, s.tag,
                            "UNE reference '" + s.Get(1) + "' is not UNG's '" + group_reference + "'"));
      }
      continue;
    }
    if (s.tag != "UNH") {
      return fail(Problem("edifact_envelope", s.number, s.tag, "segment " + s.tag + " outside a message"));
    }
    ++messages;
    EdiMessage m;
    m.reference = s.Get(0);
    m.type = s.Get(1, 0);
    m.version = s.Get(1, 1);
    m.release = s.Get(1, 2);
    m.agency = s.Get(1, 3);
    m.first_byte = raw[i].begin;
    size_t j = i;
    for (; j < segs.size(); ++j) {
      const std::string& t = segs[j].tag;
      if (j > i && (t == "UNH" || t == "UNZ" || t == "UNG" || t == "UNE")) break;
      m.segments.push_back(segs[j]);
      if (t == "UNT") break;
    }
    if (j >= segs.size() || segs[j].tag != "UNT") {
      const size_t at = j < segs.size() ? segs[j].number : segs.back().number;
      x.message_problems.push_back(Problem("edifact_envelope", s.number, "UNH",
                                           "message " + m.reference + " has no UNT (it ends at segment " +
                                               std::to_string(at) + ")"));
      i = j - 1;
      continue;
    }
    m.end_byte = raw[j].end;
    i = j;
    const EdiSegment& unt = segs[j];
    const std::string want = std::to_string(m.segments.size());
    if (unt.Get(0) != want) {
      x.message_problems.push_back(Problem("edifact_count", unt.number, "UNT",
                                           "UNT says " + unt.Get(0) + " segments, message " + m.reference + " has " +
                                               want + " (UNH and UNT included)"));
      continue;
    }
    if (unt.Get(1) != m.reference) {
      x.message_problems.push_back(Problem("edifact_envelope", unt.number, "UNT",
                                           "UNT reference '" + unt.Get(1) + "' is not UNH's '" + m.reference + "'"));
      continue;
    }
    x.messages.push_back(std::move(m));
  }
  if (in_group) return fail(Problem("edifact_envelope", segs.back().number, segs.back().tag, "a group has no UNE"));
  if (i >= segs.size()) {
    return fail(Problem("edifact_truncated", segs.back().number, segs.back().tag, "the interchange has no UNZ"));
  }
  const EdiSegment& unz = segs[i];
  if (i + 1 != segs.size()) {
    return fail(Problem("edifact_envelope", segs[i + 1].number, segs[i + 1].tag, "segments after UNZ"));
  }
  const size_t counted = groups > 0 ? groups : messages;
  if (unz.Get(0) != std::to_string(counted)) {
    return fail(Problem("edifact_count", unz.number, "UNZ",
                        "UNZ says " + unz.Get(0) + (groups > 0 ? " groups" : " messages") + ", the interchange has " +
                            std::to_string(counted)));
  }
  if (unz.Get(1) != x.control_reference) {
    return fail(Problem("edifact_envelope", unz.number, "UNZ",
                        "UNZ reference '" + unz.Get(1) + "' is not UNB's '" + x.control_reference + "'"));
  }
  result.ok = true;
  return result;
}

}  // namespace boxwatch::ingest
