#include "ingest/convert.h"

#include "ingest/cuscar.h"
#include "ingest/edifact.h"

namespace boxwatch::ingest {

const char* RawFormatName(RawFormat f) { return f == RawFormat::kCuscar ? "cuscar" : "n42"; }

bool SniffFormat(std::string_view b, RawFormat* format) {
  size_t i = b.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;
  while (i < b.size() && (b[i] == ' ' || b[i] == '\r' || b[i] == '\n' || b[i] == '\t')) ++i;
  if (b.substr(i, 3) == "UNA" || b.substr(i, 3) == "UNB") {
    *format = RawFormat::kCuscar;
    return true;
  }
  if (b.substr(i, 1) == "<") {
    *format = RawFormat::kN42;
    return true;
  }
  return false;
}

Conversion Convert(RawFormat format, std::string_view bytes, const N42Options& n42) {
  Conversion out;
  if (format == RawFormat::kN42) {
    N42Parse p = ParseN42(bytes, n42);
    out.messages = p.scans.size() + p.problems.size();
    for (auto& s : p.scans) {
      out.records.push_back({CanonicalRecord::kScans, s.container_number(), s.SerializeAsString(), s.scanned_at_ms()});
    }
    for (auto& pr : p.problems) out.rejected.push_back({pr.reason, pr.path, pr.detail});
    return out;
  }
  EdiParse p = ParseEdifact(bytes);
  if (!p.ok) {
    out.messages = 1;
    out.rejected.push_back({p.problem.reason, p.problem.Position(), p.problem.detail});
    return out;
  }
  out.messages = p.interchange.messages.size() + p.interchange.message_problems.size();
  for (const auto& pr : p.interchange.message_problems) out.rejected.push_back({pr.reason, pr.Position(), pr.detail});
  for (const auto& m : p.interchange.messages) {
    CuscarResult r = MapCuscar(m, p.interchange);
    for (auto& man : r.manifests) {
      out.records.push_back(
          {CanonicalRecord::kManifests, man.container_number(), man.SerializeAsString(), man.declared_at_ms()});
    }
    for (const auto& pr : r.problems) {
      out.rejected.push_back({pr.reason, "message " + m.reference + ", " + pr.Position(), pr.detail});
    }
  }
  return out;
}

}  // namespace boxwatch::ingest
