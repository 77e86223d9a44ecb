#pragma once
// HTTP/1.1 for boxwatch's own endpoints (the hub's control room, its API and
// live feed, and every process's /metrics, /healthz and /readyz), on
// cpp-httplib with OpenSSL: keep-alive, HTTPS when given a certificate and
// key, bodies up to 4 MiB. This header keeps httplib out of its users.
//
// Threading: each connection is served on a thread of an elastic pool that
// grows to `max_connections` (more wait in a queue) and shrinks when idle, so
// hundreds of live-feed streams can be open at once. Handlers are called
// concurrently and must be thread-safe. Stop() (or the destructor) closes the
// listener, asks streaming handlers to end, and joins every thread.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"

namespace boxwatch::http {

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string remote_addr;  // the peer's IP address
  std::string path;    // without the query string, percent-decoded
  std::map<std::string, std::string> query;  // decoded query parameters
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  // The query parameter `name`, or `fallback` when absent.
  std::string Param(const std::string& name, const std::string& fallback = "") const;
};

// Writes a streamed body (e.g. Server-Sent Events). Write returns false once
// the peer is gone or the server is stopping; the handler should then return.
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  virtual bool Write(std::string_view data) = 0;
  virtual bool stopping() const = 0;
  // False once the peer has closed its end (checked without blocking), so a
  // quiet stream gives its connection slot back at once rather than at its
  // next write.
  virtual bool open() const { return true; }
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // a name may repeat (Set-Cookie)
  // When set, the body is streamed: headers go out, then `stream` runs until
  // it returns; `body` is ignored.
  std::function<void(StreamWriter&)> stream;

  static Response Json(int status, std::string body);
  static Response Text(int status, std::string body);
  // {"error": message} with the given status.
  static Response Error(int status, const std::string& message);
};

using Handler = std::function<Response(const Request&)>;

class Server {
 public:
  struct Options {
    std::string listen = "127.0.0.1:0";  // host:port; port 0 picks a free port
    int max_connections = 1024;          // connections served at once; more wait their turn
    int read_timeout_ms = 10000;         // ms to receive a request
    int keep_alive_s = 5;                // an idle keep-alive connection is closed after this
    // HTTPS with this certificate chain and private key (PEM files); both
    // empty: plaintext.
    std::string tls_cert;
    std::string tls_key;
    // Headers added to every response (e.g. security headers).
    std::vector<std::pair<std::string, std::string>> default_headers;
  };
  // Binds and starts serving. Errors: the address is malformed or in use.
  static Result<std::unique_ptr<Server>> Start(const Options& options, Handler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound port (useful with port 0).
  int port() const { return port_; }
  bool tls() const { return tls_; }
  void Stop();

  struct Impl;

 private:
  Server() = default;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
  bool tls_ = false;
};

// Splits "host:port" ("[::1]:80" allowed). Errors name the text.
Result<std::pair<std::string, int>> SplitHostPort(const std::string& address);

struct ClientResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
};

// One request to http://host:port/target (target includes any query
// string); waits up to `timeout_ms` for the whole response.
Result<ClientResponse> Fetch(const std::string& method, const std::string& host, int port,
                             const std::string& target, const std::string& body = "",
                             const std::string& content_type = "application/json",
                             int timeout_ms = 10000);

// Everything a request may carry beyond method and target.
struct FetchOptions {
  std::string ca_file;  // set: HTTPS, trusting this CA (PEM) and checking the host name
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string content_type = "application/json";
  int timeout_ms = 10000;
};
Result<ClientResponse> Fetch(const std::string& method, const std::string& host, int port,
                             const std::string& target, const FetchOptions& options);

// The query parameters of a request target ("/path?a=1&b=x+y"), form-decoded
// (%XX escapes, '+' a space); the first of a repeated name wins.
std::map<std::string, std::string> ParseQuery(std::string_view target);

// The value of cookie `name` in a Cookie header ("a=1; b=2"), or "".
std::string CookieValue(std::string_view header, std::string_view name);

// Escapes text for a JSON string literal (without the quotes).
std::string JsonEscape(std::string_view text);

}  // namespace boxwatch::http
