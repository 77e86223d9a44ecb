#pragma once
// State format 2: each container's state is kept in two parts, laid out by
// how often they change (docs/worker.md "State layout"):
//   movement (M), under the container number: the container's clock
//     (progress, release bound, due time, first and last event), its pending
//     items, its GPS window, and what evaluation keeps (fired indicators,
//     alert bookkeeping); every joined event and every release changes it;
//   declaration (D), under the container number + "#d": the container
//     number, manifest versions and their summaries, scans and outcomes;
//     only a manifest, scan or outcome that joins changes it, and a trim that
//     drops a scan or manifest version.
// Both parts are ContainerState messages holding disjoint fields, so a
// container is M's bytes parsed and D's merged in. A GPS fix, and the
// release of a quiet container, write M only, in RocksDB and on the
// changelog; the window goes packed (about 15 bytes a fix).
//
// A container written by an older worker (format 1) is one whole
// ContainerState under the container number: it loads as it is (a D key
// beside it, left by a newer worker before, is ignored: M never holds the
// container number, a whole value always does), and its first write stores
// both parts (M replaces the whole value). An older worker cannot read
// format 2: workers of both formats must never share a consumer group.
// The due index and expiry read M's fields off the wire (expiry_fields.h):
// they are where they were in format 1.

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
inline constexpr std::string_view kDeclarationSuffix = "#d";

// Whether a state key is a declaration part's (container number + "#d").
inline bool IsDeclarationKey(std::string_view key) { return key.ends_with(kDeclarationSuffix); }

// Serialises one part of `s`. The fields of the other part are moved aside
// and back (no copies), hence the non-const state; `s` is unchanged after.
bool SerializeMovement(v1::ContainerState& s, std::string* out);
bool SerializeDeclaration(v1::ContainerState& s, std::string* out);

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
  };
  static constexpr uint32_t kAllParts = kMovementPart | kDeclarationPart;
  static Result<bool> Load(const state::PartitionStore& store, std::string_view key, v1::ContainerState* value,
                           Meta* meta);
  static bool Save(std::string_view key, v1::ContainerState& value, uint32_t dirty_parts, Meta* meta,
                   std::vector<state::PartitionStore::Write>* out);
  static void Delete(std::string_view key, Meta* meta, std::vector<state::PartitionStore::Write>* out);
};

}  // namespace boxwatch::pipeline
