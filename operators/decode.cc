#include "operators/decode.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/type_resolver.h>
#include <google/protobuf/util/type_resolver_util.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "core/varint.h"

namespace boxwatch::operators {
namespace {

Rejection Reject(RejectReason reason, std::string detail) { return {reason, std::move(detail)}; }

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

// What the schema walk checks in messages of one type: enum fields hold
// declared values, text fields stay within their size, sub-messages recurse.
struct SchemaPlan {
  std::vector<const FieldDescriptor*> enums;
  std::vector<std::pair<const FieldDescriptor*, size_t>> strings;  // field, max bytes
  std::vector<const FieldDescriptor*> messages;
  // The same by field number, for the scan of the wire bytes (WireClean).
  struct ByNumber {
    const FieldDescriptor* field = nullptr;  // null: nothing to check
    size_t max_bytes = 0;                    // a text field's
    uint64_t declared = 0;                   // an enum's: bit v set when value v (0..63) is declared
    const SchemaPlan* plan = nullptr;        // a sub-message's
  };
  std::vector<ByNumber> by_number;
};

// Bytes a text field of outside input may hold. With the engine's count
// bounds (GPS window, scans, outcomes, manifest versions and history) they
// bound what a container's state can grow to from small events.
size_t MaxTextBytes(const FieldDescriptor* f) {
  const std::string& n = f->name();
  if (n == "notes") return 8192;
  if (n == "description" || n == "analyst_note") return 4096;
  return kMaxTextFieldBytes;
}

// Plans for every message type reachable from the four input types, built
// once; read without locking afterwards.
const std::unordered_map<const Descriptor*, SchemaPlan>& Plans() {
  static const std::unordered_map<const Descriptor*, SchemaPlan> plans = [] {
    std::unordered_map<const Descriptor*, SchemaPlan> out;
    std::vector<const Descriptor*> todo = {v1::Manifest::descriptor(), v1::ScanResult::descriptor(),
                                           v1::GpsEvent::descriptor(), v1::InspectionOutcome::descriptor()};
    while (!todo.empty()) {
      const Descriptor* d = todo.back();
      todo.pop_back();
      if (out.count(d)) continue;  // also ends cycles
      SchemaPlan& plan = out[d];
      for (int i = 0; i < d->field_count(); ++i) {
        const FieldDescriptor* f = d->field(i);
        const bool text = f->type() == FieldDescriptor::TYPE_STRING;
        if (f->enum_type() != nullptr) plan.enums.push_back(f);
        if (text) plan.strings.push_back({f, MaxTextBytes(f)});
        if (f->message_type() != nullptr) {
          plan.messages.push_back(f);
          todo.push_back(f->message_type());
        }
        if (f->enum_type() != nullptr || text || f->message_type() != nullptr) {
          const auto n = static_cast<size_t>(f->number());
          if (plan.by_number.size() <= n) plan.by_number.resize(n + 1);
          plan.by_number[n] = {f, text ? MaxTextBytes(f) : 0};
          if (const auto* e = f->enum_type()) {
            for (int v = 0; v < e->value_count(); ++v) {
              const int number = e->value(v)->number();
              if (number >= 0 && number < 64) plan.by_number[n].declared |= uint64_t{1} << number;
            }
          }
        }
      }
    }
    // Sub-message plans by address (a node map's values stay where they are).
    for (auto& [d, plan] : out) {
      for (auto& b : plan.by_number) {
        if (b.field != nullptr && b.field->message_type() != nullptr) b.plan = &out.at(b.field->message_type());
      }
    }
    return out;
  }();
  return plans;
}

// Whether the wire bytes of a message with `plan` (parsed without error)
// hold nothing CheckSchema could refuse: no occurrence of a text field over
// its size, no enum value its type does not declare, likewise in
// sub-messages. Every value of the parsed message is one of the occurrences
// seen here (the last of a field written twice; merged sub-messages take
// theirs from the parts), so true means CheckSchema finds nothing, without
// the reflection it needs per field; false (or bytes this scan does not
// follow) sends the message to CheckSchema, which names the problem as before.
bool WireClean(const char* p, const char* end, const SchemaPlan& plan, int depth) {
  if (depth > 32) return false;
  const std::vector<SchemaPlan::ByNumber>& by_number = plan.by_number;
  auto varint = [&](uint64_t* v) { return ReadVarint(p, end, 10, v); };
  auto declared = [](const SchemaPlan::ByNumber& b, uint64_t v) {
    if (v < 64) return (b.declared >> v & 1) != 0;
    return b.field->enum_type()->FindValueByNumber(static_cast<int>(static_cast<int32_t>(v))) != nullptr;
  };
  while (p < end) {
    uint64_t tag = 0, v = 0;
    if (!varint(&tag)) return false;
    const uint64_t number = tag >> 3;
    const FieldDescriptor* f = number < by_number.size() ? by_number[number].field : nullptr;
    switch (tag & 7) {
      case 0:  // varint
        if (!varint(&v)) return false;
        if (f != nullptr && f->enum_type() != nullptr && !declared(by_number[number], v)) return false;
        break;
      case 1:  // 64-bit
        if (end - p < 8) return false;
        p += 8;
        break;
      case 5:  // 32-bit
        if (end - p < 4) return false;
        p += 4;
        break;
      case 2: {  // length-delimited: text, sub-message, packed enums
        if (!varint(&v) || v > static_cast<uint64_t>(end - p)) return false;
        const char* next = p + v;
        if (f != nullptr) {
          if (f->type() == FieldDescriptor::TYPE_STRING) {
            if (v > by_number[number].max_bytes) return false;
          } else if (f->message_type() != nullptr) {
            if (!WireClean(p, next, *by_number[number].plan, depth + 1)) return false;
          } else if (f->enum_type() != nullptr) {
            while (p < next) {
              if (!varint(&v) || p > next || !declared(by_number[number], v)) return false;
            }
          }
        }
        p = next;
        break;
      }
      default:  // groups: not in this schema
        return false;
    }
  }
  return true;
}

// The first schema problem of `msg`; its path is built only on the way out.
std::optional<Rejection> CheckSchema(const google::protobuf::Message& msg) {
  const auto& plans = Plans();
  auto it = plans.find(msg.GetDescriptor());
  if (it == plans.end()) return std::nullopt;  // not outside input
  const SchemaPlan& plan = it->second;
  const auto* r = msg.GetReflection();
  auto at = [](const FieldDescriptor* f, int k) {
    return f->name() + (f->is_repeated() ? "[" + std::to_string(k) + "]" : "");
  };
  for (const FieldDescriptor* f : plan.enums) {
    const int n = f->is_repeated() ? r->FieldSize(msg, f) : 1;
    for (int k = 0; k < n; ++k) {
      const int v = f->is_repeated() ? r->GetRepeatedEnumValue(msg, f, k) : r->GetEnumValue(msg, f);
      if (f->enum_type()->FindValueByNumber(v) == nullptr) {
        return Reject(RejectReason::kInvalidField, at(f, k) + " = " + std::to_string(v) + " is not a value of " +
                                                       f->enum_type()->full_name() + " (see docs/topics.md)");
      }
    }
  }
  std::string scratch;
  for (const auto& [f, max] : plan.strings) {
    const int n = f->is_repeated() ? r->FieldSize(msg, f) : 1;
    for (int k = 0; k < n; ++k) {
      const std::string& v = f->is_repeated() ? r->GetRepeatedStringReference(msg, f, k, &scratch)
                                              : r->GetStringReference(msg, f, &scratch);
      if (v.size() > max) {
        return Reject(RejectReason::kInvalidField, at(f, k) + " is " + std::to_string(v.size()) +
                                                       " bytes; the limit is " + std::to_string(max));
      }
    }
  }
  for (const FieldDescriptor* f : plan.messages) {
    const int n = f->is_repeated() ? r->FieldSize(msg, f) : (r->HasField(msg, f) ? 1 : 0);
    for (int k = 0; k < n; ++k) {
      const auto& child = f->is_repeated() ? r->GetRepeatedMessage(msg, f, k) : r->GetMessage(msg, f);
      if (auto rej = CheckSchema(child)) {
        rej->detail = at(f, k) + "." + rej->detail;
        return rej;
      }
    }
  }
  return std::nullopt;
}

// The JSON parser, told to ignore unknown fields (newer producers), also
// drops enum names it does not know without a word. This walks the JSON
// document beside the message type and refuses such names, and numbers in
// strings that the enum does not declare (plain numbers reach CheckSchema).
std::optional<Rejection> CheckJsonEnumNames(const google::protobuf::Value& json, const Descriptor* d) {
  if (!json.has_struct_value()) return std::nullopt;
  auto it = Plans().find(d);
  if (it == Plans().end()) return std::nullopt;
  const SchemaPlan& plan = it->second;
  if (plan.enums.empty() && plan.messages.empty()) return std::nullopt;
  for (const auto& [name, value] : json.struct_value().fields()) {
    const FieldDescriptor* f = d->FindFieldByName(name);
    if (f == nullptr) f = d->FindFieldByCamelcaseName(name);
    if (f == nullptr || (f->enum_type() == nullptr && f->message_type() == nullptr)) continue;
    std::vector<const google::protobuf::Value*> items;
    if (value.has_list_value()) {
      for (const auto& v : value.list_value().values()) items.push_back(&v);
    } else {
      items.push_back(&value);
    }
    for (size_t k = 0; k < items.size(); ++k) {
      const google::protobuf::Value& v = *items[k];
      const std::string at = f->name() + (f->is_repeated() ? "[" + std::to_string(k) + "]" : "");
      if (f->enum_type() != nullptr && v.has_string_value()) {
        const std::string& text = v.string_value();
        int number = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
        const bool numeric = !text.empty() && ec == std::errc() && end == text.data() + text.size();
        const bool known = numeric ? f->enum_type()->FindValueByNumber(number) != nullptr
                                   : f->enum_type()->FindValueByName(text) != nullptr;
        if (!known) {
          return Reject(RejectReason::kInvalidField, at + " = \"" + ClipText(text, 64) + "\" is not a value of " +
                                                         f->enum_type()->full_name());
        }
      }
      if (f->message_type() != nullptr) {
        if (auto rej = CheckJsonEnumNames(v, f->message_type())) {
          rej->detail = at + "." + rej->detail;
          return rej;
        }
      }
    }
  }
  return std::nullopt;
}

// JSON to a compiled message type through one type resolver per thread
// that converts each message type once. JsonStringToMessage makes a
// resolver per call and converts every type the document touches from its
// descriptor again: about 285,000 instructions per manifest, 8 % of a
// drain in which one manifest in ten came as JSON.
class CachingTypeResolver final : public google::protobuf::util::TypeResolver {
 public:
  CachingTypeResolver()
      : base_(google::protobuf::util::NewTypeResolverForDescriptorPool(
            kTypeUrlPrefix, google::protobuf::DescriptorPool::generated_pool())) {}
  static constexpr const char* kTypeUrlPrefix = "type.googleapis.com";

