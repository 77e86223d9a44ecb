#include "delivery/tls.h"

#include <fstream>
#include <sstream>

namespace boxwatch::delivery {

std::string TlsFiles::Missing() const {
  std::string out;
  for (const auto& [flag, value] : {std::pair{"--tls-ca", &ca}, {"--tls-cert", &cert}, {"--tls-key", &key}}) {
    if (value->empty()) out += std::string(out.empty() ? "" : ", ") + flag;
  }
  return out;
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(Errc::kInvalidArgument, "cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().empty()) return Error(Errc::kInvalidArgument, path + " is empty");
  return text.str();
}

Result<std::shared_ptr<grpc::ServerCredentials>> ServerTls(const TlsFiles& files) {
  auto ca = ReadFile(files.ca);
  auto cert = ReadFile(files.cert);
  auto key = ReadFile(files.key);
  for (const auto* r : {&ca, &cert, &key})
    if (!r->ok()) return r->error();
  grpc::SslServerCredentialsOptions options(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = *ca;
  options.pem_key_cert_pairs.push_back({*key, *cert});
  return grpc::SslServerCredentials(options);
}

Result<std::shared_ptr<grpc::ChannelCredentials>> ClientTls(const TlsFiles& files) {
  auto ca = ReadFile(files.ca);
  auto cert = ReadFile(files.cert);
  auto key = ReadFile(files.key);
  for (const auto* r : {&ca, &cert, &key})
    if (!r->ok()) return r->error();
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = *ca;
  options.pem_private_key = *key;
  options.pem_cert_chain = *cert;
  return grpc::SslCredentials(options);
}

}  // namespace boxwatch::delivery
