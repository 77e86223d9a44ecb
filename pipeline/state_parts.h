#pragma once
// State format 2: each container's state is kept in up to three parts, laid
// out by how often they change (docs/worker.md "State layout"):
//   movement (M), under the container number: the container's clock
//     (progress, release bound, due time, first and last event), its pending
//     items and its GPS window; every joined event and every release
//     changes it;
//   declaration (D), under the container number + "#d": the container
//     number, manifest versions and their summaries, scans and outcomes;
//     only a manifest, scan or outcome that joins changes it, and a trim that
//     drops a scan or manifest version;
//   evaluation (E), under the container number + "#e": what evaluation
//     keeps (fired indicators with their evidence, alert bookkeeping); only
//     an evaluation that fires something or raises an alert changes it. A
//     container with nothing fired and no alert has no E.
// A save serialises E only when told it may have changed (kEvaluationPart,
// which the engine reports: RiskEngine::Release says "changed" whenever it
// changed E, and sometimes when it did not) or when the loaded
// E is not known to be the stored one; it is then written when its bytes
// differ from the stored ones (the codec keeps their hash).
// The parts are ContainerState messages holding disjoint fields, so a
// container is M's bytes parsed and D's and E's merged in. A GPS fix, and
// the release of a quiet container, write M only, in RocksDB and on the
// changelog; the window goes packed (about 16 bytes a fix). The
// stored M says whether an E is stored (evaluation_part_stored), so a load
// reads E only then, and an E key M does not list is never merged in.
//
// A container written by an older worker (format 1) is one whole
// ContainerState under the container number: it loads as it is (a D or E
// key beside it, left by a newer worker before, is ignored: M never holds the
// container number, a whole value always does), and its first write stores
// the parts (M replaces the whole value). An M written before E had a key of
// its own holds fired indicators and alert bookkeeping itself: it loads with
// them (an E beside it is ignored) and the next write moves them to E. An
// older worker cannot read what a newer one wrote: workers of different
// versions must never share a consumer group.
// The due index and expiry read M's fields off the wire (expiry_fields.h):
// they are where they were in format 1.
//
// Window chunks (W): a fix is final once no fix can join before it
// (GpsTrack.final_before_ms). The window's oldest final fixes are stored
// packed, kWindowChunkFixes at a time, under container number + "#w" + a
// chunk number, each chunk written once and deleted when all its fixes have
// left the window; M lists the stored chunks and keeps the rest of the
// window. So a fix rewrites M with the few fixes not yet chunked instead of
// the whole window (on the benchmark's drain an M record fell from 583
// bytes to 328 on average). Chunk numbers start from the first chunked fix's time in
// seconds and only grow, so a chunk left behind by a crash part-way through
// a delete (at-least-once) is never one a later container of that number
// lists.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "boxwatch/v1/state.pb.h"
#include "core/result.h"
#include "state/state_store.h"

