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

}  // namespace boxwatch::delivery
