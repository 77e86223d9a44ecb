#include "core/http.h"

// httplib is included here only; its users need none of it. Its pkg-config
// flags turn on its OpenSSL support.
#include <httplib.h>

#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <list>
#include <system_error>
#include <mutex>
#include <thread>

#include "core/log.h"

namespace boxwatch::http {
namespace {

constexpr size_t kMaxRequestBytes = 4 << 20;

// httplib's own pool has a fixed number of threads, and a keep-alive or
// streaming connection holds its thread for as long as it is open. This one
// starts a thread whenever queued connections outnumber idle threads, up to
// `max` (later connections queue), and lets a thread end after a minute
// idle; ended threads are joined at the next connection.
class ElasticPool : public httplib::TaskQueue {
 public:
  explicit ElasticPool(size_t max) : max_(max) {}
  ~ElasticPool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::list<std::thread> ended;
    {
      std::lock_guard lock(mu_);
      jobs_.push_back(std::move(fn));
      // Threads that ended: taken out here, joined below (they are done).
      for (const auto& id : done_) {
        auto it = std::find_if(threads_.begin(), threads_.end(), [&](const std::thread& t) { return t.get_id() == id; });
        if (it != threads_.end()) ended.splice(ended.end(), threads_, it);
      }
      done_.clear();
      if (jobs_.size() > idle_ && threads_.size() < max_) {
        try {
          threads_.emplace_back([this] { Work(); });
        } catch (const std::system_error&) {
          // No thread to be had now: the job waits for a running one.
        }
      }
    }
    cv_.notify_one();
    for (auto& t : ended) t.join();
  }

  void shutdown() override {
    {
      std::lock_guard lock(mu_);
      if (shutdown_) return;
      shutdown_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

 private:
  void Work() {
    std::unique_lock lock(mu_);
    for (;;) {
      ++idle_;
      const bool woke = cv_.wait_for(lock, std::chrono::seconds(60), [&] { return shutdown_ || !jobs_.empty(); });
      --idle_;
      if (jobs_.empty() && (shutdown_ || !woke)) {
        if (!shutdown_) done_.push_back(std::this_thread::get_id());  // joined by the next enqueue
        return;
      }
      auto fn = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      fn();
      lock.lock();
    }
  }

  const size_t max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::list<std::thread> threads_;
  std::vector<std::thread::id> done_;
  size_t idle_ = 0;
  bool shutdown_ = false;
};

// httplib listens with a backlog of 5 (a compile-time default of its shared
// library), so hundreds of clients connecting at once are refused and
// retry. Listening again on the bound socket raises it.
template <typename Base>
class WideBacklog : public Base {
 public:
  using Base::Base;
  void RaiseBacklog(int backlog) { (void)::listen(this->svr_sock_, backlog); }
};

class SinkWriter : public StreamWriter {
 public:
  SinkWriter(httplib::DataSink& sink, const std::atomic<bool>& stopping) : sink_(sink), stopping_(stopping) {}
  bool Write(std::string_view data) override {
    return !stopping_ && sink_.write(data.data(), data.size());
  }
  bool stopping() const override { return stopping_; }
  bool open() const override { return sink_.is_writable(); }

 private:
  httplib::DataSink& sink_;
  const std::atomic<bool>& stopping_;
};

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Form decoding of one query-string component: %XX escapes, '+' a space.
std::string QueryDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i] == '+' ? ' ' : s[i]);
    }
  }
  return out;
}

}  // namespace

std::map<std::string, std::string> ParseQuery(std::string_view target) {
  std::map<std::string, std::string> out;
  const size_t q = target.find('?');
  if (q == std::string_view::npos) return out;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    const std::string_view kv = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (kv.empty()) continue;
    const size_t eq = kv.find('=');
    out.emplace(QueryDecode(kv.substr(0, eq)), eq == std::string_view::npos ? "" : QueryDecode(kv.substr(eq + 1)));
  }
  return out;
}

