#include "pipeline/kafka_client.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <thread>

#include "absl/strings/string_view.h"
#include "pipeline/kafka_error.h"

namespace boxwatch::pipeline {
namespace {

using PartitionList =
    std::unique_ptr<rd_kafka_topic_partition_list_t, decltype(&rd_kafka_topic_partition_list_destroy)>;

PartitionList NewList(size_t size) {
  return PartitionList(rd_kafka_topic_partition_list_new(static_cast<int>(size)),
                       &rd_kafka_topic_partition_list_destroy);
}

PartitionList ToList(const std::vector<TopicPartitionOffset>& offsets) {
  PartitionList list = NewList(offsets.size());
  for (const auto& o : offsets) {
    rd_kafka_topic_partition_list_add(list.get(), o.topic.c_str(), o.partition)->offset = o.offset;
  }
  return list;
}

std::vector<TopicPartition> FromList(const rd_kafka_topic_partition_list_t* list) {
  std::vector<TopicPartition> out;
  if (list == nullptr) return out;
  out.reserve(list->cnt);
  for (int i = 0; i < list->cnt; ++i) out.push_back({list->elems[i].topic, list->elems[i].partition});
  return out;
}

Status FirstPartitionError(const rd_kafka_topic_partition_list_t* list, const std::string& what) {
  for (int i = 0; i < list->cnt; ++i) {
    if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return FromKafkaResp(list->elems[i].err, what + " for " + list->elems[i].topic + "[" +
                                                   std::to_string(list->elems[i].partition) + "]");
    }
  }
  return Status::Ok();
}

Status Check(rd_kafka_error_t* error, const std::string& what) {
  if (error == nullptr) return Status::Ok();
  return FromKafkaError(error, what);
}

}  // namespace

void KafkaDeleter::operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }

Result<KafkaHandle> NewKafkaHandle(rd_kafka_type_t type, const KafkaProperties& props, void* opaque,
                                   void (*configure)(rd_kafka_conf_t*)) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  std::string problems;
  char err[512];
  for (const auto& [key, value] : props) {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      // A refused value is never shown, nor quoted from librdkafka's
      // message: a misspelt key may hold a secret (sasl.pasword=...).
      std::string why = IsSecretKafkaProperty(key) ? std::string("refused") : std::string(err);
      auto hide = [&why](const std::string& shown, const std::string& hidden) {
        for (size_t at = 0; (at = why.find(shown, at)) != std::string::npos; at += hidden.size()) {
          why.replace(at, shown.size(), hidden);
        }
      };
      if (!value.empty()) hide("\"" + value + "\"", "(value not shown)");
      if (value.size() >= 4) hide(value, "(value not shown)");  // shorter ones are no secret
      problems += "\n  " + key + ": " + why;
    }
  }
  if (!problems.empty()) {
    rd_kafka_conf_destroy(conf);
    return InvalidArgument("invalid Kafka client properties:" + problems);
  }
  if (opaque != nullptr) rd_kafka_conf_set_opaque(conf, opaque);
  if (configure != nullptr) configure(conf);
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return InvalidArgument(std::string("cannot create Kafka client: ") + err);
  }
  return KafkaHandle(rk);
}

int64_t Message::timestamp_ms() const {
  rd_kafka_timestamp_type_t type;
  return rd_kafka_message_timestamp(m_.get(), &type);
}

std::optional<std::string_view> Message::header(const char* name) const {
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(m_.get(), &headers) != RD_KAFKA_RESP_ERR_NO_ERROR) return std::nullopt;
  const void* value = nullptr;
  size_t size = 0;
  if (rd_kafka_header_get_last(headers, name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return std::nullopt;
  }
  return std::string_view(static_cast<const char*>(value), value ? size : 0);
}

OwnedRecord Message::ToOwned() const {
  OwnedRecord r{std::string(topic()), partition(), offset(), std::string(key()),
                std::string(value()), timestamp_ms(), {}};
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(m_.get(), &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name = nullptr;
    const void* v = nullptr;
    size_t size = 0;
    for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &v, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
      r.headers.emplace_back(name, std::string(static_cast<const char*>(v), v ? size : 0));
    }
  }
  return r;
}

std::optional<std::string_view> OwnedRecord::header(std::string_view name) const {
  for (auto it = headers.rbegin(); it != headers.rend(); ++it) {
    if (it->first == name) return std::string_view(it->second);
  }
  return std::nullopt;
}