  google::protobuf::util::Status ResolveMessageType(const std::string& url, google::protobuf::Type* type) override {
    return Resolve(url, &messages_, type,
                   [&](google::protobuf::Type* t) { return base_->ResolveMessageType(url, t); });
  }
  google::protobuf::util::Status ResolveEnumType(const std::string& url, google::protobuf::Enum* type) override {
    return Resolve(url, &enums_, type, [&](google::protobuf::Enum* t) { return base_->ResolveEnumType(url, t); });
  }

 private:
  template <typename T, typename Fn>
  static google::protobuf::util::Status Resolve(const std::string& url, std::unordered_map<std::string, T>* cache,
                                                T* out, Fn&& resolve) {
    auto it = cache->find(url);
    if (it == cache->end()) {
      T resolved;
      google::protobuf::util::Status s = resolve(&resolved);
      if (!s.ok()) return s;
      it = cache->emplace(url, std::move(resolved)).first;
    }
    *out = it->second;
    return google::protobuf::util::Status();
  }
  std::unique_ptr<google::protobuf::util::TypeResolver> base_;
  std::unordered_map<std::string, google::protobuf::Type> messages_;
  std::unordered_map<std::string, google::protobuf::Enum> enums_;
};

google::protobuf::util::Status JsonToMessage(std::string_view json, const Descriptor& type,
                                             const google::protobuf::util::JsonParseOptions& options,
                                             google::protobuf::Message* msg) {
  thread_local CachingTypeResolver resolver;
  thread_local std::string binary;
  binary.clear();
  auto status = google::protobuf::util::JsonToBinaryString(
      &resolver, std::string(CachingTypeResolver::kTypeUrlPrefix) + "/" + type.full_name(),
      google::protobuf::StringPiece(json.data(), json.size()), &binary, options);
  if (!status.ok()) return status;
  if (!msg->ParseFromString(binary)) {
    return google::protobuf::util::Status(google::protobuf::util::StatusCode::kInvalidArgument,
                                          "the JSON conversion gave no valid protobuf");
  }
  return status;
}

// Parses the value into `msg`; returns a rejection on failure.
std::optional<Rejection> Parse(const RecordView& r, const DecodeLimits& limits,
                               google::protobuf::Message* msg) {
  // A reused message keeps its strings' buffers: clearing empties them.
  msg->Clear();
  if (r.value.size() > limits.max_value_bytes) {
    return Reject(RejectReason::kOversized, "value is " + std::to_string(r.value.size()) +
                                                " bytes; the limit is " +
                                                std::to_string(limits.max_value_bytes));
  }
  if (r.encoding == Encoding::kProtobuf) {
    if (!msg->ParseFromArray(r.value.data(), static_cast<int>(r.value.size()))) {
      return Reject(RejectReason::kUndecodable,
                    "value is not a valid protobuf " + msg->GetTypeName());
    }
    auto plan = Plans().find(msg->GetDescriptor());
    if (plan == Plans().end() || WireClean(r.value.data(), r.value.data() + r.value.size(), plan->second, 0)) {
      return std::nullopt;  // nothing CheckSchema could refuse
    }
    return CheckSchema(*msg);
  }
  const google::protobuf::Descriptor* d = msg->GetDescriptor();  // a compiled type (JsonToMessage)
  const std::string_view json(r.value.data(), r.value.size());
  // Strict first: the usual record names only fields and enum values this
  // build knows, and then one conversion decides. A newer producer's
  // fields fail it; the lenient conversion then ignores them, and an enum
  // name it would silently drop is found in the document and refused.
  google::protobuf::util::JsonParseOptions options;
  if (JsonToMessage(json, *d, options, msg).ok()) return CheckSchema(*msg);
  options.ignore_unknown_fields = true;  // newer producers may send newer fields
  auto status = JsonToMessage(json, *d, options, msg);
  if (!status.ok()) {
    return Reject(RejectReason::kUndecodable,
                  "value is not valid JSON for " + msg->GetTypeName() + ": " +
                      ClipText(std::string(status.message()), 256));
  }
  google::protobuf::Value document;
  if (JsonToMessage(json, *google::protobuf::Value::descriptor(), {}, &document).ok()) {
    if (auto rej = CheckJsonEnumNames(document, d)) return rej;
  }
  return CheckSchema(*msg);  // numbers given for enums, text sizes
}

// Validates the container number and that the key matches it. Canonicalises
// the number in place.
std::optional<Rejection> CheckContainer(const RecordView& r, std::string* number) {
  auto parsed = ContainerNumber::Parse(*number);
  if (!parsed.ok()) return Reject(RejectReason::kInvalidContainerNumber, parsed.error().message);
  *number = parsed->str();
  if (r.key != *number) {
    return Reject(RejectReason::kKeyMismatch, "record key '" + std::string(r.key) +
                                                  "' differs from container number " + *number +
                                                  " (producers must key by container number)");
  }
  return std::nullopt;
}

std::optional<Rejection> CheckTime(int64_t t, const char* field, ProcessingTimeMs now,
                                   const DecodeLimits& limits) {
  if (t < kEarliestPlausibleMs) {
    return Reject(RejectReason::kImplausibleTimestamp,
                  std::string(field) + " = " + std::to_string(t) +
                      " is before 2000-01-01 (seconds sent as milliseconds?)");
  }
  Status s = ValidateEventTime(EventTimeMs(t), now, limits.max_future_ms);
  if (!s.ok()) return Reject(RejectReason::kFutureTimestamp, std::string(field) + ": " + s.message());
  return std::nullopt;
}

std::optional<Rejection> CheckLocode(const std::string& code, const char* field) {
  if (code.empty()) return std::nullopt;
  auto parsed = UnLocode::Parse(code);
  if (!parsed.ok()) return Reject(RejectReason::kInvalidField, std::string(field) + ": " + parsed.error().message);
  return std::nullopt;
}

// The digits of a 4-digit HS heading ("2402", "24.02"), when `code` is one.
std::optional<std::string> HsHeading(std::string_view code) {
  std::string digits;
  for (char c : code) {
    if (c == '.' || c == ' ') continue;
    if (c < '0' || c > '9') return std::nullopt;
    digits.push_back(c);
  }
  if (digits.size() != 4) return std::nullopt;
  const int chapter = (digits[0] - '0') * 10 + (digits[1] - '0');
  if (chapter < 1 || chapter > 97 || chapter == 77) return std::nullopt;
  return digits;
}

#define BW_RETURN_IF_REJECTED(expr)              \
  do {                                           \
    if (auto rej_ = (expr)) return *std::move(rej_); \
  } while (0)

}  // namespace

const char* RejectReasonName(RejectReason reason) {
  switch (reason) {
    case RejectReason::kOversized: return "oversized";
    case RejectReason::kUnknownEncoding: return "unknown_encoding";
    case RejectReason::kUndecodable: return "undecodable";
    case RejectReason::kInvalidContainerNumber: return "invalid_container_number";
    case RejectReason::kKeyMismatch: return "key_mismatch";
    case RejectReason::kInvalidField: return "invalid_field";
    case RejectReason::kFutureTimestamp: return "future_timestamp";
    case RejectReason::kImplausibleTimestamp: return "implausible_timestamp";
    case RejectReason::kLate: return "late";
    case RejectReason::kStateTooLarge: return "state_too_large";
  }
  return "unknown";
}

std::variant<Encoding, Rejection> EncodingFromHeader(std::string_view content_type) {
  if (content_type.empty() || content_type == kProtobufContentType) return Encoding::kProtobuf;
  if (content_type == kJsonContentType) return Encoding::kJson;
  return Reject(RejectReason::kUnknownEncoding,
                "content-type '" + std::string(content_type) + "' is neither " +
                    std::string(kProtobufContentType) + " nor " + std::string(kJsonContentType));
}

Decoded<v1::Manifest> DecodeManifest(const RecordView& r, ProcessingTimeMs now,
                                     const DecodeLimits& limits) {
  v1::Manifest m;
  BW_RETURN_IF_REJECTED(Parse(r, limits, &m));
  BW_RETURN_IF_REJECTED(CheckContainer(r, m.mutable_container_number()));
  if (m.version() < 1) {
    return Reject(RejectReason::kInvalidField, "manifest version must be 1 or more (1 = original filing)");
  }
  BW_RETURN_IF_REJECTED(CheckTime(m.declared_at_ms(), "declared_at_ms", now, limits));
  // One bad field must not drop the whole declaration (its parties, route
  // and goods would vanish from targeting): what cannot be used is cleared
  // and named in unusable_fields, for manifest.incomplete to weigh. The
  // container, version and time identify the record and still reject it.
  m.clear_unusable_fields();
  auto unusable = [&](std::string field) { m.add_unusable_fields(std::move(field)); };
  for (auto [field, name] : {std::pair{m.mutable_port_of_loading(), "port_of_loading"},
                             std::pair{m.mutable_port_of_discharge(), "port_of_discharge"},
                             std::pair{m.mutable_final_destination(), "final_destination"}}) {
    if (CheckLocode(*field, name)) {
      field->clear();
      unusable(name);
    }
  }
  auto* ports = m.mutable_transhipment_ports();
  const int ports_before = ports->size();
  ports->erase(std::remove_if(ports->begin(), ports->end(),
                              [](const std::string& port) { return CheckLocode(port, "").has_value(); }),
               ports->end());
  if (ports->size() != ports_before) unusable("transhipment_ports");
  for (int i = 0; i < m.goods_size(); ++i) {
    auto* g = m.mutable_goods(i);
    const std::string line = "goods[" + std::to_string(i) + "]";
    if (auto heading = HsHeading(g->hs_code())) {
      g->set_hs_code(*heading);  // declared at heading level (4 digits): kept as such
    } else if (auto hs = HsCode::Parse(g->hs_code()); hs.ok()) {
      g->set_hs_code(hs->str());  // digits only: "6907.21" is 690721, as profiles list codes
    } else {
      g->clear_hs_code();  // also when missing: goods without a code are not a usable declaration
      unusable(line + ".hs_code");
    }
    if (!(g->gross_weight_kg() >= 0) || !std::isfinite(g->gross_weight_kg())) {
      g->set_gross_weight_kg(0);
      unusable(line + ".gross_weight_kg");
    }
  }
  return m;
}

Decoded<v1::ScanResult> DecodeScan(const RecordView& r, ProcessingTimeMs now,
                                   const DecodeLimits& limits) {
  v1::ScanResult s;
  BW_RETURN_IF_REJECTED(Parse(r, limits, &s));
  BW_RETURN_IF_REJECTED(CheckContainer(r, s.mutable_container_number()));
  BW_RETURN_IF_REJECTED(CheckTime(s.scanned_at_ms(), "scanned_at_ms", now, limits));
  if (s.has_nii()) {
    const double a = s.nii().anomaly_score();
    if (!(a >= 0 && a <= 1)) {
      return Reject(RejectReason::kInvalidField, "nii.anomaly_score " + std::to_string(a) + " must be within 0..1");
    }
  }
  if (s.has_rpm()) {
    const auto& rpm = s.rpm();
    for (double v : {rpm.gamma_cps(), rpm.gamma_background_cps(), rpm.neutron_cps(),
                     rpm.neutron_background_cps()}) {
      if (!(v >= 0) || !std::isfinite(v)) {
        return Reject(RejectReason::kInvalidField, "rpm counts must be finite and >= 0 (counts per second)");
      }
    }
    if (rpm.nuclides_size() > 16) {
      return Reject(RejectReason::kInvalidField,
                    "rpm.nuclides lists " + std::to_string(rpm.nuclides_size()) + " nuclides; the limit is 16");
    }
    for (const auto& n : rpm.nuclides()) {
      if (n.empty() || n.size() > 16) {
        return Reject(RejectReason::kInvalidField, "an rpm.nuclides entry is empty or over 16 bytes");
      }
    }
  }
  if (!s.has_nii() && !s.has_rpm()) {
    return Reject(RejectReason::kInvalidField, "scan carries neither an NII nor an RPM result");
  }
  return s;
}

Decoded<v1::GpsEvent> DecodeGps(const RecordView& r, ProcessingTimeMs now, const DecodeLimits& limits) {
  v1::GpsEvent g;
  if (auto rej = DecodeGpsInto(r, now, limits, &g)) return *std::move(rej);
  return g;
}

bool ParseGpsWire(std::string_view bytes, v1::GpsEvent* out) {
  const char* p = bytes.data();
  const char* const end = p + bytes.size();
  // Values: varints of up to nine bytes (63 bits); a negative value takes
  // ten, and those are left to the generic parse and its messages.
  auto varint = [](const char*& q, const char* stop, uint64_t* v) { return ReadVarint(q, stop, 9, v); };
  // A length prefix: protobuf reads at most five bytes (the fifth under 8);
  // four bytes (up to 256 MiB, more than any accepted value) are taken here,
  // longer ones left to the generic parse.
  auto length = [](const char*& q, const char* stop, uint64_t* n) {
    return ReadVarint(q, stop, 4, n) && *n <= static_cast<uint64_t>(stop - q);
  };
  auto fixed64 = [](const char*& q, const char* stop, double* v) {
    if (stop - q < 8) return false;
    uint64_t bits = 0;
    std::memcpy(&bits, q, 8);  // little-endian on the wire and here (x86-64, aarch64)
    static_assert(std::endian::native == std::endian::little);
    std::memcpy(v, &bits, 8);
    q += 8;
    return true;
  };
  // A text field: within its size and ASCII (UTF-8 validity then holds).
  static const SchemaPlan& plan = Plans().at(v1::GpsEvent::descriptor());
  auto text = [&](const char*& q, uint32_t number, std::string* field) {
    uint64_t n = 0;
    if (!length(q, end, &n) || n > plan.by_number[number].max_bytes) return false;
    // Eight bytes at a time: any byte with its top bit set is not ASCII.
    uint64_t high = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t word = 0;
      std::memcpy(&word, q + i, 8);
      high |= word;
    }
    for (; i < n; ++i) high |= static_cast<uint8_t>(q[i]);
    if ((high & 0x8080808080808080ULL) != 0) return false;
    field->assign(q, n);
    q += n;
    return true;
  };
  v1::GpsEvent& g = *out;
  g.Clear();
  while (p < end) {
    const auto tag = static_cast<uint8_t>(*p++);
    if (tag & 0x80) return false;  // a field number past 15: not declared
    const uint32_t number = tag >> 3, wire = tag & 7;
    uint64_t v = 0;
    double d = 0;
    switch (number) {
      case 1: if (wire != 2 || !text(p, number, g.mutable_container_number())) return false; break;
      case 2: if (wire != 2 || !text(p, number, g.mutable_tracker_id())) return false; break;
      case 3: if (wire != 2 || !text(p, number, g.mutable_event_id())) return false; break;
      case 10: if (wire != 2 || !text(p, number, g.mutable_seal_number())) return false; break;
      case 13: if (wire != 2 || !text(p, number, g.mutable_geofence_id())) return false; break;
      case 4:
        if (wire != 0 || !varint(p, end, &v)) return false;
        g.set_fix_time_ms(static_cast<int64_t>(v));
        break;
      case 5: {  // position: lat (1) and lon (2), fixed64 each; a repeat merges
        if (wire != 2 || !length(p, end, &v)) return false;
        const char* const stop = p + v;
        v1::GeoPoint* at = g.mutable_position();
        while (p < stop) {
          const auto sub = static_cast<uint8_t>(*p++);
          if (sub == (1 << 3 | 1) && fixed64(p, stop, &d)) {
            at->set_lat(d);
          } else if (sub == (2 << 3 | 1) && fixed64(p, stop, &d)) {
            at->set_lon(d);
          } else {
            return false;
          }
        }
        break;
      }
      case 6: if (wire != 1 || !fixed64(p, end, &d)) return false; g.set_speed_kmh(d); break;
      case 7: if (wire != 1 || !fixed64(p, end, &d)) return false; g.set_heading_deg(d); break;
      case 8: if (wire != 1 || !fixed64(p, end, &d)) return false; g.set_hdop(d); break;
      case 9:
        if (wire != 0 || !varint(p, end, &v) || !v1::GpsEvent::SealState_IsValid(static_cast<int>(v)) || v > 63) {
          return false;
        }
        g.set_seal_state(static_cast<v1::GpsEvent::SealState>(v));
        break;
      case 11:
        if (wire != 0 || !varint(p, end, &v) || v > 0x7fffffff) return false;
        g.set_battery_pct(static_cast<int32_t>(v));
        break;
      case 12:
        if (wire != 0 || !varint(p, end, &v) || v > 63 ||
            !v1::GpsEvent::GeofenceTransition_IsValid(static_cast<int>(v))) {
          return false;
        }
        g.set_geofence_transition(static_cast<v1::GpsEvent::GeofenceTransition>(v));
        break;
      default:
        return false;
    }
  }
  return true;
}

