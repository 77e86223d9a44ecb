#pragma once
// RAII wrappers over librdkafka's C API: a consumer with cooperative-sticky
// rebalancing and static membership, a producer (transactional or idempotent)
// using the Java-compatible murmur2 partitioner, and an admin client.
//
// Errors are returned as boxwatch::Error, classified by kafka_error.h; no
// method logs and forgets a failure. Each object is used from one thread at
// a time (librdkafka's own threads call back into it only through the
// callbacks documented per method).

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <functional>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "core/result.h"
#include "pipeline/kafka_config.h"

namespace boxwatch::pipeline {


struct TopicPartition {
  std::string topic;
  int32_t partition = 0;
  auto operator<=>(const TopicPartition&) const = default;
};

struct TopicPartitionOffset {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;  // next offset to read
  auto operator<=>(const TopicPartitionOffset&) const = default;
};

struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const;
  void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
  void operator()(rd_kafka_consumer_group_metadata_t* g) const {
    rd_kafka_consumer_group_metadata_destroy(g);
  }
};
using KafkaHandle = std::unique_ptr<rd_kafka_t, KafkaDeleter>;
using GroupMetadata = std::unique_ptr<rd_kafka_consumer_group_metadata_t, KafkaDeleter>;

// Builds a client handle; every property error is reported at once.
Result<KafkaHandle> NewKafkaHandle(rd_kafka_type_t type, const KafkaProperties& props,
                                   void* opaque = nullptr,
                                   void (*configure)(rd_kafka_conf_t*) = nullptr);

// A consumed record copied out of librdkafka, safe to keep after the
// consumer that read it is gone.
struct OwnedRecord {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::string key;
  std::string value;
  int64_t timestamp_ms = -1;
  std::vector<std::pair<std::string, std::string>> headers;
  // The value of the last header named `name`, if any.
  std::optional<std::string_view> header(std::string_view name) const;
};

// One consumed record. Owns the underlying librdkafka message, which pins
// its consumer: destroy every Message before the consumer (or copy it with
// ToOwned), or the consumer's destruction blocks.
class Message {
 public:
  explicit Message(rd_kafka_message_t* m) : m_(m) {}
  std::string_view topic() const { return rd_kafka_topic_name(m_->rkt); }
  int32_t partition() const { return m_->partition; }
  int64_t offset() const { return m_->offset; }
  std::string_view key() const {
    return {static_cast<const char*>(m_->key), m_->key ? m_->key_len : 0};
  }
  std::string_view value() const {
    return {static_cast<const char*>(m_->payload), m_->payload ? m_->len : 0};
  }
  // Record timestamp (CreateTime for boxwatch producers), -1 when absent.
  int64_t timestamp_ms() const;
  // The value of the last header named `name`, if any.
  std::optional<std::string_view> header(const char* name) const;
  rd_kafka_message_t* raw() const { return m_.get(); }
  OwnedRecord ToOwned() const;

 private:
  std::unique_ptr<rd_kafka_message_t, KafkaDeleter> m_;
};

// Receives partition changes. Called from within KafkaConsumer::Poll on the
// polling thread, before partitions are added to / removed from the
// assignment, so a transactional loop can commit or abort in OnRevoked.
class RebalanceListener {
 public:
  virtual ~RebalanceListener() = default;
  virtual void OnAssigned(const std::vector<TopicPartition>& partitions) = 0;
  virtual void OnRevoked(const std::vector<TopicPartition>& partitions) = 0;
  // Partitions taken away without a clean revoke (session expired): their
  // uncommitted work must be discarded, not committed.
  virtual void OnLost(const std::vector<TopicPartition>& partitions) { OnRevoked(partitions); }
};

class KafkaConsumer;

// One partition's own record queue, taken off the consumer's shared queue
// (KafkaConsumer::DetachPartition): its records come only through Take, so
// a reader pulls exactly the partition it needs, in batches, and librdkafka
// bounds what it fetches ahead per partition (queued.min.messages) instead
// of for all of them together. A take never serves a rebalance callback
// (those come only through KafkaConsumer::Poll), so every record a take
// returns belongs to the assignment the reader knows.
// Destroy it before its consumer closes. Not thread-safe.
class PartitionQueue {
 public:
  ~PartitionQueue();
  PartitionQueue(const PartitionQueue&) = delete;
  PartitionQueue& operator=(const PartitionQueue&) = delete;