namespace {

// The error a consumed slot carries, named by its partition.
Error ConsumeError(rd_kafka_t* rk, const rd_kafka_message_t* m) {
  std::string what = "consume";
  if (m->rkt != nullptr) {
    what += " from " + std::string(rd_kafka_topic_name(m->rkt)) + "[" + std::to_string(m->partition) + "]";
  }
  what += " (" + std::string(rd_kafka_message_errstr(m)) + ")";
  return FromKafkaResp(rk, m->err, what);
}

// Appends up to `max` records of `q` to `out`, waiting up to `timeout_ms`
// for the batch to fill; `raw` is scratch. Stops at an error slot: the
// records before it are appended, the rest dropped, the error returned.
Status TakeBatch(rd_kafka_t* rk, rd_kafka_queue_t* q, int timeout_ms, size_t max,
                 std::vector<rd_kafka_message_t*>* raw, std::vector<Message>* out) {
  if (raw->size() < max) raw->resize(max);
  const ssize_t n = rd_kafka_consume_batch_queue(q, timeout_ms, raw->data(), max);
  if (n < 0) return FromKafkaResp(rd_kafka_last_error(), "consume a batch");
  ssize_t i = 0;
  for (; i < n && (*raw)[i]->err == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) out->emplace_back((*raw)[i]);
  if (i == n) return Status::Ok();
  Error e = ConsumeError(rk, (*raw)[i]);
  for (; i < n; ++i) rd_kafka_message_destroy((*raw)[i]);
  return e;
}

}  // namespace

// ---------------------------------------------------------------- consumer

Result<std::unique_ptr<KafkaConsumer>> KafkaConsumer::Create(const Options& options) {
  std::unique_ptr<KafkaConsumer> c(new KafkaConsumer());
  c->listener_ = options.listener;
  KafkaProperties props = {
      {"bootstrap.servers", options.bootstrap},
      {"group.id", options.group_id},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", "earliest"},
      {"isolation.level", options.read_committed ? "read_committed" : "read_uncommitted"},
      {"partition.assignment.strategy", options.assignment_strategy},
      {"session.timeout.ms", std::to_string(options.session_timeout_ms)},
      {"enable.partition.eof", "false"},
  };
  if (!options.group_instance_id.empty()) {
    props.emplace_back("group.instance.id", options.group_instance_id);
  }
  if (options.on_stats) props.emplace_back("statistics.interval.ms", std::to_string(options.stats_interval_ms));
  if (options.fetch_queue_backoff_ms >= 0) {
    props.emplace_back("fetch.queue.backoff.ms", std::to_string(options.fetch_queue_backoff_ms));
  }
  if (options.fetch_wait_max_ms >= 0) props.emplace_back("fetch.wait.max.ms", std::to_string(options.fetch_wait_max_ms));
  props.insert(props.end(), options.extra.begin(), options.extra.end());
  c->on_stats_ = options.on_stats;
  auto rk = NewKafkaHandle(RD_KAFKA_CONSUMER, props, c.get(), [](rd_kafka_conf_t* conf) {
    rd_kafka_conf_set_rebalance_cb(conf, &KafkaConsumer::RebalanceCallback);
    rd_kafka_conf_set_stats_cb(conf, [](rd_kafka_t*, char* json, size_t len, void* opaque) {
      auto* self = static_cast<KafkaConsumer*>(opaque);
      if (self->on_stats_) self->on_stats_(std::string_view(json, len));
      return 0;  // librdkafka frees the document
    });
  });
  if (!rk.ok()) return rk.error();
  c->rk_ = std::move(rk).value();
  rd_kafka_poll_set_consumer(c->rk_.get());
  return c;
}

KafkaConsumer::~KafkaConsumer() { Close().PermitUnchecked(); }

bool KafkaConsumer::cooperative() const {
  return std::strcmp(rd_kafka_rebalance_protocol(rk_.get()), "COOPERATIVE") == 0;
}

void KafkaConsumer::RebalanceCallback(rd_kafka_t*, rd_kafka_resp_err_t err,
                                      rd_kafka_topic_partition_list_t* parts, void* opaque) {
  static_cast<KafkaConsumer*>(opaque)->OnRebalance(err, parts);
}

void KafkaConsumer::OnRebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts) {
  ++rebalances_;
  const std::vector<TopicPartition> changed = FromList(parts);
  const bool coop = cooperative();
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    if (listener_ != nullptr) listener_->OnAssigned(changed);
    if (coop) {
      if (rd_kafka_error_t* e = rd_kafka_incremental_assign(rk_.get(), parts)) {
        rebalance_error_ = FromKafkaError(e, "incremental assign");
      }
    } else if (rd_kafka_resp_err_t e = rd_kafka_assign(rk_.get(), parts)) {
      rebalance_error_ = FromKafkaResp(e, "assign");
    }
    return;
  }
  // Revoked, or an error that forces the assignment to be dropped.
  if (listener_ != nullptr) {
    if (rd_kafka_assignment_lost(rk_.get())) {
      listener_->OnLost(changed);
    } else {
      listener_->OnRevoked(changed);
    }
  }
  if (coop) {
    if (rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk_.get(), parts)) {
      rebalance_error_ = FromKafkaError(e, "incremental unassign");
    }
  } else if (rd_kafka_resp_err_t e = rd_kafka_assign(rk_.get(), nullptr)) {
    rebalance_error_ = FromKafkaResp(e, "unassign");
  }
}