std::optional<Rejection> DecodeGpsInto(const RecordView& r, ProcessingTimeMs now, const DecodeLimits& limits,
                                       v1::GpsEvent* out) {
  v1::GpsEvent& g = *out;
  // The usual fix through the fast path; anything it does not take, as
  // before (the same message, or the same rejection).
  if (r.encoding != Encoding::kProtobuf || r.value.size() > limits.max_value_bytes || !ParseGpsWire(r.value, &g)) {
    BW_RETURN_IF_REJECTED(Parse(r, limits, &g));
  }
  BW_RETURN_IF_REJECTED(CheckContainer(r, g.mutable_container_number()));
  BW_RETURN_IF_REJECTED(CheckTime(g.fix_time_ms(), "fix_time_ms", now, limits));
  if (!g.has_position()) return Reject(RejectReason::kInvalidField, "GPS event has no position");
  Status c = ValidateCoordinates(g.position().lat(), g.position().lon());
  if (!c.ok()) return Reject(RejectReason::kInvalidField, c.message());
  if (!(g.speed_kmh() >= 0 && g.speed_kmh() <= 400)) {
    return Reject(RejectReason::kInvalidField,
                  "speed_kmh " + std::to_string(g.speed_kmh()) + " is outside 0..400");
  }
  if (g.battery_pct() < 0 || g.battery_pct() > 100) {
    return Reject(RejectReason::kInvalidField, "battery_pct must be within 0..100");
  }
  return std::nullopt;
}

