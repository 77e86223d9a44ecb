#pragma once
// gRPC credentials from PEM files, shared by the dispatcher (server) and the
// hub (client). Mutual TLS: each side proves itself with a certificate
// signed by the CA the other side trusts.

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

#include "core/result.h"

namespace boxwatch::delivery {

struct TlsFiles {
  std::string ca;    // PEM CA certificate(s) trusted for the peer
  std::string cert;  // PEM certificate chain of this side
  std::string key;   // PEM private key of this side
  // Lists what is missing; empty when all three are set.
  std::string Missing() const;
};

// Reads a whole file; errors name the file and the reason.
Result<std::string> ReadFile(const std::string& path);

// Server credentials that require and verify a client certificate.
Result<std::shared_ptr<grpc::ServerCredentials>> ServerTls(const TlsFiles& files);
// Client credentials that present this side's certificate.
Result<std::shared_ptr<grpc::ChannelCredentials>> ClientTls(const TlsFiles& files);

}  // namespace boxwatch::delivery