Status KafkaConsumer::Subscribe(const std::vector<std::string>& topics) {
  PartitionList list = NewList(topics.size());
  for (const auto& t : topics) {
    rd_kafka_topic_partition_list_add(list.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
  }
  if (rd_kafka_resp_err_t err = rd_kafka_subscribe(rk_.get(), list.get())) {
    return FromKafkaResp(err, "subscribe");
  }
  return Status::Ok();
}

Status KafkaConsumer::Assign(const std::vector<TopicPartitionOffset>& partitions) {
  PartitionList list = ToList(partitions);
  if (rd_kafka_resp_err_t err = rd_kafka_assign(rk_.get(), list.get())) {
    return FromKafkaResp(err, "assign");
  }
  return Status::Ok();
}

Result<std::optional<Message>> KafkaConsumer::Poll(std::chrono::milliseconds timeout) {
  rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_.get(), static_cast<int>(timeout.count()));
  if (rebalance_error_) {
    Error e = std::move(*rebalance_error_);
    rebalance_error_.reset();
    if (m != nullptr) rd_kafka_message_destroy(m);
    return e;
  }
  if (m == nullptr) return std::optional<Message>();
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    Error e = ConsumeError(rk_.get(), m);
    rd_kafka_message_destroy(m);
    return e;
  }
  return std::optional<Message>(Message(m));
}

Status KafkaConsumer::PollBatch(std::chrono::milliseconds timeout, size_t max, std::vector<Message>* out) {
  if (!queue_) {
    queue_.reset(rd_kafka_queue_get_consumer(rk_.get()));
    if (!queue_) return Error{Errc::kInvalidArgument, "a batch poll needs a consumer with a group id"};
  }
  std::vector<rd_kafka_message_t*> raw;
  Status s = TakeBatch(rk_.get(), queue_.get(), static_cast<int>(timeout.count()), max, &raw, out);
  if (rebalance_error_) {
    Error e = std::move(*rebalance_error_);
    rebalance_error_.reset();
    return e;
  }
  return s;
}

Result<std::unique_ptr<PartitionQueue>> KafkaConsumer::DetachPartition(const std::string& topic, int32_t partition) {
  if (wake_.read_fd < 0) {
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
      return Error{Errc::kIo, std::string("a pipe for consumer wake-ups: ") + std::strerror(errno)};
    }
    wake_.read_fd = fds[0];
    wake_.write_fd = fds[1];
    // The consumer's own queue wakes a waiting reader too: rebalances and
    // errors, which Poll serves.
    if (!queue_) queue_.reset(rd_kafka_queue_get_consumer(rk_.get()));
    if (queue_) rd_kafka_queue_io_event_enable(queue_.get(), wake_.write_fd, "w", 1);
  }
  rd_kafka_queue_t* q = rd_kafka_queue_get_partition(rk_.get(), topic.c_str(), partition);
  if (q == nullptr) {
    return Error{Errc::kInvalidArgument, "no queue for " + topic + "[" + std::to_string(partition) + "]"};
  }
  // Forwarded nowhere, by the application: librdkafka keeps it so through
  // every later assignment of the partition.
  rd_kafka_queue_forward(q, nullptr);
  rd_kafka_queue_io_event_enable(q, wake_.write_fd, "w", 1);
  return std::unique_ptr<PartitionQueue>(new PartitionQueue(rk_.get(), q));
}

void KafkaConsumer::WaitForRecords(std::chrono::milliseconds timeout) {
  if (wake_.read_fd < 0) {
    std::this_thread::sleep_for(timeout);  // nothing detached: nothing to wake for
    return;
  }
  pollfd fd{.fd = wake_.read_fd, .events = POLLIN, .revents = 0};
  if (poll(&fd, 1, static_cast<int>(timeout.count())) <= 0) return;
  char sink[256];
  while (read(wake_.read_fd, sink, sizeof(sink)) > 0) {
  }
}

KafkaConsumer::WakePipe::~WakePipe() {
  if (read_fd >= 0) close(read_fd);
  if (write_fd >= 0) close(write_fd);
}

PartitionQueue::~PartitionQueue() {
  // Its wake-ups stay on: the partition's queue outlives this handle
  // (librdkafka owns it, and a later handle of it shares them), and they
  // write to the consumer's pipe, which closes only after the client.
  rd_kafka_queue_destroy(q_);
}

Status PartitionQueue::Take(size_t max, std::vector<Message>* out) {
  return TakeBatch(rk_, q_, 0, max, &raw_, out);
}

std::vector<TopicPartition> KafkaConsumer::Assignment() {
  rd_kafka_topic_partition_list_t* list = nullptr;
  if (rd_kafka_assignment(rk_.get(), &list) != RD_KAFKA_RESP_ERR_NO_ERROR) return {};
  std::vector<TopicPartition> out = FromList(list);
  rd_kafka_topic_partition_list_destroy(list);
  return out;
}

