#include "core/http.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <sstream>

namespace boxwatch::http {
namespace {

constexpr size_t kMaxRequestBytes = 4 << 20;

const char* Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
  }
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return std::string(s);
}

std::string PercentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const std::string hex(s.substr(i + 1, 2));
      char* end = nullptr;
      const long v = std::strtol(hex.c_str(), &end, 16);
      if (end == hex.c_str() + 2) {
        out.push_back(static_cast<char>(v));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && s[i] == '+' ? ' ' : s[i]);
  }
  return out;
}

// Writes everything; false when the peer is gone.
bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads until the header block and Content-Length bytes of body are in
// `buf`, or the deadline passes. Returns the header end (index after the
// blank line) or npos.
size_t ReadMessage(int fd, std::string& buf, std::chrono::steady_clock::time_point deadline,
                   const std::atomic<bool>* stopping, bool until_eof, std::string* error) {
  size_t header_end = std::string::npos;
  size_t want = 0;
  bool have_length = false;
  for (;;) {
    if (header_end == std::string::npos) {
      const size_t p = buf.find("\r\n\r\n");
      if (p != std::string::npos) {
        header_end = p + 4;
        std::istringstream lines(buf.substr(0, p));
        std::string line;
        while (std::getline(lines, line)) {
          const size_t colon = line.find(':');
          if (colon != std::string::npos && Lower(Trim(line.substr(0, colon))) == "content-length") {
            want = std::strtoull(Trim(line.substr(colon + 1)).c_str(), nullptr, 10);
            have_length = true;
          }
        }
        if (want > kMaxRequestBytes) {
          *error = "body too large";
          return std::string::npos;
        }
      }
    }
    if (header_end != std::string::npos && !until_eof && buf.size() >= header_end + want) return header_end;
    if (header_end != std::string::npos && until_eof && have_length && buf.size() >= header_end + want)
      return header_end;
    if (buf.size() > kMaxRequestBytes + 65536) {
      *error = "message too large";
      return std::string::npos;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || (stopping && stopping->load())) {
      *error = "timed out";
      return std::string::npos;
    }
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 200)));
    if (r < 0 && errno != EINTR) {
      *error = std::strerror(errno);
      return std::string::npos;
    }
    if (r <= 0) continue;
    char chunk[16384];
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (until_eof && header_end != std::string::npos) return header_end;
      *error = n == 0 ? "connection closed" : std::strerror(errno);
      return std::string::npos;
    }
    buf.append(chunk, static_cast<size_t>(n));
  }
}

class SocketStream : public StreamWriter {
 public:
  SocketStream(int fd, const std::atomic<bool>& stopping) : fd_(fd), stopping_(stopping) {}
  bool Write(std::string_view data) override { return !stopping_ && SendAll(fd_, data); }
  bool stopping() const override { return stopping_; }
  bool open() const override {
    pollfd p{fd_, POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, 0) <= 0) return true;  // nothing happened
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return false;
    char c;  // readable: data (a stream's client sends none) or end of stream
    return ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
  }

 private:
  int fd_;
  const std::atomic<bool>& stopping_;
};

}  // namespace

std::string Request::Param(const std::string& name, const std::string& fallback) const {
  auto it = query.find(name);
  return it == query.end() ? fallback : it->second;
}

Response Response::Json(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response Response::Text(int status, std::string body) {
  Response r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

Response Response::Error(int status, const std::string& message) {
  return Json(status, "{\"error\":\"" + JsonEscape(message) + "\"}");
}

std::string JsonEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          out += b;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out;
}

Result<std::pair<std::string, int>> SplitHostPort(const std::string& address) {
  std::string host;
  std::string port;
  if (!address.empty() && address.front() == '[') {
    const size_t close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size() || address[close + 1] != ':')
      return Error{Errc::kInvalidArgument, "address " + address + " is not host:port"};
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == std::string::npos) return Error{Errc::kInvalidArgument, "address " + address + " is not host:port"};
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
  }
  char* end = nullptr;
  const long p = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || p < 0 || p > 65535)
    return Error{Errc::kInvalidArgument, "address " + address + " has no valid port (0-65535)"};
  if (host.empty()) host = "0.0.0.0";
  return std::pair{host, static_cast<int>(p)};
}

Result<std::unique_ptr<Server>> Server::Start(const Options& options, Handler handler) {
  auto hp = SplitHostPort(options.listen);
  if (!hp.ok()) return hp.error();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(hp->second);
  if (int rc = ::getaddrinfo(hp->first.c_str(), port.c_str(), &hints, &res); rc != 0)
    return Error{Errc::kInvalidArgument, "cannot resolve " + options.listen + ": " + ::gai_strerror(rc)};
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(res, ::freeaddrinfo);
  const int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error{Errc::kIo, std::string("socket: ") + std::strerror(errno)};
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, 128) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    return Error{Errc::kIo, "cannot listen on " + options.listen + ": " + why +
                                " (choose another address or port)"};
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  auto server = std::unique_ptr<Server>(new Server());
  server->options_ = options;
  server->handler_ = std::move(handler);
  server->listen_fd_ = fd;
  server->port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                    : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  server->acceptor_ = std::thread([s = server.get()] { s->AcceptLoop(); });
  return server;
}

