#include "delivery/hub_store.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <limits>
#include <mutex>
#include <set>

namespace boxwatch::delivery {
namespace {

constexpr char kTokenKey[] = "m/token";
constexpr char kAlertPrefix[] = "a/";  // a/<alert id> -> Alert
constexpr char kIndexPrefix[] = "i/";  // i/<9-priority><inverted event time, 16 hex><alert id> -> ""
constexpr char kRecordPrefix[] = "r/";  // r/<name> -> value (control-room records)
constexpr char kAuditPrefix[] = "u/";   // u/<sequence, 16 hex> -> entry

std::string AuditKey(uint64_t seq) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "u/%016llx", static_cast<unsigned long long>(seq));
  return buf;
}

Error FromRocks(const rocksdb::Status& s, const std::string& what) {
  return Error(s.IsIOError() ? Errc::kIo : Errc::kFatal, "hub store: " + what + ": " + s.ToString());
}

std::string IndexKey(const v1::Alert& a) {
  char buf[32];
  const uint64_t inverted = std::numeric_limits<int64_t>::max() - a.event_time_ms();
  std::snprintf(buf, sizeof buf, "%d%016llx", 9 - static_cast<int>(a.priority()),
                static_cast<unsigned long long>(inverted));
  return kIndexPrefix + std::string(buf) + a.alert_id();
}

}  // namespace

struct HubStore::Impl {
  std::unique_ptr<rocksdb::DB> db;
  std::mutex write_mu;  // the duplicate check and the write are one step
  std::atomic<uint64_t> count{0};
  std::mutex audit_mu;
  uint64_t audit_last = 0;
};

HubStore::HubStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HubStore::~HubStore() = default;

Result<std::unique_ptr<HubStore>> HubStore::Open(const std::string& dir) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.max_open_files = 256;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir, &db);
  if (!s.ok()) return FromRocks(s, "open " + dir);
  auto impl = std::make_unique<Impl>();
  impl->db.reset(db);
  uint64_t n = 0;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(kAlertPrefix); it->Valid() && it->key().starts_with(kAlertPrefix); it->Next()) ++n;
  impl->count = n;
  it->SeekForPrev(std::string(kAuditPrefix) + "\xff");
  if (it->Valid() && it->key().starts_with(kAuditPrefix))
    impl->audit_last = std::strtoull(it->key().ToString().substr(2).c_str(), nullptr, 16);
  return std::unique_ptr<HubStore>(new HubStore(std::move(impl)));
}

Result<HubStore::StoreResult> HubStore::Store(const std::vector<v1::Alert>& alerts, const std::string& token) {
  std::lock_guard lock(impl_->write_mu);
  StoreResult result;
  rocksdb::WriteBatch batch;
  std::set<std::string> in_batch;
  std::string value;
  for (size_t i = 0; i < alerts.size(); ++i) {
    const v1::Alert& a = alerts[i];
    const std::string key = kAlertPrefix + a.alert_id();
    rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), key, &value);
    if (s.ok() || in_batch.count(a.alert_id())) {
      ++result.duplicates;
      continue;
    }
    if (!s.IsNotFound()) return FromRocks(s, "read " + a.alert_id());
    a.SerializeToString(&value);
    batch.Put(key, value);
    batch.Put(IndexKey(a), "");
    in_batch.insert(a.alert_id());
    result.stored.push_back(i);
  }
  batch.Put(kTokenKey, token);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  if (rocksdb::Status s = impl_->db->Write(wo, &batch); !s.ok()) return FromRocks(s, "write batch");
  impl_->count += result.stored.size();
  return result;
}

Result<std::string> HubStore::Token() const {
  std::string token;
  rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), kTokenKey, &token);
  if (s.IsNotFound()) return std::string();
  if (!s.ok()) return FromRocks(s, "read token");
  return token;
}

Result<std::optional<v1::Alert>> HubStore::Get(const std::string& alert_id) const {
  std::string value;
  rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), kAlertPrefix + alert_id, &value);
  if (s.IsNotFound()) return std::optional<v1::Alert>();
  if (!s.ok()) return FromRocks(s, "read " + alert_id);
  v1::Alert a;
  if (!a.ParseFromString(value)) return Error(Errc::kFatal, "hub store: alert " + alert_id + " is corrupt");
  return std::optional<v1::Alert>(std::move(a));
}