Result<std::vector<TopicPartitionOffset>> KafkaConsumer::Positions() {
  rd_kafka_topic_partition_list_t* list = nullptr;
  if (rd_kafka_resp_err_t err = rd_kafka_assignment(rk_.get(), &list)) {
    return FromKafkaResp(err, "read assignment");
  }
  PartitionList owned(list, &rd_kafka_topic_partition_list_destroy);
  if (rd_kafka_resp_err_t err = rd_kafka_position(rk_.get(), list)) {
    return FromKafkaResp(err, "read positions");
  }
  std::vector<TopicPartitionOffset> out;
  for (int i = 0; i < list->cnt; ++i) {
    if (list->elems[i].offset >= 0) {
      out.push_back({list->elems[i].topic, list->elems[i].partition, list->elems[i].offset});
    }
  }
  return out;
}

Status KafkaConsumer::Seek(const TopicPartitionOffset& to, std::chrono::milliseconds timeout) {
  PartitionList list = ToList({to});
  if (rd_kafka_error_t* e = rd_kafka_seek_partitions(rk_.get(), list.get(),
                                                     static_cast<int>(timeout.count()))) {
    return FromKafkaError(e, "seek");
  }
  return FirstPartitionError(list.get(), "seek");
}

Status KafkaConsumer::CommitSync(const std::vector<TopicPartitionOffset>& offsets) {
  PartitionList list = ToList(offsets);
  if (rd_kafka_resp_err_t err = rd_kafka_commit(rk_.get(), list.get(), 0)) {
    return FromKafkaResp(rk_.get(), err, "commit offsets");
  }
  return FirstPartitionError(list.get(), "commit offsets");
}

Result<std::vector<TopicPartitionOffset>> KafkaConsumer::Committed(
    const std::vector<TopicPartition>& partitions, std::chrono::milliseconds timeout) {
  PartitionList list = NewList(partitions.size());
  for (const auto& p : partitions) rd_kafka_topic_partition_list_add(list.get(), p.topic.c_str(), p.partition);
  if (rd_kafka_resp_err_t err =
          rd_kafka_committed(rk_.get(), list.get(), static_cast<int>(timeout.count()))) {
    return FromKafkaResp(rk_.get(), err, "read committed offsets");
  }
  std::vector<TopicPartitionOffset> out;
  for (int i = 0; i < list->cnt; ++i) {
    out.push_back({list->elems[i].topic, list->elems[i].partition, list->elems[i].offset});
  }
  return out;
}

