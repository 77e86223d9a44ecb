#include "pipeline/state_parts.h"

#include <functional>
#include <utility>

namespace boxwatch::pipeline {
namespace {

std::string DeclarationKey(std::string_view key) {
  std::string k;
  k.reserve(key.size() + kDeclarationSuffix.size());
  k.append(key).append(kDeclarationSuffix);
  return k;
}

void Shape(const v1::ContainerState& s, uint32_t out[4]) {
  out[0] = static_cast<uint32_t>(s.manifest_versions_size());
  out[1] = static_cast<uint32_t>(s.manifest_history_size());
  out[2] = static_cast<uint32_t>(s.scans_size());
  out[3] = static_cast<uint32_t>(s.outcomes_size());
}

// Moves the evaluation fields (fired indicators, alert bookkeeping) between
// two states: O(1), no copies.
void SwapEvaluation(v1::ContainerState& a, v1::ContainerState& b) {
  a.mutable_fired()->Swap(b.mutable_fired());
  v1::AlertBookkeeping* from_a = a.has_alerts() ? a.release_alerts() : nullptr;
  v1::AlertBookkeeping* from_b = b.has_alerts() ? b.release_alerts() : nullptr;
  a.set_allocated_alerts(from_b);
  b.set_allocated_alerts(from_a);
}

uint64_t EvaluationDigest(v1::ContainerState& s) {
  if (s.fired_size() == 0 && !s.has_alerts()) return 0;
  v1::ContainerState e;
  SwapEvaluation(s, e);
  std::string bytes;
  e.SerializeToString(&bytes);
  SwapEvaluation(s, e);
  return std::hash<std::string>{}(bytes) | 1;  // 0 means "nothing"
}

}  // namespace

bool SerializeMovement(v1::ContainerState& s, std::string* out) {
  v1::ContainerState m;
  if (s.has_gps()) m.set_allocated_gps(s.release_gps());
  m.mutable_pending()->Swap(s.mutable_pending());
  m.set_first_event_ms(s.first_event_ms());
  m.set_last_event_ms(s.last_event_ms());
  m.set_expires_at_ms(s.expires_at_ms());
  m.set_evaluated_through_ms(s.evaluated_through_ms());
  m.set_progress_ms(s.progress_ms());
  m.set_released_before_ms(s.released_before_ms());
  m.set_due_ms(s.due_ms());
  out->clear();
  const bool ok = m.SerializeToString(out);
  if (m.has_gps()) s.set_allocated_gps(m.release_gps());
  s.mutable_pending()->Swap(m.mutable_pending());
  return ok;
}

bool SerializeDeclaration(v1::ContainerState& s, std::string* out) {
  // Moves the declaration's fields between two states (O(1), no copies).
  auto swap = [](v1::ContainerState& a, v1::ContainerState& b) {
    a.mutable_container_number()->swap(*b.mutable_container_number());
    a.mutable_manifest_versions()->Swap(b.mutable_manifest_versions());
    a.mutable_manifest_history()->Swap(b.mutable_manifest_history());
    a.mutable_scans()->Swap(b.mutable_scans());
    a.mutable_outcomes()->Swap(b.mutable_outcomes());
    SwapEvaluation(a, b);
  };
  v1::ContainerState d;
  swap(s, d);
  out->clear();
  const bool ok = d.SerializeToString(out);
  swap(s, d);
  return ok;
}

Result<bool> ContainerStateCodec::Load(const state::PartitionStore& store, std::string_view key,
                                       v1::ContainerState* value, Meta* meta) {
  Result<std::optional<std::string>> movement = store.Get(key);
  if (!movement.ok()) return movement.error();
  if (!movement->has_value()) return false;
  Result<std::optional<std::string>> declaration = store.Get(DeclarationKey(key));
  if (!declaration.ok()) return declaration.error();
  meta->declaration_stored = declaration->has_value();
  if (meta->declaration_stored && !value->ParseFromString(**declaration)) {
    return Error{Errc::kFatal, "the stored declaration part (" + std::to_string((*declaration)->size()) +
                                   " bytes) does not decode"};
  }
  // M's fields are disjoint from D's: merging the bytes joins the parts (a
  // format-1 value holds both).
  if (!value->MergeFromString(**movement)) {
    return Error{Errc::kFatal, "the stored value (" + std::to_string((*movement)->size()) + " bytes) does not decode"};
  }
  Shape(*value, meta->shape);
  meta->evaluation_digest = EvaluationDigest(*value);
  return true;
}

bool ContainerStateCodec::Save(std::string_view key, v1::ContainerState& value, uint32_t dirty_parts, Meta* meta,
                               std::vector<state::PartitionStore::Write>* out) {
  uint32_t shape[4];
  Shape(value, shape);
  const uint64_t digest = EvaluationDigest(value);
  if (!meta->declaration_stored || !std::equal(shape, shape + 4, meta->shape) || digest != meta->evaluation_digest) {
    dirty_parts |= kDeclarationPart;
  }
  if (dirty_parts & kMovementPart) {
    std::string bytes;
    if (!SerializeMovement(value, &bytes)) return false;
    out->push_back({std::string(key), std::move(bytes)});
  }
  if (dirty_parts & kDeclarationPart) {
    std::string bytes;
    if (!SerializeDeclaration(value, &bytes)) return false;
    out->push_back({DeclarationKey(key), std::move(bytes)});
    meta->declaration_stored = true;
    std::copy(shape, shape + 4, meta->shape);
    meta->evaluation_digest = digest;
  }
  return true;
}

void ContainerStateCodec::Delete(std::string_view key, Meta* meta, std::vector<state::PartitionStore::Write>* out) {
  out->push_back({std::string(key), std::nullopt});
  if (meta->declaration_stored) out->push_back({DeclarationKey(key), std::nullopt});
  meta->declaration_stored = false;
}

}  // namespace boxwatch::pipeline