Decoded<v1::InspectionOutcome> DecodeOutcome(const RecordView& r, ProcessingTimeMs now,
                                             const DecodeLimits& limits) {
  v1::InspectionOutcome o;
  BW_RETURN_IF_REJECTED(Parse(r, limits, &o));
  if (auto problems = OutcomeSizeProblems(o); !problems.empty()) {
    return Reject(RejectReason::kInvalidField, problems.front());
  }
  BW_RETURN_IF_REJECTED(CheckContainer(r, o.mutable_container_number()));
  BW_RETURN_IF_REJECTED(CheckTime(o.inspected_at_ms(), "inspected_at_ms", now, limits));
  if (o.result() == v1::InspectionOutcome::RESULT_UNSPECIFIED) {
    return Reject(RejectReason::kInvalidField, "outcome result is unspecified");
  }
  return o;
}

std::optional<std::string> SchemaProblem(const google::protobuf::Message& message) {
  auto rej = CheckSchema(message);
  if (!rej) return std::nullopt;
  return rej->detail;
}

std::vector<std::string> OutcomeSizeProblems(const v1::InspectionOutcome& o) {
  std::vector<std::string> problems;
  auto check = [&](const char* field, size_t size, size_t limit, const char* unit) {
    if (size > limit) {
      problems.push_back(std::string(field) + " is " + std::to_string(size) + " " + unit + "; the limit is " +
                         std::to_string(limit));
    }
  };
  check("container_number", o.container_number().size(), kMaxContainerNumberBytes, "bytes");
  check("outcome_id", o.outcome_id().size(), 128, "bytes");
  check("alert_id", o.alert_id().size(), 128, "bytes");
  check("site", o.site().size(), 128, "bytes");
  check("officer_unit", o.officer_unit().size(), 128, "bytes");
  check("quantity_description", o.quantity_description().size(), 1024, "bytes");
  check("notes", o.notes().size(), 8192, "bytes");
  check("seizure_categories", static_cast<size_t>(o.seizure_categories_size()), 32, "entries");
  return problems;
}

std::string Encode(const google::protobuf::Message& message, Encoding encoding) {
  std::string out;
  if (encoding == Encoding::kProtobuf) {
    message.SerializeToString(&out);
  } else {
    // Only fails for messages with unresolvable Any fields, which boxwatch has none of.
    (void)google::protobuf::util::MessageToJsonString(message, &out);
  }
  return out;
}

}  // namespace boxwatch::operators