Result<std::pair<int64_t, int64_t>> KafkaConsumer::Watermarks(const std::string& topic,
                                                               int32_t partition,
                                                               std::chrono::milliseconds timeout) {
  int64_t low = 0;
  int64_t high = 0;
  // Leadership moves (and settles right after topics are created): retry
  // what the broker calls retriable until the deadline.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk_.get(), topic.c_str(), partition, &low, &high,
                                                               static_cast<int>(std::max<int64_t>(left.count(), 1)));
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return std::make_pair(low, high);
    const bool transient = err == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
                           err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
                           err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    if (!transient || std::chrono::steady_clock::now() + std::chrono::milliseconds(100) >= deadline) {
      return FromKafkaResp(err, "query watermarks of " + topic + "[" + std::to_string(partition) + "]");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

GroupMetadata KafkaConsumer::GroupMetadataForTransaction() {
  return GroupMetadata(rd_kafka_consumer_group_metadata(rk_.get()));
}

Status KafkaConsumer::Close() {
  if (closed_ || !rk_) return Status::Ok();
  closed_ = true;
  if (rd_kafka_resp_err_t err = rd_kafka_consumer_close(rk_.get())) {
    return FromKafkaResp(err, "close consumer");
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- producer

Result<std::unique_ptr<KafkaProducer>> KafkaProducer::Create(const Options& options) {
  std::unique_ptr<KafkaProducer> p(new KafkaProducer());
  KafkaProperties props = {
      {"bootstrap.servers", options.bootstrap},
      // Same key -> same partition as Kafka's Java clients.
      {"partitioner", "murmur2_random"},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"linger.ms", "5"},
      {"compression.type", "lz4"},
  };
  if (!options.transactional_id.empty()) {
    props.emplace_back("transactional.id", options.transactional_id);
    props.emplace_back("transaction.timeout.ms", std::to_string(options.transaction_timeout_ms));
  }
  if (options.on_stats) props.emplace_back("statistics.interval.ms", std::to_string(options.stats_interval_ms));
  props.insert(props.end(), options.extra.begin(), options.extra.end());
  p->on_stats_ = options.on_stats;
  p->topic_properties_ = options.topic_properties;
  auto rk = NewKafkaHandle(RD_KAFKA_PRODUCER, props, p.get(), [](rd_kafka_conf_t* conf) {
    rd_kafka_conf_set_dr_msg_cb(conf, &KafkaProducer::DeliveryCallback);
    rd_kafka_conf_set_stats_cb(conf, [](rd_kafka_t*, char* json, size_t len, void* opaque) {
      auto* self = static_cast<KafkaProducer*>(opaque);
      if (self->on_stats_) self->on_stats_(std::string_view(json, len));
      return 0;  // librdkafka frees the document
    });
  });
  if (!rk.ok()) return rk.error();
  p->rk_ = std::move(rk).value();
  return p;
}

KafkaProducer::~KafkaProducer() {
  if (rk_) rd_kafka_flush(rk_.get(), 5000);
  for (auto& [name, handle] : topics_) rd_kafka_topic_destroy(handle);  // before the client goes
}

Result<rd_kafka_topic_t*> KafkaProducer::TopicHandle(std::string_view topic) {
  std::lock_guard lock(topics_mutex_);
  for (const auto& [name, handle] : topics_) {
    if (name == topic) return handle;
  }
  std::string name(topic);
  rd_kafka_topic_conf_t* conf = nullptr;
  for (const auto& [t, props] : topic_properties_) {
    if (t != topic) continue;
    // The client's own topic-level settings (acks, compression) with these
    // on top.
    rd_kafka_topic_conf_t* base =
        rd_kafka_conf_get_default_topic_conf(const_cast<rd_kafka_conf_t*>(rd_kafka_conf(rk_.get())));
    conf = base != nullptr ? rd_kafka_topic_conf_dup(base) : rd_kafka_topic_conf_new();
    char err[512];
    for (const auto& [k, v] : props) {
      if (rd_kafka_topic_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
        rd_kafka_topic_conf_destroy(conf);
        return InvalidArgument("produce to " + name + ": topic " + name + ": " + err);
      }
    }
  }
  rd_kafka_topic_t* handle = rd_kafka_topic_new(rk_.get(), name.c_str(), conf);  // takes conf
  if (handle == nullptr) return FromKafkaResp(rk_.get(), rd_kafka_last_error(), "produce to " + name);
  topics_.emplace_back(std::move(name), handle);
  return handle;
}

void KafkaProducer::DeliveryCallback(rd_kafka_t* rk, const rd_kafka_message_t* m, void* opaque) {
  auto* self = static_cast<KafkaProducer*>(opaque);
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++self->delivered_;
    const absl::string_view topic = rd_kafka_topic_name(m->rkt);  // the map's heterogeneous look-up takes it
    auto it = self->last_offsets_.find(topic);
    if (it == self->last_offsets_.end()) {
      it = self->last_offsets_.emplace(std::string(topic.data(), topic.size()), std::vector<int64_t>()).first;
    }
    std::vector<int64_t>& last = it->second;
    if (m->partition >= 0) {
      if (static_cast<size_t>(m->partition) >= last.size()) last.resize(static_cast<size_t>(m->partition) + 1, -1);
      last[static_cast<size_t>(m->partition)] = std::max(last[static_cast<size_t>(m->partition)], m->offset);
    }
  } else if (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
    // Records of an aborted transaction: discarded on purpose.
  } else if (!self->delivery_error_) {
    switch (m->err) {
      case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
      case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
      case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
      case RD_KAFKA_RESP_ERR_INVALID_RECORD:
      case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
        self->delivery_error_permanent_ = true;
        break;
      default:  // timeouts, broker outages, aborted transactions: retried by the caller
        self->delivery_error_permanent_ = false;
    }
    const std::string topic = rd_kafka_topic_name(m->rkt);
    self->delivery_error_ = FromKafkaResp(rk, m->err, "deliver a " + std::to_string(m->len) + "-byte record to " + topic);
    if (m->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
      self->delivery_error_->message += ": the topic's max.message.bytes is smaller than the producer's "
                                        "message.max.bytes; raise it (kafka-configs --alter --add-config "
                                        "max.message.bytes=...) or lower the worker's max_value_bytes/max_state_bytes";
    }
  }
}

int64_t KafkaProducer::LastDeliveredOffset(const std::string& topic, int32_t partition) const {
  auto it = last_offsets_.find(topic);
  if (it == last_offsets_.end() || partition < 0 || static_cast<size_t>(partition) >= it->second.size()) return -1;
  return it->second[static_cast<size_t>(partition)];
}

Status KafkaProducer::InitTransactions(std::chrono::milliseconds timeout) {
  return Check(rd_kafka_init_transactions(rk_.get(), static_cast<int>(timeout.count())),
               "init transactions");
}

Status KafkaProducer::BeginTransaction() {
  return Check(rd_kafka_begin_transaction(rk_.get()), "begin transaction");
}

Status KafkaProducer::Produce(const OutRecord& r) {
  rd_kafka_headers_t* headers = nullptr;
  if (!r.headers.empty()) {
    headers = rd_kafka_headers_new(r.headers.size());
    for (const auto& h : r.headers) {
      rd_kafka_header_add(headers, h.key.data(), static_cast<ssize_t>(h.key.size()), h.value.data(),
                          static_cast<ssize_t>(h.value.size()));
    }
  }
  Result<rd_kafka_topic_t*> handle = TopicHandle(r.topic);
  if (!handle.ok()) {
    if (headers != nullptr) rd_kafka_headers_destroy(headers);
    return handle.status();
  }
  rd_kafka_topic_t* topic = *handle;
  std::optional<std::chrono::steady_clock::time_point> deadline;  // read at the first full queue
  for (;;) {
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk_.get(), RD_KAFKA_V_RKT(topic), RD_KAFKA_V_PARTITION(r.partition),
        RD_KAFKA_V_KEY(r.key.data(), r.key.size()),
        RD_KAFKA_V_VALUE(const_cast<char*>(r.value.data()), r.value.size()),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_TIMESTAMP(r.timestamp_ms),
        RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return Status::Ok();  // headers now owned by librdkafka
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      const auto now = std::chrono::steady_clock::now();
      if (!deadline) deadline = now + std::chrono::seconds(30);
      if (now < *deadline) {
        rd_kafka_poll(rk_.get(), 50);
        continue;
      }
    }
    if (headers != nullptr) rd_kafka_headers_destroy(headers);
    return FromKafkaResp(rk_.get(), err, "produce to " + std::string(r.topic));
  }
}

