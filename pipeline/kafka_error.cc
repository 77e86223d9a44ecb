#include "pipeline/kafka_error.h"

namespace boxwatch::pipeline {
namespace {

bool IsFencedCode(rd_kafka_resp_err_t err) {
  return err == RD_KAFKA_RESP_ERR__FENCED || err == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
         err == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH ||
         err == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID;
}

}  // namespace

Errc ClassifyKafkaResp(rd_kafka_resp_err_t err) {
  if (IsFencedCode(err)) return Errc::kFenced;
  switch (err) {
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
      return Errc::kTimeout;
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:  // a broker down longer than the delivery timeout
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR:
    case RD_KAFKA_RESP_ERR__MAX_POLL_EXCEEDED:  // left the group (a long stall): rejoin
      return Errc::kRetriable;
    case RD_KAFKA_RESP_ERR__FATAL:
      return Errc::kFatal;
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
      return Errc::kUnauthenticated;
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_DELEGATION_TOKEN_AUTHORIZATION_FAILED:
      return Errc::kAccessDenied;
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
      return Errc::kNotFound;
    default:
      return Errc::kInvalidArgument;
  }
}


Error FromKafkaError(rd_kafka_error_t* error, const std::string& what) {
  const rd_kafka_resp_err_t code = rd_kafka_error_code(error);
  Errc errc;
  if (IsFencedCode(code)) {
    errc = Errc::kFenced;
  } else if (IsKafkaRefusal(ClassifyKafkaResp(code))) {
    errc = ClassifyKafkaResp(code);
  } else if (rd_kafka_error_is_fatal(error)) {
    errc = Errc::kFatal;
  } else if (rd_kafka_error_txn_requires_abort(error)) {
    errc = Errc::kAbortable;
  } else if (rd_kafka_error_is_retriable(error)) {
    errc = Errc::kRetriable;
  } else {
    errc = ClassifyKafkaResp(code);
  }
  std::string msg = what + " failed: " + rd_kafka_error_string(error) + " (" +
                    rd_kafka_error_name(error) + ")";
  rd_kafka_error_destroy(error);
  return Error{errc, std::move(msg)};
}

Error FromKafkaResp(rd_kafka_resp_err_t err, const std::string& what) {
  return Error{ClassifyKafkaResp(err), what + " failed: " + rd_kafka_err2str(err) + " (" +
                                      rd_kafka_err2name(err) + ")"};
}

Error FromKafkaResp(rd_kafka_t* rk, rd_kafka_resp_err_t err, const std::string& what) {
  if (err == RD_KAFKA_RESP_ERR__FATAL && rk != nullptr) {
    char reason[512];
    const rd_kafka_resp_err_t underlying = rd_kafka_fatal_error(rk, reason, sizeof reason);
    const Errc refusal = ClassifyKafkaResp(underlying);
    const Errc errc = IsFencedCode(underlying) ? Errc::kFenced : IsKafkaRefusal(refusal) ? refusal : Errc::kFatal;
    return Error{errc, what + " failed with a fatal client error: " + reason + " (" +
                           rd_kafka_err2name(underlying) + ")"};
  }
  return FromKafkaResp(err, what);
}

}  // namespace boxwatch::pipeline