  // Appends up to `max` records already fetched, without waiting; the
  // consumer's position moves past them. A consume error (e.g. topic
  // authorisation) comes back as Error, after the records before it; the
  // position is then past the records after it too, which are dropped: a
  // reader that goes on must start again from its committed offsets.
  Status Take(size_t max, std::vector<Message>* out);
  // Whether librdkafka holds nothing for it: no records, nor the markers
  // and errors a Take passes over. One lock, no clock read.
  bool Empty() const { return rd_kafka_queue_length(q_) == 0; }

 private:
  friend class KafkaConsumer;
  PartitionQueue(rd_kafka_t* rk, rd_kafka_queue_t* q) : rk_(rk), q_(q) {}
  rd_kafka_t* rk_;
  rd_kafka_queue_t* q_;
  std::vector<rd_kafka_message_t*> raw_;  // reused per take
};

class KafkaConsumer {
 public:
  struct Options {
    std::string bootstrap;
    std::string group_id;
    // Static membership (group.instance.id): a restart with the same id
    // rejoins without a rebalance. Empty: dynamic membership.
    std::string group_instance_id;
    bool read_committed = true;
    // "cooperative-sticky" (default) or "range"/"roundrobin".
    std::string assignment_strategy = "cooperative-sticky";
    int session_timeout_ms = 10000;  // ms; broker enforces 6000..300000 by default
    KafkaProperties extra;
    RebalanceListener* listener = nullptr;  // not owned; may be null
    // librdkafka statistics (JSON), every stats_interval_ms, delivered on
    // the polling thread; unset: statistics off.
    std::function<void(std::string_view json)> on_stats;
    int stats_interval_ms = 5000;  // ms
    // ms librdkafka waits before fetching a partition again once its queue
    // holds queued.min.messages (100,000) records; 0 or more sets
    // fetch.queue.backoff.ms (librdkafka's default, -1 here: 1000 ms, which
    // leaves a reader that empties its queue quickly idle for most of a
    // second). `extra` may set it again.
    int fetch_queue_backoff_ms = -1;
    // ms the broker may hold a fetch that finds nothing new; 0 or more sets
    // fetch.wait.max.ms (-1: librdkafka's 500). A reader that stops at the
    // high watermark of a transactional topic needs it short: the last
    // records are a commit marker the client passes only with the next
    // fetch, which the broker holds this long. `extra` may set it again.
    int fetch_wait_max_ms = -1;
  };

  static Result<std::unique_ptr<KafkaConsumer>> Create(const Options& options);
  ~KafkaConsumer();
  KafkaConsumer(const KafkaConsumer&) = delete;
  KafkaConsumer& operator=(const KafkaConsumer&) = delete;

  Status Subscribe(const std::vector<std::string>& topics);
  // Manual assignment (no group rebalancing), starting at the given offsets.
  Status Assign(const std::vector<TopicPartitionOffset>& partitions);
  // Waits up to `timeout` for one record. Returns nullopt on timeout.
  // Consumer-level errors (e.g. unknown topic) come back as Error.
  Result<std::optional<Message>> Poll(std::chrono::milliseconds timeout);
  // Appends up to `max` records to `out`, waiting up to `timeout` for the
  // batch to fill: for readers that take records as fast as they come (a
  // restore), without Poll's per-record clock reads and queue round trips.
  // Positions move as with Poll, past every record the batch took: on an
  // error, the records before it are appended and the position is past the
  // failed one too (a reader that goes on must seek back, or start over).
  Status PollBatch(std::chrono::milliseconds timeout, size_t max, std::vector<Message>* out);
  // Gives topic[partition] a queue of its own (PartitionQueue). Call it
  // before the partition is assigned (RebalanceListener::OnAssigned): from
  // then on, through later assignments too, none of its records reach Poll
  // or PollBatch. A record reaching an empty detached queue, and anything
  // for Poll, ends WaitForRecords.
  Result<std::unique_ptr<PartitionQueue>> DetachPartition(const std::string& topic, int32_t partition);
  // Waits up to `timeout` for a record to reach a detached partition's
  // queue that a take had emptied, or for something to poll. May return
  // early, spuriously; returns at once when that happened since the last
  // wait.
  void WaitForRecords(std::chrono::milliseconds timeout);
  // Positions (next offset to read) of the current assignment; partitions
  // with no position yet are left out.
  Result<std::vector<TopicPartitionOffset>> Positions();
  std::vector<TopicPartition> Assignment();
  Status Seek(const TopicPartitionOffset& to, std::chrono::milliseconds timeout);
  Status CommitSync(const std::vector<TopicPartitionOffset>& offsets);
  // Committed offsets of the group for `partitions` (-1001 when none).
  Result<std::vector<TopicPartitionOffset>> Committed(const std::vector<TopicPartition>& partitions,
                                                      std::chrono::milliseconds timeout);
  // Low and high watermark from the broker.
  Result<std::pair<int64_t, int64_t>> Watermarks(const std::string& topic, int32_t partition,
                                                 std::chrono::milliseconds timeout);
  GroupMetadata GroupMetadataForTransaction();
  bool cooperative() const;
  uint64_t rebalances() const { return rebalances_; }
  // Leaves the group (static members: keeps the membership until the session
  // times out) and stops the client. Idempotent.
  Status Close();
  rd_kafka_t* handle() const { return rk_.get(); }