Status KafkaProducer::SendOffsetsToTransaction(const std::vector<TopicPartitionOffset>& offsets,
                                               const rd_kafka_consumer_group_metadata_t* group,
                                               std::chrono::milliseconds timeout) {
  if (offsets.empty()) return Status::Ok();
  PartitionList list = ToList(offsets);
  return Check(rd_kafka_send_offsets_to_transaction(rk_.get(), list.get(), group,
                                                    static_cast<int>(timeout.count())),
               "send offsets to transaction");
}

Status KafkaProducer::CommitTransaction(std::chrono::milliseconds timeout) {
  Status s = Check(rd_kafka_commit_transaction(rk_.get(), static_cast<int>(timeout.count())),
                   "commit transaction");
  if (!s.ok() && delivery_error_ && delivery_error_permanent_) {
    // The broker refused a record for good (too large, not authorised):
    // aborting and retrying would fail the same way, so say what it was.
    // Any other delivery failure (a broker down past the transaction
    // timeout, say) stays the commit's own, retriable error.
    Error e{IsKafkaRefusal(delivery_error_->code) ? delivery_error_->code : Errc::kInvalidArgument,
            delivery_error_->message + "; " + s.message()};
    delivery_error_.reset();
    return e;
  }
  if (s.ok() && delivery_error_) {
    // Cannot happen for a committed transaction, but never hide it.
    Error e = std::move(*delivery_error_);
    delivery_error_.reset();
    return e;
  }
  delivery_error_.reset();
  return s;
}

Status KafkaProducer::AbortTransaction(std::chrono::milliseconds timeout) {
  delivery_error_.reset();
  return Check(rd_kafka_abort_transaction(rk_.get(), static_cast<int>(timeout.count())),
               "abort transaction");
}

void KafkaProducer::Purge() {
  rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT | RD_KAFKA_PURGE_F_NON_BLOCKING);
  rd_kafka_poll(rk_.get(), 0);  // serve the purged records' delivery reports
  delivery_error_.reset();
}