namespace boxwatch::pipeline {

inline constexpr uint32_t kMovementPart = 1;
inline constexpr uint32_t kDeclarationPart = 2;
// E may have changed: the engine's evaluation changed fired indicators or
// alert bookkeeping (RiskEngine::Release's result). Without it a save does
// not look at E at all.
inline constexpr uint32_t kEvaluationPart = 4;
inline constexpr std::string_view kDeclarationSuffix = "#d";
inline constexpr std::string_view kEvaluationSuffix = "#e";
inline constexpr std::string_view kWindowChunkInfix = "#w";
inline constexpr int kWindowChunkFixes = 16;
// More chunks than a window can hold (the engine keeps at most 64 evaluated
// and 256 unevaluated fixes): a movement part listing more is corrupt.
inline constexpr uint64_t kMaxWindowChunks = 64;

// Whether a state key is a declaration part's (container number + "#d").
inline bool IsDeclarationKey(std::string_view key) { return key.ends_with(kDeclarationSuffix); }
// Whether a state key is a window chunk's (container number + "#w" + number).
inline bool IsWindowChunkKey(std::string_view key) { return key.find(kWindowChunkInfix) != std::string_view::npos; }
// Whether a state key is a movement part's (or a whole format-1 value's):
// the one key of each container whose value holds its clock, due time and
// expiry fields. A container number never holds '#'.
inline bool IsMovementKey(std::string_view key) { return key.find('#') == std::string_view::npos; }
// The key of chunk `number` of a container's window.
std::string WindowChunkKey(std::string_view key, uint64_t number);

// Serialises one part of `s`. The fields of the other part are moved aside
// and back (no copies), hence the non-const state; `s` is unchanged after.
bool SerializeMovement(v1::ContainerState& s, std::string* out);
bool SerializeDeclaration(v1::ContainerState& s, std::string* out);
bool SerializeEvaluation(v1::ContainerState& s, std::string* out);

// The WriteBehindCache codec of format 2 (state/write_behind_cache.h).
struct ContainerStateCodec {
  struct Meta {
    // The stored D is this state's. False after loading a whole (format-1)
    // value, so the next save writes D whatever changed.
    bool declaration_stored = true;
    // The sizes of D's repeated fields when last loaded or stored: a save
    // that was told only M changed still writes D when they differ (a trim
    // dropped a scan or a manifest version).
    uint32_t shape[4] = {0, 0, 0, 0};
    // The stored E: whether there is one, and its bytes' size and hash.
    bool evaluation_stored = false;
    // The E in memory is not known to be the stored one (loaded from a
    // whole value, or from an M holding the evaluation itself): the next
    // save looks at E whatever it is told.
    bool evaluation_unverified = false;
    uint32_t evaluation_size = 0;
    uint64_t evaluation_hash = 0;
    // The stored window chunks (GpsTrack.chunk_*): chunks
    // [chunk_first, chunk_next) hold the window's oldest fixes but the first
    // chunk_skip, all at or before chunked_through_ms.
    uint64_t chunk_first = 0;
    uint64_t chunk_next = 0;
    uint32_t chunk_skip = 0;
    int64_t chunked_through_ms = 0;
  };
  static constexpr uint32_t kAllParts = kMovementPart | kDeclarationPart | kEvaluationPart;
  static Result<bool> Load(const state::PartitionStore& store, std::string_view key, v1::ContainerState* value,
                           Meta* meta);
  static bool Save(std::string_view key, v1::ContainerState& value, uint32_t dirty_parts, Meta* meta,
                   std::vector<state::PartitionStore::Write>* out);
  static void Delete(std::string_view key, Meta* meta, std::vector<state::PartitionStore::Write>* out);
  // Fetching ahead what a Save reads (WriteBehindCache::TakeDirty calls it
  // a few entries ahead): PrefetchState's steps.
  static constexpr int kPrefetchSteps = 3;
  static void PrefetchForSave(const v1::ContainerState& value, int step);
  // A value erased and put again before its writes were taken: what the
  // erased one stored beside its key and the new one will not overwrite.
  static void Replace(std::string_view key, Meta* meta, std::vector<state::PartitionStore::Write>* out);
};

// Asks the memory system for what reading `s` will wait for, in steps a
// few containers apart, each once the one before has arrived: 0, the GPS
// track, the pending items' array and the arrays of manifest versions and
// fired indicators; 1, the window's buffers' and texts' headers, both ends
// of the pending items, the newest manifest version and the fired
// indicators; 2, the window's header and newest fixes (its last kb), the
// ends of its texts, the indicators' ids and the version's consignee; 3,
// the ids' bytes and the consignee's name (what an evaluation reads, not a
// save). Reads nothing that has not arrived, changes nothing.
void PrefetchState(const v1::ContainerState& s, int step);

// M with the window's fixes from `from` on (those before it in the chunks
// `meta` lists; none when meta is null), as a save writes it: encoded by
// hand, the same bytes as protobuf's encoder gives (...ByProtobuf, which
// it falls back on for a window off the grid, pending items listed as
// messages, or unknown fields in the track).
bool SerializeMovementFrom(v1::ContainerState& s, int from, const ContainerStateCodec::Meta* meta, std::string* out);
bool SerializeMovementByProtobuf(v1::ContainerState& s, int from, const ContainerStateCodec::Meta* meta,
                                 std::string* out);

// Orders one commit's writes for the changelog: new window chunks first,
// then the parts, then deleted chunks, so that any prefix of them (all that
// an at-least-once crash may leave) never has an M listing a chunk that is
// not there.
void OrderForChangelog(std::vector<state::PartitionStore::Write>* writes);

}  // namespace boxwatch::pipeline
