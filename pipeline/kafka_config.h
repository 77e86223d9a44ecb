#pragma once
// One Kafka client configuration for every boxwatch command (docs/configuration.md,
// "Kafka client configuration"). librdkafka properties come from, lowest first:
//   1. a properties file: --kafka-config FILE, or BOXWATCH_KAFKA_CONFIG (the
//      worker: its `kafka_config` option); `key=value` lines, `#`/`!` comments;
//   2. (the worker only) the `kafka:` mapping of its YAML file;
//   3. BOXWATCH_RDKAFKA_<PROPERTY> environment variables, upper case with dots
//      as underscores: BOXWATCH_RDKAFKA_SASL_PASSWORD sets sasl.password;
//   4. --kafka key=value on the command line (repeatable).
// A value may be a reference, resolved when loaded: ${file:PATH} (the file's
// contents, trailing line breaks removed) or ${env:NAME}. Secrets (any
// property whose name holds "password" or "secret", and private keys) may not
// be given as literal values on the command line, where `ps` shows them; no
// message of this module or of the Kafka clients prints a secret's value.
//
// Every Kafka client of a command (consumers, producers, admin, restore and
// look-up readers) gets the same properties, after boxwatch's own settings.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace boxwatch::pipeline {

// librdkafka properties, applied in order (later entries win).
using KafkaProperties = std::vector<std::pair<std::string, std::string>>;

struct KafkaConfigSources {
  std::string file;                        // properties file; empty: none
  std::vector<std::string> overrides;      // key=value from the command line
  std::map<std::string, std::string> env;  // the environment (ProcessEnvironment())
};

// Properties file, then BOXWATCH_RDKAFKA_*, then overrides, references
// resolved. Every problem is reported at once, secrets never echoed.
Result<KafkaProperties> LoadKafkaProperties(const KafkaConfigSources& sources);
// The `key=value` format of a properties file; `source` names it in messages.
Result<KafkaProperties> ParseKafkaProperties(std::string_view text, const std::string& source);
// A properties file, parsed, its references left for ResolveKafkaReferences.
Result<KafkaProperties> ReadKafkaPropertiesFile(const std::string& path);
// BOXWATCH_RDKAFKA_<NAME> variables as properties, in name order.
KafkaProperties KafkaPropertiesFromEnvironment(const std::map<std::string, std::string>& env);
// Replaces ${file:PATH} and ${env:NAME} values; adds one problem per failure.
void ResolveKafkaReferences(KafkaProperties& props, const std::map<std::string, std::string>& env,
                            std::vector<std::string>* problems);

// True for properties whose value must stay out of logs and command lines.
bool IsSecretKafkaProperty(std::string_view key);
// `value`, or "(secret)" when `key` is a secret.
std::string ShownKafkaValue(std::string_view key, std::string_view value);
// The last value set for `key`.
std::optional<std::string> FindKafkaProperty(const KafkaProperties& props, std::string_view key);
// The environment of this process.
std::map<std::string, std::string> ProcessEnvironment();

}  // namespace boxwatch::pipeline