 private:
  KafkaConsumer() = default;
  static void RebalanceCallback(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t* parts, void* opaque);
  void OnRebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts);

  // Written by librdkafka when a detached (or the consumer's) queue gets
  // something while nobody takes from it (rd_kafka_queue_io_event_enable);
  // read by WaitForRecords. Closed after rk_ is gone (declared before it).
  struct WakePipe {
    int read_fd = -1, write_fd = -1;
    ~WakePipe();
  } wake_;
  KafkaHandle rk_;
  // The consumer queue, for PollBatch; released before rk_ (declared after it).
  std::unique_ptr<rd_kafka_queue_t, void (*)(rd_kafka_queue_t*)> queue_{nullptr, &rd_kafka_queue_destroy};
  std::function<void(std::string_view)> on_stats_;
  RebalanceListener* listener_ = nullptr;
  uint64_t rebalances_ = 0;
  bool closed_ = false;
  std::optional<Error> rebalance_error_;
};

struct Header {
  std::string key;
  std::string value;
};

struct OutRecord {
  std::string_view topic;
  std::string_view key;
  std::string_view value;
  int64_t timestamp_ms = 0;  // 0: the producer's clock
  int32_t partition = RD_KAFKA_PARTITION_UA;  // UA: murmur2 partitioner on the key
  std::vector<Header> headers;
};

class KafkaProducer {
 public:
  struct Options {
    std::string bootstrap;
    // Non-empty: a transactional producer (call InitTransactions first).
    // Empty: idempotent producer with acks=all.
    std::string transactional_id;
    int transaction_timeout_ms = 60000;  // ms; broker caps at transaction.max.timeout.ms
    KafkaProperties extra;
    // librdkafka topic-level properties of some topics (e.g. the changelog's
    // compression.type), applied when the topic is first produced to; a bad
    // one fails that Produce with librdkafka's message.
    std::vector<std::pair<std::string, KafkaProperties>> topic_properties;
    // librdkafka statistics (JSON), every stats_interval_ms, delivered from
    // rd_kafka_poll/flush; unset: statistics off.
    std::function<void(std::string_view json)> on_stats;
    int stats_interval_ms = 5000;  // ms
  };

  static Result<std::unique_ptr<KafkaProducer>> Create(const Options& options);
  ~KafkaProducer();
  KafkaProducer(const KafkaProducer&) = delete;
  KafkaProducer& operator=(const KafkaProducer&) = delete;

  Status InitTransactions(std::chrono::milliseconds timeout);
  Status BeginTransaction();
  // Enqueues one record. Blocks (serving delivery reports) while the local
  // queue is full, up to 30 s. Delivery failures surface in Flush/Commit.
  Status Produce(const OutRecord& record);
  Status SendOffsetsToTransaction(const std::vector<TopicPartitionOffset>& offsets,
                                  const rd_kafka_consumer_group_metadata_t* group,
                                  std::chrono::milliseconds timeout);
  Status CommitTransaction(std::chrono::milliseconds timeout);
  Status AbortTransaction(std::chrono::milliseconds timeout);
  // Waits until every enqueued record is delivered; returns the first
  // delivery failure since the last Flush.
  Status Flush(std::chrono::milliseconds timeout);
  // Drops every record not yet delivered: queued ones, and in-flight ones
  // without waiting for their answer (the broker may still have those).
  void Purge();
  uint64_t delivered() const { return delivered_; }
  // Offset of the last record delivered to topic[partition], -1 if none.
  int64_t LastDeliveredOffset(const std::string& topic, int32_t partition) const;
  rd_kafka_t* handle() const { return rk_.get(); }