std::string CookieValue(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    const size_t semi = header.find(';');
    std::string_view part = header.substr(0, semi);
    header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    if (part.size() > name.size() && part.substr(0, name.size()) == name && part[name.size()] == '=')
      return std::string(part.substr(name.size() + 1));
  }
  return "";
}

struct Server::Impl {
  std::unique_ptr<httplib::Server> server;
  std::thread listener;
  std::atomic<bool> stopping{false};
  Handler handler;
};

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
  auto impl = std::make_unique<Impl>();
  impl->handler = std::move(handler);
  const bool tls = !options.tls_cert.empty() || !options.tls_key.empty();
  std::function<void()> raise_backlog;
  if (tls) {
    if (options.tls_cert.empty() || options.tls_key.empty())
      return Error{Errc::kInvalidArgument, "HTTPS needs both a certificate and a key file"};
    auto ssl = std::make_unique<WideBacklog<httplib::SSLServer>>(options.tls_cert.c_str(), options.tls_key.c_str());
    if (!ssl->is_valid())
      return Error{Errc::kInvalidArgument, "cannot load the HTTPS certificate " + options.tls_cert + " and key " +
                                               options.tls_key + " (PEM, readable, matching)"};
    // TLS 1.2 at least.
    SSL_CTX_set_min_proto_version(ssl->ssl_context(), TLS1_2_VERSION);
    raise_backlog = [s = ssl.get()] { s->RaiseBacklog(1024); };
    impl->server = std::move(ssl);
  } else {
    auto plain = std::make_unique<WideBacklog<httplib::Server>>();
    raise_backlog = [s = plain.get()] { s->RaiseBacklog(1024); };
    impl->server = std::move(plain);
  }
  httplib::Server& svr = *impl->server;
  const size_t max_connections = static_cast<size_t>(std::max(1, options.max_connections));
  svr.new_task_queue = [max_connections] { return new ElasticPool(max_connections); };
  svr.set_payload_max_length(kMaxRequestBytes);
  svr.set_read_timeout(std::chrono::milliseconds(options.read_timeout_ms));
  svr.set_write_timeout(std::chrono::seconds(10));
  svr.set_keep_alive_timeout(options.keep_alive_s);
  svr.set_keep_alive_max_count(1000);
  httplib::Headers defaults;
  for (const auto& [k, v] : options.default_headers) defaults.emplace(k, v);
  svr.set_default_headers(std::move(defaults));
  Impl* raw = impl.get();
  // Every request, whatever its method and path, goes to the one handler.
  auto serve = [raw](const httplib::Request& in, httplib::Response& out) {
    Request req;
    req.method = in.method;
    req.remote_addr = in.remote_addr;
    req.path = in.path;
    req.query = ParseQuery(in.target);
    for (const auto& [k, v] : in.headers) req.headers.emplace(Lower(k), v);
    req.body = in.body;
    Response r;
    if (req.path.empty() || req.path.front() != '/') {
      r = Response::Error(400, "malformed request target");
    } else {
      try {
        r = raw->handler(req);
      } catch (const std::exception& e) {
        BW_LOG(kError, "http") << req.method << " " << req.path << ": " << e.what();
        r = Response::Error(500, "internal error");
      }
    }
    out.status = r.status;
    for (const auto& [k, v] : r.headers) out.set_header(k, v);  // refuses CR/LF in a value
    if (r.stream) {
      out.set_header("Cache-Control", "no-cache");
      auto stream = std::move(r.stream);
      out.set_chunked_content_provider(r.content_type, [raw, stream](size_t, httplib::DataSink& sink) {
        SinkWriter writer(sink, raw->stopping);
        stream(writer);
        sink.done();
        return true;
      });
    } else {
      out.set_content(std::move(r.body), r.content_type);
    }
  };
  // Routes, not a pre-routing handler: httplib reads the body just before
  // routing.
  svr.Get(".*", serve).Post(".*", serve).Put(".*", serve).Delete(".*", serve).Patch(".*", serve);
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& out, std::exception_ptr) {
    out.status = 500;
    out.set_content("{\"error\":\"internal error\"}", "application/json");
  });
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let
  // a second process bind the same port.
  svr.set_socket_options([](int sock) {
    int yes = 1;
    (void)::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  errno = 0;
  const int port = hp->second == 0 ? svr.bind_to_any_port(hp->first) : (svr.bind_to_port(hp->first, hp->second) ? hp->second : -1);
  if (port < 0)
    return Error{Errc::kIo, "cannot listen on " + options.listen + ": " +
                                (errno != 0 ? std::string(std::strerror(errno)) : "not a local address")};
  raise_backlog();
  impl->listener = std::thread([raw] { raw->server->listen_after_bind(); });
  auto server = std::unique_ptr<Server>(new Server());
  server->port_ = port;
  server->tls_ = tls;
  server->impl_ = std::move(impl);
  return server;
}

Server::~Server() { Stop(); }

void Server::Stop() {
  if (!impl_ || impl_->stopping.exchange(true)) return;
  // stop() only acts on a running listener: wait for it to start (at once,
  // normally).
  for (int i = 0; i < 2000 && !impl_->server->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  impl_->server->stop();
  if (impl_->listener.joinable()) impl_->listener.join();
}

namespace {

Result<ClientResponse> Collect(httplib::Result&& r, const std::string& where) {
  if (!r) return Error{Errc::kRetriable, where + ": " + httplib::to_string(r.error())};
  ClientResponse out;
  out.status = r->status;
  for (const auto& [k, v] : r->headers) out.headers[Lower(k)] = v;
  out.body = std::move(r->body);
  return out;
}

template <typename Client>
Result<ClientResponse> Send(Client& cli, const std::string& method, const std::string& target,
                            const httplib::Headers& headers, const std::string& body, const std::string& content_type,
                            const std::string& where) {
  if (method == "GET") return Collect(cli.Get(target, headers), where);
  if (method == "POST") return Collect(cli.Post(target, headers, body, content_type), where);
  if (method == "PUT") return Collect(cli.Put(target, headers, body, content_type), where);
  if (method == "DELETE") return Collect(cli.Delete(target, headers, body, content_type), where);
  if (method == "HEAD") return Collect(cli.Head(target, headers), where);
  return Error{Errc::kInvalidArgument, "method " + method + " is not supported by this client"};
}

}  // namespace

Result<ClientResponse> Fetch(const std::string& method, const std::string& host, int port, const std::string& target,
                             const std::string& body, const std::string& content_type, int timeout_ms) {
  return Fetch(method, host, port, target, FetchOptions{.body = body, .content_type = content_type, .timeout_ms = timeout_ms});
}

Result<ClientResponse> Fetch(const std::string& method, const std::string& host, int port, const std::string& target,
                             const FetchOptions& options) {
  httplib::Headers h;
  for (const auto& [k, v] : options.headers) h.emplace(k, v);
  const auto timeout = std::chrono::milliseconds(options.timeout_ms);
  auto setup = [&](auto& cli) {
    cli.set_connection_timeout(timeout);
    cli.set_read_timeout(timeout);
    cli.set_write_timeout(timeout);
    cli.set_url_encode(false);  // targets come encoded already
  };
  const std::string where = host + ":" + std::to_string(port) + target;
  if (options.ca_file.empty()) {
    httplib::Client cli(host, port);
    setup(cli);
    return Send(cli, method, target, h, options.body, options.content_type, "http://" + where);
  }
  httplib::SSLClient cli(host, port);
  cli.set_ca_cert_path(options.ca_file.c_str());
  cli.enable_server_certificate_verification(true);
  setup(cli);
  return Send(cli, method, target, h, options.body, options.content_type, "https://" + where);
}

}  // namespace boxwatch::http
