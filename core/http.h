#pragma once
// A small HTTP/1.1 server and client for boxwatch's own endpoints: the hub's
// control-room API and live feed, and every process's /metrics, /healthz and
// /readyz. Not a general web server: one request per connection (the server
// answers with "Connection: close"), bodies up to 4 MiB, no TLS (bind it to
// loopback or put it behind the cluster's ingress).
//
// Threading: Start() runs an accept thread; each connection is served on its
// own thread, at most `max_connections` at once (more are answered 503).
// Handlers are called concurrently and must be thread-safe. Stop() (or the
// destructor) closes the listener, asks streaming handlers to end, and joins
// every thread.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/result.h"

namespace boxwatch::http {

struct Request {
  std::string method;  // "GET", "POST", ...
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
  std::vector<std::pair<std::string, std::string>> headers;
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
    int max_connections = 64;            // concurrent connections served
    int read_timeout_ms = 10000;         // ms to receive a whole request
  };
  // Binds and starts serving. Errors: the address is malformed or in use.
  static Result<std::unique_ptr<Server>> Start(const Options& options, Handler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The bound port (useful with port 0).
  int port() const { return port_; }
  void Stop();

 private:
  Server() = default;
  void AcceptLoop();
  void Serve(int fd);

  Options options_;
  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::condition_variable idle_;
  int active_ = 0;
  std::vector<int> open_fds_;
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

// Escapes text for a JSON string literal (without the quotes).
std::string JsonEscape(std::string_view text);

}  // namespace boxwatch::http