 private:
  KafkaProducer() = default;
  // The last offset delivered per topic, indexed by partition (-1: none).
  // Looked up by the topic's name as librdkafka gives it, with no copy: once
  // per delivered record.
  absl::flat_hash_map<std::string, std::vector<int64_t>> last_offsets_;
  static void DeliveryCallback(rd_kafka_t* rk, const rd_kafka_message_t* m, void* opaque);
  // The topic's handle, created at its first record. Naming the topic in
  // each rd_kafka_producev had librdkafka find it by name under its lock
  // (and Produce copy the name) once per record. An error names the topic
  // and says why (a bad topic-level property, or librdkafka's own error);
  // it is returned, not kept, as Produce runs on more than one thread.
  Result<rd_kafka_topic_t*> TopicHandle(std::string_view topic);

  KafkaHandle rk_;
  std::mutex topics_mutex_;  // Produce may be called from several threads
  std::vector<std::pair<std::string, rd_kafka_topic_t*>> topics_;  // a few: found by comparing names
  std::vector<std::pair<std::string, KafkaProperties>> topic_properties_;
  std::function<void(std::string_view)> on_stats_;
  uint64_t delivered_ = 0;
  std::optional<Error> delivery_error_;
  // The broker refused a record for good (too large, not authorised, bad
  // record): retrying the transaction cannot help.
  bool delivery_error_permanent_ = false;
};

struct TopicSpec {
  std::string name;
  int partitions = 1;
  int replication = 1;
  std::map<std::string, std::string> configs;  // e.g. cleanup.policy=compact
};

class KafkaAdmin {
 public:
  static Result<std::unique_ptr<KafkaAdmin>> Create(const std::string& bootstrap,
                                                    const KafkaProperties& extra = {});
  // Creates the topics; a topic that already exists is not an error (its
  // name is returned in `existing`). Every other per-topic failure is
  // reported together.
  Status CreateTopics(const std::vector<TopicSpec>& topics, std::chrono::milliseconds timeout,
                      std::vector<std::string>* existing = nullptr);
  // Partition counts of the named topics; missing topics are absent.
  // kAccessDenied when one is there but this client may not describe it.
  Result<std::map<std::string, int>> PartitionCounts(const std::vector<std::string>& topics,
                                                     std::chrono::milliseconds timeout);
  // The broker id leading each partition of `topic` (-1: none now).
  Result<std::map<int32_t, int32_t>> Leaders(const std::string& topic, std::chrono::milliseconds timeout);
  // kAccessDenied naming the topics of `topics` this client may not describe.
  Status CheckDescribable(const std::vector<std::string>& topics, std::chrono::milliseconds timeout);
  // As PartitionCounts, but asks again until every named topic is seen
  // without a topic-level error in several answers in a row, or `settle` passes (then returns
  // what the last answer showed). In a multi-broker cluster a broker's
  // metadata can trail the controller for a moment after a create, and each
  // request may go to a different broker.
  Result<std::map<std::string, int>> PartitionCountsOfAll(const std::vector<std::string>& topics,
                                                          std::chrono::milliseconds settle);

 private:
  static void ErrorCallback(rd_kafka_t* rk, int err, const char* reason, void* opaque);
  // `e`, or when the brokers refused this client's credentials since it was
  // created (librdkafka reports that only as brokers being down), an
  // kUnauthenticated error that says so.
  Error WithAuthenticationFailure(Error e) const;
  // Called when the brokers answered a call: a refusal seen before (a broker
  // restarting, say) is over and must not be blamed on later failures.
  void ForgetAuthenticationFailure() const;

  KafkaHandle rk_;
  mutable std::mutex auth_mu_;
  mutable std::string auth_failure_;  // guarded by auth_mu_; librdkafka's reason
};

}  // namespace boxwatch::pipeline