Status KafkaProducer::Flush(std::chrono::milliseconds timeout) {
  if (rd_kafka_resp_err_t err = rd_kafka_flush(rk_.get(), static_cast<int>(timeout.count()))) {
    return FromKafkaResp(rk_.get(), err, "flush producer");
  }
  if (delivery_error_) {
    Error e = std::move(*delivery_error_);
    delivery_error_.reset();
    return e;
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- admin

Result<std::unique_ptr<KafkaAdmin>> KafkaAdmin::Create(const std::string& bootstrap,
                                                       const KafkaProperties& extra) {
  KafkaProperties props = {{"bootstrap.servers", bootstrap}};
  props.insert(props.end(), extra.begin(), extra.end());
  auto admin = std::make_unique<KafkaAdmin>();
  auto rk = NewKafkaHandle(RD_KAFKA_PRODUCER, props, admin.get(), [](rd_kafka_conf_t* conf) {
    rd_kafka_conf_set_error_cb(conf, &KafkaAdmin::ErrorCallback);
  });
  if (!rk.ok()) return rk.error();
  admin->rk_ = std::move(rk).value();
  return admin;
}

void KafkaAdmin::ErrorCallback(rd_kafka_t*, int err, const char* reason, void* opaque) {
  if (err != RD_KAFKA_RESP_ERR__AUTHENTICATION && err != RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED) return;
  auto* self = static_cast<KafkaAdmin*>(opaque);
  std::lock_guard lock(self->auth_mu_);
  self->auth_failure_ = reason != nullptr ? reason : "authentication failed";
}

void KafkaAdmin::ForgetAuthenticationFailure() const {
  rd_kafka_poll(rk_.get(), 0);  // serves what is queued: it belongs to earlier calls
  std::lock_guard lock(auth_mu_);
  auth_failure_.clear();
}

Error KafkaAdmin::WithAuthenticationFailure(Error e) const {
  rd_kafka_poll(rk_.get(), 0);  // serves ErrorCallback
  std::lock_guard lock(auth_mu_);
  if (auth_failure_.empty() || IsKafkaRefusal(e.code)) return e;
  return Error{Errc::kUnauthenticated, e.message + "; the brokers refused this client's credentials: " + auth_failure_ +
                                        " (check the sasl.username/sasl.password or the client certificate of "
                                        "the Kafka client configuration)"};
}

Status KafkaAdmin::CreateTopics(const std::vector<TopicSpec>& topics,
                                std::chrono::milliseconds timeout,
                                std::vector<std::string>* existing) {
  char err[512];
  std::vector<rd_kafka_NewTopic_t*> news;
  std::string problems;
  for (const auto& t : topics) {
    rd_kafka_NewTopic_t* nt =
        rd_kafka_NewTopic_new(t.name.c_str(), t.partitions, t.replication, err, sizeof err);
    if (nt == nullptr) {
      problems += "\n  " + t.name + ": " + err;
      continue;
    }
    for (const auto& [k, v] : t.configs) rd_kafka_NewTopic_set_config(nt, k.c_str(), v.c_str());
    news.push_back(nt);
  }
  if (!problems.empty()) {
    rd_kafka_NewTopic_destroy_array(news.data(), news.size());
    return InvalidArgument("invalid topic specifications:" + problems);
  }
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk_.get());
  rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(rk_.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(opts, static_cast<int>(timeout.count()), err, sizeof err);
  rd_kafka_AdminOptions_set_request_timeout(opts, static_cast<int>(timeout.count()), err, sizeof err);
  rd_kafka_CreateTopics(rk_.get(), news.data(), news.size(), opts, queue);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, static_cast<int>(timeout.count()) + 1000);
  Status status = Status::Ok();
  if (ev == nullptr) {
    status = WithAuthenticationFailure(Error{Errc::kTimeout, "create topics: no answer from the cluster within " +
                                                                 std::to_string(timeout.count()) + " ms"});
  } else if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    status = WithAuthenticationFailure(FromKafkaResp(
        rd_kafka_event_error(ev), std::string("create topics (") + rd_kafka_event_error_string(ev) + ")"));
  } else {
    size_t n = 0;
    const rd_kafka_topic_result_t** results =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    for (size_t i = 0; i < n; ++i) {
      const rd_kafka_resp_err_t e = rd_kafka_topic_result_error(results[i]);
      const char* name = rd_kafka_topic_result_name(results[i]);
      if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        if (existing != nullptr) existing->push_back(name);
      } else if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* msg = rd_kafka_topic_result_error_string(results[i]);
        problems += "\n  " + std::string(name) + ": " + (msg ? msg : rd_kafka_err2str(e));
      }
    }
    if (!problems.empty()) {
      const bool denied = problems.find("uthoriz") != std::string::npos;
      status = Error{denied ? Errc::kAccessDenied : Errc::kInvalidArgument, "create topics failed:" + problems};
    }
  }
  if (status.ok()) {
    // Creation is acknowledged by the controller before every broker's
    // metadata shows the topic; wait so that a describe right after agrees.
    std::vector<std::string> names;
    for (const auto& t : topics) names.push_back(t.name);
    auto counts = PartitionCountsOfAll(names, timeout);
    if (!counts.ok()) {
      status = counts.error();
    } else if (counts->size() != names.size()) {
      status = Error{Errc::kTimeout, "created topics did not appear in the cluster metadata within " +
                                         std::to_string(timeout.count()) + " ms"};
    }
  }
  if (ev != nullptr) rd_kafka_event_destroy(ev);
  rd_kafka_AdminOptions_destroy(opts);
  rd_kafka_queue_destroy(queue);
  rd_kafka_NewTopic_destroy_array(news.data(), news.size());
  return status;
}

Result<std::map<std::string, int>> KafkaAdmin::PartitionCountsOfAll(const std::vector<std::string>& topics,
                                                                    std::chrono::milliseconds settle) {
  constexpr int kAgreeingAnswers = 3;  // each request may reach another broker
  const auto deadline = std::chrono::steady_clock::now() + settle;
  int agreeing = 0;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    auto counts = PartitionCounts(topics, std::max(left, std::chrono::milliseconds(1000)));
    const bool all = counts.ok() && counts->size() == std::set<std::string>(topics.begin(), topics.end()).size();
    agreeing = all ? agreeing + 1 : 0;
    if (agreeing >= kAgreeingAnswers || std::chrono::steady_clock::now() >= deadline) return counts;
    std::this_thread::sleep_for(std::chrono::milliseconds(all ? 20 : 100));
  }
}

