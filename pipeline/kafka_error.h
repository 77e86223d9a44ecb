#pragma once
// Conversion of librdkafka errors into boxwatch's Error at the pipeline
// boundary. The classification drives recovery:
//   kRetriable  - transient (broker down, timeout): retry the same call
//   kAbortable  - the current transaction must be aborted, then redone
//   kFenced     - another producer with our transactional.id took over: stop
//                 using this producer, rebuild it and the tasks
//   kFatal      - the client instance is unusable: rebuild it
//   kInvalidArgument - a bug or a misconfiguration; retrying cannot help

#include <librdkafka/rdkafka.h>

#include <string>

#include "core/result.h"

namespace boxwatch::pipeline {

// The class of a response code (kUnauthenticated for refused credentials,
// kAccessDenied for a refused right).
Errc ClassifyKafkaResp(rd_kafka_resp_err_t err);
// The brokers refused this client: its credentials or its principal's rights.
inline bool IsKafkaRefusal(Errc code) { return code == Errc::kAccessDenied || code == Errc::kUnauthenticated; }
// Takes ownership of `error` (destroys it). `what` names the operation, e.g.
// "commit transaction".
Error FromKafkaError(rd_kafka_error_t* error, const std::string& what);
Error FromKafkaResp(rd_kafka_resp_err_t err, const std::string& what);
// As FromKafkaResp, but asks the client whether a fatal error is behind `err`.
Error FromKafkaResp(rd_kafka_t* rk, rd_kafka_resp_err_t err, const std::string& what);

}  // namespace boxwatch::pipeline