Server::~Server() { Stop(); }

void Server::Stop() {
  if (stopping_.exchange(true)) {
    if (acceptor_.joinable()) acceptor_.join();
    return;
  }
  if (acceptor_.joinable()) acceptor_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
  std::unique_lock lock(mu_);
  for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
  idle_.wait(lock, [this] { return active_ == 0; });
}

void Server::AcceptLoop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::unique_lock lock(mu_);
    if (active_ >= options_.max_connections) {
      lock.unlock();
      SendAll(fd, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      ::close(fd);
      continue;
    }
    ++active_;
    open_fds_.push_back(fd);
    std::thread([this, fd] {
      Serve(fd);
      std::lock_guard l(mu_);
      open_fds_.erase(std::find(open_fds_.begin(), open_fds_.end(), fd));
      ::close(fd);
      if (--active_ == 0) idle_.notify_all();
    }).detach();
  }
}

void Server::Serve(int fd) {
  std::string buf;
  std::string error;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.read_timeout_ms);
  const size_t header_end = ReadMessage(fd, buf, deadline, &stopping_, false, &error);
  Response response;
  Request req;
  if (header_end == std::string::npos) {
    if (error == "connection closed" || error == "timed out") return;
    response = Response::Error(error == "body too large" ? 413 : 400, error);
  } else {
    std::istringstream lines(buf.substr(0, header_end));
    std::string line;
    std::getline(lines, line);
    std::istringstream first(line);
    std::string target;
    first >> req.method >> target;
    while (std::getline(lines, line)) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) req.headers[Lower(Trim(line.substr(0, colon)))] = Trim(line.substr(colon + 1));
    }
    req.body = buf.substr(header_end);
    const size_t q = target.find('?');
    req.path = PercentDecode(target.substr(0, q), false);
    if (q != std::string::npos) {
      std::istringstream params(target.substr(q + 1));
      std::string kv;
      while (std::getline(params, kv, '&')) {
        if (kv.empty()) continue;
        const size_t eq = kv.find('=');
        req.query[PercentDecode(kv.substr(0, eq), true)] =
            eq == std::string::npos ? "" : PercentDecode(kv.substr(eq + 1), true);
      }
    }
    if (req.method.empty() || req.path.empty() || req.path.front() != '/') {
      response = Response::Error(400, "malformed request line");
    } else {
      try {
        response = handler_(req);
      } catch (const std::exception& e) {
        response = Response::Error(500, e.what());
      }
    }
  }
  std::string head = "HTTP/1.1 " + std::to_string(response.status) + " " + Reason(response.status) + "\r\n";
  head += "Content-Type: " + response.content_type + "\r\n";
  for (const auto& [k, v] : response.headers) head += k + ": " + v + "\r\n";
  head += "Connection: close\r\n";
  if (response.stream) {
    head += "Cache-Control: no-cache\r\n\r\n";
    if (!SendAll(fd, head)) return;
    SocketStream stream(fd, stopping_);
    response.stream(stream);
    return;
  }
  head += "Content-Length: " + std::to_string(response.body.size()) + "\r\n\r\n";
  if (req.method == "HEAD") response.body.clear();
  if (SendAll(fd, head)) SendAll(fd, response.body);
}

Result<ClientResponse> Fetch(const std::string& method, const std::string& host, int port, const std::string& target,
                             const std::string& body, const std::string& content_type, int timeout_ms) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string where = "http://" + host + ":" + std::to_string(port) + target;
  if (int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); rc != 0)
    return Error{Errc::kRetriable, "cannot resolve " + host + ": " + ::gai_strerror(rc)};
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(res, ::freeaddrinfo);
  const int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error{Errc::kIo, std::string("socket: ") + std::strerror(errno)};
  std::unique_ptr<int, void (*)(int*)> close_fd(new int(fd), [](int* f) {
    ::close(*f);
    delete f;
  });
  if (::connect(fd, res->ai_addr, res->ai_addrlen) != 0)
    return Error{Errc::kRetriable, where + ": " + std::strerror(errno)};
  std::string request = method + " " + target + " HTTP/1.1\r\nHost: " + host + ":" + std::to_string(port) +
                        "\r\nConnection: close\r\n";
  if (!body.empty() || method == "POST" || method == "PUT")
    request += "Content-Type: " + content_type + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  request += "\r\n" + body;
  if (!SendAll(fd, request)) return Error{Errc::kRetriable, where + ": connection lost while sending"};
  std::string buf;
  std::string error;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  const size_t header_end = ReadMessage(fd, buf, deadline, nullptr, true, &error);
  if (header_end == std::string::npos) return Error{Errc::kRetriable, where + ": " + error};
  ClientResponse out;
  std::istringstream lines(buf.substr(0, header_end));
  std::string line;
  std::getline(lines, line);
  std::istringstream first(line);
  std::string version;
  first >> version >> out.status;
  while (std::getline(lines, line)) {
    const size_t colon = line.find(':');
    if (colon != std::string::npos) out.headers[Lower(Trim(line.substr(0, colon)))] = Trim(line.substr(colon + 1));
  }
  out.body = buf.substr(header_end);
  return out;
}

}  // namespace boxwatch::http
