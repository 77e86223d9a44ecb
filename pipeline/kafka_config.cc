#include "pipeline/kafka_config.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

extern char** environ;

namespace boxwatch::pipeline {
namespace {

constexpr std::string_view kEnvPrefix = "BOXWATCH_RDKAFKA_";
constexpr size_t kMaxFileBytes = 1 << 20;  // a properties or secret file, bytes

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// The whole file, or why not.
Result<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{Errc::kIo, "cannot read " + path + ": " + std::strerror(errno)};
  std::string text;
  char buf[8192];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxFileBytes) {
      return Error{Errc::kInvalidArgument, path + " is larger than " + std::to_string(kMaxFileBytes) + " bytes"};
    }
  }
  return text;
}

}  // namespace

bool IsSecretKafkaProperty(std::string_view key) {
  std::string k(key);
  std::transform(k.begin(), k.end(), k.begin(), [](unsigned char c) { return std::tolower(c); });
  return k.find("password") != std::string::npos || k.find("secret") != std::string::npos ||
         k == "ssl.key.pem" || k == "ssl_key" || k == "sasl.oauthbearer.config";
}

std::string ShownKafkaValue(std::string_view key, std::string_view value) {
  return IsSecretKafkaProperty(key) ? std::string("(secret)") : std::string(value);
}

std::optional<std::string> FindKafkaProperty(const KafkaProperties& props, std::string_view key) {
  for (auto it = props.rbegin(); it != props.rend(); ++it) {
    if (it->first == key) return it->second;
  }
  return std::nullopt;
}

std::map<std::string, std::string> ProcessEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    const size_t eq = kv.find('=');
    if (eq != std::string_view::npos) env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return env;
}

namespace {

std::string ProblemList(const std::vector<std::string>& problems) {
  std::string msg = "Kafka client configuration has " + std::to_string(problems.size()) + " problem(s):";
  for (const auto& p : problems) msg += "\n  " + p;
  return msg;
}

void ParseInto(std::string_view text, const std::string& source, KafkaProperties& props,
               std::vector<std::string>& problems) {
  int line_no = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    line = Trim(line);
    if (line.empty() || line.front() == '#' || line.front() == '!') continue;
    const size_t eq = line.find('=');
    const std::string where = source + ":" + std::to_string(line_no);
    if (eq == std::string_view::npos) {
      problems.push_back(where + ": expected key=value");
      continue;
    }
    const std::string key(Trim(line.substr(0, eq)));
    if (key.empty()) {
      problems.push_back(where + ": the property name is empty");
      continue;
    }
    props.emplace_back(key, std::string(Trim(line.substr(eq + 1))));
  }
}

}  // namespace

Result<KafkaProperties> ParseKafkaProperties(std::string_view text, const std::string& source) {
  KafkaProperties props;
  std::vector<std::string> problems;
  ParseInto(text, source, props, problems);
  if (!problems.empty()) return InvalidArgument(ProblemList(problems));
  return props;
}

Result<KafkaProperties> ReadKafkaPropertiesFile(const std::string& path) {
  auto text = ReadSmallFile(path);
  if (!text.ok()) return Error{text.error().code, "Kafka client configuration: " + text.error().message};
  return ParseKafkaProperties(*text, path);
}

KafkaProperties KafkaPropertiesFromEnvironment(const std::map<std::string, std::string>& env) {
  KafkaProperties props;
  for (const auto& [name, value] : env) {
    if (name.size() <= kEnvPrefix.size() || name.compare(0, kEnvPrefix.size(), kEnvPrefix) != 0) continue;
    std::string key = name.substr(kEnvPrefix.size());
    for (char& c : key) c = c == '_' ? '.' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    props.emplace_back(std::move(key), value);
  }
  return props;
}

void ResolveKafkaReferences(KafkaProperties& props, const std::map<std::string, std::string>& env,
                            std::vector<std::string>* problems) {
  for (auto& [key, value] : props) {
    if (value.size() < 4 || value.compare(0, 2, "${") != 0 || value.back() != '}') continue;
    const std::string_view ref(value.data() + 2, value.size() - 3);
    if (ref.substr(0, 5) == "file:") {
      const std::string path(ref.substr(5));
      auto text = ReadSmallFile(path);
      if (!text.ok()) {
        problems->push_back("property " + key + ": " + text.error().message);
        continue;
      }
      while (!text->empty() && (text->back() == '\n' || text->back() == '\r')) text->pop_back();
      value = std::move(*text);
    } else if (ref.substr(0, 4) == "env:") {
      const std::string name(ref.substr(4));
      auto it = env.find(name);
      if (it == env.end()) {
        problems->push_back("property " + key + ": environment variable " + name + " is not set");
        continue;
      }
      value = it->second;
    } else {
      problems->push_back("property " + key + ": unknown reference (use ${file:PATH} or ${env:NAME})");
    }
  }
}

Result<KafkaProperties> LoadKafkaProperties(const KafkaConfigSources& sources) {
  std::vector<std::string> problems;
  KafkaProperties props;
  std::string file = sources.file;
  if (file.empty()) {
    if (auto it = sources.env.find("BOXWATCH_KAFKA_CONFIG"); it != sources.env.end()) file = it->second;
  }
  if (!file.empty()) {
    auto text = ReadSmallFile(file);
    if (!text.ok()) {
      problems.push_back("Kafka client configuration: " + text.error().message);
    } else {
      ParseInto(*text, file, props, problems);
    }
  }
  const KafkaProperties from_env = KafkaPropertiesFromEnvironment(sources.env);
  props.insert(props.end(), from_env.begin(), from_env.end());
  for (const auto& kv : sources.overrides) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      // The argument may be a secret typed without its key: never echo it.
      problems.push_back("--kafka takes key=value (a librdkafka property), got an argument without '='");
      continue;
    }
    std::string key = kv.substr(0, eq), value = kv.substr(eq + 1);
    if (IsSecretKafkaProperty(key) && value.compare(0, 2, "${") != 0) {
      problems.push_back("--kafka " + key + ": a secret may not be given on the command line, where any user of "
                         "the machine can read it (ps); put it in the --kafka-config file, as a ${file:PATH} "
                         "reference, or in BOXWATCH_RDKAFKA_" + [&] {
                           std::string e = key;
                           for (char& c : e) c = c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
                           return e;
                         }());
      continue;
    }
    props.emplace_back(std::move(key), std::move(value));
  }
  ResolveKafkaReferences(props, sources.env, &problems);
  if (!problems.empty()) return InvalidArgument(ProblemList(problems));
  return props;
}

}  // namespace boxwatch::pipeline