Result<std::map<std::string, int>> KafkaAdmin::PartitionCounts(
    const std::vector<std::string>& topics, std::chrono::milliseconds timeout) {
  const rd_kafka_metadata_t* md = nullptr;
  if (rd_kafka_resp_err_t err =
          rd_kafka_metadata(rk_.get(), 1, nullptr, &md, static_cast<int>(timeout.count()))) {
    return WithAuthenticationFailure(FromKafkaResp(err, "read cluster metadata"));
  }
  ForgetAuthenticationFailure();
  std::map<std::string, int> counts;
  for (int i = 0; i < md->topic_cnt; ++i) {
    const auto& t = md->topics[i];
    if (t.err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    for (const auto& want : topics) {
      if (want == t.topic) counts[want] = t.partition_cnt;
    }
  }
  rd_kafka_metadata_destroy(md);
  std::vector<std::string> missing;
  for (const auto& want : topics) {
    if (!counts.count(want)) missing.push_back(want);
  }
  if (!missing.empty()) {
    // A listing of every topic leaves out those the principal may not
    // describe: ask for the missing ones by name, which says which it is.
    if (Status s = CheckDescribable(missing, timeout); !s.ok()) return s.error();
  }
  return counts;
}

Result<std::map<int32_t, int32_t>> KafkaAdmin::Leaders(const std::string& topic,
                                                        std::chrono::milliseconds timeout) {
  const rd_kafka_metadata_t* md = nullptr;
  if (rd_kafka_resp_err_t err = rd_kafka_metadata(rk_.get(), 1, nullptr, &md, static_cast<int>(timeout.count()))) {
    return WithAuthenticationFailure(FromKafkaResp(err, "read cluster metadata"));
  }
  ForgetAuthenticationFailure();
  std::map<int32_t, int32_t> leaders;
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (topic != md->topics[i].topic) continue;
    for (int j = 0; j < md->topics[i].partition_cnt; ++j) {
      leaders[md->topics[i].partitions[j].id] = md->topics[i].partitions[j].leader;
    }
  }
  rd_kafka_metadata_destroy(md);
  if (leaders.empty()) return Error{Errc::kNotFound, "topic " + topic + " is not in the cluster metadata"};
  return leaders;
}

Status KafkaAdmin::CheckDescribable(const std::vector<std::string>& topics, std::chrono::milliseconds timeout) {
  std::vector<const char*> names;
  for (const auto& t : topics) names.push_back(t.c_str());
  char err[512];
  rd_kafka_TopicCollection_t* collection = rd_kafka_TopicCollection_of_topic_names(names.data(), names.size());
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk_.get());
  rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(rk_.get(), RD_KAFKA_ADMIN_OP_DESCRIBETOPICS);
  rd_kafka_AdminOptions_set_request_timeout(opts, static_cast<int>(timeout.count()), err, sizeof err);
  rd_kafka_DescribeTopics(rk_.get(), collection, opts, queue);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, static_cast<int>(timeout.count()) + 1000);
  std::string denied;
  if (ev != nullptr && rd_kafka_event_error(ev) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    size_t n = 0;
    const rd_kafka_TopicDescription_t** descs =
        rd_kafka_DescribeTopics_result_topics(rd_kafka_event_DescribeTopics_result(ev), &n);
    for (size_t i = 0; i < n; ++i) {
      const rd_kafka_error_t* e = rd_kafka_TopicDescription_error(descs[i]);
      if (e != nullptr && rd_kafka_error_code(e) == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
        denied += std::string(denied.empty() ? "" : ", ") + rd_kafka_TopicDescription_name(descs[i]);
      }
    }
  } else if (ev != nullptr && IsKafkaRefusal(ClassifyKafkaResp(rd_kafka_event_error(ev)))) {
    denied = "the cluster (" + std::string(rd_kafka_event_error_string(ev)) + ")";
  }
  if (ev != nullptr) rd_kafka_event_destroy(ev);
  rd_kafka_AdminOptions_destroy(opts);
  rd_kafka_queue_destroy(queue);
  rd_kafka_TopicCollection_destroy(collection);
  if (denied.empty()) return Status::Ok();  // missing, or no answer: the caller reports it
  return Error{Errc::kAccessDenied, "Kafka refused this client's principal access to " + denied +
                                        " (TOPIC_AUTHORIZATION_FAILED): grant it the ACLs docs/security.md lists "
                                        "for this command, or use that command's credentials"};
}

}  // namespace boxwatch::pipeline