Result<std::vector<v1::Alert>> HubStore::List(const Query& query, size_t* total_matching) const {
  std::vector<v1::Alert> out;
  size_t matched = 0;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions()));
  std::string value;
  for (it->Seek(kIndexPrefix); it->Valid() && it->key().starts_with(kIndexPrefix); it->Next()) {
    const std::string key = it->key().ToString();
    const int priority = 9 - (key[2] - '0');
    if (priority < query.min_priority) break;  // the index is ordered by priority, highest first
    const std::string id = key.substr(2 + 1 + 16);
    const bool need_body = !query.container.empty() || (matched >= query.offset && out.size() < query.limit);
    if (!need_body) {
      ++matched;
      continue;
    }
    rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), kAlertPrefix + id, &value);
    if (!s.ok()) return FromRocks(s, "read " + id);
    v1::Alert a;
    if (!a.ParseFromString(value)) return Error(Errc::kFatal, "hub store: alert " + id + " is corrupt");
    if (!query.container.empty() && a.container_number() != query.container) continue;
    if (matched >= query.offset && out.size() < query.limit) out.push_back(std::move(a));
    ++matched;
    if (total_matching == nullptr && out.size() >= query.limit) break;
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scan");
  if (total_matching) *total_matching = matched;
  return out;
}

uint64_t HubStore::count() const { return impl_->count.load(); }

Status HubStore::ForEach(const std::function<void(const v1::Alert&)>& visit) const {
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions()));
  v1::Alert a;
  for (it->Seek(kAlertPrefix); it->Valid() && it->key().starts_with(kAlertPrefix); it->Next()) {
    if (!a.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())))
      return Error(Errc::kFatal, "hub store: alert " + it->key().ToString().substr(2) + " is corrupt");
    visit(a);
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scan");
  return Status::Ok();
}

Status HubStore::PutRecord(const std::string& name, const std::string& value) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  if (rocksdb::Status s = impl_->db->Put(wo, kRecordPrefix + name, value); !s.ok()) return FromRocks(s, "write " + name);
  return Status::Ok();
}

Result<std::optional<std::string>> HubStore::GetRecord(const std::string& name) const {
  std::string value;
  rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), kRecordPrefix + name, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocks(s, "read " + name);
  return std::optional<std::string>(std::move(value));
}

Status HubStore::ForEachRecord(const std::string& prefix,
                               const std::function<void(const std::string&, const std::string&)>& visit) const {
  const std::string start = kRecordPrefix + prefix;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(start); it->Valid() && it->key().starts_with(start); it->Next())
    visit(it->key().ToString().substr(2), it->value().ToString());
  if (!it->status().ok()) return FromRocks(it->status(), "scan records");
  return Status::Ok();
}

Result<uint64_t> HubStore::AppendAudit(const std::string& entry) {
  std::lock_guard lock(impl_->audit_mu);
  const uint64_t seq = impl_->audit_last + 1;
  rocksdb::WriteOptions wo;
  wo.sync = true;
  if (rocksdb::Status s = impl_->db->Put(wo, AuditKey(seq), entry); !s.ok()) return FromRocks(s, "append audit");
  impl_->audit_last = seq;
  return seq;
}

Result<std::vector<std::pair<uint64_t, std::string>>> HubStore::Audit(
    uint64_t before, size_t limit, const std::function<bool(const std::string&)>& keep) const {
  std::vector<std::pair<uint64_t, std::string>> out;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions()));
  it->SeekForPrev(before == 0 ? std::string(kAuditPrefix) + "\xff" : AuditKey(before - 1));
  for (; it->Valid() && it->key().starts_with(kAuditPrefix) && out.size() < limit; it->Prev()) {
    std::string entry = it->value().ToString();
    if (!keep(entry)) continue;
    out.emplace_back(std::strtoull(it->key().ToString().substr(2).c_str(), nullptr, 16), std::move(entry));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scan audit");
  return out;
}

}  // namespace boxwatch::delivery
