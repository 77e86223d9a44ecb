#include "sim/produce.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>
#include <thread>

namespace boxwatch::sim {
namespace {

std::string Base64(std::string_view in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8) |
                       static_cast<uint8_t>(in[i + 2]);
    for (int k = 3; k >= 0; --k) out.push_back(kAlphabet[(v >> (6 * k)) & 63]);
  }
  if (i < in.size()) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<uint8_t>(in[i + 1]) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

}  // namespace

Result<size_t> ProduceTraffic(pipeline::KafkaProducer& producer, const pipeline::TopicNames& names,
                              const std::vector<TrafficRecord>& records, const ProduceOptions& o) {
  using Clock = std::chrono::steady_clock;
  if (o.rate > 0) {
    // Paced sending starts with the producer ready: connected, and with the
    // metadata of every topic it sends to. Otherwise the records of its
    // first second wait in its queue and reach the broker all at once, a
    // burst at twice the rate that no steady upstream sends.
    std::set<std::string> topics;
    for (const auto& r : records) topics.insert(names.Name(r.role));
    for (const auto& topic : topics) {
      rd_kafka_topic_t* rkt = rd_kafka_topic_new(producer.handle(), topic.c_str(), nullptr);
      const rd_kafka_metadata_t* md = nullptr;
      if (rd_kafka_metadata(producer.handle(), 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_metadata_destroy(md);
      }
      rd_kafka_topic_destroy(rkt);
    }
  }
  const auto started = Clock::now();
  // Paced in steps of about a millisecond's records: a pause per record
  // (every 20 us at 50,000 records/s) costs more in sleeps and wake-ups
  // than producing does, on the machine the pipeline under test shares.
  const size_t step = o.rate > 0 ? std::max<size_t>(1, static_cast<size_t>(o.rate / 1000)) : 1;
  size_t sent = 0;
  for (const auto& r : records) {
    if (o.stop && o.stop->load()) break;
    if (o.rate > 0 && sent % step == 0) {
      // Paced against the start, so the average holds whatever the jitter.
      const auto due = started + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(static_cast<double>(sent) / o.rate));
      while (Clock::now() < due) {
        if (o.stop && o.stop->load()) break;
        rd_kafka_poll(producer.handle(), 0);
        std::this_thread::sleep_until(std::min(due, Clock::now() + std::chrono::milliseconds(50)));
      }
    }
    std::vector<pipeline::Header> headers;
    if (r.json) headers.push_back({"content-type", "application/json"});
    if (Status s = producer.Produce({.topic = names.Name(r.role), .key = r.key, .value = r.value,
                                     .timestamp_ms = r.timestamp_ms, .headers = headers});
        !s.ok()) {
      return s.error();
    }
    ++sent;
    if (o.progress && sent % 1000 == 0) o.progress(sent, records.size());
  }
  if (Status s = producer.Flush(std::chrono::seconds(120)); !s.ok()) return s.error();
  if (o.progress) o.progress(sent, records.size());
  return sent;
}

Status WriteTrafficFile(const std::string& path, const pipeline::TopicNames& names,
                        const std::vector<TrafficRecord>& records) {
  std::ofstream out(path);
  if (!out) return Error{Errc::kIo, "cannot write " + path};
  for (const auto& r : records) {
    out << "{\"topic\":\"" << names.Name(r.role) << "\",\"key\":\"" << r.key << "\",\"timestamp_ms\":" << r.timestamp_ms
        << ",\"content_type\":\"" << (r.json ? "application/json" : "application/x-protobuf")
        << "\",\"value_base64\":\"" << Base64(r.value) << "\"}\n";
  }
  out.close();
  if (!out) return Error{Errc::kIo, "writing " + path + " failed"};
  return Status::Ok();
}

}  // namespace boxwatch::sim
